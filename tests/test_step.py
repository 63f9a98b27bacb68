"""The contract every inexact line search shares, checked for each one `jaxls` exports.

The searches are found at import time: ``backtracking`` now, and ``goldstein``, ``wolfe``
(strong and weak) and ``hager_zhang`` as they land, so this file covers each search the
moment it is exported. Each is checked against its promised condition, recomputed in NumPy
(`CHECKERS`), on hypothesis-generated pytree problems and on the Moré-Thuente functions of
`jaxls.linezoo`. Search-specific behaviour lives in the per-search test files.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import NamedTuple

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given

import jaxls
from jaxls import linezoo
from jaxls._src.step.line import tree_axpy, tree_vdot
from tests.helpers import EvalCounter, count_primitive, tree_equal_bitwise, while_bodies

S = jaxls.Status
FAILURES = {S.MAX_EVALS, S.NONFINITE, S.STEP_LIMIT, S.ROUNDING, S.NO_BRACKET}
SEARCHES = ("backtracking", "goldstein", "wolfe", "hager_zhang")


class Search(NamedTuple):
    """One search as tested: the jaxls function, fixed keywords, the condition it promises."""

    call: str  # the jaxls name, which its errors quote
    fun: Callable
    kwargs: dict  # e.g. the weak/strong choice of wolfe
    condition: str  # key of CHECKERS


def _registry() -> dict[str, Search]:
    found = {}
    for call in SEARCHES:
        fun = getattr(jaxls, call, None)
        if fun is None:
            continue
        params = inspect.signature(fun).parameters
        if call == "wolfe":
            if "strong" in params:
                found["wolfe_strong"] = Search(call, fun, {"strong": True}, "strong_wolfe")
                found["wolfe_weak"] = Search(call, fun, {"strong": False}, "wolfe")
            else:
                found["wolfe"] = Search(call, fun, {}, "strong_wolfe")
        else:
            condition = {"backtracking": "armijo"}.get(call, call)
            found[call] = Search(call, fun, {}, condition)
    return found


SEARCH = _registry()
NAMES = sorted(SEARCH)
# For cases that end before any curvature test can act (no descent, no trial, a trial that
# meets no condition), the weak and strong variants of wolfe are one code path: test one.
NAMES_UP_TO_CURVATURE = [name for name in NAMES if name != "wolfe_weak"]


def run(name, fun, x, direction, **kwargs):
    search = SEARCH[name]
    return search.fun(fun, x, direction, **search.kwargs, **kwargs)


def constants(name, **overrides) -> dict:
    """The search's constants: its signature's defaults, its variant's keywords, overrides."""
    search = SEARCH[name]
    params = inspect.signature(search.fun).parameters
    found = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    return found | search.kwargs | overrides


def has(name, argument) -> bool:
    return argument in inspect.signature(SEARCH[name].fun).parameters


def zoo_constants(name, problem) -> dict:
    """The Moré-Thuente table's ``(c1, c2)``, for the searches that take them."""
    return {k: getattr(problem, k) for k in ("c1", "c2") if has(name, k)}


# ---------------------------------------------------------------------------------------
# The promised conditions, in NumPy, on float64 scalars of phi(t) = f(x + t d). ``slack``
# absorbs the rounding between the search's arithmetic and this recomputation.


def _slack(*values):
    return 16 * np.finfo(np.float64).eps * sum(abs(float(v)) for v in values)


def armijo(v0, s0, v, s, t, k):
    return v <= v0 + k["c1"] * t * s0 + _slack(v0, v, t * s0)


def goldstein(v0, s0, v, s, t, k):
    c = k["c"] if "c" in k else k["c1"]
    low = v0 + (1 - c) * t * s0
    return (low - _slack(v0, v, t * s0) <= v) & armijo(v0, s0, v, s, t, {"c1": c})


def wolfe(v0, s0, v, s, t, k):
    return armijo(v0, s0, v, s, t, k) & (s >= k["c2"] * s0 - _slack(s, s0))


