r"""JVP and VJP rules of ``fft`` (`jnp.fft`: ``fft``, ``ifft``, ``rfft``, ``irfft`` and their
n-dimensional forms), over the last ``len(fft_lengths)`` axes.

Every transform is linear, so its tangent is the same transform of the tangent. The
cotangent is its transpose (JAX's convention for complex data: the linear transpose, not
the adjoint), with ``F_jk = exp(-2 pi i j k / n)`` symmetric:

* ``FFT`` and ``IFFT``: ``F^T = F`` and ``(F^-1)^T = F^-1``: the same transform;
* ``RFFT`` (real ``n`` to the ``n // 2 + 1`` first entries of ``F x`` along the last axis):
  the real part of the full FFT of the cotangent zero-padded back to ``n``;
* ``IRFFT`` (``n // 2 + 1`` complex to ``n`` real, the inverse of a Hermitian spectrum): the
  conjugate of ``RFFT`` of the cotangent, divided by ``prod(fft_lengths)``, with the entries
  that stand for a conjugate pair (every one but the constant term and, for even ``n``, the
  Nyquist term) counted twice. (IRFFT is real-linear, not complex-linear: it reads only
  the real part of the constant and Nyquist terms; the conjugate is JAX's convention for
  the cotangent of a complex input of a real function.)

The rules emit ``fft``, ``pad``, ``real`` and products, whose rules make them
differentiable again.
"""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxls._src.ad.registry import NOTHING, defjvp, defvjp
from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.rules.common import linear_jvp as _linear_jvp
from jaxls._src.ad.rules.common import to_dtype as _to_dtype


defjvp("fft")(_linear_jvp(lax.fft_p))


@defvjp("fft", reads=NOTHING)
def _fft_vjp(ct, primals, out, *, fft_type, fft_lengths):
    (operand,) = primals
    if not _is_float(operand):
        return (None,)
    kind = lax.FftType(fft_type)
    if kind in (lax.FftType.FFT, lax.FftType.IFFT):
        return (lax.fft(ct, kind, fft_lengths),)
    if kind == lax.FftType.RFFT:
        n, m = fft_lengths[-1], np.shape(ct)[-1]
        zero = np.array(0, _dtype(ct))
        padded = lax.pad(ct, zero, [(0, 0, 0)] * (np.ndim(ct) - 1) + [(0, n - m, 0)])
        full = lax.fft(padded, lax.FftType.FFT, fft_lengths)
        return (_to_dtype(lax.real(full), _dtype(operand)),)
    # IRFFT.
    n = fft_lengths[-1]
    spectrum = lax.fft(ct, lax.FftType.RFFT, fft_lengths)
    m = np.shape(spectrum)[-1]
    weights = np.full(m, 2.0)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    weights = weights / float(np.prod(fft_lengths))
    shape = (1,) * (np.ndim(spectrum) - 1) + (m,)
    scaled = lax.conj(spectrum) * np.asarray(weights.reshape(shape), _dtype(ct))
    return (_to_dtype(scaled, _dtype(operand)),)


__all__: list[str] = []
