r"""The lecture's method: write ``df = <g, dx>``, read off the gradient ``g``.

A differential is linear in ``dx``. The lecture's rules, with ``A``, ``B`` constant
matrices, ``alpha`` a constant number, ``X``, ``Y`` matrix variables and ``phi`` a scalar
one (each is checked as a JVP identity, `differential` against the right-hand side, on
random matrices by the tests):

================================  ========================================================
``dA = 0``                        a constant has no differential
``d(alpha X) = alpha dX``
``d(A X B) = A (dX) B``
``d(X + Y) = dX + dY``
``d(X^T) = (dX)^T``
``d(X Y) = (dX) Y + X (dY)``
``d<X, Y> = <dX, Y> + <X, dY>``    ``<X, Y> = tr(X^T Y)``
``d(X / phi)``                    ``= (phi dX - (d phi) X) / phi^2``
``d(det X)``                      ``= det X <X^{-T}, dX>``
``d(tr X) = <I, dX>``
``d f(g(x)) = (df/dg) dg(x)``     the chain rule
``H = (J(grad f))^T``             (`jacobian`, ``layout="denominator"``)
``d(X^{-1})``                     ``= -X^{-1} (dX) X^{-1}``
================================  ========================================================

Example: ``f(x) = <x, A x> - b^T x + c`` has ``df = <dx, A x> + <x, A dx> - <b, dx> =
<(A + A^T) x - b, dx>``, so ``grad f(x) = (A + A^T) x - b``. `gradient_from_differential`
performs the last step, reading ``g`` off a ``df`` written in code, by transposing the
linear map ``dx -> df(x, dx)`` (reverse mode, `jaxls.ad.vjp`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

import jaxls.ad
from jaxls._src.calculus.conventions import scalar_valued
from jaxls._src.results import PyTree

# The two weights of the linearity test df(x, a u + b v) = a df(x, u) + b df(x, v).
_WEIGHTS = (0.75, -1.25)


def _inner(u: PyTree, v: PyTree):
    """``<u, v>``, summed over the leaves."""
    return sum(jnp.sum(a * b) for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(v), strict=True))


def _random_like(key, x: PyTree) -> PyTree:
    leaves, tree = jax.tree.flatten(x)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        tree,
        [
            jax.random.normal(k, jnp.shape(leaf), jnp.result_type(leaf))
            for k, leaf in zip(keys, leaves, strict=True)
        ],
    )


def linearity_defect(df: Callable, x: PyTree, g: PyTree, key) -> tuple:
    """``(defect, tol)``: how far ``df(x, .)`` is from linear at random ``u``, ``v``, and
    what roundoff allows. ``defect`` is the larger of ``|df(x, a u + b v) - a df(x, u) -
    b df(x, v)|`` and ``|df(x, u) - <g, u>|`` (``g`` the transposed map at ``0``: an
    affine ``df`` has ``g``, but not ``df(x, u) = <g, u>``); ``tol`` is ``sqrt(eps)`` of the
    dtype times the size of the terms."""
    u, v = _random_like(key, x), _random_like(jax.random.fold_in(key, 1), x)
    dtype = jnp.result_type(*jax.tree.leaves(x))
    a, b = (jnp.asarray(w, dtype) for w in _WEIGHTS)
    w = jax.tree.map(lambda p, q: a * p + b * q, u, v)
    du, dv, dw = df(x, u), df(x, v), df(x, w)
    gu = _inner(g, u)
    magnitude = _inner(jax.tree.map(jnp.abs, g), jax.tree.map(jnp.abs, u))
    scale = jnp.maximum(
        jnp.maximum(jnp.abs(a * du) + jnp.abs(b * dv), jnp.abs(dw)),
        jnp.maximum(magnitude, jnp.finfo(dtype).tiny),
    )
    defect = jnp.maximum(jnp.abs(dw - a * du - b * dv), jnp.abs(du - gu))
    return defect, jnp.sqrt(jnp.finfo(dtype).eps) * scale


def gradient_from_differential(df: Callable, x: PyTree, *, key: jax.Array | None = None) -> PyTree:
    r"""The gradient ``g`` that a hand-written differential implies: ``df = <g, dx>``.

    ``df(x, dx)`` is the differential of a scalar function at ``x`` in the direction
    ``dx``, linear in ``dx`` (as the lecture writes it: ``<(A + A^T) x - b, dx>``). The
    gradient is the transpose of the linear map ``dx -> df(x, dx)`` applied to ``1``: one
    reverse sweep (`jaxls.ad.vjp`), whatever ``df``'s form (``tr(B^T dX)``,
    ``<X^{-T}, dX> det X``, ...).

    Before trusting it, ``df`` is tested for linearity in ``dx`` at two random directions
    ``u``, ``v``: ``df(x, a u + b v) = a df(x, u) + b df(x, v)`` and
    ``df(x, u) = <g, u>``, within ``sqrt(eps)`` of the size of the terms (``eps`` of
    ``x``'s dtype). A ``df`` that is not linear (``<dx, dx>``, a forgotten ``dx``, an
    added constant) is refused: with a `ValueError` when called eagerly; under `jax.jit`
    or `jax.vmap`, where Python cannot raise on a value, the gradient is NaN.

    Args:
      df: ``df(x, dx)``, a real scalar, linear in ``dx``.
      x: the point (an array, a matrix, a pytree); floating.
      key: a `jax.random` key for the test directions (default: ``jax.random.key(0)``).

    Returns:
      The gradient, shaped like ``x``.

    Raises:
      TypeError: ``df`` not callable or not returning a real scalar.
      ValueError: ``df`` not linear in ``dx``; each naming
        ``jaxls.calculus.gradient_from_differential``.

    Example:
      The lecture's ``f(X) = <S, X> - log det X``: ``df = <S - X^{-T}, dX>``:

      >>> import jax.numpy as jnp, jaxls.calculus as mc
      >>> S = jnp.array([[1.0, 0.0], [2.0, 1.0]])
      >>> X = jnp.array([[2.0, 0.0], [1.0, 1.0]])
      >>> df = lambda X, dX: jnp.sum(S * dX) - jnp.trace(jnp.linalg.solve(X, dX))
      >>> print(mc.gradient_from_differential(df, X))
      [[0.5 0.5]
       [2.  0. ]]
      >>> mc.gradient_from_differential(lambda X, dX: jnp.sum(dX * dX), X)
      Traceback (most recent call last):
      ...
      ValueError: jaxls.calculus.gradient_from_differential: `df` is not linear in `dx`...
    """
    call = "gradient_from_differential"
    if not callable(df):
        raise TypeError(
            f"jaxls.calculus.{call}: `df` must be callable, df(x, dx), got {df!r} "
            f"(a {type(df).__name__})."
        )
    for leaf in jax.tree.leaves(x):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(
                f"jaxls.calculus.{call}: `x` must be real floating (its leaves), got "
                f"{jnp.result_type(leaf)}."
            )
    linear = scalar_valued(call, df, name="df")
    zeros = jax.tree.map(jnp.zeros_like, x)
    value, pull = jaxls.ad.vjp(lambda dx: linear(x, dx), zeros)
    (g,) = pull(jnp.ones_like(value))
    defect, tol = linearity_defect(linear, x, g, jax.random.key(0) if key is None else key)
    is_linear = defect <= tol
    try:
        concrete = bool(is_linear)
    except jax.errors.ConcretizationTypeError:  # under jit or vmap: NaN, not a raise
        return jax.tree.map(lambda leaf: jnp.where(is_linear, leaf, jnp.nan), g)
    if not concrete:
        raise ValueError(
            f"jaxls.calculus.{call}: `df` is not linear in `dx`: at random directions u, v, "
            f"df(x, a u + b v) - a df(x, u) - b df(x, v) or df(x, u) - <g, u> is "
            f"{float(defect):.3g}, beyond the roundoff allowed ({float(tol):.3g}). A "
            "differential is linear in dx: d<x, x> = 2 <x, dx>, not <dx, dx>; every term "
            "has exactly one dx, and no term none (dA = 0)."
        )
    return g


__all__ = ["gradient_from_differential"]
