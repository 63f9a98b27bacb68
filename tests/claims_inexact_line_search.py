"""The claims of notebooks/inexact_line_search.ipynb (tests/test_notebooks.py).

The oracles are independent of jaxls: the objective, its gradient and Hessian in closed
form in float64 NumPy, the conditions from their textbook formulas (Nocedal & Wright 2006,
eqs. 3.4, 3.6, 3.7 and 3.11; Hager & Zhang 2005, eq. 4.1) evaluated in float64 on the
notebook's float32 grid, `scipy.optimize.line_search` and `scipy.optimize.brentq`, and the
data of the figures (tests/notebook_checks.py).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import matplotlib.colors
import numpy as np
import scipy.optimize

import jaxls
from tests.notebook_checks import EPS32, close, drew, line_data, shaded

HILL = np.array([1.3, 0.0])  # f = ((x1 - 4)^2 + 4 x2^2) / 8 + 2 exp(-3 |x - HILL|^2)
X0 = np.array([0.0, -1.0])
SPACING = 0.005  # of the grid of steps


def f64(x):
    x = np.asarray(x, np.float64)
    bowl = ((x[..., 0] - 4.0) ** 2 + 4.0 * x[..., 1] ** 2) / 8.0
    return bowl + 2.0 * np.exp(-3.0 * np.sum((x - HILL) ** 2, axis=-1))


def grad64(x):
    x = np.asarray(x, np.float64)
    hill = 2.0 * np.exp(-3.0 * np.sum((x - HILL) ** 2, axis=-1))
    bowl = np.stack([(x[..., 0] - 4.0) / 4.0, x[..., 1]], axis=-1)
    return bowl - 6.0 * hill[..., None] * (x - HILL)


def hess64(x):
    x = np.asarray(x, np.float64)
    r = x - HILL
    hill = 2.0 * np.exp(-3.0 * r @ r)
    return np.diag([0.25, 1.0]) + hill * (36.0 * np.outer(r, r) - 6.0 * np.eye(2))


class Line:
    """phi(t) = f(x + t d) and phi'(t) in float64, for steps t of any shape."""

    def __init__(self, x, d):
        self.x, self.d = np.asarray(x, np.float64), np.asarray(d, np.float64)

    def points(self, t):
        return self.x + np.asarray(t, np.float64)[..., None] * self.d

    def value(self, t):
        return f64(self.points(t))

    def slope(self, t):
        return grad64(self.points(t)) @ self.d


# The conditions, from the textbook, for phi(0) = p0, phi'(0) = s0 < 0, phi(t) = p, phi'(t) = s.
def armijo(p0, s0, p, t, c1):  # N&W (3.4)
    return p <= p0 + c1 * t * s0


def goldstein(p0, s0, p, t, c):  # N&W (3.11)
    return (p0 + (1 - c) * t * s0 <= p) & armijo(p0, s0, p, t, c)


def curvature(s0, s, c2):  # N&W (3.6b)
    return s >= c2 * s0


def wolfe(p0, s0, p, s, t, c1, c2):  # N&W (3.6)
    return armijo(p0, s0, p, t, c1) & curvature(s0, s, c2)


def strong_wolfe(p0, s0, p, s, t, c1, c2):  # N&W (3.7)
    return armijo(p0, s0, p, t, c1) & (np.abs(s) <= c2 * np.abs(s0))


def approximate_wolfe(p0, s0, p, s, c1, c2, epsilon):  # Hager & Zhang (4.1)
    return ((2 * c1 - 1) * s0 >= s) & (s >= c2 * s0) & (p <= p0 + epsilon * abs(p0))


def spans(grid, mask) -> list[tuple[float, float]]:
    """The runs of True of a mask over the grid, as (first, last) grid steps."""
    out = []
    for value, run in itertools.groupby(
        zip(grid, mask, strict=True), key=lambda pair: bool(pair[1])
    ):
        if value:
            run = [t for t, _ in run]
            out.append((round(float(run[0]), 5), round(float(run[-1]), 5)))
    return out


def same_spans(ax, expected, claim=""):
    """The axes' shaded ranges are the float64 sets', up to a grid step at each end (where
    float32 and float64 may decide a step at the boundary differently)."""
    drawn = shaded(ax)
    assert len(drawn) == len(expected), (claim, drawn, expected)
    close(drawn, expected, rtol=0, atol=1.01 * SPACING, claim=claim)


def inside(t, intervals) -> bool:
    return any(lo <= t <= hi for lo, hi in intervals)


