"""Benchmarks for one GPU, in float32: three measurements written to a report (issue 14).

    python3 benchmarks/gpu.py --out benchmarks/gpu-results    # on the GPU (bash benchmarks/gpu.sh)
    python3 benchmarks/gpu.py --quick --out /tmp/gpu-smoke    # tiny sizes: a CPU smoke run

Everything runs in JAX's default float32 (x64 off) on ``jax.devices()[0]``; the same script
runs on a CPU, only slower. ``--out`` receives ``report.md`` (the header of
benchmarks/machine.py, then the tables, rewritten after every line so that a run cut short
keeps what it measured) and, where matplotlib imports, ``exact_throughput.png`` and
``ad_fwd_vs_rev.png``.

1. **Exact searches under vmap.** ``jax.jit(jax.vmap(search))`` over N problems, N = 10^2,
   10^3, ... up to ``--max-problems``: `jaxls.golden_section`, `jaxls.brent`,
   `jaxls.parabolic`, `jaxls.dichotomy` to their float32 default tolerance,
   ``sqrt(eps) * 6 = 2.1e-3`` on ``[0, 6]`` (float32 values of a smooth function locate its
   minimiser no better: most searches end in ``ROUNDING``, ties within rounding, even at
   that tol, their error within it; benchmarks/exact.py's float64 1e-6 is out of reach),
   and the fixed-budget modes, `jaxls.fibonacci` and
   ``golden_section(fixed_evals=...)``, with golden section's count for that tolerance
   (17). The problems are benchmarks/exact.py's: the lecture's function stretched so that
   its minimiser is ``c ~ U(1, 5)`` on ``[0, 6]``. Problems/s is N over the best of 3 calls
   (``jax.block_until_ready``) after one warm-up call; compiling
   (``jit(...).lower(c).compile()``, one program per N) is timed apart. Before a size is
   run, its memory (XLA's ``memory_analysis()`` of the last size compiled, scaled to N) is
   checked against ``memory_stats()`` where the device reports it (GPUs); otherwise an
   out-of-memory error is caught. Either ends that search's growth, as does a size whose
   projected time would overrun the time allowed (the row says which).
2. **L-BFGS on --params parameters.** ``optax.lbfgs(linesearch=jaxls.optax.
   scale_by_line_search(jaxls.wolfe))`` against ``optax.lbfgs()`` (its zoom search), both
   with their defaults, on two float32 problems: a sum of n/2 separate 2-D Rosenbrock terms
   from ``(-1.2, 1) + 0.1 N(0, 1)`` (a cheap objective: the optimiser's own work shows)
   and L2-regularised logistic regression with n features and 128 rows (standard normal,
   labels from a random linear model plus noise, lambda = 1e-3, from 0; products at
   ``Precision.HIGHEST``, so no TF32). The step is optax's loop (``value_and_grad_from_state``,
   ``update(..., value_fn=...)``, ``apply_updates``), jitted; K steps from the start are
   timed as one call (the methods alternately, `time_alternately`), and time per step is
   the median over rounds divided by K. Evaluations per step are the objective's calls
   over those K steps (the first step's initial one included), counted by a
   ``jax.debug.callback`` in a separately compiled step, divided by K.
3. **Forward versus reverse Jacobians.** ``f(x) = A x``, n = 100 inputs, m outputs from 1
   to 30,000: ``jaxls.ad.jacfwd``, ``jaxls.ad.jacrev``, ``jax.jacfwd``, ``jax.jacrev``,
   jitted, compiled, warmed up, then the median of alternated calls; plotted log-log as
   benchmarks/ad.py's figure is.

``--quick`` also compiles with the XLA:CPU options of tests/conftest.py (classic emitters,
one LLVM module per program), which cut the compile time that dominates a smoke run; the
full run keeps XLA's defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks.machine, and jaxls if not installed

import jax

jax.config.update("jax_enable_x64", False)  # float32 throughout, JAX's default

import jax.numpy as jnp
import numpy as np
import optax

import jaxls
import jaxls.ad
from benchmarks.machine import (
    JACOBIAN_STYLES,
    Counter,
    draw_jacobian_times,
    print_header,
    time_alternately,
)
from jaxls import zoo

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # no figures, the tables still
    plt = None

SHIFT = np.float32(2.0 * math.sqrt(2.0))  # the lecture's minimiser
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
# Part 1's tolerance on [0, 6]: the searches' float32 default, sqrt(eps) max(1, |lower|,
# |upper|) (Brent's choice): values of a smooth function locate its minimiser no better.
TOL = math.sqrt(float(np.finfo(np.float32).eps)) * 6.0
STEPS = 20  # L-BFGS steps timed as one call (part 2)
ROWS = 128  # logistic regression's rows (part 2)
N_INPUTS = 100  # part 3


# ---------------------------------------------------------------------------------------
# The report: every line printed and kept; the file rewritten after each, so that a run
# stopped by its time limit keeps what it measured.


class Report:
    def __init__(self, out: Path):
        self.out = out
        self.path = out / "report.md"
        self.lines: list[str] = []

    def __call__(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)
        self.path.write_text("\n".join(self.lines) + "\n")

    def figure(self, fig, name: str) -> None:
        path = self.out / name
        fig.savefig(path, dpi=120)
        plt.close(fig)
        self(f"figure: `{name}`", "")


class Clock:
    """Seconds left before ``limit`` seconds from now; each part is given a share."""

    def __init__(self, limit: float):
        self.end = time.perf_counter() + limit

    def left(self) -> float:
        return self.end - time.perf_counter()


def free_bytes() -> int | None:
    """Bytes the device can still allocate, where it reports them (GPUs); else None."""
    stats = jax.devices()[0].memory_stats()
    if not stats or "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))


def out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in text or "memory" in text


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:100] if text else ''}"


def gb(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


# ---------------------------------------------------------------------------------------
# Part 1: the exact searches under vmap.


def family(c):
    """The lecture's function stretched so that its minimiser is ``c``; unimodal on [0, 6]."""
    return lambda x: zoo.lecture(x * (SHIFT / c))


