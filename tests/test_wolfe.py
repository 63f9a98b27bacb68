"""Wolfe search: the conditions recomputed in NumPy, MINPACK-2 dcsrch and scipy as references.

Oracles: (1) the strong or weak Wolfe conditions, recomputed from ``jax.value_and_grad`` at
``x + step d`` for every converged result; (2) Moré & Thuente's test functions (ACM TOMS 20,
1994, sec. 5, Tables 1-6): the search follows scipy's port of ``dcsrch`` trial by trial, so
it needs exactly its evaluations (which are the paper's) and ends at the same step, and it
needs fewer than scipy's ``line_search`` (Nocedal-Wright zoom), which fails on 5 of the 24.
"""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxls
from tests.helpers import EvalCounter, count_primitive, tree_equal_bitwise, while_bodies

S = jaxls.Status


# --- Moré & Thuente (1994), section 5: phi(t) on t >= 0, phi'(0) < 0. -----------------------


def mt_rational(t, p):  # (5.1), beta = p[0]
    return -t / (t**2 + p[0])


def mt_quintic(t, p):  # (5.2), beta = p[0]
    return (t + p[0]) ** 5 - 2 * (t + p[0]) ** 4


def mt_wiggly(t, p):  # (5.3), beta = p[0], l = p[1]
    beta, ell = p[0], p[1]
    smooth = jnp.where(
        t <= 1 - beta,
        1 - t,
        jnp.where(t >= 1 + beta, t - 1, (t - 1) ** 2 / (2 * beta) + beta / 2),
    )
    return smooth + 2 * (1 - beta) / (ell * jnp.pi) * jnp.sin(ell * jnp.pi * t / 2)


def mt_yanai(t, p):  # (5.4), beta1 = p[0], beta2 = p[1]
    gamma = lambda b: jnp.sqrt(1 + b**2) - b
    return gamma(p[0]) * jnp.sqrt((1 - t) ** 2 + p[1] ** 2) + gamma(p[1]) * jnp.sqrt(
        t**2 + p[0] ** 2
    )


# (name, family, parameters, c1, c2, evaluations in the paper's Table for the starting steps)
MORE_THUENTE = [
    ("table1", mt_rational, (2.0, 0.0), 1e-3, 0.1, (6, 3, 1, 4)),
    ("table2", mt_quintic, (0.004, 0.0), 0.1, 0.1, (12, 8, 8, 11)),
    ("table3", mt_wiggly, (0.01, 39.0), 0.1, 0.1, (12, 12, 10, 13)),
    ("table4", mt_yanai, (1e-3, 1e-3), 1e-3, 1e-3, (4, 1, 3, 4)),
    ("table5", mt_yanai, (1e-2, 1e-3), 1e-3, 1e-3, (6, 3, 7, 8)),
    ("table6", mt_yanai, (1e-3, 1e-2), 1e-3, 1e-3, (13, 11, 8, 11)),
]
STARTS = (1e-3, 1e-1, 1e1, 1e3)
CASE_IDS = [case[0] for case in MORE_THUENTE]


@functools.cache
def mt_solver(family, c1, c2, strong):
    """One compilation per family and constants: parameters and starting steps are traced,
    the four starting steps searched at once under `vmap`. ``value, grad`` are given, so
    ``num_evals`` counts trial steps only, as the paper and dcsrch do."""

    def solve(params, t0):
        fun = lambda t: family(t, params)
        x, d = jnp.zeros(()), jnp.ones(())
        v, g = jax.value_and_grad(fun)(x)
        return jaxls.wolfe(
            fun, x, d, value=v, grad=g, step_init=t0, c1=c1, c2=c2, strong=strong, max_evals=60
        )

    return jax.jit(jax.vmap(solve, in_axes=(None, 0)))


def line(fun, x, d):
    """``t -> (phi(t), phi'(t))`` as Python floats: an independent evaluation at ``x + t d``
    by `jax.value_and_grad`, the slope summed in NumPy."""
    value_and_grad = jax.jit(jax.value_and_grad(fun))
    d_host = np.asarray(d, np.float64)

    def phi(t):
        value, grad = value_and_grad(x + jnp.asarray(t, jnp.result_type(x)) * d)
        return float(value), float(np.sum(np.asarray(grad, np.float64) * d_host))

    return phi


@functools.cache
def scalar(family, params):
    """``phi`` of a Moré-Thuente function, for the NumPy oracles and scipy."""
    return line(lambda t: family(t, jnp.asarray(params)), jnp.zeros(()), jnp.ones(()))


