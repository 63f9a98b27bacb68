"""Golden-section and Fibonacci search: evaluation counts, fixed budgets, optimality."""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

import jaxls
from jaxls import zoo
from jaxls._src.interval.fibonacci import DELTA, fibonacci_numbers
from jaxls._src.interval.golden import RATIO
from tests.helpers import (
    zoo_rows,
    EvalCounter,
    assert_members_match,
    check_fixed_budget_loop,
    count_primitive,
    loop_eqns,
    member,
    tree_equal_bitwise,
    zoo_batch,
)

S = jaxls.Status


def theoretical_golden_evals(width: float, tol: float) -> int:
    """After n evaluations the best point is within RATIO**n * width of both bracket ends."""
    return max(1, math.ceil(math.log(tol / width) / math.log(RATIO)))


@jax.jit
def _golden_cosh(lower, upper, centre, scale, tol):
    fun = lambda x: jnp.cosh(scale * (x - centre) / (upper - lower))
    return jaxls.golden_section(fun, lower, upper, tol=tol, max_evals=200)


@pytest.mark.x64(reason="tolerances down to 1e-6 of the width, 1e4 from 0")
@given(
    lower=st.floats(-1e4, 1e4),
    width=st.floats(1e-2, 1e3),
    where=st.floats(-0.5, 1.5),
    scale=st.floats(0.1, 10.0),
    log_tol=st.floats(-6.0, -2.0),
)
def test_golden_evaluation_count_is_the_theoretical_one(lower, width, where, scale, log_tol):
    """``SUCCESS`` after exactly the theoretical count (values resolve the minimiser at
    these tolerances: no tie ends the search early)."""
    upper = lower + width
    centre = lower + where * width
    tol = max(10.0**log_tol * width, 1e-9 * max(abs(lower), abs(upper), 1.0))
    res = _golden_cosh(lower, upper, centre, scale, tol)
    expected = theoretical_golden_evals(float(np.float64(upper) - np.float64(lower)), tol)
    if (
        abs(
            math.log(tol / width) / math.log(RATIO) - round(math.log(tol / width) / math.log(RATIO))
        )
        < 1e-6
    ):
        return  # tol on a knife edge of the formula: rounding may go either way
    assert int(res.status) == S.SUCCESS
    assert int(res.num_evals) == expected
    # Oracle: the true minimiser (clipped to the interval) is inside the final bracket.
    x_star = min(max(centre, lower), upper)
    assert float(res.lower) <= x_star + 1e-9 * abs(x_star) + 1e-12
    assert x_star - 1e-9 * abs(x_star) - 1e-12 <= float(res.upper)
    slack = 4 * np.sqrt(np.finfo(float).eps) * width / scale + 1e-14 * abs(x_star)
    assert abs(float(res.x) - x_star) <= tol * (1 + 1e-9) + slack


@functools.partial(jax.jit, static_argnames="tol")
def _golden_on_the_smooth_zoo(lower, upper, i, *, tol):
    """`golden_section` on ``zoo.SMOOTH_INTERVAL[i]``: one program (per dtype and ``tol``)
    for every problem, ``i`` the traced index of a `lax.switch`."""
    funs = [problem.fun for problem in zoo.SMOOTH_INTERVAL]
    return jaxls.golden_section(lambda x: jax.lax.switch(i, funs, x), lower, upper, tol=tol)


@pytest.mark.parametrize(("dtype", "tol"), [(jnp.float32, 1e-2), (jnp.float64, 1e-7)])
def test_golden_against_scipy_golden_on_the_zoo(dtype, tol):
    """``SUCCESS`` within ``tol`` of scipy's golden; ``ROUNDING`` (float64 at 1e-7: values
    flat to rounding near some minima) within what the values resolve."""
    for i, problem in enumerate(zoo.SMOOTH_INTERVAL):
        lower, upper = jnp.asarray(problem.lower, dtype), jnp.asarray(problem.upper, dtype)
        res = _golden_on_the_smooth_zoo(lower, upper, i, tol=tol)
        with warnings.catch_warnings():  # scipy's golden may step far outside and overflow
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                ref = scipy.optimize.minimize_scalar(
                    lambda t, f=problem.fun: float(f(t)),
                    bracket=(problem.lower, problem.upper),
                    method="golden",
                    options={"xtol": 1e-10},
                ).x
            except RuntimeError:  # scipy found no bracket (minimum at a bound, say)
                ref = np.nan
        scale = max(abs(problem.lower), abs(problem.upper), 1.0)
        eps = float(jnp.finfo(dtype).eps)
        if int(res.status) == S.SUCCESS:
            slack = tol + 4 * np.sqrt(np.finfo(float).eps) * scale  # scipy's own accuracy
        else:
            assert int(res.status) == S.ROUNDING
            slack = tol + 8 * np.sqrt(eps) * scale
        if problem.lower <= ref <= problem.upper:  # scipy's golden may leave the interval
            assert abs(float(res.x) - ref) <= slack, problem.name
        assert abs(float(res.x) - problem.xmin) <= slack, problem.name


