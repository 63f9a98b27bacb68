"""The contract every exact search on an interval shares, checked once for all of them.

Each test runs the tolerance-driven searches of `tests.interval_methods.METHODS`
(dichotomy, golden section, parabolic, Brent), and where it applies the fixed-budget modes
of ``FIXED`` (Fibonacci, golden section and dichotomy with ``fixed_evals``). The contract is
checked in float32 (JAX's default), float64, bfloat16 and float16, with tolerances by dtype.
Method-specific behaviour (evaluation counts, fixed budgets, starting points, comparisons
with scipy's own methods) lives in the per-method test files.
"""

from __future__ import annotations

import functools
import inspect
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
from jaxls._src.interval.common import default_tol, resolution
from tests.helpers import (
    EvalCounter,
    EvalRecorder,
    assert_members_match,
    count_primitive,
    halvings,
    member,
    on_knife_edge,
    tree_equal_bitwise,
    while_bodies,
)
from tests.interval_methods import FIXED, METHODS, START

NAMES = sorted(METHODS)
FIXED_NAMES = sorted(FIXED)
S = jaxls.Status
DTYPES = [jnp.float32, jnp.float64, jnp.bfloat16, jnp.float16]
DTYPE_IDS = ["float32", "float64", "bfloat16", "float16"]


def eps(dtype) -> float:
    return float(jnp.finfo(dtype).eps)


def ulp(x: float, dtype) -> float:
    """The spacing of ``dtype`` numbers at ``x``."""
    return eps(dtype) * max(abs(x), float(jnp.finfo(dtype).tiny) / eps(dtype))


def rounded(x: float, dtype) -> float:
    return float(jnp.asarray(x, dtype))


@functools.cache  # the same for the four searches
def floor(problem, dtype) -> float:
    """How far from the minimiser a search may stop when the dtype or its values resolve no
    further (``ROUNDING``): the resolution of the points, or ``sqrt(eps)`` relative (a
    smooth minimum is flat to ``eps`` relative over about ``sqrt(eps)``)."""
    lo, up = rounded(problem.lower, dtype), rounded(problem.upper, dtype)
    points = float(resolution(jnp.asarray(lo, dtype), jnp.asarray(up, dtype)))
    return 2 * points + 8 * math.sqrt(eps(dtype)) * max(1.0, abs(problem.xmin))


def fixed_call(name, fun, lower, upper, fixed_evals, **options):
    return FIXED[name](fun, lower, upper, fixed_evals=fixed_evals, **options)


def guarded(fun, lower, upper):
    """``fun``, but NaN outside ``[lower, upper]`` (compared in the dtype of ``x``): a search
    that evaluated there would stop with ``NONFINITE``, so ``SUCCESS`` proves it did not."""

    def guarded_fun(x):
        lo, up = jnp.asarray(lower, x.dtype), jnp.asarray(upper, x.dtype)
        return jnp.where((x < lo) | (x > up), jnp.nan, fun(jnp.clip(x, lo, up)))

    return guarded_fun


def test_registry_names_every_interval_search():
    """A public search on ``(fun, lower, upper)`` missing from the registry fails here."""
    public = {
        name
        for name in jaxls.__all__
        if callable(getattr(jaxls, name))
        and {"fun", "lower", "upper"} <= set(inspect.signature(getattr(jaxls, name)).parameters)
    }
    registered = set(METHODS) | {FIXED[name].__name__ for name in FIXED}
    assert public == registered
    for name in public:  # every one of them takes has_aux
        assert "has_aux" in inspect.signature(getattr(jaxls, name)).parameters


# --- the zoo, in every dtype ---------------------------------------------------------------


def _zoo_fun(x, i):
    """Zoo problem ``i``'s objective at ``x`` (a `lax.switch`: one program for every problem)."""
    return jax.lax.switch(i, [p.fun for p in zoo.INTERVAL], x)


@functools.cache
def _zoo_solver(name):
    """A search on any zoo problem, compiled once per dtype: problem ``i`` (a traced index),
    guarded (NaN outside the bounds it is given); bounds and tolerance are traced.

    Each problem runs alone, as a user calls a search. The whole zoo batched with `vmap`
    gave the same results to the bit but took three times longer to compile (every branch
    of the switch at every step, every update selected member by member); batches are
    checked against single runs in the vmap tests below."""
    method = METHODS[name]

    def solve(lower, upper, tol, i):
        fun = guarded(lambda x: _zoo_fun(x, i), lower, upper)
        return method(fun, lower, upper, tol=tol, max_evals=300)

    return jax.jit(solve)


# The oracles' evaluations of the zoo, compiled once per dtype rather than operation by
# operation: one problem at a point, and one problem on a grid.
_zoo_value = jax.jit(_zoo_fun)
_zoo_on_grid = jax.jit(jax.vmap(_zoo_fun, in_axes=(0, None)))


@functools.cache
def _zoo_intervals(dtype):
    """The zoo's bounds rounded to ``dtype`` (NumPy arrays of it) and `resolution` of each
    rounded interval (float64): computed once per dtype for the four searches."""
    lowers = jnp.asarray([p.lower for p in zoo.INTERVAL], dtype)
    uppers = jnp.asarray([p.upper for p in zoo.INTERVAL], dtype)
    points = np.asarray(jax.vmap(resolution)(lowers, uppers), np.float64)
    return np.asarray(lowers), np.asarray(uppers), points


@functools.cache
def _grid_minimiser(problem):
    """The minimiser of a dense float64 NumPy grid, and the grid step."""
    with jax.enable_x64(True):
        grid = np.linspace(problem.lower, problem.upper, 200_001)
        values = np.asarray(_zoo_on_grid(grid, zoo.INTERVAL.index(problem)))
    return grid[np.argmin(values)], grid[1] - grid[0]


@functools.cache
def _scipy_bounded(problem):
    with jax.enable_x64(True):
        return scipy.optimize.minimize_scalar(
            lambda t: float(problem.fun(np.float64(t))),
            bounds=(problem.lower, problem.upper),
            method="bounded",
            options={"xatol": 1e-10},
        ).x