def wolfe_holds(phi, t, c1, c2, strong):
    """The conditions recomputed in NumPy from an independent evaluation at ``t``."""
    v0, s0 = phi(0.0)
    v, s = phi(t)
    armijo = v <= v0 + c1 * t * s0
    return armijo and (abs(s) <= c2 * abs(s0) if strong else s >= c2 * s0)


try:  # private: scipy >= 1.11 ports MINPACK-2's dcsrch to Python
    from scipy.optimize._dcsrch import DCSRCH
except ImportError:  # pragma: no cover
    DCSRCH = None


def dcsrch(phi, c1, c2, t0):
    """scipy's port of MINPACK-2 dcsrch: (step, trial evaluations)."""
    if DCSRCH is None:  # pragma: no cover
        pytest.skip("scipy.optimize._dcsrch is not importable")
    count = [0]

    def value(t):
        count[0] += 1
        return phi(t)[0]

    v0, s0 = phi(0.0)
    search = DCSRCH(value, lambda t: phi(t)[1], c1, c2, 1e-14, 0.0, 1e10)
    step, *_ = search(t0, phi0=v0, derphi0=s0, maxiter=100)
    return step, count[0]


def mt_results(case, strong=True):
    _, family, params, c1, c2, _ = case
    res = mt_solver(family, c1, c2, strong)(jnp.asarray(params), jnp.asarray(STARTS))
    return res, scalar(family, params)


@pytest.mark.parametrize("case", MORE_THUENTE, ids=CASE_IDS)
@pytest.mark.x64(reason="dcsrch reference in float64")
def test_more_thuente_strong_wolfe_like_dcsrch(case):
    name, _, _, c1, c2, table = case
    res, phi = mt_results(case)
    for i, t0 in enumerate(STARTS):
        step, evals = float(res.step[i]), int(res.num_evals[i])
        assert int(res.status[i]) == S.SUCCESS, (name, t0)
        assert wolfe_holds(phi, step, c1, c2, strong=True), (name, t0)
        assert evals == table[i], (name, t0)
    for i, t0 in enumerate(STARTS):
        ref_step, ref_evals = dcsrch(phi, c1, c2, t0)
        assert int(res.num_evals[i]) == ref_evals, (name, t0)
        np.testing.assert_allclose(float(res.step[i]), ref_step, rtol=1e-9)


