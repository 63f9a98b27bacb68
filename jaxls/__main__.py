"""``python -m jaxls``: the library at work on the lecture's problems, in six sections.

1. The exact line searches (dichotomy, golden section, Fibonacci, parabolic, Brent) on the
   problems of `jaxls.zoo.INTERVAL`: the evaluations of f each needs to locate the minimiser
   within ``--tol``, and the error it reaches against the exact minimiser.
2. The lecture's Figure 18: evaluations against tolerance on its function
   ``f(x) = 1 - sqrt(2/pi) x^2 exp(-x^2/8) / 8`` on [0, 6] (`jaxls.zoo.lecture`).
3. Golden-section search on ``--problems`` problems at once under `jax.vmap`, against one
   jitted call per problem: problems per second.
4. Rosenbrock's function minimised by steepest descent and by L-BFGS, with jaxls searches as
   optax step-size rules (`jaxls.optax.scale_by_line_search`, `jaxls.optax.minimize`).
5. The lecture's automatic-differentiation example node by node (`jaxls.ad.trace`): values,
   forward tangents and reverse adjoints, and the gradient against `jax.grad`.
6. Forward against reverse mode (`jaxls.ad.jacfwd`, `jaxls.ad.jacrev`): the time of the
   Jacobian of ``f(x) = A x``, n = 100 inputs, against the number m of outputs.

Each table is introduced by a sentence that says what it shows and how to read it. With
matplotlib installed (``pip install "jaxls[plots]"``) sections 2, 4 and 6 also draw a PNG
picture each, into ``--out`` (by default a new folder ``jaxls-output-<date>-<time>`` in the
current directory); without it every table is still printed.

It runs in JAX's default configuration, float32, as most users do, with tolerances that
float32 resolves; ``--dtype float64`` runs it in float64, inside `jax.enable_x64` (the global
setting is left as it was). A search that stops with ``ROUNDING`` (the dtype no longer tells
its values apart) or fails is marked so in every table: nothing is reported as converged
that did not converge. About 15 s on two idle CPU cores, most of it compiling; ``--quick``
runs a smaller set in about 10 s (the import of JAX included).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import itertools
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

import jaxls
from jaxls import zoo
from jaxls.optax import MinimizeResult, minimize, scale_by_line_search

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METHODS = ("dichotomy", "golden_section", "fibonacci", "parabolic", "brent")
PLOTS_EXTRA = 'pip install "jaxls[plots]"'
SECTIONS = 6

# The values of f locate a smooth minimiser only to about sqrt(eps) |x*| (f is flat to
# second order there), and the searches stop with ROUNDING below that: ~1e-3 on the zoo in
# float32, ~1e-7 in float64. The defaults stay above it; section 2's sweep goes below on
# purpose, to show where each dtype stops.
TOL = {"float32": 1e-2, "float64": 1e-6}
SWEEP = {
    "float32": (1e-1, 3e-2, 1e-2, 5e-3, 3e-3, 1e-3),
    "float64": (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8),
}
QUICK_SWEEP = {"float32": (1e-1, 1e-2, 1e-3), "float64": (1e-2, 1e-5, 1e-8)}
QUICK_ZOO = 4  # --quick: the zoo's first problems
MAX_EVALS = 500
PROBLEMS = {False: 100_000, True: 1_000}  # section 3's vmap batch, by --quick
LOOPED = {False: 200, True: 50}
# Section 3's minimisers. Stretched further (c near 5) the function is so flat at its minimum
# that a few of the searches stop with ROUNDING before tol = 1e-2 in float32.
CENTRES = (1.0, 4.0)  # section 3's problems solved one call each, by --quick

ROSENBROCK_START = (-1.2, 1.0)
ROSENBROCK_MINIMISER = (1.0, 1.0)  # f* = 0
ROSENBROCK_HESSIAN = ((802.0, -400.0), (-400.0, 200.0))  # at the minimiser, closed form
GRAD_TOL = {"float32": 1e-4, "float64": 1e-6}  # Rosenbrock's stopping test on ||grad f||
MAX_ITERATIONS = 20_000
OPTIMISERS = ("steepest descent", "L-BFGS")
RULES: dict[str, Callable[..., Any]] = {
    "exact (golden)": jaxls.golden_section,
    "Armijo backtracking": jaxls.backtracking,
    "strong Wolfe": jaxls.wolfe,
}
QUICK_RUNS = (("steepest descent", "exact (golden)"), ("L-BFGS", "strong Wolfe"))
EXACT_STEP_MAX = {"steepest descent": 1.0, "L-BFGS": 2.0}  # the exact search's [0, step_max]

JACOBIAN_INPUTS = 100
JACOBIAN_OUTPUTS = {False: (1, 10, 30, 100, 300, 1000, 3000), True: (10, 100, 1000)}

PICTURES = {
    "tolerance": "evaluations_vs_tolerance.png",
    "convergence": "rosenbrock_convergence.png",
    "jacobian": "jacobian_forward_vs_reverse.png",
}


# --- the command line ------------------------------------------------------------------------


class Settings(NamedTuple):
    """What one run does, from the command line."""

    dtype: str  # "float32" or "float64"
    quick: bool
    problems: int  # section 3's vmap batch
    tol: float  # the interval searches' tolerance in sections 1 and 3
    out: Path | None  # None: a new folder in the current directory


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block), with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def output_folder(text: str) -> Path:
    """A folder that exists, or that can be made: its nearest existing ancestor is a folder
    we may write in."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a folder")
    ancestor = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {str(ancestor)!r}")
    return path


