"""jaxls.ad end to end: every transform against jax's on a zoo, the two modes against each
other, jit and vmap, coverage of the rule tables, random compositions, the graph view."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import primitive_names as primitives
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

import jaxls
import jaxls.ad as ad
from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import jvp_rules, vjp_rules
from tests import ad_zoo

DTYPES = [jnp.float64, jnp.float32]
CASES = {dtype: ad_zoo.cases(dtype) for dtype in DTYPES}
IDS = [c.name for c in CASES[jnp.float64]]
RTOL = {jnp.float64: 1e-9, jnp.float32: 2e-3}
INTERPRETED = (
    jx.CALLS | jx.REMAT | jx.COND | jx.SCAN | jx.CUSTOM_JVP | jx.CUSTOM_VJP | jx.LINEAR_SOLVE
)


def close(ours, theirs, dtype):
    """Leaf by leaf, relative to each leaf's largest entry."""

    def check(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
        np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)

    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    jax.tree.map(check, ours, theirs)


def random_like(tree, seed):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(
        treedef,
        [
            jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
            for k, x in zip(keys, leaves, strict=True)
        ],
    )


# float32 on the cases where its rounding differs most (the rest is float64 only, and the
# rule-level tests run every primitive in both dtypes).
FLOAT32 = {"lecture", "softmax_xent", "mlp", "logdet", "rnn", "trig", "cholesky"}


def case_params(scalar_only=False):
    return [
        pytest.param(dtype, i, id=f"{IDS[i]}-{jnp.dtype(dtype).name}")
        for dtype in DTYPES
        for i, c in enumerate(CASES[dtype])
        if (c.scalar or not scalar_only) and (dtype == jnp.float64 or c.name in FLOAT32)
    ]


@pytest.mark.parametrize(("dtype", "i"), case_params())
def test_jvp_and_vjp_match_jax_and_each_other(dtype, i):
    case = CASES[dtype][i]
    tangents = random_like(case.args, 1)
    out, tout = ad.jvp(case.f, case.args, tangents)
    ref_out, ref_tout = jax.jvp(case.f, case.args, tangents)
    close(out, ref_out, dtype)
    close(tout, ref_tout, dtype)

    out2, pull = ad.vjp(case.f, *case.args)
    close(out2, ref_out, dtype)
    u = random_like(ref_out, 2)
    cts = pull(u)
    close(cts, jax.vjp(case.f, *case.args)[1](u), dtype)
    # The dot-product test between our two modes: <u, J v> = <J^T u, v>.
    dot = lambda a, b: sum(
        jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )
    np.testing.assert_allclose(dot(u, tout), dot(cts, tangents), rtol=10 * RTOL[dtype])


@pytest.mark.parametrize(("dtype", "i"), case_params(scalar_only=True))
def test_grad_value_and_grad_hvp_match_jax(dtype, i):
    case = CASES[dtype][i]
    nums = tuple(range(len(case.args)))
    close(
        ad.grad(case.f, argnums=nums)(*case.args), jax.grad(case.f, argnums=nums)(*case.args), dtype
    )
    value, g = ad.value_and_grad(case.f)(*case.args)
    ref_value, ref_g = jax.value_and_grad(case.f)(*case.args)
    close((value, g), (ref_value, ref_g), dtype)
    x = case.args[0]
    rest = case.args[1:]
    f0 = lambda z: case.f(z, *rest)
    v = random_like(x, 3)
    ref_hvp = jax.jvp(jax.grad(f0), (x,), (v,))[1]
    close(ad.hvp(f0, x, v), ref_hvp, dtype)


SMALL = [
    "lecture",
    "rosenbrock",
    "logistic",
    "softmax_xent",
    "logdet",
    "solve_inv",
    "cholesky",
    "rnn",
    "kinks",
    "indexing",
    "trig",
    "pytree_out",
    "cond",
    "checkpoint",
]