def strong_wolfe(v0, s0, v, s, t, k):
    return armijo(v0, s0, v, s, t, k) & (abs(s) <= k["c2"] * abs(s0) + _slack(s, s0))


def approximate_wolfe(v0, s0, v, s, t, k):
    c1, c2, epsilon = k["c1"], k["c2"], k.get("epsilon", 1e-6)
    return (
        ((2 * c1 - 1) * s0 + _slack(s, s0) >= s)
        & (s >= c2 * s0 - _slack(s, s0))
        & (v <= v0 + epsilon * abs(v0) + _slack(v0, v))
    )


def hager_zhang(v0, s0, v, s, t, k):
    """Either the original (weak) Wolfe conditions or the approximate ones (HZ 2005, 4.1)."""
    return wolfe(v0, s0, v, s, t, k) | approximate_wolfe(v0, s0, v, s, t, k)


CHECKERS = {
    "armijo": armijo,
    "goldstein": goldstein,
    "wolfe": wolfe,
    "strong_wolfe": strong_wolfe,
    "hager_zhang": hager_zhang,
}


def promised(name, v0, s0, res, **overrides) -> bool:
    k = constants(name, **overrides)
    values = (float(res.value), float(res.slope), float(res.step))
    return bool(CHECKERS[SEARCH[name].condition](float(v0), float(s0), *values, k))


def decreases(name, v0, s0, res, **overrides) -> bool:
    """The point is no worse than the start: Armijo (or, for Hager-Zhang, its approximation)."""
    k = constants(name, **overrides)
    v, t = float(res.value), float(res.step)
    c1 = k["c1"] if "c1" in k else k["c"]  # Goldstein's upper line is Armijo's with c
    ok = armijo(float(v0), float(s0), v, 0.0, t, {"c1": c1})
    if SEARCH[name].condition == "hager_zhang":
        ok |= v <= float(v0) + k.get("epsilon", 1e-6) * abs(float(v0)) + _slack(v0, v)
    return bool(ok)


def check_safe(name, res, v0, s0, **overrides):
    """What every result promises, converged or not: finite, and never an uphill step."""
    leaves = [res.step, res.value, res.slope, *jax.tree.leaves(res.grad)]
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves), res
    assert float(res.step) >= 0.0
    status = int(res.status)
    if status == S.SUCCESS:
        assert promised(name, v0, s0, res, **overrides), res
    else:
        assert status in FAILURES | {S.NOT_DESCENT, S.INVALID_INPUT}, status
        assert float(res.step) == 0.0 or decreases(name, v0, s0, res, **overrides), res
    if float(res.step) == 0.0:
        assert float(res.value) == float(v0)


# ---------------------------------------------------------------------------------------
# Problems.


def bowl(x):
    """A smooth pytree objective, minimised at u = 1, v = -0.5."""
    return jnp.sum((x["u"] - 1.0) ** 2 + 0.1 * (x["u"] - 1.0) ** 4) + jnp.sum(
        jnp.cosh(x["v"] + 0.5)
    )


def bowl_point(dtype=jnp.float64):
    x = {"u": jnp.zeros(3, dtype), "v": jnp.zeros((2, 2), dtype)}
    d = jax.tree.map(lambda g: -g, jax.grad(bowl)(x))
    return x, d


# ---------------------------------------------------------------------------------------
# The Moré-Thuente functions: the transcription, then every search on them.