def parser() -> Parser:
    p = Parser(
        prog="python -m jaxls",
        description="The jaxls library at work on the lecture's problems: exact line searches, "
        "golden section under vmap, Rosenbrock with optax rules, automatic differentiation "
        "node by node, forward against reverse mode. Tables are printed; pictures are written "
        f"as PNG when matplotlib is installed ({PLOTS_EXTRA}).",
    )
    p.add_argument(
        "--out",
        type=output_folder,
        metavar="DIR",
        help="folder for the PNG pictures, made if needed; files of the same names in it are "
        "replaced (default: a new folder jaxls-output-YYYYmmdd-HHMMSS here)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a smaller run: {QUICK_ZOO} zoo problems, {len(QUICK_SWEEP['float32'])} "
        f"tolerances, {PROBLEMS[True]:,} vmap problems, {len(QUICK_RUNS)} Rosenbrock runs, "
        f"{len(JACOBIAN_OUTPUTS[True])} Jacobian sizes",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="float32, JAX's default, or float64 (run inside jax.enable_x64(True))",
    )
    p.add_argument(  # the option before --dtype, kept as an alias
        "--x64", dest="dtype", action="store_const", const="float64", help="same as --dtype float64"
    )
    p.add_argument(
        "--problems",
        type=positive_int,
        metavar="N",
        help=f"problems solved at once under vmap in section 3, >= 1 (default "
        f"{PROBLEMS[False]:,}; {PROBLEMS[True]:,} with --quick)",
    )
    p.add_argument(
        "--tol",
        type=positive_float,
        metavar="T",
        help="the interval searches' tolerance on the minimiser in sections 1 and 3, > 0 "
        f"(default {TOL['float32']:g} in float32, {TOL['float64']:g} in float64)",
    )
    return p


def parse(argv: Sequence[str] | None) -> Settings:
    """The settings, or a one-line error and exit status 2 before any work."""
    args = parser().parse_args(argv)
    return Settings(
        dtype=args.dtype,
        quick=args.quick,
        problems=args.problems if args.problems is not None else PROBLEMS[args.quick],
        tol=args.tol if args.tol is not None else TOL[args.dtype],
        out=args.out,
    )


# --- printing --------------------------------------------------------------------------------


def announce(number: int, title: str) -> None:
    print(f"\n[{number}/{SECTIONS}] {title}", flush=True)


@contextlib.contextmanager
def progress(label: str) -> Iterator[Callable[[str], None]]:
    """``  label item item ... (1.2 s)`` on one line as the work goes: the block calls the
    function it is given with each item done."""
    print(f"  {label}", end="", flush=True)
    start = time.perf_counter()
    yield lambda item: print(f" {item}", end="", flush=True)
    print(f" ({time.perf_counter() - start:.1f} s)", flush=True)