# A tolerance every search meets on every zoo problem (relative to the interval's scale).
LOOSE = {jnp.float32: 2e-3, jnp.float64: 1e-6, jnp.bfloat16: None, jnp.float16: None}
# Problems whose minimum values resolve the minimiser to the points' resolution (a zero
# minimum value or a kink): SUCCESS at a few times the resolution, in every dtype.
SHARP = {"quadratic", "quartic", "bound", "abs"}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_zoo_oracles(name, dtype):
    """Every zoo problem, at tolerances from loose to below what the values resolve.

    The contract: ``x`` in the final bracket, inside the interval; ``SUCCESS`` only when
    the bracket certifies ``tol`` *and* ``x`` is within ``tol`` of the minimiser (rounded
    to the dtype); ``ROUNDING`` otherwise, with ``x`` within what the dtype resolves.
    Oracles: the promise recomputed in NumPy (spread, bracket holding the minimiser of a
    dense grid), and scipy's bounded Brent.
    """
    problems = zoo.INTERVAL
    lowers, uppers, res_points = _zoo_intervals(dtype)
    scales = np.maximum(np.abs(lowers.astype(np.float64)), np.abs(uppers.astype(np.float64)))
    runs = [(res_points * 4, SHARP), (res_points * 1.5, set())]  # the values may stop first
    if LOOSE[dtype] is not None:
        runs.insert(0, (scales * LOOSE[dtype], {p.name for p in problems}))
    solve = _zoo_solver(name)
    for tols, must_succeed in runs:
        tols = np.asarray(jnp.asarray(tols, dtype))
        for i, problem in enumerate(problems):
            res = solve(lowers[i], uppers[i], tols[i], i)
            assert res.x.dtype == res.value.dtype == res.lower.dtype == dtype
            res, value = jax.device_get((res, _zoo_value(res.x, i)))  # fun at x, recomputed
            tol = float(tols[i])
            status = int(res.status)
            x, lo, hi = float(res.x), float(res.lower), float(res.upper)
            where = (name, problem.name, tol, S(status).name)
            assert float(lowers[i]) <= lo <= x <= hi <= float(uppers[i]), where
            np.testing.assert_allclose(float(res.value), float(value), rtol=8 * eps(dtype), atol=0)
            xmin = rounded(problem.xmin, dtype)
            if status == S.SUCCESS:
                assert max(x - lo, hi - x) <= tol, where
                assert abs(x - xmin) <= tol + ulp(xmin, dtype), where  # honest: really within
                if dtype == jnp.float64:
                    best, step = _grid_minimiser(problem)
                    assert lo - step - 1e-9 <= best <= hi + step + 1e-9, where
                    # scipy's own tolerance has a relative term sqrt(eps) |x|
                    scipy_tol = 4 * math.sqrt(eps(dtype)) * max(1.0, abs(xmin))
                    assert abs(x - _scipy_bounded(problem)) <= tol + scipy_tol, where
            else:
                assert status == S.ROUNDING, where
                assert abs(x - xmin) <= floor(problem, dtype), where
                assert abs(x - _scipy_bounded(problem)) <= floor(problem, dtype) + 1e-8, where
            if problem.name in must_succeed:
                assert status == S.SUCCESS, where


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager(name):
    for problem in zoo.INTERVAL[:1]:
        run = lambda lo, up, tol, p=problem: METHODS[name](p.fun, lo, up, tol=tol, max_evals=200)
        eager = run(problem.lower, problem.upper, 1e-4)
        assert tree_equal_bitwise(jax.jit(run)(problem.lower, problem.upper, 1e-4), eager)
        assert float(eager.value) == float(problem.fun(eager.x))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_never_evaluates_outside_the_interval(name, dtype):
    """NaN outside ``[lower, upper]``, with the minimiser of the quadratic beyond either
    end, on an end, far from 0, or inside a short interval."""

    @jax.jit
    def solve(lower, upper, m, tol):
        fun = guarded(lambda x: (x - m) ** 2, lower, upper)
        return METHODS[name](fun, lower, upper, tol=tol, max_evals=500)

    for lower, upper, m in [
        (1000.0, 1001.5, 999.0),
        (1000.0, 1001.5, 1003.0),
        (-3.0, -2.0, -2.0),
        (-3.0, -2.0, -3.0),
        (0.5, 0.75, 0.6),
        (1e-3, 2e-3, 0.0),
    ]:
        lo, up = jnp.asarray(lower, dtype), jnp.asarray(upper, dtype)
        tol = 2 * float(resolution(lo, up))
        res = solve(lo, up, m, tol)
        assert int(res.status) == S.SUCCESS, res.message
        assert lower <= float(res.lower) <= float(res.x) <= float(res.upper) <= upper
        assert abs(float(res.x) - min(max(m, lower), upper)) <= tol + ulp(m, dtype)


# --- bad input ------------------------------------------------------------------------------


class Kw:
    """Keyword arguments as a test parameter (a dict holding a string or an array makes
    conftest's dtype sniffing, ``np.dtype(param)``, raise)."""

    def __init__(self, mapping):
        self.kwargs = dict(mapping)

    def __repr__(self):
        return ",".join(f"{k}={v!r}" for k, v in self.kwargs.items())


