"""The contract every optax rule of jaxls keeps: `scale_by_line_search` of each jaxls search,
`stochastic_armijo` and `nonmonotone_armijo`. This file is the one place these shared
behaviours are specified; the per-rule files keep what belongs to one rule
(test_optax_adapter.py: routing, `SearchSpec`, an interval search's `tol`, `minimize`;
test_optax_rules.py: the references of SLS and Zhang-Hager; test_training.py: training
loops against scipy and optax).

* `RULES` names every rule; `test_the_registry_names_every_rule` fails when jaxls gains a
  search (an entry of the adapter's table) or `jaxls.optax` a rule that is missing here.
* Each rule's update is compiled once for the whole file (`compiled`), on one problem family
  whose data is an argument: a convex quartic around a centre, NaN outside a ball around
  an anchor, a scale, and the direction as a multiple of the gradient. The descent, the
  fallback, the stationary point, the NaN start, the NaN wall, the failed search, the
  training loop and the mixed batch under `vmap` are each a choice of data, so every test
  runs on every rule at the cost of one compilation per rule (and one of its `vmap`).
* What needs another program (other dtypes, `jax.grad` through the update, has_aux, the
  steep objective) runs on every rule where it is cheap and on one rule per kind (`KINDS`:
  the adapter's step-search path, its interval path, and each of the two rules, which are
  the four ways an update is made) where it compiles a loop.

Float32 (JAX's default) unless a test is parametrised over dtypes. Oracles: the rule's own
promise recomputed from what it returned (the step times the direction, the Armijo
decrease, the start it reports), `jax.value_and_grad` at the new point, and each member of a
batch run alone.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxls
from jaxls import Status
from jaxls._src.adapters.spec import SPECS
from jaxls.optax import (
    nonmonotone_armijo,
    scale_by_line_search,
    stochastic_armijo,
)

INTERVAL = {"step_max": 2.0}

# Every rule of jaxls.optax with its defaults, by name (an interval search needs its interval).
RULES = {
    "backtracking": functools.partial(scale_by_line_search, jaxls.backtracking),
    "goldstein": functools.partial(scale_by_line_search, jaxls.goldstein),
    "wolfe": functools.partial(scale_by_line_search, jaxls.wolfe),
    "hager_zhang": functools.partial(scale_by_line_search, jaxls.hager_zhang),
    "golden_section": functools.partial(scale_by_line_search, jaxls.golden_section, **INTERVAL),
    "brent": functools.partial(scale_by_line_search, jaxls.brent, **INTERVAL),
    "dichotomy": functools.partial(scale_by_line_search, jaxls.dichotomy, **INTERVAL),
    "parabolic": functools.partial(scale_by_line_search, jaxls.parabolic, **INTERVAL),
    "fibonacci": functools.partial(
        scale_by_line_search, jaxls.fibonacci, **INTERVAL, options={"fixed_evals": 30}
    ),
    "stochastic_armijo": stochastic_armijo,
    "nonmonotone_armijo": nonmonotone_armijo,
}
INTERVAL_RULES = {"golden_section", "brent", "dichotomy", "parabolic", "fibonacci"}
# The four ways an update is made, one rule each.
KINDS = ["wolfe", "golden_section", "stochastic_armijo", "nonmonotone_armijo"]
every_rule = pytest.mark.parametrize("name", list(RULES))
one_per_kind = pytest.mark.parametrize("name", KINDS)
# float32: a point rounded once more or less (XLA may fuse `x + t d` into one FMA in one
# compiled function and not in another) moves value and gradient by a few ulps.
F32 = {"rtol": 2e-6, "atol": 1e-6}


def test_the_registry_names_every_rule():
    """Every search the adapter describes, and every callable of `jaxls.optax` that builds a
    transformation with its defaults, is in `RULES`: a new rule is covered or this fails."""
    built = set()
    for name in jaxls.optax.__all__:
        factory = getattr(jaxls.optax, name)
        try:
            made = factory()
        except TypeError:  # a rule that needs an argument (scale_by_line_search), a class
            continue
        if isinstance(made, optax.GradientTransformation):
            built.add(name)
    assert built == {"stochastic_armijo", "nonmonotone_armijo"}
    assert set(RULES) == {search.__name__ for search in SPECS} | built
    assert set(KINDS) <= set(RULES)
    assert INTERVAL_RULES == {s.__name__ for s, spec in SPECS.items() if spec.kind == "interval"}


# --- one problem family, one compiled update per rule ---------------------------------------


class Data(NamedTuple):
    """``f(w) = scale (|w - centre|^2 + |w - centre|^4 / 2)`` where ``|w - anchor|^2 <=
    radius2``, NaN beyond; the update is given ``updates = direction * grad f(w)``."""

    centre: jax.Array
    anchor: jax.Array
    radius2: jax.Array
    scale: jax.Array
    direction: jax.Array


def objective(w, data: Data):
    r = w - data.centre
    inside = jnp.sum((w - data.anchor) ** 2) <= data.radius2
    return jnp.where(inside, data.scale * (jnp.sum(r**2) + 0.5 * jnp.sum(r**4)), jnp.nan)


# The oracles' value and gradient of `objective`, each compiled once for the file: eagerly,
# every one of its dozen primitives is a dispatch of its own (and a compilation the first time).
value_at = jax.jit(objective)
value_and_grad_at = jax.jit(jax.value_and_grad(objective))

W0 = np.array([2.0, -1.0], np.float32)
CENTRE = np.array([0.5, 0.25], np.float32)


def data(*, centre=CENTRE, radius=np.inf, scale=1.0, direction=-1.0, anchor=W0) -> Data:
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    return Data(f32(centre), f32(anchor), f32(np.float32(radius) ** 2), f32(scale), f32(direction))


FINE = data()
UPHILL = data(direction=3.0)  # updates = 3 grad: ascent
NAN_DIRECTION = data(direction=np.nan)
ZERO_DIRECTION = data(direction=0.0)
STATIONARY = data(centre=W0)
NAN_START = data(scale=np.nan)
WALL = data(radius=0.3)  # NaN beyond 0.3 of the start: every first trial of 1 leaves it
NOWHERE = data(radius=0.0)  # NaN at every step > 0: every search fails


class Rule(NamedTuple):
    opt: optax.GradientTransformationExtraArgs
    update: object  # jitted (w, state, data) -> (out, state, value, grad)
    batched: object  # its vmap over (w, state, data)
    traces: list  # one entry each time `update` was traced


@functools.cache
def compiled(name: str) -> Rule:
    """The rule's update on the family, jitted once per test process (and its vmap)."""
    opt = RULES[name]()
    traces: list = []

    def update(w, state, data):
        value, grad = jax.value_and_grad(objective)(w, data)
        updates = data.direction * grad
        out, state = opt.update(
            updates, state, w, value=value, grad=grad, value_fn=objective, data=data
        )
        return out, state, value, grad

    def traced_update(w, state, data):
        traces.append(1)
        return update(w, state, data)

    return Rule(opt, jax.jit(traced_update), jax.jit(jax.vmap(update)), traces)


