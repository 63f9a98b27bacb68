"""Bracketing a minimum from a starting point: the bracket conditions, scipy, failures, vmap."""

from __future__ import annotations

import functools
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
from tests.helpers import (
    EvalCounter,
    EvalRecorder,
    count_primitive,
    tree_equal_bitwise,
    while_bodies,
)

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


def line_fun(x, i):
    """``LINE[i].fun(x)``, a `lax.switch` on the traced index ``i``: one compiled search
    serves every problem (an HLO conditional, which keeps the objective's operations out
    of the loop's fusions)."""
    return jax.lax.switch(i, [problem.fun for problem in LINE], x)


def check_bracket(fun, res, xmin=None):
    """The promise recomputed on the host: a < x < c, f(x) <= f(a), f(x) < f(c) (in the
    dtype of the result)."""
    x, lo, hi = float(res.x), float(res.lower), float(res.upper)
    assert int(res.status) == S.SUCCESS, res.message
    assert lo < x < hi
    dtype = res.x.dtype
    fx, flo, fhi = (float(fun(np.asarray(t, dtype))) for t in (x, lo, hi))
    # Equal up to rounding: batched `pow` and `cosh` may differ from the scalar ones by ulps.
    np.testing.assert_allclose(fx, float(res.value), rtol=64 * float(jnp.finfo(dtype).eps))
    assert fx <= flo and fx <= fhi and (fx < flo or fx < fhi)
    if xmin is not None:
        assert lo <= xmin <= hi


@jax.jit
@functools.partial(jax.vmap, in_axes=(0, 0, None))
def _bracket_line(x0, step, i):
    """`bracket` on ``LINE[i]`` from each ``(x0, step)``: one program for every problem."""
    return jaxls.bracket(lambda x: line_fun(x, i), x0, step_init=step)


@pytest.mark.x64(reason="starts up to 500 from the minimiser: exp(500) overflows float32")
@pytest.mark.parametrize("problem", LINE, ids=lambda p: p.name)
def test_brackets_contain_the_minimiser_from_both_sides(problem):
    x0s, steps = np.meshgrid(problem.xmin + OFFSETS, STEPS)
    x0s, steps = x0s.ravel(), steps.ravel()
    batched = _bracket_line(x0s, steps, LINE.index(problem))
    batched = jax.tree.map(np.asarray, batched)  # to the host once, not leaf by leaf
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


def trial_points(x0, step_init, grow, n):
    """x0, x0 + step_init, then b + grow (b - a): the points of a search that never turns."""
    points = [x0, x0 + step_init]
    while len(points) < n:
        points.append(points[-1] + grow * (points[-1] - points[-2]))
    return points


@pytest.mark.x64(reason="the trial points compared with a float64 recurrence at rtol 1e-15")
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
    # f(x0) == f(x0 + step_init) around a minimum between them: the first rise is a bracket.
    res = jaxls.bracket(lambda x: (x - 0.5) ** 2, 0.0)
    check_bracket(lambda x: (x - 0.5) ** 2, res, 0.5)
    assert int(res.num_evals) == 3
    # A plateau, then a dip: ties go on in the direction of `step_init`.
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


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_overflowing_objective_is_nonfinite(dtype):
    # x**3 overflows to -inf long before the trial points do.
    res = jaxls.bracket(lambda x: x**3, jnp.asarray(1.0, dtype), max_evals=5000)
    assert int(res.status) == S.NONFINITE and int(res.num_evals) < 5000
    assert np.isfinite(float(res.x)) and float(res.value) == float(res.x**3)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_nonfinite_values(dtype):
    for bad in [jnp.nan, -jnp.inf, jnp.inf]:
        fun = lambda x, bad=bad: jnp.where(x > 5.0, bad, -x)
        res = jaxls.bracket(fun, jnp.asarray(0.0, dtype))
        assert int(res.status) == S.NONFINITE
        one = jnp.asarray(1.0, dtype)
        assert float(res.x) == float(one + jnp.asarray(1.618034, dtype) * one)  # before 5.236
        assert float(res.value) == float(fun(res.x))
        assert float(res.lower) <= float(res.x) <= float(res.upper) <= 5.0
    res = jaxls.bracket(lambda x: jnp.nan * x, 3.0)  # the very first value: x0 returned
    assert int(res.status) == S.NONFINITE and int(res.num_evals) == 1
    assert float(res.x) == 3.0 and np.isnan(float(res.value))
    res = jaxls.bracket(lambda x: jnp.where(x > 3.5, jnp.nan, x * x), 3.0)  # NaN at x0 + step_init
    assert int(res.status) == S.NONFINITE and int(res.num_evals) == 2
    assert float(res.x) == 3.0 and float(res.value) == 9.0


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"x0": np.nan}, ValueError, "x0"),
        ({"x0": -np.inf}, ValueError, "x0"),
        ({"step_init": 0.0}, ValueError, "step_init"),
        ({"step_init": np.inf}, ValueError, "step_init"),
        ({"step_init": np.nan}, ValueError, "step_init"),
        ({"x0": 1e20, "step_init": 1.0}, ValueError, "step_init"),  # x0 + step_init == x0
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


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_traced_bad_input_gives_invalid_status(dtype):
    counter = EvalCounter(lambda x: (x - 0.3) ** 2)
    solve = jax.jit(lambda x0, step, grow: jaxls.bracket(counter, x0, step_init=step, grow=grow))
    big = 0.9 * float(jnp.finfo(dtype).max)
    for x0, step, grow in [
        (np.nan, 1.0, 2.0),
        (np.inf, 1.0, 2.0),
        (0.0, 0.0, 2.0),
        (0.0, np.nan, 2.0),
        (0.0, -np.inf, 2.0),
        (1e20, 1.0, 2.0),  # too small to move x0
        (big, big, 2.0),  # x0 + step overflows
        (0.0, 1.0, 1.0),
        (0.0, 1.0, np.nan),
        (0.0, 1.0, 1.0 + 1e-20),  # rounds to 1
    ]:
        x0, step, grow = (jnp.asarray(v, dtype) for v in (x0, step, grow))
        res = solve(x0, step, grow)
        assert int(res.status) == S.INVALID_INPUT and int(res.num_evals) == 0
        assert all(np.isnan(float(leaf)) for leaf in (res.x, res.value, res.lower, res.upper))
    jax.effects_barrier()
    assert counter.count == 0


