"""The update every jaxls optax rule makes, written once: evaluate, check the direction,
search, apply the failure policy, record. A rule supplies its search and its state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import optax

from jaxls._src.adapters import common
from jaxls._src.adapters.common import Restart
from jaxls._src.results import Status


class Searched(Protocol):
    """What a rule's search returns (a `jaxls.LineSearchResult` is one): the step (0 unless
    it succeeded), its counts and status, and the objective's aux there (None without
    ``has_aux``). ``value`` and ``grad`` at the accepted point are read by rules that keep
    them."""

    @property
    def step(self) -> jax.Array: ...
    @property
    def num_evals(self) -> jax.Array: ...
    @property
    def num_grads(self) -> jax.Array: ...
    @property
    def status(self) -> jax.Array: ...
    @property
    def aux(self) -> Any: ...


def update(
    call: str,
    state: Any,
    updates: Any,
    params: Any,
    value: Any,
    grad: Any,
    value_fn: Callable | None,
    extra_args: dict,
    *,
    has_aux: bool,
    restart: Restart,
    search: Callable[..., Searched],
    new_state: Callable[..., Any],
) -> tuple[Any, Any]:
    """One update of a rule: ``(step * direction, new state)``, differentiable with the step
    held constant (`jaxls._src.implicit.step`): the search's own rule.

    1. Check the protocol (``value``, ``grad``, ``value_fn`` given) and the objective
       ``f = value_fn(., **extra_args)``.
    2. The direction: ``updates``, or ``-grad`` if it does not descend (``fallback``).
    3. ``res = search(f, params, direction, value, grad, state)``.
    4. Failure policy: step 0 and ``NONFINITE`` unless ``value`` and ``grad`` are finite; after
       a failed search (step 0 along a descent direction) the next starts from
       ``failure_shrink`` times this one's start, except after ``ROUNDING`` (nothing along the
       direction that the dtype resolves is lower: a shorter start cannot help), which
       restarts as after a success; at a stationary point (step 0 along ``-grad``, no failure)
       the start is kept.
    5. Record a `LineSearchInfo`, and build the state with ``new_state(state, res, value,
       start=, info=, aux=)`` (``value`` in the state's dtype; ``aux`` the accepted point's,
       or the previous one if the parameters did not move), cast to ``state``'s dtypes.

    ``state`` has ``start`` (the next search's start) and ``info``.
    """
    common.require_protocol(call, params, value, grad, value_fn)
    assert value_fn is not None
    f = common.objective(call, value_fn, extra_args, params, has_aux)
    dtype = state.start.dtype
    direction, fallback = common.descent_direction(updates, grad, dtype)
    value = jnp.asarray(value).astype(dtype)
    with common.explicit_axes_advice(call):
        res = search(f, params, direction, value, grad, state)
    start_finite = common.finite_start(value, grad)
    step = jnp.where(start_finite, res.step, 0).astype(dtype)
    status = jnp.where(start_finite, res.status, Status.NONFINITE)
    info, failed = common.record(state.info, step, res.num_evals, res.num_grads, status, fallback)
    start = common.next_start(step, failed & (status != Status.ROUNDING), state.start, restart)
    stationary = (step == 0) & ~failed
    start = jnp.where(stationary, state.start, start)
    aux = common.keep_aux(step > 0, res.aux, state.aux)
    state_out = new_state(state, res, value, start=start, info=info, aux=aux)
    state_out = common.finish(state_out, state)
    return common.scale_accepted(step, direction), state_out


__all__ = ["Searched", "update"]


def transformation(
    call: str,
    init_fn: Callable,
    *,
    has_aux: bool,
    restart: Restart,
    search: Callable,
    new_state: Callable,
) -> optax.GradientTransformationExtraArgs:
    """The optax transformation of a rule: ``init_fn``, and `update` with the rule's parts
    behind optax's ``update(updates, state, params, *, value, grad, value_fn, **extra)``."""

    def update_fn(
        updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args
    ):
        return update(
            call, state, updates, params, value, grad, value_fn, extra_args,
            has_aux=has_aux, restart=restart, search=search, new_state=new_state,
        )  # fmt: skip

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
