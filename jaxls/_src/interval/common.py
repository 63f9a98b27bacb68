"""What every exact search on an interval shares: input handling, evaluation, the loop drivers.

Every search is a state machine whose step makes exactly one objective evaluation, outside
any `lax.cond`, so that under `jax.vmap` each iteration costs one evaluation per member. The
same step runs in two drivers:

* `run_while`: a `lax.while_loop` that stops when the tolerance is met or `max_evals` is
  spent (the default; under `vmap`, JAX freezes finished members by selecting their carry);
* `run_fixed`: a `lax.scan` of a static number of steps (the fixed-budget mode), one step
  per iteration, finished members frozen.

Dtypes: a search works in the floating dtype of its bounds promoted with the dtype of the
objective's value (an integer or boolean value counts as the bounds' dtype); points, bounds
and values are computed and returned in it, and ``fun`` is called with points of it.

Tolerance: ``tol=None`` (the default of every tolerance-driven search) is `default_tol`,
``sqrt(eps) max(1, |lower|, |upper|)`` in the search's dtype (Brent 1973): a minimiser is
determined by values only to about ``sqrt(eps)`` relative. It is above what the dtype
resolves (float16, bfloat16 and wider), and no default is ever warned about.

Stopping (`stop_status`): ``SUCCESS`` when the bracket certifies
``max(x - lower, upper - x) <= tol`` and the last comparison was decided; ``ROUNDING`` when
the bracket reaches what the dtype resolves (`resolution`: a tolerance below it cannot be
met, and a concrete one is warned about at call time), or after ``MAX_TIES`` comparisons in
a row whose values were within rounding of each other (`indistinct`): near a smooth minimum
values are flat to ``eps`` relative over about ``sqrt(eps)`` relative, so a tighter bracket
would be certified by noise. The tie test assumes values accurate to a few units in the
last place; an objective that loses more to cancellation can still be resolved wrongly.

Members that do not run: with invalid input (traced bounds not finite or not ordered, a bad
traced tolerance, ...) nothing is evaluated when the search runs alone. Under `jax.vmap`
every member runs in lockstep, so such a member is still evaluated, its results discarded,
at one point of its own: ``lower`` if finite, else ``upper`` if finite, else 0 (see
`Interval`); a member that stopped (NaN, converged) is evaluated at a point of its final
bracket. Nothing is ever evaluated outside ``[lower, upper]`` for valid bounds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxls._src import checks
from jaxls._src.loop import run_fixed, run_while, select
from jaxls._src.results import RUNNING, ScalarResult, Status

__all__ = ["Point", "run_fixed", "run_while", "select"]  # with the helpers below

# The dtype resolves a spread of RESOLUTION_EPS * eps * max(|lower|, |upper|) (plus the
# smallest normal number, for intervals at 0): a few units in the last place, enough for
# the trial points of every search to stay distinct until the bracket reaches it.
RESOLUTION_EPS = 4
NOISE_EPS = 4
MAX_TIES = 2


class Interval(NamedTuple):
    """A validated problem, in one floating dtype (that of ``lower``).

    For a member with invalid input the search runs on the degenerate interval ``[p, p]``
    (``p`` the given ``lower`` if finite, else ``upper`` if finite, else 0): it is never
    evaluated alone, and under `vmap` its discarded evaluations all fall on ``p``.
    """

    lower: jax.Array
    upper: jax.Array
    tol: jax.Array  # given, or `default_tol`: SUCCESS once the spread is within it
    resolution: jax.Array  # the spread the dtype resolves: ROUNDING there, if above tol
    invalid: jax.Array  # bad input: nothing evaluated, status INVALID_INPUT
    given_lower: jax.Array
    given_upper: jax.Array
    has_aux: bool
    aux: Any  # zeros shaped like fun's aux output (None without has_aux)

    @property
    def dtype(self):
        return self.lower.dtype

    @property
    def stop(self):
        """The spread at which the loop stops: ``max(tol, resolution)``."""
        return jnp.maximum(self.tol, self.resolution)


def resolution(lower, upper):
    """The smallest spread ``max(x - lower, upper - x)`` the dtype resolves on the interval.

    ``RESOLUTION_EPS * eps * max(|lower|, |upper|) + tiny`` in the dtype of ``lower`` (a
    few units in the last place of the larger bound; ``tiny``, the smallest normal number,
    for intervals at 0). Trial points closer than that collapse onto each other.
    """
    info = jnp.finfo(jnp.result_type(lower))
    scale = jnp.maximum(jnp.abs(lower), jnp.abs(upper))
    return (RESOLUTION_EPS * info.eps) * scale + info.tiny


def default_tol(lower, upper):
    """The default tolerance, ``sqrt(eps) max(1, |lower|, |upper|)``, in the dtype of ``lower``.

    Brent's (1973) choice: near a smooth minimum ``f`` is flat to second order, so values
    determine the minimiser only to about ``sqrt(eps)`` relative (absolute near 0). It is
    about ``3.5e-4`` in float32, ``1.5e-8`` in float64, ``0.088`` in bfloat16 and ``0.031``
    in float16, times the scale; above `resolution` in every dtype with ``eps < 1/16``
    (``sqrt(eps) > 4 eps``: all but the float8 types). Made of `jax.numpy` operations, so
    traced bounds (each member of a `vmap`) get their own; computed in float32 at least and
    rounded to the dtype, it is the formula to its last place or two.
    """
    dtype = jnp.result_type(lower)
    wide = jnp.promote_types(dtype, jnp.float32)
    scale = jnp.maximum(jnp.maximum(jnp.abs(lower), jnp.abs(upper)), 1).astype(wide)
    return (math.sqrt(float(jnp.finfo(dtype).eps)) * scale).astype(dtype)


def _host_resolution(dtype, lower, upper) -> float:
    """`resolution` for concrete bounds, in Python floats (usable while tracing)."""
    info = jnp.finfo(dtype)
    scale = max(abs(float(lower)), abs(float(upper)))
    return RESOLUTION_EPS * float(info.eps) * scale + float(info.tiny)


def objective_output(call: str, fun: Callable, dtype, has_aux: bool):
    """Trace ``fun`` at a scalar of ``dtype`` (no evaluation): ``(value_dtype, aux_shapes)``.

    The value must be a real scalar; an integer or boolean value counts as ``dtype``.
    """
    try:
        out = jax.eval_shape(fun, jax.ShapeDtypeStruct((), dtype))
    except TypeError as error:  # a wrong signature, or an output that is no JAX type
        raise TypeError(
            f"`jaxls.{call}`: `fun` must take one scalar and return a real scalar"
            f"{' and an aux' if has_aux else ''} (JAX types); calling it failed: {error}"
        ) from error
    out, aux = checks.objective_output(call, "fun", out, has_aux)
    if not jnp.issubdtype(out.dtype, jnp.floating) or getattr(out, "weak_type", False):
        return dtype, aux  # integer, boolean or a weakly typed constant: the bounds' dtype
    return out.dtype, aux


def working_dtype(call: str, fun: Callable, data_dtype, has_aux: bool):
    """The dtype rule: ``data_dtype`` promoted with the value's; and the aux template."""
    value_dtype, aux = objective_output(call, fun, data_dtype, has_aux)
    dtype = jnp.promote_types(data_dtype, value_dtype)
    if dtype != data_dtype:  # fun is called with points of the wider dtype: trace it so
        _, aux = objective_output(call, fun, dtype, has_aux)
    zeros = None if aux is None else jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), aux)
    return dtype, zeros


