"""Differentiating through an optimisation: bilevel tuning of a regularisation (issue 13).

    PYTHONPATH=. python3 benchmarks/bilevel.py                  # float32 (about a minute)
    PYTHONPATH=. python3 benchmarks/bilevel.py --quick          # a smoke run (10 s, compiling)
    PYTHONPATH=. python3 benchmarks/bilevel.py --dtype float64  # enables jax_enable_x64

(float32 is JAX's default; ``--dtype float64`` sets ``jax_enable_x64`` in this script, only
then. ``--quick``: 50 features, 250 + 250 rows, unrolled GD K = 100 only, no unrolled
L-BFGS, no solve-only timing, 10 outer steps.)

The problem: L2-regularised logistic regression on synthetic data (``--features`` = 200
standard normal features; labels ``1[x^T w_true + noise > 0]``, ``w_true ~ N(0, 9/d)``, unit
noise; ``--train`` = 1000 training and ``--val`` = 1000 validation rows, seed 0). The inner
problem, ``w*(theta) = argmin_w mean softplus(X w) - y X w + exp(theta) |w|^2 / 2``, is
solved from ``w = 0`` to ``|grad| <= --grad-tol`` (1e-6 in float32, 1e-9 in float64) by
the implicit methods; the outer problem minimises the validation loss (the same mean
logistic loss, unregularised) over ``theta = log(lambda)`` by gradient descent, from
``theta = 0`` (lambda = 1, over-regularised), ``--outer-steps`` = 25 steps of learning rate
``--outer-lr`` = 10. Data are arguments of the jitted functions, not constants in them.

The hypergradient ``d val_loss(w*(theta)) / d theta``, by each method:

* ``jaxls implicit``: `jax.grad` of the validation loss of
  ``jaxls.optax.minimize(inner, 0, optax.lbfgs(), grad_tol=..., max_iterations=500).params``:
  the implicit function theorem, CG with Hessian-vector products (its defaults:
  ``cg_tol = eps ** 0.75``, at most twice the number of unknowns);
* ``unrolled GD K``: `jax.grad` through ``K`` steps of gradient descent with the step
  ``1 / (lambda_max(X^T X) / (4 n) + lambda)`` (the inverse of a bound on the Hessian) in a
  `lax.scan`, which stores every step for the backward sweep (``K`` = 100 and 500);
* ``unrolled L-BFGS K``: the same through ``K`` steps of ``optax.lbfgs(learning_rate=1,
  linesearch=None)`` (optax's zoom search is a `lax.while_loop`, which `jax.grad` cannot
  differentiate, so the unrolled L-BFGS takes unit steps);
* ``jaxopt LBFGS``: `jax.grad` through ``jaxopt.LBFGS(fun=inner, tol=grad_tol, maxiter=500,
  implicit_diff=True).run(...)``: jaxopt's own L-BFGS (zoom) and its implicit
  differentiation with its default linear solver (``solve_normal_cg``: CG on ``H^T H``) and,
  second row, with ``implicit_diff_solve=jaxopt.linear_solve.solve_cg``.

Measured for each, at ``theta = 0`` (the start) and ``theta = -4`` (near the validation
optimum, -4.04): the hypergradient; its relative difference to jaxls's and to a float64
reference (central finite difference, step 1e-4, of the validation loss at the inner problem
re-solved by Newton's method in NumPy to ``|grad| <= 1e-13``; the script checks it against
the implicit-function formula in NumPy too); the inner iterations and the norm of the inner
gradient at the returned ``w`` (recomputed in float64); the run time of the jitted
``value_and_grad`` (compiled, called once, then the methods called alternately, each call
to ``block_until_ready``; the median over up to ``--repeats`` rounds) and of the value alone
(the solve, no derivative); XLA's temporary memory of the compiled ``value_and_grad``
(``jax.jit(f).lower(*args).compile().memory_analysis().temp_size_in_bytes``: the buffers
besides arguments and outputs, where the unrolled scans keep their tapes; "n/a" where a
backend's ``memory_analysis()`` returns None); its compile time. Then each method's own
outer loop: its time (the compiled hypergradient called ``--outer-steps`` times from Python,
each step waiting for the last; the methods in turn, the median of 5 loops), the final
``lambda`` and the validation loss there (NumPy's float64 re-solve, the same measure for
every method), against the same loop run in NumPy float64 with the exact hypergradient.
Ratios are to jaxls implicit, measured in the same run.

The unrolled L-BFGS's hypergradient is NaN, for every ``K`` (``K = 1`` too): at its first
step optax's ``scale_by_lbfgs`` holds no curvature pair (``s = y = 0``) and computes
``jnp.where(s^T y == 0, 0, 1 / s^T y)`` (and ``s^T y / |y|^2``, likewise guarded), whose
derivative is NaN (JAX differentiates the branch not taken: ``0 * inf``). Its row is kept to
show that unrolling is no drop-in alternative for the L-BFGS that the implicit methods run;
the unrolled baseline is GD.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from benchmarks.machine import print_header, time_alternately


class Config(NamedTuple):
    features: int
    train: int
    val: int
    outer_steps: int
    outer_lr: float
    outer_rounds: int
    unrolled_gd: tuple[int, ...]
    unrolled_lbfgs: tuple[int, ...]
    thetas: tuple[float, ...]
    repeats: int
    budget_s: float
    grad_tol: float
    max_iterations: int


# --------------------------------------------------------------------------- the problem


def make_data(features: int, train: int, val: int, seed: int = 0):
    """Float64 NumPy ``(X_train, y_train, X_val, y_val)``."""
    rng = np.random.default_rng(seed)
    w_true = 3.0 * rng.normal(size=features) / np.sqrt(features)
    x = rng.normal(size=(train + val, features))
    y = (x @ w_true + rng.normal(size=train + val) > 0).astype(np.float64)
    return x[:train], y[:train], x[train:], y[train:]


def np_loss(w, x, y) -> float:
    z = x @ w
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def np_solve(theta: float, x, y, tol: float = 1e-13):
    """``(w*, H)`` by Newton's method in float64 (the inner problem is strongly convex)."""
    n, d = x.shape
    lam = math.exp(theta)
    w = np.zeros(d)
    for _ in range(100):
        s = 1.0 / (1.0 + np.exp(-(x @ w)))
        g = x.T @ (s - y) / n + lam * w
        h = (x.T * (s * (1.0 - s))) @ x / n + lam * np.eye(d)
        if np.linalg.norm(g) <= tol:
            return w, h
        w = w - np.linalg.solve(h, g)
    raise RuntimeError(f"Newton did not converge at theta = {theta}")


