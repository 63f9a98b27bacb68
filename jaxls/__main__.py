"""``python -m jaxls``: compare the exact line searches on the lecture's problems.

Prints, for each problem of `jaxls.zoo.INTERVAL`, the evaluations each search needs to
locate the minimiser to ``--tol`` and the error it reaches, then the throughput of
golden-section search over many problems at once under ``jax.vmap``.
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np

import jaxls
from jaxls import zoo

METHODS = ("dichotomy", "golden_section", "fibonacci", "parabolic", "brent")


def run(method: str, problem: zoo.IntervalProblem, tol: float, budget: int):
    if method == "fibonacci":  # the fixed budget golden section needed
        return jaxls.fibonacci(problem.fun, problem.lower, problem.upper, num_evals=budget)
    search = getattr(jaxls, method)
    return search(problem.fun, problem.lower, problem.upper, tol=tol, max_evals=500)


def comparison(tol: float) -> str:
    head = f"{'problem':<15}" + "".join(f"{m:>22}" for m in METHODS)
    lines = [
        f"Evaluations and |x - x*| to tol = {tol:g} (fibonacci: golden's budget)",
        head,
        "-" * len(head),
    ]
    totals = dict.fromkeys(METHODS, 0)
    for problem in zoo.INTERVAL:
        golden = run("golden_section", problem, tol, 0)
        cells = []
        for method in METHODS:
            res = (
                golden
                if method == "golden_section"
                else run(method, problem, tol, int(golden.num_evals))
            )
            flag = "" if bool(res.converged) else "!"
            totals[method] += int(res.num_evals)
            error = abs(float(res.x) - problem.xmin)
            cells.append(f"{int(res.num_evals):>5d}{flag:1} {error:9.1e}      ")
        lines.append(f"{problem.name:<15}" + "".join(f"{c:>22}" for c in cells))
    lines.append(f"{'total':<15}" + "".join(f"{totals[m]:>6d}{'':16}" for m in METHODS))
    return "\n".join(lines)


def throughput(n: int) -> str:
    centres = jnp.asarray(np.random.default_rng(0).uniform(1.0, 5.0, n))

    @jax.jit
    @jax.vmap
    def solve(c):
        fun = lambda x: zoo.lecture(x * (2.0 * np.sqrt(2.0) / c))
        return jaxls.golden_section(fun, 0.0, 6.0, tol=1e-6)

    jax.block_until_ready(solve(centres))
    start = time.perf_counter()
    res = jax.block_until_ready(solve(centres))
    elapsed = time.perf_counter() - start
    error = float(jnp.max(jnp.abs(res.x - centres)))
    return (
        f"golden_section under vmap: {n:,} problems in {elapsed:.3f} s = "
        f"{n / elapsed:,.0f} problems/s on {jax.devices()[0].platform}, max error {error:.1e}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxls", description=__doc__)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--problems", type=int, default=100_000, help="vmap batch size")
    args = parser.parse_args(argv)
    print(f"jaxls {jaxls.__version__}, jax {jax.__version__}\n")
    print(comparison(args.tol))
    print("\n" + throughput(args.problems))
    print("\nbenchmarks/exact.py compares with scipy; see benchmarks/README.md.")


if __name__ == "__main__":
    main()
