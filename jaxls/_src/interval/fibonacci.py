"""Fibonacci search (Kiefer 1953): the optimal section search for a fixed budget."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp

from jaxls._src import checks
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


def fibonacci_fractions(num_evals: int) -> list[float]:
    """Fraction of the bracket, from the end far from the best point, of each new point.

    With ``N`` evaluations the first two go to ``F_{N-2}/F_N`` and ``F_{N-1}/F_N`` of the
    interval; evaluation ``k >= 2`` goes to ``F_{N-k-1}/F_{N-k+1}`` of the current bracket,
    the mirror of the best point. The last one would coincide with the best point, at the
    middle, and is moved off it by ``DELTA``.
    """
    n = num_evals
    if n == 1:
        return [0.5]
    f = fibonacci_numbers(n)
    fractions = [f[n - 2] / f[n], f[n - 2] / f[n]]
    fractions += [f[n - k - 1] / f[n - k + 1] for k in range(2, n)]
    fractions[-1] = 0.5 - DELTA
    return fractions


def fibonacci(fun: Callable, lower, upper, *, num_evals: int) -> ScalarResult:
    r"""Minimise a unimodal ``fun`` on ``[lower, upper]`` with exactly ``num_evals`` evaluations.

    Fibonacci search is the minimax-optimal way to spend a fixed number ``N`` of
    evaluations: the final bracket has width ``(upper - lower) (1 + 2 delta) / F_N``
    (``F_0 = F_1 = 1``, ``delta = 0.01``), against ``0.618^(N-1) (upper - lower)`` for golden
    section, about 17% wider. The number of iterations is static, so the loop is a `lax.scan` with
    no data-dependent predicate, fast under ``jit`` and ``vmap``.

    Args:
      fun: scalar function of a scalar, written in ``jax.numpy``.
      lower: lower end of the interval (may be traced).
      upper: upper end, ``> lower`` (may be traced).
      num_evals: number of evaluations, a static Python int ``>= 1``.

    Returns:
      A `ScalarResult` whose ``x`` is the best point evaluated and ``[lower, upper]`` the
      final bracket. ``status`` is ``SUCCESS``, ``NONFINITE`` (``fun`` returned NaN or
      inf: the search froze on the best finite point) or ``INVALID_INPUT`` (traced bounds
      not finite or not ordered: ``x`` and ``value`` are NaN).

    Raises:
      ValueError: for concrete bounds that are not finite or not ordered, or
        ``num_evals < 1``.

    References:
      J. Kiefer, "Sequential minimax search for a maximum", Proc. AMS 4 (1953);
      D. J. Wilde, Optimum Seeking Methods (1964), ch. 2.

    Example:
      >>> import jaxls
      >>> res = jaxls.fibonacci(lambda x: (x - 2.0) ** 2, 0.0, 5.0, num_evals=30)
      >>> width = float(res.upper - res.lower)  # 5 * (1 + 2 delta) / F_30, F_30 = 1346269
      >>> print(f"{float(res.x):.5f}", int(res.num_evals), f"{width * 1346269 / 5:.3f}")
      2.00000 30 1.020
    """
    call = "fibonacci"
    checks.int_at_least(call, "num_evals", num_evals, 1)
    problem = common.setup(call, fun, lower, upper, 1.0, num_evals)
    rhos = jnp.asarray(fibonacci_fractions(num_evals), problem.lower.dtype)
    step = section.make_step(fun, problem, 0.0)
    state = common.run_fixed(step, section.init(problem), num_evals, xs=rhos)
    return section.finish(problem, state)
