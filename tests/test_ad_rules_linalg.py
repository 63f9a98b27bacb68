"""Tests of the linear-algebra AD rules (``lu``, ``triangular_solve``, ``cholesky``, ``eigh``,
``svd``, ``qr``, ``tridiagonal_solve``, ``eig``) and of the refusal of ``schur``.

Oracles: `jax.jvp` / `jax.vjp` of the primitive's ``bind``, central finite differences of the
primitive, closed forms (d log|det A| = A^{-T}), and the dot-product identity between each
JVP rule and its VJP rule.

Dtypes: float32 (JAX's default) and float64 (enabled per test by its dtype parameter, or by
the ``x64`` marker where a check needs float64: finite differences, complex128, closed
forms to 1e-10). Not bfloat16 or float16: the CPU kernels of these primitives (LAPACK) have
none (``NotImplementedError: Unsupported dtype bfloat16``, in jax too).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.ad_zoo import fast_jit
from tests.helpers import primitive_names as _primitive_names
from jax.lax import linalg as lax_linalg

import jaxls.ad as _ad
from jaxls._src.ad.registry import jvp_rules, vjp_rules
from jaxls._src.ad.rules import linalg  # noqa: F401  (registers the rules)

F64, F32, C128 = np.float64, np.float32, np.complex128
RTOL = {F64: 1e-10, F32: 2e-4, C128: 1e-10}
FINITE_DIFFERENCES = "central differences with h = 1e-6 need float64"
CLOSED_FORMS = "compared at 1e-10 with closed forms (complex128 or float64)"

# What the rules may emit: every one of these has a JVP rule of its own (or is integer-only).
ALLOWED = {
    "dot_general", "triangular_solve", "transpose", "add", "sub", "mul", "div", "neg",
    "select_n", "broadcast_in_dim", "iota", "eq", "ge", "reduce_sum",
    "convert_element_type", "conj", "real", "svd", "pad", "tridiagonal_solve", "lu", "eig",
    "abs", "argmax", "argmin",
}  # fmt: skip

TRI_FLAGS = ("left_side", "lower", "transpose_a", "conjugate_a", "unit_diagonal")


# ------------------------------------------------------------------------------------------
# Random, well-conditioned data: made in NumPy, put on the device by `jax.device_put` (an
# eager `jnp.asarray` of a NumPy array compiles a copy for each shape and dtype).


def _normal(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _unitary(rng, n, dtype):
    q, r = np.linalg.qr(_normal(rng, (n, n), np.complex128 if np.iscomplexobj(dtype(0)) else F64))
    return q * (np.diagonal(r) / np.abs(np.diagonal(r)))


def _general(rng, shape, dtype):
    """``Q1 diag(s) Q2`` with singular values in [1, 3]: condition number <= 3, pivots vary."""
    *batch, m, n = shape
    k = min(m, n)
    mats = []
    for _ in range(int(np.prod(batch, dtype=int))):
        s = rng.uniform(1.0, 3.0, k)
        mats.append(_unitary(rng, m, dtype)[:, :k] * s @ _unitary(rng, n, dtype)[:k, :])
    return jax.device_put(np.reshape(mats, shape).astype(dtype))


def _hermitian(rng, shape, dtype):
    """``Q diag(s) Q^H`` with well separated eigenvalues in [1, 3]."""
    *batch, n, _ = shape
    mats = []
    for _ in range(int(np.prod(batch, dtype=int))):
        s = np.linspace(1.0, 3.0, n) + rng.uniform(-0.1, 0.1, n)
        q = _unitary(rng, n, dtype)
        mats.append((q * s) @ q.conj().T)
    return jax.device_put(np.reshape(mats, shape).astype(dtype))


def _triangular(rng, shape, dtype, lower, unit_diagonal):
    """Triangular with |diagonal| in [1, 2] and small off-diagonals; the other triangle (and,
    if the diagonal is unit, the diagonal) holds large junk that the solve must not read."""
    n = shape[-1]
    x = _normal(rng, shape, dtype) / n
    diag = (rng.uniform(1.0, 2.0, shape[:-1]) * rng.choice([-1, 1], shape[:-1])).astype(dtype)
    x = x + diag[..., None] * np.eye(n, dtype=dtype)
    junk = 100 * _normal(rng, shape, dtype)
    keep = np.tril(np.ones((n, n), bool), -int(unit_diagonal))
    keep = keep if lower else keep.T
    return jax.device_put(np.where(keep, x, junk).astype(dtype))


# ------------------------------------------------------------------------------------------
# The generic check: rule JVP vs jax.jvp, rule VJP vs jax.vjp, dot-product identity, dtypes.


def _assert_close(actual, expected, rtol):
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    atol = rtol * max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def _pair(a, b):
    """Real part of the bilinear pairing sum(a * b): JAX's VJP convention for complex data."""
    return float(np.real(np.sum(np.asarray(a) * np.asarray(b))))


def _as_list(out, prim):
    return list(out) if prim.multiple_results else [out]