def np_inner_grad_norm(w, theta: float, data) -> float:
    xt, yt = data[:2]
    s = 1.0 / (1.0 + np.exp(-(xt @ w)))
    return float(np.linalg.norm(xt.T @ (s - yt) / len(yt) + math.exp(theta) * w))


def np_val_loss(theta: float, data) -> float:
    xt, yt, xv, yv = data
    return np_loss(np_solve(theta, xt, yt)[0], xv, yv)


def np_hypergradient(theta: float, data, fd_step: float = 1e-4) -> tuple[float, float]:
    """``(central finite difference, implicit-function formula)`` in float64."""
    xt, yt, xv, yv = data
    fd = (np_val_loss(theta + fd_step, data) - np_val_loss(theta - fd_step, data)) / (2 * fd_step)
    w, h = np_solve(theta, xt, yt)
    s = 1.0 / (1.0 + np.exp(-(xv @ w)))
    grad_val = xv.T @ (s - yv) / len(yv)
    exact = float(grad_val @ -np.linalg.solve(h, math.exp(theta) * w))
    return float(fd), exact


# --------------------------------------------------------------------------- the methods


class Method(NamedTuple):
    name: str
    solve: Callable  # (theta, xt, yt) -> (inner solution w, inner iterations)


def build_methods(cfg: Config, lipschitz: float) -> list[Method]:
    import jax
    import jax.numpy as jnp
    import jaxopt
    import optax
    from jax import lax

    import jaxls

    def inner(w, theta, x, y):
        return logistic_loss(w, x, y) + 0.5 * jnp.exp(theta) * jnp.sum(w**2)

    def start(x):
        return jnp.zeros(x.shape[1], x.dtype)

    def jaxls_solve(theta, xt, yt):
        res = jaxls.optax.minimize(
            lambda w: inner(w, theta, xt, yt),
            start(xt),
            optax.lbfgs(),
            max_iterations=cfg.max_iterations,
            grad_tol=cfg.grad_tol,
        )
        return res.params, res.num_iterations

    def gd_method(k: int) -> Method:
        def solve(theta, xt, yt):
            step = 1.0 / (lipschitz + jnp.exp(theta))
            body = lambda w, _: (w - step * jax.grad(inner)(w, theta, xt, yt), None)
            return lax.scan(body, start(xt), length=k)[0], jnp.int32(k)

        return Method(f"unrolled GD K={k}", solve)

    def lbfgs_method(k: int) -> Method:
        opt = optax.lbfgs(learning_rate=1.0, linesearch=None)

        def solve(theta, xt, yt):
            def body(carry, _):
                w, state = carry
                updates, state = opt.update(jax.grad(inner)(w, theta, xt, yt), state, w)
                return (optax.apply_updates(w, updates), state), None

            w0 = start(xt)
            return lax.scan(body, (w0, opt.init(w0)), length=k)[0][0], jnp.int32(k)

        return Method(f"unrolled L-BFGS K={k}", solve)

    def jaxopt_method(name: str, linear_solve) -> Method:
        extra: dict[str, Any] = {}
        if linear_solve is not None:
            extra["implicit_diff_solve"] = linear_solve
        solver = jaxopt.LBFGS(
            fun=inner, tol=cfg.grad_tol, maxiter=cfg.max_iterations, implicit_diff=True, **extra
        )

        def solve(theta, xt, yt):
            params, state = solver.run(start(xt), theta, xt, yt)
            return params, state.iter_num

        return Method(name, solve)

    return [
        Method("jaxls implicit", jaxls_solve),
        *(gd_method(k) for k in cfg.unrolled_gd),
        *(lbfgs_method(k) for k in cfg.unrolled_lbfgs),
        jaxopt_method("jaxopt LBFGS (normal CG)", None),
        jaxopt_method("jaxopt LBFGS (CG)", jaxopt.linear_solve.solve_cg),
    ]