def one_update(name, d: Data, w=W0, state=None):
    rule = compiled(name)
    w = jnp.asarray(w)
    state = rule.opt.init(w) if state is None else state
    return rule.update(w, state, d)


def reference_of(name, state, value) -> float:
    """The value the rule's Armijo test compares with: ``f(x)``, or Zhang-Hager's ``C_k``."""
    if name != "nonmonotone_armijo" or not np.isfinite(float(state.reference)):
        return float(value)
    return max(float(state.reference), float(value))


def slack(value) -> float:
    """Wolfe's and Hager-Zhang's approximate decrease test, and float32 rounding, allow a
    few ulps of ``|f|`` more."""
    return 16 * float(np.finfo(np.float32).eps) * max(1.0, abs(float(value)))


def assert_succeeded(name, state):
    """SUCCESS; for an interval search also ROUNDING, its best point when float32 cannot
    resolve the minimiser to the adapter's `tol` (1e-6 of the interval) on a flat minimum."""
    done = (Status.SUCCESS, Status.ROUNDING) if name in INTERVAL_RULES else (Status.SUCCESS,)
    assert int(state.info.status) in done, Status(int(state.info.status))


def assert_moved_along(out, state, direction):
    """``out`` is the accepted step times ``direction``, and the step is positive."""
    t = float(state.info.step)
    assert t > 0
    np.testing.assert_allclose(out, t * np.asarray(direction), rtol=1e-6)


