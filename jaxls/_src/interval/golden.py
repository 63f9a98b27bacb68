"""Golden-section search (Kiefer 1953): one new evaluation per iteration."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax

from jaxls._src import checks
from jaxls._src.implicit import interval as implicit
from jaxls._src.interval import common, section
from jaxls._src.results import ScalarResult

# 1 - 1/phi = 1/phi^2 ~ 0.381966: where the new point goes, from the far end of the bracket.
RHO = (3.0 - math.sqrt(5.0)) / 2.0
RATIO = (math.sqrt(5.0) - 1.0) / 2.0  # 1/phi ~ 0.618034: bracket reduction per evaluation


def golden_section(
    fun: Callable,
    lower: float | jax.Array,
    upper: float | jax.Array,
    *,
    tol: float | jax.Array | None = None,
    max_evals: int = 100,
    fixed_evals: int | None = None,
    has_aux: bool = False,
) -> ScalarResult:
    r"""Minimise a unimodal ``fun`` on ``[lower, upper]`` by golden-section search.

    Each iteration evaluates ``fun`` once, at the mirror image of the best point so far, and
    shrinks the bracket by ``1/phi ~ 0.618``. After ``n`` evaluations the best point ``x``
    satisfies ``max(x - lower_n, upper_n - x) = 0.618^n (upper - lower)``, so the search
    converges after exactly ``n = ceil(log(tol / (upper - lower)) / log(0.618))``
    evaluations (at least one), unless rounding stops it first (below).

    Departure from the lecture: its listing re-evaluates both interior points every
    iteration (two evaluations where the method promises one) and returns the midpoint of
    the bracket, whose value is never computed. Here each point is evaluated once, and the
    result is the best evaluated point with its own value.

    Dtypes and rounding: the search runs in the floating dtype of the bounds promoted with
    that of ``fun``'s value (an integer or boolean value counts as the bounds' dtype), calls
    ``fun`` with points of it and returns them in it. It stops with ``ROUNDING``, never
    ``SUCCESS``, when the bracket reaches what the dtype resolves,
    ``4 eps max(|lower|, |upper|)`` (a concrete ``tol`` below that warns at call time; the
    default is always above it), or when two comparisons in a row were ties within rounding,
    ``|f(u) - f(x)| <= 4 eps |f|``: near a smooth minimum values stop telling points apart
    at about ``sqrt(eps)`` relative, long before the points themselves collapse. Widths are
    halved before they are subtracted, so an interval wider than the dtype's largest number
    is searched as well.

    Under `jax.vmap` members run in lockstep: one that stopped, or whose input is invalid,
    is still evaluated each step (its result discarded) at a point of its own bracket; with
    invalid bounds, at ``lower`` (else ``upper``, else 0: the first that is finite). Run
    alone, it is not evaluated.

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
        (``None``) ``sqrt(eps) max(1, |lower|, |upper|)`` with ``eps`` that of the search's
        dtype: about ``3.5e-4`` in float32 (JAX's default), ``1.5e-8`` in float64 (x64
        enabled), ``0.088`` in bfloat16 and ``0.031`` in float16, times
        ``max(1, |lower|, |upper|)``; computed from the bounds even when they are traced, so
        each member of a `jax.vmap` gets its own. This is Brent's (1973) choice: ``f`` is
        flat to second order at a smooth minimum, so values locate it only to about
        ``sqrt(eps)`` relative; it is above what the dtype resolves, so it never warns. A
        given ``tol`` is used as is.
      max_evals: hard cap on evaluations (static Python int, ``>= 1``).
      fixed_evals: fixed-budget mode. If given, evaluate ``fun`` this many times in a loop of
        fixed length (a `lax.scan`: no data-dependent predicate), fewer only if it stops
        with ``NONFINITE`` or ``ROUNDING`` (``num_evals`` of the result counts the calls);
        ``tol`` (``None`` or checked as above) and ``max_evals`` are then not used. See also
        `fibonacci`, optimal for a fixed budget.
      has_aux: ``fun`` returns ``(value, aux)``; the result's ``aux`` is the one at ``x``.

    Returns:
      A `ScalarResult`. ``status`` is ``SUCCESS``, ``ROUNDING`` (the dtype or the values
      resolve no further: the best point and its bracket are returned), ``MAX_EVALS``
      (budget spent: the same), ``NONFINITE`` (``fun`` returned NaN or inf: the search
      stops on the best finite point) or ``INVALID_INPUT`` (traced bounds not finite or not
      ordered, or ``tol`` not finite and ``> 0``: nothing is evaluated, ``x`` and ``value``
      are NaN, ``aux`` is zeros).

    Raises:
      ValueError: for concrete bounds that are not finite, not ordered or not distinct in
        the dtype, a concrete ``tol`` not finite and ``> 0``, ``max_evals < 1`` or
        ``fixed_evals < 1``.
      TypeError: ``fun`` is not callable or does not return a real scalar (or a pair, with
        ``has_aux``); complex bounds; ``has_aux`` not a bool.

    Warns:
      UserWarning: a concrete ``tol`` below what the dtype resolves on concrete bounds.

    References:
      J. Kiefer, "Sequential minimax search for a maximum", Proc. AMS 4 (1953).
      Nocedal & Wright, Numerical Optimization (2006), sec. 3.5; Brent (1973), ch. 5.

    Example:
      >>> import jax.numpy as jnp, jaxls
      >>> res = jaxls.golden_section(lambda x: (x - 2.0) ** 2, 0.0, 5.0, tol=1e-5)
      >>> print(f"{float(res.x):.4f}", int(res.num_evals), bool(res.converged))
      2.0000 28 True
      >>> res = jaxls.golden_section(lambda x: (x - 2.0) ** 2, 0.0, 5.0)  # tol 5 sqrt(eps)
      >>> print(f"{float(res.x):.3f}", int(res.num_evals), jaxls.Status(int(res.status)).name)
      1.999 17 SUCCESS
      >>> res = jaxls.golden_section(jnp.cosh, -1.0, 2.0, tol=1e-5)  # flat in float32
      >>> print(f"{float(res.x):.3f}", jaxls.Status(int(res.status)).name)
      0.000 ROUNDING
    """
    call = "golden_section"
    if fixed_evals is not None:
        checks.int_at_least(call, "fixed_evals", fixed_evals, 1)
        if tol is not None:  # not used, but checked as in the other mode
            checks.positive(call, "tol", tol)
        checks.int_at_least(call, "max_evals", max_evals, 1)
        problem = common.setup(call, fun, lower, upper, has_aux=has_aux)

        def run(fun: Callable, problem: common.Interval) -> ScalarResult:
            step = section.make_step(fun, problem, 0.0, RHO)
            return section.finish(
                problem, common.run_budget(step, section.init(problem), fixed_evals)
            )

    else:
        problem = common.setup(call, fun, lower, upper, tol, max_evals, has_aux)

        def run(fun: Callable, problem: common.Interval) -> ScalarResult:
            step = section.make_step(fun, problem, problem.tol, RHO)
            return section.finish(problem, common.run_while(step, section.init(problem), max_evals))

    return implicit.minimiser(fun, problem, run)
