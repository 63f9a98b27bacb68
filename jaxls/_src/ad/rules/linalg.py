r"""JVP and VJP rules of the dense linear-algebra primitives: ``lu``, ``triangular_solve``,
``cholesky``, ``eigh``, ``svd``, ``qr``, ``tridiagonal_solve`` and ``eig``; ``schur`` is
refused, as in JAX.

Each JVP rule is the linear map that JAX's own rule for the primitive computes (so the rules
agree with `jax.jvp` of the primitive's ``bind``), derived here by hand; each VJP rule is the
transpose of that map, so the dot-product identity ``<ct, jvp(t)> = <vjp(ct), t>`` holds
exactly (up to rounding). Complex inputs follow JAX's convention: a VJP is the *linear
transpose* (no conjugation) of the JVP, with ``conj`` transposing to ``conj``.

The rules emit only ``dot_general``, ``triangular_solve``, ``transpose``, ``add``, ``sub``,
``mul``, ``div``, ``neg``, ``select_n``, ``broadcast_in_dim``, ``iota``, ``eq``, ``ge``,
``reduce_sum``, ``convert_element_type`` (plus ``conj`` / ``real`` for complex data), and
``svd``, ``lu``, ``eig``, ``tridiagonal_solve``, ``pad``, ``abs``, ``argmax``, ``argmin``
where a rule needs them, all of which have JVP rules of their own, so their output can be
differentiated again. Row permutations and rectangular slices of a matrix are written as
products with 0/1 matrices (exact in floating point) rather than ``gather`` / ``slice``; the
shifts of ``tridiagonal_solve``'s O(m) vectors are ``pad``s.

Leading batch dimensions are supported wherever the primitive supports them.

References:
    F. R. de Hoog, R. S. Anderssen, M. A. Lukas (2011), "Differentiation of matrix
    functionals using triangular factorization", Math. Comp. 80, 1585-1600.
    I. Murray (2016), "Differentiation of the Cholesky decomposition", arXiv:1602.07527,
    sec. 3 (the symbolic forward- and reverse-mode results).
    M. B. Giles (2008), "An extended collection of matrix derivative results for forward
    and reverse mode algorithmic differentiation", Oxford NA report 08/01 (the results for
    linear solves, triangular and tridiagonal, and, sec. 3.1, for the eigendecomposition:
    eigenvalues, and eigenvectors up to a scale per column that a normalisation fixes).
    J. Townsend (2016), "Differentiating the singular value decomposition" (the SVD).
    S. F. Walter, L. Lehmann (2018), "Algorithmic differentiation of linear algebra
    functions with application in optimum experimental design" (the QR decomposition).
    E. Anderson et al. (1999), LAPACK Users' Guide, 3rd ed., ``xGEEV`` (the eigenvectors'
    normalisation that the ``eig`` rules differentiate: unit 2-norm, largest-magnitude
    component real).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.lax.linalg import triangular_solve as _triangular_solve

from jaxls._src.ad.registry import EVERYTHING, NOTHING, OUTPUTS, defjvp, defvjp, inputs

_HIGHEST = lax.Precision.HIGHEST


# ------------------------------------------------------------------------------------------
# Small helpers: matrix products, transposes and triangular masks built from `lax` directly
# (`jnp.tril` and `jnp.where` wrap themselves in a nested `jit`, which the interpreter would
# then have to open).


def _mm(a, b):
    """``a @ b`` over the last two axes, at full precision (no TF32/bf16 passes on GPU/TPU)."""
    return jnp.matmul(a, b, precision=_HIGHEST)


def _mT(x):
    """Transpose of the last two axes (no conjugation)."""
    return jnp.swapaxes(x, -1, -2)


def _is_complex(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.complexfloating)


def _conj(x):
    """Complex conjugate; the identity (and no equation at all) for real data."""
    return lax.conj(x) if _is_complex(x) else x


def _index_grids(shape):
    """Row and column indices of a ``(..., m, n)`` array, shaped like it."""
    rank = len(shape)
    rows = lax.broadcasted_iota(jnp.int32, shape, rank - 2)
    cols = lax.broadcasted_iota(jnp.int32, shape, rank - 1)
    return rows, cols


def _keep(mask, x):
    """``x`` where ``mask`` holds, zero elsewhere (NaN-safe, unlike a product with 0/1)."""
    return lax.select(mask, x, lax.full_like(x, 0))


def _tril(x, k: int = 0):
    """Lower triangle of the last two axes: entries with ``col <= row + k``."""
    rows, cols = _index_grids(x.shape)
    return _keep(rows + k >= cols, x)


def _triu(x, k: int = 0):
    """Upper triangle of the last two axes: entries with ``col >= row + k``."""
    rows, cols = _index_grids(x.shape)
    return _keep(cols >= rows + k, x)


def _eye(shape, dtype):
    """Identity (rectangular if ``shape`` is) of ``dtype``, broadcast over leading axes."""
    rows, cols = _index_grids(shape)
    return lax.convert_element_type(lax.eq(rows, cols), dtype)


def _phi(x):
    """Murray's ``Phi``: the lower triangle with the diagonal halved (self-adjoint)."""
    rows, cols = _index_grids(x.shape)
    return _keep(rows >= cols + 1, x) + _keep(rows == cols, x / 2)


def _read_triangle(x, lower: bool, unit_diagonal: bool):
    """The entries of ``x`` that `triangular_solve` reads (strict triangle if unit diagonal)."""
    k = 1 if unit_diagonal else 0
    return _tril(x, -k) if lower else _triu(x, k)


