"""What the benchmarks share: the header each prints first (the command that produced its
figures, and the machine: date, jax, backend and device, CPUs, Python, load average), so
that a figure in benchmarks/README.md can be traced and repeated; the timing loop that
runs the methods compared in turn; the host-side counter of an objective's calls; and the
forward- against reverse-mode Jacobian figure
that benchmarks/ad.py and benchmarks/gpu.py both draw."""

from __future__ import annotations

import datetime
import os
import platform
import time
from collections.abc import Callable, Sequence

import jax


def print_header(command: str) -> None:
    """Print ``command: ...`` and a line describing the machine."""
    print(f"command: {command}")
    print(
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"jax {jax.__version__}, {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
        f"{os.getloadavg()[0]:.1f}"
    )


def time_alternately(
    calls: Sequence[Callable], args: tuple, repeats: int, budget: float
) -> list[list[float]]:
    """The seconds of each call of ``call(*args)`` (until ready), the calls in turn, round
    after round: at least 3 rounds, then until ``repeats`` rounds or ``budget`` seconds
    spent. Alternating spreads the machine's drifts over every method alike."""
    times: list[list[float]] = [[] for _ in calls]
    spent, rounds = 0.0, 0
    while rounds < repeats and (rounds < 3 or spent < budget):
        for call, ts in zip(calls, times, strict=True):
            start = time.perf_counter()
            jax.block_until_ready(call(*args))
            ts.append(time.perf_counter() - start)
            spent += ts[-1]
        rounds += 1
    return times


JACOBIAN_STYLES = (  # label, colour, line style, marker: the columns of `draw_jacobian_times`
    ("jaxls jacfwd", "C0", "-", "o"),
    ("jaxls jacrev", "C1", "-", "o"),
    ("jax jacfwd", "C0", "--", "x"),
    ("jax jacrev", "C1", "--", "x"),
)


def draw_jacobian_times(ax, m: Sequence[int], times_ms, n: int, title: str) -> None:
    """Time per Jacobian of ``f(x) = A x`` against its outputs ``m`` (``times_ms[:, k]`` for
    the ``k``-th of `JACOBIAN_STYLES`), log-log, with the line ``m = n`` where forward and
    reverse mode make as many passes."""
    for k, (label, color, ls, marker) in enumerate(JACOBIAN_STYLES):
        ax.plot(m, times_ms[:, k], color=color, linestyle=ls, marker=marker, label=label)
    ax.axvline(n, color="grey", linewidth=0.8, linestyle=":")
    ax.text(n * 1.1, times_ms.max(), f"m = n = {n}", color="grey", va="top")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("m (outputs of f(x) = A x)")
    ax.set_ylabel("time per Jacobian (ms, jitted, median)")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)


class Counter:
    """Counts the calls of an objective, jitted or not: `wrap` adds a host callback to it
    (one tick per evaluation the compiled program makes); ``count = 0`` starts again."""

    def __init__(self):
        self.count = 0

    def tick(self, *_):
        self.count += 1

    def wrap(self, fun: Callable) -> Callable:
        def counted(*args):
            jax.debug.callback(self.tick)
            return fun(*args)

        return counted