def test_golden_fixed_budget_equals_while_loop_run():
    problem = zoo.INTERVAL[0]
    run = jaxls.golden_section(problem.fun, problem.lower, problem.upper, tol=1e-2)
    n = int(run.num_evals)
    fixed = jaxls.golden_section(problem.fun, problem.lower, problem.upper, fixed_evals=n)
    assert int(run.status) == S.SUCCESS
    assert tree_equal_bitwise(run, fixed)


def test_fixed_budget_is_a_scan_without_predicate():
    """Batched: one scan, one evaluation a step, no predicate. Alone, each step is guarded
    by a `cond` on the status (a search that stopped makes no more calls), the evaluation
    inside it."""
    fun = lambda x: jnp.expm1(x) - 2.0 * x  # expm1 marks an evaluation
    for solve in [
        lambda lo, hi: jaxls.golden_section(fun, lo, hi, fixed_evals=12),
        lambda lo, hi: jaxls.fibonacci(fun, lo, hi, fixed_evals=12),
    ]:
        jaxpr = jax.make_jaxpr(jax.vmap(solve))(jnp.zeros(4), jnp.ones(4))
        check_fixed_budget_loop(jaxpr, "expm1", 12)
        alone = jax.make_jaxpr(solve)(0.0, 1.0)
        (scan,) = loop_eqns(alone, "scan")
        assert count_primitive(scan.params["jaxpr"], "cond") >= 1
        assert count_primitive(alone, "expm1") == 1


FIXED_PROBLEMS = zoo.INTERVAL[:4] + zoo.INTERVAL[-2:]


@pytest.mark.x64(reason="budgets up to 60 evaluations: widths down to 1e-12")
@pytest.mark.parametrize("n", [1, 2, 3, 5, 13, 30, 60])
def test_fibonacci_final_width_is_optimal(n):
    """``SUCCESS``: exactly ``n`` evaluations and the optimal width; ``ROUNDING`` only once
    the values are flat to rounding (some zoo minima, ``n = 60``), after fewer."""
    f_n = fibonacci_numbers(n)[n]
    # Many zoo problems in one compiled search: member i evaluates problem i.
    problems = zoo.INTERVAL if n == 13 else FIXED_PROBLEMS
    _, *batch = zoo_batch(problems)
    counter = EvalCounter(zoo_rows(problems))
    solve = lambda lo, up, i: jaxls.fibonacci(lambda x: counter(x, i), lo, up, fixed_evals=n)
    batched = jax.jit(jax.vmap(solve))(*batch)
    jax.effects_barrier()
    # One evaluation a step for every member, stopped or not (the batch runs in lockstep).
    assert counter.count == n * len(problems)
    batched = jax.tree.map(np.asarray, batched)  # to the host once, not leaf by leaf
    for i, problem in enumerate(problems):
        res = member(batched, i)
        width = problem.upper - problem.lower
        if n <= 30:
            assert int(res.status) == S.SUCCESS, problem.name
        if int(res.status) == S.ROUNDING:
            assert int(res.num_evals) < n and n == 60
            continue
        assert int(res.status) == S.SUCCESS
        assert int(res.num_evals) == n
        bound = width * (1 + 2 * DELTA) / f_n
        resolution = 64 * np.finfo(float).eps * max(abs(problem.lower), abs(problem.upper))
        assert float(res.upper - res.lower) <= bound + resolution, problem.name
        assert float(res.lower) <= float(res.x) <= float(res.upper)
        # fun(x) as computed in the loop; compiled code may differ from eager in the last ulp.
        eager = problem.fun(jnp.asarray(res.x))  # in JAX, as NumPy's pow may differ
        np.testing.assert_allclose(res.value, eager, rtol=4 * np.finfo(float).eps)
        # The minimiser stays in the bracket (when the bracket is still resolvable).
        if bound > 1e-6 * width:
            assert float(res.lower) - 1e-12 <= problem.xmin <= float(res.upper) + 1e-12, (
                problem.name
            )