def searches(tol: float, budget: int) -> dict[str, Callable]:
    zero, six = jnp.float32(0.0), jnp.float32(6.0)
    return {
        "golden_section": lambda f: jaxls.golden_section(f, zero, six, tol=tol, max_evals=200),
        "brent": lambda f: jaxls.brent(f, zero, six, tol=tol, max_evals=200),
        "parabolic": lambda f: jaxls.parabolic(f, zero, six, tol=tol, max_evals=200),
        "dichotomy": lambda f: jaxls.dichotomy(f, zero, six, tol=tol, max_evals=200),
        f"fibonacci (fixed, {budget})": lambda f: jaxls.fibonacci(f, zero, six, fixed_evals=budget),
        f"golden_section (fixed, {budget})": lambda f: jaxls.golden_section(
            f, zero, six, fixed_evals=budget
        ),
    }


class Cell(NamedTuple):
    rate: float = math.nan  # problems/s
    compile_s: float = math.nan
    bytes_per_problem: float = math.nan
    error: float = math.nan  # max |x - c|
    success: float = math.nan  # fraction with status SUCCESS
    rounding: float = math.nan  # fraction with status ROUNDING
    evals: float = math.nan  # mean evaluations per problem
    note: str = ""  # why it was not measured


def run_size(solve, n: int) -> Cell:
    """Compile, check the memory, warm up and time ``solve`` on ``n`` problems."""
    centres = jax.random.uniform(jax.random.key(n), (n,), jnp.float32, 1.0, 5.0)
    start = time.perf_counter()
    compiled = solve.lower(centres).compile()
    compile_s = time.perf_counter() - start
    analysis = compiled.memory_analysis()
    needed = math.nan
    if analysis is not None:
        needed = (
            analysis.argument_size_in_bytes
            + analysis.output_size_in_bytes
            + analysis.temp_size_in_bytes
        )
        free = free_bytes()
        if free is not None and needed > 0.9 * free + 4 * n:  # the centres are allocated
            return Cell(note=f"not run: needs {gb(needed)}, {gb(free + 4 * n)} free")
    res = jax.block_until_ready(compiled(centres))  # warm-up
    best = min(time_alternately([compiled], (centres,), repeats=3, budget=0.0)[0])
    error = float(jnp.max(jnp.abs(res.x - centres)))
    success = float(jnp.mean(res.status == jaxls.Status.SUCCESS))
    rounding = float(jnp.mean(res.status == jaxls.Status.ROUNDING))
    evals = float(jnp.mean(res.num_evals.astype(jnp.float32)))
    return Cell(n / best, compile_s, needed / n, error, success, rounding, evals)