def _op(x, transpose_a: bool, conjugate_a: bool):
    """``op(x)`` as `triangular_solve` applies it: transposed and/or conjugated."""
    x = _mT(x) if transpose_a else x
    return _conj(x) if conjugate_a else x


# ------------------------------------------------------------------------------------------
# lu: P A = L U with L unit lower trapezoidal (m x k), U upper trapezoidal (k x n), k=min(m, n).


def _lu_factors(lu):
    """Square, invertible ``L`` (m x m) and ``U`` (n x n) from the packed ``lu`` (m x n).

    As in JAX's rule, a tall factorisation pads ``L`` with the identity in its last ``m - k``
    columns and a wide one pads ``U`` with the identity in its last ``n - k`` rows, so that
    ``P A = L_pad [U; 0]`` (tall) or ``L [U_pad]_{:m}`` (wide).
    """
    *batch, m, n = lu.shape
    dtype = lu.dtype
    # Leading m x m and n x n blocks of lu (zero-padded), as products with 0/1 matrices.
    lu_m = lu if m == n else _mm(lu, _eye((n, m), dtype))  # (m, m)
    lu_n = lu if m == n else _mm(_eye((n, m), dtype), lu)  # (n, n)
    l_pad = _tril(lu_m, -1) + _eye((*batch, m, m), dtype)
    u_pad = _triu(lu_n)
    if n > m:  # identity in the trailing (n - m) x (n - m) block
        rows, _ = _index_grids((*batch, n, n))
        u_pad = u_pad + _keep(rows >= m, _eye((*batch, n, n), dtype))
    return l_pad, u_pad


def _permutation_matrix(permutation, dtype):
    """``P`` with ``(P x)[i] = x[permutation[i]]``, i.e. ``P[i, j] = (permutation[i] == j)``."""
    m = permutation.shape[-1]
    shape = (*permutation.shape, m)
    rows = lax.broadcast_in_dim(permutation, shape, tuple(range(permutation.ndim)))
    cols = lax.broadcasted_iota(permutation.dtype, shape, len(shape) - 1)
    return lax.convert_element_type(lax.eq(rows, cols), dtype)


@defjvp("lu")
def lu_jvp(primals, tangents, out):
    r"""``d(lu) = L tril(X, -1) + triu(X) U`` with ``X = L^{-1} P dA U^{-1}``.

    From ``P A = L U``: ``L^{-1} P dA U^{-1} = L^{-1} dL + dU U^{-1}``, a strictly lower plus
    an upper triangular matrix (de Hoog, Anderssen & Lukas 2011). Rectangular ``A`` uses the
    padded factors of `_lu_factors`. The pivots and the permutation have no tangent.

    Example:
        >>> import jax.numpy as jnp
        >>> from jax.lax import linalg
        >>> a = jnp.array([[1.0, 2.0], [3.0, 4.0]])
        >>> out = list(linalg.lu_p.bind(a))
        >>> d_lu, _, _ = lu_jvp((a,), (a,), out)  # dA = A: dL = 0, dU = U
        >>> print(d_lu.round(4) + 0.0)  # + 0.0: no -0.0
        [[3.     4.    ]
         [0.     0.6667]]
    """
    (da,) = tangents
    if da is None:
        return [None, None, None]
    lu, _, permutation = out
    l_pad, u_pad = _lu_factors(lu)
    p_da = _mm(_permutation_matrix(permutation, lu.dtype), da)
    x = _triangular_solve(l_pad, p_da, left_side=True, lower=True, unit_diagonal=True)
    x = _triangular_solve(u_pad, x, left_side=False, lower=False)
    return [_mm(l_pad, _tril(x, -1)) + _mm(_triu(x), u_pad), None, None]


@defvjp("lu", reads=OUTPUTS)
def lu_vjp(cts, primals, out):
    r"""``dA_bar = P^T L^{-T} (tril(L^T C, -1) + triu(C U^T)) U^{-T}``, the transpose of
    `lu_jvp` for the cotangent ``C`` of the packed ``lu`` output."""
    ct = cts[0]
    if ct is None:
        return (None,)
    lu, _, permutation = out
    l_pad, u_pad = _lu_factors(lu)
    x_bar = _tril(_mm(_mT(l_pad), ct), -1) + _triu(_mm(ct, _mT(u_pad)))
    y_bar = _triangular_solve(
        l_pad, x_bar, left_side=True, lower=True, transpose_a=True, unit_diagonal=True
    )
    y_bar = _triangular_solve(u_pad, y_bar, left_side=False, lower=False, transpose_a=True)
    return (_mm(_mT(_permutation_matrix(permutation, lu.dtype)), y_bar),)


# ------------------------------------------------------------------------------------------
# triangular_solve: X = op(T)^{-1} B (left_side) or X = B op(T)^{-1}, T the read triangle of a.


@defjvp("triangular_solve")
def triangular_solve_jvp(
    primals, tangents, out, *, left_side, lower, transpose_a, conjugate_a, unit_diagonal
):
    r"""``dX = op(T)^{-1} (dB - op(dT) X)`` (left side) or ``(dB - X op(dT)) op(T)^{-1}``.

    ``dT`` is ``da`` restricted to the triangle the solve reads (the strict one when
    ``unit_diagonal``): the other entries of ``a`` do not change the result.
    """
    a, _ = primals
    da, db = tangents
    flags = dict(lower=lower, transpose_a=transpose_a, conjugate_a=conjugate_a)
    rhs = db
    if da is not None:
        op_dt = _op(_read_triangle(da, lower, unit_diagonal), transpose_a, conjugate_a)
        delta = _mm(op_dt, out) if left_side else _mm(out, op_dt)
        rhs = -delta if rhs is None else rhs - delta
    if rhs is None:
        return None
    return _triangular_solve(a, rhs, left_side=left_side, unit_diagonal=unit_diagonal, **flags)


