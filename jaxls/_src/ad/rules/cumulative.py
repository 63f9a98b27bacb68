r"""JVP and VJP rules of the cumulative reductions (scans along an axis): ``cumsum``,
``cumprod``, ``cummax`` and ``cummin``.

``cumprod`` and ``cummax`` / ``cummin`` are differentiated through a linear recurrence
``y[i] = a[i] y[i - 1] + b[i]``, evaluated by a parallel prefix scan (`lax.associative_scan`)
and transposed by the same recurrence run the other way.

Conventions:

* ``cummax`` / ``cummin``: output ``i`` gets the derivative of ``reduce_max`` of the prefix
  ``x[:i + 1]`` (of the suffix ``x[i:]`` when ``reverse``), split equally among its tied
  maximisers. JAX differentiates these through a tree of binary ``max`` (each tie split
  in halves), which gives other weights on ties; without ties both agree.
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.rules.common import linear_jvp as _linear_jvp
from jaxls._src.ad.rules.common import previous as _previous
from jaxls._src.ad.registry import defjvp, defvjp


def _linear_recurrence(a, b, axis, reverse):
    """``y[i] = a[i] y[i - 1] + b[i]`` along ``axis`` with ``y[-1] = 0`` (from the end when
    ``reverse``), by a parallel prefix scan of affine maps. Linear in ``b``."""

    def compose(earlier, later):
        (a1, b1), (a2, b2) = earlier, later
        return a1 * a2, a2 * b1 + b2

    return lax.associative_scan(compose, (a, b), reverse=reverse, axis=axis)[1]


def _linear_recurrence_transpose(a, c, axis, reverse):
    """Transpose of ``b -> _linear_recurrence(a, b)``: the same recurrence run the other way,
    ``z[j] = a[j + 1] z[j + 1] + c[j]``."""
    return _linear_recurrence(_previous(a, axis, not reverse, 0), c, axis, not reverse)


defjvp("cumsum")(_linear_jvp(lax.cumsum_p))


@defvjp("cumsum")
def _cumsum_vjp(ct, primals, out, *, axis, reverse):
    return (lax.cumsum(ct, axis, reverse=not reverse),)


@defjvp("cumprod")
def _cumprod_jvp(primals, tangents, out, *, axis, reverse):
    # d out[i] = x[i] d out[i-1] + out[i-1] dx[i]: a linear recurrence (exact with zeros).
    (operand,), (t,) = primals, tangents
    if t is None or not _is_float(operand):
        return None
    before = _previous(out, axis, reverse, 1)
    return _linear_recurrence(operand, before * t, axis, reverse)


@defvjp("cumprod")
def _cumprod_vjp(ct, primals, out, *, axis, reverse):
    (operand,) = primals
    if not _is_float(operand):
        return (None,)
    before = _previous(out, axis, reverse, 1)
    return (before * _linear_recurrence_transpose(operand, ct, axis, reverse),)


def _cumulative_chooser_weights(operand, out, axis, reverse):
    """For the running extreme ``out``: the indicator of the positions attaining it
    (``records``), the indicator that ``out`` did not change from the previous position
    (``same_run``), and the number of records in the current run so far (at least 1)."""
    dtype = _dtype(operand)
    records = lax.convert_element_type(lax.eq(operand, out), dtype)
    same_run = lax.convert_element_type(lax.eq(out, _previous(out, axis, reverse, 0)), dtype)
    counts = _linear_recurrence(same_run, records, axis, reverse)
    return records, same_run, lax.max(counts, np.array(1, dtype))


@defjvp("cummax", "cummin")
def _cumulative_chooser_jvp(primals, tangents, out, *, axis, reverse):
    # Tangent i: the mean tangent of the positions j <= i attaining out[i]; these are the
    # records of the run of equal out values that contains i.
    (operand,), (t,) = primals, tangents
    if t is None or not _is_float(operand):
        return None
    records, same_run, counts = _cumulative_chooser_weights(operand, out, axis, reverse)
    return _linear_recurrence(same_run, records * t, axis, reverse) / counts


@defvjp("cummax", "cummin")
def _cumulative_chooser_vjp(ct, primals, out, *, axis, reverse):
    (operand,) = primals
    if not _is_float(operand):
        return (None,)
    records, same_run, counts = _cumulative_chooser_weights(operand, out, axis, reverse)
    return (records * _linear_recurrence_transpose(same_run, ct / counts, axis, reverse),)


__all__: list[str] = []
