"""Wolfe line search by safeguarded cubic interpolation (Moré & Thuente 1994, MINPACK-2 dcsrch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxls._src import checks, loop
from jaxls._src.results import RUNNING, LineSearchResult, PyTree, Status
from jaxls._src.step import common
from jaxls._src.step.conditions import (
    armijo_condition,
    curvature_condition,
    strong_curvature_condition,
)
from jaxls._src.step.line import LinePoint
from jaxls._src.implicit.step import constant_step

# dcsrch's constants: extrapolate at least by EXTRAPOLATE_MIN, bisect when the bracket has not
# shrunk below SHRINK of its width two steps earlier, keep a step inside a bracket at most
# SHRINK of the way to its far end (dcstep, third case).
EXTRAPOLATE_MIN = 1.1
SHRINK = 0.66
# Give up (ROUNDING) when the bracket is narrower than this many ulps of its upper end
# (scipy passes xtol = 1e-14 ~ 45 eps in float64).
ROUNDING_ULPS = 64
# The default extrapolation factor (the rounding allowance's, in ulps: conditions.EPSILON_ULPS).
GROW = 2.0


class WolfeState(NamedTuple):
    best: LinePoint  # dcsrch's stx: least (modified) value; its slope points into the bracket
    other: LinePoint  # dcsrch's sty: the bracket's other end (the origin until one is found)
    bounds: jax.Array  # [lower, upper]: where the next step may go (extrapolation or bracket)
    widths: jax.Array  # the bracket's width one and two steps ago (bisection safeguard)
    bracketed: jax.Array  # [best, other] holds a minimiser of psi or phi, so a Wolfe step too
    stage2: jax.Array  # a step with psi <= 0 and phi' >= 0 has been seen: use phi, not psi
    trial: jax.Array  # the step to evaluate next
    accepted: LinePoint  # the result: the converged step, else the lowest Armijo step, else 0
    num_evals: jax.Array
    status: jax.Array
    met_nonfinite: jax.Array  # a trial value or slope was NaN or inf


def _gamma(theta, da, db, sign, clamp=False):
    """dcstep's ``gamma``, the discriminant's root of the cubic, scaled against overflow."""
    s = jnp.maximum(jnp.maximum(jnp.abs(theta), jnp.abs(da)), jnp.abs(db))
    radicand = (theta / s) ** 2 - (da / s) * (db / s)
    return sign * s * jnp.sqrt(jnp.maximum(radicand, 0) if clamp else radicand)


def dcstep(x: LinePoint, y: LinePoint, p: LinePoint, bracketed, lower, upper, tolerance=0):
    """The next trial step of Moré & Thuente's ``dcstep``, and which case applied.

    ``x`` is the best step (its slope points towards ``p``), ``y`` the bracket's other end,
    ``p`` the step just evaluated; ``[lower, upper]`` is the range allowed for the next step.
    All four cases are computed and one is selected, so no branch is taken; a non-finite
    model (coincident steps, a negative discriminant) is replaced by the safe step afterwards.

    Returns ``(step, higher, opposite)``: ``higher`` is case 1 (``phi(p) > phi(x)``; with a
    ``tolerance``, ``phi(p) > phi(x) + tolerance``: values closer than that are rounding
    noise and count as equal, so that the slopes decide), ``opposite`` case 2 (not higher,
    slopes of opposite signs): both bracket a minimiser.
    """
    tx, fx, dx = x.step, x.value, x.slope
    ty, fy, dy = y.step, y.value, y.slope
    tp, fp, dp = p.step, p.value, p.slope
    higher = fp > fx + tolerance
    opposite = ~higher & (jnp.sign(dp) * jnp.sign(dx) < 0)
    smaller = ~higher & ~opposite & (jnp.abs(dp) < jnp.abs(dx))
    one = jnp.ones_like(tp)

    # Cubic through (x, p). Case 1: a higher value; the cubic step if it is closer to x than
    # the quadratic (values at x and p, slope at x), else their average.
    theta = 3 * (fx - fp) / (tp - tx) + dx + dp
    gamma = _gamma(theta, dx, dp, jnp.where(tp < tx, -one, one))
    cubic = tx + ((gamma - dx) + theta) / (((gamma - dx) + gamma) + dp) * (tp - tx)
    quad = tx + (dx / ((fx - fp) / (tp - tx) + dx)) / 2 * (tp - tx)
    step1 = jnp.where(jnp.abs(cubic - tx) <= jnp.abs(quad - tx), cubic, cubic + (quad - cubic) / 2)

    # Case 2: a lower value, slopes of opposite signs: the cubic step if it is farther from p
    # than the secant step, else the secant step.
    toward_x = jnp.where(tp > tx, -one, one)
    gamma = _gamma(theta, dx, dp, toward_x)
    cubic = tp + ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dx) * (tx - tp)
    secant = tp + dp / (dp - dx) * (tx - tp)
    step2 = jnp.where(jnp.abs(cubic - tp) > jnp.abs(secant - tp), cubic, secant)

    # Case 3: a lower value, same signs, the slope decreases in magnitude. The cubic step
    # only if the cubic tends to infinity in the step's direction or its minimiser lies
    # beyond p; else the limit of the allowed range.
    gamma = _gamma(theta, dx, dp, toward_x, clamp=True)
    r = ((gamma - dp) + theta) / ((gamma + (dx - dp)) + gamma)
    cubic = jnp.where((r < 0) & (gamma != 0), tp + r * (tx - tp), jnp.where(tp > tx, upper, lower))
    closer = jnp.where(jnp.abs(cubic - tp) < jnp.abs(secant - tp), cubic, secant)
    limit = tp + SHRINK * (ty - tp)
    inside = jnp.where(tp > tx, jnp.minimum(limit, closer), jnp.maximum(limit, closer))
    farther = jnp.where(jnp.abs(cubic - tp) > jnp.abs(secant - tp), cubic, secant)
    step3 = jnp.where(bracketed, inside, jnp.clip(farther, lower, upper))

    # Case 4: a lower value, same signs, the slope does not decrease: inside a bracket the
    # cubic through (p, y), else the limit of the allowed range.
    theta = 3 * (fp - fy) / (ty - tp) + dy + dp
    gamma = _gamma(theta, dy, dp, jnp.where(tp > ty, -one, one))
    cubic = tp + ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dy) * (ty - tp)
    step4 = jnp.where(bracketed, cubic, jnp.where(tp > tx, upper, lower))

    step = jnp.where(higher, step1, jnp.where(opposite, step2, jnp.where(smaller, step3, step4)))
    return step, higher, opposite


def _shifted(point: LinePoint, shift) -> LinePoint:
    """The point on ``psi(t) = phi(t) - t * shift``; without its gradient (not needed)."""
    return LinePoint(point.step, point.value - point.step * shift, point.slope - shift, None)


class Constants(NamedTuple):
    """What the loop body reads from the start of a search (numbers in the search's dtype,
    the approximate Wolfe bound on the slope in at least float32)."""

    origin: LinePoint  # t = 0
    c1: jax.Array
    c2: jax.Array
    grow: jax.Array
    strong: bool  # the strong curvature condition, else the weak one
    decrease: jax.Array  # c1 phi'(0): the slope of the sufficient-decrease line
    rounding: common.Rounding  # epsilon |phi(0)|, the approximate Wolfe bound on phi'(t)
    ceiling: jax.Array  # phi(0) + epsilon |phi(0)|: the approximate Wolfe bound on phi(t)
    xtol: ArrayLike  # dcsrch's xtol (a NumPy scalar): a bracket's relative width at rounding level
    moves: jax.Array  # the least step that moves x (`common.skip_still`)
    step_max: jax.Array


class TrialTests(NamedTuple):
    """The outcome of dcsrch's tests at a trial step."""

    finite: jax.Array  # phi(t) and phi'(t) are finite
    armijo: jax.Array  # sufficient decrease, strict
    converged: jax.Array  # sufficient (or approximate) decrease and curvature
    at_limit: jax.Array  # sufficient decrease at step_max, the slope still below c1 phi'(0)


