r"""A Goldstein search that grows and shrinks the step (Nocedal & Wright 2006, sec. 3.1).

The Goldstein conditions ask ``phi(t) - phi(0) - t phi'(0) / 2`` to be small relative to the
step: with ``psi(t) = phi(t) - phi(0) - t phi'(0) / 2``, they read
``|psi(t)| <= (1/2 - c) t |phi'(0)|``. A step that is *too short* (Armijo holds, the lower
line does not) has ``psi < 0``; one that is *too long* (Armijo fails, or ``phi`` is not
finite there) has ``psi > 0``. So the search is a safeguarded root search for ``psi`` on a
bracket ``[lo, hi]`` of a too-short and a too-long step, grown geometrically until a
too-long step is known.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src import checks, loop
from jaxls._src.results import RUNNING, LineSearchResult, Status
from jaxls._src.step import common
from jaxls._src.step.conditions import armijo_condition
from jaxls._src.step.line import LinePoint

# An interpolated step keeps at least SAFEGUARD * (hi - lo) away from either end of the bracket.
SAFEGUARD = 0.1


class GoldsteinState(NamedTuple):
    lo: LinePoint  # the longest too-short step (Armijo holds), the result; the origin at first
    hi: LinePoint  # the shortest too-long step, no gradient; step inf until one is found
    trial: jax.Array  # the step evaluated next
    num_evals: jax.Array
    status: jax.Array
    met_nonfinite: jax.Array  # a trial's value (or slope) was NaN or inf


def midline_root(origin: LinePoint, lo: LinePoint, hi: LinePoint):
    """Root in ``(lo, hi)`` of ``psi(t) = q(t) - phi(0) - t phi'(0) / 2``, safeguarded.

    ``q`` is the quadratic through ``phi(lo)``, ``phi'(lo)`` and ``phi(hi)``. As
    ``psi(lo) <= 0 < psi(hi)`` for the model too, it has exactly one root in ``(lo, hi]``,
    taken with the cancellation-free form of the quadratic formula. From ``lo = 0`` this is
    the minimiser of ``q``, the classical interpolation step. The root is clipped to
    ``[lo + 0.1 w, hi - 0.1 w]``, ``w = hi - lo``; bisection if ``phi(hi)`` is not finite.
    """
    w = hi.step - lo.step
    half = origin.slope / 2
    c = lo.value - origin.value - lo.step * half  # psi(lo) <= 0
    b = lo.slope - half  # psi'(lo)
    a = (hi.value - lo.value - lo.slope * w) / (w * w)  # curvature of q
    # sqrt(b^2 - 4ac), scaled so that steep objectives (|phi'| beyond sqrt(finfo.max)) do
    # not overflow to inf.
    scale = jnp.maximum(jnp.abs(b), jnp.sqrt(jnp.abs(a)) * jnp.sqrt(jnp.abs(c)))
    scale = jnp.where(scale > 0, scale, 1)
    bs, as_, cs = b / scale, a / scale, c / scale
    sqrt_disc = scale * jnp.sqrt(jnp.maximum(bs * bs - 4 * as_ * cs, 0))
    # b <= 0 forces a > 0; b > 0 gives a positive denominator: neither form cancels.
    h = jnp.where(b <= 0, (sqrt_disc - b) / (2 * a), -2 * c / (b + sqrt_disc))
    h = jnp.clip(h, SAFEGUARD * w, (1 - SAFEGUARD) * w)
    return lo.step + jnp.where(jnp.isfinite(h), h, w / 2)


def model_slope(origin: LinePoint, lo: LinePoint, hi: LinePoint):
    """``q'(lo)`` for the parabola ``q`` through ``phi(0)``, ``phi(lo)`` and ``phi(hi)``
    (``phi'(0)`` when ``lo = 0``): the slope `midline_root` needs, from values only.

    With divided differences ``f01 = (phi(lo) - phi(0)) / lo`` and
    ``f12 = (phi(hi) - phi(lo)) / (hi - lo)``, ``q'(lo) = f01 + (f12 - f01) lo / hi``.
    """
    at_origin = lo.step == 0
    lo_step = jnp.where(at_origin, 1, lo.step)
    f01 = (lo.value - origin.value) / lo_step
    f12 = (hi.value - lo.value) / (hi.step - lo.step)
    return jnp.where(at_origin, origin.slope, f01 + (f12 - f01) * (lo.step / hi.step))


def goldstein(
    fun: Callable | None,
    x,
    direction,
    *,
    value=None,
    grad=None,
    value_and_grad: Callable | None = None,
    has_aux: bool = False,
    step_init=1.0,
    c=0.25,
    grow=2.0,
    step_max=None,
    trial_grads: bool = False,
    max_evals: int = 30,
) -> LineSearchResult:
    r"""Search for the Goldstein conditions, growing or shrinking the step.

    Finds ``t`` with ``phi(0) + (1 - c) t phi'(0) <= phi(t) <= phi(0) + c t phi'(0)``,
    ``phi(t) = f(x + t d)`` (`jaxls.goldstein_condition`, tested on ``phi(t) - phi(0)``, so
    a step that does not decrease ``f`` never passes). A step is *too short* when only the
    upper (Armijo) inequality holds and *too long* when it fails or ``phi(t)`` is NaN or
    inf. Starting from ``step_init``, the step is multiplied by ``grow`` while it is too
    short and no too-long step is known; then each trial is the root of
    ``phi(t) = phi(0) + t phi'(0) / 2`` (the middle of the Goldstein band) for a quadratic
    model of ``phi`` on the bracket ``[lo, hi]`` of the longest too-short and shortest
    too-long steps, kept ``0.1 (hi - lo)`` inside it (bisection when ``phi(hi)`` is not
    finite). The model interpolates ``phi(lo)`` and ``phi(hi)`` and, from ``lo = 0``,
    ``phi'(0)``; from ``lo > 0`` also ``phi(0)`` (or ``phi'(lo)`` with ``trial_grads``).
    Unlike a search that can only shrink, a first step that is too short is recovered from.

    Trials evaluate the value only (one call of ``fun`` each), and the gradient is computed
    once, at the returned step (one more call of ``value_and_grad``, none for step 0):
    ``num_evals`` counts every call, ``num_grads`` those that computed a gradient. With
    ``trial_grads=True`` every trial calls ``value_and_grad`` instead.

    Args:
      fun: scalar objective of a pytree, real-valued (``(value, aux)`` with ``has_aux``);
        may be None if ``value_and_grad`` is given.
      x: the current point, a pytree of floating arrays (real or complex) or a Python float.
      direction: a pytree like ``x``; must be a descent direction (slope ``Re sum(g d)``).
      value: ``f(x)``, if known (saves an evaluation together with ``grad``).
      grad: ``grad f(x)``, if known.
      value_and_grad: ``x -> (f(x), grad f(x))``; defaults to
        ``jax.value_and_grad(fun, has_aux=has_aux)``.
      has_aux: ``fun`` returns ``(value, aux)``; the result's ``aux`` is the aux at the
        returned step (zeros if step 0 is returned and ``value`` and ``grad`` were given).
      step_init: first trial step, ``> 0`` (may be traced).
      c: the Goldstein constant, in ``(0, 1/2)`` (may be traced).
      grow: factor ``> 1`` applied to a too-short step while no too-long one is known (may
        be traced).
      step_max: largest step tried, ``> 0`` (may be traced); default: the largest finite
        number of the dtype. ``step_init`` is clipped to it.
      trial_grads: evaluate the gradient at every trial (above). Default False.
      max_evals: hard cap on calls of the objective, the one at ``x`` and the final
        gradient included (without ``trial_grads``, trials stop when one call is left, so
        ``max_evals >= 2``).

    Returns:
      A `LineSearchResult`. ``status``: ``SUCCESS`` (the conditions hold at ``step``);
      ``MAX_EVALS`` (budget spent), ``STEP_LIMIT`` (``step_max`` is still too short: ``f``
      may be unbounded below) or ``ROUNDING`` (the bracket shrank to rounding level, or a
      too-long step's predicted decrease ``t |phi'(0)|`` is below the rounding of
      ``phi(0)``): these failures return the longest too-short step, which satisfies
      Armijo, or step 0, never an uphill step; ``NOT_DESCENT`` (``phi'(0) >= 0``: step 0,
      nothing tried); ``NONFINITE`` (``f`` or its gradient not finite at ``x``, or the
      gradient not finite at the returned step: step 0 returned); ``INVALID_INPUT`` (a
      traced ``c``, ``grow``, ``step_init`` or ``step_max`` out of range, or a direction not
      finite).

    Raises:
      ValueError: ``c`` outside ``(0, 1/2)``, ``grow <= 1``, ``step_init <= 0``,
        ``step_max <= 0``, ``max_evals < 1``, or ``value``/``grad`` not shaped like
        ``f(x)``/``x``.
      TypeError: ``fun`` not callable, returning a non-scalar or complex value; integer
        ``x`` or ``direction``; ``trial_grads`` or ``has_aux`` not a bool.

    References:
      A. A. Goldstein, "On steepest descent", SIAM J. Control 3 (1965) 147-151;
      Nocedal & Wright, Numerical Optimization, 2nd ed. (2006), eq. (3.11) and sec. 3.5.

    Example:
      >>> import jax.numpy as jnp, jaxls
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> res = jaxls.goldstein(f, jnp.zeros(2), jnp.ones(2), step_init=1e-3)
      >>> print(float(res.step), int(res.num_evals), int(res.num_grads), bool(res.converged))
      0.512 12 2 True
    """
    call = "goldstein"
    trial_grads = checks.boolean(call, "trial_grads", trial_grads)
    # Value-only trials keep one call for the gradient at the accepted step.
    checks.int_at_least(call, "max_evals", max_evals, 1 if trial_grads else 2)
    valid = checks.open_interval(call, "c", c, 0.0, 0.5) & checks.greater_than(
        call, "grow", grow, 1.0
    )
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
        step_max=step_max,
        max_evals=max_evals,
        valid=valid,
    )
    c, grow = start.constant(c), start.constant(grow)
    origin, dtype, step_max = start.origin, start.dtype, start.step_max
    evaluate = start.phi if trial_grads else start.phi_value

    def step(s: GoldsteinState) -> GoldsteinState:
        trial = evaluate(s.trial)
        t = trial.step
        finite = jnp.isfinite(trial.value)
        if trial_grads:
            finite = finite & jnp.isfinite(trial.slope)
        armijo = finite & armijo_condition(origin.value, origin.slope, trial.value, t, c)
        long_enough = (1 - c) * t * origin.slope <= trial.value - origin.value
        # A too-long step whose decrease t |phi'(0)| is lost in rounding phi(0).
        lost = finite & ~armijo & (origin.value + t * origin.slope == origin.value)
        lo = loop.select(armijo, trial, s.lo)
        hi = loop.select(armijo, s.hi, trial._replace(grad=None, aux=None))
        bracketed = jnp.isfinite(hi.step)
        grown = jnp.minimum(grow * lo.step, step_max)
        model = lo if trial_grads else lo._replace(slope=model_slope(origin, lo, hi))
        following = jnp.where(bracketed, midline_root(origin, model, hi), grown)
        status = jnp.where(
            armijo & long_enough,
            Status.SUCCESS,
            jnp.where(
                ~bracketed & (lo.step >= step_max),
                Status.STEP_LIMIT,
                jnp.where(
                    lost | (bracketed & ~((lo.step < following) & (following < hi.step))),
                    Status.ROUNDING,
                    RUNNING,
                ),
            ),
        ).astype(jnp.int32)
        # On success ``lo`` is the accepted step: it satisfies Armijo.
        return GoldsteinState(lo, hi, following, s.num_evals + 1, status, s.met_nonfinite | ~finite)

    inf, nan = jnp.asarray(jnp.inf, dtype), jnp.asarray(jnp.nan, dtype)
    nowhere = LinePoint(inf, nan, nan, None)
    lo = origin if trial_grads else origin._replace(grad=None)
    nothing = jnp.zeros((), bool)
    state = GoldsteinState(lo, nowhere, start.step_init, start.num_evals, start.status, nothing)
    # Without trial gradients, one call is kept for the gradient at the returned step.
    state = common.run_while(step, state, max_evals if trial_grads else max_evals - 1, call)
    return common.finish(
        start, state.lo, state.num_evals, state.status, state.met_nonfinite, trial_grads=trial_grads
    )
