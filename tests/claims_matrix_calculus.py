"""The claims of notebooks/matrix_calculus.ipynb (tests/test_notebooks.py).

Oracles independent of `jaxls.calculus`: closed forms in NumPy float64 (the lecture's rules,
its three examples, the Hessians, Schwarz's counterexample and its mixed partial), `jax.grad`,
`jax.jacrev`, `jax.hessian`, finite differences in float64 (the tangents of a level set, and
the nested limits at the origin, written here again), and the words of the printed messages.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

import jaxls.calculus as mc
from tests.notebook_checks import close, drew, line_data


def f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


def schwarz(x, y):
    """x y (x^2 - y^2) / (x^2 + y^2), 0 at the origin, in NumPy float64."""
    x, y = f64(x), f64(y)
    r2 = x * x + y * y
    return np.where(r2 == 0, 0.0, x * y * (x * x - y * y) / np.where(r2 == 0, 1.0, r2))


def schwarz_mixed(x, y):
    """Its mixed partial away from the origin (the same in either order)."""
    x, y = f64(x), f64(y)
    return (x**6 + 9 * x**4 * y**2 - 9 * x**2 * y**4 - y**6) / (x * x + y * y) ** 3


def nested_limits(x, y, eps=1e-2, inner=1e-3):
    """d/dy (df/dx) and d/dx (df/dy) by nested central differences, the inner step
    ``inner * eps`` taken first, in float64."""
    k = eps * inner
    df_dx = lambda a, b: (schwarz(a + k, b) - schwarz(a - k, b)) / (2 * k)
    df_dy = lambda a, b: (schwarz(a, b + k) - schwarz(a, b - k)) / (2 * k)
    return (
        float((df_dx(x, y + eps) - df_dx(x, y - eps)) / (2 * eps)),
        float((df_dy(x + eps, y) - df_dy(x - eps, y)) / (2 * eps)),
    )


def check_conventions(ns: dict) -> None:
    point = f64(ns["point"])
    assert ns["bowl_grad"].dtype == jnp.float32
    close(ns["bowl_grad"], 2 * point, rtol=0, claim="grad (x^2 + y^2) = (2x, 2y)")
    close(ns["bowl_hess"], 2 * np.eye(2), rtol=0, claim="its Hessian 2I")
    # tr(A X): the gradient A^T, shaped like X; df = tr(A dX).
    A32, X23, dX23 = (f64(ns[k]) for k in ("A32", "X23", "dX23"))
    assert ns["G"].shape == X23.shape == (2, 3)
    close(ns["G"], A32.T, rtol=0, claim="grad tr(A X) = A^T")
    close(ns["G"], jax.grad(ns["trace_AX"])(ns["X23"]), rtol=0, claim="as jax.grad")
    close(ns["df_trace"], np.trace(A32 @ dX23), rtol=1e-5, claim="df = tr(A dX)")
    # The two layouts of the Jacobian of A x: JAX's jacrev (m x n) and its transpose.
    J = f64(jax.jacrev(ns["linear"])(ns["x2"]))
    assert ns["J_num"].shape == (3, 2) and ns["J_den"].shape == (2, 3)
    close(ns["J_num"], J, rtol=0)
    close(ns["J_den"], J.T, rtol=0)
    close(J, A32, rtol=0)
    for layout in ("numerator", "denominator"):
        close(ns["pair_J"][layout], [[1, 1], [1, -1]], rtol=0, claim="the lecture's example")
    assert "`layout` is required" in ns["layout_error"], ns["layout_error"]
    assert ns["column"].shape == (2, 1) and ns["row"].shape == (1, 2)
    # H = (J(grad f))^T for sum(sin(K x)) + |x|^4 / 4: H = -K^T diag(sin K x) K + |x|^2 I + 2 x x^T.
    K, x = f64(ns["K"]), f64(ns["x3"])
    H = -K.T @ np.diag(np.sin(K @ x)) @ K + (x @ x) * np.eye(3) + 2 * np.outer(x, x)
    close(ns["H"], H, rtol=1e-5, atol=1e-5, claim="the Hessian, closed form")
    close(ns["J_of_grad"].T, H, rtol=1e-5, atol=1e-5, claim="(J(grad f))^T")


def check_differentials(ns: dict) -> None:
    X, Y, A, B, dX, dY, dX1 = (f64(ns[k]) for k in ("X", "Y", "A", "B", "dX", "dY", "dX1"))
    alpha, phi, dphi = (float(ns[k]) for k in ("alpha", "phi", "dphi"))
    Xi = np.linalg.inv(X)
    assert np.linalg.det(X) > 0
    g = X @ X.T + A
    expected = {  # the lecture's rules, right-hand sides in float64
        "dA = 0": np.zeros((3, 3)),
        "d(alpha X) = alpha dX": alpha * dX,
        "d(A X B) = A (dX) B": A @ dX @ B,
        "d(X + Y) = dX + dY": dX + dY,
        "d(X^T) = (dX)^T": dX.T,
        "d(X Y) = (dX) Y + X (dY)": dX @ Y + X @ dY,
        "d<X, Y> = <dX, Y> + <X, dY>": np.sum(dX * Y + X * dY),
        "d(X / phi) = (phi dX - (dphi) X) / phi^2": (phi * dX - dphi * X) / phi**2,
        "d(det X) = det X <X^-T, dX>": np.linalg.det(X) * np.sum(Xi.T * dX),
        "d(tr X) = <I, dX>": np.trace(dX),
        "d F(g(X)) = (dF/dg) dg(X)": np.sum((1 - np.tanh(g) ** 2) * (dX @ X.T + X @ dX.T)),
        "d(X^-1) = -X^-1 (dX) X^-1": -Xi @ dX @ Xi,
        "d log det X = <X^-T, dX>": np.trace(Xi @ dX),
    }
    rules = ns["rules"]
    assert list(rules) == list(expected), "the lecture's rules, in its order, and d log det"
    for name, (lhs, _) in rules.items():
        assert jnp.asarray(lhs).dtype == jnp.float32, name
        scale = max(1.0, float(np.max(np.abs(expected[name]))))
        close(lhs, expected[name], rtol=0, atol=1e-5 * scale, claim=name)
    # The second differential of log det X: -tr(X^-1 dX X^-1 dX1), H_ijkl = -(X^-1)_jk (X^-1)_li.
    d2f = -np.trace(Xi @ dX @ Xi @ dX1)
    close([ns["d2f"], ns["by_hessian"]], [d2f, d2f], rtol=1e-5, claim="d^2 log det X")
    close(ns["H_log_det"], -np.einsum("jk,li->ijkl", Xi, Xi), rtol=0, atol=1e-6)

    # Figure 1: the remainders, in float64 here; slope 2 for the rules, 1 for the mistakes.
    ts = f64(ns["ts"])
    log_det = lambda M: np.linalg.slogdet(M)[1]
    candidates = {
        "log det X: <X^-T, dX> (the rule)": (log_det, np.sum(Xi.T * dX)),
        "log det X: <X^-1, dX> (transpose forgotten)": (log_det, np.sum(Xi * dX)),
        "X^-1: -X^-1 dX X^-1 (the rule)": (np.linalg.inv, -Xi @ dX @ Xi),
        "X^-1: -X^-2 dX (as if they commuted)": (np.linalg.inv, -Xi @ Xi @ dX),
    }
    assert list(ns["remainders"]) == list(candidates)
    slopes = []
    for name, (f, df) in candidates.items():
        r = np.array([np.max(np.abs(f(X + t * dX) - f(X) - t * df)) for t in ts])
        close(ns["remainders"][name], r, rtol=0.05, claim=f"float32 remainders: {name}")
        slopes.append(np.polyfit(np.log(ts[:5]), np.log(r[:5]), 1)[0])
        close(ns["slopes"][name], slopes[-1], rtol=0, atol=0.02, claim=name)
    assert np.all(np.abs(np.array(slopes) - [2, 1, 2, 1]) < 0.15), slopes
    panels = ns["fig1"].axes
    assert len(panels) == 2
    for ax, names in zip(panels, (list(candidates)[:2], list(candidates)[2:]), strict=True):
        for name in names:
            assert drew(ax, ts, ns["remainders"][name]), name


def check_examples(ns: dict) -> None:
    x, A, b = f64(ns["x"]), f64(ns["A"]), f64(ns["b"])
    c = float(ns["c"])
    # Example 1: (A + A^T) x - b, A + A^T; the lecture's 2 A x - b needs A symmetric.
    grad_1 = (A + A.T) @ x - b
    assert ns["grad_1"].text == "(A + A^T) x - b" and ns["hess_1"].text == "A + A^T"
    for g in (ns["grad_1"].evaluate(ns["x"], ns["A"], ns["b"], ns["c"]), ns["by_hand_1"]):
        close(g, grad_1, rtol=1e-5, atol=1e-6, claim="example 1's gradient")
    close(ns["hess_1"].evaluate(ns["x"], ns["A"], ns["b"], ns["c"]), A + A.T, rtol=1e-6)
    close(ns["ad_1"], jax.grad(ns["quadratic"])(ns["x"], ns["A"], ns["b"], ns["c"]), rtol=1e-6)
    assert np.max(np.abs(2 * A @ x - b - grad_1)) > 0.1, "2 A x - b is wrong for this A"
    sym = (A + A.T) / 2
    close(2 * sym @ x - b, grad_1, rtol=1e-12, claim="and right for its symmetric part")
    close(x @ A @ x - b @ x + c, x @ sym @ x - b @ x + c, rtol=1e-12)
    v1, v1s = ns["verdict_1"], ns["verdict_1_sym"]
    assert (v1.ok, v1.mistake, v1s.ok) == (False, "symmetrisation", True), (v1, v1s)
    assert "the lecture's 2 A x assumes A = A^T" in v1.message
    assert "`df` is not linear in `dx`" in ns["not_linear"], ns["not_linear"]
    assert "example 1" in mc.entry("lecture_quadratic").reference

    # Figure 2: points on x^T A x = 1; tangents by central differences of the
    # parametrisation (float64); (A + A^T) x is orthogonal to them, 2 A x is not.
    A2, thetas = f64(ns["A2"]), f64(ns["thetas"])

    def on_level_set(theta):
        u = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
        return u / np.sqrt(np.einsum("...i,ij,...j->...", u, A2, u))[..., None]

    points = on_level_set(thetas)
    tangents = (on_level_set(thetas + 1e-6) - on_level_set(thetas - 1e-6)) / 2e-6
    close(ns["level_points"], points, rtol=0, atol=1e-6)
    close(ns["level_tangents"], tangents, rtol=0, atol=1e-5)
    right, lecture = points @ (A2 + A2.T).T, 2 * points @ A2.T
    close(ns["right_arrows"], right, rtol=0, atol=1e-6)
    close(ns["lecture_arrows"], lecture, rtol=0, atol=1e-6)

    def cosines(arrows):
        dots = np.abs(np.sum(arrows * tangents, axis=1))
        return dots / (np.linalg.norm(arrows, axis=1) * np.linalg.norm(tangents, axis=1))

    assert cosines(right).max() < 1e-8 and cosines(lecture).max() > 0.9
    quivers = [q for q in ns["ax2"].collections if hasattr(q, "U")]
    assert len(quivers) == 2
    for quiver, arrows in zip(quivers, (right, lecture), strict=True):
        close(np.c_[quiver.U, quiver.V], arrows, rtol=0, atol=1e-6)

    # Example 2: ln <x, Ax>: (A + A^T) x / (x^T A x) at three matrices; the lecture's
    # 2 A x / (x^T A x) right at the two symmetric ones.
    spd, pd, indefinite = f64(ns["spd"]), f64(ns["pd"]), f64(ns["indefinite"])
    assert np.linalg.eigvalsh((pd + pd.T) / 2).min() > 0 and np.abs(pd - pd.T).max() > 0.1
    assert np.linalg.eigvalsh(spd).min() > 0 and np.linalg.eigvalsh(indefinite).min() < 0
    assert ns["grad_2"].text == "(A + A^T) x / (x^T A x)"
    assert list(ns["verdicts_2"]) == list(ns["cases_2"])
    for name, (at, matrix) in ns["cases_2"].items():
        xx, M = f64(at), f64(matrix)
        q, s = xx @ M @ xx, M + M.T
        assert q > 0, name
        grad, hess = s @ xx / q, s / q - np.outer(s @ xx, s @ xx) / q**2
        close(ns["grad_2"].evaluate(at, matrix), grad, rtol=1e-5, atol=1e-6, claim=name)
        close(ns["hess_2"].evaluate(at, matrix), hess, rtol=1e-5, atol=1e-5, claim=name)
        symmetric = np.array_equal(M, M.T)
        verdict = ns["verdicts_2"][name]
        assert verdict.ok == symmetric, (name, verdict)
        assert verdict.mistake == (None if symmetric else "symmetrisation"), (name, verdict)
        lecture = 2 * M @ xx / q
        assert (np.max(np.abs(lecture - grad)) < 1e-12) == symmetric, name

    # Example 3: <S, X> - log det X: S - X^-T; S - X^-1 is its transpose (S symmetric).
    X, S = f64(ns["X"]), f64(ns["S"])
    assert np.array_equal(S, S.T) and np.abs(X - X.T).max() > 0.1
    grad_3 = S - np.linalg.inv(X).T
    assert ns["grad_3"].text == "S - X^{-T}"
    for g in (ns["grad_3"].evaluate(ns["X"], ns["S"]), ns["by_hand_3"], ns["ad_3"]):
        close(g, grad_3, rtol=1e-5, atol=1e-6, claim="example 3's gradient")
    close(S - np.linalg.inv(X), grad_3.T, rtol=1e-12, claim="S - X^-1 is the transpose")
    Xi = np.linalg.inv(X)
    close(ns["ad_hess_3"], np.einsum("jk,li->ijkl", Xi, Xi), rtol=0, atol=1e-6)
    close(jax.hessian(ns["log_det"])(ns["X"], ns["S"]), np.einsum("jk,li->ijkl", Xi, Xi), 0, 1e-6)
    v3, v3s = ns["verdict_3"], ns["verdict_3_sym"]
    assert (v3.ok, v3.mistake, v3s.ok) == (False, "transpose", True), (v3, v3s)
    assert np.array_equal(f64(ns["X_spd"]), f64(ns["X_spd"]).T)
    assert "transpose of the gradient" in v3.message


def check_diagnoser(ns: dict) -> None:
    """The mistakes made are those named: each wrong formula recomputed here in NumPy from
    the true gradient (jax.grad), and the diagnoser's words."""
    X, S_any, A, B = (f64(ns[k]) for k in ("X", "S_any", "A", "B"))
    x, b = f64(ns["x"]), f64(ns["b"])
    Xi = np.linalg.inv(X)
    truths = {
        "transpose": A.T @ B.T,
        "sign": S_any - Xi.T,
        "factor_2": A.T @ (A @ x - b),
        "symmetrisation": (A + A.T) @ x - b,
    }
    made = {  # the mistake made on purpose, as a formula
        "transpose": B @ A,
        "sign": Xi.T - S_any,
        "factor_2": 2 * A.T @ (A @ x - b),
        "symmetrisation": 2 * A @ x - b,
    }
    for (what, f, right, mistake, at, constants), name in zip(ns["cases_4"], truths, strict=True):
        assert mistake == name, what
        close(jax.grad(f)(at, *constants), truths[name], rtol=1e-5, atol=1e-5, claim=what)
        wrong = mc.apply_mistake(mistake, right)(at, *constants)
        close(wrong, made[name], rtol=1e-5, atol=1e-5, claim=f"{what}: {mistake} made")
    found = ns["found"]
    assert list(found) == [*truths, "kronecker", "two at once"]
    assert [v.mistake for v in found.values()] == [*truths, "kronecker", None]
    assert not any(v.ok for v in found.values())
    words = {
        "transpose": "transpose of the gradient: a layout mistake",
        "sign": "minus the gradient",
        "factor_2": "twice the gradient",
        "symmetrisation": "missing symmetrisation",
        "kronecker": "Kronecker factors swapped",
        "two at once": "none of the usual mistakes",
    }
    for name, verdict in found.items():
        assert words[name] in verdict.message, (name, verdict.message)
    # The Kronecker swap of example 3's Hessian: H_ijkl -> H_jilk, a different tensor.
    H = np.einsum("jk,li->ijkl", Xi, Xi)
    assert np.abs(H.transpose(1, 0, 3, 2) - H).max() > 0.01
    close(ns["two_mistakes"](ns["X"], ns["S_any"]), -2 * truths["sign"], rtol=1e-5, atol=1e-6)