def data_dtype(call: str, names: str, *values):
    """The floating dtype of the data (bounds, or ``x0`` and ``step``): JAX's promotion."""
    dtype = jnp.result_type(*values, 1.0)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`jaxls.{call}`: {names} must be real numbers, got dtype {dtype}.")
    return dtype


def as_scalar(call: str, name: str, value, dtype) -> jax.Array:
    """``value`` as a scalar array of ``dtype``; a concrete one must not overflow it."""
    if checks.is_concrete(value) and math.isfinite(float(value)):
        if abs(float(value)) > float(jnp.finfo(dtype).max):
            raise ValueError(
                f"`jaxls.{call}({name}={float(value)!r})`: `{name}` overflows "
                f"{np.dtype(dtype).name}. Use a wider dtype."
            )
    value = jnp.asarray(value, dtype)
    if value.shape != ():
        raise ValueError(
            f"`jaxls.{call}`: `{name}` must be a scalar, got shape {value.shape}. "
            "Use `jax.vmap` for many problems."
        )
    return value


def setup(
    call: str,
    fun: Callable,
    lower,
    upper,
    tol=None,
    max_evals: int | None = None,
    has_aux: bool = False,
    min_evals: int = 1,
) -> Interval:
    """Validate eagerly what is concrete; turn the rest into arrays and an ``invalid`` flag.

    ``tol=None``: `default_tol` of the bounds, never warned about. The fixed-budget modes
    pass none and do not use it (their steps stop on the budget or at the resolution).
    """
    checks.function(call, "fun", fun)
    has_aux = checks.boolean(call, "has_aux", has_aux)
    valid = checks.ordered(call, "lower", lower, "upper", upper)
    if tol is not None:
        valid = valid & checks.positive(call, "tol", tol)
    if max_evals is not None:
        checks.int_at_least(call, "max_evals", max_evals, min_evals)
    dtype, aux = working_dtype(
        call, fun, data_dtype(call, "`lower` and `upper`", lower, upper), has_aux
    )
    given_lower = as_scalar(call, "lower", lower, dtype)
    given_upper = as_scalar(call, "upper", upper, dtype)
    concrete = checks.is_concrete(lower) and checks.is_concrete(upper)
    if concrete and not float(np.asarray(lower, dtype)) < float(np.asarray(upper, dtype)):
        raise ValueError(
            f"`jaxls.{call}(lower={float(lower)!r}, upper={float(upper)!r})`: `lower` and "
            f"`upper` round to the same {np.dtype(dtype).name} number. Use a wider dtype."
        )
    if tol is None:
        tol = default_tol(given_lower, given_upper)  # above the resolution: no warning
    else:
        if concrete and checks.is_concrete(tol):
            floor = _host_resolution(dtype, lower, upper)
            if float(tol) < floor:
                warnings.warn(
                    f"`jaxls.{call}(tol={float(tol):.3g})`: {np.dtype(dtype).name} resolves "
                    f"the minimiser on [{float(lower):.6g}, {float(upper):.6g}] only to "
                    f"{floor:.3g} ({RESOLUTION_EPS} eps max(|lower|, |upper|)), so this "
                    "`tol` cannot be met: the search will stop there with `Status.ROUNDING`. "
                    f"Use `tol >= {floor:.3g}`, or a wider dtype (float64 bounds, with "
                    "`jax.config.update('jax_enable_x64', True)`).",
                    UserWarning,
                    stacklevel=3,
                )
        tol = jnp.asarray(tol, dtype)  # may underflow to 0: then only ROUNDING is possible
    invalid = ~(
        valid & jnp.isfinite(given_lower) & jnp.isfinite(given_upper) & (given_lower < given_upper)
    )
    return invalidate(
        Interval(
            given_lower,
            given_upper,
            tol,
            resolution(given_lower, given_upper),
            invalid,
            given_lower,
            given_upper,
            has_aux,
            aux,
        ),
        False,
    )


