"""A catalogue of closed-form derivatives of scalar and vector functions of vectors and
matrices, every entry checked against `jaxls.ad` and `jax` by the tests.

Conventions (the lecture's): the gradient of a scalar ``f`` of ``X`` has ``X``'s shape,
``df = <grad f(X), dX>`` with ``<A, B> = tr(A^T B)``; the Hessian of ``f`` of a vector ``x``
is the ``n x n`` matrix of second partials; of a matrix ``X`` (``m x n``), the array of shape
``(m, n, m, n)`` with ``H[i, j, k, l] = d^2 f / dX_ij dX_kl`` (JAX's layout). The Jacobian of
a vector-valued ``f`` is given in JAX's layout, ``out_shape + in_shape``.

Each entry differentiates its function in its first argument; the other arguments are
constants (``A``, ``b``, ``S``, ...), drawn by the entry's sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Entry(NamedTuple):
    """One closed form.

    Attributes:
      name: a unique identifier (``"quadratic_form"``).
      fun: ``fun(x, *constants)`` in `jax.numpy`: a real scalar, or an array for a
        ``jacobian`` entry.
      sample: ``sample(key, dtype) -> (x, *constants)``: a random point of the domain.
      latex: the function, e.g. ``r"f(x) = x^\\top A x"``.
      grad: ``grad(x, *constants)``, shaped like ``x`` (scalar ``fun``), or None.
      grad_latex: the gradient as LaTeX, e.g. ``r"(A + A^\\top) x"`` (None with ``grad``).
      hessian: ``hessian(x, *constants)`` (see the module's layout), or None where there is
        no compact closed form.
      hessian_latex: the Hessian as LaTeX (None with ``hessian``).
      jacobian: ``jacobian(x, *constants)`` of a vector-valued ``fun`` (JAX's layout), or
        None; an entry has ``grad`` or ``jacobian``, not both.
      domain: the shapes and domain in words (``"A: n x n, any; x: n"``; ``"X: symmetric
        positive definite"``).
      reference: where the formula comes from (``"Matrix Cookbook (81)"``, ``"lecture,
        example 1"``, ``"Magnus & Neudecker (2019), ch. 9"``, ``"Giles (2008), 3.1"``).
    """

    name: str
    fun: Callable
    sample: Callable
    latex: str
    grad: Callable | None
    grad_latex: str | None
    hessian: Callable | None
    hessian_latex: str | None
    jacobian: Callable | None
    domain: str
    reference: str


def _normal(key, shape, dtype):
    return jax.random.normal(key, shape, dtype)


def _quadratic_sample(key, dtype, n=4):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    x, A = _normal(k1, (n,), dtype), _normal(k2, (n, n), dtype)
    b, c = _normal(k3, (n,), dtype), _normal(k4, (), dtype)
    return x, A, b, c


CATALOGUE: tuple[Entry, ...] = (
    Entry(
        name="lecture_quadratic",
        fun=lambda x, A, b, c: x @ A @ x - b @ x + c,
        sample=_quadratic_sample,
        latex=r"f(x) = \langle x, A x \rangle - b^\top x + c",
        grad=lambda x, A, b, c: (A + A.T) @ x - b,
        grad_latex=r"(A + A^\top) x - b",
        hessian=lambda x, A, b, c: A + A.T,
        hessian_latex=r"A + A^\top",
        jacobian=None,
        domain="x, b: n; A: n x n, any (the lecture assumes A symmetric: 2 A x - b); c: scalar",
        reference="lecture, example 1; Matrix Cookbook (81)",
    ),
)
"""Every entry; see `Entry`."""


def entry(name: str) -> Entry:
    """The catalogue's entry ``name``."""
    for e in CATALOGUE:
        if e.name == name:
            return e
    raise KeyError(f"jaxls.calculus.entry({name!r}): no such entry; see jaxls.calculus.CATALOGUE")


__all__ = ["CATALOGUE", "Entry", "entry"]