def sufficient_decrease_condition(k: Constants, trial: LinePoint, finite: jax.Array) -> jax.Array:
    """Armijo, ``phi(t) <= phi(0) + c1 t phi'(0)`` (Moré & Thuente, eq. (1.1)), with a strict
    decrease ``phi(t) < phi(0)``: equality at rounding level is no decrease."""
    value0, slope0 = k.origin.value, k.origin.slope
    armijo = finite & armijo_condition(value0, slope0, trial.value, trial.step, k.c1)
    return armijo & (trial.value < value0)


def approximate_decrease_condition(k: Constants, trial: LinePoint, finite: jax.Array) -> jax.Array:
    """Hager & Zhang's approximate Wolfe decrease (SIAM J. Optim. 16 (2005), eq. (4.1)):
    ``phi(t) <= phi(0) + epsilon |phi(0)|`` and ``phi'(t) <= (2 c1 - 1) phi'(0)``, where the
    decrease the exact test asks for, ``c1 t |phi'(0)|``, is below the rounding allowance
    (so never with ``epsilon = 0``)."""
    t, f, g = trial.step, trial.value, trial.slope
    # Not `Rounding.unresolved`, t (c1 |phi'(0)|): rounded differently, (c1 t) |phi'(0)| can
    # fall on the other side of the allowance.
    unresolved = k.c1 * t * jnp.abs(k.origin.slope) <= k.rounding.allowance
    upper = k.rounding.upper_slope
    return finite & unresolved & (f <= k.ceiling) & (g.astype(upper.dtype) <= upper)


