"""Tests of the AD rules of ``fft`` (rules/fft.py): every transform type (``FFT``,
``IFFT``, ``RFFT``, ``IRFFT``), one and several axes, even and odd lengths, then a spectral
(FNO-style) layer trained with `jaxls.ad.grad` and with `jax.grad`.

Oracles: `jax.grad`, `jax.jvp` and `jax.hessian` of the same function, in one `jax.jit`
per case; float32 (JAX's default: complex64 spectra) and float64 (complex128).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxls.ad as ad
from tests.ad_zoo import fast_jit
from tests.helpers import sgd_losses

F32, F64 = np.float32, np.float64
RTOL = {F32: 2e-5, F64: 1e-11}

# Real functions of a real (3, 6) or (3, 5) array, each through one transform type (and its
# inverse where the output must be real), the spectrum weighted so no symmetry hides a term.
CASES = {
    "fft": ((3, 6), lambda x: jnp.abs(jnp.fft.fft(x * (1 + 0.5j))) ** 2),
    "ifft": ((3, 6), lambda x: jnp.abs(jnp.fft.ifft(jnp.sin(x) + 1j * x)) ** 2),
    "rfft_even": ((3, 6), lambda x: jnp.abs(jnp.fft.rfft(x)) ** 2),
    "rfft_odd": ((3, 5), lambda x: jnp.abs(jnp.fft.rfft(x)) ** 2),
    "irfft_even": ((3, 6), lambda x: jnp.fft.irfft(jnp.fft.rfft(x) * (1 + 1j * jnp.cos(x[:, :4])))),
    "irfft_odd": ((3, 5), lambda x: jnp.fft.irfft(jnp.fft.rfft(x) * (2 + 1j), n=5) ** 3),
    "rfft2_irfft2": ((3, 6), lambda x: jnp.fft.irfft2(jnp.fft.rfft2(x) ** 2, s=x.shape) ** 2),
    "fftn_axes": ((3, 6), lambda x: jnp.real(jnp.fft.fftn(x * x, axes=(0,))) ** 2),
    "ifft2": ((3, 6), lambda x: jnp.imag(jnp.fft.ifft2(jnp.exp(1j * x))) ** 2),
}


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name", list(CASES))
def test_fft_rules_against_jax(name, dtype):
    shape, f = CASES[name]
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(shape), dtype)
    t = jnp.asarray(rng.standard_normal(shape), dtype)
    weights = jnp.asarray(rng.standard_normal(jax.eval_shape(f, x).shape), dtype)
    loss = lambda x: jnp.sum(f(x) * weights)

    @fast_jit
    def both(x, t):
        ours = (ad.grad(loss)(x), ad.jvp(f, (x,), (t,))[1], ad.hessian(loss)(x))
        theirs = (jax.grad(loss)(x), jax.jvp(f, (x,), (t,))[1], jax.hessian(loss)(x))
        return ours, theirs

    ours, theirs = both(x, t)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        scale = float(np.max(np.abs(b)))
        np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


@pytest.mark.parametrize("kind", ["fft", "ifft"])
def test_complex_input_cotangent_follows_jax_convention(kind):
    """A complex input (no real part taken): jaxls's `vjp` gives jax's cotangent."""
    transform = {"fft": jnp.fft.fft, "ifft": jnp.fft.ifft}[kind]
    rng = np.random.default_rng(1)
    z = jnp.asarray(rng.standard_normal(6) + 1j * rng.standard_normal(6), jnp.complex64)
    ct = jnp.asarray(rng.standard_normal(6) + 1j * rng.standard_normal(6), jnp.complex64)
    ours = ad.vjp(transform, z)[1](ct)[0]
    theirs = jax.vjp(transform, z)[1](ct)[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def spectral_layer(params, u):
    """A Fourier neural operator layer: keep the lowest modes of ``u``'s spectrum, mix them
    with complex weights, transform back; plus a pointwise linear path and GELU."""
    modes = params["w_re"].shape[0]
    spectrum = jnp.fft.rfft(u, axis=-1)[:, :modes]
    mixed = spectrum * (params["w_re"] + 1j * params["w_im"])[None, :]
    back = jnp.fft.irfft(mixed, n=u.shape[-1], axis=-1)
    return jax.nn.gelu(back + params["a"] * u)


def test_spectral_layer_trained_with_jaxls_grad_equals_jax_grad():
    rng = np.random.default_rng(2)
    grid = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    u = jnp.asarray(np.sin(grid[None, :] * rng.integers(1, 4, (16, 1))), F32)
    target = jnp.asarray(np.roll(np.asarray(u), 3, axis=1), F32)  # learn a shift
    params = {"w_re": jnp.ones(8, F32), "w_im": jnp.zeros(8, F32), "a": jnp.asarray(0.1, F32)}
    loss = lambda p: jnp.mean((spectral_layer(p, u) - target) ** 2)
    batches = [()] * 15
    ours, theirs = (
        sgd_losses(g, loss, params, batches, 0.5, jit=fast_jit) for g in (ad.grad, jax.grad)
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < 0.5 * ours[0]
