"""`jaxls.optax.scale_by_line_search` and `jaxls.optax.minimize`: what belongs to the adapter
and the driver (how a search is described and called, argument routing, an interval
search's `tol`, the adapter's `grow`, evaluation counts, `minimize`'s statuses and aux).
What every rule promises alike (the fallback to ``-grad``, stationary points, non-finite
values, failed searches, tracing once, vmap, dtypes, has_aux, stop_gradient, the common
errors) is specified once, for every rule, in tests/test_optax_contract.py.

Float32 (JAX's default) unless a test is parametrised over dtypes."""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxls
from jaxls import Status
from jaxls._src.adapters.spec import SPECS
from jaxls.optax import (
    UNCOUNTED,
    LineSearchInfo,
    minimize,
    SearchSpec,
    scale_by_line_search,
    stochastic_armijo,
)
from tests.helpers import EvalCounter
from tests.test_optax_contract import STEEP_START, steep, with_aux

INEXACT = [jaxls.backtracking, jaxls.goldstein, jaxls.wolfe, jaxls.hager_zhang]
EXACT = [jaxls.golden_section, jaxls.brent, jaxls.dichotomy, jaxls.parabolic]
EXACT_CONFIG = {"step_max": 2.0, "tol": 1e-5}
name_of = lambda s: s.__name__
# float32: a point rounded once more or less (XLA may fuse `x + t d` into one FMA in one
# compiled function and not in another) moves value and gradient by a few ulps.
F32 = {"rtol": 2e-6, "atol": 1e-6}


def quartic(w):
    return jnp.sum((w - 1.0) ** 2) + 0.5 * jnp.sum(w**4)


# The adapter's own keywords; every other keyword of `rule` is an option of the search.
ADAPTER = {"step_init", "grow", "step_max", "failure_shrink", "has_aux"}


def split(search, **config):
    """`scale_by_line_search(search, <adapter keywords>, options=<the others>)`."""
    adapter = {k: v for k, v in config.items() if k in ADAPTER}
    options = {k: v for k, v in config.items() if k not in ADAPTER}
    return scale_by_line_search(search, **adapter, options=options)


def rule(search, **config):
    """`split`, with `EXACT_CONFIG` for an interval search."""
    if search in EXACT:
        config = {**EXACT_CONFIG, **config}
    return split(search, **config)


def one_step(opt, f, w, **extra):
    state = opt.init(w)
    value, grad = jax.value_and_grad(f)(w)
    return opt.update(grad, state, w, value=value, grad=grad, value_fn=f, **extra)


def _infos(state):
    nodes = jax.tree.leaves(state, is_leaf=lambda s: isinstance(s, LineSearchInfo))
    return [s for s in nodes if isinstance(s, LineSearchInfo)]


# --- the protocol ------------------------------------------------------------------------


@pytest.mark.parametrize("search", [jaxls.wolfe, jaxls.hager_zhang], ids=name_of)
def test_drop_in_for_lbfgs_line_search(search):
    rosenbrock = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    opt = optax.lbfgs(linesearch=rule(search))
    res = jax.jit(lambda w: minimize(rosenbrock, w, opt, grad_tol=1e-5))(jnp.array([-1.2, 1.0]))
    assert int(res.status) == Status.SUCCESS
    np.testing.assert_allclose(res.params, [1.0, 1.0], atol=1e-5)
    # Exactly one `value` and one `grad` in the whole L-BFGS state.
    assert optax.tree.get(res.state, "value") == res.value


def test_value_and_grad_from_state_costs_no_evaluation():
    f = EvalCounter(quartic)
    opt = optax.chain(optax.sgd(1.0), rule(jaxls.backtracking))
    value_and_grad = optax.value_and_grad_from_state(f)

    @jax.jit
    def step(w, state):
        value, grad = value_and_grad(w, state=state)
        updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
        return optax.apply_updates(w, updates), state

    w = jnp.array([3.0, -2.0])
    state = opt.init(w)
    searched = 0
    for _ in range(5):
        w, state = step(w, state)
        searched += int(_infos(state)[0].num_evals)
    jax.effects_barrier()
    # One evaluation for the first step (state value is inf), then only the searches'.
    assert f.count == 1 + searched
    assert int(_infos(state)[0].total_evals) == searched


