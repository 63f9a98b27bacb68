"""Tests of the rules of the primitives JAX differentiates and jaxls used to refuse (issue
11): ``cumlogsumexp``, the generic variadic ``reduce``, and the special functions
``igamma``, ``igammac``, ``regularized_incomplete_beta`` and ``random_gamma``
(`jaxls._src.ad.rules.special`); with the refusals that follow JAX's (``igamma_grad_a``,
``betainc`` in ``a`` and ``b``, ``nextafter``, ``reduce`` with a differentiated initial
value, reverse mode through ``lax.random_gamma_grad``'s while loops).

Oracle: ``jax.jvp`` / ``jax.vjp`` / ``jax.hessian`` of the same function, computed with
jaxls's in one `fast_jit` per case (compiling dominates the run time); where JAX's result
is ``nan`` (``cumlogsumexp`` of a prefix of infinities) a NumPy recomputation of jaxls's
documented convention. Second order is checked by the Hessian (forward over reverse) and
by tracing: every primitive the rules emit has a JVP rule.

Dtypes: every case in float32 (JAX's default) and float64 (enabled by the dtype parameter,
tests/conftest.py); the case data are NumPy float64 arrays, cast to the tested dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import pytest
from jax import lax

import jaxls.ad as ad
from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import jvp_rules
from tests.ad_zoo import fast_jit
from tests.helpers import close, primitive_names, random_like

F32, F64 = jnp.float32, jnp.float64
DTYPES = [F32, F64]
RTOL = {F32: 2e-5, F64: 1e-10}
INTERPRETED = jx.CALLS | jx.REMAT | jx.COND | jx.SCAN | jx.WHILE | jx.CUSTOM_JVP


def check_against_jax(f, args, argnums=(0,), *, hessian=True, rtol=None):
    """jaxls's ``jvp``, ``vjp`` and (``hessian``) Hessian of ``w . f`` in ``argnums`` against
    jax's, all in one `fast_jit`; the arguments not in ``argnums`` are held fixed. Returns
    jaxls's results, for further checks."""
    args = tuple(jax.device_put(a) for a in args)  # (`jnp.asarray` compiles a copy per shape)
    dtype = args[argnums[0]].dtype.type
    rtol = RTOL[dtype] if rtol is None else rtol

    def restricted(diff):
        full = list(args)
        for i, x in zip(argnums, diff, strict=True):
            full[i] = x
        return f(*full)

    diff = tuple(args[i] for i in argnums)
    out = jax.eval_shape(restricted, diff)
    tangents, cotangent, weights = random_like(diff, 1), random_like(out, 2), random_like(out, 3)

    def scalar(diff):
        leaves = zip(jax.tree.leaves(weights), jax.tree.leaves(restricted(diff)), strict=True)
        return sum(jnp.sum(w * y) for w, y in leaves)

    @fast_jit
    def both(diff):
        ours = {
            "jvp": ad.jvp(restricted, (diff,), (tangents,)),
            "vjp": ad.vjp(restricted, diff)[1](cotangent),
        }
        theirs = {
            "jvp": jax.jvp(restricted, (diff,), (tangents,)),
            "vjp": jax.vjp(restricted, diff)[1](cotangent),
        }
        if hessian:
            ours["hessian"], theirs["hessian"] = ad.hessian(scalar)(diff), jax.hessian(scalar)(diff)
        return ours, theirs

    ours, theirs = both(diff)
    close(ours, theirs, rtol)
    return ours


def assert_emits_only_differentiable(f, *args):
    """Every primitive in jaxls's forward and reverse derivatives of ``f`` (sub-jaxprs
    included) has a JVP rule: the rules can be differentiated again."""
    tangents = jax.tree.map(jnp.ones_like, args)
    emitted = primitive_names(jax.make_jaxpr(lambda *a: ad.jvp(f, a, tangents))(*args))
    scalar = lambda *a: sum(jnp.sum(y) for y in jax.tree.leaves(f(*a)))
    emitted |= primitive_names(jax.make_jaxpr(ad.grad(scalar, tuple(range(len(args)))))(*args))
    missing = sorted(emitted - INTERPRETED - set(jvp_rules))
    assert not missing, missing


# ------------------------------------------------------------------------------------------
# cumlogsumexp.