def logistic_loss(w, x, y):
    import jax
    import jax.numpy as jnp

    z = x @ w
    return jnp.mean(jax.nn.softplus(z) - y * z)


def validation_loss(solve: Callable) -> Callable:
    """``(theta, xt, yt, xv, yv) -> (validation loss, (w, iterations))`` (``has_aux``)."""

    def fun(theta, xt, yt, xv, yv):
        w, iterations = solve(theta, xt, yt)
        return logistic_loss(w, xv, yv), (w, iterations)

    return fun


# --------------------------------------------------------------------------- measuring


class Compiled(NamedTuple):
    name: str
    grad: Any  # value_and_grad of the validation loss in theta, compiled (aux: w, iterations)
    value: Any  # the validation loss alone (the solve, no derivative), compiled; or None
    compile_s: float  # of `grad`
    temp_bytes: int | None  # of `grad`


def compile_methods(methods: list[Method], args: tuple, solve_only: bool) -> list[Compiled]:
    """Each method compiled once, ``theta`` an argument: the same programs serve every
    point and the outer loops."""
    import jax

    theta = jax.numpy.asarray(0.0, args[0].dtype)
    out = []
    for m in methods:
        print(f"compiling {m.name} ...", file=sys.stderr)
        begin = time.perf_counter()
        fun = validation_loss(m.solve)
        grad = jax.jit(jax.value_and_grad(fun, has_aux=True)).lower(theta, *args).compile()
        compile_s = time.perf_counter() - begin
        value = jax.jit(fun).lower(theta, *args).compile() if solve_only else None
        analysis = grad.memory_analysis()
        temp = None if analysis is None else int(analysis.temp_size_in_bytes)
        out.append(Compiled(m.name, grad, value, compile_s, temp))
    return out


class Row(NamedTuple):
    theta: float
    method: Compiled
    hypergradient: float
    iterations: int
    inner_grad_norm: float
    run_s: float
    solve_s: float | None


def measure_point(
    theta: float, compiled: list[Compiled], args: tuple, cfg: Config, np_data
) -> list[Row]:
    import jax

    full = (jax.numpy.asarray(theta, args[0].dtype), *args)
    outs = [jax.block_until_ready(c.grad(*full)) for c in compiled]  # warm-up, and results
    calls = [[c.grad] + ([] if c.value is None else [c.value]) for c in compiled]
    for c in compiled:
        if c.value is not None:
            jax.block_until_ready(c.value(*full))
    flat = time_alternately([f for funs in calls for f in funs], full, cfg.repeats, cfg.budget_s)
    regroup = iter(flat)
    times = [[next(regroup) for _ in funs] for funs in calls]
    rows = []
    for c, ((_, (w, iterations)), hypergradient), per in zip(compiled, outs, times, strict=True):
        rows.append(
            Row(
                theta,
                c,
                float(hypergradient),
                int(iterations),
                np_inner_grad_norm(np.asarray(w, np.float64), theta, np_data),
                statistics.median(per[0]),
                statistics.median(per[1]) if len(per) > 1 else None,
            )
        )
    return rows