class ValueGradCounter:
    """``fun`` counting, on the host, its executed calls and those that computed a gradient
    (a `jax.custom_vjp` whose backward pass ticks)."""

    def __init__(self, fun):
        self.values = self.grads = 0

        @jax.custom_vjp
        def counted(x):
            jax.debug.callback(self._value)
            return fun(x)

        def forward(x):
            return counted(x), x

        def backward(x, cotangent):
            jax.debug.callback(self._grad)
            return (jax.tree.map(lambda g: cotangent * g, jax.grad(fun)(x)),)

        counted.defvjp(forward, backward)
        self.fun = counted

    def _value(self):
        self.values += 1

    def _grad(self):
        self.grads += 1

    def __call__(self, x):
        return self.fun(x)


@pytest.mark.parametrize("search", INEXACT + EXACT, ids=name_of)
def test_info_counts_the_calls_and_gradients_the_search_made(search):
    """Value-only trials are value-only (the search is given `value_fn` itself), and
    `LineSearchInfo` counts what the search reports, which is what ran."""
    f = ValueGradCounter(lambda w: jnp.sum(jnp.cosh(4.0 * w)))
    w = jnp.array([1.0, -0.5])
    value, grad = jax.value_and_grad(f)(w)
    jax.effects_barrier()
    f.values = f.grads = 0
    config = {"step_init": 4.0} if search in INEXACT else {"step_max": 0.2, "tol": 1e-4}
    opt = optax.chain(optax.sgd(1.0), rule(search, **config))
    _, state = opt.update(grad, opt.init(w), w, value=value, grad=grad, value_fn=f)
    jax.effects_barrier()
    info = _infos(state)[0]
    assert int(info.status) == Status.SUCCESS and float(info.step) > 0
    assert (f.values, f.grads) == (int(info.num_evals), int(info.num_grads))
    if search in INEXACT:  # the search's own report, run directly
        f.values = f.grads = 0
        direct = search(f, w, -grad, value=value, grad=grad, step_init=4.0)
        assert (int(direct.num_evals), int(direct.num_grads)) == (f.values, f.grads)
    else:
        assert int(info.num_grads) == 1


def test_value_only_rule_counts_no_gradient():
    f = ValueGradCounter(lambda w: jnp.sum(jnp.cosh(4.0 * w)))
    w = jnp.array([1.0, -0.5])
    value, grad = jax.value_and_grad(f)(w)
    jax.effects_barrier()
    f.values = f.grads = 0
    opt = optax.chain(optax.sgd(1.0), stochastic_armijo(step_init=4.0))
    _, state = opt.update(grad, opt.init(w), w, value=value, grad=grad, value_fn=f)
    jax.effects_barrier()
    info = state[1].info
    assert (f.values, f.grads) == (int(info.num_evals), 0) and int(info.num_grads) == 0


# --- gradients beyond sqrt(float32 max) (issue 9, item 14) ---------------------------------


def test_descent_test_neither_overflows_nor_underflows():
    """`<grad, updates>` of -inf + inf (NaN) or of products below float32's tiny numbers
    (0) must not turn a descent direction into a fallback to -grad."""
    opt = rule(jaxls.backtracking)  # searches along `updates` itself
    for f, w, updates in [
        # grad (3e19, 1e19), products -3e39 and +1e39: -inf + inf
        (lambda w: 3e19 * w[0] + 1e19 * w[1], jnp.zeros(2), jnp.array([-1e20, 1e20])),
        # grad (2e-23, -2e-23), products -4e-46: both 0 in float32
        (lambda w: jnp.sum(w**2), jnp.array([1e-23, -1e-23]), jnp.array([-2e-23, 2e-23])),
    ]:
        value, grad = jax.value_and_grad(f)(w)
        _, state = opt.update(updates, opt.init(w), w, value=value, grad=grad, value_fn=f)
        assert not bool(_infos(state)[0].fallback), (w, updates)


