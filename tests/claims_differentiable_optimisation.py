"""The claims of notebooks/differentiable_optimisation.ipynb (tests/test_notebooks.py)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import optax

import jaxls
from tests.notebook_checks import EPS32, close, decreasing, drew, line_data, shaded


def values_kept(fun, theta, *, run: bool = False) -> int:
    """How many values `jax.vjp`'s backward function holds: by tracing, or by running it."""
    if run:
        backward = jax.vjp(fun, theta)[1]
    else:
        backward = jax.eval_shape(lambda t: jax.vjp(fun, t)[1], theta)
    return sum(math.prod(np.shape(leaf)) for leaf in jax.tree.leaves(backward))


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


def check(ns: dict) -> None:
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
