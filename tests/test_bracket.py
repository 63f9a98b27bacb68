"""Bracketing a minimum from a starting point: the bracket conditions, scipy, failures, vmap."""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

import jaxls
from jaxls import zoo
from tests.helpers import EvalCounter, count_primitive, tree_equal_bitwise, while_bodies

S = jaxls.Status
EPS = np.finfo(np.float64).eps


class LineProblem(NamedTuple):
    name: str
    fun: object
    xmin: float  # the minimiser on the whole real line (unimodal there)


UNIMODAL_ON_THE_LINE = {
    "quadratic",
    "far_quadratic",
    "quartic",
    "exp_linear",
    "cosh",
    "abs",
    "gamma_like",
    "negative_side",
}
LINE = tuple(
    LineProblem(p.name, p.fun, p.xmin) for p in zoo.INTERVAL if p.name in UNIMODAL_ON_THE_LINE
)
OFFSETS = np.array([-300.0, -20.0, -1.5, -0.3, 0.4, 2.0, 25.0, 500.0])
STEPS = np.array([1.0, -0.5, 1e-3, -7.0])


def check_bracket(fun, res, xmin=None):
    """The promise recomputed on the host: a < x < c, f(x) <= f(a), f(x) < f(c)."""
    x, lo, hi = float(res.x), float(res.lower), float(res.upper)
    assert int(res.status) == S.SUCCESS, res.message
    assert lo < x < hi
    fx, flo, fhi = (float(fun(np.float64(t))) for t in (x, lo, hi))
    # Equal up to rounding: batched `pow` and `cosh` may differ from the scalar ones by ulps.
    np.testing.assert_allclose(fx, float(res.value), rtol=64 * EPS)
    assert fx <= flo and fx <= fhi and (fx < flo or fx < fhi)
    if xmin is not None:
        assert lo <= xmin <= hi


@pytest.mark.parametrize("problem", LINE, ids=lambda p: p.name)
def test_brackets_contain_the_minimiser_from_both_sides(problem):
    x0s, steps = np.meshgrid(problem.xmin + OFFSETS, STEPS)
    x0s, steps = x0s.ravel(), steps.ravel()
    solve = jax.jit(jax.vmap(lambda x0, step: jaxls.bracket(problem.fun, x0, step=step)))
    batched = solve(x0s, steps)
    for i, (x0, step) in enumerate(zip(x0s, steps, strict=True)):
        res = jax.tree.map(lambda leaf, i=i: leaf[i], batched)
        check_bracket(problem.fun, res, problem.xmin)
        # Second oracle: scipy's bracket (parabolic steps, grow limit) also holds xmin.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            xa, _, xc, *_ = scipy.optimize.bracket(
                lambda t: float(problem.fun(t)), xa=x0, xb=x0 + step, maxiter=10_000
            )
        assert min(xa, xc) <= problem.xmin <= max(xa, xc)


def trial_points(x0, step, grow, n):
    """x0, x0 + step, then b + grow (b - a): the points of a search that never turns."""
    points = [x0, x0 + step]
    while len(points) < n:
        points.append(points[-1] + grow * (points[-1] - points[-2]))
    return points


def test_evaluation_count_on_a_quadratic():
    # Downhill from 0 until the first rise, at the sixth point.
    res = jaxls.bracket(lambda x: (x - 10.0) ** 2, 0.0)
    points = trial_points(0.0, 1.0, 1.618034, 6)
    assert int(res.num_evals) == 6 and int(res.status) == S.SUCCESS
    np.testing.assert_allclose([res.lower, res.x, res.upper], points[3:], rtol=1e-15)
    # Uphill first step: turn round at x0 and go the other way, from 0 through -1.
    res = jaxls.bracket(lambda x: (x + 10.0) ** 2, 0.0)
    points = trial_points(1.0, -1.0, 1.618034, 6)
    assert int(res.num_evals) == 6 and int(res.status) == S.SUCCESS
    np.testing.assert_allclose([res.upper, res.x, res.lower], points[3:], rtol=1e-15)


def test_non_unimodal_gives_a_local_minimum():
    for x0 in [-10.0, -1.0, 0.5, 4.0, 9.0]:
        res = jaxls.bracket(zoo.lecture, x0)
        check_bracket(zoo.lecture, res)
        assert any(float(res.lower) <= m <= float(res.upper) for m in [-(8**0.5), 8**0.5])


def test_flat_start_and_plateaus():
    # f(x0) == f(x0 + step) around a minimum between them: the first rise is a bracket.
    res = jaxls.bracket(lambda x: (x - 0.5) ** 2, 0.0)
    check_bracket(lambda x: (x - 0.5) ** 2, res, 0.5)
    assert int(res.num_evals) == 3
    # A plateau, then a dip: ties go on in the direction of `step`.
    fun = lambda x: jnp.minimum(1.0, (x - 10.0) ** 2)
    res = jaxls.bracket(fun, 0.0)
    check_bracket(fun, res, 10.0)
    # Flat everywhere, or flat once exp(-x) underflows: no strict rise, no bracket.
    for fun in [lambda x: 0.0 * x, lambda x: jnp.exp(-x)]:
        res = jaxls.bracket(fun, 0.0)
        assert int(res.status) == S.NO_BRACKET and int(res.num_evals) == 50