def say(text: str, width: int = 96) -> None:
    """Print ``text`` wrapped to ``width`` columns, indented by two spaces."""
    lines = [""]
    for word in text.split():
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width - 2:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    print("\n".join("  " + line for line in lines))


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    left: int = 1,
    groups: Sequence[tuple[str, int]] = (),
) -> None:
    """Print a table: the first ``left`` columns left-aligned, the others right-aligned, a
    rule under the headers; ``groups`` (label, number of columns) adds labels above them."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    cell = lambda i, text: text.ljust(widths[i]) if i < left else text.rjust(widths[i])
    line = lambda r: "  ".join(cell(i, text) for i, text in enumerate(r)).rstrip()
    lines = [line(headers), "  ".join("-" * w for w in widths), *map(line, rows)]
    spans, start = [], 0
    for label, count in groups:
        spans.append(label.center(sum(widths[start : start + count]) + 2 * (count - 1)))
        start += count
    if groups:
        lines.insert(0, "  ".join(spans).rstrip())
    print("\n".join(lines))


def milliseconds(seconds: float) -> str:
    """``seconds`` in ms to 3 significant digits: ``0.0512``, ``13.6``, ``2048``."""
    ms = 1e3 * seconds
    return f"{ms:.{max(0, 2 - math.floor(math.log10(ms)))}f}" if ms > 0 else "0"


def status_counts(statuses: ArrayLike) -> str:
    """``995 SUCCESS, 5 ROUNDING``: how many searches ended with each status."""
    codes, counts = np.unique(np.asarray(statuses), return_counts=True)
    return ", ".join(
        f"{n:,} {jaxls.Status(int(c)).name}" for c, n in zip(codes, counts, strict=True)
    )


# --- sections 1 and 2: exact line searches ---------------------------------------------------


class Outcome(NamedTuple):
    """One search on one problem."""

    evals: int  # evaluations of f
    error: float  # |x - x*|, x* the exact minimiser
    status: jaxls.Status
    certified: bool  # SUCCESS, and the final bracket certifies max(x - lower, upper - x) <= tol

    @property
    def flag(self) -> str:
        """'' certified within tol, '~' stopped with ROUNDING, '!' anything else."""
        if self.certified:
            return ""
        return "~" if self.status == jaxls.Status.ROUNDING else "!"


FLAGS = (
    "~ marks a search that stopped with ROUNDING: values of f it compared were equal up to "
    "rounding, so it could not certify tol (Fibonacci's last two points are 1% of the bracket "
    "apart by design, so theirs can tie), ! a search that failed."
)


def problem_fun(index: ArrayLike) -> Callable[[jax.Array], jax.Array]:
    """Problem ``index`` of `jaxls.zoo.INTERVAL` as a function of data (a `lax.switch`), so
    that a search compiled once serves every problem."""
    branches = [problem.fun for problem in zoo.INTERVAL]
    return lambda x: jax.lax.switch(index, branches, x)


@functools.partial(jax.jit, static_argnames=("method", "budget"))
def solve(
    method: str,
    index: ArrayLike,
    lower: float | jax.Array,
    upper: float | jax.Array,
    tol: float | jax.Array,
    budget: int,
) -> jaxls.ScalarResult:
    """``method`` on problem ``index`` of the zoo, bounds and ``tol`` given as data: jitted
    once per method for every problem and tolerance (Fibonacci: once per budget)."""
    fun = problem_fun(index)
    if method == "fibonacci":
        return jaxls.fibonacci(fun, lower, upper, fixed_evals=budget)
    return getattr(jaxls, method)(fun, lower, upper, tol=tol, max_evals=MAX_EVALS)


def fibonacci_budget(width: float, tol: float) -> int:
    """The fewest evaluations ``N`` with which Fibonacci search certifies ``tol`` on an
    interval of ``width``: its best point ends within ``width / F_N`` of both ends of its
    final bracket (``F_0 = F_1 = 1``)."""
    evals, previous, current = 1, 1, 1
    while width / current > tol:
        previous, current = current, previous + current
        evals += 1
    return evals


def search(method: str, index: int, tol: float) -> Outcome:
    """``method`` on problem ``index`` of the zoo, to ``tol``."""
    problem = zoo.INTERVAL[index]
    budget = fibonacci_budget(problem.upper - problem.lower, tol) if method == "fibonacci" else 0
    res = solve(method, index, problem.lower, problem.upper, tol, budget)
    x, lower, upper = float(res.x), float(res.lower), float(res.upper)
    status = jaxls.Status(int(res.status))
    # SUCCESS certifies max(x - lower, upper - x) <= tol for the searches given a tol;
    # Fibonacci's only says that the budget was spent, so its bracket is checked here.
    certified = status == jaxls.Status.SUCCESS and (
        method != "fibonacci" or max(x - lower, upper - x) <= tol
    )
    return Outcome(int(res.num_evals), abs(x - problem.xmin), status, certified)


def search_all(indices: Sequence[int], tols: Sequence[float]) -> dict[str, list[Outcome]]:
    """Every method on each problem ``indices[k]`` with tolerance ``tols[k]``."""
    outcomes = {}
    with progress("searching:") as done:
        for method in METHODS:
            outcomes[method] = [search(method, i, t) for i, t in zip(indices, tols, strict=True)]
            done(method)
    return outcomes


def evals_cell(outcome: Outcome) -> str:
    """The evaluations and the flag, or a space where there is none (numbers stay aligned)."""
    return f"{outcome.evals}{outcome.flag or ' '}"


def zoo_comparison(settings: Settings) -> None:
    problems = zoo.INTERVAL[:QUICK_ZOO] if settings.quick else zoo.INTERVAL
    announce(1, f"Exact line searches on {len(problems)} problems of jaxls.zoo.INTERVAL")
    outcomes = search_all(range(len(problems)), [settings.tol] * len(problems))
    say(
        "Each row is a problem, each pair of columns a search: 'evals' counts the evaluations "
        f"of f it made to certify its point within tol = {settings.tol:g} of the minimiser "
        "(fewer is better; Fibonacci is given the fewest that certify tol), '|x - x*|' is the "
        "distance of that point from the exact minimiser (at most tol when certified). " + FLAGS
    )
    pair = lambda o: (evals_cell(o), f"{o.error:.1e}")
    rows = [
        [problem.name, *(c for m in METHODS for c in pair(outcomes[m][i]))]
        for i, problem in enumerate(problems)
    ]
    total = lambda m: (
        f"{sum(o.evals for o in outcomes[m])} ",
        f"{max(o.error for o in outcomes[m]):.1e}",
    )
    rows.append(["total / max", *(c for m in METHODS for c in total(m))])
    headers = ["problem", *(["evals", "|x - x*|"] * len(METHODS))]
    table(headers, rows, groups=[("", 1), *((m, 2) for m in METHODS)])


def tolerance_sweep(settings: Settings, pictures: Pictures) -> None:
    tols = (QUICK_SWEEP if settings.quick else SWEEP)[settings.dtype]
    lecture = zoo.INTERVAL[0]  # zoo.lecture on [0, 6]
    announce(2, "Evaluations against tolerance on the lecture's function (its Figure 18)")
    outcomes = search_all([0] * len(tols), tols)
    finest = min(t for k, t in enumerate(tols) if any(outcomes[m][k].certified for m in METHODS))
    say(
        "f(x) = 1 - sqrt(2/pi) x^2 exp(-x^2/8)/8 on [0, 6], minimised at x* = 2 sqrt(2): each "
        "row is a tolerance, each cell the evaluations of f a search made to certify its point "
        "within it; dichotomy spends 2 evaluations per halving of the bracket (6.6 per factor "
        "10 of tol), golden section and Fibonacci 1 per factor 1.618 (4.8 per factor 10), "
        "parabolic and Brent converge faster near a smooth minimum; f is flat to second order "
        "at x*, so its values locate x* only to a few times sqrt(eps) x* = "
        f"{math.sqrt(float(jnp.finfo(settings.dtype).eps)) * lecture.xmin:.0e} in "
        f"{settings.dtype} (here no search certified a tol below {finest:g}). " + FLAGS
    )
    rows = [
        [f"{tol:.0e}", *(evals_cell(outcomes[m][k]) for m in METHODS)] for k, tol in enumerate(tols)
    ]
    table(["tol", *METHODS], rows)
    pictures.draw("tolerance", plot_tolerance_sweep, tols, outcomes, settings.dtype)


def plot_tolerance_sweep(
    figure: Figure, tols: Sequence[float], outcomes: dict[str, list[Outcome]], dtype: str
) -> None:
    ax = figure.subplots()
    for method, marker in zip(METHODS, "osDv^", strict=True):
        ax.plot(tols, [o.evals for o in outcomes[method]], marker=marker, label=method)
        for tol, outcome in zip(tols, outcomes[method], strict=True):
            if outcome.flag:
                ax.plot(tol, outcome.evals, "x", color="black", markersize=10)
    ax.plot([], [], "x", color="black", label="not certified (ROUNDING or failure)")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("tolerance on the minimiser, tol")
    ax.set_ylabel("evaluations of f")
    ax.set_title(
        "Exact searches on f(x) = 1 - sqrt(2/pi) x² exp(-x²/8)/8 on [0, 6] "
        f"(the lecture's Fig. 18), {dtype}",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()


# --- section 3: many problems at once --------------------------------------------------------


def golden_on_stretched_lecture(centre: ArrayLike, tol: float | jax.Array) -> jaxls.ScalarResult:
    """Golden section on the lecture's function stretched so that its minimiser on [0, 6]
    is ``centre``."""
    fun = lambda x: zoo.lecture(x * (2.0 * math.sqrt(2.0) / centre))
    return jaxls.golden_section(fun, 0.0, 6.0, tol=tol)


golden_one = jax.jit(golden_on_stretched_lecture)
golden_batch = jax.jit(jax.vmap(golden_on_stretched_lecture, in_axes=(0, None)))


def best_time(fun: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The shortest of ``repeats`` calls of ``fun`` in seconds (results ready), and what the
    last one returned."""
    seconds = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(fun())
        seconds = min(seconds, time.perf_counter() - start)
    return seconds, out


