"""The claims of notebooks/exact_line_search.ipynb (tests/test_notebooks.py).

The notebook draws jaxls's exact searches step by step and compares them on the lecture's
f(x) = 1 - sqrt(2/pi) x^2 exp(-x^2/8) / 8 on [0, 6]. Its claims are checked here against
oracles that share no code with jaxls: the closed form of the minimiser, 2 sqrt 2, and of
f'' there; the textbook methods written out in float64 (dichotomy with its midpoint value
cached, golden section, the vertex of a parabola through three points); scipy's bounded
Brent (`minimize_scalar(method="bounded")`, the same algorithm, its calls counted); the
lecture's own listings, run as printed with their calls counted; the data the figures
plot; and the counts the notebook printed (its stored outputs).
"""

from __future__ import annotations

import json
import math

import jax
import numpy as np
from scipy.optimize import minimize_scalar

from tests.notebook_checks import EPS32, NUMBER, ROOT, close, drew, line_data, shaded

X_STAR = 2 * math.sqrt(2)  # f'(x) = -sqrt(2/pi) x (1 - x^2/8) exp(-x^2/8) / 4
GOLDEN = (math.sqrt(5) - 1) / 2  # 1/tau


def lecture_f(x: float) -> float:
    """The lecture's f, in float64."""
    return 1 - math.sqrt(2 / math.pi) * x**2 * math.exp(-(x**2) / 8) / 8


class Counted:
    """A function that counts its calls and records its points."""

    def __init__(self, fun):
        self.fun, self.points = fun, []

    def __call__(self, x):
        self.points.append(float(x))
        return self.fun(x)


# The lecture's listings, as printed (in the golden one, `a = v` read as `a = y` and
# `(b - a) / tau * 2` as `(b - a) / tau**2`; the printed `* 2` puts y outside [a, b]).
def lecture_dichotomy(f, a, b, epsilon):
    c, k = (a + b) / 2, 0
    while abs(b - a) > epsilon:
        k += 1
        y = (a + c) / 2.0
        if f(y) <= f(c):
            b, c = c, y
        else:
            z = (b + c) / 2.0
            if f(c) <= f(z):
                a, b = y, z
            else:
                a, c = c, z
    return c, k


def lecture_golden(f, a, b, epsilon):
    tau, k = (math.sqrt(5) + 1) / 2, 0
    y, z = a + (b - a) / tau**2, a + (b - a) / tau
    while b - a > epsilon:
        k += 1
        if f(y) <= f(z):
            b, z = z, y
            y = a + (b - a) / tau**2
        else:
            a, y = y, z
            z = a + (b - a) / tau
    return (a + b) / 2, k


def lecture_parabola(f, x1, x2, x3, epsilon):
    f1, f2, f3 = f(x1), f(x2), f(x3)
    while x3 - x1 > epsilon:
        u = x2 - ((x2 - x1) ** 2 * (f2 - f3) - (x2 - x3) ** 2 * (f2 - f1)) / (
            2 * ((x2 - x1) * (f2 - f3) - (x2 - x3) * (f2 - f1))
        )
        fu = f(u)
        if x2 <= u:
            if f2 <= fu:
                x3, f3 = u, fu
            else:
                x1, x2, f1, f2 = x2, u, f2, fu
        elif fu <= f2:
            x2, x3, f2, f3 = u, x2, fu, f2
        else:
            x1, f1 = u, fu
    return (x1 + x3) / 2


# Textbook methods in float64: the trial points they evaluate, in order.
def dichotomy_points(f, a, b, evals):
    """Dichotomy with f(c) cached: c, then y (and z when f(y) > f(c)) per halving."""
    c = (a + b) / 2
    points, fc = [c], f(c)
    while len(points) < evals:
        y = (a + c) / 2
        points.append(y)
        if f(y) <= fc:
            b, c, fc = c, y, f(y)
            continue
        z = (c + b) / 2
        points.append(z)
        if fc <= f(z):
            a, b = y, z
        else:
            a, c, fc = c, z, f(z)
    return points[:evals]