@defvjp("triangular_solve", reads=inputs(0, outputs=True))
def triangular_solve_vjp(
    ct, primals, out, *, left_side, lower, transpose_a, conjugate_a, unit_diagonal
):
    r"""``B_bar = op(T)^{-T} X_bar``; ``a_bar = -op^T(B_bar X^T)`` (left side) or
    ``-op^T(X^T B_bar)`` (right side), restricted to the triangle that is read.

    ``op(T)^{-T}`` is the same solve with ``transpose_a`` flipped (Giles 2008).
    ``op^T`` undoes ``op``: it transposes if ``transpose_a`` and conjugates if
    ``conjugate_a``, the transpose of ``conj`` being ``conj`` in JAX's convention.
    """
    a, _ = primals
    b_bar = _triangular_solve(
        a,
        ct,
        left_side=left_side,
        lower=lower,
        transpose_a=not transpose_a,
        conjugate_a=conjugate_a,
        unit_diagonal=unit_diagonal,
    )
    g = _mm(b_bar, _mT(out)) if left_side else _mm(_mT(out), b_bar)
    a_bar = -_read_triangle(_op(g, transpose_a, conjugate_a), lower, unit_diagonal)
    return (a_bar, b_bar)


# ------------------------------------------------------------------------------------------
# cholesky: A = L L^H. The primitive reads the lower triangle of A and has no parameters in
# JAX 0.10 (``jnp.linalg.cholesky`` / ``lax.linalg.cholesky(symmetrize_input=True)`` form
# (A + A^H) / 2 with separate equations *before* binding it); its strict upper triangle is
# unspecified (on CPU it is the input's). Like JAX's rule, ours take L = tril(out), give the
# upper triangle a zero tangent and use the full dA (no symmetrisation, no masking).


@defjvp("cholesky")
def cholesky_jvp(primals, tangents, out, **params):
    r"""``dL = L Phi(L^{-1} dA L^{-H})``, ``Phi`` the lower triangle with halved diagonal
    (Murray 2016, sec. 3)."""
    _check_cholesky_params(params)
    (da,) = tangents
    if da is None:
        return None
    chol = _tril(out)
    tmp = _triangular_solve(
        chol, da, left_side=False, lower=True, transpose_a=True, conjugate_a=True
    )  # dA L^{-H}
    tmp = _triangular_solve(chol, tmp, left_side=True, lower=True)  # L^{-1} dA L^{-H}
    return _mm(chol, _phi(tmp))


@defvjp("cholesky", reads=OUTPUTS)
def cholesky_vjp(ct, primals, out, **params):
    r"""``A_bar = L^{-T} Phi(L^T L_bar) conj(L)^{-1}``, the transpose of `cholesky_jvp`.

    For real data this is Murray's (2016, sec. 3) reverse-mode result before its
    symmetrisation: the primitive's input cotangent is not symmetric, as with `jax.vjp` of
    ``cholesky_p.bind``; the symmetrising equations that ``jnp.linalg.cholesky`` puts before
    the primitive transpose to ``(A_bar + A_bar^H) / 2``.
    """
    _check_cholesky_params(params)
    chol = _tril(out)
    s = _phi(_mm(_mT(chol), ct))  # Phi(L^T L_bar)
    s = _triangular_solve(chol, s, left_side=True, lower=True, transpose_a=True)  # L^{-T} s
    a_bar = _triangular_solve(chol, s, left_side=False, lower=True, conjugate_a=True)
    return (a_bar,)


def _check_cholesky_params(params):
    if params:
        raise NotImplementedError(
            f"The `cholesky` rules expect the parameter-less primitive of JAX 0.10, got {params}."
        )


# ------------------------------------------------------------------------------------------
# eigh: A = V diag(w) V^H, outputs (v, w) with w real.


def _eigh_factor(w, dtype):
    """``F[i, j] = 1 / (w[j] - w[i])`` off the diagonal, 0 on it (as JAX builds it)."""
    w = lax.convert_element_type(w, dtype)
    shape = (*w.shape, w.shape[-1])
    w_i = lax.broadcast_in_dim(w, shape, (*range(w.ndim - 1), w.ndim - 1))
    w_j = lax.broadcast_in_dim(w, shape, (*range(w.ndim - 1), w.ndim))
    eye = _eye(shape, dtype)
    return 1 / (eye + w_j - w_i) - eye


def _diagonal(x):
    """The diagonal of the last two axes, as a vector (sum of the masked matrix)."""
    rows, cols = _index_grids(x.shape)
    return jnp.sum(_keep(rows == cols, x), axis=-1)


def _diag_embed(d, dtype):
    """The square matrix with diagonal ``d``."""
    shape = (*d.shape, d.shape[-1])
    full = lax.broadcast_in_dim(lax.convert_element_type(d, dtype), shape, tuple(range(d.ndim)))
    rows, cols = _index_grids(shape)
    return _keep(rows == cols, full)