def scipy_zoom(phi, c1, c2, t0):
    """scipy's `line_search` (Nocedal-Wright zoom): (step or None, trial evaluations).

    It starts at 1 and wants ``c1 < c2``: the direction is scaled by ``t0`` to start at
    ``t0``, and ``c2 = c1`` is nudged up by one ulp."""
    from scipy.optimize import line_search

    count = [0]

    def value(z):
        count[0] += 1
        return phi(float(z[0]))[0]

    v0, s0 = phi(0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LineSearchWarning when it fails
        step = line_search(
            value,
            lambda z: np.array([phi(float(z[0]))[1]]),
            np.zeros(1),
            np.array([t0]),
            gfk=np.array([s0]),
            old_fval=v0,
            c1=c1,
            c2=c2 if c2 > c1 else float(np.nextafter(c2, 1.0)),
            maxiter=100,
        )[0]
    return (None if step is None else step * t0), count[0]


def test_more_thuente_totals_against_peers():
    """All 24 cases: 179 evaluations, as dcsrch and the paper; scipy's zoom makes 234 value
    evaluations (and separate gradient ones) and misses the conditions 5 times (scipy 1.17;
    the bounds below are loose on purpose)."""
    ours = ref_total = zoom_total = zoom_failures = 0
    for case in MORE_THUENTE:
        _, _, _, c1, c2, _ = case
        res, phi = mt_results(case)
        ours += int(jnp.sum(res.num_evals))
        for t0 in STARTS:
            ref_total += dcsrch(phi, c1, c2, t0)[1]
            step, evals = scipy_zoom(phi, c1, c2, t0)
            zoom_total += evals
            zoom_failures += step is None or not wolfe_holds(phi, step, c1, c2, strong=True)
    assert ours == ref_total == 179
    assert zoom_failures >= 3 and ours < 0.9 * zoom_total


@pytest.mark.parametrize("case", MORE_THUENTE, ids=CASE_IDS)
def test_more_thuente_weak_wolfe(case):
    name, _, _, c1, c2, table = case
    res, phi = mt_results(case, strong=False)
    for i, t0 in enumerate(STARTS):
        assert int(res.status[i]) == S.SUCCESS, (name, t0)
        assert wolfe_holds(phi, float(res.step[i]), c1, c2, strong=False), (name, t0)
        assert int(res.num_evals[i]) <= table[i]


# --- Random smooth problems on pytrees. ---------------------------------------------------


def smooth_objective(params):
    """A convex quadratic plus softplus and exponential terms, on ``{"u": (3,), "v": (2,)}``."""
    m, b, w, scale = params["m"], params["b"], params["w"], params["scale"]
    a = m @ m.T + 0.1 * jnp.eye(5)

    def fun(x):
        z = jnp.concatenate([x["u"], x["v"]])
        return (
            0.5 * z @ a @ z + b @ z + jnp.sum(jax.nn.softplus(w * z)) + scale * jnp.exp(z[0] - z[4])
        )

    return fun


def as_tree(z):
    return {"u": z[:3], "v": z[3:]}


def flat(tree):
    return np.concatenate([np.asarray(tree["u"]), np.asarray(tree["v"])])


def check_contract(fun, x, d, res, c1, c2, strong):
    """What every result promises, recomputed in NumPy from `jax.value_and_grad` at
    ``x + step d``: its value, gradient and slope are that point's; on success the
    conditions hold, otherwise it is step 0 or a sufficient decrease."""
    value0, grad0 = jax.value_and_grad(fun)(as_tree(x))
    slope0 = float(flat(grad0) @ d)
    t = float(res.step)
    value, grad = jax.value_and_grad(fun)(as_tree(x + t * d))
    value, grad = float(value), flat(grad)
    slope = float(grad @ d)
    assert t >= 0 and math.isfinite(value)
    np.testing.assert_allclose(float(res.value), value, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(flat(res.grad), grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(res.slope), slope, rtol=1e-9, atol=1e-12)
    armijo = value <= float(value0) + c1 * t * slope0 + 1e-12 * (1 + abs(float(value0)))
    if int(res.status) == S.SUCCESS:
        assert t > 0 and armijo
        if strong:
            assert abs(slope) <= c2 * abs(slope0) * (1 + 1e-9)
        else:
            assert slope >= c2 * slope0 * (1 + 1e-9)
    else:
        assert int(res.status) in (S.MAX_EVALS, S.ROUNDING), res.message
        assert armijo or (t == 0 and float(res.value) == float(value0))


def descent_direction(fun, x, r):
    """``-grad f(x) + r``, or ``-grad f(x)`` where that is not a descent direction."""
    g = jax.grad(fun)(x)
    d = jax.tree.map(lambda gi, ri: -gi + ri, g, as_tree(r))
    leaves = zip(jax.tree.leaves(g), jax.tree.leaves(d), strict=True)
    descent = sum(jnp.vdot(a, b) for a, b in leaves) < 0
    return jax.tree.map(lambda di, gi: jnp.where(descent, di, -gi), d, g)


@functools.cache
def smooth_solver(c1, c2, strong):
    @jax.jit
    def solve(params, x, r, t0):
        fun, x = smooth_objective(params), as_tree(x)
        d = descent_direction(fun, x, r)
        return d, jaxls.wolfe(fun, x, d, step_init=t0, c1=c1, c2=c2, strong=strong)

    return solve


def random_problem(seed, spread):
    rng = np.random.default_rng(seed)
    params = {
        "m": rng.normal(size=(5, 5)) * 10.0 ** rng.uniform(-1, 1),
        "b": rng.normal(size=5),
        "w": rng.normal(size=5) * 3,
        "scale": 10.0 ** rng.uniform(-3, 0),
    }
    return params, rng.normal(size=5) * spread, rng.normal(size=5) * spread


@given(
    seed=st.integers(0, 2**31 - 1),
    log_t0=st.floats(-3.0, 3.0),
    spread=st.floats(0.0, 3.0),
    constants=st.sampled_from([(1e-4, 0.9, True), (1e-4, 0.1, True), (0.3, 0.6, False)]),
)
def test_random_smooth_pytree_problems(seed, log_t0, spread, constants):
    c1, c2, strong = constants
    params, x, r = random_problem(seed, spread)
    d, res = smooth_solver(c1, c2, strong)(params, x, r, 10.0**log_t0)
    assert int(res.status) == S.SUCCESS, res.message
    check_contract(smooth_objective(params), x, flat(d), res, c1, c2, strong)


def nan_beyond(fun, x, radius):
    """``fun``, but NaN farther than ``radius`` from ``x``."""
    centre = flat(x) if isinstance(x, dict) else x
    return lambda z: jnp.where(
        jnp.sum((jnp.concatenate([z["u"], z["v"]]) - centre) ** 2) > radius**2, jnp.nan, fun(z)
    )


@jax.jit
def hard_solver(params, x, r, t0, radius):
    fun = nan_beyond(smooth_objective(params), x, radius)
    tree = as_tree(x)
    d = descent_direction(smooth_objective(params), tree, r)
    return d, jaxls.wolfe(fun, tree, d, step_init=t0, c2=0.1, max_evals=5)


@given(
    seed=st.integers(0, 2**31 - 1),
    log_t0=st.floats(-3.0, 4.0),
    log_radius=st.floats(-4.0, 1.0),
)
def test_failures_keep_the_contract(seed, log_t0, log_radius):
    """A tight budget and NaN beyond a random distance: whatever the status, the result is
    a finite point that is step 0 or a sufficient decrease, and its own value and gradient."""
    params, x, r = random_problem(seed, 1.0)
    d, res = hard_solver(params, x, r, 10.0**log_t0, 10.0**log_radius)
    fun = nan_beyond(smooth_objective(params), x, 10.0**log_radius)
    check_contract(fun, x, flat(d), res, 1e-4, 0.1, True)


# --- Adversarial cases. ----------------------------------------------------------------------


def quadratic(x):
    return jnp.sum((x - 3.0) ** 2)


def armijo_or_origin(fun, x, d, res, c1=1e-4):
    """The failure contract: step 0 with the original value, or a sufficient decrease."""
    v0, g0 = jax.value_and_grad(fun)(x)
    s0 = float(jnp.vdot(g0, d))
    t = float(res.step)
    value = float(fun(x + t * d))
    assert math.isfinite(value) and float(res.value) == pytest.approx(value, rel=1e-14)
    if t == 0:
        assert float(res.value) == float(v0)
    else:
        assert value <= float(v0) + c1 * t * s0


def nonfinite_beyond(bad, limit=2.0):
    """The quadratic up to ``sum(x) = limit``, ``bad`` (NaN or inf) beyond."""
    return lambda x: jnp.where(jnp.sum(x) > limit, bad, quadratic(x))


@jax.jit
def nonfinite_solver(bad, t0, limit=2.0):
    fun = nonfinite_beyond(bad, limit)
    return jaxls.wolfe(fun, jnp.zeros(1), jnp.ones(1), step_init=t0, c2=0.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("t0", [1e3, 10.0, 2.5, 1e-3])
def test_nonfinite_beyond_a_step_is_too_far(bad, t0):
    res = nonfinite_solver(bad, t0)
    assert int(res.status) == S.SUCCESS and np.isfinite(float(res.value))
    phi = line(nonfinite_beyond(bad), jnp.zeros(1), jnp.ones(1))
    assert float(res.step) <= 2.0
    assert wolfe_holds(phi, float(res.step), 1e-4, 0.5, strong=True)


def test_nonfinite_everywhere_returns_origin():
    res = nonfinite_solver(np.nan, 1.0, 0.0)
    assert int(res.status) == S.MAX_EVALS and int(res.num_evals) == 30
    assert float(res.step) == 0 and float(res.value) == 9.0


@pytest.mark.parametrize("max_evals", [2, 5])
def test_budget_runs_out_with_an_armijo_point(max_evals):
    fun = lambda x: mt_wiggly(jnp.sum(x), (0.01, 39.0))
    x, d = jnp.zeros(1), jnp.ones(1)
    res = jaxls.wolfe(fun, x, d, step_init=1e-3, c1=0.1, c2=0.1, max_evals=max_evals)
    assert int(res.status) == S.MAX_EVALS and int(res.num_evals) == max_evals
    armijo_or_origin(fun, x, d, res, c1=0.1)


def test_unbounded_below_terminates():
    fun = lambda x: -jnp.sum(x)
    x, d = jnp.zeros(2), jnp.ones(2)
    solve = jax.jit(lambda step_max: jaxls.wolfe(fun, x, d, step_max=step_max))
    res = solve(np.inf)
    assert int(res.status) == S.MAX_EVALS and int(res.num_evals) == 30
    armijo_or_origin(fun, x, d, res)
    assert float(res.step) > 1e15
    res = solve(100.0)
    assert int(res.status) == S.STEP_LIMIT and float(res.step) == 100.0
    armijo_or_origin(fun, x, d, res)


def test_grow_bounds_the_extrapolation():
    """On a line, dcsrch's extrapolation takes its largest step: t' = t + grow (t - b)."""
    grow, steps = 1.5, [0.0, 1.0]
    for _ in range(4):
        steps.append(steps[-1] + grow * (steps[-1] - steps[-2]))
    res = jaxls.wolfe(lambda x: -jnp.sum(x), jnp.zeros(1), jnp.ones(1), grow=grow, max_evals=6)
    assert int(res.status) == S.MAX_EVALS and float(res.step) == pytest.approx(steps[-1])


def test_kink_without_wolfe_point_stops_at_rounding():
    """Slopes -1 and 3 either side of t = 1: no |phi'| <= c2 |phi'(0)| exists."""
    fun = lambda x: jnp.sum(jnp.maximum(-x, 3 * x - 4))
    x, d = jnp.zeros(1), jnp.ones(1)
    res = jaxls.wolfe(fun, x, d, max_evals=200)
    assert int(res.status) == S.ROUNDING and int(res.num_evals) < 200
    armijo_or_origin(fun, x, d, res)
    assert float(res.value) == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"c1": 0.0}, "c1"),
        ({"c1": 1.0}, "c1"),
        ({"c2": 1.0}, "c2"),
        ({"c1": 0.5, "c2": 0.4}, "c2"),
        ({"grow": 1.0}, "grow"),
        ({"step_init": 0.0}, "step_init"),
        ({"step_max": 0.0}, "step_max"),
        ({"step_max": float("nan")}, "step_max"),
    ],
)
def test_invalid_constants_raise(kwargs, name):
    with pytest.raises(ValueError, match=rf"jaxls\.wolfe\(.*{name}="):
        jaxls.wolfe(quadratic, jnp.zeros(1), jnp.ones(1), **kwargs)


