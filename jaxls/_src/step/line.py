"""The objective restricted to a line: ``phi(t) = f(x + t d)`` and ``phi'(t)``, on pytrees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src.tree import tree_axpy


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


def real_dtype(dtype):
    """The real floating dtype of ``dtype`` (float32 for complex64)."""
    return jnp.finfo(dtype).dtype


def split_aux(out, has_aux: bool):
    """``(value, aux)`` of an objective's output (``aux`` None without ``has_aux``)."""
    return out if has_aux else (out, None)


class Trial(NamedTuple):
    """A trial (one call of the objective) and how to get its gradient.

    ``point`` has ``phi(t)`` and aux (value-only: ``slope`` NaN, ``grad`` zeros);
    ``finite``: whether what the call computed is finite. ``complete(need)`` returns
    ``(point, calls, grads)``: where ``need`` (a boolean, may be traced) the point with its
    gradient and slope; how many more calls of the objective that took (0 or 1); and how many
    gradients the trial computed in all (0 or 1).
    """

    point: LinePoint
    finite: jax.Array
    complete: Callable


def restrict(
    value_and_grad: Callable, value_fn: Callable, x, direction, dtype, has_aux, *, trials: str
):
    """``phi(t) -> LinePoint`` (value and gradient, one call at ``x + t direction``) and
    ``phi_trial(t, gradient=False) -> Trial`` (the value, one call; the gradient on demand,
    or with ``gradient`` computed by that call). Values and slopes in ``dtype``.

    ``trials`` says how a value-only trial gets its gradient: ``"linearize"`` evaluates
    ``value_fn`` under `jax.vjp`, so the gradient is the transpose of that call's
    linearisation, no further call (optax's backtracking does the same with
    `jax.linearize`); ``"call"`` calls ``value_and_grad`` once more (a user's own gradient);
    ``"full"`` calls ``value_and_grad`` at every trial (no value-only function was given).
    """

    def point(t, value, grad, aux, known=True) -> LinePoint:
        slope = directional_derivative(grad, direction, dtype)
        slope = jnp.where(known, slope, jnp.nan).astype(dtype)
        return LinePoint(jnp.asarray(t, dtype), jnp.asarray(value).astype(dtype), slope, grad, aux)

    def phi(t) -> LinePoint:
        out, grad = value_and_grad(tree_axpy(t, direction, x))
        value, aux = split_aux(out, has_aux)
        return point(t, value, grad, aux)

    def zero_grad():
        return jax.tree.map(jnp.zeros_like, x)

    def phi_trial(t, gradient: bool = False) -> Trial:
        y = tree_axpy(t, direction, x)
        nan = jnp.asarray(jnp.nan, dtype)
        no_calls, one = jnp.zeros((), jnp.int32), jnp.ones((), jnp.int32)
        if gradient:  # value and gradient in one call
            full = phi(t)
            finite = jnp.isfinite(full.value) & jnp.isfinite(full.slope)
            return Trial(full, finite, lambda need: (full, no_calls, one))
        if trials == "full":  # the gradient is known: only the slope is withheld
            full = phi(t)
            finite = jnp.isfinite(full.value)
            return Trial(full._replace(slope=nan), finite, lambda need: (full, no_calls, one))
        if trials == "linearize":
            if has_aux:
                value, pullback, aux = jax.vjp(value_fn, y, has_aux=True)
            else:
                (value, pullback), aux = jax.vjp(value_fn, y), None

            def complete(need):
                grad = jax.lax.cond(need, lambda: pullback(jnp.ones_like(value))[0], zero_grad)
                return point(t, value, grad, aux, need), no_calls, jnp.asarray(need, jnp.int32)

        else:
            value, aux = split_aux(value_fn(y), has_aux)

            def complete(need):
                def call():  # a user's gradient, in the dtypes of x's leaves
                    return jax.tree.map(lambda g, a: g.astype(a.dtype), value_and_grad(y)[1], x)

                grad = jax.lax.cond(need, call, zero_grad)
                needed = jnp.asarray(need, jnp.int32)
                return point(t, value, grad, aux, need), needed, needed

        plain = LinePoint(jnp.asarray(t, dtype), jnp.asarray(value).astype(dtype), nan, None, aux)
        return Trial(plain._replace(grad=zero_grad()), jnp.isfinite(plain.value), complete)

    return phi, phi_trial