def check_rules(prim, primals, params=None, *, argnums=(0,), seed=0):
    """Check the registered JVP and VJP rules of ``prim`` at ``primals`` against JAX.

    Rules and oracles run in one `jax.jit` (one compilation per case keeps the file fast);
    `test_rules_under_jit_and_vmap` runs the rules eagerly too.
    """
    params = params or {}
    multiple = prim.multiple_results
    rng = np.random.default_rng(seed)
    rtol = RTOL[np.dtype(primals[0].dtype).type]
    bind = lambda *xs: _as_list(prim.bind(*xs, **params), prim)
    out_avals = jax.eval_shape(bind, *primals)
    floats = [i for i, o in enumerate(out_avals) if jnp.issubdtype(o.dtype, jnp.inexact)]
    tans = tuple(jax.device_put(_normal(rng, primals[i].shape, primals[i].dtype)) for i in argnums)
    cts = tuple(
        jax.device_put(_normal(rng, out_avals[i].shape, out_avals[i].dtype)) for i in floats
    )

    @fast_jit
    def compute(primals, tans, cts):
        def f(*diff):
            xs = list(primals)
            for i, x in zip(argnums, diff, strict=True):
                xs[i] = x
            res = bind(*xs)
            return tuple(res[i] for i in floats)

        diff = tuple(primals[i] for i in argnums)
        _, expected_t = jax.jvp(f, diff, tans)
        _, pullback = jax.vjp(f, *diff)
        expected_ct = pullback(cts)

        out = bind(*primals) if multiple else bind(*primals)[0]
        tangents = [None] * len(primals)
        for i, t in zip(argnums, tans, strict=True):
            tangents[i] = t
        t_rule = _as_list(jvp_rules[prim.name](primals, tuple(tangents), out, **params), prim)
        cts_rule = [None] * len(out_avals)
        for i, c in zip(floats, cts, strict=True):
            cts_rule[i] = c
        cts_rule = cts_rule if multiple else cts_rule[0]
        ct_rule = vjp_rules[prim.name](cts_rule, primals, out, **params)
        return t_rule, expected_t, ct_rule, expected_ct

    t_rule, expected_t, ct_rule, expected_ct = compute(tuple(primals), tans, cts)

    # JVP: tangents of the float outputs only.
    assert all(t_rule[i] is None for i in range(len(t_rule)) if i not in floats)
    t_rule = [t_rule[i] for i in floats]
    for actual, expected in zip(t_rule, expected_t, strict=True):
        _assert_close(actual, expected, rtol)

    # VJP: one cotangent per input, shaped and typed like it.
    assert len(ct_rule) == len(primals)
    for i, expected in zip(argnums, expected_ct, strict=True):
        assert ct_rule[i].shape == primals[i].shape and ct_rule[i].dtype == primals[i].dtype
        _assert_close(ct_rule[i], expected, rtol)

    # Dot-product identity <ct, J t> = <J^T ct, t>, exact up to rounding.
    lhs = sum(_pair(c, t) for c, t in zip(cts, t_rule, strict=True))
    rhs = sum(_pair(ct_rule[i], t) for i, t in zip(argnums, tans, strict=True))
    assert abs(lhs - rhs) <= 10 * rtol * (1 + abs(lhs))
    return t_rule, ct_rule


def check_finite_differences(fun, jvp, primals, tangents, h=1e-6):
    """A float64 JVP rule ``jvp(primals, tangents)`` against central differences of ``fun``,
    an oracle independent of JAX's rules (one `jax.jit`)."""

    @fast_jit
    def compute(primals, tangents):
        step = lambda sign: [x + sign * h * t for x, t in zip(primals, tangents, strict=True)]
        return (fun(*step(1)) - fun(*step(-1))) / (2 * h), jvp(primals, tangents)

    fd, t = compute(tuple(primals), tuple(tangents))
    np.testing.assert_allclose(t, fd, rtol=1e-7, atol=1e-7)


# ------------------------------------------------------------------------------------------
# lu.

SQUARE = [(1, 1), (3, 3), (6, 6), (2, 3, 3)]
RECTANGULAR = [(4, 3), (3, 5), (2, 5, 3)]


LU_CASES = [(shape, F64) for shape in SQUARE + RECTANGULAR] + [
    ((1, 1), F32),
    ((6, 6), F32),
    ((2, 3, 3), F32),
    ((3, 5), F32),
]


@pytest.mark.parametrize(("shape", "dtype"), LU_CASES)
def test_lu(shape, dtype):
    check_rules(lax_linalg.lu_p, (_general(np.random.default_rng(1), shape, dtype),))


@pytest.mark.x64(reason=CLOSED_FORMS)
def test_lu_complex():
    check_rules(lax_linalg.lu_p, (_general(np.random.default_rng(2), (3, 3), C128),))


def test_lu_data_pivots():
    """The square cases above exercise a non-trivial row permutation."""
    a = _general(np.random.default_rng(1), (6, 6), F32)
    _, _, permutation = lax_linalg.lu_p.bind(a)
    assert not np.array_equal(permutation, np.arange(6))


def test_lu_zero_cotangent_and_tangent():
    a = _general(np.random.default_rng(3), (3, 3), F32)
    out = list(lax_linalg.lu_p.bind(a))
    assert jvp_rules["lu"]((a,), (None,), out) == [None, None, None]
    assert vjp_rules["lu"]([None, None, None], (a,), out) == (None,)


@pytest.mark.x64(reason=FINITE_DIFFERENCES)
@pytest.mark.parametrize("shape", [(6, 6), (2, 5, 3)])
def test_lu_jvp_finite_differences(shape):
    rng = np.random.default_rng(4)
    a = _general(rng, shape, F64)
    da = jax.device_put(_normal(rng, shape, F64))
    lu = lambda x: lax_linalg.lu_p.bind(x)[0]
    jvp = lambda p, t: jvp_rules["lu"](p, t, list(lax_linalg.lu_p.bind(*p)))[0]
    check_finite_differences(lu, jvp, (a,), (da,))


@pytest.mark.x64(reason=CLOSED_FORMS)
@pytest.mark.parametrize("shape", [(1, 1), (2, 6, 6)])
def test_lu_log_abs_det(shape):
    """Composed by hand: log|det A| = sum log|diag U|, so its gradient through the lu rules
    is A^{-T} and its derivative along dA is trace(A^{-1} dA)."""
    rng = np.random.default_rng(5)
    a = _general(rng, shape, F64)
    da = jax.device_put(_normal(rng, shape, F64))

    @fast_jit
    def grad_and_slope(a, da):
        out = list(lax_linalg.lu_p.bind(a))
        u = out[0]
        n = u.shape[-1]
        is_diag = jnp.broadcast_to(jnp.eye(n, dtype=bool), u.shape)
        ct = jnp.where(is_diag, 1 / u, 0)  # d log|u_ii| / du_ii = 1 / u_ii
        (grad,) = vjp_rules["lu"]([ct, None, None], (a,), out)
        lu_dot = jvp_rules["lu"]((a,), (da,), out)[0]
        slope = jnp.sum(jnp.where(is_diag, lu_dot / u, 0), axis=(-2, -1))
        return grad, slope

    grad, slope = grad_and_slope(a, da)
    inv = np.linalg.inv(np.asarray(a))
    np.testing.assert_allclose(grad, np.swapaxes(inv, -1, -2), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        slope, np.trace(inv @ np.asarray(da), axis1=-2, axis2=-1), rtol=1e-10
    )


