"""Armijo backtracking (Nocedal & Wright 2006, Algorithm 3.1), optionally interpolating."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src import checks, loop
from jaxls._src.results import RUNNING, LineSearchResult, PyTree, Status
from jaxls._src.step import common
from jaxls._src.step.conditions import armijo_condition
from jaxls._src.step.interpolate import cubic_minimizer, quadratic_minimizer
from jaxls._src.step.line import LinePoint
from jaxls._src.implicit.step import constant_step

# Safeguard of an interpolated step: within [LOW, HIGH] times the step it replaces.
LOW, HIGH = 0.1, 0.5


class BacktrackingState(NamedTuple):
    trial: LinePoint  # the last step tried (the origin before the first)
    accepted: LinePoint  # the result, with its gradient: the origin until a step is accepted
    num_evals: jax.Array
    num_grads: jax.Array
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


@constant_step
def backtracking(
    fun: Callable | None,
    x: PyTree,
    direction: PyTree,
    *,
    value: float | jax.Array | None = None,
    grad: PyTree | None = None,
    value_and_grad: Callable | None = None,
    has_aux: bool = False,
    step_init: float | jax.Array = 1.0,
    reference: float | jax.Array | None = None,
    c1: float | jax.Array = 1e-4,
    shrink: float | jax.Array = 0.5,
    interpolate: bool = False,
    trial_grads: bool = False,
    epsilon: float | jax.Array | None = None,
    max_evals: int = 30,
) -> LineSearchResult:
    r"""Backtracking search for the Armijo condition ``phi(t) <= phi(0) + c1 t phi'(0)``.

    Tries ``t = step_init`` and shrinks it (``t <- shrink t``, the lecture's rule, or by
    safeguarded interpolation) until the condition holds. ``phi(t) = f(x + t d)``. The
    condition is tested as ``phi(t) - phi(0) <= c1 t phi'(0)`` with ``phi(t) < phi(0)``
    (`jaxls.armijo_condition`), so a step that does not decrease ``f`` is never accepted on
    values. Where the decrease this asks for, ``c1 t |phi'(0)|``, is below the rounding
    allowance ``epsilon |phi(0)|`` (near a minimiser in float32), values cannot show it and
    the step is judged by its slope instead: accepted if ``phi(t) <= phi(0) + epsilon
    |phi(0)|`` and ``0.9 phi'(0) <= phi'(t) <= (2 c1 - 1) phi'(0)``, Hager and Zhang's
    approximate Wolfe conditions (the Armijo condition of the quadratic model through the
    two slopes, and a curvature condition that refuses steps too short to move ``x``).
    Without it an optimiser stalls at the rounding floor of ``f`` above its gradient
    tolerance (L-BFGS in float32: 92 of 100 logistic regressions, ``benchmarks/float32.py``).

    Trials evaluate the value only: one call of ``fun`` each, under `jax.vjp`, and the
    gradient at the accepted step is the transpose of that call's linearisation (as optax's
    backtracking with ``store_grad=True``), no further call; the slope test above uses it
    the same way. With your own ``value_and_grad`` (and ``fun``), that gradient is one more
    call of it. ``num_evals`` counts the calls, ``num_grads`` the gradients computed. With
    ``trial_grads=True`` every trial calls ``value_and_grad`` instead, which lets
    ``interpolate`` use the cubic model. Under `jax.vmap` (and `jax.jit` of a batch) the
    transpose runs at every trial of every member, as a batched `lax.cond` runs both
    branches: values-only costs about what ``trial_grads=True`` costs there.

    Derivatives: the accepted step is held constant (its derivative is 0); ``value``,
    ``grad``, ``slope`` and ``aux`` are differentiated at ``x + step d`` with respect to
    ``x``, ``direction`` and what ``fun`` (or ``value_and_grad``) closes over, by one JVP of
    ``value_and_grad`` there, with `jax.grad`, `jax.jvp` and ``jaxls.ad`` alike; never
    through the loop, never a NaN from it.

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
      epsilon: relative rounding allowance, ``>= 0`` (may be traced), of the slope test
        above. ``None`` (default): 16 ulps of the search's dtype (``1.9e-6`` in float32,
        ``3.6e-15`` in float64), as `jaxls.wolfe`'s. ``0``: values only, never the slope.
      max_evals: hard cap on calls of the objective, the one at ``x`` included (with your
        own ``value_and_grad`` and value-only trials, accepting a trial takes two calls, so
        ``max_evals >= 2``).

    Returns:
      A `LineSearchResult`. ``status``: ``SUCCESS``; ``NOT_DESCENT`` (``phi'(0) >= 0``:
      step 0, nothing tried); ``NONFINITE`` (``f`` or its gradient not finite at ``x``, or
      the gradient not finite at the accepted step: step 0 returned); ``MAX_EVALS`` (no
      step satisfied Armijo); ``ROUNDING`` (a step was rejected whose predicted decrease
      ``t |phi'(0)|`` is below the rounding of ``phi(0)``: shorter steps cannot show a
      decrease either); ``INVALID_INPUT`` (a traced ``c1``, ``shrink``, ``epsilon`` or
      ``step_init`` out of range, or a direction not finite). Every failure returns step 0,
      the original point, never an uphill step. NaN or inf at a trial step counts as a
      rejection: the step shrinks (``met_nonfinite`` says so).

    Raises:
      ValueError: ``c1`` or ``shrink`` outside ``(0, 1)``, ``epsilon < 0``, ``step_init <=
        0``, ``max_evals < 1`` (``< 2`` above), or ``value``/``grad`` not shaped like
        ``f(x)``/``x``.
      TypeError: ``fun`` not callable, returning a non-scalar or complex value; integer
        ``x`` or ``direction``; ``interpolate``, ``trial_grads`` or ``has_aux`` not a bool.

    References:
      L. Armijo, Pacific J. Math. 16 (1966); Nocedal & Wright (2006), Algorithm 3.1 and
      sec. 3.5 (interpolation); W. W. Hager and H. Zhang, SIAM J. Optim. 16 (2005) 170-192,
      eq. (4.1) (the approximate Wolfe conditions).

    Example:
      >>> import jax.numpy as jnp, jaxls
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> x = jnp.zeros(2)
      >>> res = jaxls.backtracking(f, x, direction=jnp.full(2, 4.0))
      >>> print(float(res.step), float(res.value), int(res.num_evals), int(res.num_grads))
      0.25 0.0 4 2
      >>> print(res.message)
      converged: the requested tolerance or condition is met
    """
    call = "backtracking"
    interpolate = checks.boolean(call, "interpolate", interpolate)
    trial_grads = checks.boolean(call, "trial_grads", trial_grads)
    checks.int_at_least(call, "max_evals", max_evals, 1)
    valid = checks.open_interval(call, "c1", c1, 0.0, 1.0) & checks.open_interval(
        call, "shrink", shrink, 0.0, 1.0
    )
    if epsilon is not None:
        valid = valid & checks.at_least(call, "epsilon", epsilon, 0.0)
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
    # A trial and the call of the user's value_and_grad that completes it.
    two_calls = start.gradient_calls and not trial_grads
    if two_calls and max_evals < 2:
        raise ValueError(
            f"`jaxls.{call}(max_evals={max_evals})`: with value-only trials and your own "
            "`value_and_grad`, accepting a trial takes two calls (its value, then its "
            "gradient): pass `max_evals >= 2`, or `trial_grads=True`."
        )
    rounding = common.rounding(start, epsilon, c1)
    c1, shrink = start.constant(c1), start.constant(shrink)
    origin = start.origin
    armijo_value = origin.value
    if reference is not None:
        reference = start.constant(reference)
        armijo_value = jnp.where(
            jnp.isfinite(reference), jnp.maximum(reference, origin.value), origin.value
        )

    def step(s: BacktrackingState) -> BacktrackingState:
        first = s.trial.step == 0
        t = jnp.where(first, start.step_init, next_step(origin, s.trial, shrink, interpolate))
        trial = start.phi_trial(t, trial_grads)
        value, finite = trial.point.value, trial.finite
        exact = finite & armijo_condition(armijo_value, origin.slope, value, t, c1)
        # Where the decrease asked for is rounding noise, the slope decides (`Rounding`).
        near = (
            finite & ~exact & rounding.unresolved(t) & (value <= armijo_value + rounding.allowance)
        )
        full, extra, grads = trial.complete(exact | near)
        calls = 1 + extra
        ok = (exact & jnp.isfinite(full.slope)) | (near & rounding.holds(armijo_value, full))
        # A finite value with a gradient that is not: nothing to return but the origin.
        broken = exact & ~jnp.isfinite(full.slope)
        # The decrease t |phi'(0)| is lost in rounding phi(0): no shorter step can show one.
        lost = finite & ~ok & (origin.value + t * origin.slope == origin.value)
        status = jnp.where(
            ok,
            Status.SUCCESS,
            jnp.where(broken, Status.NONFINITE, jnp.where(lost, Status.ROUNDING, RUNNING)),
        )
        return BacktrackingState(
            full._replace(grad=None, aux=None),
            loop.select(ok, full, s.accepted),
            s.num_evals + calls,
            s.num_grads + grads,
            status.astype(jnp.int32),
            s.met_nonfinite | ~finite | broken,
        )

    nothing = jnp.zeros((), bool)
    state = BacktrackingState(
        origin._replace(grad=None, aux=None),
        origin,
        start.num_evals,
        start.num_evals,
        start.status,
        nothing,
    )
    state = common.run_while(step, state, max_evals - 1 if two_calls else max_evals, call)
    return common.result(
        start,
        state.accepted,
        state.num_evals,
        state.status,
        num_grads=state.num_grads,
        met_nonfinite=state.met_nonfinite,
    )