@pytest.mark.parametrize("problem", linezoo.MORE_THUENTE, ids=lambda p: p.name)
def test_linezoo_transcription(problem):
    value0, slope0 = jax.value_and_grad(problem.phi)(0.0)
    assert float(slope0) < 0.0
    # The minimiser is stationary, and the global minimum of a dense grid on [0, 4].
    t = jnp.linspace(0.0, 4.0, 40_001)
    values = np.asarray(jax.vmap(problem.phi)(t))
    best = float(problem.phi(problem.minimiser))
    assert best <= values.min() + 1e-12
    assert abs(float(jax.grad(problem.phi)(problem.minimiser))) <= 1e-9
    # fun is phi on the line x = 0, d = 1.
    np.testing.assert_array_equal(problem.fun(jnp.array([0.7])), problem.phi(0.7))
    # Oracle: MINPACK-2's dcsrch, which made the paper's tables, makes the same evaluations.
    dcsrch = pytest.importorskip("scipy.optimize._dcsrch")
    vg = jax.jit(jax.value_and_grad(problem.phi))
    counts = []
    for step_init in linezoo.STEP_INIT:
        calls = []
        phi = lambda t, calls=calls: calls.append(t) or float(vg(t)[0])
        slope = lambda t: float(vg(t)[1])
        search = dcsrch.DCSRCH(phi, slope, problem.c1, problem.c2, 1e-10, 0.0, 1e10)
        step, *_, task = search(step_init, phi0=float(value0), derphi0=float(slope0))
        assert task.startswith(b"CONV") and step is not None
        counts.append(len(calls))
    assert tuple(counts) == problem.paper_evals


def _zoo_groups(name) -> dict:
    """Problem indices by the table constants this search takes: one compile per group."""
    groups = {}
    for index, problem in enumerate(linezoo.MORE_THUENTE):
        key = tuple(sorted(zoo_constants(name, problem).items()))
        groups.setdefault(key, []).append(index)
    return groups


@functools.cache
def _zoo_solver(name, key):
    branches = [linezoo.MORE_THUENTE[i].fun for i in _zoo_groups(name)[key]]
    counter = EvalCounter(lambda args: args[2] * jax.lax.switch(args[1], branches, args[0]))

    @jax.jit
    def solve(branch, step_init, scale=1.0):
        x, d = linezoo.start(), linezoo.direction()
        fun = lambda y: counter((y, branch, scale))
        return run(name, fun, x, d, step_init=step_init, max_evals=40, **dict(key))

    return solve, counter


@pytest.mark.parametrize("name", NAMES)
def test_more_thuente_zoo(name):
    """Every start of every table, with its constants: SUCCESS, the promised condition holds
    in NumPy, and ``num_evals`` is the real count of calls."""
    for key, indices in _zoo_groups(name).items():
        solve, counter = _zoo_solver(name, key)
        for branch, index in enumerate(indices):
            problem = linezoo.MORE_THUENTE[index]
            v0, s0 = (float(a) for a in jax.value_and_grad(problem.phi)(0.0))
            for step_init in linezoo.STEP_INIT:
                counter.count = 0
                res = solve(branch, step_init, 1.0)
                jax.effects_barrier()
                where = (problem.name, step_init)
                assert counter.count == int(res.num_evals) <= 40, where
                assert int(res.status) == S.SUCCESS, (where, res.message)
                check_safe(name, res, v0, s0, **zoo_constants(name, problem))
                phi = problem.phi(res.step)
                np.testing.assert_allclose(res.value, phi, rtol=1e-15, atol=1e-15)


SCALE_CASES = NAMES


@pytest.mark.parametrize("name", SCALE_CASES)
def test_scaling_the_objective_by_a_power_of_two_changes_nothing(name):
    """``f -> 2^k f`` scales every value and slope exactly, so every decision is the same:
    the steps, counts and statuses must be too, from tiny to huge scales (no overflow)."""
    for key, indices in _zoo_groups(name).items():
        solve, _ = _zoo_solver(name, key)
        for branch in range(len(indices)):
            for step_init in linezoo.STEP_INIT:
                plain = solve(branch, step_init, 1.0)
                for scale in (2.0**-500, 2.0**520):
                    res = solve(branch, step_init, scale)
                    where = (linezoo.MORE_THUENTE[indices[branch]].name, step_init, scale)
                    assert float(res.step) == float(plain.step), where
                    assert int(res.num_evals) == int(plain.num_evals), where
                    assert int(res.status) == int(plain.status), where
                    assert float(res.value) == float(plain.value) * scale, where