def _check_eigh_params(a, params):
    n = a.shape[-1]
    subset = params.get("subset_by_index")
    if subset is not None and tuple(subset) not in ((0, n), (-1, -1)):
        raise NotImplementedError("The `eigh` rules do not support `subset_by_index`.")


@defjvp("eigh")
def eigh_jvp(primals, tangents, out, **params):
    r"""``Z = V^H dA V``; ``dw = re diag(Z)``, ``dV = V (F o Z)``, ``F_ij = 1/(w_j - w_i)``.

    Giles (2008). Like JAX's rule it uses the full ``dA`` and assumes distinct
    eigenvalues (repeated ones give infinite or NaN ``dV``).
    """
    (a,) = primals
    _check_eigh_params(a, params)
    (da,) = tangents
    if da is None:
        return [None, None]
    v, w = out
    z = _mm(_mm(_conj(_mT(v)), da), v)
    dv = _mm(v, _eigh_factor(w, v.dtype) * z)
    dw = _diagonal(z)
    dw = lax.real(dw) if _is_complex(dw) else dw
    return [dv, dw]


@defvjp("eigh", reads=OUTPUTS)
def eigh_vjp(cts, primals, out, **params):
    r"""``A_bar = conj(V) (F o (V^T V_bar) + diag(w_bar)) V^T``, the transpose of `eigh_jvp`."""
    (a,) = primals
    _check_eigh_params(a, params)
    v_bar, w_bar = cts
    if v_bar is None and w_bar is None:
        return (None,)
    v, w = out
    z_bar = jnp.zeros_like(v)
    if v_bar is not None:
        z_bar = z_bar + _eigh_factor(w, v.dtype) * _mm(_mT(v), v_bar)
    if w_bar is not None:
        z_bar = z_bar + _diag_embed(w_bar, v.dtype)
    return (_mm(_mm(_conj(v), z_bar), _mT(v)),)


# ------------------------------------------------------------------------------------------
# svd: A = U diag(s) V^H (m x n, k = min(m, n)), outputs (s, U, Vt) or (s,).


def _check_svd_params(a, full_matrices, compute_uv, subset_by_index, **_):
    m, n = a.shape[-2:]
    if subset_by_index is not None and tuple(subset_by_index) != (0, min(m, n)):
        raise NotImplementedError("jaxls.ad: the `svd` rules do not support `subset_by_index`.")
    if compute_uv and full_matrices and m != n:
        raise NotImplementedError(
            "jaxls.ad: the derivative of `svd` with full_matrices=True (jnp.linalg.svd's "
            "default) is not unique for a non-square matrix, and JAX refuses it too. Use "
            "`jnp.linalg.svd(a, full_matrices=False)`, or `compute_uv=False` for the singular "
            "values alone."
        )


def _thin_svd(a, out, compute_uv):
    """``(s, U, V)`` of the thin SVD (recomputed when the equation returned ``s`` alone)."""
    if compute_uv:
        s, u, vt = out
    else:
        u, s, vt = lax.linalg.svd(a, full_matrices=False, compute_uv=True)  # the wrapper's order
    return s, u, _conj(_mT(vt))


def _keep_diagonal(x):
    """The diagonal of the last two axes, as a matrix (zero elsewhere)."""
    rows, cols = _index_grids(x.shape)
    return _keep(rows == cols, x)


def _svd_factor(s, dtype):
    """``F[i, j] = 1 / (s_j^2 - s_i^2)`` off the diagonal, 0 on it (Townsend 2016)."""
    shape = (*s.shape, s.shape[-1])
    s_i = lax.broadcast_in_dim(s, shape, (*range(s.ndim - 1), s.ndim - 1))
    s_j = lax.broadcast_in_dim(s, shape, (*range(s.ndim - 1), s.ndim))
    eye = _eye(shape, s.dtype)
    return lax.convert_element_type(1 / ((s_j + s_i) * (s_j - s_i) + eye) - eye, dtype)


def _scale_columns(x, d):
    """``x diag(d)``."""
    return x * lax.broadcast_in_dim(d, x.shape, (*range(d.ndim - 1), d.ndim))


def _scale_rows(x, d):
    """``diag(d) x``."""
    return x * lax.broadcast_in_dim(d, x.shape, (*range(d.ndim - 1), d.ndim - 1))


def _svd_parts(s, dtype):
    """``F`` and the reciprocals ``1/s`` (0 where ``s`` is 0) in ``dtype``."""
    zero = lax.convert_element_type(s == 0, s.dtype)
    s_inv = lax.convert_element_type(1 / (s + zero) - zero, dtype)
    return _svd_factor(s, dtype), s_inv


