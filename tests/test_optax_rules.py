"""The optax step-size rules `stochastic_armijo` (SLS) and `nonmonotone_armijo` (Zhang-Hager).

Float32 (JAX's default), float64 where a test follows a NumPy reference step by step.
Oracles: each rule's condition recomputed in NumPy from the returned step (Armijo on the
minibatch; Armijo against ``C_k``; in float64, with a float32 rounding allowance), and a
reference (a NumPy re-implementation of SLS
followed step by step; ``C_k`` and ``Q_k`` recomputed in NumPy from the values seen;
``eta = 0`` against `scale_by_line_search(jaxls.backtracking)`; scipy's optimum of a
logistic regression). Each rule's restart after failures and its configuration errors are
here; the contract they share with every rule of jaxls.optax (fallback, NaN, failed
searches, dtypes, tracing, routing, vmap, stop_gradient) is in tests/test_optax_contract.py.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

import jaxls
from tests.helpers import EvalCounter, count_primitive, while_bodies

S = jaxls.Status
RULES = {
    "stochastic_armijo": jaxls.optax.stochastic_armijo,
    "nonmonotone_armijo": jaxls.optax.nonmonotone_armijo,
}
rules = pytest.mark.parametrize("name", sorted(RULES))


def quadratic(w, batch):
    """``0.5 a |w - b|^2`` with ``batch = (a, b)``."""
    a, b = batch
    return 0.5 * a * jnp.sum((w - b) ** 2)


def one_update(rule, params, value_fn, updates=None, state=None, **extra_args):
    """One update from ``params`` (from a fresh state unless given): ``(updates, state,
    value, grad)``; ``updates`` defaults to ``-grad``."""
    kwargs = {k: v for k, v in extra_args.items() if k == "batch"}
    value, grad = jax.value_and_grad(value_fn)(params, **kwargs)
    if updates is None:
        updates = jax.tree.map(jnp.negative, grad)
    state = rule.init(params) if state is None else state
    out, state = rule.update(
        updates, state, params, value=value, grad=grad, value_fn=value_fn, **extra_args
    )
    return out, state, value, grad


# `one_update` as one program per rule and objective, for tests that need not run it eagerly
# (eagerly, every primitive outside the search's loop is a dispatch and a compilation).
jitted_update = jax.jit(one_update, static_argnums=(0, 2))


def slack(*values) -> float:
    """What float32 rounding of the values compared can account for."""
    return 8 * float(np.finfo(np.float32).eps) * max(1.0, *map(abs, map(float, values)))


# ---------------------------------------------------------------- SLS against NumPy


def logistic_data(n=512, features=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features))
    w_true = rng.standard_normal(features)
    y = (X @ w_true + 0.5 * rng.standard_normal(n) > 0).astype(np.float64)
    return X, y


LAMBDA = 1e-2


def logistic_loss(w, batch):
    X, y = batch
    z = X @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.5 * LAMBDA * jnp.sum(w**2)


def logistic_numpy(w, X, y):
    z = X @ w
    value = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * LAMBDA * w @ w
    grad = X.T @ (1.0 / (1.0 + np.exp(-z)) - y) / len(y) + LAMBDA * w
    return value, grad


def sls_numpy(w, batches, *, step_init, step_max, c1, shrink, factor, max_evals):
    """Vaswani et al.'s Algorithms 1-2 in NumPy: the accepted steps and the iterates."""
    start = min(step_init, step_max)
    steps, iterates = [], []
    for X, y in batches:
        value, grad = logistic_numpy(w, X, y)
        t = start
        for _ in range(max_evals):
            if logistic_numpy(w - t * grad, X, y)[0] <= value - c1 * t * (grad @ grad):
                break
            t *= shrink
        else:
            raise AssertionError("the reference never fails on this problem")
        w = w - t * grad
        start = min(t * factor, step_max)
        steps.append(t)
        iterates.append(w)
    return np.array(steps), np.array(iterates)