def test_invalid_max_evals_raises():
    with pytest.raises(ValueError, match=r"jaxls\.wolfe\(max_evals=0\)"):
        jaxls.wolfe(quadratic, jnp.zeros(1), jnp.ones(1), max_evals=0)


@jax.jit
def quadratic_solver(t0, step_max, sign=1.0):
    x, d = jnp.zeros(1), sign * jnp.ones(1)
    return jaxls.wolfe(quadratic, x, d, step_init=t0, step_max=step_max)


def test_not_descent_returns_origin():
    res = quadratic_solver(1.0, np.inf, -1.0)
    assert int(res.status) == S.NOT_DESCENT and int(res.num_evals) == 1
    assert float(res.step) == 0 and float(res.value) == 9.0 and float(res.grad[0]) == -6.0


@pytest.mark.parametrize(
    ("t0", "step_max"),
    [(-1.0, 9.0), (0.0, 9.0), (np.nan, 9.0), (np.inf, 9.0), (1.0, 0.0), (1.0, np.nan)],
)
def test_traced_invalid_input(t0, step_max):
    res = quadratic_solver(t0, step_max)
    assert int(res.status) == S.INVALID_INPUT and float(res.step) == 0
    assert float(res.value) == 9.0


def test_step_init_clipped_to_step_max():
    res = quadratic_solver(100.0, 2.0)
    assert int(res.status) == S.SUCCESS and float(res.step) <= 2.0
    assert int(res.num_evals) == 2 and float(res.step) == 2.0  # Wolfe holds at 2 (c2 = 0.9)


