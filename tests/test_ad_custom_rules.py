"""jaxls.ad through functions with their author's derivative (`jax.custom_jvp`,
`jax.custom_vjp`), against jax (issue 11, found by running JAX's tests/custom_api_test.py
against jaxls.ad).

* The contract: every transform against jax's, in float32 and float64, on custom rules
  under `jax.vmap` (tangents batched or not), with constant outputs, symbolic-zero tangents
  in and out, ``nondiff_argnums``, closed-over constants, and a rule that applies the
  function itself to the tangent (``f(x) = -x``, rule ``(f(x), f(t))``: reverse mode
  transposes the rule, meets ``f`` again in its linear part and must transpose ``f``'s own
  jaxpr there, not its rule, or it never ends).
* jaxls under `jax.vmap`: batched tangents and cotangents with unbatched primals.
* What jaxls refuses: a rule batched where its function is not (below).

Each case computes jaxls's and jax's results in one `jax.jit` (`ad_zoo.fast_jit`); directions
are drawn by NumPy outside it. A test parametrised with ``jnp.float64`` runs with x64 on
(tests/conftest.py).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.custom_derivatives import SymbolicZero, zero_from_primal

import jaxls.ad as ad
from tests import ad_zoo

F32, F64 = jnp.float32, jnp.float64
TOL = {F32: 2e-5, F64: 1e-9}


def close(ours, theirs, tol):
    """Leaf by leaf: structure, shape and dtype equal, values within ``tol`` of each leaf's
    largest entry."""
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        assert jnp.shape(a) == jnp.shape(b), (jnp.shape(a), jnp.shape(b))
        assert jnp.result_type(a) == jnp.result_type(b), (jnp.result_type(a), jnp.result_type(b))
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


# --- functions with their author's derivative -----------------------------------------------
# Most rules deliberately differ from the function's derivative, so that a result that
# ignores the rule (differentiates the function instead) is caught.


@jax.custom_jvp
def scaled_sin(x):
    return jnp.sin(x)


scaled_sin.defjvp(lambda p, t: (scaled_sin(p[0]), 2.0 * jnp.cos(p[0]) * t[0]))


@jax.custom_jvp
def scaled_mul(x, y):
    return x * y


scaled_mul.defjvp(lambda p, t: (scaled_mul(*p), 2.0 * t[0] * p[1] + 3.0 * p[0] * t[1]))


@jax.custom_jvp
def negate(x):
    """JAX's ``test_linear_in_scan``: the rule applies the function to the tangent."""
    return -x


negate.defjvp(lambda p, t: (negate(p[0]), negate(t[0])))


@jax.custom_jvp
def ones(x):
    """A constant output (unbatched under `jax.vmap`), its tangent shaped like it."""
    return jnp.ones_like(x)


@ones.defjvp
def _ones_jvp(p, t):
    out = ones(p[0])
    return out, jnp.zeros_like(out)


@jax.custom_jvp
def affine_constant(x):
    """A constant value computed from ``x`` (batched under `jax.vmap`), its tangent a Python
    scalar (unbatched)."""
    return 0.0 * x + 1.0


affine_constant.defjvp(lambda p, t: (affine_constant(p[0]), 0.0))


@jax.custom_jvp
def constant_with_identity_rule(x):
    """JAX's ``test_hard_stuff2``: a constant output whose rule's tangent is the input's."""
    return jnp.zeros_like(x)


constant_with_identity_rule.defjvp(lambda p, t: (constant_with_identity_rule(p[0]), t[0]))


@jax.custom_jvp
def zeros_with_zero_tangent(x):
    """A constant output whose rule's tangent, zero, is computed from the input's."""
    return jnp.zeros_like(x)


zeros_with_zero_tangent.defjvp(lambda p, t: (zeros_with_zero_tangent(p[0]), 0.0 * t[0]))


@jax.custom_jvp
def mul_symbolic(x, y):
    """``symbolic_zeros=True``: the rule skips the tangents JAX passes as `SymbolicZero`."""
    return x * y


def _mul_symbolic_jvp(p, t):
    (x, y), (tx, ty) = p, t
    out = mul_symbolic(x, y)
    tout = jnp.zeros_like(out)
    if type(tx) is not SymbolicZero:
        tout = tout + 2.0 * tx * y
    if type(ty) is not SymbolicZero:
        tout = tout + 2.0 * x * ty
    return out, tout


mul_symbolic.defjvp(_mul_symbolic_jvp, symbolic_zeros=True)


