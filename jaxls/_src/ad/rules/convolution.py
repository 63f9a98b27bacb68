r"""JVP and VJP rules of ``conv_general_dilated`` (every convolution layer): window strides,
padding (negative padding crops), input (``lhs``) and kernel (``rhs``) dilation, any
dimension numbers (``NCHW``, ``NHWC``, ...) and feature groups (depthwise convolutions).

The convolution is bilinear, so its tangent is ``conv(t_lhs, rhs) + conv(lhs, t_rhs)``.
Each cotangent is itself a convolution, derived one spatial dimension at a time (they are
independent). With input length ``N``, kernel length ``K``, stride ``s``, input dilation
``d_l``, kernel dilation ``d_r``, padding ``(p_lo, p_hi)``, output length ``O`` and dilated
kernel length ``K_e = (K - 1) d_r + 1``, the output is
``out[o] = sum_k x[o s + k d_r] w[k]`` over the dilated, padded input ``x``, so

* ``ct_lhs[n] = sum_{o, k} ct[o] w[k] [o s + k d_r = n d_l + p_lo]``: the cotangent dilated
  by ``s``, padded by ``(K_e - 1 - p_lo, (N - 1) d_l - (O - 1) s + p_lo)``, convolved with the
  kernel reversed in space and with its two feature dimensions exchanged, at stride ``d_l``
  and kernel dilation ``d_r`` (a "transposed convolution");
* ``ct_rhs[k] = sum_{n, o} x[o s + k d_r] ct[o]`` (over the batch too): the input (dilated by
  ``d_l``, padded by ``p_lo`` and cut to the ``(K - 1) d_r + (O - 1) s + 1`` entries the
  forward pass read) convolved with the cotangent as kernel, at stride ``d_r`` and kernel
  dilation ``s``, batch and feature dimensions exchanged (the batch is summed over as
  the contraction).

With ``G`` feature groups, input channel block ``g`` meets only output channel block ``g``:
both cotangents are again ``G``-grouped convolutions after a reshape of the kernel (for
``ct_lhs``) or of the input (for ``ct_rhs``, whose batch joins the features), so no
``batch_group_count`` is ever emitted: the rules apply to their own output, and reverse
mode can be differentiated again. A convolution with ``batch_group_count > 1`` (which JAX's
own transposition emits, not models) is refused in reverse mode.
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad.registry import defjvp, defvjp, others
from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.rules.common import bilinear_jvp as _bilinear_jvp
from jaxls._src.ad.rules.common import to_dtype as _to_dtype


def _canonical(ndim: int) -> lax.ConvDimensionNumbers:
    """``(batch, feature, spatial...)`` for every operand: the arrays' own order."""
    order = tuple(range(ndim))
    return lax.ConvDimensionNumbers(order, order, order)


def _to_canonical(x, spec):
    """``x`` with the dimensions ``spec`` names first, second, ... (``spec`` is a
    ``ConvDimensionNumbers`` field: batch or out-feature, feature or in-feature, spatial)."""
    return lax.transpose(x, tuple(spec))


def _from_canonical(x, spec):
    """The inverse of `_to_canonical`."""
    return lax.transpose(x, tuple(int(i) for i in np.argsort(spec)))


def _conv(lhs, rhs, dn, *, strides, padding, lhs_dilation, rhs_dilation, groups, precision):
    return lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides=tuple(strides),
        padding=tuple(padding),
        lhs_dilation=tuple(lhs_dilation),
        rhs_dilation=tuple(rhs_dilation),
        dimension_numbers=dn,
        feature_group_count=groups,
        precision=precision,
    )


defjvp("conv_general_dilated")(_bilinear_jvp(lax.conv_general_dilated_p))


def _dimensions(lhs, rhs, ct, dn, strides, padding, lhs_dilation, rhs_dilation):
    """Per spatial dimension: ``(N, K, O, s, p_lo, d_l, d_r)``, the input's, kernel's and
    output's lengths, the stride, the low padding and the two dilations."""
    lhs_spec, rhs_spec, out_spec = dn
    spatial = lambda x, spec: [np.shape(x)[i] for i in spec[2:]]
    lows = [lo for lo, _ in padding]
    return zip(
        spatial(lhs, lhs_spec), spatial(rhs, rhs_spec), spatial(ct, out_spec),
        strides, lows, lhs_dilation, rhs_dilation, strict=True,
    )  # fmt: skip


