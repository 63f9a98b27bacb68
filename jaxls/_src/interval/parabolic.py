"""Successive parabolic interpolation on a bracketing triple, safeguarded by golden section.

State: three evaluated points ``x1 < x2 < x3`` and the bracket they certify. When the middle
one is the best (``f2 <= f1, f2 <= f3``) the bracket is ``[x1, x3]``; when an end is the
best, which happens only when the start did not bracket (a function monotone near a bound),
it is the half next to that end (``[x1, x2]`` or ``[x2, x3]``). A step computes the vertex
``u`` of the parabola through the triple and a golden-section point in the larger part of
the bracket, selects one with `jnp.where`, evaluates ``fun`` once, and keeps the three
consecutive points around the best of the four.

The first steps evaluate the initial triple ``(lower, x_init, upper)``, one point per step
(``x_init`` first); unevaluated points hold ``+inf``. When ``f(lower) < f(x_init)`` the
minimiser lies in ``[lower, x_init]``, and ``upper`` is not evaluated: a point inside
``[lower, x_init]`` is searched instead. With ``has_aux``, each point of the triple carries
its aux output, so that the best one's is at hand. Widths are taken in halves, so that an
interval wider than the dtype's largest number is searched like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src import checks
from jaxls._src.implicit import interval as implicit
from jaxls._src.interval import common
from jaxls._src.interval.common import Point, select
from jaxls._src.interval.golden import RHO
from jaxls._src.results import ScalarResult

# Fall back to golden section after this many steps in a row that did not halve the bracket.
MAX_STALLS = 2


class ParabolicState(NamedTuple):
    lower: jax.Array  # the bracket certified by the triple
    upper: jax.Array
    best: Point  # the best point evaluated
    p1: Point  # the triple x1 < x2 < x3
    p2: Point
    p3: Point
    width: jax.Array  # half the bracket width when it last halved
    stalls: jax.Array  # steps since then (int32)
    ties: jax.Array  # comparisons in a row that rounding could not decide
    num_evals: jax.Array
    status: jax.Array


def init(problem: common.Interval, x_init) -> ParabolicState:
    unknown = jnp.asarray(jnp.inf, problem.dtype)
    middle = Point(x_init, unknown, problem.aux)
    return ParabolicState(
        lower=problem.lower,
        upper=problem.upper,
        best=middle,
        p1=Point(problem.lower, unknown, problem.aux),
        p2=middle,
        p3=Point(problem.upper, unknown, problem.aux),
        width=common.half_width(problem.lower, problem.upper),
        stalls=jnp.zeros((), jnp.int32),
        ties=jnp.zeros((), jnp.int32),
        num_evals=jnp.zeros((), jnp.int32),
        status=common.initial_status(problem),
    )


def certify(p1: Point, p2: Point, p3: Point):
    """The best of the triple and the bracket around it: ``(lower, upper, best)``."""
    middle = (p2.value <= p1.value) & (p2.value <= p3.value)
    left = ~middle & (p1.value <= p3.value)
    best = select(middle, p2, select(left, p1, p3))
    lower = jnp.where(middle | left, p1.x, p2.x)
    upper = jnp.where(left, p2.x, p3.x)
    return lower, upper, best


def fit_parabola(p1: Point, p2: Point, p3: Point, dtype) -> tuple[jax.Array, jax.Array]:
    """``(convex, vertex)`` of the parabola through the triple; the vertex is used if convex."""
    (x1, f1, _), (x2, f2, _), (x3, f3, _) = p1, p2, p3
    # Vertex of the parabola through the triple, u = x2 - numerator / (2 denominator):
    #   numerator = (x2-x1)^2 (f2-f3) - (x2-x3)^2 (f2-f1),
    #   denominator = (x2-x1)(f2-f3) - (x2-x3)(f2-f1) = -(x2-x1)(x3-x2)(x3-x1) f[x1,x2,x3],
    # negative iff the parabola is convex. Any other case (flat or concave parabola, an
    # unevaluated point) is rejected, so the division is always by a negative number.
    a = (x2 - x1) * (f2 - f3)
    c = (x2 - x3) * (f2 - f1)
    numerator = (x2 - x1) * a - (x2 - x3) * c
    denominator = a - c
    convex = (denominator < 0) & jnp.isfinite(f1) & jnp.isfinite(f2) & jnp.isfinite(f3)
    vertex = (x2 - numerator / (2 * jnp.where(convex, denominator, -1))).astype(dtype)
    return convex, vertex


def accept_parabola(s: ParabolicState, convex, vertex) -> jax.Array:
    """Whether to step to the vertex: convex, not stalled, and inside or beyond the best end."""
    x, lower, upper = s.best.x, s.lower, s.upper
    # Accept a vertex inside the bracket, or beyond the end that holds the best point
    # (a triple that does not bracket): the minimiser is then likely at that end.
    inside = (vertex > lower) & (vertex < upper)
    beyond = ((x == lower) & (vertex <= lower)) | ((x == upper) & (vertex >= upper))
    return convex & (inside | beyond) & (s.stalls < MAX_STALLS)


def golden_trial(s: ParabolicState) -> tuple[jax.Array, jax.Array]:
    """``(right, golden)``: a golden-section point from the best point into the larger segment."""
    x, lower, upper = s.best.x, s.lower, s.upper
    right = common.half_width(x, upper) >= common.half_width(lower, x)
    return right, common.toward(x, jnp.where(right, upper, lower), RHO)


def safeguard(u, x, right, lower, upper, half) -> jax.Array:
    """``u`` moved to ``half`` from ``x`` if closer, and clipped to ``[lower, upper]``."""
    # Never closer than tol / 2 to the best point: this is what makes the bracket shrink
    # to the tolerance once the vertex sits on the best point.
    u = jnp.where(jnp.abs(u - x) < half, x + jnp.where(right, half, -half), u)
    return jnp.clip(u, lower, upper)


def initial_triple(s: ParabolicState, u):
    """``((init_x1, init_x2, init_x3), u)``: the first steps evaluate the initial triple.

    ``x_init`` first, then ``lower``, then ``upper`` if the bracket still reaches it.
    """
    (x1, f1, _), (x2, f2, _), (x3, _, _) = s.p1, s.p2, s.p3
    n = s.num_evals
    init_x2 = n == 0
    init_x1 = n == 1
    init_x3 = (n == 2) & (f2 <= f1)
    u = jnp.where(init_x2, x2, jnp.where(init_x1, x1, jnp.where(init_x3, x3, u)))
    return (init_x1, init_x2, init_x3), u


def update_triple(s: ParabolicState, new: Point, bracketing) -> tuple[Point, Point, Point]:
    """The three consecutive points around the best of the four.

    When the best is an end of the triple, ``u`` lies between it and ``x2`` and is kept next
    to it. A tie keeps the old best point, so that on a plateau of equal values the bracket
    closes on it.
    """
    better = (new.value < s.best.value) | ~bracketing
    left = new.x < s.p2.x
    p1 = select(left, select(better, s.p1, new), select(better, s.p2, s.p1))
    p2 = select(better, new, s.p2)
    p3 = select(left, select(better, s.p2, s.p3), select(better, s.p3, new))
    return p1, p2, p3


def fill_triple(s: ParabolicState, new: Point, init, points):
    """``(searching, points)``: while the triple is being evaluated, ``new`` fills its slot."""
    init_x1, init_x2, init_x3 = init
    p1, p2, p3 = points
    searching = ~(init_x1 | init_x2 | init_x3)
    p1 = select(searching, p1, select(init_x1, new, s.p1))
    p2 = select(searching, p2, select(init_x2, new, s.p2))
    p3 = select(searching, p3, select(init_x3, new, s.p3))
    return searching, (p1, p2, p3)


def count_stalls(s: ParabolicState, lower, upper, searching) -> tuple[jax.Array, jax.Array]:
    """``(width, stalls)``: fall back to golden section until the bracket halves again."""
    width = common.half_width(lower, upper)
    halved = ~searching | (width <= s.width / 2)
    stalls = jnp.where(halved, 0, s.stalls + 1).astype(jnp.int32)
    return jnp.where(halved, width, s.width), stalls


def keep_finite(s: ParabolicState, new: Point, lower, upper, best, points):
    """``(finite, lower, upper, best, points)``: on a NaN or inf, keep the old state.

    The search stops on the best finite point; if it is the very first value, the result is
    that point (finite, inside the interval) with its value.
    """
    finite = jnp.isfinite(new.value)
    first = s.num_evals == 0
    lower = jnp.where(finite, lower, s.lower)
    upper = jnp.where(finite, upper, s.upper)
    best = select(finite, best, select(first, new, s.best))
    points = tuple(
        select(finite, p, old) for p, old in zip(points, (s.p1, s.p2, s.p3), strict=True)
    )
    return finite, lower, upper, best, points


def make_step(fun: Callable, problem: common.Interval) -> Callable:
    """One evaluation; converged when ``max(x - lower, upper - x) <= tol`` (``ROUNDING`` at the
    dtype's resolution)."""
    dtype = problem.dtype
    half = problem.stop / 2

    def step(s: ParabolicState) -> ParabolicState:
        x, lower, upper = s.best.x, s.lower, s.upper
        bracketing = (s.p2.value <= s.p1.value) & (s.p2.value <= s.p3.value)
        convex, vertex = fit_parabola(s.p1, s.p2, s.p3, dtype)
        parabolic = accept_parabola(s, convex, vertex)
        right, golden = golden_trial(s)
        u = jnp.where(parabolic, jnp.clip(vertex, lower, upper), golden)
        u = safeguard(u, x, right, lower, upper, half)
        init, u = initial_triple(s, u)
        fu, aux = common.evaluate(fun, u, problem)
        new = Point(u, fu, aux)

        points = update_triple(s, new, bracketing)
        searching, points = fill_triple(s, new, init, points)
        lower, upper, best = certify(*points)
        width, stalls = count_stalls(s, lower, upper, searching)
        finite, lower, upper, best, points = keep_finite(s, new, lower, upper, best, points)

        ties = common.count_ties(s.ties, fu, s.best.value)
        spread = common.spread(best.x, lower, upper)
        status = common.stop_status(spread, problem, problem.tol, finite, ties)
        n = s.num_evals + 1
        p1, p2, p3 = points
        return ParabolicState(lower, upper, best, p1, p2, p3, width, stalls, ties, n, status)

    return step


def finish(problem: common.Interval, s: ParabolicState) -> ScalarResult:
    best = s.best
    return common.result(
        problem, best.x, best.value, s.lower, s.upper, s.num_evals, s.status, best.aux
    )


def parabolic(
    fun: Callable,
    lower: float | jax.Array,
    upper: float | jax.Array,
    *,
    tol: float | jax.Array | None = None,
    max_evals: int = 100,
    x_init: float | jax.Array | None = None,
    has_aux: bool = False,
) -> ScalarResult:
    r"""Minimise ``fun`` on ``[lower, upper]`` by successive parabolic interpolation.

    Each step jumps to the vertex of the parabola through a bracketing triple
    ``x1 < x2 < x3`` (``f2 <= f1, f2 <= f3``),
    ``u = x2 - ((x2-x1)^2 (f2-f3) - (x2-x3)^2 (f2-f1)) / (2 [(x2-x1)(f2-f3) - (x2-x3)(f2-f1)])``,
    and replaces a point so that the triple brackets again. Near a smooth minimum the
    iteration converges with order about 1.32.

    Departures from the lecture's listing, which divides by zero on an exact quadratic (the
    first jump lands on the minimiser and the triple degenerates) and may stall or leave the
    bracket: here the step is safeguarded. The denominator is never used when it is not
    negative (flat or concave parabola); a golden-section step into the larger segment
    replaces the jump when the vertex is not inside the bracket, and when two steps in a row
    failed to halve the bracket (until it has halved); and no point is placed closer than
    ``tol / 2`` to the best one (it is moved to ``x2 +- tol / 2``, toward the larger
    segment), which is what shrinks the bracket to the tolerance. A start that does not
    bracket (``f(lower) < f(x_init)``, say, on a function increasing on the interval) is
    handled by searching the half next to the better end, where a vertex beyond that end
    sends the next point to ``tol / 2`` from it. The result is the best evaluated point with
    its value, not the midpoint ``(x1 + x3) / 2`` whose value is never computed; and the
    values of the triple are kept with its points, so each point is evaluated once.

    Dtypes and rounding as in `golden_section`: the search runs in the dtype of the bounds
    promoted with that of ``fun``'s value, and stops with ``ROUNDING``, never ``SUCCESS``,
    when the bracket reaches what the dtype resolves (``4 eps max(|lower|, |upper|)``; a
    concrete ``tol`` below that warns at call time, and the steps then keep that resolution
    from the best point; the default is always above it) or after two comparisons in a row
    that were ties within rounding (``|f(u) - f(x)| <= 4 eps |f|``). Under `jax.vmap` a
    member that stopped, or whose input is invalid, is still evaluated each step (its result
    discarded) at a point of its own bracket, with invalid input at ``lower`` (else
    ``upper``, else 0: the first that is finite); run alone, it is not.

    Derivatives (`jax.grad`, `jax.jvp`, ``jaxls.ad``) in what ``fun`` closes over and in
    the bounds: ``dx = -f_x,theta dtheta / f_xx`` inside (implicit function theorem), the
    bound's own on a bound, ``d value = f_theta dtheta`` (envelope theorem); NaN where
    undefined (status not ``SUCCESS``/``ROUNDING``, or ``f_xx <= 0``). A few derivative
    evaluations at ``x``, never through the loop (``jaxls._src.implicit.interval``).

    Args:
      fun: scalar function of a scalar, written in ``jax.numpy``; with ``has_aux``, it
        returns ``(value, aux)``.
      lower: lower end of the interval (may be traced).
      upper: upper end, ``> lower`` (may be traced).
      tol: absolute tolerance on the minimiser, ``> 0`` (may be traced): ``SUCCESS`` means
        that the final bracket certifies ``max(x - lower, upper - x) <= tol``. By default
        (``None``) ``sqrt(eps) max(1, |lower|, |upper|)`` for the search's dtype, as in
        `golden_section`: about ``3.5e-4`` in float32 (JAX's default), ``1.5e-8`` in float64
        (x64 enabled), ``0.088`` in bfloat16 and ``0.031`` in float16, times
        ``max(1, |lower|, |upper|)``, per member under `jax.vmap`; it never warns. A given
        ``tol`` is used as is.
      max_evals: hard cap on evaluations (static Python int, ``>= 1``).
      x_init: the initial middle point, strictly inside ``(lower, upper)`` (may be traced);
        by default the midpoint. The initial triple is ``(lower, x_init, upper)``.
      has_aux: ``fun`` returns ``(value, aux)``; the result's ``aux`` is the one at ``x``.

    Returns:
      A `ScalarResult`: ``x`` the best point evaluated, ``value = fun(x)``, ``[lower, upper]``
      the final bracket. ``status`` is ``SUCCESS``, ``ROUNDING`` (the dtype or the values
      resolve no further: the best point and its bracket are returned), ``MAX_EVALS``
      (budget spent: the same), ``NONFINITE`` (``fun`` returned NaN or inf: the search
      stops on the best finite point) or ``INVALID_INPUT`` (traced bounds not finite or not
      ordered, ``tol`` not finite and ``> 0``, or ``x_init`` not strictly inside: nothing
      is evaluated, ``x`` and ``value`` are NaN, ``aux`` is zeros).

    Raises:
      ValueError: for concrete bounds that are not finite, not ordered or not distinct in
        the dtype, a concrete ``tol`` not finite and ``> 0``, ``max_evals < 1``, or a
        concrete ``x_init`` not strictly inside ``(lower, upper)``.
      TypeError: ``fun`` is not callable or does not return a real scalar (or a pair, with
        ``has_aux``); complex bounds; ``has_aux`` not a bool.

    Warns:
      UserWarning: a concrete ``tol`` below what the dtype resolves on concrete bounds.

    References:
      Nocedal & Wright, Numerical Optimization (2006), sec. 3.5; R. P. Brent, Algorithms for
      Minimization without Derivatives (1973), ch. 5; M. T. Heath, Scientific Computing
      (2002), sec. 6.4.2 (successive parabolic interpolation).

    Example:
      >>> import jaxls
      >>> res = jaxls.parabolic(lambda x: (x - 2.0) ** 2, 0.0, 5.0, tol=1e-5)
      >>> print(f"{float(res.x):.6f}", int(res.num_evals), bool(res.converged))
      2.000000 6 True
    """
    call = "parabolic"
    problem = common.setup(call, fun, lower, upper, tol, max_evals, has_aux)
    if x_init is None:
        x_init = problem.lower / 2 + problem.upper / 2
    else:
        checks.finite(call, "x_init", x_init)
        if checks.is_concrete(x_init) and checks.is_concrete(lower) and checks.is_concrete(upper):
            checks.open_interval(call, "x_init", x_init, float(lower), float(upper))
        x_init = common.as_scalar(call, "x_init", x_init, problem.dtype)
        bad = ~((problem.given_lower < x_init) & (x_init < problem.given_upper))
        problem = common.invalidate(problem, bad)
        x_init = jnp.where(problem.invalid, problem.lower, x_init)

    def run(fun: Callable, problem: common.Interval, x_init: jax.Array) -> ScalarResult:
        state = common.run_while(make_step(fun, problem), init(problem, x_init), max_evals)
        return finish(problem, state)

    return implicit.minimiser(fun, problem, run, x_init)