def check(ns: dict) -> None:
    assert not jax.config.jax_enable_x64, "the notebook runs in float32"
    alphas, values, slopes = (np.asarray(ns[k]) for k in ("alphas", "values", "slopes"))
    assert all(a.dtype == np.float32 for a in (alphas, values, slopes))
    grid = alphas.astype(np.float64)
    assert grid.shape == (700,)
    close(np.diff(grid), SPACING, rtol=1e-4, claim="a uniform grid of steps 0.005")
    close(grid[[0, -1]], [SPACING, 3.5], rtol=1e-6)

    # The line: d = -grad f(x0), phi and phi' on the grid, the two minimisers.
    close(ns["x0"], X0, rtol=0)
    d = np.asarray(ns["d"], np.float64)
    close(d, -grad64(X0), rtol=1e-6, claim="steepest descent")
    line = Line(X0, d)
    p0, s0 = float(line.value(0.0)), float(line.slope(0.0))
    phi, dphi = line.value(grid), line.slope(grid)
    close([ns["value0"], ns["slope0"]], [p0, s0], rtol=2e-6)
    close(values, phi, rtol=2e-6, claim="phi on the grid")
    close(slopes, dphi, rtol=0, atol=1e-5, claim="phi' on the grid")
    exact_minimisers = [
        scipy.optimize.brentq(line.slope, a, b) for a, b in [(0.2, 1.0), (1.5, 2.5)]
    ]
    close(ns["minimisers"], exact_minimisers, rtol=0, atol=1e-3, claim="Brent's minimisers")
    hump = grid[(grid > 0.6) & (grid < 1.9)][np.argmax(phi[(grid > 0.6) & (grid < 1.9)])]
    assert line.value(hump) > p0 > line.value(exact_minimisers[1]), "over the hill, deeper"

    # Figure 13: the tangent; phi - tangent ~ phi''(0) alpha^2 / 2; c1 = 1 accepts nothing.
    ax13 = ns["ax13"]
    curvature0 = d @ hess64(X0) @ d
    close(ns["curvature0"], curvature0, rtol=1e-4, claim="phi''(0) = d' H d")
    assert drew(ax13, alphas, values)
    on_grid = [data for data in line_data(ax13) if data.shape == (700, 2)]
    assert len(on_grid) == 3 and all(np.array_equal(data[:, 0], grid) for data in on_grid)
    tangent = on_grid[1]  # phi, the tangent, the second-order model
    close(tangent[:, 1], p0 + grid * s0, rtol=0, atol=1e-5, claim="the tangent")
    close((phi[3] - p0 - grid[3] * s0) / grid[3] ** 2, curvature0 / 2, rtol=0.02)
    assert np.all(phi > p0 + grid * s0) and shaded(ax13) == [], "c1 = 1: no step"

    # Figure 14: Armijo; the sets shrink as c1 grows, each holds every short enough step.
    c1s = [1e-4, 0.3, 0.5, 0.9]
    masks = {c1: armijo(p0, s0, phi, grid, c1) for c1 in c1s}
    for ax, c1 in zip(ns["axes14"], c1s, strict=True):
        assert drew(ax, alphas, values)
        same_spans(ax, spans(grid, masks[c1]), claim=f"Armijo, c1 = {c1}")
        assert masks[c1][0]
    for small, large in itertools.pairwise(c1s):
        assert not np.any(masks[large] & ~masks[small]) and masks[large].sum() < masks[small].sum()
    assert [len(spans(grid, m)) for m in masks.values()] == [2, 2, 1, 1]

    # Figure 15: Goldstein; short steps refused; c = 0.25 keeps both minimisers, 0.4 neither.
    minimum_values = line.value(np.array(exact_minimisers))
    for ax, c, at_minimisers in zip(ns["axes15"], (0.25, 0.4), (True, False), strict=True):
        mask = goldstein(p0, s0, phi, grid, c)
        same_spans(ax, spans(grid, mask), claim=f"Goldstein, c = {c}")
        assert not np.any(mask & ~armijo(p0, s0, phi, grid, c)) and not mask[grid < 0.4].any()
        held = goldstein(p0, s0, minimum_values, np.array(exact_minimisers), c)
        assert np.all(held == at_minimisers), (c, held)
        assert drew(ax, ns["minimisers"], ns["min_values"])

    # Figure 16: curvature; short steps refused, minimisers kept, some uphill steps accepted.
    for ax, c2 in zip(ns["axes16"], (0.9, 0.1), strict=True):
        mask = curvature(s0, dphi, c2)
        same_spans(ax, spans(grid, mask), claim=f"curvature, c2 = {c2}")
        assert not mask[grid <= 0.1].any() and (mask & (phi > p0)).any()
        assert np.all(curvature(s0, line.slope(np.array(exact_minimisers)), c2))
    red = matplotlib.colors.to_rgba("C3")
    lines16 = ns["axes16"][0].get_lines()
    tangents = [t.get_xydata() for t in lines16 if matplotlib.colors.to_rgba(t.get_color()) == red]
    assert len(tangents) == 4
    for (a, ya), (b, yb) in np.asarray(tangents, np.float64):
        t = (a + b) / 2 if a > 0 else 0.0
        close((yb - ya) / (b - a), line.slope(t), rtol=0, atol=1e-4, claim=f"tangent at {t}")

    # Figure 17: weak and strong Wolfe; strong inside weak and smaller; minimisers in both.
    weak_masks, strong_masks = {}, {}
    for row, c2 in zip(ns["axes17"], (0.9, 0.1), strict=True):
        weak_masks[c2] = wolfe(p0, s0, phi, dphi, grid, 1e-4, c2)
        strong_masks[c2] = strong_wolfe(p0, s0, phi, dphi, grid, 1e-4, c2)
        same_spans(row[0], spans(grid, weak_masks[c2]), claim=f"weak Wolfe, c2 = {c2}")
        same_spans(row[1], spans(grid, strong_masks[c2]), claim=f"strong Wolfe, c2 = {c2}")
        assert not np.any(strong_masks[c2] & ~weak_masks[c2])
        assert strong_masks[c2].sum() < weak_masks[c2].sum()
        for t in exact_minimisers:
            assert strong_wolfe(p0, s0, line.value(t), line.slope(t), t, 1e-4, c2)
        # scipy's strong Wolfe search (N&W's zoom) finds a step in the shaded strong set.
        step = scipy.optimize.line_search(f64, grad64, X0, d, c1=1e-4, c2=c2)[0]
        assert step is not None and inside(step, shaded(row[1])), (c2, step)

    # The searches: each panel shades its condition; the trials fail it but the last.
    hz_wolfe = wolfe(p0, s0, phi, dphi, grid, 0.1, 0.9)
    hz_mask = hz_wolfe | approximate_wolfe(p0, s0, phi, dphi, 0.1, 0.9, 16 * EPS32)
    conditions = {  # name: the condition (of t, phi(t), phi'(t)) and its set on the grid
        "backtracking": (lambda t, p, s: armijo(p0, s0, p, t, 1e-4), masks[1e-4]),
        "backtracking from 3.4": (lambda t, p, s: armijo(p0, s0, p, t, 1e-4), masks[1e-4]),
        "Goldstein, c = 0.25": (
            lambda t, p, s: goldstein(p0, s0, p, t, 0.25),
            goldstein(p0, s0, phi, grid, 0.25),
        ),
        "strong Wolfe, c2 = 0.1": (
            lambda t, p, s: strong_wolfe(p0, s0, p, s, t, 1e-4, 0.1),
            strong_masks[0.1],
        ),
        "weak Wolfe, c2 = 0.1": (
            lambda t, p, s: wolfe(p0, s0, p, s, t, 1e-4, 0.1),
            weak_masks[0.1],
        ),
        "Hager-Zhang": (
            lambda t, p, s: (
                wolfe(p0, s0, p, s, t, 0.1, 0.9)
                | approximate_wolfe(p0, s0, p, s, 0.1, 0.9, 16 * EPS32)
            ),
            hz_mask,
        ),
    }
    trials, results = ns["trials"], ns["results"]
    assert list(trials) == list(conditions) == list(results)
    first_trials = {"backtracking from 3.4": 3.4}
    for ax, (name, (condition, mask)) in zip(
        ns["axes_searches"].flat, conditions.items(), strict=True
    ):
        same_spans(ax, spans(grid, mask), claim=name)
        steps, trial_values = trials[name][1:].T
        res = results[name]
        assert trials[name][0, 0] == 0.0 and len(trials[name]) == int(res.num_evals)
        close(steps[0], first_trials.get(name, 1.0), rtol=1e-6, claim=f"{name}: step_init")
        close(trial_values, line.value(steps), rtol=2e-6, claim=f"{name}: the values")
        held = condition(steps, line.value(steps), line.slope(steps))
        assert held[-1] and not held[:-1].any(), (name, steps, held)
        close(steps[-1], res.step, rtol=0, atol=1e-6)
        assert inside(float(res.step), shaded(ax)), name
        assert drew(ax, steps, trial_values), name
        assert drew(ax, [res.step], [res.value]), name
    counts = {name: len(trials[name]) for name in trials}
    assert counts["strong Wolfe, c2 = 0.1"] == counts["weak Wolfe, c2 = 0.1"] + 1, counts
    # Armijo does not care about the hill: from 3.4 the step lands in the far dip.
    assert results["backtracking from 3.4"].step > hump > results["backtracking"].step

    # The lecture's loop: thirty halvings of 3.4, none in a Goldstein (c = 0.4) band.
    halvings = np.asarray(ns["halvings"], np.float64)
    close(halvings, 3.4 * 0.5 ** np.arange(30), rtol=1e-6)
    assert not goldstein(p0, s0, line.value(halvings), halvings, 0.4).any()
    found = ns["found"]
    assert goldstein(p0, s0, line.value(float(found.step)), float(found.step), 0.4)
    assert curvature(s0, line.slope(3.4), 0.9) and line.value(3.4) > p0, "uphill, accepted"

    # Gradient descent: all reach the minimiser; their counts; the first steps.
    x_star = np.array([4.0, 0.0])
    for _ in range(3):  # Newton in float64: the hill moves the minimiser by ~1e-9
        x_star = x_star - np.linalg.solve(hess64(x_star), grad64(x_star))
    paths, table = ns["paths"], ns["table"]
    for ax, (name, path) in zip(ns["axes_descent"].flat, paths.items(), strict=True):
        iterations, num_evals, _, first = table[name]
        assert path.shape == (iterations + 1, 2) and np.array_equal(path[0], X0)
        assert drew(ax, path[:, 0], path[:, 1]), name
        assert f"{iterations} iterations, {num_evals} evaluations" in ax.get_title()
        assert np.abs(path[-1] - x_star).max() < 1e-3, (name, path[-1])
        assert np.linalg.norm(grad64(path[-1])) <= 1.5 * ns["grad_tol"], name
        assert np.linalg.norm(grad64(path[-2])) > ns["grad_tol"], name
        far = f64(path) - f64(x_star) > 1e-4  # where float32 resolves the decrease
        assert np.all(np.diff(f64(path))[far[:-1]] < 0), f"{name}: descent"
        close(first, (path[1] - X0) @ d / (d @ d), rtol=1e-5)
    # The steps the searches accepted satisfy their conditions, checked in float64.
    accepted = {
        "backtracking": lambda p0, s0, p, s, t: armijo(p0, s0, p, t, 1e-4),
        "Goldstein": lambda p0, s0, p, s, t: goldstein(p0, s0, p, t, 0.1),
        "strong Wolfe": lambda p0, s0, p, s, t: strong_wolfe(p0, s0, p, s, t, 1e-4, 0.9),
        "weak Wolfe": lambda p0, s0, p, s, t: strong_wolfe(p0, s0, p, s, t, 1e-4, 0.9),
        "Hager-Zhang": lambda p0, s0, p, s, t: (
            wolfe(p0, s0, p, s, t, 0.1, 0.9) | approximate_wolfe(p0, s0, p, s, 0.1, 0.9, 16 * EPS32)
        ),
    }
    for name, condition in accepted.items():
        path = paths[name]
        for x, x_next in itertools.pairwise(path):
            if f64(x) - f64(x_star) <= 1e-4:
                break
            step_line = Line(x, -grad64(x))
            t = (x_next - x) @ step_line.d / (step_line.d @ step_line.d)
            p0k, s0k = step_line.value(0.0), step_line.slope(0.0)
            assert condition(p0k, s0k, step_line.value(t), step_line.slope(t), t), (name, x, t)
    inexact = [name for name in paths if name != "exact (Brent)"]
    exact = table["exact (Brent)"]
    assert all(exact[1] > 5 * table[name][1] for name in inexact), table
    assert (
        all(table[name][3] < hump for name in inexact)
        and abs(exact[3] - exact_minimisers[1]) < 1e-3
    )
    for name in ("backtracking", "Goldstein"):
        assert table[name][2] == table[name][0] + 1
    for name in ("strong Wolfe", "weak Wolfe", "Hager-Zhang"):
        assert table[name][2] == table[name][1]
    assert 17 <= min(t[0] for t in table.values()) and max(t[0] for t in table.values()) <= 23
    assert 29 <= min(table[n][1] for n in inexact) and max(table[n][1] for n in inexact) <= 40
    assert exact[1] > 300

    # c1: every run converges to x*, c1 = 0.99 takes nearly forty times the default's iterations.
    sweep = ns["sweep"]
    close(ns["sweep_c1"], [1e-4, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99], rtol=1e-6)
    assert np.all(np.asarray(sweep.status) == jaxls.Status.SUCCESS)
    assert np.abs(np.asarray(sweep.params, np.float64) - x_star).max() < 1e-3
    assert np.all(np.linalg.norm(grad64(np.asarray(sweep.params)), axis=-1) <= 1.5 * ns["grad_tol"])
    iterations = np.asarray(sweep.num_iterations)
    assert 30 < iterations[-1] / iterations[0] < 40, iterations
    assert iterations[-1] > iterations[-2] > iterations[:-2].max()
    assert int(iterations[0]) == table["backtracking"][0]
    assert jnp.issubdtype(sweep.params.dtype, jnp.float32)

    plt = ns["plt"]
    for fig in ("fig13", "fig14", "fig15", "fig16", "fig17", "fig_searches", "fig_descent"):
        plt.close(ns[fig])