# ------------------------------------------------------------------------------------------
# triangular_solve.


def _tri_case(shape_a, n_rhs, dtype, flags, seed=0):
    rng = np.random.default_rng(seed)
    a = _triangular(rng, shape_a, dtype, flags["lower"], flags["unit_diagonal"])
    m = shape_a[-1]
    b_core = (m, n_rhs) if flags["left_side"] else (n_rhs, m)
    b = jax.device_put(_normal(rng, (*shape_a[:-2], *b_core), dtype))
    return a, b


ALL_FLAGS = [
    dict(zip(TRI_FLAGS, (ls, lo, tr, False, ud), strict=True))
    for ls in (True, False)
    for lo in (True, False)
    for tr in (True, False)
    for ud in (True, False)
]


@pytest.mark.parametrize("flags", ALL_FLAGS, ids=lambda f: "-".join(k for k, v in f.items() if v))
def test_triangular_solve_flags(flags):
    a, b = _tri_case((3, 3), 2, F32, flags)
    _, (a_bar, _) = check_rules(lax_linalg.triangular_solve_p, (a, b), flags, argnums=(0, 1))
    # The cotangent of a lives on the triangle the solve reads.
    k = int(flags["unit_diagonal"])
    read = np.tril(np.ones((3, 3), bool), -k)
    read = read if flags["lower"] else read.T
    assert np.all(np.asarray(a_bar)[~read] == 0)


@pytest.mark.parametrize(
    ("shape_a", "dtype", "left_side"),
    [
        ((1, 1), F64, True),
        ((6, 6), F64, False),
        ((2, 3, 3), F64, True),
        ((1, 1), F32, False),
        ((6, 6), F32, True),
        ((2, 3, 3), F32, False),
    ],
)
def test_triangular_solve_shapes(shape_a, dtype, left_side):
    flags = dict(left_side=left_side, lower=True, transpose_a=True, conjugate_a=False,
                 unit_diagonal=False)  # fmt: skip
    a, b = _tri_case(shape_a, 4, dtype, flags, seed=1)
    check_rules(lax_linalg.triangular_solve_p, (a, b), flags, argnums=(0, 1))


@pytest.mark.x64(reason=CLOSED_FORMS)
@pytest.mark.parametrize("transpose_a", [True, False])
@pytest.mark.parametrize("conjugate_a", [True, False])
def test_triangular_solve_complex(transpose_a, conjugate_a):
    flags = dict(left_side=True, lower=False, transpose_a=transpose_a, conjugate_a=conjugate_a,
                 unit_diagonal=False)  # fmt: skip
    a, b = _tri_case((3, 3), 2, C128, flags, seed=2)
    check_rules(lax_linalg.triangular_solve_p, (a, b), flags, argnums=(0, 1))


@pytest.mark.parametrize("argnums", [(0,), (1,)])
def test_triangular_solve_one_argument(argnums):
    """A symbolic-zero tangent (None) for a or b."""
    flags = dict(left_side=False, lower=True, transpose_a=False, conjugate_a=False,
                 unit_diagonal=True)  # fmt: skip
    a, b = _tri_case((3, 3), 2, F32, flags, seed=3)
    check_rules(lax_linalg.triangular_solve_p, (a, b), flags, argnums=argnums)
    assert jvp_rules["triangular_solve"]((a, b), (None, None), b, **flags) is None


@pytest.mark.x64(reason=FINITE_DIFFERENCES)
def test_triangular_solve_jvp_finite_differences():
    flags = dict(left_side=True, lower=False, transpose_a=True, conjugate_a=False,
                 unit_diagonal=True)  # fmt: skip
    rng = np.random.default_rng(6)
    a, b = _tri_case((2, 4, 4), 3, F64, flags, seed=6)
    da, db = (jax.device_put(_normal(rng, x.shape, F64)) for x in (a, b))
    solve = lambda a, b: lax_linalg.triangular_solve_p.bind(a, b, **flags)
    jvp = lambda p, t: jvp_rules["triangular_solve"](p, t, solve(*p), **flags)
    check_finite_differences(solve, jvp, (a, b), (da, db))


# ------------------------------------------------------------------------------------------
# cholesky.


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape", SQUARE)
def test_cholesky(shape, dtype):
    check_rules(lax_linalg.cholesky_p, (_hermitian(np.random.default_rng(7), shape, dtype),))


@pytest.mark.x64(reason=CLOSED_FORMS)
def test_cholesky_complex():
    check_rules(lax_linalg.cholesky_p, (_hermitian(np.random.default_rng(8), (3, 3), C128),))


def test_cholesky_conventions():
    """JAX's conventions, matched: L = tril(out) whatever the primitive leaves above the
    diagonal; the upper triangle gets a zero tangent; the input cotangent of the primitive is
    not symmetric, and ``jnp.linalg.cholesky``'s symmetrisation (A + A^T) / 2 turns it into
    (A_bar + A_bar^T) / 2; cotangents above the diagonal of the output are ignored."""
    rng = np.random.default_rng(9)
    a = _hermitian(rng, (4, 4), F32)
    da, l_bar = (jax.device_put(_normal(rng, (4, 4), F32)) for _ in range(2))

    @fast_jit
    def compute(a, da, l_bar):
        out = lax_linalg.cholesky_p.bind(a)
        dl = jvp_rules["cholesky"]((a,), (da,), out)
        (a_bar,) = vjp_rules["cholesky"](jnp.tril(l_bar), (a,), out)
        (a_bar_full,) = vjp_rules["cholesky"](l_bar, (a,), out)
        (expected,) = jax.vjp(jnp.linalg.cholesky, a)[1](l_bar)
        return dl, a_bar, a_bar_full, expected

    dl, a_bar, a_bar_full, expected = compute(a, da, l_bar)
    assert np.all(np.triu(np.asarray(dl), 1) == 0)
    assert not np.allclose(a_bar, a_bar.T)
    np.testing.assert_allclose(expected, (a_bar + a_bar.T) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a_bar_full, a_bar, rtol=1e-5, atol=1e-6)


