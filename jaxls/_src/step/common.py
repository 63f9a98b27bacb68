"""What every step-size search shares: input handling, the starting point, the result."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src import checks
from jaxls._src.loop import select
from jaxls._src.results import RUNNING, LineSearchResult, Status
from jaxls._src.step.line import LinePoint, restrict, tree_vdot


class Start(NamedTuple):
    """A validated search: ``phi``, its value at ``t = 0`` and the initial status."""

    phi: Callable  # t -> LinePoint, one evaluation
    origin: LinePoint  # t = 0
    step_init: jax.Array  # the first trial step, at most step_max (0 for members that won't run)
    step_max: jax.Array  # the largest step tried (+inf: no limit)
    num_evals: jax.Array  # 1 if the origin had to be evaluated, else 0
    status: jax.Array  # RUNNING, or INVALID_INPUT / NONFINITE / NOT_DESCENT
    dtype: Any  # of steps, values and slopes


def setup(
    call: str,
    fun: Callable | None,
    x,
    direction,
    *,
    value=None,
    grad=None,
    value_and_grad: Callable | None = None,
    step_init=1.0,
    step_max=math.inf,
    max_evals: int,
) -> Start:
    """Validate, build ``phi``, evaluate the origin if needed, and check for descent.

    ``value_and_grad(x) -> (f(x), grad f(x))`` defaults to ``jax.value_and_grad(fun)``.
    The origin is evaluated (one evaluation, counted) unless both ``value`` and ``grad``
    are given. A member whose ``phi'(0) >= 0`` gets ``NOT_DESCENT``; one whose ``phi(0)`` or
    ``phi'(0)`` is not finite gets ``NONFINITE``; a traced ``step_init`` that is not positive
    and finite, or a traced ``step_max`` that is not positive, gets ``INVALID_INPUT``. Such
    members never run: their result is the origin. ``step_max=None`` means the dtype's
    largest finite number; the first trial step is ``min(step_init, step_max)``.
    """
    if value_and_grad is None:
        if fun is None:
            raise TypeError(f"`jaxls.{call}`: give `fun` or `value_and_grad`.")
        value_and_grad = jax.value_and_grad(fun)
    checks.positive(call, "step_init", step_init)
    if step_max is not None and checks.is_concrete(step_max) and not float(step_max) > 0:
        raise ValueError(f"`jaxls.{call}(step_max={step_max!r})`: `step_max` must be > 0.")
    checks.int_at_least(call, "max_evals", max_evals, 1)
    if jax.tree.structure(x) != jax.tree.structure(direction):
        raise ValueError(
            f"`jaxls.{call}`: `x` and `direction` must be pytrees of the same structure, got "
            f"{jax.tree.structure(x)} and {jax.tree.structure(direction)}."
        )
    leaves = jax.tree.leaves(x)
    if not leaves:
        raise ValueError(f"`jaxls.{call}`: `x` has no leaves.")
    for a, b in zip(leaves, jax.tree.leaves(direction), strict=True):
        if jnp.shape(a) != jnp.shape(b):
            raise ValueError(
                f"`jaxls.{call}`: `x` and `direction` leaves differ in shape: "
                f"{jnp.shape(a)} and {jnp.shape(b)}."
            )
    dtype = jnp.result_type(*leaves, *jax.tree.leaves(direction))
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`jaxls.{call}`: `x` and `direction` must be real floating, got {dtype}.")
    phi = restrict(value_and_grad, x, direction, dtype)

    if value is None or grad is None:
        origin = phi(jnp.zeros((), dtype))
        num_evals = jnp.ones((), jnp.int32)
    else:
        value = jnp.asarray(value).astype(dtype)
        origin = LinePoint(
            jnp.zeros((), dtype), value, tree_vdot(grad, direction).astype(dtype), grad
        )
        num_evals = jnp.zeros((), jnp.int32)

    step_init = jnp.asarray(step_init, dtype)
    step_max = jnp.asarray(jnp.finfo(dtype).max if step_max is None else step_max, dtype)
    status = jnp.where(
        ~(jnp.isfinite(step_init) & (step_init > 0) & (step_max > 0)),
        Status.INVALID_INPUT,
        jnp.where(
            ~(jnp.isfinite(origin.value) & jnp.isfinite(origin.slope)),
            Status.NONFINITE,
            jnp.where(origin.slope < 0, RUNNING, Status.NOT_DESCENT),
        ),
    ).astype(jnp.int32)
    running = status == RUNNING
    first = jnp.where(running, jnp.minimum(step_init, step_max), 0)
    return Start(phi, origin, first, step_max, num_evals, status, dtype)


def result(point: LinePoint, num_evals, status, *, num_grads=None, met_nonfinite=False):
    return LineSearchResult(
        step=point.step,
        value=point.value,
        grad=point.grad,
        slope=point.slope,
        num_evals=jnp.asarray(num_evals, jnp.int32),
        status=jnp.asarray(status, jnp.int32),
        num_grads=jnp.asarray(num_evals if num_grads is None else num_grads, jnp.int32),
        met_nonfinite=jnp.asarray(met_nonfinite, bool),
    )


def origin_result(start: Start) -> LineSearchResult:
    """The result for members that never run: the origin, with the initial status."""
    return result(start.origin, start.num_evals, start.status)


__all__ = ["LinePoint", "Start", "origin_result", "result", "select", "setup"]
