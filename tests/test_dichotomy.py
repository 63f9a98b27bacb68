"""Dichotomy: halvings and evaluation counts, fixed budgets, oracles, failures, vmap."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

import jaxls
from jaxls import zoo
from jaxls._src.interval.common import resolution
from tests.helpers import (
    EvalCounter,
    check_fixed_budget_loop,
    count_primitive,
    tree_equal_bitwise,
    while_bodies,
)

S = jaxls.Status
EPS = np.finfo(np.float64).eps


def halvings(width: float, tol: float) -> int:
    """k = ceil(log2(width / (2 tol))): the halvings after which the midpoint is within tol."""
    return max(0, math.ceil(math.log2(width / (2 * tol))))


def on_knife_edge(width: float, tol: float) -> bool:
    ratio = math.log2(width / (2 * tol))
    return abs(ratio - round(ratio)) < 1e-9


def reference(fun, lower: float, upper: float, num_evals: int):
    """The method in plain Python floats, f(c) cached: ``(lower, upper, c, halvings)``."""
    a, b = lower, upper
    c = a / 2 + b / 2
    fc = float(fun(c))
    evals, done = 1, 0
    while evals < num_evals:
        y = a / 2 + c / 2
        fy = float(fun(y))
        evals += 1
        if fy <= fc:
            b, c, fc, done = c, y, fy, done + 1
            continue
        if evals == num_evals:
            break  # half-way through a halving
        z = c / 2 + b / 2
        fz = float(fun(z))
        evals += 1
        if fc <= fz:
            a, b = y, z
        else:
            a, c, fc = c, z, fz
        done += 1
    return a, b, c, done


def _slack(problem, dtype=np.float64):
    scale = max(abs(problem.lower), abs(problem.upper), 1.0)
    return 4 * np.sqrt(np.finfo(dtype).eps) * scale


@pytest.mark.parametrize("problem", zoo.INTERVAL, ids=lambda p: p.name)
def test_zoo_halvings_counts_and_oracles(problem):
    tol = 1e-6
    res = jaxls.dichotomy(problem.fun, problem.lower, problem.upper, tol=tol)
    x, lo, hi = float(res.x), float(res.lower), float(res.upper)
    width = problem.upper - problem.lower
    k = halvings(width, tol)
    assert int(res.status) == S.SUCCESS, res.message
    # The cost claim: k halvings for 1 + (1 or 2 per halving) evaluations.
    assert k + 1 <= int(res.num_evals) <= 2 * k + 1
    np.testing.assert_allclose(hi - lo, width / 2**k, rtol=1e-9)
    # Oracle 1: the promise recomputed in NumPy.
    assert problem.lower <= lo <= x <= hi <= problem.upper
    assert max(x - lo, hi - x) <= tol
    np.testing.assert_allclose(x, lo / 2 + hi / 2, rtol=4 * EPS)  # x is the midpoint
    assert float(res.value) == float(problem.fun(res.x))
    assert abs(x - problem.xmin) <= tol + _slack(problem)
    grid = np.linspace(problem.lower, problem.upper, 100_001)
    best = grid[np.argmin(np.asarray(problem.fun(jnp.asarray(grid))))]
    step = grid[1] - grid[0]
    assert lo - step - _slack(problem) <= best <= hi + step + _slack(problem)
    # Oracle 2: scipy's bounded Brent.
    ref = scipy.optimize.minimize_scalar(
        lambda t: float(problem.fun(t)),
        bounds=(problem.lower, problem.upper),
        method="bounded",
        options={"xatol": 1e-9},
    )
    assert abs(x - ref.x) <= tol + _slack(problem) + 1e-8
    # Oracle 3: the method run in plain Python floats, same halvings and points.
    a, b, c, done = reference(problem.fun, problem.lower, problem.upper, int(res.num_evals))
    assert done == k
    assert (a, b, c) == (lo, hi, x)


@pytest.mark.parametrize("problem", zoo.INTERVAL[:4] + zoo.INTERVAL[-2:], ids=lambda p: p.name)
def test_fixed_budget_width_matches_halvings_completed(problem):
    width = problem.upper - problem.lower
    for n in [1, 2, 3, 4, 9, 24]:
        counter = EvalCounter(problem.fun)
        res = jaxls.dichotomy(counter, problem.lower, problem.upper, num_evals=n)
        jax.effects_barrier()
        assert int(res.status) == S.SUCCESS
        assert int(res.num_evals) == n == counter.count
        a, b, c, done = reference(problem.fun, problem.lower, problem.upper, n)
        assert (n - 1) // 2 <= done <= n - 1
        np.testing.assert_allclose(float(res.upper - res.lower), width / 2**done, rtol=1e-9)
        assert (float(res.lower), float(res.upper), float(res.x)) == (a, b, c)
        assert float(res.value) == float(problem.fun(res.x))


def test_fixed_budget_equals_while_loop_run():
    problem = zoo.INTERVAL[0]
    run = jaxls.dichotomy(problem.fun, problem.lower, problem.upper, tol=1e-6)
    fixed = jaxls.dichotomy(problem.fun, problem.lower, problem.upper, num_evals=int(run.num_evals))
    assert tree_equal_bitwise(run, fixed)


@jax.jit
def _dichotomy_power(lower, upper, centre, scale, power, tol):
    fun = lambda x: scale * jnp.abs(x - centre) ** power
    return jaxls.dichotomy(fun, lower, upper, tol=tol)


@given(
    lower=st.floats(1.0, 1e4) | st.floats(-1e4, -1.0),
    width=st.floats(1e-2, 1e3),
    where=st.floats(-0.5, 1.5),
    scale=st.floats(0.1, 10.0),
    power=st.floats(0.5, 4.0),
    log_tol=st.floats(-8.0, -1.0),
)
def test_unimodal_problems_away_from_zero(lower, width, where, scale, power, log_tol):
    upper = lower + width
    centre = lower + where * width
    tol = 10.0**log_tol * width
    res = _dichotomy_power(lower, upper, centre, scale, power, tol)
    tol = max(tol, float(resolution(jnp.float64(lower), jnp.float64(upper))))
    x, lo, hi = float(res.x), float(res.lower), float(res.upper)
    assert int(res.status) == S.SUCCESS
    assert lower <= lo <= x <= hi <= upper
    assert max(x - lo, hi - x) <= tol
    if not on_knife_edge(width, tol):
        k = halvings(width, tol)
        assert k + 1 <= int(res.num_evals) <= 2 * k + 1
    x_star = min(max(centre, lower), upper)
    # |x - m|^p at 0 is exact, so comparisons resolve down to the rounding of x - m.
    slack = 8 * EPS * max(abs(lower), abs(upper))
    assert lo - slack <= x_star <= hi + slack
    assert abs(x - x_star) <= tol + slack


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_tolerance_below_resolution_terminates(dtype):
    lower, upper = jnp.asarray(1e6, dtype), jnp.asarray(1e6 + 1, dtype)
    res = jaxls.dichotomy(lambda x: (x - (1e6 + 0.3)) ** 2, lower, upper, tol=1e-300)
    assert int(res.status) == S.SUCCESS, res.message
    assert res.x.dtype == dtype
    assert int(res.num_evals) < 200
    assert float(res.upper - res.lower) <= 2 * float(resolution(lower, upper))


def test_nonfinite_stops_on_the_midpoint():
    fun = lambda x: jnp.where(x > 3.3, jnp.nan, jnp.cosh(x - 3.0))
    res = jaxls.dichotomy(fun, 0.0, 5.0)
    # c = 2.5, y = 1.25 is worse, z = 3.75 is NaN: stop on c with its bracket.
    assert int(res.status) == S.NONFINITE
    assert (float(res.x), float(res.lower), float(res.upper), int(res.num_evals)) == (
        2.5,
        0.0,
        5.0,
        3,
    )
    assert float(res.value) == float(fun(2.5))
    for barrier in [3.01, 2.99]:  # NaN reached after many halvings, from either side
        res = jaxls.dichotomy(
            lambda x, b=barrier: jnp.where(x > b, jnp.inf, (x - 3.0) ** 2), 0.0, 5.0
        )
        assert int(res.status) == S.NONFINITE
        assert 0.0 <= float(res.lower) <= float(res.x) <= min(barrier, float(res.upper))
        assert np.isfinite(float(res.value)) and float(res.value) == (float(res.x) - 3.0) ** 2
    res = jaxls.dichotomy(lambda x: jnp.nan * x, 0.0, 5.0)  # the first value is NaN
    assert int(res.status) == S.NONFINITE and int(res.num_evals) == 1
    assert float(res.x) == 2.5 and np.isnan(float(res.value))


@pytest.mark.parametrize("fixed", [False, True])
def test_never_evaluates_outside_the_interval(fixed):
    for problem in zoo.INTERVAL:

        def fun(x, p=problem):
            return jnp.where((x < p.lower) | (x > p.upper), jnp.nan, p.fun(x))

        kwargs = {"num_evals": 30} if fixed else {"tol": 1e-10}
        res = jaxls.dichotomy(fun, problem.lower, problem.upper, **kwargs)
        assert int(res.status) == S.SUCCESS, problem.name


def test_exhausted_budget():
    res = jaxls.dichotomy(zoo.lecture, 0.0, 6.0, tol=1e-9, max_evals=5)
    assert int(res.status) == S.MAX_EVALS and int(res.num_evals) == 5
    assert 0.0 <= float(res.lower) <= float(res.x) <= float(res.upper) <= 6.0
    assert float(res.value) == float(zoo.lecture(res.x))


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"lower": 1.0, "upper": 0.0}, ValueError, "lower"),
        ({"lower": np.nan}, ValueError, "lower"),
        ({"upper": np.inf}, ValueError, "upper"),
        ({"tol": 0.0}, ValueError, "tol"),
        ({"tol": np.nan}, ValueError, "tol"),
        ({"max_evals": 0}, ValueError, "max_evals"),
        ({"max_evals": 10.0}, TypeError, "max_evals"),
        ({"num_evals": 0}, ValueError, "num_evals"),
        ({"num_evals": 2.5}, TypeError, "num_evals"),
    ],
)
def test_concrete_bad_input_raises(kwargs, error, argument):
    kwargs = {"lower": 0.0, "upper": 1.0} | kwargs
    with pytest.raises(error, match=rf"jaxls\.dichotomy.*`{argument}`"):
        jaxls.dichotomy(lambda x: x**2, kwargs.pop("lower"), kwargs.pop("upper"), **kwargs)


@pytest.mark.parametrize("fixed", [False, True])
def test_traced_bad_input_gives_invalid_status(fixed):
    counter = EvalCounter(lambda x: (x - 0.3) ** 2)

    @jax.jit
    def solve(lower, upper, tol):
        kwargs = {"num_evals": 4} if fixed else {"tol": tol}
        return jaxls.dichotomy(counter, lower, upper, **kwargs)

    cases = [(2.0, 1.0, 1e-6), (0.0, np.inf, 1e-6), (np.nan, 1.0, 1e-6)]
    cases += [] if fixed else [(0.0, 1.0, 0.0), (0.0, 1.0, -1.0), (0.0, 1.0, np.nan)]
    for lower, upper, tol in cases:
        res = solve(lower, upper, tol)
        assert int(res.status) == S.INVALID_INPUT and int(res.num_evals) == 0
        assert np.isnan(float(res.x)) and np.isnan(float(res.value))
        assert tree_equal_bitwise((res.lower, res.upper), (lower, upper))
    jax.effects_barrier()
    if not fixed:  # the fixed budget computes and discards; the while loop never runs
        assert counter.count == 0


@pytest.mark.parametrize("problem", zoo.INTERVAL[:3], ids=lambda p: p.name)
def test_jit_equals_eager(problem, maybe_jit):
    run = maybe_jit(lambda lo, hi: jaxls.dichotomy(problem.fun, lo, hi, tol=1e-8))
    eager = jaxls.dichotomy(problem.fun, problem.lower, problem.upper, tol=1e-8)
    assert tree_equal_bitwise(run(problem.lower, problem.upper), eager)


@pytest.mark.parametrize("fixed", [False, True])
def test_float32_preserved(fixed):
    fun = lambda x: zoo.lecture(x).astype(jnp.float32)
    kwargs = {"num_evals": 40} if fixed else {"tol": 1e-4}
    res = jaxls.dichotomy(fun, jnp.float32(0.0), jnp.float32(6.0), **kwargs)
    for leaf in (res.x, res.value, res.lower, res.upper):
        assert leaf.dtype == jnp.float32
    assert int(res.status) == S.SUCCESS
    assert abs(float(res.x) - 2 * np.sqrt(2)) <= 1e-4 + 4 * np.sqrt(np.finfo(np.float32).eps) * 6


def _solve_member(lower, upper, centre, barrier, tol, num_evals=None):
    fun = lambda x: jnp.where(x > barrier, jnp.nan, jnp.cosh(x - centre))
    if num_evals is not None:
        return jaxls.dichotomy(fun, lower, upper, num_evals=num_evals)
    return jaxls.dichotomy(fun, lower, upper, tol=tol, max_evals=40)


# good, good far from 0, invalid, NaN on the third evaluation, tolerance not reached in 40.
BATCH = {
    "lower": jnp.array([0.0, 1000.0, 3.0, 0.0, 0.0]),
    "upper": jnp.array([5.0, 1003.0, 1.0, 5.0, 5.0]),
    "centre": jnp.array([2.0, 1000.25, 2.0, 3.0, 2.0]),
    "barrier": jnp.array([jnp.inf, jnp.inf, jnp.inf, 3.3, jnp.inf]),
    "tol": jnp.array([1e-4, 1e-4, 1e-4, 1e-4, 1e-12]),
}


def test_vmap_mixed_batch_matches_unbatched_runs():
    batched = jax.jit(jax.vmap(_solve_member))(**BATCH)
    assert [int(s) for s in batched.status] == [
        S.SUCCESS,
        S.SUCCESS,
        S.INVALID_INPUT,
        S.NONFINITE,
        S.MAX_EVALS,
    ]
    k = [halvings(5.0, 1e-4), halvings(3.0, 1e-4)]
    assert k[0] + 1 <= int(batched.num_evals[0]) <= 2 * k[0] + 1
    assert k[1] + 1 <= int(batched.num_evals[1]) <= 2 * k[1] + 1
    assert [int(n) for n in batched.num_evals[2:]] == [0, 3, 40]
    single = jax.jit(_solve_member)
    for i in range(5):
        member = jax.tree.map(lambda leaf, i=i: leaf[i], batched)
        assert tree_equal_bitwise(member, single(**{k: v[i] for k, v in BATCH.items()})), i


def test_vmap_fixed_budget_mixed_batch():
    solve = jax.jit(jax.vmap(lambda *args: _solve_member(*args, num_evals=8)))
    batched = solve(*BATCH.values())
    statuses = [int(s) for s in batched.status]
    assert statuses == [S.SUCCESS, S.SUCCESS, S.INVALID_INPUT, S.NONFINITE, S.SUCCESS]
    assert [int(n) for n in batched.num_evals] == [8, 8, 0, 3, 8]
    single = jax.jit(lambda *args: _solve_member(*args, num_evals=8))
    for i in range(5):
        member = jax.tree.map(lambda leaf, i=i: leaf[i], batched)
        assert tree_equal_bitwise(member, single(*(v[i] for v in BATCH.values()))), i


def test_vmap_over_closed_over_parameter():
    centres = jnp.array([0.5, 1.7, 3.0, 4.9, 7.0, jnp.nan])

    def solve(c):
        return jaxls.dichotomy(lambda x: (x - c) ** 2, 0.0, 6.0, tol=1e-8)

    res = jax.vmap(solve)(centres)
    assert [int(s) for s in res.status] == [S.SUCCESS] * 5 + [S.NONFINITE]
    np.testing.assert_allclose(res.x[:5], jnp.minimum(centres[:5], 6.0), atol=1e-8)
    for i, c in enumerate(centres):
        member = jax.tree.map(lambda leaf, i=i: leaf[i], res)
        assert tree_equal_bitwise(member, solve(c)), i


def test_num_evals_counts_real_calls(maybe_jit):
    for fun, lower, upper in [
        (zoo.lecture, 0.0, 6.0),
        (lambda x: jnp.where(x > 4, jnp.nan, x), 0, 5),
    ]:
        counter = EvalCounter(fun)
        res = maybe_jit(lambda lo, hi, c=counter: jaxls.dichotomy(c, lo, hi, tol=1e-7))(
            lower, upper
        )
        jax.effects_barrier()
        assert counter.count == int(res.num_evals)


def test_one_evaluation_per_iteration_and_no_cond():
    fun = lambda x: jnp.expm1(x) - 2.0 * x  # expm1 marks an evaluation
    solve = lambda lo, hi: jaxls.dichotomy(fun, lo, hi, tol=1e-8)
    for jaxpr in [
        jax.make_jaxpr(solve)(0.0, 1.0),
        jax.make_jaxpr(jax.vmap(solve))(jnp.zeros(3), jnp.ones(3)),
    ]:
        bodies = while_bodies(jaxpr)
        assert len(bodies) == 1
        assert count_primitive(bodies[0], "expm1") == 1
        assert count_primitive(jaxpr, "expm1") == 1
        assert count_primitive(jaxpr, "cond") == 0
    fixed = lambda lo, hi: jaxls.dichotomy(fun, lo, hi, num_evals=9)
    jaxpr = jax.make_jaxpr(jax.vmap(fixed))(jnp.zeros(3), jnp.ones(3))
    check_fixed_budget_loop(jaxpr, "expm1", 9)