def minibatches(X, y, batch_size, epochs, seed=1):
    """Each epoch a fresh permutation, cut into minibatches: arrays of shape ``(steps, b, .)``."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(y)) for _ in range(epochs)])
    order = order.reshape(-1, batch_size)
    return X[order], y[order]


def sls_train(rule, w, Xb, yb):
    """SGD + ``rule`` over the minibatches, one jitted `lax.scan`: ``(w, steps, iterates)``."""
    opt = optax.chain(optax.sgd(1.0), rule)

    def body(carry, batch):
        w, state = carry
        value, grad = jax.value_and_grad(logistic_loss)(w, batch)
        updates, state = opt.update(
            grad, state, w, value=value, grad=grad, value_fn=logistic_loss, batch=batch
        )
        w = optax.apply_updates(w, updates)
        return (w, state), (state[1].info.step, w)

    (w, _), (steps, iterates) = jax.jit(lambda w, b: jax.lax.scan(body, (w, opt.init(w)), b))(
        w, (Xb, yb)
    )
    return w, np.asarray(steps), np.asarray(iterates)


@pytest.mark.x64(
    reason="followed step by step against a NumPy float64 reference: accepting "
    "or rejecting a trial near the Armijo boundary must not depend on rounding"
)
def test_sls_follows_the_numpy_reference_step_by_step():
    X, y = logistic_data(n=128, features=4)
    Xb, yb = minibatches(X, y, batch_size=16, epochs=3)
    config = {"step_init": 4.0, "step_max": 10.0, "c1": 0.1, "shrink": 0.9, "max_evals": 100}
    rule = jaxls.optax.stochastic_armijo(**config, grow=2.0, batch_size=16, num_examples=128)
    w0 = np.zeros(4)
    _, steps, iterates = sls_train(rule, jnp.asarray(w0), jnp.asarray(Xb), jnp.asarray(yb))
    ref_steps, ref_iterates = sls_numpy(
        w0, zip(Xb, yb, strict=True), **config, factor=2.0 ** (16 / 128)
    )
    np.testing.assert_allclose(steps, ref_steps, rtol=1e-12)
    np.testing.assert_allclose(iterates, ref_iterates, rtol=1e-10, atol=1e-12)
    # The reset rule was exercised: steps grew between searches and shrank within one.
    assert np.any(np.diff(steps) > 0) and np.any(np.diff(steps) < 0)


def test_sls_step_satisfies_armijo_on_the_minibatch_and_is_the_first_that_does():
    X, y = logistic_data(n=64, features=3)
    batch = (jnp.asarray(X[:8]), jnp.asarray(y[:8]))
    w = jnp.asarray([2.0, -1.0, 0.5])
    rule = jaxls.optax.stochastic_armijo(step_init=10.0, c1=0.1, shrink=0.9)
    updates, state, value, grad = jitted_update(rule, w, logistic_loss, batch=batch)
    t = float(state.info.step)
    assert state.info.status == S.SUCCESS and 0 < t <= 10.0
    Xn, yn, gn = (
        np.asarray(batch[0], np.float64),
        np.asarray(batch[1], np.float64),
        np.asarray(grad, np.float64),
    )
    margin = lambda s: (  # Armijo holds where this is <= 0
        logistic_numpy(np.asarray(w, np.float64) - s * gn, Xn, yn)[0]
        - (float(value) - 0.1 * s * (gn @ gn))
    )
    assert margin(t) <= slack(value)
    assert t == 10.0 or margin(t / 0.9) > -slack(value)  # the trial before it failed
    np.testing.assert_allclose(np.asarray(updates), -t * np.asarray(grad), rtol=1e-7)
    # One value evaluation per trial: 10 * 0.9^(k-1) = t.
    assert int(state.info.num_evals) == round(np.log(t / 10.0) / np.log(0.9)) + 1


@given(
    a=st.floats(0.01, 100.0),
    w0=st.floats(-10.0, 10.0).filter(lambda v: abs(v) > 1e-3),
    step_init=st.floats(1e-3, 1e2),  # t a <= 1.8: at most 83 trials of the 100 allowed
)
def test_sls_armijo_property(a, w0, step_init):
    a, w0, step_init = (float(np.float32(v)) for v in (a, w0, step_init))  # the data, exactly
    t, status = _sls_step(jnp.float32(a), jnp.float32(w0), jnp.float32(step_init))
    t = float(t)
    value = lambda s: 0.5 * a * (w0 - s * a * w0) ** 2
    margin = lambda s: value(s) - (value(0.0) - 0.1 * s * (a * w0) ** 2)  # Armijo: <= 0
    assert status == S.SUCCESS
    assert margin(t) <= slack(value(0.0))
    assert t == pytest.approx(step_init, rel=1e-6) or margin(t / 0.9) > -slack(value(0.0))


@jax.jit
def _sls_step(a, w0, step_init):
    rule = jaxls.optax.stochastic_armijo(step_max=None)
    f = lambda w, batch: quadratic(w, batch)
    state = rule.init(w0)._replace(start=step_init)
    _, state, _, _ = one_update(rule, w0, f, state=state, batch=(a, 0.0))
    return state.info.step, state.info.status


def test_sls_trials_are_forward_passes_only_one_per_iteration():
    @jax.custom_jvp
    def value_fn(w):
        return jnp.sum(jax.lax.cbrt(w) ** 2)  # cbrt: a marker primitive

    @value_fn.defjvp
    def _(primals, tangents):
        raise AssertionError("a trial differentiated value_fn")

    w = jnp.array([1.0, 2.0])
    grad = jax.grad(lambda w: jnp.sum(jnp.cbrt(w) ** 2))(w)
    value = value_fn(w)
    rule = jaxls.optax.stochastic_armijo(step_init=10.0)  # too long: several trials
    update = lambda w: rule.update(
        -grad, rule.init(w), w, value=value, grad=grad, value_fn=value_fn
    )
    jaxpr = jax.make_jaxpr(update)(w)
    (body,) = while_bodies(jaxpr)
    assert count_primitive(body, "cbrt") == 1
    assert count_primitive(body, "cond") == 0
    assert count_primitive(jaxpr, "cbrt") == 1  # nothing outside the loop evaluates

    counted = EvalCounter(value_fn)  # counts the evaluations actually executed
    _, state = jax.jit(
        lambda w: rule.update(-grad, rule.init(w), w, value=value, grad=grad, value_fn=counted)
    )(w)
    assert counted.count == int(state.info.num_evals) > 1


def test_sls_reset_rule_caps_at_step_max_and_survives_a_zero_gradient():
    rule = jaxls.optax.stochastic_armijo(step_init=1.0, step_max=3.0, grow=2.0)
    w = jnp.array([1.0])
    f = lambda w: 0.5 * jnp.sum(w**2)  # Armijo with c1 = 0.1 holds for t <= 1.8
    _, state, _, _ = jitted_update(rule, w, f)
    assert float(state.info.step) == 1.0 and float(state.start) == 2.0  # 2 * 1
    _, state, _, _ = jitted_update(rule, w, f, state=state)
    assert 1.6 < float(state.info.step) < 1.81  # 2 * 0.9^k
    assert float(state.start) == 3.0  # min(2 * step, step_max)
    # A zero minibatch gradient: zero update, the start is kept, no failure.
    out, state2, _, _ = jitted_update(rule, jnp.zeros(1), f, state=state)
    assert float(out[0]) == 0.0 and float(state2.start) == 3.0
    assert bool(state2.info.fallback) and state2.info.status == S.NOT_DESCENT


# ---------------------------------------------------------------- Zhang-Hager against NumPy


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def test_nonmonotone_reference_sequence_and_condition_in_numpy():
    eta, c1 = 0.85, 1e-4
    opt = optax.chain(optax.sgd(1.0), jaxls.optax.nonmonotone_armijo(eta=eta, c1=c1, grow=2.0))
    value_and_grad = optax.value_and_grad_from_state(rosenbrock)

    @jax.jit
    def step(x, state):
        value, grad = value_and_grad(x, state=state)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=rosenbrock)
        return optax.apply_updates(x, updates), state, value, grad

    x, state = jnp.array([-1.2, 1.0]), opt.init(jnp.array([-1.2, 1.0]))
    values, C, Q = [], [], []
    q, c = 1.0, None
    for _ in range(60):
        x_old, start = np.asarray(x), float(state[1].start)
        x, state, value, grad = step(x, state)
        ls = state[1]
        value, g, t = float(value), np.asarray(grad), float(ls.info.step)
        c = value if c is None else c
        # Oracle 1: the accepted point passes Armijo against C_k, recomputed in NumPy
        # (float64, from the float32 iterates), and the trial before it (twice as long)
        # did not.
        assert ls.info.status == S.SUCCESS
        x64, x_old64, g64 = (np.asarray(v, np.float64) for v in (x, x_old, g))
        new_value = float(rosenbrock(x64))
        assert new_value == pytest.approx(float(ls.value), rel=1e-5, abs=1e-6)
        assert new_value <= c - c1 * t * (g64 @ g64) + slack(c)
        longer = 2 * t  # shrink = 0.5
        assert t == start or rosenbrock(x_old64 - longer * g64) > c - c1 * longer * (
            g64 @ g64
        ) - slack(c)
        # Oracle 2: Zhang & Hager's recurrences, by hand.
        q_next = eta * q + 1
        c = (eta * q * c + new_value) / q_next
        q = q_next
        values.append(new_value)
        C.append(c)
        Q.append(q)
        np.testing.assert_allclose(float(ls.reference), c, rtol=1e-5)
        np.testing.assert_allclose(float(ls.weight), q, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(x), x_old - t * g, rtol=1e-6, atol=1e-7)
        c = float(ls.reference)  # follow the rule's own C: float32 rounding does not add up
    # The rule was non-monotone: some accepted steps went uphill, never above C.
    assert np.any(np.diff(values) > 0)
    assert np.all(np.array(values) <= np.array(C) * (1 + 1e-6) + 1e-6)


def run_steps(opt, fun, x, steps):
    value_and_grad = optax.value_and_grad_from_state(fun)

    def body(carry, _):
        x, state = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=fun)
        return (optax.apply_updates(x, updates), state), x

    (x, _), xs = jax.lax.scan(body, (x, opt.init(x)), length=steps)
    return x, xs


@pytest.mark.parametrize("direction", ["sgd", "lbfgs"])
def test_nonmonotone_with_eta_zero_is_monotone_backtracking_exactly(direction):
    config = {"c1": 1e-4, "shrink": 0.5, "max_evals": 30}
    restart = {"grow": 2.0} if direction == "sgd" else {}
    make = {
        "sgd": lambda ls: optax.chain(optax.sgd(1.0), ls),
        "lbfgs": lambda ls: optax.lbfgs(linesearch=ls),
    }[direction]
    zh = make(jaxls.optax.nonmonotone_armijo(eta=0.0, **config, **restart))
    monotone = make(jaxls.optax.scale_by_line_search(jaxls.backtracking, **restart, options=config))
    x0 = jnp.array([-1.2, 1.0])
    _, xs_zh = jax.jit(lambda x: run_steps(zh, rosenbrock, x, 40))(x0)
    _, xs_mono = jax.jit(lambda x: run_steps(monotone, rosenbrock, x, 40))(x0)
    np.testing.assert_array_equal(np.asarray(xs_zh), np.asarray(xs_mono))
    # Each one program (eagerly, every primitive outside the loop is a dispatch).
    res_zh = jax.jit(lambda x: jaxls.optax.minimize(rosenbrock, x, zh, grad_tol=1e-8))(x0)
    res_mono = jax.jit(lambda x: jaxls.optax.minimize(rosenbrock, x, monotone, grad_tol=1e-8))(x0)
    chex.assert_trees_all_equal(
        (res_zh.params, res_zh.value, res_zh.num_iterations, res_zh.num_evals),
        (res_mono.params, res_mono.value, res_mono.num_iterations, res_mono.num_evals),
    )


@pytest.mark.parametrize("interpolate", [False, True])
def test_nonmonotone_lbfgs_solves_rosenbrock_with_minimize(interpolate):
    opt = optax.lbfgs(linesearch=jaxls.optax.nonmonotone_armijo(interpolate=interpolate))
    res = jax.jit(lambda x: jaxls.optax.minimize(rosenbrock, x, opt, grad_tol=1e-6))(
        jnp.array([-1.2, 1.0])
    )
    assert res.converged and float(res.grad_norm) <= 1e-6
    np.testing.assert_allclose(np.asarray(res.params), [1.0, 1.0], atol=1e-4)
    # minimize reused the state's value and gradient: every evaluation is a search's.
    assert int(res.num_evals) == 1 + int(res.state[-1].info.total_evals)


def test_nonmonotone_first_update_starts_the_average_from_value():
    rule = jaxls.optax.nonmonotone_armijo(eta=0.5)
    x = jnp.array([3.0])
    f = lambda x: jnp.sum(x**2)
    state = rule.init(x)
    assert np.isinf(float(state.value)) and np.isinf(float(state.reference))
    out, state, _, _ = jitted_update(rule, x, f)
    # x_1 = 3 - t 6 with t = 1/2 (t = 1 goes to -3: no decrease): x_1 = 0, f(x_1) = 0.
    assert float(state.info.step) == 0.5 and float(state.value) == float(f(x + out)) == 0.0
    # C_1 = (eta Q_0 C_0 + f(x_1)) / (eta Q_0 + 1) with Q_0 = 1, C_0 = f(x_0) = 9.
    assert float(state.weight) == 1.5
    assert float(state.reference) == (0.5 * 9.0 + 0.0) / 1.5


# ---------------------------------------------------------------- training examples


def test_sls_trains_logistic_regression_close_to_the_optimum():
    X, y = logistic_data()
    optimum = scipy.optimize.minimize(
        lambda w: logistic_numpy(w, X, y), np.zeros(10), jac=True, method="L-BFGS-B",
        options={"gtol": 1e-10, "maxiter": 1000},
    )  # fmt: skip
    Xb, yb = minibatches(X, y, batch_size=64, epochs=30)
    rule = jaxls.optax.stochastic_armijo(batch_size=64, num_examples=512)  # the paper's
    _, steps, iterates = sls_train(rule, jnp.zeros(10), Xb, yb)
    # Regularised logistic regression on noisy labels does not interpolate, so SLS's
    # iterates wander near the optimum (the last is ~13% above it here); the mean iterate
    # of the last epoch is within 1%.
    loss = float(logistic_loss(jnp.asarray(iterates[-8:].mean(axis=0)), (X, y)))
    assert optimum.fun <= loss <= 1.02 * optimum.fun
    assert np.all(steps > 0)


# ---------------------------------------------------------------- restarts and configuration


@rules
def test_exhausted_budget_gives_step_zero_then_starts_smaller(name):
    extra = {"step_max": None} if name == "stochastic_armijo" else {}
    # One trial per search (Zhang-Hager's accepted step gets its gradient from the trial's
    # linearisation, no call).
    rule = RULES[name](step_init=1e3, max_evals=1, failure_shrink=0.1, **extra)
    f = lambda w: jnp.sum(w**2)
    x, state = jnp.array([1.0, -1.0]), None
    starts, steps = [], []
    for _ in range(6):
        state = rule.init(x) if state is None else state
        starts.append(float(state.start))
        out, state, _, _ = jitted_update(rule, x, f, state=state)
        steps.append(float(state.info.step))
        if steps[-1] == 0:
            assert state.info.status == S.MAX_EVALS
            assert np.all(np.asarray(out) == 0.0)  # never uphill: stays put
        x = x + out
    # t = 1 reflects x to -x (no decrease): the first success is t = 0.1; then SLS grows
    # it (by grow = 2 per search), Zhang-Hager starts again from step_init (grow=None).
    after = 0.2 if name == "stochastic_armijo" else 1e3
    np.testing.assert_allclose(starts, [1e3, 1e2, 1e1, 1.0, 0.1, after], rtol=1e-7)
    assert steps[:4] == [0.0] * 4 and steps[4] == pytest.approx(0.1, rel=1e-7)
    # A trial per search.
    assert int(state.info.total_evals) == 6
    assert float(f(x)) < float(f(jnp.array([1.0, -1.0])))


CONFIG_ERRORS = [
    ("stochastic_armijo", {"c1": 1.0}, "c1"),
    ("stochastic_armijo", {"shrink": 0.0}, "shrink"),
    ("stochastic_armijo", {"grow": 0.5}, "grow"),
    ("stochastic_armijo", {"step_init": -1.0}, "step_init"),
    ("stochastic_armijo", {"step_max": 0.0}, "step_max"),
    ("stochastic_armijo", {"failure_shrink": 1.0}, "failure_shrink"),
    ("stochastic_armijo", {"max_evals": 0}, "max_evals"),
    ("stochastic_armijo", {"batch_size": 64}, "num_examples"),
    ("stochastic_armijo", {"batch_size": 64, "num_examples": 32}, "num_examples"),
    ("nonmonotone_armijo", {"eta": 1.5}, "eta"),
    ("nonmonotone_armijo", {"eta": -0.1}, "eta"),
    ("nonmonotone_armijo", {"c1": 0.0}, "c1"),
    ("nonmonotone_armijo", {"shrink": 1.0}, "shrink"),
    ("nonmonotone_armijo", {"grow": 0.9}, "grow"),
    ("nonmonotone_armijo", {"step_init": float("nan")}, "step_init"),
    ("nonmonotone_armijo", {"step_max": -2.0}, "step_max"),
    ("nonmonotone_armijo", {"failure_shrink": 0.0}, "failure_shrink"),
    ("nonmonotone_armijo", {"max_evals": 0}, "max_evals"),
]


@pytest.mark.parametrize(("name", "config", "argument"), CONFIG_ERRORS)
def test_bad_configuration_raises_naming_the_call(name, config, argument):
    with pytest.raises(ValueError, match=rf"jaxls\.optax\.{name}\(.*{argument}"):
        RULES[name](**config)


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("stochastic_armijo", {"max_evals": 10.0}),
        ("stochastic_armijo", {"batch_size": 1.5, "num_examples": 10}),
        ("nonmonotone_armijo", {"max_evals": 2.5}),
        ("nonmonotone_armijo", {"interpolate": 1}),
    ],
)
def test_non_integer_configuration_raises_type_error(name, config):
    with pytest.raises(TypeError, match=rf"jaxls\.optax\.{name}\("):
        RULES[name](**config)