class Outer(NamedTuple):
    method: str
    loop_s: float | None
    theta: float
    val_loss: float
    note: str = ""


def outer_loop(hypergradient: Callable[[float], float], cfg: Config) -> float:
    theta = 0.0
    for _ in range(cfg.outer_steps):
        theta -= cfg.outer_lr * hypergradient(theta)
    return theta


def measure_outer(compiled: list[Compiled], args: tuple, cfg: Config, np_data) -> list[Outer]:
    """Each method's outer loop, the methods in turn, ``cfg.outer_rounds`` rounds (the
    median loop time); a method whose first hypergradient is NaN is not run."""
    import jax

    dtype = args[0].dtype

    def hypergradient_of(c: Compiled) -> Callable[[float], float]:
        def hypergradient(theta: float) -> float:
            g = c.grad(jax.numpy.asarray(theta, dtype), *args)[1]
            return float(g)  # a host transfer: each step waits for the last

        return hypergradient

    funs = [hypergradient_of(c) for c in compiled]
    runs = [math.isfinite(f(0.0)) for f in funs]
    times: list[list[float]] = [[] for _ in compiled]
    final = [math.nan for _ in compiled]
    for _ in range(cfg.outer_rounds):
        for i, f in enumerate(funs):
            if runs[i]:
                begin = time.perf_counter()
                final[i] = outer_loop(f, cfg)
                times[i].append(time.perf_counter() - begin)
    results = []
    for c, run, ts, theta in zip(compiled, runs, times, final, strict=True):
        if not run:
            results.append(Outer(c.name, None, math.nan, math.nan, "hypergradient NaN"))
        elif not math.isfinite(theta):
            results.append(Outer(c.name, statistics.median(ts), theta, math.nan, "diverged"))
        else:
            loss = np_val_loss(theta, np_data)
            results.append(Outer(c.name, statistics.median(ts), theta, loss))
    theta = outer_loop(lambda t: np_hypergradient(t, np_data)[1], cfg)
    results.append(
        Outer(
            "float64 reference (NumPy, exact hypergradient)",
            None,
            theta,
            np_val_loss(theta, np_data),
        )
    )
    return results


# --------------------------------------------------------------------------- printing


def fmt_bytes(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 1e3:.4g}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.3g}"


def rel(a: float, b: float) -> str:
    return "NaN" if not math.isfinite(a) else f"{abs(a - b) / abs(b):.1e}"


