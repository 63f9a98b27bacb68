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
    met_nonfinite: jax.Array  # a trial's value (or slope) was NaN or inf


def next_step(origin: LinePoint, trial: LinePoint, shrink, interpolate: bool):
    """``shrink * t``, or the safeguarded minimiser of a model of ``phi`` on ``[0, t]``.

    The model is the cubic through ``phi(0), phi'(0), phi(t), phi'(t)`` when the trial's
    slope is known (``trial_grads=True``), else the quadratic through ``phi(0), phi'(0),
    phi(t)``; either is clipped to ``[0.1 t, 0.5 t]``. A non-finite ``phi(t)``, or a model
    without a minimiser, shrinks by ``shrink``.
    """
    t = trial.step
    plain = shrink * t
    if not interpolate:
        return plain
    cubic = cubic_minimizer(0.0, origin.value, origin.slope, t, trial.value, trial.slope)
    quadratic = quadratic_minimizer(0.0, origin.value, origin.slope, t, trial.value)
    model = jnp.where(jnp.isfinite(cubic), cubic, quadratic)
    model = jnp.clip(model, LOW * t, HIGH * t)
    usable = jnp.isfinite(model) & jnp.isfinite(trial.value)
    return jnp.where(usable, model, plain)


def backtracking(
    fun: Callable | None,
    x,
    direction,
    *,
    value=None,
    grad=None,
    value_and_grad: Callable | None = None,
    has_aux: bool = False,
    step_init=1.0,
    reference=None,
    c1=1e-4,
    shrink=0.5,
    interpolate: bool = False,
    trial_grads: bool = False,
    max_evals: int = 30,
) -> LineSearchResult:
    r"""Backtracking search for the Armijo condition ``phi(t) <= phi(0) + c1 t phi'(0)``.

    Tries ``t = step_init`` and shrinks it (``t <- shrink t``, the lecture's rule, or by
    safeguarded interpolation) until the condition holds. ``phi(t) = f(x + t d)``. The
    condition is tested as ``phi(t) - phi(0) <= c1 t phi'(0)`` with ``phi(t) < phi(0)``
    (`jaxls.armijo_condition`), so a step that does not decrease ``f`` is never accepted.

    Trials evaluate the value only (one call of ``fun`` each), and the gradient is computed
    once, at the accepted step (one more call of ``value_and_grad``), as optax's and
    jaxopt's backtracking do: ``num_evals`` counts every call, ``num_grads`` those that
    computed a gradient. With ``trial_grads=True`` every trial calls ``value_and_grad``
    instead, which costs less when the first step is usually accepted (quasi-Newton
    directions) and lets ``interpolate`` use the cubic model.

    Args:
      fun: scalar objective of a pytree, real-valued (``(value, aux)`` with ``has_aux``);
        may be None if ``value_and_grad`` is given (value-only trials then call it and
        discard the gradient).
      x: the current point, a pytree of floating arrays (real or complex) or a Python float.
      direction: a pytree like ``x``; must be a descent direction. For complex leaves the
        slope is ``Re sum(g d)`` with ``g = jax.grad(f)``; ``-conj(g)`` descends.
      value: ``f(x)``, if known (saves an evaluation together with ``grad``).
      grad: ``grad f(x)``, if known.
      value_and_grad: ``x -> (f(x), grad f(x))``, e.g. the library's own AD; defaults to
        ``jax.value_and_grad(fun, has_aux=has_aux)``.
      has_aux: ``fun`` returns ``(value, aux)``; the result's ``aux`` is the aux at the
        returned step (zeros of its shape if step 0 is returned and ``value`` and ``grad``
        were given: ``aux`` at ``x`` was then never computed).
      step_init: first trial step, ``> 0`` (may be traced).
      reference: the value the Armijo test compares against in place of ``phi(0)``:
        ``phi(t) <= reference + c1 t phi'(0)``. Non-monotone rules pass a reference above
        ``f(x)`` (e.g. Zhang & Hager's average of past values). It is raised to ``phi(0)`` if
        below it, and ignored if not finite. Default: ``phi(0)`` (the monotone rule).
      c1: Armijo constant in ``(0, 1)`` (may be traced).
      shrink: factor in ``(0, 1)`` applied to a rejected step (may be traced).
      interpolate: if True, the next step minimises the quadratic model of ``phi`` through
        ``phi(0), phi'(0), phi(t)`` (the cubic through the values and slopes at 0 and ``t``
        with ``trial_grads=True``), safeguarded to ``[0.1 t, 0.5 t]`` (Nocedal & Wright,
        sec. 3.5).
      trial_grads: evaluate the gradient at every trial (above). Default False.
      max_evals: hard cap on calls of the objective, the one at ``x`` and the final
        gradient included (without ``trial_grads``, trials stop when one call is left, so
        ``max_evals >= 2``).

    Returns:
      A `LineSearchResult`. ``status``: ``SUCCESS``; ``NOT_DESCENT`` (``phi'(0) >= 0``:
      step 0, nothing tried); ``NONFINITE`` (``f`` or its gradient not finite at ``x``, or
      the gradient not finite at the accepted step: step 0 returned); ``MAX_EVALS`` (no
      step satisfied Armijo); ``ROUNDING`` (a step was rejected whose predicted decrease
      ``t |phi'(0)|`` is below the rounding of ``phi(0)``: shorter steps cannot show a
      decrease either); ``INVALID_INPUT`` (a traced ``c1``, ``shrink`` or ``step_init`` out of
      range, or a direction not finite). Every failure returns step 0, the original point,
      never an uphill step. NaN or inf at a trial step counts as a rejection: the step
      shrinks (``met_nonfinite`` says so).

    Raises:
      ValueError: ``c1`` or ``shrink`` outside ``(0, 1)``, ``step_init <= 0``,
        ``max_evals < 1``, or ``value``/``grad`` not shaped like ``f(x)``/``x``.
      TypeError: ``fun`` not callable, returning a non-scalar or complex value; integer
        ``x`` or ``direction``; ``interpolate``, ``trial_grads`` or ``has_aux`` not a bool.

    References:
      L. Armijo, Pacific J. Math. 16 (1966); Nocedal & Wright (2006), Algorithm 3.1 and
      sec. 3.5 (interpolation).

    Example:
      >>> import jax.numpy as jnp, jaxls
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> x = jnp.zeros(2)
      >>> res = jaxls.backtracking(f, x, direction=jnp.full(2, 4.0))
      >>> print(float(res.step), float(res.value), int(res.num_evals), int(res.num_grads))
      0.25 0.0 5 2
      >>> print(res.message)
      converged: the requested tolerance or condition is met
    """
    call = "backtracking"
    interpolate = checks.boolean(call, "interpolate", interpolate)
    trial_grads = checks.boolean(call, "trial_grads", trial_grads)
    # Value-only trials keep one call for the gradient at the accepted step.
    checks.int_at_least(call, "max_evals", max_evals, 1 if trial_grads else 2)
    valid = checks.open_interval(call, "c1", c1, 0.0, 1.0) & checks.open_interval(
        call, "shrink", shrink, 0.0, 1.0
    )
    if reference is not None:
        checks.scalar(call, "reference", reference)
    start = common.setup(
        call,
        fun,
        x,
        direction,
        value=value,
        grad=grad,
        value_and_grad=value_and_grad,
        has_aux=has_aux,
        step_init=step_init,
        max_evals=max_evals,
        valid=valid,
    )
    c1, shrink = start.constant(c1), start.constant(shrink)
    origin = start.origin
    armijo_value = origin.value
    if reference is not None:
        reference = start.constant(reference)
        armijo_value = jnp.where(
            jnp.isfinite(reference), jnp.maximum(reference, origin.value), origin.value
        )
    evaluate = start.phi if trial_grads else start.phi_value

    def step(s: BacktrackingState) -> BacktrackingState:
        first = s.trial.step == 0
        t = jnp.where(first, start.step_init, next_step(origin, s.trial, shrink, interpolate))
        trial = evaluate(t)
        finite = jnp.isfinite(trial.value)
        if trial_grads:
            finite = finite & jnp.isfinite(trial.slope)
        ok = finite & armijo_condition(armijo_value, origin.slope, trial.value, t, c1)
        # The decrease t |phi'(0)| is lost in rounding phi(0): no shorter step can show one.
        lost = finite & ~ok & (origin.value + t * origin.slope == origin.value)
        accepted = loop.select(ok, trial, s.accepted)
        status = jnp.where(ok, Status.SUCCESS, jnp.where(lost, Status.ROUNDING, RUNNING))
        return BacktrackingState(
            trial, accepted, s.num_evals + 1, status.astype(jnp.int32), s.met_nonfinite | ~finite
        )

    carried = origin if trial_grads else origin._replace(grad=None)
    nothing = jnp.zeros((), bool)
    state = BacktrackingState(carried, carried, start.num_evals, start.status, nothing)
    # Without trial gradients, one call is kept for the gradient at the accepted step.
    state = common.run_while(step, state, max_evals if trial_grads else max_evals - 1, call)
    return common.finish(
        start,
        state.accepted,
        state.num_evals,
        state.status,
        state.met_nonfinite,
        trial_grads=trial_grads,
    )