def test_minimize_grad_norm_is_finite_for_a_finite_gradient():
    res = minimize(steep, jnp.full(3, STEEP_START), optax.sgd(1e-30), max_iterations=0)
    expected = np.sqrt(3.0) * 10.0 * np.exp(10.0 * STEEP_START)  # 9e22
    np.testing.assert_allclose(float(res.grad_norm), expected, rtol=1e-5)
    assert int(res.status) == Status.MAX_ITERATIONS


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "config", "error", "match"),
    [
        (jaxls.wolfe, {"c1": 2.0}, ValueError, r"jaxls\.wolfe\(c1=2\.0\)"),
        (jaxls.wolfe, {"c3": 1.0}, TypeError, r"no option `c3`; its options are \["),
        (jaxls.wolfe, {"value": 1.0}, TypeError, "sets `value` itself"),
        (jaxls.backtracking, {"value_and_grad": None}, TypeError, "no option `value_and_grad`"),
        (jaxls.golden_section, {}, ValueError, "needs `step_max`"),
        (jaxls.golden_section, {"step_max": 1.0, "tol": -1.0}, ValueError, "tol"),
        (jaxls.backtracking, {"grow": 0.5}, ValueError, "grow"),
        (jaxls.backtracking, {"failure_shrink": 1.0}, ValueError, "failure_shrink"),
        (jaxls.backtracking, {"step_init": 0.0}, ValueError, "step_init"),
        (jaxls.backtracking, {"step_max": -1.0}, ValueError, "step_max"),
        (jaxls.backtracking, {"has_aux": 1}, TypeError, "has_aux"),  # not a bool
        (jnp.sum, {}, TypeError, r"no description.*spec=jaxls\.optax\.SearchSpec"),
        (1.0, {}, TypeError, "must be a line search"),
    ],
)
def test_bad_configuration_raises_when_the_rule_is_built(search, config, error, match):
    with pytest.raises(error, match=match):
        split(search, **config)


@pytest.mark.parametrize("search", [jaxls.wolfe, jaxls.backtracking], ids=name_of)
def test_step_max_is_the_adapters_not_an_option(search):
    with pytest.raises(TypeError, match=r"options=\{'step_max'.*sets `step_max` itself"):
        scale_by_line_search(search, options={"step_max": 1.0})


# --- describing a search: SearchSpec, and the search's options ---------------------------

STEP_OWNS = frozenset({"value", "grad", "step_init"})


