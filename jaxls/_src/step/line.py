"""The objective restricted to a line: ``phi(t) = f(x + t d)`` and ``phi'(t)``, on pytrees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class LinePoint(NamedTuple):
    """A trial step and what one evaluation there gives: ``phi(t)``, ``phi'(t)``, the gradient."""

    step: jax.Array
    value: jax.Array
    slope: jax.Array
    grad: Any


def tree_vdot(a, b) -> jax.Array:
    """``<a, b>`` summed over the leaves of two pytrees of the same structure."""
    products = [jnp.vdot(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)]
    return sum(products[1:], products[0])


def tree_axpy(t, d, x):
    """``x + t d`` leaf by leaf, each leaf keeping its dtype (and, under jit, its sharding)."""
    return jax.tree.map(lambda xi, di: (xi + jnp.asarray(t, xi.dtype) * di).astype(xi.dtype), x, d)


def restrict(value_and_grad: Callable, x, direction, dtype) -> Callable:
    """``phi(t) -> LinePoint``: one call of ``value_and_grad`` at ``x + t direction``."""

    def phi(t) -> LinePoint:
        value, grad = value_and_grad(tree_axpy(t, direction, x))
        value = jnp.asarray(value)
        if value.shape != ():
            raise TypeError(f"the objective must return a scalar, got shape {value.shape}")
        return LinePoint(
            jnp.asarray(t, dtype),
            value.astype(dtype),
            tree_vdot(grad, direction).astype(dtype),
            grad,
        )

    return phi