def check_trial(k: Constants, trial: LinePoint) -> TrialTests:
    """dcsrch's test for convergence: sufficient (or approximate) decrease and the strong or
    weak curvature condition (Moré & Thuente, eqs. (1.1)-(1.2)); and its test for a step at
    ``step_max`` that still descends faster than the sufficient-decrease line."""
    t, g = trial.step, trial.slope
    finite = jnp.isfinite(trial.value) & jnp.isfinite(g)
    armijo = sufficient_decrease_condition(k, trial, finite)
    approximate = approximate_decrease_condition(k, trial, finite)
    curvature = (strong_curvature_condition if k.strong else curvature_condition)(
        k.origin.slope, g, k.c2
    )
    converged = (armijo | approximate) & curvature
    at_limit = armijo & (t == k.step_max) & (g <= k.decrease)
    return TrialTests(finite, armijo, converged, at_limit)


def keep_accepted(accepted: LinePoint, trial: LinePoint, test: TrialTests) -> LinePoint:
    """The result so far: the converged trial, else the lowest step with sufficient decrease."""
    better = test.armijo & (trial.value < accepted.value)
    return loop.select(test.converged | better, trial, accepted)


def stage(
    k: Constants, s: WolfeState, trial: LinePoint, test: TrialTests
) -> tuple[jax.Array, jax.Array]:
    """``(stage2, shift)``: dcsrch's two stages (Moré & Thuente, sec. 2-3). In stage 1, while
    no step has ``psi(t) <= 0`` and ``phi'(t) >= 0``, a trial lower than the best step but
    short of sufficient decrease is fitted on the modified function ``psi(t) = phi(t) -
    phi(0) - c1 t phi'(0)`` (the points shifted by ``c1 phi'(0)``); else on ``phi``."""
    stage2 = s.stage2 | (test.armijo & (trial.slope >= 0))
    modified = ~stage2 & (trial.value <= s.best.value) & ~test.armijo
    return stage2, jnp.where(modified, k.decrease, 0)


