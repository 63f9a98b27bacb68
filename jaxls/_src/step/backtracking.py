"""Armijo backtracking (Nocedal & Wright 2006, Algorithm 3.1), optionally interpolating."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src import checks, loop
from jaxls._src.results import RUNNING, LineSearchResult, Status
from jaxls._src.step import common
from jaxls._src.step.conditions import armijo_condition
from jaxls._src.step.interpolate import cubic_minimizer, quadratic_minimizer
from jaxls._src.step.line import LinePoint

# Safeguard of an interpolated step: within [LOW, HIGH] times the step it replaces.
LOW, HIGH = 0.1, 0.5


class BacktrackingState(NamedTuple):
    trial: LinePoint  # the last step tried (the origin before the first)
    accepted: LinePoint  # the result: the origin until a step satisfies Armijo
    num_evals: jax.Array
    status: jax.Array


def next_step(origin: LinePoint, trial: LinePoint, shrink, interpolate: bool):
    """``shrink * t``, or the safeguarded minimiser of a model of ``phi`` on ``[0, t]``.

    The model is the cubic through ``phi(0), phi'(0), phi(t), phi'(t)`` (every evaluation
    gives the slope too), else the quadratic through ``phi(0), phi'(0), phi(t)``; either is
    clipped to ``[0.1 t, 0.5 t]``. A non-finite ``phi(t)`` always shrinks.
    """
    t = trial.step
    plain = shrink * t
    if not interpolate:
        return plain
    cubic = cubic_minimizer(0.0, origin.value, origin.slope, t, trial.value, trial.slope)
    quadratic = quadratic_minimizer(0.0, origin.value, origin.slope, t, trial.value)
    model = jnp.where(jnp.isfinite(cubic), cubic, quadratic)
    model = jnp.clip(model, LOW * t, HIGH * t)
    usable = jnp.isfinite(model) & jnp.isfinite(trial.value) & jnp.isfinite(trial.slope)
    return jnp.where(usable, model, plain)


def backtracking(
    fun: Callable | None,
    x,
    direction,
    *,
    value=None,
    grad=None,
    value_and_grad: Callable | None = None,
    step_init=1.0,
    reference=None,
    c1: float = 1e-4,
    shrink: float = 0.5,
    interpolate: bool = False,
    max_evals: int = 30,
) -> LineSearchResult:
    r"""Backtracking search for the Armijo condition ``phi(t) <= phi(0) + c1 t phi'(0)``.

    Tries ``t = step_init`` and shrinks it (``t <- shrink t``, the lecture's rule, or by
    safeguarded interpolation) until the condition holds. ``phi(t) = f(x + t d)``.

    Args:
      fun: scalar objective of a pytree (unused if ``value_and_grad`` is given).
      x: the current point, a pytree of float32 or float64 arrays.
      direction: a pytree like ``x``; must be a descent direction.
      value: ``f(x)``, if known (saves an evaluation together with ``grad``).
      grad: ``grad f(x)``, if known.
      value_and_grad: ``x -> (f(x), grad f(x))``, e.g. the library's own AD; defaults to
        ``jax.value_and_grad(fun)``.
      step_init: first trial step, ``> 0`` (may be traced).
      reference: the value the Armijo test compares against in place of ``phi(0)``:
        ``phi(t) <= reference + c1 t phi'(0)``. Non-monotone rules pass a reference above
        ``f(x)`` (e.g. Zhang & Hager's average of past values). It is raised to ``phi(0)`` if
        below it, and ignored if not finite. Default: ``phi(0)`` (the monotone rule).
      c1: Armijo constant in ``(0, 1)``.
      shrink: factor in ``(0, 1)`` applied to a rejected step.
      interpolate: if True, the next step minimises the cubic (else quadratic) model of
        ``phi`` through the values and slopes at 0 and ``t``, safeguarded to
        ``[0.1 t, 0.5 t]`` (Nocedal & Wright, sec. 3.5).
      max_evals: hard cap on evaluations of ``value_and_grad``, the one at ``x`` included.

    Returns:
      A `LineSearchResult`. ``status``: ``SUCCESS``; ``NOT_DESCENT`` (``phi'(0) >= 0``:
      step 0, nothing tried); ``NONFINITE`` (``f`` or its gradient not finite at ``x``);
      ``MAX_EVALS`` (no step satisfied Armijo: step 0, the original point, is returned,
      never an uphill step); ``INVALID_INPUT`` (traced ``step_init`` not positive).
      NaN or inf at a trial step counts as a rejection: the step shrinks.

    Raises:
      ValueError: ``c1`` or ``shrink`` outside ``(0, 1)``, ``step_init <= 0``,
        ``max_evals < 1``.

    References:
      L. Armijo, Pacific J. Math. 16 (1966); Nocedal & Wright (2006), Algorithm 3.1 and
      sec. 3.5 (interpolation).

    Example:
      >>> import jax.numpy as jnp, jaxls
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> x = jnp.zeros(2)
      >>> res = jaxls.backtracking(f, x, direction=jnp.full(2, 4.0))
      >>> print(float(res.step), float(res.value), int(res.num_evals), bool(res.converged))
      0.25 0.0 4 True
    """
    call = "backtracking"
    checks.open_interval(call, "c1", c1, 0.0, 1.0)
    checks.open_interval(call, "shrink", shrink, 0.0, 1.0)
    start = common.setup(
        call,
        fun,
        x,
        direction,
        value=value,
        grad=grad,
        value_and_grad=value_and_grad,
        step_init=step_init,
        max_evals=max_evals,
    )
    origin = start.origin
    armijo_value = origin.value
    if reference is not None:
        reference = jnp.asarray(reference, start.dtype)
        armijo_value = jnp.where(
            jnp.isfinite(reference), jnp.maximum(reference, origin.value), origin.value
        )

    def step(s: BacktrackingState) -> BacktrackingState:
        first = s.trial.step == 0
        t = jnp.where(first, start.step_init, next_step(origin, s.trial, shrink, interpolate))
        trial = start.phi(t)
        ok = (
            armijo_condition(armijo_value, origin.slope, trial.value, t, c1)
            & jnp.isfinite(trial.value)
            & jnp.isfinite(trial.slope)
        )
        accepted = loop.select(ok, trial, s.accepted)
        status = jnp.where(ok, Status.SUCCESS, RUNNING).astype(jnp.int32)
        return BacktrackingState(trial, accepted, s.num_evals + 1, status)

    state = BacktrackingState(origin, origin, start.num_evals, start.status)
    state = loop.run_while(step, state, max_evals)
    return common.result(start, state.accepted, state.num_evals, state.status)