@pytest.mark.parametrize("name", SMALL)
def test_jacobians_and_hessian_match_jax(name):
    dtype = jnp.float64
    case = next(c for c in CASES[dtype] if c.name == name)
    close(ad.jacfwd(case.f)(*case.args), jax.jacfwd(case.f)(*case.args), dtype)
    close(ad.jacrev(case.f)(*case.args), jax.jacrev(case.f)(*case.args), dtype)
    if case.scalar and name not in ("trig", "indexing"):  # their hvp is tested above
        close(ad.hessian(case.f)(*case.args), jax.hessian(case.f)(*case.args), dtype)


@pytest.mark.parametrize("name", ["rosenbrock", "mlp", "rnn", "logdet", "indexing"])
def test_every_transform_composes_with_jit_and_vmap(name):
    dtype = jnp.float64
    case = next(c for c in CASES[dtype] if c.name == name)
    x, rest = case.args[0], case.args[1:]
    f0 = lambda z: case.f(z, *rest)
    close(jax.jit(ad.grad(f0))(x), jax.grad(f0)(x), dtype)
    batch = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[random_like(x, s) for s in range(3)])
    close(
        jax.vmap(lambda v: ad.jvp(f0, (x,), (v,))[1])(batch),
        jax.vmap(lambda v: jax.jvp(f0, (x,), (v,))[1])(batch),
        dtype,
    )
    xs = jax.tree.map(lambda b, x0: x0[None] + 0.01 * b, batch, x)
    close(jax.jit(jax.vmap(ad.grad(f0)))(xs), jax.vmap(jax.grad(f0))(xs), dtype)
    close(jax.jit(ad.jacrev(f0))(x), jax.jacrev(f0)(x), dtype)
    close(
        jax.jit(lambda z, v: ad.hvp(f0, z, v))(x, batch if False else random_like(x, 9)),
        jax.jvp(jax.grad(f0), (x,), (random_like(x, 9),))[1],
        dtype,
    )


def test_the_other_transforms_under_jit_and_vmap():
    f = ad_zoo.rosenbrock
    x = jnp.linspace(-1.0, 1.2, 5)
    xs = jnp.stack([x, 0.5 * x, x + 0.1])
    close(jax.jit(ad.jacfwd(f))(x), jax.jacfwd(f)(x), jnp.float64)
    close(jax.jit(ad.hessian(f))(x), jax.hessian(f)(x), jnp.float64)
    close(jax.vmap(ad.hessian(f))(xs), jax.vmap(jax.hessian(f))(xs), jnp.float64)
    close(jax.jit(ad.value_and_grad(f))(x), jax.value_and_grad(f)(x), jnp.float64)
    pull = lambda z: ad.vjp(jnp.sin, z)[1](jnp.cos(z))[0]
    close(jax.jit(jax.vmap(pull))(xs), jnp.sin(xs) * 0 + jnp.cos(xs) ** 2, jnp.float64)
    _, pull_jit = jax.jit(lambda z: ad.vjp(f, z))(x)  # a vjp_fn returned from jit
    close(pull_jit(1.0)[0], jax.grad(f)(x), jnp.float64)


def test_custom_vjp_uses_the_authors_bwd_and_forward_mode_refuses():
    case = ad_zoo.CUSTOM_VJP
    close(ad.grad(case.f)(*case.args), jax.grad(case.f)(*case.args), jnp.float64)
    with pytest.raises(NotImplementedError, match="custom_vjp"):
        ad.jvp(case.f, case.args, case.args)


def test_while_loop_forward_mode_and_reverse_mode_refuses():
    f = lambda x: lax.while_loop(
        lambda c: c[0] < 4, lambda c: (c[0] + 1, jnp.sin(c[1]) * c[1]), (0, x)
    )[1]
    x = jnp.array([0.3, 1.2])
    close(ad.jvp(f, (x,), (jnp.ones(2),)), jax.jvp(f, (x,), (jnp.ones(2),)), jnp.float64)
    close(ad.jacfwd(f)(x), jax.jacfwd(f)(x), jnp.float64)
    with pytest.raises(NotImplementedError, match="while_loop"):
        ad.grad(lambda x: jnp.sum(f(x)))(x)


