"""The notebooks run, and what they say is true.

Their code cells execute in order, in one namespace, without Jupyter (a notebook is JSON,
read with the standard library). Then ``CLAIMS[stem]`` checks the claims of the notebook's
text and printed output against the objects its cells left in the namespace, with closed
forms, `jax.grad`, `jax.hessian` and NumPy as oracles; a notebook without an entry fails.
The stored outputs must be what the cells print now, digits aside: after editing a cell,
regenerate its output.
"""

from __future__ import annotations

import itertools
import json
import math
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxls

ROOT = pathlib.Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EPS32 = float(jnp.finfo(jnp.float32).eps)  # 1.2e-7: the notebooks run in float32
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def close(actual, expected, rtol, atol=0.0, claim=""):
    np.testing.assert_allclose(
        np.asarray(actual, np.float64),
        np.asarray(expected, np.float64),
        rtol=rtol,
        atol=atol,
        err_msg=claim,
    )


def decreasing(values) -> bool:
    return all(b < a for a, b in itertools.pairwise(values))


# ---------------------------------------------------------------- automatic_differentiation


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


def automatic_differentiation(ns: dict) -> None:
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


# -------------------------------------------------------------- training_with_line_searches


def rosenbrock_grad(x) -> np.ndarray:
    """The gradient of (1 - x0)^2 + 100 (x1 - x0^2)^2, in closed form, in float64."""
    x0, x1 = np.asarray(x, np.float64)
    return np.array([-2 * (1 - x0) - 400 * x0 * (x1 - x0**2), 200 * (x1 - x0**2)])


def logistic_grad(w, X, y) -> np.ndarray:
    """The gradients of mean(log(1 + exp(-y X w))) + 0.01 |w|^2 for a batch of (w, X, y), in
    float64: -mean(sigmoid(-y X w) y X) + 0.02 w."""
    w, X, y = (np.asarray(a, np.float64) for a in (w, X, y))
    margin = -y * np.einsum("bnp,bp->bn", X, w)
    return np.einsum("bn,bnp->bp", -y / (1 + np.exp(-margin)), X) / X.shape[1] + 2e-2 * w


