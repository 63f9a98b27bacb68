"""Where the test suite's time goes: a pytest plugin and its report.

As a plugin, it records for each test its CPU time and JAX's tracing, lowering and
compiling (seconds and number of programs, from `jax.monitoring`'s duration events), and
writes one JSON file per process (per xdist worker) into ``$COMPILE_PROFILE_OUT``::

    PYTHONPATH=benchmarks COMPILE_PROFILE_OUT=/tmp/profile \\
        python3 -m pytest -q -p compile_profile tests/test_interval.py

As a script, it reports such a folder, the costliest first, by test, by test function (the
parametrisations together), by file, or by program (the name of the function compiled, or of
the primitive for an operation run eagerly: how many programs of that name, and their
seconds of tracing, lowering and compiling)::

    python3 benchmarks/compile_profile.py /tmp/profile --by file

Subprocesses that tests start are not profiled; their time is outside the tests' CPU time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import time

import pytest

EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
}
COLUMNS = ("cpu", "trace", "lower", "compile")

_current = ["<collection>"]
_stats: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
# Per test, the programs compiled by name (the jitted function's, or the primitive's for an
# operation run eagerly): "name" -> number, "name:s" -> seconds of tracing, lowering, compiling.
_programs: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def _record(event: str, duration: float, fun_name: str = "?", **_) -> None:
    key = EVENTS.get(event)
    if key is not None:
        # Tracing names the function ``f``, lowering and compiling ``jit(f)``.
        if fun_name.startswith("jit(") and fun_name.endswith(")"):
            fun_name = fun_name[4:-1]
        _stats[_current[0]][key] += duration
        _stats[_current[0]][key + "_count"] += 1
        _programs[_current[0]][f"{fun_name}:s"] += duration
        if key == "compile":
            _programs[_current[0]][fun_name] += 1


def pytest_configure(config) -> None:
    from jax import monitoring

    monitoring.register_event_duration_secs_listener(_record)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current[0] = item.nodeid
    start = time.process_time()
    try:
        return (yield)
    finally:
        _stats[item.nodeid]["cpu"] += time.process_time() - start
        _current[0] = "<between tests>"


def pytest_unconfigure(config) -> None:
    folder = pathlib.Path(os.environ.get("COMPILE_PROFILE_OUT", "compile-profile"))
    folder.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (folder / f"{worker}.json").write_text(json.dumps(_stats))
    (folder / f"{worker}.programs").write_text(json.dumps(_programs))


def _group(nodeid: str, by: str) -> str:
    if by == "file":
        return nodeid.split("::")[0]
    if by == "function":
        return nodeid.split("[")[0]
    return nodeid


def report(folder: str, by: str = "test", rows: int = 40) -> str:
    """The table of a profile folder: totals, then the ``rows`` costliest groups."""
    stats: dict[str, dict] = {}
    for path in sorted(pathlib.Path(folder).glob("*.json")):
        stats.update(json.loads(path.read_text()))
    groups: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for nodeid, values in stats.items():
        groups[_group(nodeid, by)].update(values)
        groups[_group(nodeid, by)]["tests"] += 1
    total = sum(map(collections.Counter, stats.values()), collections.Counter())
    lines = [
        f"total: CPU {total['cpu']:.1f} s; JAX tracing {total['trace']:.1f} s, lowering "
        f"{total['lower']:.1f} s, compiling {total['compile']:.1f} s "
        f"({int(total['compile_count'])} programs)",
        f"{by:88s} {'tests':>5s} " + " ".join(f"{c:>7s}" for c in COLUMNS) + " programs",
    ]
    for name, values in sorted(groups.items(), key=lambda item: -item[1]["cpu"])[:rows]:
        cells = " ".join(f"{values[c]:7.1f}" for c in COLUMNS)
        lines.append(
            f"{name[:88]:88s} {values['tests']:5d} {cells} {int(values['compile_count']):8d}"
        )
    return "\n".join(lines)


def programs(folder: str, rows: int = 40) -> str:
    """The programs compiled, by name, the costliest first: how many were compiled, and
    their seconds of tracing, lowering and compiling together."""
    names: collections.Counter = collections.Counter()
    for path in sorted(pathlib.Path(folder).glob("*.programs")):
        for counts in json.loads(path.read_text()).values():
            names.update(counts)
    seconds = {k.removesuffix(":s"): v for k, v in names.items() if k.endswith(":s")}
    lines = [f"{'program':60s} {'compiled':>8s} {'seconds':>8s}"]
    for name, value in sorted(seconds.items(), key=lambda item: -item[1])[:rows]:
        lines.append(f"{name[:60]:60s} {names[name]:8d} {value:8.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="the COMPILE_PROFILE_OUT of a profiled run")
    parser.add_argument("--by", choices=("test", "function", "file", "program"), default="test")
    parser.add_argument("--rows", type=int, default=40)
    args = parser.parse_args()
    if args.by == "program":
        print(programs(args.folder, args.rows))
    else:
        print(report(args.folder, args.by, args.rows))


if __name__ == "__main__":
    main()