def golden_points(f, a, b, evals):
    """Golden section (Kiefer), one new point per iteration: y, z, then the mirror images."""
    y, z = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    points, fy, fz = [y, z], f(y), f(z)
    while len(points) < evals:
        if fy <= fz:
            b, z, fz = z, y, fy
            y = b - GOLDEN * (b - a)
            points.append(y)
            fy = f(y)
        else:
            a, y, fy = y, z, fz
            z = a + GOLDEN * (b - a)
            points.append(z)
            fz = f(z)
    return points[:evals]


def vertex(x1, f1, x2, f2, x3, f3):
    """The lecture's formula for the vertex of the parabola through three points."""
    numerator = (x2 - x1) ** 2 * (f2 - f3) - (x2 - x3) ** 2 * (f2 - f1)
    return x2 - numerator / (2 * ((x2 - x1) * (f2 - f3) - (x2 - x3) * (f2 - f1)))


def bounded_brent(tol):
    """scipy's bounded Brent at jaxls's tolerance (xatol = 3 tol / 2): points and nfev."""
    f = Counted(lecture_f)
    res = minimize_scalar(f, bounds=(0.0, 6.0), method="bounded", options={"xatol": 1.5 * tol})
    assert res.nfev == len(f.points), (res.nfev, len(f.points))  # its count is the true one
    return f.points, res


def stored_output(cell_id: str) -> str:
    """The text a cell of the stored notebook printed."""
    notebook = json.loads((ROOT / "notebooks/exact_line_search.ipynb").read_text())
    (cell,) = [c for c in notebook["cells"] if c["id"] == cell_id]
    return "".join("".join(o["text"]) for o in cell["outputs"] if o["output_type"] == "stream")


def check(ns: dict) -> None:
    assert not jax.config.jax_enable_x64, "float64 only inside the comparison cell"
    f, lower, upper = ns["f"], ns["lower"], ns["upper"]
    assert (lower, upper) == (0.0, 6.0) and ns["x_star"] == X_STAR
    assert abs(ns["RATIO"] - GOLDEN) < 1e-15
    grid = np.linspace(0.0, 6.0, 61)
    close(np.asarray(f(grid.astype(np.float32))), [lecture_f(x) for x in grid], rtol=1e-6)
    # f' = -sqrt(2/pi) x (1 - x^2/8) exp(-x^2/8) / 4 changes sign at 2 sqrt 2 only, and
    # scipy finds it to what float64 values resolve (4e-8 here: the same flatness).
    slope = lambda x: -math.sqrt(2 / math.pi) * x * (1 - x**2 / 8) * math.exp(-(x**2) / 8) / 4
    close(slope(1.0), (lecture_f(1.0 + 1e-6) - lecture_f(1.0 - 1e-6)) / 2e-6, rtol=1e-6)
    signs = np.sign([slope(x) for x in np.linspace(0.01, 6.0, 600)])
    assert np.count_nonzero(np.diff(signs)) == 1 and slope(X_STAR - 1e-9) < 0 < slope(X_STAR + 1e-9)
    res = minimize_scalar(lecture_f, bounds=(0.0, 6.0), method="bounded", options={"xatol": 1e-9})
    assert abs(res.x - X_STAR) < 1e-7, res.x
    # f''(x*) = sqrt(2/pi) e^-1 / 2 = 0.147 and f(x*) = 0.707: float32 values 4 eps apart
    # are points 2e-3 apart (Section 5's and Section 6's reason for float64).
    f2 = math.sqrt(2 / math.pi) * math.exp(-1) / 2
    h = 1e-4
    close(
        f2,
        (lecture_f(X_STAR + h) - 2 * lecture_f(X_STAR) + lecture_f(X_STAR - h)) / h**2,
        rtol=1e-5,
    )
    assert abs(f2 - 0.147) < 5e-4 and abs(lecture_f(X_STAR) - 0.707) < 1e-3
    resolved = math.sqrt(2 * 4 * EPS32 * lecture_f(X_STAR) / f2)
    assert 1.5e-3 < resolved < 2.5e-3, resolved

    check_unimodal(ns)
    check_dichotomy(ns)
    check_golden(ns)
    check_parabolic(ns)
    check_brent(ns)
    check_comparison(ns)
    check_vmap(ns)
    plt = ns["plt"]
    for name in ("fig1", "fig2", "fig3", "fig4", "fig5", "fig6"):
        plt.close(ns[name])