# --- descent, fallback, stationary points, non-finite values --------------------------------


@every_rule
def test_a_descent_direction_is_searched_and_the_state_holds_the_new_point(name):
    out, state, value, grad = one_update(name, FINE)
    assert_succeeded(name, state)
    assert not bool(state.info.fallback)
    assert_moved_along(out, state, -grad)
    new = W0 + out
    new_value, new_grad = value_and_grad_at(new, FINE)
    assert float(new_value) < float(value)
    if name == "stochastic_armijo":  # a minibatch's value is not the next minibatch's
        assert not hasattr(state, "value")
        return
    # The state's value and gradient are those of the new parameters: reusable by
    # `optax.value_and_grad_from_state` without another evaluation.
    np.testing.assert_allclose(state.value, new_value, **F32)
    np.testing.assert_allclose(state.grad, new_grad, **F32)


NOT_DESCENT = {"uphill": UPHILL, "nan": NAN_DIRECTION, "zero": ZERO_DIRECTION}


@every_rule
@pytest.mark.parametrize("kind", list(NOT_DESCENT))
def test_a_direction_that_does_not_descend_falls_back_to_minus_grad(name, kind):
    bad = NOT_DESCENT[kind]
    out, state, value, grad = one_update(name, bad)
    assert bool(state.info.fallback)
    assert_succeeded(name, state)
    assert_moved_along(out, state, -grad)
    t = float(state.info.step)
    armijo = float(value) - 1e-4 * t * float(grad @ grad)
    assert float(value_at(W0 + out, bad)) <= armijo + slack(value)


@every_rule
def test_a_stationary_point_takes_step_zero_and_keeps_the_start(name):
    rule = compiled(name)
    state0 = rule.opt.init(jnp.asarray(W0))
    out, state, _, grad = one_update(name, STATIONARY, state=state0)
    np.testing.assert_array_equal(grad, 0.0)
    np.testing.assert_array_equal(out, 0.0)
    assert float(state.info.step) == 0.0
    assert float(state.start) == float(state0.start)


@every_rule
def test_a_non_finite_value_leaves_the_parameters_unchanged(name):
    out, state, value, _ = one_update(name, NAN_START)
    assert np.isnan(float(value))
    np.testing.assert_array_equal(out, 0.0)
    assert int(state.info.status) == Status.NONFINITE and float(state.info.step) == 0.0


@every_rule
def test_nan_beyond_some_step_is_never_accepted(name):
    """NaN beyond 0.3 of the start, where a step of 1 moves 7.5: every update moves to a
    finite, lower point inside the ball (the status may say that the search ran out of
    budget or resolution before its own test held, on the ball's edge), or stays put after
    a failed search (an interval search's interval [0, 2] is mostly NaN until the failures
    have shrunk it); one moves."""
    rule = compiled(name)
    w = jnp.asarray(W0)
    state = rule.opt.init(w)
    moves = 0
    for _ in range(4):
        out, state, value, grad = rule.update(w, state, WALL)
        new = w + out
        if float(state.info.step) > 0:  # SUCCESS, or a budget's best lower step (MAX_EVALS)
            assert int(state.info.status) != Status.NONFINITE
            assert_moved_along(out, state, -grad)
            assert bool(jnp.sum((new - W0) ** 2) <= WALL.radius2)  # as `objective` tests it
            assert float(value_at(new, WALL)) < float(value)
            moves += 1
        else:
            assert int(state.info.status) != Status.SUCCESS
            np.testing.assert_array_equal(out, 0.0)
        w = new
    assert moves > 0


