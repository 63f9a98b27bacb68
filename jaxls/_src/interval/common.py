"""What every exact search on an interval shares: input handling, evaluation, the loop drivers.

Every search is a state machine whose step makes exactly one objective evaluation, outside
any `lax.cond`, so that under `jax.vmap` each iteration costs one evaluation per member. The
same step runs in two drivers:

* `run_while`: a `lax.while_loop` that stops when the tolerance is met or `max_evals` is
  spent (the default; under `vmap`, JAX freezes finished members by selecting their carry);
* `run_fixed`: a `lax.scan` of a static number of steps (the fixed-budget mode): no
  data-dependent loop predicate, several steps unrolled per iteration, finished members
  frozen explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxls._src import checks
from jaxls._src.loop import run_fixed, run_while, select
from jaxls._src.results import RUNNING, ScalarResult, Status

__all__ = ["Point", "run_fixed", "run_while", "select"]  # with the helpers below


class Interval(NamedTuple):
    """A validated problem: bounds made arrays of one floating dtype, tolerance clipped."""

    lower: jax.Array  # safe bounds: [0, 1] for invalid members, so nothing blows up
    upper: jax.Array
    tol: jax.Array  # max(tol, resolution of the dtype at the bounds)
    invalid: jax.Array  # traced bad input: no evaluation is counted, status INVALID_INPUT
    value_dtype: Any
    given_lower: jax.Array
    given_upper: jax.Array


def resolution(lower, upper):
    """Smallest tolerance the dtype can resolve on ``[lower, upper]``.

    Trial points closer than a few ulps collapse onto each other, so tolerances below
    ``16 * eps * max(|lower|, |upper|)`` are clipped to it (plus the smallest normal number,
    for intervals at 0).
    """
    info = jnp.finfo(jnp.result_type(lower))
    scale = jnp.maximum(jnp.abs(lower), jnp.abs(upper))
    return 16 * info.eps * scale + info.tiny


def value_dtype(call: str, fun: Callable, x) -> Any:
    """The dtype ``fun`` returns at a scalar ``x``, checked to be a scalar (no evaluation)."""
    out = jax.eval_shape(fun, x)
    if not hasattr(out, "shape") or out.shape != ():
        raise TypeError(
            f"`jaxls.{call}`: `fun` must return a scalar, got {out}. "
            "To search many problems at once, use `jax.vmap`."
        )
    return out.dtype if jnp.issubdtype(out.dtype, jnp.floating) else jnp.result_type(x)


def setup(call: str, fun: Callable, lower, upper, tol, max_evals: int, min_evals: int = 1):
    """Validate eagerly what is concrete; turn the rest into arrays and an ``invalid`` flag."""
    checks.ordered(call, "lower", lower, "upper", upper)
    checks.positive(call, "tol", tol)
    checks.int_at_least(call, "max_evals", max_evals, min_evals)
    dtype = jnp.result_type(lower, upper, 1.0)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`jaxls.{call}`: bounds must be real numbers, got dtype {dtype}.")
    lower = jnp.asarray(lower, dtype)
    upper = jnp.asarray(upper, dtype)
    if lower.shape != () or upper.shape != ():
        raise ValueError(
            f"`jaxls.{call}`: `lower` and `upper` must be scalars, got shapes "
            f"{lower.shape} and {upper.shape}. Use `jax.vmap` for many problems."
        )
    # A concrete tol was checked above; casting it may underflow (1e-300 in float32), which
    # the clip to the resolution below repairs. A traced tol is checked here.
    tol_ok = True if checks.is_concrete(tol) else jnp.asarray(tol) > 0
    tol = jnp.asarray(tol, dtype)
    invalid = ~(jnp.isfinite(lower) & jnp.isfinite(upper) & (lower < upper) & tol_ok)
    safe_lower = jnp.where(invalid, jnp.zeros((), dtype), lower)
    safe_upper = jnp.where(invalid, jnp.ones((), dtype), upper)
    tol = jnp.maximum(jnp.where(invalid, 1, tol), resolution(safe_lower, safe_upper))
    return Interval(
        safe_lower,
        safe_upper,
        tol,
        invalid,
        value_dtype(call, fun, safe_lower),
        lower,
        upper,
    )


def evaluate(fun: Callable, x, dtype):
    return jnp.asarray(fun(x)).astype(dtype)


def initial_status(problem: Interval):
    return jnp.where(problem.invalid, Status.INVALID_INPUT, RUNNING).astype(jnp.int32)


def spread(x, lower, upper):
    """``max(x - lower, upper - x)``: the bound on ``|x - x*|`` the bracket certifies."""
    return jnp.maximum(x - lower, upper - x)


class Point(NamedTuple):
    """A point and the objective value there."""

    x: jax.Array
    value: jax.Array


def result(problem: Interval, x, value, lower, upper, num_evals, status) -> ScalarResult:
    """Assemble the result; invalid members get NaN point and value and their given bounds."""
    bad = problem.invalid
    nan = jnp.asarray(np.nan, problem.lower.dtype)
    return ScalarResult(
        x=jnp.where(bad, nan, x),
        value=jnp.where(bad, jnp.asarray(np.nan, problem.value_dtype), value),
        lower=jnp.where(bad, problem.given_lower, lower),
        upper=jnp.where(bad, problem.given_upper, upper),
        num_evals=jnp.asarray(num_evals, jnp.int32),
        status=jnp.asarray(status, jnp.int32),
    )