def check_unimodal(ns: dict) -> None:
    """Figure 1: the minimisers found, against the true ones; the curves drawn."""
    examples, found, fig1 = ns["examples"], ns["found"], ns["fig1"]
    # The bimodal example's critical points: 4 x (x^2 - 1) = 0.3, x^3 - x - 0.075 = 0.
    roots = np.sort(np.roots([1.0, 0.0, -1.0, -0.075]).real)
    local, global_ = roots[0], roots[2]
    quartic = lambda x: (x**2 - 1) ** 2 - 0.3 * x
    assert quartic(global_) < quartic(local) - 0.5, "the valley discarded is better by 0.5"
    truths = [X_STAR, 0.3, 1.0, local, global_]
    close(found.x, truths, rtol=0, atol=1e-2, claim="golden section within tol")
    # The declared minimisers are those of a float64 grid (spacing 1e-5).
    for (_, fun, lo, hi, x_min), oracle in zip(
        examples[1:3],
        [lambda x: np.abs(x - 0.3), lambda x: np.where(x < 1, 2.5 - x, x)],
        strict=True,
    ):
        dense = np.linspace(lo, hi, int((hi - lo) * 1e5) + 1)
        assert abs(dense[np.argmin(oracle(dense))] - x_min) <= 1e-5
        close(np.asarray(fun(np.float32(0.5))), oracle(0.5), rtol=1e-7)
    panels = fig1.axes
    assert len(panels) == 4
    for i, (ax, (grid, values)) in enumerate(zip(panels, ns["curves"], strict=True)):
        assert drew(ax, grid, values), i
        assert drew(ax, [found.x[i]], [found.value[i]]), i
    assert drew(panels[3], [found.x[4]], [found.value[4]])
    # Unimodal on the plotted grid: decreasing to the minimiser, increasing after; the
    # quartic changes direction three times.
    for i, x_min in enumerate((X_STAR, 0.3, 1.0, None)):
        grid, values = ns["curves"][i]
        slopes = np.sign(np.diff(np.asarray(values, np.float64)))
        changes = np.count_nonzero(np.diff(slopes))
        if x_min is None:
            assert changes == 3, changes
        else:
            assert changes == 1 and np.all(slopes != 0), i
            assert abs(grid[np.argmin(values)] - x_min) <= np.diff(grid).max()


