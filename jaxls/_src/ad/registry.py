"""Rule tables of the hand-written AD: one JVP rule and one VJP rule per primitive.

Rules are looked up by primitive *name* (``"sin"``, ``"dot_general"``), which is stable
across JAX releases where the primitive objects move between modules.

* A JVP rule is ``jvp(primals, tangents, out, **params) -> tangent_out``. ``primals`` and
  ``tangents`` are tuples aligned with the equation's inputs; a tangent is ``None`` when it
  is a symbolic zero (an input that does not depend on the differentiated arguments, or an
  integer input). ``out`` is the primal output, already computed by the interpreter (a
  list for primitives with several results). It returns the output tangent (``None`` for a
  zero tangent; a list for several results).
* A primitive whose derivative is zero (``sign``, comparisons, ``stop_gradient``) is also
  listed in ``nondifferentiable``: its outputs are never active, so reverse mode neither
  records it nor sends adjoints through it.
* A VJP rule is ``vjp(cts, primals, out, **params) -> cts_in``: ``cts`` is the cotangent of
  the output (for several results, a list with ``None`` for zero cotangents; for one
  result, never ``None``: the interpreter skips equations whose outputs have no
  cotangent). It returns one cotangent per input, ``None`` where there is none (integer
  inputs, or inputs the output does not depend on differentiably).

Rules build their results with `jax.lax` / `jax.numpy` operations, so they work eagerly,
under `jax.jit` and `jax.vmap`, and their output can be differentiated again (every
primitive a VJP rule emits must itself have a JVP rule: tested).
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from jax import lax

jvp_rules: dict[str, Callable] = {}
vjp_rules: dict[str, Callable] = {}
nondifferentiable: set[str] = set()


def defjvp(*names: str):
    """Register the decorated function as the JVP rule of the primitives ``names``."""

    def register(rule):
        for name in names:
            jvp_rules[name] = rule
        return rule

    return register


def defvjp(*names: str):
    """Register the decorated function as the VJP rule of the primitives ``names``."""

    def register(rule):
        for name in names:
            vjp_rules[name] = rule
        return rule

    return register


def dtype_of(x) -> np.dtype:
    """The dtype of an array, tracer, NumPy value or Python scalar (``x.dtype`` first:
    ``np.result_type`` of a concrete ``jax.Array`` is deprecated)."""
    dtype = getattr(x, "dtype", None)
    return np.result_type(x) if dtype is None else np.dtype(dtype)


def is_float(x) -> bool:
    """Whether ``x`` has an inexact dtype (only those carry tangents and cotangents).

    `jnp.issubdtype`, not NumPy's: NumPy does not count bfloat16 (nor JAX's other extended
    floats) as inexact, and reverse mode dropped their adjoints."""
    return bool(jnp.issubdtype(dtype_of(x), jnp.inexact))


def zeros_like(x):
    """A materialised zero tangent for the primal ``x`` (``lax.full``: no nested ``jit``)."""
    return lax.full(np.shape(x), 0, dtype_of(x))


def instantiate(tangent, primal):
    """``tangent``, or zeros shaped like ``primal`` if it is the symbolic zero ``None``."""
    return zeros_like(primal) if tangent is None else tangent


def add(a, b):
    """Sum of two tangents or cotangents, either possibly ``None`` (zero)."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


__all__ = [
    "add",
    "defjvp",
    "defvjp",
    "dtype_of",
    "instantiate",
    "is_float",
    "jvp_rules",
    "nondifferentiable",
    "vjp_rules",
    "zeros_like",
]
