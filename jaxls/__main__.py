"""``python -m jaxls``: the library on the lecture's problems, end to end.

Prints, for each problem of `jaxls.zoo.INTERVAL`, the evaluations each exact search needs
to locate the minimiser to ``--tol`` and the error it reaches; the throughput of
golden-section search over many problems at once under ``jax.vmap``; Rosenbrock minimised
by steepest descent with exact line search and by L-BFGS with a Wolfe search, as optax
rules; and the lecture's automatic-differentiation example, node by node.

It runs in JAX's default configuration, float32, as most users do; ``--x64`` runs it in
float64 (inside `jax.enable_x64`), with tolerances that float64 resolves.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

import jaxls
from jaxls import zoo
from jaxls.optax import minimize, scale_by_line_search

METHODS = ("dichotomy", "golden_section", "fibonacci", "parabolic", "brent")


def problem_fun(index: ArrayLike) -> Callable[[jax.Array], jax.Array]:
    """Problem ``index`` of `jaxls.zoo.INTERVAL` as a function of data (a `lax.switch`), so
    that a search compiled once serves every problem."""
    branches = [problem.fun for problem in zoo.INTERVAL]
    return lambda x: jax.lax.switch(index, branches, x)


@functools.partial(jax.jit, static_argnames=("method", "tol", "budget"))
def solve(
    method: str,
    index: ArrayLike,
    lower: float | jax.Array,
    upper: float | jax.Array,
    tol: float,
    budget: int,
) -> jaxls.ScalarResult:
    """``method`` on problem ``index`` of the zoo, its bounds given as data: jitted once per
    method (Fibonacci: once per budget) for every problem, where eager calls of the searches
    compiled each search's loop again for each problem's function."""
    fun = problem_fun(index)
    if method == "fibonacci":  # the fixed budget golden section needed
        return jaxls.fibonacci(fun, lower, upper, fixed_evals=budget)
    search = getattr(jaxls, method)
    return search(fun, lower, upper, tol=tol, max_evals=500)


def run(method: str, index: int, tol: float, budget: int) -> jaxls.ScalarResult:
    """``method`` on problem ``index`` of the zoo (``budget``: Fibonacci's evaluations)."""
    problem = zoo.INTERVAL[index]
    budget = budget if method == "fibonacci" else 0  # not part of the others' cache key
    return solve(method, index, problem.lower, problem.upper, tol=tol, budget=budget)


def comparison(tol: float) -> str:
    head = f"{'problem':<15}" + "".join(f"{m:>22}" for m in METHODS)
    lines = [
        f"Evaluations and |x - x*| to tol = {tol:g} (fibonacci: golden's budget; "
        "~: stopped with ROUNDING where values tie at rounding level, !: failed)",
        head,
        "-" * len(head),
    ]
    totals = dict.fromkeys(METHODS, 0)
    for index, problem in enumerate(zoo.INTERVAL):
        golden = run("golden_section", index, tol, 0)
        cells = []
        for method in METHODS:
            res = (
                golden
                if method == "golden_section"
                else run(method, index, tol, int(golden.num_evals))
            )
            rounding = int(res.status) == jaxls.Status.ROUNDING
            flag = "" if bool(res.converged) else ("~" if rounding else "!")
            totals[method] += int(res.num_evals)
            error = abs(float(res.x) - problem.xmin)
            cells.append(f"{int(res.num_evals):>5d}{flag:1} {error:9.1e}      ")
        lines.append(f"{problem.name:<15}" + "".join(f"{c:>22}" for c in cells))
    lines.append(f"{'total':<15}" + "".join(f"{totals[m]:>6d}{'':16}" for m in METHODS))
    return "\n".join(lines)


def throughput(n: int, tol: float) -> str:
    centres = jnp.asarray(np.random.default_rng(0).uniform(1.0, 5.0, n))

    @jax.jit
    @jax.vmap
    def solve(c: jax.Array) -> jaxls.ScalarResult:
        fun = lambda x: zoo.lecture(x * (2.0 * np.sqrt(2.0) / c))
        return jaxls.golden_section(fun, 0.0, 6.0, tol=tol)

    jax.block_until_ready(solve(centres))
    start = time.perf_counter()
    res = jax.block_until_ready(solve(centres))
    elapsed = time.perf_counter() - start
    error = float(jnp.max(jnp.abs(res.x - centres)))
    return (
        f"golden_section under vmap: {n:,} problems in {elapsed:.3f} s = "
        f"{n / elapsed:,.0f} problems/s on {jax.devices()[0].platform}, max error {error:.1e}"
    )


def training(tol: float, line_tol: float) -> str:
    rosenbrock = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    x0 = jnp.array([-1.2, 1.0])
    rules = {
        "steepest descent + golden section": optax.chain(
            optax.sgd(1.0),
            scale_by_line_search(jaxls.golden_section, step_max=1.0, options={"tol": line_tol}),
        ),
        "L-BFGS + strong Wolfe": optax.lbfgs(linesearch=scale_by_line_search(jaxls.wolfe)),
    }
    lines = [f"Rosenbrock from (-1.2, 1) to ||grad|| <= {tol:g}, jaxls searches as optax rules:"]
    for name, opt in rules.items():
        run = lambda x, opt=opt: minimize(rosenbrock, x, opt, max_iterations=20_000, grad_tol=tol)
        res = jax.jit(run)(x0)
        lines.append(
            f"  {name:<35} iterations {int(res.num_iterations):>6,}  "
            f"evaluations {int(res.num_evals):>7,}"
            f"  x = {np.round(np.asarray(res.params), 6)}  {jaxls.Status(int(res.status)).name}"
        )
    return "\n".join(lines)


def differentiation() -> str:
    # L = w2 log w1 + sqrt(w2 log w1), the shared node written once
    def lecture(w1: jax.Array, w2: jax.Array) -> jax.Array:
        v2 = w2 * jnp.log(w1)
        return v2 + jnp.sqrt(v2)

    graph = jaxls.ad.trace(lecture, 2.0, 5.0, tangents=(1.0, 0.0))
    ours = [float(g) for g in jaxls.ad.grad(lecture, argnums=(0, 1))(2.0, 5.0)]
    theirs = [float(g) for g in jax.jit(jax.grad(lecture, argnums=(0, 1)))(2.0, 5.0)]
    return (
        "L(w1, w2) = w2 log w1 + sqrt(w2 log w1) at (2, 5), forward mode seeded with dw1 = 1,"
        f" reverse mode with dL = 1 (jaxls.ad):\n{graph}\n"
        f"jaxls.ad.grad {np.round(ours, 9)}   jax.grad {np.round(theirs, 9)}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxls", description=__doc__)
    parser.add_argument(
        "--tol", type=float, default=None, help="interval tolerance (1e-2; 1e-6 with --x64)"
    )
    parser.add_argument("--problems", type=int, default=100_000, help="vmap batch size")
    parser.add_argument("--x64", action="store_true", help="float64 instead of float32")
    args = parser.parse_args(argv)
    context = jax.enable_x64(True) if args.x64 else contextlib.nullcontext()
    with context:
        dtype = jnp.zeros(()).dtype
        # Values locate a smooth minimiser only to ~sqrt(eps) |x*|, and the searches report
        # ROUNDING below that: ~2e-3 on the zoo in float32, ~1e-7 in float64.
        tol = args.tol if args.tol is not None else (1e-6 if args.x64 else 1e-2)
        print(f"jaxls {jaxls.__version__}, jax {jax.__version__}, {dtype}\n")
        print(comparison(tol))
        print("\n" + throughput(args.problems, tol))
        print("\n" + training(*((1e-6, 1e-9) if args.x64 else (1e-4, 1e-5))))
        print("\n" + differentiation())
    print("\nbenchmarks/*.py compare with scipy, optax, jaxopt and jax; see benchmarks/README.md.")


if __name__ == "__main__":
    main()