def throughput_row(
    how: str, centres: np.ndarray, seconds: float, xs: Any, status: Any
) -> list[str]:
    n = len(centres)
    error = float(np.max(np.abs(np.asarray(xs, np.float64) - centres)))
    rate = f"{n / seconds:,.0f}"
    return [how, f"{n:,}", milliseconds(seconds), rate, f"{error:.1e}", status_counts(status)]


def throughput(settings: Settings) -> None:
    n, tol = settings.problems, settings.tol
    announce(3, f"Golden-section search on {n:,} problems at once (jax.vmap)")
    centres = np.random.default_rng(0).uniform(*CENTRES, n).astype(settings.dtype)
    looped = centres[: LOOPED[settings.quick]]
    with progress("golden section:") as done:
        jax.block_until_ready((golden_one(centres[0], tol), golden_batch(centres, tol)))
        done("compiled,")
        loop_s, loop = best_time(lambda: [golden_one(c, tol) for c in looped], repeats=1)
        batch_s, batch = best_time(lambda: golden_batch(centres, tol), repeats=3)
        done("timed")
    say(
        "The problems are the lecture's function stretched so that its minimiser is c, "
        f"c ~ U{CENTRES}, on [0, 6], each solved to tol = {tol:g}, by a Python loop of one jitted "
        "call per problem or by one call of the jitted jax.vmap of the search: time "
        "(compilation excluded) and problems/s are wall clock, '|x - c|' is the largest error "
        "and 'status' counts how the searches ended (SUCCESS: certified within tol)."
    )
    rows = [
        throughput_row(
            "one jitted call per problem",
            looped,
            loop_s,
            [r.x for r in loop],
            [r.status for r in loop],
        ),
        throughput_row("one call of jax.vmap", centres, batch_s, batch.x, batch.status),
    ]
    table(["how", "problems", "time (ms)", "problems/s", "max |x - c|", "status"], rows)
    speedup = (n / batch_s) / (len(looped) / loop_s)
    print(f"  On {jax.devices()[0].platform}, vmap solves {speedup:,.0f} times more problems/s.")


