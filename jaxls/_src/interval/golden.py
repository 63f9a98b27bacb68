"""Golden-section search (Kiefer 1953): one new evaluation per iteration."""

from __future__ import annotations

import math
from collections.abc import Callable

from jaxls._src import checks
from jaxls._src.interval import common, section
from jaxls._src.results import ScalarResult

# 1 - 1/phi = 1/phi^2 ~ 0.381966: where the new point goes, from the far end of the bracket.
RHO = (3.0 - math.sqrt(5.0)) / 2.0
RATIO = (math.sqrt(5.0) - 1.0) / 2.0  # 1/phi ~ 0.618034: bracket reduction per evaluation


def golden_section(
    fun: Callable,
    lower,
    upper,
    *,
    tol=1e-6,
    max_evals: int = 100,
    num_evals: int | None = None,
) -> ScalarResult:
    r"""Minimise a unimodal ``fun`` on ``[lower, upper]`` by golden-section search.

    Each iteration evaluates ``fun`` once, at the mirror image of the best point so far, and
    shrinks the bracket by ``1/phi ~ 0.618``. After ``n`` evaluations the best point ``x``
    satisfies ``max(x - lower_n, upper_n - x) = 0.618^n (upper - lower)``, so the search
    converges after exactly ``n = ceil(log(tol / (upper - lower)) / log(0.618))``
    evaluations (at least one).

    Departure from the lecture: its listing re-evaluates both interior points every
    iteration (two evaluations where the method promises one) and returns the midpoint of
    the bracket, whose value is never computed. Here each point is evaluated once, and the
    result is the best evaluated point with its own value.

    Args:
      fun: scalar function of a scalar, written in ``jax.numpy``.
      lower: lower end of the interval (may be traced).
      upper: upper end, ``> lower`` (may be traced).
      tol: absolute tolerance on the minimiser: on success the final bracket satisfies
        ``max(x - lower, upper - x) <= tol``. Tolerances below what the dtype resolves
        (``16 eps max(|lower|, |upper|)``) are clipped to it, so the loop always ends.
      max_evals: hard cap on evaluations (static Python int, ``>= 1``).
      num_evals: fixed-budget mode. If given, make exactly this many evaluations in a fully
        fixed-count loop (a `lax.scan`: no data-dependent predicate); ``tol`` and ``max_evals``
        are then not used. See also `fibonacci`, optimal for a fixed budget.

    Returns:
      A `ScalarResult`. ``status`` is ``SUCCESS``, ``MAX_EVALS`` (budget spent: the best
      point and its bracket are returned), ``NONFINITE`` (``fun`` returned NaN or inf: the
      search stops on the best finite point) or ``INVALID_INPUT`` (traced bounds not finite
      or not ordered, or ``tol <= 0``: nothing is evaluated, ``x`` and ``value`` are NaN).

    Raises:
      ValueError: for concrete bounds that are not finite or not ordered, ``tol <= 0``,
        ``max_evals < 1`` or ``num_evals < 1``.

    References:
      J. Kiefer, "Sequential minimax search for a maximum", Proc. AMS 4 (1953).
      Nocedal & Wright, Numerical Optimization (2006), sec. 3.5; Brent (1973), ch. 5.

    Example:
      >>> import jax.numpy as jnp, jaxls
      >>> res = jaxls.golden_section(lambda x: (x - 2.0) ** 2, 0.0, 5.0, tol=1e-6)
      >>> print(f"{float(res.x):.5f}", int(res.num_evals), bool(res.converged))
      2.00000 33 True
    """
    call = "golden_section"
    problem = common.setup(call, fun, lower, upper, tol, max_evals)
    state = section.init(problem)
    if num_evals is not None:
        checks.int_at_least(call, "num_evals", num_evals, 1)
        step = section.make_step(fun, problem, 0.0, RHO)
        state = common.run_fixed(step, state, num_evals)
    else:
        step = section.make_step(fun, problem, problem.tol, RHO)
        state = common.run_while(step, state, max_evals)
    return section.finish(problem, state)