def _solve_member(x0, step_init, centre, curvature, barrier):
    fun = lambda x: jnp.where(
        x > barrier, jnp.nan, curvature * (x - centre) ** 2 - (1 - curvature) * x
    )
    return jaxls.bracket(fun, x0, step_init=step_init)


def test_vmap_mixed_batch_matches_unbatched_runs():
    # good, good far away, invalid x0, invalid step_init, unbounded below, NaN region.
    batch = {
        "x0": jnp.array([0.0, -500.0, jnp.nan, 0.0, 0.0, 0.0]),
        "step_init": jnp.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0]),
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
        res = jaxls.bracket(fun, x0, step_init=step)
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
    eager = jaxls.bracket(fun, -3.0, step_init=0.1)
    jitted = jax.jit(lambda x0, step: jaxls.bracket(fun, x0, step_init=step))(-3.0, 0.1)
    assert tree_equal_bitwise(eager, jitted)


def test_one_evaluation_per_iteration_and_no_cond():
    fun = lambda x: jnp.expm1(x) - 2.0 * x  # expm1 marks an evaluation
    solve = lambda x0, step: jaxls.bracket(fun, x0, step_init=step)
    for jaxpr in [
        jax.make_jaxpr(solve)(0.0, 1.0),
        jax.make_jaxpr(jax.vmap(solve))(jnp.zeros(3), jnp.ones(3)),
    ]:
        bodies = while_bodies(jaxpr)
        assert len(bodies) == 1
        assert count_primitive(bodies[0], "expm1") == 1
        assert count_primitive(jaxpr, "expm1") == 1
        assert count_primitive(jaxpr, "cond") == 0


@functools.partial(jax.jit, static_argnames="tol")
def _bracket_then_golden(x0, i, *, tol):
    """A bracket of ``LINE[i]`` from ``x0``, then golden section on it: one program (per
    dtype and ``tol``) for every problem."""
    fun = lambda x: line_fun(x, i)
    b = jaxls.bracket(fun, x0)
    return b, jaxls.golden_section(fun, b.lower, b.upper, tol=tol)


@pytest.mark.parametrize(("dtype", "tol"), [(jnp.float64, 1e-7), (jnp.float32, 1e-3)])
@pytest.mark.parametrize("problem", LINE, ids=lambda p: p.name)
def test_composition_with_golden_section(problem, dtype, tol):
    """A bracket, then golden section on it: ``SUCCESS`` within ``tol`` of the minimiser,
    or ``ROUNDING`` where values are flat to rounding there."""
    eps = float(jnp.finfo(dtype).eps)
    far = [-37.0, 0.2, 90.0] if dtype == jnp.float64 else [-7.0, 0.2, 12.0]  # exp(90) overflows
    for x0 in [problem.xmin + offset for offset in far]:
        b, res = _bracket_then_golden(jnp.asarray(x0, dtype), LINE.index(problem), tol=tol)
        check_bracket(problem.fun, b, problem.xmin)
        rounding = 8 * eps * max(abs(problem.xmin), 1.0)
        if int(res.status) == S.SUCCESS:
            assert abs(float(res.x) - problem.xmin) <= tol + rounding
        else:
            assert int(res.status) == S.ROUNDING
            slack = 8 * np.sqrt(eps) * max(abs(problem.xmin), 1.0)
            assert abs(float(res.x) - problem.xmin) <= tol + slack
        assert float(res.value) <= float(b.value)


@jax.jit
def _bracket_power(x0, step, grow, centre, power):
    fun = lambda x: jnp.abs(x - centre) ** power
    return jaxls.bracket(fun, x0, step_init=step, grow=grow, max_evals=200)