# --- section 4: Rosenbrock with optax rules --------------------------------------------------


def rosenbrock(x: jax.Array) -> jax.Array:
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


class History(NamedTuple):
    """The value and gradient norm at each iterate, filled by `record_history`."""

    values: jax.Array
    grad_norms: jax.Array
    iteration: jax.Array


def record_history(length: int) -> optax.GradientTransformationExtraArgs:
    """An optax transformation that changes nothing and records ``value`` and the norm of
    ``grad`` at each update: first in a chain, the optimiser's convergence history."""

    def init(params: Any) -> History:
        nans = jnp.full(length, jnp.nan, jnp.result_type(*jax.tree.leaves(params)))
        return History(nans, nans, jnp.zeros((), jnp.int32))

    def update(
        updates: Any, state: History, params: Any = None, *, value: Any, grad: Any, **extra: Any
    ) -> tuple[Any, History]:
        i = state.iteration
        values = state.values.at[i].set(value)
        grad_norms = state.grad_norms.at[i].set(optax.tree.norm(grad))
        return updates, History(values, grad_norms, i + 1)

    return optax.GradientTransformationExtraArgs(init, update)


def optimiser(name: str, rule: str) -> optax.GradientTransformationExtraArgs:
    """Steepest descent or L-BFGS with the jaxls search ``RULES[rule]`` as its step size."""
    search = RULES[rule]
    if search is jaxls.golden_section:  # exact: minimises f along the direction on [0, max]
        linesearch = scale_by_line_search(search, step_max=EXACT_STEP_MAX[name])
    else:  # steepest descent's steps vary in scale: each search starts at twice the last step
        grow = 2.0 if name == "steepest descent" else None
        linesearch = scale_by_line_search(search, grow=grow)
    if name == "L-BFGS":
        return optax.lbfgs(linesearch=linesearch)
    return optax.chain(optax.sgd(1.0), linesearch)


@functools.partial(jax.jit, static_argnames=("name", "rule"))
def descend(name: str, rule: str, start: jax.Array, grad_tol: float) -> MinimizeResult:
    """`jaxls.optax.minimize` of Rosenbrock from ``start``; its history is ``state[0]``."""
    opt = optax.chain(record_history(MAX_ITERATIONS), optimiser(name, rule))
    return minimize(rosenbrock, start, opt, max_iterations=MAX_ITERATIONS, grad_tol=grad_tol)


class Descent(NamedTuple):
    """One minimisation of Rosenbrock: the result, and f and ||grad f|| at every iterate
    (the last one included)."""

    name: str
    rule: str
    result: MinimizeResult
    values: np.ndarray
    grad_norms: np.ndarray