def _conv_lhs_cotangent(
    ct, lhs, rhs, dn, *, strides, padding, lhs_dilation, rhs_dilation, groups, precision
):
    lhs_spec, rhs_spec, out_spec = dn
    pads = []
    for n, k, o, s, lo, dl, dr in _dimensions(
        lhs, rhs, ct, dn, strides, padding, lhs_dilation, rhs_dilation
    ):
        k_e = (k - 1) * dr + 1
        pads.append((k_e - 1 - lo, (n - 1) * dl - (o - 1) * s + lo))
    kernel = lax.rev(rhs, tuple(rhs_spec[2:]))
    if groups == 1:
        # The kernel's input features are the transposed convolution's output features.
        kernel_spec = (rhs_spec[1], rhs_spec[0], *rhs_spec[2:])
        dn_t = lax.ConvDimensionNumbers(tuple(out_spec), kernel_spec, tuple(lhs_spec))
    else:
        # (G Og, Ig, ...) -> (G Ig, Og, ...): block g of output channels becomes block g
        # of input channels, and back.
        kernel = _to_canonical(kernel, rhs_spec)
        out_features, in_per_group, *space = np.shape(kernel)
        kernel = lax.reshape(kernel, (groups, out_features // groups, in_per_group, *space))
        kernel = lax.transpose(kernel, (0, 2, 1, *range(3, 3 + len(space))))
        kernel = lax.reshape(kernel, (groups * in_per_group, out_features // groups, *space))
        ndim = np.ndim(ct)
        order = tuple(range(ndim))
        dn_t = lax.ConvDimensionNumbers(tuple(out_spec), order, tuple(lhs_spec))
    result = _conv(
        ct, kernel, dn_t, strides=lhs_dilation, padding=pads, lhs_dilation=strides,
        rhs_dilation=rhs_dilation, groups=groups, precision=precision,
    )  # fmt: skip
    return _to_dtype(result, _dtype(lhs))


def _conv_rhs_cotangent(
    ct, lhs, rhs, dn, *, strides, padding, lhs_dilation, rhs_dilation, groups, precision
):
    lhs_spec, rhs_spec, out_spec = dn
    pads = []
    for n, k, o, s, lo, dl, dr in _dimensions(
        lhs, rhs, ct, dn, strides, padding, lhs_dilation, rhs_dilation
    ):
        read = (k - 1) * dr + (o - 1) * s + 1  # the padded input entries the output read
        pads.append((lo, read - ((n - 1) * dl + 1) - lo))
    kernel_spec = (out_spec[1], out_spec[0], *out_spec[2:])  # features out, batch in
    if groups == 1:
        lhs_t_spec = (lhs_spec[1], lhs_spec[0], *lhs_spec[2:])  # channels as the batch
        result_spec = (rhs_spec[1], rhs_spec[0], *rhs_spec[2:])
        dn_t = lax.ConvDimensionNumbers(lhs_t_spec, kernel_spec, result_spec)
        operand = lhs
    else:
        # (N, G Ig, ...) -> (Ig, G N, ...): group g's channels pair with group g's outputs.
        operand = _to_canonical(lhs, lhs_spec)
        batch, channels, *space = np.shape(operand)
        operand = lax.reshape(operand, (batch, groups, channels // groups, *space))
        operand = lax.transpose(operand, (2, 1, 0, *range(3, 3 + len(space))))
        operand = lax.reshape(operand, (channels // groups, groups * batch, *space))
        order = tuple(range(np.ndim(lhs)))
        # The result comes out as (Ig, G Og, ...): in-features as the batch dimension.
        result_spec = (rhs_spec[1], rhs_spec[0], *rhs_spec[2:])
        dn_t = lax.ConvDimensionNumbers(order, kernel_spec, result_spec)
    result = _conv(
        operand, ct, dn_t, strides=rhs_dilation, padding=pads, lhs_dilation=lhs_dilation,
        rhs_dilation=strides, groups=groups, precision=precision,
    )  # fmt: skip
    return _to_dtype(result, _dtype(rhs))


@defvjp("conv_general_dilated", reads=others)
def _conv_vjp(
    ct,
    primals,
    out,
    *,
    window_strides,
    padding,
    lhs_dilation,
    rhs_dilation,
    dimension_numbers,
    feature_group_count,
    batch_group_count,
    precision=None,
    active=(True, True),
    **_,
):
    lhs, rhs = primals
    if batch_group_count != 1:
        raise NotImplementedError(
            "jaxls.ad: reverse mode through `conv_general_dilated` with "
            f"batch_group_count={batch_group_count} is not implemented (only "
            "feature_group_count); forward mode (jvp, jacfwd) differentiates it."
        )
    config = dict(
        strides=window_strides,
        padding=padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        groups=feature_group_count,
        precision=precision,
    )
    dn = dimension_numbers
    ct_lhs, ct_rhs = None, None
    if active[0] and _is_float(lhs):
        ct_lhs = _conv_lhs_cotangent(ct, lhs, rhs, dn, **config)
    if active[1] and _is_float(rhs):
        ct_rhs = _conv_rhs_cotangent(ct, lhs, rhs, dn, **config)
    return ct_lhs, ct_rhs


__all__: list[str] = []
