"""jaxls's step-size rules in float32, JAX's default, against optax's: failures and evaluations.

    python benchmarks/float32.py                # 400 problems per family (L-BFGS), 100 (GD)
    python benchmarks/float32.py --problems 40  # a smoke run

Batches of small problems, each generated from a fixed seed, solved in JAX's default
configuration (x64 off: everything float32) to ``||grad f||_2 <= tol`` by two families of
optimisers, every one driven by the same `jaxls.optax.minimize` loop:

* L-BFGS (memory 10), ``tol = 1e-6``, at most 500 iterations (the README's recipe):
  ``optax.lbfgs()`` (zoom: the reference of ``jaxls.wolfe`` and ``jaxls.hager_zhang``) and
  ``optax.lbfgs(linesearch=`` optax's backtracking below ``)`` (the reference of
  ``jaxls.backtracking``: an Armijo search against an Armijo search) against
  ``optax.lbfgs(linesearch=jaxls.optax.scale_by_line_search(search))``, all with their
  default settings; every row also gives its ratio to zoom;
* gradient descent, ``tol = 1e-4``, at most 1000 iterations: ``optax.chain(optax.sgd(1.0), rule)``
  with optax's ``scale_by_backtracking_linesearch(max_backtracking_steps=29,
  decrease_factor=0.5, increase_factor=2.0, max_learning_rate=inf, store_grad=True)`` (the
  reference) against ``scale_by_line_search(search, grow=2.0)`` for ``jaxls.backtracking``,
  ``jaxls.goldstein``, ``jaxls.wolfe`` and ``jaxls.hager_zhang``.

The families: L2-regularised logistic regression (100 x 5 data, lambda = 1e-2), the
exponential-decay curve fit ``y = a exp(-b t) + c`` (50 points, 3 parameters; the two
families of the issue that found jaxls's float32 failures), Rosenbrock from perturbed
standard starts (L-BFGS only: gradient descent needs ~10^4 iterations there), and convex
quadratics in 10 dimensions with condition number 1e2, scaled so that float32 resolves the
gradient well below ``tol``.

A problem *fails* when its final status is not ``SUCCESS`` (the iteration budget ran out, or
the objective became NaN). Evaluations are the calls of the objective, value-only and
value-and-gradient alike, counted by a host callback (`jax.debug.callback`) with each
problem run on its own (under `vmap`, finished members keep being evaluated and a host
count would include them); every problem of a family reuses one compiled run. The
targets (issue 9): no more failures than the reference on any family, and mean
evaluations within 10% of the reference's.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

assert not jax.config.jax_enable_x64, "this benchmark measures JAX's default configuration"

import jax.numpy as jnp
import numpy as np
import optax

import jaxls
from jaxls.optax import minimize, scale_by_line_search

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.machine import Counter  # run as a script

# ---------------------------------------------------------------------------------------
# Problem families: fun(x, data) and (x0, data) per problem, from a fixed seed.


class Family(NamedTuple):
    name: str
    fun: Callable  # fun(x, data) -> scalar
    make: Callable  # make(rng) -> (x0, data)
    # Rosenbrock takes gradient descent ~10^4 iterations: L-BFGS only
    rules: tuple = ("lbfgs", "gd")


def logistic(w, data):
    features, labels, lam = data
    margins = labels * (features @ w)
    return jnp.mean(jnp.logaddexp(0.0, -margins)) + 0.5 * lam * jnp.sum(w * w)


def make_logistic(rng):
    features = rng.normal(size=(100, 5))
    w_true = rng.normal(scale=2.0, size=5)
    noise = rng.normal(scale=0.5, size=100)
    labels = np.where(features @ w_true + noise > 0, 1.0, -1.0)
    data = (features.astype(np.float32), labels.astype(np.float32), np.float32(1e-2))
    return np.zeros(5, np.float32), data


def decay(p, data):
    t, y = data
    return 0.5 * jnp.mean((p[0] * jnp.exp(-p[1] * t) + p[2] - y) ** 2)


def make_decay(rng):
    t = np.linspace(0.0, 4.0, 50)
    a, b, c = rng.uniform(1.0, 3.0), rng.uniform(0.5, 2.0), rng.uniform(-0.5, 0.5)
    y = a * np.exp(-b * t) + c + rng.normal(scale=0.02, size=t.shape)
    return np.array([1.0, 1.0, 0.0], np.float32), (t.astype(np.float32), y.astype(np.float32))


def rosenbrock(x, data):
    del data
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def make_rosenbrock(rng):
    x0 = np.array([-1.2, 1.0]) + rng.normal(scale=0.3, size=2)
    return x0.astype(np.float32), np.zeros((), np.float32)


def quadratic(x, data):
    a, b = data
    return 0.5 * x @ (a @ x) - b @ x


def make_quadratic(rng):
    n = 10
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = (q * np.logspace(-2, 0, n)) @ q.T  # condition number 1e2, ||A|| = 1
    b = rng.normal(scale=1e-2, size=n)  # |x*| ~ 1: the gradient resolves to ~1e-7
    return np.zeros(n, np.float32), (a.astype(np.float32), b.astype(np.float32))


FAMILIES = [
    Family("logistic 100x5", logistic, make_logistic),
    Family("exp-decay fit", decay, make_decay),
    Family("rosenbrock 2", rosenbrock, make_rosenbrock, rules=("lbfgs",)),
    Family("quadratic 1e2", quadratic, make_quadratic),
]

# ---------------------------------------------------------------------------------------
# Optimisers.


class Method(NamedTuple):
    name: str
    make: Callable[[], Any]
    reference: bool = False
    against: str = ""  # the reference it is measured against (the rule's first, if empty)


def optax_backtracking():
    return optax.scale_by_backtracking_linesearch(
        max_backtracking_steps=29,
        decrease_factor=0.5,
        increase_factor=2.0,
        max_learning_rate=jnp.inf,
        store_grad=True,
    )


RULES = {
    "lbfgs": (
        1e-6,
        500,
        [
            Method("optax zoom", optax.lbfgs, reference=True),
            Method(
                "optax backtracking",
                lambda: optax.lbfgs(linesearch=optax_backtracking()),
                reference=True,
            ),
            Method(
                "jaxls wolfe", lambda: optax.lbfgs(linesearch=scale_by_line_search(jaxls.wolfe))
            ),
            Method(
                "jaxls hager_zhang",
                lambda: optax.lbfgs(linesearch=scale_by_line_search(jaxls.hager_zhang)),
            ),
            Method(
                "jaxls backtracking",
                lambda: optax.lbfgs(linesearch=scale_by_line_search(jaxls.backtracking)),
                against="optax backtracking",
            ),
        ],
    ),
    "gd": (
        1e-4,
        1000,
        [
            Method(
                "optax backtracking",
                lambda: optax.chain(optax.sgd(1.0), optax_backtracking()),
                reference=True,
            ),
        ]
        + [
            Method(
                f"jaxls {search.__name__}",
                lambda search=search: optax.chain(
                    optax.sgd(1.0), scale_by_line_search(search, grow=2.0)
                ),
            )
            for search in (jaxls.backtracking, jaxls.goldstein, jaxls.wolfe, jaxls.hager_zhang)
        ],
    ),
}

# ---------------------------------------------------------------------------------------
# Running.


class Row(NamedTuple):
    failures: int
    iterations: float  # mean over the problems
    evals: float  # mean host-counted calls of the objective
    seconds: float


def solve(family: Family, method: Method, problems, tol: float, max_iterations: int) -> Row:
    counter = Counter()
    optimizer = method.make()
    counted = counter.wrap(family.fun)

    @jax.jit
    def run(x0, data):
        res = minimize(
            lambda x: counted(x, data), x0, optimizer, max_iterations=max_iterations, grad_tol=tol
        )
        return res.status, res.num_iterations

    failures, iterations, evals = 0, [], []
    start = time.perf_counter()
    for x0, data in problems:
        counter.count = 0
        status, num_iterations = jax.device_get(run(x0, data))
        jax.effects_barrier()
        failures += int(status) != jaxls.Status.SUCCESS
        iterations.append(int(num_iterations))
        evals.append(counter.count)
    return Row(
        failures, float(np.mean(iterations)), float(np.mean(evals)), time.perf_counter() - start
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=400, help="problems per family (L-BFGS)")
    parser.add_argument("--gd-problems", type=int, default=100, help="problems per family (GD)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"# benchmarks/float32.py, {datetime.date.today()}, jax {jax.__version__}, "
        f"optax {optax.__version__}, {jax.devices()[0].platform}, x64 off (float32)\n"
    )
    missed = []
    for rule, (tol, max_iterations, methods) in RULES.items():
        count = args.problems if rule == "lbfgs" else args.gd_problems
        title = "L-BFGS" if rule == "lbfgs" else "gradient descent"
        print(
            f"## {title}: ||grad|| <= {tol:g}, at most {max_iterations} iterations, "
            f"{count} problems each\n"
        )
        print(
            "| family | method | failures | mean iterations | mean evaluations | evals / reference "
            f"| evals / {methods[0].name} |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for family in (f for f in FAMILIES if rule in f.rules):
            rng = np.random.default_rng(args.seed)
            problems = [family.make(rng) for _ in range(count)]
            rows = {m.name: solve(family, m, problems, tol, max_iterations) for m in methods}
            first = rows[methods[0].name]
            for method in methods:
                row = rows[method.name]
                reference = rows[method.against] if method.against else first
                ratio = row.evals / reference.evals
                print(
                    f"| {family.name} | {method.name} | {row.failures} | {row.iterations:.1f} | "
                    f"{row.evals:.1f} | {ratio:.2f} | {row.evals / first.evals:.2f} |"
                )
                if method.reference:
                    continue
                if row.failures > reference.failures:
                    missed.append(
                        f"{title}, {family.name}, {method.name}: {row.failures} failures "
                        f"vs {reference.failures}"
                    )
                if ratio > 1.10:
                    missed.append(
                        f"{title}, {family.name}, {method.name}: evaluations x{ratio:.2f}"
                    )
        print()
    print("Targets: no more failures than the reference, evaluations within 10%.")
    print("All met." if not missed else "Missed:\n  " + "\n  ".join(missed))


if __name__ == "__main__":
    main()