def run_descent(name: str, rule: str, dtype: str) -> Descent:
    res = descend(name, rule, jnp.asarray(ROSENBROCK_START, dtype), GRAD_TOL[dtype])
    history, k = res.state[0], int(res.num_iterations)
    values = np.append(np.asarray(history.values)[:k], float(res.value))
    grad_norms = np.append(np.asarray(history.grad_norms)[:k], float(res.grad_norm))
    return Descent(name, rule, res, values, grad_norms)


def descent_row(d: Descent) -> list[str]:
    res = d.result
    error = np.linalg.norm(np.asarray(res.params, np.float64) - ROSENBROCK_MINIMISER)
    evals = int(res.num_evals)  # -1 (UNCOUNTED) if something else called f: not here
    return [
        d.name,
        d.rule,
        f"{int(res.num_iterations):,}",
        f"{evals:,}" if evals >= 0 else "unknown",
        f"{float(res.grad_norm):.1e}",
        f"{error:.1e}",
        f"{float(res.value):.1e}",
        jaxls.Status(int(res.status)).name,
    ]


def span(counts: Sequence[int]) -> str:
    """``1,234`` or ``1,234 to 5,678``."""
    low, high = min(counts), max(counts)
    return f"{low:,}" if low == high else f"{low:,} to {high:,}"


def rosenbrock_section(settings: Settings, pictures: Pictures) -> None:
    grad_tol = GRAD_TOL[settings.dtype]
    runs = QUICK_RUNS if settings.quick else [(o, r) for o in OPTIMISERS for r in RULES]
    announce(4, f"Rosenbrock's function by {len(runs)} optimiser and line search pairs (optax)")
    descents = []
    for name, rule in runs:
        with progress(f"{name} + {rule}"):
            descents.append(run_descent(name, rule, settings.dtype))
    small, large = np.linalg.eigvalsh(ROSENBROCK_HESSIAN)
    steps = {o: [int(d.result.num_iterations) for d in descents if d.name == o] for o in OPTIMISERS}
    say(
        "f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 minimised from (-1.2, 1) until ||grad f|| <= "
        f"{grad_tol:g} by jaxls.optax.minimize, a jaxls search as the optax step-size rule: "
        "'iterations' counts optimiser steps, 'evaluations' calls of f (value, or value and "
        "gradient), and the next columns describe the last point (x* = (1, 1), f* = 0). "
        f"Steepest descent takes {span(steps['steepest descent'])} steps even with an exact "
        "search, because the minimiser lies in a long, narrow, curved valley (the Hessian at "
        f"x* has eigenvalues {small:.2f} and {large:.1f}: condition number {large / small:,.0f}) "
        "and each exact step ends where the new gradient is orthogonal to the step, so the "
        "path zigzags across the valley; L-BFGS models the curvature from its last steps and "
        f"takes {span(steps['L-BFGS'])}."
    )
    headers = ["optimiser", "line search", "iterations", "evaluations", "||grad f||"]
    headers += ["|x - x*|", "f - f*", "status"]
    table(headers, [descent_row(d) for d in descents], left=2)
    pictures.draw("convergence", plot_convergence, descents, grad_tol, settings.dtype)


def positive(values: np.ndarray) -> np.ndarray:
    """``values`` with zeros (an exact minimum) left out of a log-scale plot."""
    return np.where(values > 0, values, np.nan)


def plot_convergence(
    figure: Figure, descents: Sequence[Descent], grad_tol: float, dtype: str
) -> None:
    axes = figure.subplots(2, len(OPTIMISERS), squeeze=False)
    for column, name in enumerate(OPTIMISERS):
        top, bottom = axes[0, column], axes[1, column]
        for d in descents:
            if d.name == name:
                top.plot(positive(d.values), label=d.rule)
                bottom.plot(positive(d.grad_norms), label=d.rule)
        bottom.axhline(grad_tol, color="gray", linestyle="--", label="tolerance")
        top.set_title(f"{name} on Rosenbrock ({dtype})", fontsize=10)
        top.set_ylabel("f - f*")
        bottom.set_ylabel("||grad f||")
        bottom.set_xlabel("iteration")
        for ax in (top, bottom):
            ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
        bottom.legend(fontsize=8)


# --- section 5: the lecture's automatic-differentiation example ------------------------------

LECTURE_POINT = (2.0, 5.0)


def lecture_loss(w1: jax.Array, w2: jax.Array) -> jax.Array:
    """The lecture's ``L(w1, w2) = w2 log w1 + sqrt(w2 log w1)``, the shared node once."""
    v2 = w2 * jnp.log(w1)
    return v2 + jnp.sqrt(v2)


def lecture_gradient(w1: float, w2: float) -> tuple[float, float]:
    """``grad L`` in closed form: ``(1 + 1 / (2 sqrt(w2 log w1))) (w2 / w1, log w1)``."""
    outer = 1.0 + 0.5 / math.sqrt(w2 * math.log(w1))
    return outer * w2 / w1, outer * math.log(w1)


