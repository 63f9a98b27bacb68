"""Goldstein search: the conditions recomputed in NumPy, scipy's strong-Wolfe search as reference.

The oracles: on every problem and direction the returned step satisfies
``phi(0) + (1 - c1) t phi'(0) <= phi(t) <= phi(0) + c1 t phi'(0)`` with ``phi`` and ``phi'``
re-evaluated in NumPy at ``x + t d``; `scipy.optimize.line_search` (strong Wolfe) on the
same problems reaches a comparable decrease. The search can grow the step as well as shrink
it, so a first step that is far too short still succeeds; every failure returns a point
satisfying Armijo, or step 0. Trials evaluate values only (the gradient once, at the
result) unless ``trial_grads=True``. The oracles compare to 1e-12, so those tests run in
float64; float32, JAX's default, has tests of its own.

The contract every inexact search shares (non-descent, NaN, budgets, bad or traced
constants, booleans, vmap, jit, dtypes, counts, has_aux, errors) is checked once, for every
search, in tests/test_step.py; this file keeps what only this search promises.
"""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.optimize import line_search

import jaxls
from jaxls._src.step.goldstein import midline_root, model_slope
from jaxls._src.step.line import LinePoint
from tests.helpers import (
    compiled_value_and_grad,
    EvalCounter,
    arrays,
    tree_dot,
    tree_grad,
    tree_objective,
    tree_params,
    tree_points,
)

S = jaxls.Status
EPS = float(np.finfo(np.float64).eps)
C1 = inspect.signature(jaxls.goldstein).parameters["c1"].default


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


PROBLEMS = {
    "rosenbrock": (rosenbrock, [-1.2, 1.0, -0.5, 0.3]),
    "quadratic": (lambda x: 0.5 * jnp.sum(jnp.arange(1.0, 6.0) * x**2), [1.0, 1.25, 1.5, 1.75, 2]),
    "exp": (lambda x: jnp.sum(jnp.exp(x) - x), [2.0, -1.0, 0.5]),
    "log_cosh": (lambda x: jnp.sum(jnp.log(jnp.cosh(3.0 * x))), [1.0, -2.0, 0.3]),
    "steep": (lambda x: jnp.sum(x**10 / 10.0 - x), [0.0, 0.1]),
}


def directions(fun, x):
    """Steepest descent, scaled so that a first step of 1 is right, too long, too short."""
    g = np.asarray(compiled_value_and_grad(fun)(x)[1])
    return {
        "-g": -g,
        "-g/4": -g / 4,
        "-10g": -10 * g,
        "tiny": -1e-3 * g / np.linalg.norm(g),
    }


CASES = [(name, dname) for name in PROBLEMS for dname in ("-g", "-g/4", "-10g", "tiny")]


def line(fun, x, d, t):
    """``phi(t)``, ``phi'(t)`` and the gradient, re-evaluated at ``x + t d`` built in NumPy."""
    point = np.asarray(x, np.float64) + t * np.asarray(d, np.float64)
    value, grad = compiled_value_and_grad(fun)(jnp.asarray(point))
    grad = np.asarray(grad)
    return float(value), float(grad @ np.asarray(d)), grad