@pytest.mark.parametrize("max_evals", [3, 50, 5000])
def test_unbounded_or_monotone_gives_no_bracket(max_evals):
    for fun in [lambda x: -x, lambda x: jnp.exp(-x), lambda x: jnp.exp(x), lambda x: -jnp.tanh(x)]:
        res = jaxls.bracket(fun, 1.0, max_evals=max_evals)
        assert int(res.status) == S.NO_BRACKET
        # Stops at the budget, or earlier once the next step would overflow.
        assert 3 <= int(res.num_evals) <= max_evals
        assert np.isfinite(float(res.x)) and np.isfinite(float(res.value))
        assert float(res.value) == float(fun(res.x))
        assert float(res.x) in (float(res.lower), float(res.upper))


def test_overflowing_objective_is_nonfinite():
    # x**3 overflows to -inf long before the trial points do.
    res = jaxls.bracket(lambda x: x**3, 1.0, max_evals=5000)
    assert int(res.status) == S.NONFINITE and int(res.num_evals) < 5000
    assert np.isfinite(float(res.x)) and float(res.value) == float(res.x) ** 3


def test_nonfinite_values():
    for bad in [jnp.nan, -jnp.inf, jnp.inf]:
        fun = lambda x, bad=bad: jnp.where(x > 5.0, bad, -x)
        res = jaxls.bracket(fun, 0.0)
        assert int(res.status) == S.NONFINITE
        assert float(res.x) == 1 + 1.618034  # the last finite point before 5.236
        assert float(res.value) == float(fun(res.x))
        assert float(res.lower) <= float(res.x) <= float(res.upper) <= 5.0
    res = jaxls.bracket(lambda x: jnp.nan * x, 3.0)  # the very first value: x0 returned
    assert int(res.status) == S.NONFINITE and int(res.num_evals) == 1
    assert float(res.x) == 3.0 and np.isnan(float(res.value))
    res = jaxls.bracket(lambda x: jnp.where(x > 3.5, jnp.nan, x * x), 3.0)  # NaN at x0 + step
    assert int(res.status) == S.NONFINITE and int(res.num_evals) == 2
    assert float(res.x) == 3.0 and float(res.value) == 9.0


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"x0": np.nan}, ValueError, "x0"),
        ({"x0": -np.inf}, ValueError, "x0"),
        ({"step": 0.0}, ValueError, "step"),
        ({"step": np.inf}, ValueError, "step"),
        ({"step": np.nan}, ValueError, "step"),
        ({"x0": 1e20, "step": 1.0}, ValueError, "step"),  # x0 + step == x0
        ({"grow": 1.0}, ValueError, "grow"),
        ({"grow": 0.5}, ValueError, "grow"),
        ({"grow": np.nan}, ValueError, "grow"),
        ({"max_evals": 2}, ValueError, "max_evals"),
        ({"max_evals": 10.0}, TypeError, "max_evals"),
    ],
)
def test_concrete_bad_input_raises(kwargs, error, argument):
    kwargs = {"x0": 0.0} | kwargs
    with pytest.raises(error, match=rf"jaxls\.bracket.*`{argument}`"):
        jaxls.bracket(lambda x: x**2, kwargs.pop("x0"), **kwargs)


def test_traced_bad_input_gives_invalid_status():
    counter = EvalCounter(lambda x: (x - 0.3) ** 2)
    solve = jax.jit(lambda x0, step, grow: jaxls.bracket(counter, x0, step=step, grow=grow))
    for x0, step, grow in [
        (np.nan, 1.0, 2.0),
        (np.inf, 1.0, 2.0),
        (0.0, 0.0, 2.0),
        (0.0, np.nan, 2.0),
        (0.0, -np.inf, 2.0),
        (1e20, 1.0, 2.0),  # too small to move x0
        (1e308, 1e308, 2.0),  # x0 + step overflows
        (0.0, 1.0, 1.0),
        (0.0, 1.0, np.nan),
    ]:
        res = solve(x0, step, grow)
        assert int(res.status) == S.INVALID_INPUT and int(res.num_evals) == 0
        assert all(np.isnan(float(leaf)) for leaf in (res.x, res.value, res.lower, res.upper))
    jax.effects_barrier()
    assert counter.count == 0


def _solve_member(x0, step, centre, curvature, barrier):
    fun = lambda x: jnp.where(
        x > barrier, jnp.nan, curvature * (x - centre) ** 2 - (1 - curvature) * x
    )
    return jaxls.bracket(fun, x0, step=step)