def test_the_table_describes_every_jaxls_search_by_its_real_keywords():
    """Every search of jaxls has a spec, and every keyword it names is a keyword-only
    parameter of the search: renaming one fails here, instead of changing the routing."""
    assert set(SPECS) == {*INEXACT, *EXACT, jaxls.fibonacci}
    for search, spec in SPECS.items():
        parameters = inspect.signature(search).parameters
        keywords = {n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
        assert spec.owns | spec.options <= keywords, search.__name__
        assert spec.kind == ("interval" if search in [*EXACT, jaxls.fibonacci] else "step")
        assert spec.takes_tol == ("tol" in parameters), search.__name__


def test_a_search_of_your_own_with_a_spec_is_called_as_its_spec_says():
    calls = []

    def halving(fun, x, direction, *, value, grad, step_init, shrink=0.5):
        calls.append(shrink)
        return jaxls.backtracking(
            fun, x, direction, value=value, grad=grad, step_init=step_init, shrink=shrink
        )

    spec = SearchSpec("step", owns=STEP_OWNS, options=frozenset({"shrink"}))
    mine = scale_by_line_search(halving, spec=spec, options={"shrink": 0.25})
    theirs = rule(jaxls.backtracking, shrink=0.25)
    f = lambda w: jnp.sum((w - 1.0) ** 2) + jnp.sum(w**4)
    w = jnp.full(2, 3.0)
    ours, state = one_step(optax.chain(optax.sgd(1.0), mine), f, w)
    expected, state_expected = one_step(optax.chain(optax.sgd(1.0), theirs), f, w)
    assert 0.25 in calls
    np.testing.assert_array_equal(ours, expected)
    assert float(_infos(state)[0].step) == float(_infos(state_expected)[0].step) > 0
    # Its options are checked against its spec, and has_aux needs the spec to own it.
    with pytest.raises(TypeError, match=r"`halving` has no option `c1`; its options are"):
        scale_by_line_search(halving, spec=spec, options={"c1": 0.1})
    with pytest.raises(TypeError, match="does not own `has_aux`"):
        scale_by_line_search(halving, spec=spec, has_aux=True)


def test_renaming_a_parameter_does_not_change_routing():
    """A step search whose positional parameters are named like an interval search's
    (`lower`, `upper`) is still called as a step search: the spec says so, and the adapter
    reads no parameter names."""

    def renamed(fun, lower, upper, *, value, grad, step_init, **options):
        return jaxls.wolfe(fun, lower, upper, value=value, grad=grad, step_init=step_init)

    spec = SearchSpec("step", owns=STEP_OWNS)
    mine = scale_by_line_search(renamed, spec=spec)
    f = quartic
    w = jnp.zeros(2)
    ours, state = one_step(optax.chain(optax.sgd(1.0), mine), f, w)
    expected, state_expected = one_step(optax.chain(optax.sgd(1.0), rule(jaxls.wolfe)), f, w)
    np.testing.assert_array_equal(ours, expected)
    assert int(_infos(state)[0].num_grads) == int(_infos(state_expected)[0].num_grads)
    # Described as an interval search, the same function is called as one: (phi, 0, upper).
    seen = []

    def interval(fun, lower, upper, **options):
        seen.append((float(lower), float(upper)))
        return jaxls.golden_section(fun, lower, upper, tol=1e-4)

    exact = scale_by_line_search(interval, spec=SearchSpec("interval"), step_max=2.0)
    one_step(optax.chain(optax.sgd(1.0), exact), f, w)
    assert seen[-1] == (0.0, 2.0)  # seen[0]: the toy call that checks the options


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (SearchSpec("line"), "must be"),
        (SearchSpec("step"), r"owns \['grad', 'step_init', 'value'\]"),
        (SearchSpec("step", owns=STEP_OWNS | {"x"}), "may own"),
        (SearchSpec("interval", owns=frozenset({"value"})), "owns"),
        (SearchSpec("interval", takes_tol=True), "takes_tol"),
        (SearchSpec("step", owns=STEP_OWNS, options=frozenset({"grad"})), "both owned"),
    ],
)
def test_a_spec_the_adapter_cannot_follow_is_an_error(spec, match):
    with pytest.raises(ValueError, match=match):
        scale_by_line_search(lambda *a, **k: None, spec=spec)
    with pytest.raises(TypeError, match=r"must be a `jaxls\.optax\.SearchSpec`"):
        scale_by_line_search(jaxls.wolfe, spec=("step",))


def test_an_undescribed_search_is_refused_naming_the_fix():
    """A `functools.partial` of a jaxls search, or any other callable, has no spec: the
    error says to use `options=` or to give a `SearchSpec`."""
    for search in (functools.partial(jaxls.wolfe, c1=1e-3), lambda f, x, d: None):
        with pytest.raises(TypeError, match=r"no description.*`options=\{\.\.\.\}`.*SearchSpec"):
            scale_by_line_search(search)


@pytest.mark.parametrize("key", ["c1", "c2", "max_evals"])
def test_a_search_option_given_to_the_adapter_is_refused_naming_options(key):
    """`scale_by_line_search(jaxls.wolfe, c1=1e-3)`: a TypeError saying `options={"c1": ...}`
    (the adapter's `grow` and the search's are thus never confused)."""
    with pytest.raises(TypeError, match=rf"`{key}` is an option of the search.*options=\{{'{key}'"):
        scale_by_line_search(jaxls.wolfe, **{key: 1e-3})
    with pytest.raises(TypeError, match="neither the adapter nor the search takes `c3`"):
        scale_by_line_search(jaxls.wolfe, c3=1.0)


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


# --- the common mistakes, each an error naming the call and the fix ------------------------