@pytest.mark.x64(reason=FINITE_DIFFERENCES)
def test_cholesky_jvp_finite_differences():
    """For a symmetric dA (the only direction the symmetrised caller produces) the rule is the
    derivative of the primitive."""
    rng = np.random.default_rng(10)
    a = _hermitian(rng, (2, 4, 4), F64)
    da = _normal(rng, (2, 4, 4), F64)
    da = jax.device_put(da + np.swapaxes(da, -1, -2))
    chol = lambda x: jnp.tril(lax_linalg.cholesky_p.bind(x))
    jvp = lambda p, t: jvp_rules["cholesky"](p, t, lax_linalg.cholesky_p.bind(*p))
    check_finite_differences(chol, jvp, (a,), (da,))


# ------------------------------------------------------------------------------------------
# eigh.

EIGH_PARAMS = dict(lower=True, sort_eigenvalues=True, subset_by_index=None, algorithm=None)


@pytest.mark.parametrize(
    ("shape", "dtype"), [((1, 1), F64), ((6, 6), F64), ((2, 3, 3), F64), ((3, 3), F32)]
)
def test_eigh(shape, dtype):
    a = _hermitian(np.random.default_rng(11), shape, dtype)
    check_rules(lax_linalg.eigh_p, (a,), EIGH_PARAMS)


@pytest.mark.x64(reason=CLOSED_FORMS)
def test_eigh_complex():
    a = _hermitian(np.random.default_rng(12), (3, 3), C128)
    check_rules(lax_linalg.eigh_p, (a,), EIGH_PARAMS)


def test_eigh_one_cotangent():
    """Only the eigenvalues carry a cotangent: d(sum w)/dA = V V^T = I."""
    a = _hermitian(np.random.default_rng(13), (3, 3), F32)
    out = list(lax_linalg.eigh_p.bind(a, **EIGH_PARAMS))
    (a_bar,) = vjp_rules["eigh"]([None, jnp.ones(3)], (a,), out, **EIGH_PARAMS)
    np.testing.assert_allclose(a_bar, np.eye(3), atol=1e-5)
    assert vjp_rules["eigh"]([None, None], (a,), out, **EIGH_PARAMS) == (None,)


# ------------------------------------------------------------------------------------------
# svd and qr.

SVD_PARAMS = dict(full_matrices=False, subset_by_index=None, algorithm=None)
QR_PARAMS = dict(pivoting=False, full_matrices=False, use_magma=None)


def _separated(rng, shape, dtype):
    """``Q1 diag(s) Q2`` with singular values spread over [1, 3] (0.5 / k apart at least):
    the SVD's derivative divides by ``s_j^2 - s_i^2``."""
    *batch, m, n = shape
    k = min(m, n)
    mats = []
    for _ in range(int(np.prod(batch, dtype=int))):
        s = np.linspace(1.0, 3.0, k) + rng.uniform(-0.25, 0.25, k) / k
        mats.append(_unitary(rng, m, dtype)[:, :k] * s @ _unitary(rng, n, dtype)[:k, :])
    return jax.device_put(np.reshape(mats, shape).astype(dtype))


SVD_SHAPES = [(4, 3), (3, 5), (3, 3), (2, 4, 3)]


@pytest.mark.parametrize("compute_uv", [True, False])
@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape", SVD_SHAPES)
def test_svd(shape, dtype, compute_uv):
    """Tall (an extra term in dU), wide (in dV), square, batched; the singular values alone."""
    a = _separated(np.random.default_rng(21), shape, dtype)
    check_rules(lax_linalg.svd_p, (a,), SVD_PARAMS | {"compute_uv": compute_uv})


@pytest.mark.x64(reason=CLOSED_FORMS)
@pytest.mark.parametrize("compute_uv", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 5)])
def test_svd_complex(shape, compute_uv):
    """Complex data: the phase term ``i Im diag(U^H dA V) / s`` of dU and its transpose."""
    a = _separated(np.random.default_rng(22), shape, C128)
    check_rules(lax_linalg.svd_p, (a,), SVD_PARAMS | {"compute_uv": compute_uv})


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (2, 5, 3)])
def test_qr(shape, dtype):
    a = _general(np.random.default_rng(23), shape, dtype)
    check_rules(lax_linalg.qr_p, (a,), QR_PARAMS)


@pytest.mark.x64(reason=CLOSED_FORMS)
def test_qr_complex():
    a = _general(np.random.default_rng(24), (4, 3), C128)
    check_rules(lax_linalg.qr_p, (a,), QR_PARAMS)


