"""Inexact line searches: jaxls against optax, jaxopt, optimistix and scipy, in one run.

    python benchmarks/inexact.py                 # everything (about two minutes on 2 cores)
    python benchmarks/inexact.py --repeats 5     # quicker timings

Part 1, evaluations and conditions: the six functions of Moré & Thuente (1994) from the
starting steps 1e-3, 1e-1, 1e1, 1e3 (`jaxls.linezoo`), each search run with the paper's
``(c1, c2)`` for that function (Goldstein: ``c = c1``). Every search is given ``phi(0)``
and ``phi'(0)`` and has a budget of 30 evaluations; a cell counts the evaluations it made
(real calls of the objective, counted by a host callback; each is one value and gradient,
except in the backtracking of optax, jaxopt and optimistix, which evaluate values only),
and says whether the search's
own promised conditions (`PROMISES`) and the strong Wolfe conditions hold at the step it
returned, both recomputed in float64 from ``phi``.

Part 2, cost: the compile time of each jitted search (``jax.jit(...).lower(...).compile()``
on function 1, a fresh function each time so that no cache helps), and the run time of one
jitted search: for each of the 24 cases the best of ``--repeats`` calls after compiling,
then the median over the cases.

Peers that cannot be imported (jaxopt, optimistix) are reported and skipped. scipy's
``line_search`` (``line_search_wolfe2``) cannot start above a step of 1 (it takes
``min(1, ...)``), and requires ``c1 < c2`` strictly: where the paper has ``c1 = c2``, it
runs with ``c1 (1 - 1e-9)``. ``dcsrch`` is MINPACK-2's Moré-Thuente search as scipy ports
it (``scipy.optimize._dcsrch.DCSRCH``), run with ``xtol = 1e-10``, ``stpmin = 0``,
``stpmax = 1e10``: on these problems it makes exactly the evaluations of the paper's tables.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import inspect
import math
import statistics
import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax

# float64: the reference (MINPACK-2 dcsrch via scipy) and the paper's tables are float64;
# benchmarks/float32.py measures JAX's default configuration.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import optax
import scipy
import scipy.optimize

import jaxls
from jaxls import linezoo

BUDGET = 30
UNAVAILABLE: dict[str, str] = {}
# What an import of a peer built for another JAX version raises.
PEER_ERRORS = (ImportError, AttributeError, TypeError, RuntimeError)

try:
    import jaxopt
except PEER_ERRORS as error:  # a peer that fails to import is reported and skipped
    jaxopt = None
    UNAVAILABLE["jaxopt"] = f"{type(error).__name__}: {error}"
try:
    import optimistix as optx
except PEER_ERRORS as error:
    optx = None
    UNAVAILABLE["optimistix"] = f"{type(error).__name__}: {error}"
try:
    from scipy.optimize._dcsrch import DCSRCH
except ImportError as error:
    DCSRCH = None
    UNAVAILABLE["scipy dcsrch"] = f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------------------------------
# Conditions, on float64 scalars of phi: v0 = phi(0), s0 = phi'(0), v = phi(t), s = phi'(t).


def armijo(v0, s0, v, s, t, c1):
    return v <= v0 + c1 * t * s0


def strong_wolfe(v0, s0, v, s, t, c1, c2):
    return armijo(v0, s0, v, s, t, c1) and abs(s) <= c2 * abs(s0)


def weak_wolfe(v0, s0, v, s, t, c1, c2):
    return armijo(v0, s0, v, s, t, c1) and s >= c2 * s0


def goldstein(v0, s0, v, s, t, c):
    return v0 + (1 - c) * t * s0 <= v <= v0 + c * t * s0


def approximate_wolfe(v0, s0, v, s, c1, c2, epsilon):
    return (2 * c1 - 1) * s0 >= s >= c2 * s0 and v <= v0 + epsilon * abs(v0)


def hager_zhang(v0, s0, v, s, t, c1, c2, epsilon=1e-6):
    """Original (weak) Wolfe, or approximate Wolfe (Hager & Zhang 2005, (4.1))."""
    return weak_wolfe(v0, s0, v, s, t, c1, c2) or approximate_wolfe(v0, s0, v, s, c1, c2, epsilon)


def zoom_decrease_strong_curvature(v0, s0, v, s, t, c1, c2, epsilon=1e-6):
    """optax's and jaxopt's zoom: Armijo or HZ's approximate decrease, strong curvature."""
    approx = s <= (2 * c1 - 1) * s0 and v <= v0 + epsilon * abs(v0)
    return (armijo(v0, s0, v, s, t, c1) or approx) and abs(s) <= c2 * abs(s0)