@defjvp("svd")
def svd_jvp(primals, tangents, out, *, full_matrices, compute_uv, **params):
    r"""Townsend (2016), as JAX's rule: with ``dP = U^H dA V``,
    ``ds = re diag(dP)``, ``dU = U (F o (dP S + S dP^H) + i Im diag(dP) / s) [+ (I - U U^H)
    dA V / s if m > n]``, ``dV = V (F o (S dP + dP^H S)) [+ (I - V V^H) dA^H U / s if n > m]``.
    Distinct nonzero singular values are assumed for ``dU``, ``dV`` (as in JAX)."""
    (a,) = primals
    _check_svd_params(a, full_matrices, compute_uv, **params)
    (da,) = tangents
    if da is None:
        return [None] * (3 if compute_uv else 1)
    s, u, v = _thin_svd(a, out, compute_uv)
    dtype = a.dtype
    dp = _mm(_mm(_conj(_mT(u)), da), v)
    ds = _diagonal(dp)
    ds = lax.real(ds) if _is_complex(ds) else ds
    if not compute_uv:
        return [ds]
    f, s_inv = _svd_parts(s, dtype)
    s_c = lax.convert_element_type(s, dtype)
    dss = _scale_columns(dp, s_c)
    sds = _scale_rows(dp, s_c)
    x = f * (dss + _conj(_mT(dss)))
    if _is_complex(dp):  # i Im diag(dP) / s: the phase freedom of a complex pair (u_i, v_i)
        x = x + _scale_columns(_keep_diagonal(dp - _conj(_mT(dp))) / 2, s_inv)
    du = _mm(u, x)
    dv = _mm(v, f * (sds + _conj(_mT(sds))))
    m, n = a.shape[-2:]
    if m > n:
        dav = _mm(da, v)
        du = du + _scale_columns(dav - _mm(u, _mm(_conj(_mT(u)), dav)), s_inv)
    if n > m:
        dahu = _mm(_conj(_mT(da)), u)
        dv = dv + _scale_columns(dahu - _mm(v, _mm(_conj(_mT(v)), dahu)), s_inv)
    return [ds, du, _conj(_mT(dv))]


@defvjp("svd", reads=EVERYTHING)
def svd_vjp(cts, primals, out, *, full_matrices, compute_uv, **params):
    r"""The transpose of `svd_jvp`, term by term (JAX's convention for complex data)."""
    (a,) = primals
    _check_svd_params(a, full_matrices, compute_uv, **params)
    s_bar, u_bar, vt_bar = [*cts, None, None][:3]
    if s_bar is None and u_bar is None and vt_bar is None:
        return (None,)
    s, u, v = _thin_svd(a, out, compute_uv)
    dtype = a.dtype
    m, n = a.shape[-2:]
    k = s.shape[-1]
    dp_bar = jnp.zeros((*a.shape[:-2], k, k), dtype)
    a_bar = jnp.zeros(a.shape, dtype)
    if s_bar is not None:
        dp_bar = dp_bar + _diag_embed(s_bar, dtype)
    if u_bar is not None or vt_bar is not None:
        f, s_inv = _svd_parts(s, dtype)
        s_c = lax.convert_element_type(s, dtype)
    if u_bar is not None:
        x_bar = _mm(_mT(u), u_bar)
        dss_bar = f * x_bar
        dss_bar = dss_bar + _conj(_mT(dss_bar))
        dp_bar = dp_bar + _scale_columns(dss_bar, s_c)
        if _is_complex(x_bar):
            d2 = _keep_diagonal(_scale_columns(x_bar, s_inv)) / 2
            dp_bar = dp_bar + d2 - _conj(_mT(d2))
        if m > n:
            # du += (I - U U^H) dA V diag(1/s): transpose M dA N -> M^T u_bar N^T.
            w = _scale_columns(u_bar, s_inv)
            proj = w - _mm(_conj(u), _mm(_mT(u), w))
            a_bar = a_bar + _mm(proj, _mT(v))
    if vt_bar is not None:
        v_bar = _conj(_mT(vt_bar))
        y_bar = _mm(_mT(v), v_bar)
        sds_bar = f * y_bar
        sds_bar = sds_bar + _conj(_mT(sds_bar))
        dp_bar = dp_bar + _scale_rows(sds_bar, s_c)
        if n > m:
            # dv += (I - V V^H) dA^H U diag(1/s) =: P B Q with B = dA^H; B_bar = P^T v_bar Q^T,
            # and dA_bar += B_bar^H.
            w = _scale_columns(v_bar, s_inv)
            b_bar = _mm(w - _mm(_conj(v), _mm(_mT(v), w)), _mT(u))
            a_bar = a_bar + _conj(_mT(b_bar))
    a_bar = a_bar + _mm(_mm(_conj(u), dp_bar), _mT(v))
    return (a_bar,)


# ------------------------------------------------------------------------------------------
# qr: A = Q R (m x n, m >= n, thin), outputs (Q, R).


def _check_qr_params(a, pivoting, full_matrices, **_):
    m, n = a.shape[-2:]
    if pivoting:
        raise NotImplementedError(
            "jaxls.ad: the `qr` rules do not support pivoting (nor does JAX)."
        )
    if m < n or (full_matrices and m != n):
        raise NotImplementedError(
            "jaxls.ad: the derivative of `qr` is defined here, as in JAX, for a matrix with at "
            "least as many rows as columns and its thin factorisation (`full_matrices=False`, "
            "`jnp.linalg.qr(a, mode='reduced')`, the default)."
        )


def _right_solve_r(r, b, transpose):
    """``b R^-1`` (or ``b R^-T``), ``R`` upper triangular."""
    return _triangular_solve(r, b, left_side=False, lower=False, transpose_a=transpose)


@defjvp("qr")
def qr_jvp(primals, tangents, out, *, pivoting, full_matrices, **params):
    r"""Walter and Lehmann (2018), as JAX's rule: with ``B = dA R^-1``, ``C = Q^H B``,
    ``L = tril(C, -1)`` and ``O = L - L^H + i Im diag(C)`` (skew-Hermitian),
    ``dQ = Q (O - C) + B`` and ``dR = (C - O) R``."""
    (a,) = primals
    _check_qr_params(a, pivoting, full_matrices)
    (da,) = tangents
    if da is None:
        return [None, None]
    q, r = out
    b = _right_solve_r(r, da, False)
    c = _mm(_conj(_mT(q)), b)
    low = _tril(c, -1)
    o = low - _conj(_mT(low))
    if _is_complex(c):
        o = o + _keep_diagonal(c - lax.convert_element_type(lax.real(c), c.dtype))
    return [_mm(q, o - c) + b, _mm(c - o, r)]


