"""Dichotomy (bisection of the bracket by midpoint comparisons): 1 or 2 evaluations per halving.

State: a bracket ``[lower, upper]``, its midpoint ``x`` and ``value = fun(x)``, and a phase flag
``probe_z``. Phase 0 evaluates ``y = (lower + x) / 2``; if ``fun(y) <= value`` the bracket
becomes ``[lower, x]`` around ``y``, otherwise phase 1 evaluates ``z = (x + upper) / 2`` and
the bracket becomes ``[y, z]`` around ``x`` (``value <= fun(z)``) or ``[x, upper]`` around ``z``.
Either way the bracket halves. The very first step evaluates the midpoint itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src import checks
from jaxls._src.implicit import interval as implicit
from jaxls._src.interval import common
from jaxls._src.interval.common import select
from jaxls._src.results import ScalarResult


class DichotomyState(NamedTuple):
    lower: jax.Array
    upper: jax.Array
    x: jax.Array  # the midpoint c of [lower, upper]
    value: jax.Array  # fun(x); +inf before the first evaluation
    aux: Any  # fun's aux output at x (None without has_aux)
    probe_z: jax.Array  # phase: the next point is z = (x + upper) / 2 (else y, or x itself)
    ties: jax.Array  # comparisons in a row that rounding could not decide
    num_evals: jax.Array
    status: jax.Array


def init(problem: common.Interval) -> DichotomyState:
    return DichotomyState(
        lower=problem.lower,
        upper=problem.upper,
        x=problem.lower / 2 + problem.upper / 2,
        value=jnp.asarray(jnp.inf, problem.dtype),
        aux=problem.aux,
        probe_z=jnp.zeros((), bool),
        ties=jnp.zeros((), jnp.int32),
        num_evals=jnp.zeros((), jnp.int32),
        status=common.initial_status(problem),
    )


def make_step(fun: Callable, problem: common.Interval, tol: float | jax.Array) -> Callable:
    """One evaluation: the midpoint (first step), then ``y`` or ``z`` as the phase says.

    Convergence, ``max(x - lower, upper - x) <= tol`` (or the dtype's resolution, for
    ``ROUNDING``), is only tested between halvings (pass ``tol=0`` for a fixed budget).
    """

    def step(s: DichotomyState) -> DichotomyState:
        first = s.num_evals == 0
        y = s.lower / 2 + s.x / 2  # correctly rounded midpoints, no overflow
        z = s.x / 2 + s.upper / 2
        u = jnp.where(first, s.x, jnp.where(s.probe_z, z, y))
        u = jnp.clip(u, s.lower, s.upper)
        fu, aux_u = common.evaluate(fun, u, problem)

        phase_y = ~first & ~s.probe_z
        take_y = phase_y & (fu <= s.value)  # [lower, x] around y
        keep_x = s.probe_z & (s.value <= fu)  # [y, z] around x
        take_z = s.probe_z & ~keep_x  # [x, upper] around z
        lower = jnp.where(keep_x, y, jnp.where(take_z, s.x, s.lower))
        upper = jnp.where(take_y, s.x, jnp.where(keep_x, u, s.upper))
        x = jnp.where(take_y | take_z, u, s.x)
        value = jnp.where(first | take_y | take_z, fu, s.value)
        aux = select(first | take_y | take_z, aux_u, s.aux)
        probe_z = phase_y & ~take_y

        # A NaN or inf stops the search on the current midpoint; if it is the very first
        # value, the result is that point with its value.
        finite = jnp.isfinite(fu)
        lower = jnp.where(finite, lower, s.lower)
        upper = jnp.where(finite, upper, s.upper)
        x = jnp.where(finite, x, s.x)
        value = jnp.where(finite, value, jnp.where(first, fu, s.value))
        aux = select(finite | first, aux, s.aux)

        # Between halvings only: half-way through one the bracket is not yet certified.
        spread = jnp.where(probe_z, jnp.inf, common.spread(x, lower, upper))
        ties = common.count_ties(s.ties, fu, s.value)
        status = common.stop_status(spread, problem, tol, finite, ties)
        n = s.num_evals + 1
        return DichotomyState(lower, upper, x, value, aux, probe_z, ties, n, status)

    return step


def dichotomy(
    fun: Callable,
    lower: float | jax.Array,
    upper: float | jax.Array,
    *,
    tol: float | jax.Array | None = None,
    max_evals: int = 200,
    fixed_evals: int | None = None,
    has_aux: bool = False,
) -> ScalarResult:
    r"""Minimise a unimodal ``fun`` on ``[lower, upper]`` by the dichotomy method.

    With ``c`` the midpoint of ``[a, b]`` and ``f(c)`` cached, an iteration evaluates
    ``y = (a + c) / 2``; if ``f(y) <= f(c)`` the bracket becomes ``[a, c]``, else it evaluates
    ``z = (c + b) / 2`` and keeps ``[y, z]`` if ``f(c) <= f(z)``, ``[c, b]`` otherwise. Each
    iteration halves the bracket with 1 or 2 new evaluations, so ``k`` halvings cost between
    ``k + 1`` and ``2k + 1`` evaluations (one for the first midpoint) and give
    ``|c_k - x*| <= max(c_k - a_k, b_k - c_k) = 2^{-k-1} (upper - lower)``. The search stops
    after ``k = ceil(log2((upper - lower) / (2 tol)))`` halvings: per evaluation the error
    shrinks by a factor between ``0.5`` and ``0.5^{1/2} ~ 0.707``, against ``0.618`` for
    `golden_section`.

    Departure from the lecture: its listing evaluates ``f(c)`` (and ``f(z)``) afresh in every
    iteration instead of caching them, so an iteration costs 2 or 3 evaluations, not 1 or 2;
    and its count ``N = 2k`` leaves out the first evaluation of ``f(c)``, so the bound
    ``|c - x*| <= 0.707^N (b - a) / 2`` is off by one evaluation: the true worst case is
    ``N = 2k + 1``, ``|c - x*| <= 0.707^{N-1} (b - a) / 2``. Here ``f(c)`` is evaluated once
    and cached, each iteration costs 1 or 2 evaluations, and ``num_evals`` counts all of them.
    As in the lecture the result is the midpoint ``c``, whose ``|c - x*| <= (b - a) / 2``;
    unlike it, ``fun(c)`` is returned with it, and the loop makes one evaluation per step (a
    phase flag says whether the next point is ``y`` or ``z``), so under `jax.vmap` an
    iteration costs one evaluation per member.

    Dtypes and rounding as in `golden_section`: the search runs in the dtype of the bounds
    promoted with that of ``fun``'s value, and stops with ``ROUNDING``, never ``SUCCESS``,
    when the bracket reaches what the dtype resolves (``4 eps max(|lower|, |upper|)``; a
    concrete ``tol`` below that warns at call time, the default is always above it) or after
    two comparisons in a row that were ties within rounding
    (``|f(u) - f(c)| <= 4 eps |f|``). Under `jax.vmap` a member that stopped, or whose
    input is invalid, is still evaluated each step (its result discarded) at a point of its
    own bracket, with invalid bounds at ``lower`` (else ``upper``, else 0: the first that is
    finite); run alone, it is not.

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
      max_evals: hard cap on evaluations (static Python int, ``>= 1``). The default, 200,
        is the other interval searches' 100 for a method that spends up to two evaluations
        per halving: like theirs, it reaches float64's resolution on any interval.
      fixed_evals: fixed-budget mode. If given, evaluate ``fun`` this many times in a loop of
        fixed length (a `lax.scan`: no data-dependent predicate), fewer only if it stops
        with ``NONFINITE`` or ``ROUNDING`` (``num_evals`` of the result counts the calls);
        ``tol`` (``None`` or checked as above) and ``max_evals`` are then not used. The
        bracket then has width ``2^{-h} (upper - lower)`` after the ``h`` halvings completed,
        ``floor((N - 1) / 2) <= h <= N - 1`` (two evaluations leave the interval whole).
      has_aux: ``fun`` returns ``(value, aux)``; the result's ``aux`` is the one at ``x``.

    Returns:
      A `ScalarResult` whose ``x`` is the midpoint of the final bracket ``[lower, upper]``
      and ``value = fun(x)``. ``status`` is ``SUCCESS``, ``ROUNDING`` (the dtype or the
      values resolve no further: the current midpoint and its bracket are returned),
      ``MAX_EVALS`` (budget spent: the same), ``NONFINITE`` (``fun`` returned NaN or inf:
      the search stops on the last midpoint, whose value was finite, or on the first point
      if its value was not) or ``INVALID_INPUT`` (traced bounds not finite or not ordered,
      or ``tol`` not finite and ``> 0``: nothing is evaluated, ``x`` and ``value`` are NaN,
      ``aux`` is zeros).

    Raises:
      ValueError: for concrete bounds that are not finite, not ordered or not distinct in
        the dtype, a concrete ``tol`` not finite and ``> 0``, ``max_evals < 1`` or
        ``fixed_evals < 1``.
      TypeError: ``fun`` is not callable or does not return a real scalar (or a pair, with
        ``has_aux``); complex bounds; ``has_aux`` not a bool.

    Warns:
      UserWarning: a concrete ``tol`` below what the dtype resolves on concrete bounds.

    References:
      D. J. Wilde, Optimum Seeking Methods (1964), ch. 2 (dichotomous and bisection search);
      A. Antoniou & W.-S. Lu, Practical Optimization (2007), sec. 4.3.

    Example:
      >>> import jaxls
      >>> res = jaxls.dichotomy(lambda x: (x - 2.0) ** 2, 0.0, 5.0, tol=1e-4)
      >>> # k = ceil(log2(5 / 2e-4)) = 15 halvings, between k + 1 and 2k + 1 evaluations
      >>> print(f"{float(res.x):.4f}", int(res.num_evals), bool(res.converged))
      2.0000 27 True
      >>> print(float(res.upper - res.lower) == 5.0 / 2**15)
      True
    """
    call = "dichotomy"
    if fixed_evals is not None:
        checks.int_at_least(call, "fixed_evals", fixed_evals, 1)
        if tol is not None:  # not used, but checked as in the other mode
            checks.positive(call, "tol", tol)
        checks.int_at_least(call, "max_evals", max_evals, 1)
        problem = common.setup(call, fun, lower, upper, has_aux=has_aux)

        def run(fun: Callable, problem: common.Interval) -> ScalarResult:
            return finish(
                problem, common.run_budget(make_step(fun, problem, 0.0), init(problem), fixed_evals)
            )

    else:
        problem = common.setup(call, fun, lower, upper, tol, max_evals, has_aux)

        def run(fun: Callable, problem: common.Interval) -> ScalarResult:
            step = make_step(fun, problem, problem.tol)
            return finish(problem, common.run_while(step, init(problem), max_evals))

    return implicit.minimiser(fun, problem, run)


def finish(problem: common.Interval, s: DichotomyState) -> ScalarResult:
    return common.result(problem, s.x, s.value, s.lower, s.upper, s.num_evals, s.status, s.aux)
