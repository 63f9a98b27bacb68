"""`python -m jaxls`, the main job named in the README, runs and reports every search."""

import jaxls.__main__ as main_module
from jaxls import zoo


def count_traces(monkeypatch) -> list:
    """Record each trace of the comparison's jitted search (one `problem_fun` call each)."""
    traces: list = []
    problem_fun = main_module.problem_fun

    def counted(index):
        traces.append(index)
        return problem_fun(index)

    monkeypatch.setattr(main_module, "problem_fun", counted)
    main_module.solve.clear_cache()  # count from scratch, whatever ran before in this process
    return traces


def assert_compiled_once_per_search(traces: list, rows: list[str]) -> None:
    # The problems are data: each search compiles once for all of them, Fibonacci once per
    # budget (golden section's evaluations, the third column), never once per problem.
    budgets = {int(row.split()[3].rstrip("~!")) for row in rows}
    assert len(traces) == len(main_module.METHODS) - 1 + len(budgets)


def test_main_job_prints_every_search_and_problem(capsys, monkeypatch):
    traces = count_traces(monkeypatch)
    main_module.main(["--problems", "1000"])
    out = capsys.readouterr().out
    assert "float32" in out.splitlines()[0]  # JAX's default configuration
    for name in main_module.METHODS:
        assert name in out
    for problem in zoo.INTERVAL:
        assert problem.name in out
    assert "problems/s" in out
    names = {p.name for p in zoo.INTERVAL}
    rows = [line for line in out.splitlines() if line.split() and line.split()[0] in names]
    assert len(rows) == len(zoo.INTERVAL)
    assert not any("!" in row for row in rows)  # "!" marks a failed search ("~": ROUNDING)
    assert_compiled_once_per_search(traces, rows)
    # The optax rules reach the minimiser, and the AD table is the lecture's graph.
    training = [line for line in out.splitlines() if "iterations" in line and "evaluations" in line]
    assert len(training) == 2 and all(line.rstrip().endswith("SUCCESS") for line in training)
    for node in ("v1    log", "v2    mul", "v3    sqrt", "v4    add"):
        assert node in out


def test_main_job_runs_in_float64_with_x64(capsys, monkeypatch):
    traces = count_traces(monkeypatch)
    main_module.main(["--problems", "100", "--x64"])
    out = capsys.readouterr().out
    assert "float64" in out.splitlines()[0]
    names = {p.name for p in zoo.INTERVAL}
    rows = [line for line in out.splitlines() if line.split() and line.split()[0] in names]
    assert len(rows) == len(zoo.INTERVAL) and not any("!" in row for row in rows)
    assert_compiled_once_per_search(traces, rows)
    training = [line for line in out.splitlines() if "iterations" in line and "evaluations" in line]
    assert len(training) == 2 and all(line.rstrip().endswith("SUCCESS") for line in training)
