"""jaxls searches as optax step-size rules: whole optimisations against optax, jaxopt, scipy.

    python benchmarks/optax_rules.py            # everything (about six minutes on 2 cores)
    python benchmarks/optax_rules.py --quick    # small problems, one timed round: a smoke run

Two families of optimisers, each run from the same start to ``||grad f||_2 <= 1e-6``:

* L-BFGS (memory 10): ``optax.lbfgs(linesearch=jaxls.optax.scale_by_line_search(search))``
  with ``jaxls.wolfe`` (strong Wolfe, c1 = 1e-4, c2 = 0.9) and ``jaxls.hager_zhang`` (its
  defaults, c1 = 0.1, c2 = 0.9), every search starting from the unit step; against optax's
  default ``optax.lbfgs()`` (zoom, ``max_linesearch_steps=20``, c1 = 1e-4, c2 = 0.9, unit
  first step), ``jaxopt.LBFGS`` (its defaults: zoom, at most 30 evaluations, first trial
  1.5 times the last step capped at 1; ``tol = 1e-6``, its own loop) and scipy's
  ``L-BFGS-B`` (``jac=True``, ``maxcor = 10``, ``gtol = 1e-6 / sqrt(n)`` so that its
  max-norm test implies the 2-norm one, ``ftol = 0``, and a callback that stops it as soon
  as the 2-norm of the last gradient is at most 1e-6).
* Gradient descent: ``optax.chain(optax.sgd(1.0), rule)`` with the rules
  ``scale_by_line_search(jaxls.backtracking, grow=2.0)`` (Armijo, c1 = 1e-4, halving,
  at most 30 evaluations), ``scale_by_line_search(jaxls.goldstein, grow=2.0)``, and the
  exact searches ``scale_by_line_search(jaxls.brent | jaxls.golden_section,
  step_max=...)`` (minimise along ``-grad`` on ``[0, step_max]``, ``tol = 1e-6``: values
  only, then one value and gradient at the minimiser), against
  ``optax.scale_by_backtracking_linesearch(max_backtracking_steps=29, slope_rtol=1e-4,
  decrease_factor=0.5, increase_factor=2.0, max_learning_rate=inf, store_grad=True)``: the
  same rule as jaxls backtracking (at most 30 evaluations, first trial twice the last
  step, no cap on the step, value and gradient kept for the next iteration). optax evaluates
  each trial with `jax.linearize` and transposes (the gradient) only at the accepted one;
  jaxls takes the value and gradient at every trial.

Every JAX optimiser of optax's protocol (jaxls's rules and optax's) runs in the same jitted
``lax.while_loop`` driver, `jaxls.optax.minimize`, which reuses the value and gradient the
line search stores in its state (optax's zoom and, with ``store_grad=True``, backtracking
store them as jaxls's adapter does), so no method pays an extra evaluation per iteration.

Counted and timed separately: evaluations are counted in a first run whose objective
calls a host callback (`jax.debug.callback`) on every call, value-only or value-and-gradient
alike; for jaxls the driver's own count (``MinimizeResult.num_evals``) is printed beside it
as a cross-check. Times come from a second, uncounted compile: compile time is
``jax.jit(run).lower(...).compile()``; time per iteration is the median over repeated calls of
the compiled run divided by its iterations (scipy: the whole Python call, with the
objective a jitted value-and-gradient); runs shorter than 20 ms are timed in batches of
back-to-back calls after an untimed one. The methods of one family on one problem are
interleaved, one batch of each per round, so that the load of this shared machine changes
them alike; ratios are against optax measured in the same rounds.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

# float64: scipy's L-BFGS-B and the 1e-6 gradient tolerance on Rosenbrock 1000 need it;
# benchmarks/float32.py measures the same rules in JAX's default float32.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np
import optax
import scipy
import scipy.optimize

import jaxls

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.machine import Counter  # run as a script

TOL = 1e-6
BATCH_SECONDS, MAX_BATCH = 0.02, 200  # a timed batch: back-to-back calls filling 20 ms
PEER_ERRORS = (ImportError, AttributeError, TypeError, RuntimeError)
UNAVAILABLE: dict[str, str] = {}
try:
    import jaxopt
except PEER_ERRORS as error:  # a peer that fails to import is reported and skipped
    jaxopt = None
    UNAVAILABLE["jaxopt"] = f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------------------------------
# Problems: ``fun(x, data)``, the data passed to the jitted run as an argument (not baked
# into the program as constants).


class Problem(NamedTuple):
    name: str
    fun: Callable  # (x, data) -> scalar
    x0: jax.Array
    data: Any
    step_max: float  # the interval [0, step_max] of the exact searches
    note: str


def rosenbrock(x, data=None):
    """Chained Rosenbrock: ``sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``."""
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def quadratic(x, eigenvalues):
    """``x^T D x / 2``, ``D`` diagonal: its minimiser is 0."""
    return 0.5 * jnp.sum(eigenvalues * x * x)


def logistic(w, data):
    """Mean logistic loss plus ``lam / 2 ||w||^2``, labels in {-1, 1}."""
    features, labels, lam = data
    return jnp.mean(jax.nn.softplus(-labels * (features @ w))) + 0.5 * lam * jnp.sum(w * w)


def logistic_data(m: int, n: int, lam: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((m, n))
    truth = rng.standard_normal(n)
    noisy = features @ truth / math.sqrt(n) + rng.standard_normal(m)
    labels = np.where(noisy > 0, 1.0, -1.0)
    return jnp.asarray(features), jnp.asarray(labels), jnp.float64(lam)


def problems(quick: bool) -> list[Problem]:
    """The four problems; ``quick``: Rosenbrock n = 2 and a 1000 x 10 logistic regression (the
    chained Rosenbrock and the quadratic run the same code paths: no data, data passed in)."""
    m, n_log = (1000, 10) if quick else (10_000, 100)
    found = [
        Problem("rosenbrock n=2", rosenbrock, jnp.array([-1.2, 1.0]), None, 1.0, "from (-1.2, 1)")
    ]
    if not quick:
        found += [
            Problem(
                "rosenbrock n=1000",
                rosenbrock,
                jnp.where(jnp.arange(1000) % 2 == 0, -1.2, 1.0),
                None,
                1.0,
                "chained, from (-1.2, 1, -1.2, 1, ...)",
            ),
            Problem(
                "quadratic n=1000",
                quadratic,
                jnp.ones(1000),
                jnp.logspace(0.0, 3.0, 1000),
                1.0,
                "diagonal, eigenvalues log-spaced in [1, 1e3], from (1, ..., 1)",
            ),
        ]
    found.append(
        Problem(
            f"logistic {m}x{n_log}",
            logistic,
            jnp.zeros(n_log),
            logistic_data(m, n_log, 1e-3),
            10.0,
            "standard normal features, lam = 1e-3, seed 0, from 0",
        )
    )
    return found


# ---------------------------------------------------------------------------------------
# Methods. An optax-protocol method is a factory ``problem -> GradientTransformation`` run
# by `jaxls.optax.minimize`; jaxopt and scipy have runners of their own.


class Method(NamedTuple):
    name: str
    family: str  # "lbfgs" or "gd"
    kind: str  # "optax" (minimize driver), "jaxopt", "scipy"
    make: Callable | None = None  # problem -> optax transformation
    jaxls: bool = False  # the driver's own evaluation count is meaningful


rule = jaxls.optax.scale_by_line_search


def methods() -> list[Method]:
    found = [
        Method(
            "jaxls wolfe",
            "lbfgs",
            "optax",
            lambda p: optax.lbfgs(linesearch=rule(jaxls.wolfe)),
            jaxls=True,
        ),
        Method(
            "jaxls hager_zhang",
            "lbfgs",
            "optax",
            lambda p: optax.lbfgs(linesearch=rule(jaxls.hager_zhang)),
            jaxls=True,
        ),
        Method("optax zoom", "lbfgs", "optax", lambda p: optax.lbfgs()),
    ]
    if jaxopt is not None:
        found.append(Method("jaxopt LBFGS", "lbfgs", "jaxopt"))
    found.append(Method("scipy L-BFGS-B", "lbfgs", "scipy"))
    sgd = lambda transform: optax.chain(optax.sgd(1.0), transform)
    found += [
        Method(
            "jaxls backtracking",
            "gd",
            "optax",
            lambda p: sgd(rule(jaxls.backtracking, grow=2.0)),
            jaxls=True,
        ),
        Method(
            "jaxls goldstein",
            "gd",
            "optax",
            lambda p: sgd(rule(jaxls.goldstein, grow=2.0)),
            jaxls=True,
        ),
        Method(
            "jaxls brent (exact)",
            "gd",
            "optax",
            lambda p: sgd(rule(jaxls.brent, step_max=p.step_max)),
            jaxls=True,
        ),
        Method(
            "jaxls golden_section (exact)",
            "gd",
            "optax",
            lambda p: sgd(rule(jaxls.golden_section, step_max=p.step_max)),
            jaxls=True,
        ),
        Method(
            "optax backtracking",
            "gd",
            "optax",
            lambda p: sgd(
                optax.scale_by_backtracking_linesearch(
                    max_backtracking_steps=29,
                    slope_rtol=1e-4,
                    decrease_factor=0.5,
                    increase_factor=2.0,
                    max_learning_rate=math.inf,
                    store_grad=True,
                )
            ),
        ),
    ]
    return found


REFERENCE = {"lbfgs": "optax zoom", "gd": "optax backtracking"}


# ---------------------------------------------------------------------------------------
# Counting and timing.


COUNTER = Counter()


class Outcome(NamedTuple):
    iterations: int
    evals: int  # counted by the host callback (scipy: calls of its objective)
    own_evals: int | None  # the driver's own count, for jaxls
    grad_norm: float
    compile_seconds: float
    call: Callable  # one uncounted run, blocking until done
    iteration_seconds: float = math.nan  # median time per iteration
    total_seconds: float = math.nan  # median time of the whole run

    @property
    def converged(self) -> bool:
        return self.grad_norm <= TOL


def prepare_jax(make_run: Callable, problem: Problem) -> Outcome:
    """``make_run(fun) -> run(x0, data) -> (iterations, own_evals or None, grad_norm)``: count
    evaluations in one run, then compile the uncounted run (timed later)."""
    counted = jax.jit(make_run(COUNTER.wrap(problem.fun)))
    COUNTER.count = 0
    iterations, own, norm = jax.device_get(counted(problem.x0, problem.data))
    jax.effects_barrier()
    evals = COUNTER.count

    start = time.perf_counter()
    compiled = jax.jit(make_run(problem.fun)).lower(problem.x0, problem.data).compile()
    compile_seconds = time.perf_counter() - start
    timed_iterations, *_ = jax.device_get(compiled(problem.x0, problem.data))
    if int(timed_iterations) != int(iterations):
        raise AssertionError(
            f"counted and timed runs differ: {iterations} and {timed_iterations} iterations"
        )
    return Outcome(
        int(iterations),
        evals,
        None if own is None else int(own),
        float(norm),
        compile_seconds,
        lambda: jax.block_until_ready(compiled(problem.x0, problem.data)),
    )


def driver(method: Method, problem: Problem, max_iterations: int):
    optimizer = method.make(problem)

    def make_run(fun):
        def run(x0, data):
            res = jaxls.optax.minimize(
                lambda x: fun(x, data), x0, optimizer, max_iterations=max_iterations, grad_tol=TOL
            )
            own = res.num_evals if method.jaxls else None
            return res.num_iterations, own, res.grad_norm

        return run

    return make_run


def jaxopt_runner(problem: Problem, max_iterations: int):
    def make_run(fun):
        solver = jaxopt.LBFGS(fun=fun, maxiter=max_iterations, tol=TOL)

        def run(x0, data):
            _, state = solver.run(x0, data)
            return state.iter_num, None, state.error

        return run

    return make_run


def prepare_scipy(problem: Problem, max_iterations: int) -> Outcome:
    n = problem.x0.size
    start = time.perf_counter()
    value_and_grad = (
        jax.jit(jax.value_and_grad(problem.fun)).lower(problem.x0, problem.data).compile()
    )
    compile_seconds = time.perf_counter() - start
    last = {}

    def fg(x):
        COUNTER.tick()
        value, grad = value_and_grad(jnp.asarray(x), problem.data)
        last["x"], last["grad"] = x.copy(), np.asarray(grad)
        return float(value), last["grad"]

    def stop(intermediate_result):
        # Stop at the drivers' test, ||grad||_2 <= TOL, where gtol's max-norm test is later.
        x = intermediate_result.x
        if np.array_equal(x, last["x"]) and np.linalg.norm(last["grad"]) <= TOL:
            raise StopIteration

    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return scipy.optimize.minimize(
                fg,
                np.asarray(problem.x0),
                jac=True,
                method="L-BFGS-B",
                callback=stop,
                options={
                    "maxiter": max_iterations,
                    "maxfun": 100 * max_iterations,
                    "maxcor": 10,
                    "gtol": TOL / math.sqrt(n),
                    "ftol": 0.0,
                },
            )

    COUNTER.count = 0
    res = call()
    evals = COUNTER.count
    norm = float(np.linalg.norm(value_and_grad(jnp.asarray(res.x), problem.data)[1]))
    return Outcome(res.nit, evals, None, norm, compile_seconds, call)


def prepare(method: Method, problem: Problem, args) -> Outcome:
    max_iterations = args.lbfgs_iterations if method.family == "lbfgs" else args.gd_iterations
    if method.kind == "optax":
        return prepare_jax(driver(method, problem, max_iterations), problem)
    if method.kind == "jaxopt":
        return prepare_jax(jaxopt_runner(problem, max_iterations), problem)
    return prepare_scipy(problem, max_iterations)


def time_together(outcomes: dict, repeats: int, budget: float) -> dict:
    """Median wall time of each prepared run, the runs interleaved so that the load of the
    machine changes them alike.

    The fastest of three warm-up calls of each sets its batch: as many back-to-back calls
    as fill about ``BATCH_SECONDS`` (1 for longer runs), timeit-style. A run that is batched
    gets one more untimed call just before its batch: on this shared machine the first call
    after another program ran (scipy's Python loop, another method) often waits a few
    milliseconds for a descheduled thread, which would swamp a 0.1 ms run. Each round times
    one batch of each run, the order rotated from round to round; at least 3 rounds (1 if
    ``repeats`` is 1), at most ``repeats``, and no new round once about ``budget`` seconds
    per run have been spent."""
    batch = {}
    for name, out in outcomes.items():
        fastest = math.inf
        for _ in range(3):
            start = time.perf_counter()
            out.call()
            fastest = min(fastest, time.perf_counter() - start)
        batch[name] = max(1, min(MAX_BATCH, int(BATCH_SECONDS / max(fastest, 1e-9))))
    times = {name: [] for name in outcomes}
    spent = 0.0
    rounds = 0
    names = list(outcomes)
    while rounds < repeats and (rounds < min(3, repeats) or spent < budget * len(outcomes)):
        # Each round starts with another method, so none always follows the same one.
        for name in names[rounds % len(names) :] + names[: rounds % len(names)]:
            out = outcomes[name]
            if batch[name] > 1:
                out.call()
            start = time.perf_counter()
            for _ in range(batch[name]):
                out.call()
            elapsed = time.perf_counter() - start
            times[name].append(elapsed / batch[name])
            spent += elapsed
        rounds += 1
    timed = {}
    for name, out in outcomes.items():
        total = statistics.median(times[name])
        timed[name] = out._replace(
            total_seconds=total, iteration_seconds=total / max(out.iterations, 1)
        )
    return timed


# ---------------------------------------------------------------------------------------
# Tables.


def fmt_time(seconds: float) -> str:
    us = 1e6 * seconds
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def table(family: str, found: list[Method], probs: list[Problem], args, results: dict) -> None:
    ref_name = REFERENCE[family]
    cap = args.lbfgs_iterations if family == "lbfgs" else args.gd_iterations
    title = "L-BFGS (memory 10)" if family == "lbfgs" else "Gradient descent, `sgd(1.0)` + rule"
    print(f"\n## {title}: to ||grad||_2 <= {TOL:g}, at most {cap} iterations\n")
    print(
        "evaluations: objective calls counted by a host callback (jaxls: the driver's own "
        "count in brackets); ratios are against "
        f"{ref_name} on the same problem, measured in this run.\n"
    )
    print(
        "| problem | method | iterations | evaluations | final grad norm | time/iteration (µs) "
        "| run (ms) | compile (s) | evals ratio | time/iteration ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for problem in probs:
        ref = results.get((ref_name, problem.name))
        for method in (m for m in found if m.family == family):
            out = results[(method.name, problem.name)]
            evals = f"{out.evals:,}"
            if out.own_evals is not None:
                evals += f" [{out.own_evals:,}]"
            norm = f"{out.grad_norm:.1e}"
            if not out.converged:
                norm = f"not converged, {norm}"
            compile_s = f"{out.compile_seconds:.2f}"
            if method.kind == "scipy":
                compile_s += " (objective)"
            ratios = "| |"
            if ref is not None and method.name != ref_name:
                speed = out.iteration_seconds / ref.iteration_seconds
                ratios = f"| {out.evals / ref.evals:.2f} | {speed:.2f} |"
            print(
                f"| {problem.name} | {method.name} | {out.iterations:,} | {evals} | {norm} | "
                f"{fmt_time(out.iteration_seconds)} | {1e3 * out.total_seconds:,.1f} | {compile_s} "
                + ratios
            )


def targets(probs: list[Problem], results: dict) -> None:
    print("\n## Targets: jaxls L-BFGS against optax's default lbfgs (zoom)\n")
    print(
        "converges wherever optax's does; at most optax zoom's evaluations; time per iteration "
        "within 10% of optax's (ratio <= 1.10).\n"
    )
    for name in ("jaxls wolfe", "jaxls hager_zhang"):
        for problem in probs:
            out, ref = results[(name, problem.name)], results[("optax zoom", problem.name)]
            converges = out.converged or not ref.converged
            evals = out.evals <= ref.evals
            speed = out.iteration_seconds / ref.iteration_seconds
            print(
                f"- {name}, {problem.name}: converges "
                f"{'met' if converges else 'MISSED'} ({'yes' if out.converged else 'no'} / "
                f"optax {'yes' if ref.converged else 'no'}); evaluations "
                f"{'met' if evals else 'MISSED'} ({out.evals:,} vs {ref.evals:,}); time/iteration "
                f"{'met' if speed <= 1.10 else 'MISSED'} ({speed:.2f})"
            )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small problems, one timed round")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds, at most")
    parser.add_argument(
        "--budget", type=float, default=3.0, help="seconds of timed calls per method, about"
    )
    parser.add_argument(
        "--lbfgs-iterations",
        type=int,
        default=None,
        help="L-BFGS budget (10,000; 1,000 with --quick)",
    )
    parser.add_argument(
        "--gd-iterations",
        type=int,
        default=None,
        help="gradient-descent budget (20,000; 500 with --quick)",
    )
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 1 if args.quick else 50
    if args.lbfgs_iterations is None:
        args.lbfgs_iterations = 1000 if args.quick else 10_000
    if args.gd_iterations is None:
        args.gd_iterations = 500 if args.quick else 20_000
    start = time.perf_counter()
    versions = [f"jaxls {jaxls.__version__}", f"jax {jax.__version__}"]
    versions.append(f"optax {optax.__version__}")
    if jaxopt is not None:
        versions.append(f"jaxopt {importlib.metadata.version('jaxopt')}")
    versions.append(f"scipy {scipy.__version__}")
    print("# jaxls searches as optax rules; " + ", ".join(versions))
    print(
        f"\n{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{jax.devices()[0].device_kind}, float64{', --quick' if args.quick else ''}; "
        f"timed rounds: at most {args.repeats}, about {args.budget:g} s per method (median)"
    )
    for peer, why in UNAVAILABLE.items():
        print(f"peer not importable, skipped: {peer} ({why})")
    probs = problems(args.quick)
    print("\nProblems (exact searches minimise on [0, step_max]):\n")
    for problem in probs:
        print(f"- {problem.name}: {problem.note}; step_max = {problem.step_max:g}")
    found = methods()
    results = {}
    for problem in probs:
        for family in REFERENCE:
            prepared = {m.name: prepare(m, problem, args) for m in found if m.family == family}
            timed = time_together(prepared, args.repeats, args.budget)
            results.update({(name, problem.name): out for name, out in timed.items()})
    table("lbfgs", found, probs, args, results)
    table("gd", found, probs, args, results)
    targets(probs, results)
    print(f"\ntotal run time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
