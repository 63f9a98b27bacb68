"""Arithmetic on pytrees of arrays, leaf by leaf: what the searches and the optax rules share."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def tree_vdot(a, b) -> jax.Array:
    """``<a, b>`` summed over the leaves of two pytrees of the same structure."""
    products = [jnp.vdot(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)]
    return sum(products[1:], products[0])


def tree_axpy(t, d, x):
    """``x + t d`` leaf by leaf, each leaf keeping its dtype (and, under jit, its sharding)."""
    return jax.tree.map(lambda xi, di: (xi + jnp.asarray(t, xi.dtype) * di).astype(xi.dtype), x, d)


__all__ = ["tree_axpy", "tree_vdot"]
