"""The claims of notebooks/training_with_line_searches.ipynb (tests/test_notebooks.py)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import optax

import jaxls
from tests.notebook_checks import EPS32, close, decreasing


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