@jax.custom_jvp
def sin_and_round(x):
    """Two outputs, the second's tangent a symbolic zero (``zero_from_primal``)."""
    return jnp.sin(x), jnp.round(x)


def _sin_and_round_jvp(p, t):
    s, r = sin_and_round(p[0])
    return (s, r), (2.0 * jnp.cos(p[0]) * t[0], zero_from_primal(r, symbolic_zeros=True))


sin_and_round.defjvp(_sin_and_round_jvp, symbolic_zeros=True)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def apply(g, x):
    return g(x)


apply.defjvp(lambda g, p, t: (apply(g, p[0]), 3.0 * t[0]))


@jax.custom_vjp
def sin_vjp(x):
    return jnp.sin(x)


sin_vjp.defvjp(lambda x: (jnp.sin(x), jnp.cos(x)), lambda r, g: (2.0 * r * g,))


@jax.custom_vjp
def mul_vjp(x, y):
    """``bwd`` returns no cotangent (None, a symbolic zero) for ``y``."""
    return x * y


mul_vjp.defvjp(lambda x, y: (x * y, y), lambda y, g: (2.0 * y * g, None))


@jax.custom_vjp
def ones_vjp(x):
    return jnp.ones_like(x)


ones_vjp.defvjp(lambda x: (jnp.ones_like(x), x), lambda x, g: (0.5 * g * x,))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def apply_vjp(g, x):
    return g(x)


apply_vjp.defvjp(lambda g, x: (g(x), x), lambda g, x, ct: (3.0 * ct * jnp.cos(x),))


def scan_of(f):
    return lambda x: lax.scan(lambda c, _: (f(c), None), x, None, length=2)[0]


# --- the contract -----------------------------------------------------------------------------


class Case(NamedTuple):
    f: object  # R^3 -> R^3
    forward: bool = True  # jax's forward mode refuses custom_vjp


CASES = {
    "vmap": Case(lambda x: jax.vmap(scaled_sin)(x) * x),
    "vmap_of_vmap": Case(lambda x: jnp.sum(jax.vmap(jax.vmap(scaled_sin))(jnp.outer(x, x)), 0)),
    "vmap_in_axes_1": Case(lambda x: jnp.sum(jax.vmap(scaled_sin, 1)(jnp.outer(x, x)), 0)),
    "vmap_unbatched_argument": Case(lambda x: jax.vmap(scaled_mul, (0, None))(x, x[0]) * x),
    "vmap_unbatched_only": Case(lambda x: jax.vmap(lambda a: scaled_mul(x[1], x[2]) * a)(x)),
    "vmap_jit": Case(lambda x: jax.vmap(jax.jit(scaled_sin))(x) * x[::-1]),
    "vmap_scan": Case(lambda x: jax.vmap(scan_of(scaled_sin))(x) * x),
    "constant": Case(lambda x: ones(x) * x + jnp.sin(x)),
    "constant_vmap": Case(lambda x: jax.vmap(ones)(x) * x),
    "affine_constant_vmap": Case(lambda x: jax.vmap(affine_constant)(x) * x),
    "symbolic_zero_in": Case(lambda x: mul_symbolic(x, jnp.arange(3).astype(x.dtype)) * x),
    "symbolic_zero_in_vmap": Case(lambda x: jax.vmap(mul_symbolic, (0, None))(x, x[1]) * x),
    "symbolic_zero_out": Case(lambda x: sin_and_round(x)[0] * sin_and_round(2.0 * x)[1]),
    "symbolic_zero_out_vmap": Case(lambda x: jnp.prod(jnp.stack(jax.vmap(sin_and_round)(x)), 0)),
    "nondiff_argnums": Case(lambda x: apply(jnp.sin, x) * x),
    "nondiff_argnums_vmap": Case(lambda x: jax.vmap(lambda a: apply(jnp.tanh, a))(x) * x),
    "rule_applies_function": Case(lambda x: negate(x) * x),
    "rule_applies_function_vmap": Case(lambda x: jax.vmap(negate)(x) * jnp.sin(x)),
    "rule_applies_function_scan": Case(lambda x: scan_of(lambda c: negate(c) * c)(x)),
    "rule_applies_function_jit": Case(lambda x: jax.jit(negate)(jnp.sin(x)) * x),
    "rule_applies_function_twice": Case(lambda x: negate(negate(x) * x)),
    "custom_vjp_vmap": Case(lambda x: jax.vmap(sin_vjp)(x) * x, forward=False),
    "custom_vjp_vmap_unbatched": Case(
        lambda x: jax.vmap(mul_vjp, (0, None))(x, x[0]) * x, forward=False
    ),
    "custom_vjp_constant_vmap": Case(lambda x: jax.vmap(ones_vjp)(x) * x, forward=False),
    "custom_vjp_nondiff_argnums": Case(
        lambda x: jax.vmap(lambda a: apply_vjp(jnp.sin, a))(x) * x, forward=False
    ),
}


