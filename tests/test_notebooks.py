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


# ------------------------------------------------------------ differentiable_optimisation


def values_kept(fun, theta, *, run: bool = False) -> int:
    """How many values `jax.vjp`'s backward function holds: by tracing, or by running it."""
    if run:
        backward = jax.vjp(fun, theta)[1]
    else:
        backward = jax.eval_shape(lambda t: jax.vjp(fun, t)[1], theta)
    return sum(math.prod(np.shape(leaf)) for leaf in jax.tree.leaves(backward))


def line_data(ax) -> list[np.ndarray]:
    """The (x, y) data of every line drawn on a matplotlib Axes."""
    return [np.asarray(line.get_xydata(), np.float64) for line in ax.get_lines()]


def drew(ax, x, y) -> bool:
    """Whether a line of the Axes has the points (x, y) (float32 data: rtol 1e-6)."""
    points = np.c_[np.asarray(x, np.float64), np.asarray(y, np.float64)]
    return any(d.shape == points.shape and np.allclose(d, points, rtol=1e-6) for d in line_data(ax))


def shaded(ax) -> list[tuple[float, float]]:
    """The x ranges of the axvspan patches of an Axes (Polygon or Rectangle alike)."""
    spans = []
    for patch in ax.patches:
        xs = patch.get_patch_transform().transform(patch.get_path().vertices)[:, 0]
        spans.append((round(float(xs.min()), 5), round(float(xs.max()), 5)))
    return sorted(spans)


def regularised_logistic(s, X, y, X_val, y_val):
    """For lambda = exp(s): the validation loss of the minimiser w* of mean(log(1 +
    exp(-y X w))) + lambda/2 |w|^2 and its derivative in s, in float64: w* by Newton's
    method, then the implicit function theorem in closed form, dw*/ds = -H^-1 lambda w*."""
    X, y, X_val, y_val = (np.asarray(a, np.float64) for a in (X, y, X_val, y_val))
    lam, w = math.exp(s), np.zeros(X.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(y * (X @ w)))  # sigmoid(-y x.w)
        grad = -X.T @ (p * y) / len(y) + lam * w
        H = (X.T * (p * (1 - p))) @ X / len(y) + lam * np.eye(len(w))
        w -= np.linalg.solve(H, grad)
        if np.linalg.norm(grad) <= 1e-12:
            break
    assert np.linalg.norm(grad) <= 1e-12, (s, np.linalg.norm(grad))
    margin = y_val * (X_val @ w)
    grad_val = -X_val.T @ (y_val / (1 + np.exp(margin))) / len(y_val)
    return np.mean(np.logaddexp(0.0, -margin)), grad_val @ np.linalg.solve(H, -lam * w)