@every_rule
def test_a_failed_search_stays_put_and_the_next_starts_smaller(name):
    """NaN at every step: the search fails (step 0, the parameters unchanged, a failure
    status); the next starts `failure_shrink` (0.1) times lower, or, after ROUNDING (the
    search went down to the dtype's resolution: a shorter start cannot help), from the
    first start again; and it succeeds."""
    rule = compiled(name)
    state0 = rule.opt.init(jnp.asarray(W0))
    out, state, _, _ = one_update(name, NOWHERE, state=state0)
    status = int(state.info.status)
    assert float(state.info.step) == 0.0 and status != Status.SUCCESS
    np.testing.assert_array_equal(out, 0.0)
    shrink = 1.0 if status == Status.ROUNDING else 0.1
    np.testing.assert_allclose(float(state.start), shrink * float(state0.start), rtol=1e-6)
    out, after, _, grad = one_update(name, FINE, state=state)
    assert_succeeded(name, after)
    assert_moved_along(out, after, -grad)
    assert int(after.info.total_evals) == int(state.info.num_evals) + int(after.info.num_evals)


@every_rule
def test_a_training_loop_is_traced_once_and_never_goes_uphill(name):
    """Twelve updates, the state fed back, a failed search among them: one trace (the
    state's dtypes and shapes never change), no increase beyond the rule's reference (a
    non-monotone rule compares with ``C_k``), and the minimiser approached."""
    rule = compiled(name)
    w = jnp.asarray(W0)
    state = rule.opt.init(w)
    kinds = lambda tree: jax.tree.map(lambda a: (jnp.shape(a), jnp.asarray(a).dtype), tree)
    before = kinds(state)
    for k in range(12):
        d = data(radius=0.0, anchor=w) if k == 3 else FINE  # NaN at every step: a failure
        previous = state
        out, state, value, _ = rule.update(w, state, d)
        new = w + out
        assert float(value_at(new, FINE)) <= reference_of(name, previous, value) + slack(value)
        w = new
        assert kinds(state) == before
    assert len(rule.traces) == 1
    assert float(value_at(w, FINE)) < 1e-2 * float(value_at(W0, FINE))


@every_rule
def test_a_mixed_batch_under_vmap_equals_each_member_alone(name):
    """One batch holds a fine problem, a NaN wall, a stationary point, a failing search, a
    NaN start and an ascent direction: each member is what its update gives alone."""
    rule = compiled(name)
    members = [FINE, WALL, STATIONARY, NOWHERE, NAN_START, UPHILL]
    # The batch is stacked, and read back, in NumPy: no eager JAX operation (each would
    # compile a program of its own) besides the batched `init` and the two updates.
    batch = jax.tree.map(lambda *leaves: np.stack(leaves), *members)
    ws = np.stack([W0] * len(members))
    states = jax.tree.map(np.asarray, jax.vmap(rule.opt.init)(ws))
    batched = jax.tree.map(np.asarray, rule.batched(ws, states, batch))
    for i, member in enumerate(members):
        # The member's own start, from the batch's (the same dtypes and shapes as a state
        # that `init` makes, so `update` is not traced again).
        alone = rule.update(ws[i], jax.tree.map(lambda s, i=i: s[i], states), member)
        jax.tree.map(
            lambda b, a, i=i: np.testing.assert_allclose(b[i], a, rtol=1e-6, atol=0),
            batched,
            alone,
        )
    statuses = batched[1].info.status
    assert statuses[0] in (Status.SUCCESS, Status.ROUNDING) and statuses[3] != Status.SUCCESS
    assert statuses[4] == Status.NONFINITE


# --- what needs a program of its own --------------------------------------------------------


def quartic(w):
    return jnp.sum((w - 1.0) ** 2) + 0.5 * jnp.sum(w**4)