def contract(case: Case):
    """``run(x, t, u) -> {transform: (jaxls's, jax's)}``, meant for one `jax.jit`."""
    f = case.f
    s = lambda x: jnp.sum(f(x) * jnp.cos(x))

    def run(x, t, u):
        pairs = {
            "grad": (ad.grad(s)(x), jax.grad(s)(x)),
            "value_and_grad": (ad.value_and_grad(s)(x), jax.value_and_grad(s)(x)),
            "vjp": (ad.vjp(f, x)[1](u), jax.vjp(f, x)[1](u)),
            "jacrev": (ad.jacrev(f)(x), jax.jacrev(f)(x)),
        }
        if case.forward:
            pairs["jvp"] = ad.jvp(f, (x,), (t,)), jax.jvp(f, (x,), (t,))
            pairs["jacfwd"] = ad.jacfwd(f)(x), jax.jacfwd(f)(x)
        # Against forward over forward: jax's forward over reverse (`jax.hessian`) loses the
        # rule at second order through a scan (vmap_scan: 3.08 where the rule's derivative,
        # jaxls's and jax's forward over forward, is 5.15).
        reference = jax.jacfwd(jax.jacfwd(s)) if case.forward else jax.hessian(s)
        pairs["hessian"] = ad.hessian(s)(x), reference(x)
        return pairs

    return run


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_custom_rules_match_jax(name, dtype):
    x = jnp.asarray([0.3, -1.2, 2.0], dtype)
    rng = np.random.default_rng(0)
    t, u = (np.asarray(rng.standard_normal(3), dtype) for _ in range(2))
    pairs = ad_zoo.fast_jit(contract(CASES[name]))(x, t, u)
    for transform, (ours, theirs) in pairs.items():
        try:
            close(ours, theirs, TOL[dtype])
        except AssertionError as error:
            raise AssertionError(f"{transform}: {error}") from None


def test_rule_that_applies_the_function_to_the_tangent_eagerly():
    """JAX's ``test_linear_in_scan``, outside `jax.jit` (the contract covers it inside): the
    reverse sweep over the rule meets ``negate`` in the rule's linear part and transposes
    its jaxpr; it used to reverse the rule again, and again (RecursionError)."""
    assert float(ad.grad(negate)(3.0)) == float(jax.grad(negate)(3.0)) == -1.0
    assert float(ad.grad(scan_of(negate))(3.0)) == 1.0  # two steps: (-1)^2
    assert float(ad.grad(ad.grad(lambda x: negate(x) * x))(3.0)) == -2.0
    primal, tangent = ad.jvp(negate, (3.0,), (1.0,))
    assert (float(primal), float(tangent)) == (-3.0, -1.0)
    x = jnp.arange(3.0)
    close(ad.jacrev(jax.vmap(negate))(x), -jnp.eye(3), 0.0)
    close(ad.hessian(lambda z: jnp.sum(negate(z) * z))(x), -2.0 * jnp.eye(3), 0.0)


# --- jaxls under vmap: batched tangents and cotangents, unbatched primals ---------------------


@pytest.mark.parametrize("dtype", [F32, F64])
def test_batched_tangents_and_cotangents_of_custom_rules(dtype):
    """`jax.vmap` of jaxls's transforms: the rules see batched tangents (cotangents) with
    unbatched primals, and batched primals with unbatched tangents."""
    x = jnp.asarray([0.3, -1.2, 2.0], dtype)
    batch = jnp.asarray(np.random.default_rng(1).standard_normal((4, 3)), dtype)
    f = lambda z: scaled_mul(scaled_sin(z), negate(z)) + jax.vmap(ones)(z) * z
    g = lambda z: sin_vjp(z) * mul_vjp(z, z[0])
    sum_g = lambda z: jnp.sum(g(z))

    @ad_zoo.fast_jit
    def both(x, batch):
        push = lambda fun, trans: jax.vmap(lambda v: trans.jvp(fun, (x,), (v,))[1])
        pull = lambda fun, trans: jax.vmap(lambda u: trans.vjp(fun, x)[1](u)[0])
        at_batch = lambda trans: jax.vmap(lambda z: trans.jvp(f, (z,), (x,))[1])
        return [
            (push(f, ad)(batch), push(f, jax)(batch)),
            (pull(f, ad)(batch), pull(f, jax)(batch)),
            (pull(g, ad)(batch), pull(g, jax)(batch)),
            (at_batch(ad)(batch), at_batch(jax)(batch)),
            (jax.vmap(ad.grad(sum_g))(batch), jax.vmap(jax.grad(sum_g))(batch)),
        ]

    for i, (ours, theirs) in enumerate(both(x, batch)):
        try:
            close(ours, theirs, TOL[dtype])
        except AssertionError as error:
            raise AssertionError(f"pair {i}: {error}") from None


