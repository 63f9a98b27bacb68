r"""JVP and VJP rules of ``sort`` (any number of operands and keys) and ``top_k``.

Tangents follow the values through the sorting permutation (a ``gather`` along the sorted
axis; the cotangents go back by the transposed ``scatter-add``). The sorting permutation
is found by sorting again with an iota riding along; sorted indices carry no derivative.
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.rules.common import zeros as _zeros
from jaxls._src.ad.rules.common import index_dtype as _index_dtype
from jaxls._src.ad.rules.common import gather_to_scatter_dnums as _gather_to_scatter_dnums
from jaxls._src.ad.registry import INPUTS, OUTPUTS, defjvp, defvjp


def _along_axis_dnums(ndim, axis):
    batch = tuple(d for d in range(ndim) if d != axis)
    return lax.GatherDimensionNumbers(
        offset_dims=(),
        collapsed_slice_dims=(axis,),
        start_index_map=(axis,),
        operand_batching_dims=batch,
        start_indices_batching_dims=batch,
    )


def _take_along_axis(x, idx, axis):
    """``x[..., idx, ...]`` along ``axis`` (one ``gather``), for in-bounds ``idx``."""
    ndim = np.ndim(idx)
    return lax.gather(
        x,
        lax.expand_dims(idx, (ndim,)),
        _along_axis_dnums(ndim, axis),
        (1,) * ndim,
        mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )


def _take_along_axis_transpose(ct, idx, axis, shape):
    """Transpose of `_take_along_axis`: ``ct`` added into zeros of ``shape`` at ``idx``."""
    ndim = np.ndim(idx)
    return lax.scatter_add(
        _zeros(shape, _dtype(ct)),
        lax.expand_dims(idx, (ndim,)),
        ct,
        _gather_to_scatter_dnums(_along_axis_dnums(ndim, axis)),
        mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )


def _sort_permutation(primals, dimension, is_stable, num_keys):
    """Where each sorted element came from along ``dimension``: the sort run again with an
    iota riding along."""
    shape = np.shape(primals[0])
    iota = lax.broadcasted_iota(_index_dtype(shape[dimension]), shape, dimension)
    *_, perm = lax.sort(
        (*primals, iota), dimension=dimension, is_stable=is_stable, num_keys=num_keys
    )
    return perm


@defjvp("sort")
def _sort_jvp(primals, tangents, out, *, dimension, is_stable, num_keys):
    if all(t is None or not _is_float(p) for t, p in zip(tangents, primals, strict=True)):
        return [None] * len(primals)
    perm = _sort_permutation(primals, dimension, is_stable, num_keys)
    return [
        None if t is None or not _is_float(p) else _take_along_axis(t, perm, dimension)
        for t, p in zip(tangents, primals, strict=True)
    ]


@defvjp("sort", reads=INPUTS)
def _sort_vjp(cts, primals, out, *, dimension, is_stable, num_keys):
    perm = _sort_permutation(primals, dimension, is_stable, num_keys)
    return tuple(
        None
        if c is None or not _is_float(p)
        else _take_along_axis_transpose(c, perm, dimension, np.shape(p))
        for c, p in zip(cts, primals, strict=True)
    )


@defjvp("top_k")
def _top_k_jvp(primals, tangents, out, *, axis=-1, **_):
    (operand,), (t,) = primals, tangents
    if t is None or not _is_float(operand):
        return [None, None]
    indices = out[1]
    return [_take_along_axis(t, indices, axis % np.ndim(indices)), None]


@defvjp("top_k", reads=OUTPUTS)
def _top_k_vjp(cts, primals, out, *, axis=-1, **_):
    (operand,) = primals
    ct_values = cts[0]
    if ct_values is None or not _is_float(operand):
        return (None,)
    indices = out[1]
    axis = axis % np.ndim(indices)
    return (_take_along_axis_transpose(ct_values, indices, axis, np.shape(operand)),)


__all__: list[str] = []
