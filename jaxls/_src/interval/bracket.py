"""Bracketing a minimum from a starting point: downhill expansion by a constant factor.

State: two points ``a`` and ``b`` with ``fun(b) <= fun(a)``, ``b`` the lowest point seen, and
the search moving from ``a`` through ``b``. An iteration evaluates ``c = b + grow (b - a)``:
if ``fun(c) > fun(b)`` then ``(a, b, c)`` is a bracket, otherwise ``(a, b) <- (b, c)``. The
first two iterations evaluate ``x0`` and ``x0 + step_init`` (turning round if the second went
uphill).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxls._src import checks
from jaxls._src.implicit import interval as implicit
from jaxls._src.interval import common
from jaxls._src.interval.common import select
from jaxls._src.results import RUNNING, ScalarResult, Status


class BracketState(NamedTuple):
    a: jax.Array  # the previous point: fun(b) <= fun(a)
    b: jax.Array  # the lowest point seen
    value: jax.Array  # fun(b)
    aux: Any  # fun's aux output at b (None without has_aux)
    c: jax.Array  # the far end, once fun(c) > fun(b) (SUCCESS); b until then
    num_evals: jax.Array
    status: jax.Array


def make_step(
    fun: Callable,
    x0: jax.Array,
    step_init: jax.Array,
    grow: jax.Array,
    has_aux: bool,
    aux_like: Any,
) -> Callable:
    def body(s: BracketState) -> BracketState:
        first = s.num_evals == 0
        second = s.num_evals == 1
        u = jnp.where(first, x0, jnp.where(second, x0 + step_init, s.b + grow * (s.b - s.a)))
        fu, aux_u = common.evaluate_as(fun, u, x0.dtype, has_aux, aux_like)

        downhill = first | (fu <= s.value)  # ties go on: a plateau is not a bracket
        turn = second & ~downhill  # x0 + step_init went uphill: search from x0 the other way
        found = ~first & ~second & ~downhill
        a = jnp.where(downhill, s.b, jnp.where(turn, u, s.a))
        b = jnp.where(downhill, u, s.b)
        value = jnp.where(downhill, fu, s.value)
        aux = select(downhill, aux_u, s.aux)
        c = jnp.where(found, u, b)

        # The next trial point must be finite and move, or no bracket can be found.
        following = b + grow * (b - a)
        stuck = ~first & ~found & (~jnp.isfinite(following) | (following == b))
        status = jnp.where(found, Status.SUCCESS, jnp.where(stuck, Status.NO_BRACKET, RUNNING))

        # A NaN or inf stops the search on the best finite point; if it is the very first
        # value, the result is x0 with that value.
        finite = jnp.isfinite(fu)
        a = jnp.where(finite | first, a, s.a)
        b = jnp.where(finite | first, b, s.b)
        value = jnp.where(finite | first, value, s.value)
        aux = select(finite | first, aux, s.aux)
        c = jnp.where(finite, c, b)
        status = jnp.where(finite, status, Status.NONFINITE).astype(jnp.int32)
        return BracketState(a, b, value, aux, c, s.num_evals + 1, status)

    return body


def bracket(
    fun: Callable,
    x0: float | jax.Array,
    *,
    step_init: float | jax.Array = 1.0,
    grow: float | jax.Array = 1.618034,
    max_evals: int = 50,
    has_aux: bool = False,
) -> ScalarResult:
    r"""Find ``a < b < c`` (or ``a > b > c``) with ``fun(b) <= fun(a)`` and ``fun(b) < fun(c)``.

    Evaluates ``fun(x0)`` and ``fun(x0 + step_init)``, turns round if the second went uphill
    so that ``a -> b`` goes downhill, then tries ``c = b + grow (b - a)``, one evaluation per
    iteration, shifting ``(a, b) <- (b, c)`` until ``fun(c) > fun(b)``. The trial points grow
    geometrically away from ``x0``, so a minimum at distance ``d`` is bracketed after about
    ``log(d / |step_init|) / log(grow)`` evaluations. For a continuous ``fun`` the bracket
    ``[lower, upper]`` holds a local minimiser, and the minimiser itself if ``fun`` is
    unimodal; pass it to `golden_section`, `dichotomy` or `fibonacci`.

    A flat start (``fun(x0 + step_init) == fun(x0)``) goes on in the direction of
    ``step_init``, and so
    does any tie: a bracket needs a strict rise ``fun(c) > fun(b)``, since a plateau (a
    constant ``fun``, or ``exp(-x)`` once it underflows to 0) cannot be told from a slow
    descent. This follows Numerical Recipes' ``mnbrak`` without its parabolic extrapolation,
    and ``scipy.optimize.bracket``'s final check (at least one strict inequality).

    Dtypes as in `golden_section`: the search runs in the dtype of ``x0`` and ``step_init``
    promoted with that of ``fun``'s value. Under `jax.vmap` a member that stopped, or whose
    input is invalid, is still evaluated each iteration (its result discarded): at its own
    last points, or with invalid input at ``x0`` (0 if ``x0`` is not finite); run alone, it
    is not.

    Derivatives: the search's decisions are held constant, so each point it returns is
    ``x0 + c step_init`` with ``c`` a constant (``d p = d x0 + c d step_init``), and
    ``value`` (and ``aux``) is differentiated at ``x`` with respect to ``x0``, ``step_init``
    and what ``fun`` closes over.

    Args:
      fun: scalar function of a scalar, written in ``jax.numpy``; with ``has_aux``, it
        returns ``(value, aux)``.
      x0: starting point (may be traced).
      step_init: first trial step, finite and non-zero; its sign sets the first direction
        (may be traced).
      grow: expansion factor ``> 1`` between successive expansions (the default is the golden
        ratio, so a bracket found here is in golden-section proportion; may be traced).
      max_evals: hard cap on evaluations (static Python int, ``>= 3``).
      has_aux: ``fun`` returns ``(value, aux)``; the result's ``aux`` is the one at ``x``.

    Returns:
      A `ScalarResult`. On ``SUCCESS``, ``x`` is the middle point ``b``, the lowest value
      seen, ``value = fun(x)`` and ``lower < x < upper`` with ``value <= fun(lower)`` and
      ``value < fun(upper)`` (the outer points ``a`` and ``c``, sorted). Otherwise ``x`` is
      the lowest point seen and ``[lower, upper]`` the last expansion (``x`` at one end),
      with ``status`` ``NO_BRACKET`` (``max_evals`` spent, or the points overflowed, with
      ``fun`` never rising: unbounded below, monotone or flat), ``NONFINITE`` (``fun``
      returned NaN or inf; if at ``x0``, the result is ``x0`` with that value) or
      ``INVALID_INPUT`` (traced ``x0`` or ``step_init`` not finite, ``step_init == 0`` or
      too small to move ``x0``, or ``grow <= 1``: nothing is evaluated, ``x``, ``value``,
      ``lower``, ``upper`` are NaN, ``aux`` is zeros).

    Raises:
      ValueError: for a concrete ``x0`` or ``step_init`` that is not finite,
        ``step_init == 0`` or ``x0 + step_init == x0`` in the dtype, ``grow <= 1`` (in the
        dtype) or ``max_evals < 3``.
      TypeError: ``fun`` is not callable or does not return a real scalar (or a pair, with
        ``has_aux``); complex ``x0``, ``step_init`` or ``grow``; ``has_aux`` not a bool.

    References:
      W. H. Press et al., Numerical Recipes (3rd ed., 2007), sec. 10.1, routine ``mnbrak``;
      D. J. Wilde, Optimum Seeking Methods (1964), ch. 2.

    Example:
      >>> import jaxls
      >>> f = lambda x: (x - 10.0) ** 2
      >>> b = jaxls.bracket(f, 0.0)
      >>> print(f"{float(b.lower):.3f} {float(b.x):.3f} {float(b.upper):.3f}", int(b.num_evals))
      5.236 9.472 16.326 6
      >>> print(float(f(b.x)) <= float(f(b.lower)), float(f(b.x)) < float(f(b.upper)))
      True True
      >>> res = jaxls.golden_section(f, b.lower, b.upper, tol=1e-4)
      >>> print(f"{float(res.x):.4f}", bool(res.converged))
      10.0000 True
    """
    call = "bracket"
    checks.function(call, "fun", fun)
    has_aux = checks.boolean(call, "has_aux", has_aux)
    valid = (
        checks.finite(call, "x0", x0)
        & checks.nonzero(call, "step_init", step_init)
        & checks.greater_than(call, "grow", grow, 1.0)
    )
    checks.int_at_least(call, "max_evals", max_evals, 3)
    data = common.data_dtype(call, "`x0` and `step_init`", x0, step_init)
    dtype, aux = common.working_dtype(call, fun, data, has_aux)
    if checks.is_concrete(x0) and checks.is_concrete(step_init):
        with np.errstate(all="ignore"):
            x0_, step_ = np.asarray(x0, dtype), np.asarray(step_init, dtype)
            moves = x0_ + step_ != x0_
        if not moves:
            raise ValueError(
                f"`jaxls.{call}(x0={float(x0)!r}, step_init={float(step_init)!r})`: "
                f"`step_init` must move `x0`, but `x0 + step_init == x0` in "
                f"{np.dtype(dtype).name}."
            )
    if checks.is_concrete(grow) and not float(np.asarray(grow, dtype)) > 1:
        raise ValueError(
            f"`jaxls.{call}(grow={float(grow)!r})`: `grow` rounds to 1 in "
            f"{np.dtype(dtype).name}; it must be > 1 there."
        )
    x0 = common.as_scalar(call, "x0", x0, dtype)
    step_init = common.as_scalar(call, "step_init", step_init, dtype)
    grow = common.as_scalar(call, "grow", grow, dtype)
    invalid = ~(valid & jnp.isfinite(x0 + step_init) & (x0 + step_init != x0) & (grow > 1))
    # Never evaluated alone; under vmap its discarded evaluations fall on x0 (0 if not finite).
    x0 = jnp.where(invalid, jnp.where(jnp.isfinite(x0), x0, 0), x0).astype(dtype)
    step_init = jnp.where(invalid, jnp.ones((), dtype), step_init)
    grow = jnp.where(invalid, jnp.asarray(2, dtype), grow)

    def run(
        fun: Callable, x0: jax.Array, step_init: jax.Array, grow: jax.Array, invalid: jax.Array
    ) -> ScalarResult:
        state = BracketState(
            a=x0,
            b=x0,
            value=jnp.asarray(jnp.inf, dtype),
            aux=aux,
            c=x0,
            num_evals=jnp.zeros((), jnp.int32),
            status=jnp.where(invalid, Status.INVALID_INPUT, RUNNING).astype(jnp.int32),
        )
        body = make_step(fun, x0, step_init, grow, has_aux, aux)
        state = common.run_while(body, state, max_evals)
        status = jnp.where(state.status == Status.MAX_EVALS, Status.NO_BRACKET, state.status)
        far = jnp.where(status == Status.SUCCESS, state.c, state.b)  # else x at one end
        nan = jnp.asarray(np.nan, dtype)
        return ScalarResult(
            x=jnp.where(invalid, nan, state.b),
            value=jnp.where(invalid, nan, state.value),
            lower=jnp.where(invalid, nan, jnp.minimum(state.a, far)),
            upper=jnp.where(invalid, nan, jnp.maximum(state.a, far)),
            num_evals=state.num_evals,
            status=status.astype(jnp.int32),
            aux=state.aux,
        )

    return implicit.fixed_decisions(fun, dtype, has_aux, run, x0, step_init, grow, invalid)
