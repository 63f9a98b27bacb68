"""Eager validation of configuration. Errors name the call and the argument.

Only concrete host values (Python numbers, NumPy scalars) are checked here: they raise
`ValueError` at call time. JAX arrays are data, possibly traced; the searches check them
inside the computation and report a failure `Status` instead of raising.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "finite",
    "greater_than",
    "int_at_least",
    "is_concrete",
    "nonzero",
    "open_interval",
    "ordered",
    "positive",
]


def is_concrete(value) -> bool:
    """Whether ``value`` is a host number that can be checked eagerly."""
    return isinstance(value, (numbers.Number, np.number)) or (
        isinstance(value, np.ndarray) and value.ndim == 0
    )


def _fail(call: str, name: str, value, requirement: str):
    raise ValueError(f"`jaxls.{call}({name}={value!r})`: `{name}` must be {requirement}.")


def finite(call: str, name: str, value) -> None:
    if is_concrete(value) and not math.isfinite(float(value)):
        _fail(call, name, value, "finite")


def ordered(call: str, lower_name: str, lower, upper_name: str, upper) -> None:
    """``lower < upper`` for concrete, finite bounds."""
    finite(call, lower_name, lower)
    finite(call, upper_name, upper)
    if is_concrete(lower) and is_concrete(upper) and not float(lower) < float(upper):
        raise ValueError(
            f"`jaxls.{call}({lower_name}={lower!r}, {upper_name}={upper!r})`: "
            f"`{lower_name}` must be strictly less than `{upper_name}`."
        )


def positive(call: str, name: str, value) -> None:
    if is_concrete(value) and not float(value) > 0.0:  # also rejects NaN
        _fail(call, name, value, "> 0")
    finite(call, name, value)


def nonzero(call: str, name: str, value) -> None:
    if is_concrete(value) and not (float(value) != 0.0 and math.isfinite(float(value))):
        _fail(call, name, value, "finite and non-zero")


def open_interval(call: str, name: str, value, low: float, high: float) -> None:
    if is_concrete(value) and not low < float(value) < high:
        _fail(call, name, value, f"in the open interval ({low}, {high})")


def greater_than(call: str, name: str, value, bound: float) -> None:
    if is_concrete(value) and not float(value) > bound:
        _fail(call, name, value, f"> {bound}")
    finite(call, name, value)


def int_at_least(call: str, name: str, value, minimum: int) -> None:
    """A static Python integer (loop counts are configuration, never traced)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(
            f"`jaxls.{call}({name}={value!r})`: `{name}` must be a Python int, "
            f"got {type(value).__name__}."
        )
    if value < minimum:
        _fail(call, name, value, f">= {minimum}")
