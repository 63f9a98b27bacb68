"""Brent's method against scipy: the moves it copies, and the evaluations they cost.

At equal termination settings Brent needs no more evaluations than scipy's ``fminbound``,
whose moves it copies, and agrees with scipy's unbounded Brent started from a bracketing
triple. The contract shared by every interval search (oracles on the zoo, failures, jit,
vmap, ...) is checked in ``test_interval.py``.
"""

import math

import jax
import pytest
from scipy.optimize import minimize_scalar

import jaxls
from jaxls import zoo
from jaxls._src.interval.golden import RHO
from tests.helpers import EPS, guarded, slack

SCIPY_SQRT_EPS = math.sqrt(2.2e-16)  # the constant hard-coded in scipy's fminbound


GUARDED = [guarded(p.fun, p.lower, p.upper) for p in zoo.SMOOTH_INTERVAL]


@jax.jit
def _brent_on_the_zoo(lower, upper, tol, i):
    """Brent on ``zoo.SMOOTH_INTERVAL[i]`` (guarded, ``max_evals=500``,
    traced bounds and tolerance), one program for every problem instead of one each: ``i``
    is the traced index of a `lax.switch`. An HLO conditional also keeps each objective out
    of the loop's fusions: the twelve programs compiled in 2 s, this one in 0.2 s."""
    fun = lambda x: jax.lax.switch(i, GUARDED, x)
    return jaxls.brent(fun, lower, upper, tol=tol, max_evals=500)


@pytest.mark.x64(reason="compares with scipy's float64 fminbound down to xatol = 1e-10")
@pytest.mark.parametrize("problem", zoo.SMOOTH_INTERVAL, ids=lambda p: p.name)
@pytest.mark.parametrize("xatol", [1e-3, 1e-4, 1e-5, 1e-6, 1e-8, 1e-10])
def test_no_more_evaluations_than_fminbound(problem, xatol):
    """fminbound stops when ``max(x-a, b-x) <= 2 (sqrt(eps)|x| + xatol/3)``: the same tolerance.

    For ``xatol >= 1e-6`` the relative term is negligible and ``tol = 2 xatol / 3`` is
    compared, as is; below, it dominates, and is added (at scipy's final ``x``). Where
    the values no longer resolve the minimiser at that tolerance, jaxls says ``ROUNDING``
    (scipy claims success) and stops no later.
    """
    ref = minimize_scalar(
        lambda x: float(problem.fun(x)),
        bounds=(problem.lower, problem.upper),
        method="bounded",
        options={"xatol": xatol},
    )
    relative = SCIPY_SQRT_EPS * abs(ref.x) if xatol < 1e-6 else 0.0
    tol = 2 * (relative + xatol / 3)
    res = _brent_on_the_zoo(problem.lower, problem.upper, tol, zoo.SMOOTH_INTERVAL.index(problem))
    assert int(res.num_evals) <= ref.nfev
    if int(res.status) == jaxls.Status.SUCCESS:
        assert abs(float(res.x) - problem.xmin) <= tol + 4 * EPS * max(1.0, abs(problem.xmin))
    else:
        assert int(res.status) == jaxls.Status.ROUNDING and xatol <= 1e-6
        assert abs(float(res.x) - problem.xmin) <= tol + slack(problem.xmin)


INTERIOR = [p for p in zoo.SMOOTH_INTERVAL if p.lower < p.xmin < p.upper]


@pytest.mark.x64(reason="compares with scipy's float64 Brent at xtol = 1e-8")
@pytest.mark.parametrize("problem", INTERIOR, ids=lambda p: p.name)
def test_scipy_brent_agrees(problem):
    """scipy's unbounded Brent, started from a bracketing triple ``(lower, middle, upper)``.

    From Brent's own starting point as middle, scipy makes the same moves after three
    evaluations (both ends and the middle) as jaxls after one, so it needs two more.
    """
    fun = lambda x: float(problem.fun(x))
    middle = problem.lower + RHO * (problem.upper - problem.lower)
    golden_start = fun(middle) < min(fun(problem.lower), fun(problem.upper))
    if not golden_start:
        middle = (problem.lower + 2 * problem.xmin) / 3
    rtol = 1e-8
    ref = minimize_scalar(
        fun, bracket=(problem.lower, middle, problem.upper), method="brent", options={"xtol": rtol}
    )
    tol = 2 * (rtol * abs(ref.x) + 1e-11)  # scipy's stopping test, as an absolute tolerance
    res = _brent_on_the_zoo(problem.lower, problem.upper, tol, zoo.SMOOTH_INTERVAL.index(problem))
    assert abs(float(res.x) - ref.x) <= 2 * tol + 2 * slack(problem.xmin)
    if golden_start and int(res.status) == jaxls.Status.SUCCESS:
        assert int(res.num_evals) <= ref.nfev - 2
