r"""JVP and VJP rules of ``reduce_window_sum`` (sum and average pooling) and of
``reduce_window_max`` and ``reduce_window_min`` (max and min pooling): window dimensions,
strides, padding, base (input) and window dilation.

``reduce_window_sum`` is linear: its tangent is the same windowed sum of the tangent. It
is a convolution of each channel with a kernel of ones, so its cotangent is derived as
``conv_general_dilated``'s (rules/convolution.py), one dimension at a time: with input
length ``N``, window ``K``, stride ``s``, base dilation ``d_b``, window dilation ``d_w``,
padding ``(p_lo, p_hi)``, output length ``O`` and dilated window ``K_e = (K - 1) d_w + 1``,

``ct_x[n] = sum_{o, k} ct[o] [o s + k d_w = n d_b + p_lo]``:

the cotangent dilated by ``s`` and padded by ``(K_e - 1 - p_lo, (N - 1) d_b - (O - 1) s +
p_lo)`` (one `lax.pad`), then summed over windows of ``K`` at stride ``d_b`` and window
dilation ``d_w``: a ``pad`` and a ``reduce_window_sum``, whose own rules make reverse mode
differentiable again. (The window of ones is its own reversal.)

``reduce_window_max`` (and ``_min``) passes on, in each window, the tangent of the entry that
attains the maximum; where several do, the first in the window's row-major order (JAX's
choice may differ there: a maximum is not differentiable at a tie). The window is read as
one strided slice of the padded input per window position (``prod(window_dimensions)`` of
them: 4 or 9 for pooling layers), so the rules are written with ``pad``, ``slice`` and
``select_n``, whose rules make them differentiable again; the cost grows with the window's
size, where JAX's own rule uses XLA's select-and-scatter.
"""

from __future__ import annotations

import itertools

import numpy as np
from jax import lax

from jaxls._src.ad.registry import EVERYTHING, NOTHING, defjvp, defvjp
from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.registry import zeros_like as _zeros_like
from jaxls._src.ad.rules.common import linear_jvp as _linear_jvp


defjvp("reduce_window_sum")(_linear_jvp(lax.reduce_window_sum_p))


@defvjp("reduce_window_sum", reads=NOTHING)
def _reduce_window_sum_vjp(
    ct, primals, out, *, window_dimensions, window_strides, padding, base_dilation, window_dilation
):
    (operand,) = primals
    if not _is_float(operand):
        return (None,)
    config = []
    for n, k, o, s, (lo, _), db, dw in zip(
        np.shape(operand), window_dimensions, np.shape(ct), window_strides, padding,
        base_dilation, window_dilation, strict=True,
    ):  # fmt: skip
        k_e = (k - 1) * dw + 1
        config.append((k_e - 1 - lo, (n - 1) * db - (o - 1) * s + lo, s - 1))
    spread = lax.pad(ct, np.array(0, _dtype(ct)), config)
    ct_operand = lax.reduce_window_sum_p.bind(
        spread,
        window_dimensions=tuple(window_dimensions),
        window_strides=tuple(base_dilation),
        padding=tuple((0, 0) for _ in window_dimensions),
        base_dilation=tuple(1 for _ in window_dimensions),
        window_dilation=tuple(window_dilation),
    )
    return (ct_operand,)


_IDENTITY = {"reduce_window_max": -np.inf, "reduce_window_min": np.inf}


def _padded(x, fill, padding, base_dilation):
    """``x`` dilated by ``base_dilation`` and padded by ``padding``, the holes ``fill``."""
    config = [(lo, hi, db - 1) for (lo, hi), db in zip(padding, base_dilation, strict=True)]
    return lax.pad(x, np.array(fill, _dtype(x)), config)


def _positions(window_dimensions, window_strides, window_dilation, out_shape):
    """``(start, limit, strides)`` of the slice of the padded input that holds each window
    position's entry of every window, in the windows' row-major order."""
    for offset in itertools.product(*(range(k) for k in window_dimensions)):
        start = [k * dw for k, dw in zip(offset, window_dilation, strict=True)]
        limit = [
            st + (o - 1) * s + 1 for st, o, s in zip(start, out_shape, window_strides, strict=True)
        ]
        yield start, limit, tuple(window_strides)


def _first_hits(name, operand, out, params):
    """Per window position, the mask of windows whose first extremum is there."""
    padded = _padded(operand, _IDENTITY[name], params["padding"], params["base_dilation"])
    taken = None
    for start, limit, strides in _positions(
        params["window_dimensions"], params["window_strides"], params["window_dilation"],
        np.shape(out),
    ):  # fmt: skip
        hit = lax.slice(padded, start, limit, strides) == out
        if taken is not None:
            hit = hit & ~taken
        taken = hit if taken is None else taken | hit
        yield (start, limit, strides), hit


def _chooser_rules(name):
    """The JVP and VJP rules of ``name`` (``reduce_window_max`` or ``_min``)."""

    @defjvp(name)
    def jvp(primals, tangents, out, **params):
        (operand,), (t,) = primals, tangents
        if t is None:
            return None
        t_padded = _padded(t, 0, params["padding"], params["base_dilation"])
        result = _zeros_like(out)
        for (start, limit, strides), hit in _first_hits(name, operand, out, params):
            result = lax.select(hit, lax.slice(t_padded, start, limit, strides), result)
        return result

    @defvjp(name, reads=EVERYTHING)
    def vjp(ct, primals, out, **params):
        (operand,) = primals
        if not _is_float(operand):
            return (None,)
        padding, base_dilation = params["padding"], params["base_dilation"]
        shape = np.shape(_padded(operand, 0, padding, base_dilation))
        zero = np.array(0, _dtype(ct))
        ct_padded = None
        for (start, limit, strides), hit in _first_hits(name, operand, out, params):
            # Scatter the chosen entries back to their place in the padded input.
            config = [
                (st, n - lim, s - 1)
                for st, lim, s, n in zip(start, limit, strides, shape, strict=True)
            ]
            term = lax.pad(lax.select(hit, ct, _zeros_like(ct)), zero, config)
            ct_padded = term if ct_padded is None else ct_padded + term
        # The transpose of the padding and dilation: crop, then every base_dilation-th entry.
        assert ct_padded is not None  # a window has at least one position
        cropped = lax.pad(ct_padded, zero, [(-lo, -hi, 0) for lo, hi in padding])
        ct_operand = lax.slice(cropped, (0,) * np.ndim(cropped), np.shape(cropped), base_dilation)
        return (ct_operand,)

    return jvp, vjp


for _name in _IDENTITY:
    _chooser_rules(_name)
del _name


__all__: list[str] = []
