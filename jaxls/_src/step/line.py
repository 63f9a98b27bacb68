"""The objective restricted to a line: ``phi(t) = f(x + t d)`` and ``phi'(t)``, on pytrees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class LinePoint(NamedTuple):
    """A trial step and what one evaluation there gives.

    ``phi(t)``; ``phi'(t)`` and the gradient when the call computed them (a value-only
    call leaves ``slope`` NaN and ``grad`` None); ``aux`` with ``has_aux``, else None.
    """

    step: jax.Array
    value: jax.Array
    slope: jax.Array
    grad: Any
    aux: Any = None


def tree_vdot(a, b) -> jax.Array:
    """``<a, b>`` summed over the leaves of two pytrees of the same structure."""
    products = [jnp.vdot(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)]
    return sum(products[1:], products[0])


def directional_derivative(grad, direction, dtype=None) -> jax.Array:
    """``phi'(t) = Re sum(g * d)`` over the leaves: the derivative of ``f(x + t d)`` in ``t``.

    For real leaves this is ``<g, d>``. For complex leaves, ``jax.grad`` of a real function
    returns ``g = df/da - i df/db`` at ``z = a + i b``, so ``Re(g d)`` is the derivative along
    ``d`` (and ``-conj(g)`` is the steepest-descent direction). With ``dtype`` (a real
    floating dtype), each leaf's products and sum are computed in at least that precision
    (bfloat16 leaves of a float32 search are summed in float32), and the result has it.
    """

    def leaf(g, d):
        if dtype is not None:
            wide = jnp.promote_types(jnp.result_type(g, d), dtype)
            g, d = jnp.asarray(g, wide), jnp.asarray(d, wide)
        # A product and a sum rather than `jnp.vdot`, whose contraction of leaves sharded
        # along explicit mesh axes needs an output sharding; the sum is replicated.
        return jnp.sum(jnp.real(g * d))

    products = [
        leaf(g, d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction), strict=True)
    ]
    total = sum(products[1:], products[0])
    return total if dtype is None else total.astype(dtype)


def tree_axpy(t, d, x):
    """``x + t d`` leaf by leaf, each leaf keeping its dtype (and, under jit, its sharding)."""
    return jax.tree.map(lambda xi, di: (xi + jnp.asarray(t, xi.dtype) * di).astype(xi.dtype), x, d)


def real_dtype(dtype):
    """The real floating dtype of ``dtype`` (float32 for complex64)."""
    return jnp.finfo(dtype).dtype


def split_aux(out, has_aux: bool):
    """``(value, aux)`` of an objective's output (``aux`` None without ``has_aux``)."""
    return out if has_aux else (out, None)


def restrict(value_and_grad: Callable, value_fn: Callable, x, direction, dtype, has_aux):
    """``phi(t) -> LinePoint`` (value and gradient) and ``phi_value(t) -> LinePoint`` (value
    only), one call each at ``x + t direction``; values and slopes in ``dtype``."""

    def phi(t) -> LinePoint:
        out, grad = value_and_grad(tree_axpy(t, direction, x))
        value, aux = split_aux(out, has_aux)
        return LinePoint(
            jnp.asarray(t, dtype),
            jnp.asarray(value).astype(dtype),
            directional_derivative(grad, direction, dtype),
            grad,
            aux,
        )

    def phi_value(t) -> LinePoint:
        value, aux = split_aux(value_fn(tree_axpy(t, direction, x)), has_aux)
        nan = jnp.asarray(jnp.nan, dtype)
        return LinePoint(jnp.asarray(t, dtype), jnp.asarray(value).astype(dtype), nan, None, aux)

    return phi, phi_value