def differentiable_optimisation(ns: dict) -> None:
    f, lower, upper = ns["f"], ns["lower"], ns["upper"]
    root = math.sqrt(EPS32)  # 3.5e-4: what values resolve near a smooth float32 minimum
    assert not jax.config.jax_enable_x64, "float64 only inside the finite-difference cell"

    # Through the loop, at theta = 0.5: x* = asinh(theta), dx*/dtheta = 1 / sqrt(1 + theta^2).
    theta0 = ns["theta0"]
    x0, dx0 = math.asinh(theta0), 1 / math.sqrt(1 + theta0**2)
    loops = ns["loops"]
    newton = {n: loops[f"Newton, {n} steps unrolled"] for n in (10, 20, 40)}
    for n, (x, dx, _) in newton.items():
        close([x, dx], [x0, dx0], rtol=4 * EPS32, claim=f"Newton, {n} steps: right derivative")
    # The values kept grow by the same amount with every step (counted by shapes, and that
    # count is the backward function's actually built).
    kept = {n: k for n, (_, _, k) in newton.items()}
    per_step = (kept[20] - kept[10]) / 10
    assert per_step >= 1 and kept[40] - kept[20] == 20 * per_step, kept
    ten = lambda t: ns["newton_unrolled"](t, 10)
    assert values_kept(ten, theta0, run=True) == values_kept(ten, theta0) == kept[10]
    x, dx, kept = loops["golden section, 40 steps unrolled"]
    assert abs(x - x0) <= root and dx == 0.0 and kept == 0, loops
    assert float(jax.grad(ns["golden_unrolled"])(theta0)) == 0.0
    x, dx, kept = loops["jaxls.golden_section"]
    assert abs(x - x0) <= root and abs(dx - dx0) <= 2e-4 and 0 < kept <= 16, loops
    # A handful of values, the same whatever the tolerance and so the number of iterations
    # (golden section makes ceil(log(tol / 2) / log(0.618)) evaluations on [-1, 1]: 7, 12 and
    # 16 for these).
    for tol in (1e-1, 1e-2, 1e-3):
        golden = lambda t, tol=tol: jaxls.golden_section(lambda x: f(x, t), -1.0, 1.0, tol=tol).x
        assert values_kept(golden, theta0) == kept, tol
    message = "Reverse-mode differentiation does not work for lax.while_loop"
    assert ns["while_error"].startswith(message), ns["while_error"]
    with pytest.raises(ValueError, match=message):
        jax.grad(ns["newton_while"])(theta0)

    # The sweep: brent over 81 theta in float32, against the closed forms in float64.
    thetas, xs, dxs, dvalues = (ns[k] for k in ("thetas", "xs", "dxs", "dvalues"))
    assert thetas.shape == (81,) and all(a.dtype == jnp.float32 for a in (xs, dxs, dvalues))
    t64 = np.asarray(thetas, np.float64)
    inside = np.abs(t64) < math.sinh(1.0)
    closed_x = np.clip(np.arcsinh(t64), lower, upper)
    closed_dx = np.where(inside, 1 / np.sqrt(1 + t64**2), 0.0)
    assert inside.sum() == 47 and np.abs(t64[~inside]).min() > math.sinh(1.0) + 0.02
    close(xs, closed_x, rtol=0, atol=4e-4, claim="x* to 4e-4")
    assert np.abs(xs - closed_x).max() > root / 2, "values locate x* only to about sqrt(eps)"
    close(dxs[inside], closed_dx[inside], rtol=0, atol=2e-4, claim="dx*/dtheta inside to 2e-4")
    assert np.all(np.asarray(dxs)[~inside] == 0.0), "on a fixed bound the derivative is 0"
    close(dvalues, -closed_x, rtol=0, atol=4e-4, claim="d value*/dtheta = f_theta = -x*")
    close(dvalues, -xs, rtol=0, atol=1e-6, claim="envelope theorem at the minimiser found")
    status = np.asarray(ns["statuses"])
    assert set(status.tolist()) <= {jaxls.Status.SUCCESS, jaxls.Status.ROUNDING}, status
    rounding = int((status[inside] == jaxls.Status.ROUNDING).sum())
    assert ns["rounding"] == rounding and 2 * rounding > inside.sum(), "most: ROUNDING"

    # Finite differences: float64 is a reference to 2e-5, float32's are off by tenths.
    fd64, fd32 = ns["fd64"], ns["fd32"]
    assert fd64.dtype == np.float64 and fd32.dtype == jnp.float32
    close(fd64, closed_dx, rtol=0, atol=2e-5, claim="float64 finite differences")
    close(dxs, fd64, rtol=0, atol=2e-4, claim="jax.grad against float64 finite differences")
    assert 0.05 < np.abs(fd32 - fd64).max() < 1, np.abs(fd32 - fd64).max()

    # Figure 1: x*(theta), five tangents with slope dx*/dtheta (two flat, on a bound), the
    # derivative; the shaded ranges are those where a bound is active.
    import os  # only here: where there is no display, matplotlib's backend is Agg

    plt, fig1 = ns["plt"], ns["fig1"]
    if not any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")):
        assert plt.get_backend().lower() == "agg", "no display: matplotlib's Agg"
    left, right = fig1.axes
    drawn = line_data(left)
    assert drew(left, t64, xs), "x*(theta)"
    tangents = [d for d in drawn if d.shape == (2, 2)]
    assert len(tangents) == 5, drawn
    flat = 0
    for (a, ya), (b, yb) in tangents:
        t = (a + b) / 2
        slope = (yb - ya) / (b - a)
        exact_slope = 1 / math.sqrt(1 + t**2) if abs(t) < math.sinh(1.0) else 0.0
        close(slope, exact_slope, rtol=0, atol=2e-4, claim=f"tangent slope at {t}")
        close((ya + yb) / 2, np.clip(np.arcsinh(t), -1, 1), rtol=0, atol=4e-4, claim="touches")
        flat += abs(t) > math.sinh(1.0) and slope == 0.0
    assert flat == 2, tangents
    assert drew(right, t64, dxs) and drew(right, t64, closed_dx), "the derivative"
    s1 = round(math.sinh(1.0), 5)
    for ax in (left, right):
        assert shaded(ax) == [(-2.0, -s1), (s1, 2.0)], shaded(ax)

    # A bound that moves: (x - 2)^2 on [0, c].
    x, value, dx, dvalue = (np.asarray(a, np.float64) for a in ns["moving"])
    close(x, [1.0, 2.0], rtol=0, atol=3 * root, claim="x* = min(c, 2)")
    close(value, [1.0, 0.0], rtol=0, atol=1e-3, claim="value* = (x* - 2)^2")
    assert dx.tolist() == [1.0, 0.0], dx
    close(dvalue, [-2.0, 0.0], rtol=0, atol=1e-3, claim="d value*/dc = f_x(c) on the bound")
    close(dvalue[0], 2 * (x[0] - 2), rtol=1e-6, claim="the chain rule at the x* found")

    # No derivative: NaN, reverse and forward mode alike, for x* and value*.
    undefined = ns["undefined"]
    assert [status for status, _ in undefined.values()] == ["MAX_EVALS", "ROUNDING"], undefined
    assert all(math.isnan(dx) for _, dx in undefined.values()), undefined

    def derivatives(theta):
        """x*'s and value*'s derivatives, reverse and forward mode, for both searches."""
        out = []
        for search, at in [(ns["short"], theta + 0.5), (ns["flat"], theta)]:
            for field in ("x", "value"):
                get = lambda t, search=search, field=field: getattr(search(t), field)
                out += [jax.grad(get)(at), jax.jvp(get, (at,), (1.0,))[1]]
        return out

    assert np.all(np.isnan(jax.jit(derivatives)(0.0))), "NaN, every one"

    # Backtracking from x = 0 along d = theta, halving from 4: the first step that meets
    # Armijo (c1 = 1e-4), in float64; the step held constant, the value differentiated.
    theta = ns["theta_bt"]
    value = lambda t: math.cosh(t * theta) - t * theta**2
    armijo = next(t for t in (4.0, 2.0, 1.0, 0.5) if value(t) <= 1 - 1e-4 * t * theta**2)
    assert float(ns["accepted"].step) == ns["t"] == armijo == 1.0, ns["accepted"]
    assert float(ns["d_step"]) == 0.0
    exact = armijo * math.sinh(armijo * theta) - 2 * armijo * theta
    close(ns["d_value"], exact, rtol=1e-5, claim="d value/dtheta with the step held")

    # Bilevel tuning, against float64 Newton and the implicit function theorem in NumPy.
    data = [ns[k] for k in ("X_train", "y_train", "X_val", "y_val")]
    assert [a.shape for a in data] == [(40, 20), (40,), (400, 20), (400,)]
    assert all(a.dtype == jnp.float32 for a in data)
    out = jax.eval_shape(ns["hyper"], ns["start"])
    assert [o.dtype for o in out] == [jnp.float32] * 2, out  # float32 all through
    oracle = lambda s: regularised_logistic(s, *data)
    grid, grid_val, grid_grad, best = (ns[k] for k in ("grid", "grid_val", "grid_grad", "best"))
    spacing = math.exp(grid[1] - grid[0])
    close([math.exp(grid[0]), math.exp(grid[-1]), spacing], [1e-3, 10.0, 1.468], rtol=1e-3)
    expected = np.array([oracle(s) for s in grid])
    close(grid_val, expected[:, 0], rtol=0, atol=1e-4, claim="grid: validation losses")
    close(grid_grad, expected[:, 1], rtol=1e-3, atol=5e-5, claim="grid: hypergradients")
    assert np.all(np.isfinite(grid_grad)) and best == np.argmin(expected[:, 0]), best
    # (Finite because converged: minimize's derivative is NaN where it stops short.)
    stopped = lambda a: (
        jaxls.optax.minimize(
            lambda w: (w - a) ** 2, jnp.zeros(()), optax.sgd(0.1), max_iterations=2
        ).params
    )
    assert math.isnan(float(jax.grad(stopped)(1.0))), "MAX_ITERATIONS: NaN"
    assert grid_grad[best - 1] < 0 < grid_grad[best + 1], "the sign changes at the best"
    assert grid_val[0] > grid_val[best] < grid_val[-1], "1e-3 overfits, 10 underfits"
    # The float64 optimum, on a fine grid: the grid's best is within the grid's spacing.
    fine = np.linspace(math.log(0.05), math.log(0.5), 201)
    optimum = math.exp(fine[np.argmin([oracle(s)[0] for s in fine])])
    assert 1 / spacing < ns["grid_best"] / optimum < spacing, (ns["grid_best"], optimum)

    # The outer loop: gradient descent on log(lambda) with step 15 from 0.01, 10 steps.
    history = np.array(ns["history"])
    assert history.shape == (10, 3), history
    close(history[0, 0], 0.01, rtol=1e-6, claim="from lambda = 0.01")
    logs = np.log(history[:, 0])
    close(logs[1:], logs[:-1] - 15 * history[:-1, 2], rtol=0, atol=1e-5, claim="the update")
    expected = np.array([oracle(s) for s in logs])
    close(history[:, 1], expected[:, 0], rtol=0, atol=1e-4, claim="validation loss per step")
    close(history[:, 2], expected[:, 1], rtol=1e-3, atol=5e-5, claim="hypergradient per step")
    close(ns["central"], expected[0, 1], rtol=5e-3, claim="central difference at 0.01")
    assert decreasing(history[:, 1]), "the validation loss decreases at every outer step"
    assert ns["tuned"] == history[-1, 0] and abs(ns["tuned"] / ns["grid_best"] - 1) < 0.1
    # No Hessian is formed: no n x n array in the hypergradient's program (Newton has one).
    n = data[0].shape[1]
    program = str(jax.make_jaxpr(jax.grad(ns["validation_loss"]))(ns["start"]))
    newton_program = str(jax.make_jaxpr(ns["newton_fit"])(ns["start"]))
    assert f"[{n},{n}]" not in program and f"[{n},{n}]" in newton_program

    # Figure 2: the validation loss and lambda per step, the iterates on the grid's curve.
    curve, loss_ax, lam_ax = ns["fig2"].axes
    steps = np.arange(10.0)
    assert drew(curve, np.exp(grid), grid_val) and drew(curve, history[:, 0], history[:, 1])
    assert drew(loss_ax, steps, history[:, 1]) and drew(lam_ax, steps, history[:, 0])
    for fig in (fig1, ns["fig2"]):
        plt.close(fig)

    # implicit_argmin around a Newton loop: Newton converged, minimize's hypergradient, and
    # dozens of times fewer values kept than through the loop.
    start = ns["start"]
    w = ns["newton_solution"](start)
    assert float(jnp.linalg.norm(jax.grad(ns["training_loss"])(w, start))) <= 1e-5
    close(ns["own"](start), oracle(float(start))[1], rtol=1e-4, claim="implicit_argmin")
    close(ns["own"](start), history[0, 2], rtol=0, atol=5e-5, claim="as minimize's")
    own_kept = ns["own_kept"]
    assert own_kept["through the loop"] > 24 * own_kept["implicit_argmin"], own_kept
    assert own_kept["implicit_argmin"] == values_kept(ns["newton_solution"], start), own_kept
    assert own_kept["through the loop"] == values_kept(ns["newton_fit"], start), own_kept


CLAIMS = {
    "automatic_differentiation": automatic_differentiation,
    "differentiable_optimisation": differentiable_optimisation,
    "training_with_line_searches": training_with_line_searches,
}


def words(text: str) -> list[str]:
    """The printed text with every number replaced by ``#``, split on whitespace."""
    return NUMBER.sub("#", text).split()


def test_every_notebook_has_claims():
    assert len(NOTEBOOKS) >= 2
    assert sorted(CLAIMS) == [p.stem for p in NOTEBOOKS]


@pytest.mark.first  # the longest tests (tests/conftest.py)
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
