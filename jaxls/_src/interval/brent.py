"""Brent's method (Brent 1973, ch. 5, procedure ``localmin``): parabolic steps, golden safeguard.

State: a bracket ``[lower, upper]``; the best point ``x`` (with its aux output), the second
best ``w`` and the previous ``w``, called ``v``; the last step ``d`` and half the one before
it, ``e / 2`` (halved so that it never overflows on an interval wider than the dtype's
largest number; Brent's tests use ``e / 2`` anyway). A step fits
a parabola through ``x, w, v`` and jumps to its vertex when that is a sound move (inside the
bracket, and less than half the step before last); otherwise it takes a golden-section step
into the larger part of the bracket. Both candidates are computed and one is selected with
`jnp.where`, then ``fun`` is evaluated once, outside any branch.

Before any evaluation ``x = w = v`` is a placeholder with value ``+inf``; the first step
evaluates Brent's starting point ``lower + 0.381966 (upper - lower)`` instead of a trial
point, and sets ``x = w = v`` to it, as ``localmin`` does before its loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src.implicit import interval as implicit
from jaxls._src.interval import common
from jaxls._src.interval.common import Point, select
from jaxls._src.interval.golden import RHO
from jaxls._src.results import ScalarResult


class BrentState(NamedTuple):
    lower: jax.Array  # Brent's a
    upper: jax.Array  # Brent's b
    x: Point  # least value so far
    w: Point  # second least value
    v: Point  # previous w
    aux: Any  # fun's aux output at x (None without has_aux)
    d: jax.Array  # last step
    e_half: jax.Array  # half the step before last
    ties: jax.Array  # comparisons in a row that rounding could not decide
    num_evals: jax.Array
    status: jax.Array


Points = tuple[Point, ...]  # x, w, v


def init(problem: common.Interval) -> BrentState:
    start = common.toward(problem.lower, problem.upper, RHO)
    point = Point(start, jnp.asarray(jnp.inf, problem.dtype))
    zero = jnp.zeros((), problem.dtype)
    return BrentState(
        lower=problem.lower,
        upper=problem.upper,
        x=point,
        w=point,
        v=point,
        aux=problem.aux,
        d=zero,
        e_half=zero,
        ties=jnp.zeros((), jnp.int32),
        num_evals=jnp.zeros((), jnp.int32),
        status=common.initial_status(problem),
    )


def fit_parabola(s: BrentState) -> tuple[jax.Array, jax.Array]:
    """Brent's ``p, q >= 0``: the parabola through ``x, w, v`` has its vertex at ``x + p / q``."""
    (x, fx, _), (w, fw, _), (v, fv, _) = s.x, s.w, s.v
    r = (x - w) * (fx - fv)
    q = (x - v) * (fx - fw)
    p = (x - v) * q - (x - w) * r
    q = 2 * (q - r)
    p = jnp.where(q > 0, -p, p)
    return p, jnp.abs(q)


def accept_parabola(s: BrentState, p: jax.Array, q: jax.Array, tol1: jax.Array) -> jax.Array:
    """Whether the vertex is a sound step: inside ``(a, b)`` and under half the step before last."""
    a, b = s.lower, s.upper
    x, w, v = s.x.x, s.w.x, s.v.x
    # Accept it if the step before last was not tiny, and the vertex is inside (a, b)
    # and less than half that step away (|p| < |q e / 2| also rules out q = 0). When
    # two of x, w, v coincide q is 0 in exact arithmetic, but a compiler that fuses
    # multiply-adds can leave rounding noise in it: test for distinct points instead.
    return (
        (x != w)
        & (x != v)
        & (w != v)
        & (jnp.abs(s.e_half) > tol1 / 2)
        & (jnp.abs(p) < jnp.abs(q * s.e_half))
        & (p > q * (a - x))
        & (p < q * (b - x))
    )


def parabolic_trial(
    s: BrentState, above: jax.Array, tol1: jax.Array, tol2: jax.Array, dtype: Any
) -> tuple[jax.Array, jax.Array]:
    """``(accepted, d)``: the step to the vertex, moved ``tol1`` toward ``m`` near an end."""
    a, b, x = s.lower, s.upper, s.x.x
    p, q = fit_parabola(s)
    parabolic = accept_parabola(s, p, q, tol1)
    d = (p / jnp.where(parabolic, q, 1)).astype(dtype)
    u = x + d
    toward_m = jnp.where(above, tol1, -tol1)
    d = jnp.where((u - a < tol2) | (b - u < tol2), toward_m, d)
    return parabolic, d