def differentiation() -> None:
    w1, w2 = LECTURE_POINT
    announce(5, "The lecture's automatic-differentiation example, node by node (jaxls.ad)")
    graph = jaxls.ad.trace(lecture_loss, w1, w2, tangents=(1.0, 0.0))
    say(
        f"L(w1, w2) = w2 log w1 + sqrt(w2 log w1) at (w1, w2) = ({w1:g}, {w2:g}), traced by "
        "jaxls.ad.trace into one row per node in evaluation order: 'value' is the forward "
        "evaluation, 'dv/dw1' forward mode's tangent seeded with dw1 = 1, dw2 = 0 (read "
        "top-down: its last row is dL/dw1), 'dL/dv' reverse mode's adjoint seeded with "
        "dL = 1 (read bottom-up: its rows w1 and w2 are the gradient)."
    )
    number = lambda v: "" if v is None else f"{float(v):.6f}"
    rows = [
        [n.name, n.primitive, ", ".join(n.inputs), *map(number, (n.value, n.tangent, n.adjoint))]
        for n in graph.nodes
    ]
    table(["node", "operation", "inputs", "value", "dv/dw1", "dL/dv"], rows, left=3)
    exact = np.array(lecture_gradient(w1, w2))
    gradients = {
        "jaxls.ad.grad (reverse mode)": jax.jit(jaxls.ad.grad(lecture_loss, argnums=(0, 1))),
        "jax.grad": jax.jit(jax.grad(lecture_loss, argnums=(0, 1))),
    }
    computed = {how: np.array(grad(w1, w2), np.float64) for how, grad in gradients.items()}
    error = max(float(np.max(np.abs(g - exact) / np.abs(exact))) for g in computed.values())
    eps = float(jnp.finfo(jnp.zeros(()).dtype).eps)
    say(
        "The gradient by both reverse modes and in closed form (in float64): the largest "
        f"relative difference is {error:.1e}, against the dtype's eps = {eps:.1e}."
    )
    rows = [[how, *(f"{g:.9f}" for g in grad)] for how, grad in computed.items()]
    rows.append(["closed form", *(f"{g:.9f}" for g in exact)])
    table(["gradient", "dL/dw1", "dL/dw2"], rows)


# --- section 6: forward against reverse mode -------------------------------------------------


def linear(matrix: jax.Array, x: jax.Array) -> jax.Array:
    return matrix @ x


jacobian_forward = jax.jit(jaxls.ad.jacfwd(linear, argnums=1))
jacobian_reverse = jax.jit(jaxls.ad.jacrev(linear, argnums=1))


def median_seconds(fun: Callable[[], Any], budget_s: float = 0.1, max_calls: int = 50) -> float:
    """The median time of calls of ``fun``: at least 5, then more while ``budget_s`` lasts."""
    times: list[float] = []
    while len(times) < 5 or (sum(times) < budget_s and len(times) < max_calls):
        start = time.perf_counter()
        jax.block_until_ready(fun())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class JacobianTiming(NamedTuple):
    outputs: int  # m
    forward_s: float
    reverse_s: float
    error: float  # max |J - A| over both Jacobians


def time_jacobians(outputs: int, dtype: str) -> JacobianTiming:
    rng = np.random.default_rng(outputs)
    matrix = rng.standard_normal((outputs, JACOBIAN_INPUTS)).astype(dtype)
    x = np.ones(JACOBIAN_INPUTS, dtype)
    forward, reverse = jacobian_forward(matrix, x), jacobian_reverse(matrix, x)  # compiles
    error = max(float(np.max(np.abs(np.asarray(j) - matrix))) for j in (forward, reverse))
    return JacobianTiming(
        outputs,
        median_seconds(lambda: jacobian_forward(matrix, x)),
        median_seconds(lambda: jacobian_reverse(matrix, x)),
        error,
    )


