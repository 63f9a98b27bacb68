r"""JVP and VJP rules of the structural primitives: contraction, shape, reduction, scan,
slicing, indexing and sorting primitives.

Each rule is written out with `jax.lax` operations (never with `jax.jvp` / `jax.vjp` or
JAX's own AD rules). Where the tangent map is the primitive itself (the primitive is
linear in the differentiated operand) the JVP binds the primitive again with the
equation's exact parameters; the VJP is the transpose, written with the primitive's
adjoint (``pad`` for ``slice``, ``scatter-add`` for ``gather``, ...). Every primitive a VJP
rule emits has a JVP rule itself, here or in the elementwise rules, so that reverse mode
can be differentiated again.

Conventions (those of JAX unless said otherwise):

* ``reduce_max`` / ``reduce_min``: the derivative is split equally among the positions
  that attain the extreme, ``d max(x) = sum_i [x_i = max] dx_i / #{i: x_i = max}``.
* ``cummax`` / ``cummin``: output ``i`` gets the derivative of ``reduce_max`` of the prefix
  ``x[:i + 1]`` (of the suffix ``x[i:]`` when ``reverse``), split equally among its tied
  maximisers. JAX differentiates these through a tree of binary ``max`` (each tie split
  in halves), which gives other weights on ties; without ties both agree.
* ``gather`` transposes to ``scatter-add`` and ``scatter-add`` to ``gather`` with the same
  index mode: out-of-bounds windows are clamped on both sides (``clip``) or filled with
  zero and dropped (``fill``); the tangent of a ``fill`` value is zero.
* ``scatter`` (overwrite, ``x.at[i].set(v)``): with repeated indices only the update that
  wins receives a derivative, found as in JAX by scattering the update ids; the winner
  is the one the backend's ``scatter`` picks (deterministic on CPU, not guaranteed on
  accelerators).
* ``sort`` / ``top_k``: tangents follow the values through the sorting permutation.
* Integer results (``argmax``, ``iota``, sorted indices) carry no derivative.
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import instantiate as _instantiate
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.registry import zeros_like as _zeros_like
from jaxls._src.ad.registry import defjvp, defvjp

# ---------------------------------------------------------------------------------------
# Helpers.


def _zeros(shape, dtype):
    return lax.full(tuple(shape), 0, dtype)


def _to_dtype(x, dtype):
    return x if _dtype(x) == dtype else lax.convert_element_type(x, dtype)


def _index_dtype(size: int):
    return np.int32 if size < np.iinfo(np.int32).max else np.int64


def _linear_jvp(primitive):
    """JVP of a primitive linear in its first operand: the primitive applied to the tangent
    (further operands, such as dynamic indices, are passed through)."""

    def jvp(primals, tangents, out, **params):
        if tangents[0] is None or not _is_float(out):
            return None
        return primitive.bind(tangents[0], *primals[1:], **params)

    return jvp


def _previous(x, axis, reverse, fill):
    """``x`` shifted one step along ``axis`` in scan order: ``y[i] = x[i - 1]`` (``x[i + 1]``
    when ``reverse``), with ``fill`` at the first position. One ``pad`` with a negative
    edge."""
    config = [(0, 0, 0)] * np.ndim(x)
    config[axis] = (-1, 1, 0) if reverse else (1, -1, 0)
    return lax.pad(x, np.array(fill, _dtype(x)), config)


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


def _gather_to_scatter_dnums(dnums: lax.GatherDimensionNumbers) -> lax.ScatterDimensionNumbers:
    return lax.ScatterDimensionNumbers(
        update_window_dims=dnums.offset_dims,
        inserted_window_dims=dnums.collapsed_slice_dims,
        scatter_dims_to_operand_dims=dnums.start_index_map,
        operand_batching_dims=dnums.operand_batching_dims,
        scatter_indices_batching_dims=dnums.start_indices_batching_dims,
    )


def _scatter_to_gather_dnums(dnums: lax.ScatterDimensionNumbers) -> lax.GatherDimensionNumbers:
    return lax.GatherDimensionNumbers(
        offset_dims=dnums.update_window_dims,
        collapsed_slice_dims=dnums.inserted_window_dims,
        start_index_map=dnums.scatter_dims_to_operand_dims,
        operand_batching_dims=dnums.operand_batching_dims,
        start_indices_batching_dims=dnums.scatter_indices_batching_dims,
    )


def _scatter_slice_sizes(operand_shape, updates_shape, dnums: lax.ScatterDimensionNumbers):
    """The ``slice_sizes`` of the gather that reads back what a scatter wrote."""
    window = iter(dnums.update_window_dims)
    return tuple(
        1
        if d in dnums.inserted_window_dims or d in dnums.operand_batching_dims
        else updates_shape[next(window)]
        for d in range(len(operand_shape))
    )


def _gather_back(x, indices, operand_shape, updates_shape, dimension_numbers, **flags):
    """The windows of ``x`` that a scatter with these dimension numbers writes, shaped like
    its updates (zero for dropped out-of-bounds windows)."""
    return lax.gather(
        x,
        indices,
        _scatter_to_gather_dnums(dimension_numbers),
        _scatter_slice_sizes(operand_shape, updates_shape, dimension_numbers),
        fill_value=0,
        **flags,
    )


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


# ---------------------------------------------------------------------------------------
# Contraction.


def _remaining(ndim, *taken):
    return [d for d in range(ndim) if not any(d in t for t in taken)]


def _dot_general_transpose(ct, x, y, x_is_lhs, dimension_numbers, precision, preferred):
    """Cotangent of the operand ``x`` of ``dot_general(lhs, rhs)`` (``x`` is ``lhs`` when
    ``x_is_lhs``, else ``rhs``): contract ``ct`` with ``y`` over ``y``'s free dimensions,
    then put the result's dimensions back in ``x``'s order."""
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    if x_is_lhs:
        x_contract, y_contract, x_batch, y_batch = lhs_contract, rhs_contract, lhs_batch, rhs_batch
    else:
        x_contract, y_contract, x_batch, y_batch = rhs_contract, lhs_contract, rhs_batch, lhs_batch
    x_kept = _remaining(np.ndim(x), x_contract, x_batch)
    y_kept = _remaining(np.ndim(y), y_contract, y_batch)
    # ct's layout: batch dimensions, then lhs's free dimensions, then rhs's.
    num_batch = len(x_batch)
    first_y = num_batch + (len(x_kept) if x_is_lhs else 0)
    ct_y_kept = tuple(range(first_y, first_y + len(y_kept)))
    dims = ((ct_y_kept, tuple(y_kept)), (tuple(range(num_batch)), tuple(y_batch)))
    product = lax.dot_general(ct, y, dims, precision=precision, preferred_element_type=preferred)
    # product's layout: batch, x's free dimensions, then y's contracted dimensions in
    # increasing order, each standing for the x dimension it was contracted with.
    x_contract_by_y = [x_contract[k] for k in np.argsort(y_contract)]
    layout = list(x_batch) + x_kept + x_contract_by_y
    return _to_dtype(lax.transpose(product, tuple(np.argsort(layout))), _dtype(x))


@defjvp("dot_general")
def _dot_general_jvp(primals, tangents, out, **params):
    lhs, rhs = primals
    t_lhs, t_rhs = tangents
    result = None
    if t_lhs is not None:
        result = lax.dot_general_p.bind(t_lhs, rhs, **params)
    if t_rhs is not None:
        term = lax.dot_general_p.bind(lhs, t_rhs, **params)
        result = term if result is None else result + term
    return result


@defvjp("dot_general")
def _dot_general_vjp(
    ct, primals, out, *, dimension_numbers, precision=None, preferred_element_type=None, **_
):
    lhs, rhs = primals
    common = dict(
        dimension_numbers=dimension_numbers, precision=precision, preferred=preferred_element_type
    )
    ct_lhs = _dot_general_transpose(ct, lhs, rhs, True, **common) if _is_float(lhs) else None
    ct_rhs = _dot_general_transpose(ct, rhs, lhs, False, **common) if _is_float(rhs) else None
    return ct_lhs, ct_rhs


# ---------------------------------------------------------------------------------------
# Shape primitives.

defjvp("broadcast_in_dim")(_linear_jvp(lax.broadcast_in_dim_p))
defjvp("reshape")(_linear_jvp(lax.reshape_p))
defjvp("squeeze")(_linear_jvp(lax.squeeze_p))
defjvp("transpose")(_linear_jvp(lax.transpose_p))
defjvp("rev")(_linear_jvp(lax.rev_p))


@defvjp("broadcast_in_dim")
def _broadcast_in_dim_vjp(ct, primals, out, *, shape, broadcast_dimensions, **_):
    operand = primals[0]
    in_shape = np.shape(operand)
    new_axes = [d for d in range(len(shape)) if d not in broadcast_dimensions]
    expanded = [d for i, d in enumerate(broadcast_dimensions) if in_shape[i] == 1 and shape[d] != 1]
    summed = sorted(new_axes + expanded)
    if summed:
        ct = lax.reduce_sum(ct, tuple(summed))
    return (lax.reshape(ct, in_shape), *[None] * (len(primals) - 1))


@defvjp("reshape")
def _reshape_vjp(ct, primals, out, *, dimensions=None, **_):
    in_shape = np.shape(primals[0])
    if dimensions is None:
        ct_in = lax.reshape(ct, in_shape)
    else:  # reshape of the operand transposed by ``dimensions``
        ct_in = lax.transpose(
            lax.reshape(ct, tuple(np.take(in_shape, dimensions))), tuple(np.argsort(dimensions))
        )
    return (ct_in, *[None] * (len(primals) - 1))


@defvjp("squeeze")
def _squeeze_vjp(ct, primals, out, **_):
    return (lax.reshape(ct, np.shape(primals[0])),)


@defvjp("transpose")
def _transpose_vjp(ct, primals, out, *, permutation):
    return (lax.transpose(ct, tuple(np.argsort(permutation))),)


@defvjp("rev")
def _rev_vjp(ct, primals, out, *, dimensions):
    return (lax.rev(ct, dimensions),)


def _jointly_linear_jvp(primitive):
    """JVP of a primitive linear in all its operands together (``concatenate``, ``stack``,
    ``pad`` with its padding value): the primitive applied to the tangents, zeros for
    ``None``."""

    def jvp(primals, tangents, out, **params):
        if all(t is None for t in tangents) or not _is_float(out):
            return None
        return primitive.bind(*map(_instantiate, tangents, primals), **params)

    return jvp


defjvp("concatenate")(_jointly_linear_jvp(lax.concatenate_p))
defjvp("stack")(_jointly_linear_jvp(lax.stack_p))


@defvjp("concatenate")
def _concatenate_vjp(ct, primals, out, *, dimension):
    cts, start = [], 0
    for operand in primals:
        size = np.shape(operand)[dimension]
        piece = lax.slice_in_dim(ct, start, start + size, axis=dimension)
        cts.append(piece if _is_float(operand) else None)
        start += size
    return tuple(cts)


@defvjp("stack")
def _stack_vjp(ct, primals, out, *, axis):
    return tuple(
        lax.index_in_dim(ct, i, axis, keepdims=False) if _is_float(operand) else None
        for i, operand in enumerate(primals)
    )


@defjvp("split")
def _split_jvp(primals, tangents, out, **params):
    if tangents[0] is None or not _is_float(primals[0]):
        return None
    return list(lax.split_p.bind(tangents[0], **params))


@defvjp("split")
def _split_vjp(cts, primals, out, *, axis, **_):
    if not _is_float(primals[0]):
        return (None,)
    return (lax.concatenate([_instantiate(c, o) for c, o in zip(cts, out, strict=True)], axis),)


@defjvp("unstack")
def _unstack_jvp(primals, tangents, out, **params):
    if tangents[0] is None or not _is_float(primals[0]):
        return None
    return list(lax.unstack_p.bind(tangents[0], **params))


@defvjp("unstack")
def _unstack_vjp(cts, primals, out, *, axis):
    if not _is_float(primals[0]):
        return (None,)
    return (lax.stack([_instantiate(c, o) for c, o in zip(cts, out, strict=True)], axis),)


defjvp("tile")(_linear_jvp(lax.tile_p))


@defvjp("tile")
def _tile_vjp(ct, primals, out, *, reps):
    # out[k n + j] = x[j] along each dimension: view ct as (r0, n0, r1, n1, ...) and sum
    # over the repetitions.
    shape = np.shape(primals[0])
    blocks = tuple(d for r, n in zip(reps, shape, strict=True) for d in (r, n))
    return (lax.reduce_sum(lax.reshape(ct, blocks), tuple(range(0, len(blocks), 2))),)


defjvp("sharding_constraint")(_linear_jvp(lax.sharding_constraint_p))


@defvjp("sharding_constraint")
def _sharding_constraint_vjp(ct, primals, out, **params):
    return (lax.sharding_constraint_p.bind(ct, **params),)


@defjvp("iota")
def _iota_jvp(primals, tangents, out, **params):
    return None


@defvjp("iota")
def _iota_vjp(ct, primals, out, **params):
    return ()


# ---------------------------------------------------------------------------------------
# Reductions.

defjvp("reduce_sum")(_linear_jvp(lax.reduce_sum_p))


def _kept_axes(ndim, axes):
    return tuple(d for d in range(ndim) if d not in axes)


@defvjp("reduce_sum")
def _reduce_sum_vjp(ct, primals, out, *, axes, **_):
    shape = np.shape(primals[0])
    return (lax.broadcast_in_dim(ct, shape, _kept_axes(len(shape), axes)),)


def _chooser_locations(operand, out, axes):
    """Indicator of the positions attaining the reduced extreme, and their count."""
    shape = np.shape(operand)
    chosen = lax.eq(operand, lax.broadcast_in_dim(out, shape, _kept_axes(len(shape), axes)))
    locations = lax.convert_element_type(chosen, _dtype(operand))
    return locations, lax.reduce_sum(locations, axes)


@defjvp("reduce_max", "reduce_min")
def _reduce_chooser_jvp(primals, tangents, out, *, axes, **_):
    (operand,), (t,) = primals, tangents
    if t is None or not _is_float(operand):
        return None
    locations, counts = _chooser_locations(operand, out, axes)
    return lax.reduce_sum(t * locations, axes) / counts


@defvjp("reduce_max", "reduce_min")
def _reduce_chooser_vjp(ct, primals, out, *, axes, **_):
    (operand,) = primals
    if not _is_float(operand):
        return (None,)
    locations, counts = _chooser_locations(operand, out, axes)
    shape = np.shape(operand)
    return (locations * lax.broadcast_in_dim(ct / counts, shape, _kept_axes(len(shape), axes)),)


def _product_of_others(x, axes):
    """``prod_{j != i} x_j`` over the reduced ``axes`` for every position ``i``, without
    division (exact with zeros): exclusive prefix times exclusive suffix products."""
    ndim = np.ndim(x)
    kept = _kept_axes(ndim, axes)
    perm = (*kept, *axes)
    moved = lax.transpose(x, perm)
    flat_shape = (*moved.shape[: len(kept)], int(np.prod(moved.shape[len(kept) :], dtype=int)))
    flat = lax.reshape(moved, flat_shape)
    last = len(kept)
    before = _previous(lax.cumprod(flat, last), last, False, 1)
    after = _previous(lax.cumprod(flat, last, reverse=True), last, True, 1)
    return lax.transpose(lax.reshape(before * after, moved.shape), tuple(np.argsort(perm)))


@defjvp("reduce_prod")
def _reduce_prod_jvp(primals, tangents, out, *, axes, **_):
    (operand,), (t,) = primals, tangents
    if t is None or not _is_float(operand):
        return None
    return lax.reduce_sum(t * _product_of_others(operand, axes), axes)


@defvjp("reduce_prod")
def _reduce_prod_vjp(ct, primals, out, *, axes, **_):
    (operand,) = primals
    if not _is_float(operand):
        return (None,)
    shape = np.shape(operand)
    broadcast = lax.broadcast_in_dim(ct, shape, _kept_axes(len(shape), axes))
    return (broadcast * _product_of_others(operand, axes),)


@defjvp("argmax", "argmin")
def _arg_chooser_jvp(primals, tangents, out, **params):
    return None


@defvjp("argmax", "argmin")
def _arg_chooser_vjp(ct, primals, out, **params):
    return (None,)


# ---------------------------------------------------------------------------------------
# Cumulative reductions.

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


# ---------------------------------------------------------------------------------------
# Slicing and padding.

defjvp("slice")(_linear_jvp(lax.slice_p))
defjvp("dynamic_slice")(_linear_jvp(lax.dynamic_slice_p))


@defvjp("slice")
def _slice_vjp(ct, primals, out, *, start_indices, limit_indices, strides):
    in_shape = np.array(np.shape(primals[0]), dtype=int)
    start = np.array(start_indices, dtype=int)
    steps = np.ones_like(start) if strides is None else np.array(strides, dtype=int)
    out_shape = np.array(np.shape(ct), dtype=int)
    last = start + np.where(out_shape == 0, 0, (out_shape - 1) * steps + 1)
    config = [
        (int(lo), int(hi), int(s) - 1)
        for lo, hi, s in zip(start, in_shape - last, steps, strict=True)
    ]
    return (lax.pad(ct, np.array(0, _dtype(ct)), config),)


@defvjp("dynamic_slice")
def _dynamic_slice_vjp(ct, primals, out, **_):
    operand, *indices = primals
    ct_operand = lax.dynamic_update_slice_p.bind(_zeros_like(operand), ct, *indices)
    return (ct_operand, *[None] * len(indices))


@defjvp("dynamic_update_slice")
def _dynamic_update_slice_jvp(primals, tangents, out, **params):
    operand, update, *indices = primals
    t_operand, t_update, *_ = tangents
    if (t_operand is None and t_update is None) or not _is_float(out):
        return None
    return lax.dynamic_update_slice_p.bind(
        _instantiate(t_operand, operand), _instantiate(t_update, update), *indices, **params
    )


@defvjp("dynamic_update_slice")
def _dynamic_update_slice_vjp(ct, primals, out, **_):
    operand, update, *indices = primals
    if not _is_float(operand):
        return (None, None, *[None] * len(indices))
    ct_operand = lax.dynamic_update_slice_p.bind(ct, _zeros_like(update), *indices)
    ct_update = lax.dynamic_slice_p.bind(ct, *indices, slice_sizes=tuple(np.shape(update)))
    return (ct_operand, ct_update, *[None] * len(indices))


defjvp("pad")(_jointly_linear_jvp(lax.pad_p))


@defvjp("pad")
def _pad_vjp(ct, primals, out, *, padding_config):
    operand, _ = primals
    if not _is_float(operand):
        return None, None
    lows, highs, interiors = zip(*padding_config, strict=True)
    # Undo the edge padding (a negative edge was a crop: pad it back with zeros), then
    # take every (interior + 1)-th element.
    zero = np.array(0, _dtype(ct))
    unpadded = lax.pad(ct, zero, [(-lo, -hi, 0) for lo, hi in zip(lows, highs, strict=True)])
    ct_operand = lax.slice(
        unpadded, (0,) * np.ndim(ct), np.shape(unpadded), tuple(i + 1 for i in interiors)
    )
    everything = tuple(range(np.ndim(ct)))
    ct_value = lax.reduce_sum(ct, everything) - lax.reduce_sum(ct_operand, everything)
    return ct_operand, ct_value


# ---------------------------------------------------------------------------------------
# Indexing.


@defjvp("gather")
def _gather_jvp(primals, tangents, out, *, fill_value=None, **params):
    operand, indices = primals
    if tangents[0] is None or not _is_float(operand):
        return None
    # The tangent of an out-of-bounds fill value is zero.
    return lax.gather(tangents[0], indices, fill_value=0, **params)


@defvjp("gather")
def _gather_vjp(
    ct,
    primals,
    out,
    *,
    dimension_numbers,
    slice_sizes,
    unique_indices,
    indices_are_sorted,
    mode,
    **_,
):
    operand, indices = primals
    if not _is_float(operand):
        return None, None
    ct_operand = lax.scatter_add(
        _zeros_like(operand),
        indices,
        ct,
        _gather_to_scatter_dnums(dimension_numbers),
        indices_are_sorted=indices_are_sorted,
        unique_indices=unique_indices,
        mode=mode,
    )
    return ct_operand, None


def _scatter_linear_jvp(primitive):
    """JVP of ``scatter-add`` / ``scatter-sub``, linear in (operand, updates) jointly."""

    def jvp(primals, tangents, out, **params):
        operand, indices, updates = primals
        t_operand, _, t_updates = tangents
        if (t_operand is None and t_updates is None) or not _is_float(out):
            return None
        t_operand, t_updates = _instantiate(t_operand, operand), _instantiate(t_updates, updates)
        return primitive.bind(t_operand, indices, t_updates, **params)

    return jvp


defjvp("scatter-add")(_scatter_linear_jvp(lax.scatter_add_p))
defjvp("scatter-sub")(_scatter_linear_jvp(lax.scatter_sub_p))


def _scatter_flags(params):
    return {k: params[k] for k in ("indices_are_sorted", "unique_indices", "mode")}


def _scatter_linear_vjp(sign):
    """VJP of ``scatter-add`` (``sign = 1``) / ``scatter-sub`` (``sign = -1``): the operand
    gets the cotangent, the updates (times ``sign``) the windows they were added to."""

    def vjp(ct, primals, out, *, dimension_numbers, **params):
        operand, indices, updates = primals
        if not _is_float(operand):
            return None, None, None
        ct_updates = _gather_back(
            ct,
            indices,
            np.shape(operand),
            np.shape(updates),
            dimension_numbers,
            **_scatter_flags(params),
        )
        return ct, None, ct_updates if sign > 0 else -ct_updates

    return vjp


defvjp("scatter-add")(_scatter_linear_vjp(1))
defvjp("scatter-sub")(_scatter_linear_vjp(-1))


def _scatter_masks(operand, indices, updates, dimension_numbers, flags):
    """Which operand elements survive an overwriting scatter, and which update elements
    are written (the winners among repeated indices): scatter an id per update window,
    read the ids back, and compare."""
    updates_shape = np.shape(updates)
    ids_shape = tuple(
        1 if d in dimension_numbers.update_window_dims else n for d, n in enumerate(updates_shape)
    )
    num_ids = int(np.prod(ids_shape, dtype=int))
    id_dtype = _index_dtype(num_ids + 1)
    ids = lax.reshape(lax.iota(id_dtype, num_ids), ids_shape) + np.array(1, id_dtype)
    ids = lax.broadcast_in_dim(ids, updates_shape, tuple(range(len(updates_shape))))
    scattered = lax.scatter(
        _zeros(np.shape(operand), id_dtype), indices, ids, dimension_numbers, **flags
    )
    read_back = _gather_back(
        scattered, indices, np.shape(operand), updates_shape, dimension_numbers, **flags
    )
    kept = lax.eq(scattered, _zeros(np.shape(operand), id_dtype))
    written = lax.eq(read_back, ids)
    return kept, written


@defjvp("scatter")
def _scatter_jvp(primals, tangents, out, *, dimension_numbers, **params):
    operand, indices, updates = primals
    t_operand, _, t_updates = tangents
    if (t_operand is None and t_updates is None) or not _is_float(out):
        return None
    flags = _scatter_flags(params)
    kept, written = _scatter_masks(operand, indices, updates, dimension_numbers, flags)
    t_operand = lax.select(kept, _instantiate(t_operand, operand), _zeros_like(operand))
    t_updates = lax.select(written, _instantiate(t_updates, updates), _zeros_like(updates))
    return lax.scatter_add(t_operand, indices, t_updates, dimension_numbers, **flags)


@defvjp("scatter")
def _scatter_vjp(ct, primals, out, *, dimension_numbers, **params):
    operand, indices, updates = primals
    if not _is_float(operand):
        return None, None, None
    flags = _scatter_flags(params)
    kept, written = _scatter_masks(operand, indices, updates, dimension_numbers, flags)
    ct_operand = lax.select(kept, ct, _zeros_like(ct))
    read_back = _gather_back(
        ct, indices, np.shape(operand), np.shape(updates), dimension_numbers, **flags
    )
    ct_updates = lax.select(written, read_back, _zeros_like(updates))
    return ct_operand, None, ct_updates


# ---------------------------------------------------------------------------------------
# Sorting.


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


@defvjp("sort")
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


@defvjp("top_k")
def _top_k_vjp(cts, primals, out, *, axis=-1, **_):
    (operand,) = primals
    ct_values = cts[0]
    if ct_values is None or not _is_float(operand):
        return (None,)
    indices = out[1]
    axis = axis % np.ndim(indices)
    return (_take_along_axis_transpose(ct_values, indices, axis, np.shape(operand)),)