def print_points(rows: list[Row], refs: dict[float, float], jaxls_name: str) -> None:
    print(
        "| log lambda | method | hypergradient | rel. diff to jaxls | rel. diff to float64 FD | "
        "inner iterations | inner grad norm | time (ms) | time ratio | solve only (ms) | "
        "temp memory (KB) | memory ratio | compile (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for theta in refs:
        base = next(r for r in rows if r.theta == theta and r.method.name == jaxls_name)
        print(
            f"| {theta:g} | float64 reference (finite difference) | {refs[theta]:.6g} | "
            "| | | | | | | | | |"
        )
        for r in (r for r in rows if r.theta == theta):
            m, b = r.method, base.method
            solve = "" if r.solve_s is None else f"{r.solve_s * 1e3:.3g}"
            print(
                f"| {r.theta:g} | {m.name} | {r.hypergradient:.6g} | "
                f"{rel(r.hypergradient, base.hypergradient)} | {rel(r.hypergradient, refs[theta])}"
                f" | {r.iterations} | {r.inner_grad_norm:.1e} | {r.run_s * 1e3:.3g} | "
                f"{ratio(r.run_s, base.run_s)} | {solve} | "
                f"{fmt_bytes(m.temp_bytes)} | {ratio(m.temp_bytes, b.temp_bytes)} | "
                f"{m.compile_s:.2f} |"
            )


def print_outer(results: list[Outer], jaxls_name: str, cfg: Config) -> None:
    base = next(o for o in results if o.method == jaxls_name)
    print(
        f"| method | outer loop, {cfg.outer_steps} hypergradients (ms) | time ratio | "
        "final log lambda | final lambda | validation loss (float64) |"
    )
    print("|---|---|---|---|---|---|")
    for o in results:
        loop = "" if o.loop_s is None else f"{o.loop_s * 1e3:.4g}"
        val = f"{o.val_loss:.6f}" if math.isfinite(o.val_loss) else o.note
        note = f" ({o.note})" if o.note and math.isfinite(o.val_loss) else ""
        print(
            f"| {o.method}{note} | {loop} | {ratio(o.loop_s, base.loop_s)} | {o.theta:.4f} | "
            f"{math.exp(o.theta) if math.isfinite(o.theta) else math.nan:.4g} | {val} |"
        )


# --------------------------------------------------------------------------- main


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small problem, about 10 s")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--features", type=int, default=None)
    parser.add_argument("--train", type=int, default=None)
    parser.add_argument("--val", type=int, default=None)
    parser.add_argument("--outer-steps", type=int, default=None)
    parser.add_argument("--outer-lr", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (max)")
    parser.add_argument(
        "--grad-tol", type=float, default=None, help="inner tolerance (1e-6 / 1e-9 by dtype)"
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)  # only in this script, only when asked
    import jax.numpy as jnp

    quick = args.quick
    cfg = Config(
        features=args.features or (50 if quick else 200),
        train=args.train or (250 if quick else 1000),
        val=args.val or (250 if quick else 1000),
        outer_steps=args.outer_steps or (10 if quick else 25),
        outer_lr=args.outer_lr,
        outer_rounds=2 if quick else 5,
        unrolled_gd=(100,) if quick else (100, 500),
        unrolled_lbfgs=() if quick else (100,),
        thetas=(0.0, -4.0),
        repeats=args.repeats or (3 if quick else 30),
        budget_s=0.2 if quick else 4.0,
        grad_tol=args.grad_tol or (1e-6 if args.dtype == "float32" else 1e-9),
        max_iterations=500,
    )

    given = sys.argv[1:] if argv is None else argv
    print_header(" ".join(["PYTHONPATH=. python3 benchmarks/bilevel.py", *given]))
    print(
        f"problem: logistic regression, {cfg.features} features, {cfg.train} train / {cfg.val} "
        f"validation rows, {args.dtype}"
        + (" (jax_enable_x64 set by this script)" if args.dtype == "float64" else "")
        + f"; inner grad_tol {cfg.grad_tol:g} (jaxls, jaxopt), at most {cfg.max_iterations} "
        f"iterations; outer: {cfg.outer_steps} steps of gradient descent on log lambda, "
        f"learning rate {cfg.outer_lr:g}, from log lambda = 0"
    )
    print(
        f"time: median of up to {cfg.repeats} jitted calls after warm-up (methods alternately); "
        "memory: compiled value_and_grad's memory_analysis().temp_size_in_bytes"
    )
    print()

    np_data = make_data(cfg.features, cfg.train, cfg.val)
    dtype = jnp.float64 if args.dtype == "float64" else jnp.float32
    data = tuple(jnp.asarray(a, dtype) for a in np_data)
    np_data = tuple(np.asarray(a, np.float64) for a in data)  # what the JAX runs see
    xt = np_data[0]
    lipschitz = float(np.linalg.eigvalsh(xt.T @ xt / len(xt))[-1]) / 4
    methods = build_methods(cfg, lipschitz)
    jaxls_name = methods[0].name

    refs, agreement = {}, []
    for theta in cfg.thetas:
        fd, exact = np_hypergradient(theta, np_data)
        agreement.append(abs(fd - exact) / abs(exact))
        assert agreement[-1] <= 1e-6, (theta, fd, exact)
        refs[theta] = fd
    print(
        "float64 reference: central finite difference (step 1e-4) of the validation loss at the "
        "inner problem re-solved by Newton's method in NumPy; it agrees with the implicit-"
        f"function formula in NumPy to {max(agreement):.0e} (relative)\n"
    )
    compiled = compile_methods(methods, data, solve_only=not quick)
    if any(c.temp_bytes is None for c in compiled):
        print("memory_analysis() returned None on this backend: memory not measured (n/a)\n")
    rows = []
    for theta in cfg.thetas:
        print(f"log lambda = {theta:g} ...", file=sys.stderr)
        rows += measure_point(theta, compiled, data, cfg, np_data)
    print("### Per hypergradient\n")
    print_points(rows, refs, jaxls_name)
    print()
    print("outer loops ...", file=sys.stderr)
    outer = measure_outer(compiled, data, cfg, np_data)
    print(f"### Outer loop: {cfg.outer_steps} steps of gradient descent on log lambda\n")
    print_outer(outer, jaxls_name, cfg)


if __name__ == "__main__":
    main()