@defvjp("qr", reads=OUTPUTS)
def qr_vjp(cts, primals, out, *, pivoting, full_matrices, **params):
    r"""The transpose of `qr_jvp`, term by term (JAX's convention for complex data)."""
    (a,) = primals
    _check_qr_params(a, pivoting, full_matrices)
    q_bar, r_bar = cts
    if q_bar is None and r_bar is None:
        return (None,)
    q, r = out
    k_bar = jnp.zeros(r.shape, r.dtype)  # K = C - O
    b_bar = jnp.zeros(a.shape, a.dtype)
    if r_bar is not None:
        k_bar = k_bar + _mm(r_bar, _mT(r))
    if q_bar is not None:
        k_bar = k_bar - _mm(_mT(q), q_bar)
        b_bar = b_bar + q_bar
    o_bar = -k_bar
    c_bar = k_bar + _tril(o_bar - _conj(_mT(o_bar)), -1)
    if _is_complex(c_bar):
        d = _keep_diagonal(o_bar)
        c_bar = c_bar + d - lax.convert_element_type(lax.real(d), d.dtype)
    b_bar = b_bar + _mm(_conj(q), c_bar)
    return (_right_solve_r(r, b_bar, True),)


# ------------------------------------------------------------------------------------------
# tridiagonal_solve: X = A^{-1} B, A with sub-, main and super-diagonals dl, d, du of shape
# (..., m) (dl[0] and du[m-1] not read), B of shape (..., m, n).


def _shift(x, by: int, axis: int):
    """``y[i] = x[i - by]`` along ``axis`` (zero where ``i - by`` is out of range): a `pad`
    with a negative edge, O(m) where a shift matrix would be O(m^2)."""
    config = [(0, 0, 0)] * x.ndim
    config[axis % x.ndim] = (by, -by, 0)
    return lax.pad(x, lax.full_like(x, 0, shape=()), config)


def _as_column(v, like):
    """``v`` of shape (..., m) broadcast to the (..., m, n) shape of ``like``."""
    return lax.broadcast_in_dim(v, like.shape, tuple(range(v.ndim)))


def _tridiagonal_product(dl, d, du, x):
    """``T x`` for the tridiagonal ``T`` with diagonals ``dl``, ``d``, ``du`` (``None`` for a
    zero diagonal; ``dl[0]`` and ``du[m-1]`` are masked out, NaN-safe)."""
    m = x.shape[-2]
    index = lax.broadcasted_iota(jnp.int32, x.shape[:-1], x.ndim - 2)
    y = jnp.zeros_like(x)
    if d is not None:
        y = y + _as_column(d, x) * x
    if dl is not None:
        y = y + _as_column(_keep(index >= 1, dl), x) * _shift(x, 1, -2)
    if du is not None:
        y = y + _as_column(_keep(m - 1 - index >= 1, du), x) * _shift(x, -1, -2)
    return y


@defjvp("tridiagonal_solve")
def tridiagonal_solve_jvp(primals, tangents, out, *, perturb_singular):
    r"""``dX = A^{-1} (dB - dA X)``, ``dA`` the tridiagonal matrix of the diagonals'
    tangents (Giles 2008, the linear solve).

    ``perturb_singular`` is passed on: as in JAX, a perturbed (numerically singular) system
    is differentiated as if unperturbed.
    """
    dl, d, du, _ = primals
    ddl, dd, ddu, db = tangents
    rhs = db
    if not (ddl is None and dd is None and ddu is None):
        delta = _tridiagonal_product(ddl, dd, ddu, out)
        rhs = -delta if rhs is None else rhs - delta
    if rhs is None:
        return None
    return lax.linalg.tridiagonal_solve(dl, d, du, rhs, perturb_singular=perturb_singular)


@defvjp("tridiagonal_solve", reads=inputs(0, 1, 2, outputs=True))
def tridiagonal_solve_vjp(ct, primals, out, *, perturb_singular):
    r"""``B_bar = A^{-T} X_bar``; with ``Y = -B_bar``: ``d_bar_i = sum_k Y_ik X_ik``,
    ``dl_bar_i = sum_k Y_ik X_{i-1,k}`` and ``du_bar_i = sum_k Y_ik X_{i+1,k}`` (zero where
    the neighbour is out of range: ``dl[0]`` and ``du[m-1]`` are not read).

    ``A^T`` is tridiagonal with sub-diagonal ``du`` shifted down by one and super-diagonal
    ``dl`` shifted up by one.
    """
    dl, d, du, _ = primals
    b_bar = lax.linalg.tridiagonal_solve(
        _shift(du, 1, -1), d, _shift(dl, -1, -1), ct, perturb_singular=perturb_singular
    )
    y_bar = -b_bar
    dl_bar = jnp.sum(y_bar * _shift(out, 1, -2), axis=-1)
    d_bar = jnp.sum(y_bar * out, axis=-1)
    du_bar = jnp.sum(y_bar * _shift(out, -1, -2), axis=-1)
    return (dl_bar, d_bar, du_bar, b_bar)


# ------------------------------------------------------------------------------------------
# eig: A V = V diag(w) with right eigenvectors V; left ones U with U^H A = diag(w) U^H, i.e.
# A^H U = U diag(conj w). Outputs (w, [vl], [vr]), complex whatever A's dtype.