def test_extra_arguments_reach_value_fn_by_name():
    def f(w, batch, *, scale=1.0):
        return scale * jnp.sum((w - batch) ** 2)

    opt = optax.chain(optax.sgd(1.0), rule(jaxls.backtracking))
    w, batch = jnp.zeros(2), jnp.array([1.0, 3.0])
    value, grad = jax.value_and_grad(f)(w, batch, scale=2.0)
    updates, state = opt.update(
        grad, opt.init(w), w, value=value, grad=grad, value_fn=f, batch=batch, scale=2.0
    )
    # With batch and scale routed, the search's new point is evaluated on the same objective.
    new = optax.apply_updates(w, updates)
    np.testing.assert_allclose(optax.tree.get(state, "value"), f(new, batch, scale=2.0), **F32)
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
    opt.update(grad, opt.init(w), w, value=value, grad=grad, value_fn=f, target=1.0, epoch=2)
    assert set(seen) == {"target", "epoch"}


@pytest.mark.parametrize("search", [*INEXACT, jaxls.golden_section, jaxls.fibonacci], ids=name_of)
def test_a_bare_search_given_to_optax_says_how_to_wrap_it(search):
    """`optax.lbfgs(linesearch=jaxls.wolfe)` used to fail with `AttributeError: 'function'
    object has no attribute 'init'`; it now fails at `init` with the fix."""
    name = search.__name__
    wrap = rf"jaxls\.optax\.scale_by_line_search\(jaxls\.{name}"
    for opt in (optax.lbfgs(linesearch=search), optax.chain(optax.sgd(1.0), search)):
        with pytest.raises(TypeError, match=rf"`jaxls\.{name}` is a line search.*{wrap}"):
            opt.init(jnp.zeros(2))
    # The search itself is unchanged.
    assert callable(search) and search.__name__ == name


def test_minimize_with_a_vector_objective_names_the_call():
    with pytest.raises(TypeError, match=r"jaxls\.optax\.minimize.*`fun` must return a real scalar"):
        minimize(lambda w: w**2, jnp.ones(3), optax.sgd(0.1))
    with pytest.raises(TypeError, match=r"jaxls\.optax\.minimize.*has_aux=True"):
        minimize(lambda w: (jnp.sum(w**2), w), jnp.ones(3), optax.sgd(0.1))
    with pytest.raises(TypeError, match=r"jaxls\.optax\.minimize.*pair `\(value, aux\)`"):
        minimize(lambda w: jnp.sum(w**2), jnp.ones(3), optax.sgd(0.1), has_aux=True)


# --- failure policy -----------------------------------------------------------------------


def test_success_resets_or_grows_the_start():
    f = lambda w: jnp.sum((w - 1.0) ** 2)
    constant = rule(jaxls.backtracking, step_init=4.0)
    grown = rule(jaxls.backtracking, step_init=4.0, grow=3.0, step_max=1.2)
    for r, expected in [(constant, lambda t: 4.0), (grown, lambda t: min(3.0 * t, 1.2))]:
        _, state = one_step(optax.chain(optax.sgd(1.0), r), f, jnp.zeros(2))
        info = _infos(state)[0]
        assert float(state[1].start) == pytest.approx(expected(float(info.step)))


def test_the_adapters_grow_and_the_searchs_own_grow_are_set_apart():
    """``grow=`` of the adapter grows the next search's start; a search's own ``grow``
    (within one search) is one of its ``options``, here dcsrch's settings of wolfe."""
    f = lambda w: jnp.sum(w**4) / 4 - jnp.sum(w)
    w = jnp.zeros(2)
    settings = {"grow": 4.0, "epsilon": 0.0, "c2": 0.1}
    dcsrch = functools.partial(jaxls.wolfe, **settings)
    opt = optax.chain(
        optax.sgd(1.0),
        scale_by_line_search(jaxls.wolfe, step_init=0.1, grow=3.0, options=settings),
    )
    _, state = one_step(opt, f, w)
    info = _infos(state)[0]
    value, grad = jax.value_and_grad(f)(w)
    alone = dcsrch(f, w, -grad, value=value, grad=grad, step_init=0.1)
    plain = jaxls.wolfe(f, w, -grad, value=value, grad=grad, step_init=0.1, c2=0.1)
    assert int(info.num_evals) == int(alone.num_evals) != int(plain.num_evals)
    assert float(info.step) == float(alone.step)
    assert float(state[1].start) == pytest.approx(3.0 * float(alone.step))
    with pytest.raises(ValueError, match=r"`jaxls\.wolfe\(grow=0\.5\)`"):
        scale_by_line_search(jaxls.wolfe, grow=2.0, options={"grow": 0.5})
    with pytest.raises(ValueError, match=r"optax\.scale_by_line_search\(grow=0\.5\)"):
        scale_by_line_search(jaxls.wolfe, grow=0.5, options={"grow": 2.0})


