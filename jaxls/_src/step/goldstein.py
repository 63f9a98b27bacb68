r"""A Goldstein search that grows and shrinks the step (Nocedal & Wright 2006, sec. 3.1).

The Goldstein conditions ask ``phi(t) - phi(0) - t phi'(0) / 2`` to be small relative to the
step: with ``psi(t) = phi(t) - phi(0) - t phi'(0) / 2``, they read
``|psi(t)| <= (1/2 - c1) t |phi'(0)|``. A step that is *too short* (Armijo holds, the lower
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
from jaxls._src.results import RUNNING, LineSearchResult, PyTree, Status
from jaxls._src.step import common
from jaxls._src.step.conditions import armijo_condition
from jaxls._src.step.line import LinePoint
from jaxls._src.implicit.step import constant_step

# An interpolated step keeps at least SAFEGUARD * (hi - lo) away from either end of the bracket.
SAFEGUARD = 0.1


class GoldsteinState(NamedTuple):
    lo: LinePoint  # the longest too-short step (Armijo holds), the result; the origin at first
    lo_known: jax.Array  # lo's gradient was computed (else lo.grad is zeros)
    hi: LinePoint  # the shortest too-long step, no gradient; step inf until one is found
    trial: jax.Array  # the step evaluated next
    num_evals: jax.Array
    num_grads: jax.Array
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


@constant_step
def goldstein(
    fun: Callable | None,
    x: PyTree,
    direction: PyTree,
    *,
    value: float | jax.Array | None = None,
    grad: PyTree | None = None,
    value_and_grad: Callable | None = None,
    has_aux: bool = False,
    step_init: float | jax.Array = 1.0,
    c1: float | jax.Array = 0.1,
    grow: float | jax.Array = 2.0,
    step_max: float | jax.Array | None = None,
    trial_grads: bool = False,
    epsilon: float | jax.Array | None = None,
    max_evals: int = 30,
) -> LineSearchResult:
    r"""Search for the Goldstein conditions, growing or shrinking the step.

    Finds ``t`` with ``phi(0) + (1 - c1) t phi'(0) <= phi(t) <= phi(0) + c1 t phi'(0)``,
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

    Where the decrease Armijo asks for, ``c1 t |phi'(0)|``, is below the rounding allowance
    ``epsilon |phi(0)|`` (near a minimiser in float32), values cannot show it and a step
    with ``phi(t) <= phi(0) + epsilon |phi(0)|`` is judged by its slope: accepted if
    ``|phi'(t)| <= (1 - 2 c1) |phi'(0)|``, the Goldstein conditions of the quadratic model
    through the two slopes (Hager and Zhang's approximate Wolfe conditions with this
    ``c1`` and ``c2 = 1 - 2 c1``); otherwise it counts as too long.

    Trials evaluate the value only: one call of ``fun`` each, under `jax.vjp`, and the
    gradient of an accepted trial is the transpose of that call's linearisation, no further
    call; with your own ``value_and_grad`` (and ``fun``) it is one more call of it. A
    too-short step returned on failure gets its gradient by one more call at the end (none
    for step 0). ``num_evals`` counts the calls, ``num_grads`` the gradients computed. With
    ``trial_grads=True`` every trial calls ``value_and_grad`` instead.

    Derivatives: the accepted step is held constant (its derivative is 0); ``value``,
    ``grad``, ``slope`` and ``aux`` are differentiated at ``x + step d`` with respect to
    ``x``, ``direction`` and what ``fun`` (or ``value_and_grad``) closes over, by one JVP of
    ``value_and_grad`` there, with `jax.grad`, `jax.jvp` and ``jaxls.ad`` alike; never
    through the loop, never a NaN from it.

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
      c1: the Goldstein constant, in ``(0, 1/2)`` (may be traced): the Armijo constant of
        the upper line, ``1 - c1`` that of the lower one (Nocedal & Wright's ``c``, eq.
        (3.11)). The default 0.1 accepts decreases between 10% and 90% of the linear
        prediction ``t |phi'(0)|``; the classical 0.25 (a band of 25-75%) takes 0.67-1.11
        times the evaluations of optax's backtracking in gradient descent
        (``benchmarks/float32.py``), 0.1 takes 0.53-0.91.
      grow: factor ``> 1`` applied to a too-short step while no too-long one is known (may
        be traced).
      step_max: largest step tried, ``> 0`` (may be traced); default: the largest finite
        number of the dtype. ``step_init`` is clipped to it.
      trial_grads: evaluate the gradient at every trial (above). Default False.
      epsilon: relative rounding allowance, ``>= 0`` (may be traced), of the slope test
        above. ``None`` (default): 16 ulps of the search's dtype (``1.9e-6`` in float32), as
        `jaxls.wolfe`'s. ``0``: values only.
      max_evals: hard cap on calls of the objective, the one at ``x`` and a final gradient
        included (without ``trial_grads``, trials stop when one call is left, two with your
        own ``value_and_grad``: so ``max_evals >= 2``, ``>= 3`` with it).

    Returns:
      A `LineSearchResult`. ``status``: ``SUCCESS`` (the conditions hold at ``step``);
      ``MAX_EVALS`` (budget spent), ``STEP_LIMIT`` (``step_max`` is still too short: ``f``
      may be unbounded below) or ``ROUNDING`` (the bracket shrank to rounding level, or a
      too-long step's predicted decrease ``t |phi'(0)|`` is below the rounding of
      ``phi(0)``): these failures return the longest too-short step, which satisfies
      Armijo, or step 0, never an uphill step; ``NOT_DESCENT`` (``phi'(0) >= 0``: step 0,
      nothing tried); ``NONFINITE`` (``f`` or its gradient not finite at ``x``, or the
      gradient not finite at the returned step: step 0 returned); ``INVALID_INPUT`` (a
      traced ``c1``, ``grow``, ``epsilon``, ``step_init`` or ``step_max`` out of range, or a
      direction not finite).

    Raises:
      ValueError: ``c1`` outside ``(0, 1/2)``, ``grow <= 1``, ``epsilon < 0``,
        ``step_init <= 0``, ``step_max <= 0``, ``max_evals`` below the minimum above, or
        ``value``/``grad`` not shaped like ``f(x)``/``x``.
      TypeError: ``fun`` not callable, returning a non-scalar or complex value; integer
        ``x`` or ``direction``; ``trial_grads`` or ``has_aux`` not a bool.

    References:
      A. A. Goldstein, "On steepest descent", SIAM J. Control 3 (1965) 147-151;
      Nocedal & Wright, Numerical Optimization, 2nd ed. (2006), eq. (3.11) and sec. 3.5;
      W. W. Hager and H. Zhang, SIAM J. Optim. 16 (2005) 170-192, eq. (4.1).

    Example:
      >>> import jax.numpy as jnp, jaxls
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> res = jaxls.goldstein(f, jnp.zeros(2), jnp.ones(2), step_init=1e-3)
      >>> print(round(float(res.step), 6), int(res.num_evals), int(res.num_grads), res.converged)
      0.256 10 2 True
    """
    call = "goldstein"
    trial_grads = checks.boolean(call, "trial_grads", trial_grads)
    # Value-only trials keep one call for the gradient of a step returned on failure.
    checks.int_at_least(call, "max_evals", max_evals, 1 if trial_grads else 2)
    valid = checks.open_interval(call, "c1", c1, 0.0, 0.5) & checks.greater_than(
        call, "grow", grow, 1.0
    )
    if epsilon is not None:
        valid = valid & checks.at_least(call, "epsilon", epsilon, 0.0)
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
    # The approximate Goldstein conditions: |phi'(t)| <= (1 - 2 c1) |phi'(0)| (`Rounding`).
    rounding = common.rounding(start, epsilon, c1, c2=1 - 2 * start.constant(c1))
    c1, grow = start.constant(c1), start.constant(grow)
    origin, dtype, step_max = start.origin, start.dtype, start.step_max
    # A trial and the call of the user's value_and_grad that completes it.
    two_calls = start.gradient_calls and not trial_grads
    if two_calls and max_evals < 3:
        raise ValueError(
            f"`jaxls.{call}(max_evals={max_evals})`: with value-only trials and your own "
            "`value_and_grad`, a trial, its gradient and the gradient of a step returned on "
            "failure take up to three calls: pass `max_evals >= 3`, or `trial_grads=True`."
        )

    def step(s: GoldsteinState) -> GoldsteinState:
        t = s.trial
        trial = start.phi_trial(t, trial_grads)
        value, finite = trial.point.value, trial.finite
        armijo = finite & armijo_condition(origin.value, origin.slope, value, t, c1)
        long_enough = (1 - c1) * t * origin.slope <= value - origin.value
        exact = armijo & long_enough
        # Where the decrease asked for is rounding noise, the slope decides (`Rounding`).
        near = (
            finite & ~armijo & rounding.unresolved(t) & (value <= origin.value + rounding.allowance)
        )
        full, extra, grads = trial.complete(exact | near)
        calls = 1 + extra
        approximate = near & rounding.holds(origin.value, full)
        converged = exact | approximate
        # A too-long step whose decrease t |phi'(0)| is lost in rounding phi(0).
        lost = finite & ~armijo & ~approximate & (origin.value + t * origin.slope == origin.value)
        lo = loop.select(armijo | approximate, full, s.lo)
        lo_known = jnp.where(armijo | approximate, grads > 0, s.lo_known)
        too_long = ~armijo & ~approximate
        hi = loop.select(too_long, full._replace(grad=None, aux=None), s.hi)
        bracketed = jnp.isfinite(hi.step)
        grown = jnp.minimum(grow * lo.step, step_max)
        model = lo if trial_grads else lo._replace(slope=model_slope(origin, lo, hi))
        following = jnp.where(bracketed, midline_root(origin, model, hi), grown)
        status = jnp.where(
            converged,
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
        return GoldsteinState(
            lo,
            lo_known,
            hi,
            following,
            s.num_evals + calls,
            s.num_grads + grads,
            status,
            s.met_nonfinite | ~finite,
        )

    inf, nan = jnp.asarray(jnp.inf, dtype), jnp.asarray(jnp.nan, dtype)
    nowhere = LinePoint(inf, nan, nan, None)
    state = GoldsteinState(
        origin,
        jnp.ones((), bool),
        nowhere,
        start.step_init,
        start.num_evals,
        start.num_evals,
        start.status,
        jnp.zeros((), bool),
    )
    # Without trial gradients, one call is kept for the gradient of a step returned on
    # failure (and a second for a completing call of the user's value_and_grad).
    budget = max_evals if trial_grads else max_evals - 1 - two_calls
    state = common.run_while(step, state, budget, call)
    return common.finish(
        start,
        state.lo,
        state.num_evals,
        state.num_grads,
        state.status,
        state.met_nonfinite,
        known=state.lo_known,
    )