def _check_eig_params(
    compute_left_eigenvectors, compute_right_eigenvectors, enable_eigvec_derivs, **_
):
    if (compute_left_eigenvectors or compute_right_eigenvectors) and not enable_eigvec_derivs:
        raise NotImplementedError(
            "jaxls.ad: the derivative of `eig` computing eigenvectors (`jnp.linalg.eig`, "
            "even for its eigenvalues; the second derivative of `jnp.linalg.eigvals`, whose "
            "first reads them) holds only for distinct eigenvalues and eigenvectors whose "
            "largest-magnitude component is unique (LAPACK's normalisation), which cannot be "
            "checked, and jax refuses it too. Opt in with `jax.lax.linalg.eig(a, "
            "enable_eigvec_derivs=True)` (with `compute_left_eigenvectors=False, "
            "compute_right_eigenvectors=False` for the eigenvalues alone), or use "
            "`jnp.linalg.eigvals` for first derivatives of the eigenvalues."
        )


def _solve(a, b, transpose: bool = False):
    """``a^{-1} b`` (or ``a^{-T} b``) for a general square ``a``, through ``lu``:
    ``P a = L U``, so ``a^{-1} = U^{-1} L^{-1} P`` and ``a^{-T} = P^T L^{-T} U^{-T}``."""
    lu, _, permutation = lax.linalg.lu(a)
    p = _permutation_matrix(permutation, a.dtype)
    flags = dict(left_side=True, transpose_a=transpose)
    if transpose:
        x = _triangular_solve(lu, b, lower=False, **flags)
        x = _triangular_solve(lu, x, lower=True, unit_diagonal=True, **flags)
        return _mm(_mT(p), x)
    x = _triangular_solve(lu, _mm(p, b), lower=True, unit_diagonal=True, **flags)
    return _triangular_solve(lu, x, lower=False, **flags)


def _right_vectors(a, w, out, params):
    """``V``, the right eigenvectors of ``out``'s eigenvalues ``w``, recomputed if the
    equation did not compute them (as in JAX's rule, with the equation's parameters).

    LAPACK orders the eigenvalues differently with and without eigenvectors (for n > 75 or
    so), so the recomputed columns are matched to ``w``: column ``i`` is the one whose
    eigenvalue is nearest ``w_i`` (distinct eigenvalues assumed, as throughout).
    """
    if params["compute_right_eigenvectors"]:
        return out[-1]
    params = params | dict(compute_left_eigenvectors=False, compute_right_eigenvectors=True)
    w_new, v_new = lax.linalg.eig_p.bind(a, **params)
    shape = (*w.shape, w.shape[-1])
    w_i = lax.broadcast_in_dim(w, shape, (*range(w.ndim - 1), w.ndim - 1))
    w_j = lax.broadcast_in_dim(w_new, shape, (*range(w.ndim - 1), w.ndim))
    nearest = lax.argmin(lax.abs(w_i - w_j), w.ndim, jnp.int32)
    return _mm(v_new, _mT(_permutation_matrix(nearest, v_new.dtype)))


def _column_sums(x):
    return jnp.sum(x, axis=-2)


def _as_rows(c, like):
    """``c`` of shape (..., n) repeated down the rows of the (..., n, n) ``like``."""
    return lax.broadcast_in_dim(c, like.shape, (*range(c.ndim - 1), c.ndim))


def _largest_component_mask(v):
    """``M[i, j] = 1`` where ``i`` is the first row of the largest ``|v_ij|`` in column j
    (the component LAPACK makes real), and ``1 / Re(v_{k_j j})`` per column."""
    k = lax.argmax(lax.abs(v), v.ndim - 2, jnp.int32)
    rows, _ = _index_grids(v.shape)
    mask = lax.convert_element_type(lax.eq(rows, _as_rows(k, v)), v.dtype)
    largest = lax.real(_column_sums(mask * v))
    return mask, lax.convert_element_type(1 / largest, v.dtype)


def _real_part(x):
    """``Re x`` as a complex array: ``(x + conj x) / 2`` (self-transposed, exact)."""
    return (x + _conj(x)) / 2


def _imaginary_part(x):
    """``i Im x``: ``(x - conj x) / 2`` (self-transposed, exact)."""
    return (x - _conj(x)) / 2


def _eigvec_tangent(w, v, p):
    r"""``dv = V (F o P) + V diag(c)`` from ``P = V^{-1} dA V`` (Giles 2008, sec. 3.1), with
    ``c_j`` the free scale of column j fixed by LAPACK's normalisation:
    ``Re(v_j^H dv_j) = 0`` (unit norm) and ``Im dv_{k_j j} = 0`` (largest component real)
    give ``c_j = -Re(v_j^H u_j) - i Im(u_{k_j j}) / v_{k_j j}``, ``u_j`` column j of
    ``V (F o P)``."""
    u = _mm(v, _eigh_factor(w, v.dtype) * p)
    mask, inv_largest = _largest_component_mask(v)
    c = -_real_part(_column_sums(_conj(v) * u))
    c = c - _imaginary_part(_column_sums(mask * u)) * inv_largest
    return u + v * _as_rows(c, v)