def part1(report: Report, sizes: list[int], clock: Clock, share: float) -> None:
    end = time.perf_counter() + share * clock.left()
    budget = math.ceil(math.log(TOL / 6.0) / math.log(GOLDEN))
    table = searches(TOL, budget)
    report(
        "## 1. Exact searches under `jax.vmap` (float32)",
        "",
        f"`jax.jit(jax.vmap(search))` on N problems (minimiser `c ~ U(1, 5)` on `[0, 6]`), "
        f"`tol = {TOL:.3g}` (the float32 default, `sqrt(eps) * 6`), `max_evals = 200`; "
        f"fixed budgets: {budget} evaluations (golden section's count for that tol). "
        "Problems/s: N / best of 3 calls after a warm-up (`jax.block_until_ready`); "
        "compile timed apart (one program per N).",
        "",
    )
    rows: dict[str, list[Cell]] = {}
    for i, (name, search) in enumerate(table.items()):
        # Each search gets an equal share of the time left, so that none starves the next.
        search_end = time.perf_counter() + (end - time.perf_counter()) / (len(table) - i)
        solve = jax.jit(jax.vmap(lambda c, search=search: search(family(c))))
        cells: list[Cell] = []
        for n in sizes:
            if cells and cells[-1].note:  # it stopped growing
                break
            last = next((c for c in reversed(cells) if not math.isnan(c.rate)), None)
            free = free_bytes()
            if last is not None and free is not None and last.bytes_per_problem * n > 0.9 * free:
                cells.append(
                    Cell(note=f"not run: needs ~{gb(last.bytes_per_problem * n)}, {gb(free)} free")
                )
                break
            # A size costs a compile and 4 calls, each ten times the last size's (linear).
            projected = 4 * n / last.rate + 2 * last.compile_s if last else 0.0
            left = search_end - time.perf_counter()
            if projected > left:
                why = f"~{projected:.0f} s projected, {max(left, 0):.0f} s left of its share"
                cells.append(Cell(note=f"not run: {why}"))
                break
            try:
                cells.append(run_size(solve, n))
            except (RuntimeError, MemoryError) as error:  # XlaRuntimeError is a RuntimeError
                kind = "out of memory" if out_of_memory(error) else "failed"
                cells.append(Cell(note=f"{kind}: {first_line(error)}"))
            c = cells[-1]
            done = c.note or f"{c.rate:,.3g} problems/s, compile {c.compile_s:.2f} s"
            print(f"  {name}, N = {n:,}: {done}", file=sys.stderr, flush=True)
        rows[name] = cells

    measured = [n for i, n in enumerate(sizes) if any(i < len(c) for c in rows.values())]
    header = "| search | " + " | ".join(f"N = {n:,}" for n in measured) + " |"
    rule = "|---|" + "---|" * len(measured)

    def cells_of(cells, fmt):
        out = [fmt(c) if not c.note else c.note for c in cells]
        return out + [""] * (len(measured) - len(out))

    report("Problems per second:", "", header, rule)
    for name, cells in rows.items():
        report(f"| {name} | " + " | ".join(cells_of(cells, lambda c: f"{c.rate:,.3g}")) + " |")
    report("", "Compile (s), one program per N:", "", header, rule)
    for name, cells in rows.items():
        report(f"| {name} | " + " | ".join(cells_of(cells, lambda c: f"{c.compile_s:.2f}")) + " |")
    report(
        "",
        "At the largest N run: memory per problem (XLA's arguments + outputs + temporaries), "
        "mean evaluations, largest error |x - c|, fractions that ended with status SUCCESS "
        "and ROUNDING (ties within float32 rounding: the usual end here, the error still "
        "within tol):",
        "",
        "| search | largest N | bytes / problem | mean evaluations | max error "
        "| SUCCESS / ROUNDING |",
        "|---|---|---|---|---|---|",
    )
    for name, cells in rows.items():
        done = [(n, c) for n, c in zip(sizes, cells, strict=False) if not c.note]
        if not done:
            report(f"| {name} | none | | | | |")
            continue
        n, c = done[-1]
        report(
            f"| {name} | {n:,} | {c.bytes_per_problem:.0f} | {c.evals:.1f} | {c.error:.1e} "
            f"| {c.success:.3f} / {c.rounding:.3f} |"
        )
    report("")
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for name, cells in rows.items():
            points = [(n, c.rate) for n, c in zip(sizes, cells, strict=False) if not c.note]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (problems under vmap)")
        ax.set_ylabel("problems / s (best of 3)")
        ax.set_title(f"Exact searches, float32, {jax.devices()[0].device_kind}")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        report.figure(fig, "exact_throughput.png")