def golden_trial(s: BrentState, above: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(d, e / 2)`` of golden section into the larger part: ``e = (b or a) - x, d = RHO e``."""
    e_half = common.half_width(s.x.x, jnp.where(above, s.upper, s.lower))
    return (2 * RHO) * e_half, e_half


def trial_point(
    x: jax.Array, d: jax.Array, a: jax.Array, b: jax.Array, tol1: jax.Array
) -> jax.Array:
    """``x + d``, but never closer than ``tol1`` to ``x``, clipped to ``[a, b]``."""
    u = x + jnp.where(jnp.abs(d) >= tol1, d, jnp.where(d > 0, tol1, -tol1))
    return jnp.clip(u, a, b)


def update_bracket(
    a: jax.Array, b: jax.Array, x: jax.Array, u: jax.Array, better: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The part of ``[a, b]`` on the side of ``u`` or ``x`` that holds the better value."""
    left = u < x
    lower = jnp.where(better, jnp.where(left, a, x), jnp.where(left, u, a))
    upper = jnp.where(better, jnp.where(left, x, b), jnp.where(left, b, u))
    return lower, upper


def update_points(s: BrentState, new: Point, better: jax.Array) -> Points:
    """Brent's bookkeeping: ``x`` best, ``w`` second best, ``v`` the previous ``w``."""
    (x, _, _), (w, fw, _), (v, fv, _) = s.x, s.w, s.v
    fu = new.value
    to_w = ~better & ((fu <= fw) | (w == x))
    to_v = ~better & ~to_w & ((fu <= fv) | (v == x) | (v == w))
    x_new = select(better, new, s.x)
    w_new = select(better, s.x, select(to_w, new, s.w))
    v_new = select(better | to_w, s.w, select(to_v, new, s.v))
    return x_new, w_new, v_new


def start(
    first: jax.Array,
    s: BrentState,
    new: Point,
    lower: jax.Array,
    upper: jax.Array,
    points: Points,
    d: jax.Array,
    e_half: jax.Array,
) -> tuple[jax.Array, jax.Array, Points, jax.Array, jax.Array]:
    """After the first evaluation ``x = w = v``, as before Brent's loop; ``e = 0`` forces golden."""
    lower = jnp.where(first, s.lower, lower)
    upper = jnp.where(first, s.upper, upper)
    points = tuple(select(first, new, pt) for pt in points)
    return lower, upper, points, jnp.where(first, 0, d), jnp.where(first, 0, e_half)


def keep_finite(
    s: BrentState,
    fu: jax.Array,
    first: jax.Array,
    lower: jax.Array,
    upper: jax.Array,
    points: Points,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, Points]:
    """``(finite, keep, lower, upper, points)``: on a NaN or inf, keep the old points and bracket.

    The search stops on the best finite point; if it is the very first value, the result is
    that point (finite, inside the interval) with its value.
    """
    finite = jnp.isfinite(fu)
    keep = ~finite & ~first
    lower = jnp.where(finite, lower, s.lower)
    upper = jnp.where(finite, upper, s.upper)
    points = tuple(select(keep, old, pt) for old, pt in zip((s.x, s.w, s.v), points, strict=True))
    return finite, keep, lower, upper, points


def make_step(fun: Callable, problem: common.Interval) -> Callable:
    """One evaluation at Brent's trial point; converged when ``max(x - a, b - x) <= tol``.

    Brent's ``tol`` (scipy's ``tol1``, here without its relative term) is half of
    ``problem.stop`` (the tolerance, or the dtype's resolution if that is larger), so the
    stopping test ``|x - m| <= 2 tol - (b - a) / 2`` reads ``max(x - a, b - x) <= stop``.
    """
    dtype = problem.dtype
    tol2 = problem.stop
    tol1 = tol2 / 2

    def step(s: BrentState) -> BrentState:
        a, b, x = s.lower, s.upper, s.x.x
        above = x < a / 2 + b / 2  # the larger part of the bracket is above x
        parabolic, d_parabolic = parabolic_trial(s, above, tol1, tol2, dtype)
        d_golden, e_golden_half = golden_trial(s, above)
        d = jnp.where(parabolic, d_parabolic, d_golden)
        e_half = jnp.where(parabolic, s.d / 2, e_golden_half)

        first = s.num_evals == 0  # the very first step evaluates the starting point
        u = jnp.where(first, x, trial_point(x, d, a, b, tol1))
        fu, aux_u = common.evaluate(fun, u, problem)
        new = Point(u, fu)

        better = fu <= s.x.value
        lower, upper = update_bracket(a, b, x, u, better)
        points = update_points(s, new, better)
        lower, upper, points, d, e_half = start(first, s, new, lower, upper, points, d, e_half)
        finite, keep, lower, upper, points = keep_finite(s, fu, first, lower, upper, points)
        x_new, w_new, v_new = points
        aux = select((better | first) & ~keep, aux_u, s.aux)  # the aux of x_new

        spread = common.spread(x_new.x, lower, upper)
        ties = common.count_ties(s.ties, fu, s.x.value)
        status = common.stop_status(spread, problem, problem.tol, finite, ties)
        n = s.num_evals + 1
        return BrentState(lower, upper, x_new, w_new, v_new, aux, d, e_half, ties, n, status)

    return step


def finish(problem: common.Interval, s: BrentState) -> ScalarResult:
    x = s.x
    return common.result(problem, x.x, x.value, s.lower, s.upper, s.num_evals, s.status, s.aux)


def brent(
    fun: Callable,
    lower: float | jax.Array,
    upper: float | jax.Array,
    *,
    tol: float | jax.Array | None = None,
    max_evals: int = 100,
    has_aux: bool = False,
) -> ScalarResult:
    r"""Minimise ``fun`` on ``[lower, upper]`` by Brent's method: parabolic or golden steps.

    The step ``p / q`` goes from the best point ``x`` to the vertex of the parabola through
    ``x`` and the next two best points ``w, v``; it is taken only when the vertex lies inside
    the bracket and less than half the step before last away, and a golden-section step into
    the larger part of the bracket is taken otherwise. So the search converges superlinearly
    (order about 1.32) on smooth functions and never much slower than golden section on the
    others. Each iteration evaluates ``fun`` once; no point is evaluated closer than
    ``tol / 2`` to the best one. The moves are those of `scipy.optimize.fminbound` with
    ``xatol = 3 tol / 2``, up to the relative term ``sqrt(eps) |x|`` that fminbound adds to
    its tolerance.

    Dtypes and rounding as in `golden_section`: the search runs in the dtype of the bounds
    promoted with that of ``fun``'s value, and stops with ``ROUNDING``, never ``SUCCESS``,
    when the bracket reaches what the dtype resolves (``4 eps max(|lower|, |upper|)``; a
    concrete ``tol`` below that warns at call time, and the steps then use that resolution
    as Brent's tolerance; the default is always above it) or after two comparisons in a row
    that were ties within rounding (``|f(u) - f(x)| <= 4 eps |f|``): near a smooth minimum
    values stop resolving the minimiser at about ``sqrt(eps)`` relative, which is why
    fminbound adds ``sqrt(eps) |x|`` to its tolerance. Under `jax.vmap` a member that
    stopped, or whose input is invalid, is still evaluated each step (its result discarded)
    at a point of its own bracket, with invalid bounds at ``lower`` (else ``upper``, else 0:
    the first that is finite); run alone, it is not.

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
        that the final bracket certifies ``max(x - lower, upper - x) <= tol`` (Brent's
        ``2 tol`` with no relative term). By default (``None``)
        ``sqrt(eps) max(1, |lower|, |upper|)`` for the search's dtype, as in
        `golden_section`: about ``3.5e-4`` in float32 (JAX's default), ``1.5e-8`` in float64
        (x64 enabled), ``0.088`` in bfloat16 and ``0.031`` in float16, times
        ``max(1, |lower|, |upper|)``, per member under `jax.vmap`; it never warns. Brent's
        own ``localmin`` takes ``sqrt(eps)`` relative too, as ``|x|`` times it plus an
        absolute term. A given ``tol`` is used as is.
      max_evals: hard cap on evaluations (static Python int, ``>= 1``).
      has_aux: ``fun`` returns ``(value, aux)``; the result's ``aux`` is the one at ``x``.

    Returns:
      A `ScalarResult`: ``x`` the best point evaluated, ``value = fun(x)``, ``[lower, upper]``
      the final bracket. ``status`` is ``SUCCESS``, ``ROUNDING`` (the dtype or the values
      resolve no further: the best point and its bracket are returned), ``MAX_EVALS``
      (budget spent: the same), ``NONFINITE`` (``fun`` returned NaN or inf: the search
      stops on the best finite point) or ``INVALID_INPUT`` (traced bounds not finite or not
      ordered, or ``tol`` not finite and ``> 0``: nothing is evaluated, ``x`` and ``value``
      are NaN, ``aux`` is zeros).

    Raises:
      ValueError: for concrete bounds that are not finite, not ordered or not distinct in
        the dtype, a concrete ``tol`` not finite and ``> 0``, or ``max_evals < 1``.
      TypeError: ``fun`` is not callable or does not return a real scalar (or a pair, with
        ``has_aux``); complex bounds; ``has_aux`` not a bool.

    Warns:
      UserWarning: a concrete ``tol`` below what the dtype resolves on concrete bounds.

    References:
      R. P. Brent, Algorithms for Minimization without Derivatives (1973), ch. 5, procedure
      ``localmin``; the same logic as `scipy.optimize.fminbound`.

    Example:
      >>> import jaxls
      >>> res = jaxls.brent(lambda x: (x - 2.0) ** 2, 0.0, 5.0, tol=1e-5)
      >>> print(f"{float(res.x):.6f}", int(res.num_evals), bool(res.converged))
      2.000000 6 True
    """
    problem = common.setup("brent", fun, lower, upper, tol, max_evals, has_aux)

    def run(fun: Callable, problem: common.Interval) -> ScalarResult:
        return finish(problem, common.run_while(make_step(fun, problem), init(problem), max_evals))

    return implicit.minimiser(fun, problem, run)