def _eigvec_tangent_transpose(w, v, dv_bar):
    """``P_bar``, the transpose of `_eigvec_tangent` in ``P``, term by term."""
    mask, inv_largest = _largest_component_mask(v)
    c_bar = _column_sums(v * dv_bar)
    u_bar = dv_bar - _conj(v) * _as_rows(_real_part(c_bar), v)
    u_bar = u_bar - mask * _as_rows(_imaginary_part(c_bar * inv_largest), v)
    return _eigh_factor(w, v.dtype) * _mm(_mT(v), u_bar)


@defjvp("eig")
def eig_jvp(primals, tangents, out, **params):
    r"""``P = V^{-1} dA V``; ``dw = diag(P)``; ``dV = V (F o P) + V diag(c)``,
    ``F_ij = 1 / (w_j - w_i)`` (Giles 2008, sec. 3.1), as JAX's rule.

    ``c`` keeps LAPACK's normalisation of each eigenvector (unit 2-norm, largest-magnitude
    component real): see `_eigvec_tangent`. The left eigenvectors are the right ones of
    ``A^H`` (eigenvalues ``conj w``), differentiated along ``dA^H``. As in JAX, eigenvectors
    need ``enable_eigvec_derivs=True`` (distinct eigenvalues and a unique largest component
    per eigenvector are assumed, not checked), and the eigenvalues alone recompute ``V``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jax.lax import linalg
        >>> a = jnp.array([[2.0, 1.0], [0.0, 3.0]])
        >>> params = dict(compute_left_eigenvectors=False, compute_right_eigenvectors=False,
        ...               enable_eigvec_derivs=False, implementation=None)
        >>> out = linalg.eig_p.bind(a, **params)
        >>> (dw,) = eig_jvp((a,), (jnp.array([[0.0, 0.0], [1.0, 0.0]]),), out, **params)
        >>> print(dw.real.round(4) + 0.0)  # w = (2, 3); tr' = 0 and det' = 3 dw_1 + 2 dw_2 = -1
        [-1.  1.]
    """
    (a,) = primals
    _check_eig_params(**params)
    (da,) = tangents
    left, right = params["compute_left_eigenvectors"], params["compute_right_eigenvectors"]
    if da is None:
        return [None] * (1 + left + right)
    w = out[0]
    da = lax.convert_element_type(da, w.dtype)
    v = _right_vectors(a, w, out, params)
    p = _solve(v, _mm(da, v))
    tangent_out = [_diagonal(p)]
    if left:
        vl = out[1]
        p_left = _solve(vl, _mm(_conj(_mT(da)), vl))
        tangent_out.append(_eigvec_tangent(_conj(w), vl, p_left))
    if right:
        tangent_out.append(_eigvec_tangent(w, v, p))
    return tangent_out


@defvjp("eig", reads=EVERYTHING)
def eig_vjp(cts, primals, out, **params):
    r"""The transpose of `eig_jvp`: ``A_bar = V^{-T} P_bar V^T`` with ``P_bar =
    diag(w_bar) + F o (V^T U_bar)`` (plus the left eigenvectors' term, conjugated and
    transposed back from ``dA^H``); the real part for real ``A``."""
    (a,) = primals
    _check_eig_params(**params)
    left, right = params["compute_left_eigenvectors"], params["compute_right_eigenvectors"]
    w_bar, *vector_cts = cts
    vl_bar = vector_cts[0] if left else None
    vr_bar = vector_cts[-1] if right else None
    if w_bar is None and vl_bar is None and vr_bar is None:
        return (None,)
    w = out[0]
    a_bar = jnp.zeros(a.shape, w.dtype)
    if w_bar is not None or vr_bar is not None:
        v = _right_vectors(a, w, out, params)
        p_bar = jnp.zeros(v.shape, v.dtype)
        if w_bar is not None:
            p_bar = p_bar + _diag_embed(w_bar, v.dtype)
        if vr_bar is not None:
            p_bar = p_bar + _eigvec_tangent_transpose(w, v, vr_bar)
        a_bar = a_bar + _solve(v, _mm(p_bar, _mT(v)), transpose=True)
    if vl_bar is not None:
        vl = out[1]
        p_bar = _eigvec_tangent_transpose(_conj(w), vl, vl_bar)
        a_bar = a_bar + _conj(_mT(_solve(vl, _mm(p_bar, _mT(vl)), transpose=True)))
    return (a_bar if _is_complex(a) else lax.real(a_bar),)


# ------------------------------------------------------------------------------------------
# schur: refused, as in JAX (which has no rule for it).


@defjvp("schur")
@defvjp("schur", reads=NOTHING)
def schur_refused(*args, **params):
    """Raise: JAX has no derivative for the Schur decomposition, so neither has jaxls."""
    raise NotImplementedError(
        "jaxls.ad: the Schur decomposition `schur` (`jax.scipy.linalg.schur`, and the "
        "functions built on it: `sqrtm`, `funm`, ...) has no derivative rule, and jax refuses "
        "it too (\"Differentiation rule for 'schur' not implemented\"). For the "
        "eigenvalues, differentiate `jnp.linalg.eigvals`; for a matrix function of a "
        "symmetric matrix, build it on `jnp.linalg.eigh`."
    )


__all__ = [
    "cholesky_jvp",
    "cholesky_vjp",
    "eig_jvp",
    "eig_vjp",
    "eigh_jvp",
    "eigh_vjp",
    "lu_jvp",
    "lu_vjp",
    "qr_jvp",
    "qr_vjp",
    "schur_refused",
    "svd_jvp",
    "svd_vjp",
    "triangular_solve_jvp",
    "triangular_solve_vjp",
    "tridiagonal_solve_jvp",
    "tridiagonal_solve_vjp",
]