SECOND_ORDER = {
    "singular_values": lambda a: jnp.sum(jnp.linalg.svd(a, compute_uv=False) ** 3),
    "thin_svd_vectors": lambda a: (
        jnp.sum(jnp.sin(jnp.linalg.svd(a, full_matrices=False)[0]))
        + jnp.sum(jnp.linalg.svd(a, full_matrices=False)[2] ** 2 * jnp.arange(3.0)[None, :])
    ),
    "pinv": lambda a: jnp.sum(jnp.linalg.pinv(a) ** 2),
    "spectral_norm": lambda a: jnp.linalg.norm(a, 2),
    "nuclear_norm": lambda a: jnp.linalg.norm(a, "nuc"),
    "qr": lambda a: jnp.sum(jnp.linalg.qr(a)[0] ** 3) + jnp.sum(jnp.linalg.qr(a)[1] ** 2),
    "lstsq": lambda a: jnp.sum(jnp.linalg.lstsq(a, jnp.arange(4.0))[0] ** 2),
}


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_svd_and_qr_second_order_against_jax(name):
    """Gradients and Hessians of functions built on ``svd`` and ``qr`` (the rules' own
    output differentiated again), float32, against jax."""
    f = SECOND_ORDER[name]
    a = _separated(np.random.default_rng(25), (4, 3), F32)
    ours, theirs = fast_jit(
        lambda a: ((_ad.grad(f)(a), _ad.hessian(f)(a)), (jax.grad(f)(a), jax.hessian(f)(a)))
    )(a)
    for x, y in zip(ours, theirs, strict=True):
        scale = float(np.max(np.abs(y)))
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5 * scale)


def test_svd_and_qr_refuse_what_jax_refuses():
    """``full_matrices=True`` with vectors of a non-square matrix (jnp.linalg.svd's default:
    the extra columns are not unique), a wide or full QR, pivoting: refused, naming the fix."""
    a = _separated(np.random.default_rng(26), (4, 3), F32)
    with pytest.raises(NotImplementedError):
        jax.grad(lambda a: jnp.sum(jnp.linalg.svd(a)[0]))(a)
    with pytest.raises(NotImplementedError, match=r"full_matrices=False"):
        _ad.grad(lambda a: jnp.sum(jnp.linalg.svd(a)[0]))(a)
    with pytest.raises(NotImplementedError, match=r"at least as many rows"):
        _ad.grad(lambda a: jnp.sum(jnp.linalg.qr(a.T)[1]))(a)
    with pytest.raises(NotImplementedError, match=r"at least as many rows"):
        _ad.grad(lambda a: jnp.sum(jnp.linalg.qr(a, mode="complete")[1]))(a)
    # The singular values of the same matrix, and square full SVDs, are differentiated.
    _ad.grad(lambda a: jnp.sum(jnp.linalg.svd(a, compute_uv=False)))(a)
    square = a[:3]
    np.testing.assert_allclose(
        _ad.grad(lambda a: jnp.sum(jnp.linalg.svd(a)[0] ** 2))(square),
        jax.grad(lambda a: jnp.sum(jnp.linalg.svd(a, full_matrices=False)[0] ** 2))(square),
        rtol=1e-4,
        atol=1e-5,
    )


# ------------------------------------------------------------------------------------------
# tridiagonal_solve: X = A^{-1} B, A with sub-, main and super-diagonals dl, d, du.

TRIDIAGONAL_PARAMS = dict(perturb_singular=False)


def _tridiagonal(rng, batch, m, n_rhs, dtype):
    """Diagonally dominant ``(dl, d, du, b)`` (|d_i| >= 3, |dl_i|, |du_i| <= 1), with large
    junk in ``dl[0]`` and ``du[-1]``, which the solve must not read."""
    shape = (*batch, m)
    d = (rng.uniform(3.0, 4.0, shape) * rng.choice([-1, 1], shape)).astype(dtype)
    dl, du = (np.clip(_normal(rng, shape, dtype), -0.7, 0.7) for _ in range(2))
    dl[..., 0], du[..., -1] = 100, -100
    b = _normal(rng, (*batch, m, n_rhs), dtype)
    return tuple(jax.device_put(x.astype(dtype)) for x in (dl, d, du, b))


@pytest.mark.parametrize(
    ("batch", "m", "dtype"),
    [((), 1, F64), ((), 2, F64), ((), 6, F64), ((2,), 4, F64), ((), 6, F32), ((2,), 4, F32)],
)
def test_tridiagonal_solve(batch, m, dtype):
    """Derivatives with respect to the three diagonals and the right-hand side; ``dl[0]`` and
    ``du[-1]`` are not read, so their cotangents are zero (as in jax)."""
    primals = _tridiagonal(np.random.default_rng(31), batch, m, 3, dtype)
    _, (dl_bar, _, du_bar, _) = check_rules(
        lax_linalg.tridiagonal_solve_p, primals, TRIDIAGONAL_PARAMS, argnums=(0, 1, 2, 3)
    )
    assert np.all(np.asarray(dl_bar)[..., 0] == 0) and np.all(np.asarray(du_bar)[..., -1] == 0)


@pytest.mark.x64(reason=CLOSED_FORMS)
def test_tridiagonal_solve_complex():
    """Complex data: no conjugation in the transposed system (JAX's linear transpose)."""
    primals = _tridiagonal(np.random.default_rng(32), (2,), 5, 2, C128)
    check_rules(lax_linalg.tridiagonal_solve_p, primals, TRIDIAGONAL_PARAMS, argnums=(0, 1, 2, 3))


@pytest.mark.parametrize("argnums", [(3,), (0, 1, 2), (1,)])
def test_tridiagonal_solve_some_arguments(argnums):
    """Symbolic-zero tangents (None) for some of the four inputs."""
    primals = _tridiagonal(np.random.default_rng(33), (), 5, 2, F32)
    check_rules(lax_linalg.tridiagonal_solve_p, primals, TRIDIAGONAL_PARAMS, argnums=argnums)
    out = lax_linalg.tridiagonal_solve_p.bind(*primals, **TRIDIAGONAL_PARAMS)
    rule = jvp_rules["tridiagonal_solve"]
    assert rule(primals, (None,) * 4, out, **TRIDIAGONAL_PARAMS) is None


@pytest.mark.x64(reason=FINITE_DIFFERENCES)
def test_tridiagonal_solve_jvp_finite_differences():
    rng = np.random.default_rng(34)
    primals = _tridiagonal(rng, (2,), 5, 3, F64)
    tangents = tuple(jax.device_put(_normal(rng, x.shape, F64)) for x in primals)
    solve = lambda *xs: lax_linalg.tridiagonal_solve_p.bind(*xs, **TRIDIAGONAL_PARAMS)
    rule = jvp_rules["tridiagonal_solve"]
    jvp = lambda p, t: rule(p, t, solve(*p), **TRIDIAGONAL_PARAMS)
    check_finite_differences(solve, jvp, primals, tangents)