@pytest.mark.x64(reason="random starts 1e4 from 0, the bracket recomputed in float64")
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


# --- the interval contract, for the one search that starts from a point -------------------


def test_has_aux_returns_the_aux_at_x(maybe_jit):
    fun = lambda x, c: ((x - c) ** 2, {"x": x, "n": jnp.int32(5)})
    solve = lambda x0, c: jaxls.bracket(lambda x: fun(x, c), x0, has_aux=True)
    x0s = jnp.array([0.0, 3.0, jnp.nan])  # the last one invalid
    batched = jax.jit(jax.vmap(solve))(x0s, jnp.array([10.0, -4.0, 1.0]))
    assert [int(s) for s in batched.status] == [S.SUCCESS, S.SUCCESS, S.INVALID_INPUT]
    for i, c in enumerate([10.0, -4.0]):
        res = maybe_jit(solve)(x0s[i], c)
        assert tree_equal_bitwise(res, jax.tree.map(lambda leaf, i=i: leaf[i], batched))
        assert float(res.aux["x"]) == float(res.x) and int(res.aux["n"]) == 5
    assert float(batched.aux["x"][2]) == 0.0 and int(batched.aux["n"][2]) == 0  # zeros


@pytest.mark.parametrize(
    ("fun", "kwargs", "error", "message"),
    [
        (3.0, {}, TypeError, "`fun` must be a function"),
        (lambda x: jnp.stack([x, x]), {}, TypeError, "must return a real scalar"),
        (lambda x: x + 1j, {}, TypeError, "complex"),
        (lambda x: x**2, {"has_aux": True}, TypeError, "pair"),
        (lambda x: x**2, {"has_aux": "yes"}, TypeError, "`has_aux`"),
        (lambda x: x**2, {"x0": 1j}, TypeError, "`x0`"),
        (lambda x: x**2, {"x0": jnp.zeros(2)}, ValueError, "`x0`"),
        (lambda x: x**2, {"step_init": jnp.asarray(0.0)}, ValueError, "`step_init`"),
        (lambda x: x**2, {"grow": jnp.asarray(0.5)}, ValueError, "`grow`"),
        (lambda x: x**2, {"grow": 1.001, "x0": jnp.bfloat16(0)}, ValueError, "`grow`"),
        (lambda x: x**2, {"x0": 1e39}, ValueError, "`x0`"),  # overflows float32
    ],
    ids=range(11),
)
def test_bad_input_names_the_call_and_argument(fun, kwargs, error, message):
    kwargs = {"x0": 0.0} | kwargs
    with pytest.raises(error, match=rf"`jaxls\.bracket.*{message}"):
        jaxls.bracket(fun, kwargs.pop("x0"), **kwargs)


def test_every_constant_may_be_traced():
    fun = lambda x: (x - 7.0) ** 2
    expected = jaxls.bracket(fun, 0.0, step_init=0.5, grow=2.0)
    for key, value in [("x0", 0.0), ("step_init", 0.5), ("grow", 2.0)]:
        kwargs = {"x0": 0.0, "step_init": 0.5, "grow": 2.0}
        solve = jax.jit(lambda v, key=key, kw=kwargs: jaxls.bracket(fun, **(kw | {key: v})))
        assert tree_equal_bitwise(solve(value), expected)
        bad = {"x0": jnp.inf, "step_init": 0.0, "grow": 0.9}[key]
        assert int(solve(bad).status) == S.INVALID_INPUT


def test_dtype_rule_and_invalid_members_under_vmap():
    """bfloat16 ``x0`` with a float32 objective is searched in float32; under vmap an
    invalid member is evaluated (results discarded) only at its ``x0``, or 0 if not finite."""
    res = jaxls.bracket(lambda x: ((x - 3.0) ** 2).astype(jnp.float32), jnp.bfloat16(0.0))
    assert {res.x.dtype, res.value.dtype, res.lower.dtype} == {jnp.dtype(jnp.float32)}
    check_bracket(lambda x: (x - 3.0) ** 2, res, 3.0)
    recorder = EvalRecorder(lambda x, c: (x - c) ** 2)
    x0s, steps = jnp.array([0.0, 5.0, jnp.nan]), jnp.array([1.0, 0.0, 1.0])
    centres = jnp.array([3.0, 1000.0, 2000.0])
    batched = jax.vmap(lambda x0, s, c: jaxls.bracket(lambda x: recorder(x, c), x0, step_init=s))(
        x0s, steps, centres
    )
    jax.effects_barrier()
    assert [int(s) for s in batched.status] == [S.SUCCESS, S.INVALID_INPUT, S.INVALID_INPUT]
    points, values = np.asarray(recorder.points), np.asarray(recorder.values)
    for centre, at in [(1000.0, 5.0), (2000.0, 0.0)]:
        mine = points[np.isclose(values, (points - centre) ** 2, rtol=1e-6)]
        assert len(mine) > 0 and np.all(mine == at)