# ---------------------------------------------------------------------------------------
# The searches. Each entry builds, for a problem, ``solve(fun, step_init) -> step`` from
# (x, d, value, grad) closed over; JAX searches are jitted, Python ones are not.


class Entry(NamedTuple):
    name: str
    build: Callable  # (problem, fun) -> solve(step_init) -> step (a scalar)
    promise: Callable  # (v0, s0, v, s, t, problem) -> bool
    jax: bool = True  # jitted (compile time measured) or a Python loop


def _origin(problem):
    x, d = linezoo.start(), linezoo.direction()
    value, grad = jax.value_and_grad(problem.fun)(x)
    return x, d, value, grad


def _jaxls(name, **fixed):
    search = getattr(jaxls, name)
    params = inspect.signature(search).parameters

    def constants(problem):
        return {k: getattr(problem, k) for k in ("c1", "c2") if k in params}

    def build(problem, fun, point=None):
        x, d, value, grad = point or _origin(problem)
        consts = constants(problem)

        def solve(step_init):
            res = search(
                fun,
                x,
                d,
                value=value,
                grad=grad,
                step_init=step_init,
                max_evals=BUDGET,
                **consts,
                **fixed,
            )
            return res.step

        return solve

    return build


def _optax_backtracking(problem, fun, point=None):
    x, d, value, grad = point or _origin(problem)

    def solve(step_init):
        opt = optax.scale_by_backtracking_linesearch(
            max_backtracking_steps=BUDGET - 1,  # it runs while iter_num <= this
            slope_rtol=problem.c1,
            decrease_factor=0.5,
            increase_factor=1.0,  # start at state.learning_rate = step_init
            max_learning_rate=math.inf,
        )
        state = opt.init(x)._replace(learning_rate=jnp.asarray(step_init, jnp.float64))
        _, state = opt.update(d, state, x, value=value, grad=grad, value_fn=fun)
        return state.learning_rate

    return solve


def _optax_zoom(problem, fun, point=None):
    x, d, value, grad = point or _origin(problem)

    def solve(step_init):
        opt = optax.scale_by_zoom_linesearch(
            max_linesearch_steps=BUDGET,
            slope_rtol=problem.c1,
            curv_rtol=problem.c2,
            initial_guess_strategy="keep",  # start at state.learning_rate = step_init
        )
        state = opt.init(x)._replace(learning_rate=jnp.asarray(step_init, jnp.float64))
        _, state = opt.update(d, state, x, value=value, grad=grad, value_fn=fun)
        return state.learning_rate

    return solve


def _jaxopt(kind):
    def build(problem, fun, point=None):
        x, d, value, grad = point or _origin(problem)
        if kind == "backtracking":
            search = jaxopt.BacktrackingLineSearch(
                fun=fun,
                maxiter=BUDGET,
                condition="armijo",
                c1=problem.c1,
                decrease_factor=0.5,
                max_stepsize=1e30,
            )
        elif kind == "zoom":
            search = jaxopt.ZoomLineSearch(fun=fun, maxiter=BUDGET, c1=problem.c1, c2=problem.c2)
        else:
            search = jaxopt.HagerZhangLineSearch(
                fun=fun, maxiter=BUDGET, c1=problem.c1, c2=problem.c2, max_stepsize=1e30
            )

        def solve(step_init):
            step, _ = search.run(step_init, x, value=value, grad=grad, descent_direction=d)
            return step

        return solve

    return build


def _optimistix(problem, fun, point=None):
    """optx.BacktrackingArmijo driven as its minimisers drive it: evaluate, `step`, repeat."""
    x, d, value, grad = point or _origin(problem)
    f_info = optx.FunctionInfo.EvalGrad(value, grad)

    def solve(step_init):
        search = optx.BacktrackingArmijo(decrease_factor=0.5, slope=problem.c1, step_init=1.0)
        state = search.init(x, f_info)

        def body(carry):
            step, _, n, state = carry
            y_eval = jax.tree.map(lambda xi, di: xi + step * di, x, d)
            f_eval = fun(y_eval)
            eval_info = optx.FunctionInfo.Eval(f_eval)
            shrunk, accept, _, state = search.step(
                jnp.array(False), x, y_eval, f_info, eval_info, state
            )
            # On rejection the search returns decrease_factor * (its last step): it scales
            # its own state, so the state carries our step (see `init` below).
            return jnp.where(accept, step, shrunk), accept, n + 1, state

        state = type(state)(step_size=jnp.asarray(step_init, jnp.float64))
        carry = (jnp.asarray(step_init, jnp.float64), jnp.array(False), 0, state)
        step, accept, _, _ = jax.lax.while_loop(lambda c: ~c[1] & (c[2] < BUDGET), body, carry)
        return jnp.where(accept, step, 0.0)

    return solve