def test_jit_equals_eager():
    fun = lambda x: jnp.sum(jnp.cosh(x)) - jnp.sum(x)
    x, d = jnp.array([0.5, -1.0]), jnp.array([1.0, 2.0])
    eager = jaxls.wolfe(fun, x, d, step_init=10.0, c2=0.1)
    jitted = jax.jit(lambda x, d: jaxls.wolfe(fun, x, d, step_init=10.0, c2=0.1))(x, d)
    assert int(eager.status) == S.SUCCESS
    assert tree_equal_bitwise(eager, jitted)


def test_float32_preserves_dtypes():
    fun = lambda x: mt_rational(jnp.sum(x), (2.0, 0.0))
    x, d = jnp.zeros(1, jnp.float32), jnp.ones(1, jnp.float32)
    res = jaxls.wolfe(fun, x, d, step_init=1e-3, c1=1e-3, c2=0.1)
    assert int(res.status) == S.SUCCESS
    for leaf in (res.step, res.value, res.slope, res.grad):
        assert leaf.dtype == jnp.float32
    assert wolfe_holds(scalar(mt_rational, (2.0, 0.0)), float(res.step), 1e-3, 0.1, True)


def test_value_and_grad_given_save_an_evaluation():
    x, d = jnp.zeros(2), jnp.ones(2)
    v, g = jax.value_and_grad(quadratic)(x)
    full = jaxls.wolfe(quadratic, x, d, step_init=0.1)
    given_ = jaxls.wolfe(quadratic, x, d, value=v, grad=g, step_init=0.1)
    assert int(full.num_evals) == int(given_.num_evals) + 1
    assert tree_equal_bitwise(full.step, given_.step)


