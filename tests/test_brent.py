"""Brent's method: the bracket property recomputed in NumPy, scipy as the reference.

The oracles: on every zoo problem the final bracket holds ``x`` within ``tol``, contains the
known minimiser and the minimiser of a dense NumPy grid; `scipy.optimize.minimize_scalar`
agrees; and at equal termination settings Brent needs no more evaluations than scipy's
``fminbound``, whose moves it copies.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

import jaxls
from jaxls import zoo
from jaxls._src.interval import common
from jaxls._src.interval.golden import RHO

EPS = float(np.finfo(np.float64).eps)
SCIPY_SQRT_EPS = math.sqrt(2.2e-16)  # the constant hard-coded in scipy's fminbound


def slack(xmin):
    """What function values can resolve near a minimiser: ``sqrt(eps)`` relative."""
    return 4 * math.sqrt(EPS) * max(1.0, abs(xmin))


def check_result(problem, res, tol):
    """The promised property, recomputed in NumPy."""
    x, lower, upper = float(res.x), float(res.lower), float(res.upper)
    assert int(res.status) == jaxls.Status.SUCCESS
    assert problem.lower <= lower <= x <= upper <= problem.upper
    assert max(x - lower, upper - x) <= max(tol, float(common.resolution(lower, upper)))
    assert abs(x - problem.xmin) <= tol + slack(problem.xmin)
    assert float(res.value) == pytest.approx(float(problem.fun(res.x)), rel=1e-14, abs=1e-300)
    # The minimiser of a dense grid lies in the bracket, up to the grid step.
    grid = np.linspace(problem.lower, problem.upper, 20001)
    best = grid[np.argmin(np.asarray(problem.fun(jnp.asarray(grid))))]
    step = grid[1] - grid[0]
    assert lower - step - slack(best) <= best <= upper + step + slack(best)


def guarded(problem):
    """``problem.fun``, but NaN outside the interval: a search that evaluated there would stop
    with ``NONFINITE``, so ``SUCCESS`` proves that it never did."""
    lo, up = problem.lower, problem.upper
    return lambda x: jnp.where((x < lo) | (x > up), jnp.nan, problem.fun(jnp.clip(x, lo, up)))


@functools.cache
def solver(problem):
    """One compilation per zoo problem: bounds and tolerance are traced arguments."""
    fun = guarded(problem)
    return jax.jit(lambda lo, up, tol: jaxls.brent(fun, lo, up, tol=tol, max_evals=500))


@pytest.mark.parametrize("problem", zoo.INTERVAL, ids=lambda p: p.name)
@pytest.mark.parametrize("tol", [1e-6, 1e-12])
def test_zoo_bracket_property(problem, tol):
    check_result(problem, solver(problem)(problem.lower, problem.upper, tol), tol)


@pytest.mark.parametrize("problem", zoo.INTERVAL, ids=lambda p: p.name)
def test_jit_equals_eager(problem):
    eager = jaxls.brent(guarded(problem), problem.lower, problem.upper, tol=1e-9)
    jitted = solver(problem)(problem.lower, problem.upper, 1e-9)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("problem", zoo.INTERVAL, ids=lambda p: p.name)
def test_scipy_bounded_agrees(problem):
    t = 1e-8
    ref = minimize_scalar(
        lambda x: float(problem.fun(x)),
        bounds=(problem.lower, problem.upper),
        method="bounded",
        options={"xatol": t},
    )
    res = solver(problem)(problem.lower, problem.upper, 1e-8)
    scipy_tol = 2 * (SCIPY_SQRT_EPS * abs(ref.x) + t / 3)
    assert abs(float(res.x) - ref.x) <= 1e-8 + scipy_tol + 2 * slack(problem.xmin)


@pytest.mark.parametrize("problem", zoo.SMOOTH_INTERVAL, ids=lambda p: p.name)
@pytest.mark.parametrize("xatol", [1e-3, 1e-4, 1e-5, 1e-6, 1e-8, 1e-10])
def test_no_more_evaluations_than_fminbound(problem, xatol):
    """fminbound stops when ``max(x-a, b-x) <= 2 (sqrt(eps)|x| + xatol/3)``: the same tolerance.

    For ``xatol >= 1e-6`` the relative term is negligible and ``tol = 2 xatol / 3`` is
    compared, as is; below, it dominates, and is added (at scipy's final ``x``).
    """
    ref = minimize_scalar(
        lambda x: float(problem.fun(x)),
        bounds=(problem.lower, problem.upper),
        method="bounded",
        options={"xatol": xatol},
    )
    relative = SCIPY_SQRT_EPS * abs(ref.x) if xatol < 1e-6 else 0.0
    tol = 2 * (relative + xatol / 3)
    res = solver(problem)(problem.lower, problem.upper, tol)
    assert int(res.status) == jaxls.Status.SUCCESS
    assert int(res.num_evals) <= ref.nfev
    assert abs(float(res.x) - problem.xmin) <= tol + slack(problem.xmin)


INTERIOR = [p for p in zoo.SMOOTH_INTERVAL if p.lower < p.xmin < p.upper]


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
    res = solver(problem)(problem.lower, problem.upper, tol)
    assert abs(float(res.x) - ref.x) <= 2 * tol + 2 * slack(problem.xmin)
    if golden_start:
        assert int(res.num_evals) <= ref.nfev - 2


# One jitted function for all hypothesis examples: the problem parameters are traced.
@jax.jit
def solve_unimodal(lower, width, centre, scale, shape, kind):
    def fun(x):
        d = x - centre
        return jnp.where(kind, scale * jnp.cosh(shape * d), scale * d**2 + shape * d**4)

    return jaxls.brent(fun, lower, lower + width, tol=1e-6, max_evals=200)


@given(
    lower=st.floats(10.0, 1000.0).flatmap(lambda v: st.sampled_from([v, -v])),
    width=st.floats(0.01, 50.0),
    where=st.floats(-0.5, 1.5),
    scale=st.floats(0.1, 10.0),
    shape=st.floats(0.1, 5.0),
    kind=st.booleans(),
)
def test_hypothesis_unimodal(lower, width, where, scale, shape, kind):
    centre = lower + where * width
    res = solve_unimodal(lower, width, centre, scale, shape, kind)
    upper = float(jnp.asarray(lower, jnp.float64) + width)
    xmin = min(max(centre, lower), upper)
    x, lo, up = float(res.x), float(res.lower), float(res.upper)
    resolve = 4 * math.sqrt(EPS) / shape + 1e-12 * abs(xmin)
    assert int(res.status) == jaxls.Status.SUCCESS
    assert lower <= lo <= x <= up <= upper
    assert max(x - lo, up - x) <= 1e-6
    assert lo - resolve <= xmin <= up + resolve
    assert abs(x - xmin) <= 1e-6 + resolve


@pytest.mark.parametrize(
    "lower, upper, dtype",
    [(1e6, 1e6 + 1.0, jnp.float64), (0.0, 1.0, jnp.float32), (100.0, 101.0, jnp.float32)],
)
def test_tolerance_below_resolution_terminates(lower, upper, dtype, maybe_jit):
    xmin = lower + 0.3
    lo, up = jnp.asarray(lower, dtype), jnp.asarray(upper, dtype)
    res = maybe_jit(lambda a, b: jaxls.brent(lambda x: (x - xmin) ** 2, a, b, tol=1e-300))(lo, up)
    assert int(res.status) == jaxls.Status.SUCCESS
    assert int(res.num_evals) < 100
    assert res.x.dtype == dtype
    spread = max(float(res.x - res.lower), float(res.upper - res.x))
    assert spread <= float(common.resolution(lo, up))
    assert abs(float(res.x) - xmin) <= 1e3 * float(jnp.finfo(dtype).eps) * abs(upper)


def test_nan_beyond_some_point(maybe_jit):
    def fun(x):
        return jnp.where(x > 2.5, jnp.nan, (x - 4.0) ** 2)

    res = maybe_jit(lambda lo, up: jaxls.brent(fun, lo, up))(0.0, 5.0)
    assert int(res.status) == jaxls.Status.NONFINITE
    assert 0.0 <= float(res.x) <= 2.5
    assert np.isfinite(float(res.value)) and float(res.value) == float(fun(res.x))


def test_nan_first_value(maybe_jit):
    res = maybe_jit(lambda lo, up: jaxls.brent(lambda x: jnp.log(-x), lo, up))(1.0, 2.0)
    assert int(res.status) == jaxls.Status.NONFINITE
    assert int(res.num_evals) == 1
    assert float(res.x) == pytest.approx(1.0 + RHO) and np.isnan(float(res.value))


def test_inf_stops_with_best_finite_point():
    res = jaxls.brent(lambda x: jnp.where(x > 2.5, jnp.inf, (x - 4.0) ** 2), 0.0, 5.0)
    assert int(res.status) == jaxls.Status.NONFINITE
    assert float(res.value) == pytest.approx((float(res.x) - 4.0) ** 2)


@pytest.mark.parametrize("max_evals", [1, 2, 3, 5])
def test_budget_exhausted(max_evals, maybe_jit):
    problem = zoo.INTERVAL[0]
    res = maybe_jit(lambda lo, up: jaxls.brent(problem.fun, lo, up, max_evals=max_evals))(
        problem.lower, problem.upper
    )
    assert int(res.status) == jaxls.Status.MAX_EVALS
    assert int(res.num_evals) == max_evals
    assert float(res.lower) <= float(res.x) <= float(res.upper)
    assert problem.lower <= float(res.lower) and float(res.upper) <= problem.upper
    assert float(res.value) == float(problem.fun(res.x))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lower": 1.0, "upper": 0.0}, "lower"),
        ({"lower": 1.0, "upper": 1.0}, "lower"),
        ({"lower": 0.0, "upper": math.inf}, "upper"),
        ({"lower": -math.inf, "upper": 0.0}, "lower"),
        ({"lower": math.nan, "upper": 0.0}, "lower"),
        ({"tol": 0.0}, "tol"),
        ({"tol": -1.0}, "tol"),
        ({"tol": math.nan}, "tol"),
        ({"max_evals": 0}, "max_evals"),
    ],
)
def test_bad_python_inputs_raise(kwargs, name):
    args = {"lower": 0.0, "upper": 1.0} | kwargs
    lower, upper = args.pop("lower"), args.pop("upper")
    with pytest.raises(ValueError, match=rf"brent.*{name}"):
        jaxls.brent(lambda x: x**2, lower, upper, **args)


@pytest.mark.parametrize(
    "lower, upper, tol",
    [(1.0, 0.0, 1e-6), (1.0, 1.0, 1e-6), (0.0, np.inf, 1e-6), (np.nan, 1.0, 1e-6), (0, 1, 0.0)],
)
def test_bad_traced_inputs_report_invalid(lower, upper, tol):
    calls = []

    def fun(x):
        jax.debug.callback(lambda v: calls.append(v), x)
        return x**2

    res = jax.jit(lambda lo, up, t: jaxls.brent(fun, lo, up, tol=t))(lower, upper, tol)
    assert int(res.status) == jaxls.Status.INVALID_INPUT
    assert int(res.num_evals) == 0 and calls == []
    assert np.isnan(float(res.x)) and np.isnan(float(res.value))
    np.testing.assert_array_equal([res.lower, res.upper], np.asarray([lower, upper], float))


def test_float32_in_float32_out(maybe_jit):
    lo, up = jnp.float32(0.0), jnp.float32(1.0)
    res = maybe_jit(lambda a, b: jaxls.brent(lambda x: (x - 0.3) ** 2, a, b, tol=1e-5))(lo, up)
    for field in (res.x, res.value, res.lower, res.upper):
        assert field.dtype == jnp.float32
    assert int(res.status) == jaxls.Status.SUCCESS and abs(float(res.x) - 0.3) <= 1e-5


def quadratic_with(centre, k):
    """A quadratic whose value is NaN when the parameter ``k`` is negative."""
    return lambda x: (x - centre) ** 2 + 0.0 * jnp.sqrt(k)


def test_vmap_mixed_batch():
    lower = jnp.array([0.0, 10.0, 1.0, 0.0, -5.0, 0.0])
    upper = jnp.array([5.0, 13.0, 0.0, 5.0, -1.0, 5.0])
    centre = jnp.array([2.0, 10.3, 0.5, 2.0, 0.0, 4.0])
    k = jnp.array([1.0, 1.0, 1.0, -1.0, 1.0, 1.0])
    tol = jnp.array([1e-6, 1e-6, 1e-6, 1e-6, 1e-300, 1e-6])
    max_evals = 30

    def solve(lo, up, c, kk, t):
        return jaxls.brent(quadratic_with(c, kk), lo, up, tol=t, max_evals=max_evals)

    batch = jax.jit(jax.vmap(solve))(lower, upper, centre, k, tol)
    single = jax.jit(solve)
    expected = [
        jaxls.Status.SUCCESS,
        jaxls.Status.SUCCESS,
        jaxls.Status.INVALID_INPUT,
        jaxls.Status.NONFINITE,
        jaxls.Status.MAX_EVALS,
        jaxls.Status.SUCCESS,
    ]
    np.testing.assert_array_equal(batch.status, np.asarray(expected))
    for i in range(len(expected)):
        alone = single(lower[i], upper[i], centre[i], k[i], tol[i])
        for a, b in zip(batch, alone, strict=True):
            np.testing.assert_array_equal(a[i], b)  # bitwise, NaN in the same places
    assert int(batch.num_evals[2]) == 0 and int(batch.num_evals[3]) == 1
    assert int(batch.num_evals[4]) == max_evals


def test_vmap_over_closed_over_parameter():
    centres = jnp.linspace(-2.0, 3.0, 7)

    def solve(c):
        return jaxls.brent(lambda x: jnp.cosh(x - c), -1.0, 2.0, tol=1e-8)

    batch = jax.vmap(solve)(centres)
    for i, c in enumerate(centres):
        alone = jax.jit(solve)(c)
        for a, b in zip(batch, alone, strict=True):
            np.testing.assert_array_equal(a[i], b)
    np.testing.assert_allclose(batch.x, np.clip(centres, -1.0, 2.0), atol=1e-7)


@pytest.mark.parametrize("problem", zoo.INTERVAL[:4], ids=lambda p: p.name)
def test_callback_counts_equal_num_evals(problem, maybe_jit):
    points = []

    def fun(x):
        jax.debug.callback(lambda v: points.append(float(v)), x)
        return problem.fun(x)

    res = maybe_jit(lambda lo, up: jaxls.brent(fun, lo, up))(problem.lower, problem.upper)
    assert len(points) == int(res.num_evals)
    assert all(problem.lower <= p <= problem.upper for p in points)
    # Brent's starting point comes first.
    assert points[0] == pytest.approx(problem.lower + RHO * (problem.upper - problem.lower))


def count_primitives(jaxpr, name):
    """Occurrences of a primitive in a jaxpr, recursively through sub-jaxprs."""
    total = 0
    for eqn in jaxpr.eqns:
        total += eqn.primitive.name == name
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    total += count_primitives(sub, name)
    return total


def while_bodies(jaxpr):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "while":
            yield eqn.params["body_jaxpr"].jaxpr
        for param in eqn.params.values():
            sub = getattr(param, "jaxpr", param)
            if hasattr(sub, "eqns"):
                yield from while_bodies(sub)


@pytest.mark.parametrize("batched", [False, True])
def test_one_evaluation_per_iteration_and_no_cond(batched):
    def solve(lo, up):
        return jaxls.brent(lambda x: jnp.expm1(x) - 2.0 * x, lo, up)

    fn = jax.vmap(solve) if batched else solve
    args = (jnp.zeros(3), jnp.ones(3)) if batched else (0.0, 1.0)
    jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
    bodies = list(while_bodies(jaxpr))
    assert len(bodies) == 1
    assert count_primitives(bodies[0], "expm1") == 1
    assert count_primitives(jaxpr, "expm1") == 1
    assert count_primitives(jaxpr, "cond") == 0
