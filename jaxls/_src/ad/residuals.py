r"""What reverse mode stores: the arrays the tape of `jaxls.ad.vjp` keeps, one by one.

``vjp(f, *args)`` runs a forward sweep that keeps what its backward sweep will read (the
tape, `reverse`): of each equation that touches a differentiated value, what its VJP rule
declares it reads (`registry.Reads`), and the residuals of the higher-order ones (the
callee's tape of a ``jit`` call, a scan's stacked tapes, what a `jaxls.ad.checkpoint`
policy saves). `saved_residuals` lists those arrays, each once (an array two equations
read is stored once), with its shape, dtype, size in bytes and where it comes from, as
``jax.ad_checkpoint.print_saved_residuals`` lists jax's. It traces, evaluates nothing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.tree_util import keystr

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.api import (
    _check_fun,
    _check_max_loop_steps,
    _dtype,
    _is_float,
    _leaves,
    _primals,
    traced_values,
)
from jaxls._src.ad.reverse import Tape, forward_sweep
from jaxls._src.results import PyTree


class Residual(NamedTuple):
    """One array the tape keeps.

    Attributes:
      shape: its shape (a scan's stacked tape has the iterations first).
      dtype: its dtype.
      bytes: its size, ``prod(shape) * dtype.itemsize``.
      description: what it is: ``argument x``, ``output of sin at f.py:3:11 (f)``, ``output
        of tanh at f.py:5:15 (body) in scan at f.py:8:9 (f)``, ``residual of while ...``.
      source: where the equation that computed it was traced from, as jax's
        ``print_saved_residuals`` names it (``file.py:line:column (function)``; empty for an
        argument).
    """

    shape: tuple[int, ...]
    dtype: Any
    bytes: int
    description: str
    source: str


class Residuals(list):
    """The `Residual` list `saved_residuals` returns, with their total; ``str()`` is a table."""

    @property
    def total_bytes(self) -> int:
        """The bytes the tape keeps, all arrays together."""
        return sum(r.bytes for r in self)

    def __str__(self) -> str:
        rows = [(_short(r), f"{r.bytes:,}", r.description) for r in self]
        rows.append(("total", f"{self.total_bytes:,}", f"{len(self)} arrays"))
        widths = [max(len(row[k]) for row in rows) for k in range(2)]
        lines = [f"{s.ljust(widths[0])}  {b.rjust(widths[1])}  {d}" for s, b, d in rows]
        return "\n".join(lines)


def _short(r: Residual) -> str:
    """``f32[3,4]``, as jax prints an abstract value."""
    try:
        return jax.core.ShapedArray(r.shape, r.dtype).str_short(short_dtypes=True)
    except TypeError:  # an extended dtype (a PRNG key)
        return f"{r.dtype}{list(r.shape)}".replace(" ", "")


def saved_residuals(
    fun: Callable, *args: PyTree, max_loop_steps: int | None = None, **kwargs: Any
) -> Residuals:
    r"""The arrays ``jaxls.ad.vjp(fun, *args)`` keeps for its backward sweep, one by one.

    Computed abstractly (`jax.eval_shape` of the forward sweep: nothing is evaluated). Every
    floating leaf of ``args`` is differentiated, as in ``jax.ad_checkpoint.saved_residuals``;
    keyword arguments are passed to ``fun`` and not differentiated (jax differentiates them
    too). Each array is listed once, where it is first kept (arguments first, then in the
    order of the equations), residuals of higher-order primitives included: a jit call's
    tape, a scan's and a while loop's stacked tapes (one entry per array, with the
    iterations first), what a `checkpoint` policy saves. The total,
    ``Residuals.total_bytes``, is the memory the tape holds between the forward and the
    backward sweep.

    Args:
      fun: the function, of pytrees of arrays.
      *args: the point (arrays or `jax.ShapeDtypeStruct`\ s).
      max_loop_steps: the bound on ``lax.while_loop`` iterations reverse mode records, as
        in `jaxls.ad.vjp` (traced, a loop needs one).
      **kwargs: passed to ``fun``.

    Returns:
      A `Residuals`, a list of `Residual` (shape, dtype, bytes, description, source) with
      ``total_bytes``; ``print(result)`` shows them as a table.

    Raises:
      TypeError, ValueError: ``fun`` not callable, an argument that is not a JAX type, a bad
        ``max_loop_steps`` (naming the call); `NotImplementedError` for a while loop without
        ``max_loop_steps``, as `jaxls.ad.vjp` under `jax.jit`.

    Example:
      ``sin`` keeps its input, ``exp`` its output, ``mul`` the operand paired with the
      other (here both), the sum nothing:

      >>> import jax.numpy as jnp, jaxls.ad
      >>> f = lambda x, y: jnp.sum(jnp.sin(x) * jnp.exp(y))
      >>> res = jaxls.ad.saved_residuals(f, jnp.ones(3), jnp.ones(3))
      >>> [r.description.split(" at ")[0] for r in res]
      ['argument x', 'output of sin', 'output of exp']
      >>> res.total_bytes
      36
      >>> print(res)  # doctest: +ELLIPSIS
      f32[3]  12  argument x
      f32[3]  12  output of sin at ...
      f32[3]  12  output of exp at ...
      total   36  3 arrays
    """
    call = "saved_residuals"
    _check_fun(call, fun)
    steps = _check_max_loop_steps(call, max_loop_steps)
    g = functools.partial(fun, **kwargs) if kwargs else fun
    labelled = [x for i, p in enumerate(args) for x in _leaves(call, "argument", i, p)]
    with traced_values(call):
        c, _, _ = jx.make_jaxpr(g, *args, call=call)
    names = _argument_names(fun, args)
    found: list[tuple[tuple, Any, str, str]] = []

    def sweep(*flat):
        primals = _primals(c, flat)
        active = [_is_float(_dtype(p)) for p in primals]
        _, tape = forward_sweep(c, primals, active, max_loop_steps=steps)
        found.extend(_Describer(c, names).tape(tape, c.jaxpr, (), ""))

    with traced_values(call):
        jax.eval_shape(sweep, *[leaf for _, leaf in labelled])
    result, seen = Residuals(), set()
    for _, leaf, description, source in sorted(found, key=lambda row: row[0]):
        if id(leaf) in seen:
            continue
        seen.add(id(leaf))
        shape, dtype = tuple(np.shape(leaf)), _dtype(leaf)
        size = int(np.prod(shape, dtype=int)) * getattr(dtype, "itemsize", 0)
        result.append(Residual(shape, dtype, size, description, source))
    return result


def print_saved_residuals(
    fun: Callable, *args: PyTree, max_loop_steps: int | None = None, **kwargs: Any
) -> None:
    """Print `saved_residuals` as a table, with the total (as
    ``jax.ad_checkpoint.print_saved_residuals`` prints jax's).

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> jaxls.ad.print_saved_residuals(lambda x: jnp.sum(x * x), jnp.ones(2))
      f32[2]   8  argument x
      total    8  1 arrays
    """
    print(saved_residuals(fun, *args, max_loop_steps=max_loop_steps, **kwargs))


def _argument_names(fun: Callable, args: tuple) -> list[str]:
    """A label per flat input: ``x``, ``params['w']`` (``fun``'s parameter names where its
    signature binds the arguments, else ``argument 0``)."""
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    labels = []
    for i, arg in enumerate(args):
        name = positional[i] if i < len(positional) else f"argument {i}"
        labels += [name + keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(arg)]
    return labels


class _Describer:
    """Rows ``(sort key, leaf, description, source)`` for the arrays of a tape, found by
    walking it with the jaxprs it was recorded from: a variable names its equation. The
    keys order the arguments first, then the equations (a sub-jaxpr's at its equation).

    A variable is described per place its jaxpr is called from, ``(prefix, variable)``, the
    prefix being the sort key of the calling equation: one jaxpr called twice (a function
    under `jaxls.ad.checkpoint` applied twice) has the same variables in both calls, whose
    inputs are different arrays."""

    def __init__(self, c: jx.Closed, names: list[str]):
        self.where: dict = {}  # (prefix, variable) -> (sort key, description, source)
        self.owner: dict = {}  # variable -> the jaxpr defining it
        for k, var in enumerate(c.jaxpr.invars):
            self.where[(), var] = ((0, k), f"argument {names[k]}", "")
        for k, var in enumerate(c.jaxpr.constvars):
            self.where[(), var] = ((1, k), "constant", "")
        self._index(c.jaxpr, (), "", None, ())

    def _index(self, jaxpr, prefix: tuple, context: str, caller, outer: tuple) -> None:
        """Describe the variables of ``jaxpr`` and of the jaxprs its equations hold;
        ``caller``: the equation holding it (in the jaxpr of prefix ``outer``),
        ``context``: `` in scan at f.py:8:9 (f)``."""
        for var in (*jaxpr.invars, *jaxpr.constvars):
            self.owner[var] = jaxpr
        if caller is not None:
            src = jx.source_summary(caller)
            around = context.removeprefix(f" in {_equation(caller)} at {src}")
            # A call's inputs are the caller's (a scan's or a loop's are slices, carries).
            passed = jx.name(caller) in jx.CALLS | jx.REMAT | jx.CUSTOM_JVP
            passed = passed and len(jaxpr.invars) == len(caller.invars)
            for k, var in enumerate(jaxpr.invars):
                arg = caller.invars[k] if passed else None
                if arg is not None and not jx.is_literal(arg) and (outer, arg) in self.where:
                    self.where[prefix, var] = self.where[outer, arg]
                else:
                    description = f"input {k} of {_equation(caller)} at {src}{around}"
                    self.where[prefix, var] = ((*prefix, 0, k), description, src)
            for k, var in enumerate(jaxpr.constvars):
                description = f"constant of {_equation(caller)} at {src}{around}"
                self.where[prefix, var] = ((*prefix, 1, k), description, src)
        for i, eqn in enumerate(jaxpr.eqns):
            src = jx.source_summary(eqn)
            for j, var in enumerate(eqn.outvars):
                self.owner[var] = jaxpr
                description = f"output of {jx.name(eqn)} at {src}{context}"
                self.where[prefix, var] = ((*prefix, 2, i, 0, j), description, src)
            inner = f" in {_equation(eqn)} at {src}{context}"
            for sub in jx.sub_jaxprs(eqn):
                self._index(sub, (*prefix, 2, i, 1), inner, eqn, prefix)

    def tape(self, tape: Tape, jaxpr, prefix: tuple, context: str) -> list:
        """The rows of a tape recorded from ``jaxpr`` (None: unknown, found from its keys);
        ``prefix``: the sort key of the equation keeping it."""
        if jaxpr is None:
            jaxpr = next((self.owner[k] for k in tape.values if k in self.owner), None)
        rows = []
        for key, leaf in tape.values.items():
            if (prefix, key) in self.where:
                order, description, source = self.where[prefix, key]
            else:  # an unused output, or a jaxpr made on the fly (not an equation's parameter)
                order, description, source = (*prefix, 3), f"value{context}", ""
            rows += [(order, x, description, source) for x in jax.tree.leaves(leaf)]
        for i, sub in tape.subs.items():
            eqn = None if jaxpr is None else jaxpr.eqns[i]
            key = (*prefix, 2, i)
            if eqn is not None and eqn.outvars and (prefix, eqn.outvars[0]) in self.where:
                key = self.where[prefix, eqn.outvars[0]][0][:-2]  # the equation's sort key
            rows += self.residuals(sub, eqn, (*key, 1), context)
        return rows

    def residuals(self, sub, eqn, prefix: tuple, context: str) -> list:
        """The rows of the residuals one higher-order equation keeps: the tapes they hold,
        walked with the equation's jaxprs, and any other array, described by the equation."""
        src = "" if eqn is None else jx.source_summary(eqn)
        owner = "an equation" if eqn is None else f"{_equation(eqn)} at {src}"
        inner = [] if eqn is None else jx.sub_jaxprs(eqn)
        rows = []
        parts = jax.tree.leaves(sub, is_leaf=lambda x: isinstance(x, Tape))
        for k, part in enumerate(parts):
            if isinstance(part, Tape):
                jaxpr = inner[0] if len(inner) == 1 else None
                rows += self.tape(part, jaxpr, prefix, f" in {owner}{context}")
            else:
                rows.append(((*prefix, 4, k), part, f"residual of {owner}{context}", src))
        return rows


def _equation(eqn) -> str:
    """``scan``, ``jit 'f'``: how a higher-order equation is named in a description."""
    name = jx.name(eqn)
    return f"{name} '{jx.call_name(eqn)}'" if name in jx.CALLS | jx.CUSTOM_JVP else name


__all__ = ["Residual", "Residuals", "print_saved_residuals", "saved_residuals"]
