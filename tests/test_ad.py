"""jaxls.ad end to end: every transform against jax's on a zoo, in float32, float64, bfloat16
and float16; the two modes against each other; jit and vmap; coverage of the rule tables;
random compositions; the graph view; and jax's contract on the inputs it refuses.

The contract tests compute jaxls's and jax's results in one `jax.jit` per case and dtype
(compiling op by op would dominate the run time), with XLA options that compile faster
(`ad_zoo.fast_jit`) and directions drawn by NumPy outside it; `test_transforms_run_eagerly`
covers the eager path. float32 is JAX's default; float64 is enabled for a test by its dtype
parameter (tests/conftest.py); bfloat16 and float16 are compared with jax computed in the
same dtype, and their gradients with float32's at the same (rounded) points.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

import jaxls
import jaxls.ad as ad
from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import HigherOrderJVP, HigherOrderVJP, jvp_rules, vjp_rules
from tests import ad_zoo
from tests.helpers import close, random_like
from tests.helpers import primitive_names as primitives

F32, F64, BF16, F16 = jnp.float32, jnp.float64, jnp.bfloat16, jnp.float16
LOW = (BF16, F16)


def rtol(dtype) -> float:
    """Tolerance of jaxls against jax in the same dtype, relative to each leaf's largest entry.

    Low precision: the two round differently (operation order; formulas such as
    ``tanh' = (1 + t)(1 - t)``); measured up to 1.5 ulp in bfloat16 and 2.8 ulps in float16
    (the rnn's Hessian-vector product), so 8 ulps."""
    if dtype in LOW:
        return 8 * float(jnp.finfo(dtype).eps)
    return {F64: 1e-9, F32: 2e-5}[dtype]


INTERPRETED = (
    jx.CALLS | jx.REMAT | jx.COND | jx.SCAN | jx.CUSTOM_JVP | jx.CUSTOM_VJP | jx.LINEAR_SOLVE
)


@functools.cache
def zoo(dtype) -> dict[str, ad_zoo.Case]:
    """The zoo's cases with data of ``dtype`` (made in the test that first asks, so float64
    data are made with x64 enabled; cached: the data are the same for every test)."""
    return {c.name: c for c in ad_zoo.cases(dtype)}


def vdot64(a, b) -> float:
    """``<a, b>`` over two pytrees, accumulated in float64 (NumPy)."""
    return sum(
        float(np.sum(np.asarray(x, np.float64) * np.asarray(y, np.float64)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def upcast(tree):
    return jax.tree.map(
        lambda x: x.astype(F32) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


# --- the contract: every transform against jax's, in four dtypes -----------------------------
#
# float32 (the default) runs the whole zoo; the other dtypes a subset each, so that every
# case runs in float32 and in at least one other dtype. Not in bfloat16 or float16: the
# LAPACK-backed cases (`ad_zoo.LAPACK`: CPU LU and Cholesky have no such kernels, in jax
# too). The Hessians of mlp and rnn are left out (the costliest to compile); their
# Hessian-vector products and Jacobians cover second order and both modes there.

CONTRACT = {
    F32: ad_zoo.NAMES,
    F64: ("logdet", "solve_inv", "cholesky", "indexing", "trig", "cond"),
    BF16: ("lecture", "rosenbrock", "softmax_xent", "mlp", "rnn", "indexing", "pytree_out",
           "checkpoint"),
    F16: ("lecture", "logistic", "kinks", "trig", "pytree_out", "nested_jit", "cond"),
}  # fmt: skip
NO_HESSIAN = {"mlp", "rnn"}


def contract_params():
    return [
        pytest.param(dtype, name, id=f"{name}-{jnp.dtype(dtype).name}")
        for dtype, names in CONTRACT.items()
        for name in names
    ]


def test_every_zoo_case_runs_in_float32_and_another_dtype():
    assert set(CONTRACT[F32]) == set(ad_zoo.NAMES)
    others = set().union(*(CONTRACT[d] for d in (F64, BF16, F16)))
    assert others == set(ad_zoo.NAMES)
    assert not (set(CONTRACT[BF16]) | set(CONTRACT[F16])) & ad_zoo.LAPACK


def contract_directions(case: ad_zoo.Case):
    """The tangent ``t`` (like the arguments), cotangent ``u`` (like the output) and the
    Hessian-vector product's ``v`` (like the first argument) of the contract test."""
    out = jax.eval_shape(case.f, *case.args)
    return random_like(case.args, 1), random_like(out, 2), random_like(case.args[0], 3)


def both_transforms(case: ad_zoo.Case, dtype):
    """``run(args, t, u, v) -> {transform: (jaxls's, jax's)}`` plus what the dot-product test
    and the low-precision check need; meant for one `jax.jit`."""
    f, scalar = case.f, case.scalar

    def run(args, t, u, v):
        pairs, extra = {}, {}
        pairs["jvp"] = ad.jvp(f, args, t), jax.jvp(f, args, t)
        out, pull = ad.vjp(f, *args)
        ref_out, ref_pull = jax.vjp(f, *args)
        cts = pull(u)
        pairs["vjp"] = (out, cts), (ref_out, ref_pull(u))
        extra["dot"] = (pairs["jvp"][0][1], cts)
        pairs["jacfwd"] = ad.jacfwd(f)(*args), jax.jacfwd(f)(*args)
        pairs["jacrev"] = ad.jacrev(f)(*args), jax.jacrev(f)(*args)
        if scalar:
            nums = tuple(range(len(args)))
            pairs["grad"] = ad.grad(f, nums)(*args), jax.grad(f, nums)(*args)
            pairs["value_and_grad"] = ad.value_and_grad(f)(*args), jax.value_and_grad(f)(*args)
            x, rest = args[0], args[1:]
            f0 = lambda z: f(z, *rest)
            pairs["hvp"] = ad.hvp(f0, x, v), jax.jvp(jax.grad(f0), (x,), (v,))[1]
            if case.name not in NO_HESSIAN:
                pairs["hessian"] = ad.hessian(f)(*args), jax.hessian(f)(*args)
            if dtype in LOW:
                extra["grad_float32"] = jax.grad(f, nums)(*upcast(args))
        return pairs, extra

    return run


@pytest.mark.parametrize(("dtype", "name"), contract_params())
def test_transforms_match_jax(dtype, name):
    """jvp, vjp, jacfwd, jacrev (and for scalar outputs grad, value_and_grad, hvp, hessian)
    against jax's in ``dtype``; the dot-product test ``<u, J t> = <J^T u, t>`` between our
    two modes; in bfloat16 and float16 the gradient is not zero and is float32's at the
    same points to a few ulps of ``dtype``."""
    case = zoo(dtype)[name]
    t, u, v = contract_directions(case)
    # On the host, once (the checks below are NumPy's; eager casts would compile).
    pairs, extra = jax.device_get(ad_zoo.fast_jit(both_transforms(case, dtype))(case.args, t, u, v))
    for transform, (ours, theirs) in pairs.items():
        try:
            close(ours, theirs, rtol(dtype))
        except AssertionError as error:
            raise AssertionError(f"{transform}: {error}") from None
    tout, cts = extra["dot"]
    lhs, rhs = vdot64(u, tout), vdot64(cts, t)
    scale = np.sqrt(vdot64(u, u) * vdot64(tout, tout)) + np.sqrt(vdot64(cts, cts) * vdot64(t, t))
    assert abs(lhs - rhs) <= 10 * rtol(dtype) * scale, (lhs, rhs)
    if dtype in LOW and case.scalar:
        g, g32 = pairs["grad"][0], extra["grad_float32"]
        assert all(np.any(np.asarray(leaf) != 0) for leaf in jax.tree.leaves(g))
        close(upcast(g), g32, 4 * float(jnp.finfo(dtype).eps))


def test_low_precision_gradient_of_the_issue_is_not_zero():
    """Issue 9, item 1: `jnp.sum` inserts a ``convert_element_type`` that the activity
    analysis dropped for bfloat16 (NumPy's `issubdtype` does not know it): zero gradients
    and tangents, silently."""
    f = lambda x: jnp.sum(jnp.sin(x) ** 2)
    for dtype in LOW:
        x = jnp.ones(3, dtype)
        g = ad.grad(f)(x)
        assert g.dtype == dtype
        np.testing.assert_array_equal(np.asarray(g, np.float32), jax.grad(f)(x).astype(F32))
        assert float(g[0]) == pytest.approx(float(jnp.sin(2.0)), rel=2e-2)  # 0.909...
        _, tangent = ad.jvp(f, (x,), (jnp.ones(3, dtype),))
        np.testing.assert_array_equal(
            np.asarray(tangent, np.float32), jax.jvp(f, (x,), (jnp.ones(3, dtype),))[1]
        )
        value, g2 = ad.value_and_grad(f)(x)
        assert value.dtype == g2.dtype == dtype and np.all(np.asarray(g2, np.float32) != 0)


def test_transforms_run_eagerly():
    """Outside `jax.jit` (concrete arrays), the same values as jax's (computed in one
    `jax.jit`: jax's eager path is not under test)."""
    case = zoo(F32)["lecture"]
    w = case.args
    tol = rtol(F32)
    f = lambda x: jnp.sum(jnp.sin(x) * x[::-1])
    x = jnp.linspace(-1.0, 1.2, 3)

    @ad_zoo.fast_jit
    def theirs(w, x):
        return [
            jax.jvp(case.f, w, w),
            jax.vjp(case.f, *w)[1](jnp.ones((), F32)),
            jax.grad(case.f, (0, 1))(*w),
            jax.value_and_grad(case.f)(*w),
            jax.jacfwd(f)(x),
            jax.jacrev(f)(x),
            jax.hessian(f)(x),
            jax.jvp(jax.grad(f), (x,), (x,))[1],
        ]

    ours = [
        ad.jvp(case.f, w, w),
        ad.vjp(case.f, *w)[1](1.0),
        ad.grad(case.f, (0, 1))(*w),
        ad.value_and_grad(case.f)(*w),
        ad.jacfwd(f)(x),
        ad.jacrev(f)(x),
        ad.hessian(f)(x),
        ad.hvp(f, x, x),
    ]
    for mine, reference in zip(ours, theirs(w, x), strict=True):
        close(mine, reference, tol)


@pytest.mark.parametrize("name", ["rosenbrock", "rnn"])
def test_transforms_compose_with_jit_and_vmap(name):
    """jit of vmap of each transform; eager vmap (jacfwd); a vjp_fn returned from jit and
    called outside it. jax's results are computed in the same `jax.jit` (computed eagerly,
    op by op, they took most of the test's time and add nothing to the check)."""
    case = zoo(F32)[name]
    x, rest = case.args[0], case.args[1:]
    f0 = lambda z: case.f(z, *rest)
    tol = rtol(F32)
    batch = jax.tree.map(lambda *leaves: np.stack(leaves), *[random_like(x, s) for s in range(3)])
    xs = jax.tree.map(lambda b, x0: (np.asarray(x0)[None] + 0.01 * b).astype(x0.dtype), batch, x)
    second_order = name == "rosenbrock"

    @ad_zoo.fast_jit
    def both(x, batch, xs):
        ours = [
            jax.vmap(lambda v: ad.jvp(f0, (x,), (v,))[1])(batch),
            jax.vmap(ad.grad(f0))(xs),
            jax.vmap(ad.value_and_grad(f0))(xs),
            jax.vmap(lambda z: ad.vjp(f0, z)[1](jnp.ones((), F32)))(xs),
        ]
        theirs = [
            jax.vmap(lambda v: jax.jvp(f0, (x,), (v,))[1])(batch),
            jax.vmap(jax.grad(f0))(xs),
            jax.vmap(jax.value_and_grad(f0))(xs),
            jax.vmap(lambda z: jax.vjp(f0, z)[1](jnp.ones((), F32)))(xs),
        ]
        if second_order:
            ours.append(jax.vmap(ad.hessian(f0))(xs))
            theirs.append(jax.vmap(jax.hessian(f0))(xs))
        references = {"grad": jax.grad(f0)(x)}
        if second_order:
            references["jacfwd"] = jax.vmap(jax.jacfwd(f0))(xs)
        return ours, theirs, references

    ours, theirs, references = both(x, batch, xs)
    close(ours, theirs, tol)
    if second_order:
        close(jax.vmap(ad.jacfwd(f0))(xs), references["jacfwd"], tol)  # vmap without jit
    _, pull_jit = jax.jit(lambda z: ad.vjp(f0, z))(x)  # a vjp_fn returned from jit
    close(pull_jit(jnp.ones((), F32))[0], references["grad"], tol)


def test_custom_vjp_uses_the_authors_bwd_and_forward_mode_refuses():
    case = ad_zoo.custom_vjp_case()
    close(ad.grad(case.f)(*case.args), jax.grad(case.f)(*case.args), rtol(F32))
    with pytest.raises(NotImplementedError, match="custom_vjp"):
        ad.jvp(case.f, case.args, case.args)


def test_while_loop_forward_mode_and_traced_reverse_mode_needs_a_bound():
    """Forward mode as jax; reverse mode under jit needs `max_loop_steps` (jax refuses it
    outright; tests/test_ad_while.py has the rest)."""
    f = lambda x: lax.while_loop(
        lambda c: c[0] < 4, lambda c: (c[0] + 1, jnp.sin(c[1]) * c[1]), (0, x)
    )[1]
    x = jnp.array([0.3, 1.2])
    close(ad.jvp(f, (x,), (jnp.ones(2),)), jax.jvp(f, (x,), (jnp.ones(2),)), rtol(F32))
    close(ad.jacfwd(f)(x), jax.jacfwd(f)(x), rtol(F32))
    with pytest.raises(NotImplementedError, match=r"while_loop.*max_loop_steps"):
        jax.jit(ad.grad(lambda x: jnp.sum(f(x))))(x)


def test_unsupported_primitive_names_itself_and_the_fallback():
    f = lambda x: jnp.sum(lax.approx_max_k(x, 2)[0])
    with pytest.raises(NotImplementedError, match=r"`approx_top_k`.*jax\.vjp"):
        ad.grad(f)(jnp.ones(4))
    with pytest.raises(NotImplementedError, match=r"`approx_top_k`.*jax\.jvp"):
        ad.jvp(f, (jnp.ones(4),), (jnp.ones(4),))


# --- coverage of the rule tables ------------------------------------------------------------


def test_every_zoo_primitive_has_both_rules():
    found = set()
    for case in [*zoo(F32).values(), ad_zoo.custom_vjp_case()]:
        found |= primitives(jax.make_jaxpr(case.f)(*case.args))
    missing_jvp = {p for p in found - INTERPRETED if p not in jvp_rules}
    missing_vjp = {p for p in found - INTERPRETED if p not in vjp_rules}
    assert not missing_jvp, missing_jvp
    assert not missing_vjp, missing_vjp


def test_every_primitive_the_reverse_rules_emit_has_a_jvp_rule():
    emitted = set()
    for case in zoo(F32).values():
        if case.scalar:
            emitted |= primitives(jax.make_jaxpr(ad.grad(case.f))(*case.args))
    missing = {p for p in emitted - INTERPRETED if p not in jvp_rules}
    assert not missing, missing


def _solve(x):
    return jnp.linalg.solve(jnp.eye(2) * x + 1, jnp.ones(2))


HIGHER_ORDER = {  # family: (its primitive names, a function whose jaxpr holds one of them)
    "cond": (jx.COND, lambda x: lax.cond(x > 0, jnp.sin, jnp.cos, x)),
    "scan": (jx.SCAN, lambda x: lax.scan(lambda c, _: (c * x, None), x, length=2)[0]),
    "while": (jx.WHILE, lambda x: lax.while_loop(lambda c: c < 10, lambda c: c * 2, x)),
    "custom_jvp_call": (jx.CUSTOM_JVP, jax.nn.relu),
    "custom_vjp_call": (jx.CUSTOM_VJP, lambda x: ad_zoo.custom_vjp_user(jnp.stack([x, x]))),
    "custom_linear_solve": (jx.LINEAR_SOLVE, _solve),
    "remat": (jx.REMAT, jax.checkpoint(jnp.sin)),
    "pjit": (jx.CALLS, jax.jit(jnp.sin)),
}


@pytest.mark.parametrize("family", sorted(HIGHER_ORDER))
def test_rule_tables_cover_the_higher_order_primitives(family):
    """Higher-order primitives live in the same tables as the others, each name with a
    forward and a reverse entry (handed the interpreter), and JAX still emits those names."""
    names, f = HIGHER_ORDER[family]
    assert names & primitives(jax.make_jaxpr(f)(jnp.float32(0.5))), family
    for name in names:
        assert isinstance(jvp_rules.get(name), HigherOrderJVP), name
        assert isinstance(vjp_rules.get(name), HigherOrderVJP), name


AD_SOURCES = pathlib.Path(jaxls.__file__).parent / "_src" / "ad"
INTERPRETERS = {f"jaxls._src.ad.{m}" for m in ("api", "forward", "graph", "reverse")}


def _imports(tree) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``tree`` (``from a import b``: ``a`` and ``a.b``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.module or ""))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_no_ad_module_imports_another_inside_a_function():
    """The AD modules form layers, not a circle: every import of a jaxls module is at module
    level (none deferred into a function), imports are plain (no `importlib`), and the rule
    modules import no interpreter (the rules of higher-order primitives are handed it)."""
    deferred, dynamic, upward = [], [], []
    for path in sorted(AD_SOURCES.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(AD_SOURCES)
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                deferred += [
                    f"{where}:{line} {name}"
                    for line, name in _imports(func)
                    if name.split(".")[0] == "jaxls"
                ]
        for line, name in _imports(tree):
            if name == "importlib":
                dynamic.append(f"{where}:{line}")
            if path.parent.name == "rules" and name in INTERPRETERS:
                upward.append(f"{where}:{line} {name}")
    assert not deferred, deferred
    assert not dynamic, dynamic
    assert not upward, upward


def test_scan_reverse_mode_stores_per_step_values_instead_of_recomputing():
    case = zoo(F32)["rnn"]
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
    close(ad.grad(f)(jnp.ones(3)), jax.grad(f)(jnp.ones(3)), rtol(F32))


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


COMPOSITIONS = (
    "compositions of up to 8 operations compared at 1e-9: float32 rounding compounds beyond "
    "any fixed tolerance on some programs"
)


@pytest.mark.x64(reason=COMPOSITIONS)
@given(programs(), st.integers(0, 1000))
def test_random_compositions_match_jax(ops, seed):
    """Ours and jax's in one `jax.jit` (one compilation per program; eagerly, each program
    dispatched op by op, twice, cost three times as much)."""
    f = build(ops)
    x, v = np.random.default_rng(seed).standard_normal((2, 4))

    @ad_zoo.fast_jit
    def both(x, v):
        return (ad.grad(f)(x), ad.jvp(f, (x,), (v,))), (jax.grad(f)(x), jax.jvp(f, (x,), (v,)))

    (grad, jvp), (grad_ref, jvp_ref) = both(x, v)
    assert grad.dtype == F64
    close(grad, grad_ref, rtol(F64))
    close(jvp, jvp_ref, rtol(F64))


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
    assert out.value.dtype == F32  # Python floats are float32 by default
    dw1, dw2 = jax.grad(ad_zoo.lecture, argnums=(0, 1))(w1, w2)
    np.testing.assert_allclose(out.value, ad_zoo.lecture(w1, w2), rtol=1e-6)
    np.testing.assert_allclose(out.tangent, dw1, rtol=1e-6)  # forward mode seeded with dw1 = 1
    np.testing.assert_allclose(by_name["w1"].adjoint, dw1, rtol=1e-6)  # reverse: input adjoints
    np.testing.assert_allclose(by_name["w2"].adjoint, dw2, rtol=1e-6)
    np.testing.assert_allclose(by_name["v1"].tangent, 1 / w1, rtol=1e-6)  # d log(w1) / dw1
    assert "sqrt" in str(g) and "w1 -> v1" in g.to_dot()


def test_trace_through_a_while_loop_and_of_python_control_flow():
    """The graph's adjoints through a while loop (counted eagerly) are jax's gradient of the
    unrolled loop; a Python branch on a traced value is refused naming `trace`."""
    loop = lambda x: lax.while_loop(lambda c: c[1] < 10.0, lambda c: (c[0] + 1, c[1] * 2.0), (0, x))
    g = ad.trace(lambda x: loop(x)[1], 1.0)
    assert float(g.nodes[0].adjoint) == 16.0  # x 2^4: four doublings from 1
    with pytest.raises(ad.TracedControlFlowError, match=r"jaxls\.ad\.trace traces `fun`"):
        ad.trace(lambda x: jnp.sin(x) if x > 0 else jnp.cos(x), 1.0)


def test_trace_of_a_function_with_an_integer_input():
    """An integer input gets no tangent (and no adjoint), as in the transforms."""
    g = ad.trace(lambda x, n: x * n, 2.0, 3)
    assert g.nodes[1].tangent is None and g.nodes[1].adjoint is None
    np.testing.assert_allclose(g.nodes[0].adjoint, 3.0)
    np.testing.assert_allclose(g.nodes[-1].tangent, 3.0)


@pytest.mark.x64(reason="central differences to 1e-8 need float64's resolution")
def test_finite_differences_and_check_grads():
    f = ad_zoo.rosenbrock
    x = jnp.linspace(-1.0, 1.5, 5, dtype=F64)
    exact = jax.grad(f)(x)
    np.testing.assert_allclose(
        ad.finite_difference_grad(f, x, scheme="forward"), exact, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        ad.finite_difference_grad(f, x, scheme="central"), exact, rtol=1e-8, atol=1e-8
    )
    for name in ("lecture", "solve_inv", "pytree_out"):  # eager: each costs seconds
        case = zoo(F64)[name]
        ad.check_grads(case.f, case.args)

    @jax.custom_jvp
    def wrong(x):
        return jnp.sin(x)

    wrong.defjvp(lambda p, t: (jnp.sin(p[0]), 2.0 * jnp.cos(p[0]) * t[0]))
    with pytest.raises(AssertionError, match="fwd"):
        ad.check_grads(lambda x: jnp.sum(wrong(x)), (x,))
    with pytest.raises(ValueError, match="scheme"):
        ad.finite_difference_grad(f, x, scheme="backward")


@pytest.mark.parametrize(("dtype", "atol"), [(F32, 1e-3), (BF16, 0.15)])
def test_finite_differences_in_the_default_and_low_precision(dtype, atol):
    """The default steps and tolerances follow the dtype: float32 and bfloat16 pass (central
    differences in bfloat16: truncation and rounding errors of about 0.05 each)."""
    case = zoo(dtype)["lecture"]
    ad.check_grads(case.f, case.args)
    x = jnp.asarray([0.5, -1.0, 1.5], dtype)
    g = ad.finite_difference_grad(lambda z: jnp.sum(jnp.sin(z) ** 2), x)
    assert g.dtype == dtype
    np.testing.assert_allclose(
        np.asarray(g, np.float32), np.sin(2 * np.asarray(x, np.float32)), atol=atol
    )


def test_line_searches_accept_jaxls_derivatives():
    """jaxls.wolfe given ``ad.value_and_grad``, against jax's derivatives (both in one
    `jax.jit`: the searches' eager paths are tested with the searches)."""
    f = ad_zoo.rosenbrock
    x = jnp.array([-1.2, 1.0, -1.2, 1.0])

    @ad_zoo.fast_jit
    def both(x):
        d = -jax.grad(f)(x)
        return jaxls.wolfe(None, x, d, value_and_grad=ad.value_and_grad(f)), jaxls.wolfe(f, x, d)

    ours, ref = both(x)
    close((ours.step, ours.value, ours.grad), (ref.step, ref.value, ref.grad), 1e-4)
    assert int(ours.num_evals) == int(ref.num_evals)


# --- jax's contract: what jax refuses, jaxls refuses; what jax accepts, jaxls accepts --------

REVERSE = ["grad", "value_and_grad", "jacrev"]
ALL = [*REVERSE, "jacfwd", "hessian"]


def transform(name):
    return getattr(ad, name), getattr(jax, name)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_integer_and_boolean_inputs_are_refused_like_jax(name, dtype):
    """Issue 9, item 16: jax raises `TypeError`; jaxls gave zero gradients."""
    ours, theirs = transform(name)
    f = lambda x: jnp.sum(x * 2.0)
    x = jnp.zeros(3, dtype)
    with pytest.raises(TypeError):
        theirs(f)(x)
    with pytest.raises(
        TypeError, match=rf"jaxls\.ad\.{name}: argument 0 .*{jnp.dtype(dtype).name}"
    ):
        ours(f)(x)
    # A pytree with an integer leaf, differentiated: refused too, the leaf named.
    with pytest.raises(TypeError, match=r"argument 0\['n'\]"):
        ours(lambda p: jnp.sum(p["x"] * p["n"]))({"x": jnp.ones(2), "n": jnp.arange(2)})
    # Integers that are not differentiated are fine.
    g = ours(lambda x, n: jnp.sum(x * n))(jnp.ones(2), jnp.arange(2))
    close(g, theirs(lambda x, n: jnp.sum(x * n))(jnp.ones(2), jnp.arange(2)), rtol(F32))


@pytest.mark.parametrize("name", REVERSE)
def test_allow_int_gives_what_jax_gives(name):
    """``allow_int=True``: float0 zero gradients (jacrev: zeros of the integer dtype)."""
    ours, theirs = transform(name)
    f = lambda x, n: jnp.sum(x * n)
    args = (jnp.ones(2), jnp.arange(2))
    mine = ours(f, argnums=(0, 1), allow_int=True)(*args)
    ref = theirs(f, argnums=(0, 1), allow_int=True)(*args)
    assert jax.tree.structure(mine) == jax.tree.structure(ref)
    for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(ref), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
        if b.dtype != jax.dtypes.float0:
            np.testing.assert_array_equal(a, b)


def test_vjp_of_integer_inputs_gives_float0_like_jax():
    f = lambda x, n: x * n
    args = (jnp.ones(2), jnp.arange(2))
    ct_x, ct_n = ad.vjp(f, *args)[1](jnp.ones(2))
    ref_x, ref_n = jax.vjp(f, *args)[1](jnp.ones(2))
    close(ct_x, ref_x, rtol(F32))
    assert ct_n.dtype == ref_n.dtype == jax.dtypes.float0 and ct_n.shape == (2,)
    ct = jax.jit(lambda a: ad.vjp(f, *a)[1](jnp.ones(2)))(args)  # float0 leaves a jit
    assert ct[1].dtype == jax.dtypes.float0


def test_jvp_of_integer_inputs_takes_and_gives_float0_tangents_like_jax():
    f = lambda x, n: (x * n, n * 2)
    args = (jnp.ones(2), jnp.arange(2))
    tangents = (jnp.ones(2), np.zeros(2, jax.dtypes.float0))
    (_, (t_y, t_m)) = ad.jvp(f, args, tangents)
    (_, (r_y, r_m)) = jax.jvp(f, args, tangents)
    close(t_y, r_y, rtol(F32))
    assert t_m.dtype == r_m.dtype == jax.dtypes.float0 and t_m.shape == r_m.shape
    with pytest.raises(TypeError):
        jax.jvp(f, args, (jnp.ones(2), jnp.ones(2, jnp.int32)))
    with pytest.raises(TypeError, match=r"jaxls\.ad\.jvp: .*tangent 1 .*float0"):
        ad.jvp(f, args, (jnp.ones(2), jnp.ones(2, jnp.int32)))


@pytest.mark.parametrize("name", ["grad", "value_and_grad", "jacrev", "hessian"])
def test_complex_output_needs_holomorphic_like_jax(name):
    """Issue 9, item 16: jaxls gave the holomorphic derivative without being asked."""
    ours, theirs = transform(name)
    f = lambda x: jnp.sum(jnp.sin(x) * (1.0 + 2.0j))
    x = jnp.ones(2)
    with pytest.raises(TypeError):
        theirs(f)(x)
    with pytest.raises(TypeError, match=rf"jaxls\.ad\.{name}: .*complex64.*holomorphic=True"):
        ours(f)(x)


@pytest.mark.parametrize("name", ["jacfwd", "hessian"])
def test_complex_input_of_forward_jacobians_needs_holomorphic_like_jax(name):
    ours, theirs = transform(name)
    f = lambda z: jnp.sum(jnp.abs(z) ** 2)
    z = jnp.asarray([1.0 + 1.0j, 0.5 - 2.0j])
    with pytest.raises(TypeError):
        theirs(f)(z)
    with pytest.raises(TypeError, match=rf"jaxls\.ad\.{name}: .*complex64.*holomorphic=True"):
        ours(f)(z)


def test_complex_input_real_output_is_differentiated_like_jax():
    f = lambda z: jnp.sum(jnp.abs(z) ** 2)
    z = jnp.asarray([1.0 + 1.0j, 0.5 - 2.0j])
    close(ad.grad(f)(z), jax.grad(f)(z), rtol(F32))
    close(ad.jacrev(f)(z), jax.jacrev(f)(z), rtol(F32))


@pytest.mark.parametrize("name", ALL)
def test_holomorphic_derivatives_match_jax(name):
    ours, theirs = transform(name)
    scalar = name in ("grad", "value_and_grad")
    f = (lambda z: jnp.sum(jnp.sin(z) * z)) if scalar else (lambda z: jnp.sin(z) * z[::-1])
    z = jnp.asarray([1.0 + 1.0j, 0.5 - 2.0j])
    close(ours(f, holomorphic=True)(z), theirs(f, holomorphic=True)(z), rtol(F32))
    # Real inputs with holomorphic=True: refused, as jax does.
    with pytest.raises(TypeError):
        theirs(f, holomorphic=True)(jnp.ones(2))
    with pytest.raises(TypeError, match=rf"jaxls\.ad\.{name}: .*holomorphic=True.*complex"):
        ours(f, holomorphic=True)(jnp.ones(2))


def test_nextafter_has_no_derivative_like_jax():
    """Issue 9, item 16: jaxls gave ``nextafter`` a zero derivative; jax refuses."""
    f = lambda x: jnp.sum(jnp.nextafter(x, 2.0))
    x = jnp.ones(2)
    with pytest.raises(NotImplementedError):
        jax.grad(f)(x)
    with pytest.raises(NotImplementedError, match=r"nextafter.*stop_gradient"):
        ad.grad(f)(x)
    with pytest.raises(NotImplementedError, match=r"nextafter.*stop_gradient"):
        ad.jvp(f, (x,), (x,))
    # Not on the differentiated path: fine, as in jax.
    g = lambda x: jnp.sum(x * jnp.nextafter(jnp.float32(1.0), 2.0))
    close(ad.grad(g)(x), jax.grad(g)(x), 0.0)
    h = lambda x: jnp.sum(jnp.nextafter(lax.stop_gradient(x), 2.0) * x)
    close(ad.grad(h)(x), jax.grad(h)(x), 0.0)


@pytest.mark.parametrize("name", ALL)
def test_keyword_arguments_pass_through_like_jax(name):
    """Issue 9, item 16: ``grad(f)(x, s=2.)`` calls ``f(x, s=2.)`` (keywords are never
    differentiated, in jax either); an array keyword may be traced."""
    ours, theirs = transform(name)
    f = lambda x, y=1.0, *, s=1.0: jnp.sum(jnp.sin(x) * y) * s
    x = jnp.asarray([0.3, -1.2])
    close(ours(f)(x, s=2.0), theirs(f)(x, s=2.0), rtol(F32))
    close(ours(f)(x, y=x, s=2.0), theirs(f)(x, y=x, s=2.0), rtol(F32))
    close(
        jax.jit(lambda x, s: ours(f)(x, s=s))(x, 3.0),
        jax.jit(lambda x, s: theirs(f)(x, s=s))(x, 3.0),
        rtol(F32),
    )


def test_has_aux_like_jax():
    """``has_aux`` on every transform that has it in jax: ``aux`` comes back untouched."""
    f = lambda x: (jnp.sin(x) * x[::-1], {"sum": jnp.sum(x), "n": jnp.arange(2)})
    s = lambda x: (jnp.sum(jnp.sin(x) * x[::-1]), jnp.cos(x))
    x = jnp.asarray([0.3, -1.2])
    tol = rtol(F32)
    close(ad.jvp(f, (x,), (x,), has_aux=True), jax.jvp(f, (x,), (x,), has_aux=True), tol)
    out, pull, aux = ad.vjp(f, x, has_aux=True)
    ref_out, ref_pull, ref_aux = jax.vjp(f, x, has_aux=True)
    close((out, pull(x), aux), (ref_out, ref_pull(x), ref_aux), tol)
    for name in ("jacfwd", "jacrev"):
        ours, theirs = transform(name)
        close(ours(f, has_aux=True)(x), theirs(f, has_aux=True)(x), tol)
    for name in ("grad", "value_and_grad", "hessian"):
        ours, theirs = transform(name)
        close(ours(s, has_aux=True)(x), theirs(s, has_aux=True)(x), tol)


def test_vjp_checks_its_cotangent_like_jax():
    """A cotangent shaped unlike the output was broadcast or summed, silently."""
    _, pull = ad.vjp(jnp.sin, jnp.ones(()))
    with pytest.raises(ValueError):
        jax.vjp(jnp.sin, jnp.ones(()))[1](jnp.ones(2))
    with pytest.raises(ValueError, match=r"jaxls\.ad\.vjp: .*cotangent.*shape \(2,\).*\(\)"):
        pull(jnp.ones(2))
    with pytest.raises(ValueError, match=r"jaxls\.ad\.vjp: .*complex.*float32"):
        pull(1.0 + 1.0j)  # the imaginary part would be dropped
    _, pull_int = ad.vjp(lambda x: (x, jnp.round(x).astype(jnp.int32)), jnp.ones(2))
    (ct,) = pull_int((jnp.ones(2), np.zeros(2, jax.dtypes.float0)))
    close(ct, jnp.ones(2), 0.0)


# --- issue 11 (d): the dtype contract, re-checked against jax's own api_test -----------------
#
# jax's messages, for reference (jax/_src/api.py, 0.10):
#   grad:   "grad requires real- or complex-valued inputs (input dtype that is a sub-dtype of
#            np.inexact), but got int32. If you want to use Boolean- or integer-valued inputs,
#            use vjp or set allow_int to True."
#           "grad requires numerical-valued inputs (input dtype that is a sub-dtype of
#            np.bool_ or np.number), but got void."  (float0, even with allow_int=True)
#           "grad requires real-valued outputs (output dtype that is a sub-dtype of
#            np.floating), but got complex64. For holomorphic differentiation, pass
#            holomorphic=True. ..."
#   jacfwd: "jacfwd requires real-valued inputs (input dtype that is a sub-dtype of
#            np.floating), but got int32. ..."; "jacfwd with input element type key<fry>"
#   jvp:    "primal and tangent arguments to jax.jvp do not match; dtypes must be equal, or in
#            case of int/bool primal dtype the tangent dtype must be float0." (TypeError)
#   vjp_fn: "unexpected JAX type (e.g. shape/dtype) for argument to VJP function: got
#            int32[], but expected float32[] ..." (ValueError); for an integer output any
#            cotangent of its shape is accepted (`_temporary_dtype_exception`).


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name", ALL)
def test_float0_inputs_are_refused_even_with_allow_int_like_jax(name, dtype):
    """float0 is no number: jax refuses it as an input to differentiate, ``allow_int`` or
    not; jaxls gave it a float0 "gradient"."""
    ours, theirs = transform(name)
    flags = {"allow_int": True} if name in REVERSE else {}
    f = lambda x, z: jnp.sum(jnp.sin(x))
    args = (jnp.ones(2, dtype), np.zeros(2, jax.dtypes.float0))
    with pytest.raises(TypeError):
        theirs(f, argnums=(0, 1), **flags)(*args)
    with pytest.raises(TypeError, match=rf"jaxls\.ad\.{name}: argument 1 is float0, .*number"):
        ours(f, argnums=(0, 1), **flags)(*args)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_prng_key_inputs_are_integer_like_like_jax(dtype):
    """A typed PRNG key (an extended dtype) is, to jax, an input without derivative, like an
    integer: refused by the Jacobians, float0 zeros under ``allow_int``, ``vjp`` and ``jvp``.
    jaxls crashed reading its dtype ("Cannot interpret 'key<fry>' as a data type")."""
    key = jax.random.key(0)
    f = lambda x, k: jnp.sum(jnp.sin(x) * jax.random.normal(k, (2,), dtype))
    x = jnp.asarray([0.3, -1.2], dtype)
    tol = rtol(dtype)
    for name in ALL:
        ours, theirs = transform(name)
        with pytest.raises(TypeError):
            theirs(f, argnums=1)(x, key)
        with pytest.raises(TypeError, match=rf"jaxls\.ad\.{name}: argument 1 is key<fry>"):
            ours(f, argnums=1)(x, key)
    for name in ("grad", "value_and_grad"):
        ours, theirs = transform(name)
        mine = ours(f, argnums=(0, 1), allow_int=True)(x, key)
        ref = theirs(f, argnums=(0, 1), allow_int=True)(x, key)
        assert jax.tree.map(lambda a: (a.shape, a.dtype), mine) == jax.tree.map(
            lambda a: (a.shape, a.dtype), ref
        )
        close(jax.tree.leaves(mine)[:-1], jax.tree.leaves(ref)[:-1], tol)
    # jax's jacrev(allow_int=True) crashes on a key (NotImplementedError: no zero of its
    # dtype to fill the Jacobian with); jaxls says so.
    with pytest.raises(TypeError, match=r"jaxls\.ad\.jacrev\(allow_int=True\): argument 1 .*key"):
        ad.jacrev(f, argnums=(0, 1), allow_int=True)(x, key)
    # vjp: a float0 cotangent for the key; jvp: a float0 tangent for it.
    out, pull = ad.vjp(f, x, key)
    ref_out, ref_pull = jax.vjp(f, x, key)
    ct_x, ct_k = pull(jnp.ones((), dtype))
    ref_x, ref_k = ref_pull(jnp.ones((), dtype))
    close((out, ct_x), (ref_out, ref_x), tol)
    assert ct_k.dtype == ref_k.dtype == jax.dtypes.float0 and ct_k.shape == ref_k.shape
    tangents = (jnp.ones(2, dtype), np.zeros((), jax.dtypes.float0))
    close(ad.jvp(f, (x, key), tangents), jax.jvp(f, (x, key), tangents), tol)
    # An output key: refused by the Jacobians, a float0 tangent from jvp (as in jax).
    g = lambda x: (jnp.sin(x), key)
    with pytest.raises(TypeError):
        jax.jacrev(g)(x)
    for name in ("jacrev", "jacfwd"):
        with pytest.raises(TypeError, match=rf"jaxls\.ad\.{name}: `fun`'s output\[1\] is key<fry>"):
            getattr(ad, name)(g)(x)
    (_, (t_y, t_k)) = ad.jvp(g, (x,), (x,))
    (_, (r_y, r_k)) = jax.jvp(g, (x,), (x,))
    close(t_y, r_y, tol)
    assert t_k.dtype == r_k.dtype == jax.dtypes.float0 and t_k.shape == r_k.shape == ()


@pytest.mark.parametrize("dtype", [F32, F64])
def test_jvp_refuses_a_tangent_of_another_kind_like_jax(dtype):
    """An integer, boolean or float0 tangent for a floating primal: jax raises TypeError;
    jaxls cast an integer one to a float."""
    x = jnp.asarray([0.3, -1.2], dtype)
    for bad in (jnp.ones(2, jnp.int32), jnp.ones(2, bool), np.zeros(2, jax.dtypes.float0)):
        with pytest.raises(TypeError):
            jax.jvp(jnp.sin, (x,), (bad,))
        kind = jnp.dtype(bad.dtype).name if bad.dtype != jax.dtypes.float0 else "float0"
        with pytest.raises(
            TypeError, match=rf"jaxls\.ad\.jvp: tangent 0 is {kind} for a {jnp.dtype(dtype).name}"
        ):
            ad.jvp(jnp.sin, (x,), (bad,))
    with pytest.raises(TypeError, match=r"jaxls\.ad\.jvp: tangent 0 is int(32|64) for a float"):
        ad.jvp(jnp.sin, (jnp.ones((), dtype),), (1,))  # a Python int: refused as in jax


@pytest.mark.parametrize("dtype", LOW)
def test_tangents_and_cotangents_of_another_float_dtype_are_cast(dtype):
    """The one convenience jax does not offer: a real tangent or cotangent of another float
    dtype seeds its primal's or output's dtype (bfloat16 and float16 keep working)."""
    x = jnp.asarray([0.3, -1.2], dtype)
    out, t = ad.jvp(jnp.sin, (x,), (jnp.ones(2, F32),))
    close((out, t), jax.jvp(jnp.sin, (x,), (jnp.ones(2, dtype),)), rtol(dtype))
    (ct,) = ad.vjp(jnp.sin, x)[1](jnp.ones(2, F32))
    close(ct, jax.vjp(jnp.sin, x)[1](jnp.ones(2, dtype))[0], rtol(dtype))
    # hvp is jaxls's own: an integer direction (a basis vector) is a direction too.
    f = lambda x: jnp.sum(jnp.sin(x) * x[::-1])
    close(ad.hvp(f, x, jnp.asarray([1, 0])), ad.hvp(f, x, jnp.asarray([1, 0], dtype)), 0.0)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_vjp_cotangent_dtypes_like_jax(dtype):
    """The floating output's cotangent must be a float (jax: ValueError; jaxls cast an
    integer one); the integer output's may be any array of its shape (jax accepts and ignores
    it; jaxls refused all but float0)."""
    f = lambda x: (jnp.sin(x), jnp.round(x).astype(jnp.int32))
    x = jnp.asarray([0.3, -1.2], dtype)
    _, pull = ad.vjp(f, x)
    _, ref_pull = jax.vjp(f, x)
    zero = np.zeros(2, jax.dtypes.float0)
    for bad in (
        jnp.ones(2, jnp.int32),
        jnp.ones(2, bool),
        jnp.ones(2, jnp.complex64),
        np.zeros(2, jax.dtypes.float0),
    ):
        with pytest.raises(ValueError):
            ref_pull((bad, zero))
        with pytest.raises(ValueError, match=r"jaxls\.ad\.vjp: the cotangent\[0\] is "):
            pull((bad, zero))
    ct = jnp.asarray([0.5, 2.0], dtype)
    for ignored in (zero, jnp.ones(2, jnp.int32), jnp.ones(2, dtype), jnp.ones(2, bool)):
        close(pull((ct, ignored)), ref_pull((ct, ignored)), rtol(dtype))
    with pytest.raises(ValueError):
        ref_pull((ct, jnp.ones(3, jnp.int32)))
    with pytest.raises(ValueError, match=r"jaxls\.ad\.vjp: the cotangent\[1\] has shape \(3,\)"):
        pull((ct, jnp.ones(3, jnp.int32)))


def _value_dependent_functions():
    """``(name, f)``: scalar functions with Python control flow on their input's value, which
    `jax.grad` runs (outside `jax.jit`, on concrete values) and jaxls, which traces ``f`` to a
    jaxpr first, cannot."""

    def branch(x):
        return jnp.sin(x) if x > 0 else x

    @jax.custom_jvp
    def custom_jvp_primal(x):
        return jnp.sin(x) if x > 0 else x

    custom_jvp_primal.defjvp(lambda p, t: (custom_jvp_primal(p[0]), jnp.cos(p[0]) * t[0]))

    @jax.custom_jvp
    def custom_jvp_rule(x):
        return jnp.sin(x)

    custom_jvp_rule.defjvp(
        lambda p, t: (jnp.sin(p[0]), (jnp.cos(p[0]) if p[0] > 0 else 1.0) * t[0])
    )

    @jax.custom_vjp
    def custom_vjp_fwd(x):
        return jnp.sin(x)

    def fwd(x):
        return jnp.sin(x), (jnp.cos(x) if x > 0 else jnp.ones_like(x))

    custom_vjp_fwd.defvjp(fwd, lambda r, ct: (r * ct,))

    def to_int(x):
        return x * jnp.asarray([1.0, 2.0], x.dtype)[int(x)]

    return [
        ("branch", branch),
        ("custom_jvp_primal", custom_jvp_primal),
        ("custom_jvp_rule", custom_jvp_rule),
        ("custom_vjp_fwd", custom_vjp_fwd),
        ("int", to_int),
    ]


VALUE_DEPENDENT = _value_dependent_functions()


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize(("what", "f"), VALUE_DEPENDENT, ids=[w for w, _ in VALUE_DEPENDENT])
def test_python_control_flow_on_values_is_refused_naming_the_limitation(what, f, dtype):
    """Issue 11: jax.grad runs ``if x > 0:`` outside jit; jaxls traces first and failed with
    JAX's raw TracerBoolConversionError. Now: a ConcretizationTypeError (so a TypeError)
    naming the call and the limitation, the original chained."""
    x = jnp.asarray(0.5, dtype)
    jax.grad(f)(x)  # jax runs it
    calls = {
        "grad": lambda: ad.grad(f)(x),
        "value_and_grad": lambda: ad.value_and_grad(f)(x),
        "jacrev": lambda: ad.jacrev(f)(x),
        "vjp": lambda: ad.vjp(f, x)[1](jnp.ones((), dtype)),  # a rule may run late
        "hessian": lambda: ad.hessian(f)(x),
    }
    if what != "custom_vjp_fwd":  # forward mode refuses custom_vjp outright
        calls["jvp"] = lambda: ad.jvp(f, (x,), (jnp.ones((), dtype),))
        calls["jacfwd"] = lambda: ad.jacfwd(f)(x)
    for name, call in calls.items():
        with pytest.raises(jax.errors.ConcretizationTypeError) as info:
            call()
        message = str(info.value)
        assert isinstance(info.value, TypeError)
        assert message.startswith(f"jaxls.ad.{name} traces `fun` to a jaxpr"), message
        assert "jax.lax.cond" in message and "jnp.where" in message, message
        assert isinstance(info.value.__cause__, TypeError), info.value.__cause__
    # Under jit jax cannot run it either; jaxls's error is the same.
    with pytest.raises(TypeError):
        jax.jit(jax.grad(f))(x)
    with pytest.raises(jax.errors.ConcretizationTypeError, match=r"jaxls\.ad\.grad traces"):
        jax.jit(ad.grad(f))(x)


def test_control_flow_on_an_argument_not_differentiated_runs_like_jax():
    """The fix the error names: an argument outside ``argnums`` (or a keyword one) stays
    concrete, so Python may branch on it."""
    f = lambda x, s, *, sign=1: (jnp.sin(x) if s > 0 else jnp.cos(x)) * sign
    x = jnp.asarray(0.5)
    for s in (1.0, -1.0):
        close(ad.grad(f)(x, s, sign=-1), jax.grad(f)(x, s, sign=-1), rtol(F32))
        close(ad.jacfwd(f)(x, s), jax.jacfwd(f)(x, s), rtol(F32))


def _fun_errors():
    """(description, thunk, exception, pattern) for the common mistakes of issue 9, item 17."""
    f = lambda x, y=1.0: jnp.sum(jnp.sin(x) * y)
    x = jnp.ones(2)
    cases = [
        (f"{name}(3)", lambda name=name: getattr(ad, name)(3), TypeError,
         rf"jaxls\.ad\.{name}: `fun` must be callable, got 3")
        for name in ("grad", "value_and_grad", "jacfwd", "jacrev", "hessian")
    ]  # fmt: skip
    cases += [
        (f"{name}(3)", thunk, TypeError, rf"jaxls\.ad\.{name}: `fun` must be callable")
        for name, thunk in [
            ("jvp", lambda: ad.jvp(3, (x,), (x,))),
            ("vjp", lambda: ad.vjp(3, x)),
            ("hvp", lambda: ad.hvp(3, x, x)),
            ("trace", lambda: ad.trace(3, x)),
        ]
    ]
    cases += [
        ("finite_difference_grad(3)", lambda: ad.finite_difference_grad(3, x), TypeError,
         r"jaxls\.ad\.finite_difference_grad: `fun` must be callable"),
        ("check_grads(3)", lambda: ad.check_grads(3, (x,)), TypeError,
         r"jaxls\.ad\.check_grads: `fun` must be callable"),
        ("check_grads(args=array)", lambda: ad.check_grads(f, x), TypeError,
         r"jaxls\.ad\.check_grads: `args` must be a tuple"),
        ("check_grads(modes)", lambda: ad.check_grads(f, (x,), modes=("rev", "fw")), ValueError,
         r"jaxls\.ad\.check_grads\(modes=.*'fw'"),
        ("argnums='a'", lambda: ad.grad(f, argnums="a"), TypeError,
         r"jaxls\.ad\.grad\(argnums='a'\): `argnums` must be an int or a sequence of ints"),
        ("argnums=1.0", lambda: ad.jacrev(f, argnums=1.0), TypeError,
         r"jaxls\.ad\.jacrev\(argnums=1\.0\)"),
        ("argnums=(0, 0)", lambda: ad.grad(f, argnums=(0, 0)), ValueError,
         r"jaxls\.ad\.grad\(argnums=\(0, 0\)\): .*twice"),
        ("argnums=(0, -2)", lambda: ad.grad(f, argnums=(0, -2))(x, x), ValueError,
         r"jaxls\.ad\.grad\(argnums=\(0, -2\)\): .*twice"),
        ("argnums=3", lambda: ad.grad(f, argnums=3)(x), TypeError,
         r"jaxls\.ad\.grad\(argnums=3\): .*at least 4 positional arguments, got 1"),
        ("argnums=1 keyword", lambda: ad.jacfwd(f, argnums=1)(x, y=x), TypeError,
         r"jaxls\.ad\.jacfwd\(argnums=1\): .*positional.*keyword"),
        ("no argument", lambda: ad.value_and_grad(lambda: 1.0)(), TypeError,
         r"jaxls\.ad\.value_and_grad\(argnums=0\): .*at least 1 positional argument, got 0"),
        ("has_aux='no'", lambda: ad.grad(f, has_aux="no"), TypeError,
         r"jaxls\.ad\.grad\(has_aux='no'\): `has_aux` must be True or False"),
        ("holomorphic=1", lambda: ad.jacfwd(f, holomorphic=1), TypeError,
         r"jaxls\.ad\.jacfwd\(holomorphic=1\): `holomorphic` must be True or False"),
        ("allow_int=None", lambda: ad.value_and_grad(f, allow_int=None), TypeError,
         r"jaxls\.ad\.value_and_grad\(allow_int=None\)"),
        ("vjp has_aux='yes'", lambda: ad.vjp(f, x, has_aux="yes"), TypeError,
         r"jaxls\.ad\.vjp\(has_aux='yes'\)"),
        ("string argument", lambda: ad.grad(lambda s: 1.0)("a"), TypeError,
         r"jaxls\.ad\.grad: argument 0 \('a', a str\) is not a JAX array"),
        ("vjp string argument", lambda: ad.vjp(lambda a, b: a, x, "b"), TypeError,
         r"jaxls\.ad\.vjp: argument 1 \('b', a str\) is not a JAX array"),
        ("jvp string primal", lambda: ad.jvp(lambda s: 1.0, ("a",), (1.0,)), TypeError,
         r"jaxls\.ad\.jvp: primal 0 \('a', a str\) is not a JAX array"),
        ("jvp complex tangent", lambda: ad.jvp(jnp.sin, (x,), (x * 1j,)), TypeError,
         r"jaxls\.ad\.jvp: tangent 0 is complex64 for a float32 primal"),
        ("jvp primals not a tuple", lambda: ad.jvp(jnp.sin, x, x), TypeError,
         r"jaxls\.ad\.jvp: `primals` and `tangents` must be tuples or lists"),
        ("grad vector output", lambda: ad.grad(jnp.sin)(x), TypeError,
         r"jaxls\.ad\.grad: `fun` must return a real scalar.*float32\[2\]"),
        ("grad integer output", lambda: ad.grad(lambda x: jnp.sum(x).astype(int))(x), TypeError,
         r"jaxls\.ad\.grad: `fun` must return a real scalar.*int32\[\].*jaxls\.ad\.vjp"),
        ("has_aux without a pair", lambda: ad.grad(lambda x: jnp.sum(x), has_aux=True)(x),
         TypeError, r"jaxls\.ad\.grad\(has_aux=True\): `fun` must return a pair"),
        ("grad dict output", lambda: ad.grad(lambda x: {"a": jnp.sum(x)})(x), TypeError,
         r"jaxls\.ad\.grad: `fun` must return a real scalar, got a dict"),
        ("grad None output", lambda: ad.grad(lambda x: None)(x), TypeError,
         r"jaxls\.ad\.grad: `fun` must return a real scalar, got None"),
        ("grad holomorphic real output",
         lambda: ad.grad(jnp.abs, holomorphic=True)(jnp.complex64(1.0)), TypeError,
         r"jaxls\.ad\.grad: with holomorphic=True `fun` must return complex values; its output "
         r"is float32\."),
        ("jacrev integer output leaf", lambda: ad.jacrev(lambda x: (x, x.astype(int)))(x),
         TypeError, r"jaxls\.ad\.jacrev: `fun`'s output\[1\] is int32, which has no derivative"),
        ("jvp int tangent", lambda: ad.jvp(jnp.sin, (x,), (jnp.ones(2, int),)), TypeError,
         r"jaxls\.ad\.jvp: tangent 0 is int32 for a float32 primal.*float"),
    ]  # fmt: skip
    return cases


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A call that must fail with ``error`` matching ``pattern``. (A dataclass, not a tuple
    of strings: conftest reads tuple parameters as candidate dtypes.)"""

    what: str
    thunk: Callable
    error: type
    pattern: str


MISTAKES = [Mistake(*case) for case in _fun_errors()]


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.what for m in MISTAKES])
def test_errors_name_the_call_and_the_argument(mistake):
    """Issue 9, item 17: bad inputs raise an error that names the call and the argument
    (and the fix), never one from inside JAX."""
    with pytest.raises(mistake.error, match=mistake.pattern):
        mistake.thunk()


def test_jvp_checks_its_inputs():
    with pytest.raises(ValueError, match=r"jaxls\.ad\.jvp: .*same structure"):
        ad.jvp(jnp.sin, (1.0,), (1.0, 2.0))
    with pytest.raises(ValueError, match=r"jaxls\.ad\.jvp: tangent 0 has shape \(3,\)"):
        ad.jvp(jnp.sin, (jnp.ones(2),), (jnp.ones(3),))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_debug_callback_runs_and_is_not_differentiated(dtype):
    """`jax.debug.callback` (an equation without outputs) in forward and reverse mode, eager
    and jitted: the callback sees the primal values, and the derivatives are jax's."""
    seen = []

    def f(x):
        jax.debug.callback(lambda v: seen.append(float(v)), x)
        return jnp.sin(x) * x

    x = jnp.asarray(0.7, dtype)
    expected = jax.jvp(f, (x,), (jnp.ones_like(x),))
    jax.effects_barrier()
    seen.clear()
    for transform in (lambda g: g, jax.jit):
        out, tangent = transform(lambda x: ad.jvp(f, (x,), (jnp.ones_like(x),)))(x)
        grad = transform(ad.grad(f))(x)
        jax.effects_barrier()
        np.testing.assert_allclose(out, expected[0], rtol=1e-6)
        np.testing.assert_allclose(tangent, expected[1], rtol=1e-6)
        np.testing.assert_allclose(grad, expected[1], rtol=1e-6)
        assert tangent.dtype == grad.dtype == dtype
    assert seen and all(v == pytest.approx(0.7) for v in seen), seen