def training_with_line_searches(ns: dict) -> None:
    rosenbrock = ns["rosenbrock"]

    # Steepest descent + Brent and L-BFGS + Wolfe both converge to grad_tol=1e-4 in float32;
    # L-BFGS with far fewer iterations and evaluations; num_evals counts the searches' too.
    results = ns["results"]
    assert list(results) == ["steepest descent + Brent", "L-BFGS + Wolfe"], results
    for name, res in results.items():
        assert int(res.status) == jaxls.Status.SUCCESS, (name, res.message)
        assert res.message.startswith("converged"), (name, res.message)
        assert res.params.dtype == jnp.float32, name
        # The gradient recomputed in float64; 1e-3 relative slack for float32 rounding.
        norm = float(np.linalg.norm(rosenbrock_grad(res.params)))
        assert norm <= 1e-4 * (1 + 1e-3), (name, norm)
        # At (1, 1) the Hessian's smallest eigenvalue is 0.4: |x - x*| <~ 1e-4 / 0.4.
        close(res.params, [1.0, 1.0], rtol=0, atol=1e-3, claim=name)
        assert 0 < int(res.num_iterations) < int(res.num_evals), name
    steepest, lbfgs = results.values()
    counts = [(int(r.num_iterations), int(r.num_evals)) for r in (lbfgs, steepest)]
    assert 10 * counts[0][0] < counts[1][0] and 100 * counts[0][1] < counts[1][1], counts

    # The training loop: every search succeeds and the loss decreases at every step; the
    # search's last evaluation is the next step's value and gradient, kept in the state.
    history, x, state = ns["history"], ns["x"], ns["state"]
    assert [status for _, status in history] == ["SUCCESS"] * 5, history
    assert decreasing([float(rosenbrock(ns["x0"])), *(value for value, _ in history)]), history
    close(optax.tree.get(state, "value"), rosenbrock(x), rtol=4 * EPS32, claim="stored value")
    stored = optax.tree.get(state, "grad")
    close(stored, rosenbrock_grad(x), rtol=1e-5, atol=1e-5, claim="stored gradient")

    # A thousand regressions: all converge, each on its own test (its gradient recomputed in
    # float64 is within grad_tol=1e-5, up to the 1e-7 that float32 sums of 200 terms of
    # order 1 may be off by) and with its own counts.
    res, X, y = ns["res"], ns["X"], ns["y"]
    assert res.status.shape == (1000,), res.status.shape
    assert bool(jnp.all(res.converged)), "converged: 1000 of 1000"
    norms = np.linalg.norm(logistic_grad(res.params, X, y), axis=1)
    assert norms.max() <= 1e-5 + 1e-7, norms.max()
    close(norms, res.grad_norm, rtol=0, atol=1e-7, claim="each member's gradient norm")
    iterations = np.asarray(res.num_iterations)
    assert 1 < iterations.min() < iterations.max() <= 20, (iterations.min(), iterations.max())
    assert np.all(np.asarray(res.num_evals) >= iterations)

    # Stochastic Armijo. The optimum: member 0's fit, whose gradient is checked above.
    runs, optimum = ns["runs"], ns["optimum"]
    w, X0, y0 = (np.asarray(a, np.float64) for a in (res.params[0], X[0], y[0]))
    value = np.mean(np.logaddexp(0.0, -y0 * (X0 @ w))) + 1e-2 * w @ w
    close(optimum, value, rtol=1e-6, claim="optimum: the loss at member 0's fit")
    assert list(runs) == [10.0, 1.0], runs
    for step_max, per_epoch in runs.items():
        steps = [t for _, epoch in per_epoch for t in epoch]
        assert len(per_epoch) == 5 and len(steps) == 50, step_max
        # Each search starts from the previous step grown by 2 ** (20 / 200), at most
        # step_max (the first from step_init = 1), and only shrinks from there.
        start = min(1.0, step_max)
        for k, t in enumerate(steps):
            assert 0 < t <= start * (1 + 1e-6), (step_max, k, t, start)
            start = min(t * 2 ** (20 / 200), step_max)
        assert min(value for value, _ in per_epoch) >= optimum * (1 - 1e-6), step_max
    # The authors' default 10: the steps climb to it, the loss goes back up, and the last
    # iterate ends about 45% above the optimum.
    default = runs[10.0]
    largest = [max(epoch) for _, epoch in default]
    assert largest == sorted(largest) and largest[0] < 2, largest
    close(largest[-1], 10.0, rtol=1e-6, claim="the steps climb to step_max")
    assert default[-1][0] > min(value for value, _ in default), default
    assert 0.35 < default[-1][0] / optimum - 1 < 0.55, default[-1][0] / optimum
    # A cap of 1: every step is 1 and the loss decreases (from log 2 at w = 0) every epoch,
    # to within 1% of the optimum.
    capped = runs[1.0]
    assert all(t == 1.0 for _, epoch in capped for t in epoch), capped
    assert decreasing([math.log(2.0), *(value for value, _ in capped)]), capped
    assert capped[-1][0] / optimum - 1 < 0.01, capped[-1][0] / optimum


CLAIMS = {
    "automatic_differentiation": automatic_differentiation,
    "training_with_line_searches": training_with_line_searches,
}


def words(text: str) -> list[str]:
    """The printed text with every number replaced by ``#``, split on whitespace."""
    return NUMBER.sub("#", text).split()


def test_every_notebook_has_claims():
    assert len(NOTEBOOKS) >= 2
    assert sorted(CLAIMS) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook(path, capsys):
    assert path.stem in CLAIMS, f"{path.name}: add its claims to CLAIMS"
    notebook = json.loads(path.read_text())
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5)
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[\w-]{1,64}", i) for i in ids)
    namespace: dict = {"__name__": "__notebook__"}
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        exec(compile("".join(cell["source"]), f"{path.name}[{index}]", "exec"), namespace)
        printed = capsys.readouterr().out
        stored = "".join(
            "".join(o["text"]) for o in cell["outputs"] if o["output_type"] == "stream"
        )
        assert words(printed) == words(stored), f"{path.name}[{index}]: stale output, regenerate it"
    CLAIMS[path.stem](namespace)
