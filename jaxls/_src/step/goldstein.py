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


def goldstein(
    fun: Callable | None,
    x,
    direction,
    *,
    value=None,
    grad=None,
    value_and_grad: Callable | None = None,
    step_init=1.0,
    c: float = 0.25,
    grow: float = 2.0,
    step_max=None,
    max_evals: int = 30,
) -> LineSearchResult:
    r"""Search for the Goldstein conditions, growing or shrinking the step.

    Finds ``t`` with ``phi(0) + (1 - c) t phi'(0) <= phi(t) <= phi(0) + c t phi'(0)``,
    ``phi(t) = f(x + t d)`` (`jaxls.goldstein_condition`). A step is *too short* when only
    the upper (Armijo) inequality holds and *too long* when it fails or ``phi(t)`` or
    ``phi'(t)`` is NaN or inf. Starting from ``step_init``, the step is multiplied by
    ``grow`` while it is too short and no too-long step is known; then each trial is the
    root of ``phi(t) = phi(0) + t phi'(0) / 2`` (the middle of the Goldstein band) for the
    quadratic model through ``phi(lo), phi'(lo), phi(hi)`` of the bracket ``[lo, hi]`` of the
    longest too-short and shortest too-long steps, kept ``0.1 (hi - lo)`` inside it
    (bisection when ``phi(hi)`` is not finite). Unlike a search that can only shrink, a first
    step that is too short is recovered from. One evaluation of ``f`` and its gradient per
    trial.

    Args:
      fun: scalar objective of a pytree (unused if ``value_and_grad`` is given).
      x: the current point, a pytree of float32 or float64 arrays.
      direction: a pytree like ``x``; must be a descent direction.
      value: ``f(x)``, if known (saves an evaluation together with ``grad``).
      grad: ``grad f(x)``, if known.
      value_and_grad: ``x -> (f(x), grad f(x))``; defaults to ``jax.value_and_grad(fun)``.
      step_init: first trial step, ``> 0`` (may be traced).
      c: the Goldstein constant, in ``(0, 1/2)``.
      grow: factor ``> 1`` applied to a too-short step while no too-long one is known.
      step_max: largest step tried, ``> 0`` (may be traced); default: the largest finite
        number of the dtype. ``step_init`` is clipped to it.
      max_evals: hard cap on evaluations of ``value_and_grad``, the one at ``x`` included.

    Returns:
      A `LineSearchResult`. ``status``: ``SUCCESS`` (the conditions hold at ``step``);
      ``MAX_EVALS`` (budget spent), ``STEP_LIMIT`` (``step_max`` is still too short: ``f``
      may be unbounded below) or ``ROUNDING`` (the bracket shrank to rounding level): these
      failures return the longest too-short step, which satisfies Armijo, or step 0, never
      an uphill step; ``NOT_DESCENT`` (``phi'(0) >= 0``: step 0, nothing tried);
      ``NONFINITE`` (``f`` or its gradient not finite at ``x``); ``INVALID_INPUT`` (a traced
      ``step_init`` or ``step_max`` not positive).

    Raises:
      ValueError: ``c`` outside ``(0, 1/2)``, ``grow <= 1``, ``step_init <= 0``,
        ``step_max <= 0``, ``max_evals < 1``.

    References:
      A. A. Goldstein, "On steepest descent", SIAM J. Control 3 (1965) 147-151;
      Nocedal & Wright, Numerical Optimization, 2nd ed. (2006), eq. (3.11) and sec. 3.5.

    Example:
      >>> import jax.numpy as jnp, jaxls
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> res = jaxls.goldstein(f, jnp.zeros(2), jnp.ones(2), step_init=1e-3)
      >>> print(float(res.step), int(res.num_evals), bool(res.converged))
      0.512 11 True
    """
    call = "goldstein"
    checks.open_interval(call, "c", c, 0.0, 0.5)
    checks.greater_than(call, "grow", grow, 1.0)
    start = common.setup(
        call,
        fun,
        x,
        direction,
        value=value,
        grad=grad,
        value_and_grad=value_and_grad,
        step_init=step_init,
        step_max=step_max,
        max_evals=max_evals,
    )
    origin, dtype = start.origin, start.dtype
    step_max, status, trial = start.step_max, start.status, start.step_init

    def step(s: GoldsteinState) -> GoldsteinState:
        trial = start.phi(s.trial)
        finite = jnp.isfinite(trial.value) & jnp.isfinite(trial.slope)
        armijo = finite & armijo_condition(origin.value, origin.slope, trial.value, trial.step, c)
        long_enough = trial.value >= origin.value + (1 - c) * trial.step * origin.slope
        lo = loop.select(armijo, trial, s.lo)
        hi = loop.select(armijo, s.hi, trial._replace(grad=None))
        bracketed = jnp.isfinite(hi.step)
        grown = jnp.minimum(grow * lo.step, step_max)
        following = jnp.where(bracketed, midline_root(origin, lo, hi), grown)
        status = jnp.where(
            armijo & long_enough,
            Status.SUCCESS,
            jnp.where(
                ~bracketed & (lo.step >= step_max),
                Status.STEP_LIMIT,
                jnp.where(
                    bracketed & ~((lo.step < following) & (following < hi.step)),
                    Status.ROUNDING,
                    RUNNING,
                ),
            ),
        ).astype(jnp.int32)
        # On success ``lo`` is the accepted step: it satisfies Armijo.
        return GoldsteinState(lo, hi, following, s.num_evals + 1, status)

    inf = jnp.asarray(jnp.inf, dtype)
    nowhere = LinePoint(inf, jnp.asarray(jnp.nan, dtype), jnp.asarray(jnp.nan, dtype), None)
    state = GoldsteinState(origin, nowhere, trial, start.num_evals, status)
    state = loop.run_while(step, state, max_evals)
    return common.result(start, state.lo, state.num_evals, state.status)
