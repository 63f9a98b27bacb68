r"""JVP and VJP rules of the reductions: ``reduce_sum``, ``reduce_max``, ``reduce_min``,
``reduce_prod``, ``argmax``, ``argmin``, and the generic ``reduce``.

Conventions (those of JAX):

* ``reduce_max`` / ``reduce_min``: the derivative is split equally among the positions
  that attain the extreme, ``d max(x) = sum_i [x_i = max] dx_i / #{i: x_i = max}``.
* ``reduce_prod``: the derivative with respect to ``x_i`` is the product of the others,
  computed without division (exact with zeros).
* ``argmax`` / ``argmin`` have integer results: no derivative.
* ``reduce`` (`jax.lax.reduce` with a computation of its own, over one or several
  operands: a (max, argmax) pair, a (sum, product) pair) is differentiated as JAX
  differentiates it: as the balanced tree of calls of its computation that JAX writes down
  for it (the reduced axes flattened and halved until one entry is left, the odd half
  padded with the initial values), whose jaxpr the interpreter runs. The derivative is
  that of the computation, at ties too (an argmax pair's gradient goes where its
  comparison sends it). The initial values may not be differentiated: JAX refuses it
  (``NotImplementedError``), and so does jaxls.
"""

from __future__ import annotations

import jax
import numpy as np
from jax import lax

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import defjvp_higher_order, defvjp_higher_order, evaluate_only
from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.rules.common import linear_jvp as _linear_jvp
from jaxls._src.ad.rules.common import previous as _previous
from jaxls._src.ad.registry import EVERYTHING, INPUTS, NOTHING, defjvp, defvjp


defjvp("reduce_sum")(_linear_jvp(lax.reduce_sum_p))


def _kept_axes(ndim, axes):
    return tuple(d for d in range(ndim) if d not in axes)


@defvjp("reduce_sum", reads=NOTHING)
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


@defvjp("reduce_max", "reduce_min", reads=EVERYTHING)
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


@defvjp("reduce_prod", reads=INPUTS)
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


@defvjp("argmax", "argmin", reads=NOTHING)
def _arg_chooser_vjp(ct, primals, out, **params):
    return (None,)


def _reduce_tree(interpreter, eqn, operands):
    """The jaxpr of the balanced tree of calls of ``reduce``'s computation that JAX
    differentiates in its place (``jax._src.lax.lax._reduce_jvp``), over the equation's
    inputs ``(*operands, *initial_values)``: the same pairs, so the same derivative."""
    reducer, axes = jx.closed(eqn.params["jaxpr"]), tuple(eqn.params["dimensions"])
    num = len(operands) // 2
    shape = np.shape(operands[0])
    kept = _kept_axes(len(shape), axes)
    flat_shape = (int(np.prod([shape[d] for d in axes], dtype=int)), *(shape[d] for d in kept))
    apply = lambda *pairs: interpreter.evaluate(reducer, pairs)
    for _ in range(len(kept) + 1):
        apply = jax.vmap(apply)

    def tree(*args):
        inits = args[num:]
        xs = [lax.reshape(lax.transpose(x, (*axes, *kept)), flat_shape) for x in args[:num]]
        while xs[0].shape[0] > 1:
            size = xs[0].shape[0]
            half = (size + 1) // 2
            first = [lax.slice_in_dim(x, 0, half) for x in xs]
            second = [lax.slice_in_dim(x, half, size) for x in xs]
            if size - half != half:
                config = [(0, 1, 0)] + [(0, 0, 0)] * len(kept)
                second = [lax.pad(x, init, config) for x, init in zip(second, inits, strict=True)]
            xs = apply(*first, *second)
        if xs[0].shape[0] == 0:
            return [lax.full(flat_shape[1:], init) for init in inits]
        return [lax.squeeze(x, (0,)) for x in xs]

    return jx.make_jaxpr(tree, *operands, call="reduce")[0]


def _refuse_differentiated_init(differentiated) -> None:
    if any(differentiated[len(differentiated) // 2 :]):
        raise NotImplementedError(
            "jaxls.ad: `reduce` (`jax.lax.reduce` with a computation of its own) is not "
            "differentiable with respect to its initial values (JAX refuses it too: they "
            "must be identities of the computation, constants). Compute the initial value "
            "outside the differentiated function, or wrap it in `jax.lax.stop_gradient`."
        )


@defjvp_higher_order("reduce")
def _reduce_jvp(interpreter, eqn, primals, tangents):
    _refuse_differentiated_init([t is not None for t in tangents])
    return interpreter.jvp(_reduce_tree(interpreter, eqn, primals), primals, tangents)


def _reduce_forward(interpreter, eqn, primals, active):
    _refuse_differentiated_init(active)
    return evaluate_only(interpreter, eqn, primals, active)


@defvjp_higher_order("reduce", forward=_reduce_forward, reads=INPUTS)
def _reduce_vjp(interpreter, eqn, residuals, primals, outs, active, cts):
    """The tree's forward sweep from the inputs (the equation keeps nothing: its residuals
    could be stacked by a ``scan``, a jaxpr cannot), then its backward sweep."""
    return interpreter.vjp(_reduce_tree(interpreter, eqn, primals), primals, active, cts)


__all__: list[str] = []
