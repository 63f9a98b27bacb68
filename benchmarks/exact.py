"""Exact line searches: jaxls against scipy, measured in one run.

    python benchmarks/exact.py                     # CPU, float64, N up to 10^6
    python benchmarks/exact.py --dtype float32 --sizes 1 100 10000 1000000 100000000  # GPU

Part 1 prints evaluations and the error |x - x*| reached on every problem of
`jaxls.zoo.INTERVAL`, for each jaxls search and scipy's golden, brent and bounded, at equal
termination tests (below), and how many evaluations scipy made outside the interval.

Part 2 prints throughput (problems per second) for N problems solved at once under
``jax.vmap`` (jitted, compile excluded, best of 3) against a Python loop over scipy's
``minimize_scalar`` (measured on up to 2,000 problems: its cost per problem is constant),
and the ratio. The family is the lecture's Figure 18 function stretched so its minimiser is
``c ~ U(1, 5)`` on ``[0, 6]``, solved to ``|x - x*| <= 1e-6``.

Equal termination tests: jaxls stops when ``max(x - lower, upper - x) <= tol``. scipy's
bounded search (fminbound) stops when ``max(x - a, b - x) <= 2 (sqrt(eps) |x| + xatol / 3)``,
so ``xatol = 1.5 tol`` is the same test up to its relative term; scipy's golden and brent
take a relative ``xtol``/``tol`` and a bracket, not bounds, and are run with
``tol = tol_abs / |x*|``.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import jax

# float64: scipy's minimize_scalar, the reference, works in float64 (--dtype float32 for
# the throughput rows in JAX's default precision).
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np
import scipy.optimize

import jaxls
from jaxls import zoo

JAXLS = ("dichotomy", "golden_section", "parabolic", "brent")
SHIFT = 2.0 * math.sqrt(2.0)


def scipy_run(method: str, problem: zoo.IntervalProblem, tol: float):
    """(x, evaluations, evaluations outside the interval) of one scipy run."""
    outside = 0

    def f(t):
        nonlocal outside
        outside += not problem.lower <= t <= problem.upper
        return float(problem.fun(t))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            if method == "bounded":
                res = scipy.optimize.minimize_scalar(
                    f,
                    bounds=(problem.lower, problem.upper),
                    method="bounded",
                    options={"xatol": 1.5 * tol},
                )
            else:
                res = scipy.optimize.minimize_scalar(
                    f,
                    bracket=(problem.lower, problem.upper),
                    method=method,
                    options={"xtol": tol / max(abs(problem.xmin), 1.0)},
                )
        except RuntimeError:  # no bracket found
            return math.nan, math.nan, outside
    return float(res.x), int(res.nfev), outside


def evaluations(tol: float) -> None:
    columns = [*list(JAXLS), "fibonacci*", "scipy golden", "scipy brent", "scipy bounded"]
    print(f"\n## Evaluations and error |x - x*| at tol = {tol:g}")
    print(
        "(fibonacci*: fixed budget = golden's count; [k] = scipy evaluations outside the "
        "interval; ! = not converged)\n"
    )
    print("| problem | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    totals = {c: [] for c in columns}
    errors = {c: [] for c in columns}
    for problem in zoo.INTERVAL:
        cells = []
        golden_evals = None
        for name in JAXLS:
            res = getattr(jaxls, name)(
                problem.fun, problem.lower, problem.upper, tol=tol, max_evals=500
            )
            if name == "golden_section":
                golden_evals = int(res.num_evals)
            err = abs(float(res.x) - problem.xmin)
            flag = "" if bool(res.converged) else "!"
            cells.append(f"{int(res.num_evals)}{flag} ({err:.0e})")
            totals[name].append(int(res.num_evals))
            errors[name].append(err)
        res = jaxls.fibonacci(problem.fun, problem.lower, problem.upper, fixed_evals=golden_evals)
        err = abs(float(res.x) - problem.xmin)
        cells.append(f"{golden_evals} ({err:.0e})")
        totals["fibonacci*"].append(golden_evals)
        errors["fibonacci*"].append(err)
        for method in ("golden", "brent", "bounded"):
            x, nfev, outside = scipy_run(method, problem, tol)
            err = abs(x - problem.xmin)
            extra = f" [{outside}]" if outside else ""
            cells.append(f"{nfev} ({err:.0e}){extra}" if not math.isnan(nfev) else "failed")
            totals[f"scipy {method}"].append(nfev)
            errors[f"scipy {method}"].append(err)
        print(f"| {problem.name} | " + " | ".join(cells) + " |")
    # Means over the smooth problems that every method solved (|x - x*| <= 1e-4): a search
    # that stopped early on a wrong point must not look cheap.
    solved = [
        i
        for i, p in enumerate(zoo.INTERVAL)
        if p.smooth and all(errors[c][i] <= 1e-4 for c in columns)
    ]
    names = ", ".join(zoo.INTERVAL[i].name for i in solved)
    row = " | ".join(
        f"{np.mean([totals[c][i] for i in solved]):.1f} "
        f"({max(errors[c][i] for i in solved):.0e} max)"
        for c in columns
    )
    print(f"| **mean** ({len(solved)} problems) | {row} |")
    print(f"\nmean over the smooth problems every method solved: {names}")


def family(c, dtype):
    """The lecture's function stretched so that its minimiser is ``c``; unimodal on [0, 6]."""

    def fun(x):
        return zoo.lecture(x * (jnp.asarray(SHIFT, dtype) / c))

    return fun


