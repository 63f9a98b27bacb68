"""The contract every tolerance-driven exact search shares, checked once for all of them.

Each test runs the four searches of `tests.interval_methods` (dichotomy, golden section,
parabolic, Brent). Method-specific behaviour (evaluation counts, fixed budgets, starting
points, comparisons with scipy's own methods) lives in the per-method test files.
"""

from __future__ import annotations

import functools
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
    EPS,
    EvalCounter,
    EvalRecorder,
    assert_members_match,
    count_primitive,
    guarded,
    halvings,
    on_knife_edge,
    slack,
    tree_equal_bitwise,
    while_bodies,
    zoo_solver,
)
from tests.interval_methods import METHODS, START

NAMES = sorted(METHODS)
S = jaxls.Status


@functools.cache
def _grid_minimiser(problem):
    """The minimiser of a dense NumPy grid, and the grid step."""
    grid = np.linspace(problem.lower, problem.upper, 200_001)
    values = np.asarray(jax.vmap(problem.fun)(jnp.asarray(grid)))
    return grid[np.argmin(values)], grid[1] - grid[0]


@functools.cache
def _scipy_bounded(problem):
    return scipy.optimize.minimize_scalar(
        lambda t: float(problem.fun(t)),
        bounds=(problem.lower, problem.upper),
        method="bounded",
        options={"xatol": 1e-9},
    ).x


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("problem", zoo.INTERVAL, ids=lambda p: p.name)
def test_zoo_oracles(name, problem):
    """Every zoo problem, at a loose and at a tight tolerance, jitted and eager alike.

    The objective is NaN outside the interval, so ``SUCCESS`` also proves that the search
    never evaluated there. Oracle 1 is the method's promise recomputed in NumPy: ``x`` in
    the final bracket, which certifies the tolerance and holds the minimiser of a dense
    grid; oracle 2 is scipy's bounded Brent.
    """
    solve = zoo_solver(name, problem)
    fun = guarded(problem.fun, problem.lower, problem.upper)
    eager = METHODS[name](fun, problem.lower, problem.upper, tol=1e-6, max_evals=500)
    best, step = _grid_minimiser(problem)
    scale = max(abs(problem.lower), abs(problem.upper))
    for tol in [1e-6, 1e-12]:
        res = solve(problem.lower, problem.upper, tol)
        if tol == 1e-6:
            assert tree_equal_bitwise(res, eager)
            assert float(res.value) == float(problem.fun(res.x))
        else:  # fun(x) compiled into the loop may differ from eager `fun(x)` in the last ulp
            np.testing.assert_allclose(res.value, problem.fun(res.x), rtol=4 * EPS, atol=0)
        x, lo, hi = float(res.x), float(res.lower), float(res.upper)
        assert int(res.status) == S.SUCCESS, (tol, res.message)
        assert problem.lower <= lo <= x <= hi <= problem.upper
        assert max(x - lo, hi - x) <= max(tol, float(resolution(lo, hi))), tol
        assert lo - step - slack(best) <= best <= hi + step + slack(best)
        assert abs(x - problem.xmin) <= tol + slack(problem.xmin)
        assert abs(x - _scipy_bounded(problem)) <= tol + slack(scale) + 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_never_evaluates_outside_the_interval(name):
    """NaN outside ``[lower, upper]`` (as for the zoo above), with the minimiser of the
    quadratic beyond either end, on an end, far from 0, or inside a short interval."""

    @jax.jit
    def solve(lower, upper, m):
        fun = guarded(lambda x: (x - m) ** 2, lower, upper)
        return METHODS[name](fun, lower, upper, tol=1e-12, max_evals=500)

    for lower, upper, m in [
        (1000.0, 1001.5, 999.0),
        (1000.0, 1001.5, 1003.0),
        (-3.0, -2.0, -2.0),
        (-3.0, -2.0, -3.0),
        (0.5, 0.75, 0.6),
        (1e-3, 2e-3, 0.0),
    ]:
        res = solve(lower, upper, m)
        assert int(res.status) == S.SUCCESS, res.message
        assert lower <= float(res.lower) <= float(res.x) <= float(res.upper) <= upper
        accuracy = max(1e-12, float(resolution(lower, upper)))
        assert abs(float(res.x) - min(max(m, lower), upper)) <= accuracy