# ---------------------------------------------------------------------------------------
# Shared compiled searches (compile time dominates this file), their data traced: one on a
# pytree bowl, and one through a hand-written ``value_and_grad`` of three objectives that
# turns NaN or inf beyond ``x[0] = barrier``.


@functools.cache
def _bowl_solver(name, given_origin):
    counter = EvalCounter(bowl)

    @jax.jit
    def solve(x, d, step_init, value=None, grad=None):
        return run(name, counter, x, d, step_init=step_init, value=value, grad=grad)

    def call(x, d, step_init=1.0):
        origin = bowl_value_and_grad(x) if given_origin else (None, None)
        step_init = jnp.asarray(step_init, jnp.result_type(*jax.tree.leaves(x)))
        counter.count = 0
        res = solve(x, d, step_init, *origin)
        jax.effects_barrier()
        assert counter.count == int(res.num_evals)
        return res

    return call


QUARTIC, UNBOUNDED, COSH = 0, 1, 2


def line_value_and_grad(x, kind, barrier, bad):
    """A user's ``value_and_grad``, written by hand, for one of three objectives on R^n.

    ``kind`` (traced) picks ``sum (x - 1)^2 + 0.1 (x - 1)^4``, the unbounded
    ``-sum(x + x^3)`` or ``sum cosh(x - 2)``; beyond ``x[0] > barrier`` value and gradient are
    ``bad`` (NaN or +-inf). Writing the gradient by hand keeps the unselected objectives'
    overflow out of it, which `jnp.where` under `jax.grad` would not.
    """
    u = x - 1.0
    values = [jnp.sum(u**2 + 0.1 * u**4), -jnp.sum(x + x**3), jnp.sum(jnp.cosh(x - 2.0))]
    grads = [2.0 * u + 0.4 * u**3, -1.0 - 3.0 * x**2, jnp.sinh(x - 2.0)]
    value = jnp.select([kind == QUARTIC, kind == UNBOUNDED], values[:2], values[2])
    grad = jnp.select([kind == QUARTIC, kind == UNBOUNDED], grads[:2], grads[2])
    beyond = x[0] > barrier
    return jnp.where(beyond, bad, value), jnp.where(beyond, bad, grad)


QUARTIC_EVALS = 20
line_value_and_grad_jit = jax.jit(line_value_and_grad)
bowl_value_and_grad = jax.jit(jax.value_and_grad(bowl))


@functools.cache
def _line_solver(name):
    """One compiled search, with the user's ``value_and_grad`` (counted), for all kinds."""
    counter = EvalCounter(lambda args: line_value_and_grad(*args))

    def solve(x, d, step_init, kind, barrier, bad):
        value_and_grad = lambda y: counter((y, kind, barrier, bad))
        return run(
            name,
            None,
            x,
            d,
            value_and_grad=value_and_grad,
            step_init=step_init,
            max_evals=QUARTIC_EVALS,
        )

    jitted = jax.jit(solve)

    def call(x, d, step_init, kind=QUARTIC, barrier=jnp.inf, bad=jnp.nan):
        # Strongly typed scalars, so that every call hits the one compiled search.
        scalars = [jnp.asarray(a, jnp.float64) for a in (step_init, barrier, bad)]
        counter.count = 0
        res = jitted(x, d, scalars[0], jnp.asarray(kind, jnp.int32), *scalars[1:])
        jax.effects_barrier()
        assert counter.count == int(res.num_evals) <= QUARTIC_EVALS
        return res

    return call, solve


# ---------------------------------------------------------------------------------------
# Non-descent directions, non-finite values, budgets, unbounded objectives.