def mixed_loss(p):
    """The loss of parameters ``{"a": float32, "b": any float dtype}``."""
    return quartic(p["a"]) + quartic(p["b"].astype(jnp.float32))


mixed_loss_at = jax.jit(mixed_loss)  # the oracle: one compilation per dtype, not per test


@one_per_kind
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32, jnp.float64])
def test_the_state_keeps_its_dtypes_and_the_updates_the_params_dtype(name, dtype):
    """Parameters of one dtype, or a pytree mixing it with float32: the updates have each
    leaf's dtype, the state's dtypes and shapes never change, and the loss decreases."""
    opt = optax.chain(optax.sgd(1.0), RULES[name]())
    w = {"a": jnp.array([0.5, -1.0], jnp.float32), "b": jnp.array([2.0, 0.0], dtype)}
    state = opt.init(w)
    kinds = lambda tree: jax.tree.map(lambda a: (jnp.shape(a), jnp.asarray(a).dtype), tree)
    before = kinds(state)

    @jax.jit  # one compilation (eagerly, every primitive compiles anew in bfloat16, float64)
    def update(w, state):
        value, grad = jax.value_and_grad(mixed_loss)(w)
        return value, opt.update(grad, state, w, value=value, grad=grad, value_fn=mixed_loss)

    value, (updates, state) = update(w, state)
    assert kinds(state) == before
    assert jax.tree.map(lambda u: u.dtype, updates) == {"a": jnp.float32, "b": jnp.dtype(dtype)}
    new = optax.apply_updates(w, updates)
    assert float(mixed_loss_at(new)) < float(value)
    value, (updates, state) = update(new, state)
    assert kinds(state) == before


META_W = np.array([1.0, -0.5])  # the parameters of the meta-gradient test


def meta_loss(w, theta):
    return theta * jnp.sum((w - 2.0) ** 2) + jnp.sum(w**4)


def meta_gradient(step, theta, interval: bool) -> float:
    """The oracle of `test_a_gradient_through_an_update_follows_the_searchs_rule`, by hand in
    float64 (JAX's AD is what that test checks): the derivative at ``theta`` of
    ``sum(t d) + t = t (sum(d) + 1)``, where ``f = meta_loss`` at ``w = META_W``,
    ``d(theta) = -grad_w f(w, theta) = -(2 theta (w - 2) + 4 w^3)``, ``d' = -2 (w - 2)``, and
    ``t(theta)`` the search's step: ``t' = 0`` for an inexact search, and for an interval
    search the implicit function theorem on ``phi_t(t*, theta) = 0``, with
    ``phi(t, theta) = f(w + t d(theta), theta)`` and ``x = w + t d``:
    ``t' = -phi_t,theta / phi_tt``,
    ``phi_tt = sum((2 theta + 12 x^2) d^2)``,
    ``phi_t,theta = sum((2 (x - 2) + (2 theta + 12 x^2) t d') d + (2 theta (x - 2) + 4 x^3) d')``.
    """
    w = META_W
    d = -(2 * theta * (w - 2) + 4 * w**3)
    d_theta = -2 * (w - 2)
    slope = 0.0  # the step's derivative t'
    if interval:
        x = w + step * d
        gradient, curvature = 2 * theta * (x - 2) + 4 * x**3, 2 * theta + 12 * x**2
        phi_tt = np.sum(curvature * d**2)
        phi_t_theta = np.sum((2 * (x - 2) + curvature * step * d_theta) * d + gradient * d_theta)
        slope = -phi_t_theta / phi_tt
    return float(slope * (np.sum(d) + 1) + step * np.sum(d_theta))