# ---------------------------------------------------------------------------------------
# Part 2: L-BFGS, jaxls's Wolfe search against optax's zoom.


def rosenbrock_pairs(x, data):
    """``sum_i 100 (x_{2i+1} - x_{2i}^2)^2 + (1 - x_{2i})^2``: n/2 separate Rosenbrocks."""
    del data
    return jnp.sum(100.0 * (x[1::2] - x[::2] ** 2) ** 2 + (1.0 - x[::2]) ** 2)


def logistic(w, data):
    """Mean logistic loss plus ``lam / 2 |w|^2``, labels in {-1, 1}."""
    features, labels, lam = data
    margins = labels * jnp.matmul(features, w, precision=jax.lax.Precision.HIGHEST)
    return jnp.mean(jax.nn.softplus(-margins)) + 0.5 * lam * jnp.sum(w * w)


def problems(n: int) -> list[tuple[str, Callable, jax.Array, Any]]:
    k = jax.random.split(jax.random.key(0), 4)
    x0 = jnp.tile(jnp.array([-1.2, 1.0], jnp.float32), n // 2)
    x0 = x0 + 0.1 * jax.random.normal(k[0], x0.shape, jnp.float32)
    features = jax.random.normal(k[1], (ROWS, n), jnp.float32)
    truth = jax.random.normal(k[2], (n,), jnp.float32)
    noisy = features @ truth / math.sqrt(n) + jax.random.normal(k[3], (ROWS,), jnp.float32)
    labels = jnp.where(noisy > 0, 1.0, -1.0).astype(jnp.float32)
    return [
        (f"Rosenbrock pairs, n = {n:,}", rosenbrock_pairs, x0, jnp.zeros((), jnp.float32)),
        (
            f"logistic {ROWS} x {n:,}",
            logistic,
            jnp.zeros(n, jnp.float32),
            (features, labels, jnp.float32(1e-3)),
        ),
    ]


METHODS = {
    "jaxls wolfe": lambda: optax.lbfgs(linesearch=jaxls.optax.scale_by_line_search(jaxls.wolfe)),
    "optax zoom": optax.lbfgs,
}


def make_step(optimizer, fun: Callable) -> Callable:
    """One step of optax's L-BFGS loop: ``((params, state), data) -> ((params, state), value)``."""

    def step(carry, data):
        params, state = carry
        value_fn = lambda w: fun(w, data)
        value, grad = optax.value_and_grad_from_state(value_fn)(params, state=state)
        updates, state = optimizer.update(
            grad, state, params, value=value, grad=grad, value_fn=value_fn
        )
        return (optax.apply_updates(params, updates), state), value

    return step


class Prepared(NamedTuple):
    compile_s: float
    evals_per_step: float
    final_value: float
    run: Callable[[], Any]  # the timed steps from the start, (params, last value)


def prepare(method: Callable, fun: Callable, x0, data, steps: int) -> Prepared:
    optimizer = method()
    carry = (x0, optimizer.init(x0))
    counter = Counter()
    counted = counter.wrap(fun)
    counted_step = jax.jit(make_step(optimizer, counted))
    state = carry
    for _ in range(steps):
        state, _ = counted_step(state, data)
    jax.block_until_ready(state)
    jax.effects_barrier()

    start = time.perf_counter()
    step = jax.jit(make_step(optimizer, fun)).lower(carry, data).compile()
    compile_s = time.perf_counter() - start

    def run():
        state = carry
        for _ in range(steps):
            state, value = step(state, data)
        return state[0], value

    jax.block_until_ready(run())  # warm-up
    final = float(fun(run()[0], data))
    return Prepared(compile_s, counter.count / steps, final, run)


def part2(report: Report, n: int, clock: Clock, steps: int, repeats: int, budget: float) -> None:
    names = list(METHODS)
    report(
        f"## 2. L-BFGS step time, n = {n:,} parameters (float32)",
        "",
        "`optax.lbfgs(linesearch=jaxls.optax.scale_by_line_search(jaxls.wolfe))` against "
        f"`optax.lbfgs()` (zoom), defaults. {steps} jitted steps of optax's loop from the "
        "start timed as one call, the methods alternately; time per step = median / "
        f"{steps}. Evaluations per step: the objective's calls in those {steps} steps "
        "(counted by a host callback in a separate compile) / steps. Ratio: jaxls / optax, "
        "same run.",
        "",
        "| problem | method | time / step (ms) | ratio | evaluations / step | "
        f"f after {steps} steps | compile (s) |",
        "|---|---|---|---|---|---|---|",
    )
    for label, fun, x0, data in problems(n):
        if clock.left() <= 0:
            report(f"| {label} | | not run: the time allowed (--time-limit) is spent | | | | |")
            continue
        try:
            prepared = [prepare(METHODS[m], fun, x0, data, steps) for m in names]
            times = time_alternately([p.run for p in prepared], (), repeats, budget)
        except (RuntimeError, MemoryError) as error:
            kind = "out of memory" if out_of_memory(error) else "failed"
            report(f"| {label} | | {kind}: {first_line(error)} | | | | |")
            continue
        medians = [statistics.median(t) / steps for t in times]
        for name, p, t in zip(names, prepared, medians, strict=True):
            report(
                f"| {label} | {name} | {t * 1e3:.3g} | {t / medians[-1]:.2f} | "
                f"{p.evals_per_step:.2f} | {p.final_value:.6g} | {p.compile_s:.2f} |"
            )
        print(f"  {label}: {len(times[0])} rounds", file=sys.stderr, flush=True)
    report("")


# ---------------------------------------------------------------------------------------
# Part 3: forward versus reverse mode, f(x) = A x.


def _ax(x, a):
    return a @ x


JACOBIANS = {
    "jaxls jacfwd": jaxls.ad.jacfwd(_ax),
    "jaxls jacrev": jaxls.ad.jacrev(_ax),
    "jax jacfwd": jax.jacfwd(_ax),
    "jax jacrev": jax.jacrev(_ax),
}


def part3(report: Report, ms: list[int], clock: Clock, repeats: int, budget: float) -> None:
    names = list(JACOBIANS)
    x = jnp.linspace(-1.0, 1.0, N_INPUTS, dtype=jnp.float32)
    report(
        f"## 3. Forward vs reverse Jacobians, f(x) = A x, n = {N_INPUTS} (float32)",
        "",
        "Median seconds of jitted calls after compile and warm-up, the four alternately; "
        "max diff: largest |J_jaxls - J_jax| over |J|.",
        "",
        "| m | " + " | ".join(f"{name} (ms)" for name in names) + " | max diff |",
        "|---|" + "---|" * (len(names) + 1),
    )
    rows = []
    for m in ms:
        if clock.left() <= 0:
            report(f"| {m:,} | not run: the time allowed (--time-limit) is spent |")
            break
        a = jax.random.normal(jax.random.key(m), (m, N_INPUTS), jnp.float32)
        try:
            calls = [jax.jit(f).lower(x, a).compile() for f in JACOBIANS.values()]
            outs = [jax.block_until_ready(call(x, a)) for call in calls]
            times = time_alternately(calls, (x, a), repeats, budget)
        except (RuntimeError, MemoryError) as error:
            kind = "out of memory" if out_of_memory(error) else "failed"
            report(f"| {m:,} | {kind}: {first_line(error)} |")
            break
        scale = float(jnp.max(jnp.abs(outs[2])))
        diff = max(
            float(jnp.max(jnp.abs(outs[0] - outs[2]))), float(jnp.max(jnp.abs(outs[1] - outs[3])))
        )
        medians = [statistics.median(t) for t in times]
        rows.append((m, *medians))
        cells = " | ".join(f"{t * 1e3:.3g}" for t in medians)
        report(f"| {m:,} | {cells} | {diff / scale:.0e} |")
        del a, outs
    report("")
    if plt is not None and rows:
        m = np.array([r[0] for r in rows])
        t = np.array([r[1:] for r in rows]) * 1e3
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        assert tuple(names) == tuple(label for label, *_ in JACOBIAN_STYLES), names
        title = f"Forward vs reverse, n = {N_INPUTS}, {jax.devices()[0].device_kind}"
        draw_jacobian_times(ax, m, t, N_INPUTS, title)
        fig.tight_layout()
        report.figure(fig, "ad_fwd_vs_rev.png")


# ---------------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=str(ROOT / "benchmarks" / "gpu-results"),
        help="folder for report.md and the PNGs (benchmarks/gpu-results)",
    )
    parser.add_argument(
        "--max-problems", type=int, default=None, help="part 1's largest N (10^8; --quick: 10^3)"
    )
    parser.add_argument(
        "--params", type=int, default=None, help="part 2's parameters, even (10^6; --quick: 10^3)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a CPU smoke run (about 20 s of CPU)"
    )
    parser.add_argument(
        "--time-limit", type=float, default=440.0, help="seconds the parts may take (440)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    if quick and "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
        # Read when the backend starts, at the first device query below.
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + " --xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1"
        ).strip()
    max_problems = args.max_problems or (10**3 if quick else 10**8)
    params = args.params or (10**3 if quick else 10**6)
    if params < 2 or params % 2:
        parser.error("--params: an even number, at least 2")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    clock = Clock(args.time_limit)

    report = Report(out)
    command = " ".join(["python3 benchmarks/gpu.py", *(sys.argv[1:] if argv is None else argv)])
    header = io.StringIO()
    with contextlib.redirect_stdout(header):
        print_header(command)
    free = free_bytes()
    report(
        f"# jaxls on {jax.devices()[0].device_kind}: float32 benchmarks (issue 14)",
        "",
        *(f"{line}  " for line in header.getvalue().splitlines()),
        f"devices: {jax.devices()}; jaxlib {importlib.metadata.version('jaxlib')}, "
        f"optax {optax.__version__}, jaxls {jaxls.__version__}, matplotlib "
        f"{matplotlib.__version__ if plt is not None else 'missing (no figures)'}; "
        f"device memory free: {gb(free) if free is not None else 'not reported'}; "
        f"XLA_FLAGS: `{os.environ.get('XLA_FLAGS', '')}`",
        "",
    )

    sizes = [10**k for k in range(2, 20) if 10**k <= max_problems]
    # benchmarks/ad.py's sizes: 10 log-spaced from 1 to 30,000 (--quick: 4).
    top, count = (1000, 4) if quick else (30_000, 10)
    ms = sorted({int(v) for v in np.round(np.logspace(0, np.log10(top), count))})
    parts = [
        lambda: part1(report, sizes, clock, share=0.5),
        lambda: part2(
            report,
            params,
            clock,
            steps=5 if quick else STEPS,
            repeats=3 if quick else 50,
            budget=0.0 if quick else min(20.0, clock.left() / 6),
        ),
        lambda: part3(report, ms, clock, repeats=5 if quick else 100, budget=0.0 if quick else 2.0),
    ]
    for number, part in enumerate(parts, 1):
        if clock.left() <= 0:
            report(f"## {number}. not run: the time allowed (--time-limit) is spent", "")
            continue
        start, cpu = time.perf_counter(), time.process_time()
        part()
        report(
            f"(part {number}: {time.perf_counter() - start:.0f} s, "
            f"{time.process_time() - cpu:.0f} s of CPU)",
            "",
        )
    report(
        f"total: {time.perf_counter() - started:.0f} s, {time.process_time():.0f} s of CPU "
        "(the process's, imports included)"
    )


if __name__ == "__main__":
    main()
