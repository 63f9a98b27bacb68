r"""JVP and VJP rules of slicing, padding and indexing: ``slice``, ``dynamic_slice``,
``dynamic_update_slice``, ``pad``, ``gather``, ``scatter-add``, ``scatter-sub``,
``scatter``, ``scatter-mul``, ``scatter-min`` and ``scatter-max``.

Where the primitive is linear in the differentiated operand, the JVP binds it again with
the equation's exact parameters; the VJP is the transpose, written with the primitive's
adjoint (``pad`` for ``slice``, ``scatter-add`` for ``gather``, ...).

Conventions (those of JAX):

* ``gather`` transposes to ``scatter-add`` and ``scatter-add`` to ``gather`` with the same
  index mode: out-of-bounds windows are clamped on both sides (``clip``) or filled with
  zero and dropped (``fill``); the tangent of a ``fill`` value is zero.
* ``scatter`` (overwrite, ``x.at[i].set(v)``): with repeated indices only the update that
  wins receives a derivative, found as in JAX by scattering the update ids; the winner
  is the one the backend's ``scatter`` picks (deterministic on CPU, not guaranteed on
  accelerators).
* ``scatter-max`` / ``scatter-min`` (``x.at[i].max(v)``, ``jax.ops.segment_max``): each
  output element's derivative is split equally among the values that attain it, the
  operand's element and the updates written there (``d max(a, b, c)`` with ``a = b > c``
  is ``(da + db) / 2``), as for ``reduce_max``; a NaN attains a NaN output (so that an
  element no update touches keeps its derivative, as in JAX). The counts are scattered
  and read back with the equation's own mode, so ``clip`` differentiates the clamped
  scatter it computes (JAX 0.10 reads them back in ``fill`` mode and gives NaN there).
* ``scatter-mul`` (``x.at[i].multiply(v)``, ``jax.ops.segment_prod``):
  ``d(x prod v) = dx prod v + x dv``, the second term (the updates' derivative) for
  ``unique_indices=True`` only, as in JAX: with repeated indices it would be a product of
  the other updates, which JAX does not compute either. Its VJP rule is told which
  inputs are active (`registry.HigherOrderVJP`), so that the operand alone, the updates
  held constant, is differentiated with repeated indices too.
* ``promise_in_bounds`` with out-of-bounds indices, or ``unique_indices`` /
  ``indices_are_sorted`` promises that do not hold, give what JAX gives: the flags are
  passed on to the ``gather`` / ``scatter`` the rules emit, whose results the promise
  leaves implementation-defined.

Every parameter is read; what the rules do not implement they refuse with a
`NotImplementedError` naming it, as JAX does or where JAX would be wrong too:

* a scatter's combiner ``update_jaxpr`` (with ``update_consts``) must be the primitive's
  own: none for ``scatter``, ``add`` for ``scatter-add``, ``sub`` for ``scatter-sub``,
  ``mul``, ``min`` and ``max`` for ``scatter-mul``, ``scatter-min`` and ``scatter-max``. The
  primitive applies whatever combiner it is given (``scatter-add`` bound with ``mul``
  multiplies), and ``x.at[i].apply(f)`` is a ``scatter`` with ``update_jaxpr = f``, which
  JAX does not differentiate either: write ``x.at[i].set(f(x[i]))``.
* the index mode must be ``clip``, ``fill`` or ``promise_in_bounds`` (``one_hot``, which
  ``lax`` cannot lower either, is refused).
* ``scatter-mul`` with respect to its updates needs ``unique_indices=True`` (above).
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import add as _add
from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import instantiate as _instantiate
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.registry import zeros_like as _zeros_like
from jaxls._src.ad.rules.common import zeros as _zeros
from jaxls._src.ad.rules.common import index_dtype as _index_dtype
from jaxls._src.ad.rules.common import linear_jvp as _linear_jvp
from jaxls._src.ad.rules.common import jointly_linear_jvp as _jointly_linear_jvp
from jaxls._src.ad.rules.common import gather_to_scatter_dnums as _gather_to_scatter_dnums
from jaxls._src.ad.registry import EVERYTHING, NOTHING, Reads, defjvp, defvjp
from jaxls._src.ad.registry import defvjp_higher_order, inputs


_MODES = frozenset(
    {
        lax.GatherScatterMode.CLIP,
        lax.GatherScatterMode.FILL_OR_DROP,
        lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    }
)
"""The index modes the rules of ``gather`` and the scatters implement."""

_COMBINER = {
    "scatter": None,
    "scatter-add": "add",
    "scatter-sub": "sub",
    "scatter-mul": "mul",
    "scatter-min": "min",
    "scatter-max": "max",
}
"""The combiner (``update_jaxpr``) each scatter rule differentiates: the name of the
primitive ``p`` of ``update_jaxpr = (a, b) -> p(a, b)``, ``None`` for no ``update_jaxpr``
(an overwrite)."""


def _check_mode(name, mode):
    if mode not in _MODES:
        raise NotImplementedError(
            f"jaxls.ad: the `{name}` rules implement the index modes clip, fill and "
            f"promise_in_bounds, not `mode={mode}`. Index with `mode='clip'` or "
            f"`mode='fill'` instead."
        )


def _combiner(update_jaxpr):
    """The name of ``p`` when ``update_jaxpr`` is ``(a, b) -> p(a, b)`` (no constants, no
    parameter set: ``mul``'s ``out_dtype=None`` is its default), ``None`` when there is no
    ``update_jaxpr``, ``"?"`` otherwise."""
    if update_jaxpr is None:
        return None
    if update_jaxpr.constvars or len(update_jaxpr.eqns) != 1:
        return "?"
    (eqn,) = update_jaxpr.eqns
    if (
        any(value is not None for value in eqn.params.values())
        or list(eqn.invars) != list(update_jaxpr.invars)
        or list(eqn.outvars) != list(update_jaxpr.outvars)
    ):
        return "?"
    return jx.name(eqn)


def _check_scatter(name, update_jaxpr, update_consts, mode):
    """Refuse a scatter equation whose combiner or index mode the rules of ``name`` do
    not implement (see the module docstring)."""
    expected = _COMBINER[name]
    if update_consts or _combiner(update_jaxpr) != expected:
        if name == "scatter":
            raise NotImplementedError(
                "jaxls.ad: `scatter` with an `update_jaxpr` (made by `x.at[i].apply(f)` or "
                "`lax.scatter_apply`) has no derivative rule, in JAX either: the rules "
                "differentiate the overwrite `x.at[i].set(v)`, which has no `update_jaxpr`. "
                "Write `x.at[i].set(f(x[i]))` instead."
            )
        raise NotImplementedError(
            f"jaxls.ad: the `{name}` rules differentiate the combiner `{expected}` of "
            f"`lax.{name.replace('-', '_')}`, not `update_jaxpr={update_jaxpr}` with "
            f"`update_consts={update_consts}` (the primitive would apply it instead). Build "
            f"the update with `lax.{name.replace('-', '_')}`, or with another combiner f, "
            f"as `x.at[i].set(f(x[i], v))`."
        )
    _check_mode(name, mode)


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


defjvp("slice")(_linear_jvp(lax.slice_p))


defjvp("dynamic_slice")(_linear_jvp(lax.dynamic_slice_p))


@defvjp("slice", reads=NOTHING)
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


@defvjp("dynamic_slice", reads=Reads(slice(1, None), False))
def _dynamic_slice_vjp(ct, primals, out, *, slice_sizes):
    del slice_sizes  # the shape of ct
    operand, *indices = primals
    ct_operand = lax.dynamic_update_slice_p.bind(_zeros_like(operand), ct, *indices)
    return (ct_operand, *[None] * len(indices))


@defjvp("dynamic_update_slice")
def _dynamic_update_slice_jvp(primals, tangents, out):
    operand, update, *indices = primals
    t_operand, t_update, *_ = tangents
    if (t_operand is None and t_update is None) or not _is_float(out):
        return None
    return lax.dynamic_update_slice_p.bind(
        _instantiate(t_operand, operand), _instantiate(t_update, update), *indices
    )


@defvjp("dynamic_update_slice", reads=Reads(slice(2, None), False))
def _dynamic_update_slice_vjp(ct, primals, out):
    operand, update, *indices = primals
    if not _is_float(operand):
        return (None, None, *[None] * len(indices))
    ct_operand = lax.dynamic_update_slice_p.bind(ct, _zeros_like(update), *indices)
    ct_update = lax.dynamic_slice_p.bind(ct, *indices, slice_sizes=tuple(np.shape(update)))
    return (ct_operand, ct_update, *[None] * len(indices))


defjvp("pad")(_jointly_linear_jvp(lax.pad_p))


@defvjp("pad", reads=NOTHING)
def _pad_vjp(ct, primals, out, *, padding_config):
    operand, _ = primals
    if not _is_float(operand):
        return None, None
    # Undo the edge padding (a negative edge was a crop: pad it back with zeros), then
    # take every (interior + 1)-th element. (A 0-d operand has an empty configuration:
    # the pad is the identity.)
    zero = np.array(0, _dtype(ct))
    unpadded = lax.pad(ct, zero, [(-lo, -hi, 0) for lo, hi, _ in padding_config])
    ct_operand = lax.slice(
        unpadded,
        (0,) * np.ndim(ct),
        np.shape(unpadded),
        tuple(interior + 1 for _, _, interior in padding_config),
    )
    everything = tuple(range(np.ndim(ct)))
    ct_value = lax.reduce_sum(ct, everything) - lax.reduce_sum(ct_operand, everything)
    return ct_operand, ct_value


@defjvp("gather")
def _gather_jvp(
    primals,
    tangents,
    out,
    *,
    dimension_numbers,
    slice_sizes,
    unique_indices,
    indices_are_sorted,
    mode,
    fill_value,
):
    operand, indices = primals
    if tangents[0] is None or not _is_float(operand):
        return None
    _check_mode("gather", mode)
    # The tangent of an out-of-bounds fill value (a constant) is zero.
    return lax.gather(
        tangents[0],
        indices,
        dimension_numbers,
        slice_sizes,
        unique_indices=unique_indices,
        indices_are_sorted=indices_are_sorted,
        mode=mode,
        fill_value=0,
    )


@defvjp("gather", reads=inputs(1))
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
    fill_value,
):
    operand, indices = primals
    if not _is_float(operand):
        return None, None
    _check_mode("gather", mode)
    del slice_sizes, fill_value  # the shape of ct; a constant (no cotangent)
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


def _scatter_flags(name, update_jaxpr, update_consts, indices_are_sorted, unique_indices, mode):
    """The flags of the ``gather`` / ``scatter`` a rule of ``name`` emits, once its combiner
    and mode are checked."""
    _check_scatter(name, update_jaxpr, update_consts, mode)
    return dict(indices_are_sorted=indices_are_sorted, unique_indices=unique_indices, mode=mode)


def _scatter_linear_jvp(primitive):
    """JVP of ``scatter-add`` / ``scatter-sub``, linear in (operand, updates) jointly: the
    primitive bound again on the tangents, with its (checked) combiner."""

    def jvp(primals, tangents, out, *, dimension_numbers, update_jaxpr, update_consts, **flags):
        operand, indices, updates = primals
        t_operand, _, t_updates = tangents
        if (t_operand is None and t_updates is None) or not _is_float(out):
            return None
        flags = _scatter_flags(primitive.name, update_jaxpr, update_consts, **flags)
        t_operand, t_updates = _instantiate(t_operand, operand), _instantiate(t_updates, updates)
        return primitive.bind(
            t_operand,
            indices,
            t_updates,
            dimension_numbers=dimension_numbers,
            update_jaxpr=update_jaxpr,
            update_consts=update_consts,
            **flags,
        )

    return jvp


defjvp("scatter-add")(_scatter_linear_jvp(lax.scatter_add_p))


defjvp("scatter-sub")(_scatter_linear_jvp(lax.scatter_sub_p))


def _scatter_linear_vjp(name, sign):
    """VJP of ``scatter-add`` (``sign = 1``) / ``scatter-sub`` (``sign = -1``): the operand
    gets the cotangent, the updates (times ``sign``) the windows they were added to."""

    def vjp(ct, primals, out, *, dimension_numbers, update_jaxpr, update_consts, **flags):
        operand, indices, updates = primals
        if not _is_float(operand):
            return None, None, None
        flags = _scatter_flags(name, update_jaxpr, update_consts, **flags)
        ct_updates = _gather_back(
            ct, indices, np.shape(operand), np.shape(updates), dimension_numbers, **flags
        )
        return ct, None, ct_updates if sign > 0 else -ct_updates

    return vjp


defvjp("scatter-add", reads=inputs(1))(_scatter_linear_vjp("scatter-add", 1))


defvjp("scatter-sub", reads=inputs(1))(_scatter_linear_vjp("scatter-sub", -1))


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
def _scatter_jvp(
    primals, tangents, out, *, dimension_numbers, update_jaxpr, update_consts, **flags
):
    operand, indices, updates = primals
    t_operand, _, t_updates = tangents
    if (t_operand is None and t_updates is None) or not _is_float(out):
        return None
    flags = _scatter_flags("scatter", update_jaxpr, update_consts, **flags)
    kept, written = _scatter_masks(operand, indices, updates, dimension_numbers, flags)
    t_operand = lax.select(kept, _instantiate(t_operand, operand), _zeros_like(operand))
    t_updates = lax.select(written, _instantiate(t_updates, updates), _zeros_like(updates))
    return lax.scatter_add(t_operand, indices, t_updates, dimension_numbers, **flags)


@defvjp("scatter", reads=inputs(1))
def _scatter_vjp(ct, primals, out, *, dimension_numbers, update_jaxpr, update_consts, **flags):
    operand, indices, updates = primals
    if not _is_float(operand):
        return None, None, None
    flags = _scatter_flags("scatter", update_jaxpr, update_consts, **flags)
    kept, written = _scatter_masks(operand, indices, updates, dimension_numbers, flags)
    ct_operand = lax.select(kept, ct, _zeros_like(ct))
    read_back = _gather_back(
        ct, indices, np.shape(operand), np.shape(updates), dimension_numbers, **flags
    )
    ct_updates = lax.select(written, read_back, _zeros_like(updates))
    return ct_operand, None, ct_updates


def _attains(a, out):
    """Whether each element of ``a`` equals ``out``, a NaN counting as equal to a NaN."""
    return lax.bitwise_or(lax.eq(a, out), lax.bitwise_and(lax.ne(a, a), lax.ne(out, out)))


def _extremal_shares(operand, indices, updates, out, dimension_numbers, flags):
    """The share of the derivative of a ``scatter-max`` / ``scatter-min`` that goes to each
    operand element and to each update element: ``1 / n`` to each of the ``n`` values that
    attain the output element (the operand's and the updates' written there), none to the
    others. The counts are integers (exact, whatever the float dtype); an update dropped
    out of bounds (``fill``) reads a zero share back."""
    dtype = _dtype(out)
    read_back = _gather_back(
        out, indices, np.shape(operand), np.shape(updates), dimension_numbers, **flags
    )
    kept = _attains(operand, out)
    written = _attains(updates, read_back)
    count = lax.scatter_add(
        lax.convert_element_type(kept, np.int32),
        indices,
        lax.convert_element_type(written, np.int32),
        dimension_numbers,
        **flags,
    )
    # A count of zero (a NaN output that no value attains) leaves every share zero.
    share = lax.div(
        np.array(1, dtype), lax.convert_element_type(lax.max(count, np.int32(1)), dtype)
    )
    operand_share = lax.select(kept, share, _zeros_like(share))
    update_share = _gather_back(
        share, indices, np.shape(operand), np.shape(updates), dimension_numbers, **flags
    )
    update_share = lax.select(written, update_share, _zeros_like(update_share))
    return operand_share, update_share


def _scatter_extremal_jvp(name):
    """JVP of ``scatter-max`` / ``scatter-min``: each output element takes the tangents of
    the values that attain it, averaged (`_extremal_shares`)."""

    def jvp(primals, tangents, out, *, dimension_numbers, update_jaxpr, update_consts, **flags):
        operand, indices, updates = primals
        t_operand, _, t_updates = tangents
        if (t_operand is None and t_updates is None) or not _is_float(out):
            return None
        flags = _scatter_flags(name, update_jaxpr, update_consts, **flags)
        operand_share, update_share = _extremal_shares(
            operand, indices, updates, out, dimension_numbers, flags
        )
        t_out = _zeros_like(out) if t_operand is None else t_operand * operand_share
        if t_updates is None:
            return t_out
        return lax.scatter_add(t_out, indices, t_updates * update_share, dimension_numbers, **flags)

    return jvp


def _scatter_extremal_vjp(name):
    """VJP of ``scatter-max`` / ``scatter-min``: the transpose of the JVP, each value that
    attains an output element gets its share of that element's cotangent."""

    def vjp(ct, primals, out, *, dimension_numbers, update_jaxpr, update_consts, **flags):
        operand, indices, updates = primals
        if not _is_float(operand):
            return None, None, None
        flags = _scatter_flags(name, update_jaxpr, update_consts, **flags)
        operand_share, update_share = _extremal_shares(
            operand, indices, updates, out, dimension_numbers, flags
        )
        read_back = _gather_back(
            ct, indices, np.shape(operand), np.shape(updates), dimension_numbers, **flags
        )
        return ct * operand_share, None, read_back * update_share

    return vjp


for _name in ("scatter-max", "scatter-min"):
    defjvp(_name)(_scatter_extremal_jvp(_name))
    defvjp(_name, reads=EVERYTHING)(_scatter_extremal_vjp(_name))


def _refuse_scatter_mul_updates(unique_indices):
    """Refuse the updates' derivative of a ``scatter-mul`` without unique indices."""
    if not unique_indices:
        raise NotImplementedError(
            "jaxls.ad: the derivative of `scatter-mul` (`x.at[i].multiply(v)`, "
            "`jax.ops.segment_prod`) with respect to its updates is implemented for "
            "`unique_indices=True` only, as in JAX: with repeated indices each update's "
            "derivative is the product of the others written to the same element. Pass "
            "`unique_indices=True` where the indices are unique, or hold the updates "
            "constant (`lax.stop_gradient`) and differentiate the operand alone."
        )


@defjvp("scatter-mul")
def _scatter_mul_jvp(
    primals, tangents, out, *, dimension_numbers, update_jaxpr, update_consts, **flags
):
    """``d(x * prod v) = (dx) * prod v + x * dv`` (the second term for unique indices):
    ``scatter-mul`` of the operand's tangent by the updates, plus the updates' tangents
    scattered and multiplied by the operand."""
    operand, indices, updates = primals
    t_operand, _, t_updates = tangents
    if (t_operand is None and t_updates is None) or not _is_float(out):
        return None
    flags = _scatter_flags("scatter-mul", update_jaxpr, update_consts, **flags)
    t_out = None
    if t_operand is not None:
        t_out = lax.scatter_mul_p.bind(
            t_operand,
            indices,
            updates,
            dimension_numbers=dimension_numbers,
            update_jaxpr=update_jaxpr,
            update_consts=update_consts,
            **flags,
        )
    if t_updates is None:
        return t_out
    _refuse_scatter_mul_updates(flags["unique_indices"])
    scattered = lax.scatter_add(
        _zeros_like(operand), indices, t_updates, dimension_numbers, **flags
    )
    return _add(t_out, operand * scattered)


def _scatter_mul_reads(active, **params) -> Reads:
    """The indices; the updates for the operand's cotangent, the operand for theirs."""
    return inputs(1, *([2] if active[0] else []), *([0] if active[2] else []))


def _scatter_mul_vjp(
    ct, primals, out, *, active, dimension_numbers, update_jaxpr, update_consts, **flags
):
    """VJP of ``scatter-mul``, the transpose of its JVP: the operand's cotangent is
    ``scatter-mul`` of the cotangent by the updates; the updates' (if ``active[2]``, unique
    indices only) is the cotangent times the operand, read back where each was written."""
    operand, indices, updates = primals
    if not _is_float(operand):
        return None, None, None
    flags = _scatter_flags("scatter-mul", update_jaxpr, update_consts, **flags)
    ct_operand = None
    if active[0]:
        ct_operand = lax.scatter_mul_p.bind(
            ct,
            indices,
            updates,
            dimension_numbers=dimension_numbers,
            update_jaxpr=update_jaxpr,
            update_consts=update_consts,
            **flags,
        )
    if not active[2]:
        return ct_operand, None, None
    _refuse_scatter_mul_updates(flags["unique_indices"])
    ct_updates = _gather_back(
        ct * operand, indices, np.shape(operand), np.shape(updates), dimension_numbers, **flags
    )
    return ct_operand, None, ct_updates


@defvjp_higher_order("scatter-mul", reads=_scatter_mul_reads)
def _scatter_mul_vjp_given_activity(interpreter, eqn, residuals, primals, outs, active, cts):
    """``scatter-mul``'s VJP in the form of a higher-order rule, for one thing: it is told
    which inputs are active, so that holding repeated-index updates constant (JAX's
    ``x.at[i].multiply(c)``) differentiates, and only differentiating them is refused."""
    del interpreter, residuals  # no jaxpr to run, nothing kept from the forward sweep
    return list(_scatter_mul_vjp(cts[0], primals, outs[0], active=active, **eqn.params))


__all__: list[str] = []
