"""jaxls.calculus: conventions and layouts, differentials, the lecture's differential rules,
gradients read off differentials, the mistake diagnoser, and Schwarz's counterexample.

Oracles: `jax.grad` / `jax.jacfwd` / `jax.jvp` / `jax.hessian` for the AD-built
conventions; closed forms written here (the lecture's rules, Matrix Cookbook formulas)
for the differentials; nested finite differences for the mixed partials.
"""

from __future__ import annotations

import collections

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxls.ad
import jaxls.calculus as mc
from jaxls.calculus import Entry, Sampler
from tests.ad_zoo import fast_jit

DTYPES = [jnp.float32, jnp.float64]


def tol(dtype):
    """A comparison tolerance for a few dozen flops in ``dtype``."""
    return 2e-4 if dtype == jnp.float32 else 1e-10


def normal(key, shape, dtype):
    return jax.random.normal(key, shape, dtype)


def keys(seed, n):
    return jax.random.split(jax.random.key(seed), n)


# --- 1. conventions --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_of_a_matrix_function_has_its_shape(dtype, maybe_jit):
    k1, k2 = keys(0, 2)
    A, X = normal(k1, (3, 2), dtype), normal(k2, (2, 3), dtype)
    g = maybe_jit(mc.gradient(lambda X, A: jnp.trace(A @ X)))(X, A)
    assert g.shape == X.shape == (2, 3) and g.dtype == dtype
    A_, X_ = np.asarray(A), np.asarray(X)  # the closed forms in NumPy
    np.testing.assert_allclose(g, A_.T, rtol=tol(dtype))
    # several arguments, a pytree argument: one gradient per argument, shaped like it
    _, ga = mc.gradient(lambda X, A: jnp.trace(A @ X), argnums=(0, 1))(X, A)
    np.testing.assert_allclose(ga, X_.T, rtol=tol(dtype))
    tree = {"w": X, "b": jnp.asarray(A_[:, 0])}
    gt = mc.gradient(lambda p: jnp.sum(p["w"] ** 2) + jnp.sum(jnp.sin(p["b"])))(tree)
    assert jax.tree.structure(gt) == jax.tree.structure(tree)
    np.testing.assert_allclose(gt["w"], 2 * X_, rtol=tol(dtype))
    np.testing.assert_allclose(gt["b"], np.cos(A_[:, 0]), rtol=tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_hessian_is_the_transposed_jacobian_of_the_gradient(dtype):
    """The lecture's H = (J(grad f))^T, J in its (denominator) layout; on a matrix X the
    Hessian has shape X.shape + X.shape. Under jit (the doctests run them eagerly)."""
    k1, k2, k3 = keys(1, 3)
    A, x = normal(k1, (3, 3), dtype), normal(k2, (3,), dtype)
    f = lambda x: jnp.log(1 + (x @ A @ x) ** 2) + jnp.sum(jnp.sin(x)) * x[0]
    X = normal(k3, (2, 3), dtype)
    g = lambda X: jnp.sum(jnp.tanh(X @ X.T))

    @jax.jit
    def all_of_them(x, X):
        return (
            mc.hessian(f)(x),
            mc.jacobian(mc.gradient(f), layout="denominator")(x),
            mc.jacobian(mc.gradient(f), layout="numerator")(x),
            jax.hessian(f)(x),
            mc.hessian(g)(X),
        )

    H, J_den, J_num, H_jax, HX = jax.device_get(all_of_them(x, X))  # NumPy from here
    np.testing.assert_allclose(H, J_den.T, rtol=tol(dtype), atol=tol(dtype))
    np.testing.assert_allclose(H, J_num, rtol=tol(dtype), atol=tol(dtype))
    np.testing.assert_allclose(H, H_jax, rtol=tol(dtype), atol=tol(dtype))
    assert HX.shape == (2, 3, 2, 3) and HX.dtype == dtype
    np.testing.assert_allclose(
        HX.reshape(6, 6), HX.reshape(6, 6).T, rtol=tol(dtype), atol=tol(dtype)
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_jacobian_layouts_are_each_others_transpose(dtype):
    k1, k2 = keys(2, 2)
    A, x = normal(k1, (4, 3), dtype), normal(k2, (3,), dtype)
    f = lambda x: jnp.tanh(A @ x)
    J_num, J_den, J_jax = jax.device_get(  # one program, results in NumPy
        jax.jit(
            lambda x: (
                mc.jacobian(f, layout="numerator")(x),
                mc.jacobian(f, layout="denominator")(x),
                jax.jacfwd(f)(x),
            )
        )(x)
    )
    assert J_num.shape == (4, 3) and J_den.shape == (3, 4)  # m x n and the lecture's n x m
    np.testing.assert_allclose(J_num, J_jax, rtol=tol(dtype))
    np.testing.assert_allclose(J_den, J_num.T, rtol=tol(dtype))
    # the lecture's example: f(x, y) = (x + y, x - y) has J = [[1, 1], [1, -1]]
    g = lambda v: jnp.stack([v[0] + v[1], v[0] - v[1]])
    np.testing.assert_array_equal(
        mc.jacobian(g, layout="denominator")(jnp.ones(2, dtype)), [[1, 1], [1, -1]]
    )
    # pytrees: blocks out_shape + in_shape (numerator), in_shape + out_shape (denominator)
    X = jnp.asarray(np.asarray(A)[:2, :])  # 2 x 3

    def h(X, y):
        return {"v": X @ y, "s": jnp.sum(X) * y[0]}

    num, den, ref = jax.device_get(
        jax.jit(
            lambda X, x: (
                mc.jacobian(h, argnums=(0, 1), layout="numerator")(X, x),
                mc.jacobian(h, argnums=(0, 1), layout="denominator")(X, x),
                jax.jacfwd(h, argnums=(0, 1))(X, x),
            )
        )(X, x)
    )
    assert num["v"][0].shape == (2, 2, 3) and den["v"][0].shape == (2, 3, 2)
    assert num["v"][1].shape == (2, 3) and den["v"][1].shape == (3, 2)
    assert num["s"][0].shape == den["s"][0].shape == (2, 3)
    np.testing.assert_allclose(den["v"][0], np.transpose(num["v"][0], (1, 2, 0)))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=tol(dtype)), num, ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_differential_is_a_jvp_on_matrices_and_pytrees(dtype, maybe_jit):
    k1, k2, k3, k4 = keys(3, 4)
    X, Y = normal(k1, (3, 3), dtype), normal(k2, (3, 2), dtype)
    dX, dY = normal(k3, (3, 3), dtype), normal(k4, (3, 2), dtype)
    f = lambda p: jnp.sin(p[0]) @ p[1]
    df = maybe_jit(lambda p, dp: mc.differential(f, p, dp))((X, Y), (dX, dY))
    assert df.shape == (3, 2)
    X_, Y_, dX_, dY_ = jax.device_get((X, Y, dX, dY))  # the closed form in NumPy
    np.testing.assert_allclose(
        df, np.cos(X_) * dX_ @ Y_ + np.sin(X_) @ dY_, rtol=tol(dtype), atol=tol(dtype)
    )


# --- 2. the lecture's differential rules, as JVP identities -----------------------------------


def rules(X, Y, dX, dY, A, B, alpha, phi, dphi):
    """``{rule: (differential by jaxls.ad, the rule's right-hand side)}`` at one point."""
    d = mc.differential
    inner = lambda P, Q: jnp.sum(P * Q)
    Xi = jnp.linalg.inv(X)
    g = lambda X: X @ X.T + A
    F = lambda M: jnp.sum(jnp.tanh(M))
    f = lambda X: jnp.sum(jnp.sin(X @ B)) + jnp.trace(X @ X @ X)
    H = mc.hessian(f)(X).reshape(9, 9)
    J = mc.jacobian(mc.gradient(f), layout="denominator")(X).reshape(9, 9)
    return {
        "dA = 0": (d(lambda X: A, X, dX), jnp.zeros_like(A)),
        "d(alpha X) = alpha dX": (d(lambda X: alpha * X, X, dX), alpha * dX),
        "d(AXB) = A dX B": (d(lambda X: A @ X @ B, X, dX), A @ dX @ B),
        "d(X + Y) = dX + dY": (d(lambda p: p[0] + p[1], (X, Y), (dX, dY)), dX + dY),
        "d(X^T) = dX^T": (d(lambda X: X.T, X, dX), dX.T),
        "d(XY) = dX Y + X dY": (d(lambda p: p[0] @ p[1], (X, Y), (dX, dY)), dX @ Y + X @ dY),
        "d<X, Y> = <dX, Y> + <X, dY>": (
            d(lambda p: inner(*p), (X, Y), (dX, dY)),
            inner(dX, Y) + inner(X, dY),
        ),
        "d(X / phi) = (phi dX - dphi X) / phi^2": (
            d(lambda p: p[0] / p[1], (X, phi), (dX, dphi)),
            (phi * dX - dphi * X) / phi**2,
        ),
        "d det X = det X <X^-T, dX>": (
            d(jnp.linalg.det, X, dX),
            jnp.linalg.det(X) * inner(Xi.T, dX),
        ),
        "d tr X = <I, dX>": (d(jnp.trace, X, dX), inner(jnp.eye(3, dtype=X.dtype), dX)),
        "d F(g(X)) = dF/dg dg(X)": (d(lambda X: F(g(X)), X, dX), d(F, g(X), d(g, X, dX))),
        "H = (J(grad f))^T": (H, J.T),
        "d(X^-1) = -X^-1 dX X^-1": (d(jnp.linalg.inv, X, dX), -Xi @ dX @ Xi),
    }


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_lectures_differential_rules(dtype):
    """Each rule of the lecture, `differential` (a JVP) against its right-hand side, at a
    random point, in one jitted program."""
    ks = keys(4, 8)
    X = normal(ks[0], (3, 3), dtype) + 3 * jnp.eye(3, dtype=dtype)  # invertible
    Y, A, B = (normal(k, (3, 3), dtype) for k in ks[1:4])
    dX, dY = normal(ks[4], (3, 3), dtype), normal(ks[5], (3, 3), dtype)
    alpha, phi, dphi = (normal(k, (), dtype) for k in keys(5, 3))
    phi = phi + 2
    results = jax.jit(rules)(X, Y, dX, dY, A, B, alpha, phi, dphi)
    assert len(results) == 13
    for name, (lhs, rhs) in results.items():
        assert lhs.dtype == dtype, name
        np.testing.assert_allclose(
            lhs, rhs, rtol=10 * tol(dtype), atol=10 * tol(dtype), err_msg=name
        )


# --- 2. the mistake diagnoser -------------------------------------------------------------------


def classic(name, fun, sample, grad, hessian=None):
    return Entry(name, fun, sample, name, grad, "", hessian, "" if hessian else None, None, "", "")


def vec_mat(n=3, shift=0.0):
    """``sample(key, dtype) -> (x, A, b)``: a vector, a square matrix, a vector."""

    def sample(key, dtype):
        k1, k2, k3 = jax.random.split(key, 3)
        A = normal(k2, (n, n), dtype) + shift * jnp.eye(n, dtype=dtype)
        return normal(k1, (n,), dtype), A, normal(k3, (n,), dtype)

    return sample


def positive_form(key, dtype, n=3):
    """``(x, A)`` with ``x^T A x > 0``: ``A`` = positive definite + skew (not symmetric)."""
    k1, k2, k3 = jax.random.split(key, 3)
    M, K = normal(k2, (n, n), dtype), normal(k3, (n, n), dtype)
    return normal(k1, (n,), dtype), M @ M.T + jnp.eye(n, dtype=dtype) + (K - K.T)


def mat(*shapes, shift=0.0):
    """``sample(key, dtype) -> (X, *constants)`` of the given shapes; ``X`` shifted by
    ``shift I`` (square ``X``: invertible, positive determinant)."""

    def sample(key, dtype):
        ks = jax.random.split(key, len(shapes))
        arrays = [normal(k, s, dtype) for k, s in zip(ks, shapes, strict=True)]
        if shift:
            arrays[0] = arrays[0] + shift * jnp.eye(shapes[0][0], dtype=dtype)
        return tuple(arrays)

    return sample


def _eye(X):
    return jnp.eye(X.shape[0], dtype=X.dtype)


def _dot(i, j, n, m, dtype):
    return jnp.einsum("ik,jl->ijkl", jnp.eye(n, dtype=dtype), jnp.eye(m, dtype=dtype))


# Classic closed forms (Matrix Cookbook; Magnus & Neudecker), used with the catalogue while it
# has fewer than 25 entries. Hessians of matrix functions in JAX's (m, n, m, n) layout.
CLASSICS = (
    classic("linear", lambda x, A, b: b @ x, vec_mat(), lambda x, A, b: b),
    classic(
        "quadratic_form",
        lambda x, A, b: x @ A @ x,
        vec_mat(),
        lambda x, A, b: (A + A.T) @ x,
        lambda x, A, b: A + A.T,
    ),
    classic(
        "lecture_quadratic",
        lambda x, A, b: x @ A @ x - b @ x + 1.5,
        vec_mat(),
        lambda x, A, b: (A + A.T) @ x - b,
        lambda x, A, b: A + A.T,
    ),
    classic(
        "log_quadratic_form",
        lambda x, A: jnp.log(x @ A @ x),
        positive_form,
        lambda x, A: (A + A.T) @ x / (x @ A @ x),
        lambda x, A: (
            (A + A.T) / (x @ A @ x) - jnp.outer((A + A.T) @ x, (A + A.T) @ x) / (x @ A @ x) ** 2
        ),
    ),
    classic(
        "sqrt_quadratic_form",
        lambda x, A: jnp.sqrt(x @ A @ x),
        positive_form,
        lambda x, A: (A + A.T) @ x / (2 * jnp.sqrt(x @ A @ x)),
    ),
    classic(
        "bilinear",
        lambda x, A, b: b @ A @ x,
        vec_mat(),
        lambda x, A, b: A.T @ b,
    ),
    classic(
        "squared_norm",
        lambda x, A, b: x @ x,
        vec_mat(),
        lambda x, A, b: 2 * x,
        lambda x, A, b: 2 * jnp.eye(3, dtype=x.dtype),
    ),
    classic(
        "norm",
        lambda x, A, b: jnp.linalg.norm(x),
        vec_mat(),
        lambda x, A, b: x / jnp.linalg.norm(x),
        lambda x, A, b: (
            (jnp.eye(3, dtype=x.dtype) - jnp.outer(x, x) / (x @ x)) / jnp.linalg.norm(x)
        ),
    ),
    classic(
        "least_squares",
        lambda x, A, b: jnp.sum((A @ x - b) ** 2),
        mat((3,), (4, 3), (4,)),
        lambda x, A, b: 2 * A.T @ (A @ x - b),
        lambda x, A, b: 2 * A.T @ A,
    ),
    classic(
        "log_sum_exp",
        lambda x, A, b: jax.nn.logsumexp(x),
        vec_mat(),
        lambda x, A, b: jax.nn.softmax(x),
        lambda x, A, b: (
            jnp.diag(jax.nn.softmax(x)) - jnp.outer(jax.nn.softmax(x), jax.nn.softmax(x))
        ),
    ),
    classic(
        "rayleigh_quotient",
        lambda x, A, b: x @ A @ x / (x @ x),
        vec_mat(),
        lambda x, A, b: ((A + A.T) @ x - 2 * (x @ A @ x) / (x @ x) * x) / (x @ x),
    ),
    classic(
        "squared_linear",
        lambda x, A, b: (b @ x) ** 2,
        vec_mat(),
        lambda x, A, b: 2 * (b @ x) * b,
        lambda x, A, b: 2 * jnp.outer(b, b),
    ),
    classic(
        "sum_exp",
        lambda x, A, b: jnp.sum(jnp.exp(x)),
        vec_mat(),
        lambda x, A, b: jnp.exp(x),
        lambda x, A, b: jnp.diag(jnp.exp(x)),
    ),
    classic(
        "exp_bilinear",
        lambda x, A, b: jnp.exp(0.3 * b @ A @ x),
        vec_mat(),
        lambda x, A, b: 0.3 * jnp.exp(0.3 * b @ A @ x) * A.T @ b,
        lambda x, A, b: 0.09 * jnp.exp(0.3 * b @ A @ x) * jnp.outer(A.T @ b, A.T @ b),
    ),
    # functions of a matrix X
    classic(
        "trace_AX",
        lambda X, A: jnp.trace(A @ X),
        mat((2, 3), (3, 2)),
        lambda X, A: A.T,
    ),
    classic(
        "trace_AXB",
        lambda X, A, B: jnp.trace(A @ X @ B),
        mat((2, 3), (3, 2), (3, 3)),
        lambda X, A, B: A.T @ B.T,
    ),
    classic(
        "bilinear_aXb",
        lambda X, a, b: a @ X @ b,
        mat((2, 3), (2,), (3,)),
        lambda X, a, b: jnp.outer(a, b),
    ),
    classic(
        "trace_XtAX",
        lambda X, A: jnp.trace(X.T @ A @ X),
        mat((2, 3), (2, 2)),
        lambda X, A: (A + A.T) @ X,
        lambda X, A: jnp.einsum("ik,jl->ijkl", A + A.T, jnp.eye(3, dtype=X.dtype)),
    ),
    classic(
        "trace_XAXt",
        lambda X, A: jnp.trace(X @ A @ X.T),
        mat((2, 3), (3, 3)),
        lambda X, A: X @ (A + A.T),
        lambda X, A: jnp.einsum("ik,jl->ijkl", jnp.eye(2, dtype=X.dtype), A + A.T),
    ),
    classic(
        "trace_XtAXB",
        lambda X, A, B: jnp.trace(X.T @ A @ X @ B),
        mat((2, 3), (2, 2), (3, 3)),
        lambda X, A, B: A @ X @ B + A.T @ X @ B.T,
        lambda X, A, B: jnp.einsum("ik,lj->ijkl", A, B) + jnp.einsum("ki,jl->ijkl", A, B),
    ),
    classic(
        "frobenius",
        lambda X, A: jnp.sum(X * X),
        mat((2, 3), (2, 2)),
        lambda X, A: 2 * X,
        lambda X, A: (
            2 * jnp.einsum("ik,jl->ijkl", jnp.eye(2, dtype=X.dtype), jnp.eye(3, dtype=X.dtype))
        ),
    ),
    classic(
        "least_squares_matrix",
        lambda X, A, B: jnp.sum((A @ X - B) ** 2),
        mat((2, 3), (4, 2), (4, 3)),
        lambda X, A, B: 2 * A.T @ (A @ X - B),
        lambda X, A, B: 2 * jnp.einsum("ik,jl->ijkl", A.T @ A, jnp.eye(3, dtype=X.dtype)),
    ),
    classic(
        "determinant",
        lambda X: jnp.linalg.det(X),
        mat((3, 3), shift=3.0),
        lambda X: jnp.linalg.det(X) * jnp.linalg.inv(X).T,
    ),
    classic(
        "log_determinant",
        lambda X: jnp.linalg.slogdet(X)[1],
        mat((3, 3), shift=3.0),
        lambda X: jnp.linalg.inv(X).T,
        lambda X: -jnp.einsum("jk,li->ijkl", jnp.linalg.inv(X), jnp.linalg.inv(X)),
    ),
    classic(
        "lecture_S_X_logdet",
        lambda X, S: jnp.sum(S * X) - jnp.linalg.slogdet(X)[1],
        mat((3, 3), (3, 3), shift=3.0),
        lambda X, S: S - jnp.linalg.inv(X).T,
    ),
    classic(
        "trace_inverse",
        lambda X: jnp.trace(jnp.linalg.inv(X)),
        mat((3, 3), shift=3.0),
        lambda X: -(jnp.linalg.inv(X) @ jnp.linalg.inv(X)).T,
    ),
    classic(
        "trace_AXinv",
        lambda X, A: jnp.trace(A @ jnp.linalg.inv(X)),
        mat((3, 3), (3, 3), shift=3.0),
        lambda X, A: -(jnp.linalg.inv(X) @ A @ jnp.linalg.inv(X)).T,
    ),
    classic(
        "trace_XAX",
        lambda X, A: jnp.trace(X @ A @ X),
        mat((3, 3), (3, 3)),
        lambda X, A: (A @ X + X @ A).T,
        lambda X, A: (
            jnp.einsum("jk,il->ijkl", A, jnp.eye(3, dtype=X.dtype))
            + jnp.einsum("jk,li->ijkl", jnp.eye(3, dtype=X.dtype), A)
        ),
    ),
    classic(
        "trace_X_squared",
        lambda X: jnp.trace(X @ X),
        mat((3, 3)),
        lambda X: 2 * X.T,
    ),
    classic(
        "sum_log_sigmoid",
        lambda X, a: jnp.sum(jax.nn.log_sigmoid(X @ a)),
        mat((2, 3), (3,)),
        lambda X, a: jnp.outer(jax.nn.sigmoid(-(X @ a)), a),
    ),
)


def diagnosis_entries():
    """The catalogue's entries with a gradient, and the classic forms above."""
    catalogue = tuple(e for e in mc.CATALOGUE if e.grad is not None)
    names = {e.name for e in catalogue}
    return catalogue + tuple(e for e in CLASSICS if e.name not in names)


def _differs(value, right, scale, tol) -> bool:
    return value.shape != right.shape or bool(np.max(np.abs(value - right)) > tol * scale)


def _sample_points(entries, dtype, seed) -> list:
    """``entries[i].sample(jax.random.key(seed + i), dtype)`` for the entries whose sampler
    is a catalogue `Sampler` (None for the others): each draws its standard normals, and
    the transforms of all of them are one jitted function (eagerly, each sampler's small
    operations are compiled on their own, most of them for this alone). The points are
    those of the eager samplers but for the last bit of a few."""
    normals = {
        i: jax.random.normal(jax.random.key(seed + i), (entry.sample.draws,), dtype)
        for i, entry in enumerate(entries)
        if isinstance(entry.sample, Sampler)
    }
    points = fast_jit(lambda z: {i: entries[i].sample.transform(z[i]) for i in z})(normals)
    return [points.get(i) for i in range(len(entries))]


def wrong_derivatives(entries, dtype, seed=7, per_mistake=None):
    """Every (entry, order, mistake) where the mistake makes a difference at the entry's
    sample point: ``(name, order, mistake, f, formula, wrong, point)``, ``formula`` the
    right one. With ``per_mistake``, the first that many cases of each mistake, in the
    entries' order (a mistake that has its count is no longer evaluated, and the entries
    after every mistake has its count are not)."""
    cases = []
    counts: collections.Counter = collections.Counter()
    points = _sample_points(entries, dtype, seed)
    for i, entry in enumerate(entries):
        needed = [m for m in mc.MISTAKES if per_mistake is None or counts[m] < per_mistake]
        if not needed:
            break
        point = points[i]
        if point is None:
            point = entry.sample(jax.random.key(seed + i), dtype)
        for order, formula, mistakes in (
            (1, entry.grad, mc.GRADIENT_MISTAKES),
            (2, entry.hessian, mc.HESSIAN_MISTAKES),
        ):
            if formula is None:
                continue
            right = np.asarray(formula(*point))
            scale = np.max(np.abs(right)) + np.finfo(right.dtype).tiny
            for mistake in (m for m in mistakes if m in needed):
                wrong = mc.apply_mistake(mistake, formula)
                if _differs(np.asarray(wrong(*point)), right, scale, 1e-2):
                    counts[mistake] += 1
                    cases.append((entry.name, order, mistake, entry.fun, formula, wrong, point))
    return cases


def measure_diagnosis(cases):
    """``(named right, wrong derivatives called right, misses)`` over the cases. A mistake
    named other than the one made counts as right where the two give the same wrong
    formula at the point (they cannot be told apart there)."""
    right, called_right, misses = 0, 0, []
    for name, order, mistake, f, formula, wrong, point in cases:
        check = mc.check_gradient if order == 1 else mc.check_hessian
        result = check(f, wrong, *point, num_points=2)
        called_right += result.ok
        if result.mistake == mistake or _same_wrong(result.mistake, formula, wrong, point):
            right += 1
        else:
            misses.append((name, order, mistake, result.mistake, result.message))
    return right, called_right, misses


def _same_wrong(named, formula, wrong, point) -> bool:
    if named not in mc.MISTAKES:
        return False
    value = np.asarray(wrong(*point))
    scale = np.max(np.abs(value)) + np.finfo(value.dtype).tiny
    return not _differs(np.asarray(mc.apply_mistake(named, formula)(*point)), value, scale, 1e-3)


# JAXLS_FULL_DIAGNOSIS=1: every wrong derivative (539 cases from 111 entries, all named
# right in float32 and float64; ~45 s of CPU per dtype) and float64 too; by default the
# first 20 of each mistake (100 cases) in float32, JAX's default.
FULL_DIAGNOSIS = os.environ.get("JAXLS_FULL_DIAGNOSIS") == "1"


@pytest.mark.first  # one of the longest tests (tests/conftest.py)
@pytest.mark.parametrize("dtype", DTYPES if FULL_DIAGNOSIS else [jnp.float32])
def test_the_diagnoser_meets_its_target_on_the_catalogue(dtype):
    """The issue's target: at least 100 wrong derivatives built from the catalogue, the
    right mistake named for at least 95%, none called right (`FULL_DIAGNOSIS`: all)."""
    per_mistake = None if FULL_DIAGNOSIS else 20
    cases = wrong_derivatives(diagnosis_entries(), dtype, per_mistake=per_mistake)
    right, called_right, misses = measure_diagnosis(cases)
    print(f"{right} of {len(cases)} named right; {called_right} called right")
    assert len(cases) >= 100 and {case[2] for case in cases} == set(mc.MISTAKES)
    assert called_right == 0
    assert right >= 0.95 * len(cases), misses


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_conventions_in_half_precision_match_jax(dtype):
    """gradient, hessian, jacobian and differential in bfloat16 / float16: jax's results in
    the same dtype (the dtype kept, never a silent zero)."""
    k1, k2 = keys(11, 2)
    A, x = normal(k1, (3, 3), dtype), normal(k2, (3,), dtype)
    f = lambda x: jnp.sum(jnp.tanh(A @ x) ** 2)
    g = lambda x: jnp.sin(A @ x)
    ours = [
        mc.gradient(f)(x),
        mc.hessian(f)(x),
        mc.jacobian(g, layout="numerator")(x),
        mc.jacobian(g, layout="denominator")(x),
        mc.differential(f, x, x),
    ]
    # jax's, in one program (eagerly, its operations would be compiled one by one)
    theirs = fast_jit(
        lambda x: [
            jax.grad(f)(x),
            jax.hessian(f)(x),
            jax.jacrev(g)(x),
            jax.jacrev(g)(x).T,
            jax.jvp(f, (x,), (x,))[1],
        ]
    )(x)
    for value, reference in zip(ours, jax.device_get(theirs), strict=True):
        assert value.dtype == reference.dtype == dtype
        assert bool(np.any(reference != 0))
        np.testing.assert_allclose(
            np.asarray(value, np.float32),
            np.asarray(reference, np.float32),
            rtol=5e-2,
            atol=5e-2,
        )


def test_conventions_under_vmap_match_jax():
    """A batch of points: each member's gradient, Jacobian and differential is jax's."""
    k1, k2 = keys(12, 2)
    A, xs = normal(k1, (3, 3), jnp.float32), normal(k2, (5, 3), jnp.float32)
    f = lambda x: jnp.log(1 + (x @ A @ x) ** 2)
    g = lambda x: jnp.tanh(A @ x)

    def both(x):
        ours = (
            mc.gradient(f)(x),
            mc.jacobian(g, layout="denominator")(x),
            mc.differential(f, x, 2 * x),
        )
        return ours, (jax.grad(f)(x), jax.jacrev(g)(x).T, jax.jvp(f, (x,), (2 * x,))[1])

    ours, theirs = jax.jit(jax.vmap(both))(xs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape[0] == 5
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_gradient_on_matrices_and_pytrees(dtype):
    k1, k2, k3 = keys(8, 3)
    A, X, v = normal(k1, (3, 3), dtype), normal(k2, (3, 3), dtype), normal(k3, (3,), dtype)
    f = lambda p, A: jnp.trace(A @ p["X"]) + jnp.sum(p["v"] ** 2)
    right = lambda p, A: {"X": A.T, "v": 2 * p["v"]}
    point = {"X": X, "v": v}
    result = mc.check_gradient(f, right, point, A)
    assert result.ok and result.mistake is None and result.max_error <= 1e-5
    assert isinstance(result, mc.GradientCheck)
    transposed = lambda p, A: {"X": A, "v": 2 * p["v"]}
    result = mc.check_gradient(f, transposed, point, A)
    assert not result.ok and result.mistake == "transpose", result
    assert "layout" in result.message and "symmetrisation" in result.message  # coincide here
    # the inputs below made in NumPy (exactly): eagerly, each operation is a compilation
    A_, X_, v_ = jax.device_get((A, X, v))
    # a gradient of the transposed shape (3 x 2 for a 2 x 3 X): the layout mistake
    B, X23 = jnp.asarray(A_[:, :2]), jnp.asarray(X_[:2])
    result = mc.check_gradient(lambda X, B: jnp.trace(B @ X), lambda X, B: B, X23, B)
    assert (result.ok, result.mistake) == (False, "transpose")
    # x = 0 hides a factor of 2 at x itself: the perturbed points show it
    zero = jnp.asarray(0 * v_)
    result = mc.check_gradient(lambda v: jnp.sum(v**4) / 4, lambda v: 2 * v**3, zero)
    assert (result.ok, result.mistake) == (False, "factor_2")
    # on symmetric matrices X^2 is the gradient of tr(X^3)/3 (perturbations stay symmetric);
    # elsewhere it is the transpose of (X^2)^T
    cube, square = (lambda X: jnp.trace(X @ X @ X) / 3), (lambda X: X @ X)
    assert mc.check_gradient(cube, square, jnp.asarray(X_ + X_.T)).ok
    assert mc.check_gradient(cube, square, X).mistake == "transpose"


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_hessian_in_both_layouts(dtype):
    """JAX's (m, n, m, n) layout and the textbook's mn x mn matrix of vec X (columns
    stacked): B^T kron A + B kron A^T for tr(X^T A X B); the factors swapped are named."""
    k1, k2, k3 = keys(9, 3)
    A, B, X = normal(k1, (2, 2), dtype), normal(k2, (3, 3), dtype), normal(k3, (2, 3), dtype)
    f = lambda X, A, B: jnp.trace(X.T @ A @ X @ B)
    vec = lambda X, A, B: jnp.kron(B.T, A) + jnp.kron(B, A.T)
    assert mc.check_hessian(f, vec, X, A, B).ok
    tensor = mc.hessian(f)
    assert mc.check_hessian(f, tensor, X, A, B).ok
    swapped = lambda X, A, B: jnp.kron(A, B.T) + jnp.kron(A.T, B)
    assert mc.check_hessian(f, swapped, X, A, B).mistake == "kronecker"
    assert mc.check_hessian(f, mc.apply_mistake("kronecker", tensor), X, A, B).mistake == (
        "kronecker"
    )
    assert mc.check_hessian(f, mc.apply_mistake("kronecker", vec), X, A, B).mistake == ("kronecker")
    one_term = lambda X, A, B: jnp.kron(B.T, A)
    assert mc.check_hessian(f, one_term, X, A, B).mistake == "symmetrisation"
    result = mc.check_hessian(f, lambda X, A, B: -2 * vec(X, A, B), X, A, B)
    assert not result.ok and result.mistake is None  # two mistakes: not one of the usual


def test_check_gradient_names_no_mistake_it_cannot_see():
    A = jnp.array([[1.0, 2.0], [0.0, 1.0]])
    x = jnp.array([1.0, -1.0])
    f = lambda x, A: x @ A @ x
    result = mc.check_gradient(f, lambda x, A: -2 * (A + A.T) @ x, x, A)
    assert not result.ok and result.mistake is None and "none of the usual" in result.message
    # with a symmetric A the lecture's 2 A x is the gradient, and is called right
    S = A + A.T
    assert mc.check_gradient(f, lambda x, A: 2 * A @ x, x, S).ok
    # the half form A x (one term of the product rule dropped)
    result = mc.check_gradient(f, lambda x, A: A @ x, x, A)
    assert result.mistake == "symmetrisation" and "dropped" in result.message


# --- gradients read off differentials ----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_from_differential_reads_off_the_lectures_examples(dtype):
    """The lecture's three examples: df written by hand, the gradient read off it equals
    the gradient by AD; on a pytree too; under jit."""
    k1, k2, k3, k4 = keys(10, 4)
    M, x, b = normal(k1, (3, 3), dtype), normal(k2, (3,), dtype), normal(k3, (3,), dtype)
    A = M @ M.T + jnp.eye(3, dtype=dtype)  # positive definite: ln <x, A x> is defined
    X = normal(k4, (3, 3), dtype) + 3 * jnp.eye(3, dtype=dtype)
    S = M
    examples = [
        (lambda x: x @ A @ x - b @ x + 1.0, lambda x, dx: dx @ A @ x + x @ A @ dx - b @ dx, x),
        (lambda x: jnp.log(x @ A @ x), lambda x, dx: (dx @ A @ x + x @ A @ dx) / (x @ A @ x), x),
        (
            lambda X: jnp.sum(S * X) - jnp.linalg.slogdet(X)[1],
            lambda X, dX: jnp.sum(S * dX) - jnp.trace(jnp.linalg.solve(X, dX)),
            X,
        ),
        (
            lambda p: jnp.sum(p[0] @ p[1]),
            lambda p, dp: jnp.sum(dp[0] @ p[1] + p[0] @ dp[1]),
            (X, M),
        ),
    ]

    # the gradients by AD in one program (eagerly, each operation would be compiled alone)
    refs = jax.device_get(fast_jit(lambda: [mc.gradient(f)(p) for f, _, p in examples])())
    for (_, df, point), ref in zip(examples, refs, strict=True):
        g = mc.gradient_from_differential(df, point)
        for a, b_ in zip(jax.tree.leaves(g), jax.tree.leaves(ref), strict=True):
            assert a.dtype == dtype
            np.testing.assert_allclose(a, b_, rtol=10 * tol(dtype), atol=10 * tol(dtype))
    _, df, _ = examples[0]
    g = jax.jit(lambda x: mc.gradient_from_differential(df, x))(x)
    A_, x_, b_ = jax.device_get((A, x, b))  # the closed form in NumPy
    np.testing.assert_allclose(g, (A_ + A_.T) @ x_ - b_, rtol=10 * tol(dtype), atol=10 * tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_from_differential_refuses_a_differential_that_is_not_linear(dtype):
    X = jnp.asarray(np.eye(2) + 0.5, dtype)
    not_linear = {
        "quadratic in dX": lambda X, dX: jnp.sum(dX * dX),
        "an added constant": lambda X, dX: jnp.sum(X * dX) + 1.0,
        "a slightly curved dX": lambda X, dX: jnp.sum(X * dX) * (1 + 0.01 * jnp.sum(dX)),
        "|dX|": lambda X, dX: jnp.sum(jnp.abs(dX)),
    }
    for df in not_linear.values():
        with pytest.raises(ValueError, match=r"gradient_from_differential: `df` is not linear"):
            mc.gradient_from_differential(df, X)
    # under jit, where nothing can be raised on a value: NaN
    g = jax.jit(lambda X: mc.gradient_from_differential(not_linear["quadratic in dX"], X))(X)
    assert np.all(np.isnan(np.asarray(g)))
    # a linear one with large and cancelling terms is not refused (roundoff is allowed)
    big = lambda X, dX: 1e3 * jnp.sum(X * dX) - 1e3 * jnp.sum(X * dX) + jnp.sum(dX)
    np.testing.assert_allclose(mc.gradient_from_differential(big, X), np.ones((2, 2)), atol=1e-2)


# --- 5. Schwarz's counterexample ---------------------------------------------------------------


def naive_counterexample(p):
    """The counterexample with a single `where`: its derivatives at the origin are NaN."""
    x, y = p[0], p[1]
    r2 = x * x + y * y
    return jnp.where(r2 == 0, 0.0, x * y * (x * x - y * y) / r2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_schwarz_counterexample_mixed_partials_by_limits(dtype, maybe_jit):
    zero = jnp.zeros((), dtype)
    limits = maybe_jit(lambda x, y: mc.mixed_partials_by_limits(mc.schwarz_counterexample, x, y))
    p = limits(zero, zero)
    assert p.x_first.dtype == dtype
    np.testing.assert_allclose([p.x_first, p.y_first], [-1.0, 1.0], rtol=1e-4)
    # away from the origin the two orders agree (Schwarz), with AD's mixed partial
    f = lambda v: mc.schwarz_counterexample(v[0], v[1])
    point = jnp.array([0.7, -0.4], dtype)
    q = mc.mixed_partials_by_limits(mc.schwarz_counterexample, *point, eps=0.05, inner=0.1)
    H = np.asarray(fast_jit(mc.hessian(f))(point))
    np.testing.assert_allclose([q.x_first, q.y_first], [H[0, 1], H[1, 0]], rtol=1e-2)


def test_schwarz_counterexample_what_ad_returns():
    """At the origin AD differentiates the branch the program takes there, the constant 0:
    jaxls.ad and jax both return the zero Hessian (neither -1 nor +1); with a single
    `where`, both return NaN. Everywhere else the Hessian is symmetric, and its mixed
    partial tends to -1 along the y axis and to +1 along the x axis."""
    f = lambda v: mc.schwarz_counterexample(v[0], v[1])
    origin = jnp.zeros(2)
    for hessian in (jaxls.ad.hessian, jax.hessian):
        np.testing.assert_array_equal(hessian(f)(origin), np.zeros((2, 2)))
        assert bool(jnp.all(jnp.isnan(hessian(naive_counterexample)(origin))))
    points = jax.random.normal(jax.random.key(11), (16, 2))
    points = points.at[-2:].set(jnp.array([[0.0, 1e-3], [1e-3, 0.0]]))  # on the axes
    hs, hs_jax = jax.jit(lambda p: (jax.vmap(mc.hessian(f))(p), jax.vmap(jax.hessian(f))(p)))(
        points
    )
    np.testing.assert_allclose(hs[:, 0, 1], hs[:, 1, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hs, hs_jax, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hs[-2:, 0, 1], [-1.0, 1.0], rtol=1e-5)


# --- bad input: each a clear error naming the call and the argument ---------------------------


def test_bad_input_names_the_call_and_the_argument():
    x, X = jnp.ones(3), jnp.ones((2, 3))
    with pytest.raises(TypeError, match=r"calculus.gradient: `f` must return a real floating"):
        mc.gradient(lambda x: 2 * x)(x)
    with pytest.raises(TypeError, match=r"calculus.hessian: `f` must return a real floating"):
        mc.hessian(lambda x: (x, x))(x)
    with pytest.raises(TypeError, match=r"calculus.gradient: `f` must be callable"):
        mc.gradient(3.0)
    with pytest.raises(TypeError, match=r"calculus.gradient\(argnums='a'\)"):
        mc.gradient(jnp.sum, argnums="a")
    with pytest.raises(TypeError, match=r"jacobian: `layout` is required.*numerator.*denominator"):
        mc.jacobian(jnp.sin)
    with pytest.raises(ValueError, match=r"jacobian\(layout='row'\): `layout` must be.*numerator"):
        mc.jacobian(jnp.sin, layout="row")
    with pytest.raises(ValueError, match=r"calculus.differential: `dx` must have the structure"):
        mc.differential(jnp.sin, X, X.T)
    with pytest.raises(ValueError, match=r"calculus.differential: `dx`"):
        mc.differential(lambda p: p[0] @ p[1], (X, x), (X,))
    with pytest.raises(TypeError, match=r"gradient_from_differential: `df` must return a real"):
        mc.gradient_from_differential(lambda x, dx: dx, x)
    with pytest.raises(TypeError, match=r"gradient_from_differential: `df` must be callable"):
        mc.gradient_from_differential(None, x)
    with pytest.raises(TypeError, match=r"gradient_from_differential: `x` must be real"):
        mc.gradient_from_differential(lambda x, dx: jnp.sum(dx), jnp.arange(3))
    f = lambda X: jnp.sum(X**2)
    with pytest.raises(ValueError, match=r"check_gradient: `g` must return an array shaped"):
        mc.check_gradient(f, lambda X: X[0], X)
    with pytest.raises(ValueError, match=r"check_gradient: `g` must return"):
        mc.check_gradient(f, lambda X: (X, X), X)
    with pytest.raises(TypeError, match=r"check_gradient: `f` must return a real floating"):
        mc.check_gradient(lambda X: X, lambda X: X, X)
    with pytest.raises(TypeError, match=r"check_gradient: `g` must be callable"):
        mc.check_gradient(f, 2 * X, X)
    with pytest.raises(ValueError, match=r"check_gradient\(num_points=0\)"):
        mc.check_gradient(f, lambda X: 2 * X, X, num_points=0)
    with pytest.raises(ValueError, match=r"check_gradient\(rtol=-1\)"):
        mc.check_gradient(f, lambda X: 2 * X, X, rtol=-1)
    with pytest.raises(ValueError, match=r"check_gradient: AD's derivative of `f` at `x` is not"):
        mc.check_gradient(lambda v: jnp.sum(jnp.sqrt(v)), lambda v: v, jnp.zeros(3))
    with pytest.raises(ValueError, match=r"check_hessian: `h` must return the Hessian"):
        mc.check_hessian(f, lambda X: jnp.eye(6)[:5], X)
    with pytest.raises(TypeError, match=r"check_hessian: `x` must be one array"):
        mc.check_hessian(lambda p: p[0] @ p[1], lambda p: p, (x, x))
    with pytest.raises(ValueError, match=r"apply_mistake\(mistake='typo'\)"):
        mc.apply_mistake("typo", f)
    with pytest.raises(ValueError, match=r"mixed_partials_by_limits\(inner=2\)"):
        mc.mixed_partials_by_limits(mc.schwarz_counterexample, 0.0, 0.0, inner=2)
