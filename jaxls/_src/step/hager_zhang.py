r"""Hager & Zhang's line search (CG_DESCENT), one evaluation per iteration.

The paper's procedure nests loops: the secant step ``secant^2`` evaluates up to two points,
each interval ``update`` may run a bisection loop ``U3`` of its own, and the bracket-shrink
test ``L2`` may add a midpoint. Here it is a flat state machine: ``phase`` says what the
pending trial step is, every iteration evaluates it once and applies the paper's update,
and the decisions that need no evaluation (``U0``, ``S4``'s test, ``L2``'s test) are made
at once, so that every evaluation counts.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src import checks, loop
from jaxls._src.results import RUNNING, LineSearchResult, PyTree, Status
from jaxls._src.step import common
from jaxls._src.step.conditions import (
    EPSILON_ULPS,
    approximate_wolfe_condition,
    armijo_condition,
    curvature_condition,
)
from jaxls._src.step.interpolate import secant_minimizer
from jaxls._src.step.line import LinePoint
from jaxls._src.implicit.step import constant_step

# Defaults: the factor by which the step grows while no bracket is found (`grow`, the paper's
# rho, which it sets to 5), and the relative error allowed in phi, in ulps of the search's
# dtype (the paper's 1e-6): conditions.EPSILON_ULPS.
GROW = 2.0


class Phase(enum.IntEnum):
    """What the pending trial step is (Hager & Zhang 2005, sec. 4)."""

    EXPAND = 0  # B3: the initial bracket is sought by growing the step by ``grow``
    BISECT = 1  # U3 a-c: d = (1 - theta) a + theta b while phi'(d) < 0, phi(d) > phi(0) + eps
    SECANT = 2  # S1: c = secant(a, b), the first point of secant^2
    SECANT2 = 3  # S2-S4: the second point, secant(b, B) or secant(a, A)
    MIDPOINT = 4  # L2: (a + b) / 2 when secant^2 shrank the bracket too little


class Bracket(NamedTuple):
    """``[a, b]``: ``phi'(a) < 0``, ``phi(a) <= phi(0) + eps_k``, ``phi'(b) >= 0``.

    While bisecting (``U3``), ``b`` is instead a step with ``phi(b) > phi(0) + eps_k``, or
    one where ``phi`` is not finite. The points carry no gradient.
    """

    a: LinePoint
    b: LinePoint


class HagerZhangState(NamedTuple):
    bracket: Bracket
    old: Bracket  # [a_j, b_j]: the bracket when the current secant^2 step began
    phase: jax.Array  # a `Phase`: what ``trial`` is
    check: jax.Array  # after a bisection, go to L2 (from secant^2) rather than L1
    trial: jax.Array  # the step evaluated next
    best: LinePoint  # the accepted step, or the lowest step satisfying Armijo; origin at first
    num_evals: jax.Array
    status: jax.Array
    met_nonfinite: jax.Array  # a trial value or slope was NaN or inf


def inside(t: jax.Array, bracket: Bracket) -> jax.Array:
    return (bracket.a.step < t) & (t < bracket.b.step)


def secant(p: LinePoint, q: LinePoint) -> jax.Array:
    return secant_minimizer(p.step, p.slope, q.step, q.slope)


class Constants(NamedTuple):
    """What the loop body reads from the start of a search: the conditions' constants and
    ``phi(0)``, ``phi'(0)`` in at least float32, the others in the search's dtype."""

    c1: jax.Array  # the paper's delta
    c2: jax.Array  # sigma
    epsilon: jax.Array
    theta: jax.Array
    gamma: jax.Array
    grow: jax.Array  # rho
    value0: jax.Array  # phi(0)
    slope0: jax.Array  # phi'(0)
    allowance: jax.Array  # eps_k = epsilon |phi(0)|
    ceiling: jax.Array  # phi(0) + eps_k
    moves: jax.Array  # the least step that moves x (`common.skip_still`)
    step_max: jax.Array


def check_trial(
    k: Constants, trial: LinePoint
) -> tuple[jax.Array, LinePoint, jax.Array, jax.Array]:
    """``(finite, wide, armijo, done)``: the termination test (Hager & Zhang 2005, sec. 4,
    T1 or T2) at the trial, and the trial in at least float32 (``wide``).

    T1, the Wolfe conditions, only where the decrease it asks for, ``c1 t |phi'(0)|``,
    exceeds ``eps_k`` and with a strict decrease (else the Armijo comparison is rounding
    noise); T2, the approximate Wolfe conditions, at any step. ``armijo`` (strict sufficient
    decrease) picks the step returned on failure.
    """
    finite = jnp.isfinite(trial.value) & jnp.isfinite(trial.slope)
    t, v, g = (a.astype(k.value0.dtype) for a in (trial.step, trial.value, trial.slope))
    resolved = k.c1 * t * jnp.abs(k.slope0) > k.allowance  # T1's decrease exceeds eps_k
    # Strict decrease: Armijo met with equality at rounding level is no decrease.
    armijo = finite & armijo_condition(k.value0, k.slope0, v, t, k.c1) & (v < k.value0)
    done = finite & (
        (resolved & armijo & curvature_condition(k.slope0, g, k.c2))
        | approximate_wolfe_condition(k.value0, k.slope0, v, g, k.c1, k.c2, k.epsilon)
    )
    return finite, LinePoint(t, v, g, None), armijo, done


def keep_best(best: LinePoint, trial: LinePoint, armijo: jax.Array, done: jax.Array) -> LinePoint:
    """The result so far: the accepted trial, else the lowest step with sufficient decrease."""
    return loop.select(done | (armijo & (trial.value < best.value)), trial, best)


def update(
    k: Constants, bracket: Bracket, trial: LinePoint, wide: LinePoint, finite: jax.Array
) -> tuple[Bracket, jax.Array, jax.Array]:
    """``(bracket, rises, low)``: the paper's update U1-U2 of ``[a, b]`` by the trial ``c``.

    U1: ``phi'(c) >= 0`` (``rises``) makes ``c`` the new ``b``; U2: ``phi'(c) < 0`` and ``c``
    low makes it the new ``a``. Low: ``phi(c) <= phi(0) + eps_k`` (the paper) and not above
    ``phi(a) + eps_k`` (then ``[a, c]`` holds a minimiser). Neither (U3, or ``phi`` not
    finite): ``c`` becomes ``b`` and ``[a, c]`` is bisected (`bisect_condition`).
    """
    threshold = jnp.minimum(k.ceiling, bracket.a.value.astype(k.value0.dtype) + k.allowance)
    rises = finite & (wide.slope >= 0)  # U1: the new b
    low = finite & (wide.slope < 0) & (wide.value <= threshold)  # U2: the new a
    point = trial._replace(grad=None, aux=None)
    bracket = Bracket(loop.select(low, point, bracket.a), loop.select(low, bracket.b, point))
    return bracket, rises, low


def expand_condition(phase: jax.Array, low: jax.Array) -> jax.Array:
    """B3: the search for the initial bracket goes on (the step grows by ``grow``) while the
    trial is low: ``phi'(c) < 0`` and ``phi(c) <= phi(0) + eps_k``."""
    return (phase == Phase.EXPAND) & low