def test_vmap_mixed_batch_matches_unbatched_runs():
    # good, good far away, invalid x0, invalid step, unbounded below, NaN region.
    batch = {
        "x0": jnp.array([0.0, -500.0, jnp.nan, 0.0, 0.0, 0.0]),
        "step": jnp.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0]),
        "centre": jnp.array([2.0, 1000.25, 2.0, 2.0, 2.0, 20.0]),
        "curvature": jnp.array([1.0, 1.0, 1.0, 1.0, 0.0, 1.0]),
        "barrier": jnp.array([jnp.inf, jnp.inf, jnp.inf, jnp.inf, jnp.inf, 5.0]),
    }
    batched = jax.jit(jax.vmap(_solve_member))(**batch)
    assert [int(s) for s in batched.status] == [
        S.SUCCESS,
        S.SUCCESS,
        S.INVALID_INPUT,
        S.INVALID_INPUT,
        S.NO_BRACKET,
        S.NONFINITE,
    ]
    assert [int(n) for n in batched.num_evals[2:]] == [0, 0, 50, 4]
    single = jax.jit(_solve_member)
    for i in range(6):
        member = jax.tree.map(lambda leaf, i=i: leaf[i], batched)
        assert tree_equal_bitwise(member, single(**{k: v[i] for k, v in batch.items()})), i
    for i in range(2):
        member = jax.tree.map(lambda leaf, i=i: leaf[i], batched)
        check_bracket(lambda x, i=i: (x - batch["centre"][i]) ** 2, member, batch["centre"][i])


def test_float32_preserved():
    fun = lambda x: (x - 3.0) ** 2
    for x0, step in [(jnp.float32(-40.0), 1.0), (-40.0, jnp.float32(0.25))]:
        res = jaxls.bracket(fun, x0, step=step)
        for leaf in (res.x, res.value, res.lower, res.upper):
            assert leaf.dtype == jnp.float32
        assert int(res.status) == S.SUCCESS
        assert float(res.lower) < float(res.x) < float(res.upper)
        assert float(res.lower) <= 3.0 <= float(res.upper)
        assert float(res.value) <= min(float(fun(res.lower)), float(fun(res.upper)))


def test_num_evals_counts_real_calls(maybe_jit):
    for fun in [lambda x: (x - 40.0) ** 2, lambda x: -x, lambda x: jnp.where(x > 5, jnp.nan, -x)]:
        counter = EvalCounter(fun)
        res = maybe_jit(lambda x0, c=counter: jaxls.bracket(c, x0))(0.0)
        jax.effects_barrier()
        assert counter.count == int(res.num_evals)


def test_jit_equals_eager():
    fun = zoo.INTERVAL[0].fun
    eager = jaxls.bracket(fun, -3.0, step=0.1)
    jitted = jax.jit(lambda x0, step: jaxls.bracket(fun, x0, step=step))(-3.0, 0.1)
    assert tree_equal_bitwise(eager, jitted)


def test_one_evaluation_per_iteration_and_no_cond():
    fun = lambda x: jnp.expm1(x) - 2.0 * x  # expm1 marks an evaluation
    solve = lambda x0, step: jaxls.bracket(fun, x0, step=step)
    for jaxpr in [
        jax.make_jaxpr(solve)(0.0, 1.0),
        jax.make_jaxpr(jax.vmap(solve))(jnp.zeros(3), jnp.ones(3)),
    ]:
        bodies = while_bodies(jaxpr)
        assert len(bodies) == 1
        assert count_primitive(bodies[0], "expm1") == 1
        assert count_primitive(jaxpr, "expm1") == 1
        assert count_primitive(jaxpr, "cond") == 0


@pytest.mark.parametrize("problem", LINE, ids=lambda p: p.name)
def test_composition_with_golden_section(problem):
    @jax.jit
    def minimise(x0):
        b = jaxls.bracket(problem.fun, x0)
        return b, jaxls.golden_section(problem.fun, b.lower, b.upper, tol=1e-7)

    for x0 in [problem.xmin - 37.0, problem.xmin + 0.2, problem.xmin + 90.0]:
        b, res = minimise(x0)
        check_bracket(problem.fun, b, problem.xmin)
        assert int(res.status) == S.SUCCESS
        slack = 4 * np.sqrt(EPS) * max(abs(problem.xmin), 1.0)
        assert abs(float(res.x) - problem.xmin) <= 1e-7 + slack
        assert float(res.value) <= float(b.value)


@jax.jit
def _bracket_power(x0, step, grow, centre, power):
    fun = lambda x: jnp.abs(x - centre) ** power
    return jaxls.bracket(fun, x0, step=step, grow=grow, max_evals=200)


@given(
    x0=st.floats(-1e4, 1e4),
    centre=st.floats(-1e4, 1e4),
    step=st.floats(1e-3, 1e2),
    sign=st.sampled_from([-1.0, 1.0]),
    grow=st.floats(1.2, 3.0),
    power=st.floats(0.5, 4.0),
)
def test_random_unimodal_problems(x0, centre, step, sign, grow, power):
    res = _bracket_power(x0, sign * step, grow, centre, power)
    check_bracket(lambda x: np.abs(x - centre) ** power, res, centre)
    # Trial steps s grow, s grow^2, ...: enough of them to pass the minimiser, then one more.
    distance = abs(x0 - centre) + step
    passes = math.ceil(math.log1p(distance * (grow - 1) / (step * grow)) / math.log(grow))
    assert int(res.num_evals) <= 2 + passes + 2
