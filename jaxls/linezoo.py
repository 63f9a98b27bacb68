r"""The standard test functions of inexact line search (Moré & Thuente 1994, sec. 5).

Six functions ``phi(t)`` of the step ``t >= 0``, each with ``phi'(0) < 0``, written in
``jax.numpy`` so that they run under ``jit``, ``vmap`` and ``grad``, with the constants
``(c1, c2)`` (the paper's ``(mu, eta)``) that its tables use, and the starting steps
`STEP_INIT` = 1e-3, 1e-1, 1e1, 1e3 of every table:

====  =========================================================  ============  ============
 #    ``phi(t)``                                                 parameters    ``(c1, c2)``
====  =========================================================  ============  ============
 1    ``-t / (t^2 + beta)``                                      beta = 2      (1e-3, 0.1)
 2    ``(t + beta)^5 - 2 (t + beta)^4``                          beta = 0.004  (0.1, 0.1)
 3    ``phi0(t) + 2 (1 - beta) / (l pi) sin(l pi t / 2)``        l = 39,       (0.1, 0.1)
                                                                 beta = 0.01
 4-6  ``g(b1) sqrt((1 - t)^2 + b2^2) + g(b2) sqrt(t^2 + b1^2)``  (b1, b2)      (1e-3, 1e-3)
====  =========================================================  ============  ============

with ``phi0(t) = 1 - t`` for ``t <= 1 - beta``, ``(t - 1)^2 / (2 beta) + beta / 2`` on
``[1 - beta, 1 + beta]``, ``t - 1`` beyond, and ``g(b) = sqrt(1 + b^2) - b``; functions 4-6
(Yanai, Ozawa & Kaneko 1981) take ``(b1, b2) = (1e-3, 1e-3), (1e-2, 1e-3), (1e-3, 1e-2)``.

What each one tests: 1 has its minimiser ``sqrt(2)`` far from a tiny or huge first step, and
is almost flat for large ``t``; 2 is very flat near 0 (``phi'(0) ~ -5e-7``) before a
minimiser at 1.596; 3 has 39 half-waves of ripples on a V whose bottom (``t = 1``) is the
only point meeting the conditions with ``c2 = 0.1``; 4-6 are nearly flat, their minimisers
at 1/2 and near 0.0742 and 0.9258, and with ``c2 = 1e-3`` the conditions hold only on a
small set around them.

Every `LineProblem` also gives ``fun(x) = phi(x[0])`` on a 1-element array ``x``: the
pytree searches see ``phi`` with ``x = 0`` and ``direction = 1``, ``phi(t) = fun(0 + t 1)``.

Two traps for the growth of the step, from the peers' test suites: `cos_exp`, jaxopt's
float32 comparison with scipy (``cos(sum(exp(-x))^2)`` from `COS_EXP_X` along
`COS_EXP_DIRECTION`: minimisers ever closer together, float32 values noise beyond step ~15;
scipy's first Wolfe step `COS_EXP_SCIPY_STEP` ~ 2.22), and `gh12157`, scipy's regression
function of gh-12157 (``phi(t) = 3 pi / 2 (1 - t)`` below 1, ``cos(3 pi t / 2 - pi)``
beyond, period 4/3: ``phi(1) = phi(5) = phi(25) = 0`` with the same slope, so growing the
step five-fold never sees the minima at ``4/3 + 4k/3``).

References:
  J. J. Moré & D. J. Thuente, "Line search algorithms with guaranteed sufficient decrease",
  ACM Trans. Math. Software 20 (1994), 286-307, sec. 5 and Tables 1-6; jaxopt's
  ``tests/zoom_linesearch_test.py`` (``test_against_scipy``); scipy's
  ``optimize/tests/test_linesearch.py`` (``test_scalar_search_wolfe2_regression``).

Example:
  >>> import jax.numpy as jnp, jaxls
  >>> from jaxls import linezoo
  >>> problem = linezoo.MORE_THUENTE[0]
  >>> print(problem.name, problem.c1, problem.c2, float(problem.phi(jnp.sqrt(2.0))))
  mt1 0.001 0.1 -0.35355...
  >>> x, d = linezoo.start(), linezoo.direction()
  >>> res = jaxls.backtracking(problem.fun, x, d, step_init=1e3, c1=problem.c1)
  >>> bool(res.converged), float(res.value) < float(problem.fun(x))
  (True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

__all__ = [
    "COS_EXP_DIRECTION",
    "COS_EXP_SCIPY_STEP",
    "COS_EXP_X",
    "MORE_THUENTE",
    "STEP_INIT",
    "LineProblem",
    "cos_exp",
    "direction",
    "gh12157",
    "start",
]

# A scalar function of a scalar step, or of a 1-element array.
_Fun = Callable[[jax.Array], jax.Array]

# The starting steps of every table of Moré & Thuente (1994).
STEP_INIT = (1e-3, 1e-1, 1e1, 1e3)


class LineProblem(NamedTuple):
    """A line-search test function and the constants it is run with.

    Attributes:
      name: ``"mt1"`` ... ``"mt6"``, the paper's function number.
      phi: ``t -> phi(t)``, a scalar function of a scalar.
      c1: sufficient-decrease constant of the paper's table (its ``mu``).
      c2: curvature constant of the paper's table (its ``eta``).
      fun: ``x -> phi(x[0])`` on a 1-element array, for the pytree searches with
        ``x = start()`` and ``direction = direction()``.
      params: the function's parameters (``beta``; ``l``; ``beta1``, ``beta2``).
      minimiser: the global minimiser of ``phi`` on ``t >= 0``.
      paper_evals: evaluations the paper's search (MINPACK-2 ``dcsrch``) made from each
        starting step of `STEP_INIT`, its Tables 1-6; scipy's port of ``dcsrch``
        reproduces them (tested), which checks this transcription.
    """

    name: str
    phi: Callable[[jax.Array], jax.Array]
    c1: float
    c2: float
    fun: Callable[[jax.Array], jax.Array]
    params: Mapping[str, float]
    minimiser: float
    paper_evals: tuple[int, ...]


def start(dtype: DTypeLike | None = None) -> jax.Array:
    """``x = 0``, a 1-element array (float64 under ``jax_enable_x64``)."""
    return jnp.zeros(1, dtype)


def direction(dtype: DTypeLike | None = None) -> jax.Array:
    """``d = 1``, a 1-element array: ``fun(start() + t direction()) = phi(t)``."""
    return jnp.ones(1, dtype)


def _on_array(phi: _Fun) -> _Fun:
    def fun(x: jax.Array) -> jax.Array:
        return phi(x[0])

    return fun


def _mt1(beta: float) -> _Fun:
    def phi(t: jax.Array) -> jax.Array:
        return -t / (t**2 + beta)

    return phi


def _mt2(beta: float) -> _Fun:
    def phi(t: jax.Array) -> jax.Array:
        s = t + beta
        return s**5 - 2.0 * s**4

    return phi


def _mt3(l: float, beta: float) -> _Fun:  # noqa: E741 (the paper's symbol)
    # The V-shaped phi0 with a parabolic bottom of width 2 beta, plus l half-waves per unit.
    def phi(t: jax.Array) -> jax.Array:
        v = jnp.where(
            t <= 1.0 - beta,
            1.0 - t,
            jnp.where(t >= 1.0 + beta, t - 1.0, (t - 1.0) ** 2 / (2.0 * beta) + beta / 2.0),
        )
        return v + 2.0 * (1.0 - beta) / (l * math.pi) * jnp.sin(l * math.pi / 2.0 * t)

    return phi


def _gamma(beta: float) -> float:
    return math.sqrt(1.0 + beta**2) - beta


def _yanai(beta1: float, beta2: float) -> _Fun:
    g1, g2 = _gamma(beta1), _gamma(beta2)

    def phi(t: jax.Array) -> jax.Array:
        return g1 * jnp.sqrt((1.0 - t) ** 2 + beta2**2) + g2 * jnp.sqrt(t**2 + beta1**2)

    return phi


def _problem(
    name: str,
    phi: _Fun,
    c1: float,
    c2: float,
    params: Mapping[str, float],
    minimiser: float,
    paper_evals: tuple[int, ...],
) -> LineProblem:
    return LineProblem(name, phi, c1, c2, _on_array(phi), params, minimiser, paper_evals)


# Minimisers: 1 at sqrt(beta); 2 where 5 s = 8, s = t + beta; 3 at the bottom of the V,
# where the sine's derivative cos(39 pi / 2) vanishes too; 4 at 1/2 by symmetry; 5 and 6
# (mirror images, phi6(t) = phi5(1 - t)) from phi'(t) = 0, solved to rounding by scipy's
# brentq and checked in tests/test_step.py.
MORE_THUENTE = (
    _problem("mt1", _mt1(2.0), 1e-3, 0.1, {"beta": 2.0}, math.sqrt(2.0), (6, 3, 1, 4)),
    _problem("mt2", _mt2(0.004), 0.1, 0.1, {"beta": 0.004}, 1.6 - 0.004, (12, 8, 8, 11)),
    _problem("mt3", _mt3(39.0, 0.01), 0.1, 0.1, {"l": 39.0, "beta": 0.01}, 1.0, (12, 12, 10, 13)),
    _problem(
        "mt4",
        _yanai(0.001, 0.001),
        1e-3,
        1e-3,
        {"beta1": 0.001, "beta2": 0.001},
        0.5,
        (4, 1, 3, 4),
    ),
    _problem(
        "mt5",
        _yanai(0.01, 0.001),
        1e-3,
        1e-3,
        {"beta1": 0.01, "beta2": 0.001},
        0.07419870787308235,
        (6, 3, 7, 8),
    ),
    _problem(
        "mt6",
        _yanai(0.001, 0.01),
        1e-3,
        1e-3,
        {"beta1": 0.001, "beta2": 0.01},
        0.9258012921269175,
        (13, 11, 8, 11),
    ),
)


# --- Traps for the growth of the step (module docstring). ------------------------------------

COS_EXP_X = (1.0, 1.0)
COS_EXP_DIRECTION = (-0.5, -0.25)
# scipy.optimize.line_search(cos_exp, grad, COS_EXP_X, COS_EXP_DIRECTION)[0], in float64.
COS_EXP_SCIPY_STEP = 2.2212101703467164


def cos_exp(x: jax.Array) -> jax.Array:
    """jaxopt's test function ``cos(sum(exp(-x))^2)``, searched from `COS_EXP_X` along
    `COS_EXP_DIRECTION`: along it ``sum(exp(-x))`` grows exponentially, so the minimisers
    crowd together and in float32 the cosine's argument loses every digit beyond step ~15."""
    return jnp.cos(jnp.sum(jnp.exp(-x)) ** 2)


def gh12157(x: jax.Array) -> jax.Array:
    """scipy's gh-12157 function of ``t = x[0]`` (``x`` a 1-element array): ``3 pi / 2 (1 - t)``
    for ``t < 1``, ``cos(3 pi t / 2 - pi)`` beyond; minima ``-1`` at ``4/3 + 4k/3``."""
    t = x[0]
    return jnp.where(t < 1, -1.5 * jnp.pi * (t - 1), jnp.cos(1.5 * jnp.pi * t - jnp.pi))
