"""The contract every inexact line search shares, checked for each one `jaxls` exports.

`SEARCH` is the registry: each step search `jaxls` exports (every public function returning
a `jaxls.LineSearchResult`) must have an entry, and `test_registry_covers_every_step_search`
fails when one is missing or renamed. Each search is checked against its promised condition,
recomputed in float64 NumPy (`CHECKERS`), on hypothesis-generated pytree problems and on the
Moré-Thuente functions of `jaxls.linezoo`, in float32 (JAX's default), float64, bfloat16 and
float16, and with bfloat16 parameters of a float32 loss. Search-specific behaviour lives in
the per-search test files.
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
from jaxls._src.tree import tree_axpy, tree_vdot
from tests.helpers import (
    EvalCounter,
    count_primitive,
    scipy_private,
    tree_equal_bitwise,
    while_bodies,
)

S = jaxls.Status
FAILURES = {S.MAX_EVALS, S.NONFINITE, S.STEP_LIMIT, S.ROUNDING, S.NO_BRACKET}


class Search(NamedTuple):
    """One search as tested: the jaxls function, fixed keywords, the condition it promises."""

    call: str  # the jaxls name, which its errors quote
    fun: Callable
    kwargs: dict  # e.g. the weak/strong choice of wolfe
    condition: str  # key of CHECKERS
    value_only: bool  # trials evaluate the value only; the gradient once, at the result
    # The budget keeps a call for the gradient of a step returned on failure (Goldstein's
    # too-short step); backtracking completes the trial it accepts in the same iteration.
    keeps_a_call: bool = False


SEARCH = {
    "backtracking": Search("backtracking", jaxls.backtracking, {}, "armijo", True),
    "goldstein": Search("goldstein", jaxls.goldstein, {}, "goldstein", True, keeps_a_call=True),
    "wolfe_strong": Search("wolfe", jaxls.wolfe, {"strong": True}, "strong_wolfe", False),
    "wolfe_weak": Search("wolfe", jaxls.wolfe, {"strong": False}, "wolfe", False),
    "hager_zhang": Search("hager_zhang", jaxls.hager_zhang, {}, "hager_zhang", False),
}
NAMES = sorted(SEARCH)
# For cases that end before any curvature test can act (no descent, no trial, a trial that
# meets no condition, bad input), the weak and strong variants of wolfe are one code path.
NAMES_UP_TO_CURVATURE = [name for name in NAMES if name != "wolfe_weak"]


def test_registry_covers_every_step_search():
    exported = {
        name
        for name in jaxls.__all__
        if callable(obj := getattr(jaxls, name))
        and inspect.isfunction(obj)
        and "LineSearchResult" in str(inspect.signature(obj).return_annotation)
    }
    assert exported == {search.call for search in SEARCH.values()}
    for search in SEARCH.values():
        params = inspect.signature(search.fun).parameters
        shared = ("value", "grad", "value_and_grad", "has_aux", "step_init", "max_evals")
        assert all(params[p].kind is inspect.Parameter.KEYWORD_ONLY for p in shared), search
        assert params["has_aux"].default is False


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


def calls_at_most(name, max_evals) -> int:
    """What a search that fails on its budget spends: Goldstein keeps one call for the
    gradient of a too-short step it may return, which it does not make when it returns
    step 0."""
    return max_evals - 1 if SEARCH[name].keeps_a_call else max_evals


# ---------------------------------------------------------------------------------------
# Dtypes: (parameters, loss). Tolerances follow the search's dtype, the promotion of both.

DTYPES = [
    pytest.param((jnp.float32, jnp.float32), id="float32"),
    pytest.param((jnp.float64, jnp.float64), id="float64"),
    pytest.param((jnp.bfloat16, jnp.bfloat16), id="bfloat16"),
    pytest.param((jnp.float16, jnp.float16), id="float16"),
    pytest.param((jnp.bfloat16, jnp.float32), id="bfloat16-float32-loss"),
]


def eps(dtype) -> float:
    return float(jnp.finfo(dtype).eps)


# ---------------------------------------------------------------------------------------
# The promised conditions, in NumPy, on float64 scalars of phi(t) = f(x + t d). ``slack``
# absorbs the rounding between the search's arithmetic (in its dtype) and this
# recomputation.


def _slack(*values, dtype=np.float64):
    return 16 * eps(dtype) * sum(abs(float(v)) for v in values)


def armijo(v0, s0, v, s, t, k, dtype=np.float64):
    return v <= v0 + k["c1"] * t * s0 + _slack(v0, v, t * s0, dtype=dtype)


def goldstein(v0, s0, v, s, t, k, dtype=np.float64):
    low = v0 + (1 - k["c1"]) * t * s0
    slack = _slack(v0, v, t * s0, dtype=dtype)
    return (low - slack <= v) & armijo(v0, s0, v, s, t, k, dtype)


def wolfe(v0, s0, v, s, t, k, dtype=np.float64):
    curvature = s >= k["c2"] * s0 - _slack(s, s0, dtype=dtype)
    return armijo(v0, s0, v, s, t, k, dtype) & curvature


def strong_wolfe(v0, s0, v, s, t, k, dtype=np.float64):
    curvature = abs(s) <= k["c2"] * abs(s0) + _slack(s, s0, dtype=dtype)
    return armijo(v0, s0, v, s, t, k, dtype) & curvature


def approximate_wolfe(v0, s0, v, s, t, k, dtype=np.float64):
    c1, c2, epsilon = k["c1"], k["c2"], k.get("epsilon", 1e-6)
    slack = _slack(s, s0, dtype=dtype)
    return (
        ((2 * c1 - 1) * s0 + slack >= s)
        & (s >= c2 * s0 - slack)
        & (v <= v0 + epsilon * abs(v0) + _slack(v0, v, dtype=dtype))
    )


def hager_zhang(v0, s0, v, s, t, k, dtype=np.float64):
    """Either the original (weak) Wolfe conditions or the approximate ones (HZ 2005, 4.1)."""
    return wolfe(v0, s0, v, s, t, k, dtype) | approximate_wolfe(v0, s0, v, s, t, k, dtype)


CHECKERS = {
    "armijo": armijo,
    "goldstein": goldstein,
    "wolfe": wolfe,
    "strong_wolfe": strong_wolfe,
    "hager_zhang": hager_zhang,
}


def promised(name, v0, s0, res, dtype=np.float64, **overrides) -> bool:
    k = constants(name, **overrides)
    if k.get("epsilon") is None:
        k.pop("epsilon", None)
    values = (float(res.value), float(res.slope), float(res.step))
    return bool(CHECKERS[SEARCH[name].condition](float(v0), float(s0), *values, k, dtype))


def decreases(name, v0, s0, res, dtype=np.float64, **overrides) -> bool:
    """The point is no worse than the start: Armijo (or, for Hager-Zhang, its approximation)."""
    k = constants(name, **overrides)
    v, t = float(res.value), float(res.step)
    ok = armijo(float(v0), float(s0), v, 0.0, t, k, dtype)  # Goldstein's upper line too
    if SEARCH[name].condition == "hager_zhang":
        epsilon = k.get("epsilon") or 1e-6
        ok |= v <= float(v0) + epsilon * abs(float(v0)) + _slack(v0, v, dtype=dtype)
    return bool(ok)


def check_safe(name, res, v0, s0, dtype=np.float64, **overrides):
    """What every result promises, converged or not: finite, and never an uphill step."""
    res = jax.tree.map(np.asarray, res)  # once: no eager program per leaf and dtype
    leaves = [res.step, res.value, res.slope, *jax.tree.leaves(res.grad)]
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves), res
    assert float(res.step) >= 0.0
    assert 0 <= int(res.num_grads) <= int(res.num_evals)
    status = int(res.status)
    if status == S.SUCCESS:
        assert promised(name, v0, s0, res, dtype, **overrides), res
    else:
        assert status in FAILURES | {S.NOT_DESCENT, S.INVALID_INPUT}, status
        assert float(res.step) == 0.0 or decreases(name, v0, s0, res, dtype, **overrides), res
    if float(res.step) == 0.0:
        assert float(res.value) == float(v0)


# ---------------------------------------------------------------------------------------
# Problems.


def bowl(x):
    """A smooth pytree objective, minimised at u = 1, v = -0.5."""
    return jnp.sum((x["u"] - 1.0) ** 2 + 0.1 * (x["u"] - 1.0) ** 4) + jnp.sum(
        jnp.cosh(x["v"] + 0.5)
    )


def bowl_numpy(x):
    u, v = (np.asarray(x[k], np.float64) for k in ("u", "v"))
    return float(np.sum((u - 1) ** 2 + 0.1 * (u - 1) ** 4) + np.sum(np.cosh(v + 0.5)))


def bowl_grad_numpy(x):
    u, v = (np.asarray(x[k], np.float64) for k in ("u", "v"))
    return {"u": 2 * (u - 1) + 0.4 * (u - 1) ** 3, "v": np.sinh(v + 0.5)}


def bowl_in(loss=None):
    """The bowl with its loss computed in dtype ``loss``; None: in the parameters' own
    dtypes (the bowl itself: a cast to a leaf's own dtype is no operation)."""
    if loss is None:
        return bowl
    return lambda x: bowl(jax.tree.map(lambda a: a.astype(loss), x))


@functools.cache
def steepest_descent(loss):
    """``x -> -grad bowl_in(loss)(x)``, jitted: one program per dtype where the eager
    gradient took a dozen small ones (the same numbers, bit for bit, in every dtype here)."""
    return jax.jit(lambda x: jax.tree.map(lambda g: -g, jax.grad(bowl_in(loss))(x)))


def bowl_point(dtype=jnp.float32):
    x = {"u": jnp.zeros(3, dtype), "v": jnp.zeros((2, 2), dtype)}
    return x, steepest_descent(None)(x)


def numpy_tree(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def numpy_dot(a, b) -> float:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    as64 = lambda a: np.asarray(a, np.float64)
    return float(sum(np.vdot(as64(u), as64(v)) for u, v in pairs))


# ---------------------------------------------------------------------------------------
# The Moré-Thuente functions (float64: the paper's tables): the transcription, then every
# search on them.


MT = linezoo.MORE_THUENTE


def _mt_phi(index, t):
    """``phi(t)`` of Moré-Thuente function ``index`` (traced: a `lax.switch`)."""
    return jax.lax.switch(index, [problem.phi for problem in MT], t)


# Compiled once for all six functions (index and step traced; the step a float64 scalar,
# NumPy's): the oracles' evaluations of ``phi``, once dozens of small eager programs each.
_mt_value_and_grad = jax.jit(jax.value_and_grad(_mt_phi, argnums=1))
_mt_grid = jax.jit(jax.vmap(_mt_phi, in_axes=(None, 0)))


@pytest.mark.x64(reason="the Moré-Thuente tables are float64 computations")
@pytest.mark.parametrize("problem", MT, ids=lambda p: p.name)
def test_linezoo_transcription(problem):
    index = MT.index(problem)
    vg = lambda t: _mt_value_and_grad(index, np.float64(t))
    value0, slope0 = vg(0.0)
    assert float(slope0) < 0.0
    # The minimiser is stationary, and the global minimum of a dense grid on [0, 4].
    t = jnp.linspace(0.0, 4.0, 40_001)
    values = np.asarray(_mt_grid(index, t))
    best, slope = (float(a) for a in vg(problem.minimiser))
    assert best <= values.min() + 1e-12
    assert abs(slope) <= 1e-9
    # fun is phi on the line x = 0, d = 1.
    np.testing.assert_array_equal(problem.fun(jnp.array([0.7])), problem.phi(0.7))
    # Oracle: MINPACK-2's dcsrch, which made the paper's tables, makes the same evaluations.
    dcsrch = scipy_private("scipy.optimize._dcsrch")
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


@functools.cache
def _zoo_solver(name, dtype):
    """One compiled search for all six functions (a `lax.switch` on the index), the table's
    ``(c1, c2)`` traced: one compile per search rather than one per group of constants."""
    branches = [problem.fun for problem in MT]
    counter = EvalCounter(lambda args: args[2] * jax.lax.switch(args[1], branches, args[0]))

    @jax.jit
    def solve(index, step_init, scale, table):
        x, d = linezoo.start(dtype), linezoo.direction(dtype)
        fun = lambda y: counter((y, index, scale))
        return run(name, fun, x, d, step_init=step_init, max_evals=40, **table)

    def call(index, step_init, scale=1.0):
        table = {k: np.asarray(v, dtype) for k, v in zoo_constants(name, MT[index]).items()}
        return solve(index, np.asarray(step_init, dtype), np.asarray(scale, dtype), table)

    return call, counter


@pytest.mark.x64(reason="the Moré-Thuente tables are float64 computations")
@pytest.mark.parametrize("name", NAMES)
def test_more_thuente_zoo(name):
    """Every start of every table, with its constants: SUCCESS, the promised condition holds
    in NumPy, and ``num_evals`` is the real count of calls."""
    solve, counter = _zoo_solver(name, jnp.float64)
    for index, problem in enumerate(MT):
        v0, s0 = (float(a) for a in _mt_value_and_grad(index, np.float64(0.0)))
        for step_init in linezoo.STEP_INIT:
            counter.count = 0
            res = solve(index, step_init)
            jax.effects_barrier()
            res = jax.tree.map(np.asarray, res)
            where = (problem.name, step_init)
            assert counter.count == int(res.num_evals) <= 40, where
            assert int(res.status) == S.SUCCESS, (where, res.message)
            check_safe(name, res, v0, s0, **zoo_constants(name, problem))
            phi = _mt_value_and_grad(index, res.step)[0]
            # A value-only search's value comes from a call of ``fun`` alone: a few ulps
            # of the values cancelling in phi.
            np.testing.assert_allclose(res.value, phi, rtol=1e-15, atol=1e-14)


@pytest.mark.x64(reason="scales 2^-500 and 2^520 need float64's range")
@pytest.mark.parametrize("name", NAMES)
def test_scaling_the_objective_by_a_power_of_two_changes_nothing(name):
    """``f -> 2^k f`` scales every value and slope exactly, so every decision is the same:
    the steps, counts and statuses must be too, from tiny to huge scales (no overflow)."""
    solve, _ = _zoo_solver(name, jnp.float64)
    for index, problem in enumerate(MT):
        for step_init in linezoo.STEP_INIT:
            plain = solve(index, step_init, 1.0)
            for scale in (2.0**-500, 2.0**520):
                res = solve(index, step_init, scale)
                where = (problem.name, step_init, scale)
                assert float(res.step) == float(plain.step), where
                assert int(res.num_evals) == int(plain.num_evals), where
                assert int(res.status) == int(plain.status), where
                assert float(res.value) == float(plain.value) * scale, where


# ---------------------------------------------------------------------------------------
# Steep objectives (slopes beyond the dtype's range) and the exactness of direction scaling.


def steep(w):
    return jnp.sum(jnp.exp(10.0 * w))


@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
def test_slope_beyond_float32_range_gives_a_decreasing_step(name):
    """``sum(exp(10 w))`` from ``w = 5`` along ``-grad``: ``|grad|^2 ~ 7e45`` overflows
    float32, yet the search finds a finite step that decreases ``f``."""
    w = jnp.full(3, 5.0)
    value0, grad0 = jax.value_and_grad(steep)(w)
    assert numpy_dot(grad0, grad0) > float(jnp.finfo(jnp.float32).max)
    res = run(name, steep, w, -grad0, max_evals=100)
    assert int(res.status) == S.SUCCESS, res.message
    assert res.step.dtype == jnp.float32
    assert 0.0 < float(res.step) < np.inf and float(res.value) < float(value0)


def steep_tree(x):
    return steep(x["u"]) + steep(x["v"])


@pytest.mark.parametrize("name", NAMES)
def test_scaling_the_direction_by_a_power_of_two_changes_nothing(name):
    """``d -> 2^k d`` with ``step_init -> 2^-k step_init`` visits the same points: the steps
    scale by ``2^-k`` exactly and everything else is bitwise the same (float32; on the bowl,
    whose direction is scaled to below 1 and above, and on a steep objective)."""
    x, d = bowl_point()
    w = jax.tree.map(lambda a: jnp.full_like(a, 5.0), x)
    steep_d = jax.tree.map(lambda g: -g, jax.grad(steep_tree)(w))

    @jax.jit
    def solve(kind, x, d, step_init):
        fun = lambda y: jax.lax.switch(kind, [bowl, steep_tree], y)
        return run(name, fun, x, d, step_init=step_init, max_evals=100)

    for kind, x0, d0 in ((0, x, d), (1, w, steep_d)):
        for step_init in (1e-3, 1.0, 30.0):
            plain = solve(kind, x0, d0, jnp.float32(step_init))
            for k in (-40, 30):
                scaled_d = jax.tree.map(lambda a, k=k: a * 2.0**k, d0)
                res = solve(kind, x0, scaled_d, jnp.float32(step_init * 2.0**-k))
                assert float(res.step) == float(plain.step) * 2.0**-k, (kind, k, step_init)
                if np.isfinite(float(plain.slope)):  # phi'(t) itself may be beyond the dtype
                    assert float(res.slope) == float(plain.slope) * 2.0**k
                for field in ("value", "grad", "num_evals", "num_grads", "status"):
                    assert tree_equal_bitwise(getattr(res, field), getattr(plain, field)), field


# ---------------------------------------------------------------------------------------
# Shared compiled searches (compile time dominates this file), their data traced: one on a
# pytree bowl, and one through a hand-written ``value_and_grad`` of three objectives that
# turns NaN or inf beyond ``x[0] = barrier``.


def _bowl_solver(name, given_origin, loss=None):
    """The search on `bowl_in(loss)`, from the origin's value and gradient when
    ``given_origin``: one jitted function for every test on the bowl (compiled once per
    dtype of ``x`` and ``d``). Each call checks ``num_evals`` against the calls counted."""
    return _bowl_solver_cached(name, given_origin, loss)  # one cache key however called


@functools.cache
def _bowl_solver_cached(name, given_origin, loss):
    objective = bowl_in(loss)
    counter = EvalCounter(objective)

    @jax.jit
    def solve(x, d, step_init, value=None, grad=None):
        return run(name, counter, x, d, step_init=step_init, value=value, grad=grad)

    def call(x, d, step_init=1.0):
        origin = jax.value_and_grad(objective)(x) if given_origin else (None, None)
        step_init = np.asarray(step_init, jnp.result_type(*jax.tree.leaves(x)))
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
        # Strongly typed float32 scalars, so that every call hits the one compiled search
        # (NumPy's: converting them is no eager program).
        scalars = [np.float32(a) for a in (step_init, barrier, bad)]
        counter.count = 0
        res = jitted(x, d, scalars[0], np.int32(kind), *scalars[1:])
        jax.effects_barrier()
        assert counter.count == int(res.num_evals) <= QUARTIC_EVALS
        return res

    return call, solve


# ---------------------------------------------------------------------------------------
# Every dtype: the promised condition, the result's dtypes, one point.


def _dtype_problem(dtypes):
    """The bowl with parameters in ``dtypes[0]`` and its loss computed in ``dtypes[1]``:
    ``(loss, x, d)``, ``loss`` for `bowl_in` (None where the two dtypes are one: the bowl
    itself, whose compiled float32 search the other tests share)."""
    param, loss = dtypes
    loss = None if loss == param else loss
    x = {"u": jnp.zeros(3, param), "v": jnp.zeros((2, 2), param)}
    return loss, x, steepest_descent(loss)(x)


def numpy_axpy(t, d, x):
    """`tree_axpy` in NumPy: ``x + t d`` with ``t`` cast to each leaf's dtype and every
    operation rounded to it (ml_dtypes' bfloat16), as JAX's eager operations round them,
    without compiling a program per dtype."""

    def axpy(xi, di):
        xi, di = np.asarray(xi), np.asarray(di)
        return (xi + np.asarray(t, xi.dtype) * di).astype(xi.dtype)

    return jax.tree.map(axpy, x, d)


@pytest.mark.parametrize("dtypes", DTYPES)
@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
def test_every_dtype_meets_the_promised_condition(name, dtypes):
    """Python constants (``c1=1e-4``, ...) with bfloat16 or float16 data are cast to the
    search's dtype; results are in it (float32 for bfloat16 parameters of a float32 loss),
    gradients in the parameters' dtype, and the condition holds in float64 NumPy at the
    point the search evaluated, up to the dtype's rounding."""
    loss, x, d = _dtype_problem(dtypes)
    dtype = jnp.promote_types(*dtypes)
    solve = _bowl_solver(name, False, loss)
    v0 = bowl_numpy(numpy_tree(x))
    s0 = numpy_dot(bowl_grad_numpy(numpy_tree(x)), d)
    for step_init in (1e-2, 1.0, 30.0):
        res = jax.tree.map(np.asarray, solve(x, d, step_init))  # step_init in dtypes[0]
        assert int(res.status) == S.SUCCESS, (step_init, res.message)
        assert res.step.dtype == res.value.dtype == res.slope.dtype == dtype
        assert all(g.dtype == dtypes[0] for g in jax.tree.leaves(res.grad))
        assert int(res.num_grads) == (2 if SEARCH[name].value_only else int(res.num_evals))
        # The point the search evaluated, in the parameters' dtype, then in float64 NumPy.
        point = numpy_tree(numpy_axpy(res.step, d, x))
        value, grad = bowl_numpy(point), bowl_grad_numpy(point)
        slope = numpy_dot(grad, d)
        products = numpy_dot(jax.tree.map(np.abs, grad), jax.tree.map(np.abs, numpy_tree(d)))
        scale = abs(v0) + abs(float(res.step) * s0)
        np.testing.assert_allclose(float(res.value), value, rtol=0, atol=8 * eps(dtype) * scale)
        np.testing.assert_allclose(
            float(res.slope), slope, rtol=0, atol=16 * eps(dtypes[0]) * products
        )
        checked = res._replace(value=value, slope=slope)
        assert promised(name, v0, s0, checked, dtype), (step_init, res)
        assert value < v0


@pytest.mark.x64(reason="float64 constants (NumPy scalars) with float32 parameters")
@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
def test_float64_constants_with_float32_parameters(name):
    x, d = bowl_point(jnp.float32)
    floats = {
        k: np.float64(v)
        for k, v in constants(name).items()
        if isinstance(v, float) and k not in ("step_max",)
    }
    res = run(name, bowl, x, d, **floats)
    assert int(res.status) == S.SUCCESS
    assert res.step.dtype == res.value.dtype == jnp.float32


LOW = [jnp.bfloat16, jnp.float16]


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
def test_float32_array_constants_with_half_precision_parameters(name, dtype):
    """float16 or bfloat16 parameters with float32 array constants crashed the while loop
    with a dtype mismatch: every constant is cast to the search's dtype."""
    x, d = jnp.zeros(2, dtype), jnp.full(2, 2.0, dtype)
    arrays = {
        k: jnp.float32(v)
        for k, v in constants(name).items()
        if isinstance(v, float) and k in BAD_CONSTANTS
    }
    res = run(name, quadratic, x, d, **arrays)
    assert int(res.status) == S.SUCCESS, res.message
    assert res.step.dtype == res.value.dtype == res.slope.dtype == res.grad.dtype == dtype
    check_safe(name, res, 2.0, -8.0, dtype)
    assert float(res.value) < 2.0


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("name", NAMES)
def test_no_success_for_the_mirror_step_in_low_precision(name, dtype):
    """``phi(t) = 2 (2t - 1)^2``: ``t = 1`` mirrors ``phi(0)`` (``phi(1) = phi(0)``,
    ``phi'(1) = -phi'(0)``). With ``c1 = 1e-4``, ``2 c1 - 1`` rounds to -1 in bfloat16 and
    float16, and the approximate Wolfe conditions accepted the mirror step: SUCCESS at no
    decrease. They are tested in at least float32: every search takes the minimiser."""
    x, d = jnp.zeros(2, dtype), jnp.full(2, 2.0, dtype)
    c1 = {"c1": 1e-4} if has(name, "c1") else {}
    res = run(name, quadratic, x, d, **c1)
    assert int(res.status) == S.SUCCESS, res.message
    assert float(res.value) < 2.0 and float(res.step) == 0.5


@pytest.mark.x64(reason="a pytree mixing float32 and float64 leaves")
@pytest.mark.parametrize("name", NAMES)
def test_mixed_float32_float64_pytree(name):
    x, d = bowl_point(jnp.float64)
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


@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
def test_python_floats_as_x_and_direction(name):
    res = run(name, lambda t: (t - 1.0) ** 2, 0.0, 1.0)
    assert int(res.status) == S.SUCCESS, res.message
    assert res.step.dtype == res.value.dtype == jnp.float32
    check_safe(name, res, 1.0, -2.0, np.float32)
    assert float(res.value) < 1.0


@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
def test_complex_parameters_match_the_equivalent_real_problem(name):
    """``z = a + i b`` searched as the real vector ``(a, b)``: the same steps, values and
    counts, the slope ``Re sum(g d)``, and ``g = df/da - i df/db`` (JAX's convention)."""
    centre = jnp.array([1.0 + 2.0j, -0.5 + 0.25j, 0.3 - 1.0j], jnp.complex64)

    def complex_fun(z):
        r = jnp.abs(z - centre) ** 2
        return jnp.sum(r + 0.1 * r**2)

    def real_fun(ab):
        return complex_fun(ab[:3] + 1j * ab[3:])

    z = jnp.array([0.5 - 0.5j, 0.0 + 1.0j, -1.0 + 0.0j], jnp.complex64)
    ab = jnp.concatenate([z.real, z.imag])
    dz = -jnp.conj(jax.grad(complex_fun)(z))  # steepest descent
    dab = -jax.grad(real_fun)(ab)
    np.testing.assert_allclose(jnp.concatenate([dz.real, dz.imag]), dab, rtol=1e-6)
    dab = jnp.concatenate([dz.real, dz.imag])  # the same direction, bit for bit
    solve = jax.jit(lambda f, x, d, s: run(name, f, x, d, step_init=s), static_argnums=0)
    for step_init in (1e-2, 1.0, 10.0):
        c = solve(complex_fun, z, dz, step_init)
        r = solve(real_fun, ab, dab, step_init)
        assert int(c.status) == int(r.status) == S.SUCCESS, (c.message, r.message)
        assert c.step.dtype == c.value.dtype == c.slope.dtype == jnp.float32
        assert c.grad.dtype == jnp.complex64
        # The same search up to float32 rounding (the slopes are summed in another order).
        np.testing.assert_allclose(c.step, r.step, rtol=1e-3)
        assert abs(int(c.num_evals) - int(r.num_evals)) <= 1
        # At the complex search's own step: the real problem's value, slope and gradient.
        value, grad = jax.value_and_grad(real_fun)(ab + c.step * dab)
        np.testing.assert_allclose(c.value, value, rtol=1e-6)
        np.testing.assert_allclose(c.slope, jnp.vdot(grad, dab), rtol=1e-4, atol=1e-5)
        g = np.concatenate([np.real(c.grad), -np.imag(c.grad)])
        np.testing.assert_allclose(g, grad, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Non-descent directions, non-finite values, budgets, unbounded objectives, no decrease.


@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
@pytest.mark.parametrize("given_origin", [False, True], ids=["evaluated", "given"])
def test_non_descent_returns_the_origin(name, given_origin):
    solve = _bowl_solver(name, given_origin)
    x, descent = bowl_point()
    value0, grad0 = jax.value_and_grad(bowl)(x)
    uphill = jax.tree.map(lambda g: -g, descent)
    orthogonal = {"u": jnp.zeros(3), "v": jnp.array([[1.0, -1.0], [-1.0, 1.0]])}
    zero = jax.tree.map(jnp.zeros_like, x)
    for d in (uphill, orthogonal, zero):
        res = solve(x, d)
        assert int(res.status) == S.NOT_DESCENT
        assert float(res.step) == 0.0
        assert int(res.num_evals) == int(res.num_grads) == (0 if given_origin else 1)
        assert tree_equal_bitwise(res.value, value0)
        assert tree_equal_bitwise(res.grad, grad0)
        assert float(res.slope) >= 0.0
        assert not bool(res.met_nonfinite)


@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
def test_nonfinite_direction_is_invalid_input(name):
    """The origin is evaluated at ``x`` itself: ``f(x)`` and its gradient come back."""
    x, d = bowl_point()
    value0, grad0 = jax.value_and_grad(bowl)(x)
    solve = _bowl_solver(name, False)  # checks num_evals against its count of calls
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        broken = {"u": d["u"].at[1].set(bad), "v": d["v"]}
        res = solve(x, broken)
        assert int(res.status) == S.INVALID_INPUT, res.message
        assert float(res.step) == 0.0 and int(res.num_evals) == 1
        assert tree_equal_bitwise(res.value, value0)
        assert tree_equal_bitwise(res.grad, grad0)


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_beyond_some_step_gives_a_finite_result(name):
    solve, _ = _line_solver(name)
    x, d = jnp.zeros(2), jnp.ones(2)
    v0, s0 = np.float32(2.2), -4.8  # phi(0) = 2 (1 + 0.1), phi'(0) = 2 (-2 - 0.4)
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        for barrier in (1e-9, 0.3, 0.999, 1.5, 4.0):
            for step_init in (1.0, 10.0, 1e4):
                res = solve(x, d, step_init, QUARTIC, barrier, bad)
                check_safe(name, res, v0, s0, np.float32)
                assert float(res.step) <= barrier
                if step_init > barrier:  # the first trial meets the bad value
                    assert bool(res.met_nonfinite)


@pytest.mark.parametrize("name", NAMES)
def test_met_nonfinite_says_whether_a_trial_was_nan_or_inf(name):
    def fun(x):
        return jnp.where(x[0] > 0.5, jnp.nan, jnp.sum((x - 1.0) ** 2))

    x, d = jnp.zeros(2), jnp.ones(2)
    solve = jax.jit(lambda s: run(name, fun, x, d, step_init=s))
    recovered = solve(4.0)
    assert int(recovered.status) == S.SUCCESS and bool(recovered.met_nonfinite)
    assert 0.0 < float(recovered.step) <= 0.5
    clean = solve(0.25)
    assert not bool(clean.met_nonfinite)
    assert recovered.met_nonfinite.dtype == jnp.bool_


EXHAUSTED_CASES = [
    (name, max_evals)
    for name in NAMES_UP_TO_CURVATURE
    # Goldstein refuses max_evals=1 with value-only trials (test_goldstein.py): one call is
    # kept for the gradient of a too-short step returned on failure.
    for max_evals in ((2, 3) if SEARCH[name].keeps_a_call else (1, 2))
]


@pytest.mark.parametrize(("name", "max_evals"), EXHAUSTED_CASES)
def test_exhausted_budget_fails_with_a_safe_point(name, max_evals):
    # phi(t) = (t - 1)^2 + (t - 1)^4 from t = 1e6: the first trial meets no condition.
    fun = lambda x: jnp.sum((x - 1.0) ** 2 + (x - 1.0) ** 4)
    x, d = jnp.zeros(1), jnp.ones(1)
    counter = EvalCounter(fun)
    res = run(name, counter, x, d, step_init=1e6, max_evals=max_evals)
    jax.effects_barrier()
    assert int(res.status) == S.MAX_EVALS, res.message
    assert int(res.num_evals) == counter.count == calls_at_most(name, max_evals)
    check_safe(name, res, 2.0, -6.0, np.float32)
    assert float(res.step) == 0.0  # nothing better was seen


@pytest.mark.parametrize("name", NAMES)
def test_unbounded_below_terminates(name):
    # phi(t) = -2 (t + t^3): no point satisfies a curvature condition (the slope only falls),
    # and the values overflow to -inf for large steps. Armijo alone holds everywhere.
    solve, _ = _line_solver(name)
    x, d = jnp.zeros(2), jnp.ones(2)
    for step_init in (1e-3, 1.0, 1e3):
        res = solve(x, d, step_init, UNBOUNDED)
        check_safe(name, res, 0.0, -2.0, np.float32)
        if SEARCH[name].condition == "armijo":
            assert int(res.status) == S.SUCCESS and float(res.step) == np.float32(step_init)
        else:
            assert int(res.status) in FAILURES, res.message
            assert float(res.step) > 0.0


def quadratic(x):
    return jnp.sum((x - 1.0) ** 2)


@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
def test_no_decrease_is_never_success(name):
    """A step whose value equals ``f(x)`` is no decrease, even where ``c1 t phi'(0)`` is below
    half an ulp of ``f(x)`` (then ``f(x) + c1 t phi'(0)`` rounds to ``f(x)``)."""
    x0 = jnp.zeros(2)
    # The decrease 8e-30 at t = 1e-30 is lost in f(x) = 2: no step near it decreases f.
    res = run(name, quadratic, x0, jnp.full(2, 2.0), step_init=1e-30)
    assert int(res.status) != S.SUCCESS, res
    assert float(res.step) == 0.0 and float(res.value) == 2.0
    # bfloat16: at t = 1, f(x + d) = f(x) = 2 exactly, and 2 - 8e-4 rounds to 2.
    res = run(name, quadratic, jnp.zeros(2, jnp.bfloat16), jnp.full(2, 2.0, jnp.bfloat16))
    assert int(res.status) == S.SUCCESS, res.message
    assert float(res.value) < 2.0


# ---------------------------------------------------------------------------------------
# Results: consistency, counts, the user's value_and_grad, aux.


@pytest.mark.parametrize("name", NAMES)
def test_given_value_and_grad_save_exactly_one_evaluation(name):
    x, d = bowl_point()
    for step_init in (1e-3, 1.0, 100.0):
        evaluated = _bowl_solver(name, False)(x, d, step_init)
        given_origin = _bowl_solver(name, True)(x, d, step_init)
        assert int(evaluated.num_evals) == int(given_origin.num_evals) + 1
        assert int(evaluated.num_grads) == int(given_origin.num_grads) + 1
        assert int(evaluated.status) == int(given_origin.status) == S.SUCCESS
        np.testing.assert_allclose(evaluated.step, given_origin.step, rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_user_value_and_grad_is_used_and_counted(name):
    # The solver counts the calls of its hand-written value_and_grad and checks num_evals.
    solve, _ = _line_solver(name)
    x, d = jnp.zeros(2), jnp.array([1.0, 0.5])
    for step_init in (1e-2, 1.0, 100.0):
        res = solve(x, d, step_init, COSH)
        assert int(res.status) == S.SUCCESS and int(res.num_evals) >= 2
        value, grad = line_value_and_grad_jit(x + res.step * d, COSH, jnp.inf, jnp.nan)
        np.testing.assert_allclose(res.value, value, rtol=1e-6)
        np.testing.assert_allclose(res.grad, grad, rtol=1e-5, atol=1e-6)
        v0, g0 = line_value_and_grad_jit(x, COSH, jnp.inf, jnp.nan)
        assert promised(name, v0, jnp.vdot(g0, d), res, np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_value_only_trials_pay_one_gradient(name):
    """A value-only search computes the gradient at ``x`` and at the result: two of its
    calls; the others compute it at every call. A search that returns step 0 computes no
    gradient beyond the one at ``x``."""
    x, d = bowl_point()
    for step_init in (1e-3, 1.0, 100.0):
        res = _bowl_solver(name, False)(x, d, step_init)
        expected = 2 if SEARCH[name].value_only else int(res.num_evals)
        assert int(res.num_grads) == expected
    if SEARCH[name].value_only:
        res = run(name, quadratic, jnp.zeros(2), jnp.ones(2), step_init=1e9, max_evals=4)
        assert int(res.status) == S.MAX_EVALS and float(res.step) == 0.0
        assert int(res.num_evals) == calls_at_most(name, 4) and int(res.num_grads) == 1


@pytest.mark.parametrize("name", NAMES)
def test_has_aux_returns_the_aux_of_the_returned_point(name):
    """Under `jit` and under `vmap` (members from different first steps and directions):
    the aux of the returned point, the origin's on failure (no descent, budget of one)."""

    def fun(x):
        value = jnp.sum((x - 1.0) ** 2 + 0.1 * (x - 1.0) ** 4)
        return value, {"point": x, "value": value, "count": jnp.int32(7)}

    x = jnp.zeros(2)
    solve = jax.jit(lambda x, d, s: run(name, fun, x, d, step_init=s, has_aux=True))
    cases = [(jnp.ones(2), 1.0), (jnp.ones(2), 30.0), (jnp.array([1.0, 2.0]), 1e-3)]
    cases.append((-jnp.ones(2), 1.0))  # not a descent direction: the origin's aux
    batched = jax.jit(jax.vmap(solve, in_axes=(None, 0, 0)))(
        x, jnp.stack([d for d, _ in cases]), jnp.array([s for _, s in cases])
    )
    batched = jax.tree.map(np.asarray, batched)  # members by NumPy indexing, not eagerly
    for i, (d, step_init) in enumerate(cases):
        res = solve(x, d, step_init)
        member = jax.tree.map(lambda a, i=i: a[i], batched)
        # The same search; the gradient that value-only trials get by transposition may
        # differ by an ulp between the batched and the single program (XLA's fusion).
        for field in ("step", "status", "num_evals", "num_grads", "aux"):
            assert tree_equal_bitwise(getattr(member, field), getattr(res, field)), (i, field)
        np.testing.assert_allclose(member.grad, res.grad, rtol=1e-6)
        assert int(res.status) == (S.SUCCESS if i < 3 else S.NOT_DESCENT), res.message
        point = x + res.step * d
        np.testing.assert_array_equal(res.aux["point"], point)
        assert float(res.aux["value"]) == float(res.value)
        assert int(res.aux["count"]) == 7 and res.aux["count"].dtype == jnp.int32
    first = 2 if SEARCH[name].keeps_a_call else 1
    failed = run(name, fun, x, jnp.ones(2), step_init=1e9, has_aux=True, max_evals=first)
    assert int(failed.status) == S.MAX_EVALS and float(failed.step) == 0.0
    np.testing.assert_array_equal(failed.aux["point"], x)
    with pytest.raises(TypeError, match=rf"{SEARCH[name].call}.*has_aux=True"):
        run(name, fun, x, jnp.ones(2))


# ---------------------------------------------------------------------------------------
# Errors for bad input: named call and argument, never JAX internals.


def _error_cases():
    x, d = jnp.zeros(2), -jnp.ones(2)
    f = lambda y: jnp.sum(y**2)
    return {
        "vector output": (TypeError, r"`fun` must return a real scalar", (lambda y: y, x, d), {}),
        "complex output": (
            TypeError,
            r"`fun` must return a real scalar",
            (lambda y: jnp.sum(y) * (1 + 1j), x, d),
            {},
        ),
        "tuple output": (TypeError, r"pass `has_aux=True`", (lambda y: (f(y), y), x, d), {}),
        "no pair with has_aux": (
            TypeError,
            r"must return a pair `\(value, aux\)`",
            (f, x, d),
            {"has_aux": True},
        ),
        "not callable": (TypeError, r"`fun` must be a function", ("sum", x, d), {}),
        "integer x": (TypeError, r"`x` must be floating", (f, jnp.arange(2), d), {}),
        "x and direction shapes": (ValueError, r"differ in shape", (f, x, -jnp.ones(3)), {}),
        "x and direction trees": (ValueError, r"same structure", (f, x, (d,)), {}),
        "value shape": (
            ValueError,
            r"`value` must be the scalar",
            (f, x, d),
            {"value": jnp.zeros(2), "grad": jnp.zeros(2)},
        ),
        "grad shape": (
            ValueError,
            r"`grad` must be a pytree like `x`",
            (f, x, d),
            {"value": 0.0, "grad": jnp.zeros(3)},
        ),
        "grad structure": (
            ValueError,
            r"`grad` must be a pytree like `x`",
            (f, x, d),
            {"value": 0.0, "grad": [jnp.zeros(2)]},
        ),
        "has_aux not a bool": (
            TypeError,
            r"`has_aux` must be True or False",
            (f, x, d),
            {"has_aux": "no"},
        ),
    }


ERROR_CASES = list(_error_cases())


@pytest.mark.parametrize("case", ERROR_CASES)
@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
def test_bad_input_errors_name_the_call(name, case):
    error, message, args, kwargs = _error_cases()[case]
    with pytest.raises(error, match=rf"`jaxls\.{SEARCH[name].call}.*{message}"):
        run(name, *args, **kwargs)


BOOLEANS = {"interpolate", "strong", "trial_grads", "has_aux"}


@pytest.mark.parametrize("name", NAMES)
def test_booleans_must_be_booleans(name):
    flags = [p for p in inspect.signature(SEARCH[name].fun).parameters if p in BOOLEANS]
    assert "has_aux" in flags
    for flag in flags:
        for value in ("no", 0, jnp.asarray(False)):
            with pytest.raises(TypeError, match=rf"{SEARCH[name].call}.*`{flag}` must be True"):
                SEARCH[name].fun(quadratic, jnp.zeros(2), jnp.ones(2), **{flag: value})
    # NumPy's booleans are booleans (``strong="no"`` was once taken as True).
    flags = {flag: np.bool_(False) for flag in flags if flag != "has_aux"}
    res = SEARCH[name].fun(quadratic, jnp.zeros(2), jnp.ones(2), **flags)
    assert int(res.status) == S.SUCCESS


# ---------------------------------------------------------------------------------------
# Configuration: concrete constants raise, traced ones give a status.

BAD_CONSTANTS = {
    "c1": [0.0, 1.0, -0.5, 1.5, math.nan],
    "c2": [0.0, 1.0, 1.5, -0.1],
    "shrink": [0.0, 1.0, 1.5],
    "grow": [1.0, 0.5, math.inf],
    "theta": [0.0, 1.0, 1.5],
    "gamma": [0.0, 1.0, -0.5, math.nan],
    "step_max": [0.0, -1.0, math.nan],
    "epsilon": [-1.0, math.nan, math.inf],
    "step_init": [0.0, -1.0, math.nan, math.inf],
}
# Narrower ranges of one search: Goldstein's and Hager-Zhang's 0 < c1 < 1/2; Hager-Zhang's
# epsilon > 0 (the approximate conditions are its test, never switched off).
BAD_FOR_SEARCH = {
    "goldstein": {"c1": [0.5, 0.75]},
    "hager_zhang": {"c1": [0.5, 0.75], "epsilon": [0.0]},
}


def bad_values(name, argument) -> list:
    return BAD_CONSTANTS[argument] + BAD_FOR_SEARCH.get(name, {}).get(argument, [])


BAD_CASES = [
    (name, argument, value)
    for name in NAMES_UP_TO_CURVATURE
    for argument in BAD_CONSTANTS
    if has(name, argument)
    for value in bad_values(name, argument)
]
AS = {"python": lambda v: v, "numpy": np.float32, "jax": lambda v: jnp.asarray(v, jnp.float32)}


@pytest.mark.parametrize(("name", "argument", "value"), BAD_CASES)
def test_invalid_concrete_constant_raises_naming_call_and_argument(name, argument, value):
    x, d = jnp.zeros(2), -jnp.ones(2)
    for convert in AS.values():
        with pytest.raises(ValueError, match=rf"{SEARCH[name].call}.*`{argument}`"):
            run(name, lambda y: jnp.sum(y**2), x, d, **{argument: convert(value)})


@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
@pytest.mark.parametrize(
    ("max_evals", "error"), [(0, ValueError), (-3, ValueError), (3.0, TypeError)]
)
def test_invalid_max_evals_raises(name, max_evals, error):
    with pytest.raises(error, match=rf"{SEARCH[name].call}.*`max_evals`"):
        run(name, quadratic, jnp.zeros(2), jnp.ones(2), max_evals=max_evals)


def good_constants(name) -> dict:
    """The search's constants of `BAD_CONSTANTS` but ``step_init``, at their defaults (a
    default of None as the number it stands for)."""
    arguments = [a for a in BAD_CONSTANTS if has(name, a) and a != "step_init"]
    good = {a: constants(name)[a] for a in arguments}
    fallback = {"epsilon": 1e-6, "step_max": np.inf}  # for a default of None
    return {a: fallback[a] if v is None else v for a, v in good.items()}


@functools.cache
def _traced_constants_solver(name):
    """The search on `quadratic` from ``x = 0``, jitted once with the direction and every
    constant of `good_constants` traced: ``call(d, **bad)`` runs it with the good constants
    but ``bad`` (float32 arrays), and checks ``num_evals`` against its count of calls."""
    counter = EvalCounter(quadratic)
    solve = jax.jit(lambda d, kw: run(name, counter, jnp.zeros(2), d, **kw))

    def call(d, **bad):
        # Strongly typed float32 arrays (NumPy's), whatever the caller's: one compile.
        traced = {a: np.float32(v) for a, v in (good_constants(name) | bad).items()}
        counter.count = 0
        res = solve(np.asarray(d, np.float32), traced)
        jax.effects_barrier()
        assert int(res.num_evals) == counter.count
        return res

    return call


@pytest.mark.parametrize("name", [n for n in NAMES_UP_TO_CURVATURE if has(n, "c2")])
def test_c1_above_c2_is_refused(name):
    """``0 < c1 <= c2 < 1``, else no step need satisfy both conditions: a ValueError for
    concrete constants, INVALID_INPUT for traced ones (the others traced too: the compiled
    search of `test_traced_invalid_constant_gives_invalid_input`)."""
    x, d = jnp.zeros(2), jnp.ones(2)
    with pytest.raises(ValueError, match=rf"{SEARCH[name].call}.*c1=0.3, c2=0.2"):
        run(name, quadratic, x, d, c1=0.3, c2=0.2)
    res = _traced_constants_solver(name)(d, c1=0.3, c2=0.2)
    assert int(res.status) == S.INVALID_INPUT and float(res.step) == 0.0


@pytest.mark.parametrize("name", NAMES_UP_TO_CURVATURE)
def test_traced_invalid_constant_gives_invalid_input(name):
    """Every constant may be traced (one compiled search takes them all); a bad one gives
    step 0, ``f(x)`` and nothing more."""
    x0, d = jnp.zeros(2), jnp.full(2, 3.0)
    good = good_constants(name)
    solve = _traced_constants_solver(name)  # counts the calls of quadratic
    # Good traced constants: the search of the same Python constants, bit for bit.
    plain = jax.jit(lambda: run(name, quadratic, x0, jnp.full(2, 3.0), **good))()
    assert int(plain.status) == S.SUCCESS
    assert tree_equal_bitwise(solve(d), plain)
    for argument in good:
        for value in bad_values(name, argument):
            res = solve(d, **{argument: value})
            assert int(res.status) == S.INVALID_INPUT, (argument, value)
            assert float(res.step) == 0.0 and float(res.value) == 2.0
            assert int(res.num_evals) == 1


@pytest.mark.parametrize("name", NAMES)
def test_traced_invalid_step_init_gives_invalid_input(name):
    solve, _ = _line_solver(name)
    x, d = jnp.zeros(2), jnp.ones(2)
    for step_init in (0.0, -1.0, math.nan, math.inf, -math.inf):
        res = solve(x, d, step_init)
        assert int(res.status) == S.INVALID_INPUT
        assert float(res.step) == 0.0 and float(res.value) == np.float32(2.2)
        assert int(res.num_evals) <= 1


# ---------------------------------------------------------------------------------------
# Transformations.


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager(name):
    x, d = bowl_point()
    eager = run(name, bowl, x, d, step_init=3.0)
    jitted = _bowl_solver(name, False)(x, d, 3.0)
    assert int(eager.status) == int(jitted.status) == S.SUCCESS
    assert int(eager.num_evals) == int(jitted.num_evals)
    assert tree_equal_bitwise(eager, jitted)


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
    columns = [jnp.asarray(c, jnp.float32) for c in zip(*members, strict=True)]
    columns[3] = columns[3].astype(jnp.int32)
    batched = jax.jit(jax.vmap(solve))(*columns)
    batched = jax.tree.map(np.asarray, batched)  # members by NumPy indexing, not eagerly
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
        check_safe(name, member, v0, jnp.vdot(g0, d), np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_one_evaluation_per_iteration_under_vmap(name):
    fun = lambda x: jnp.sum(jnp.expm1(x) - 2.0 * x)  # expm1 marks an evaluation
    solve = lambda x, d: run(name, fun, x, d)
    # The origin and the loop body; Goldstein adds the gradient of a too-short step it
    # returns on failure. Value-only trials get their gradient by transposing the trial's
    # linearisation, under a `lax.cond` (a `select` under `vmap`): no evaluation more.
    outside = 2 if SEARCH[name].keeps_a_call else 1
    batched = jax.make_jaxpr(jax.vmap(solve))(jnp.zeros((3, 2)), jnp.ones((3, 2)))
    for jaxpr in (jax.make_jaxpr(solve)(jnp.zeros(2), jnp.ones(2)), batched):
        bodies = while_bodies(jaxpr)
        assert len(bodies) == 1
        assert count_primitive(bodies[0], "expm1") == 1
        conds = count_primitive(bodies[0], "cond")
        assert conds == (1 if SEARCH[name].value_only and jaxpr is not batched else 0)
        assert count_primitive(jaxpr, "expm1") == 1 + outside


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


@pytest.mark.x64(reason="the conditions are checked to 1e-12 against a float64 NumPy oracle")
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