# --- what jaxls refuses --------------------------------------------------------------------------


@pytest.mark.parametrize("fun", [constant_with_identity_rule, zeros_with_zero_tangent])
@pytest.mark.parametrize("transform", ["grad", "jvp", "vjp", "jacfwd", "jacrev"])
def test_rule_batched_where_its_function_is_not_is_refused_clearly(fun, transform):
    """JAX's ``test_hard_stuff2``: under `jax.vmap`, the function's output does not depend
    on the mapped input (jax stages it unbatched) while its rule's tangent does (jax batches
    the rule, primal output included, lazily, when it is first differentiated). The traced
    program jaxls differentiates holds one value for the whole batch and cannot carry a
    tangent per member: jaxls gave a gradient of shape () instead of (3,) (or crashed in
    ``broadcast_in_dim``); jax's own ``jax.jvp(jax.jit(jax.vmap(f)), ...)`` crashes on it
    (jax-ml/jax#16374). jaxls refuses it, naming the function and the way out; a rule whose
    tangent is shaped like its output (``ones``) is differentiated (the contract)."""
    f = jax.vmap(fun)
    x = jnp.arange(3.0)
    calls = {
        "grad": lambda: ad.grad(lambda z: jnp.sum(f(z)))(x),
        "jvp": lambda: ad.jvp(f, (x,), (x,)),
        "vjp": lambda: ad.vjp(f, x)[1](x),
        "jacfwd": lambda: ad.jacfwd(f)(x),
        "jacrev": lambda: ad.jacrev(f)(x),
    }
    name = fun.__name__
    with pytest.raises(NotImplementedError, match=rf"`{name}`.*jax\.vmap.*zeros_like"):
        calls[transform]()


@jax.custom_jvp
def branchy(x):
    """JAX's ``test_python_control_flow``: Python branches on the primal, in the function
    and in its rule."""
    return jnp.sin(x) if x > 0 else jnp.cos(x)


@branchy.defjvp
def _branchy_jvp(p, t):
    return branchy(p[0]), (2.0 if p[0] > 0 else 3.0) * t[0]


@jax.custom_jvp
def branchy_rule(x):
    return jnp.sin(x)


@branchy_rule.defjvp
def _branchy_rule_jvp(p, t):
    return branchy_rule(p[0]), (2.0 if p[0] > 0 else 3.0) * t[0]


@jax.custom_vjp
def branchy_fwd(x):
    return jnp.sin(x)


def _branchy_fwd_fwd(x):
    return jnp.sin(x), (x if x > 0 else -x)


branchy_fwd.defvjp(_branchy_fwd_fwd, lambda r, g: (r * g,))

BRANCHY = {
    "custom_jvp-grad": (branchy, "grad"),
    "custom_jvp-jvp": (branchy, "jvp"),
    "custom_jvp_rule-grad": (branchy_rule, "grad"),  # traced in the backward sweep
    "custom_jvp_rule-jvp": (branchy_rule, "jvp"),
    "custom_jvp_rule-hessian": (branchy_rule, "hessian"),
    "custom_vjp_fwd-grad": (branchy_fwd, "grad"),
}


@pytest.mark.parametrize("case", sorted(BRANCHY))
def test_python_control_flow_on_primals_names_the_call_and_the_fix(case):
    """jax runs custom rules on concrete values outside `jax.jit`; jaxls traces them first,
    and the error from the rule (run inside jaxls's sweeps, through the transposition of a
    custom_jvp rule too) reaches the user as api.py's, naming the call and the fix."""
    fun, transform = BRANCHY[case]
    call = {
        "grad": lambda tr: tr.grad(fun)(2.0),
        "jvp": lambda tr: tr.jvp(fun, (2.0,), (1.0,)),
        "hessian": lambda tr: tr.hessian(fun)(2.0),
    }[transform]
    call(jax)  # jax accepts it
    with pytest.raises(
        jax.errors.ConcretizationTypeError, match=rf"jaxls\.ad\.{transform} .*lax\.cond"
    ):
        call(ad)