def test_exact_search_is_counted_and_returns_the_interval_minimiser():
    f = EvalCounter(lambda w: jnp.sum((w - 1.0) ** 2))
    opt = optax.chain(optax.sgd(1.0), rule(jaxls.golden_section, step_max=2.0, tol=1e-6))
    _, state = one_step(opt, f, jnp.zeros(2))
    jax.effects_barrier()
    info = _infos(state)[0]
    assert int(info.status) == Status.SUCCESS
    assert float(info.step) == pytest.approx(0.5, abs=1e-6)  # phi(t) = 2 (1 - 2t)^2
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
    assert float(state[1].start) == pytest.approx(0.1)  # the next interval is smaller


# --- an interval search's default tol: relative to its interval ----------------------------


def pseudo_huber(w, k):
    """``sqrt(1 + u^2) + u / 2`` with ``u = k (w - 1)``: not quadratic (no parabolic step
    lands on its minimiser ``u = -1 / sqrt(3)``). From ``w = 0`` along ``-grad`` the exact
    step is about ``2 / k``."""
    u = k * (w - 1.0)
    return jnp.sum(jnp.sqrt(1 + u**2) + 0.5 * u)


def pseudo_huber_direction(w, k):
    """``-grad pseudo_huber(w, k) = -k (u / sqrt(1 + u^2) + 1 / 2)``, in float64."""
    u = k * (np.asarray(w, np.float64) - 1.0)
    return -k * (u / np.sqrt(1 + u**2) + 0.5)


def pseudo_huber_step(w, direction, k):
    """The minimiser of ``phi(t) = pseudo_huber(w + t d, k)`` (one parameter), in float64."""
    w, direction = float(np.asarray(w)[0]), float(np.asarray(direction)[0])
    return (1 - 1 / (np.sqrt(3) * k) - w) / direction


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("search", EXACT, ids=name_of)
def test_exact_search_finds_a_small_step_to_1e_6_of_its_interval(search, dtype):
    """Without `tol`, the adapter asks for 1e-6 of the interval [0, 1], not the search's own
    default `sqrt(eps)` for a minimiser (3.5e-4 in float32: this step of 1e-3 was then off by
    2e-5 to 9e-5), and float32 resolves it (4 eps = 4.8e-7): no warning, SUCCESS."""
    k = 2000.0
    opt = optax.chain(optax.sgd(1.0), scale_by_line_search(search, step_max=1.0))
    w = jnp.zeros(1, dtype)
    _, state = one_step(opt, lambda w: pseudo_huber(w, k), w)
    info = _infos(state)[0]
    expected = pseudo_huber_step(w, pseudo_huber_direction(w, k), k)
    assert 5e-4 < expected < 2e-3
    assert int(info.status) == Status.SUCCESS
    assert abs(float(info.step) - expected) <= 1e-6