@one_per_kind
def test_a_gradient_through_an_update_follows_the_searchs_rule(name):
    """`jax.grad` through an update (a meta-gradient with respect to a parameter of the
    loss) is that of ``t d`` with the step ``t`` differentiated by the search's own rule:
    a constant for the inexact searches, the implicit derivative ``-phi_t,theta / phi_tt``
    of the exact minimiser along the line for the interval searches (`meta_gradient`). Under
    jit and eagerly, forward and reverse mode, and with jaxls.ad: never an error or a NaN.
    (Before, the update was under `jax.lax.stop_gradient`: the gradient was silently 0.)"""
    opt = RULES[name]()
    w = jnp.asarray(META_W, jnp.float32)

    def total(theta):
        value, grad = jax.value_and_grad(meta_loss)(w, theta)
        loss = lambda v: meta_loss(v, theta)
        out, state = opt.update(-grad, opt.init(w), w, value=value, grad=grad, value_fn=loss)
        return jnp.sum(out) + state.info.step, state.info.step

    theta0 = 1.5
    step = float(total(theta0)[1])
    assert step > 0
    expected = meta_gradient(step, theta0, name in INTERVAL_RULES)
    assert expected != 0.0
    value_only = lambda theta: total(theta)[0]
    for got in (
        jax.jit(jax.grad(value_only))(theta0),
        jax.grad(value_only)(theta0),
        jax.jvp(value_only, (theta0,), (1.0,))[1],
        jaxls.ad.grad(value_only)(theta0),
    ):
        np.testing.assert_allclose(float(got), expected, rtol=1e-4)


# --- has_aux ----------------------------------------------------------------------------------


def with_aux(w, target):
    residual = w - target
    return jnp.sum(residual**2) + 0.25 * jnp.sum(residual**4), {"residual": residual, "n": 2}


@one_per_kind
def test_has_aux_keeps_the_aux_of_the_new_parameters_under_jit_and_vmap(name):
    opt = optax.chain(optax.sgd(1.0), RULES[name](has_aux=True))

    def train(w, target):
        state = opt.init(w)
        _, aux = with_aux(w, target)
        state = optax.tree.set(state, aux=aux)  # the structure, fixed before the scan

        def body(carry, _):
            w, state = carry
            (value, _), grad = jax.value_and_grad(with_aux, has_aux=True)(w, target)
            updates, state = opt.update(
                grad, state, w, value=value, grad=grad, value_fn=with_aux, target=target
            )
            return (optax.apply_updates(w, updates), state), None

        (w, state), _ = jax.lax.scan(body, (w, state), length=3)
        return w, optax.tree.get(state, "aux")

    # Data and results in NumPy (float32): the checks run no eager JAX operation.
    w0 = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]], np.float32)
    targets = np.array([[1.0, 2.0], [0.0, 0.0], [0.5, 0.5]], np.float32)  # the last: stationary
    ws, auxes = jax.tree.map(np.asarray, jax.jit(jax.vmap(train))(w0, targets))
    alone = jax.jit(train)
    for i in range(3):
        w, aux = jax.tree.map(np.asarray, alone(w0[i], targets[i]))
        np.testing.assert_allclose(ws[i], w, **F32)
        np.testing.assert_allclose(aux["residual"], w - targets[i], **F32)
        np.testing.assert_allclose(auxes["residual"][i], ws[i] - targets[i], **F32)
        assert int(aux["n"]) == 2 and int(auxes["n"][i]) == 2
    assert float(np.abs(ws[0] - targets[0]).max()) < 0.5  # it moved


@every_rule
def test_has_aux_aux_is_none_until_the_first_update_and_errors_name_the_rule(name):
    opt = RULES[name](has_aux=True)
    w, target = jnp.zeros(2), jnp.ones(2)
    state = opt.init(w)
    assert state.aux is None
    (value, _), grad = jax.value_and_grad(with_aux, has_aux=True)(w, target)
    plain = lambda w: jnp.sum(w**2)
    with pytest.raises(TypeError, match=r"has_aux=True.*must return a pair"):
        opt.update(-grad, state, w, value=value, grad=grad, value_fn=plain)
    no_aux = RULES[name]()
    with pytest.raises(TypeError, match=r"returned a tuple.*pass `has_aux=True`"):
        no_aux.update(-grad, no_aux.init(w), w, value=value, grad=grad, value_fn=with_aux,
                      target=target)  # fmt: skip


