"""`jaxls.optax.scale_by_line_search` and `jaxls.optax.minimize`: the optax protocol, the
failure policy, argument routing, dtypes, gradients, and evaluation counts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxls
from jaxls import Status
from jaxls.optax import LineSearchInfo, minimize, scale_by_line_search
from tests.helpers import EvalCounter

INEXACT = [jaxls.backtracking, jaxls.goldstein, jaxls.wolfe, jaxls.hager_zhang]
EXACT = [jaxls.golden_section, jaxls.brent, jaxls.dichotomy, jaxls.parabolic]
EXACT_CONFIG = {"step_max": 2.0, "tol": 1e-8}


def quartic(w):
    return jnp.sum((w - 1.0) ** 2) + 0.5 * jnp.sum(w**4)


def rule(search, **config):
    if search in EXACT and not config:
        config = EXACT_CONFIG
    return scale_by_line_search(search, **config)


def one_step(opt, f, w, **extra):
    state = opt.init(w)
    value, grad = jax.value_and_grad(f)(w)
    return opt.update(grad, state, w, value=value, grad=grad, value_fn=f, **extra)


def _infos(state):
    nodes = jax.tree.leaves(state, is_leaf=lambda s: isinstance(s, LineSearchInfo))
    return [s for s in nodes if isinstance(s, LineSearchInfo)]


# --- the protocol ------------------------------------------------------------------------


@pytest.mark.parametrize("search", INEXACT + EXACT, ids=lambda s: s.__name__)
def test_chain_after_sgd_decreases_and_state_matches_new_params(search):
    opt = optax.chain(optax.sgd(1.0), rule(search))
    w = jnp.array([0.0, -1.0, 2.0])
    value0 = quartic(w)
    updates, state = one_step(opt, quartic, w)
    new = optax.apply_updates(w, updates)
    value, grad = jax.value_and_grad(quartic)(new)
    assert float(value) < float(value0)
    # The state's value and grad are those of the new parameters: reusable.
    assert optax.tree.get(state, "value") == pytest.approx(float(value), rel=1e-14)
    np.testing.assert_allclose(optax.tree.get(state, "grad"), grad, rtol=1e-12)
    info = _infos(state)[0]
    np.testing.assert_allclose(updates, -info.step * jax.grad(quartic)(w), rtol=1e-15)


@pytest.mark.parametrize("search", [jaxls.wolfe, jaxls.hager_zhang], ids=lambda s: s.__name__)
def test_drop_in_for_lbfgs_line_search(search):
    rosenbrock = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    opt = optax.lbfgs(linesearch=rule(search))
    res = jax.jit(lambda w: minimize(rosenbrock, w, opt, tol=1e-8))(jnp.array([-1.2, 1.0]))
    assert int(res.status) == Status.SUCCESS
    np.testing.assert_allclose(res.params, [1.0, 1.0], atol=1e-7)
    # Exactly one `value` and one `grad` in the whole L-BFGS state.
    assert optax.tree.get(res.state, "value") == res.value


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("search", [jaxls.wolfe, jaxls.golden_section], ids=lambda s: s.__name__)
def test_state_dtypes_and_shapes_never_change(search, dtype):
    opt = optax.chain(optax.sgd(1.0), rule(search))
    w = jnp.array([0.5, -1.0], dtype)
    state = opt.init(w)
    kinds = lambda tree: jax.tree.map(lambda a: (jnp.shape(a), jnp.asarray(a).dtype), tree)
    before = kinds(state)
    value, grad = jax.value_and_grad(quartic)(w)
    updates, new_state = opt.update(grad, state, w, value=value, grad=grad, value_fn=quartic)
    assert kinds(new_state) == before
    assert updates.dtype == dtype


def test_a_jitted_training_step_is_traced_once():
    traces = []
    opt = optax.lbfgs(linesearch=rule(jaxls.wolfe))
    value_and_grad = optax.value_and_grad_from_state(quartic)

    @jax.jit
    def step(w, state):
        traces.append(1)
        value, grad = value_and_grad(w, state=state)
        updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=quartic)
        return optax.apply_updates(w, updates), state

    w = jnp.array([3.0, -2.0, 0.5])
    state = opt.init(w)
    for _ in range(20):
        w, state = step(w, state)
    assert len(traces) == 1
    np.testing.assert_allclose(w, 0.6823278038280193, rtol=1e-10)


def test_value_and_grad_from_state_costs_no_evaluation():
    f = EvalCounter(quartic)
    opt = optax.chain(optax.sgd(1.0), rule(jaxls.backtracking))
    value_and_grad = optax.value_and_grad_from_state(f)
    w = jnp.array([3.0, -2.0])
    state = opt.init(w)
    searched = 0
    for _ in range(5):
        value, grad = value_and_grad(w, state=state)
        updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
        w = optax.apply_updates(w, updates)
        searched += int(_infos(state)[0].num_evals)
    jax.effects_barrier()
    # One evaluation for the first step (state value is inf), then only the searches'.
    assert f.count == 1 + searched
    assert int(_infos(state)[0].total_evals) == searched


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "config", "error", "match"),
    [
        (jaxls.wolfe, {"c1": 2.0}, ValueError, r"jaxls\.wolfe\(c1=2\.0\)"),
        (jaxls.wolfe, {"c3": 1.0}, TypeError, "takes no argument `c3`"),
        (jaxls.wolfe, {"direction": 1.0}, TypeError, "sets `direction` itself"),
        (jaxls.golden_section, {}, ValueError, "needs `step_max`"),
        (jaxls.golden_section, {"step_max": 1.0, "tol": -1.0}, ValueError, "tol"),
        (jaxls.backtracking, {"growth": 0.5}, ValueError, "growth"),
        (jaxls.backtracking, {"failure_shrink": 1.0}, ValueError, "failure_shrink"),
        (jaxls.backtracking, {"step_init": 0.0}, ValueError, "step_init"),
        (jaxls.backtracking, {"step_max": -1.0}, ValueError, "step_max"),
        (jnp.sum, {}, TypeError, "must be an interval search"),
        (1.0, {}, TypeError, "must be a jaxls search"),
    ],
)
def test_bad_configuration_raises_when_the_rule_is_built(search, config, error, match):
    with pytest.raises(error, match=match):
        scale_by_line_search(search, **config)


def test_step_max_goes_to_searches_that_take_it_and_caps_the_others():
    f = lambda w: -jnp.sum(w)  # unbounded below: every search runs to its limit
    for search in [jaxls.wolfe, jaxls.goldstein, jaxls.backtracking]:
        updates, state = one_step(
            optax.chain(optax.sgd(1.0), rule(search, step_init=8.0, step_max=3.0)),
            f,
            jnp.zeros(2),
        )
        step = float(_infos(state)[0].step)
        assert 0 < step <= 3.0, search.__name__
        np.testing.assert_allclose(updates, [step, step])


# --- routing extra arguments --------------------------------------------------------------


def test_extra_arguments_reach_value_fn_and_unknown_ones_are_ignored():
    def f(w, batch, *, scale=1.0):
        return scale * jnp.sum((w - batch) ** 2)

    opt = optax.chain(optax.sgd(1.0), rule(jaxls.backtracking))
    w, batch = jnp.zeros(2), jnp.array([1.0, 3.0])
    value, grad = jax.value_and_grad(f)(w, batch, scale=2.0)
    updates, state = opt.update(
        grad, opt.init(w), w, value=value, grad=grad, value_fn=f, batch=batch, scale=2.0, lr=3
    )
    # With batch and scale routed, the search's new point is evaluated on the same objective.
    new = optax.apply_updates(w, updates)
    assert float(optax.tree.get(state, "value")) == pytest.approx(float(f(new, batch, scale=2.0)))
    assert float(optax.tree.get(state, "value")) < float(value)


def test_value_fn_with_var_keywords_gets_every_extra_argument():
    seen = {}

    def f(w, **kwargs):
        seen.update(kwargs)
        return jnp.sum((w - kwargs["target"]) ** 2)

    opt = optax.chain(optax.sgd(1.0), rule(jaxls.wolfe))
    w = jnp.zeros(2)
    value, grad = jax.value_and_grad(f)(w, target=1.0)
    seen.clear()
    opt.update(grad, opt.init(w), w, value=value, grad=grad, value_fn=f, target=1.0, x=2)
    assert set(seen) == {"target", "x"}


def test_optax_own_search_raises_where_jaxls_ignores():
    f = lambda w: jnp.sum(w**2)
    w = jnp.ones(2)
    with pytest.raises(TypeError):
        one_step(optax.chain(optax.sgd(1.0), optax.scale_by_zoom_linesearch(10)), f, w, epoch=1)
    updates, _ = one_step(optax.chain(optax.sgd(1.0), rule(jaxls.wolfe)), f, w, epoch=1)
    assert float(f(w + updates)) < float(f(w))


# --- failure policy -----------------------------------------------------------------------


@pytest.mark.parametrize("search", INEXACT + EXACT, ids=lambda s: s.__name__)
def test_ascent_direction_falls_back_to_minus_grad(search):
    opt = optax.chain(optax.sgd(-1.0), rule(search))  # updates = +grad: uphill
    w = jnp.array([3.0, -2.0])
    updates, state = one_step(opt, quartic, w)
    info = _infos(state)[0]
    assert bool(info.fallback)
    assert float(info.step) > 0
    np.testing.assert_allclose(updates, -info.step * jax.grad(quartic)(w), rtol=1e-15)
    assert float(quartic(w + updates)) < float(quartic(w))


@pytest.mark.parametrize("search", INEXACT + EXACT, ids=lambda s: s.__name__)
def test_stationary_point_takes_step_zero_without_shrinking(search):
    f = lambda w: jnp.sum((w - 1.0) ** 2)
    opt = optax.chain(optax.sgd(1.0), rule(search))
    w = jnp.ones(2)
    state0 = opt.init(w)
    updates, state = one_step(opt, f, w)
    assert float(_infos(state)[0].step) == 0
    np.testing.assert_array_equal(updates, 0.0)
    assert float(state[1].step_init) == float(state0[1].step_init)


@pytest.mark.parametrize("search", INEXACT, ids=lambda s: s.__name__)
def test_failed_search_is_never_uphill_and_the_next_starts_smaller(search):
    # NaN beyond |w| < 1e-3 of the start: every trial with step >= 1e-3 fails.
    f = lambda w: jnp.where(jnp.abs(w[0] - 5.0) < 1e-3, (w[0] - 6.0) ** 2, jnp.nan)
    opt = optax.chain(optax.sgd(1.0), rule(search, max_evals=3))
    w = jnp.array([5.0])
    state = opt.init(w)
    steps, starts = [], []
    for _ in range(6):
        value, grad = jax.value_and_grad(f)(w)
        starts.append(float(state[1].step_init))
        updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
        w = optax.apply_updates(w, updates)
        steps.append(float(_infos(state)[0].step))
        assert np.isfinite(float(f(w)))
        assert float(f(w)) <= float(value)
    assert steps[0] == 0.0
    assert starts[1] == pytest.approx(0.1 * starts[0])  # failure: start 10x smaller
    assert any(s > 0 for s in steps)  # not stuck at step 0 for ever
    assert float(w[0]) > 5.0


def test_success_resets_or_grows_the_start():
    f = lambda w: jnp.sum((w - 1.0) ** 2)
    constant = rule(jaxls.backtracking, step_init=4.0)
    grown = rule(jaxls.backtracking, step_init=4.0, growth=3.0, step_max=1.2)
    for r, expected in [(constant, lambda t: 4.0), (grown, lambda t: min(3.0 * t, 1.2))]:
        _, state = one_step(optax.chain(optax.sgd(1.0), r), f, jnp.zeros(2))
        info = _infos(state)[0]
        assert float(state[1].step_init) == pytest.approx(expected(float(info.step)))


def test_exact_search_is_counted_and_returns_the_interval_minimiser():
    f = EvalCounter(lambda w: jnp.sum((w - 1.0) ** 2))
    opt = optax.chain(optax.sgd(1.0), rule(jaxls.golden_section, step_max=2.0, tol=1e-9))
    _, state = one_step(opt, f, jnp.zeros(2))
    jax.effects_barrier()
    info = _infos(state)[0]
    assert int(info.status) == Status.SUCCESS
    assert float(info.step) == pytest.approx(0.5, abs=1e-8)  # phi(t) = 2 (1 - 2t)^2
    assert f.count == 1 + int(info.num_evals)  # the step's own evaluation + the search's


def test_exact_search_that_finds_no_decrease_returns_step_zero():
    # The minimiser of a tol-coarse search sits where phi is above phi(0).
    f = lambda w: jnp.sum((w - 1e-3) ** 2)  # phi(t) = (2 t - 1e-3)^2 along d = -1000 grad
    opt = optax.chain(optax.sgd(1000.0), rule(jaxls.golden_section, step_max=1.0, tol=0.2))
    w = jnp.zeros(1)
    updates, state = one_step(opt, f, w)
    info = _infos(state)[0]
    assert int(info.status) == Status.NO_DECREASE
    np.testing.assert_array_equal(updates, 0.0)
    assert float(state[1].step_init) == pytest.approx(0.1)  # the next interval is smaller


# --- gradients and batches ----------------------------------------------------------------


def test_nothing_differentiates_through_the_search():
    def updates_of(theta):
        f = lambda w: jnp.sum((w - theta) ** 2)
        updates, state = one_step(optax.chain(optax.sgd(1.0), rule(jaxls.wolfe)), f, jnp.zeros(2))
        return jnp.sum(updates) + optax.tree.get(state, "value")

    assert float(jax.grad(updates_of)(1.5)) == 0.0


@pytest.mark.parametrize("search", [jaxls.backtracking, jaxls.wolfe, jaxls.golden_section])
def test_mixed_batch_under_vmap_equals_member_by_member(search):
    def f(w, a):
        return jnp.where(w[0] < a, (w[0] - 1.0) ** 2 + w[1] ** 2, jnp.nan)

    opt = optax.chain(
        optax.sgd(1.0), rule(search, max_evals=6) if search in INEXACT else rule(search)
    )
    ws = jnp.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    caps = jnp.array([5.0, 1e-6, 5.0, 0.3])  # fine, NaN almost at once, stationary, NaN midway

    def update(w, a):
        g = lambda p: f(p, a)
        return one_step(opt, g, w)

    batched = jax.vmap(update)(ws, caps)
    for i in range(len(ws)):
        single = update(ws[i], caps[i])
        jax.tree.map(
            lambda b, s, i=i: np.testing.assert_allclose(b[i], s, rtol=1e-14, atol=0),
            batched,
            single,
        )


# --- minimize ------------------------------------------------------------------------------


def test_minimize_counts_every_evaluation():
    f = EvalCounter(quartic)
    res = minimize(f, jnp.array([3.0, -2.0]), optax.chain(optax.sgd(1.0), rule(jaxls.wolfe)))
    jax.effects_barrier()
    assert int(res.status) == Status.SUCCESS
    assert f.count == int(res.num_evals)


def test_minimize_with_a_plain_optimizer_evaluates_once_per_step():
    f = EvalCounter(lambda w: jnp.sum((w - 1.0) ** 2))
    res = minimize(f, jnp.zeros(2), optax.sgd(0.25), max_steps=200, tol=1e-10)
    jax.effects_barrier()
    assert int(res.status) == Status.SUCCESS
    assert int(res.num_evals) == int(res.num_steps) + 1 == f.count


def test_minimize_statuses():
    opt = optax.chain(optax.sgd(1.0), rule(jaxls.backtracking))
    slow = minimize(quartic, jnp.array([30.0]), opt, max_steps=2)
    assert int(slow.status) == Status.MAX_STEPS and int(slow.num_steps) == 2
    nan = minimize(lambda w: jnp.sum(w) * jnp.nan, jnp.ones(1), opt)
    assert int(nan.status) == Status.NONFINITE and int(nan.num_steps) == 0
    none = minimize(quartic, jnp.ones(1), opt, max_steps=0)
    assert int(none.num_steps) == 0 and int(none.num_evals) == 1
    with pytest.raises(ValueError, match="tol"):
        minimize(quartic, jnp.ones(1), opt, tol=-1.0)
    with pytest.raises(ValueError, match="max_steps"):
        minimize(quartic, jnp.ones(1), opt, max_steps=-1)


@pytest.mark.parametrize("search", INEXACT + EXACT, ids=lambda s: s.__name__)
def test_non_finite_value_or_gradient_leaves_the_parameters_unchanged(search):
    f = lambda w: jnp.sum(jnp.sqrt(w))  # NaN value and gradient at negative w
    opt = optax.chain(optax.sgd(1.0), rule(search))
    w = jnp.array([-1.0, 4.0])
    updates, state = one_step(opt, f, w)
    np.testing.assert_array_equal(updates, 0.0)
    assert int(_infos(state)[0].status) == Status.NONFINITE