@pytest.mark.parametrize("tol", [None, 1e-2])
@pytest.mark.parametrize("search", [jaxls.golden_section, jaxls.brent], ids=name_of)
def test_exact_search_gets_tol_1e_6_times_its_interval_unless_given_one(search, tol):
    """The adapter's search is the search called with `tol=1e-6 * step_max` (float32), or
    with the user's `tol` unchanged."""
    k, step_max = 5.0, 4.0  # the step is about 0.37
    options = {} if tol is None else {"tol": tol}
    opt = optax.chain(
        optax.sgd(1.0), scale_by_line_search(search, step_max=step_max, options=options)
    )
    w = jnp.zeros(1)
    f = lambda w: pseudo_huber(w, k)
    _, state = one_step(opt, f, w)
    info = _infos(state)[0]
    d = -jax.grad(f)(w)
    given = 1e-6 * step_max if tol is None else tol
    alone = search(lambda t: f(w + t * d), 0.0, step_max, tol=given)
    assert int(info.num_evals) == int(alone.num_evals) + 1  # + the gradient at the step
    np.testing.assert_allclose(info.step, alone.x, rtol=1e-6)


@pytest.mark.filterwarnings("error")
def test_exact_search_default_tol_follows_a_traced_interval_under_jit_and_vmap():
    """Each member's `tol` is 1e-6 of its own `start`, traced: [0, 1] and [0, 50], the
    second with a step 50 times larger, located to 50e-6 (`sqrt(eps) * 50 = 0.017` before)."""
    ks = jnp.array([2000.0, 40.0])
    opt = optax.chain(optax.sgd(1.0), scale_by_line_search(jaxls.brent, step_max=1.0))

    def update(k, step_max):
        w = jnp.zeros(1)
        state = opt.init(w)
        state = (state[0], state[1]._replace(start=step_max))
        value, grad = jax.value_and_grad(pseudo_huber)(w, k)
        _, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=pseudo_huber, k=k)
        return _infos(state)[0], -grad

    batched = jax.jit(jax.vmap(update))(ks, jnp.array([1.0, 50.0]))
    infos, directions = jax.tree.map(np.asarray, batched)  # read on the host
    for i, (k, step_max) in enumerate([(2000.0, 1.0), (40.0, 50.0)]):
        expected = pseudo_huber_step(np.zeros(1), directions[i], k)
        assert 5e-4 * step_max < expected < 2e-3 * step_max
        assert int(infos.status[i]) == Status.SUCCESS
        assert abs(float(infos.step[i]) - expected) <= 1e-6 * step_max


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("step_max", [1.0, 0.01])
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("search", [jaxls.golden_section, jaxls.brent], ids=name_of)
def test_exact_search_default_tol_is_attainable_in_half_precision(search, dtype, step_max):
    """`tol = 8 eps step_max` (+ float16's smallest normal 6.1e-5, which matters on [0, 0.01])
    is above what the dtype resolves: no warning (the old 1e-6 could not be met), and the
    step is found to it."""
    f = lambda w: jnp.sum((w - 1.0) ** 2)
    # d = -grad / step_max = 2 / step_max: phi(t) = (1 - 2 t / step_max)^2, minimised halfway.
    opt = optax.chain(optax.sgd(1 / step_max), scale_by_line_search(search, step_max=step_max))
    w = jnp.zeros(1, dtype)
    updates, state = one_step(opt, f, w)
    info = _infos(state)[0]
    assert updates.dtype == dtype and int(info.status) in (Status.SUCCESS, Status.ROUNDING)
    tol = 8 * float(jnp.finfo(dtype).eps) * step_max + float(jnp.finfo(dtype).tiny)
    assert abs(float(info.step) - step_max / 2) <= tol


def test_a_search_without_tol_gets_none():
    """`jaxls.fibonacci` takes `num_evals`, not `tol`: the adapter adds no `tol` to it."""
    fibonacci = scale_by_line_search(jaxls.fibonacci, step_max=1.0, options={"fixed_evals": 25})
    opt = optax.chain(optax.sgd(1.0), fibonacci)
    f = lambda w: jnp.sum((w - 1.0) ** 2)
    _, state = one_step(opt, f, jnp.zeros(2))
    info = _infos(state)[0]
    assert int(info.status) == Status.SUCCESS and int(info.num_evals) == 25 + 1
    assert float(info.step) == pytest.approx(0.5, abs=1e-4)


