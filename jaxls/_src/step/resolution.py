"""The step resolution of a line: the steps ``t`` at which ``x + t d`` moves off ``x``.

A trial point is computed leaf by leaf as ``x_i + t d_i`` (`jaxls._src.tree.tree_axpy`,
``t`` cast to the leaf's dtype). It rounds back to ``x_i`` while ``|t d_i|`` is less than half
the gap between ``x_i`` and the next floating number on the side ``d_i`` points to, and moves
once ``|t d_i|`` is more than that (and, on hardware that flushes subnormal numbers to zero,
at least the smallest normal number). So with ``r = min_i gap_i / (2 |d_i|)``:

* for ``t < r`` the trial point is ``x`` itself, its value and gradient are those at ``x``
  (``phi(t) = phi(0)``, ``phi'(t) = phi'(0)``), and evaluating it only spends a call;
* for ``t > r`` at least one entry has moved.

Near a minimiser in float32 this is where a line search ends up: at ``x`` one ulp from
``(1, 1)`` on Rosenbrock's function with ``|d| ~ 1e-7``, every trial below ``t ~ 0.3`` is
``x``. `line_resolution` computes both bounds, ``r`` lowered (``still``) and raised
(``moves``) by a few ulps for the rounding of ``t`` to the leaf's dtype and of the product
``t d_i``, so that each holds exactly; a search computes them once, on demand
(`jaxls._src.step.common.Start.resolution`, along the direction its ``phi`` steps along).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src.step.line import real_dtype

# Relative margin, in ulps of a leaf's dtype, for the rounding of t and of t * d_i.
MARGIN_ULPS = 4


class Resolution(NamedTuple):
    """Steps along a line: every ``t < still`` leaves ``x`` unchanged, every ``t >= moves``
    changes some entry. ``still <= moves``; both are ``+inf`` for a zero direction."""

    still: jax.Array
    moves: jax.Array


def _entries(x, d, dtype) -> Resolution:
    """The bounds over the entries of a real leaf, in ``dtype`` (computed in at least its
    precision); an entry with ``d_i = 0`` never moves (``+inf``), one whose gap is not
    finite (``x_i`` NaN or the largest finite number) gives no bound (0)."""
    wide = jnp.promote_types(x.dtype, dtype)
    toward = jnp.where(d < 0, -jnp.inf, jnp.inf).astype(x.dtype)
    gap = jnp.abs(jnp.nextafter(x, toward) - x).astype(wide)
    speed = jnp.abs(d).astype(wide)
    finfo = jnp.finfo(x.dtype)
    margin = jnp.asarray(MARGIN_ULPS * finfo.eps, wide)
    # Half a gap is a power of two, or 0 for the smallest subnormal: exact.
    still = gap / 2 / speed * (1 - margin)
    moves = jnp.maximum(gap / 2, jnp.asarray(finfo.tiny, wide)) / speed * (1 + margin)

    def bound(b):
        b = jnp.where(d == 0, jnp.inf, jnp.where(jnp.isfinite(gap), b, 0))
        return jnp.min(b, initial=jnp.inf).astype(dtype)

    return Resolution(bound(still), bound(moves))


def line_resolution(x, direction, dtype) -> Resolution:
    """The `Resolution` of the line ``x + t d`` (``d = direction``), in ``t``, as scalars of
    ``dtype``.

    ``x`` and ``direction`` are pytrees of the same structure, with floating leaves (real or
    complex: the real and imaginary parts move separately). For a search, ``direction`` is
    the one its ``phi`` steps along (`jaxls._src.step.common.Start.resolution`).
    """
    bounds = []
    for xi, di in zip(jax.tree.leaves(x), jax.tree.leaves(direction), strict=True):
        xi, di = jnp.asarray(xi), jnp.asarray(di)
        parts = [(jnp.real(xi), jnp.real(di))]
        if jnp.issubdtype(xi.dtype, jnp.complexfloating):
            parts.append((jnp.imag(xi), jnp.imag(di)))
        bounds += [_entries(a.astype(real_dtype(xi.dtype)), b, dtype) for a, b in parts]
    return Resolution(
        jnp.min(jnp.stack([b.still for b in bounds])),
        jnp.min(jnp.stack([b.moves for b in bounds])),
    )


def step_resolution(x, direction, scale, dtype) -> Resolution:
    """The `Resolution` of ``phi(tau) = f(x + tau d / s)`` (`jaxls._src.step.common.setup`'s
    line, ``s = scale`` a power of two), in ``tau``, as scalars of ``dtype``: `line_resolution`
    with the direction scaled leaf by leaf exactly as ``setup`` scales it, so that the bounds
    are those of the trial points the search evaluates. (A search has that direction already:
    `jaxls._src.step.common.Start.resolution`.)
    """

    def scaled(d):
        d = jnp.asarray(d)
        return (d / scale.astype(real_dtype(d.dtype))).astype(d.dtype)

    return line_resolution(x, jax.tree.map(scaled, direction), dtype)


__all__ = ["Resolution", "line_resolution", "step_resolution"]
