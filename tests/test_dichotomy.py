"""Dichotomy: halvings and evaluation counts against a plain-Python run, fixed budgets.

The contract shared by every interval search (oracles on the zoo, failures, jit, vmap,
random unimodal problems with the halving count, ...) is checked in ``test_interval.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxls
from jaxls import zoo
from tests.helpers import (
    zoo_rows,
    EPS,
    EvalCounter,
    assert_members_match,
    check_fixed_budget_loop,
    guarded,
    halvings,
    member,
    tree_equal_bitwise,
    zoo_batch,
)

S = jaxls.Status


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


@jax.jit
def _dichotomy_on_the_zoo(lower, upper, tol, i):
    """`dichotomy` on ``zoo.INTERVAL[i]``: one program for every problem, ``i`` the traced
    index of a `lax.switch` (an HLO conditional: only problem ``i`` is evaluated)."""
    funs = [problem.fun for problem in zoo.INTERVAL]
    return jaxls.dichotomy(lambda x: jax.lax.switch(i, funs, x), lower, upper, tol=tol)


@pytest.mark.x64(reason="compared bit for bit with the method run in Python floats")
@pytest.mark.parametrize("problem", zoo.INTERVAL, ids=lambda p: p.name)
def test_zoo_halvings_and_counts_match_the_plain_python_run(problem):
    tol = 1e-6
    i = zoo.INTERVAL.index(problem)
    res = _dichotomy_on_the_zoo(problem.lower, problem.upper, tol, i)
    x, lo, hi = float(res.x), float(res.lower), float(res.upper)
    width = problem.upper - problem.lower
    k = halvings(width, tol)
    assert int(res.status) == S.SUCCESS, res.message
    # The cost claim: k halvings for 1 + (1 or 2 per halving) evaluations.
    assert k + 1 <= int(res.num_evals) <= 2 * k + 1
    np.testing.assert_allclose(hi - lo, width / 2**k, rtol=1e-9)
    np.testing.assert_allclose(x, lo / 2 + hi / 2, rtol=4 * EPS)  # x is the midpoint
    # The method run in plain Python floats: same halvings and points.
    a, b, c, done = reference(problem.fun, problem.lower, problem.upper, int(res.num_evals))
    assert done == k
    assert (a, b, c) == (lo, hi, x)


FIXED = zoo.INTERVAL[:4] + zoo.INTERVAL[-2:]


@pytest.mark.x64(reason="compared bit for bit with the method run in Python floats")
@pytest.mark.parametrize("n", [1, 2, 3, 4, 9, 24])
def test_fixed_budget_width_matches_halvings_completed(n):
    """Exactly ``n`` evaluations, and the bracket and point of the plain-Python run."""
    _, *batch = zoo_batch(FIXED)
    counter = EvalCounter(zoo_rows(FIXED))
    solve = lambda lo, up, i: jaxls.dichotomy(lambda x: counter(x, i), lo, up, fixed_evals=n)
    batched = jax.jit(jax.vmap(solve))(*batch)
    jax.effects_barrier()
    assert counter.count == n * len(FIXED)  # one evaluation a step for every member
    batched = jax.tree.map(np.asarray, batched)  # to the host once, not leaf by leaf
    for i, problem in enumerate(FIXED):
        res = member(batched, i)
        assert int(res.status) == S.SUCCESS
        assert int(res.num_evals) == n
        a, b, c, done = reference(problem.fun, problem.lower, problem.upper, n)
        assert (n - 1) // 2 <= done <= n - 1
        width = problem.upper - problem.lower
        np.testing.assert_allclose(float(res.upper - res.lower), width / 2**done, rtol=1e-9)
        assert (float(res.lower), float(res.upper), float(res.x)) == (a, b, c), problem.name
        assert float(res.value) == float(problem.fun(jnp.asarray(res.x)))  # in JAX, eagerly


def test_fixed_budget_never_evaluates_outside_the_interval():
    """NaN outside each zoo interval: ``SUCCESS`` proves that no evaluation fell there."""
    _, *batch = zoo_batch(zoo.INTERVAL)
    fun = zoo_rows(zoo.INTERVAL, lambda p: guarded(p.fun, p.lower, p.upper))
    solve = lambda lo, up, i: jaxls.dichotomy(lambda x: fun(x, i), lo, up, fixed_evals=30)
    res = jax.jit(jax.vmap(solve))(*batch)
    # float32: some minima flat to rounding end in ROUNDING before the budget, never NONFINITE
    assert {int(s) for s in res.status} <= {S.SUCCESS, S.ROUNDING}
    assert int(res.status[1]) == S.SUCCESS  # the quadratic: 30 evaluations
    assert int(res.num_evals[1]) == 30


def test_fixed_budget_equals_while_loop_run():
    problem = zoo.INTERVAL[0]
    run = jaxls.dichotomy(problem.fun, problem.lower, problem.upper, tol=1e-2)
    assert int(run.status) == S.SUCCESS
    fixed = jaxls.dichotomy(
        problem.fun, problem.lower, problem.upper, fixed_evals=int(run.num_evals)
    )
    assert tree_equal_bitwise(run, fixed)


@pytest.mark.parametrize(
    ("fixed_evals", "error"), [(0, ValueError), (-3, ValueError), (2.5, TypeError)]
)
def test_concrete_bad_budget_raises(fixed_evals, error):
    with pytest.raises(error, match=r"`jaxls\.dichotomy\(.*`fixed_evals`"):
        jaxls.dichotomy(lambda x: x**2, 0.0, 1.0, fixed_evals=fixed_evals)


def test_fixed_budget_traced_bad_input_gives_invalid_status():
    @jax.jit
    def solve(lower, upper):
        return jaxls.dichotomy(lambda x: (x - 0.3) ** 2, lower, upper, fixed_evals=4)

    for lower, upper in [(2.0, 1.0), (1.0, 1.0), (0.0, np.inf), (np.nan, 1.0)]:
        res = solve(lower, upper)
        assert int(res.status) == S.INVALID_INPUT and int(res.num_evals) == 0
        assert np.isnan(float(res.x)) and np.isnan(float(res.value))
        assert tree_equal_bitwise((res.lower, res.upper), (lower, upper))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_fixed_budget_low_precision(dtype):
    """A budget longer than the dtype resolves ends early in ``ROUNDING`` (values flat to
    rounding near the lecture's minimum), near the minimiser, in the dtype."""
    res = jaxls.dichotomy(
        zoo.lecture, jnp.asarray(0.0, dtype), jnp.asarray(6.0, dtype), fixed_evals=40
    )
    for leaf in (res.x, res.value, res.lower, res.upper):
        assert leaf.dtype == dtype
    assert int(res.status) == S.ROUNDING and int(res.num_evals) < 40
    eps = float(jnp.finfo(dtype).eps)
    assert abs(float(res.x) - 2 * np.sqrt(2)) <= 8 * np.sqrt(eps) * 6


def _solve_member(lower, upper, centre, barrier):
    fun = lambda x: jnp.where(x > barrier, jnp.nan, jnp.cosh(x - centre))
    return jaxls.dichotomy(fun, lower, upper, fixed_evals=8)


# good, good far from 0, invalid, NaN on the third evaluation (float32 throughout).
BATCH = [
    jnp.array([0.0, 1000.0, 3.0, 0.0]),
    jnp.array([5.0, 1003.0, 1.0, 5.0]),
    jnp.array([2.0, 1000.25, 2.0, 3.0]),
    jnp.array([jnp.inf, jnp.inf, jnp.inf, 3.3]),
]


def test_fixed_budget_vmap_mixed_batch():
    batched = jax.jit(jax.vmap(_solve_member))(*BATCH)
    assert [int(s) for s in batched.status] == [S.SUCCESS, S.SUCCESS, S.INVALID_INPUT, S.NONFINITE]
    assert [int(n) for n in batched.num_evals] == [8, 8, 0, 3]
    assert_members_match(batched, jax.jit(_solve_member), *BATCH)


def test_fixed_budget_is_a_scan_without_predicate():
    fun = lambda x: jnp.expm1(x) - 2.0 * x  # expm1 marks an evaluation
    fixed = lambda lo, hi: jaxls.dichotomy(fun, lo, hi, fixed_evals=9)
    jaxpr = jax.make_jaxpr(jax.vmap(fixed))(jnp.zeros(3), jnp.ones(3))
    check_fixed_budget_loop(jaxpr, "expm1", 9)
