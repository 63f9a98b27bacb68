"""Successive parabolic interpolation: the bracket property in NumPy, scipy as the reference.

Besides the contract shared by the interval searches, this checks what the safeguards are
for: exact quadratics (where the lecture's listing divides by zero), starts that do not
bracket (monotone functions), and ``x_init``.
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

EPS = float(np.finfo(np.float64).eps)


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
    return jax.jit(lambda lo, up, tol: jaxls.parabolic(fun, lo, up, tol=tol, max_evals=500))


@pytest.mark.parametrize("problem", zoo.INTERVAL, ids=lambda p: p.name)
@pytest.mark.parametrize("tol", [1e-6, 1e-12])
def test_zoo_bracket_property(problem, tol):
    check_result(problem, solver(problem)(problem.lower, problem.upper, tol), tol)


@pytest.mark.parametrize("problem", zoo.INTERVAL, ids=lambda p: p.name)
def test_jit_equals_eager(problem):
    eager = jaxls.parabolic(guarded(problem), problem.lower, problem.upper, tol=1e-9)
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
    scipy_tol = 2 * (math.sqrt(2.2e-16) * abs(ref.x) + t / 3)
    assert abs(float(res.x) - ref.x) <= 1e-8 + scipy_tol + 2 * slack(problem.xmin)


def lecture_listing(f, x1, x2, x3, tol):
    """The unsafeguarded method, in plain Python floats, as the lecture lists it."""
    f1, f2, f3 = f(x1), f(x2), f(x3)
    while x3 - x1 > tol:
        num = (x2 - x1) ** 2 * (f2 - f3) - (x2 - x3) ** 2 * (f2 - f1)
        u = x2 - num / (2 * ((x2 - x1) * (f2 - f3) - (x2 - x3) * (f2 - f1)))
        fu = f(u)
        if fu < f2:  # u is the new middle point; x2 becomes an end
            if u < x2:
                x3, f3 = x2, f2
            else:
                x1, f1 = x2, f2
            x2, f2 = u, fu
        elif u < x2:
            x1, f1 = u, fu
        else:
            x3, f3 = u, fu
    return (x1 + x3) / 2


@pytest.mark.parametrize(
    "centre, lower, upper",
    [(2.0, 0.0, 5.0), (2.5, 0.0, 5.0), (1000.25, 1000.0, 1003.0), (-7.3, -20.0, -4.0)],
)
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_exact_quadratic(centre, lower, upper, dtype):
    def fun(x):
        return 3.0 * (x - centre) ** 2 + 1.0

    if dtype == jnp.float64:
        # The lecture's listing lands on the minimiser, then its triple degenerates.
        with pytest.raises(ZeroDivisionError):
            lecture_listing(fun, lower, (lower + upper) / 2, upper, 1e-6)
    lo, up = jnp.asarray(lower, dtype), jnp.asarray(upper, dtype)
    tol = 1e-6 if dtype == jnp.float64 else 1e-3
    res = jax.jit(lambda a, b: jaxls.parabolic(fun, a, b, tol=tol))(lo, up)
    assert int(res.status) == jaxls.Status.SUCCESS
    assert int(res.num_evals) <= 6
    assert res.x.dtype == dtype and np.isfinite(float(res.value))
    assert abs(float(res.x) - centre) <= tol
    assert max(float(res.x - res.lower), float(res.upper - res.x)) <= tol


@pytest.mark.parametrize(
    "fun, lower, upper, xmin",
    [
        (lambda x: x, 0.0, 1.0, 0.0),
        (lambda x: -x, 0.0, 1.0, 1.0),
        (jnp.exp, -3.0, 2.0, -3.0),
        (lambda x: (x + 1.0) ** 2, 0.0, 5.0, 0.0),
        (lambda x: (x - 1001.5) ** 4, 1000.0, 1001.0, 1001.0),
        (lambda x: (x - 0.01) ** 2, 0.0, 5.0, 0.01),
        (lambda x: (x - 4.99) ** 2, 0.0, 5.0, 4.99),
    ],
    ids=[
        "increasing",
        "decreasing",
        "exp",
        "quadratic_left",
        "quartic_far",
        "near_lower",
        "near_upper",
    ],
)
def test_start_that_does_not_bracket(fun, lower, upper, xmin):
    """``f(lower) < f(x_init)`` or ``f(upper) < f(x_init)``: the search still converges."""
    res = jaxls.parabolic(fun, lower, upper, tol=1e-8)
    assert int(res.status) == jaxls.Status.SUCCESS
    assert abs(float(res.x) - xmin) <= 1e-8 + slack(xmin)
    assert lower <= float(res.lower) <= float(res.x) <= float(res.upper) <= upper


# One jitted function for all hypothesis examples: the problem parameters are traced.
@jax.jit
def solve_unimodal(lower, width, centre, scale, shape, kind, start):
    def fun(x):
        d = x - centre
        return jnp.where(kind, scale * jnp.cosh(shape * d), scale * d**2 + shape * d**4)

    x_init = lower + start * width
    return jaxls.parabolic(fun, lower, lower + width, tol=1e-6, max_evals=200, x_init=x_init)


@given(
    lower=st.floats(10.0, 1000.0).flatmap(lambda v: st.sampled_from([v, -v])),
    width=st.floats(0.01, 50.0),
    where=st.floats(-0.5, 1.5),
    scale=st.floats(0.1, 10.0),
    shape=st.floats(0.1, 5.0),
    kind=st.booleans(),
    start=st.floats(0.01, 0.99),
)
def test_hypothesis_unimodal(lower, width, where, scale, shape, kind, start):
    centre = lower + where * width
    res = solve_unimodal(lower, width, centre, scale, shape, kind, start)
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

    def solve(a, b):
        return jaxls.parabolic(lambda x: jnp.cosh(x - xmin), a, b, tol=1e-300)

    lo, up = jnp.asarray(lower, dtype), jnp.asarray(upper, dtype)
    res = maybe_jit(solve)(lo, up)
    assert int(res.status) == jaxls.Status.SUCCESS
    assert int(res.num_evals) < 100
    assert res.x.dtype == dtype
    spread = max(float(res.x - res.lower), float(res.upper - res.x))
    assert spread <= float(common.resolution(lo, up))
    # cosh resolves its minimiser to about sqrt(eps) only
    assert abs(float(res.x) - xmin) <= 4 * math.sqrt(float(jnp.finfo(dtype).eps)) + 1e-3 * spread


def test_nan_beyond_some_point(maybe_jit):
    def fun(x):
        return jnp.where(x > 2.5, jnp.nan, (x - 4.0) ** 2)

    res = maybe_jit(lambda lo, up: jaxls.parabolic(fun, lo, up))(0.0, 5.0)
    assert int(res.status) == jaxls.Status.NONFINITE
    assert int(res.num_evals) == 3  # x_init = 2.5, lower, then upper, where it is NaN
    assert float(res.x) == 2.5
    assert np.isfinite(float(res.value)) and float(res.value) == float(fun(res.x))


def test_nan_first_value(maybe_jit):
    res = maybe_jit(lambda lo, up: jaxls.parabolic(lambda x: jnp.log(-x), lo, up))(1.0, 2.0)
    assert int(res.status) == jaxls.Status.NONFINITE
    assert int(res.num_evals) == 1
    assert float(res.x) == 1.5 and np.isnan(float(res.value))


def test_inf_stops_with_best_finite_point():
    res = jaxls.parabolic(lambda x: jnp.where(x < 1.0, jnp.inf, (x - 0.5) ** 2), 0.0, 5.0)
    assert int(res.status) == jaxls.Status.NONFINITE
    assert float(res.x) == 2.5 and float(res.value) == 4.0


@pytest.mark.parametrize("max_evals", [1, 2, 3, 4, 6])
def test_budget_exhausted(max_evals):
    problem = zoo.INTERVAL[0]
    res = jaxls.parabolic(problem.fun, problem.lower, problem.upper, max_evals=max_evals)
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
        ({"x_init": 2.0}, "x_init"),
        ({"x_init": 0.0}, "x_init"),
        ({"x_init": 1.0}, "x_init"),
        ({"x_init": -0.5}, "x_init"),
        ({"x_init": math.nan}, "x_init"),
        ({"x_init": math.inf}, "x_init"),
    ],
)
def test_bad_python_inputs_raise(kwargs, name):
    args = {"lower": 0.0, "upper": 1.0} | kwargs
    lower, upper = args.pop("lower"), args.pop("upper")
    with pytest.raises(ValueError, match=rf"parabolic.*{name}"):
        jaxls.parabolic(lambda x: x**2, lower, upper, **args)


@pytest.mark.parametrize(
    "lower, upper, tol, x_init",
    [
        (1.0, 0.0, 1e-6, 0.5),
        (1.0, 1.0, 1e-6, 1.0),
        (0.0, np.inf, 1e-6, 0.5),
        (np.nan, 1.0, 1e-6, 0.5),
        (0.0, 1.0, 0.0, 0.5),
        (0.0, 1.0, 1e-6, 1.5),
        (0.0, 1.0, 1e-6, 0.0),
        (0.0, 1.0, 1e-6, np.nan),
    ],
)
def test_bad_traced_inputs_report_invalid(lower, upper, tol, x_init):
    calls = []

    def fun(x):
        jax.debug.callback(lambda v: calls.append(v), x)
        return x**2

    def solve(lo, up, t, x0):
        return jaxls.parabolic(fun, lo, up, tol=t, x_init=x0)

    res = jax.jit(solve)(lower, upper, tol, x_init)
    assert int(res.status) == jaxls.Status.INVALID_INPUT
    assert int(res.num_evals) == 0 and calls == []
    assert np.isnan(float(res.x)) and np.isnan(float(res.value))
    np.testing.assert_array_equal([res.lower, res.upper], np.asarray([lower, upper], float))


def test_x_init():
    points = []

    def fun(x):
        jax.debug.callback(lambda v: points.append(float(v)), x)
        return jnp.cosh(x - 2.0)

    solve = jax.jit(lambda x0: jaxls.parabolic(fun, 0.0, 5.0, tol=1e-8, x_init=x0))
    for x_init in [0.001, 1.0, 2.0, 4.999]:
        points.clear()
        res = solve(x_init)
        assert int(res.status) == jaxls.Status.SUCCESS
        assert abs(float(res.x) - 2.0) <= 1e-8 + slack(2.0)
        assert points[:2] == [x_init, 0.0]
        assert len(points) == int(res.num_evals)
    # A concrete x_init is checked eagerly and used as given.
    res = jaxls.parabolic(jnp.cosh, -1.0, 2.0, tol=1e-8, x_init=1.5)
    assert abs(float(res.x)) <= 1e-8 + slack(0.0)


def test_float32_in_float32_out(maybe_jit):
    lo, up = jnp.float32(0.0), jnp.float32(1.0)

    def solve(a, b):
        return jaxls.parabolic(lambda x: jnp.cosh(x - 0.3), a, b, tol=1e-5, x_init=0.25)

    res = maybe_jit(solve)(lo, up)
    for field in (res.x, res.value, res.lower, res.upper):
        assert field.dtype == jnp.float32
    assert int(res.status) == jaxls.Status.SUCCESS and abs(float(res.x) - 0.3) <= 1e-3


def cosh_with(centre, k):
    """``cosh(x - centre)``, whose value is NaN when the parameter ``k`` is negative."""
    return lambda x: jnp.cosh(x - centre) + 0.0 * jnp.sqrt(k)


def test_vmap_mixed_batch():
    lower = jnp.array([0.0, 10.0, 1.0, 0.0, -5.0, 0.0, 0.0])
    upper = jnp.array([5.0, 13.0, 0.0, 5.0, -1.0, 5.0, 5.0])
    centre = jnp.array([2.0, 10.3, 0.5, 2.0, -4.0, 4.0, 1.0])
    k = jnp.array([1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0])
    tol = jnp.array([1e-6, 1e-6, 1e-6, 1e-6, 1e-300, 1e-6, 1e-6])
    x_init = jnp.array([1.0, 11.0, 0.5, 1.0, -2.0, 1.0, 7.0])
    max_evals = 20

    def solve(lo, up, c, kk, t, x0):
        fun = cosh_with(c, kk)
        return jaxls.parabolic(fun, lo, up, tol=t, max_evals=max_evals, x_init=x0)

    batch = jax.jit(jax.vmap(solve))(lower, upper, centre, k, tol, x_init)
    single = jax.jit(solve)
    expected = [
        jaxls.Status.SUCCESS,
        jaxls.Status.SUCCESS,
        jaxls.Status.INVALID_INPUT,
        jaxls.Status.NONFINITE,
        jaxls.Status.MAX_EVALS,
        jaxls.Status.SUCCESS,
        jaxls.Status.INVALID_INPUT,
    ]
    np.testing.assert_array_equal(batch.status, np.asarray(expected))
    for i in range(len(expected)):
        alone = single(lower[i], upper[i], centre[i], k[i], tol[i], x_init[i])
        for a, b in zip(batch, alone, strict=True):
            np.testing.assert_array_equal(a[i], b)  # bitwise, NaN in the same places
    np.testing.assert_array_equal(batch.num_evals[2:5], [0, 1, max_evals])
    assert int(batch.num_evals[6]) == 0


def test_vmap_over_closed_over_parameter():
    centres = jnp.linspace(-2.0, 3.0, 7)

    def solve(c):
        return jaxls.parabolic(lambda x: jnp.cosh(x - c), -1.0, 2.0, tol=1e-8)

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

    res = maybe_jit(lambda lo, up: jaxls.parabolic(fun, lo, up))(problem.lower, problem.upper)
    assert len(points) == int(res.num_evals)
    assert all(problem.lower <= p <= problem.upper for p in points)
    assert len(set(points)) == len(points)  # each point is evaluated once
    # The initial triple comes first: the midpoint, the lower end, and the upper end unless
    # f(lower) < f(middle) already puts the minimiser in [lower, middle].
    middle = (problem.lower + problem.upper) / 2
    assert points[:2] == [middle, problem.lower]
    bracketing = float(problem.fun(middle)) <= float(problem.fun(problem.lower))
    assert (points[2] == problem.upper) == bracketing


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
        return jaxls.parabolic(lambda x: jnp.expm1(x) - 2.0 * x, lo, up)

    fn = jax.vmap(solve) if batched else solve
    args = (jnp.zeros(3), jnp.ones(3)) if batched else (0.0, 1.0)
    jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
    bodies = list(while_bodies(jaxpr))
    assert len(bodies) == 1
    assert count_primitives(bodies[0], "expm1") == 1
    assert count_primitives(jaxpr, "expm1") == 1
    assert count_primitives(jaxpr, "cond") == 0