def update_interval(
    k: Constants, s: WolfeState, trial: LinePoint, test: TrialTests, shift: jax.Array
) -> tuple[LinePoint, LinePoint, jax.Array, jax.Array, jax.Array]:
    """``(best, other, bracketed, new, halfway)``: dcstep's trial step and interval
    update (Moré & Thuente, sec. 2, the updating algorithm; cases 1-4 of sec. 4).

    A higher trial (case 1) becomes the bracket's far end; a lower one the best step, the
    old best step becoming the far end if the slopes have opposite signs (case 2). A NaN or
    inf at the trial counts as too far, like case 1, and the next step bisects back towards
    the best step (``halfway``); ``upper`` is the extrapolation's limit.
    """
    lower, upper = s.bounds[0], s.bounds[1]
    new, higher, opposite = dcstep(
        _shifted(s.best, shift),
        _shifted(s.other, shift),
        _shifted(trial, shift),
        s.bracketed,
        lower,
        upper,
        k.rounding.allowance,
    )
    plain = trial._replace(grad=None, aux=None)
    best = loop.select(higher | ~test.finite, s.best, plain)
    other = loop.select(higher | ~test.finite, plain, loop.select(opposite, s.best, s.other))
    bracketed = s.bracketed | higher | opposite | ~test.finite
    halfway = best.step + (other.step - best.step) / 2
    new = jnp.where(test.finite & jnp.isfinite(new), new, jnp.where(bracketed, halfway, upper))
    return best, other, bracketed, new, halfway


