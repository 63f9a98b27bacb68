"""Finite differences and a gradient check: the independent oracle for any derivative."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.typing import ArrayLike

from jaxls._src.ad.api import jvp, vjp
from jaxls._src.results import PyTree

SCHEMES = ("forward", "central")


def finite_difference_grad(
    f: Callable, x: PyTree, eps: float | None = None, scheme: str = "central"
) -> PyTree:
    r"""The gradient of a scalar ``f`` at ``x`` (a pytree) by finite differences.

    ``forward``: ``(f(x + h e_i) - f(x)) / h``, error ``O(h)``, ``n + 1`` evaluations;
    ``central``: ``(f(x + h e_i) - f(x - h e_i)) / 2h``, error ``O(h^2)``, ``2n``.
    ``h = eps * max(1, |x_i|)``, by default ``eps = sqrt(macheps)`` (forward) or
    ``cbrt(macheps)`` (central), which balance truncation and rounding errors.

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> g = jaxls.ad.finite_difference_grad(lambda x: jnp.sum(x ** 3), jnp.array([1.0, 2.0]))
      >>> print([round(float(v), 3) for v in g])
      [3.0, 12.0]
    """
    _check_fun("finite_difference_grad", f)
    if scheme not in SCHEMES:
        raise ValueError(
            f"jaxls.ad.finite_difference_grad(scheme={scheme!r}): `scheme` must be one of "
            f"{SCHEMES}."
        )
    flat, unravel = ravel_pytree(x)
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        raise TypeError(
            f"jaxls.ad.finite_difference_grad: `x` must be real floating, got {flat.dtype}."
        )
    if eps is None:
        macheps = float(jnp.finfo(flat.dtype).eps)
        eps = macheps ** (0.5 if scheme == "forward" else 1.0 / 3.0)
    elif not float(eps) > 0:
        raise ValueError(f"jaxls.ad.finite_difference_grad(eps={eps!r}): `eps` must be > 0.")
    h = eps * jnp.maximum(1.0, jnp.abs(flat))
    basis = jnp.eye(flat.size, dtype=flat.dtype) * h[:, None]
    g = lambda z: f(unravel(z))
    if scheme == "forward":
        diffs = (jax.vmap(lambda e: g(flat + e))(basis) - g(flat)) / h
    else:
        diffs = (jax.vmap(lambda e: g(flat + e) - g(flat - e))(basis)) / (2 * h)
    return unravel(diffs.astype(flat.dtype))


def check_grads(
    f: Callable,
    args: tuple,
    *,
    modes: Sequence[str] = ("fwd", "rev"),
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
) -> None:
    """Compare jaxls's forward and reverse derivatives of ``f`` at ``args`` with central
    finite differences along a random direction; raise `AssertionError` on a mismatch.

    ``fwd``: the JVP along ``v`` against ``(f(x + h v) - f(x - h v)) / 2h``; ``rev``: the
    dot-product test ``<u, J v>`` (finite differences) against ``<J^T u, v>`` (the VJP).
    By default ``h = cbrt(macheps)`` and ``rtol`` follows the dtype: ``1e-5`` in float64,
    ``2e-2`` in float32, ``4 macheps^(2/3)`` (the error of central differences) in bfloat16
    and float16.
    """
    _check_fun("check_grads", f)
    if not isinstance(args, (tuple, list)):
        raise TypeError(
            "jaxls.ad.check_grads: `args` must be a tuple or list of arguments, got "
            f"{type(args).__name__} (write `(x,)` for one argument)."
        )
    if isinstance(modes, str) or not set(modes) <= {"fwd", "rev"}:
        raise ValueError(
            f"jaxls.ad.check_grads(modes={modes!r}): `modes` must hold 'fwd', 'rev' or both."
        )
    flat, unravel = ravel_pytree(tuple(args))
    dtype = flat.dtype
    macheps = float(jnp.finfo(dtype).eps)
    if eps is None:
        eps = macheps ** (1.0 / 3.0)
    if rtol is None:
        rtol = 1e-5 if dtype == jnp.float64 else max(2e-2, 4 * macheps ** (2.0 / 3.0))
    atol = rtol if atol is None else atol
    key_v, key_u = jax.random.split(jax.random.key(seed))
    v = jax.random.normal(key_v, flat.shape, dtype)
    g = lambda z: f(*unravel(z))
    out_flat = lambda z: ravel_pytree(g(z))[0]
    numeric = (out_flat(flat + eps * v) - out_flat(flat - eps * v)) / (2 * eps)
    if "fwd" in modes:
        _, tangent = jvp(g, (flat,), (v,))
        _assert_close("fwd", ravel_pytree(tangent)[0], numeric, rtol, atol)
    if "rev" in modes:
        out, pull = vjp(g, flat)
        out_vec, unravel_out = ravel_pytree(out)
        u = jax.random.normal(key_u, out_vec.shape, out_vec.dtype)
        (ct,) = pull(unravel_out(u))
        _assert_close("rev", jnp.vdot(ct, v), jnp.vdot(u, numeric), rtol, atol)


def _check_fun(call: str, f: object) -> None:
    if not callable(f):
        raise TypeError(
            f"jaxls.ad.{call}: `fun` must be callable, got {f!r} (a {type(f).__name__})."
        )


def _assert_close(mode: str, ours: ArrayLike, numeric: ArrayLike, rtol: float, atol: float) -> None:
    ours, numeric = np.asarray(ours), np.asarray(numeric)
    scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))
    if not np.allclose(ours, numeric, rtol=rtol, atol=atol * scale):
        raise AssertionError(
            f"jaxls.ad.check_grads ({mode}): derivative {ours} differs from finite differences "
            f"{numeric} (rtol={rtol}, atol={atol})."
        )


__all__ = ["check_grads", "finite_difference_grad"]