def check_schwarz(ns: dict) -> None:
    # The surface: f on a grid through the origin.
    sx, sy = f64(ns["sx"]), f64(ns["sy"])
    assert np.any((sx == 0) & (sy == 0)), "the origin is a grid point"
    close(ns["surface"], schwarz(sx, sy), rtol=0, atol=1e-6, claim="the surface")
    # AD's mixed partial on circles: cos 2t (1 + 2 sin^2 2t), whatever the radius, in
    # [-sqrt 2, sqrt 2]; +1 on the x axis, -1 on the y axis.
    angles = f64(ns["angles"])
    closed = np.cos(2 * angles) * (1 + 2 * np.sin(2 * angles) ** 2)
    for radius in ns["radii"]:
        close(schwarz_mixed(radius * np.cos(angles), radius * np.sin(angles)), closed, 1e-9, 1e-9)
        close(ns["mixed"][radius], closed, rtol=0, atol=1e-4, claim=f"radius {radius}")
        assert drew(ns["ax_mixed"], np.degrees(angles), ns["mixed"][radius]), radius
    assert np.min(ns["radii"]) <= 1e-4 and len(line_data(ns["ax_mixed"])) == 5
    assert abs(closed.max() - math.sqrt(2)) < 1e-3 and abs(closed.min() + math.sqrt(2)) < 1e-3
    assert ns["ax3d"].name == "3d"

    # The limits at the origin: -1 and +1, by nested differences in float64 written here.
    x_first, y_first = nested_limits(0.0, 0.0)
    close([x_first, y_first], [-1.0, 1.0], rtol=1e-5, claim="the limits, float64")
    at_origin = ns["at_origin"]
    close([at_origin.x_first, at_origin.y_first], [x_first, y_first], rtol=0, atol=1e-4)
    for h in (*ns["ad_at_origin"], jax.hessian(ns["schwarz"])(jnp.zeros(2))):
        close(h, np.zeros((2, 2)), rtol=0, claim="AD at the origin: the branch f = 0")
    t = f64(ns["on_axes"])
    close(ns["df_dx_on_y_axis"], -t, rtol=1e-6, claim="df/dx(0, y) = -y")
    close(ns["df_dy_on_x_axis"], t, rtol=1e-6, claim="df/dy(x, 0) = x")

    # Away from the origin: float64 nested differences agree with the closed form, both
    # orders; float32's, with the same steps, differ by tenths.
    table = ns["limits_table"]
    assert len(table) == 3
    for (px, py), (ad_mixed, in_32, in_64) in table.items():
        exact = float(schwarz_mixed(px, py))
        close(ad_mixed, exact, rtol=1e-5, claim=f"AD's mixed partial at {px, py}")
        close(in_64, nested_limits(px, py), rtol=0, atol=1e-8, claim="float64 differences")
        close(in_64, [exact, exact], rtol=0, atol=2e-3, claim="Schwarz, away from the origin")
        close(in_32, [exact, exact], rtol=0, atol=0.2, claim="float32: roundoff of tenths")
    worst_32 = max(abs(v[1][0] - v[1][1]) for v in table.values())
    assert 0.05 < worst_32 < 0.5, worst_32


def check(ns: dict) -> None:
    assert not jax.config.jax_enable_x64, "float64 only inside the Schwarz limits cell"
    assert ns["TOL"] == 1e-5
    check_conventions(ns)
    check_differentials(ns)
    check_examples(ns)
    check_diagnoser(ns)
    check_schwarz(ns)
    plt = ns["plt"]
    for fig in (ns["fig1"], ns["fig2"], ns["fig3"]):
        plt.close(fig)