def jacobians(settings: Settings, pictures: Pictures) -> None:
    n, sizes = JACOBIAN_INPUTS, JACOBIAN_OUTPUTS[settings.quick]
    announce(6, f"Forward against reverse mode: the Jacobian of f(x) = A x, n = {n} inputs")
    timings = []
    with progress("timing m =") as done:
        for m in sizes:
            timings.append(time_jacobians(m, settings.dtype))
            done(f"{m:,}")
    say(
        f"jaxls.ad.jacfwd builds the m x {n} Jacobian from {n} forward passes (one per input), "
        "jaxls.ad.jacrev from m reverse passes (one per output), so reverse mode should win "
        f"for m < n = {n} and forward mode for m > n; times are medians of jitted calls "
        "(compilation excluded), and below about 0.1 ms they are mostly the cost of a call."
    )
    rows = [
        [
            f"{t.outputs:,}",
            milliseconds(t.forward_s),
            milliseconds(t.reverse_s),
            f"{t.reverse_s / t.forward_s:.2f}",
            "reverse" if t.reverse_s < t.forward_s else "forward",
        ]
        for t in timings
    ]
    table(["m", "forward (ms)", "reverse (ms)", "reverse/forward", "faster"], rows)
    error = max(t.error for t in timings)
    print(f"  The Jacobian of A x is A: max |J - A| over both modes and every m = {error:.1e}.")
    pictures.draw("jacobian", plot_jacobians, timings, settings.dtype)


def plot_jacobians(figure: Figure, timings: Sequence[JacobianTiming], dtype: str) -> None:
    ax = figure.subplots()
    m = [t.outputs for t in timings]
    ax.plot(m, [1e3 * t.forward_s for t in timings], "o-", label="forward (jaxls.ad.jacfwd)")
    ax.plot(m, [1e3 * t.reverse_s for t in timings], "s-", label="reverse (jaxls.ad.jacrev)")
    ax.axvline(JACOBIAN_INPUTS, color="gray", linestyle="--", label=f"m = n = {JACOBIAN_INPUTS}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("m, outputs of f(x) = A x")
    ax.set_ylabel("time per Jacobian (ms, median of jitted calls)")
    ax.set_title(f"Forward vs reverse mode, n = {JACOBIAN_INPUTS} inputs ({dtype})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()


# --- pictures --------------------------------------------------------------------------------


def matplotlib_installed() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def unused_folder(base: Path) -> Path:
    """``base``, or else the first of ``base-2``, ``base-3``, ... that does not exist."""
    candidates = (base.with_name(f"{base.name}-{k}") for k in itertools.count(2))
    return next(p for p in itertools.chain([base], candidates) if not p.exists())


class Pictures:
    """Where the PNG pictures go, and those written; draws nothing without matplotlib."""

    def __init__(self, out: Path | None, available: bool) -> None:
        self.available = available
        self.named = out is not None  # --out: write into it, existing or not
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.folder = out if out is not None else unused_folder(Path(f"jaxls-output-{stamp}"))
        self.written: list[Path] = []

    def announce(self) -> None:
        if not self.available:
            print(
                f"matplotlib is not installed: no pictures ({PLOTS_EXTRA} adds it); every "
                "table is still printed."
            )
        else:
            print(f"Pictures go to {'' if self.named else 'a new folder '}{self.folder}/.")

    def make_folder(self) -> None:
        if self.named:
            self.folder.mkdir(parents=True, exist_ok=True)
            return
        while True:  # never into an existing folder, even one made since the name was chosen
            try:
                self.folder.mkdir()
                return
            except FileExistsError:
                self.folder = unused_folder(self.folder)

    def draw(self, key: str, plot: Callable[..., None], *args: Any) -> None:
        """``plot(figure, *args)`` on a new figure (Agg), saved as ``PICTURES[key]``."""
        if not self.available:
            return
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        with progress("drawing") as done:
            if not self.written:
                self.make_folder()
            figure = Figure(figsize=(10, 7) if key == "convergence" else (8, 5), layout="tight")
            FigureCanvasAgg(figure)
            plot(figure, *args)
            path = self.folder / PICTURES[key]
            figure.savefig(path, dpi=100)
            self.written.append(path)
            done(str(path))

    def report(self) -> None:
        if not self.available:
            print(f"\nNo pictures: matplotlib is not installed ({PLOTS_EXTRA}).")
            return
        print(f"\nPictures, in {self.folder}/:")
        for path in self.written:
            print(f"  {path}")


# --- the job ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse(argv)
    start = time.perf_counter()
    pictures = Pictures(settings.out, matplotlib_installed())
    x64 = jax.enable_x64(True) if settings.dtype == "float64" else contextlib.nullcontext()
    with x64:
        print(
            f"jaxls {jaxls.__version__}, jax {jax.__version__}, {jnp.zeros(()).dtype} on "
            f"{jax.devices()[0].platform}{' (--quick)' if settings.quick else ''}"
        )
        pictures.announce()
        zoo_comparison(settings)
        tolerance_sweep(settings, pictures)
        throughput(settings)
        rosenbrock_section(settings, pictures)
        differentiation()
        jacobians(settings, pictures)
    pictures.report()
    print(
        f"\nDone in {time.perf_counter() - start:.0f} s. benchmarks/*.py compare jaxls with "
        "scipy, optax, jaxopt and jax: see benchmarks/README.md."
    )


if __name__ == "__main__":
    main()