def _scipy_wolfe2(problem, fun):
    """scipy.optimize.line_search's scalar core, started as close to step_init as it allows."""
    phi, slope = _python_phi(problem)
    v0, s0 = phi(0.0), slope(0.0)
    c1 = problem.c1 * (1 - 1e-9) if problem.c1 >= problem.c2 else problem.c1

    def solve(step_init):
        # alpha1 = min(1, 2.02 (phi0 - old_phi0) / derphi0): old_phi0 sets it, capped at 1.
        old = v0 - step_init * s0 / 2.02
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            step, *_ = scipy.optimize._linesearch.scalar_search_wolfe2(
                phi, slope, v0, old, s0, c1=c1, c2=problem.c2, maxiter=BUDGET
            )
        return math.nan if step is None else step

    return solve


def _scipy_dcsrch(problem, fun):
    phi, slope = _python_phi(problem)
    v0, s0 = phi(0.0), slope(0.0)

    def solve(step_init):
        search = DCSRCH(phi, slope, problem.c1, problem.c2, 1e-10, 0.0, 1e10)
        step, *_ = search(step_init, phi0=v0, derphi0=s0, maxiter=BUDGET)
        return math.nan if step is None else step

    return solve


def _compiled_phi(problem):
    return _compiled_phi_by_name(problem.name)


@functools.cache
def _compiled_phi_by_name(name):
    problem = next(p for p in linezoo.MORE_THUENTE if p.name == name)
    return jax.jit(jax.value_and_grad(problem.phi))


def _python_phi(problem):
    """``phi`` and ``phi'`` for scipy, sharing one evaluation per point (cached)."""
    vg = _compiled_phi(problem)

    @functools.lru_cache(maxsize=64)
    def both(t):
        COUNTER.tick(t)
        v, s = vg(jnp.float64(t))
        return float(v), float(s)

    COUNTER.reset_hooks.append(both.cache_clear)
    return (lambda t: both(float(t))[0]), (lambda t: both(float(t))[1])


class Counter:
    """Counts evaluations: JAX searches through a host callback, Python ones directly."""

    def __init__(self):
        self.count = 0
        self.reset_hooks = []

    def tick(self, *_):
        self.count += 1

    def reset(self):
        self.count = 0
        for hook in self.reset_hooks:
            hook()

    def wrap(self, fun):
        def counted(x):
            jax.debug.callback(self.tick, x)
            return fun(x)

        return counted


COUNTER = Counter()


def _p(name):
    """The problem's ``(c1, c2)`` for a promise."""

    def promise(v0, s0, v, s, t, problem):
        c1, c2 = problem.c1, problem.c2
        return {
            "armijo": lambda: armijo(v0, s0, v, s, t, c1),
            "goldstein": lambda: goldstein(v0, s0, v, s, t, c1),
            "strong": lambda: strong_wolfe(v0, s0, v, s, t, c1, c2),
            "weak": lambda: weak_wolfe(v0, s0, v, s, t, c1, c2),
            "hz": lambda: hager_zhang(v0, s0, v, s, t, c1, c2),
            "zoom": lambda: zoom_decrease_strong_curvature(v0, s0, v, s, t, c1, c2),
        }[name]()

    return promise


