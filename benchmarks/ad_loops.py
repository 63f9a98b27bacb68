"""Reverse mode through a while loop: memory against recomputation (issue 11), in one run.

    PYTHONPATH=. python3 benchmarks/ad_loops.py          # N = 64 to 4096 (half a minute)
    PYTHONPATH=. python3 benchmarks/ad_loops.py --quick  # N = 64, 256 (ten seconds)

The loop: ``N`` iterations of an RNN-like body, ``h = tanh(h W + b) + 0.5 h`` on a batch of
32 states of width 64 (float32, JAX's default), written as a `lax.while_loop` on a counter;
the loss ``sum(h_N^2)``, differentiated with respect to ``(W, b, h_0)``. Modes:

* ``jaxls stored``: ``jaxls.ad.grad(loss, max_loop_steps=N)``, the tape of every iteration
  kept (memory ``O(N)``, each iteration evaluated once);
* ``jaxls k=sqrt``: ``loop_checkpoints=ceil(sqrt(N))``, two levels of checkpointing
  (``O(sqrt N)`` memory, each iteration evaluated twice);
* ``jaxls bisection``: ``loop_checkpoints=2``, ``log2 N`` levels (``O(log N)`` memory,
  ``2 + (log2 N - 2) / 2`` evaluations per iteration);
* ``jax scan`` (the peer): `jax.grad` of the same loop as a ``lax.fori_loop(0, N, ...)``
  with a static trip count, which jax runs as a scan that stores every iteration.

For each: XLA's temporary memory for the jitted gradient
(``jax.jit(g).lower(*args).compile().memory_analysis().temp_size_in_bytes``, the buffers
besides arguments and outputs: the tapes, the checkpoints and the intermediates), the run
time (the jitted gradient compiled and called once or twice, then called alternately with
the other modes, up to ``--repeats`` rounds, each call timed to ``block_until_ready``; the
median), the compile time (``lower(*args).compile()`` of a fresh function, once), the body's
evaluations per iteration (its ``tanh`` equations counted in the jaxpr, each times the
lengths of the scans around it), and the largest difference from jax's gradient (over the
largest value). Ratios are to jax's scan, measured in the same run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxls.ad
from benchmarks.machine import print_header, time_alternately

BATCH, WIDTH = 32, 64


def step(params, h):
    w, b = params
    return jnp.tanh(h @ w + b) + 0.5 * h


def while_loss(params, h0, steps):
    """The loop as jaxls differentiates it: a while loop (its trip count is not static)."""
    body = lambda c: (c[0] + 1, step(params, c[1]))
    _, h = lax.while_loop(lambda c: c[0] < steps, body, (jnp.int32(0), h0))
    return jnp.sum(h**2)


def fori_loss(params, h0, steps: int):
    """The same loop with a static trip count: jax runs it as a scan and differentiates it."""
    return jnp.sum(lax.fori_loop(0, steps, lambda i, h: step(params, h), h0) ** 2)


def problem(key):
    k1, k2, k3 = jax.random.split(key, 3)
    w = 0.9 * jax.random.normal(k1, (WIDTH, WIDTH), jnp.float32) / np.sqrt(WIDTH)
    b = 0.1 * jax.random.normal(k2, (WIDTH,), jnp.float32)
    h0 = jax.random.normal(k3, (BATCH, WIDTH), jnp.float32)
    return (w, b), h0


class Mode(NamedTuple):
    name: str
    make: Callable[[int], Callable]  # make(N) -> a fresh gradient function of (params, h0)


def jaxls_mode(name: str, checkpoints: Callable[[int], int | None]) -> Mode:
    def make(n):
        grad = jaxls.ad.grad(
            while_loss, argnums=(0, 1), max_loop_steps=n, loop_checkpoints=checkpoints(n)
        )
        return lambda params, h0: grad(params, h0, n)

    return Mode(name, make)


MODES = [
    jaxls_mode("jaxls stored", lambda n: None),
    jaxls_mode("jaxls k=sqrt", lambda n: math.isqrt(n - 1) + 1),
    jaxls_mode("jaxls bisection", lambda n: 2),
    Mode("jax scan", lambda n: lambda p, h0: jax.grad(fori_loss, argnums=(0, 1))(p, h0, n)),
]
PEER = "jax scan"


def evaluations(jaxpr, primitive: str) -> int:
    """How many times ``primitive`` runs in ``jaxpr`` if every `lax.cond` takes its costlier
    branch: its equations, those in a scan's body times the scan's length (a while loop's
    body counts for none: the one jaxls's forward sweep ends with runs no iteration)."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == primitive:
            total += 1
        elif name == "scan":
            total += eqn.params["length"] * evaluations(eqn.params["jaxpr"].jaxpr, primitive)
        elif name == "cond":
            total += max(evaluations(b.jaxpr, primitive) for b in eqn.params["branches"])
        elif name != "while":
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                total += evaluations(sub, primitive)
    return total


def max_rel_error(a, b) -> float:
    """``max |a - b| / max |b|`` over all leaves."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    num = max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(la, lb, strict=True))
    return num / max(float(jnp.max(jnp.abs(y))) for y in lb)


class Row(NamedTuple):
    n: int
    mode: str
    temp_bytes: int
    run_s: float
    compile_s: float
    evaluations: float  # of the body, per iteration
    error: float


def measure(n: int, args: tuple, repeats: int, budget: float) -> list[Row]:
    compiled, compile_s, evals = [], [], []
    for mode in MODES:
        fun = mode.make(n)
        start = time.perf_counter()
        compiled.append(jax.jit(fun).lower(*args).compile())
        compile_s.append(time.perf_counter() - start)
        evals.append(evaluations(jax.make_jaxpr(fun)(*args).jaxpr, "tanh") / n)
    outs = []
    for f in compiled:  # warm up
        start = time.perf_counter()
        outs.append(jax.block_until_ready(f(*args)))
        if time.perf_counter() - start < 2.0:
            jax.block_until_ready(f(*args))
    times = time_alternately(compiled, args, repeats, budget)
    reference = outs[[m.name for m in MODES].index(PEER)]
    return [
        Row(
            n,
            mode.name,
            c.memory_analysis().temp_size_in_bytes,
            statistics.median(ts),
            cs,
            ev,
            max_rel_error(out, reference),
        )
        for mode, c, ts, cs, ev, out in zip(
            MODES, compiled, times, compile_s, evals, outs, strict=True
        )
    ]


def print_table(rows: list[Row]) -> None:
    print(
        "| N | mode | temp memory (MB) | ratio to jax | run (ms) | ratio to jax | "
        "compile (s) | body evaluations per iteration | max rel. diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        peer = next(r for r in rows if r.n == row.n and r.mode == PEER)
        print(
            f"| {row.n} | {row.mode} | {row.temp_bytes / 1e6:.3g} | "
            f"{row.temp_bytes / peer.temp_bytes:.3g} | {row.run_s * 1e3:.3g} | "
            f"{row.run_s / peer.run_s:.2f} | {row.compile_s:.2f} | {row.evaluations:.3g} | "
            f"{row.error:.0e} |"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 64, 256; ten seconds")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="trip counts N")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (max)")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    sizes = args.sizes or ([64, 256] if args.quick else [64, 256, 1024, 4096])
    repeats = args.repeats or (10 if args.quick else 50)
    budget = 0.5 if args.quick else 5.0

    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["PYTHONPATH=. python3 benchmarks/ad_loops.py", *given])
    print_header(command)
    print(
        f"loop: h = tanh(h W + b) + 0.5 h, h {BATCH}x{WIDTH}, float32; run: median of up to "
        f"{repeats} jitted calls after warm-up (modes alternately); compile: one "
        "jax.jit(fresh).lower(*args).compile()"
    )
    print()
    params, h0 = problem(jax.random.PRNGKey(0))
    rows = []
    for n in sizes:
        print(f"N = {n} ...", file=sys.stderr)
        rows += measure(n, (params, h0), repeats, budget)
    print_table(rows)


if __name__ == "__main__":
    main()