def test_tridiagonal_solve_second_order_against_jax():
    """Gradient and Hessian with respect to all four inputs at once (their cross terms
    included), through the rules' own ``tridiagonal_solve``, float32, against jax."""
    dl, d, du, b = _tridiagonal(np.random.default_rng(35), (), 5, 1, F32)
    x = jnp.stack([dl, d, du, b[:, 0]])

    def f(x):
        out = lax_linalg.tridiagonal_solve(x[0], x[1], x[2], x[3][:, None])
        return jnp.sum(jnp.sin(out)) + jnp.sum(out**2 * x[1][:, None])

    ours, theirs = fast_jit(
        lambda x: ((_ad.grad(f)(x), _ad.hessian(f)(x)), (jax.grad(f)(x), jax.hessian(f)(x)))
    )(x)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(b))))


# ------------------------------------------------------------------------------------------
# eig: A V = V diag(w) (right), U^H A = diag(w) U^H (left), w and the vectors complex.


def _eig_params(left, right, enable=True):
    return dict(compute_left_eigenvectors=left, compute_right_eigenvectors=right,
                enable_eigvec_derivs=enable, implementation=None)  # fmt: skip


def _nonsymmetric(rng, shape, dtype):
    """``X D X^{-1}`` with ``X`` well conditioned and well separated eigenvalues: for real
    data ``D`` is block diagonal with 2 x 2 blocks ``[[a, b], [-b, a]]`` (pairs ``a +- ib``)
    and real entries; for complex data ``D`` is diagonal with complex entries."""
    *batch, n, _ = shape
    complex_data = np.issubdtype(dtype, np.complexfloating)
    mats = []
    for _ in range(int(np.prod(batch, dtype=int))):
        centres = np.linspace(1.0, 4.0, n) + rng.uniform(-0.1, 0.1, n)
        if complex_data:
            d = np.diag(centres + 1j * rng.uniform(-1.0, 1.0, n))
        else:
            d = np.diag(centres)
            for k in range(0, 2 * ((n + 1) // 3), 2):  # a +- ib, b in [0.5, 1]
                b = rng.uniform(0.5, 1.0)
                d[k : k + 2, k : k + 2] = [[centres[k], b], [-b, centres[k]]]
        x = np.eye(n) + 0.3 * _normal(rng, (n, n), dtype) / np.sqrt(n)
        mats.append(x @ d @ np.linalg.inv(x))
    return jax.device_put(np.reshape(mats, shape).astype(dtype))


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((1, 1), F64), ((3, 3), F64), ((6, 6), F64), ((2, 3, 3), F64), ((3, 3), F32),
     ((2, 3, 3), F32)],
)  # fmt: skip
def test_eig(shape, dtype):
    """Eigenvalues with left and right eigenvectors (opted in with ``enable_eigvec_derivs``),
    real data with complex pairs of eigenvalues."""
    a = _nonsymmetric(np.random.default_rng(41), shape, dtype)
    check_rules(lax_linalg.eig_p, (a,), _eig_params(True, True))


@pytest.mark.parametrize(("left", "right"), [(False, False), (False, True), (True, False)])
def test_eig_fewer_outputs(left, right):
    """The eigenvalues alone (``jnp.linalg.eigvals``: the rule recomputes the right
    eigenvectors), with the right or with the left eigenvectors only."""
    a = _nonsymmetric(np.random.default_rng(41), (2, 3, 3), F32)
    check_rules(lax_linalg.eig_p, (a,), _eig_params(left, right))


@pytest.mark.x64(reason=CLOSED_FORMS)
@pytest.mark.parametrize(("left", "right"), [(False, False), (True, False), (True, True)])
def test_eig_complex(left, right):
    a = _nonsymmetric(np.random.default_rng(42), (2, 4, 4), C128)
    check_rules(lax_linalg.eig_p, (a,), _eig_params(left, right))


@pytest.mark.x64(reason=FINITE_DIFFERENCES)
@pytest.mark.parametrize("dtype", [F64, C128])
def test_eig_jvp_finite_differences(dtype):
    """LAPACK's normalisation (unit 2-norm, largest component real), which the eigenvector
    rule differentiates, checked on the primitive itself: an oracle independent of jax."""
    rng = np.random.default_rng(43)
    a = _nonsymmetric(rng, (4, 4), dtype)
    da = jax.device_put(_normal(rng, (4, 4), dtype))
    params = _eig_params(True, True)
    eig = lambda x: jnp.stack(lax_linalg.eig_p.bind(x, **params)[1:])
    jvp = lambda p, t: jnp.stack(
        jvp_rules["eig"](p, t, lax_linalg.eig_p.bind(*p, **params), **params)[1:]
    )
    check_finite_differences(eig, jvp, (a,), (da,))


@pytest.mark.x64(reason=CLOSED_FORMS)
def test_eigvals_of_a_large_matrix_keep_the_primal_order():
    """For n > 75 or so LAPACK orders the eigenvalues differently with and without
    eigenvectors; the rule recomputes them with eigenvectors and must align those with the
    eigenvalues the interpreter has (jax.jvp returns the recomputed, reordered ones)."""
    rng = np.random.default_rng(44)
    n = 160
    a = jax.device_put(rng.standard_normal((n, n)))
    da = jax.device_put(rng.standard_normal((n, n)))
    ct = jax.device_put(_normal(rng, (n,), C128))
    params = _eig_params(False, False)

    @fast_jit
    def compute(a, da, ct):
        out = lax_linalg.eig_p.bind(a, **params)
        (dw,) = jvp_rules["eig"]((a,), (da,), out, **params)
        (a_bar,) = vjp_rules["eig"]([ct], (a,), out, **params)
        w_jax, dw_jax = jax.jvp(jnp.linalg.eigvals, (a,), (da,))
        return out[0], dw, a_bar, w_jax, dw_jax

    w, dw, a_bar, w_jax, dw_jax = compute(a, da, ct)
    assert not np.array_equal(w, w_jax), "LAPACK no longer reorders: take a larger n"
    match = np.argmin(np.abs(np.asarray(w)[:, None] - np.asarray(w_jax)[None, :]), axis=1)
    np.testing.assert_array_equal(np.sort(match), np.arange(n))
    np.testing.assert_allclose(dw, np.asarray(dw_jax)[match], rtol=1e-8, atol=1e-8)
    lhs, rhs = _pair(ct, dw), _pair(a_bar, da)
    assert abs(lhs - rhs) <= 1e-8 * (1 + abs(lhs))