def entries() -> list[Entry]:
    found = []
    present = {name: hasattr(jaxls, name) for name in SEARCHES}
    if present["backtracking"]:
        found.append(Entry("jaxls backtracking", _jaxls("backtracking"), _p("armijo")))
        found.append(
            Entry(
                "jaxls backtracking (interp.)",
                _jaxls("backtracking", interpolate=True),
                _p("armijo"),
            )
        )
    if present["goldstein"]:
        found.append(Entry("jaxls goldstein", _jaxls("goldstein"), _p("goldstein")))
    if present["wolfe"]:
        if "strong" in inspect.signature(jaxls.wolfe).parameters:
            # dcsrch's settings (the defaults grow=2, epsilon=None serve float32 instead).
            dcsrch = {"grow": 4.0, "epsilon": 0.0}
            found.append(
                Entry("jaxls wolfe (strong)", _jaxls("wolfe", strong=True, **dcsrch), _p("strong"))
            )
            found.append(
                Entry("jaxls wolfe (weak)", _jaxls("wolfe", strong=False, **dcsrch), _p("weak"))
            )
        else:
            found.append(Entry("jaxls wolfe", _jaxls("wolfe"), _p("strong")))
    if present["hager_zhang"]:
        found.append(Entry("jaxls hager_zhang", _jaxls("hager_zhang"), _p("hz")))
    found.append(Entry("optax backtracking", _optax_backtracking, _p("armijo")))
    found.append(Entry("optax zoom", _optax_zoom, _p("zoom")))
    if jaxopt is not None:
        found.append(Entry("jaxopt backtracking", _jaxopt("backtracking"), _p("armijo")))
        found.append(Entry("jaxopt zoom", _jaxopt("zoom"), _p("zoom")))
        found.append(Entry("jaxopt hager_zhang", _jaxopt("hz"), _p("hz")))
    if optx is not None:
        found.append(Entry("optimistix BacktrackingArmijo", _optimistix, _p("armijo")))
    found.append(Entry("scipy line_search", _scipy_wolfe2, _p("strong"), jax=False))
    if DCSRCH is not None:
        found.append(Entry("scipy dcsrch", _scipy_dcsrch, _p("strong"), jax=False))
    return found


SEARCHES = ("backtracking", "goldstein", "wolfe", "hager_zhang")
CASES = [(p, t) for p in linezoo.MORE_THUENTE for t in linezoo.STEP_INIT]


# ---------------------------------------------------------------------------------------
# Part 1: evaluations and conditions.


def run_case(entry, solvers, problem, step_init):
    """(evaluations, step, own conditions hold, strong Wolfe holds) of one run."""
    key = (entry.name, problem.name)
    if key not in solvers:
        fun = COUNTER.wrap(problem.fun) if entry.jax else problem.fun
        solve = entry.build(problem, fun)
        solvers[key] = jax.jit(solve) if entry.jax else solve
    COUNTER.reset()
    step = float(solvers[key](step_init))
    jax.effects_barrier()
    evals = COUNTER.count
    if not math.isfinite(step):
        return evals, step, False, False
    vg = _compiled_phi(problem)
    v0, s0 = (float(a) for a in vg(0.0))
    v, s = (float(a) for a in vg(jnp.float64(step)))
    own = bool(entry.promise(v0, s0, v, s, step, problem))
    strong = strong_wolfe(v0, s0, v, s, step, problem.c1, problem.c2)
    return evals, step, own, strong