def jaxls_solver(name: str, dtype, tol: float, budget: int):
    zero, six = jnp.asarray(0.0, dtype), jnp.asarray(6.0, dtype)

    def solve(c):
        fun = family(c, dtype)
        if name == "fibonacci":
            return jaxls.fibonacci(fun, zero, six, fixed_evals=budget)
        if name == "golden_fixed":
            return jaxls.golden_section(fun, zero, six, fixed_evals=budget)
        return getattr(jaxls, name)(fun, zero, six, tol=tol, max_evals=200)

    return jax.jit(jax.vmap(solve))


def best_time(fn, *args, repeats=3):
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def scipy_rate(method: str, tol: float, style: str, count: int = 2000) -> float:
    """Problems/s of a Python loop over scipy, the objective in plain ``math`` or NumPy."""
    centres = np.random.default_rng(1).uniform(1.0, 5.0, count)
    k = math.sqrt(2.0 / math.pi) / 8.0
    exp = math.exp if style == "math" else np.exp

    def run(c):
        def f(x):
            y = x * (SHIFT / c)
            return 1.0 - k * y * y * exp(-y * y / 8.0)

        if method == "bounded":
            return scipy.optimize.minimize_scalar(
                f, bounds=(0.0, 6.0), method="bounded", options={"xatol": 1.5 * tol}
            )
        return scipy.optimize.minimize_scalar(
            f, bracket=(0.0, 6.0), method=method, options={"xtol": tol / c}
        )

    start = time.perf_counter()
    for c in centres:
        run(c)
    return count / (time.perf_counter() - start)


def throughput(sizes, dtype, tol: float) -> None:
    budget = math.ceil(math.log(tol / 6.0) / math.log((math.sqrt(5) - 1) / 2))
    print(
        f"\n## Throughput, problems/s ({jnp.dtype(dtype).name}, {jax.devices()[0]}, "
        f"tol {tol:g}; fixed budgets: {budget} evaluations)\n"
    )
    rates = {
        (m, style): scipy_rate(m, tol, style)
        for style in ("math", "numpy")
        for m in ("golden", "brent", "bounded")
    }
    base = max(rates.values())
    print(
        "scipy loop (objective in math / NumPy): "
        + ", ".join(
            f"{m} {rates[m, 'math']:,.0f} / {rates[m, 'numpy']:,.0f}"
            for m in ("golden", "brent", "bounded")
        )
    )
    print(
        f"ratios (in brackets) are against the fastest scipy loop, {base:,.0f} problems/s;"
        " ! = some member did not converge\n"
    )
    names = [*list(JAXLS), "golden_fixed", "fibonacci"]
    print("| jaxls | " + " | ".join(f"N = {n:,}" for n in sizes) + " | compile | max error |")
    print("|---|" + "---|" * (len(sizes) + 2))
    for name in names:
        solve = jaxls_solver(name, dtype, tol, budget)
        cells, compile_s, err = [], math.nan, math.nan
        for n in sizes:
            centres = jnp.asarray(np.random.default_rng(0).uniform(1.0, 5.0, n), dtype)
            try:
                start = time.perf_counter()
                res = jax.block_until_ready(solve(centres))
                if n == sizes[0]:
                    compile_s = time.perf_counter() - start
                seconds = best_time(solve, centres)
            except (RuntimeError, MemoryError) as error:  # out of memory on a small device, say
                cells.append(f"failed: {type(error).__name__}")
                continue
            ok = bool(jnp.all(res.converged))
            err = float(jnp.max(jnp.abs(res.x - centres)))
            cells.append(f"{n / seconds:,.3g} ({n / seconds / base:,.0f}x){'' if ok else '!'}")
            del res
        print(f"| {name} | " + " | ".join(cells) + f" | {compile_s:.1f} s | {err:.0e} |")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 10_000, 1_000_000])
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--skip-evaluations", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    print(
        f"# jaxls {jaxls.__version__} exact searches; jax {jax.__version__}, "
        f"scipy {scipy.__version__}"
    )
    if not args.skip_evaluations:
        evaluations(args.tol)
    if not args.skip_throughput:
        throughput(args.sizes, jnp.dtype(args.dtype), args.tol)


if __name__ == "__main__":
    main()