def run_budget(step: Callable, state, fixed_evals: int, xs=None):
    """`run_fixed` for a fixed-budget search: a budget spent on an undecided comparison (a
    tie within rounding, ``state.ties > 0``) ends in ``ROUNDING``, not ``SUCCESS``."""
    state = run_fixed(step, state, fixed_evals, xs=xs)
    undecided = (state.status == Status.SUCCESS) & (state.ties > 0)
    return state._replace(status=jnp.where(undecided, Status.ROUNDING, state.status))


def invalidate(problem: Interval, bad) -> Interval:
    """Mark more members invalid (``bad``): they run on ``[p, p]`` (see `Interval`)."""
    invalid = problem.invalid | bad
    lo, up = problem.given_lower, problem.given_upper
    p = jnp.where(jnp.isfinite(lo), lo, jnp.where(jnp.isfinite(up), up, jnp.zeros((), lo.dtype)))
    return problem._replace(
        lower=jnp.where(invalid, p, problem.lower),
        upper=jnp.where(invalid, p, problem.upper),
        tol=jnp.where(invalid, jnp.ones((), lo.dtype), problem.tol),
        invalid=invalid,
    )


def evaluate(fun: Callable, x, problem: Interval):
    """``(value, aux)`` of ``fun`` at ``x``, the value in the search's dtype."""
    return evaluate_as(fun, x, problem.dtype, problem.has_aux, problem.aux)


