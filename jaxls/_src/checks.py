"""Validation of configuration. Errors name the call and the argument.

A constant (``c1``, ``tol``, ``step_init``, ...) may be a Python number, a NumPy scalar, a
JAX array or a tracer. Every check below handles all four:

* a *concrete* value (anything but a tracer) is checked at call time and raises
  `ValueError` naming the call, the argument and what it must be;
* a *traced* value cannot be checked in Python: the check returns a boolean array, which
  the search folds into its initial status (``INVALID_INPUT``: nothing is run).

So every check returns ``True`` (a Python bool) for a concrete value that passed, or a
traced boolean for a traced one; a search combines them with ``&`` into one ``valid`` flag.
Constants must be real scalars; anything else is a `TypeError` or `ValueError` at once.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "at_least",
    "boolean",
    "finite",
    "function",
    "greater_than",
    "int_at_least",
    "is_concrete",
    "nonzero",
    "open_interval",
    "ordered",
    "positive",
    "scalar",
]


def is_concrete(value) -> bool:
    """Whether ``value`` is a known scalar that can be checked now (not a tracer)."""
    if isinstance(value, jax.core.Tracer):
        return False
    if isinstance(value, (numbers.Number, np.number, np.bool_)):
        return True
    return isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0


def _shown(value):
    """How a value is shown in a message: a number as itself, a tracer by its type."""
    if isinstance(value, jax.core.Tracer):
        return f"<traced {value.dtype}>"
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0:
        return repr(value.item())
    return repr(value)


def _fail(call: str, name: str, value, requirement: str):
    raise ValueError(f"`jaxls.{call}({name}={_shown(value)})`: `{name}` must be {requirement}.")


def scalar(call: str, name: str, value):
    """A real scalar constant; returns it as a concrete float or leaves a tracer as is."""
    if isinstance(value, bool) or isinstance(value, np.bool_):
        raise TypeError(f"`jaxls.{call}({name}={value!r})`: `{name}` must be a real number.")
    if isinstance(value, numbers.Number) and not isinstance(value, numbers.Real):
        raise TypeError(f"`jaxls.{call}({name}={value!r})`: `{name}` must be real, not complex.")
    if isinstance(value, (numbers.Real, np.number)):
        return value
    if not isinstance(value, (np.ndarray, jax.Array, jax.core.Tracer)):
        raise TypeError(
            f"`jaxls.{call}({name}=...)`: `{name}` must be a real number or a scalar array, "
            f"got {type(value).__name__}."
        )
    if np.ndim(value) != 0:
        raise ValueError(
            f"`jaxls.{call}({name}=...)`: `{name}` must be a scalar, got shape "
            f"{np.shape(value)}. Use `jax.vmap` to give each problem its own `{name}`."
        )
    dtype = value.dtype
    if jnp.issubdtype(dtype, jnp.complexfloating) or jnp.issubdtype(dtype, jnp.bool_):
        raise TypeError(
            f"`jaxls.{call}({name}=...)`: `{name}` must be a real number, got dtype {dtype}."
        )
    return value


def _check(call: str, name: str, value, ok, requirement: str):
    """``ok(float)`` for a concrete value (raises), ``ok(array)`` for a traced one."""
    value = scalar(call, name, value)
    if is_concrete(value):
        if not ok(float(value)):
            _fail(call, name, value, requirement)
        return True
    return ok(jnp.asarray(value))


def _isfinite(v):
    return math.isfinite(v) if isinstance(v, float) else jnp.isfinite(v)


def finite(call: str, name: str, value):
    return _check(call, name, value, _isfinite, "finite")


def positive(call: str, name: str, value):
    return _check(call, name, value, lambda v: (v > 0) & _isfinite(v), "finite and > 0")


def nonzero(call: str, name: str, value):
    return _check(call, name, value, lambda v: (v != 0) & _isfinite(v), "finite and non-zero")


def open_interval(call: str, name: str, value, low: float, high: float):
    return _check(
        call, name, value, lambda v: (low < v) & (v < high), f"in the open interval ({low}, {high})"
    )


def greater_than(call: str, name: str, value, bound: float):
    return _check(call, name, value, lambda v: (v > bound) & _isfinite(v), f"finite and > {bound}")


def at_least(call: str, name: str, value, bound: float):
    return _check(
        call, name, value, lambda v: (v >= bound) & _isfinite(v), f"finite and >= {bound}"
    )


def ordered(call: str, lower_name: str, lower, upper_name: str, upper):
    """Finite bounds with ``lower < upper``."""
    ok = finite(call, lower_name, lower) & finite(call, upper_name, upper)
    if is_concrete(lower) and is_concrete(upper):
        if not float(lower) < float(upper):
            raise ValueError(
                f"`jaxls.{call}({lower_name}={_shown(lower)}, {upper_name}={_shown(upper)})`: "
                f"`{lower_name}` must be strictly less than `{upper_name}`."
            )
        return ok
    return ok & (jnp.asarray(lower) < jnp.asarray(upper))


def int_at_least(call: str, name: str, value, minimum: int) -> None:
    """A static Python integer (loop counts are configuration, never traced)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(
            f"`jaxls.{call}({name}={value!r})`: `{name}` must be a Python int, "
            f"got {type(value).__name__}."
        )
    if value < minimum:
        _fail(call, name, value, f">= {minimum}")


def boolean(call: str, name: str, value) -> bool:
    """A Python bool: ``"no"``, ``0`` or an array are refused rather than read as truthy."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"`jaxls.{call}({name}={value!r})`: `{name}` must be True or False, "
            f"got {type(value).__name__}."
        )
    return bool(value)


def function(call: str, name: str, value) -> None:
    if not callable(value):
        raise TypeError(
            f"`jaxls.{call}`: `{name}` must be a function, got {type(value).__name__} "
            f"({_shown(value)})."
        )


def objective_output(call: str, name: str, out, has_aux: bool):
    """Check an objective's output (shapes from `jax.eval_shape`): a real scalar, or with
    ``has_aux`` a pair ``(real scalar, aux)``. Returns ``(value, aux)`` (aux None without
    ``has_aux``). Integer and boolean values pass: the caller decides what they mean."""
    aux = None
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(
                f"`jaxls.{call}(has_aux=True)`: `{name}` must return a pair `(value, aux)`, "
                f"got {_described(out)}."
            )
        out, aux = out
    elif isinstance(out, (tuple, list)):
        raise TypeError(
            f"`jaxls.{call}`: `{name}` returned a {type(out).__name__}, not a scalar; if it "
            "returns `(value, aux)`, pass `has_aux=True`."
        )
    if not hasattr(out, "shape") or out.shape != ():
        raise TypeError(
            f"`jaxls.{call}`: `{name}` must return a real scalar, got {_described(out)}; sum or "
            "average a vector of losses (`jnp.mean`), or `jax.vmap` over a batch of problems."
        )
    if jnp.issubdtype(out.dtype, jnp.complexfloating):
        raise TypeError(
            f"`jaxls.{call}`: `{name}` must return a real scalar, got dtype {out.dtype}: a "
            "complex objective has no minimum. Minimise a real function of it, such as "
            "`jnp.abs(f(x))` or its real part."
        )
    return out, aux


def _described(out) -> str:
    if hasattr(out, "shape"):
        return f"shape {out.shape} (dtype {out.dtype})"
    return type(out).__name__ if not isinstance(out, (numbers.Number, str)) else repr(out)
