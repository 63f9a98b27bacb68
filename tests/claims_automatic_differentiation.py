"""The claims of notebooks/automatic_differentiation.ipynb (tests/test_notebooks.py)."""

from __future__ import annotations

import contextlib
import math
import re

import jax
import jax.numpy as jnp
import numpy as np

from tests.notebook_checks import EPS32, NUMBER, ROOT, close, drew


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


def tangents_w2() -> dict[str, float]:
    """dv/dw2 at (2, 5) for each node of the lecture's graph, in float64."""
    v1 = math.log(2.0)
    v3 = math.sqrt(5.0 * v1)
    return {
        "w1": 0.0,
        "w2": 1.0,
        "v1": 0.0,
        "v2": v1,
        "v3": v1 / (2 * v3),
        "v4": v1 * (1 + 1 / (2 * v3)),
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
    assert not jax.config.jax_enable_x64, "float64 only inside the finite-difference cell"
    check_graph(ns)
    check_finite_differences(ns)
    check_drawing(ns)
    check_stored(ns)
    check_cost(ns)
    check_jacobians(ns)
    check_checkpoint(ns)
    check_network(ns)
    check_hessian(ns)


def check_graph(ns: dict) -> None:
    ad, L, graph = ns["ad"], ns["L"], ns["graph"]
    expected = lecture_graph()
    gradient = (expected["w1"][4], expected["w2"][4])
    reference = jax.grad(L, argnums=(0, 1))(2.0, 5.0)
    close(reference, gradient, rtol=1e-6, claim="the oracles disagree")
    close(ns["exact_gradient"], gradient, rtol=1e-15, claim="the notebook's float64 reference")

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
    # The second forward pass, seeded with (0, 1): dv/dw2.
    seeded = tangents_w2()
    assert [n.name for n in ns["graph_w2"].nodes] == list(seeded)
    close([n.tangent for n in ns["graph_w2"].nodes], list(seeded.values()), rtol=1e-6)
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

    # The formula as written: six operations, the logarithm and the product twice.
    formula = ns["formula"]
    assert [(n.primitive, n.inputs) for n in formula.nodes] == [
        ("input", ()),
        ("input", ()),
        ("log", ("w1",)),
        ("mul", ("w2", "v1")),
        ("log", ("w1",)),
        ("mul", ("w2", "v3")),
        ("sqrt", ("v4",)),
        ("add", ("v2", "v5")),
    ], formula
    close(formula.nodes[-1].value, expected["v4"][2], rtol=1e-6, claim="the same L")


def check_finite_differences(ns: dict) -> None:
    """The V: its measured errors against the Taylor model on the truncation side, its
    optimum against sqrt(u) and cbrt(u), the default steps, and the figure."""
    ad, steps, fd = ns["ad"], ns["steps"], ns["fd"]
    assert set(fd) == {"float32", "float64"}
    # Taylor's model of the truncation error, per component k: forward (h/2) |L_kk| / |L_k|,
    # central (h^2/6) |L_kkk| / |L_k|, with h = eps w_k. The derivatives in closed form:
    # L = v + sqrt(v), v = w2 log w1, so with g(v) = 1 + 1 / (2 sqrt v), L_1 = (w2/w1) g,
    # L_11 = -(w2/w1^2) g + (w2/w1)^2 g', L_111 = 2 (w2/w1^3) g - 3 (w2^2/w1^3) g' +
    # (w2/w1)^3 g'', and L_2 = log(w1) g, L_22 = log(w1)^2 g', L_222 = log(w1)^3 g''.
    w1, w2 = 2.0, 5.0
    v, lw = w2 * math.log(w1), math.log(w1)
    g, dg, ddg = 1 + 1 / (2 * math.sqrt(v)), -1 / (4 * v**1.5), 3 / (8 * v**2.5)
    first = np.array([w2 / w1 * g, lw * g])
    second = np.array([-w2 / w1**2 * g + (w2 / w1) ** 2 * dg, lw**2 * dg])
    third = np.array(
        [2 * w2 / w1**3 * g - 3 * w2**2 / w1**3 * dg + (w2 / w1) ** 3 * ddg, lw**3 * ddg]
    )
    close(first, ns["exact_gradient"], rtol=1e-14, claim="the reference gradient")
    w = np.array([w1, w2])
    model = {
        "forward": lambda eps: np.max(eps * w / 2 * np.abs(second) / np.abs(first)),
        "central": lambda eps: np.max((eps * w) ** 2 / 6 * np.abs(third) / np.abs(first)),
    }
    for dtype, errors in fd.items():
        u = float(jnp.finfo(dtype).eps)
        assert errors["ad.grad"] <= 4 * u, (dtype, errors["ad.grad"])
        for scheme, power in (("forward", 1 / 2), ("central", 1 / 3)):
            measured = errors[scheme]
            assert measured.shape == steps[dtype].shape and np.all(np.isfinite(measured))
            # Truncation side (from 3 u^power up): the model, to 10%.
            right = steps[dtype] >= 3 * u**power
            assert right.sum() >= 3, (dtype, scheme)
            expected = [model[scheme](eps) for eps in steps[dtype][right]]
            close(measured[right], expected, rtol=0.1, claim=f"{dtype} {scheme}: Taylor")
            # The optimum: near u^power, with an error near u^(1 - power).
            best = steps[dtype][np.argmin(measured)]
            assert 0.1 < best / u**power < 10, (dtype, scheme, best)
            assert u ** (1 - power) / 30 < measured.min() < 3 * u ** (1 - power)
            assert ns["best_eps"][dtype, scheme] == best
            # The default eps is u^power: the error at the default equals the error at it.
            with jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext():
                point = (jnp.asarray(2.0, dtype), jnp.asarray(5.0, dtype))
                at = ad.finite_difference_grad(ns["L_vec"], point, eps=u**power, scheme=scheme)
            assert ns["relative_error"](at) == errors[scheme + ", default eps"], (dtype, scheme)
    # float32 below eps = u: w + h e_k rounds to w, the quotient is 0, the error 100%.
    assert np.all(fd["float32"]["forward"][steps["float32"] < 1e-7] == 1.0)
    slopes = ns["truncation_slopes"]
    assert all(abs(s - (1 if k[1] == "forward" else 2)) < 0.15 for k, s in slopes.items())

    # The figure: both curves per precision, the default steps as verticals, u as horizontal.
    for ax, dtype in zip(ns["axes_fd"], ("float32", "float64"), strict=True):
        u = float(jnp.finfo(dtype).eps)
        assert ax.get_xscale() == ax.get_yscale() == "log" and dtype in ax.get_title()
        for scheme in ("forward", "central"):
            assert drew(ax, steps[dtype], fd[dtype][scheme]), (dtype, scheme)
        for x in (u ** (1 / 2), u ** (1 / 3)):
            assert drew(ax, [x, x], [0, 1]), (dtype, x)  # axvline: axes coordinates in y
        assert drew(ax, [0, 1], [u, u]), dtype


def check_drawing(ns: dict) -> None:
    """The graph drawn three times: each box's numbers are the chain rule's, each arrow an
    edge of the lecture's graph (reversed in reverse mode)."""
    expected = lecture_graph()
    seeded = tangents_w2()
    edges = sorted((i, name) for name, e in expected.items() for i in e[1])
    panels = [
        (ns["ax_w1"], "tangent", {k: e[3] for k, e in expected.items()}, False),
        (ns["ax_w2"], "tangent", seeded, False),
        (ns["ax_reverse"], "adjoint", {k: e[4] for k, e in expected.items()}, True),
    ]
    assert ns["fig_graph"].axes == [p[0] for p in panels]
    for ax, field, derivative, reverse in panels:
        boxes = {t.get_gid(): t for t in ax.texts if t.get_gid()}
        assert sorted(boxes) == sorted(expected), ax.get_title()
        for name, text in boxes.items():
            head, value_line, field_line = text.get_text().split("\n")
            assert head.startswith(f"{name} = ") and field_line.startswith(field), head
            value = float(NUMBER.findall(value_line)[-1])
            close(value, expected[name][2], rtol=0, atol=6e-5, claim=f"{name}: value drawn")
            number = float(NUMBER.findall(field_line)[-1])
            close(number, derivative[name], rtol=0, atol=6e-5, claim=f"{name}: {field} drawn")
        # The arrows: from each box's position to another's, the lecture's edges.
        where = {tuple(np.round(t.get_position(), 6)): name for name, t in boxes.items()}
        drawn = []
        for arrow in (t for t in ax.texts if not t.get_gid()):
            start = where[tuple(np.round(arrow.xyann, 6))]
            end = where[tuple(np.round(arrow.xy, 6))]
            drawn.append((end, start) if reverse else (start, end))
        assert sorted(drawn) == edges, (ax.get_title(), drawn)


def check_stored(ns: dict) -> None:
    """What reverse mode keeps for L: w1 (log's input), w2 and v1 (the product's operands),
    v3 (sqrt's output); not v2 or v4."""
    kept = ns["kept_for_L"]
    kinds = [r.description.split(" at ")[0] for r in kept]
    assert kinds == ["argument w1", "argument w2", "output of log", "output of sqrt"], kinds
    assert kept.total_bytes == 16 and all(r.shape == () for r in kept)


def check_cost(ns: dict) -> None:
    """Evaluations counted, flops relative to L's, the figure; and the gradients right."""
    ad = ns["ad"]
    n = ns["n_counted"]
    assert ns["evaluations"] == {
        "finite differences, forward": n + 1,
        "finite differences, central": 2 * n,
        "reverse mode, ad.grad": 1,
        "reverse mode, jax.grad": 1,
    }, ns["evaluations"]
    sizes, work = np.array(ns["sizes"], float), ns["work"]
    assert list(sizes) == [2, 8, 32, 128, 512]
    ratio = lambda name: np.array(work[name])
    assert np.all(ratio("finite differences, forward") >= sizes + 1)
    assert np.all(ratio("finite differences, forward") <= 1.05 * (sizes + 1))
    assert np.all(ratio("finite differences, central") >= 2 * sizes)
    assert np.all(ratio("finite differences, central") <= 1.05 * 2 * sizes)
    assert np.all(np.abs(ratio("forward mode, ad.jacfwd") / sizes - 1) < 0.5)
    reverse = ratio("reverse mode, ad.grad")
    assert np.all((1.5 < reverse) & (reverse < 2.5)) and reverse.max() / reverse.min() < 1.2
    close(ratio("reverse mode, jax.grad"), reverse, rtol=0.01, claim="jax.grad's work")
    # Forward mode's work is jax.jacfwd's too (XLA's count, recomputed here for n = 32).
    loss = ns["logistic_loss"](32)
    count = lambda fun: jax.jit(fun).lower(jnp.zeros(32)).cost_analysis()["flops"]
    close(count(jax.jacfwd(loss)) / count(loss), work["forward mode, ad.jacfwd"][2], rtol=0.01)
    # The gradient at w = 0 in closed form: mean(-y x) / 2 (the logistic's slope at 0 is 1/2).
    X = np.asarray(ns["X_all"], np.float64)[:, :n]
    y = np.asarray(ns["y_all"], np.float64)
    exact = np.mean(-y[:, None] * X, axis=0) / 2
    loss = ns["logistic_loss"](n)
    close(jax.jit(ad.grad(loss))(jnp.zeros(n)), exact, rtol=0, atol=1e-6, claim="ad.grad")
    central = lambda w: ad.finite_difference_grad(loss, w, scheme="central")
    fd = jax.jit(central)(jnp.zeros(n))
    close(fd, exact, rtol=0, atol=1e-4, claim="central differences")
    # The figure: one line per method, and the references n + 1 and 2n.
    ax = ns["ax_cost"]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    for name, ratios in work.items():
        assert drew(ax, sizes, ratios), name
    ends = np.array([sizes[0], sizes[-1]])
    assert drew(ax, ends, ends + 1) and drew(ax, ends, 2 * ends)


def check_jacobians(ns: dict) -> None:
    ad = ns["ad"]
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
    # The timings benchmarks/ad.py makes for m up to 30,000 exist.
    assert (ROOT / "benchmarks" / "ad.py").is_file()
    assert (ROOT / "benchmarks" / "ad_fwd_vs_rev.png").is_file()

    # Fig. 35: passes n = 100 for jacfwd, m for jacrev, in jaxls and jax alike.
    outputs, fighter, n_inputs = ns["outputs"], ns["fighter"], ns["n_inputs"]
    assert n_inputs == 100 and outputs == [1, 10, 100, 1000, 3000]
    assert set(fighter) == {"ad.jacfwd", "jax.jacfwd", "ad.jacrev", "jax.jacrev"}
    for name, measured in fighter.items():
        expected = [n_inputs] * len(outputs) if "jacfwd" in name else outputs
        assert measured["passes"] == expected, name
        seconds = np.array(measured["seconds"])
        assert seconds.shape == (len(outputs),) and np.all((seconds > 0) & (seconds < 10))
    # The count the notebook reads (the identity's size) is the number of seed vectors:
    # jax.vjp's pullback applied to the m unit vectors one by one gives the same Jacobian.
    m = 10
    A_m = jnp.asarray(ns["A_all"][:m])
    rows = [jax.vjp(lambda x: A_m @ x, jnp.ones(n))[1](e)[0] for e in jnp.eye(m)]
    close(np.stack(rows), ns["A_all"][:m], rtol=1e-6, claim="m VJPs give the Jacobian")
    passes = ns["passes"](jax.make_jaxpr(ns["ad"].jacrev(lambda x: A_m @ x))(jnp.ones(n)))
    assert passes == m
    # Of the times, the robust: reverse mode's grows more, and is the slower at m = 3000.
    for library in ("ad", "jax"):
        fwd = fighter[f"{library}.jacfwd"]["seconds"]
        rev = fighter[f"{library}.jacrev"]["seconds"]
        assert rev[-1] / rev[0] > 2 * fwd[-1] / fwd[0] and rev[-1] > 2 * fwd[-1], library
    # The figure: the measured times and the passes, per program.
    ax_time, ax_passes = ns["fig_fighter"].axes
    for name, measured in fighter.items():
        assert drew(ax_time, outputs, measured["seconds"]), name
        assert drew(ax_passes, outputs, measured["passes"]), name


def plain_network_grad(weights, inputs):
    """The gradient of 0.5 |v_32|^2, v_k = tanh(v_{k-1} W_k), by the chain rule in NumPy
    float64."""
    vs = [np.asarray(inputs, np.float64)]
    for w in weights:
        vs.append(np.tanh(vs[-1] @ np.asarray(w, np.float64)))
    delta, grads = vs[-1], []  # dL/dv_32 = v_32
    for k in reversed(range(len(weights))):
        g = delta * (1 - vs[k + 1] ** 2)
        grads.append(vs[k].T @ g)
        delta = g @ np.asarray(weights[k], np.float64).T
    return grads[::-1]


def check_checkpoint(ns: dict) -> None:
    """Stored activations and bytes in closed form, jax's tape alongside, one extra forward
    pass, one barrier per segment, and the gradient of the plain network."""
    ad = ns["ad"]
    depth, width, batch = ns["depth"], ns["width"], ns["batch"]
    assert (depth, width, batch) == (32, 16, 64)
    segments, memory = ns["segments"], ns["memory"]
    assert segments == [None, 1, 2, 4, 8, 16, 32]
    # Without checkpoints x and the 32 layers' outputs; with, the segments' inputs and v32.
    stored = [depth + 1] + [depth // k + 1 for k in segments[1:]]
    assert memory["stored"] == stored, memory["stored"]
    weight_bytes, activation_bytes = depth * width * width * 4, batch * width * 4
    assert memory["bytes"] == [weight_bytes + s * activation_bytes for s in stored]
    rebuilt = [s + k - 1 for s, k in zip(stored[1:], segments[1:], strict=True)]
    assert memory["peak"] == [stored[0], *rebuilt], memory["peak"]
    assert min(memory["peak"]) == 12 < stored[0] == 33
    assert memory["recomputed"] == [0] + [depth] * 6, memory["recomputed"]
    assert memory["barriers"] == [0, 32, 16, 8, 4, 2, 1], memory["barriers"]
    # jax's tape (jax.checkpoint): the same bytes, to one scalar, when checkpointed; without,
    # jax keeps 1 - tanh^2 as well.
    pairs = zip(memory["jax bytes"][1:], memory["bytes"][1:], strict=True)
    assert all(0 <= j - b <= 4 for j, b in pairs), memory
    assert memory["jax bytes"][0] > 1.5 * memory["bytes"][0]
    # The gradients: the plain network's, by the chain rule in float64 (float32's roundings
    # through 32 layers: 8e-6 of the largest entry here, allowed 1e-4).
    exact = plain_network_grad(ns["weights"], ns["inputs"])
    scale = max(np.abs(g).max() for g in exact)
    close(ns["reference"], exact, rtol=0, atol=1e-4 * scale, claim="jax.grad")
    assert max(memory["error"]) < 1e-5 * scale, memory["error"]
    gradient = ad.grad(ns["network_loss"](4))(ns["weights"], ns["inputs"])
    close(gradient, exact, rtol=0, atol=1e-4 * scale, claim="ad.grad with checkpoints")
    # Figure: stored and peak against k; the layers evaluated.
    ax_memory, ax_work = ns["fig_ckpt"].axes
    k = segments[1:]
    assert drew(ax_memory, k, stored[1:]) and drew(ax_memory, k, memory["peak"][1:])
    assert drew(ax_memory, [0, 1], [33, 33])
    assert drew(ax_work, k, [2 * depth] * 6) and drew(ax_work, [0, 1], [depth, depth])


def check_network(ns: dict) -> None:
    """Fig. 37 by hand, against NumPy's float64 chain rule (the same formulas, independent
    code and precision)."""
    Ws, x, target, b = ns["Ws"], ns["x_batch"], ns["target"], ns["b"]
    assert [W.shape for W in Ws] == [(4, 16), (16, 16), (16, 3)] and x.shape == (8, 4)
    vs = [np.asarray(x, np.float64)]
    for W in Ws:
        vs.append(np.tanh(vs[-1] @ np.asarray(W, np.float64)))
    delta, exact = (vs[-1] - np.asarray(target, np.float64)) / b, []
    for k in reversed(range(len(Ws))):
        g = delta * (1 - vs[k + 1] ** 2)
        exact.insert(0, vs[k].T @ g)
        delta = g @ np.asarray(Ws[k], np.float64).T
    scale = max(np.abs(g).max() for g in exact)
    for name in ("by_hand", "by_jaxls", "by_jax"):
        for k, (g, e) in enumerate(zip(ns[name], exact, strict=True)):
            close(g, e, rtol=0, atol=1e-5 * scale, claim=f"{name}: dL/dW{k + 1}")
    assert max(ns["fnn_errors"]) < 1e-5 * scale


def check_hessian(ns: dict) -> None:
    # hessian equals jax.hessian and the closed form; hvp with e1 is its first column,
    # computed without forming an n x n array (hessian's program has one).
    ad = ns["ad"]
    rosenbrock, x, H, Hv = ns["rosenbrock"], ns["x"], ns["H"], ns["Hv"]
    exact = rosenbrock_hessian(np.asarray(x, np.float64))
    atol = 1e-6 * np.abs(exact).max()  # float32 entries up to 1330
    assert H.dtype == jnp.float32, H
    close(H, exact, rtol=0, atol=atol, claim="Hessian: closed form")
    close(H, jax.jit(jax.hessian(rosenbrock))(x), rtol=0, atol=atol, claim="jax.hessian")
    close(Hv, exact[:, 0], rtol=0, atol=atol, claim="hvp(e1): the Hessian's first column")
    square = f"[{x.size},{x.size}]"
    e1 = jnp.zeros_like(x).at[0].set(1.0)
    assert square not in str(jax.make_jaxpr(lambda v: ad.hvp(rosenbrock, x, v))(e1))
    assert square in str(jax.make_jaxpr(ad.hessian(rosenbrock))(x))
