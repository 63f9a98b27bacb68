r"""JVP and VJP rules of the reductions: ``reduce_sum``, ``reduce_max``, ``reduce_min``,
``reduce_prod``, ``argmax`` and ``argmin``.

Conventions (those of JAX):

* ``reduce_max`` / ``reduce_min``: the derivative is split equally among the positions
  that attain the extreme, ``d max(x) = sum_i [x_i = max] dx_i / #{i: x_i = max}``.
* ``reduce_prod``: the derivative with respect to ``x_i`` is the product of the others,
  computed without division (exact with zeros).
* ``argmax`` / ``argmin`` have integer results: no derivative.
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.rules.common import linear_jvp as _linear_jvp
from jaxls._src.ad.rules.common import previous as _previous
from jaxls._src.ad.registry import defjvp, defvjp


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


__all__: list[str] = []