def bisect_condition(phase: jax.Array, rises: jax.Array, low: jax.Array) -> jax.Array:
    """U3: bisect ``[a, c]`` when the trial ``c`` neither rises nor is low (U3 entered, or
    U3 c: a high bisection point becomes ``b``), and go on after a low one (U3 b: it becomes
    ``a``); a rising bisection point ends it (U3 a)."""
    return (~rises & ~low) | ((phase == Phase.BISECT) & low)


def return_to_l2(phase: jax.Array, check: jax.Array) -> jax.Array:
    """Whether a bisection, when it ends, goes on to L2 (it began in secant^2) rather than
    to L1 (it began in the bracket search, B2)."""
    return jnp.where(
        phase == Phase.BISECT, check, (phase == Phase.SECANT) | (phase == Phase.SECANT2)
    )


def secant2(
    phase: jax.Array, old: Bracket, trial: LinePoint, bracket: Bracket, rises: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(second, try_second)``: S2-S4 of the double secant step. After its first point
    ``c`` (S1), the secant from the end of ``[a_j, b_j]`` that ``c`` replaced: ``secant(b,
    B)`` if ``c`` became ``b`` (S2), ``secant(a, A)`` if it became ``a`` (S3); it is tried
    only if it is inside the new bracket (S4, the test of U0)."""
    second = jnp.where(rises, secant(old.b, trial), secant(old.a, trial))
    return second, (phase == Phase.SECANT) & inside(second, bracket)


def shrink_condition(
    k: Constants,
    phase: jax.Array,
    try_second: jax.Array,
    check: jax.Array,
    bracket: Bracket,
    old: Bracket,
) -> jax.Array:
    """L2: after secant^2 (and any bisection it led to), bisect at the midpoint if the
    bracket shrank by less than ``gamma``: ``b - a > gamma (b_j - a_j)``."""
    to_l2 = (
        ((phase == Phase.SECANT) & ~try_second)
        | (phase == Phase.SECANT2)
        | ((phase == Phase.BISECT) & check)
    )
    a, b = bracket
    too_wide = (b.step - a.step) > k.gamma * (old.b.step - old.a.step)
    return to_l2 & too_wide


def next_trial(
    k: Constants, choices: list[jax.Array], bracket: Bracket, step: jax.Array, second: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(phase, trial)``: what the next trial is, in the order of ``choices`` (B3's grown
    step, U3's bisection point ``(1 - theta) a + theta b``, S4's second secant step, L2's
    midpoint), else L1's new secant^2 (S1: ``secant(a, b)``, the midpoint if that is not
    strictly inside the bracket). Never a trial that leaves ``x`` unchanged: raised to
    ``moves``, and clipped to ``step_max``."""
    a, b = bracket
    phase = jnp.select(
        choices, [Phase.EXPAND, Phase.BISECT, Phase.SECANT2, Phase.MIDPOINT], Phase.SECANT
    ).astype(jnp.int32)
    half = (a.step + b.step) / 2
    first = secant(a, b)  # S1, safeguarded
    following = jnp.select(
        choices,
        [
            jnp.minimum(k.grow * step, k.step_max),
            (1 - k.theta) * a.step + k.theta * b.step,
            second,
            half,
        ],
        jnp.where(inside(first, bracket), first, half),
    )
    return phase, jnp.minimum(jnp.maximum(following, k.moves), k.step_max)


def decide_status(
    k: Constants,
    done: jax.Array,
    expanding: jax.Array,
    step: jax.Array,
    following: jax.Array,
    bracket: Bracket,
) -> jax.Array:
    """``SUCCESS`` (T1 or T2 holds); ``STEP_LIMIT`` if the bracket search reached
    ``step_max``; ``ROUNDING`` if the next trial is not strictly inside the bracket (the
    trials' rounding, or a bracket below the step resolution); else ``RUNNING``."""
    return jnp.where(
        done,
        Status.SUCCESS,
        jnp.where(
            expanding & (step >= k.step_max),
            Status.STEP_LIMIT,
            jnp.where(~expanding & ~inside(following, bracket), Status.ROUNDING, RUNNING),
        ),
    ).astype(jnp.int32)


def make_step(phi: Callable, k: Constants) -> Callable:
    """One evaluation of the paper's line search (L0-L3): test the trial (T1/T2), update
    the bracket (U1-U3), decide what the next trial is (B3, U3, S2-S4, L2, else L1) and
    compute it."""

    def step(s: HagerZhangState) -> HagerZhangState:
        trial = phi(s.trial)
        finite, wide, armijo, done = check_trial(k, trial)
        best = keep_best(s.best, trial, armijo, done)
        bracket, rises, low = update(k, s.bracket, trial, wide, finite)
        expanding = expand_condition(s.phase, low)
        bisecting = bisect_condition(s.phase, rises, low)
        check = return_to_l2(s.phase, s.check)
        second, try_second = secant2(s.phase, s.old, trial, bracket, rises)
        midpoint = shrink_condition(k, s.phase, try_second, s.check, bracket, s.old)
        choices = [expanding, bisecting, try_second, midpoint]  # else L1: a new secant^2
        next_phase, following = next_trial(k, choices, bracket, trial.step, second)
        old = loop.select(next_phase == Phase.SECANT, bracket, s.old)  # L1 starts a round
        status = decide_status(k, done, expanding, trial.step, following, bracket)
        return HagerZhangState(
            bracket,
            old,
            next_phase,
            check,
            following,
            best,
            s.num_evals + 1,
            status,
            s.met_nonfinite | ~finite,
        )

    return step


@constant_step
def hager_zhang(
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
    c2: float | jax.Array = 0.9,
    epsilon: float | jax.Array | None = None,
    theta: float | jax.Array = 0.5,
    gamma: float | jax.Array = 0.66,
    grow: float | jax.Array = GROW,
    step_max: float | jax.Array | None = None,
    max_evals: int = 30,
) -> LineSearchResult:
    r"""Hager & Zhang's line search for the Wolfe or approximate Wolfe conditions.

    Stops at the first evaluated ``t`` where either the Wolfe conditions
    ``phi(t) <= phi(0) + c1 t phi'(0)``, ``phi'(t) >= c2 phi'(0)``, or the approximate Wolfe
    conditions ``(2 c1 - 1) phi'(0) >= phi'(t) >= c2 phi'(0)``,
    ``phi(t) <= phi(0) + epsilon |phi(0)|`` hold (`jaxls.wolfe_condition`,
    `jaxls.approximate_wolfe_condition`), ``phi(t) = f(x + t d)``. The approximate
    conditions use only slopes and a tolerance on the value, so they stay meaningful where
    ``phi(t) - phi(0)`` is lost to rounding (near a minimiser in float32), where the Armijo
    test of a backtracking search accepts or rejects on rounding noise.

    The search (the paper's L0-L3): a bracket ``[a, b]`` with ``phi'(a) < 0``,
    ``phi(a) <= phi(0) + eps_k`` and ``phi'(b) >= 0`` is found by growing the step by
    ``grow`` (B0-B3); each round then tries the double secant step
    ``secant^2`` (secant ``(a phi'(b) - b phi'(a)) / (phi'(b) - phi'(a))``, then a second
    secant from the side it replaced), and bisects (L2) when the bracket shrank by less than
    ``gamma``. An update that meets a step with ``phi'(c) < 0`` and
    ``phi(c) > phi(0) + eps_k`` (or ``phi`` not finite: a step too long) bisects
    ``[a, c]`` at ``(1 - theta) a + theta c`` until a new ``b`` is found (U3). Each
    trial costs one evaluation of ``f`` and its gradient.

    Safeguards beyond the paper. The Wolfe conditions accept only a strict decrease whose
    required size ``c1 t |phi'(0)|`` exceeds ``eps_k``: below it the Armijo comparison is
    decided by rounding (in float32 near a minimiser it accepts steps that are uphill in
    exact arithmetic) and only the approximate conditions, which bound the slope from
    above, may accept. A trial with ``phi'(c) < 0`` counts as low (the new ``a``) only if
    ``phi(c)`` is also at most ``phi(a) + eps_k``; above it, ``[a, c]`` holds a minimiser
    and is bisected (U3) like a step above ``phi(0) + eps_k``: the bracket search stops at
    the first rise, as Moré-Thuente's and zoom's do, instead of growing past a minimiser
    into a far one (or into a region where float32 values are rounding noise). A first
    secant step that is not strictly inside the bracket (rounding) becomes the midpoint. A
    second secant step whose quadratic model of ``phi`` is concave is skipped. The
    conditions are tested in at least float32 (in bfloat16, ``2 c1 - 1`` rounds to -1).
    Steps too short to move ``x`` are never tried: below the step resolution
    ``t_r = min_i gap_i / (2 |d_i|)`` (``gap_i`` the spacing of floating numbers at ``x_i``
    on the side ``d_i`` points to) the trial point ``x + t d`` rounds to ``x`` itself. A
    trial below ``t_r`` is raised to it (the first step that moves some entry, computed
    once with a few ulps' margin), and the search stops with ``ROUNDING`` when that falls
    outside the bracket, or at once, without an evaluation, if ``step_max < t_r``: at a
    point one ulp from a float32 minimiser a search costs a call or two, not its budget.

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
      step_init: first trial step, ``> 0``; raised to the step resolution ``t_r`` (above)
        if below it.
      c1: sufficient-decrease constant (the paper's ``delta``), in ``(0, 1/2)``.
      c2: curvature constant (``sigma``), in ``[c1, 1)``.
      epsilon: relative error allowed in ``phi`` (``eps_k = epsilon |phi(0)|``), ``> 0``.
        ``None`` (default): 16 ulps of the search's dtype, ``16 eps``: ``1.9e-6`` in
        float32, ``3.6e-15`` in float64, ``0.125`` in bfloat16, ``0.016`` in float16. The
        paper's ``1e-6`` is 8 float32 ulps, below the rounding error of sums that cancel:
        with it, L-BFGS stalled on 2 of 400 float32 quadratics (optax's zoom on none).
      theta: where a bisection (U3) splits the bracket, in ``(0, 1)``.
      gamma: required shrink factor of the bracket per secant round, in ``(0, 1)``.
      grow: factor ``> 1`` by which the step grows while seeking the initial bracket
        (Hager and Zhang's ``rho``). The default 2 is the doubling of optax's zoom and
        scipy; the paper's 5 grows past nearby minima (on jaxopt's float32 test function
        ``cos(sum(exp(-x))^2)`` it accepted step 25, where values are rounding noise, for
        a minimiser near 2.2) and, on scipy's gh-12157 function (period 4/3,
        ``phi(5^k) = 0``), to step 2.4e15.
      step_max: largest step tried, ``> 0``; default: the largest finite number of the
        dtype. ``step_init`` is clipped to it.
      max_evals: hard cap on evaluations of ``value_and_grad``, the one at ``x`` included.

    Every constant may be a Python number or a scalar array, traced or not; constants are
    cast to the search's dtype on entry. A bad concrete constant raises; a bad traced one
    gives ``INVALID_INPUT``.

    Returns:
      A `LineSearchResult`. ``status``: ``SUCCESS`` (the Wolfe or the approximate Wolfe
      conditions hold at ``step``; the latter allow ``phi(t)`` up to ``eps_k`` above
      ``phi(0)``); ``MAX_EVALS`` (budget spent), ``STEP_LIMIT`` (``step_max`` reached with
      ``phi`` still descending: ``f`` may be unbounded below) or ``ROUNDING`` (the bracket
      shrank to rounding level, or no step left to try moves ``x``): these failures return
      the evaluated step of lowest value among those satisfying Armijo with ``c1``, or
      step 0: never an uphill step;
      ``NOT_DESCENT`` (``phi'(0) >= 0``: step 0, nothing tried); ``NONFINITE`` (``f`` or
      its gradient not finite at ``x``); ``INVALID_INPUT`` (a traced constant out of its
      range, ``step_init`` or ``step_max`` not positive, or a non-finite direction). Every
      call computes value and gradient, so ``num_grads == num_evals``; ``met_nonfinite``
      says whether some trial's value or slope was NaN or inf.

    Raises:
      ValueError: a constant outside its range (above), ``step_init <= 0``,
        ``step_max <= 0``, ``max_evals < 1``.
      TypeError: ``has_aux`` not a bool; a constant that is not a real scalar.

    References:
      W. W. Hager & H. Zhang, "A new conjugate gradient method with guaranteed descent and
      an efficient line search", SIAM J. Optim. 16 (2005) 170-192, sec. 4 (conditions
      T1/T2, update U0-U3, secant^2 S1-S4, bracket B0-B3, line search L0-L3);
      "Algorithm 851: CG_DESCENT", ACM Trans. Math. Softw. 32 (2006) 113-137.

    Example:
      >>> import jax.numpy as jnp, jaxls
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> res = jaxls.hager_zhang(f, jnp.zeros(2), jnp.full(2, 4.0))
      >>> print(float(res.step), int(res.num_evals), bool(res.converged))
      0.25 3 True
    """
    call = "hager_zhang"
    valid = (
        checks.open_interval(call, "c1", c1, 0.0, 0.5)
        & checks.open_interval(call, "c2", c2, 0.0, 1.0)
        & checks.open_interval(call, "theta", theta, 0.0, 1.0)
        & checks.open_interval(call, "gamma", gamma, 0.0, 1.0)
        & checks.greater_than(call, "grow", grow, 1.0)
    )
    if checks.is_concrete(c1) and checks.is_concrete(c2):
        if not float(c1) <= float(c2):
            raise ValueError(f"`jaxls.{call}(c1={c1!r}, c2={c2!r})`: `c1` must be <= `c2`.")
    else:
        valid = valid & (jnp.asarray(c1) <= jnp.asarray(c2))
    if epsilon is not None:
        valid = valid & checks.positive(call, "epsilon", epsilon)
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
    origin, dtype, step_max = start.origin, start.dtype, start.step_max
    theta, gamma, grow = (start.constant(c) for c in (theta, gamma, grow))
    # The conditions are tested in at least float32: in bfloat16 or float16, 2 c1 - 1 with
    # c1 = 1e-4 would round to -1 and admit the step that mirrors phi(0) on a parabola.
    wide = jnp.promote_types(dtype, jnp.float32)
    if epsilon is None:
        epsilon = EPSILON_ULPS * jnp.finfo(dtype).eps
    c1, c2, epsilon = (jnp.asarray(c).astype(wide) for c in (c1, c2, epsilon))
    v0, d0 = origin.value.astype(wide), origin.slope.astype(wide)
    allowance = epsilon * jnp.abs(v0)  # eps_k
    ceiling = v0 + allowance  # phi(0) + eps_k
    k = Constants(c1, c2, epsilon, theta, gamma, grow, v0, d0, allowance, ceiling, moves, step_max)

    nan = jnp.asarray(jnp.nan, dtype)
    unknown = LinePoint(jnp.asarray(jnp.inf, dtype), nan, nan, None)
    bracket = Bracket(origin._replace(grad=None, aux=None), unknown)
    state = HagerZhangState(
        bracket=bracket,
        old=bracket,
        phase=jnp.asarray(Phase.EXPAND, jnp.int32),
        check=jnp.asarray(False),
        trial=start.step_init,
        best=origin,
        num_evals=start.num_evals,
        status=start.status,
        met_nonfinite=jnp.zeros((), bool),
    )
    state = common.run_while(make_step(start.phi, k), state, max_evals, call)
    return common.result(
        start, state.best, state.num_evals, state.status, met_nonfinite=state.met_nonfinite
    )