def evaluate_as(fun: Callable, x, dtype, has_aux: bool, aux_like):
    """``(value, aux)`` of ``fun`` at ``x``: the value cast to ``dtype``, the aux leaves to
    those of ``aux_like`` (strongly typed, for the loop carry); aux is None without
    ``has_aux``."""
    out = fun(x)
    value, aux = out if has_aux else (out, None)
    value = jnp.asarray(value).astype(dtype)
    aux = jax.tree.map(lambda leaf, like: jnp.asarray(leaf, like.dtype), aux, aux_like)
    return value, aux


def initial_status(problem: Interval):
    return jnp.where(problem.invalid, Status.INVALID_INPUT, RUNNING).astype(jnp.int32)


def spread(x, lower, upper):
    """``max(x - lower, upper - x)``: the bound on ``|x - x*|`` the bracket certifies.

    It overflows to ``inf`` only where it exceeds the dtype's range, which no tolerance
    meets anyway.
    """
    return jnp.maximum(x - lower, upper - x)


def half_width(lower, upper):
    """``(upper - lower) / 2``, finite for any finite bounds (``upper - lower`` may not be)."""
    return upper / 2 - lower / 2


def toward(x, end, fraction):
    """``x + fraction (end - x)`` for ``0 <= fraction <= 1``, without overflow.

    Halving is exact (above the subnormals), so this rounds as the plain formula does
    wherever that one is finite.
    """
    return x + (2 * fraction) * half_width(x, end)


def indistinct(value, best):
    """Whether a new finite ``value`` is within rounding noise of the ``best`` so far,
    ``|value - best| <= NOISE_EPS * eps * |value|`` (False while ``best`` is the initial
    ``+inf``; a non-finite ``value`` stops the search anyway)."""
    eps = jnp.finfo(value.dtype).eps
    return jnp.abs(value - best) <= (NOISE_EPS * eps) * jnp.abs(value)


def count_ties(ties, value, best):
    """Comparisons in a row that rounding could not decide (`indistinct` values)."""
    return jnp.where(indistinct(value, best), ties + 1, 0).astype(jnp.int32)


def stop_status(spread_, problem: Interval, tol, finite, ties):
    """The status after a step: ``NONFINITE`` if its value was not finite; ``SUCCESS`` when
    the spread is within ``tol`` and the step's comparison was decided (not a tie within
    rounding); ``ROUNDING`` at the dtype's resolution, or after ``MAX_TIES`` undecided
    comparisons in a row (the values no longer resolve the minimiser); else ``RUNNING``."""
    success = (spread_ <= tol) & (ties == 0)
    rounding = (spread_ <= problem.resolution) | (ties >= MAX_TIES)
    status = jnp.where(success, Status.SUCCESS, jnp.where(rounding, Status.ROUNDING, RUNNING))
    return jnp.where(finite, status, Status.NONFINITE).astype(jnp.int32)


class Point(NamedTuple):
    """A point, the objective value there, and (with ``has_aux``) its aux output."""

    x: jax.Array
    value: jax.Array
    aux: Any = None


def result(problem: Interval, x, value, lower, upper, num_evals, status, aux) -> ScalarResult:
    """Assemble the result; invalid members get NaN point and value and their given bounds
    (and the zero aux they started with)."""
    bad = problem.invalid
    nan = jnp.asarray(np.nan, problem.dtype)
    return ScalarResult(
        x=jnp.where(bad, nan, x),
        value=jnp.where(bad, nan, value),
        lower=jnp.where(bad, problem.given_lower, lower),
        upper=jnp.where(bad, problem.given_upper, upper),
        num_evals=jnp.asarray(num_evals, jnp.int32),
        status=jnp.asarray(status, jnp.int32),
        aux=aux,
    )