def part1(found) -> None:
    print("\n## Evaluations and conditions on the Moré-Thuente functions\n")
    print(
        "Each cell: evaluations made (beyond phi(0), phi'(0), which every search is given); "
        "`W` = the strong Wolfe conditions hold at the returned step; `!` = the search's own "
        "promised conditions do NOT hold there (a failure, or a step 0). Constants: the "
        "paper's (c1, c2) per function; budget 30.\n"
    )
    names = [e.name for e in found]
    print("| function | t0 | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    solvers = {}
    totals = {n: 0 for n in names}
    own_ok = {n: 0 for n in names}
    strong_ok = {n: 0 for n in names}
    for problem, step_init in CASES:
        cells = []
        for entry in found:
            evals, _, own, strong = run_case(entry, solvers, problem, step_init)
            totals[entry.name] += evals
            own_ok[entry.name] += own
            strong_ok[entry.name] += strong
            cells.append(f"{evals}{' W' if strong else ''}{'' if own else ' !'}")
        print(f"| {problem.name} | {step_init:g} | " + " | ".join(cells) + " |")
    print("| **total evaluations** | | " + " | ".join(str(totals[n]) for n in names) + " |")
    print(
        f"| **own conditions hold** (of {len(CASES)}) | | "
        + " | ".join(str(own_ok[n]) for n in names)
        + " |"
    )
    print(
        f"| **strong Wolfe holds** (of {len(CASES)}) | | "
        + " | ".join(str(strong_ok[n]) for n in names)
        + " |"
    )
    print(
        "\nOwn conditions: the backtracking searches: Armijo; jaxls goldstein: "
        "Goldstein with c = c1; wolfe: strong or weak Wolfe; hager_zhang (jaxls, "
        "jaxopt): weak Wolfe or approximate Wolfe (epsilon = 1e-6); optax and jaxopt "
        "zoom: Armijo or the approximate decrease, with strong curvature; scipy: strong "
        "Wolfe."
    )


# ---------------------------------------------------------------------------------------
# Part 2: compile and run time.


def _pytree_point():
    """A 10-leaf pytree problem: ``sum cosh(w - 1) + 0.1 w^4`` over leaves of 3 to 30."""
    x = {f"w{i}": jnp.zeros((i + 1, 3)) for i in range(10)}
    fun = lambda x: sum(jnp.sum(jnp.cosh(w - 1.0) + 0.1 * w**4) for w in x.values())
    value, grad = jax.value_and_grad(fun)(x)
    return fun, (x, jax.tree.map(jnp.negative, grad), value, grad)


def compile_seconds(entry, pytree: bool) -> float:
    """Compile time of the jitted search, for a fresh objective (no cache can help)."""
    problem = linezoo.MORE_THUENTE[0]
    if pytree:
        fun, point = _pytree_point()
        solve = jax.jit(entry.build(problem, fun, point))
    else:
        fun = lambda x: problem.phi(x[0])
        solve = jax.jit(entry.build(problem, fun))
    start = time.perf_counter()
    solve.lower(jnp.float64(1.0)).compile()
    return time.perf_counter() - start


def best_compile_seconds(entry, pytree: bool, tries: int = 2) -> float:
    return min(compile_seconds(entry, pytree) for _ in range(tries))


def run_microseconds(entry, repeats: int) -> float:
    times = []
    for problem in linezoo.MORE_THUENTE:
        solve = entry.build(problem, problem.fun)
        if entry.jax:
            solve = jax.jit(solve)
        for step_init in linezoo.STEP_INIT:
            step_init = jnp.float64(step_init) if entry.jax else step_init
            jax.block_until_ready(solve(step_init))
            best = math.inf
            for _ in range(repeats):
                COUNTER.reset()
                start = time.perf_counter()
                jax.block_until_ready(solve(step_init))
                best = min(best, time.perf_counter() - start)
            times.append(best)
    return 1e6 * statistics.median(times)


def part2(found, repeats: int) -> None:
    print(f"\n## Compile time and run time ({jax.devices()[0].device_kind}, float64)\n")
    print(
        "compile: `jax.jit(search).lower(step_init).compile()`, on function 1 (a 1-element "
        "array) and on a 10-leaf pytree objective, best of 2 fresh compiles, with the ratio "
        "to optax zoom's; run: "
        f"median over the 24 cases of the best of {repeats} calls of the compiled search "
        "(scipy: of the Python call, the objective jitted).\n"
    )
    compile_1d = {e.name: best_compile_seconds(e, False) for e in found if e.jax}
    compile_tree = {e.name: best_compile_seconds(e, True) for e in found if e.jax}
    zoom_1d, zoom_tree = compile_1d.get("optax zoom"), compile_tree.get("optax zoom")
    print("| search | compile, 1-D (s) | ratio | compile, pytree (s) | ratio | run (µs) |")
    print("|---|---|---|---|---|---|")
    for entry in found:
        run_us = run_microseconds(entry, repeats)
        if entry.jax:
            a, b = compile_1d[entry.name], compile_tree[entry.name]
            print(
                f"| {entry.name} | {a:.2f} | {a / zoom_1d:.2f} | {b:.2f} | {b / zoom_tree:.2f} "
                f"| {run_us:,.0f} |"
            )
        else:
            print(f"| {entry.name} | (Python) | | | | {run_us:,.0f} |")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-conditions", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    versions = [f"jaxls {jaxls.__version__}", f"jax {jax.__version__}"]
    versions.append(f"optax {optax.__version__}")
    if jaxopt is not None:
        versions.append(f"jaxopt {importlib.metadata.version('jaxopt')}")
    if optx is not None:
        versions.append(f"optimistix {importlib.metadata.version('optimistix')}")
    versions.append(f"scipy {scipy.__version__}")
    print("# Inexact line searches; " + ", ".join(versions))
    present = [name for name in SEARCHES if hasattr(jaxls, name)]
    missing = [name for name in SEARCHES if not hasattr(jaxls, name)]
    print(f"\njaxls searches present: {', '.join(present)}")
    if missing:
        print(f"jaxls searches not present (not measured): {', '.join(missing)}")
    for peer, why in UNAVAILABLE.items():
        print(f"peer not importable, skipped: {peer} ({why})")
    found = entries()
    if not args.skip_conditions:
        part1(found)
    if not args.skip_timing:
        part2(found, args.repeats)


if __name__ == "__main__":
    main()