def check_goldstein(fun, x, d, res, c1=C1):
    """SUCCESS, the conditions in NumPy, and the result's fields all of the one point."""
    assert int(res.status) == S.SUCCESS, res.message
    v0, s0, _ = line(fun, x, d, 0.0)
    t = float(res.step)
    v, s, g = line(fun, x, d, t)
    tol = 16 * EPS * (abs(v0) + abs(v) + abs(t * s0))
    assert v0 + (1 - c1) * t * s0 - tol <= v <= v0 + c1 * t * s0 + tol, (t, v, v0, s0)
    np.testing.assert_allclose(float(res.value), v, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(float(res.slope), s, rtol=1e-10, atol=1e-12 * abs(s0))
    np.testing.assert_allclose(np.asarray(res.grad), g, rtol=1e-10, atol=1e-12)
    return v0, v


def check_safe_failure(fun, x, d, res, c1=C1):
    """A failure returns step 0 or a point satisfying Armijo: never an uphill step."""
    v0, s0, _ = line(fun, x, d, 0.0)
    t = float(res.step)
    assert np.isfinite(t) and t >= 0.0 and np.isfinite(float(res.value))
    if t == 0.0:
        assert float(res.value) == v0
    else:
        v, _, _ = line(fun, x, d, t)
        assert v <= v0 + c1 * t * s0 + 16 * EPS * (abs(v0) + abs(v)), (t, v, v0)


@functools.cache
def solver(name, max_evals=30):
    """One compilation per problem: ``x``, ``d`` and ``step_init`` are traced."""
    fun = PROBLEMS[name][0]
    return jax.jit(
        lambda x, d, step_init: jaxls.goldstein(fun, x, d, step_init=step_init, max_evals=max_evals)
    )


@pytest.mark.x64(reason="conditions and scipy's reference checked in float64")
@pytest.mark.parametrize(("name", "dname"), CASES)
def test_conditions_hold_and_scipy_decrease_is_matched(name, dname):
    fun, x = PROBLEMS[name]
    x = np.asarray(x, np.float64)
    d = directions(fun, x)[dname]
    res = solver(name)(x, d, 1.0)
    v0, v = check_goldstein(fun, x, d, res)
    # Reference: scipy's strong-Wolfe search (c1 = 1e-4, c2 = 0.9) on the same line.
    f = lambda z: float(compiled_value_and_grad(fun)(jnp.asarray(z))[0])
    fprime = lambda z: np.asarray(compiled_value_and_grad(fun)(jnp.asarray(z))[1])
    alpha, *_ = line_search(f, fprime, x, d, maxiter=30)
    assert alpha is not None
    v_ref, s_ref, _ = line(fun, x, d, alpha)
    s0 = line(fun, x, d, 0.0)[1]
    assert v_ref <= v0 + 1e-4 * alpha * s0 and abs(s_ref) <= 0.9 * abs(s0)
    # Measured: our decrease is 0.81 to 5 times scipy's on these lines.
    assert v0 - v >= 0.5 * (v0 - v_ref)


@pytest.mark.x64(reason="conditions checked in float64")
@pytest.mark.parametrize("name", PROBLEMS)
def test_too_short_first_step_grows_and_succeeds(name):
    fun, x = PROBLEMS[name]
    x = np.asarray(x, np.float64)
    d = directions(fun, x)["-g"]
    res = solver(name, 60)(x, d, 1e-6)
    check_goldstein(fun, x, d, res)
    assert float(res.step) > 1e-4
    # Doubling from 1e-6 to the Goldstein band, then at most a few interpolations, and the
    # gradient at the result.
    assert int(res.num_evals) <= 1 + np.ceil(np.log2(float(res.step) / 1e-6)) + 7
    assert int(res.num_grads) == 2


@pytest.mark.x64(reason="the step compared to 1e-12")
def test_quadratic_interpolation_is_exact_on_a_quadratic():
    """From ``lo = 0`` the midline root of the model is the minimiser of the quadratic, which
    meets the conditions for any ``c1 < 1/2``: one shrink from a step too long suffices."""
    fun = PROBLEMS["quadratic"][0]
    x = np.asarray(PROBLEMS["quadratic"][1], np.float64)
    d = directions(fun, x)["-g"]  # the minimiser, 0.23, is inside the safeguard [0.1, 0.9]
    res = solver("quadratic")(x, d, 1.0)
    a = np.arange(1.0, 6.0)
    exact = -((a * x) @ d) / ((a * d) @ d)
    # The origin, t = 1, the minimiser (its gradient from that call's linearisation).
    assert int(res.num_evals) == 3 and int(res.num_grads) == 2
    np.testing.assert_allclose(float(res.step), exact, rtol=1e-12)


@pytest.mark.x64(reason="conditions checked in float64")
def test_midline_root_lands_in_the_band_of_a_deep_valley():
    """``phi(t) = -t + t^10 / 10``: the minimiser (t = 1, phi = -0.9) is too short for
    ``c1 = 0.25``, so a minimising interpolation would crawl; the midline root does not."""
    fun = lambda x: jnp.sum(x**10 / 10.0 - x)
    x, d = np.zeros(1), np.ones(1)
    counter = EvalCounter(fun)
    res = jaxls.goldstein(counter, x, d, step_init=1.0, c1=0.25)
    jax.effects_barrier()
    check_goldstein(fun, x, d, res, c1=0.25)
    assert float(res.step) > 1.0
    assert counter.count == int(res.num_evals) <= 7


@jax.jit
@jax.vmap
def _midline_roots(v0, s0, lo_t, lo_v, lo_s, hi_t, hi_v):
    """`midline_root` of each model (a batch, compiled once)."""
    origin = LinePoint(0.0, v0, s0, None)
    lo = LinePoint(lo_t, lo_v, lo_s, None)
    hi = LinePoint(hi_t, hi_v, jnp.nan, None)
    return midline_root(origin, lo, hi)


@jax.jit
@jax.vmap
def _model_slopes(v0, s0, lo_t, lo_v, hi_t, hi_v):
    """`model_slope` of each model, and from ``lo = 0`` (a batch, compiled once)."""
    origin = LinePoint(0.0, v0, s0, None)
    lo, hi = LinePoint(lo_t, lo_v, jnp.nan, None), LinePoint(hi_t, hi_v, jnp.nan, None)
    at_origin = model_slope(origin, LinePoint(0.0, v0, jnp.nan, None), hi)
    return model_slope(origin, lo, hi), at_origin


@pytest.mark.x64(reason="compared with NumPy's roots to 1e-9")
def test_midline_root_is_the_bracketed_root_of_the_model():
    """Against the root found by NumPy's polynomial solver, inside the safeguard."""
    rng = np.random.default_rng(0)
    models, expected = [], []
    for _ in range(200):
        v0, s0 = rng.normal(), -rng.uniform(0.1, 5.0)
        lo_t = rng.uniform(0.0, 2.0) * rng.integers(0, 2)
        w = rng.uniform(0.01, 3.0)
        hi_t = lo_t + w
        # A too-short lo (psi(lo) < 0) and a too-long hi (psi(hi) > 0).
        lo_v = v0 + 0.5 * lo_t * s0 - rng.uniform(0.0, 2.0) * lo_t
        lo_s = rng.normal() * 3 if lo_t > 0 else s0  # lo = 0 is the origin
        hi_v = v0 + 0.5 * hi_t * s0 + rng.uniform(0.01, 2.0)
        models.append((v0, s0, lo_t, lo_v, lo_s, hi_t, hi_v))
        a = (hi_v - lo_v - lo_s * w) / w**2
        psi = np.polynomial.Polynomial([lo_v - v0 - 0.5 * s0 * lo_t, lo_s - 0.5 * s0, a])
        # One root in (0, w]; from lo = 0 the other root, psi(0) = 0, is excluded.
        (h,) = [r.real for r in psi.roots() if r.imag == 0 and 1e-12 * w < r.real <= w]
        expected.append(lo_t + min(max(h, 0.1 * w), 0.9 * w))
    got = _midline_roots(*np.asarray(models).T)  # all 200 in one call
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.x64(reason="compared with NumPy's polynomial fit to 1e-9")
def test_model_slope_is_the_slope_of_the_parabola_through_three_values():
    """Value-only trials: ``q'(lo)`` for the parabola through ``phi(0), phi(lo), phi(hi)``
    (``phi'(0)`` from ``lo = 0``), against `numpy.polyfit`."""
    rng = np.random.default_rng(1)
    models, expected = [], []
    for _ in range(100):
        v0, s0 = rng.normal(), -rng.uniform(0.1, 5.0)
        lo_t = rng.uniform(0.1, 2.0)
        hi_t = lo_t + rng.uniform(0.01, 3.0)
        lo_v, hi_v = rng.normal(), rng.normal()
        models.append((v0, s0, lo_t, lo_v, hi_t, hi_v))
        q = np.polynomial.Polynomial.fit([0.0, lo_t, hi_t], [v0, lo_v, hi_v], 2).convert()
        expected.append(q.deriv()(lo_t))
    models = np.asarray(models)
    slopes, at_origin = _model_slopes(*models.T)  # all 100 in one call
    np.testing.assert_allclose(slopes, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(at_origin, models[:, 1])  # phi'(0), exactly


# ---------------------------------------------------------------------------------------
# Failures: budget, unbounded below, no Goldstein point, non-finite values, bad directions.


def test_exhausted_budget_returns_the_longest_armijo_step():
    """Value-only trials keep one call for the gradient at the result, so a budget of
    ``max_evals`` allows ``max_evals - 2`` trials; none is made at step 0."""
    fun = lambda x: jnp.sum((x - 1.0) ** 2)
    x, d = jnp.zeros(1), jnp.ones(1)
    cases = [(3, 1e-3, 1e-3, 3), (4, 1e-3, 2e-3, 4), (3, 1e3, 0.0, 2), (2, 1e-3, 0.0, 1)]
    for max_evals, step_init, expected, evals in cases:
        counter = EvalCounter(fun)
        res = jaxls.goldstein(counter, x, d, step_init=step_init, max_evals=max_evals)
        jax.effects_barrier()
        assert int(res.status) == S.MAX_EVALS
        assert counter.count == int(res.num_evals) == evals
        assert float(res.step) == np.float32(expected)
        check_safe_failure(fun, x, d, res)


def test_unbounded_below_terminates_with_an_armijo_point():
    fun = lambda x: -jnp.sum(x)
    x, d = jnp.zeros(3), jnp.ones(3)
    solve = jax.jit(lambda s, m: jaxls.goldstein(fun, x, d, step_init=s, step_max=m))
    res = solve(1.0, jnp.inf)
    assert int(res.status) == S.MAX_EVALS
    # 28 trials after the origin, all too short, and the gradient at the last.
    assert float(res.step) == 2.0**27
    res = solve(1.0, 100.0)
    assert int(res.status) == S.STEP_LIMIT
    # x, then 1, 2, ..., 64, 100, then the gradient at 100.
    assert float(res.step) == 100.0 and int(res.num_evals) == 10
    check_safe_failure(fun, x, d, res)
    # float32: growth stops at the largest finite step.
    res = jaxls.goldstein(fun, jnp.zeros(1, jnp.float32), jnp.ones(1, jnp.float32), max_evals=200)
    assert int(res.status) == S.STEP_LIMIT
    assert float(res.step) == float(jnp.finfo(jnp.float32).max)


def test_empty_goldstein_band_stops_at_rounding_level():
    """``phi`` drops below the lower line and jumps above the Armijo line at ``t = 1``: no step
    meets the conditions, and the bracket closes on the jump."""
    fun = lambda x: jnp.sum(jnp.where(x < 1.0, -x, 5.0))
    x, d = jnp.zeros(1), jnp.ones(1)
    res = jaxls.goldstein(fun, x, d, step_init=3.0, max_evals=200)
    assert int(res.status) == S.ROUNDING
    assert 1.0 - 1e-6 < float(res.step) < 1.0  # a few float32 ulps
    check_safe_failure(fun, x, d, res)


def test_nan_beyond_some_step_is_too_long():
    def fun(x):
        return jnp.where(x[0] > 0.3, jnp.nan, jnp.sum((x - 1.0) ** 2))

    x, d = np.zeros(2), np.ones(2)
    solve = jax.jit(lambda s: jaxls.goldstein(fun, x, d, step_init=s, c1=0.25))
    for step_init in (1.0, 1e3, 1e-4):
        res = solve(step_init)
        # (x - 1)^2 on [0, 0.3] is all too short (with c1 = 0.25 the band starts at 0.5): the
        # search must fail, with the longest too-short step found below the NaN barrier.
        assert int(res.status) in (S.MAX_EVALS, S.ROUNDING), res.message
        assert 0.2 < float(res.step) <= np.float32(0.3)
        check_safe_failure(fun, x, d, res)
    # A barrier beyond the band does not matter.
    res = jaxls.goldstein(lambda x: jnp.where(x[0] > 0.9, jnp.inf, jnp.sum((x - 1) ** 2)), x, d)
    check_goldstein(lambda x: jnp.sum((x - 1) ** 2), x, d, res)


def test_decrease_lost_to_rounding_is_rounding_not_success():
    """The issue's case: ``t = 1e-30`` changes ``f`` by ``8e-30``, below the rounding of
    ``f(x) = 2``; the old test passed on equality (``SUCCESS`` at step 1e-30). Now the first
    trial is too long with its decrease lost to rounding: ``ROUNDING`` at once, step 0. The
    decrease asked for is below the rounding allowance, so the slope is consulted (a
    gradient, no call) and refuses the step: ``phi'(t) = phi'(0)``."""
    fun = lambda x: jnp.sum((x - 1.0) ** 2)
    counter = EvalCounter(fun)
    res = jaxls.goldstein(counter, jnp.zeros(2), jnp.full(2, 2.0), step_init=1e-30)
    jax.effects_barrier()
    assert int(res.status) == S.ROUNDING, res.message
    assert float(res.step) == 0.0 and float(res.value) == 2.0
    assert int(res.num_evals) == counter.count == 2 and int(res.num_grads) == 2


@pytest.mark.parametrize("trial_grads", [False, True])
def test_value_only_trials_evaluate_the_gradient_twice(trial_grads):
    """jaxopt's ``test_eval_count`` for its Goldstein search: ``32 x^2`` from ``x = 1`` along
    ``-grad``: two gradients (at ``x`` and at the result), every other call ``fun``'s; with
    ``trial_grads=True`` every call is ``value_and_grad``'s."""
    f = lambda x: 32.0 * jnp.sum(x**2)
    fun, value_and_grad = EvalCounter(f), EvalCounter(jax.value_and_grad(f))
    x = jnp.ones(1)
    res = jaxls.goldstein(
        fun, x, -jax.grad(f)(x), value_and_grad=value_and_grad, trial_grads=trial_grads
    )
    jax.effects_barrier()
    assert int(res.status) == S.SUCCESS and float(res.value) < 32.0
    if trial_grads:
        assert fun.count == 0 and value_and_grad.count == int(res.num_grads) == int(res.num_evals)
    else:
        assert value_and_grad.count == int(res.num_grads) == 2
        assert fun.count == int(res.num_evals) - 2 > 2


@pytest.mark.x64(reason="conditions checked in float64")
@pytest.mark.parametrize("name", ["rosenbrock", "steep", "log_cosh"])
def test_trial_gradients_give_the_goldstein_conditions_too(name):
    """With ``trial_grads=True`` the model uses ``phi'(lo)`` instead of ``phi(0)``: other
    trial steps once a bracket is found, the same conditions at the result."""
    fun, x = PROBLEMS[name]
    x = np.asarray(x, np.float64)
    solve = jax.jit(lambda x, d, s: jaxls.goldstein(fun, x, d, step_init=s, trial_grads=True))
    for dname in ("-g", "-10g", "tiny"):
        d = directions(fun, x)[dname]
        for step_init in (1e-3, 1.0):
            res = solve(x, d, step_init)
            check_goldstein(fun, x, d, res)
            assert int(res.num_grads) == int(res.num_evals)


# ---------------------------------------------------------------------------------------
# Configuration.


# ---------------------------------------------------------------------------------------
# Evaluations, transformations, dtypes.


# ---------------------------------------------------------------------------------------
# Hypothesis: smooth problems on pytrees, descent directions, conditions in NumPy.


@jax.jit
def _solve_tree(p, x, d, step_init):
    return jaxls.goldstein(lambda y: tree_objective(jnp, p, y), x, d, step_init=step_init)


@pytest.mark.x64(reason="conditions checked in float64 NumPy to 1e-12")
@given(
    p=tree_params,
    x=tree_points,
    scale=arrays(0.05, 20.0, (8,)),
    log_step=st.floats(-4.0, 3.0),
)
def test_hypothesis_pytree_problems(p, x, scale, log_step):
    """A diagonally scaled steepest-descent direction: always a descent direction."""
    g = tree_grad(p, x)
    leaves, tree = jax.tree.flatten(g)
    sizes = np.cumsum([0] + [np.size(leaf) for leaf in leaves])
    d = jax.tree.unflatten(
        tree,
        [
            -np.reshape(scale[sizes[i] : sizes[i + 1]], np.shape(leaf)) * leaf
            for i, leaf in enumerate(leaves)
        ],
    )
    s0 = tree_dot(g, d)
    assume(s0 < -1e-8)
    res = _solve_tree(p, x, d, 10.0**log_step)
    assert int(res.status) == S.SUCCESS, res.message
    t = float(res.step)
    moved = jax.tree.map(lambda a, b: a + t * b, x, d)
    v0, v = tree_objective(np, p, x), tree_objective(np, p, moved)
    tol = 1e-12 * (abs(v0) + abs(v) + abs(t * s0))
    assert v0 + (1 - C1) * t * s0 - tol <= v <= v0 + C1 * t * s0 + tol
    np.testing.assert_allclose(float(res.value), v, rtol=1e-12)
    np.testing.assert_allclose(float(res.slope), tree_dot(tree_grad(p, moved), d), rtol=1e-8)
