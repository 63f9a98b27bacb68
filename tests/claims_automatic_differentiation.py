"""The claims of notebooks/automatic_differentiation.ipynb (tests/test_notebooks.py)."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np

from tests.notebook_checks import EPS32, ROOT, close


def lecture_graph():
    """The lecture's graph at (w1, w2) = (2, 5) by the chain rule in float64: for each node,
    (primitive, inputs, value, dv/dw1, dL/dv)."""
    w1, w2 = 2.0, 5.0
    v1 = math.log(w1)
    v2 = w2 * v1
    v3 = math.sqrt(v2)
    dv2 = 1 + 1 / (2 * v3)  # dL/dv2: v2 feeds v4 directly and through v3
    return {
        "w1": ("input", (), w1, 1.0, w2 * dv2 / w1),
        "w2": ("input", (), w2, 0.0, v1 * dv2),
        "v1": ("log", ("w1",), v1, 1 / w1, w2 * dv2),
        "v2": ("mul", ("w2", "v1"), v2, w2 / w1, dv2),
        "v3": ("sqrt", ("v2",), v3, w2 / w1 / (2 * v3), 1.0),
        "v4": ("add", ("v2", "v3"), v2 + v3, w2 / w1 * dv2, 1.0),
    }


def rosenbrock_hessian(x: np.ndarray) -> np.ndarray:
    """The Hessian of sum(100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2), in closed form."""
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] = h[i + 1, i] = -400 * x[i]
    return h


def check(ns: dict) -> None:
    ad, L, graph = ns["ad"], ns["L"], ns["graph"]
    expected = lecture_graph()
    gradient = (expected["w1"][4], expected["w2"][4])
    reference = jax.grad(L, argnums=(0, 1))(2.0, 5.0)
    close(reference, gradient, rtol=1e-6, claim="the oracles disagree")

    # The table: the lecture's nodes, values and sweeps. rtol: a few float32 roundings.
    assert [n.name for n in graph.nodes] == list(expected), graph
    assert graph.outputs == ("v4",), graph
    for node in graph.nodes:
        primitive, inputs, value, tangent, adjoint = expected[node.name]
        assert (node.primitive, node.inputs) == (primitive, inputs), node
        assert jnp.result_type(node.value) == jnp.float32, node  # float32, JAX's default
        close(
            [node.value, node.tangent, node.adjoint],
            [value, tangent, adjoint],
            rtol=1e-6,
            claim=f"{node.name}: tangent is dv/dw1, adjoint dL/dv",
        )
    # The output's tangent is dL/dw1; the inputs' adjoints are the gradient; both agree with
    # jax.grad, and so do jaxls's reverse and forward modes.
    close(graph.nodes[-1].tangent, reference[0], rtol=1e-6, claim="output tangent")
    close([n.adjoint for n in graph.nodes[:2]], reference, rtol=1e-6, claim="input adjoints")
    close(ns["reverse"], reference, rtol=1e-6, claim="ad.grad agrees with jax.grad")
    close(ns["forward"], reference, rtol=1e-6, claim="ad.jvp agrees with jax.grad")
    # The same code gives float64 results under x64, and bfloat16 ones for bfloat16 inputs.
    with jax.enable_x64(True):
        wide = ad.grad(L, argnums=(0, 1))(2.0, 5.0)
    assert [g.dtype for g in wide] == [jnp.float64] * 2, wide
    close(wide, gradient, rtol=1e-12, claim="float64 gradient")
    narrow = ad.grad(L, argnums=(0, 1))(jnp.bfloat16(2.0), jnp.bfloat16(5.0))
    assert [g.dtype for g in narrow] == [jnp.bfloat16] * 2, narrow
    close(narrow, gradient, rtol=2e-2, claim="bfloat16 gradient")  # bfloat16's eps: 7.8e-3

    # to_dot is the same graph in Graphviz's language: one box per node, the lecture's edges.
    dot = graph.to_dot()
    assert dot.startswith("digraph {") and dot.endswith("}"), dot
    boxes = re.findall(r'^  (\w+) \[shape=box, label="\1 = (\w+)', dot, re.MULTILINE)
    assert boxes == [(name, e[0]) for name, e in expected.items()], dot
    edges = re.findall(r"^  (\w+) -> (\w+);$", dot, re.MULTILINE)
    assert sorted(edges) == sorted((i, name) for name, e in expected.items() for i in e[1]), dot

    # hessian equals jax.hessian and the closed form; hvp with e1 is its first column,
    # computed without forming an n x n array (hessian's program has one).
    rosenbrock, x, H, Hv = ns["rosenbrock"], ns["x"], ns["H"], ns["Hv"]
    exact = rosenbrock_hessian(np.asarray(x, np.float64))
    atol = 1e-6 * np.abs(exact).max()  # float32 entries up to 1330
    assert H.dtype == jnp.float32, H
    close(H, exact, rtol=0, atol=atol, claim="Hessian: closed form")
    close(H, jax.hessian(rosenbrock)(x), rtol=0, atol=atol, claim="Hessian: jax.hessian")
    close(Hv, exact[:, 0], rtol=0, atol=atol, claim="hvp(e1): the Hessian's first column")
    square = f"[{x.size},{x.size}]"
    e1 = jnp.zeros_like(x).at[0].set(1.0)
    assert square not in str(jax.make_jaxpr(lambda v: ad.hvp(rosenbrock, x, v))(e1))
    assert square in str(jax.make_jaxpr(ad.hessian(rosenbrock))(x))

    # jacfwd and jacrev: A, shape (m, n) = (3, 100), from a batch of n JVP seeds and of m VJP
    # seeds respectively (the identity of each size is in one program and not the other).
    A, f = ns["A"], ns["f"]
    m, n = A.shape
    assert (m, n) == (3, 100), A.shape
    for name in ("jac_fwd", "jac_rev"):
        assert ns[name].shape == (m, n), name
        close(ns[name], A, rtol=EPS32, claim=f"{name} is A")
    fwd = str(jax.make_jaxpr(ad.jacfwd(f))(jnp.ones(n)))
    rev = str(jax.make_jaxpr(ad.jacrev(f))(jnp.ones(n)))
    assert f"[{n},{n}]" in fwd and f"[{m},{m}]" not in fwd, "jacfwd: n JVPs"
    assert f"[{m},{m}]" in rev and f"[{n},{n}]" not in rev, "jacrev: m VJPs"
    # The timings the text cites exist.
    assert (ROOT / "benchmarks" / "ad.py").is_file()
    assert (ROOT / "benchmarks" / "ad_fwd_vs_rev.png").is_file()

    # Checkpointing: the gradient is jax.grad's of the same function without checkpoints;
    # the backward sweep recomputes each checkpointed block behind an optimisation barrier.
    block = lambda y: jnp.tanh(jnp.sin(y) * y)
    plain = lambda x: jnp.sum(block(block(x)))
    xs = ns["xs"]
    close(ns["grads"], jax.grad(plain)(xs), rtol=1e-5, atol=1e-6, claim="checkpoint gradient")
    barriers = str(jax.make_jaxpr(ad.grad(ns["loss"]))(xs)).count("optimization_barrier")
    assert barriers == 2, "one barrier per checkpointed call"
    assert "optimization_barrier" not in str(jax.make_jaxpr(ad.grad(plain))(xs))