BAD_ARGUMENTS = [
    ({"lower": 2.0, "upper": 1.0}, ValueError, "lower"),
    ({"lower": 1.0, "upper": 1.0}, ValueError, "lower"),
    ({"lower": -np.inf}, ValueError, "lower"),
    ({"lower": np.nan}, ValueError, "lower"),
    ({"upper": np.inf}, ValueError, "upper"),
    ({"upper": np.nan}, ValueError, "upper"),
    ({"tol": 0.0}, ValueError, "tol"),
    ({"tol": -1e-3}, ValueError, "tol"),
    ({"tol": np.nan}, ValueError, "tol"),
    ({"tol": np.inf}, ValueError, "tol"),
    ({"max_evals": 0}, ValueError, "max_evals"),
    ({"max_evals": 10.0}, TypeError, "max_evals"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("change", "error", "argument"), BAD_ARGUMENTS)
def test_concrete_bad_input_raises_naming_call_and_argument(name, change, error, argument):
    kwargs = {"lower": 0.0, "upper": 1.0, "tol": 1e-6, "max_evals": 50} | change
    with pytest.raises(error, match=rf"`jaxls\.{name}\(.*`{argument}`"):
        METHODS[name](lambda x: x**2, kwargs.pop("lower"), kwargs.pop("upper"), **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_traced_bad_input_gives_invalid_status_and_evaluates_nothing(name):
    counter = EvalCounter(lambda x: (x - 0.3) ** 2)

    @jax.jit
    def solve(lower, upper, tol):
        return METHODS[name](counter, lower, upper, tol=tol, max_evals=50)

    for lower, upper, tol in [
        (2.0, 1.0, 1e-6),
        (1.0, 1.0, 1e-6),
        (0.0, np.inf, 1e-6),
        (-np.inf, 0.0, 1e-6),
        (np.nan, 1.0, 1e-6),
        (0.0, np.nan, 1e-6),
        (0.0, 1.0, 0.0),
        (0.0, 1.0, -1.0),
        (0.0, 1.0, np.nan),
    ]:
        res = solve(lower, upper, tol)
        assert int(res.status) == S.INVALID_INPUT
        assert int(res.num_evals) == 0 and not bool(res.converged)
        assert np.isnan(float(res.x)) and np.isnan(float(res.value))
        assert tree_equal_bitwise((res.lower, res.upper), (lower, upper))  # as given
    jax.effects_barrier()
    assert counter.count == 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("lower", "dtype"),
    [(1e6, jnp.float64), (1e6, jnp.float32), (0.0, jnp.float32), (100.0, jnp.float32)],
)
def test_tolerance_below_resolution_terminates(name, lower, dtype):
    """``tol=1e-300`` is clipped to what the dtype resolves: the loop ends, eager and jit."""
    xmin = lower + 0.3
    run = lambda a, b: METHODS[name](lambda x: (x - xmin) ** 2, a, b, tol=1e-300, max_evals=500)
    lo, up = jnp.asarray(lower, dtype), jnp.asarray(lower + 1.0, dtype)
    res = run(lo, up)
    assert tree_equal_bitwise(jax.jit(run)(lo, up), res)
    assert int(res.status) == S.SUCCESS, res.message
    assert int(res.num_evals) < 500
    for leaf in (res.x, res.value, res.lower, res.upper):
        assert leaf.dtype == dtype
    spread = max(float(res.x - res.lower), float(res.upper - res.x))
    assert spread <= float(resolution(lo, up))
    # The final bracket holds the minimiser (as rounded to the dtype), up to rounding.
    xmin = float(jnp.asarray(xmin, dtype))
    rounding = 4 * float(jnp.finfo(dtype).eps) * abs(xmin)
    assert float(res.lower) - rounding <= xmin <= float(res.upper) + rounding


def _barrier(x, centre, low, high, bad):
    """``(x - centre)^2``, but ``bad`` (NaN or +-inf) below ``low`` and above ``high``."""
    return jnp.where((x < low) | (x > high), bad, (x - centre) ** 2)


# (centre, low, high, bad) on [0, 5]: the search must stop at the first non-finite value.
NONFINITE_CASES = [
    (2.0, -1.0, 0.7, jnp.nan),
    (2.0, -1.0, 0.1, jnp.nan),
    (2.0, -1.0, -1.0, jnp.nan),  # NaN everywhere: the very first value
    (4.0, -1.0, 2.5, jnp.nan),
    (3.0, -1.0, 3.01, jnp.inf),  # reached after many steps, from either side
    (3.0, -1.0, 2.99, jnp.inf),
    (2.0, -1.0, 2.4, jnp.inf),
    (2.0, -1.0, 2.4, -jnp.inf),
    (0.5, 1.0, 9.0, jnp.inf),  # below a point
    (4.0, 4.5, 9.0, jnp.nan),
]


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_value_stops_on_the_best_finite_point(name):
    """``NONFINITE``: the search stops at the first NaN or inf and returns the best finite
    point evaluated, with its value (or the first point, if its value was not finite)."""
    recorder = EvalRecorder(_barrier)
    run = lambda *params: METHODS[name](
        lambda x: recorder(x, *params), 0.0, 5.0, tol=1e-8, max_evals=100
    )
    solve = jax.jit(run)
    for params in NONFINITE_CASES:
        recorder.clear()
        res = solve(*params)
        jax.effects_barrier()
        points, values = recorder.points, recorder.values
        x, value = float(res.x), float(res.value)
        assert int(res.status) == S.NONFINITE, params
        assert int(res.num_evals) == len(points)
        assert np.all(np.isfinite(values[:-1])) and not np.isfinite(values[-1]), params
        assert 0.0 <= float(res.lower) <= x <= float(res.upper) <= 5.0
        np.testing.assert_array_equal(res.value, _barrier(res.x, *params))
        if len(points) == 1:
            assert x == points[0] == pytest.approx(START[name](0.0, 5.0), rel=4 * EPS)
        else:
            assert value == min(values[:-1]), params
            assert (x, value) in zip(points, values, strict=True)
    recorder.clear()
    assert tree_equal_bitwise(run(*NONFINITE_CASES[3]), solve(*NONFINITE_CASES[3]))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("max_evals", [1, 2, 3, 5])
def test_exhausted_budget_returns_best_point_inside(name, max_evals):
    recorder = EvalRecorder(zoo.lecture)
    run = lambda lo, up: METHODS[name](recorder, lo, up, tol=1e-12, max_evals=max_evals)
    res = run(0.0, 6.0)
    jax.effects_barrier()
    points, values = list(recorder.points), list(recorder.values)
    assert tree_equal_bitwise(jax.jit(run)(0.0, 6.0), res)
    assert int(res.status) == S.MAX_EVALS
    assert int(res.num_evals) == max_evals == len(points)
    assert 0.0 <= float(res.lower) <= float(res.x) <= float(res.upper) <= 6.0
    assert float(res.value) == float(zoo.lecture(res.x)) == min(values)
    assert (float(res.x), float(res.value)) in zip(points, values, strict=True)


COUNTED = [(p.name, p.fun, p.lower, p.upper) for p in zoo.INTERVAL[:4]] + [
    ("nan_beyond_4_int_bounds", lambda x: jnp.where(x > 4, jnp.nan, -x), 0, 5)
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", COUNTED, ids=lambda case: case[0])
def test_num_evals_counts_real_calls(name, case):
    """Eager and jitted: ``num_evals`` is the number of calls, each at a new point inside,
    the first at the method's starting point, ``(x, value)`` one of them; same results."""
    _, fun, lower, upper = case
    recorder = EvalRecorder(fun)
    run = lambda lo, up: METHODS[name](recorder, lo, up, tol=1e-7, max_evals=100)
    results = []
    for mode in [run, jax.jit(run)]:
        recorder.clear()
        res = mode(lower, upper)
        jax.effects_barrier()
        points = recorder.points
        assert len(points) == int(res.num_evals)
        assert all(lower <= p <= upper for p in points)
        assert len(set(points)) == len(points)  # each point is evaluated once
        assert points[0] == pytest.approx(START[name](lower, upper), rel=4 * EPS)
        assert (float(res.x), float(res.value)) in zip(points, recorder.values, strict=True)
        results.append(res)
    assert tree_equal_bitwise(*results)


@pytest.mark.parametrize("name", NAMES)
def test_float32_preserved(name):
    lecture32 = lambda x: zoo.lecture(x).astype(jnp.float32)
    eps32 = float(np.finfo(np.float32).eps)
    for fun, upper, tol, xmin, accuracy in [
        (lecture32, 6.0, 1e-4, 2 * np.sqrt(2), 1e-4 + 4 * np.sqrt(eps32) * 6),
        (lambda x: (x - 0.3) ** 2, 1.0, 1e-5, 0.3, 1e-5 + 4 * eps32),
    ]:
        run = lambda lo, up, fun=fun, tol=tol: METHODS[name](fun, lo, up, tol=tol, max_evals=100)
        lo, up = jnp.float32(0.0), jnp.float32(upper)
        res = run(lo, up)
        assert tree_equal_bitwise(jax.jit(run)(lo, up), res)
        for leaf in (res.x, res.value, res.lower, res.upper):
            assert leaf.dtype == jnp.float32
        assert int(res.status) == S.SUCCESS
        assert abs(float(res.x) - xmin) <= accuracy


BATCH_MAX_EVALS = 30
# Each member's (lower, upper, centre, barrier, tol), the status it must end with, and its
# evaluation count where the status fixes it.
BATCH = [
    ((0.0, 6.0, 2.0, jnp.inf, 1e-3), S.SUCCESS, None),
    ((1000.0, 1010.0, 1004.5, jnp.inf, 1e-3), S.SUCCESS, None),  # far from 0
    ((-5.0, 0.95, 3.0, jnp.inf, 1e-3), S.SUCCESS, None),  # minimiser at the upper end
    ((2.0, 1.0, 0.0, jnp.inf, 1e-3), S.INVALID_INPUT, 0),  # bounds not ordered
    ((-3.0, jnp.inf, 0.0, jnp.inf, 1e-3), S.INVALID_INPUT, 0),  # upper not finite
    ((0.0, 1.0, 0.3, jnp.inf, 0.0), S.INVALID_INPUT, 0),  # tol 0
    ((0.0, 5.0, 3.0, 3.3, 1e-3), S.NONFINITE, None),  # NaN beyond 3.3, near the minimiser
    ((0.0, 4.0, -30.0, -23.0, 1e-3), S.NONFINITE, 1),  # NaN everywhere: the first value
    ((0.0, 5.0, 2.0, jnp.inf, 1e-300), S.MAX_EVALS, BATCH_MAX_EVALS),  # cosh's flat bottom
]


def _batch_member(name, lower, upper, centre, barrier, tol):
    """``cosh(x - centre)``, NaN beyond ``barrier``."""
    fun = lambda x: jnp.where(x > barrier, jnp.nan, jnp.cosh(x - centre))
    return METHODS[name](fun, lower, upper, tol=tol, max_evals=BATCH_MAX_EVALS)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_mixed_batch_matches_unbatched_runs(name):
    """Every member bitwise equal to its own run; failing members get their own status."""
    solve = functools.partial(_batch_member, name)
    args = [jnp.array(column) for column in zip(*(row[0] for row in BATCH), strict=True)]
    batched = jax.jit(jax.vmap(solve))(*args)
    assert [int(s) for s in batched.status] == [int(row[1]) for row in BATCH]
    for (_, _, evals), n in zip(BATCH, batched.num_evals, strict=True):
        assert int(n) == evals if evals is not None else 1 < int(n) < BATCH_MAX_EVALS
    assert_members_match(batched, jax.jit(solve), *args)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_closed_over_parameter(name):
    """Minimisers inside, on both sides outside, and a NaN parameter (``NONFINITE``)."""
    centres = jnp.array([-2.0, -0.5, 0.5, 1.7, 3.0, 4.9, 5.5, 7.0, jnp.nan])

    def solve(c):
        fun = lambda x: (x - c) ** 2 + 0.1 * (x - c) ** 4
        return METHODS[name](fun, 0.0, 6.0, tol=1e-8, max_evals=200)

    res = jax.vmap(solve)(centres)
    assert [int(s) for s in res.status] == [S.SUCCESS] * 8 + [S.NONFINITE]
    np.testing.assert_allclose(res.x[:-1], np.clip(centres[:-1], 0.0, 6.0), rtol=0, atol=1e-8)
    assert_members_match(res, jax.jit(solve), centres)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batched", [False, True])
def test_one_evaluation_per_iteration_and_no_cond(name, batched):
    fun = lambda x: jnp.expm1(x) - 2.0 * x  # expm1 marks an evaluation
    solve = lambda lo, hi: METHODS[name](fun, lo, hi, tol=1e-8, max_evals=100)
    if batched:
        jaxpr = jax.make_jaxpr(jax.vmap(solve))(jnp.zeros(3), jnp.ones(3))
    else:
        jaxpr = jax.make_jaxpr(solve)(0.0, 1.0)
    bodies = while_bodies(jaxpr)
    assert len(bodies) == 1
    assert count_primitive(bodies[0], "expm1") == 1
    assert count_primitive(jaxpr, "expm1") == 1  # no evaluation outside the loop
    assert count_primitive(jaxpr, "cond") == 0


FAMILIES = ["cosh", "quartic", "power"]


@functools.cache
def _unimodal_solver(name):
    """One compilation per method: every parameter of the problem is a traced argument."""

    def solve(lower, upper, centre, family, scale, shape, power, tol, x_init):
        def fun(x):
            d = x - centre
            return jnp.select(
                [family == 0, family == 1],
                [scale * jnp.cosh(shape * d), scale * d**2 + shape * d**4],
                scale * jnp.abs(d) ** power,
            )

        start = {"x_init": x_init} if name == "parabolic" else {}  # the only starting point
        return METHODS[name](fun, lower, upper, tol=tol, max_evals=300, **start)

    return jax.jit(solve)


@pytest.mark.parametrize("name", NAMES)
@given(
    lower=st.floats(1.0, 1e4) | st.floats(-1e4, -1.0),
    width=st.floats(1e-2, 1e3),
    where=st.floats(-0.5, 1.5),
    family=st.sampled_from(FAMILIES),
    scale=st.floats(0.1, 10.0),
    shape=st.floats(0.1, 5.0),
    power=st.floats(0.5, 4.0),
    log_tol=st.floats(-8.0, -1.0),
    start=st.floats(0.01, 0.99),
)
def test_unimodal_problems_away_from_zero(
    name, lower, width, where, family, scale, shape, power, log_tol, start
):
    """Random unimodal problems: the minimiser (clipped to the interval) in the final bracket,
    which certifies the tolerance; for dichotomy, also its halving count."""
    upper = lower + width
    width = upper - lower
    centre = lower + where * width
    if family == "cosh":
        shape = min(shape, 400.0 / width)  # cosh(shape * d) stays finite: |d| <= 1.5 width
    tol = 10.0**log_tol * width
    res = _unimodal_solver(name)(
        lower,
        upper,
        centre,
        FAMILIES.index(family),
        scale,
        shape,
        power,
        tol,
        lower + start * width,
    )
    tol = max(tol, float(resolution(jnp.float64(lower), jnp.float64(upper))))
    x_star = min(max(centre, lower), upper)
    x, lo, hi = float(res.x), float(res.lower), float(res.upper)
    # Where values stop resolving the minimiser: cosh is flat to sqrt(eps) / shape; the
    # others resolve down to the rounding of x - centre.
    resolve = 8 * EPS * max(abs(lower), abs(upper))
    if family == "cosh":
        resolve += 4 * math.sqrt(EPS) / shape
    assert int(res.status) == S.SUCCESS
    assert lower <= lo <= x <= hi <= upper
    assert max(x - lo, hi - x) <= tol
    assert lo - resolve <= x_star <= hi + resolve
    assert abs(x - x_star) <= tol + resolve
    if name == "dichotomy" and not on_knife_edge(width, tol):
        k = halvings(width, tol)
        assert k + 1 <= int(res.num_evals) <= 2 * k + 1