EIG_SECOND_ORDER = {
    "eigvals": (
        _eig_params(False, False),
        lambda w, vs: jnp.sum(jnp.real(w) ** 3) + jnp.sum(jnp.imag(w) ** 2),
    ),
    "right": (
        _eig_params(False, True),
        lambda w, vs: jnp.sum(jnp.real(vs[0]) ** 3) + jnp.sum(jnp.imag(w * vs[0][0]) ** 2),
    ),
    "left": (
        _eig_params(True, False),
        lambda w, vs: jnp.sum(jnp.real(vs[0] * jnp.arange(3.0)[:, None]) ** 2 + jnp.imag(vs[0])),
    ),
    "both": (
        _eig_params(True, True),
        lambda w, vs: jnp.sum(jnp.real(vs[0] * vs[1]) + jnp.imag(vs[1]) ** 3),
    ),
}


@pytest.mark.x64(reason="the eigenvectors' second derivative loses digits in float32")
@pytest.mark.parametrize("name", list(EIG_SECOND_ORDER))
def test_eig_second_order_against_jax(name):
    """Gradients and Hessians through ``eig`` with ``enable_eigvec_derivs=True`` (which the
    Hessian of the eigenvalues needs too: their first derivative reads the eigenvectors),
    float64, against jax."""
    params, g = EIG_SECOND_ORDER[name]
    f = lambda a: g(*(lambda w, *vs: (w, vs))(*lax_linalg.eig_p.bind(a, **params)))
    a = _nonsymmetric(np.random.default_rng(45), (3, 3), F64)
    ours, theirs = fast_jit(
        lambda a: ((_ad.grad(f)(a), _ad.hessian(f)(a)), (jax.grad(f)(a), jax.hessian(f)(a)))
    )(a)
    for x, y in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-8, atol=1e-9 * float(np.max(np.abs(y))))


def test_eigvals_gradient_against_jax():
    """``jnp.linalg.eigvals``: first order in both modes, float32, as jax."""
    a = _nonsymmetric(np.random.default_rng(46), (4, 4), F32)
    f = lambda a: jnp.sum(jnp.abs(jnp.linalg.eigvals(a)) ** 2)
    ours, theirs = fast_jit(
        lambda a: ((_ad.grad(f)(a), _ad.jacfwd(f)(a)), (jax.grad(f)(a), jax.jacfwd(f)(a)))
    )(a)
    for x, y in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_eig_and_schur_refuse_what_jax_refuses():
    """jax refuses any derivative of ``eig`` that computes eigenvectors without
    ``enable_eigvec_derivs=True`` (``jnp.linalg.eig``, even for its eigenvalues), the second
    derivative of ``jnp.linalg.eigvals`` (its first derivative reads such eigenvectors), and
    ``schur`` (no rule at all, so ``jax.scipy.linalg.sqrtm`` too): so does jaxls, naming
    the fix, in forward and in reverse mode."""
    a = _nonsymmetric(np.random.default_rng(47), (3, 3), F32)
    forward = lambda f: lambda a: _ad.jvp(f, (a,), (a,))
    eigvals_squared = lambda a: jnp.sum(jnp.real(jnp.linalg.eigvals(a)) ** 2)
    left_only = lambda a: lax_linalg.eig(a, compute_right_eigenvectors=False)[1]
    refused = {
        "eig values": lambda a: jnp.sum(jnp.real(jnp.linalg.eig(a)[0])),
        "eig vectors": lambda a: jnp.sum(jnp.real(jnp.linalg.eig(a)[1])),
        "left vectors": lambda a: jnp.sum(jnp.real(left_only(a))),
        "eigvals hessian": lambda a: jnp.sum(_ad.grad(eigvals_squared)(a) ** 2),
        "jax eigvals hessian": lambda a: jnp.sum(jax.grad(eigvals_squared)(a) ** 2),
    }
    for name, f in refused.items():
        for transform in (jax.grad, _ad.grad, forward):
            with pytest.raises(NotImplementedError, match="enable_eigvec_derivs") as info:
                transform(f)(a)
            assert transform is jax.grad or "jaxls.ad" in str(info.value), name
    schur = lambda a: jnp.sum(jax.scipy.linalg.schur(a)[0])
    sqrtm = lambda a: jnp.real(jax.scipy.linalg.sqrtm(a))  # (reverse mode meets a loop first)
    for f, transforms in [(schur, (_ad.grad, forward)), (sqrtm, (forward,))]:
        with pytest.raises(NotImplementedError, match="schur"):
            jax.jvp(f, (a,), (a,))
        for transform in transforms:
            with pytest.raises(NotImplementedError, match=r"`schur`.*jax refuses it too"):
                transform(f)(a)


# ------------------------------------------------------------------------------------------
# jit, vmap, and what the rules emit.