def check_dichotomy(ns: dict) -> None:
    """Figures 2-11, dichotomy: its points against the method in float64, the listing's cost."""
    lucky, run = ns["lucky"], ns["histories"]["dichotomy"]
    close(lucky["points"], dichotomy_points(lecture_f, 0.0, 8.0, 3), rtol=1e-6)
    close(run["points"], dichotomy_points(lecture_f, 0.0, 6.0, 9), rtol=1e-6)
    assert lucky["upper"][1] - lucky["lower"][1] == 4.0, "lucky: halved by 2 evaluations"
    assert run["upper"][1] - run["lower"][1] == 6.0 and run["upper"][2] - run["lower"][2] == 3.0
    # Each panel shades the bracket jaxls held after n evaluations; the unlucky one after 2
    # also hatches [y, b], three quarters of [0, 6].
    panels = ns["fig2"].axes
    assert len(panels) == 6
    for k, (h, n) in enumerate([(lucky, n) for n in (1, 2, 3)] + [(run, n) for n in (1, 2, 3)]):
        span = (round(float(h["lower"][n - 1]), 5), round(float(h["upper"][n - 1]), 5))
        expected = sorted([span, (1.5, 6.0)]) if k == 4 else [span]
        assert shaded(panels[k]) == expected, (k, shaded(panels[k]))
        assert drew(panels[k], h["points"][:n], h["values"][:n]), k
    # The halvings after n evaluations: floor((n - 1) / 2) <= h <= n - 1, as printed.
    n = np.arange(1, 10)
    halvings = np.log2(6.0 / (run["upper"] - run["lower"]))
    assert np.array_equal(halvings, np.round(halvings)) and np.array_equal(ns["halvings"], halvings)
    assert np.all((n - 1) // 2 <= halvings) and np.all(halvings <= n - 1)
    assert halvings.tolist() == [0, 0, 1, 1, 2, 2, 3, 4, 4]
    # The lecture's listing: 2 calls per iteration, 4 when z is needed (f(c) twice), so
    # more than its count N = 2k, which also leaves out the first evaluation.
    for epsilon in (1e-2, 1e-4):
        counted = Counted(lecture_f)
        x, k = lecture_dichotomy(counted, 0.0, 6.0, epsilon)
        assert abs(x - X_STAR) <= epsilon / 2 and len(counted.points) > 2 * k + 1, epsilon
    calls = []  # after 1, 2, ..., 16 iterations (the listing stops once b - a <= epsilon)
    for iterations in range(1, 17):
        counted = Counted(lecture_f)
        lecture_dichotomy(counted, 0.0, 6.0, 6.0 / 2**iterations * (1 + 1e-9))
        calls.append(len(counted.points))
    assert set(np.diff([0, *calls]).tolist()) == {2, 4}, calls


def check_golden(ns: dict) -> None:
    """Figure 12, golden section: its points, one per iteration; the listing's two."""
    g = ns["histories"]["golden section"]
    close(g["points"], golden_points(lecture_f, 0.0, 6.0, 8), rtol=0, atol=1e-5)
    n = np.arange(1, 9)
    spread = np.maximum(g["x"] - g["lower"], g["upper"] - g["x"])
    close(spread, 6 * GOLDEN**n, rtol=1e-5, claim="one 1/tau reduction per evaluation")
    panels = ns["fig3"].axes
    for k, ax in enumerate(panels):
        a, b = float(g["lower"][k]), float(g["upper"][k])
        assert shaded(ax) == [(round(a, 5), round(b, 5))]
        marks = [d[0, 0] for d in line_data(ax) if d.shape == (2, 2) and d[0, 0] == d[1, 0]]
        close(sorted(marks), [a + (1 - GOLDEN) * (b - a), a + GOLDEN * (b - a)], rtol=1e-6)
        # The best point and the next point sit on the two golden points.
        close(sorted([g["x"][k], g["points"][k + 1]]), sorted(marks), rtol=0, atol=2e-6)
    # The lecture's listing (typos mended): two calls per iteration, where jaxls makes one.
    for epsilon in (1e-2, 1e-4):
        counted = Counted(lecture_f)
        x, k = lecture_golden(counted, 0.0, 6.0, epsilon)
        assert abs(x - X_STAR) <= epsilon / 2 and len(counted.points) == 2 * k, (epsilon, k)
    tau = (math.sqrt(5) + 1) / 2
    assert 0.0 + (6.0 - 0.0) / tau * 2 > 6.0, "as printed, `/ tau * 2` leaves the bracket"


def check_parabolic(ns: dict) -> None:
    """Successive parabolic interpolation: each point is the vertex; one-sided convergence."""
    p = ns["histories"]["parabolic"]
    assert p["points"][:3].tolist() == [3.0, 0.0, 6.0], "the triple: midpoint, lower, upper"
    value_at = dict(zip(p["points"].tolist(), p["values"].tolist(), strict=True))
    for n in range(3, 8):
        triple = [float(p["lower"][n - 1]), float(p["x"][n - 1]), float(p["upper"][n - 1])]
        u = vertex(*(v for t in triple for v in (t, value_at[t])))
        close(p["points"][n], u, rtol=0, atol=2e-5, claim=f"the vertex after {n}")
    close(ns["vertices"], p["points"][3:7], rtol=0, atol=2e-5)
    assert p["upper"][4:7].tolist() == [3.0] * 3
    panels = ns["fig4"].axes
    for k, ax in enumerate(panels):
        parabola = next(d for d in line_data(ax) if d.shape == (101, 2))
        triple_x = [p["lower"][k + 2], p["x"][k + 2], p["upper"][k + 2]]
        close(parabola[[0, -1], 0], [triple_x[0], triple_x[2]], rtol=1e-7)
        close(parabola[[0, -1], 1], [value_at[float(t)] for t in triple_x[::2]], rtol=1e-6)
    # The lecture's listing divides by zero on an exact quadratic: its first vertex is the
    # minimiser, its second falls on it again and the triple degenerates.
    try:
        lecture_parabola(lambda x: (x - 2.0) ** 2, 0.0, 1.0, 5.0, 1e-4)
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("the lecture's parabola listing divides by zero here")
    assert abs(lecture_parabola(lecture_f, 0.0, 3.0, 6.0, 1e-4) - X_STAR) < 1e-4


def check_brent(ns: dict) -> None:
    """Brent: scipy's bounded Brent evaluates the same points; the step kinds; the staircase."""
    br, histories = ns["histories"]["Brent"], ns["histories"]
    tol = math.sqrt(EPS32) * 6  # jaxls's default in float32
    points, _ = bounded_brent(tol)
    assert len(points) >= 9
    close(br["points"][:5], points[:5], rtol=0, atol=1e-5, claim="golden steps, then parabolic")
    close(br["points"], points[:9], rtol=0, atol=5e-4, claim="float32 apart, the same path")
    kinds = ["golden"] * 3 + ["parabolic"] * 3 + ["golden"] + ["parabolic"] * 2
    assert ["golden" if k else "parabolic" for k in ns["is_golden"]] == kinds
    # The step-7 golden point: x - 0.382 (x - a) from the state after 6 evaluations.
    x, a = float(br["x"][5]), float(br["lower"][5])
    close(br["points"][6], x - (1 - GOLDEN) * (x - a), rtol=1e-6)
    errors8 = {k: abs(float(h["x"][7]) - X_STAR) for k, h in histories.items()}
    assert errors8 == ns["errors8"]
    assert errors8["parabolic"] < errors8["Brent"] < errors8["golden section"]
    assert errors8["golden section"] < errors8["dichotomy"]
    panels = ns["fig5"].axes
    assert [ax.get_title() for ax in panels] == list(histories)
    for ax, h in zip(panels, histories.values(), strict=True):
        n = np.arange(1, len(h["x"]) + 1)
        for k in range(len(n)):
            assert drew(ax, [h["lower"][k], h["upper"][k]], [n[k], n[k]]), k
        assert drew(ax, h["x"], n)
    assert int(br["status"][-1]) == 7  # ROUNDING


def check_comparison(ns: dict) -> None:
    """Figure 18: counts and errors against the closed form, scipy and the stored table."""
    tols, results = ns["tols"], ns["results"]
    close(tols, [10.0**-k for k in range(1, 7)], rtol=1e-15)
    names = ["dichotomy", "golden section", "parabolic", "Brent"]  # as printed and drawn
    assert list(ns["METHODS"]) == names and sorted(results) == sorted(names)
    assert all(r.x.dtype == np.float64 for r in results.values()), "the sweep: float64"
    evals = {k: np.asarray(r.num_evals) for k, r in results.items()}
    for k, r in results.items():
        error = np.abs(np.asarray(r.x, np.float64) - X_STAR)
        close(ns["errors"][k], error, rtol=1e-12)
        assert np.all(error <= tols) and np.all(np.asarray(r.status) == 0), k
    # Golden section: one evaluation per iteration, ceil(log(tol / 6) / log(1/tau)).
    golden = [math.ceil(math.log(t / 6) / math.log(GOLDEN)) for t in tols]
    assert evals["golden section"].tolist() == golden
    assert ns["iterations"]["golden section"].tolist() == golden
    # The lecture's golden listing at the same guarantee (|x - x*| <= tol: epsilon = 2 tol)
    # makes more calls: two per iteration.
    for t, jaxls_evals in zip(tols, golden, strict=True):
        counted = Counted(lecture_f)
        _, k = lecture_golden(counted, 0.0, 6.0, 2 * t)
        # (its k iterations are 1 or 2 fewer: it certifies the unevaluated midpoint, within
        # (b - a) / 2, where jaxls certifies its best point, within max(x - a, b - x))
        assert len(counted.points) == 2 * k > jaxls_evals and jaxls_evals - 2 <= k, (t, k)
    # Dichotomy: the lecture's K halvings, each 1 or 2 evaluations after the first.
    K = np.array([math.ceil(math.log2(6 / t) - 1) for t in tols])
    assert ns["iterations"]["dichotomy"].tolist() == K.tolist()
    assert np.all((K + 1 <= evals["dichotomy"]) & (evals["dichotomy"] <= 2 * K + 1))
    # Brent: as many evaluations as scipy's bounded Brent at every tolerance.
    scipy_evals = [bounded_brent(t)[1].nfev for t in tols]
    assert evals["Brent"].tolist() == scipy_evals, (evals["Brent"], scipy_evals)
    assert np.all(evals["Brent"][1:] < evals["golden section"][1:])
    assert np.all(evals["parabolic"][1:] < evals["golden section"][1:])
    assert evals["Brent"][3] == 10 and evals["golden section"][3] == 23
    assert np.all(2 * evals["parabolic"][3:] < evals["golden section"][3:]), "fewer than half"
    for k, start in (("parabolic", 3), ("Brent", 1)):
        assert np.array_equal(ns["iterations"][k], evals[k] - start), k
    # The printed table is the one computed (its stored text).
    rows = [NUMBER.findall(line) for line in stored_output("comparison").splitlines()[-6:]]
    for j, (row, t) in enumerate(zip(rows, tols, strict=True)):
        numbers = [float(v) for v in row]
        assert len(numbers) == 13 and abs(numbers[0] / t - 1) < 1e-12, row
        for i, k in enumerate(names):
            evals_i, iterations_i, error_i = numbers[1 + 3 * i : 4 + 3 * i]
            assert evals_i == evals[k][j] and iterations_i == ns["iterations"][k][j], (k, t)
            close(error_i, ns["errors"][k][j], rtol=0.06)
    assert "status ROUNDING" in stored_output("comparison")
    assert int(ns["in_float32"].status) == 7 and ns["in_float32"].x.dtype == np.float32
    # Figure 18: counts, errors against the tolerance and against the evaluations.
    count_ax, error_ax, rate_ax = ns["count_ax"], ns["error_ax"], ns["rate_ax"]
    for k in results:
        assert drew(count_ax, tols, evals[k]) and drew(count_ax, tols, ns["iterations"][k]), k
        assert drew(error_ax, tols, ns["errors"][k]), k
        assert drew(rate_ax, evals[k], ns["errors"][k]), k
    assert drew(error_ax, tols, tols)
    n = np.arange(1, 47)
    assert drew(rate_ax, n, 6 * GOLDEN**n) and drew(rate_ax, n, 3 * 0.5 ** ((n - 1) / 2))


def check_vmap(ns: dict) -> None:
    """A million problems: the closed-form minimisers, golden section's count, float32."""
    cs, solved = np.asarray(ns["cs"], np.float64), ns["solved"]
    assert cs.shape == (1_000_000,) and solved.x.dtype == np.float32
    error = np.abs(np.asarray(solved.x, np.float64) - X_STAR * cs)
    assert error.max() <= 1e-2 and np.all(np.asarray(solved.status) == 0)
    expected = np.ceil(np.log(1e-2 / (6 * cs)) / math.log(GOLDEN))
    assert np.mean(np.asarray(solved.num_evals) == expected) > 0.999
    assert set(np.unique(np.asarray(solved.num_evals)).tolist()) == {12, 13, 14, 15}
    # A sample against scipy's bounded Brent on f(x / c), in float64.
    for c in cs[::250_000]:
        res = minimize_scalar(
            lambda x, c=c: lecture_f(x / c),
            bounds=(0, 6 * c),
            method="bounded",
            options={"xatol": 1e-8},
        )
        close(res.x, X_STAR * c, rtol=1e-7)
    assert ns["elapsed"] > 0 and "million problems per second" in stored_output("vmap")
