r"""JVP and VJP rules of the cumulative reductions (scans along an axis): ``cumsum``,
``cumprod``, ``cummax``, ``cummin`` and ``cumlogsumexp``.

``cumprod``, ``cummax`` / ``cummin`` and ``cumlogsumexp`` are differentiated through a
linear recurrence ``y[i] = a[i] y[i - 1] + b[i]``, evaluated by a parallel prefix scan
(`lax.associative_scan`) and transposed by the same recurrence run the other way.

Conventions:

* ``cummax`` / ``cummin``: output ``i`` gets the derivative of ``reduce_max`` of the prefix
  ``x[:i + 1]`` (of the suffix ``x[i:]`` when ``reverse``), split equally among its tied
  maximisers. JAX differentiates these through a tree of binary ``max`` (each tie split
  in halves), which gives other weights on ties; without ties both agree.
* ``cumlogsumexp``: :math:`\partial y_i / \partial x_j = e^{x_j - y_i}` for ``j <= i`` (the
  softmax of the prefix), by the recurrence
  :math:`\dot y_i = e^{y_{i-1} - y_i} \dot y_{i-1} + e^{x_i - y_i} \dot x_i`, whose
  coefficients are at most 1 since ``y`` does not decrease: no overflow for inputs that
  span hundreds of units (JAX's derivative agrees). Where ``y_i`` is infinite (a prefix
  of ``-inf``, or a ``+inf`` entry) the softmax is undefined and JAX's derivative is
  ``nan``; jaxls takes its limit for equal entries, the mean over the prefix entries equal
  to ``y_i`` (the ``cummax`` convention). A ``-inf`` entry gets no derivative.
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.rules.common import linear_jvp as _linear_jvp
from jaxls._src.ad.rules.common import previous as _previous
from jaxls._src.ad.registry import EVERYTHING, NOTHING, defjvp, defvjp


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


@defvjp("cumsum", reads=NOTHING)
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


@defvjp("cumprod", reads=EVERYTHING)
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


@defvjp("cummax", "cummin", reads=EVERYTHING)
def _cumulative_chooser_vjp(ct, primals, out, *, axis, reverse):
    (operand,) = primals
    if not _is_float(operand):
        return (None,)
    records, same_run, counts = _cumulative_chooser_weights(operand, out, axis, reverse)
    return (records * _linear_recurrence_transpose(same_run, ct / counts, axis, reverse),)


def _cumlogsumexp_coefficients(operand, out, axis, reverse):
    """``(a, b)`` of the recurrence ``dy[i] = a[i] dy[i - 1] + b[i] dx[i]``.

    Finite (or nan) ``y[i]``: ``a = exp(y[i-1] - y[i])``, ``b = exp(x[i] - y[i])``, both
    in [0, 1]. Infinite ``y[i]``: the running mean over the ``count`` entries equal to it,
    ``a = count[i-1] / count[i]`` in the same run, ``b = [x[i] = y[i]] / count[i]``. The
    differences are masked before ``exp``, so that no ``inf - inf`` reaches a derivative.
    """
    zero = lax.full_like(out, 0)
    magnitude = lax.abs(out)  # real, for complex operands too
    infinite = lax.eq(magnitude, lax.full_like(magnitude, np.inf))
    before = _previous(out, axis, reverse, -np.inf)
    a = lax.exp(lax.select(infinite, zero, before - out))
    b = lax.exp(lax.select(infinite, zero, operand - out))
    records, same_run, counts = _cumulative_chooser_weights(operand, out, axis, reverse)
    a_tied = same_run * _previous(counts, axis, reverse, 1) / counts
    return lax.select(infinite, a_tied, a), lax.select(infinite, records / counts, b)


@defjvp("cumlogsumexp")
def _cumlogsumexp_jvp(primals, tangents, out, *, axis, reverse):
    (operand,), (t,) = primals, tangents
    if t is None or not _is_float(operand):
        return None
    a, b = _cumlogsumexp_coefficients(operand, out, axis, reverse)
    return _linear_recurrence(a, b * t, axis, reverse)


@defvjp("cumlogsumexp", reads=EVERYTHING)
def _cumlogsumexp_vjp(ct, primals, out, *, axis, reverse):
    (operand,) = primals
    if not _is_float(operand):
        return (None,)
    a, b = _cumlogsumexp_coefficients(operand, out, axis, reverse)
    return (b * _linear_recurrence_transpose(a, ct, axis, reverse),)


__all__: list[str] = []
