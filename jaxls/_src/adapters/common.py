"""What every optax adapter shares: routing ``extra_args``, the direction, the next first step."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src import checks
from jaxls._src.results import Status
from jaxls._src.step.line import tree_vdot


class LineSearchInfo(NamedTuple):
    """What the last search of an adapter did, kept in its state for logging.

    Attributes:
      step: the step accepted along the searched direction (0 after a failed search).
      num_evals: evaluations the last search made (``int32``).
      total_evals: evaluations made by every search so far (``int32``).
      status: the last search's `jaxls.Status` code (``int32``).
      fallback: True when ``updates`` was not a descent direction and the search ran along
        ``-grad`` instead.
    """

    step: jax.Array
    num_evals: jax.Array
    total_evals: jax.Array
    status: jax.Array
    fallback: jax.Array


def float_dtype(params) -> Any:
    """The real floating dtype that steps and values of ``params`` are kept in."""
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise ValueError("`jaxls.optax`: `params` has no leaves.")
    dtype = jnp.result_type(*leaves)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`jaxls.optax`: `params` must be real floating, got {dtype}.")
    return dtype


def initial_info(dtype) -> LineSearchInfo:
    zero = jnp.zeros((), jnp.int32)
    return LineSearchInfo(jnp.zeros((), dtype), zero, zero, zero, jnp.zeros((), bool))


def routed(value_fn: Callable, extra_args: dict) -> dict:
    """The keyword arguments of ``extra_args`` that ``value_fn`` accepts; the rest are dropped.

    A ``value_fn`` with ``**kwargs``, or one whose signature cannot be read, gets them all.
    Its first parameter (the parameters being optimised) is never filled from ``extra_args``.
    """
    try:
        parameters = list(inspect.signature(value_fn).parameters.values())
    except (TypeError, ValueError):
        return dict(extra_args)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(extra_args)
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {p.name for p in parameters[1:] if p.kind in keyword}
    return {k: v for k, v in extra_args.items() if k in names}


def objective(value_fn: Callable, extra_args: dict) -> Callable:
    """``params -> value_fn(params, **routed kwargs)``."""
    kwargs = routed(value_fn, extra_args)
    return lambda params: value_fn(params, **kwargs)


def descent_direction(updates, grad):
    """``updates`` if it is a descent direction, else ``-grad``; and whether it fell back.

    ``<grad, updates> >= 0`` (a stale quasi-Newton model, an ascent direction, a NaN) would
    make any search return step 0; ``-grad`` always descends unless ``grad`` is 0.
    """
    grad = jax.tree.map(lambda g, u: jnp.asarray(g).astype(u.dtype), grad, updates)
    fallback = ~(tree_vdot(grad, updates) < 0)
    direction = jax.tree.map(lambda u, g: jnp.where(fallback, -g, u), updates, grad)
    return direction, fallback


class Restart(NamedTuple):
    """How the next search of an adapter starts (see `next_step_init`)."""

    step_init: float  # the first search's start, already capped at step_max
    growth: float | None
    failure_shrink: float
    step_max: float | None


def next_step_init(step, failed, previous_init, restart: Restart):
    """Where the next search starts.

    After a search that made progress: ``step_init`` (``growth=None``), or the accepted step
    times ``growth``, capped at ``step_max``. After a failed search (step 0 along a descent
    direction): ``failure_shrink`` times the step it started from, so that a run never
    repeats the same failure for ever; if that underflows, ``step_init`` again.
    """
    step_init, growth, failure_shrink, step_max = restart
    dtype = previous_init.dtype
    if growth is None:
        success = jnp.asarray(step_init, dtype)
    else:
        success = jnp.asarray(growth, dtype) * step
    if step_max is not None:
        success = jnp.minimum(success, jnp.asarray(step_max, dtype))
    new = jnp.where(failed, jnp.asarray(failure_shrink, dtype) * previous_init, success)
    usable = jnp.isfinite(new) & (new >= jnp.finfo(dtype).tiny)
    return jnp.where(usable, new, jnp.asarray(step_init, dtype)).astype(dtype)


def grad_norm(grad) -> jax.Array:
    """The Euclidean norm of a gradient pytree."""
    return jnp.sqrt(tree_vdot(grad, grad).real)


__all__ = [
    "LineSearchInfo",
    "Restart",
    "check_restart",
    "descent_direction",
    "float_dtype",
    "grad_norm",
    "initial_info",
    "next_step_init",
    "objective",
    "record",
    "routed",
    "scale_accepted",
]


# Helpers of the step-size rules `stochastic_armijo` and `nonmonotone_armijo`.


def check_restart(call: str, *, step_init, growth, failure_shrink, step_max) -> Restart:
    """Eager checks of the restart constants (errors name ``call``), and the `Restart` they
    make: the first search starts from ``min(step_init, step_max)``."""
    checks.positive(call, "step_init", step_init)
    if growth is not None:
        checks.finite(call, "growth", growth)
        if not float(growth) >= 1.0:
            raise ValueError(f"`jaxls.{call}(growth={growth!r})`: `growth` must be >= 1 or None.")
    checks.open_interval(call, "failure_shrink", failure_shrink, 0.0, 1.0)
    if step_max is not None:
        checks.positive(call, "step_max", step_max)
    first = min(step_init, math.inf if step_max is None else step_max)
    return Restart(first, growth, failure_shrink, step_max)


def record(previous: LineSearchInfo, step, num_evals, status, fallback):
    """The `LineSearchInfo` of the search that just ran, and whether it failed.

    A search fails when it returns step 0 along a descent direction; step 0 along ``-grad``
    with ``NOT_DESCENT`` is no failure: ``grad`` is 0 (a stationary point).
    """
    stationary = fallback & (status == Status.NOT_DESCENT)
    failed = (step == 0) & ~stationary
    info = LineSearchInfo(
        step=step,
        num_evals=num_evals,
        total_evals=previous.total_evals + num_evals,
        status=status,
        fallback=fallback,
    )
    return info, failed


def scale_accepted(step, direction):
    """``step * direction``, each leaf keeping its dtype, and exact zeros where ``step`` is 0:
    a failed search along a non-finite direction leaves the parameters unchanged."""
    return jax.tree.map(lambda d: jnp.where(step > 0, jnp.asarray(step, d.dtype) * d, 0), direction)
