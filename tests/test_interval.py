"""The contract every tolerance-driven exact search shares, checked for each of them.

Method-specific behaviour (evaluation counts, fixed budgets, comparisons with scipy) lives
in the per-method test files.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import jaxls
from jaxls import zoo
from jaxls._src.interval.common import resolution
from tests.helpers import EvalCounter, count_primitive, tree_equal_bitwise, while_bodies
from tests.interval_methods import METHODS

NAMES = sorted(METHODS)
S = jaxls.Status


def _slack(problem, dtype=np.float64):
    """What function values can resolve near a smooth minimum: ~sqrt(eps) * scale."""
    scale = max(abs(problem.lower), abs(problem.upper), 1.0)
    return 4 * np.sqrt(np.finfo(dtype).eps) * scale


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("problem", zoo.INTERVAL, ids=lambda p: p.name)
def test_zoo_two_oracles(name, problem):
    tol = 1e-6
    res = METHODS[name](problem.fun, problem.lower, problem.upper, tol=tol, max_evals=500)
    x, lo, hi = float(res.x), float(res.lower), float(res.upper)
    assert int(res.status) == S.SUCCESS, res.message
    # Oracle 1, the method's own promise recomputed in NumPy: x in the final bracket,
    # which certifies the tolerance, and which holds the minimiser of a dense grid.
    assert problem.lower <= lo <= x <= hi <= problem.upper
    assert max(x - lo, hi - x) <= tol
    assert float(res.value) == float(problem.fun(res.x))
    grid = np.linspace(problem.lower, problem.upper, 200_001)
    values = np.asarray(jax.vmap(problem.fun)(jnp.asarray(grid)))
    step = grid[1] - grid[0]
    best = grid[np.argmin(values)]
    assert lo - step - _slack(problem) <= best <= hi + step + _slack(problem)
    assert abs(x - problem.xmin) <= tol + _slack(problem)
    # Oracle 2: scipy's bounded Brent.
    ref = scipy.optimize.minimize_scalar(
        lambda t: float(problem.fun(t)),
        bounds=(problem.lower, problem.upper),
        method="bounded",
        options={"xatol": 1e-9},
    )
    assert abs(x - ref.x) <= tol + _slack(problem) + 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_never_evaluates_outside_the_interval(name):
    # NaN outside [lower, upper]: one evaluation there would end the search as NONFINITE.
    for lower, upper, m in [(1000.0, 1001.5, 999.0), (-3.0, -2.0, -2.0), (0.5, 0.75, 0.6)]:

        def fun(x, lower=lower, upper=upper, m=m):
            inside = (x >= lower) & (x <= upper)
            return jnp.where(inside, (x - m) ** 2, jnp.nan)

        res = METHODS[name](fun, lower, upper, tol=1e-9, max_evals=500)
        assert int(res.status) == S.SUCCESS, res.message
        assert lower <= float(res.x) <= upper


BAD_ARGUMENTS = [
    ({"lower": 2.0, "upper": 1.0}, "lower"),
    ({"lower": 1.0, "upper": 1.0}, "lower"),
    ({"lower": -np.inf}, "lower"),
    ({"upper": np.nan}, "upper"),
    ({"tol": 0.0}, "tol"),
    ({"tol": -1e-3}, "tol"),
    ({"max_evals": 0}, "max_evals"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("change", "argument"), BAD_ARGUMENTS)
def test_concrete_bad_input_raises_naming_call_and_argument(name, change, argument):
    kwargs = {"lower": 0.0, "upper": 1.0, "tol": 1e-6, "max_evals": 50} | change
    with pytest.raises(ValueError, match=rf"{name}.*`{argument}`"):
        METHODS[name](lambda x: x**2, kwargs.pop("lower"), kwargs.pop("upper"), **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_traced_bad_input_gives_invalid_status(name):
    @jax.jit
    def solve(lower, upper, tol):
        return METHODS[name](lambda x: (x - 0.3) ** 2, lower, upper, tol=tol, max_evals=50)

    for lower, upper, tol in [
        (2.0, 1.0, 1e-6),
        (1.0, 1.0, 1e-6),
        (0.0, np.inf, 1e-6),
        (np.nan, 1.0, 1e-6),
        (0.0, 1.0, 0.0),
        (0.0, 1.0, np.nan),
    ]:
        res = solve(lower, upper, tol)
        assert int(res.status) == S.INVALID_INPUT
        assert int(res.num_evals) == 0
        assert not bool(res.converged)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_tolerance_below_resolution_terminates(name, dtype):
    lower, upper = jnp.asarray(1e6, dtype), jnp.asarray(1e6 + 1, dtype)
    res = METHODS[name](lambda x: (x - (1e6 + 0.3)) ** 2, lower, upper, tol=1e-300, max_evals=500)
    assert int(res.status) == S.SUCCESS, res.message
    assert res.x.dtype == dtype
    assert float(res.upper - res.lower) <= 2 * float(resolution(lower, upper))


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_values_stop_on_a_finite_point_inside(name):
    for barrier in [0.7, 0.1, -1.0]:  # NaN beyond x = barrier (everywhere, for -1)

        def fun(x, barrier=barrier):
            return jnp.where(x > barrier, jnp.nan, (x - 2.0) ** 2)

        res = METHODS[name](fun, 0.0, 5.0, tol=1e-8, max_evals=100)
        assert int(res.status) == S.NONFINITE
        assert np.isfinite(float(res.x)) and 0.0 <= float(res.x) <= 5.0
        np.testing.assert_array_equal(res.value, fun(res.x))
    for bad in [jnp.inf, -jnp.inf]:
        res = METHODS[name](
            lambda x, bad=bad: jnp.where(x > 2.4, bad, x), 0.0, 5.0, tol=1e-8, max_evals=100
        )
        assert int(res.status) == S.NONFINITE
        assert 0.0 <= float(res.x) <= 5.0


@pytest.mark.parametrize("name", NAMES)
def test_exhausted_budget_returns_best_point_inside(name):
    fun = zoo.lecture
    res = METHODS[name](fun, 0.0, 6.0, tol=1e-12, max_evals=4)
    assert int(res.status) == S.MAX_EVALS
    assert int(res.num_evals) == 4
    assert 0.0 <= float(res.lower) <= float(res.x) <= float(res.upper) <= 6.0
    assert float(res.value) == float(fun(res.x))


@pytest.mark.parametrize("name", NAMES)
def test_num_evals_counts_real_calls(name, maybe_jit):
    counter = EvalCounter(zoo.lecture)
    res = maybe_jit(lambda lo, hi: METHODS[name](counter, lo, hi, tol=1e-7, max_evals=100))(
        0.0, 6.0
    )
    jax.effects_barrier()
    assert counter.count == int(res.num_evals)


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager(name):
    problem = zoo.INTERVAL[0]
    run = functools.partial(METHODS[name], problem.fun, tol=1e-8, max_evals=100)
    eager = run(problem.lower, problem.upper)
    jitted = jax.jit(run)(problem.lower, problem.upper)
    assert tree_equal_bitwise(eager, jitted)


@pytest.mark.parametrize("name", NAMES)
def test_float32_preserved(name):
    lower, upper = jnp.float32(0.0), jnp.float32(6.0)
    fun = lambda x: zoo.lecture(x).astype(jnp.float32)
    res = METHODS[name](fun, lower, upper, tol=1e-4, max_evals=100)
    assert res.x.dtype == jnp.float32 and res.value.dtype == jnp.float32
    assert res.lower.dtype == jnp.float32 and res.upper.dtype == jnp.float32
    assert int(res.status) == S.SUCCESS
    assert abs(float(res.x) - 2 * np.sqrt(2)) <= 1e-4 + 4 * np.sqrt(np.finfo(np.float32).eps) * 6


@pytest.mark.parametrize("name", NAMES)
def test_vmap_mixed_batch_matches_unbatched_runs(name):
    """Good members bitwise equal to their own runs; failing ones get their own status."""

    def solve(lower, upper, shift):
        fun = lambda x: jnp.where(x > shift + 7.0, jnp.nan, jnp.cosh(x - shift))
        return METHODS[name](fun, lower, upper, tol=1e-9, max_evals=60)

    lowers = jnp.array([0.0, 1000.0, 2.0, -5.0, 0.0, -3.0])
    uppers = jnp.array([6.0, 1010.0, 1.0, 0.95, 4.0, jnp.inf])
    shifts = jnp.array([2.0, 1004.5, 0.0, 0.0, -30.0, 0.0])
    batched = jax.jit(jax.vmap(solve))(lowers, uppers, shifts)
    statuses = [int(s) for s in batched.status]
    assert statuses[0] == statuses[1] == statuses[3] == S.SUCCESS
    assert statuses[2] == statuses[5] == S.INVALID_INPUT
    assert statuses[4] == S.NONFINITE  # NaN everywhere beyond -23: the whole interval
    for i in range(len(lowers)):
        single = jax.jit(solve)(lowers[i], uppers[i], shifts[i])
        member = jax.tree.map(lambda leaf, i=i: leaf[i], batched)
        assert tree_equal_bitwise(member, single), (i, member, single)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_closed_over_parameter(name):
    centres = jnp.linspace(0.5, 5.5, 11)

    def solve(c):
        return METHODS[name](
            lambda x: (x - c) ** 2 + 0.1 * (x - c) ** 4, 0.0, 6.0, tol=1e-8, max_evals=200
        )

    res = jax.vmap(solve)(centres)
    assert bool(jnp.all(res.converged))
    np.testing.assert_allclose(res.x, centres, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_one_evaluation_per_iteration_under_vmap(name):
    fun = lambda x: jnp.expm1(x) - 2.0 * x
    solve = lambda lo, hi: METHODS[name](fun, lo, hi, tol=1e-8, max_evals=100)
    jaxpr = jax.make_jaxpr(jax.vmap(solve))(jnp.zeros(3), jnp.ones(3))
    bodies = while_bodies(jaxpr)
    assert len(bodies) == 1
    assert count_primitive(bodies[0], "expm1") == 1
    assert count_primitive(bodies[0], "cond") == 0
