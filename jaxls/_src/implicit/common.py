"""What the derivative rules of the searches and of `minimize` share.

Every jaxls search is a `lax.while_loop` (or a `lax.scan`), which JAX cannot differentiate
in reverse mode (jax issue 4106) and which would give the derivative of the iterations, not
of the answer, in forward mode. So each search is a `jax.custom_jvp` function whose rule
computes its answer's derivative from the answer (`interval.py`: the implicit function
theorem on an exact minimiser; `step.py`: the step held constant; `solution.py`: the
implicit function theorem on ``grad f(x*, theta) = 0``), with O(1) more evaluations of
derivatives of the objective and nothing of the loop kept.

The objective's parameters ``theta`` are usually closed over (``lambda x: f(x, theta)``),
and a custom JVP rule only sees its explicit arguments: `hoist` makes the closed-over
values that may carry a derivative explicit (`jax.closure_convert`), so that ``jax.grad``
with respect to ``theta`` reaches the rule. The rule is linear in the tangents, so JAX (and
`jaxls.ad`) transpose it for reverse mode. A derivative that does not exist is NaN with
respect to every input, in both modes: `poison` adds ``NaN * (the sum of every input
tangent)`` there, which is linear, so that its transpose carries the NaN to every input.
(Multiplying the output tangent by NaN would reach, in reverse mode, only the inputs the
tangent formula happens to depend on; a ``jnp.where`` would transpose to a silent zero.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def hoist(fun: Callable, *example_args) -> tuple[Callable, list[Any]]:
    """``(converted, consts)``: ``converted(*args, *consts) == fun(*args)``, with every
    closed-over value that may carry a derivative (a tracer) among ``consts``.

    ``example_args`` fix the shapes and dtypes ``converted`` takes (`jax.closure_convert`).
    """
    return jax.closure_convert(fun, *example_args)


def bind(converted: Callable, consts) -> Callable:
    """``x -> converted(x, *consts)``: the function `hoist` converted, its values given."""
    return functools.partial(_apply, converted, consts)


def _apply(converted: Callable, consts, x):
    return converted(x, *consts)


def traced(value) -> bool:
    """Whether a (pytree) value holds a tracer: it may carry a derivative."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def split_traced(options: dict, keep: tuple = ()) -> tuple[dict, dict]:
    """``(dynamic, static)``: the options holding a tracer (to pass to a custom JVP
    function explicitly: it must not close over a value that may carry a derivative), and
    the rest (Python configuration, kept concrete for the searches' eager checks; ``keep``
    names options that stay there whatever they hold, such as functions)."""
    dynamic = {k: v for k, v in options.items() if k not in keep and traced(v)}
    return dynamic, {k: v for k, v in options.items() if k not in dynamic}


def nan_unless(ok, dtype) -> jax.Array:
    """1 where ``ok``, NaN elsewhere, in ``dtype``: multiply a tangent by it."""
    return jnp.where(ok, 1, np.nan).astype(dtype)


def poison(ok, dtype, *tangents) -> jax.Array:
    """0 where ``ok``, else NaN, times the sum of every (floating) input tangent: added to
    an output tangent, it leaves it as it is where ``ok`` and makes it NaN elsewhere, with
    respect to every input and in reverse mode too (module docstring)."""
    leaves = [t for t in jax.tree.leaves(tangents) if jnp.result_type(t) != jax.dtypes.float0]
    total = sum((jnp.sum(t).astype(dtype) for t in leaves), jnp.zeros((), dtype))
    return jnp.where(ok, 0, np.nan).astype(dtype) * total


def poisoned(tangent, bad, like):
    """``tangent + bad`` (a `poison`) leaf by leaf, in the dtypes of ``like`` (`cast_like`);
    ``float0`` tangents (of integer outputs) as they are."""

    def one(t):
        t = jnp.asarray(t)
        return t if t.dtype == jax.dtypes.float0 else t + bad.astype(t.dtype)

    return cast_like(jax.tree.map(one, tangent), like)


def zero_tangent(value):
    """The tangent of an output that carries no derivative: zeros (``float0`` for integer
    and boolean outputs, as JAX wants them), leaf by leaf."""

    def zero(leaf):
        leaf = jnp.asarray(leaf)
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            return jnp.zeros_like(leaf)
        return np.zeros(leaf.shape, jax.dtypes.float0)

    return jax.tree.map(zero, value)


def cast_like(tangent, like):
    """``tangent`` leaf by leaf in the dtypes of ``like`` (a rule's tangent must have the
    dtype of its output); ``float0`` tangents (of integer outputs) as they are."""

    def one(t, x):
        t = jnp.asarray(t)
        return t if t.dtype == jax.dtypes.float0 else t.astype(jnp.result_type(x))

    return jax.tree.map(one, tangent, like)


def scale(tree, factor):
    """``factor * tree`` leaf by leaf, each leaf keeping its dtype."""
    return jax.tree.map(lambda leaf: (leaf * factor.astype(leaf.dtype)).astype(leaf.dtype), tree)


__all__ = [
    "bind",
    "cast_like",
    "hoist",
    "nan_unless",
    "poison",
    "poisoned",
    "scale",
    "split_traced",
    "traced",
    "zero_tangent",
]