def _cases(dtype=F32):
    """(name, primals, tangents, cotangents, params) for one batched case per primitive."""
    rng = np.random.default_rng(14)
    shape = (2, 3, 3)
    tri_flags = dict(left_side=True, lower=True, transpose_a=False, conjugate_a=False,
                     unit_diagonal=False)  # fmt: skip
    a_tri, b_tri = _tri_case(shape, 2, dtype, tri_flags)
    rand = lambda x: jax.device_put(_normal(rng, x.shape, dtype))
    general, spd = _general(rng, shape, dtype), _hermitian(rng, shape, dtype)
    tall = _separated(rng, (2, 4, 3), dtype)
    svd_params = SVD_PARAMS | {"compute_uv": True}
    s_ct = jax.device_put(rng.standard_normal((2, 3)).astype(jax.eval_shape(jnp.real, tall).dtype))
    nonsymmetric = _nonsymmetric(rng, shape, dtype)
    complex_ct = lambda shape: jax.device_put(_normal(rng, shape, np.complex64))
    tri = _tridiagonal(rng, (2,), 4, 3, dtype)
    return {
        "eig": (
            (nonsymmetric,),
            (rand(nonsymmetric),),
            [complex_ct((2, 3)), complex_ct(shape), complex_ct(shape)],
            _eig_params(True, True),
        ),
        "tridiagonal_solve": (tri, tuple(map(rand, tri)), rand(tri[3]), TRIDIAGONAL_PARAMS),
        "svd": ((tall,), (rand(tall),), [s_ct, rand(tall), rand(general)], svd_params),
        "qr": ((tall,), (rand(tall),), [rand(tall), rand(general)], QR_PARAMS),
        "lu": ((general,), (rand(general),), [rand(general), None, None], {}),
        "triangular_solve": ((a_tri, b_tri), (rand(a_tri), rand(b_tri)), rand(b_tri), tri_flags),
        "cholesky": ((spd,), (rand(spd),), rand(spd), {}),
        "eigh": ((spd,), (rand(spd),), [rand(spd), rand(spd[..., 0])], EIGH_PARAMS),
    }


PRIMS = {
    "lu": lax_linalg.lu_p,
    "triangular_solve": lax_linalg.triangular_solve_p,
    "cholesky": lax_linalg.cholesky_p,
    "eigh": lax_linalg.eigh_p,
    "svd": lax_linalg.svd_p,
    "qr": lax_linalg.qr_p,
    "tridiagonal_solve": lax_linalg.tridiagonal_solve_p,
    "eig": lax_linalg.eig_p,
}


def _bind(name, primals, params):
    out = PRIMS[name].bind(*primals, **params)
    return list(out) if PRIMS[name].multiple_results else out


def _rules_fn(name, params):
    """Both rules of ``name`` as one function of arrays (None entries are dropped)."""

    def fn(primals, tangents, cts):
        out = _bind(name, primals, params)
        t = jvp_rules[name](primals, tangents, out, **params)
        c = vjp_rules[name](cts, primals, out, **params)
        return t, c

    return fn


@pytest.mark.parametrize("name", sorted(PRIMS))
def test_rules_under_jit_and_vmap(name):
    """Both rules on a batch of two, eagerly (the reference), under `jax.jit`, and under
    `jax.vmap` over the batch (in a `fast_jit`: run op by op, it compiled each batched
    operation)."""
    primals, tangents, cts, params = _cases()[name]
    fn = _rules_fn(name, params)
    eager = fn(primals, tangents, cts)
    jitted = fast_jit(fn)(primals, tangents, cts)
    vmapped = fast_jit(jax.vmap(fn))(primals, tangents, cts)
    for got in (jitted, vmapped):
        jax.tree.map(
            functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5), got, eager
        )


@pytest.mark.parametrize("name", sorted(PRIMS))
@pytest.mark.parametrize("dtype", [F64, C128])
def test_rules_emit_differentiable_primitives(name, dtype):
    """Every primitive the rules emit has a JVP rule, so the rules can be differentiated again
    (Hessians); ``conj``/``real`` appear for complex data only (eig's outputs are always
    complex). The primitive itself is bound outside the traced function."""
    primals, tangents, cts, params = _cases()[name]
    cast = lambda x: x.astype(C128 if jnp.iscomplexobj(x) else dtype)  # eig's cotangents
    primals, tangents, cts = jax.tree.map(cast, (primals, tangents, cts))
    if name == "eigh":  # the eigenvalues are real
        cts = [cts[0], jnp.real(cts[1])]
    if name == "svd":  # the singular values are real
        cts = [jnp.real(cts[0]), *cts[1:]]
    out = jax.eval_shape(lambda primals: _bind(name, primals, params), primals)
    jvp = lambda p, t, o: jvp_rules[name](p, t, o, **params)
    vjp = lambda c, p, o: vjp_rules[name](c, p, o, **params)
    names = _primitive_names(jax.make_jaxpr(jvp)(primals, tangents, out).jaxpr)
    names |= _primitive_names(jax.make_jaxpr(vjp)(cts, primals, out).jaxpr)
    complex_data = dtype == C128 or name == "eig"  # eig's outputs are complex
    allowed = ALLOWED if complex_data else ALLOWED - {"conj", "real"}
    assert names <= allowed, names - allowed


def test_eigh_with_repeated_eigenvalues_as_jax():
    """Eigenvalues exactly 1, 1, 2: the eigenvalues' derivatives are those of jax (even
    weighted unevenly across the repeated pair); the eigenvectors' are undefined there, NaN
    where jax's are, never a finite guess. (A rotated copy rounds the pair apart.)"""
    a = jnp.diag(jnp.array([1.0, 1.0, 2.0], F32))
    weights = jnp.arange(3.0)
    values = lambda a: jnp.sum(jnp.linalg.eigvalsh(a) * weights)
    squares = lambda a: jnp.sum(jnp.linalg.eigh(a)[0] ** 2)
    vectors = lambda a: jnp.sum(jnp.linalg.eigh(a)[1] ** 2 * weights[None, :])
    for f in (values, squares):
        np.testing.assert_allclose(_ad.grad(f)(a), jax.grad(f)(a), rtol=1e-5, atol=1e-5)
    theirs, ours = jax.grad(vectors)(a), _ad.grad(vectors)(a)
    assert np.any(np.isnan(theirs))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)  # NaN where both are
