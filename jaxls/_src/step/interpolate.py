"""Minimisers of interpolating polynomials, for choosing trial steps.

Each returns NaN when the model has no minimiser (a flat or concave fit, coincident points):
callers test ``jnp.isfinite`` and fall back to a safe step, so nothing divides by zero
unnoticed and no branch is needed.

Reference: Nocedal & Wright (2006), sec. 3.5, eqs. (3.57)-(3.59).
"""

from __future__ import annotations

import jax.numpy as jnp


def _safe_div(num, den):
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), jnp.nan)


def quadratic_minimizer(a, fa, da, b, fb):
    """Minimiser of the parabola through ``(a, fa)`` with slope ``da`` there, and ``(b, fb)``."""
    h = b - a
    curvature = fb - fa - da * h  # = c h^2 for the model fa + da s + c s^2
    x = a - _safe_div(da * h * h, 2 * curvature)
    return jnp.where(curvature > 0, x, jnp.nan)


def cubic_minimizer(a, fa, da, b, fb, db):
    """Minimiser of the cubic with values ``fa, fb`` and slopes ``da, db`` at ``a, b``."""
    d1 = da + db - 3 * _safe_div(fa - fb, a - b)
    radicand = d1 * d1 - da * db
    d2 = jnp.sign(b - a) * jnp.sqrt(jnp.where(radicand >= 0, radicand, jnp.nan))
    return b - (b - a) * _safe_div(db + d2 - d1, db - da + 2 * d2)


def secant_minimizer(a, da, b, db):
    """Zero of the secant of ``phi'`` through ``(a, da)`` and ``(b, db)``: the minimiser of the
    quadratic with those slopes, NaN unless the slope increases from ``a`` to ``b``.

    The step of Hager & Zhang's secant and double secant (2005, sec. 4), in the form
    ``a - da (b - a) / (db - da)``.
    """
    x = a - da * _safe_div(b - a, db - da)
    return jnp.where((db - da) * (b - a) > 0, x, jnp.nan)
