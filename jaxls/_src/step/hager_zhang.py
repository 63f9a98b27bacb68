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
    approximate_wolfe_condition,
    armijo_condition,
    curvature_condition,
)
from jaxls._src.step.interpolate import secant_minimizer
from jaxls._src.step.line import LinePoint
from jaxls._src.step.resolution import step_resolution

# Defaults: the factor by which the step grows while no bracket is found (`grow`, the paper's
# rho, which it sets to 5), and the relative error allowed in phi, in ulps of the search's
# dtype (the paper's 1e-6): common.EPSILON_ULPS.
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


def inside(t, bracket: Bracket):
    return (bracket.a.step < t) & (t < bracket.b.step)


def secant(p: LinePoint, q: LinePoint):
    return secant_minimizer(p.step, p.slope, q.step, q.slope)


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
    origin, dtype = start.origin, start.dtype
    step_max = start.step_max
    # Below `still` (in phi's units) x + t d rounds to x; from `moves` on it does not.
    still, moves = step_resolution(x, direction, start.scale, dtype)
    running = start.status == RUNNING
    frozen = running & (still > step_max)  # no step up to step_max moves x
    t0 = jnp.where(running, jnp.minimum(jnp.maximum(start.step_init, moves), step_max), 0)
    theta, gamma, grow = (start.constant(c) for c in (theta, gamma, grow))
    # The conditions are tested in at least float32: in bfloat16 or float16, 2 c1 - 1 with
    # c1 = 1e-4 would round to -1 and admit the step that mirrors phi(0) on a parabola.
    wide = jnp.promote_types(dtype, jnp.float32)
    if epsilon is None:
        epsilon = common.EPSILON_ULPS * jnp.finfo(dtype).eps
    c1, c2, epsilon = (jnp.asarray(c).astype(wide) for c in (c1, c2, epsilon))
    v0, d0 = origin.value.astype(wide), origin.slope.astype(wide)
    allowance = epsilon * jnp.abs(v0)  # eps_k
    ceiling = v0 + allowance  # phi(0) + eps_k

    def step(s: HagerZhangState) -> HagerZhangState:
        trial = start.phi(s.trial)
        finite = jnp.isfinite(trial.value) & jnp.isfinite(trial.slope)
        t, v, g = (a.astype(wide) for a in (trial.step, trial.value, trial.slope))
        resolved = c1 * t * jnp.abs(d0) > allowance  # T1's decrease exceeds eps_k
        # Strict decrease: Armijo met with equality at rounding level is no decrease.
        armijo = finite & armijo_condition(v0, d0, v, t, c1) & (v < v0)
        done = finite & (
            (resolved & armijo & curvature_condition(d0, g, c2))
            | approximate_wolfe_condition(v0, d0, v, g, c1, c2, epsilon)
        )
        best = loop.select(done | (armijo & (trial.value < s.best.value)), trial, s.best)

        # The update (U1-U3): the trial replaces a if it is low, else b. Low: below phi(0) +
        # eps_k (the paper) and not above phi(a) + eps_k (then [a, trial] holds a minimiser).
        threshold = jnp.minimum(ceiling, s.bracket.a.value.astype(wide) + allowance)
        rises = finite & (g >= 0)  # U1: the new b
        low = finite & (g < 0) & (v <= threshold)  # U2: the new a
        point = trial._replace(grad=None, aux=None)
        bracket = Bracket(
            loop.select(low, point, s.bracket.a), loop.select(low, s.bracket.b, point)
        )
        a, b = bracket

        # Where the search goes next.
        phase = s.phase
        expanding = (phase == Phase.EXPAND) & low  # B3
        bisecting = (~rises & ~low) | ((phase == Phase.BISECT) & low)  # U3 entered or going on
        check = jnp.where(
            phase == Phase.BISECT, s.check, (phase == Phase.SECANT) | (phase == Phase.SECANT2)
        )
        # S2 / S3: the secant from the end of [a_j, b_j] that the first point replaced.
        second = jnp.where(rises, secant(s.old.b, point), secant(s.old.a, point))
        try_second = (phase == Phase.SECANT) & inside(second, bracket)  # S4, through U0
        to_l2 = (
            ((phase == Phase.SECANT) & ~try_second)
            | (phase == Phase.SECANT2)
            | ((phase == Phase.BISECT) & s.check)
        )
        too_wide = (b.step - a.step) > gamma * (s.old.b.step - s.old.a.step)  # L2
        midpoint = to_l2 & too_wide
        choices = [expanding, bisecting, try_second, midpoint]  # else L1: a new secant^2
        next_phase = jnp.select(
            choices, [Phase.EXPAND, Phase.BISECT, Phase.SECANT2, Phase.MIDPOINT], Phase.SECANT
        ).astype(jnp.int32)
        half = (a.step + b.step) / 2
        first = secant(a, b)  # S1, safeguarded
        following = jnp.select(
            choices,
            [
                jnp.minimum(grow * trial.step, step_max),
                (1 - theta) * a.step + theta * b.step,
                second,
                half,
            ],
            jnp.where(inside(first, bracket), first, half),
        )
        # Never a trial that leaves x unchanged: outside the bracket, it ends the search.
        following = jnp.minimum(jnp.maximum(following, moves), step_max)
        old = loop.select(next_phase == Phase.SECANT, bracket, s.old)  # L1 starts a round

        status = jnp.where(
            done,
            Status.SUCCESS,
            jnp.where(
                expanding & (trial.step >= step_max),
                Status.STEP_LIMIT,
                jnp.where(~expanding & ~inside(following, bracket), Status.ROUNDING, RUNNING),
            ),
        ).astype(jnp.int32)
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

    nan = jnp.asarray(jnp.nan, dtype)
    unknown = LinePoint(jnp.asarray(jnp.inf, dtype), nan, nan, None)
    bracket = Bracket(origin._replace(grad=None, aux=None), unknown)
    state = HagerZhangState(
        bracket=bracket,
        old=bracket,
        phase=jnp.asarray(Phase.EXPAND, jnp.int32),
        check=jnp.asarray(False),
        trial=t0.astype(dtype),
        best=origin,
        num_evals=start.num_evals,
        status=jnp.where(frozen, Status.ROUNDING, start.status).astype(jnp.int32),
        met_nonfinite=jnp.zeros((), bool),
    )
    state = common.run_while(step, state, max_evals, call)
    return common.result(
        start, state.best, state.num_evals, state.status, met_nonfinite=state.met_nonfinite
    )
