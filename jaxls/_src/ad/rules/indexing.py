r"""JVP and VJP rules of slicing, padding and indexing: ``slice``, ``dynamic_slice``,
``dynamic_update_slice``, ``pad``, ``gather``, ``scatter-add``, ``scatter-sub`` and
``scatter``.

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
* ``promise_in_bounds`` with out-of-bounds indices, or ``unique_indices`` /
  ``indices_are_sorted`` promises that do not hold, give what JAX gives: the flags are
  passed on to the ``gather`` / ``scatter`` the rules emit, whose results the promise
  leaves implementation-defined.

Every parameter is read; what the rules do not implement they refuse with a
`NotImplementedError` naming it, as JAX does or where JAX would be wrong too:

* a scatter's combiner ``update_jaxpr`` (with ``update_consts``) must be the primitive's
  own: none for ``scatter``, ``add`` for ``scatter-add``, ``sub`` for ``scatter-sub``. The
  primitive applies whatever combiner it is given (``scatter-add`` bound with ``mul``
  multiplies), and ``x.at[i].apply(f)`` is a ``scatter`` with ``update_jaxpr = f``, which
  JAX does not differentiate either: write ``x.at[i].set(f(x[i]))``.
* the index mode must be ``clip``, ``fill`` or ``promise_in_bounds`` (``one_hot``, which
  ``lax`` cannot lower either, is refused).

``scatter-mul``, ``scatter-min`` and ``scatter-max`` have no rules (the interpreters
refuse them by name).
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import instantiate as _instantiate
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.registry import zeros_like as _zeros_like
from jaxls._src.ad.rules.common import zeros as _zeros
from jaxls._src.ad.rules.common import index_dtype as _index_dtype
from jaxls._src.ad.rules.common import linear_jvp as _linear_jvp
from jaxls._src.ad.rules.common import jointly_linear_jvp as _jointly_linear_jvp
from jaxls._src.ad.rules.common import gather_to_scatter_dnums as _gather_to_scatter_dnums
from jaxls._src.ad.registry import defjvp, defvjp


_MODES = frozenset(
    {
        lax.GatherScatterMode.CLIP,
        lax.GatherScatterMode.FILL_OR_DROP,
        lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    }
)
"""The index modes the rules of ``gather`` and the scatters implement."""

_COMBINER = {"scatter": None, "scatter-add": "add", "scatter-sub": "sub"}
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
    parameters), ``None`` when there is no ``update_jaxpr``, ``"?"`` otherwise."""
    if update_jaxpr is None:
        return None
    if update_jaxpr.constvars or len(update_jaxpr.eqns) != 1:
        return "?"
    (eqn,) = update_jaxpr.eqns
    if (
        eqn.params
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


@defvjp("dynamic_update_slice")
def _dynamic_update_slice_vjp(ct, primals, out):
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


defvjp("scatter-add")(_scatter_linear_vjp("scatter-add", 1))


defvjp("scatter-sub")(_scatter_linear_vjp("scatter-sub", -1))


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


@defvjp("scatter")
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


__all__: list[str] = []