@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
@pytest.mark.parametrize("given_origin", [False, True], ids=["evaluated", "given"])
def test_non_descent_returns_the_origin(name, given_origin):
    solve = _bowl_solver(name, given_origin)
    x, descent = bowl_point()
    value0, grad0 = bowl_value_and_grad(x)
    uphill = jax.tree.map(lambda g: -g, descent)
    orthogonal = {"u": jnp.zeros(3), "v": jnp.array([[1.0, -1.0], [-1.0, 1.0]])}
    zero = jax.tree.map(jnp.zeros_like, x)
    for d in (uphill, orthogonal, zero):
        res = solve(x, d)
        assert int(res.status) == S.NOT_DESCENT
        assert float(res.step) == 0.0
        assert int(res.num_evals) == (0 if given_origin else 1)
        assert tree_equal_bitwise(res.value, value0)
        assert tree_equal_bitwise(res.grad, grad0)
        assert float(res.slope) >= 0.0


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_beyond_some_step_gives_a_finite_result(name):
    solve, _ = _line_solver(name)
    x, d = jnp.zeros(2), jnp.ones(2)
    v0, s0 = 2.2, -4.8  # phi(0) = 2 (1 + 0.1), phi'(0) = 2 (-2 - 0.4)
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        for barrier in (1e-9, 0.3, 0.999, 1.5, 4.0):
            for step_init in (1.0, 10.0, 1e4):
                res = solve(x, d, step_init, QUARTIC, barrier, bad)
                check_safe(name, res, v0, s0)
                assert float(res.step) <= barrier


@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
@pytest.mark.parametrize("max_evals", [1, 2])
def test_exhausted_budget_fails_with_a_safe_point(name, max_evals):
    # phi(t) = (t - 1)^2 + (t - 1)^4 from t = 1e6: the first trial meets no condition.
    fun = lambda x: jnp.sum((x - 1.0) ** 2 + (x - 1.0) ** 4)
    x, d = jnp.zeros(1), jnp.ones(1)
    counter = EvalCounter(fun)
    res = run(name, counter, x, d, step_init=1e6, max_evals=max_evals)
    jax.effects_barrier()
    assert int(res.status) == S.MAX_EVALS, res.message
    assert int(res.num_evals) == counter.count == max_evals
    check_safe(name, res, 2.0, -6.0)
    assert float(res.step) == 0.0  # nothing better was seen


@pytest.mark.parametrize("name", NAMES)
def test_unbounded_below_terminates(name):
    # phi(t) = -2 (t + t^3): no point satisfies a curvature condition (the slope only falls),
    # and the values overflow to -inf for large steps. Armijo alone holds everywhere.
    solve, _ = _line_solver(name)
    x, d = jnp.zeros(2), jnp.ones(2)
    for step_init in (1e-3, 1.0, 1e3):
        res = solve(x, d, step_init, UNBOUNDED)
        check_safe(name, res, 0.0, -2.0)
        if SEARCH[name].condition == "armijo":
            assert int(res.status) == S.SUCCESS and float(res.step) == step_init
        else:
            assert int(res.status) in FAILURES, res.message
            assert float(res.step) > 0.0


# ---------------------------------------------------------------------------------------
# Results: consistency, counts, the user's value_and_grad.