def test_minimize_returns_the_aux_of_the_last_parameters_under_jit_and_vmap():
    opt = optax.chain(optax.sgd(1.0), rule(jaxls.backtracking, grow=2.0))
    fit = lambda w, target: minimize(
        lambda w: with_aux(w, target), w, opt, grad_tol=1e-5, has_aux=True
    )
    # Data and results in NumPy (float32): the checks run no eager JAX operation.
    w0 = np.array([[0.0, 1.0], [2.0, -1.0]], np.float32)
    targets = np.array([[1.0, 2.0], [0.0, 3.0]], np.float32)
    batched = jax.tree.map(np.asarray, jax.jit(jax.vmap(fit))(w0, targets))
    for i in range(2):
        alone = jax.tree.map(np.asarray, jax.jit(fit)(w0[i], targets[i]))
        assert int(alone.status) == Status.SUCCESS
        np.testing.assert_allclose(alone.aux["residual"], alone.params - targets[i], **F32)
        np.testing.assert_allclose(
            batched.aux["residual"][i], batched.params[i] - targets[i], **F32
        )
    plain = minimize(lambda w: with_aux(w, targets[1])[0], jnp.asarray(w0[1]), opt, grad_tol=1e-5)
    assert plain.aux is None
    # The aux costs one value-only call at the end.
    assert int(alone.num_evals) == int(plain.num_evals) + 1
    assert int(alone.num_grads) == int(plain.num_grads)


# --- minimize ------------------------------------------------------------------------------


def test_minimize_counts_every_evaluation():
    f = EvalCounter(quartic)
    res = minimize(f, jnp.array([3.0, -2.0]), optax.chain(optax.sgd(1.0), rule(jaxls.wolfe)))
    jax.effects_barrier()
    assert int(res.status) == Status.SUCCESS
    assert f.count == int(res.num_evals)
    assert 0 < int(res.num_grads) <= int(res.num_evals)


def test_minimize_with_a_plain_optimizer_evaluates_once_per_step():
    f = EvalCounter(lambda w: jnp.sum((w - 1.0) ** 2))
    res = minimize(f, jnp.zeros(2), optax.sgd(0.25), max_iterations=200, grad_tol=1e-6)
    jax.effects_barrier()
    assert int(res.status) == Status.SUCCESS
    assert int(res.num_evals) == int(res.num_grads) == int(res.num_iterations) + 1 == f.count


def test_minimize_does_not_report_a_count_it_cannot_see():
    """optax's own L-BFGS evaluates inside its zoom search, where minimize sees nothing: the
    count is `UNCOUNTED` (-1), not the 1 evaluation minimize made itself."""
    f = EvalCounter(quartic)
    res = jax.jit(lambda w: minimize(f, w, optax.lbfgs(), grad_tol=1e-5))(jnp.array([3.0, -2.0]))
    jax.effects_barrier()
    assert int(res.status) == Status.SUCCESS and f.count > 1
    assert int(res.num_evals) == int(res.num_grads) == UNCOUNTED == -1
    # jaxls's rule inside the same L-BFGS: every call counted.
    f.count = 0
    res = jax.jit(
        lambda w: minimize(f, w, optax.lbfgs(linesearch=rule(jaxls.wolfe)), grad_tol=1e-5)
    )(jnp.array([3.0, -2.0]))
    jax.effects_barrier()
    assert int(res.num_evals) == f.count


def test_minimize_statuses():
    opt = optax.chain(optax.sgd(1.0), rule(jaxls.backtracking))
    slow = minimize(quartic, jnp.array([30.0]), opt, max_iterations=2)
    assert int(slow.status) == Status.MAX_ITERATIONS and int(slow.num_iterations) == 2
    nan = minimize(lambda w: jnp.sum(w) * jnp.nan, jnp.ones(1), opt)
    assert int(nan.status) == Status.NONFINITE and int(nan.num_iterations) == 0
    none = minimize(quartic, jnp.ones(1), opt, max_iterations=0)
    assert int(none.num_iterations) == 0 and int(none.num_evals) == 1
    with pytest.raises(ValueError, match="tol"):
        minimize(quartic, jnp.ones(1), opt, grad_tol=-1.0)
    with pytest.raises(ValueError, match="max_iterations"):
        minimize(quartic, jnp.ones(1), opt, max_iterations=-1)
