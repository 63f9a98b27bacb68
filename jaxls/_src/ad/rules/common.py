"""Helpers shared by the rule families of array structure (contraction, shape, reductions,
cumulative reductions, indexing, sorting): zeros, dtype casts, the JVP of a primitive linear
in its operands (the primitive bound again on the tangents), a shift along an axis, and the
dimension numbers of the scatter that transposes a gather."""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import instantiate as _instantiate
from jaxls._src.ad.registry import is_float as _is_float


def zeros(shape, dtype):
    """Zeros of ``shape`` and ``dtype`` (``lax.full``: no nested ``jit``)."""
    return lax.full(tuple(shape), 0, dtype)


def to_dtype(x, dtype):
    """``x`` cast to ``dtype`` (no equation if it already has it)."""
    return x if _dtype(x) == dtype else lax.convert_element_type(x, dtype)


def index_dtype(size: int):
    """The integer dtype of indices into an axis of ``size`` elements."""
    return np.int32 if size < np.iinfo(np.int32).max else np.int64


def linear_jvp(primitive):
    """JVP of a primitive linear in its first operand: the primitive applied to the tangent
    (further operands, such as dynamic indices, are passed through)."""

    def jvp(primals, tangents, out, **params):
        if tangents[0] is None or not _is_float(out):
            return None
        return primitive.bind(tangents[0], *primals[1:], **params)

    return jvp


def bilinear_jvp(primitive):
    """JVP of a primitive bilinear in its two operands (``dot_general``,
    ``conv_general_dilated``): ``p(t_lhs, rhs) + p(lhs, t_rhs)``, a term per tangent."""

    def jvp(primals, tangents, out, **params):
        (lhs, rhs), (t_lhs, t_rhs) = primals, tangents
        result = None
        if t_lhs is not None:
            result = primitive.bind(t_lhs, rhs, **params)
        if t_rhs is not None:
            term = primitive.bind(lhs, t_rhs, **params)
            result = term if result is None else result + term
        return result

    return jvp


def jointly_linear_jvp(primitive):
    """JVP of a primitive linear in all its operands together (``concatenate``, ``stack``,
    ``pad`` with its padding value): the primitive applied to the tangents, zeros for
    ``None``."""

    def jvp(primals, tangents, out, **params):
        if all(t is None for t in tangents) or not _is_float(out):
            return None
        return primitive.bind(*map(_instantiate, tangents, primals), **params)

    return jvp


def previous(x, axis, reverse, fill):
    """``x`` shifted one step along ``axis`` in scan order: ``y[i] = x[i - 1]`` (``x[i + 1]``
    when ``reverse``), with ``fill`` at the first position. One ``pad`` with a negative
    edge."""
    config = [(0, 0, 0)] * np.ndim(x)
    config[axis] = (-1, 1, 0) if reverse else (1, -1, 0)
    return lax.pad(x, np.array(fill, _dtype(x)), config)


def gather_to_scatter_dnums(dnums: lax.GatherDimensionNumbers) -> lax.ScatterDimensionNumbers:
    """The dimension numbers of the ``scatter-add`` that transposes a ``gather``."""
    return lax.ScatterDimensionNumbers(
        update_window_dims=dnums.offset_dims,
        inserted_window_dims=dnums.collapsed_slice_dims,
        scatter_dims_to_operand_dims=dnums.start_index_map,
        operand_batching_dims=dnums.operand_batching_dims,
        scatter_indices_batching_dims=dnums.start_indices_batching_dims,
    )


__all__ = [
    "bilinear_jvp",
    "gather_to_scatter_dnums",
    "index_dtype",
    "jointly_linear_jvp",
    "linear_jvp",
    "previous",
    "to_dtype",
    "zeros",
]