BAD_ARGUMENTS = [
    ({"lower": 2.0, "upper": 1.0}, ValueError, "lower"),
    ({"lower": 1.0, "upper": 1.0}, ValueError, "lower"),
    ({"lower": -np.inf}, ValueError, "lower"),
    ({"lower": np.nan}, ValueError, "lower"),
    ({"upper": np.inf}, ValueError, "upper"),
    ({"upper": np.nan}, ValueError, "upper"),
    ({"lower": 1j}, TypeError, "lower"),
    ({"upper": np.complex64(2.0)}, TypeError, "upper"),
    ({"lower": "0"}, TypeError, "lower"),
    ({"lower": True}, TypeError, "lower"),
    ({"lower": np.zeros(2)}, ValueError, "lower"),
    ({"lower": 1e10, "upper": 1e10 + 1}, ValueError, "lower"),  # equal in float32
    ({"upper": 1e39}, ValueError, "upper"),  # overflows float32
    ({"tol": 0.0}, ValueError, "tol"),
    ({"tol": -1e-3}, ValueError, "tol"),
    ({"tol": np.nan}, ValueError, "tol"),
    ({"tol": np.inf}, ValueError, "tol"),
    ({"tol": 1e-3j}, TypeError, "tol"),
    ({"max_evals": 0}, ValueError, "max_evals"),
    ({"max_evals": 10.0}, TypeError, "max_evals"),
    ({"has_aux": "no"}, TypeError, "has_aux"),
    ({"has_aux": 1}, TypeError, "has_aux"),
]
ARRAY_ARGUMENTS = [  # concrete JAX arrays are checked like Python numbers
    ({"lower": jnp.asarray(2.0)}, ValueError, "lower"),
    ({"upper": jnp.asarray(np.nan)}, ValueError, "upper"),
    ({"tol": jnp.asarray(-1.0)}, ValueError, "tol"),
    ({"lower": jnp.asarray(1.0 + 0j)}, TypeError, "lower"),
    ({"upper": jnp.ones(3)}, ValueError, "upper"),
    ({"tol": jnp.ones(2)}, ValueError, "tol"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("change", "error", "argument"),
    [(Kw(c), e, a) for c, e, a in BAD_ARGUMENTS + ARRAY_ARGUMENTS],
    ids=lambda v: repr(v) if isinstance(v, Kw) else None,
)
def test_concrete_bad_input_raises_naming_call_and_argument(name, change, error, argument):
    kwargs = {"lower": 0.0, "upper": 1.0, "tol": 1e-4, "max_evals": 50} | change.kwargs
    with pytest.raises(error, match=rf"`jaxls\.{name}\(.*`{argument}`"):
        METHODS[name](lambda x: x**2, kwargs.pop("lower"), kwargs.pop("upper"), **kwargs)


@pytest.mark.parametrize("name", FIXED_NAMES)
@pytest.mark.parametrize(
    ("change", "error", "argument"),
    [(Kw(c), e, a) for c, e, a in BAD_ARGUMENTS[:13] + ARRAY_ARGUMENTS[:2]],
    ids=lambda v: repr(v) if isinstance(v, Kw) else None,
)
def test_fixed_budget_bad_input_raises_naming_call_and_argument(name, change, error, argument):
    kwargs = {"lower": 0.0, "upper": 1.0} | change.kwargs
    call = FIXED[name].__name__
    with pytest.raises(error, match=rf"`jaxls\.{call}\(.*`{argument}`"):
        fixed_call(name, lambda x: x**2, kwargs.pop("lower"), kwargs.pop("upper"), 5, **kwargs)


BAD_OBJECTIVES = [
    (3.0, {}, "must be a function"),
    (lambda x, y: x, {}, "must take one scalar"),
    (lambda x: "value", {}, "must take one scalar"),
    (lambda x: jnp.stack([x, x]), {}, "must return a real scalar"),
    (lambda x: (x, x), {}, "pass `has_aux=True`"),
    (lambda x: (x - 1j) ** 2, {}, "complex"),  # never minimised with its imaginary part lost
    (lambda x: jnp.abs(x) + 0j, {}, "complex"),
    (lambda x: x**2, {"has_aux": True}, r"must return a pair `\(value, aux\)`"),
    (lambda x: (x, x, x), {"has_aux": True}, r"must return a pair `\(value, aux\)`"),
    (lambda x: (jnp.stack([x, x]), x), {"has_aux": True}, "must return a real scalar"),
]


@pytest.mark.parametrize("name", NAMES + FIXED_NAMES)
@pytest.mark.parametrize("case", range(len(BAD_OBJECTIVES)))  # strings upset conftest
def test_bad_objective_raises_naming_the_call(name, case):
    fun, options, message = BAD_OBJECTIVES[case]
    if name in METHODS:
        run = lambda: METHODS[name](fun, 0.0, 1.0, tol=1e-3, max_evals=20, **options)
        call = name
    else:
        run = lambda: fixed_call(name, fun, 0.0, 1.0, 5, **options)
        call = FIXED[name].__name__
    error = TypeError
    with pytest.raises(error, match=rf"`jaxls\.{call}.*{message}"):
        run()
    with pytest.raises(error, match=rf"`jaxls\.{call}.*{message}"):
        jax.jit(lambda: run())()


TRACED_BAD = [
    (2.0, 1.0, 1e-3),
    (1.0, 1.0, 1e-3),
    (0.0, np.inf, 1e-3),
    (-np.inf, 0.0, 1e-3),
    (np.nan, 1.0, 1e-3),
    (0.0, np.nan, 1e-3),
    (np.nan, np.nan, 1e-3),
    (0.0, 1.0, 0.0),
    (0.0, 1.0, -1.0),
    (0.0, 1.0, np.nan),
    (0.0, 1.0, np.inf),
]


@pytest.mark.parametrize("name", NAMES)
def test_traced_bad_input_gives_invalid_status_and_evaluates_nothing(name):
    counter = EvalCounter(lambda x: (x - 0.3) ** 2)

    @jax.jit
    def solve(lower, upper, tol):
        return METHODS[name](counter, lower, upper, tol=tol, max_evals=50)

    for lower, upper, tol in TRACED_BAD:
        res = solve(lower, upper, tol)
        assert int(res.status) == S.INVALID_INPUT
        assert int(res.num_evals) == 0 and not bool(res.converged)
        assert np.isnan(float(res.x)) and np.isnan(float(res.value))
        assert tree_equal_bitwise((res.lower, res.upper), (lower, upper))  # as given
    jax.effects_barrier()
    assert counter.count == 0


@pytest.mark.parametrize("name", NAMES + FIXED_NAMES)
def test_vmapped_invalid_members_are_evaluated_only_at_their_own_bound(name):
    """Under vmap a member with invalid input runs in lockstep; its discarded evaluations
    fall on its ``lower`` (else ``upper``, else 0): never inside someone else's interval,
    never at a NaN. Valid members are not disturbed."""
    recorder = EvalRecorder(lambda x, m: (x - m) ** 2)

    def solve(lower, upper, m):
        fun = lambda x: recorder(x, m)
        if name in METHODS:
            return METHODS[name](fun, lower, upper, tol=1e-3, max_evals=30)
        return fixed_call(name, fun, lower, upper, 12)

    lowers = jnp.array([5.0, 0.0, np.inf, np.nan, np.nan, 1.0])
    uppers = jnp.array([2.0, 4.0, 7.0, -3.0, np.nan, 1.0])
    marks = jnp.array([1000.0, 1.0, 2000.0, 3000.0, 4000.0, 5000.0])  # tells members apart
    batched = jax.vmap(solve)(lowers, uppers, marks)
    jax.effects_barrier()
    assert [int(s) for s in batched.status] == [S.INVALID_INPUT, S.SUCCESS] + [S.INVALID_INPUT] * 4
    assert [int(n) for n in np.asarray(batched.num_evals)[[0, 2, 3, 4, 5]]] == [0] * 5
    points = np.asarray(recorder.points)
    values = np.asarray(recorder.values)
    for mark, expected in [
        (1000.0, 5.0),
        (2000.0, 7.0),
        (3000.0, -3.0),
        (4000.0, 0.0),
        (5000.0, 1.0),
    ]:
        mine = points[np.isclose(values, (points - mark) ** 2, rtol=1e-6)]
        assert len(mine) > 0 and np.all(mine == expected), (mark, set(mine))
    valid = points[np.isclose(values, (points - 1.0) ** 2, rtol=1e-6, atol=1e-6)]
    assert np.all((0.0 <= valid) & (valid <= 4.0))


# --- rounding: tolerances the dtype cannot meet --------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_tolerance_below_resolution_warns_and_ends_in_rounding(name, dtype):
    """``tol`` below what the dtype resolves: a `UserWarning` at call time when ``tol`` and
    the bounds are concrete (none when traced), and ``ROUNDING``, never ``SUCCESS``, with
    the bracket at the resolution and holding the minimiser."""
    lower = 100.0 if dtype in (jnp.float32, jnp.float64) else 10.0
    xmin = lower + 0.3
    fun = lambda x: jnp.abs(x - xmin)  # values resolve the minimiser: the points stop first
    lo, up = jnp.asarray(lower, dtype), jnp.asarray(lower + 1.0, dtype)
    tol = float(resolution(lo, up)) / 3
    run = lambda a, b, t: METHODS[name](fun, a, b, tol=t, max_evals=500)
    with pytest.warns(UserWarning, match=rf"`jaxls\.{name}\(tol=.*cannot be met.*ROUNDING"):
        jax.eval_shape(lambda: run(lo, up, tol))  # concrete: warned while tracing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = jax.jit(run)(lo, up, tol)  # traced: no warning, the same status
    assert int(res.status) == S.ROUNDING, res.message
    assert int(res.num_evals) < 500
    for leaf in (res.x, res.value, res.lower, res.upper):
        assert leaf.dtype == dtype
    spread = max(float(res.x - res.lower), float(res.upper - res.x))
    assert tol < spread <= float(resolution(lo, up))
    xmin = rounded(xmin, dtype)
    assert float(res.lower) - ulp(xmin, dtype) <= xmin <= float(res.upper) + ulp(xmin, dtype)


def test_float32_brent_at_an_unattainable_tolerance_says_so():
    """The issue's case: float32 ``brent(f, 0, 6, tol=1e-8)`` claimed convergence with an
    error of 2.4e-4."""
    with pytest.warns(UserWarning, match=r"float32 resolves .* only to 2.86e-06"):
        res = jaxls.brent(zoo.lecture, 0.0, 6.0, tol=1e-8)
    assert int(res.status) == S.ROUNDING and not bool(res.converged)
    assert abs(float(res.x) - 2 * math.sqrt(2)) <= 4 * math.sqrt(eps(jnp.float32)) * 6


LOW_FAMILIES = [
    lambda x, c: (x - c) ** 2 + 1.0,
    lambda x, c: jnp.cosh(x - c),
    lambda x, c: 1.0 - jnp.exp(-((x - c) ** 2)),
    lambda x, c: jnp.abs(x - c),
]


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bfloat16", "float16"])
@pytest.mark.parametrize("name", [*NAMES, "fibonacci"])
def test_low_precision_success_is_within_tol(name, dtype):
    """The issue's case: bfloat16 golden section "converged" at 2.67 for a minimiser at 2.5.
    ``SUCCESS`` now means within ``tol`` of the minimiser (for Fibonacci: the final bracket
    holds it); else ``ROUNDING``. One compiled batch: family x centre x tolerance."""
    lo, up = jnp.asarray(0.0, dtype), jnp.asarray(6.0, dtype)
    reso = float(resolution(lo, up))
    grid = [
        (f, c, tol)
        for f in range(len(LOW_FAMILIES))
        for c in [2.5, 1.1, 4.7]
        for tol in [1.01 * reso, 2 * reso, 0.5, 1.0]
    ]
    family, centre, tols = (jnp.asarray(column) for column in zip(*grid, strict=True))

    def solve(f, c, tol):
        fun = lambda x: jax.lax.switch(f, LOW_FAMILIES, x, c.astype(dtype))
        if name == "fibonacci":
            return jaxls.fibonacci(fun, lo, up, fixed_evals=6)  # F_6 = 13: width 0.47
        return METHODS[name](fun, lo, up, tol=tol.astype(dtype), max_evals=100)

    batch = jax.jit(jax.vmap(solve))(family, centre, tols)
    batch = jax.tree.map(np.asarray, batch)  # one transfer, not an operation per member
    for i, (_, c, tol) in enumerate(grid):
        status, x = int(batch.status[i]), float(batch.x[i])
        assert status in (S.SUCCESS, S.ROUNDING), grid[i]
        c16 = rounded(c, dtype)
        if status == S.ROUNDING:
            assert abs(x - c) <= 8 * math.sqrt(eps(dtype)) * 6 + 2 * reso, grid[i]
        elif name == "fibonacci":
            assert float(batch.lower[i]) <= c16 <= float(batch.upper[i]), grid[i]
        else:
            assert abs(x - c16) <= float(jnp.asarray(tol, dtype)), grid[i]
    assert any(int(s) == S.SUCCESS for s in batch.status)  # not all ROUNDING


# --- the default tolerance: sqrt(eps) max(1, |lower|, |upper|) ---------------------------

# Smooth problems with a known minimiser: a narrow interval, and one far wider than 2 (where
# float32 does not resolve 1e-6). The wide one stops at 250, not 300: (x - 2.3)^2 must stay
# below float16's largest number, 65504.
DEFAULT_CENTRE = 2.3
DEFAULT_INTERVALS = [(0.0, 6.0), (-100.0, 250.0)]
DEFAULT_IDS = ["0..6", "-100..250"]


def default_fun(x):
    return (x - DEFAULT_CENTRE) ** 2


def documented_default(lower: float, upper: float, dtype) -> float:
    """The documented default, recomputed in float64 NumPy from the dtype's ``eps``."""
    return math.sqrt(eps(dtype)) * max(1.0, abs(lower), abs(upper))


@pytest.mark.parametrize(("lower", "upper"), DEFAULT_INTERVALS, ids=DEFAULT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_default_tol_succeeds_within_it_without_warning(name, dtype, lower, upper):
    """No ``tol`` given: no warning, ``SUCCESS``, and ``x`` within the documented default of
    the minimiser (rounded to the dtype), in every dtype. Until the default depended on the
    dtype, it was 1e-6, below what float32 resolves on ``[0, 6]``: a warning and
    ``ROUNDING`` for a user who passed no ``tol``; in bfloat16 and float16 always."""
    lo, up = jnp.asarray(lower, dtype), jnp.asarray(upper, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = getattr(jaxls, name)(default_fun, lo, up)  # tol omitted, as a user would
    assert int(res.status) == S.SUCCESS, res.message
    assert res.x.dtype == dtype
    tol = rounded(documented_default(lower, upper, dtype), dtype)
    x, xmin = float(res.x), rounded(DEFAULT_CENTRE, dtype)
    assert max(x - float(res.lower), float(res.upper) - x) <= tol * (1 + eps(dtype))
    assert abs(x - xmin) <= tol * (1 + eps(dtype)) + ulp(xmin, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_default_tol_is_the_documented_formula(name, dtype):
    """The default is ``sqrt(eps) max(1, |lower|, |upper|)``: ``default_tol`` equals the
    formula recomputed here (to its last-place rounding), and a search without ``tol`` is
    bitwise the search given that formula as ``tol``. An interval inside ``[-1, 1]`` checks
    the ``max(1, ...)``."""
    for lower, upper in [*DEFAULT_INTERVALS, (0.25, 0.75)]:
        lo, up = jnp.asarray(lower, dtype), jnp.asarray(upper, dtype)
        expected = documented_default(lower, upper, dtype)
        got = float(default_tol(lo, up))
        assert abs(got - expected) <= 2 * ulp(expected, dtype), (lower, upper, got, expected)
        fun = (lambda x: (x - 0.4) ** 2) if upper < 1 else default_fun
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            default = getattr(jaxls, name)(fun, lo, up)
            given = METHODS[name](fun, lo, up, tol=expected, max_evals=100)
            explicit_none = METHODS[name](fun, lo, up, tol=None, max_evals=100)
        assert tree_equal_bitwise(default, given), (lower, upper, default, given)
        assert tree_equal_bitwise(default, explicit_none)


@pytest.mark.parametrize("name", NAMES)
def test_default_tol_is_per_member_under_jit_and_vmap(name):
    """Traced bounds get their own default: under `jax.jit` it is the eager one, and under
    `jax.vmap` each member's is that of its own bounds (bitwise the unbatched run given its
    formula as ``tol``), not one for the whole batch."""
    intervals = [(0.0, 6.0), (-100.0, 250.0), (0.25, 0.75), (1000.0, 1010.0)]
    centres = [2.3, 2.3, 0.4, 1003.3]
    lowers, uppers = (jnp.asarray(column, jnp.float32) for column in zip(*intervals, strict=True))
    solve = lambda lo, up, c: getattr(jaxls, name)(lambda x: (x - c) ** 2, lo, up)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = jax.jit(jax.vmap(solve))(lowers, uppers, jnp.asarray(centres, jnp.float32))
        for i, ((lower, upper), c) in enumerate(zip(intervals, centres, strict=True)):
            lo, up, c = lowers[i], uppers[i], jnp.float32(c)
            eager = solve(lo, up, c)
            assert tree_equal_bitwise(jax.jit(solve)(lo, up, c), eager), (lower, upper)
            tol = documented_default(lower, upper, jnp.float32)
            alone = METHODS[name](lambda x, c=c: (x - c) ** 2, lo, up, tol=tol, max_evals=100)
            assert tree_equal_bitwise(member(batch, i), alone), (lower, upper)
            assert int(alone.status) == S.SUCCESS, (lower, upper, alone.message)
            assert abs(float(alone.x) - float(c)) <= tol + ulp(float(c), jnp.float32)


@pytest.mark.parametrize("name", NAMES)
def test_explicit_tol_below_float32_resolution_still_warns_and_rounds(name):
    """A given ``tol`` keeps its behaviour: ``tol=1e-6`` (the old default) on ``[0, 6]`` in
    float32, below its resolution ``4 eps 6 = 2.9e-6``, warns and ends in ``ROUNDING``."""
    with pytest.warns(UserWarning, match=rf"`jaxls\.{name}\(tol=1e-06\)`.*cannot be met"):
        res = getattr(jaxls, name)(default_fun, 0.0, 6.0, tol=1e-6)
    assert int(res.status) == S.ROUNDING, res.message
    assert abs(float(res.x) - rounded(DEFAULT_CENTRE, jnp.float32)) <= 2 * float(
        resolution(jnp.float32(0.0), jnp.float32(6.0))
    )


@pytest.mark.parametrize("name", ["golden_section_fixed", "dichotomy_fixed"])
def test_fixed_budget_accepts_tol_none(name):
    """The fixed-budget modes do not use ``tol``: ``None``, the default, passes its check."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        omitted = fixed_call(name, default_fun, 0.0, 6.0, 12)
        none = fixed_call(name, default_fun, 0.0, 6.0, 12, tol=None)
    assert tree_equal_bitwise(omitted, none)
    assert int(none.status) == S.SUCCESS and int(none.num_evals) == 12


# --- wide intervals ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", NAMES + FIXED_NAMES)
def test_interval_wider_than_the_largest_float(name, dtype):
    """``upper - lower`` overflows: every point stays finite and inside (the objective is
    NaN elsewhere, at inf too), and the final bracket holds the minimiser (``ROUNDING``:
    the dtype resolves it only to ``4 eps 3e38``)."""
    big = 0.9 * float(jnp.finfo(dtype).max)
    lo, up = jnp.asarray(-big, dtype), jnp.asarray(big, dtype)
    fun = guarded(lambda x: jnp.abs(x - 0.3), lo, up)
    # Host callbacks run with x64 off: record float32 points only.
    recorder = EvalRecorder(fun) if dtype == jnp.float32 else fun
    if name in METHODS:
        run = lambda a, b: METHODS[name](recorder, a, b, tol=1.0, max_evals=200)
        with pytest.warns(UserWarning, match="cannot be met"):
            res = run(lo, up)
    else:
        run = lambda a, b: fixed_call(name, recorder, a, b, 150)
        res = run(lo, up)
    assert int(res.status) == S.ROUNDING, res.message
    assert float(res.lower) <= 0.3 <= float(res.upper)
    assert int(res.num_evals) > 10 and np.isfinite(float(res.value))
    assert abs(float(res.x)) <= float(resolution(lo, up))
    if dtype == jnp.float32:
        jax.effects_barrier()
        points = np.asarray(recorder.points)
        assert len(points) == int(res.num_evals) and float(res.x) in points
        assert np.all((float(lo) <= points) & (points <= float(up)))
        recorder.clear()
    if dtype == jnp.float32:  # jitted, multiply-adds may round a point differently
        res = jax.jit(run)(lo, up)
        assert int(res.status) == S.ROUNDING and float(res.lower) <= 0.3 <= float(res.upper)


# --- failures ------------------------------------------------------------------------------


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
        lambda x: recorder(x, *params), 0.0, 5.0, tol=1e-5, max_evals=100
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
            start = float(START[name](jnp.float32(0.0), jnp.float32(5.0)))
            assert x == points[0] == start
        else:
            assert value == min(values[:-1]), params
            assert (x, value) in zip(points, values, strict=True)
    recorder.clear()
    assert tree_equal_bitwise(run(*NONFINITE_CASES[3]), solve(*NONFINITE_CASES[3]))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("max_evals", [1, 3, 5])
def test_exhausted_budget_returns_best_point_inside(name, max_evals):
    recorder = EvalRecorder(zoo.lecture)
    run = lambda lo, up: METHODS[name](recorder, lo, up, tol=1e-5, max_evals=max_evals)
    res = jax.jit(run)(0.0, 6.0)
    jax.effects_barrier()
    points, values = list(recorder.points), list(recorder.values)
    if max_evals == 3:
        assert tree_equal_bitwise(run(0.0, 6.0), res)
    assert int(res.status) == S.MAX_EVALS
    assert int(res.num_evals) == max_evals == len(points)
    assert 0.0 <= float(res.lower) <= float(res.x) <= float(res.upper) <= 6.0
    assert float(res.value) == float(zoo.lecture(res.x)) == min(values)
    assert (float(res.x), float(res.value)) in zip(points, values, strict=True)


# --- the number of evaluations: a host-side counter is the oracle ---------------------------

COUNTED = [(p.name, p.fun, p.lower, p.upper) for p in zoo.INTERVAL[:4]] + [
    ("nan_beyond_4", lambda x: jnp.where(x > 4, jnp.nan, -x), 0.0, 5.0),
    ("nan_everywhere", lambda x: x * jnp.nan, 2.0, 5.0),
    ("flat", lambda x: 0.0 * x + 1.0, 0.0, 1.0),
]


def _switch(cases):
    """``fun(x, i)``: case ``i``'s objective (one compilation for every case)."""
    funs = [case[1] for case in cases]
    return lambda x, i: jax.lax.switch(i, funs, x)


@pytest.mark.parametrize("name", NAMES)
def test_num_evals_counts_real_calls(name):
    """``num_evals`` is the number of calls (a host-side counter), each at a new point
    inside, the first at the method's starting point, ``(x, value)`` one of them; eager
    and jitted alike."""
    recorder = EvalRecorder(_switch(COUNTED))
    run = lambda lo, up, i: METHODS[name](lambda x: recorder(x, i), lo, up, tol=1e-3, max_evals=100)
    solve = jax.jit(run)
    for i, (case, _, lower, upper) in enumerate(COUNTED):
        recorder.clear()
        res = solve(lower, upper, i)
        jax.effects_barrier()
        points = recorder.points
        assert len(points) == int(res.num_evals), case
        assert all(lower <= p <= upper for p in points)
        assert len(set(points)) == len(points)  # each point is evaluated once
        start = float(START[name](jnp.float32(lower), jnp.float32(upper)))
        assert abs(points[0] - start) <= 2 * ulp(max(abs(lower), abs(upper)), jnp.float32)
        j = points.index(float(res.x))  # (x, value) is one of the calls
        np.testing.assert_array_equal(recorder.values[j], float(res.value))
        if case in ("lecture", "nan_everywhere"):
            recorder.clear()
            assert tree_equal_bitwise(run(lower, upper, i), res)
            jax.effects_barrier()
            assert len(recorder.points) == int(res.num_evals)


FIXED_COUNTED = [
    ("unimodal", lambda x: (x - 3.3) ** 2, 12),
    ("nan_everywhere", lambda x: x * jnp.nan, 1),  # the case: fun ran 40 times
    ("nan_beyond_4", lambda x: jnp.where(x > 4, jnp.nan, -x), None),
    ("flat", lambda x: 0.0 * x + 1.0, None),  # ties: ROUNDING before the budget
]


@pytest.mark.parametrize("name", FIXED_NAMES)
def test_fixed_budget_num_evals_counts_real_calls(name):
    """Run alone, a fixed budget stops evaluating once it stopped: ``num_evals`` is the
    number of calls made (eager and jitted), every one inside the interval."""
    recorder = EvalRecorder(_switch(FIXED_COUNTED))
    run = lambda lo, up, i: fixed_call(name, lambda x: recorder(x, i), lo, up, 12)
    solve = jax.jit(run)
    for i, (case, _, expected) in enumerate(FIXED_COUNTED):
        recorder.clear()
        res = solve(2.0, 5.0, i)
        jax.effects_barrier()
        assert len(recorder.points) == int(res.num_evals), (case, S(int(res.status)).name)
        assert all(2.0 <= p <= 5.0 for p in recorder.points)
        if expected is not None:
            assert int(res.num_evals) == expected
        else:
            assert 1 < int(res.num_evals) < 12
        if case == "nan_everywhere":
            recorder.clear()
            assert tree_equal_bitwise(run(2.0, 5.0, i), res)
            jax.effects_barrier()
            assert len(recorder.points) == 1


@pytest.mark.parametrize("name", FIXED_NAMES)
def test_fixed_budget_invalid_input_is_never_evaluated(name):
    """The issue's case: ``jax.jit(fibonacci)(fun, 5., 2.)`` reported 0 evaluations but
    called ``fun`` 10 times, at points in [0.33, 0.49], outside the interval."""
    counter = EvalCounter(lambda x: (x - 3.0) ** 2)
    solve = jax.jit(lambda lo, up: fixed_call(name, counter, lo, up, 10))
    for lower, upper in [(5.0, 2.0), (1.0, 1.0), (np.nan, 2.0), (0.0, np.inf)]:
        res = solve(lower, upper)
        assert int(res.status) == S.INVALID_INPUT and int(res.num_evals) == 0
        assert np.isnan(float(res.x)) and np.isnan(float(res.value))
        assert tree_equal_bitwise((res.lower, res.upper), (lower, upper))
    jax.effects_barrier()
    assert counter.count == 0


# --- auxiliary outputs ------------------------------------------------------------------------


def _with_aux(fun):
    """``fun`` returning ``(value, aux)``; the aux holds the point, the value and an int."""
    return lambda x: (fun(x), {"x": x, "twice": (2 * fun(x), jnp.int32(7))})


@pytest.mark.parametrize("name", NAMES + FIXED_NAMES)
def test_has_aux_returns_the_aux_at_x(name):
    def solve(lower, upper, centre, barrier):
        fun = _with_aux(lambda x: jnp.where(x > barrier, jnp.nan, jnp.cosh(x - centre)))
        if name in METHODS:
            return METHODS[name](fun, lower, upper, tol=1e-3, max_evals=40, has_aux=True)
        return fixed_call(name, fun, lower, upper, 15, has_aux=True)

    lowers = jnp.array([0.0, 0.0, 0.0, 2.0, 0.0])
    uppers = jnp.array([3.0, 6.0, 6.0, 1.0, 3.0])
    centres = jnp.array([1.2, 5.9, 1.0, 0.0, 2.9])
    barriers = jnp.array([9.0, 5.5, -1.0, 9.0, 9.0])  # ok, NaN met, NaN at once, invalid, ok
    batched = jax.jit(jax.vmap(solve))(lowers, uppers, centres, barriers)
    statuses = [S(int(s)) for s in batched.status]
    single = jax.jit(solve)
    assert statuses[2] == S.NONFINITE and statuses[3] == S.INVALID_INPUT
    for i in range(len(lowers)):
        res = single(lowers[i], uppers[i], centres[i], barriers[i])
        assert tree_equal_bitwise(res, jax.tree.map(lambda leaf, i=i: leaf[i], batched))
        if statuses[i] == S.INVALID_INPUT:
            assert float(res.aux["x"]) == 0.0 and int(res.aux["twice"][1]) == 0  # zeros
            continue
        assert float(res.aux["x"]) == float(res.x)
        np.testing.assert_array_equal(res.aux["twice"][0], 2 * res.value)
        assert int(res.aux["twice"][1]) == 7
        assert res.aux["x"].dtype == jnp.float32 and res.aux["twice"][1].dtype == jnp.int32


# --- dtypes and traced constants -------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES + FIXED_NAMES)
def test_dtype_rule(name):
    """One rule: the bounds' floating dtype promoted with the value's; ``fun`` gets points
    of it; an integer or boolean value counts as the bounds' dtype. (The rule lives in
    the shared setup: the whole table for two searches, one case for the others.)"""

    def run(fun, lower, upper):
        if name in METHODS:
            return METHODS[name](fun, lower, upper, tol=0.05, max_evals=60)
        return fixed_call(name, fun, lower, upper, 12)

    seen = []

    def spy(cast):
        def fun(x):
            jax.debug.callback(lambda v: seen.append(v.dtype), x)  # executed calls only
            return cast(jnp.abs(x - 0.3))

        return fun

    bf16 = (jnp.bfloat16(0.0), jnp.bfloat16(1.0))
    table = [
        (spy(lambda v: v.astype(jnp.float32)), bf16, jnp.float32),  # value wider: float32
        (spy(lambda v: v), bf16, jnp.bfloat16),
        (spy(lambda v: v.astype(jnp.bfloat16)), (0.0, 1.0), jnp.float32),  # bounds wider
        (spy(lambda v: (100 * v).astype(jnp.int32)), bf16, jnp.bfloat16),  # int value
        (spy(lambda v: v < 0.2), (0.0, 1.0), jnp.float32),  # bool value
        (spy(lambda v: v), (0, 1), jnp.float32),  # int bounds: JAX's default float
    ]
    for fun, bounds, dtype in table if name in ("golden_section", "fibonacci") else table[:1]:
        seen.clear()
        res = run(fun, *bounds)
        jax.effects_barrier()
        assert {res.x.dtype, res.value.dtype, res.lower.dtype, res.upper.dtype} == {
            jnp.dtype(dtype)
        }
        assert set(seen) == {jnp.dtype(dtype)}
        assert int(res.status) in (S.SUCCESS, S.ROUNDING)
        assert float(res.lower) <= float(res.x) <= float(res.upper)


@pytest.mark.x64(reason="a float64 objective of float32 bounds is searched in float64")
@pytest.mark.parametrize("name", NAMES + FIXED_NAMES)
def test_dtype_rule_float64_objective_of_float32_bounds(name):
    fun = lambda x: (x.astype(jnp.float64) - 0.1) ** 2
    lo, up = jnp.float32(0.0), jnp.float32(1.0)
    if name in METHODS:
        res = METHODS[name](fun, lo, up, tol=1e-9, max_evals=100)
    else:
        res = fixed_call(name, fun, lo, up, 40)
    assert {res.x.dtype, res.value.dtype, res.lower.dtype, res.upper.dtype} == {
        jnp.dtype("float64")
    }
    assert abs(float(res.x) - 0.1) < 1e-7


@pytest.mark.parametrize("name", NAMES)
def test_every_constant_may_be_traced_or_a_jax_array(name):
    """``lower``, ``upper`` and ``tol`` traced one at a time, or concrete JAX arrays: the
    same result as Python numbers; traced bad values give ``INVALID_INPUT``."""
    fun = lambda x: jnp.cosh(x - 1.3)
    run = lambda lower=0.0, upper=4.0, tol=1e-3: METHODS[name](
        fun, lower, upper, tol=tol, max_evals=60
    )
    expected = run(jnp.asarray(0.0), jnp.asarray(4.0), jnp.asarray(1e-3))  # concrete arrays
    for key, good, bad in [("lower", 0.0, 5.0), ("upper", 4.0, -1.0), ("tol", 1e-3, -1e-3)]:
        solve = jax.jit(lambda value, key=key: run(**{key: value}))
        assert tree_equal_bitwise(solve(good), expected)
        assert int(solve(bad).status) == S.INVALID_INPUT


@pytest.mark.parametrize("name", FIXED_NAMES)
def test_fixed_budget_bounds_may_be_traced(name):
    fun = lambda x: jnp.cosh(x - 1.3)
    expected = fixed_call(name, fun, 0.0, 4.0, 10)
    solve = jax.jit(lambda a, b: fixed_call(name, fun, a, b, 10))
    assert tree_equal_bitwise(solve(0.0, 4.0), expected)
    assert int(solve(0.0, -4.0).status) == S.INVALID_INPUT


# --- vmap, jaxprs ----------------------------------------------------------------------------

BATCH_MAX_EVALS = 18
# Each member's (lower, upper, centre, barrier, kink, tol), the status it must end with, and
# its evaluation count where the status fixes it.
BATCH = [
    ((0.0, 6.0, 2.0, jnp.inf, 0.0, 2e-2), S.SUCCESS, None),
    ((1000.0, 1010.0, 1004.5, jnp.inf, 0.0, 1e-1), S.SUCCESS, None),  # far from 0
    ((-5.0, 0.95, 3.0, jnp.inf, 0.0, 2e-2), S.SUCCESS, None),  # minimiser at the upper end
    ((2.0, 1.0, 0.0, jnp.inf, 0.0, 1e-2), S.INVALID_INPUT, 0),  # bounds not ordered
    ((-3.0, jnp.inf, 0.0, jnp.inf, 0.0, 1e-2), S.INVALID_INPUT, 0),  # upper not finite
    ((0.0, 1.0, 0.3, jnp.inf, 0.0, 0.0), S.INVALID_INPUT, 0),  # tol 0
    ((0.0, 5.0, 3.0, 3.3, 0.0, 1e-2), S.NONFINITE, None),  # NaN beyond 3.3, near the minimiser
    ((0.0, 4.0, -30.0, -23.0, 0.0, 1e-2), S.NONFINITE, 1),  # NaN everywhere: the first value
    ((1.9, 2.1, 2.0, jnp.inf, 0.0, 2e-6), S.ROUNDING, None),  # cosh's bottom, flat in float32
    ((0.0, 1000.0, 371.3, jnp.inf, 1.0, 1e-3), S.MAX_EVALS, BATCH_MAX_EVALS),  # a cusp, far
]


def _batch_member(name, lower, upper, centre, barrier, kink, tol):
    """``cosh(x - centre)`` (or ``|x - centre|^(1/2)`` with ``kink``), NaN beyond ``barrier``."""

    def fun(x):
        d = x - centre
        cusp = jnp.sqrt(jnp.abs(d))
        return jnp.where(x > barrier, jnp.nan, jnp.where(kink > 0, cusp, jnp.cosh(d)))

    return METHODS[name](fun, lower, upper, tol=tol, max_evals=BATCH_MAX_EVALS)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_mixed_batch_matches_unbatched_runs(name):
    """Every member bitwise equal to its own run; failing members get their own status."""
    solve = functools.partial(_batch_member, name)
    args = [jnp.array(column) for column in zip(*(row[0] for row in BATCH), strict=True)]
    batched = jax.jit(jax.vmap(solve))(*args)
    assert [S(int(s)).name for s in batched.status] == [row[1].name for row in BATCH]
    for (_, _, evals), n in zip(BATCH, batched.num_evals, strict=True):
        assert int(n) == evals if evals is not None else 1 < int(n) < BATCH_MAX_EVALS
    assert_members_match(batched, jax.jit(solve), *args)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_closed_over_parameter(name):
    """Minimisers inside, on both sides outside, and a NaN parameter (``NONFINITE``)."""
    centres = jnp.array([-2.0, -0.5, 0.5, 1.7, 3.0, 4.9, 5.5, 7.0, jnp.nan])

    def solve(c):
        fun = lambda x: (x - c) ** 2 + 0.1 * (x - c) ** 4
        return METHODS[name](fun, 0.0, 6.0, tol=1e-5, max_evals=200)

    res = jax.vmap(solve)(centres)
    assert [int(s) for s in res.status] == [S.SUCCESS] * 8 + [S.NONFINITE]
    np.testing.assert_allclose(res.x[:-1], np.clip(centres[:-1], 0.0, 6.0), rtol=0, atol=1e-5)
    assert_members_match(res, jax.jit(solve), centres)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batched", [False, True])
def test_one_evaluation_per_iteration_and_no_cond(name, batched):
    fun = lambda x: jnp.expm1(x) - 2.0 * x  # expm1 marks an evaluation
    solve = lambda lo, hi: METHODS[name](fun, lo, hi, tol=1e-4, max_evals=100)
    if batched:
        jaxpr = jax.make_jaxpr(jax.vmap(solve))(jnp.zeros(3), jnp.ones(3))
    else:
        jaxpr = jax.make_jaxpr(solve)(0.0, 1.0)
    bodies = while_bodies(jaxpr)
    assert len(bodies) == 1
    assert count_primitive(bodies[0], "expm1") == 1
    assert count_primitive(jaxpr, "expm1") == 1  # no evaluation outside the loop
    assert count_primitive(jaxpr, "cond") == 0


# --- random unimodal problems ---------------------------------------------------------------

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


@pytest.mark.x64(reason="tolerances down to 1e-8 of the width, intervals up to 1e4 from 0")
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
    """Random unimodal problems: ``SUCCESS`` puts the minimiser (clipped to the interval)
    within ``tol`` of ``x``, in the final bracket; ``ROUNDING`` only where the values are
    flat to rounding; for dichotomy, also its halving count."""
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
    eps64 = eps(jnp.float64)
    x_star = min(max(centre, lower), upper)
    x, lo, hi = float(res.x), float(res.lower), float(res.upper)
    rounding = 8 * eps64 * max(abs(lower), abs(upper))  # of x - centre
    assert lower <= lo <= x <= hi <= upper
    if int(res.status) == S.SUCCESS:
        assert max(x - lo, hi - x) <= tol
        assert lo - rounding <= x_star <= hi + rounding
        assert abs(x - x_star) <= tol + rounding
        if name == "dichotomy" and not on_knife_edge(width, tol):
            k = halvings(width, tol)
            assert k + 1 <= int(res.num_evals) <= 2 * k + 1
    else:
        assert int(res.status) == S.ROUNDING
        # Values flat to eps relative: cosh within sqrt(eps) / shape of its minimum, the
        # powers within eps^(1/power) relative to the scale of the interval.
        if family == "cosh" and x_star == centre:
            flat = 8 * math.sqrt(eps64) / shape
        else:
            flat = 8 * width * eps64 ** (1 / max(power, 2.0) if family == "power" else 0.5)
        assert abs(x - x_star) <= max(tol, flat) + rounding + 8 * eps64 * width
