"""Result types shared by every search: a `Status` enumeration and small NamedTuples.

Results are pytrees of arrays, so they pass through `jax.jit` and `jax.vmap`; under `vmap`
each member carries its own `status` and `num_evals`.

The dtype rule, the same for every search: a search works in one real floating dtype, that
of its data (``lower`` and ``upper``, or the leaves of ``x`` and ``direction``) promoted
with the dtype of the objective's value (`jnp.promote_types`). Points on an interval,
steps, values and slopes are computed and returned in it; constants (``c1``, ``tol``, ...)
are cast to it once, on entry; gradients keep the dtype of each leaf of ``x``. So bfloat16
parameters with a float32 loss are searched in float32, and a float64 objective of float32
data (under x64) in float64.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["RUNNING", "LineSearchResult", "ScalarResult", "Status", "status_message"]

# A pytree of arrays (``x``, ``direction``, a gradient, ``params``): jax has no static type
# for pytrees, so signatures name it to say what they take.
PyTree = Any


class Status(enum.IntEnum):
    """Outcome of a search, stored as an ``int32`` array in every result.

    ``Status(int(result.status)).message`` reads it; `status_message` does so for a batch.
    """

    SUCCESS = 0
    MAX_EVALS = 1
    NONFINITE = 2
    INVALID_INPUT = 3
    NOT_DESCENT = 4
    NO_BRACKET = 5
    STEP_LIMIT = 6
    ROUNDING = 7
    NO_DECREASE = 8
    MAX_ITERATIONS = 9

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Status.SUCCESS: "converged: the requested tolerance or condition is met",
    Status.MAX_EVALS: "the evaluation budget `max_evals` ran out before convergence; "
    "the result is the best point found",
    Status.NONFINITE: "the objective returned NaN or inf; the result is the best finite point "
    "found (or the first point evaluated, if none was finite)",
    Status.INVALID_INPUT: "invalid traced input (bounds not finite or not ordered, a "
    "non-positive tolerance, a zero or non-finite step, ...); nothing was evaluated",
    Status.NOT_DESCENT: "the direction is not a descent direction (slope >= 0); step 0 returned",
    Status.STEP_LIMIT: "the step reached `step_max` with the conditions unmet (the objective may "
    "be unbounded below along the direction); the best point found is returned",
    Status.ROUNDING: "the interval shrank to what the dtype resolves before the requested "
    "tolerance or conditions were met (a tolerance below the dtype's resolution, values that "
    "rounding no longer tells apart, or a decrease lost to rounding); the best point found "
    "is returned (for a step search: the best step that decreases the objective, or step 0)",
    Status.NO_DECREASE: "the best point the search found does not decrease the objective below "
    "its value at the start; step 0 returned",
    Status.MAX_ITERATIONS: "the optimiser's iteration budget `max_iterations` ran out before "
    "the gradient norm reached `tol`",
    Status.NO_BRACKET: "no bracket was found within the evaluation budget (the objective may be "
    "unbounded below or monotone along the search)",
}

# Internal marker while a loop runs; never returned to the user.
RUNNING = -1


def status_message(status: ArrayLike) -> str | list:
    """Human-readable message(s) for a status array, scalar or batched."""
    codes = jax.device_get(status)
    if getattr(codes, "ndim", 0) == 0:
        return Status(int(codes)).message
    return [status_message(c) for c in codes]


class ScalarResult(NamedTuple):
    """Result of a 1-D search on an interval.

    Attributes:
        x: the best point found; always inside the original interval and finite when the input
            was valid.
        value: ``fun(x)``, the value actually computed at ``x``.
        lower: lower end of the final bracket, which contains ``x`` (and, for a unimodal
            objective, the minimiser).
        upper: upper end of the final bracket.
        num_evals: number of calls of the objective the search made (``int32``).
        status: a `Status` code (``int32``).
        aux: with ``has_aux=True``, the auxiliary output of the objective at ``x``
            (``fun(x) = (value, aux)``); else None.
    """

    x: jax.Array
    value: jax.Array
    lower: jax.Array
    upper: jax.Array
    num_evals: jax.Array
    status: jax.Array
    aux: Any = None

    @property
    def converged(self) -> jax.Array:
        """True where ``status == Status.SUCCESS`` (a boolean array)."""
        return jnp.asarray(self.status) == Status.SUCCESS

    @property
    def message(self) -> str | list:
        """Readable message(s) for ``status`` (host-side; not for use under ``jit``)."""
        return status_message(self.status)


class LineSearchResult(NamedTuple):
    """Result of a step-size search along a direction: ``phi(t) = f(x + t d)``.

    ``step``, ``value``, ``grad`` and ``slope`` always belong to the same point
    ``x + step * direction`` (step 0, the starting point, when the search failed without
    finding a better one).

    Attributes:
      step: the step ``t >= 0``.
      value: ``f(x + t d)``.
      grad: ``grad f(x + t d)``, a pytree like ``x``.
      slope: ``phi'(t) = <grad f(x + t d), d>``.
      num_evals: number of calls of the objective, the one at ``x`` included when
        ``value``/``grad`` were not given (``int32``). A call evaluates the value, or the
        value and the gradient together: ``num_grads`` of them computed a gradient.
      status: a `Status` code (``int32``).
      num_grads: how many of the ``num_evals`` calls computed the gradient (``int32``).
      met_nonfinite: True if the objective or its gradient was NaN or inf at some trial
        step, whether or not the search recovered from it.
      aux: with ``has_aux=True``, the auxiliary output of the objective at the returned
        point (``fun(x) = (value, aux)``); else None.
    """

    step: jax.Array
    value: jax.Array
    grad: Any
    slope: jax.Array
    num_evals: jax.Array
    status: jax.Array
    num_grads: jax.Array
    met_nonfinite: jax.Array
    aux: Any = None

    @property
    def converged(self) -> jax.Array:
        """True where ``status == Status.SUCCESS`` (a boolean array)."""
        return jnp.asarray(self.status) == Status.SUCCESS

    @property
    def message(self) -> str | list:
        """Readable message(s) for ``status`` (host-side; not for use under ``jit``)."""
        return status_message(self.status)