@pytest.mark.parametrize("name", NAMES)
def test_step_value_grad_slope_belong_to_one_point(name):
    x, d = bowl_point()
    eps = np.finfo(np.float64).eps
    for step_init in (1e-2, 1.0, 30.0):
        res = _bowl_solver(name, False)(x, d, step_init)
        assert int(res.status) == S.SUCCESS
        point = tree_axpy(res.step, d, x)
        value, grad = jax.value_and_grad(bowl)(point)
        np.testing.assert_allclose(res.value, value, rtol=4 * eps)
        for a, b in zip(jax.tree.leaves(res.grad), jax.tree.leaves(grad), strict=True):
            np.testing.assert_allclose(a, b, rtol=8 * eps, atol=8 * eps)
        np.testing.assert_allclose(res.slope, tree_vdot(grad, d), rtol=16 * eps, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_given_value_and_grad_save_exactly_one_evaluation(name):
    x, d = bowl_point()
    for step_init in (1e-3, 1.0, 100.0):
        evaluated = _bowl_solver(name, False)(x, d, step_init)
        given_origin = _bowl_solver(name, True)(x, d, step_init)
        assert int(evaluated.num_evals) == int(given_origin.num_evals) + 1
        assert int(evaluated.status) == int(given_origin.status) == S.SUCCESS
        np.testing.assert_allclose(evaluated.step, given_origin.step, rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_user_value_and_grad_is_used_and_counted(name):
    # The solver counts the calls of its hand-written value_and_grad and checks num_evals.
    solve, _ = _line_solver(name)
    x, d = jnp.zeros(2), jnp.array([1.0, 0.5])
    for step_init in (1e-2, 1.0, 100.0):
        res = solve(x, d, step_init, COSH)
        assert int(res.status) == S.SUCCESS and int(res.num_evals) >= 2
        value, grad = line_value_and_grad_jit(x + res.step * d, COSH, jnp.inf, jnp.nan)
        np.testing.assert_allclose(res.value, value, rtol=1e-14)
        np.testing.assert_allclose(res.grad, grad, rtol=1e-14)
        v0, g0 = line_value_and_grad_jit(x, COSH, jnp.inf, jnp.nan)
        assert promised(name, v0, jnp.vdot(g0, d), res)


# ---------------------------------------------------------------------------------------
# Configuration: Python constants raise, traced ones give a status.

BAD_CONSTANTS = {
    "c1": [0.0, 1.0, -0.5, 1.5, math.nan],
    "c2": [1.0, 1.5, -0.1],
    "c": [0.0, 0.5, 0.75],  # Goldstein's 0 < c < 1/2
    "shrink": [0.0, 1.0, 1.5],
    "grow": [1.0, 0.5],
    "rho": [1.0, 0.5],
    "theta": [0.0, 1.0],
    "gamma": [0.0, 1.0],
    "step_max": [0.0, -1.0],
    "epsilon": [-1.0],
    "step_init": [0.0, -1.0, math.nan, math.inf],
    "max_evals": [0, -3],
}
BAD_CASES = [
    (name, argument, value)
    for name in NAMES
    for argument, values in BAD_CONSTANTS.items()
    if has(name, argument)
    for value in values
]


@pytest.mark.parametrize(("name", "argument", "value"), BAD_CASES)
def test_invalid_python_constant_raises_naming_call_and_argument(name, argument, value):
    x, d = jnp.zeros(2), -jnp.ones(2)
    with pytest.raises(ValueError, match=rf"{SEARCH[name].call}.*`{argument}`"):
        run(name, lambda y: jnp.sum(y**2), x, d, **{argument: value})


@pytest.mark.parametrize("name", NAMES)
def test_traced_invalid_step_init_gives_invalid_input(name):
    solve, _ = _line_solver(name)
    x, d = jnp.zeros(2), jnp.ones(2)
    for step_init in (0.0, -1.0, math.nan, math.inf, -math.inf):
        res = solve(x, d, step_init)
        assert int(res.status) == S.INVALID_INPUT
        assert float(res.step) == 0.0 and float(res.value) == 2.2
        assert int(res.num_evals) <= 1


# ---------------------------------------------------------------------------------------
# Transformations and dtypes.


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager(name):
    x, d = bowl_point()
    eager = run(name, bowl, x, d, step_init=3.0)
    assert tree_equal_bitwise(eager, _bowl_solver(name, False)(x, d, 3.0))


@pytest.mark.parametrize("name", NAMES)
def test_float32_leaves_stay_float32(name):
    x, d = bowl_point(jnp.float32)
    res = _bowl_solver(name, False)(x, d, jnp.float32(1.0))
    assert int(res.status) == S.SUCCESS
    assert res.step.dtype == res.value.dtype == res.slope.dtype == jnp.float32
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(res.grad))
    assert float(res.value) < float(bowl(x))


@pytest.mark.parametrize("name", NAMES)
def test_mixed_float32_float64_pytree(name):
    x, d = bowl_point()
    x = {"u": x["u"].astype(jnp.float32), "v": x["v"]}
    d = {"u": d["u"].astype(jnp.float32), "v": d["v"]}
    res = _bowl_solver(name, False)(x, d, 1.0)
    assert int(res.status) == S.SUCCESS
    assert res.step.dtype == res.value.dtype == jnp.float64
    assert res.grad["u"].dtype == jnp.float32 and res.grad["v"].dtype == jnp.float64
    point = tree_axpy(res.step, d, x)
    assert point["u"].dtype == jnp.float32
    np.testing.assert_allclose(res.value, bowl(point), rtol=1e-12)
    v0, s0 = float(bowl(x)), float(tree_vdot(jax.grad(bowl)(x), d))
    assert promised(name, v0, s0, res)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_mixed_batch_matches_unbatched_runs(name):
    single, solve = _line_solver(name)
    inf, nan = jnp.inf, jnp.nan
    members = [  # x, d, step_init, kind, barrier, bad
        ([0.0, 0.0], [1.0, 1.0], 1.0, QUARTIC, inf, nan),  # good
        ([0.0, 0.0], [-1.0, -1.0], 1.0, QUARTIC, inf, nan),  # not a descent direction
        ([0.0, 0.0], [1.0, 1.0], 1.0, QUARTIC, 0.4, nan),  # NaN beyond t = 0.4
        ([0.0, 0.0], [1.0, 1.0], 1e30, QUARTIC, inf, nan),  # a budget too small to come back
        ([3.0, -2.0], [-1.0, 2.0], 0.5, QUARTIC, inf, inf),  # good, inf far away
        ([0.0, 0.0], [1.0, 0.0], 0.0, QUARTIC, inf, nan),  # invalid step_init
        ([0.0, 0.0], [1.0, 1.0], 1.0, UNBOUNDED, inf, nan),  # unbounded below
        ([0.0, 0.0], [1.0, 2.0], 3.0, COSH, inf, nan),  # good, another objective
    ]
    columns = [jnp.asarray(c) for c in zip(*members, strict=True)]
    columns[3] = columns[3].astype(jnp.int32)
    batched = jax.jit(jax.vmap(solve))(*columns)
    statuses = [int(s) for s in batched.status]
    assert statuses[0] == statuses[4] == statuses[7] == S.SUCCESS
    assert statuses[1] == S.NOT_DESCENT
    assert statuses[5] == S.INVALID_INPUT
    if SEARCH[name].condition == "armijo":
        assert statuses[3] == S.MAX_EVALS  # 100 halvings from 1e30 do not fit in 20
    for i, (x, d, step_init, kind, barrier, bad) in enumerate(members):
        x, d = jnp.asarray(x), jnp.asarray(d)
        alone = single(x, d, step_init, kind, barrier, bad)
        member = jax.tree.map(lambda leaf, i=i: leaf[i], batched)
        assert tree_equal_bitwise(member, alone), (i, member, alone)
        v0, g0 = line_value_and_grad_jit(x, kind, barrier, bad)
        check_safe(name, member, v0, jnp.vdot(g0, d))


@pytest.mark.parametrize("name", NAMES)
def test_one_evaluation_per_iteration_under_vmap(name):
    fun = lambda x: jnp.sum(jnp.expm1(x) - 2.0 * x)  # expm1 marks an evaluation
    solve = lambda x, d: run(name, fun, x, d)
    for jaxpr in (
        jax.make_jaxpr(solve)(jnp.zeros(2), jnp.ones(2)),
        jax.make_jaxpr(jax.vmap(solve))(jnp.zeros((3, 2)), jnp.ones((3, 2))),
    ):
        bodies = while_bodies(jaxpr)
        assert len(bodies) == 1
        assert count_primitive(bodies[0], "expm1") == 1
        assert count_primitive(jaxpr, "expm1") == 2  # the origin and the loop body
        assert count_primitive(jaxpr, "cond") == 0


# ---------------------------------------------------------------------------------------
# Hypothesis: smooth problems on pytrees, random descent directions, conditions in NumPy.


def objective(xp, p, x):
    """``sum a (u - c)^2 + b u^4 / 4 + sum e log cosh(v - q)``, in ``xp`` (jnp or NumPy)."""
    u, v = x["u"], x["v"]
    log_cosh = xp.logaddexp(v - p["q"], p["q"] - v) - math.log(2.0)
    return xp.sum(p["a"] * (u - p["c"]) ** 2 + p["b"] * u**4 / 4) + xp.sum(p["e"] * log_cosh)


def objective_grad_numpy(p, x):
    u, v = x["u"], x["v"]
    return {"u": 2 * p["a"] * (u - p["c"]) + p["b"] * u**3, "v": p["e"] * np.tanh(v - p["q"])}


@functools.cache
def _hypothesis_solver(name):
    @jax.jit
    def solve(p, x, d, step_init):
        return run(name, lambda y: objective(jnp, p, y), x, d, step_init=step_init, max_evals=60)

    return solve


def _floats(lo, hi, shape):
    size = int(np.prod(shape))
    return st.lists(
        st.floats(lo, hi, allow_nan=False, allow_subnormal=False), min_size=size, max_size=size
    ).map(lambda v: np.asarray(v, np.float64).reshape(shape))


problems = st.fixed_dictionaries(
    {
        "a": _floats(0.05, 20.0, (3,)),
        "c": _floats(-3.0, 3.0, (3,)),
        "b": _floats(0.0, 2.0, (3,)),
        "e": _floats(0.0, 5.0, (2, 2)),
        "q": _floats(-3.0, 3.0, (2, 2)),
    }
)
points = st.fixed_dictionaries({"u": _floats(-3.0, 3.0, (3,)), "v": _floats(-3.0, 3.0, (2, 2))})
directions = st.fixed_dictionaries({"u": _floats(-5.0, 5.0, (3,)), "v": _floats(-5.0, 5.0, (2, 2))})


@pytest.mark.parametrize("name", NAMES)
@given(p=problems, x=points, d=directions, log_step=st.floats(-3.0, 3.0))
def test_hypothesis_promised_condition_holds(name, p, x, d, log_step):
    g = objective_grad_numpy(p, x)
    slope = sum(np.vdot(g[k], d[k]) for k in g)
    norms = math.sqrt(sum(np.vdot(g[k], g[k]) for k in g) * sum(np.vdot(d[k], d[k]) for k in d))
    assume(abs(slope) > 1e-6 * norms and norms > 1e-6)
    if slope > 0:
        d = {k: -v for k, v in d.items()}
        slope = -slope
    res = _hypothesis_solver(name)(p, x, d, 10.0**log_step)
    assert int(res.status) == S.SUCCESS, res.message
    # Oracle: phi and phi' at the returned step, recomputed in NumPy.
    t = float(res.step)
    point = {k: x[k] + t * d[k] for k in x}
    value = float(objective(np, p, point))
    g_t = objective_grad_numpy(p, point)
    slope_t = float(sum(np.vdot(g_t[k], d[k]) for k in g_t))
    np.testing.assert_allclose(float(res.value), value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(float(res.slope), slope_t, rtol=1e-9, atol=1e-9)
    v0 = float(objective(np, p, x))
    checked = res._replace(value=value, slope=slope_t)
    assert promised(name, v0, slope, checked), (t, value, slope_t, v0, slope)
