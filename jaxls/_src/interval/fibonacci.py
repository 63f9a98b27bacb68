"""Fibonacci search (Kiefer 1953): the optimal section search for a fixed budget."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxls._src import checks
from jaxls._src.implicit import interval as implicit
from jaxls._src.interval import common, section
from jaxls._src.results import ScalarResult

# The last two Fibonacci points coincide at the middle of the bracket; the last one is
# moved off it by this fraction of the bracket so that the comparison still decides.
DELTA = 0.01


def fibonacci_numbers(n: int) -> list[int]:
    """``F_0 = F_1 = 1, F_{k+1} = F_k + F_{k-1}``, exact Python integers ``F_0 .. F_n``."""
    numbers = [1, 1]
    while len(numbers) <= n:
        numbers.append(numbers[-1] + numbers[-2])
    return numbers[: n + 1]


def fibonacci_fractions(fixed_evals: int) -> list[float]:
    """Fraction of the bracket, from the end far from the best point, of each new point.

    With ``N`` evaluations the first two go to ``F_{N-2}/F_N`` and ``F_{N-1}/F_N`` of the
    interval; evaluation ``k >= 2`` goes to ``F_{N-k-1}/F_{N-k+1}`` of the current bracket,
    the mirror of the best point. The last one would coincide with the best point, at the
    middle, and is moved off it by ``DELTA``.
    """
    n = fixed_evals
    if n == 1:
        return [0.5]
    f = fibonacci_numbers(n)
    fractions = [f[n - 2] / f[n], f[n - 2] / f[n]]
    fractions += [f[n - k - 1] / f[n - k + 1] for k in range(2, n)]
    fractions[-1] = 0.5 - DELTA
    return fractions


def fibonacci(
    fun: Callable,
    lower: float | jax.Array,
    upper: float | jax.Array,
    *,
    fixed_evals: int,
    has_aux: bool = False,
) -> ScalarResult:
    r"""Minimise a unimodal ``fun`` on ``[lower, upper]`` with ``fixed_evals`` evaluations.

    Fibonacci search is the minimax-optimal way to spend a fixed number ``N`` of
    evaluations: the final bracket has width at most ``(upper - lower) (1 + 2 delta) / F_N``
    (``F_0 = F_1 = 1``, ``delta = 0.01``), against ``0.618^(N-1) (upper - lower)`` for golden
    section, about 17% wider. The number of iterations is static, so the loop is a
    `lax.scan` with no data-dependent predicate, fast under ``jit`` and ``vmap``.

    Dtypes and rounding as in `golden_section`: the search runs in the dtype of the bounds
    promoted with that of ``fun``'s value, and ends early with ``ROUNDING`` when the bracket
    reaches what the dtype resolves (``4 eps max(|lower|, |upper|)``: a budget whose width
    ``(upper - lower) / F_N`` is below it is partly wasted) or when two comparisons in a row
    were ties within rounding. Run alone, a search that stopped evaluates ``fun`` no more,
    and one with invalid input not at all; under `jax.vmap` such a member is still evaluated
    each step (its result discarded) at a point of its own bracket, with invalid bounds at
    ``lower`` (else ``upper``, else 0: the first that is finite).

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
      fixed_evals: the budget: number of evaluations, a static Python int ``>= 1``.
      has_aux: ``fun`` returns ``(value, aux)``; the result's ``aux`` is the one at ``x``.

    Returns:
      A `ScalarResult` whose ``x`` is the best point evaluated, ``[lower, upper]`` the
      final bracket and ``num_evals`` the number of calls of ``fun``. ``status`` is
      ``SUCCESS`` (``fixed_evals`` evaluations made), ``ROUNDING`` (stopped early, as above),
      ``NONFINITE`` (``fun`` returned NaN or inf: the search stopped on the best finite
      point) or ``INVALID_INPUT`` (traced bounds not finite or not ordered: nothing is
      evaluated, ``x`` and ``value`` are NaN, ``aux`` is zeros).

    Raises:
      ValueError: for concrete bounds that are not finite, not ordered or not distinct in
        the dtype, or ``fixed_evals < 1``.
      TypeError: ``fun`` is not callable or does not return a real scalar (or a pair, with
        ``has_aux``); complex bounds; ``fixed_evals`` not an int, ``has_aux`` not a bool.

    References:
      J. Kiefer, "Sequential minimax search for a maximum", Proc. AMS 4 (1953);
      D. J. Wilde, Optimum Seeking Methods (1964), ch. 2.

    Example:
      >>> import jaxls
      >>> res = jaxls.fibonacci(lambda x: (x - 2.0) ** 2, 0.0, 5.0, fixed_evals=19)
      >>> width = float(res.upper - res.lower)  # 5 * (1 + 2 delta) / F_19, F_19 = 6765
      >>> print(f"{float(res.x):.3f}", int(res.num_evals), f"{width * 6765 / 5:.3f}")
      2.000 19 1.020
    """
    call = "fibonacci"
    checks.int_at_least(call, "fixed_evals", fixed_evals, 1)
    problem = common.setup(call, fun, lower, upper, has_aux=has_aux)
    rhos = jnp.asarray(fibonacci_fractions(fixed_evals), problem.dtype)

    def run(fun: Callable, problem: common.Interval, rhos: jax.Array) -> ScalarResult:
        step = section.make_step(fun, problem, 0.0)
        state = common.run_budget(step, section.init(problem), fixed_evals, xs=rhos)
        return section.finish(problem, state)

    return implicit.minimiser(fun, problem, run, rhos)