# --- the common mistakes, each an error naming the call and the fix ------------------------


@every_rule
def test_an_extra_argument_value_fn_does_not_take_is_an_error(name):
    """`update(..., lables=y)` for a `value_fn(w, labels)`: a TypeError naming the argument
    and value_fn's parameters, as optax's own searches raise (they used to drop it)."""

    def loss(w, labels):
        return jnp.sum((w - labels) ** 2)

    opt = RULES[name]()
    w, y = jnp.zeros(2), jnp.array([1.0, 3.0])
    value, grad = jax.value_and_grad(loss)(w, y)
    with pytest.raises(TypeError, match=r"takes no argument `lables`.*\(w, labels\)"):
        opt.update(-grad, opt.init(w), w, value=value, grad=grad, value_fn=loss, lables=y)
    # optax's own search raises a TypeError too.
    zoom = optax.scale_by_zoom_linesearch(10)
    with pytest.raises(TypeError, match="lables"):
        zoom.update(-grad, zoom.init(w), w, value=value, grad=grad, value_fn=loss, lables=y)


@every_rule
def test_update_without_value_grad_or_value_fn_says_how_to_call_it(name):
    opt = RULES[name]()
    w = jnp.ones(2)
    grad = jax.grad(quartic)(w)
    with pytest.raises(TypeError, match=r"missing: `value`, `grad`, `value_fn`.*"
                       r"value_and_grad_from_state"):  # fmt: skip
        opt.update(-grad, opt.init(w), w)
    with pytest.raises(TypeError, match=r"missing: `value_fn`"):
        opt.update(-grad, opt.init(w), w, value=quartic(w), grad=grad)


@every_rule
def test_a_vector_objective_is_an_error_naming_the_rule(name):
    opt = RULES[name]()
    w = jnp.ones(2)
    vector = lambda w: (w - 1.0) ** 2
    grad = jax.grad(lambda w: jnp.sum(vector(w)))(w)
    with pytest.raises(TypeError, match=r"jaxls\.optax\..*update.*real scalar.*shape"):
        opt.update(-grad, opt.init(w), w, value=jnp.sum(vector(w)), grad=grad, value_fn=vector)


# --- gradients beyond sqrt(float32 max) (issue 9, item 14) ---------------------------------


STEEP_START = 5.0  # sum(exp(10 w)) at w = 5: value 1.6e22, |grad|^2 = 2.4e45 > 3.4e38


def steep(w):
    return jnp.sum(jnp.exp(10.0 * w))


@every_rule
def test_a_finite_gradient_beyond_sqrt_of_float32_max_gives_usable_steps(name):
    """`<grad, -grad>` overflows float32 here. No rule may report NONFINITE for a finite
    value and gradient; every one moves within 25 updates, never uphill. Wolfe, Hager-Zhang
    and the interval searches move at the first; Armijo needs `t <= 6e-20` here, which
    backtracking from `step_init=1` cannot reach within its budget, so backtracking,
    Goldstein, Zhang-Hager and SLS fail and restart 10x smaller (the failure policy) and
    move at updates 13, 16, 13 and 20 (measured)."""
    interval = {"step_max": 1.0} if name in INTERVAL_RULES else {}
    opt = optax.chain(optax.sgd(1.0), RULES[name](**interval))

    def update(carry, _):
        w, state = carry
        value, grad = jax.value_and_grad(steep)(w)
        updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=steep)
        return (optax.apply_updates(w, updates), state), (value, state[1].info.status)

    w0 = jnp.full(3, STEEP_START)
    run = jax.jit(lambda w: jax.lax.scan(update, (w, opt.init(w)), length=25))
    (w, _), (values, statuses) = run(w0)
    assert not np.any(np.asarray(statuses) == Status.NONFINITE), statuses
    values = np.append(np.asarray(values), float(steep(w)))
    assert np.all(np.isfinite(values)) and np.all(np.diff(values) <= 0)
    assert values[-1] < values[0], values
