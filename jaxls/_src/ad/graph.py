"""The computational graph of a function, node by node, with forward tangents and backward
adjoints: the lecture's tables, computed by the same rules as the transforms."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.forward import jvp_closed
from jaxls._src.ad.api import traced_values
from jaxls._src.ad.reverse import backward_sweep, forward_sweep
from jaxls._src.results import PyTree


class Node(NamedTuple):
    """One variable of the graph: an input, or the output of one primitive.

    Attributes:
      name: ``w1``, ``w2`` for inputs (the function's parameter names), ``v1``, ``v2``, ...
      primitive: the primitive that computes it (``"input"`` for inputs).
      inputs: names of the primitive's operands (literals are shown by value).
      value: its value.
      tangent: its forward-mode tangent for the seed ``tangents`` (``d value / d seed``).
      adjoint: its reverse-mode adjoint for the output cotangent (``d output / d value``).
    """

    name: str
    primitive: str
    inputs: tuple[str, ...]
    value: Any
    tangent: Any
    adjoint: Any


class Graph(NamedTuple):
    """Nodes in evaluation order; ``outputs`` names the function's outputs."""

    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]

    def __str__(self) -> str:
        fmt = lambda x: "0" if x is None else np.array2string(np.asarray(x), precision=6)
        rows = [("node", "primitive", "inputs", "value", "tangent", "adjoint")]
        for n in self.nodes:
            rows.append(
                (
                    n.name,
                    n.primitive,
                    ", ".join(n.inputs),
                    fmt(n.value),
                    fmt(n.tangent),
                    fmt(n.adjoint),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([*lines, f"outputs: {', '.join(self.outputs)}"])

    def to_dot(self) -> str:
        """The graph in Graphviz's dot language (``dot -Tpng``): one box per node."""
        lines = ["digraph {", "  rankdir=LR;"]
        for n in self.nodes:
            label = f"{n.name} = {n.primitive}\\nvalue {np.asarray(n.value)!s:.12}"
            lines.append(f'  {n.name} [shape=box, label="{label}"];')
            for i in n.inputs:
                if i in {m.name for m in self.nodes}:
                    lines.append(f"  {i} -> {n.name};")
        lines.append("}")
        return "\n".join(lines)


def trace(
    f: Callable, *args: PyTree, tangents: PyTree | None = None, cotangent: PyTree | None = None
) -> Graph:
    """Evaluate ``f(*args)`` node by node: values, forward tangents, backward adjoints.

    ``tangents`` (like ``args``; default: ones) seeds forward mode; ``cotangent`` (like the
    output; default: ones) seeds reverse mode. Each node's ``tangent`` is the directional
    derivative of its value, each ``adjoint`` the derivative of ``<cotangent, output>``
    with respect to it: the two sweeps of the lecture. Works on the top-level primitives
    of ``f`` (a nested ``jit`` call is one node).

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> def L(w1, w2):
      ...     v2 = w2 * jnp.log(w1)
      ...     return v2 + jnp.sqrt(v2)
      >>> g = jaxls.ad.trace(L, 2.0, 5.0, tangents=(1.0, 0.0))
      >>> print(" ".join(f"{n.name}={n.primitive}" for n in g.nodes))
      w1=input w2=input v1=log v2=mul v3=sqrt v4=add
      >>> print(round(float(g.nodes[0].adjoint), 6), round(float(g.nodes[-1].tangent), 6))
      3.171448 3.171448
    """
    if not callable(f):
        raise TypeError(
            f"jaxls.ad.trace: `fun` must be callable, got {f!r} (a {type(f).__name__})."
        )
    with traced_values("trace"):
        c, _, _ = jx.make_jaxpr(f, *args)
    flat, flat_t = _seeds(c, args, tangents)
    names = _name_inputs(f, c)
    nodes = [
        [names[var], "input", (), value, tangent]
        for var, value, tangent in zip(c.jaxpr.invars, flat, flat_t, strict=True)
    ]
    outs, _ = jvp_closed(c, flat, flat_t, record=_node_recorder(names, nodes))
    adjoints = _adjoints(c, flat, outs, cotangent)
    by_name = {names[v]: a for v, a in adjoints.items() if v in names}
    # An output read directly from an input or several times: its adjoint is the seed.
    result = tuple(Node(n, p, i, v, t, by_name.get(n)) for n, p, i, v, t in nodes)
    return Graph(result, tuple(_label(names, a) for a in c.jaxpr.outvars))


def _seeds(c: jx.Closed, args, tangents) -> tuple[list, list]:
    """The flat inputs in the jaxpr's dtypes, and their forward-mode seeds (default: ones;
    ``None`` for integer inputs, which have no tangent)."""
    flat = [
        jnp.asarray(p, v.aval.dtype)
        for p, v in zip(jax.tree.leaves(args), c.jaxpr.invars, strict=True)
    ]
    if tangents is None:
        tangents = jax.tree.map(jnp.ones_like, args)
    flat_t = [
        jnp.asarray(t, p.dtype) if jnp.issubdtype(p.dtype, jnp.inexact) else None
        for t, p in zip(jax.tree.leaves(tuple(tangents)), flat, strict=True)
    ]
    return flat, flat_t


def _name_inputs(f: Callable, c: jx.Closed) -> dict:
    """Labels of the jaxpr's inputs (``f``'s parameter names when they match the flat
    inputs one to one, else ``x1``, ``x2``, ...) and of its constants."""
    try:
        params = list(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        params = []
    invars = c.jaxpr.invars
    names = {}
    for k, var in enumerate(invars):
        names[var] = params[k] if len(params) == len(invars) else f"x{k + 1}"
    for var in c.jaxpr.constvars:
        names[var] = f"const{len(names)}"
    return names


def _label(names: dict, atom) -> str:
    return str(jx.literal_value(atom)) if jx.is_literal(atom) else names[atom]


def _node_recorder(names: dict, nodes: list) -> Callable:
    """The forward interpreter's recording hook: one node ``v1``, ``v2``, ... per output of
    each top-level equation, with its value and tangent, appended to ``nodes``."""
    counter = itertools.count(1)

    def record(eqn, outs, touts):
        labels = tuple(_label(names, a) for a in eqn.invars)
        for var, value, tangent in zip(eqn.outvars, outs, touts, strict=True):
            if not jx.is_drop(var):
                names[var] = f"v{next(counter)}"
                nodes.append([names[var], jx.name(eqn), labels, value, tangent])

    return record


def _adjoints(c: jx.Closed, flat: list, outs: list, cotangent) -> dict:
    """Reverse mode seeded with ``cotangent`` (default: ones): the final adjoint of every
    variable of the jaxpr that gets one."""
    if cotangent is None:
        cts = [jnp.ones_like(o) for o in outs]
    else:
        cts = [
            jnp.asarray(x, jnp.result_type(o))
            for x, o in zip(jax.tree.leaves(cotangent), outs, strict=True)
        ]
    is_float = [jnp.issubdtype(p.dtype, jnp.inexact) for p in flat]
    adjoints = {}
    _, tape = forward_sweep(c, flat, is_float)
    backward_sweep(c, tape, cts, record=adjoints)
    return adjoints


__all__ = ["Graph", "Node", "trace"]