def test_user_value_and_grad_is_used_and_counted():
    fun = lambda x: mt_quintic(jnp.sum(x), (0.004, 0.0))
    counter = EvalCounter(jax.value_and_grad(fun))
    solve = jax.jit(
        lambda x, d: jaxls.wolfe(None, x, d, value_and_grad=counter, step_init=1e-3, c1=0.1, c2=0.1)
    )
    res = solve(jnp.zeros(1), jnp.ones(1))
    jax.effects_barrier()
    assert int(res.status) == S.SUCCESS
    assert counter.count == int(res.num_evals) == 13  # the origin and Table 2's 12 trials


def mixed_member(center, limit, sign, t0):
    """A quadratic that is NaN beyond ``limit``, searched along ``sign * ones``."""
    fun = lambda x: jnp.where(jnp.sum(x) > limit, jnp.nan, jnp.sum(jnp.cosh(x - center)))
    x = jnp.zeros(2)
    return jaxls.wolfe(fun, x, sign * jnp.ones(2), step_init=t0, c2=0.1, max_evals=8)


MIXED = (
    jnp.array([1.0, 1.0, 3.0, 2.0, 50.0, 1.0]),  # center
    jnp.array([9.0, 0.5, 9.0, -1.0, 1e9, 9.0]),  # NaN beyond
    jnp.array([1.0, 1.0, -1.0, 1.0, 1.0, 1.0]),  # direction sign
    jnp.array([1.0, 4.0, 1.0, 1.0, 1e-3, -1.0]),  # step_init
)


def test_vmap_mixed_batch_members_equal_unbatched():
    batched = jax.jit(jax.vmap(mixed_member))(*MIXED)
    statuses = [int(s) for s in batched.status]
    assert statuses == [
        S.SUCCESS,
        S.MAX_EVALS,
        S.NOT_DESCENT,
        S.NONFINITE,
        S.SUCCESS,
        S.INVALID_INPUT,
    ]
    single = jax.jit(mixed_member)
    for i in range(len(statuses)):
        member = jax.tree.map(lambda a, i=i: a[i], batched)
        assert tree_equal_bitwise(member, single(*(m[i] for m in MIXED))), i


def test_vmapped_jaxpr_one_evaluation_per_iteration_no_cond():
    jaxpr = jax.make_jaxpr(jax.vmap(mixed_member))(*MIXED)
    (body,) = while_bodies(jaxpr)
    assert count_primitive(body, "cosh") == 1  # the trial; the origin is outside the loop
    assert count_primitive(jaxpr, "cosh") == 2
    assert count_primitive(jaxpr, "cond") == 0


def test_epsilon_is_a_rounding_allowance_on_sufficient_decrease():
    """phi(t) = 1 + 1e-13 (t - 1)^2 + 1e-14 sin(1e6 t)^2: the decrease is below rounding
    noise of f near 1, so the exact test can reject steps the allowance accepts.
    (tests/test_training.py shows the stall and its cure in a whole L-BFGS run.)"""
    f = lambda x: jnp.sum(1.0 + 1e-13 * (x - 1.0) ** 2 + 1e-14 * jnp.sin(1e6 * x) ** 2)
    x, d = jnp.zeros(1), jnp.ones(1)
    loose = jaxls.wolfe(f, x, d, epsilon=1e-12)
    assert float(loose.value) <= float(f(x)) + 1e-12 * abs(float(f(x)))
    assert float(loose.step) > 0
    with pytest.raises(ValueError, match=r"jaxls\.wolfe\(epsilon=-1\.0\)"):
        jaxls.wolfe(f, x, d, epsilon=-1.0)