def test_unsupported_primitive_names_itself_and_the_fallback():
    f = lambda x: jnp.sum(jnp.abs(jnp.fft.fft(x)))
    with pytest.raises(NotImplementedError, match=r"`fft`.*jax\.vjp"):
        ad.grad(f)(jnp.ones(4))
    with pytest.raises(NotImplementedError, match=r"`fft`.*jax\.jvp"):
        ad.jvp(f, (jnp.ones(4),), (jnp.ones(4),))


# --- coverage of the rule tables ------------------------------------------------------------


def zoo_primitives() -> set[str]:
    found = set()
    for case in [*CASES[jnp.float64], ad_zoo.CUSTOM_VJP]:
        found |= primitives(jax.make_jaxpr(case.f)(*case.args))
    return found


def test_every_zoo_primitive_has_both_rules():
    missing_jvp = {p for p in zoo_primitives() - INTERPRETED if p not in jvp_rules}
    missing_vjp = {p for p in zoo_primitives() - INTERPRETED if p not in vjp_rules}
    assert not missing_jvp, missing_jvp
    assert not missing_vjp, missing_vjp


def test_every_primitive_the_reverse_rules_emit_has_a_jvp_rule():
    emitted = set()
    for case in CASES[jnp.float64]:
        if case.scalar:
            emitted |= primitives(jax.make_jaxpr(ad.grad(case.f))(*case.args))
    missing = {p for p in emitted - INTERPRETED if p not in jvp_rules}
    assert not missing, missing
    assert emitted - INTERPRETED <= set(jvp_rules)


def test_scan_reverse_mode_stores_per_step_values_instead_of_recomputing():
    case = next(c for c in CASES[jnp.float64] if c.name == "rnn")
    jaxpr = jax.make_jaxpr(ad.grad(case.f))(*case.args)
    scans = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
    assert len(scans) == 2  # the forward sweep, then the backward sweep over its tapes
    forward, backward = scans
    assert "tanh" in primitives(forward.params["jaxpr"])
    assert "tanh" not in primitives(backward.params["jaxpr"])  # read from the tape
    assert backward.params["reverse"] and not forward.params["reverse"]


def test_checkpoint_recomputes_behind_a_barrier():
    f = lambda x: jnp.sum(ad.checkpoint(lambda y: jnp.sin(jnp.sin(y)))(x))
    names = primitives(jax.make_jaxpr(ad.grad(f))(jnp.ones(3)))
    assert "optimization_barrier" in names
    close(ad.grad(f)(jnp.ones(3)), jax.grad(f)(jnp.ones(3)), jnp.float64)


# --- random compositions -------------------------------------------------------------------

UNARY = {
    "sin": jnp.sin,
    "tanh": jnp.tanh,
    "gauss": lambda x: jnp.exp(-(x**2)),
    "log1p_sq": lambda x: jnp.log1p(x**2),
    "square": lambda x: x * x,
    "soft": jax.nn.softplus,
    "sqrt1p": lambda x: jnp.sqrt(1.0 + x**2),
    "cumsum": jnp.cumsum,
    "roll": lambda x: jnp.concatenate([x[1:], x[:1]]),
    "sigmoid": jax.nn.sigmoid,
}
BINARY = {
    "add": jnp.add,
    "mul": jnp.multiply,
    "sub": jnp.subtract,
    "div": lambda a, b: a / (1.5 + jnp.cos(b)),
    "outer_sum": lambda a, b: jnp.outer(a, b) @ jnp.tanh(b),
}


@st.composite
def programs(draw):
    ops = []
    for _ in range(draw(st.integers(2, 8))):
        if draw(st.booleans()):
            ops.append(("u", draw(st.sampled_from(sorted(UNARY))), None))
        else:
            ops.append(("b", draw(st.sampled_from(sorted(BINARY))), draw(st.integers(0, 10))))
    return ops