def safeguard(
    k: Constants,
    s: WolfeState,
    best: LinePoint,
    other: LinePoint,
    bracketed: jax.Array,
    new: jax.Array,
    halfway: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(new, widths, bounds, width)``: dcsrch's safeguards of the next step. Inside a
    bracket, bisect if it has not shrunk below ``SHRINK`` of its width two steps earlier,
    and the next step stays between its ends; outside, it extrapolates to ``[t + 1.1 (t -
    b), t + grow (t - b)]``. The step is then raised to the first step that moves ``x`` and
    clipped to ``[0, step_max]``."""
    width = jnp.abs(other.step - best.step)
    new = jnp.where(bracketed & (width >= SHRINK * s.widths[1]), halfway, new)
    widths = jnp.where(bracketed, jnp.stack([width, s.widths[0]]), s.widths)
    bounds = jnp.where(
        bracketed,
        jnp.stack([jnp.minimum(best.step, other.step), jnp.maximum(best.step, other.step)]),
        jnp.stack(
            [
                new + jnp.minimum(EXTRAPOLATE_MIN, k.grow) * (new - best.step),
                new + k.grow * (new - best.step),
            ]
        ),
    )
    new = jnp.clip(jnp.maximum(new, k.moves), 0, k.step_max)
    return new, widths, bounds, width


def decide_status(
    k: Constants,
    test: TrialTests,
    t: jax.Array,
    new: jax.Array,
    bounds: jax.Array,
    width: jax.Array,
    bracketed: jax.Array,
) -> jax.Array:
    """dcsrch's tasks: ``SUCCESS`` on convergence; ``STEP_LIMIT`` at ``step_max`` (the
    warning "stp = stpmax"); ``ROUNDING`` once the next step would leave the bracket, or
    repeat the trial, or the bracket is ``xtol`` narrow ("rounding errors prevent progress",
    "xtol test satisfied"); else ``RUNNING``."""
    stuck = (
        bracketed & ((new <= bounds[0]) | (new >= bounds[1]) | (width <= k.xtol * bounds[1]))
    ) | (new == t)
    return jnp.where(
        test.converged,
        Status.SUCCESS,
        jnp.where(
            test.at_limit | (stuck & (t == k.step_max)),
            Status.STEP_LIMIT,
            jnp.where(stuck, Status.ROUNDING, RUNNING),
        ),
    ).astype(jnp.int32)


def make_step(phi: Callable, k: Constants) -> Callable:
    """One iteration of dcsrch: evaluate the trial, test it, update the interval by dcstep,
    safeguard the next step, decide the status."""

    def step(s: WolfeState) -> WolfeState:
        trial = phi(s.trial)
        test = check_trial(k, trial)
        accepted = keep_accepted(s.accepted, trial, test)
        stage2, shift = stage(k, s, trial, test)
        best, other, bracketed, new, halfway = update_interval(k, s, trial, test, shift)
        new, widths, bounds, width = safeguard(k, s, best, other, bracketed, new, halfway)
        status = decide_status(k, test, trial.step, new, bounds, width, bracketed)
        return WolfeState(
            best,
            other,
            bounds,
            widths,
            bracketed,
            stage2,
            new,
            accepted,
            s.num_evals + 1,
            status,
            s.met_nonfinite | ~test.finite,
        )

    return step


@constant_step
def wolfe(
    fun: Callable | None,
    x: PyTree,
    direction: PyTree,
    *,
    value: float | jax.Array | None = None,
    grad: PyTree | None = None,
    value_and_grad: Callable | None = None,
    has_aux: bool = False,
    step_init: float | jax.Array = 1.0,
    c1: float | jax.Array = 1e-4,
    c2: float | jax.Array = 0.9,
    strong: bool = True,
    grow: float | jax.Array = GROW,
    epsilon: float | jax.Array | None = None,
    step_max: float | jax.Array | None = None,
    max_evals: int = 30,
) -> LineSearchResult:
    r"""Wolfe search: ``phi(t) <= phi(0) + c1 t phi'(0)`` and ``|phi'(t)| <= c2 |phi'(0)|``.

    For ``phi(t) = f(x + t d)``, finds a step ``t > 0`` satisfying sufficient decrease and
    the strong curvature condition above, or with ``strong=False`` the weak one
    ``phi'(t) >= c2 phi'(0)``, by Moré & Thuente's search (MINPACK-2 ``dcsrch``). With
    dcsrch's settings, ``epsilon=0, grow=4``, it makes dcsrch's trial steps exactly (tested
    on Moré and Thuente's 24 cases). Each iteration evaluates ``value_and_grad`` once.

    The search keeps the best step so far and the far end of an interval, and picks each
    trial by the safeguarded cubic or quadratic interpolation of ``dcstep`` through the
    values and slopes at the best step and the last trial. Until a minimiser is bracketed it
    extrapolates, the next step lying in ``[t + 1.1 (t - b), t + grow (t - b)]`` (``t`` the
    trial, ``b`` the best step before it); inside a bracket it bisects whenever the bracket
    has not shrunk to 0.66 of its width two trials earlier. Until some step has
    ``psi(t) = phi(t) - phi(0) - c1 t phi'(0) <= 0`` and ``phi'(t) >= 0``, it fits ``psi``
    instead of ``phi`` where this helps. A NaN or inf at a trial step counts as too far: the
    step becomes the interval's far end and the next trial bisects back towards the best
    step. The search stops with ``ROUNDING``, before evaluating anything, once the bracket
    is a few ulps wide.

    Steps too short to move ``x`` are never tried. Below the step resolution
    ``t_r = min_i gap_i / (2 |d_i|)`` (``gap_i`` the spacing of floating numbers at ``x_i``
    on the side ``d_i`` points to) every entry of ``x + t d`` rounds back to ``x_i``: the
    trial is ``x`` itself, its value and slope are ``phi(0)`` and ``phi'(0)``, and it
    would spend a call to learn nothing. A first or interpolated trial below ``t_r`` is
    raised to it (to the first step that moves some entry, computed once from ``x`` and
    ``d`` with a few ulps' margin), and the search stops with ``ROUNDING`` once nothing it
    may still try moves ``x``: a bracket that ends below ``t_r``, or ``step_max < t_r``
    (then no evaluation is made). Near a minimiser in float32, L-BFGS can reach a point one
    ulp from the minimiser whose gradient is still above its tolerance (on Rosenbrock's
    function, ``x = (1, 1 + 2^-23)``, ``|grad f| = 5e-5``): each search there costs one or
    two calls instead of its whole budget, and reports ``ROUNDING`` rather than
    ``MAX_EVALS``.

    Sufficient decrease is met by a strict decrease ``phi(t) < phi(0)`` satisfying the
    Armijo inequality (equality at rounding level is no decrease), or, where the decrease
    this asks for is below the rounding allowance, ``c1 t |phi'(0)| <= epsilon |phi(0)|``,
    by Hager and Zhang's approximate Wolfe decrease ``phi'(t) <= (2 c1 - 1) phi'(0)`` and
    ``phi(t) <= phi(0) + epsilon |phi(0)|``. Near a minimiser the decrease a step can make
    falls below the rounding error of ``f`` (in float32, ``|f| ~ 1`` resolves about
    ``6e-8``), the exact test then rejects every step, and an optimiser stalls (L-BFGS with
    ``epsilon=0`` on float32 logistic regressions: 363 of 400 end without converging); the
    approximate test certifies the step by its slope instead, the quadratic model's
    Armijo condition, and allows ``phi(t)`` at most ``epsilon |phi(0)|`` above ``phi(0)``.
    Values closer than the allowance also count as equal in choosing the next trial, so
    that the slopes decide where the values are noise.

    Derivatives: the accepted step is held constant (its derivative is 0); ``value``,
    ``grad``, ``slope`` and ``aux`` are differentiated at ``x + step d`` with respect to
    ``x``, ``direction`` and what ``fun`` (or ``value_and_grad``) closes over, by one JVP of
    ``value_and_grad`` there, with `jax.grad`, `jax.jvp` and ``jaxls.ad`` alike; never
    through the loop, never a NaN from it.

    Args:
      fun: scalar objective of a pytree (unused if ``value_and_grad`` is given); with
        ``has_aux``, it returns ``(value, aux)``.
      x: the current point, a pytree of floating arrays (or a Python float).
      direction: a pytree like ``x``; must be a descent direction.
      value: ``f(x)``, if known (saves an evaluation together with ``grad``).
      grad: ``grad f(x)``, if known.
      value_and_grad: ``x -> (f(x), grad f(x))`` (``((f(x), aux), grad f(x))`` with
        ``has_aux``); defaults to ``jax.value_and_grad(fun, has_aux=has_aux)``.
      has_aux: ``fun`` returns ``(value, aux)``; ``result.aux`` is the aux of the returned
        point.
      step_init: first trial step, ``> 0``; clipped to ``step_max``, and raised to the
        step resolution ``t_r`` (above) if below it.
      c1: sufficient-decrease constant in ``(0, 1)``.
      c2: curvature constant, ``c1 <= c2 < 1`` (0.9 for quasi-Newton directions, 0.1 for
        nonlinear conjugate gradients).
      strong: the strong curvature condition ``|phi'(t)| <= c2 |phi'(0)|`` (default), else
        the weak one ``phi'(t) >= c2 phi'(0)``. A Python bool.
      grow: bound on the extrapolation while no minimiser is bracketed (above); ``> 1``.
        The default 2 lets each trial be at most 3 times the last from ``b = 0`` (optax's
        zoom and scipy double the step); dcsrch's 4 (5 times) jumps over narrow minima
        into regions where float32 values are noise.
      epsilon: relative rounding allowance, ``>= 0``: of the approximate Wolfe decrease
        (above), and in comparing values (a trial less than ``epsilon |phi(0)|`` above the
        best step is not higher: the slopes decide). ``None`` (default): 16 ulps of the
        search's dtype, ``16 eps``: ``1.9e-6`` in float32 (optax's zoom and Hager and Zhang
        use ``1e-6``, 8 ulps, below the rounding error of sums that cancel), ``3.6e-15`` in
        float64, ``0.125`` in bfloat16. ``0``: exact comparisons, Moré and Thuente's.
      step_max: largest step tried, ``> 0``; default: the largest finite number of the
        dtype (no limit but the dtype's).
      max_evals: hard cap on evaluations of ``value_and_grad``, the one at ``x`` included.

    Every constant may be a Python number or a scalar array, traced or not; constants are
    cast to the search's dtype on entry. A bad concrete constant raises; a bad traced one
    gives ``INVALID_INPUT``.

    Returns:
      A `LineSearchResult`. ``status``: ``SUCCESS`` (the conditions hold at ``step``);
      ``MAX_EVALS``, ``ROUNDING`` (the bracket shrank to rounding level, or no step left
      to try moves ``x``: above) or ``STEP_LIMIT``
      (``step_max`` reached with ``phi'`` still below ``c1 phi'(0)``): the step of least
      value among those satisfying the exact sufficient decrease, or step 0 if none did,
      never an uphill step; ``NOT_DESCENT`` (``phi'(0) >= 0``: step 0, nothing tried);
      ``NONFINITE`` (``f`` or its gradient not finite at ``x``); ``INVALID_INPUT`` (a traced
      constant out of its range, ``step_init`` not positive and finite, ``step_max`` not
      positive, or a non-finite direction). Every call computes value and gradient, so
      ``num_grads == num_evals``; ``met_nonfinite`` says whether some trial's value or
      slope was NaN or inf.

    Raises:
      ValueError: ``c1`` or ``c2`` outside ``(0, 1)``, ``c2 < c1``, ``grow <= 1``,
        ``epsilon < 0``, ``step_init <= 0``, ``step_max <= 0``, ``max_evals < 1``.
      TypeError: ``strong`` or ``has_aux`` not a bool; a constant that is not a real scalar.

    References:
      J. J. Moré & D. J. Thuente, Line search algorithms with guaranteed sufficient
      decrease, ACM TOMS 20 (1994) 286-307 (the search, and the MINPACK-2 routines
      ``dcsrch``/``dcstep`` it follows case by case); Nocedal & Wright (2006), eqs.
      (3.6)-(3.7) (the Wolfe conditions) and (3.59) (the cubic interpolant's minimiser); their
      zoom (Algorithms 3.5 and 3.6) is not this search; W. W. Hager & H. Zhang, SIAM J. Optim. 16
      (2005) 170-192, eq. (4.1) (the approximate Wolfe conditions).

    Example:
      >>> import jax.numpy as jnp, jaxls
      >>> f = lambda x: jnp.sum(x**4) / 4 - jnp.sum(x)
      >>> x = jnp.zeros(2)
      >>> res = jaxls.wolfe(f, x, direction=jnp.ones(2), step_init=0.1, c2=0.1)
      >>> print(f"{float(res.step):.3f}", int(res.num_evals), bool(res.converged))
      1.001 7 True
      >>> res = jaxls.wolfe(f, x, jnp.ones(2), step_init=0.1, c2=0.1, grow=4.0, epsilon=0.0)
      >>> print(f"{float(res.step):.3f}", int(res.num_evals))  # dcsrch's settings
      1.006 6
    """
    call = "wolfe"
    strong = checks.boolean(call, "strong", strong)
    valid = (
        checks.open_interval(call, "c1", c1, 0.0, 1.0)
        & checks.open_interval(call, "c2", c2, 0.0, 1.0)
        & checks.greater_than(call, "grow", grow, 1.0)
    )
    if checks.is_concrete(c1) and checks.is_concrete(c2):
        if not float(c1) <= float(c2):
            raise ValueError(
                f"`jaxls.{call}(c1={c1!r}, c2={c2!r})`: `c2` must be at least `c1` "
                "(0 < c1 <= c2 < 1), else no step need satisfy both conditions."
            )
    else:
        valid = valid & (jnp.asarray(c1) <= jnp.asarray(c2))
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
    start, moves = common.skip_still(start)
    origin, dtype, step_max, t0 = start.origin, start.dtype, start.step_max, start.step_init
    # The approximate Wolfe decrease's allowance and bound on the slope.
    rounding = common.rounding(start, epsilon, c1, c2)
    c1, c2, grow = start.constant(c1), start.constant(c2), start.constant(grow)
    k = Constants(
        origin=origin,
        c1=c1,
        c2=c2,
        grow=grow,
        strong=strong,
        decrease=c1 * origin.slope,
        rounding=rounding,
        ceiling=origin.value + rounding.allowance,
        xtol=ROUNDING_ULPS * jnp.finfo(dtype).eps,
        moves=moves,
        step_max=step_max,
    )

    plain = origin._replace(grad=None, aux=None)
    state = WolfeState(
        best=plain,
        other=plain,
        # 0 * t0 rather than zeros_like: under explicit mesh axes both ends share t0's sharding.
        bounds=jnp.stack([0 * t0, t0 + grow * t0]),
        widths=jnp.stack([step_max, 2 * step_max]),
        bracketed=jnp.zeros((), bool),
        stage2=jnp.zeros((), bool),
        trial=t0,
        accepted=origin,
        num_evals=start.num_evals,
        status=start.status,
        met_nonfinite=jnp.zeros((), bool),
    )
    state = common.run_while(make_step(start.phi, k), state, max_evals, call)
    return common.result(
        start, state.accepted, state.num_evals, state.status, met_nonfinite=state.met_nonfinite
    )
