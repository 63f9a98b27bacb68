r"""JVP and VJP rules of ``dot_general`` (``jnp.dot``, ``matmul``, ``einsum``), in any
dimension numbers: the tangent is bilinear, the cotangent of each operand a contraction of
the output's cotangent with the other operand, transposed back into the operand's layout.

Like every rule family, written out with `jax.lax` operations (never with `jax.jvp` /
`jax.vjp` or JAX's own AD rules); every primitive a VJP rule emits has a JVP rule itself,
so that reverse mode can be differentiated again.
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.rules.common import bilinear_jvp as _bilinear_jvp
from jaxls._src.ad.rules.common import to_dtype as _to_dtype
from jaxls._src.ad.registry import defjvp, defvjp, others


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


defjvp("dot_general")(_bilinear_jvp(lax.dot_general_p))


@defvjp("dot_general", reads=others)
def _dot_general_vjp(
    ct,
    primals,
    out,
    *,
    dimension_numbers,
    precision=None,
    preferred_element_type=None,
    active=(True, True),
    **_,
):
    """The cotangent of each active operand, a contraction with the other (the one the tape
    keeps: ``reads=others``)."""
    lhs, rhs = primals
    common = dict(
        dimension_numbers=dimension_numbers, precision=precision, preferred=preferred_element_type
    )
    ct_lhs, ct_rhs = None, None
    if active[0] and _is_float(lhs):
        ct_lhs = _dot_general_transpose(ct, lhs, rhs, True, **common)
    if active[1] and _is_float(rhs):
        ct_rhs = _dot_general_transpose(ct, rhs, lhs, False, **common)
    return ct_lhs, ct_rhs


__all__: list[str] = []