_rng = np.random.default_rng(0)
SPREAD = _rng.uniform(-400.0, 400.0, (2, 9))  # exp overflows at 89 (float32), 710 (float64)
NEG_INF = np.array([[0.3, -np.inf, 2.0, -np.inf, -1.0], [-np.inf, 1.5, -np.inf, 0.2, 3.0]])
CUMLOGSUMEXP = {
    "axis1": (_rng.standard_normal((3, 5)), 1, False),
    "axis0_reverse": (_rng.standard_normal((4, 3)), 0, True),
    "spread": (SPREAD, 1, False),
    "spread_reverse": (SPREAD, 1, True),
    # -inf entries after the first (JAX's derivative is finite there; see below for a
    # leading run of -inf): they get no derivative.
    "neg_inf": (NEG_INF[:1], 1, False),
    "neg_inf_reverse": (NEG_INF[1:], 1, True),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CUMLOGSUMEXP))
def test_cumlogsumexp(case, dtype):
    x, axis, reverse = CUMLOGSUMEXP[case]
    f = lambda x: lax.cumlogsumexp(x, axis, reverse=reverse)
    ours = check_against_jax(f, (x.astype(dtype),), hessian=not case.startswith("neg_inf"))
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(ours))


def test_cumlogsumexp_complex():
    """Holomorphic: the same recurrence, cotangents by transposition (JAX's convention)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((2, 5)) + 1j * rng.standard_normal((2, 5))).astype(np.complex64)
    f = lambda x: lax.cumlogsumexp(x, 1, reverse=True)
    check_against_jax(f, (x,), hessian=False, rtol=RTOL[F32])


def test_cumlogsumexp_second_order_with_neg_inf():
    """The Hessian with -inf entries: theirs is finite, ours agrees (no nan from the
    infinite differences the rule masks)."""
    x = np.array([0.3, -np.inf, 2.0, -np.inf, -1.0, 4.0], np.float32)
    f = lambda x: lax.cumlogsumexp(x)[jnp.array([2, 5])]
    check_against_jax(f, (x,))


def _cumlogsumexp_convention(x, t):
    """jaxls's derivative of cumlogsumexp along the last axis, in NumPy (float64): the
    softmax of the prefix, exp(x_j - y_i); where y_i is infinite (a prefix of -inf, or an
    entry +inf), the mean over the prefix entries equal to y_i (the limit of equal
    entries; JAX gives nan)."""
    out = np.empty(x.shape)
    for index in np.ndindex(x.shape[:-1]):
        for i in range(x.shape[-1]):
            prefix, dt = x[index][: i + 1], t[index][: i + 1]
            y = np.logaddexp.reduce(prefix)
            if np.isfinite(y):
                w = np.exp(prefix - y)
            else:
                w = (prefix == y) / np.sum(prefix == y)
            out[(*index, i)] = np.sum(w * dt)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_cumlogsumexp_infinite_prefixes(dtype):
    x = np.array(
        [
            [-np.inf, -np.inf, -np.inf, 0.5, -np.inf, 2.0],
            [1.0, np.inf, -2.0, np.inf, 3.0, -np.inf],
            [-np.inf, np.inf, np.inf, 0.0, 1.0, 2.0],
        ]
    )
    t = np.random.default_rng(4).standard_normal(x.shape)
    expected = _cumlogsumexp_convention(x, t)
    f = lambda x: lax.cumlogsumexp(x, 1)
    both = fast_jit(lambda x, t: (ad.jvp(f, (x,), (t,))[1], ad.vjp(f, x)[1](t)[0]))
    tangent, cotangent = both(x.astype(dtype), t.astype(dtype))
    np.testing.assert_allclose(tangent, expected, rtol=10 * RTOL[dtype])
    # The VJP is the transpose of the JVP: <t, J e_k> for unit vectors e_k.
    unit = np.eye(x.shape[1])
    jac = np.stack([_cumlogsumexp_convention(x, np.broadcast_to(e, x.shape)) for e in unit], -1)
    np.testing.assert_allclose(cotangent, np.einsum("bi,bik->bk", t, jac), rtol=10 * RTOL[dtype])


def test_cumlogsumexp_emits_differentiable_primitives():
    assert_emits_only_differentiable(lambda x: lax.cumlogsumexp(x, 0, reverse=True), jnp.ones(5))


# ------------------------------------------------------------------------------------------
# reduce: the generic, variadic reduction with a computation of its own.


def _argmax_pair(x, idx):
    """(max, argmax) along axis 1, the first index at ties: one ``reduce`` of two operands."""

    def pick(a, b):
        take_b = (b[0] > a[0]) | ((b[0] == a[0]) & (b[1] < a[1]))
        return lax.select(take_b, b[0], a[0]), lax.select(take_b, b[1], a[1])

    inits = (jnp.array(-jnp.inf, x.dtype), jnp.array(0, idx.dtype))
    return lax.reduce((x, idx), inits, pick, (1,))


def _sum_and_product(x):
    """(sum, product) over axes 0 and 2: one ``reduce`` of two operands."""
    add_mul = lambda a, b: (a[0] + b[0], a[1] * b[1])
    zero, one = jnp.array(0, x.dtype), jnp.array(1, x.dtype)
    return lax.reduce((x, x), (zero, one), add_mul, (0, 2))


def _one_plus_product(x):
    """prod(1 + x) - 1 along axis 0, as the monoid a + b + ab (identity 0)."""
    return lax.reduce(x, jnp.array(0, x.dtype), lambda a, b: a + b + a * b, (0,))


TIES = np.array([[1.0, 3.0, 3.0, -1.0, 3.0], [2.0, 2.0, 2.0, 0.5, 0.0], [0.0, -1.0, 4.0, 4.0, 1.0]])
INDEX = np.broadcast_to(np.arange(5.0), TIES.shape)
# JAX's rule fails (a TypeError, reshaping its symbolic zero) on a reduce with an operand it
# does not differentiate, such as the index of an argmax pair: the pair is compared with
# JAX differentiating the (float) index too.
REDUCE = {
    "argmax_pair": (_argmax_pair, (TIES, INDEX), (0, 1)),
    "sum_and_product": (_sum_and_product, (_rng.uniform(0.5, 1.5, (3, 2, 5)),), (0,)),
    "one_plus_product": (_one_plus_product, (_rng.uniform(-0.5, 0.5, (7, 2)),), (0,)),
    "size_one_axis": (_one_plus_product, (_rng.standard_normal((1, 3)),), (0,)),
}


def test_reduce_cases_are_the_generic_primitive():
    for f, args, _ in REDUCE.values():
        args = [a.astype(np.float32) for a in args]
        assert "reduce" in primitive_names(jax.make_jaxpr(f)(*args))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(REDUCE))
def test_reduce(case, dtype):
    f, args, argnums = REDUCE[case]
    check_against_jax(f, [a.astype(dtype) for a in args], argnums)


def test_reduce_argmax_output_is_integer():
    """The index output carries no derivative; the max's goes to the first maximiser (the
    pairwise tree JAX uses, with its tie-breaking by index)."""
    x = jnp.asarray(TIES, F32)
    f = lambda x: _argmax_pair(x, lax.broadcasted_iota(np.int32, x.shape, 1))
    both = lambda x: (ad.jvp(f, (x,), (jnp.ones_like(x),)), ad.grad(lambda x: jnp.sum(f(x)[0]))(x))
    ((_, i), (_, ti)), grad = fast_jit(both)(x)
    np.testing.assert_array_equal(i, [1, 0, 2])
    assert ti.dtype == jax.dtypes.float0
    np.testing.assert_array_equal(grad, np.eye(5)[[1, 0, 2]])


def test_reduce_under_vmap_and_eagerly():
    x = jnp.asarray(_rng.uniform(0.5, 1.5, (4, 3, 2, 5)), F32)
    g = lambda x: jnp.sum(_sum_and_product(x)[1])
    # jax's derivatives (the oracles) in one program; jaxls's under jit of vmap, and eagerly.
    batched, single = fast_jit(lambda x: (jax.vmap(jax.grad(g))(x), jax.grad(g)(x[0])))(x)
    np.testing.assert_allclose(jax.jit(jax.vmap(ad.grad(g)))(x), batched, rtol=RTOL[F32])
    np.testing.assert_allclose(ad.grad(g)(x[0]), single, rtol=RTOL[F32])


def test_reduce_with_a_differentiated_initial_value_is_refused_like_jax():
    def f(x):
        init = jnp.min(x) * 0  # an identity that depends on x
        return lax.reduce(x, init, lambda a, b: a + b + a * b, (0,))

    x = jnp.linspace(0.1, 0.5, 4)
    with pytest.raises(NotImplementedError, match="initial values"):
        jax.jvp(f, (x,), (x,))
    with pytest.raises(NotImplementedError, match=r"`reduce`.*initial value"):
        ad.jvp(f, (x,), (x,))
    with pytest.raises(NotImplementedError, match=r"`reduce`.*initial value"):
        ad.grad(lambda x: jnp.sum(f(x)))(x)


def test_reduce_emits_differentiable_primitives():
    assert_emits_only_differentiable(_sum_and_product, jnp.ones((3, 2, 5)))


# ------------------------------------------------------------------------------------------
# igamma, igammac (gammainc, gammaincc): in a and x; second order in x only.

# Shape parameters from 1e-3 to 1e3, x on both sides of a (series and continued fraction).
GAMMA_A = np.array([1e-3, 0.1, 1.0, 5.0, 200.0, 1e3, 2.5, 0.7])
GAMMA_X = np.array([1e-3, 0.5, 1.5, 4.0, 190.0, 1100.0, 30.0, 1e-4])
GAMMA_FUNS = {"gammainc": jsp.gammainc, "gammaincc": jsp.gammaincc}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(GAMMA_FUNS))
def test_incomplete_gamma_first_order(name, dtype):
    f = GAMMA_FUNS[name]
    check_against_jax(f, (GAMMA_A.astype(dtype), GAMMA_X.astype(dtype)), (0, 1), hessian=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(GAMMA_FUNS))
def test_incomplete_gamma_second_order_in_x(name, dtype):
    f = GAMMA_FUNS[name]
    check_against_jax(f, (GAMMA_A.astype(dtype), GAMMA_X.astype(dtype)), (1,))


def test_incomplete_gamma_scalar_beside_array():
    """A rank-0 operand beside an array (``igamma a 2.0:f32[]``): broadcast, summed back."""
    f = lambda a, x: lax.igamma(a, x)
    check_against_jax(f, (GAMMA_A[:4], np.float64(2.0)), (0, 1), hessian=False)


@pytest.mark.parametrize("name", sorted(GAMMA_FUNS))
def test_incomplete_gamma_second_order_in_a_is_refused_like_jax(name):
    """d/da igamma is ``igamma_grad_a``, which JAX does not differentiate (nor jaxls)."""
    f = lambda a: jnp.sum(GAMMA_FUNS[name](a, jnp.float32(2.0)))
    a = jnp.array([0.5, 3.0])
    with pytest.raises(NotImplementedError, match="igamma_grad_a"):
        jax.hessian(f)(a)
    with pytest.raises(NotImplementedError, match="`igamma_grad_a`"):
        ad.hessian(f)(a)


@pytest.mark.parametrize("argnum", [0, 1])
def test_igamma_grad_a_is_refused_like_jax(argnum):
    args = [jnp.float32(1.5), jnp.float32(2.0)]
    f = lambda *args: lax.igamma_grad_a(*args)
    g = lambda v: f(*args[:argnum], v, *args[argnum + 1 :])
    with pytest.raises(NotImplementedError, match="igamma_grad_a"):
        jax.grad(f, argnum)(*args)
    with pytest.raises(NotImplementedError, match="`igamma_grad_a`"):
        ad.grad(f, argnum)(*args)
    with pytest.raises(NotImplementedError, match="`igamma_grad_a`"):
        ad.jvp(g, (args[argnum],), (args[argnum],))


def test_incomplete_gamma_emits_differentiable_primitives():
    a = jnp.array([0.5, 3.0])
    assert_emits_only_differentiable(lambda x: jsp.gammaincc(a, x), jnp.array([1.0, 2.0]))
    assert_emits_only_differentiable(jsp.gammainc, a, jnp.array([1.0, 2.0]))


# ------------------------------------------------------------------------------------------
# regularized_incomplete_beta (betainc): in x only; a and b refused, as JAX refuses them.

BETA_A = np.array([0.5, 2.0, 30.0, 1e-2, 5.0])
BETA_B = np.array([3.0, 0.7, 40.0, 2.0, 1e-2])
BETA_X = np.array([0.2, 0.9, 0.4, 1e-3, 0.999])


@pytest.mark.parametrize("dtype", DTYPES)
def test_betainc_in_x(dtype):
    args = (BETA_A.astype(dtype), BETA_B.astype(dtype), BETA_X.astype(dtype))
    check_against_jax(jsp.betainc, args, (2,))


@pytest.mark.parametrize("argnum", [0, 1])
def test_betainc_in_a_or_b_is_refused_like_jax(argnum):
    args = [jnp.float32(2.0), jnp.float32(3.0), jnp.float32(0.4)]
    f = lambda *args: jsp.betainc(*args)
    with pytest.raises(ValueError, match="with respect to a and b"):
        jax.grad(f, argnum)(*args)
    with pytest.raises(ValueError, match=r"`regularized_incomplete_beta`.*with respect to a and b"):
        ad.grad(f, argnum)(*args)
    g = lambda v: f(*args[:argnum], v, *args[argnum + 1 :])
    with pytest.raises(ValueError, match=r"`regularized_incomplete_beta`.*with respect to a and b"):
        ad.jvp(g, (args[argnum],), (args[argnum],))


def test_betainc_emits_differentiable_primitives():
    a, b = jnp.array([0.5, 3.0]), jnp.array([2.0, 1.5])
    assert_emits_only_differentiable(lambda x: jsp.betainc(a, b, x), jnp.array([0.3, 0.6]))


# ------------------------------------------------------------------------------------------
# random_gamma (jax.random.gamma, loggamma, and beta / dirichlet built on them): in the
# shape parameter, by implicit differentiation of the sample (``lax.random_gamma_grad``).

SAMPLERS = {
    "gamma": lambda a: jax.random.gamma(jax.random.key(0), a),
    "loggamma": lambda a: jax.random.loggamma(jax.random.key(1), a),
    "beta": lambda a: jax.random.beta(jax.random.key(2), a, a[::-1]),
}


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("gamma", F32), ("gamma", F64), ("loggamma", F32), ("beta", F32)],
)
def test_random_gamma(name, dtype):
    a = np.array([0.05, 0.8, 3.0, 40.0]).astype(dtype)
    check_against_jax(SAMPLERS[name], (a,), rtol=10 * RTOL[dtype])


def test_random_gamma_grad_reverse_mode_eagerly_or_with_a_bound():
    """``lax.random_gamma_grad`` is not a primitive: its while loops differentiate in
    forward mode; JAX refuses reverse mode, which jaxls runs eagerly (counting the loops'
    iterations), and refuses under jit without `max_loop_steps` (tests/test_ad_while.py has
    the bounded loops under jit)."""
    a, x = jnp.array([0.5, 3.0]), jnp.array([1.0, 2.0])
    f = lambda a: lax.random_gamma_grad(a, x)
    loss = lambda a: jnp.sum(f(a))
    tangent = jnp.ones_like(a)

    @fast_jit  # forward mode, jaxls's and jax's, and jax's forward-mode gradient (the oracle)
    def forward_mode(a, tangent):
        return ad.jvp(f, (a,), (tangent,)), jax.jvp(f, (a,), (tangent,)), jax.jacfwd(loss)(a)

    ours, theirs, forward = forward_mode(a, tangent)
    close(ours, theirs, RTOL[F32])
    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work"):
        jax.grad(loss)(a)
    close(ad.grad(loss)(a), forward, 1e-5)
    with pytest.raises(NotImplementedError, match="while_loop"):
        jax.jit(ad.grad(loss))(a)


def test_random_gamma_emits_differentiable_primitives():
    assert_emits_only_differentiable(SAMPLERS["loggamma"], jnp.array([0.5, 3.0]))


# ------------------------------------------------------------------------------------------
# reduce_precision (differentiated as the identity rounded) and nextafter (refused).


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduce_precision(dtype):
    f = lambda x: lax.reduce_precision(jnp.sin(x) * x, exponent_bits=5, mantissa_bits=10)
    check_against_jax(f, (_rng.standard_normal(5).astype(dtype),))


def test_nextafter_is_refused_like_jax():
    f = lambda x: lax.nextafter(x, jnp.float32(2.0))
    with pytest.raises(NotImplementedError, match="nextafter"):
        jax.grad(f)(jnp.float32(1.0))
    with pytest.raises(NotImplementedError, match="`nextafter`"):
        ad.grad(f)(jnp.float32(1.0))
    with pytest.raises(NotImplementedError, match="`nextafter`"):
        ad.jvp(f, (jnp.float32(1.0),), (jnp.float32(1.0),))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", [1.0, 2.0])
def test_polygamma_in_x(order, dtype):
    """polygamma(m, x) in x, to second order, the order held fixed."""
    x = np.array([0.3, 1.5, 4.0, 20.0]).astype(dtype)
    check_against_jax(lax.polygamma, (np.full(4, order, dtype), x), (1,))


def test_polygamma_emits_differentiable_primitives():
    assert_emits_only_differentiable(lambda x: lax.polygamma(jnp.ones(3), x), jnp.ones(3) + 1)


@pytest.mark.parametrize("transform", ["grad", "jvp"])
def test_polygamma_order_is_refused_as_jax_refuses(transform):
    """d/dm polygamma(m, x) was a silent 0; jax raises ValueError, and so does jaxls. The
    derivative in x is unaffected (a constant float order)."""
    f = lambda m: lax.polygamma(m, 2.0)
    with pytest.raises(ValueError):
        jax.grad(f)(1.0)
    with pytest.raises(ValueError, match=r"polygamma.*order `m`"):
        if transform == "grad":
            ad.grad(f)(1.0)
        else:
            ad.jvp(f, (1.0,), (1.0,))
    g = lambda x: jnp.sum(lax.polygamma(jnp.ones(3), x) ** 2)
    x = jnp.array([1.5, 2.0, 3.0])
    np.testing.assert_allclose(ad.grad(g)(x), jax.grad(g)(x), rtol=1e-6)