def build(ops):
    def f(x):
        values = [x]
        for kind, name, ref in ops:
            if kind == "u":
                values.append(UNARY[name](values[-1]))
            else:
                values.append(BINARY[name](values[-1], values[ref % len(values)]))
        return jnp.sum(values[-1]) + 0.1 * jnp.sum(values[len(values) // 2])

    return f


@given(programs(), st.integers(0, 1000))
def test_random_compositions_match_jax(ops, seed):
    f = build(ops)
    x = jax.random.normal(jax.random.key(seed), (4,), jnp.float64)
    v = jax.random.normal(jax.random.key(seed + 1), (4,), jnp.float64)
    close(ad.grad(f)(x), jax.grad(f)(x), jnp.float64)
    close(ad.jvp(f, (x,), (v,)), jax.jvp(f, (x,), (v,)), jnp.float64)


# --- the graph, finite differences, use in a line search ------------------------------------


def test_trace_of_the_lecture_example():
    w1, w2 = 2.0, 5.0
    g = ad.trace(ad_zoo.lecture, w1, w2, tangents=(1.0, 0.0))
    by_name = {n.name: n for n in g.nodes}
    assert [n.primitive for n in g.nodes] == [
        "input",
        "input",
        "log",
        "mul",
        "log",
        "mul",
        "sqrt",
        "add",
    ]
    out = by_name[g.outputs[0]]
    dw1, dw2 = jax.grad(ad_zoo.lecture, argnums=(0, 1))(w1, w2)
    np.testing.assert_allclose(out.value, ad_zoo.lecture(w1, w2))
    np.testing.assert_allclose(out.tangent, dw1)  # forward mode seeded with dw1 = 1
    np.testing.assert_allclose(by_name["w1"].adjoint, dw1)  # reverse mode: adjoints of inputs
    np.testing.assert_allclose(by_name["w2"].adjoint, dw2)
    np.testing.assert_allclose(by_name["v1"].tangent, 1 / w1)  # d log(w1) / dw1
    assert "sqrt" in str(g) and "w1 -> v1" in g.to_dot()


def test_finite_differences_and_check_grads():
    f = ad_zoo.rosenbrock
    x = jnp.linspace(-1.0, 1.5, 5)
    exact = jax.grad(f)(x)
    np.testing.assert_allclose(
        ad.finite_difference_grad(f, x, scheme="forward"), exact, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        ad.finite_difference_grad(f, x, scheme="central"), exact, rtol=1e-8, atol=1e-8
    )
    for case in CASES[jnp.float64]:
        ad.check_grads(case.f, case.args)

    @jax.custom_jvp
    def wrong(x):
        return jnp.sin(x)

    wrong.defjvp(lambda p, t: (jnp.sin(p[0]), 2.0 * jnp.cos(p[0]) * t[0]))
    with pytest.raises(AssertionError, match="fwd"):
        ad.check_grads(lambda x: jnp.sum(wrong(x)), (x,))
    with pytest.raises(ValueError, match="scheme"):
        ad.finite_difference_grad(f, x, scheme="backward")


def test_line_searches_accept_jaxls_derivatives():
    f = ad_zoo.rosenbrock
    x = jnp.array([-1.2, 1.0, -1.2, 1.0])
    d = -jax.grad(f)(x)
    ours = jaxls.wolfe(None, x, d, value_and_grad=ad.value_and_grad(f))
    ref = jaxls.wolfe(f, x, d)
    close((ours.step, ours.value, ours.grad), (ref.step, ref.value, ref.grad), jnp.float64)
    assert int(ours.num_evals) == int(ref.num_evals)


def test_jvp_checks_its_inputs():
    with pytest.raises(ValueError, match="same structure"):
        ad.jvp(jnp.sin, (1.0,), (1.0, 2.0))
    with pytest.raises(ValueError, match="shape"):
        ad.jvp(jnp.sin, (jnp.ones(2),), (jnp.ones(3),))
    with pytest.raises(TypeError, match="real scalar"):
        ad.grad(jnp.sin)(jnp.ones(2))