@pytest.mark.x64(reason="budgets of 20: widths below float32's flat region of the lecture")
def test_fibonacci_beats_golden_for_the_same_budget():
    problem = zoo.INTERVAL[0]
    for n in [5, 10, 20]:
        fib = jaxls.fibonacci(problem.fun, problem.lower, problem.upper, fixed_evals=n)
        gold = jaxls.golden_section(problem.fun, problem.lower, problem.upper, fixed_evals=n)
        ratio = float(gold.upper - gold.lower) / float(fib.upper - fib.lower)
        assert 1.1 < ratio < 1.2 + 2 * DELTA  # phi**2 / sqrt(5) ~ 1.17 asymptotically


@pytest.mark.parametrize("solver", ["fibonacci", "golden_section"])
def test_fixed_budget_vmap_mixed_batch(solver):
    def solve(lower, upper, barrier):
        fun = lambda x: jnp.where(x > barrier, jnp.nan, (x - 1.0) ** 2)
        return getattr(jaxls, solver)(fun, lower, upper, fixed_evals=25)

    lowers = jnp.array([0.0, 2.0, 0.0, -1.0])
    uppers = jnp.array([3.0, 1.0, 3.0, jnp.nan])
    barriers = jnp.array([10.0, 10.0, -1.0, 10.0])
    batched = jax.jit(jax.vmap(solve))(lowers, uppers, barriers)
    assert [int(s) for s in batched.status] == [
        S.SUCCESS,
        S.INVALID_INPUT,
        S.NONFINITE,
        S.INVALID_INPUT,
    ]
    assert [int(n) for n in batched.num_evals] == [25, 0, 1, 0]
    assert 0.0 <= float(batched.x[2]) <= 3.0
    assert_members_match(batched, jax.jit(solve), lowers, uppers, barriers)


def test_fibonacci_float32():
    res = jaxls.fibonacci(lambda x: (x - 0.25) ** 2, jnp.float32(0), jnp.float32(1), fixed_evals=20)
    assert res.x.dtype == jnp.float32 and res.value.dtype == jnp.float32
    assert abs(float(res.x) - 0.25) < 1e-4


@pytest.mark.parametrize("bad", [0, -3])
def test_budget_validation(bad):
    with pytest.raises(ValueError, match=r"fibonacci.*`fixed_evals`"):
        jaxls.fibonacci(lambda x: x**2, 0.0, 1.0, fixed_evals=bad)
    with pytest.raises(ValueError, match=r"golden_section.*`fixed_evals`"):
        jaxls.golden_section(lambda x: x**2, 0.0, 1.0, fixed_evals=bad)
    with pytest.raises(TypeError, match=r"fibonacci.*`fixed_evals`"):
        jaxls.fibonacci(lambda x: x**2, 0.0, 1.0, fixed_evals=2.5)


def test_fibonacci_bad_bounds():
    with pytest.raises(ValueError, match=r"fibonacci.*`lower`"):
        jaxls.fibonacci(lambda x: x**2, 1.0, 0.0, fixed_evals=5)
    res = jax.jit(lambda lo: jaxls.fibonacci(lambda x: x**2, lo, 1.0, fixed_evals=5))(jnp.inf)
    assert int(res.status) == S.INVALID_INPUT and int(res.num_evals) == 0


def test_scalar_output_required():
    with pytest.raises(TypeError, match=r"golden_section.*scalar"):
        jaxls.golden_section(lambda x: jnp.stack([x, x]), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"golden_section\(lower=.*must be a scalar"):
        jaxls.golden_section(lambda x: x**2, jnp.zeros(3), jnp.ones(3))


def test_status_messages():
    res = jax.vmap(lambda lo: jaxls.golden_section(lambda x: x**2, lo, 1.0))(jnp.array([0.0, 2.0]))
    assert res.message[0].startswith("converged")
    assert "invalid" in res.message[1]
    assert all(status.message for status in S)
