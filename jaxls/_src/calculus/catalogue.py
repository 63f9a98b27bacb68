r"""A catalogue of closed-form derivatives of scalar and vector functions of vectors and
matrices, every entry checked against `jaxls.ad` and `jax` by the tests.

Conventions (the lecture's): the gradient of a scalar ``f`` of ``X`` has ``X``'s shape,
``df = <grad f(X), dX>`` with ``<A, B> = tr(A^T B)``; the Hessian of ``f`` of a vector ``x``
is the ``n x n`` matrix of second partials; of a matrix ``X`` (``m x n``), the array of shape
``(m, n, m, n)`` with ``H[i, j, k, l] = d^2 f / dX_ij dX_kl`` (JAX's layout). The Jacobian of
a vector-valued ``f`` is given in JAX's layout, ``out_shape + in_shape``: ``J[i, k] = df_i /
dx_k`` (the transpose of the lecture's ``n x m`` matrix ``df / dx^T``).

In the LaTeX, ``H_{ijkl}`` is ``H[i, j, k, l]``; where the Hessian of a function of a matrix
is a Kronecker product it is also given on ``vec X`` (columns stacked, as in Magnus &
Neudecker): ``H_{ijkl} = B_{ik} C_{jl}`` is ``C \otimes B``.

Each entry differentiates its function in its first argument; the other arguments are
constants (``A``, ``b``, ``S``, ...), drawn by the entry's sampler. Every formula holds for
every point of the domain, not only where the constants are symmetric: where a source (the
lecture, the Matrix Cookbook) assumes ``A`` symmetric, the entry either samples a symmetric
``A`` and says so in ``domain``, or gives the general formula and says what it becomes.

The domain is written ``"names: shape[, property]...; ..."``: the shape in the symbols of
the formulas (``n``, ``m x n``, ``scalar``), the properties from a small vocabulary
(``symmetric``, ``symmetric positive definite``, ``positive definite`` (``x^T A x > 0``,
not necessarily symmetric), ``invertible``, ``det > 0``, ``det < 0``, ``full column rank``,
``positive entries``, ``nonnegative entries``, ``nonzero``, ``probability vector``,
``rows are probability vectors``, ``labels in {-1, 1}``, ``labels in {0, 1}``), and a last
clause ``such that ...`` for a condition that ties several arguments together.

References: the course's lecture on matrix calculus (its rules for differentials and its
three worked examples); K. B. Petersen and M. S. Pedersen, *The Matrix Cookbook*, version
of November 15, 2012 (its equation numbers, cited only where checked against that version;
otherwise its section); J. R. Magnus and H. Neudecker, *Matrix Differential Calculus with
Applications in Statistics and Econometrics*, 3rd ed., Wiley 2019; M. B. Giles, *An
extended collection of matrix derivative results for forward and reverse mode algorithmic
differentiation*, Oxford NA-08/01, 2008; C. M. Bishop, *Pattern Recognition and Machine
Learning*, 2006; S. Boyd and L. Vandenberghe, *Convex Optimization*, 2004.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from jaxls.calculus import entry
  >>> e = entry("trace_AXB")
  >>> X, A, B = e.sample(jax.random.key(0), jnp.float32)
  >>> bool(jnp.allclose(e.grad(X, A, B), jax.grad(e.fun)(X, A, B), rtol=1e-5, atol=1e-5))
  True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr


class Entry(NamedTuple):
    r"""One closed form.

    Attributes:
      name: a unique identifier (``"quadratic_form"``).
      fun: ``fun(x, *constants)`` in `jax.numpy`: a real scalar, or an array for a
        ``jacobian`` entry.
      sample: ``sample(key, dtype) -> (x, *constants)``: a random point of the domain,
        well conditioned (float32 gives the derivatives to about 1e-5); a `Sampler`.
      latex: the function, e.g. ``r"f(x) = x^\top A x"``.
      grad: ``grad(x, *constants)``, shaped like ``x`` (scalar ``fun``), or None.
      grad_latex: the gradient as LaTeX, e.g. ``r"(A + A^\top) x"`` (None with ``grad``).
      hessian: ``hessian(x, *constants)`` (see the module's layout), or None where there is
        no compact closed form.
      hessian_latex: the Hessian as LaTeX (None with ``hessian``).
      jacobian: ``jacobian(x, *constants)`` of a vector-valued ``fun`` (JAX's layout), or
        None; an entry has ``grad`` or ``jacobian``, not both.
      domain: the shapes and domain (see the module's docstring for its vocabulary):
        ``"x: n; A: n x n, symmetric positive definite"``.
      reference: where the formula comes from (``"Matrix Cookbook (81)"``, ``"lecture,
        example 1"``, ``"Magnus & Neudecker (2019), ch. 10"``, ``"Giles (2008), inverse"``),
        and what the source assumes.
      jacobian_latex: the Jacobian as LaTeX (None with ``jacobian``).
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
    jacobian_latex: str | None = None


# ------------------------------------------------------------------------------------------
# Samplers. A sample is one draw of standard normals (one random-number generator per sample:
# cheap to compile), cut into one `_Part` per argument, each a transform of its normals.


class _Part(NamedTuple):
    """One argument of a sample: ``make(z)`` of ``size`` standard normals ``z``."""

    size: int
    make: Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Sampler:
    """``sample(key, dtype)``: a point of an entry's domain, ``transform`` of ``draws``
    standard normals (one draw per sample; a transform with no randomness of its own, so a
    batch of samples is one call of the generator and one `jax.vmap` of ``transform``).

    Attributes:
      draws: how many standard normals (a power of two, so that samplers share generators).
      transform: ``transform(z) -> (x, *constants)`` for ``z`` of shape ``(draws,)``.
    """

    draws: int
    transform: Callable[[jax.Array], tuple]

    def __call__(self, key, dtype) -> tuple:
        return self.transform(jax.random.normal(key, (self.draws,), dtype))


def _draw(*parts: _Part, then: Callable | None = None) -> Sampler:
    """The sampler of one argument per part, then ``then(*arguments)`` where the arguments
    are tied by a condition (``b - A x > 0``)."""
    sizes = [part.size for part in parts]
    ends = [sum(sizes[: i + 1]) for i in range(len(sizes))]

    def transform(z):
        args = tuple(
            part.make(z[end - part.size : end]) for part, end in zip(parts, ends, strict=True)
        )
        return args if then is None else then(*args)

    return Sampler(2 ** math.ceil(math.log2(max(sum(sizes), 32))), transform)


def _normal(*shape: int, scale: float = 1.0) -> _Part:
    return _Part(math.prod(shape), lambda z: scale * z.reshape(shape))


def _uniform(*shape: int, low: float, high: float) -> _Part:
    """Uniform on ``[low, high]``: the normal CDF of a standard normal is uniform."""
    return _Part(math.prod(shape), lambda z: low + (high - low) * ndtr(z.reshape(shape)))


def _positive(*shape: int) -> _Part:
    """Entries in [0.5, 2]: away from 0 (logarithms, divisions)."""
    return _uniform(*shape, low=0.5, high=2.0)


def _near_identity(m: int, n: int, scale: float = 0.25) -> _Part:
    """``eye(m, n) + E`` with ``||E||_2 <~ 2 scale``: invertible (square, with positive
    determinant: every eigenvalue has a positive real part) or of full rank, singular values
    in about ``[1 - 2 scale, 1 + 2 scale]``."""
    return _Part(
        m * n,
        lambda z: jnp.eye(m, n, dtype=z.dtype) + scale / math.sqrt(max(m, n)) * z.reshape(m, n),
    )


def _negative_det(n: int) -> _Part:
    """A near-identity matrix with its first row negated: ``det < 0``."""
    size, make = _near_identity(n, n)
    return _Part(size, lambda z: make(z).at[0].multiply(-1))


def _spd_from(z, n: int):
    B = z.reshape(n, n)
    return B @ B.T / n + jnp.eye(n, dtype=z.dtype)


def _spd(n: int) -> _Part:
    """``B B^T / n + I``: symmetric, eigenvalues in about ``[1, 5]``."""
    return _Part(n * n, lambda z: _spd_from(z, n))


def _pd(n: int) -> _Part:
    """Positive definite, not symmetric: ``x^T A x > 0``; an SPD matrix plus a skew one."""

    def make(z):
        G = z[n * n :].reshape(n, n) / math.sqrt(n)
        return _spd_from(z[: n * n], n) + 0.5 * (G - G.T)

    return _Part(2 * n * n, make)


def _symmetric(n: int) -> _Part:
    return _Part(n * n, lambda z: (z.reshape(n, n) + z.reshape(n, n).T) / 2)


def _probability(*shape: int) -> _Part:
    """Probability vectors along the last axis (soft labels), every entry positive."""
    return _Part(math.prod(shape), lambda z: jax.nn.softmax(z.reshape(shape), axis=-1))


def _signs(n: int) -> _Part:
    return _Part(n, lambda z: jnp.where(z > 0, 1, -1).astype(z.dtype))


def _bits(n: int) -> _Part:
    return _Part(n, lambda z: (z > 0).astype(z.dtype))


def _counts(n: int) -> _Part:
    """Counts in {0, 1, 2, 3}."""
    return _Part(n, lambda z: jnp.floor(4 * ndtr(z)))


def _away_from_zero(n: int) -> _Part:
    """A vector of norm in [1, 2] (norms and quotients by ``||x||``: no kink)."""
    return _Part(n + 1, lambda z: z[:n] / jnp.linalg.norm(z[:n]) * (1 + ndtr(z[n])))


def _on_hyperplane(x, a, t):
    """``x`` moved along ``a`` onto ``a^T x = t``."""
    return x + (t - a @ x) / (a @ a) * a


_barrier_sample = _draw(
    _normal(4), _normal(5, 4, scale=0.5), _positive(5), then=lambda x, A, s: (x, A, A @ x + s)
)
"""``(x, A, b)`` with ``b - A x`` in [0.5, 2]."""

_ratio_sample = _draw(
    _normal(4),
    _normal(4),
    _normal(4),
    _uniform(low=1.0, high=2.0),
    then=lambda x, a, b, t: (_on_hyperplane(x, b, t), a, b),
)
"""``(x, a, b)`` with ``b^T x`` in [1, 2]."""

_scale_sample = _draw(
    _normal(4),
    _normal(4),
    _uniform(low=1.0, high=2.0),
    then=lambda x, a, t: (_on_hyperplane(x, a, t), a),
)
"""``(x, a)`` with ``a^T x`` in [1, 2]."""

_distance_sample = _draw(_normal(4), _away_from_zero(4), then=lambda a, d: (a + d, a))
"""``(x, a)`` with ``||x - a||`` in [1, 2]."""


def _eye(x) -> jax.Array:
    return jnp.eye(x.shape[-1], dtype=x.dtype)


def _sigmoid(z):
    return jax.nn.sigmoid(z)


def _softmax(z):
    e = jnp.exp(z - jnp.max(z, axis=-1, keepdims=True))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _lse(z):
    return jnp.log(jnp.sum(jnp.exp(z), axis=-1))


MC = "Matrix Cookbook"
MN = "Magnus & Neudecker (2019)"
BISHOP = "Bishop (2006)"
BV = "Boyd & Vandenberghe (2004)"


# ------------------------------------------------------------------------------------------
# The lecture's three worked examples (and the second one without the symmetry of A).

_LECTURE: tuple[Entry, ...] = (
    Entry(
        name="lecture_quadratic",
        fun=lambda x, A, b, c: x @ A @ x - b @ x + c,
        sample=_draw(_normal(4), _normal(4, 4), _normal(4), _normal()),
        latex=r"f(x) = \langle x, A x \rangle - b^\top x + c",
        grad=lambda x, A, b, c: (A + A.T) @ x - b,
        grad_latex=r"(A + A^\top) x - b",
        hessian=lambda x, A, b, c: A + A.T,
        hessian_latex=r"A + A^\top",
        jacobian=None,
        domain="x, b: n; A: n x n; c: scalar",
        reference=(
            f"lecture, example 1, which takes A symmetric: 2 A x - b, Hessian 2 A; {MC} (69), (81)"
        ),
    ),
    Entry(
        name="lecture_log_quadratic",
        fun=lambda x, A: jnp.log(x @ A @ x),
        sample=_draw(_away_from_zero(4), _spd(4)),
        latex=r"f(x) = \ln \langle x, A x \rangle",
        grad=lambda x, A: 2 * A @ x / (x @ A @ x),
        grad_latex=r"\frac{2 A x}{\langle x, A x \rangle}",
        hessian=lambda x, A: 2 * A / (x @ A @ x) - 4 * jnp.outer(A @ x, A @ x) / (x @ A @ x) ** 2,
        hessian_latex=(
            r"\frac{2 A}{\langle x, A x \rangle} "
            r"- \frac{4 A x x^\top A}{\langle x, A x \rangle^2}"
        ),
        jacobian=None,
        domain="x: n, nonzero; A: n x n, symmetric positive definite",
        reference=(
            "lecture, example 2 (A symmetric positive definite; x^T A x > 0 is all the "
            f"logarithm needs); {MC} (81) and the chain rule"
        ),
    ),
    Entry(
        name="log_quadratic_form",
        fun=lambda x, A: jnp.log(x @ A @ x),
        sample=_draw(_away_from_zero(4), _pd(4)),
        latex=r"f(x) = \ln \langle x, A x \rangle",
        grad=lambda x, A: (A + A.T) @ x / (x @ A @ x),
        grad_latex=r"\frac{(A + A^\top) x}{\langle x, A x \rangle}",
        hessian=lambda x, A: (
            (A + A.T) / (x @ A @ x) - jnp.outer((A + A.T) @ x, (A + A.T) @ x) / (x @ A @ x) ** 2
        ),
        hessian_latex=(
            r"\frac{A + A^\top}{\langle x, A x \rangle} "
            r"- \frac{(A + A^\top) x x^\top (A + A^\top)}{\langle x, A x \rangle^2}"
        ),
        jacobian=None,
        domain="x: n, nonzero; A: n x n, positive definite",
        reference=(
            "lecture, example 2, one line before it uses A = A^T: "
            r"df = <(A + A^T) x, dx> / <x, Ax>; " + f"{MC} (81)"
        ),
    ),
    Entry(
        name="lecture_log_det",
        fun=lambda X, S: jnp.sum(S * X) - jnp.log(jnp.linalg.det(X)),
        sample=_draw(_spd(3), _spd(3)),
        latex=r"f(X) = \langle S, X \rangle - \log \det X",
        grad=lambda X, S: S - jnp.linalg.inv(X).T,
        grad_latex=r"S - X^{-\top}",
        hessian=lambda X, S: jnp.einsum("jk,li->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X)),
        hessian_latex=(
            r"H_{ijkl} = (X^{-1})_{jk} (X^{-1})_{li}, \text{ i.e. } "
            r"d^2 f = \operatorname{tr}(X^{-1} dX\, X^{-1} dX)"
        ),
        jacobian=None,
        domain="X: n x n, symmetric positive definite; S: n x n, symmetric positive definite",
        reference=(
            "lecture, example 3 (X symmetric positive definite, where S - X^{-T} = S - X^{-1}; "
            f"the lecture leaves the answer to the reader); {MC} (43), (103); "
            f"{MN}, ch. 8 (d log det X)"
        ),
    ),
)


# ------------------------------------------------------------------------------------------
# Scalar functions of a vector: forms, norms, quotients.

_VECTOR: tuple[Entry, ...] = (
    Entry(
        name="linear_form",
        fun=lambda x, a: a @ x,
        sample=_draw(_normal(4), _normal(4)),
        latex=r"f(x) = a^\top x",
        grad=lambda x, a: a,
        grad_latex=r"a",
        hessian=lambda x, a: jnp.zeros((x.size, x.size), x.dtype),
        hessian_latex=r"0",
        jacobian=None,
        domain="x, a: n",
        reference=f"{MC} (69)",
    ),
    Entry(
        name="quadratic_form",
        fun=lambda x, A: x @ A @ x,
        sample=_draw(_normal(4), _normal(4, 4)),
        latex=r"f(x) = x^\top A x",
        grad=lambda x, A: (A + A.T) @ x,
        grad_latex=r"(A + A^\top) x",
        hessian=lambda x, A: A + A.T,
        hessian_latex=r"A + A^\top",
        jacobian=None,
        domain="x: n; A: n x n",
        reference=f"{MC} (81)",
    ),
    Entry(
        name="quadratic_form_symmetric",
        fun=lambda x, A: x @ A @ x,
        sample=_draw(_normal(4), _symmetric(4)),
        latex=r"f(x) = x^\top A x",
        grad=lambda x, A: 2 * A @ x,
        grad_latex=r"2 A x",
        hessian=lambda x, A: 2 * A,
        hessian_latex=r"2 A",
        jacobian=None,
        domain="x: n; A: n x n, symmetric",
        reference=f"{MC} (81) with A = A^T",
    ),
    Entry(
        name="affine_bilinear_form",
        fun=lambda x, B, b, C, D, d: (B @ x + b) @ C @ (D @ x + d),
        sample=_draw(
            _normal(4), _normal(3, 4), _normal(3), _normal(3, 2), _normal(2, 4), _normal(2)
        ),
        latex=r"f(x) = (B x + b)^\top C (D x + d)",
        grad=lambda x, B, b, C, D, d: B.T @ C @ (D @ x + d) + D.T @ C.T @ (B @ x + b),
        grad_latex=r"B^\top C (D x + d) + D^\top C^\top (B x + b)",
        hessian=lambda x, B, b, C, D, d: B.T @ C @ D + D.T @ C.T @ B,
        hessian_latex=r"B^\top C D + D^\top C^\top B",
        jacobian=None,
        domain="x: n; B: p x n; b: p; C: p x q; D: q x n; d: q",
        reference=f"{MC} (78)",
    ),
    Entry(
        name="weighted_distance_squared",
        fun=lambda x, s, W: (x - s) @ W @ (x - s),
        sample=_draw(_normal(4), _normal(4), _symmetric(4)),
        latex=r"f(x) = (x - s)^\top W (x - s)",
        grad=lambda x, s, W: 2 * W @ (x - s),
        grad_latex=r"2 W (x - s)",
        hessian=lambda x, s, W: 2 * W,
        hessian_latex=r"2 W",
        jacobian=None,
        domain="x, s: n; W: n x n, symmetric",
        reference=f"{MC} (85) (W symmetric)",
    ),
    Entry(
        name="weighted_residual_in_s",
        fun=lambda s, x, A, W: (x - A @ s) @ W @ (x - A @ s),
        sample=_draw(_normal(3), _normal(4), _normal(4, 3), _symmetric(4)),
        latex=r"f(s) = (x - A s)^\top W (x - A s)",
        grad=lambda s, x, A, W: -2 * A.T @ W @ (x - A @ s),
        grad_latex=r"-2 A^\top W (x - A s)",
        hessian=lambda s, x, A, W: 2 * A.T @ W @ A,
        hessian_latex=r"2 A^\top W A",
        jacobian=None,
        domain="s: n; x: m; A: m x n; W: m x m, symmetric",
        reference=f"{MC} (84) (W symmetric)",
    ),
    Entry(
        name="weighted_residual_in_x",
        fun=lambda x, s, A, W: (x - A @ s) @ W @ (x - A @ s),
        sample=_draw(_normal(4), _normal(3), _normal(4, 3), _symmetric(4)),
        latex=r"f(x) = (x - A s)^\top W (x - A s)",
        grad=lambda x, s, A, W: 2 * W @ (x - A @ s),
        grad_latex=r"2 W (x - A s)",
        hessian=lambda x, s, A, W: 2 * W,
        hessian_latex=r"2 W",
        jacobian=None,
        domain="x: m; s: n; A: m x n; W: m x m, symmetric",
        reference=f"{MC} (87) (W symmetric)",
    ),
    Entry(
        name="squared_norm",
        fun=lambda x: x @ x,
        sample=_draw(_normal(4)),
        latex=r"f(x) = \lVert x \rVert_2^2 = x^\top x",
        grad=lambda x: 2 * x,
        grad_latex=r"2 x",
        hessian=lambda x: 2 * _eye(x),
        hessian_latex=r"2 I",
        jacobian=None,
        domain="x: n",
        reference=f"{MC} §2.6.1",
    ),
    Entry(
        name="euclidean_norm",
        fun=lambda x: jnp.linalg.norm(x),
        sample=_draw(_away_from_zero(4)),
        latex=r"f(x) = \lVert x \rVert_2",
        grad=lambda x: x / jnp.sqrt(x @ x),
        grad_latex=r"\frac{x}{\lVert x \rVert_2}",
        hessian=lambda x: (_eye(x) - jnp.outer(x, x) / (x @ x)) / jnp.sqrt(x @ x),
        hessian_latex=(
            r"\frac{1}{\lVert x \rVert_2} \left(I - \frac{x x^\top}{\lVert x \rVert_2^2}\right)"
        ),
        jacobian=None,
        domain="x: n, nonzero",
        reference=f"{MC} §2.6.1 (a = 0)",
    ),
    Entry(
        name="euclidean_distance",
        fun=lambda x, a: jnp.linalg.norm(x - a),
        sample=_distance_sample,
        latex=r"f(x) = \lVert x - a \rVert_2",
        grad=lambda x, a: (x - a) / jnp.sqrt((x - a) @ (x - a)),
        grad_latex=r"\frac{x - a}{\lVert x - a \rVert_2}",
        hessian=lambda x, a: (
            (_eye(x) - jnp.outer(x - a, x - a) / ((x - a) @ (x - a))) / jnp.sqrt((x - a) @ (x - a))
        ),
        hessian_latex=(
            r"\frac{1}{\lVert x - a \rVert_2} "
            r"\left(I - \frac{(x - a)(x - a)^\top}{\lVert x - a \rVert_2^2}\right)"
        ),
        jacobian=None,
        domain="x, a: n; such that x - a is nonzero",
        reference=f"{MC} §2.6.1",
    ),
    Entry(
        name="cosine_similarity",
        fun=lambda x, a: a @ x / (jnp.linalg.norm(a) * jnp.linalg.norm(x)),
        sample=_draw(_away_from_zero(4), _away_from_zero(4)),
        latex=r"f(x) = \frac{a^\top x}{\lVert a \rVert_2 \lVert x \rVert_2}",
        grad=lambda x, a: (
            a / (jnp.linalg.norm(a) * jnp.linalg.norm(x))
            - (a @ x) * x / (jnp.linalg.norm(a) * jnp.linalg.norm(x) ** 3)
        ),
        grad_latex=(
            r"\frac{a}{\lVert a \rVert \lVert x \rVert} "
            r"- \frac{(a^\top x)\, x}{\lVert a \rVert \lVert x \rVert^3}"
        ),
        hessian=lambda x, a: (
            -(jnp.outer(a, x) + jnp.outer(x, a)) / (jnp.linalg.norm(a) * (x @ x) ** 1.5)
            + (a @ x)
            / jnp.linalg.norm(a)
            * (3 * jnp.outer(x, x) / (x @ x) ** 2.5 - _eye(x) / (x @ x) ** 1.5)
        ),
        hessian_latex=(
            r"-\frac{a x^\top + x a^\top}{\lVert a \rVert \lVert x \rVert^3} "
            r"+ \frac{a^\top x}{\lVert a \rVert} "
            r"\left(\frac{3 x x^\top}{\lVert x \rVert^5} - \frac{I}{\lVert x \rVert^3}\right)"
        ),
        jacobian=None,
        domain="x, a: n, nonzero",
        reference=f"{MC} §2.6.1 and the quotient rule",
    ),
    Entry(
        name="rayleigh_quotient",
        fun=lambda x, A: x @ A @ x / (x @ x),
        sample=_draw(_away_from_zero(4), _symmetric(4)),
        latex=r"f(x) = \frac{x^\top A x}{x^\top x}",
        grad=lambda x, A: 2 * (A @ x - (x @ A @ x) / (x @ x) * x) / (x @ x),
        grad_latex=r"\frac{2 (A x - f(x)\, x)}{x^\top x}",
        hessian=lambda x, A: (
            lambda f, g, s: 2 * (A - f * _eye(x) - jnp.outer(x, g) - jnp.outer(g, x)) / s
        )(x @ A @ x / (x @ x), 2 * (A @ x - (x @ A @ x) / (x @ x) * x) / (x @ x), x @ x),
        hessian_latex=(
            r"\frac{2}{x^\top x} \left(A - f(x) I - x \nabla f(x)^\top "
            r"- \nabla f(x) x^\top\right)"
        ),
        jacobian=None,
        domain="x: n, nonzero; A: n x n, symmetric",
        reference=f"{MC} (81), §2.6.1 and the quotient rule; {MN}, ch. 10",
    ),
    Entry(
        name="generalized_rayleigh_quotient",
        fun=lambda x, A, B: x @ A @ x / (x @ B @ x),
        sample=_draw(_away_from_zero(4), _symmetric(4), _spd(4)),
        latex=r"f(x) = \frac{x^\top A x}{x^\top B x}",
        grad=lambda x, A, B: 2 * (A @ x - (x @ A @ x) / (x @ B @ x) * B @ x) / (x @ B @ x),
        grad_latex=r"\frac{2 (A x - f(x) B x)}{x^\top B x}",
        hessian=lambda x, A, B: (
            lambda f, g, s: 2 * (A - f * B - jnp.outer(B @ x, g) - jnp.outer(g, B @ x)) / s
        )(
            x @ A @ x / (x @ B @ x),
            2 * (A @ x - (x @ A @ x) / (x @ B @ x) * B @ x) / (x @ B @ x),
            x @ B @ x,
        ),
        hessian_latex=(
            r"\frac{2}{x^\top B x} \left(A - f(x) B - B x \nabla f(x)^\top "
            r"- \nabla f(x) x^\top B\right)"
        ),
        jacobian=None,
        domain="x: n, nonzero; A: n x n, symmetric; B: n x n, symmetric positive definite",
        reference=f"{MC} (81) and the quotient rule",
    ),
    Entry(
        name="sqrt_quadratic_form",
        fun=lambda x, A: jnp.sqrt(x @ A @ x),
        sample=_draw(_away_from_zero(4), _spd(4)),
        latex=r"f(x) = \sqrt{x^\top A x}",
        grad=lambda x, A: A @ x / jnp.sqrt(x @ A @ x),
        grad_latex=r"\frac{A x}{\sqrt{x^\top A x}}",
        hessian=lambda x, A: A / jnp.sqrt(x @ A @ x) - jnp.outer(A @ x, A @ x) / (x @ A @ x) ** 1.5,
        hessian_latex=r"\frac{A}{f(x)} - \frac{A x x^\top A}{f(x)^3}",
        jacobian=None,
        domain="x: n, nonzero; A: n x n, symmetric positive definite",
        reference=f"{MC} (81) and the chain rule",
    ),
    Entry(
        name="mahalanobis_squared",
        fun=lambda x, mu, Sigma: (x - mu) @ jnp.linalg.solve(Sigma, x - mu),
        sample=_draw(_normal(4), _normal(4), _spd(4)),
        latex=r"f(x) = (x - \mu)^\top \Sigma^{-1} (x - \mu)",
        grad=lambda x, mu, Sigma: 2 * jnp.linalg.inv(Sigma) @ (x - mu),
        grad_latex=r"2 \Sigma^{-1} (x - \mu)",
        hessian=lambda x, mu, Sigma: 2 * jnp.linalg.inv(Sigma),
        hessian_latex=r"2 \Sigma^{-1}",
        jacobian=None,
        domain="x, mu: n; Sigma: n x n, symmetric positive definite",
        reference=f"{MC} (85) with W = Sigma^{{-1}}",
    ),
    Entry(
        name="quartic_form",
        fun=lambda x, A: (x @ A @ x) ** 2,
        sample=_draw(_normal(4), _normal(4, 4)),
        latex=r"f(x) = (x^\top A x)^2",
        grad=lambda x, A: 2 * (x @ A @ x) * (A + A.T) @ x,
        grad_latex=r"2 (x^\top A x) (A + A^\top) x",
        hessian=lambda x, A: (
            2 * (x @ A @ x) * (A + A.T) + 2 * jnp.outer((A + A.T) @ x, (A + A.T) @ x)
        ),
        hessian_latex=(r"2 (x^\top A x) (A + A^\top) + 2 (A + A^\top) x x^\top (A + A^\top)"),
        jacobian=None,
        domain="x: n; A: n x n",
        reference=f"{MC} (81) and the chain rule",
    ),
    Entry(
        name="cubic_linear_form",
        fun=lambda x, a: (a @ x) ** 3,
        sample=_draw(_normal(4), _normal(4)),
        latex=r"f(x) = (a^\top x)^3",
        grad=lambda x, a: 3 * (a @ x) ** 2 * a,
        grad_latex=r"3 (a^\top x)^2 a",
        hessian=lambda x, a: 6 * (a @ x) * jnp.outer(a, a),
        hessian_latex=r"6 (a^\top x)\, a a^\top",
        jacobian=None,
        domain="x, a: n",
        reference=f"{MC} (69) and the chain rule",
    ),
    Entry(
        name="linear_fractional",
        fun=lambda x, a, b: (a @ x) / (b @ x),
        sample=_ratio_sample,
        latex=r"f(x) = \frac{a^\top x}{b^\top x}",
        grad=lambda x, a, b: a / (b @ x) - (a @ x) * b / (b @ x) ** 2,
        grad_latex=r"\frac{a}{b^\top x} - \frac{(a^\top x)\, b}{(b^\top x)^2}",
        hessian=lambda x, a, b: (
            -(jnp.outer(a, b) + jnp.outer(b, a)) / (b @ x) ** 2
            + 2 * (a @ x) * jnp.outer(b, b) / (b @ x) ** 3
        ),
        hessian_latex=(
            r"-\frac{a b^\top + b a^\top}{(b^\top x)^2} "
            r"+ \frac{2 (a^\top x)\, b b^\top}{(b^\top x)^3}"
        ),
        jacobian=None,
        domain="x, a, b: n; such that b^T x > 0",
        reference=f"{MC} (69) and the quotient rule",
    ),
    Entry(
        name="exp_linear",
        fun=lambda x, a: jnp.exp(a @ x),
        sample=_draw(_normal(4, scale=0.5), _normal(4, scale=0.5)),
        latex=r"f(x) = e^{a^\top x}",
        grad=lambda x, a: jnp.exp(a @ x) * a,
        grad_latex=r"e^{a^\top x} a",
        hessian=lambda x, a: jnp.exp(a @ x) * jnp.outer(a, a),
        hessian_latex=r"e^{a^\top x} a a^\top",
        jacobian=None,
        domain="x, a: n",
        reference=f"{MC} (69) and the chain rule",
    ),
    Entry(
        name="sigmoid_linear",
        fun=lambda x, a: jax.nn.sigmoid(a @ x),
        sample=_draw(_normal(4, scale=0.5), _normal(4, scale=0.5)),
        latex=r"f(x) = \sigma(a^\top x), \quad \sigma(t) = \frac{1}{1 + e^{-t}}",
        grad=lambda x, a: _sigmoid(a @ x) * (1 - _sigmoid(a @ x)) * a,
        grad_latex=r"\sigma (1 - \sigma)\, a",
        hessian=lambda x, a: (
            _sigmoid(a @ x) * (1 - _sigmoid(a @ x)) * (1 - 2 * _sigmoid(a @ x)) * jnp.outer(a, a)
        ),
        hessian_latex=r"\sigma (1 - \sigma) (1 - 2 \sigma)\, a a^\top",
        jacobian=None,
        domain="x, a: n",
        reference=f"chain rule with sigma' = sigma (1 - sigma); {BISHOP}, §4.3.2",
    ),
    Entry(
        name="log_one_plus_squared_norm",
        fun=lambda x: jnp.log(1 + x @ x),
        sample=_draw(_normal(4)),
        latex=r"f(x) = \log(1 + \lVert x \rVert_2^2)",
        grad=lambda x: 2 * x / (1 + x @ x),
        grad_latex=r"\frac{2 x}{1 + \lVert x \rVert^2}",
        hessian=lambda x: 2 * _eye(x) / (1 + x @ x) - 4 * jnp.outer(x, x) / (1 + x @ x) ** 2,
        hessian_latex=(
            r"\frac{2 I}{1 + \lVert x \rVert^2} - \frac{4 x x^\top}{(1 + \lVert x \rVert^2)^2}"
        ),
        jacobian=None,
        domain="x: n",
        reference=f"{MC} §2.6.1 and the chain rule",
    ),
    Entry(
        name="gaussian_kernel",
        fun=lambda x, a: jnp.exp(-((x - a) @ (x - a)) / 2),
        sample=_draw(_normal(4, scale=0.5), _normal(4, scale=0.5)),
        latex=r"f(x) = \exp\left(-\tfrac{1}{2} \lVert x - a \rVert_2^2\right)",
        grad=lambda x, a: -jnp.exp(-((x - a) @ (x - a)) / 2) * (x - a),
        grad_latex=r"-f(x)\, (x - a)",
        hessian=lambda x, a: (
            jnp.exp(-((x - a) @ (x - a)) / 2) * (jnp.outer(x - a, x - a) - _eye(x))
        ),
        hessian_latex=r"f(x) \left((x - a)(x - a)^\top - I\right)",
        jacobian=None,
        domain="x, a: n",
        reference=f"{MC} §2.6.1 and the chain rule",
    ),
    Entry(
        name="power_sum",
        fun=lambda x: jnp.sum(x**4),
        sample=_draw(_normal(4)),
        latex=r"f(x) = \lVert x \rVert_4^4 = \sum_i x_i^4",
        grad=lambda x: 4 * x**3,
        grad_latex=r"4 x^{\odot 3}",
        hessian=lambda x: jnp.diag(12 * x**2),
        hessian_latex=r"\operatorname{diag}(12 x^{\odot 2})",
        jacobian=None,
        domain="x: n",
        reference="elementwise: the scalar derivative on the diagonal",
    ),
    Entry(
        name="sum_exp",
        fun=lambda x: jnp.sum(jnp.exp(x)),
        sample=_draw(_normal(4)),
        latex=r"f(x) = \sum_i e^{x_i}",
        grad=lambda x: jnp.exp(x),
        grad_latex=r"e^{x}",
        hessian=lambda x: jnp.diag(jnp.exp(x)),
        hessian_latex=r"\operatorname{diag}(e^{x})",
        jacobian=None,
        domain="x: n",
        reference="elementwise: the scalar derivative on the diagonal",
    ),
    Entry(
        name="negative_entropy",
        fun=lambda x: jnp.sum(x * jnp.log(x)),
        sample=_draw(_positive(4)),
        latex=r"f(x) = \sum_i x_i \log x_i",
        grad=lambda x: jnp.log(x) + 1,
        grad_latex=r"\log x + 1",
        hessian=lambda x: jnp.diag(1 / x),
        hessian_latex=r"\operatorname{diag}(1 / x)",
        jacobian=None,
        domain="x: n, positive entries",
        reference=f"{BV}, §3.1.5",
    ),
    Entry(
        name="log_cosh",
        fun=lambda x: jnp.sum(jnp.log(jnp.cosh(x))),
        sample=_draw(_normal(4)),
        latex=r"f(x) = \sum_i \log \cosh x_i",
        grad=lambda x: jnp.tanh(x),
        grad_latex=r"\tanh x",
        hessian=lambda x: jnp.diag(1 - jnp.tanh(x) ** 2),
        hessian_latex=r"\operatorname{diag}(1 - \tanh^2 x)",
        jacobian=None,
        domain="x: n",
        reference="elementwise: the scalar derivative on the diagonal",
    ),
    Entry(
        name="pseudo_huber",
        fun=lambda x, delta: jnp.sum(delta**2 * (jnp.sqrt(1 + (x / delta) ** 2) - 1)),
        sample=_draw(_normal(4), _uniform(low=0.5, high=2.0)),
        latex=r"f(x) = \sum_i \delta^2 \left(\sqrt{1 + (x_i / \delta)^2} - 1\right)",
        grad=lambda x, delta: x / jnp.sqrt(1 + (x / delta) ** 2),
        grad_latex=r"\frac{x}{\sqrt{1 + (x / \delta)^2}}",
        hessian=lambda x, delta: jnp.diag((1 + (x / delta) ** 2) ** -1.5),
        hessian_latex=r"\operatorname{diag}\left((1 + (x / \delta)^2)^{-3/2}\right)",
        jacobian=None,
        domain="x: n; delta: scalar, positive entries",
        reference="elementwise (the smooth Huber loss): the scalar derivative on the diagonal",
    ),
    Entry(
        name="log_barrier",
        fun=lambda x, A, b: -jnp.sum(jnp.log(b - A @ x)),
        sample=_barrier_sample,
        latex=r"f(x) = -\sum_i \log(b_i - a_i^\top x)",
        grad=lambda x, A, b: A.T @ (1 / (b - A @ x)),
        grad_latex=r"A^\top \frac{1}{b - A x}",
        hessian=lambda x, A, b: A.T @ jnp.diag(1 / (b - A @ x) ** 2) @ A,
        hessian_latex=r"A^\top \operatorname{diag}\left(\frac{1}{(b - A x)^2}\right) A",
        jacobian=None,
        domain="x: n; A: m x n; b: m; such that b - A x > 0",
        reference=f"{BV}, §11.2.1",
    ),
)


# ------------------------------------------------------------------------------------------
# Machine-learning losses.

_LOSSES: tuple[Entry, ...] = (
    Entry(
        name="least_squares",
        fun=lambda x, A, b: (A @ x - b) @ (A @ x - b),
        sample=_draw(_normal(4), _normal(5, 4), _normal(5)),
        latex=r"f(x) = \lVert A x - b \rVert_2^2",
        grad=lambda x, A, b: 2 * A.T @ (A @ x - b),
        grad_latex=r"2 A^\top (A x - b)",
        hessian=lambda x, A, b: 2 * A.T @ A,
        hessian_latex=r"2 A^\top A",
        jacobian=None,
        domain="x: n; A: m x n; b: m",
        reference=f"{MC} (84) with W = I",
    ),
    Entry(
        name="weighted_least_squares",
        fun=lambda x, A, b, W: (A @ x - b) @ W @ (A @ x - b),
        sample=_draw(_normal(4), _normal(5, 4), _normal(5), _spd(5)),
        latex=r"f(x) = (A x - b)^\top W (A x - b)",
        grad=lambda x, A, b, W: 2 * A.T @ W @ (A @ x - b),
        grad_latex=r"2 A^\top W (A x - b)",
        hessian=lambda x, A, b, W: 2 * A.T @ W @ A,
        hessian_latex=r"2 A^\top W A",
        jacobian=None,
        domain="x: n; A: m x n; b: m; W: m x m, symmetric positive definite",
        reference=f"{MC} (84) (W symmetric)",
    ),
    Entry(
        name="ridge",
        fun=lambda x, A, b, lam: (A @ x - b) @ (A @ x - b) / 2 + lam / 2 * (x @ x),
        sample=_draw(_normal(4), _normal(5, 4), _normal(5), _uniform(low=0.1, high=1.0)),
        latex=(
            r"f(x) = \tfrac{1}{2} \lVert A x - b \rVert_2^2 "
            r"+ \tfrac{\lambda}{2} \lVert x \rVert_2^2"
        ),
        grad=lambda x, A, b, lam: A.T @ (A @ x - b) + lam * x,
        grad_latex=r"A^\top (A x - b) + \lambda x",
        hessian=lambda x, A, b, lam: A.T @ A + lam * _eye(x),
        hessian_latex=r"A^\top A + \lambda I",
        jacobian=None,
        domain="x: n; A: m x n; b: m; lam: scalar, positive entries",
        reference=f"{MC} (84), §2.6.1; {BISHOP}, §3.1.4",
    ),
    Entry(
        name="logistic_loss",
        fun=lambda w, A, y: jnp.sum(jnp.logaddexp(0, -y * (A @ w))),
        sample=_draw(_normal(4, scale=0.5), _normal(5, 4), _signs(5)),
        latex=r"f(w) = \sum_i \log\left(1 + e^{-y_i a_i^\top w}\right)",
        grad=lambda w, A, y: -A.T @ (y * _sigmoid(-y * (A @ w))),
        grad_latex=r"-A^\top \left(y \odot \sigma(-y \odot A w)\right)",
        hessian=lambda w, A, y: A.T @ jnp.diag(_sigmoid(A @ w) * (1 - _sigmoid(A @ w))) @ A,
        hessian_latex=(
            r"A^\top \operatorname{diag}\left(\sigma(A w) \odot (1 - \sigma(A w))\right) A"
        ),
        jacobian=None,
        domain="w: n; A: m x n; y: m, labels in {-1, 1}",
        reference=f"{BISHOP}, §4.3.2-4.3.3 (labels in {{-1, 1}}: y_i^2 = 1)",
    ),
    Entry(
        name="binary_cross_entropy",
        fun=lambda w, A, y: jnp.sum(jnp.logaddexp(0, A @ w) - y * (A @ w)),
        sample=_draw(_normal(4, scale=0.5), _normal(5, 4), _bits(5)),
        latex=r"f(w) = \sum_i \left(\log(1 + e^{a_i^\top w}) - y_i a_i^\top w\right)",
        grad=lambda w, A, y: A.T @ (_sigmoid(A @ w) - y),
        grad_latex=r"A^\top (\sigma(A w) - y)",
        hessian=lambda w, A, y: A.T @ jnp.diag(_sigmoid(A @ w) * (1 - _sigmoid(A @ w))) @ A,
        hessian_latex=(
            r"A^\top \operatorname{diag}\left(\sigma(A w) \odot (1 - \sigma(A w))\right) A"
        ),
        jacobian=None,
        domain="w: n; A: m x n; y: m, labels in {0, 1}",
        reference=f"{BISHOP}, §4.3.2-4.3.3 (the Hessian Phi^T R Phi of IRLS)",
    ),
    Entry(
        name="logistic_loss_ridge",
        fun=lambda w, A, y, lam: jnp.sum(jnp.logaddexp(0, -y * (A @ w))) + lam / 2 * (w @ w),
        sample=_draw(_normal(4, scale=0.5), _normal(5, 4), _signs(5), _uniform(low=0.1, high=1.0)),
        latex=(
            r"f(w) = \sum_i \log\left(1 + e^{-y_i a_i^\top w}\right) "
            r"+ \tfrac{\lambda}{2} \lVert w \rVert_2^2"
        ),
        grad=lambda w, A, y, lam: -A.T @ (y * _sigmoid(-y * (A @ w))) + lam * w,
        grad_latex=r"-A^\top \left(y \odot \sigma(-y \odot A w)\right) + \lambda w",
        hessian=lambda w, A, y, lam: (
            A.T @ jnp.diag(_sigmoid(A @ w) * (1 - _sigmoid(A @ w))) @ A + lam * _eye(w)
        ),
        hessian_latex=(
            r"A^\top \operatorname{diag}\left(\sigma(A w) \odot (1 - \sigma(A w))\right) A "
            r"+ \lambda I"
        ),
        jacobian=None,
        domain="w: n; A: m x n; y: m, labels in {-1, 1}; lam: scalar, positive entries",
        reference=f"{BISHOP}, §4.3.2-4.3.3",
    ),
    Entry(
        name="poisson_nll",
        fun=lambda w, A, y: jnp.sum(jnp.exp(A @ w) - y * (A @ w)),
        sample=_draw(_normal(4, scale=0.3), _normal(5, 4), _counts(5)),
        latex=r"f(w) = \sum_i \left(e^{a_i^\top w} - y_i a_i^\top w\right)",
        grad=lambda w, A, y: A.T @ (jnp.exp(A @ w) - y),
        grad_latex=r"A^\top (e^{A w} - y)",
        hessian=lambda w, A, y: A.T @ jnp.diag(jnp.exp(A @ w)) @ A,
        hessian_latex=r"A^\top \operatorname{diag}(e^{A w}) A",
        jacobian=None,
        domain="w: n; A: m x n; y: m, nonnegative entries",
        reference="Poisson regression (log link): the chain rule, as for logistic regression",
    ),
    Entry(
        name="log_sum_exp",
        fun=lambda x: jnp.log(jnp.sum(jnp.exp(x))),
        sample=_draw(_normal(4)),
        latex=r"f(x) = \log \sum_i e^{x_i}",
        grad=lambda x: _softmax(x),
        grad_latex=r"p = \operatorname{softmax}(x) = \frac{e^{x}}{\mathbf{1}^\top e^{x}}",
        hessian=lambda x: jnp.diag(_softmax(x)) - jnp.outer(_softmax(x), _softmax(x)),
        hessian_latex=r"\operatorname{diag}(p) - p p^\top",
        jacobian=None,
        domain="x: n",
        reference=f"{BV}, §3.1.5",
    ),
    Entry(
        name="log_sum_exp_affine",
        fun=lambda x, A, b: jnp.log(jnp.sum(jnp.exp(A @ x + b))),
        sample=_draw(_normal(4), _normal(5, 4, scale=0.5), _normal(5)),
        latex=r"f(x) = \log \sum_i e^{a_i^\top x + b_i}",
        grad=lambda x, A, b: A.T @ _softmax(A @ x + b),
        grad_latex=r"A^\top p, \quad p = \operatorname{softmax}(A x + b)",
        hessian=lambda x, A, b: (
            A.T
            @ (jnp.diag(_softmax(A @ x + b)) - jnp.outer(_softmax(A @ x + b), _softmax(A @ x + b)))
            @ A
        ),
        hessian_latex=r"A^\top \left(\operatorname{diag}(p) - p p^\top\right) A",
        jacobian=None,
        domain="x: n; A: m x n; b: m",
        reference=f"{BV}, §3.1.5 and the chain rule",
    ),
    Entry(
        name="softmax_cross_entropy",
        fun=lambda z, y: -(y @ (z - jnp.log(jnp.sum(jnp.exp(z))))),
        sample=_draw(_normal(4), _probability(4)),
        latex=r"f(z) = -y^\top \log \operatorname{softmax}(z)",
        grad=lambda z, y: _softmax(z) - y,
        grad_latex=r"\operatorname{softmax}(z) - y",
        hessian=lambda z, y: jnp.diag(_softmax(z)) - jnp.outer(_softmax(z), _softmax(z)),
        hessian_latex=r"\operatorname{diag}(p) - p p^\top, \quad p = \operatorname{softmax}(z)",
        jacobian=None,
        domain="z: n; y: n, probability vector",
        reference=f"{BISHOP}, §4.3.4 (the gradient uses 1^T y = 1)",
    ),
    Entry(
        name="softmax_regression",
        fun=lambda W, X, Y: jnp.sum(_lse(X @ W.T) - jnp.sum(Y * (X @ W.T), axis=1)),
        sample=_draw(_normal(3, 4, scale=0.5), _normal(5, 4), _probability(5, 3)),
        latex=r"f(W) = \sum_i \left(\log \mathbf{1}^\top e^{W x_i} - y_i^\top W x_i\right)",
        grad=lambda W, X, Y: (_softmax(X @ W.T) - Y).T @ X,
        grad_latex=r"(P - Y)^\top X, \quad P_{i:} = \operatorname{softmax}(W x_i)^\top",
        hessian=lambda W, X, Y: (
            jnp.einsum(
                "ia,ac,ib,ie->abce", _softmax(X @ W.T), jnp.eye(W.shape[0], dtype=W.dtype), X, X
            )
            - jnp.einsum("ia,ic,ib,ie->abce", _softmax(X @ W.T), _softmax(X @ W.T), X, X)
        ),
        hessian_latex=(
            r"H_{abce} = \sum_i \left(\operatorname{diag}(p_i) - p_i p_i^\top\right)_{ac} "
            r"x_{ib} x_{ie}, \text{ i.e. } \sum_i x_i x_i^\top \otimes "
            r"\left(\operatorname{diag}(p_i) - p_i p_i^\top\right)"
        ),
        jacobian=None,
        domain="W: k x d; X: N x d; Y: N x k, rows are probability vectors",
        reference=f"{BISHOP}, §4.3.4",
    ),
    Entry(
        name="two_layer_linear",
        fun=lambda W1, W2, x, y: (W2 @ W1 @ x - y) @ (W2 @ W1 @ x - y),
        sample=_draw(_normal(3, 4), _normal(2, 3), _normal(4), _normal(2)),
        latex=r"f(W_1) = \lVert W_2 W_1 x - y \rVert_2^2",
        grad=lambda W1, W2, x, y: 2 * jnp.outer(W2.T @ (W2 @ W1 @ x - y), x),
        grad_latex=r"2 W_2^\top (W_2 W_1 x - y) x^\top",
        hessian=lambda W1, W2, x, y: 2 * jnp.einsum("ik,l,j->ijkl", W2.T @ W2, x, x),
        hessian_latex=(
            r"H_{ijkl} = 2 (W_2^\top W_2)_{ik} x_j x_l, \text{ i.e. } "
            r"2\, x x^\top \otimes W_2^\top W_2"
        ),
        jacobian=None,
        domain="W1: h x n; W2: m x h; x: n; y: m",
        reference=f"{MC} (88) with W = I, A = W_2 W_1, s = x, and the chain rule",
    ),
    Entry(
        name="gaussian_nll_mean",
        fun=lambda mu, X, Lam: jnp.sum((X - mu[None, :]) @ Lam * (X - mu[None, :])) / 2,
        sample=_draw(_normal(3), _normal(5, 3), _spd(3)),
        latex=r"f(\mu) = \tfrac{1}{2} \sum_{i=1}^N (x_i - \mu)^\top \Lambda (x_i - \mu)",
        grad=lambda mu, X, Lam: Lam @ (X.shape[0] * mu - jnp.sum(X, axis=0)),
        grad_latex=r"\Lambda \left(N \mu - \sum_i x_i\right)",
        hessian=lambda mu, X, Lam: X.shape[0] * Lam,
        hessian_latex=r"N \Lambda",
        jacobian=None,
        domain="mu: n; X: N x n; Lam: n x n, symmetric positive definite",
        reference=f"{MC} (86) (W symmetric); {MN}, ch. 15 (the normal distribution)",
    ),
    Entry(
        name="gaussian_nll_precision",
        fun=lambda Lam, X, mu: (
            jnp.sum((X - mu[None, :]) @ Lam * (X - mu[None, :])) / 2
            - X.shape[0] / 2 * jnp.log(jnp.linalg.det(Lam))
        ),
        sample=_draw(_spd(3), _normal(5, 3), _normal(3)),
        latex=(
            r"f(\Lambda) = \tfrac{1}{2} \sum_{i=1}^N (x_i - \mu)^\top \Lambda (x_i - \mu) "
            r"- \tfrac{N}{2} \log \det \Lambda"
        ),
        grad=lambda Lam, X, mu: (
            (X - mu[None, :]).T @ (X - mu[None, :]) / 2 - X.shape[0] / 2 * jnp.linalg.inv(Lam).T
        ),
        grad_latex=(
            r"\tfrac{1}{2} S - \tfrac{N}{2} \Lambda^{-\top}, "
            r"\quad S = \sum_i (x_i - \mu)(x_i - \mu)^\top"
        ),
        hessian=lambda Lam, X, mu: (
            X.shape[0] / 2 * jnp.einsum("jk,li->ijkl", jnp.linalg.inv(Lam), jnp.linalg.inv(Lam))
        ),
        hessian_latex=r"H_{ijkl} = \tfrac{N}{2} (\Lambda^{-1})_{jk} (\Lambda^{-1})_{li}",
        jacobian=None,
        domain="Lam: n x n, symmetric positive definite; X: N x n; mu: n",
        reference=(f"the lecture's example 3 with S / 2 and N / 2; {MC} (72), (43); {MN}, ch. 15"),
    ),
    Entry(
        name="gaussian_nll_covariance",
        fun=lambda Sigma, X, mu: (
            X.shape[0] / 2 * jnp.log(jnp.linalg.det(Sigma))
            + jnp.sum((X - mu[None, :]) * jnp.linalg.solve(Sigma, (X - mu[None, :]).T).T) / 2
        ),
        sample=_draw(_spd(3), _normal(5, 3), _normal(3)),
        latex=(
            r"f(\Sigma) = \tfrac{N}{2} \log \det \Sigma "
            r"+ \tfrac{1}{2} \sum_{i=1}^N (x_i - \mu)^\top \Sigma^{-1} (x_i - \mu)"
        ),
        grad=lambda Sigma, X, mu: (lambda Y, S: X.shape[0] / 2 * Y.T - (Y @ S @ Y).T / 2)(
            jnp.linalg.inv(Sigma), (X - mu[None, :]).T @ (X - mu[None, :])
        ),
        grad_latex=(
            r"\tfrac{N}{2} \Sigma^{-\top} - \tfrac{1}{2} \Sigma^{-\top} S \Sigma^{-\top}, "
            r"\quad S = \sum_i (x_i - \mu)(x_i - \mu)^\top"
        ),
        hessian=lambda Sigma, X, mu: (
            lambda Y, Z: (
                -X.shape[0] / 2 * jnp.einsum("jk,li->ijkl", Y, Y)
                + jnp.einsum("jk,li->ijkl", Y, Z) / 2
                + jnp.einsum("jk,li->ijkl", Z, Y) / 2
            )
        )(
            jnp.linalg.inv(Sigma),
            jnp.linalg.inv(Sigma) @ (X - mu[None, :]).T @ (X - mu[None, :]) @ jnp.linalg.inv(Sigma),
        ),
        hessian_latex=(
            r"H_{ijkl} = -\tfrac{N}{2} Y_{jk} Y_{li} "
            r"+ \tfrac{1}{2} (Y_{jk} Z_{li} + Z_{jk} Y_{li}), "
            r"\quad Y = \Sigma^{-1}, \ Z = \Sigma^{-1} S \Sigma^{-1}"
        ),
        jacobian=None,
        domain="Sigma: n x n, symmetric positive definite; X: N x n; mu: n",
        reference=f"{MC} (43), (63); {MN}, ch. 15",
    ),
)


# ------------------------------------------------------------------------------------------
# Jacobians of vector- and matrix-valued functions (JAX's layout: out_shape + in_shape).

_JACOBIANS: tuple[Entry, ...] = (
    Entry(
        name="linear_map",
        fun=lambda x, A: A @ x,
        sample=_draw(_normal(4), _normal(3, 4)),
        latex=r"f(x) = A x",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x, A: A,
        jacobian_latex=r"J = A",
        domain="x: n; A: m x n",
        reference="lecture, d(AXB) = A (dX) B; " + f"{MC} §2.4.1",
    ),
    Entry(
        name="elementwise_product",
        fun=lambda x, a: a * x,
        sample=_draw(_normal(4), _normal(4)),
        latex=r"f(x) = a \odot x",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x, a: jnp.diag(a),
        jacobian_latex=r"J = \operatorname{diag}(a)",
        domain="x, a: n",
        reference="elementwise: the scalar derivative on the diagonal",
    ),
    Entry(
        name="softmax",
        fun=lambda x: jnp.exp(x) / jnp.sum(jnp.exp(x)),
        sample=_draw(_normal(4)),
        latex=r"f(x) = \operatorname{softmax}(x) = \frac{e^{x}}{\mathbf{1}^\top e^{x}}",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x: jnp.diag(_softmax(x)) - jnp.outer(_softmax(x), _softmax(x)),
        jacobian_latex=(
            r"J = \operatorname{diag}(p) - p p^\top, \quad p = \operatorname{softmax}(x)"
        ),
        domain="x: n",
        reference=f"{BISHOP}, §4.3.4",
    ),
    Entry(
        name="log_softmax",
        fun=lambda x: x - jnp.log(jnp.sum(jnp.exp(x))),
        sample=_draw(_normal(4)),
        latex=r"f(x) = x - \log \mathbf{1}^\top e^{x}",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x: _eye(x) - jnp.outer(jnp.ones_like(x), _softmax(x)),
        jacobian_latex=r"J = I - \mathbf{1} p^\top, \quad p = \operatorname{softmax}(x)",
        domain="x: n",
        reference=f"{BV}, §3.1.5 (the gradient of log-sum-exp)",
    ),
    Entry(
        name="sigmoid",
        fun=lambda x: jax.nn.sigmoid(x),
        sample=_draw(_normal(4)),
        latex=r"f(x) = \sigma(x) = \frac{1}{1 + e^{-x}} \text{ (elementwise)}",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x: jnp.diag(_sigmoid(x) * (1 - _sigmoid(x))),
        jacobian_latex=r"J = \operatorname{diag}\left(\sigma(x) \odot (1 - \sigma(x))\right)",
        domain="x: n",
        reference="elementwise: the scalar derivative on the diagonal",
    ),
    Entry(
        name="tanh",
        fun=lambda x: jnp.tanh(x),
        sample=_draw(_normal(4)),
        latex=r"f(x) = \tanh x \text{ (elementwise)}",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x: jnp.diag(1 - jnp.tanh(x) ** 2),
        jacobian_latex=r"J = \operatorname{diag}(1 - \tanh^2 x)",
        domain="x: n",
        reference="elementwise: the scalar derivative on the diagonal",
    ),
    Entry(
        name="exp",
        fun=lambda x: jnp.exp(x),
        sample=_draw(_normal(4)),
        latex=r"f(x) = e^{x} \text{ (elementwise)}",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x: jnp.diag(jnp.exp(x)),
        jacobian_latex=r"J = \operatorname{diag}(e^{x})",
        domain="x: n",
        reference="elementwise: the scalar derivative on the diagonal",
    ),
    Entry(
        name="normalize",
        fun=lambda x: x / jnp.linalg.norm(x),
        sample=_draw(_away_from_zero(4)),
        latex=r"f(x) = \frac{x}{\lVert x \rVert_2}",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x: (_eye(x) - jnp.outer(x, x) / (x @ x)) / jnp.sqrt(x @ x),
        jacobian_latex=(
            r"J = \frac{1}{\lVert x \rVert_2} \left(I - \frac{x x^\top}{\lVert x \rVert_2^2}\right)"
        ),
        domain="x: n, nonzero",
        reference=f"{MC} §2.6.1 (a = 0); lecture, d(X / phi)",
    ),
    Entry(
        name="divide_by_linear",
        fun=lambda x, a: x / (a @ x),
        sample=_scale_sample,
        latex=r"f(x) = \frac{x}{a^\top x}",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x, a: _eye(x) / (a @ x) - jnp.outer(x, a) / (a @ x) ** 2,
        jacobian_latex=r"J = \frac{I}{a^\top x} - \frac{x a^\top}{(a^\top x)^2}",
        domain="x, a: n; such that a^T x > 0",
        reference=r"lecture, d(X / phi) = (phi dX - (d phi) X) / phi^2",
    ),
    Entry(
        name="outer_product",
        fun=lambda x: jnp.outer(x, x),
        sample=_draw(_normal(4)),
        latex=r"f(x) = x x^\top",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x: (
            jnp.einsum("ik,j->ijk", _eye(x), x) + jnp.einsum("i,jk->ijk", x, _eye(x))
        ),
        jacobian_latex=r"J_{ijk} = \delta_{ik} x_j + x_i \delta_{jk}",
        domain="x: n",
        reference="lecture, d(XY) = (dX) Y + X (dY)",
    ),
    Entry(
        name="cross_product",
        fun=lambda x, a: jnp.cross(a, x),
        sample=_draw(_normal(3), _normal(3)),
        latex=r"f(x) = a \times x",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda x, a: jnp.array(
            [[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]], dtype=x.dtype
        ),
        jacobian_latex=(
            r"J = [a]_\times = \begin{pmatrix} 0 & -a_3 & a_2 \\ a_3 & 0 & -a_1 \\ "
            r"-a_2 & a_1 & 0 \end{pmatrix}"
        ),
        domain="x, a: 3",
        reference="the cross product as a matrix product, a x x = [a]_x x",
    ),
    Entry(
        name="matrix_vector_product",
        fun=lambda X, a: X @ a,
        sample=_draw(_normal(3, 4), _normal(4)),
        latex=r"f(X) = X a",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda X, a: jnp.einsum("ik,l->ikl", jnp.eye(X.shape[0], dtype=X.dtype), a),
        jacobian_latex=r"J_{ikl} = \delta_{ik} a_l, \text{ i.e. } a^\top \otimes I",
        domain="X: m x n; a: n",
        reference=f"lecture, d(AXB) = A (dX) B; {MC} (74)",
    ),
    Entry(
        name="matrix_product",
        fun=lambda X, A, B: A @ X @ B,
        sample=_draw(_normal(3, 4), _normal(2, 3), _normal(4, 2)),
        latex=r"f(X) = A X B",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda X, A, B: jnp.einsum("ik,lj->ijkl", A, B),
        jacobian_latex=r"J_{ijkl} = A_{ik} B_{lj}, \text{ i.e. } B^\top \otimes A",
        domain="X: m x n; A: p x m; B: n x q",
        reference=f"lecture, d(AXB) = A (dX) B; {MN}, ch. 9",
    ),
    Entry(
        name="transpose",
        fun=lambda X: X.T,
        sample=_draw(_normal(3, 4)),
        latex=r"f(X) = X^\top",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda X: jnp.einsum(
            "il,jk->ijkl", jnp.eye(X.shape[1], dtype=X.dtype), jnp.eye(X.shape[0], dtype=X.dtype)
        ),
        jacobian_latex=r"J_{ijkl} = \delta_{il} \delta_{jk}, \text{ i.e. the commutation matrix}",
        domain="X: m x n",
        reference=f"lecture, d(X^T) = (dX)^T; {MN}, ch. 3 (the commutation matrix K_mn)",
    ),
    Entry(
        name="matrix_square",
        fun=lambda X: X @ X,
        sample=_draw(_normal(3, 3)),
        latex=r"f(X) = X^2",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda X: (
            jnp.einsum("ik,lj->ijkl", _eye(X), X) + jnp.einsum("ik,lj->ijkl", X, _eye(X))
        ),
        jacobian_latex=r"J_{ijkl} = \delta_{ik} X_{lj} + X_{ik} \delta_{lj}",
        domain="X: n x n",
        reference="lecture, d(XY) = (dX) Y + X (dY)",
    ),
    Entry(
        name="gram_matrix",
        fun=lambda X: X.T @ X,
        sample=_draw(_normal(4, 3)),
        latex=r"f(X) = X^\top X",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda X: (
            jnp.einsum("li,kj->ijkl", jnp.eye(X.shape[1], dtype=X.dtype), X)
            + jnp.einsum("ki,lj->ijkl", X, jnp.eye(X.shape[1], dtype=X.dtype))
        ),
        jacobian_latex=r"J_{ijkl} = \delta_{il} X_{kj} + X_{ki} \delta_{jl}",
        domain="X: m x n",
        reference="lecture, d(XY) = (dX) Y + X (dY) and d(X^T) = (dX)^T",
    ),
    Entry(
        name="matrix_inverse",
        fun=lambda X: jnp.linalg.inv(X),
        sample=_draw(_near_identity(3, 3)),
        latex=r"f(X) = X^{-1}",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda X: -jnp.einsum("ik,lj->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X)),
        jacobian_latex=(
            r"J_{ijkl} = -(X^{-1})_{ik} (X^{-1})_{lj}, \text{ i.e. } -X^{-\top} \otimes X^{-1}"
        ),
        domain="X: n x n, invertible",
        reference=f"lecture, d(X^{{-1}}) = -X^{{-1}} (dX) X^{{-1}}; {MC} (40), (60)",
    ),
    Entry(
        name="solve",
        fun=lambda b, A: jnp.linalg.solve(A, b),
        sample=_draw(_normal(3), _near_identity(3, 3)),
        latex=r"f(b) = A^{-1} b",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda b, A: jnp.linalg.inv(A),
        jacobian_latex=r"J = A^{-1}",
        domain="b: n; A: n x n, invertible",
        reference="Giles (2008), matrix inverse product",
    ),
    Entry(
        name="solve_in_matrix",
        fun=lambda A, b: jnp.linalg.solve(A, b),
        sample=_draw(_near_identity(3, 3), _normal(3)),
        latex=r"f(A) = A^{-1} b",
        grad=None,
        grad_latex=None,
        hessian=None,
        hessian_latex=None,
        jacobian=lambda A, b: -jnp.einsum("ik,l->ikl", jnp.linalg.inv(A), jnp.linalg.solve(A, b)),
        jacobian_latex=r"J_{ikl} = -(A^{-1})_{ik} (A^{-1} b)_l",
        domain="A: n x n, invertible; b: n",
        reference=f"Giles (2008), matrix inverse product; {MC} (40)",
    ),
)


# ------------------------------------------------------------------------------------------
# Traces.

_TRACES: tuple[Entry, ...] = (
    Entry(
        name="trace",
        fun=lambda X: jnp.trace(X),
        sample=_draw(_normal(3, 3)),
        latex=r"f(X) = \operatorname{tr} X",
        grad=lambda X: _eye(X),
        grad_latex=r"I",
        hessian=lambda X: jnp.zeros(X.shape * 2, X.dtype),
        hessian_latex=r"0",
        jacobian=None,
        domain="X: n x n",
        reference=f"lecture, d(tr X) = <I, dX>; {MC} (99)",
    ),
    Entry(
        name="trace_XA",
        fun=lambda X, A: jnp.trace(X @ A),
        sample=_draw(_normal(3, 4), _normal(4, 3)),
        latex=r"f(X) = \operatorname{tr}(X A)",
        grad=lambda X, A: A.T,
        grad_latex=r"A^\top",
        hessian=lambda X, A: jnp.zeros(X.shape * 2, X.dtype),
        hessian_latex=r"0",
        jacobian=None,
        domain="X: m x n; A: n x m",
        reference=f"{MC} (100)",
    ),
    Entry(
        name="trace_AXB",
        fun=lambda X, A, B: jnp.trace(A @ X @ B),
        sample=_draw(_normal(3, 4), _normal(2, 3), _normal(4, 2)),
        latex=r"f(X) = \operatorname{tr}(A X B)",
        grad=lambda X, A, B: A.T @ B.T,
        grad_latex=r"A^\top B^\top",
        hessian=lambda X, A, B: jnp.zeros(X.shape * 2, X.dtype),
        hessian_latex=r"0",
        jacobian=None,
        domain="X: m x n; A: p x m; B: n x p",
        reference=f"{MC} (101)",
    ),
    Entry(
        name="trace_AXtB",
        fun=lambda X, A, B: jnp.trace(A @ X.T @ B),
        sample=_draw(_normal(3, 4), _normal(2, 4), _normal(3, 2)),
        latex=r"f(X) = \operatorname{tr}(A X^\top B)",
        grad=lambda X, A, B: B @ A,
        grad_latex=r"B A",
        hessian=lambda X, A, B: jnp.zeros(X.shape * 2, X.dtype),
        hessian_latex=r"0",
        jacobian=None,
        domain="X: m x n; A: p x n; B: m x p",
        reference=f"{MC} (102)",
    ),
    Entry(
        name="frobenius_inner_product",
        fun=lambda X, A: jnp.trace(X.T @ A),
        sample=_draw(_normal(3, 4), _normal(3, 4)),
        latex=r"f(X) = \langle A, X \rangle = \operatorname{tr}(X^\top A)",
        grad=lambda X, A: A,
        grad_latex=r"A",
        hessian=lambda X, A: jnp.zeros(X.shape * 2, X.dtype),
        hessian_latex=r"0",
        jacobian=None,
        domain="X, A: m x n",
        reference=f"lecture, d<X, Y> = <dX, Y> + <X, dY>; {MC} (103)",
    ),
    Entry(
        name="trace_square",
        fun=lambda X: jnp.trace(X @ X),
        sample=_draw(_normal(3, 3)),
        latex=r"f(X) = \operatorname{tr}(X^2)",
        grad=lambda X: 2 * X.T,
        grad_latex=r"2 X^\top",
        hessian=lambda X: 2 * jnp.einsum("jk,il->ijkl", _eye(X), _eye(X)),
        hessian_latex=(
            r"H_{ijkl} = 2 \delta_{jk} \delta_{il}, \text{ i.e. } 2 K_{nn} "
            r"\text{ (the commutation matrix)}"
        ),
        jacobian=None,
        domain="X: n x n",
        reference=f"{MC} (106)",
    ),
    Entry(
        name="trace_square_B",
        fun=lambda X, B: jnp.trace(X @ X @ B),
        sample=_draw(_normal(3, 3), _normal(3, 3)),
        latex=r"f(X) = \operatorname{tr}(X^2 B)",
        grad=lambda X, B: (X @ B + B @ X).T,
        grad_latex=r"(X B + B X)^\top",
        hessian=lambda X, B: (
            jnp.einsum("jk,li->ijkl", _eye(X), B) + jnp.einsum("jk,li->ijkl", B, _eye(X))
        ),
        hessian_latex=r"H_{ijkl} = \delta_{jk} B_{li} + B_{jk} \delta_{li}",
        jacobian=None,
        domain="X, B: n x n",
        reference=f"{MC} (107)",
    ),
    Entry(
        name="trace_XtBX",
        fun=lambda X, B: jnp.trace(X.T @ B @ X),
        sample=_draw(_normal(3, 4), _normal(3, 3)),
        latex=r"f(X) = \operatorname{tr}(X^\top B X)",
        grad=lambda X, B: B @ X + B.T @ X,
        grad_latex=r"B X + B^\top X",
        hessian=lambda X, B: jnp.einsum("ik,jl->ijkl", B + B.T, jnp.eye(X.shape[1], dtype=X.dtype)),
        hessian_latex=(
            r"H_{ijkl} = (B + B^\top)_{ik} \delta_{jl}, \text{ i.e. } I_n \otimes (B + B^\top)"
        ),
        jacobian=None,
        domain="X: m x n; B: m x m",
        reference=f"{MC} (108); {MN}, ch. 10",
    ),
    Entry(
        name="trace_XBXt",
        fun=lambda X, B: jnp.trace(X @ B @ X.T),
        sample=_draw(_normal(3, 4), _normal(4, 4)),
        latex=r"f(X) = \operatorname{tr}(X B X^\top)",
        grad=lambda X, B: X @ B.T + X @ B,
        grad_latex=r"X B^\top + X B",
        hessian=lambda X, B: jnp.einsum("ik,lj->ijkl", jnp.eye(X.shape[0], dtype=X.dtype), B + B.T),
        hessian_latex=(
            r"H_{ijkl} = \delta_{ik} (B + B^\top)_{lj}, \text{ i.e. } (B + B^\top) \otimes I_m"
        ),
        jacobian=None,
        domain="X: m x n; B: n x n",
        reference=f"{MC} (111)",
    ),
    Entry(
        name="trace_XtX",
        fun=lambda X: jnp.trace(X.T @ X),
        sample=_draw(_normal(3, 4)),
        latex=r"f(X) = \operatorname{tr}(X^\top X)",
        grad=lambda X: 2 * X,
        grad_latex=r"2 X",
        hessian=lambda X: (
            2
            * jnp.einsum(
                "ik,jl->ijkl",
                jnp.eye(X.shape[0], dtype=X.dtype),
                jnp.eye(X.shape[1], dtype=X.dtype),
            )
        ),
        hessian_latex=r"H_{ijkl} = 2 \delta_{ik} \delta_{jl}, \text{ i.e. } 2 I",
        jacobian=None,
        domain="X: m x n",
        reference=f"{MC} (115)",
    ),
    Entry(
        name="trace_AXBX",
        fun=lambda X, A, B: jnp.trace(A @ X @ B @ X),
        sample=_draw(_normal(3, 4), _normal(4, 3), _normal(4, 3)),
        latex=r"f(X) = \operatorname{tr}(A X B X)",
        grad=lambda X, A, B: A.T @ X.T @ B.T + B.T @ X.T @ A.T,
        grad_latex=r"A^\top X^\top B^\top + B^\top X^\top A^\top",
        hessian=lambda X, A, B: jnp.einsum("li,jk->ijkl", A, B) + jnp.einsum("li,jk->ijkl", B, A),
        hessian_latex=r"H_{ijkl} = A_{li} B_{jk} + B_{li} A_{jk}",
        jacobian=None,
        domain="X: m x n; A: n x m; B: n x m",
        reference=f"{MC} (114)",
    ),
    Entry(
        name="trace_BtXtCXB",
        fun=lambda X, B, C: jnp.trace(B.T @ X.T @ C @ X @ B),
        sample=_draw(_normal(3, 4), _normal(4, 2), _normal(3, 3)),
        latex=r"f(X) = \operatorname{tr}(B^\top X^\top C X B)",
        grad=lambda X, B, C: C.T @ X @ B @ B.T + C @ X @ B @ B.T,
        grad_latex=r"C^\top X B B^\top + C X B B^\top",
        hessian=lambda X, B, C: jnp.einsum("ik,lj->ijkl", C + C.T, B @ B.T),
        hessian_latex=(
            r"H_{ijkl} = (C + C^\top)_{ik} (B B^\top)_{lj}, \text{ i.e. } "
            r"B B^\top \otimes (C + C^\top)"
        ),
        jacobian=None,
        domain="X: m x n; B: n x p; C: m x m",
        reference=f"{MC} (116)",
    ),
    Entry(
        name="trace_XtBXC",
        fun=lambda X, B, C: jnp.trace(X.T @ B @ X @ C),
        sample=_draw(_normal(3, 4), _normal(3, 3), _normal(4, 4)),
        latex=r"f(X) = \operatorname{tr}(X^\top B X C)",
        grad=lambda X, B, C: B @ X @ C + B.T @ X @ C.T,
        grad_latex=r"B X C + B^\top X C^\top",
        hessian=lambda X, B, C: jnp.einsum("ik,lj->ijkl", B, C) + jnp.einsum("ki,jl->ijkl", B, C),
        hessian_latex=(
            r"H_{ijkl} = B_{ik} C_{lj} + B_{ki} C_{jl}, \text{ i.e. } "
            r"C^\top \otimes B + C \otimes B^\top"
        ),
        jacobian=None,
        domain="X: m x n; B: m x m; C: n x n",
        reference=f"{MC} (117); {MN}, ch. 10",
    ),
    Entry(
        name="trace_AXBXtC",
        fun=lambda X, A, B, C: jnp.trace(A @ X @ B @ X.T @ C),
        sample=_draw(_normal(3, 4), _normal(2, 3), _normal(4, 4), _normal(3, 2)),
        latex=r"f(X) = \operatorname{tr}(A X B X^\top C)",
        grad=lambda X, A, B, C: A.T @ C.T @ X @ B.T + C @ A @ X @ B,
        grad_latex=r"A^\top C^\top X B^\top + C A X B",
        hessian=lambda X, A, B, C: (
            jnp.einsum("ki,jl->ijkl", C @ A, B) + jnp.einsum("ik,lj->ijkl", C @ A, B)
        ),
        hessian_latex=r"H_{ijkl} = (C A)_{ki} B_{jl} + (C A)_{ik} B_{lj}",
        jacobian=None,
        domain="X: m x n; A: p x m; B: n x n; C: m x p",
        reference=f"{MC} (118)",
    ),
    Entry(
        name="trace_affine_gram",
        fun=lambda X, A, B, C: jnp.trace((A @ X @ B + C) @ (A @ X @ B + C).T),
        sample=_draw(_normal(3, 4), _normal(2, 3), _normal(4, 5), _normal(2, 5)),
        latex=r"f(X) = \operatorname{tr}\left((A X B + C)(A X B + C)^\top\right)",
        grad=lambda X, A, B, C: 2 * A.T @ (A @ X @ B + C) @ B.T,
        grad_latex=r"2 A^\top (A X B + C) B^\top",
        hessian=lambda X, A, B, C: 2 * jnp.einsum("ik,lj->ijkl", A.T @ A, B @ B.T),
        hessian_latex=(
            r"H_{ijkl} = 2 (A^\top A)_{ik} (B B^\top)_{lj}, \text{ i.e. } "
            r"2\, B B^\top \otimes A^\top A"
        ),
        jacobian=None,
        domain="X: m x n; A: p x m; B: n x q; C: p x q",
        reference=f"{MC} (119)",
    ),
    Entry(
        name="trace_squared",
        fun=lambda X: jnp.trace(X) ** 2,
        sample=_draw(_normal(3, 3)),
        latex=r"f(X) = (\operatorname{tr} X)^2",
        grad=lambda X: 2 * jnp.trace(X) * _eye(X),
        grad_latex=r"2 \operatorname{tr}(X) I",
        hessian=lambda X: 2 * jnp.einsum("ij,kl->ijkl", _eye(X), _eye(X)),
        hessian_latex=(
            r"H_{ijkl} = 2 \delta_{ij} \delta_{kl}, \text{ i.e. } "
            r"2 \operatorname{vec}(I) \operatorname{vec}(I)^\top"
        ),
        jacobian=None,
        domain="X: n x n",
        reference=f"{MC} (120)",
    ),
    Entry(
        name="trace_cube",
        fun=lambda X: jnp.trace(X @ X @ X),
        sample=_draw(_normal(3, 3)),
        latex=r"f(X) = \operatorname{tr}(X^3)",
        grad=lambda X: 3 * (X @ X).T,
        grad_latex=r"3 (X^2)^\top",
        hessian=lambda X: (
            3 * (jnp.einsum("jk,li->ijkl", _eye(X), X) + jnp.einsum("jk,li->ijkl", X, _eye(X)))
        ),
        hessian_latex=r"H_{ijkl} = 3 (\delta_{jk} X_{li} + X_{jk} \delta_{li})",
        jacobian=None,
        domain="X: n x n",
        reference=f"{MC} (121) with k = 3",
    ),
    Entry(
        name="trace_AX3",
        fun=lambda X, A: jnp.trace(A @ X @ X @ X),
        sample=_draw(_normal(3, 3), _normal(3, 3)),
        latex=r"f(X) = \operatorname{tr}(A X^3)",
        grad=lambda X, A: (A @ X @ X + X @ A @ X + X @ X @ A).T,
        grad_latex=r"\sum_{r=0}^{2} (X^r A X^{2-r})^\top",
        hessian=lambda X, A: (
            jnp.einsum("jk,li->ijkl", A, X)
            + jnp.einsum("jk,li->ijkl", X, A)
            + jnp.einsum("jk,li->ijkl", A @ X + X @ A, _eye(X))
            + jnp.einsum("jk,li->ijkl", _eye(X), A @ X + X @ A)
        ),
        hessian_latex=(
            r"H_{ijkl} = A_{jk} X_{li} + X_{jk} A_{li} + (A X + X A)_{jk} \delta_{li} "
            r"+ \delta_{jk} (A X + X A)_{li}"
        ),
        jacobian=None,
        domain="X, A: n x n",
        reference=f"{MC} (122) with k = 3",
    ),
    Entry(
        name="frobenius_norm_squared",
        fun=lambda X: jnp.sum(X**2),
        sample=_draw(_normal(3, 4)),
        latex=r"f(X) = \lVert X \rVert_F^2",
        grad=lambda X: 2 * X,
        grad_latex=r"2 X",
        hessian=lambda X: (
            2
            * jnp.einsum(
                "ik,jl->ijkl",
                jnp.eye(X.shape[0], dtype=X.dtype),
                jnp.eye(X.shape[1], dtype=X.dtype),
            )
        ),
        hessian_latex=r"H_{ijkl} = 2 \delta_{ik} \delta_{jl}",
        jacobian=None,
        domain="X: m x n",
        reference=f"{MC} §2.7.1",
    ),
    Entry(
        name="frobenius_norm",
        fun=lambda X: jnp.linalg.norm(X),
        sample=_draw(_normal(3, 4)),
        latex=r"f(X) = \lVert X \rVert_F",
        grad=lambda X: X / jnp.sqrt(jnp.sum(X**2)),
        grad_latex=r"\frac{X}{\lVert X \rVert_F}",
        hessian=lambda X: (
            jnp.einsum(
                "ik,jl->ijkl",
                jnp.eye(X.shape[0], dtype=X.dtype),
                jnp.eye(X.shape[1], dtype=X.dtype),
            )
            / jnp.sqrt(jnp.sum(X**2))
            - jnp.einsum("ij,kl->ijkl", X, X) / jnp.sum(X**2) ** 1.5
        ),
        hessian_latex=(
            r"H_{ijkl} = \frac{\delta_{ik} \delta_{jl}}{\lVert X \rVert_F} "
            r"- \frac{X_{ij} X_{kl}}{\lVert X \rVert_F^3}"
        ),
        jacobian=None,
        domain="X: m x n, nonzero",
        reference=f"{MC} §2.7.1 and the chain rule",
    ),
    Entry(
        name="frobenius_residual",
        fun=lambda X, A, B: jnp.sum((A @ X - B) ** 2),
        sample=_draw(_normal(3, 4), _normal(5, 3), _normal(5, 4)),
        latex=r"f(X) = \lVert A X - B \rVert_F^2",
        grad=lambda X, A, B: 2 * A.T @ (A @ X - B),
        grad_latex=r"2 A^\top (A X - B)",
        hessian=lambda X, A, B: (
            2 * jnp.einsum("ik,jl->ijkl", A.T @ A, jnp.eye(X.shape[1], dtype=X.dtype))
        ),
        hessian_latex=(
            r"H_{ijkl} = 2 (A^\top A)_{ik} \delta_{jl}, \text{ i.e. } 2\, I_n \otimes A^\top A"
        ),
        jacobian=None,
        domain="X: m x n; A: p x m; B: p x n",
        reference=f"{MC} (119) with its B = I, C = -B",
    ),
    Entry(
        name="frobenius_residual_right",
        fun=lambda X, A, B: jnp.sum((X @ A - B) ** 2),
        sample=_draw(_normal(3, 4), _normal(4, 5), _normal(3, 5)),
        latex=r"f(X) = \lVert X A - B \rVert_F^2",
        grad=lambda X, A, B: 2 * (X @ A - B) @ A.T,
        grad_latex=r"2 (X A - B) A^\top",
        hessian=lambda X, A, B: (
            2 * jnp.einsum("ik,lj->ijkl", jnp.eye(X.shape[0], dtype=X.dtype), A @ A.T)
        ),
        hessian_latex=(
            r"H_{ijkl} = 2 \delta_{ik} (A A^\top)_{lj}, \text{ i.e. } 2\, A A^\top \otimes I_m"
        ),
        jacobian=None,
        domain="X: m x n; A: n x p; B: m x p",
        reference=f"{MC} (119) with its A = I, B = A, C = -B",
    ),
    Entry(
        name="gram_frobenius_squared",
        fun=lambda X: jnp.sum((X.T @ X) ** 2),
        sample=_draw(_normal(3, 4, scale=0.5)),
        latex=r"f(X) = \lVert X^\top X \rVert_F^2 = \operatorname{tr}(X^\top X X^\top X)",
        grad=lambda X: 4 * X @ X.T @ X,
        grad_latex=r"4 X X^\top X",
        hessian=lambda X: (
            4
            * (
                jnp.einsum("ik,lj->ijkl", jnp.eye(X.shape[0], dtype=X.dtype), X.T @ X)
                + jnp.einsum("il,kj->ijkl", X, X)
                + jnp.einsum("ik,lj->ijkl", X @ X.T, jnp.eye(X.shape[1], dtype=X.dtype))
            )
        ),
        hessian_latex=(
            r"H_{ijkl} = 4 \left(\delta_{ik} (X^\top X)_{lj} + X_{il} X_{kj} "
            r"+ (X X^\top)_{ik} \delta_{lj}\right)"
        ),
        jacobian=None,
        domain="X: m x n",
        reference=f"the lecture's product rule d(XY) = (dX) Y + X (dY); {MC} §2.5",
    ),
)


# ------------------------------------------------------------------------------------------
# Scalar forms in a matrix, matrix factorisation.

_MATRIX_FORMS: tuple[Entry, ...] = (
    Entry(
        name="bilinear_form",
        fun=lambda X, a, b: a @ X @ b,
        sample=_draw(_normal(3, 4), _normal(3), _normal(4)),
        latex=r"f(X) = a^\top X b",
        grad=lambda X, a, b: jnp.outer(a, b),
        grad_latex=r"a b^\top",
        hessian=lambda X, a, b: jnp.zeros(X.shape * 2, X.dtype),
        hessian_latex=r"0",
        jacobian=None,
        domain="X: m x n; a: m; b: n",
        reference=f"{MC} (70)",
    ),
    Entry(
        name="bilinear_form_transposed",
        fun=lambda X, a, b: a @ X.T @ b,
        sample=_draw(_normal(3, 4), _normal(4), _normal(3)),
        latex=r"f(X) = a^\top X^\top b",
        grad=lambda X, a, b: jnp.outer(b, a),
        grad_latex=r"b a^\top",
        hessian=lambda X, a, b: jnp.zeros(X.shape * 2, X.dtype),
        hessian_latex=r"0",
        jacobian=None,
        domain="X: m x n; a: n; b: m",
        reference=f"{MC} (71)",
    ),
    Entry(
        name="gram_bilinear_form",
        fun=lambda X, b, c: b @ X.T @ X @ c,
        sample=_draw(_normal(3, 4), _normal(4), _normal(4)),
        latex=r"f(X) = b^\top X^\top X c",
        grad=lambda X, b, c: X @ (jnp.outer(b, c) + jnp.outer(c, b)),
        grad_latex=r"X (b c^\top + c b^\top)",
        hessian=lambda X, b, c: jnp.einsum(
            "ik,lj->ijkl", jnp.eye(X.shape[0], dtype=X.dtype), jnp.outer(b, c) + jnp.outer(c, b)
        ),
        hessian_latex=(
            r"H_{ijkl} = \delta_{ik} (b c^\top + c b^\top)_{lj}, \text{ i.e. } "
            r"(b c^\top + c b^\top) \otimes I_m"
        ),
        jacobian=None,
        domain="X: m x n; b, c: n",
        reference=f"{MC} (77)",
    ),
    Entry(
        name="weighted_gram_bilinear_form",
        fun=lambda X, b, c, D: b @ X.T @ D @ X @ c,
        sample=_draw(_normal(3, 4), _normal(4), _normal(4), _normal(3, 3)),
        latex=r"f(X) = b^\top X^\top D X c",
        grad=lambda X, b, c, D: D.T @ X @ jnp.outer(b, c) + D @ X @ jnp.outer(c, b),
        grad_latex=r"D^\top X b c^\top + D X c b^\top",
        hessian=lambda X, b, c, D: (
            jnp.einsum("ki,l,j->ijkl", D, b, c) + jnp.einsum("ik,l,j->ijkl", D, c, b)
        ),
        hessian_latex=r"H_{ijkl} = D_{ki} b_l c_j + D_{ik} c_l b_j",
        jacobian=None,
        domain="X: m x n; b, c: n; D: m x m",
        reference=f"{MC} (82)",
    ),
    Entry(
        name="affine_quadratic_form_in_matrix",
        fun=lambda X, b, c, D: (X @ b + c) @ D @ (X @ b + c),
        sample=_draw(_normal(3, 4), _normal(4), _normal(3), _normal(3, 3)),
        latex=r"f(X) = (X b + c)^\top D (X b + c)",
        grad=lambda X, b, c, D: jnp.outer((D + D.T) @ (X @ b + c), b),
        grad_latex=r"(D + D^\top)(X b + c) b^\top",
        hessian=lambda X, b, c, D: jnp.einsum("ik,l,j->ijkl", D + D.T, b, b),
        hessian_latex=(
            r"H_{ijkl} = (D + D^\top)_{ik} b_j b_l, \text{ i.e. } b b^\top \otimes (D + D^\top)"
        ),
        jacobian=None,
        domain="X: m x n; b: n; c: m; D: m x m",
        reference=f"{MC} (83)",
    ),
    Entry(
        name="weighted_residual_in_A",
        fun=lambda A, x, s, W: (x - A @ s) @ W @ (x - A @ s),
        sample=_draw(_normal(4, 3), _normal(4), _normal(3), _symmetric(4)),
        latex=r"f(A) = (x - A s)^\top W (x - A s)",
        grad=lambda A, x, s, W: -2 * jnp.outer(W @ (x - A @ s), s),
        grad_latex=r"-2 W (x - A s) s^\top",
        hessian=lambda A, x, s, W: 2 * jnp.einsum("ik,l,j->ijkl", W, s, s),
        hessian_latex=r"H_{ijkl} = 2 W_{ik} s_j s_l, \text{ i.e. } 2\, s s^\top \otimes W",
        jacobian=None,
        domain="A: m x n; x: m; s: n; W: m x m, symmetric",
        reference=f"{MC} (88) (W symmetric)",
    ),
    Entry(
        name="power_bilinear_form",
        fun=lambda X, a, b: a @ X @ X @ X @ b,
        sample=_draw(_normal(3, 3), _normal(3), _normal(3)),
        latex=r"f(X) = a^\top X^3 b",
        grad=lambda X, a, b: (
            jnp.outer(a, b) @ (X @ X).T + X.T @ jnp.outer(a, b) @ X.T + (X @ X).T @ jnp.outer(a, b)
        ),
        grad_latex=r"\sum_{r=0}^{2} (X^r)^\top a b^\top (X^{2-r})^\top",
        hessian=lambda X, a, b: (
            jnp.einsum("i,jk,l->ijkl", a, _eye(X), X @ b)
            + jnp.einsum("k,li,j->ijkl", a, _eye(X), X @ b)
            + jnp.einsum("i,jk,l->ijkl", a, X, b)
            + jnp.einsum("k,li,j->ijkl", a, X, b)
            + jnp.einsum("i,jk,l->ijkl", X.T @ a, _eye(X), b)
            + jnp.einsum("k,li,j->ijkl", X.T @ a, _eye(X), b)
        ),
        hessian_latex=(
            r"H_{ijkl} = a_i \delta_{jk} (X b)_l + a_k \delta_{li} (X b)_j + a_i X_{jk} b_l "
            r"+ a_k X_{li} b_j + (X^\top a)_i \delta_{jk} b_l + (X^\top a)_k \delta_{li} b_j"
        ),
        jacobian=None,
        domain="X: n x n; a, b: n",
        reference=f"{MC} (91) with n = 3",
    ),
    Entry(
        name="matrix_factorisation_U",
        fun=lambda U, V, M: jnp.sum((U @ V.T - M) ** 2),
        sample=_draw(_normal(4, 2), _normal(3, 2), _normal(4, 3)),
        latex=r"f(U) = \lVert U V^\top - M \rVert_F^2",
        grad=lambda U, V, M: 2 * (U @ V.T - M) @ V,
        grad_latex=r"2 (U V^\top - M) V",
        hessian=lambda U, V, M: (
            2 * jnp.einsum("ik,lj->ijkl", jnp.eye(U.shape[0], dtype=U.dtype), V.T @ V)
        ),
        hessian_latex=(
            r"H_{ijkl} = 2 \delta_{ik} (V^\top V)_{lj}, \text{ i.e. } 2\, V^\top V \otimes I_m"
        ),
        jacobian=None,
        domain="U: m x r; V: n x r; M: m x n",
        reference=f"{MC} (119) with A = I, B = V^T, C = -M",
    ),
    Entry(
        name="matrix_factorisation_V",
        fun=lambda V, U, M: jnp.sum((U @ V.T - M) ** 2),
        sample=_draw(_normal(3, 2), _normal(4, 2), _normal(4, 3)),
        latex=r"f(V) = \lVert U V^\top - M \rVert_F^2",
        grad=lambda V, U, M: 2 * (U @ V.T - M).T @ U,
        grad_latex=r"2 (U V^\top - M)^\top U",
        hessian=lambda V, U, M: (
            2 * jnp.einsum("ik,lj->ijkl", jnp.eye(V.shape[0], dtype=V.dtype), U.T @ U)
        ),
        hessian_latex=(
            r"H_{ijkl} = 2 \delta_{ik} (U^\top U)_{lj}, \text{ i.e. } 2\, U^\top U \otimes I_n"
        ),
        jacobian=None,
        domain="V: n x r; U: m x r; M: m x n",
        reference=f"{MC} (119) on the transpose, (V U^T - M^T)",
    ),
    Entry(
        name="masked_matrix_factorisation",
        fun=lambda U, V, M, W: jnp.sum((W * (U @ V.T - M)) ** 2),
        sample=_draw(
            _normal(4, 2), _normal(3, 2), _normal(4, 3), _uniform(4, 3, low=0.0, high=1.0)
        ),
        latex=r"f(U) = \lVert W \odot (U V^\top - M) \rVert_F^2",
        grad=lambda U, V, M, W: 2 * (W**2 * (U @ V.T - M)) @ V,
        grad_latex=r"2 \left(W \odot W \odot (U V^\top - M)\right) V",
        hessian=lambda U, V, M, W: (
            2 * jnp.einsum("ik,ip,pj,pl->ijkl", jnp.eye(U.shape[0], dtype=U.dtype), W**2, V, V)
        ),
        hessian_latex=r"H_{ijkl} = 2 \delta_{ik} \sum_p W_{ip}^2 V_{pj} V_{pl}",
        jacobian=None,
        domain="U: m x r; V: n x r; M: m x n; W: m x n",
        reference=f"{MC} (119) row by row (weighted low-rank approximation)",
    ),
)


# ------------------------------------------------------------------------------------------
# Determinants and inverses. Y = X^{-1} in the Hessians.

_DETERMINANTS: tuple[Entry, ...] = (
    Entry(
        name="determinant",
        fun=lambda X: jnp.linalg.det(X),
        sample=_draw(_near_identity(3, 3)),
        latex=r"f(X) = \det X",
        grad=lambda X: jnp.linalg.det(X) * jnp.linalg.inv(X).T,
        grad_latex=r"\det(X) X^{-\top}",
        hessian=lambda X: (
            jnp.linalg.det(X)
            * (
                jnp.einsum("ji,lk->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X))
                - jnp.einsum("jk,li->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X))
            )
        ),
        hessian_latex=(
            r"H_{ijkl} = \det(X) \left(Y_{ji} Y_{lk} - Y_{jk} Y_{li}\right), \quad Y = X^{-1}"
        ),
        jacobian=None,
        domain="X: n x n, invertible",
        reference=f"lecture, d(det X) = det X <X^{{-T}}, dX>; {MC} (49); Giles (2008), determinant",
    ),
    Entry(
        name="log_det",
        fun=lambda X: jnp.log(jnp.linalg.det(X)),
        sample=_draw(_near_identity(3, 3)),
        latex=r"f(X) = \log \det X",
        grad=lambda X: jnp.linalg.inv(X).T,
        grad_latex=r"X^{-\top}",
        hessian=lambda X: -jnp.einsum("jk,li->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X)),
        hessian_latex=(
            r"H_{ijkl} = -(X^{-1})_{jk} (X^{-1})_{li}, \text{ i.e. } "
            r"d^2 f = -\operatorname{tr}(X^{-1} dX\, X^{-1} dX)"
        ),
        jacobian=None,
        domain="X: n x n, det > 0",
        reference=f"{MC} (43); {MN}, ch. 8",
    ),
    Entry(
        name="log_abs_det",
        fun=lambda X: jnp.linalg.slogdet(X)[1],
        sample=_draw(_negative_det(3)),
        latex=r"f(X) = \log \lvert \det X \rvert",
        grad=lambda X: jnp.linalg.inv(X).T,
        grad_latex=r"X^{-\top}",
        hessian=lambda X: -jnp.einsum("jk,li->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X)),
        hessian_latex=r"H_{ijkl} = -(X^{-1})_{jk} (X^{-1})_{li}",
        jacobian=None,
        domain="X: n x n, det < 0",
        reference=f"{MC} §2.1 (ln |det X|); {MN}, ch. 8",
    ),
    Entry(
        name="det_AXB",
        fun=lambda X, A, B: jnp.linalg.det(A @ X @ B),
        sample=_draw(_near_identity(3, 4), _near_identity(2, 3), _near_identity(4, 2)),
        latex=r"f(X) = \det(A X B)",
        grad=lambda X, A, B: jnp.linalg.det(A @ X @ B) * A.T @ jnp.linalg.inv(A @ X @ B).T @ B.T,
        grad_latex=(
            r"\det(A X B)\, A^\top (A X B)^{-\top} B^\top "
            r"\text{ (} \det(A X B) X^{-\top} \text{ for square } A, X, B \text{)}"
        ),
        hessian=lambda X, A, B: (
            lambda d, P: d * (jnp.einsum("ji,lk->ijkl", P, P) - jnp.einsum("li,jk->ijkl", P, P))
        )(jnp.linalg.det(A @ X @ B), B @ jnp.linalg.inv(A @ X @ B) @ A),
        hessian_latex=(
            r"H_{ijkl} = \det(M) \left(P_{ji} P_{lk} - P_{li} P_{jk}\right), "
            r"\quad M = A X B, \ P = B M^{-1} A"
        ),
        jacobian=None,
        domain="X: m x n; A: p x m; B: n x p; such that A X B is invertible",
        reference=f"{MC} §2.1 (square case: det(AXB) X^{{-T}}); Giles (2008), determinant",
    ),
    Entry(
        name="log_det_gram",
        fun=lambda X: jnp.log(jnp.linalg.det(X.T @ X)),
        sample=_draw(_near_identity(4, 3)),
        latex=r"f(X) = \log \det(X^\top X)",
        grad=lambda X: 2 * X @ jnp.linalg.inv(X.T @ X),
        grad_latex=r"2 X (X^\top X)^{-1} = 2 (X^{+})^\top",
        hessian=lambda X: (
            lambda C, Q: (
                2 * jnp.einsum("ik,lj->ijkl", jnp.eye(X.shape[0], dtype=X.dtype) - Q @ X.T, C)
                - 2 * jnp.einsum("il,kj->ijkl", Q, Q)
            )
        )(jnp.linalg.inv(X.T @ X), X @ jnp.linalg.inv(X.T @ X)),
        hessian_latex=(
            r"H_{ijkl} = 2 (I - X C X^\top)_{ik} C_{lj} - 2 (X C)_{il} (X C)_{kj}, "
            r"\quad C = (X^\top X)^{-1}"
        ),
        jacobian=None,
        domain="X: m x n, full column rank",
        reference=f"{MC} §2.1 (ln det(X^T X) = 2 (X^+)^T)",
    ),
    Entry(
        name="det_quadratic",
        fun=lambda X, A: jnp.linalg.det(X.T @ A @ X),
        sample=_draw(_near_identity(4, 3), _pd(4)),
        latex=r"f(X) = \det(X^\top A X)",
        grad=lambda X, A: (
            jnp.linalg.det(X.T @ A @ X)
            * (A @ X @ jnp.linalg.inv(X.T @ A @ X) + A.T @ X @ jnp.linalg.inv(X.T @ A.T @ X))
        ),
        grad_latex=(
            r"\det(X^\top A X) \left(A X (X^\top A X)^{-1} + A^\top X (X^\top A^\top X)^{-1}\right)"
        ),
        hessian=None,
        hessian_latex=None,
        jacobian=None,
        domain="X: m x n, full column rank; A: m x m, positive definite",
        reference=f"{MC} §2.1 (det(X^T A X), A not symmetric; 2 det(X^T A X) A X (X^T A X)^{{-1}} "
        "for symmetric A)",
    ),
    Entry(
        name="log_det_identity_plus_gram",
        fun=lambda X: jnp.log(jnp.linalg.det(jnp.eye(X.shape[0], dtype=X.dtype) + X @ X.T)),
        sample=_draw(_normal(3, 4)),
        latex=r"f(X) = \log \det(I + X X^\top)",
        grad=lambda X: 2 * jnp.linalg.inv(jnp.eye(X.shape[0], dtype=X.dtype) + X @ X.T) @ X,
        grad_latex=r"2 (I + X X^\top)^{-1} X",
        hessian=lambda X: (
            lambda C: (
                2 * jnp.einsum("ik,lj->ijkl", C, jnp.eye(X.shape[1], dtype=X.dtype) - X.T @ C @ X)
                - 2 * jnp.einsum("il,kj->ijkl", C @ X, C @ X)
            )
        )(jnp.linalg.inv(jnp.eye(X.shape[0], dtype=X.dtype) + X @ X.T)),
        hessian_latex=(
            r"H_{ijkl} = 2 C_{ik} (I - X^\top C X)_{lj} - 2 (C X)_{il} (C X)_{kj}, "
            r"\quad C = (I + X X^\top)^{-1}"
        ),
        jacobian=None,
        domain="X: m x n",
        reference=f"{MC} (43) and the chain rule; {MN}, ch. 8",
    ),
    Entry(
        name="det_inverse",
        fun=lambda X: jnp.linalg.det(jnp.linalg.inv(X)),
        sample=_draw(_near_identity(3, 3)),
        latex=r"f(X) = \det(X^{-1})",
        grad=lambda X: -jnp.linalg.det(jnp.linalg.inv(X)) * jnp.linalg.inv(X).T,
        grad_latex=r"-\det(X^{-1}) X^{-\top}",
        hessian=lambda X: (
            jnp.linalg.det(jnp.linalg.inv(X))
            * (
                jnp.einsum("ji,lk->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X))
                + jnp.einsum("jk,li->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X))
            )
        ),
        hessian_latex=r"H_{ijkl} = \det(X^{-1}) \left(Y_{ji} Y_{lk} + Y_{jk} Y_{li}\right)",
        jacobian=None,
        domain="X: n x n, invertible",
        reference=f"{MC} (62)",
    ),
    Entry(
        name="det_square",
        fun=lambda X: jnp.linalg.det(X @ X),
        sample=_draw(_near_identity(3, 3)),
        latex=r"f(X) = \det(X^2)",
        grad=lambda X: 2 * jnp.linalg.det(X @ X) * jnp.linalg.inv(X).T,
        grad_latex=r"2 \det(X^2) X^{-\top}",
        hessian=lambda X: (
            2
            * jnp.linalg.det(X @ X)
            * (
                2 * jnp.einsum("ji,lk->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X))
                - jnp.einsum("jk,li->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X))
            )
        ),
        hessian_latex=r"H_{ijkl} = 2 \det(X^2) \left(2 Y_{ji} Y_{lk} - Y_{jk} Y_{li}\right)",
        jacobian=None,
        domain="X: n x n, invertible",
        reference=f"{MC} §2.1 (det(X^k), k = 2)",
    ),
    Entry(
        name="trace_inverse",
        fun=lambda X: jnp.trace(jnp.linalg.inv(X)),
        sample=_draw(_near_identity(3, 3)),
        latex=r"f(X) = \operatorname{tr}(X^{-1})",
        grad=lambda X: -(jnp.linalg.inv(X) @ jnp.linalg.inv(X)).T,
        grad_latex=r"-(X^{-2})^\top",
        hessian=lambda X: (
            lambda Y: jnp.einsum("jk,li->ijkl", Y, Y @ Y) + jnp.einsum("jk,li->ijkl", Y @ Y, Y)
        )(jnp.linalg.inv(X)),
        hessian_latex=r"H_{ijkl} = Y_{jk} (Y^2)_{li} + (Y^2)_{jk} Y_{li}",
        jacobian=None,
        domain="X: n x n, invertible",
        reference=f"{MC} (63) with A = B = I",
    ),
    Entry(
        name="trace_AXinvB",
        fun=lambda X, A, B: jnp.trace(A @ jnp.linalg.inv(X) @ B),
        sample=_draw(_near_identity(3, 3), _normal(2, 3), _normal(3, 2)),
        latex=r"f(X) = \operatorname{tr}(A X^{-1} B)",
        grad=lambda X, A, B: -(jnp.linalg.inv(X) @ B @ A @ jnp.linalg.inv(X)).T,
        grad_latex=r"-(X^{-1} B A X^{-1})^\top",
        hessian=lambda X, A, B: (
            lambda Y: (
                jnp.einsum("jk,li->ijkl", Y, Y @ B @ A @ Y)
                + jnp.einsum("jk,li->ijkl", Y @ B @ A @ Y, Y)
            )
        )(jnp.linalg.inv(X)),
        hessian_latex=r"H_{ijkl} = Y_{jk} (Y B A Y)_{li} + (Y B A Y)_{jk} Y_{li}",
        jacobian=None,
        domain="X: n x n, invertible; A: p x n; B: n x p",
        reference=f"{MC} (63); Giles (2008), inverse",
    ),
    Entry(
        name="trace_inverse_shifted",
        fun=lambda X, A: jnp.trace(jnp.linalg.inv(X + A)),
        sample=_draw(_near_identity(3, 3), _normal(3, 3, scale=0.05)),
        latex=r"f(X) = \operatorname{tr}\left((X + A)^{-1}\right)",
        grad=lambda X, A: -(jnp.linalg.inv(X + A) @ jnp.linalg.inv(X + A)).T,
        grad_latex=r"-\left((X + A)^{-1} (X + A)^{-1}\right)^\top",
        hessian=lambda X, A: (
            lambda Y: jnp.einsum("jk,li->ijkl", Y, Y @ Y) + jnp.einsum("jk,li->ijkl", Y @ Y, Y)
        )(jnp.linalg.inv(X + A)),
        hessian_latex=(r"H_{ijkl} = Y_{jk} (Y^2)_{li} + (Y^2)_{jk} Y_{li}, \quad Y = (X + A)^{-1}"),
        jacobian=None,
        domain="X, A: n x n; such that X + A is invertible",
        reference=f"{MC} (64)",
    ),
    Entry(
        name="inverse_bilinear_form",
        fun=lambda X, a, b: a @ jnp.linalg.inv(X) @ b,
        sample=_draw(_near_identity(3, 3), _normal(3), _normal(3)),
        latex=r"f(X) = a^\top X^{-1} b",
        grad=lambda X, a, b: -jnp.outer(jnp.linalg.inv(X).T @ a, jnp.linalg.inv(X) @ b),
        grad_latex=r"-X^{-\top} a b^\top X^{-\top}",
        hessian=lambda X, a, b: (
            lambda Y, u, v: (
                jnp.einsum("k,li,j->ijkl", u, Y, v) + jnp.einsum("i,jk,l->ijkl", u, Y, v)
            )
        )(jnp.linalg.inv(X), jnp.linalg.inv(X).T @ a, jnp.linalg.inv(X) @ b),
        hessian_latex=(
            r"H_{ijkl} = u_k Y_{li} v_j + u_i Y_{jk} v_l, \quad u = X^{-\top} a, \ v = X^{-1} b"
        ),
        jacobian=None,
        domain="X: n x n, invertible; a, b: n",
        reference=f"{MC} (61); Giles (2008), inverse",
    ),
)


CATALOGUE: tuple[Entry, ...] = (
    _LECTURE + _VECTOR + _LOSSES + _JACOBIANS + _TRACES + _MATRIX_FORMS + _DETERMINANTS
)
"""Every entry; see `Entry`."""


def entry(name: str) -> Entry:
    """The catalogue's entry ``name``."""
    for e in CATALOGUE:
        if e.name == name:
            return e
    raise KeyError(f"jaxls.calculus.entry({name!r}): no such entry; see jaxls.calculus.CATALOGUE")


def catalogue_table() -> str:
    r"""The catalogue as a Markdown table: name, function, gradient (or Jacobian), Hessian,
    domain and reference, the formulas as inline LaTeX (``docs/catalogue.md`` is this).

    Example:
      >>> import jaxls.calculus as mc
      >>> print(mc.catalogue_table().splitlines()[0])
      | name | function | gradient or Jacobian | Hessian | domain | reference |
    """

    def cell(text: str | None, math: bool = False) -> str:
        if text is None:
            return ""
        text = " ".join(text.split()).replace("|", "\\|")
        return f"${text}$" if math else text

    rows = [
        "| name | function | gradient or Jacobian | Hessian | domain | reference |",
        "|---|---|---|---|---|---|",
    ]
    for e in CATALOGUE:
        derivative = e.grad_latex if e.grad is not None else e.jacobian_latex
        cells = (
            f"`{e.name}`",
            cell(e.latex, True),
            cell(derivative, True),
            cell(e.hessian_latex, True),
            cell(e.domain),
            cell(e.reference),
        )
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


__all__ = ["CATALOGUE", "Entry", "Sampler", "catalogue_table", "entry"]
