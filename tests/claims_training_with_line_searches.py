"""The claims of notebooks/training_with_line_searches.ipynb (tests/test_notebooks.py)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize

import jaxls
from tests.notebook_checks import EPS32, close, decreasing, drew, line_data


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


def check(ns: dict) -> None:
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

    check_logistic_comparison(ns)
    check_mlp(ns)
    assert not jax.config.jax_enable_x64, "float32 throughout: NumPy gives the float64"
    for fig in (ns["fig_logistic"], ns["fig_mlp"]):
        ns["plt"].close(fig)


# --- Logistic regression: line searches against fixed learning rates ---------------------------


def logistic64(w, A, b, lam) -> tuple[np.ndarray, np.ndarray]:
    """The loss mean(log(1 + exp(-b A w))) + lam / 2 |w|^2 and its gradient
    -A^T (b sigmoid(-b A w)) / n + lam w, of one w or of each row of w, in float64."""
    w = np.asarray(w, np.float64)
    margin = b * (w @ A.T)
    value = np.mean(np.logaddexp(0.0, -margin), axis=-1) + lam / 2 * np.sum(w**2, axis=-1)
    grad = -(b * np.exp(-np.logaddexp(0.0, margin))) @ A / len(b) + lam * w  # b sigmoid(-m)
    return value, grad


def gradient_descent64(A, b, lam, lr, iterations) -> tuple[int | None, np.ndarray]:
    """Plain gradient descent in float64 from 0: the first iteration whose gradient norm is
    <= 1e-4 (None if none), and the loss at every iterate."""
    w, values, first = np.zeros(A.shape[1]), [], None
    for k in range(iterations + 1):
        value, grad = logistic64(w, A, b, lam)
        values.append(value)
        if first is None and np.linalg.norm(grad) <= 1e-4:
            first = k
        w = w - lr * grad
    return first, np.array(values)


def check_logistic_comparison(ns: dict) -> None:
    A, b = (np.asarray(ns[k], np.float64) for k in ("features", "labels"))
    lam = ns["lam"]
    assert ns["features"].dtype == jnp.float32 and A.shape == (400, 10) and lam == 1e-2
    assert set(np.unique(b)) == {-1.0, 1.0}

    # The reference optimum: scipy's L-BFGS-B on the closed-form loss and gradient, in float64.
    fun = lambda w: logistic64(w, A, b, lam)
    ref = scipy.optimize.minimize(
        fun, np.zeros(10), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 0.0}
    )
    g_ref = np.linalg.norm(fun(ref.x)[1])
    assert g_ref <= 1e-9, g_ref
    w_star, f_star = ns["w_star"], ns["f_star"]
    assert np.linalg.norm(fun(w_star)[1]) <= 1e-14, "Newton's w*: a stationary point"
    # lam-strong convexity: |w - w*| <= |grad w| / lam, f(w) - f* <= |grad w|^2 / (2 lam).
    close(w_star, ref.x, rtol=0, atol=g_ref / lam, claim="w*: Newton and scipy agree")
    assert -1e-15 <= ref.fun - f_star <= g_ref**2 / (2 * lam) + 1e-15, (ref.fun, f_star)
    close(f_star, 0.3384205579, rtol=0, atol=1e-10, claim="f* as printed")
    # L bounds the Hessian: lam <= eigenvalues of H(w*) <= L = lambda_max(A^T A) / 4n + lam.
    lipschitz = np.linalg.eigvalsh(A.T @ A).max() / (4 * 400) + lam
    close(ns["lipschitz"], lipschitz, rtol=1e-12, claim="L")
    s = 1 / (1 + np.exp(b * (A @ w_star)))
    eigenvalues = np.linalg.eigvalsh((A.T * (s * (1 - s))) @ A / 400 + lam * np.eye(10))
    assert lam <= eigenvalues.min() and eigenvalues.max() <= lipschitz, eigenvalues
    close(np.spacing(np.float32(f_star)), 2.98e-8, rtol=1e-2, claim="float32 spacing at f*")

    check_sweeps(ns, A, b, lam, f_star, lipschitz)
    check_logistic_runs(ns, A, b, lam, w_star, f_star)


def check_sweeps(ns, A, b, lam, f_star, lipschitz) -> None:
    """The learning-rate sweeps under vmap: statuses against each member's own gradient,
    recomputed in float64, and the fastest fixed learning rate against NumPy's gradient
    descent in float64."""
    S = jaxls.Status
    sweeps, best_lr = ns["sweeps"], ns["best_lr"]
    assert list(sweeps) == ["SGD", "Adam"], sweeps
    for name, (lrs, fits) in sweeps.items():
        assert len(lrs) == 13 and fits.status.shape == (13,) and fits.params.dtype == jnp.float32
        status, iterations = np.asarray(fits.status), np.asarray(fits.num_iterations)
        # A fixed learning rate: one value and gradient per iteration, and the first.
        finite = status != S.NONFINITE
        assert np.array_equal(np.asarray(fits.num_evals), iterations + 1), name
        value, grad = logistic64(np.asarray(fits.params)[finite], A, b, lam)
        norms = np.linalg.norm(grad, axis=1)
        close(norms, np.asarray(fits.grad_norm)[finite], rtol=1e-3, atol=1e-7, claim=name)
        ok = status[finite] == S.SUCCESS
        assert np.all(norms[ok] <= 1e-4 * (1 + 1e-3)) and np.all(norms[~ok] > 1e-4), name
        assert np.all(iterations[status == S.SUCCESS] < 1000), name
        assert np.all(iterations[status == S.MAX_ITERATIONS] == 1000), name
        # Too small a learning rate: up to 2e-2 above f*; too large: a gradient norm above 0.4.
        small = np.flatnonzero(status == S.MAX_ITERATIONS)
        small = small[small < np.flatnonzero(status == S.SUCCESS).min()]
        assert np.all(value[small] - f_star < 2.5e-2), (name, value[small])
        large = finite & (np.arange(13) > np.flatnonzero(status == S.SUCCESS).max())
        assert np.all(np.linalg.norm(logistic64(fits.params[large], A, b, lam)[1], axis=1) > 0.4)
        converged = np.flatnonzero(status == S.SUCCESS)
        assert best_lr[name] == lrs[converged[np.argmin(iterations[converged])]], name
        assert np.all(np.diff(converged) == 1), "the converging rates form one range"
    # SGD: 1/16 and 1/8 too slow, 1/4 to 2 converge, 4 does not, 256 overflows.
    sgd_status = np.asarray(sweeps["SGD"][1].status)
    assert sgd_status[:7].tolist() == [S.MAX_ITERATIONS] * 2 + [S.SUCCESS] * 4 + [S.MAX_ITERATIONS]
    assert np.all(sgd_status[7:] != S.SUCCESS) and sgd_status[-1] == S.NONFINITE
    assert not np.isfinite(float(sweeps["SGD"][1].value[-1]))
    adam_status = np.asarray(sweeps["Adam"][1].status)
    assert (adam_status == S.SUCCESS).sum() == 10 and best_lr["Adam"] == 0.0625
    assert int(np.sum(sweeps["SGD"][1].num_evals)) > 9000

    # NumPy's gradient descent in float64: lr 2 reaches |grad| <= 1e-4 in as many iterations
    # (float32 may take one more or less), lr 4 does not converge (its loss oscillates, the
    # gradient stays large), and the textbook's 1/L is about 5 times slower.
    first, _ = gradient_descent64(A, b, lam, 2.0, 200)
    fastest = int(sweeps["SGD"][1].num_iterations[5])
    assert best_lr["SGD"] == 2.0 and fastest == 107 and abs(first - fastest) <= 1, first
    first4, values4 = gradient_descent64(A, b, lam, 4.0, 1000)
    assert first4 is None and np.sum(np.diff(values4[-100:]) > 0) >= 10, "lr 4 oscillates"
    first_safe, _ = gradient_descent64(A, b, lam, 1 / lipschitz, 1000)
    assert 4.5 < first_safe / fastest < 6, first_safe


def zhang_hager_holds(values, eta=0.85) -> bool:
    """f_{k+1} <= C_k for the average C_k of Zhang & Hager (2004), eqs. (1.4)-(1.5):
    C_0 = f_0, Q_0 = 1, Q_{k+1} = eta Q_k + 1, C_{k+1} = (eta Q_k C_k + f_{k+1}) / Q_{k+1}
    (float32 values: 16 ulps of allowance, the rules' own)."""
    reference, weight = float(values[0]), 1.0
    for value in values[1:]:
        if value > reference + 16 * EPS32 * abs(reference):
            return False
        new_weight = eta * weight + 1
        reference = (eta * weight * reference + value) / new_weight
        weight = new_weight
    return True


def check_logistic_runs(ns, A, b, lam, w_star, f_star) -> None:
    runs = ns["logistic_runs"]
    names = [
        "SGD, lr 2",
        "Adam, lr 0.0625",
        "GD + backtracking",
        "L-BFGS + zoom (optax)",
        "L-BFGS + Wolfe",
        "L-BFGS + Hager-Zhang",
        "L-BFGS + non-monotone Armijo",
    ]
    assert list(runs) == names, list(runs)
    for name, r in runs.items():
        assert r["params"].shape == (201, 10) and r["params"].dtype == np.float32, name
        value, grad = logistic64(r["params"], A, b, lam)
        # The gap, the float32 loss and gradient norm, against float64 at the same iterates.
        close(r["gap"], value - f_star, rtol=0, atol=1e-15, claim=f"{name}: gap")
        assert np.all(r["gap"] > 0), name
        close(r["loss"], value, rtol=0, atol=1e-6, claim=f"{name}: float32 loss")
        close(r["grad_norm"], np.linalg.norm(grad, axis=1), rtol=1e-3, atol=1e-7, claim=name)
        k = r["reached"]
        assert r["grad_norm"][k] <= 1e-4 < r["grad_norm"][:k].min(), name
        assert r["calls"][0] == r["grads"][0] == 1 and np.all(np.diff(r["calls"]) >= 1), name
        assert np.all(r["grads"] <= r["calls"]), name
    table = {name: (k := r["reached"], r["calls"][k], r["grads"][k]) for name, r in runs.items()}
    assert table == {
        "SGD, lr 2": (107, 108, 108),
        "Adam, lr 0.0625": (133, 134, 134),
        "GD + backtracking": (92, 183, 111),
        "L-BFGS + zoom (optax)": (21, 24, 24),
        "L-BFGS + Wolfe": (20, 23, 23),
        "L-BFGS + Hager-Zhang": (21, 25, 25),
        "L-BFGS + non-monotone Armijo": (23, 24, 24),
    }, table
    # The fixed learning rate's run reaches the test at the iteration minimize counted.
    assert runs["SGD, lr 2"]["reached"] == int(ns["sweeps"]["SGD"][1].num_iterations[5])

    # The monotone rules: the float64 loss at the iterates decreases wherever float32 resolves
    # it (gap above 3e-6); the non-monotone rules keep Zhang & Hager's test.
    for name in names[2:6]:
        r = runs[name]
        resolved = r["gap"] > 3e-6
        assert decreasing(r["gap"][resolved]), name
        rises = np.diff(r["loss"])
        assert rises.max() <= 2 * np.spacing(np.float32(f_star)), name
        assert np.all(r["gap"][1:][rises > 0] < 3e-6), name
    nonmonotone = runs["L-BFGS + non-monotone Armijo"]["loss"]
    assert zhang_hager_holds(nonmonotone) and 1e-2 < np.diff(nonmonotone).max() < 2e-2
    sgd = runs["SGD, lr 2"]["loss"]
    assert np.diff(sgd).max() > 4e-2 and np.argmax(np.diff(sgd)) < 5, "a rise in the first steps"
    for name in names[3:]:
        r = runs[name]
        assert np.linalg.norm(r["params"][-1] - w_star) < 3e-7, name
        assert r["gap"][30] < 1e-9 and 30 <= r["calls"][30] - 1 <= 36, name
    gd = runs["GD + backtracking"]
    assert np.mean(np.diff(gd["calls"][:93]) >= 2) > 0.7, "the grown first trial: usually rejected"

    # Every call is counted: the loss wrapped in a counter (jax.debug.callback fires once per
    # evaluation, value-only trials included) for 40 iterations of optax's zoom search and of
    # backtracking.
    loss = ns["logistic"]
    for name in ("L-BFGS + zoom (optax)", "GD + backtracking"):
        calls = []

        def counted(w, calls=calls):
            jax.debug.callback(lambda: calls.append(1))
            return loss(w)

        again = ns["trajectory"](ns["logistic_rules"][name], counted, jnp.zeros(10), 40)
        jax.effects_barrier()
        assert len(calls) == again["calls"][-1] == runs[name]["calls"][40], (name, len(calls))

    # The figure: each run's gap against the iterations and against its calls.
    by_iteration, by_calls = ns["fig_logistic"].axes
    assert len(line_data(by_iteration)) == len(line_data(by_calls)) == 7
    for name, r in runs.items():
        assert drew(by_iteration, np.arange(201), r["gap"]), name
        assert drew(by_calls, r["calls"], r["gap"]), name
    labels = [text.get_text() for text in by_iteration.get_legend().get_texts()]
    assert labels == names and by_iteration.get_yscale() == by_calls.get_yscale() == "log"


# --- A small MLP, on all the data and on minibatches --------------------------------------------


def mlp64(theta, points, rings) -> tuple[np.ndarray, np.ndarray]:
    """The MLP's loss (mean cross-entropy + 1e-4 / 2 |theta|^2) and its logits, in NumPy
    float64, for a flat theta laid out as w0 (2 x 16), b0, w1 (16 x 16), b1, w2 (16 x 3), b2."""
    theta = np.asarray(theta, np.float64)
    shapes = [(2, 16), (1, 16), (16, 16), (1, 16), (16, 3), (1, 3)]
    parts = np.split(theta, np.cumsum([r * c for r, c in shapes])[:-1])
    w0, b0, w1, b1, w2, b2 = (p.reshape(s) for p, s in zip(parts, shapes, strict=True))
    h = np.tanh(np.tanh(points @ w0 + b0) @ w1 + b1)
    logits = h @ w2 + b2
    log_softmax = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    loss = -np.mean(log_softmax[np.arange(len(rings)), rings]) + 1e-4 / 2 * theta @ theta
    return loss, logits


def check_mlp(ns: dict) -> None:
    points, rings = np.asarray(ns["points"], np.float64), np.asarray(ns["rings"])
    assert points.shape == (300, 2) and sorted(np.unique(rings)) == [0, 1, 2]
    radius = np.linalg.norm(points, axis=1)
    assert np.all(np.abs(radius - (0.5 + rings)) < 1.0), "each point near its ring"
    assert ns["theta0"].shape == (371,) and ns["theta0"].dtype == jnp.float32

    runs = ns["mlp_runs"]
    assert list(runs) == ["GD + backtracking", "L-BFGS + zoom (optax)", "L-BFGS + Wolfe"]
    for name, r in runs.items():
        assert r["params"].shape == (301, 371) and r["params"].dtype == np.float32, name
        loss, logits = mlp64(r["params"][-1], points, rings)
        close(r["loss"][-1], loss, rtol=1e-5, claim=f"{name}: the last loss, in NumPy")
        accuracy = np.mean(np.argmax(logits, axis=1) == rings)
        close(ns["accuracy"](r["params"][-1]), accuracy, rtol=0, atol=1e-6, claim=name)
        assert accuracy >= 0.99, (name, accuracy)
        # The gradient the searches kept, against jax.grad at the last parameters.
        norm = float(jnp.linalg.norm(jax.grad(ns["mlp_loss"])(jnp.asarray(r["params"][-1]))))
        close(r["grad_norm"][-1], norm, rtol=1e-3, atol=1e-6, claim=f"{name}: gradient norm")
        # Never a rise: float32 values, and float64 ones every 10 iterations.
        assert np.all(np.diff(r["loss"]) <= 0), name
        assert decreasing([mlp64(theta, points, rings)[0] for theta in r["params"][::10]]), name
    gd, zoom, wolfe = runs.values()
    assert gd["calls"][-1] == 602 and gd["grads"][-1] == 301
    for r in (zoom, wolfe):
        assert r["reached"] <= 30 and r["calls"][-1] <= 1.1 * 300
        assert r["loss"][-1] < gd["loss"][-1] / 3
        assert r["loss"][r["reached"]] <= gd["loss"][-1] < r["loss"][r["reached"] - 1]
        assert np.mean(np.argmax(mlp64(r["params"][-1], points, rings)[1], axis=1) == rings) == 1.0
    # Wolfe and zoom trace the same curve, to within 15%.
    assert np.abs(np.log(wolfe["loss"] / zoom["loss"])).max() < 0.15

    # Minibatches: SLS, untuned, against the sweeps.
    minibatch = ns["minibatch"]
    sgd_losses, sgd_calls = minibatch["SGD"]
    adam_losses, adam_calls = minibatch["Adam"]
    sls_losses, sls_calls = minibatch["SLS"]
    assert sgd_losses.shape == (8, 30) and adam_losses.shape == (10, 30)
    assert sls_losses.shape == (30,)
    assert np.all(sgd_calls == 10 * np.arange(1, 31)) and np.all(adam_calls == sgd_calls[0])
    assert np.all(np.diff(sls_calls) > 10) and 300 < sls_calls[-1] < 900
    sgd_best, adam_best = sgd_losses[:, -1].min(), adam_losses[:, -1].min()
    assert sls_losses[-1] < sgd_best and sls_losses[-1] < 2 * adam_best
    assert adam_losses[:, -1].min() < sls_losses[-1], "Adam's best ends lower"

    # The figure: the full-batch losses per iteration; per epoch, every member of the sweeps,
    # the best of each drawn thick, and SLS.
    full_ax, minibatch_ax = ns["fig_mlp"].axes
    for r in runs.values():
        assert drew(full_ax, np.arange(301), r["loss"])
    epochs = np.arange(1, 31)
    for losses in (sgd_losses, adam_losses):
        assert all(drew(minibatch_ax, epochs, curve) for curve in losses)
    assert drew(minibatch_ax, epochs, sls_losses)
    assert len(line_data(minibatch_ax)) == 8 + 10 + 1
    thick = [line for line in minibatch_ax.get_lines() if line.get_linewidth() == 2]
    best = [losses[np.argmin(losses[:, -1])] for losses in (sgd_losses, adam_losses)]
    for line, curve in zip(thick, [*best, sls_losses], strict=True):
        close(line.get_ydata(), curve, rtol=1e-6, claim="the thick lines: the bests, and SLS")
