r"""JVP and VJP rules of the shape primitives: ``broadcast_in_dim``, ``reshape``,
``squeeze``, ``transpose``, ``rev``, ``concatenate``, ``stack``, ``split``, ``unstack``,
``tile``, ``sharding_constraint`` and ``iota``.

Each is linear in its operands: the JVP binds the primitive again on the tangents with the
equation's exact parameters, the VJP is the transpose (a sum over broadcast axes, the
inverse reshape or permutation, slices of a concatenation, ...), which reads only shapes
(``reads=NOTHING``: reverse mode's tape keeps none of their values). ``iota`` has no input and
an integer result: no derivative.
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad.registry import instantiate as _instantiate
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.rules.common import linear_jvp as _linear_jvp
from jaxls._src.ad.rules.common import jointly_linear_jvp as _jointly_linear_jvp
from jaxls._src.ad.registry import NOTHING, defjvp, defvjp


defjvp("broadcast_in_dim")(_linear_jvp(lax.broadcast_in_dim_p))


defjvp("reshape")(_linear_jvp(lax.reshape_p))


defjvp("squeeze")(_linear_jvp(lax.squeeze_p))


defjvp("transpose")(_linear_jvp(lax.transpose_p))


defjvp("rev")(_linear_jvp(lax.rev_p))


@defvjp("broadcast_in_dim", reads=NOTHING)
def _broadcast_in_dim_vjp(ct, primals, out, *, shape, broadcast_dimensions, **_):
    operand = primals[0]
    in_shape = np.shape(operand)
    new_axes = [d for d in range(len(shape)) if d not in broadcast_dimensions]
    expanded = [d for i, d in enumerate(broadcast_dimensions) if in_shape[i] == 1 and shape[d] != 1]
    summed = sorted(new_axes + expanded)
    if summed:
        ct = lax.reduce_sum(ct, tuple(summed))
    return (lax.reshape(ct, in_shape), *[None] * (len(primals) - 1))


@defvjp("reshape", reads=NOTHING)
def _reshape_vjp(ct, primals, out, *, dimensions=None, **_):
    in_shape = np.shape(primals[0])
    if dimensions is None:
        ct_in = lax.reshape(ct, in_shape)
    else:  # reshape of the operand transposed by ``dimensions``
        ct_in = lax.transpose(
            lax.reshape(ct, tuple(np.take(in_shape, dimensions))), tuple(np.argsort(dimensions))
        )
    return (ct_in, *[None] * (len(primals) - 1))


@defvjp("squeeze", reads=NOTHING)
def _squeeze_vjp(ct, primals, out, **_):
    return (lax.reshape(ct, np.shape(primals[0])),)


@defvjp("transpose", reads=NOTHING)
def _transpose_vjp(ct, primals, out, *, permutation):
    return (lax.transpose(ct, tuple(np.argsort(permutation))),)


@defvjp("rev", reads=NOTHING)
def _rev_vjp(ct, primals, out, *, dimensions):
    return (lax.rev(ct, dimensions),)


defjvp("concatenate")(_jointly_linear_jvp(lax.concatenate_p))


defjvp("stack")(_jointly_linear_jvp(lax.stack_p))


@defvjp("concatenate", reads=NOTHING)
def _concatenate_vjp(ct, primals, out, *, dimension):
    cts, start = [], 0
    for operand in primals:
        size = np.shape(operand)[dimension]
        piece = lax.slice_in_dim(ct, start, start + size, axis=dimension)
        cts.append(piece if _is_float(operand) else None)
        start += size
    return tuple(cts)


@defvjp("stack", reads=NOTHING)
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


@defvjp("split", reads=NOTHING)
def _split_vjp(cts, primals, out, *, axis, **_):
    if not _is_float(primals[0]):
        return (None,)
    return (lax.concatenate([_instantiate(c, o) for c, o in zip(cts, out, strict=True)], axis),)


@defjvp("unstack")
def _unstack_jvp(primals, tangents, out, **params):
    if tangents[0] is None or not _is_float(primals[0]):
        return None
    return list(lax.unstack_p.bind(tangents[0], **params))


@defvjp("unstack", reads=NOTHING)
def _unstack_vjp(cts, primals, out, *, axis):
    if not _is_float(primals[0]):
        return (None,)
    return (lax.stack([_instantiate(c, o) for c, o in zip(cts, out, strict=True)], axis),)


defjvp("tile")(_linear_jvp(lax.tile_p))


@defvjp("tile", reads=NOTHING)
def _tile_vjp(ct, primals, out, *, reps):
    # out[k n + j] = x[j] along each dimension: view ct as (r0, n0, r1, n1, ...) and sum
    # over the repetitions.
    shape = np.shape(primals[0])
    blocks = tuple(d for r, n in zip(reps, shape, strict=True) for d in (r, n))
    return (lax.reduce_sum(lax.reshape(ct, blocks), tuple(range(0, len(blocks), 2))),)


defjvp("sharding_constraint")(_linear_jvp(lax.sharding_constraint_p))


@defvjp("sharding_constraint", reads=NOTHING)
def _sharding_constraint_vjp(ct, primals, out, **params):
    return (lax.sharding_constraint_p.bind(ct, **params),)


@defjvp("iota")
def _iota_jvp(primals, tangents, out, **params):
    return None


@defvjp("iota", reads=NOTHING)
def _iota_vjp(ct, primals, out, **params):
    return ()


__all__: list[str] = []
