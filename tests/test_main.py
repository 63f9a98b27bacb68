"""`python -m jaxls`, the main job named in the README: its sections and tables, its numbers
against independent oracles, its pictures, its options and its errors.

One quick run in float32 (`quick`) serves most tests; one in float64 without matplotlib
serves two more. Tables are read by the column spans of their rule line (``----  ---``).
"""

import contextlib
import io
import math
import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxls
import jaxls.__main__ as main_module
from jaxls import zoo

# Two module-scoped runs of the job serve every test: all on one worker (tests/conftest.py).
pytestmark = pytest.mark.first

QUICK = ["--quick", "--problems", "64"]
TITLES = (
    "[1/6] Exact line searches on 4 problems of jaxls.zoo.INTERVAL",
    "[2/6] Evaluations against tolerance on the lecture's function (its Figure 18)",
    "[3/6] Golden-section search on 64 problems at once (jax.vmap)",
    "[4/6] Rosenbrock's function by 2 optimiser and line search pairs (optax)",
    "[5/6] The lecture's automatic-differentiation example, node by node (jaxls.ad)",
    "[6/6] Forward against reverse mode: the Jacobian of f(x) = A x, n = 100 inputs",
)
COLUMNS = (  # the header row of each section's tables
    (("problem", "evals", "|x - x*|"),),
    (("tol", *main_module.METHODS),),
    (("how", "problems", "time (ms)", "problems/s", "max |x - c|", "status"),),
    (
        (
            "optimiser",
            "line search",
            "iterations",
            "evaluations",
            "||grad f||",
            "|x - x*|",
            "f - f*",
            "status",
        ),
    ),
    (("node", "operation", "inputs", "value", "dv/dw1", "dL/dv"), ("gradient", "dL/dw1", "dL/dw2")),
    (("m", "forward (ms)", "reverse (ms)", "reverse/forward", "faster"),),
)
PNG = b"\x89PNG\r\n\x1a\n"


def run_job(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main_module.main(argv)
    return out.getvalue()


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """``--quick --problems 64`` in float32, in a fresh current directory (pictures in the
    default folder), counting the traces of the exact searches' jitted function."""
    here = tmp_path_factory.mktemp("quick")
    traces: list = []
    problem_fun = main_module.problem_fun

    def counted(index):
        traces.append(index)
        return problem_fun(index)

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(here)
        patch.setattr(main_module, "problem_fun", counted)
        main_module.solve.clear_cache()  # count from scratch, whatever ran before
        text = run_job(QUICK)
    return text, here, traces


def section(text: str, number: int) -> str:
    start = text.index(f"[{number}/6]")
    end = text.index(f"[{number + 1}/6]") if number < 6 else text.index("\nDone in")
    return text[start:end]


def assert_tables(text: str) -> None:
    """Each section prints its tables, with their columns' labels, every row complete."""
    for number, headers in enumerate(COLUMNS, start=1):
        found = tables(section(text, number))
        assert [tuple(t[0][: len(h)]) for t, h in zip(found, headers, strict=True)] == list(headers)
        for table in found:
            assert len(table) > 1 and all(len(row) == len(table[0]) for row in table)


def tables(block: str) -> list[list[list[str]]]:
    """Each table of ``block`` as rows of cells (the header row first), cut at the column
    spans of the rule under the header."""
    lines = block.splitlines()
    found = []
    for k, rule in enumerate(lines):
        if not re.fullmatch(r"-+( +-+)*", rule):
            continue
        spans = [m.span() for m in re.finditer(r"-+", rule)]
        rows = [lines[k - 1]]
        for line in lines[k + 1 :]:
            if not line or line.startswith(" "):
                break
            rows.append(line)
        found.append([[row[a:b].strip() for a, b in spans] for row in rows])
    return found


def rows_by_name(rows: list[list[str]]) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in rows[1:]}


def number(cell: str) -> float:
    return float(cell.rstrip("~!").replace(",", ""))


# --- sections, tables and compilation ----------------------------------------------------------


def test_every_section_is_announced_with_its_tables(quick):
    text, _, _ = quick
    lines = text.splitlines()
    assert lines[0].startswith(f"jaxls {jaxls.__version__}, jax {jax.__version__}, float32")
    positions = [text.index(title) for title in TITLES]
    assert positions == sorted(positions)
    assert_tables(text)
    # The work of each section is reported as it goes, with its time.
    for number in (1, 2, 3, 4, 6):
        assert re.search(r"^  \S.* \(\d+\.\d s\)$", section(text, number), re.MULTILINE)
    # Each table is introduced by a sentence (a paragraph indented by two spaces) just above
    # its header (and its row of method names).
    for number in range(1, 7):
        block = section(text, number).splitlines()
        rule = next(k for k, line in enumerate(block) if line.startswith("---"))
        above = block[rule - 3] if "dichotomy" in block[rule - 2] else block[rule - 2]
        assert re.match(r"  \S", above)
    assert text.rstrip().splitlines()[-1].startswith("Done in")


def test_each_search_compiles_once_for_all_problems_and_tolerances(quick):
    _, _, traces = quick
    # Problems and tolerances are data: one trace per search, Fibonacci one per budget.
    budgets = {fibonacci_budget(p.upper - p.lower, 1e-2) for p in zoo.INTERVAL[:4]}
    budgets |= {fibonacci_budget(6.0, tol) for tol in main_module.QUICK_SWEEP["float32"]}
    assert len(traces) == len(main_module.METHODS) - 1 + len(budgets)


# --- sections 1 and 2 against the searches called directly ---------------------------------


def fibonacci_budget(width: float, tol: float) -> int:
    """The fewest N with width / F_N <= tol, from jaxls's own Fibonacci numbers."""
    from jaxls._src.interval.fibonacci import fibonacci_numbers

    numbers = fibonacci_numbers(60)
    return next(n for n in range(1, 60) if width / numbers[n] <= tol)


def golden_evals(width: float, tol: float) -> int:
    """Golden section's evaluations to certify tol (its docstring's closed form)."""
    return max(1, math.ceil(math.log(tol / width) / math.log((math.sqrt(5.0) - 1.0) / 2.0)))


@pytest.fixture(scope="module")
def lecture_searches():
    """Each search on zoo.lecture, jitted with tol as data (Fibonacci: for tol = 1e-2): the
    calls a user would make."""
    searches = {
        m: jax.jit(
            lambda tol, m=m: getattr(jaxls, m)(zoo.lecture, 0.0, 6.0, tol=tol, max_evals=500)
        )
        for m in main_module.METHODS
        if m != "fibonacci"
    }
    fibonacci = jaxls.fibonacci(zoo.lecture, 0.0, 6.0, fixed_evals=fibonacci_budget(6.0, 1e-2))
    searches["fibonacci"] = lambda tol: fibonacci if tol == 1e-2 else None
    return searches


def expected_cell(res, tol: float) -> tuple[str, str]:
    """The (evals, |x - x*|) cells for a result: flag '~' for ROUNDING, '!' for failures."""
    x, lower, upper = float(res.x), float(res.lower), float(res.upper)
    status = jaxls.Status(int(res.status))
    certified = status == jaxls.Status.SUCCESS and max(x - lower, upper - x) <= tol
    flag = "" if certified else ("~" if status == jaxls.Status.ROUNDING else "!")
    return f"{int(res.num_evals)}{flag}", f"{abs(x - 2.0 * math.sqrt(2.0)):.1e}"


def test_zoo_table_matches_the_searches_called_directly(quick, lecture_searches):
    text, _, _ = quick
    (table,) = tables(section(text, 1))
    rows = rows_by_name(table)
    assert list(rows) == [p.name for p in zoo.INTERVAL[:4]] + ["total / max"]
    methods = main_module.METHODS
    # The lecture's row, against each search called on zoo.lecture directly.
    lecture = rows["lecture"]
    for k, method in enumerate(methods):
        assert tuple(lecture[2 * k : 2 * k + 2]) == expected_cell(
            lecture_searches[method](1e-2), 1e-2
        )
    for problem in zoo.INTERVAL[:4]:
        cells = rows[problem.name]
        width = problem.upper - problem.lower
        golden, fibonacci = cells[2], cells[4]
        if not golden.endswith(("~", "!")):  # certified: exactly the closed form's count
            assert int(golden) == golden_evals(width, 1e-2)
        budget = fibonacci_budget(width, 1e-2)
        assert int(fibonacci.rstrip("~")) == budget or fibonacci.endswith("~")
        for k in range(len(methods)):
            evals, error = cells[2 * k], float(cells[2 * k + 1])
            assert not evals.endswith("!")  # no search fails on the zoo in float32
            if not evals.endswith("~"):  # certified within tol
                assert error <= 1e-2
    totals = rows["total / max"]
    for k in range(len(methods)):
        column = [rows[p.name][2 * k : 2 * k + 2] for p in zoo.INTERVAL[:4]]
        assert int(totals[2 * k]) == sum(int(number(e)) for e, _ in column)
        assert float(totals[2 * k + 1]) == max(float(err) for _, err in column)


def test_tolerance_sweep_matches_the_searches_called_directly(quick, lecture_searches):
    text, _, _ = quick
    (table,) = tables(section(text, 2))
    assert table[0] == ["tol", *main_module.METHODS]
    tols = main_module.QUICK_SWEEP["float32"]
    assert [row[0] for row in table[1:]] == [f"{t:.0e}" for t in tols]
    for row, tol in zip(table[1:], tols, strict=True):
        for method, cell in zip(main_module.METHODS, row[1:], strict=True):
            res = lecture_searches[method](tol)
            if res is not None:
                assert cell == expected_cell(res, tol)[0]
            else:  # Fibonacci: its budget, unless it stopped early with ROUNDING
                budget = fibonacci_budget(6.0, tol)
                assert cell == str(budget) or (cell.endswith("~") and int(cell[:-1]) <= budget)
    # float32 resolves 1e-1 and 1e-2 (golden section certifies them, with its closed-form
    # count) but not 1e-3: there every search is marked ROUNDING, none claims success.
    golden = [row[2] for row in table[1:]]
    assert golden[:2] == [str(golden_evals(6.0, t)) for t in tols[:2]]
    assert all(cell.endswith("~") for cell in table[-1][1:])
    assert "no search certified a tol below 0.01" in section(text, 2)


# --- section 3 ------------------------------------------------------------------------------


def test_vmap_throughput_reports_certified_searches(quick):
    text, _, _ = quick
    (table,) = tables(section(text, 3))
    rows = rows_by_name(table)
    loop, batch = rows["one jitted call per problem"], rows["one call of jax.vmap"]
    assert batch[0] == "64" and loop[0] == "50"
    assert batch[4] == "64 SUCCESS" and loop[4] == "50 SUCCESS"
    # The oracle: the minimisers are the centres c, drawn as the job draws them (the
    # searches themselves, compiled by the job, are called again).
    centres = np.random.default_rng(0).uniform(*main_module.CENTRES, 64).astype(np.float32)
    res = main_module.golden_batch(centres, 1e-2)
    assert float(batch[3]) == float(f"{np.max(np.abs(np.asarray(res.x) - centres)):.1e}")
    assert float(batch[3]) <= 1e-2 and float(loop[3]) <= 1e-2
    for row in (loop, batch):
        rate = number(row[0]) / (number(row[1]) / 1e3)  # problems / time
        assert number(row[2]) == pytest.approx(rate, rel=0.01)


# --- section 4 ------------------------------------------------------------------------------


def test_rosenbrock_rows_reach_the_minimiser(quick):
    text, _, _ = quick
    block = section(text, 4)
    (table,) = tables(block)
    assert [row[:2] for row in table[1:]] == [list(run) for run in main_module.QUICK_RUNS]
    for row in table[1:]:
        assert row[-1] == "SUCCESS"
        assert float(row[4]) <= 1e-4  # ||grad f||, the stopping test
        assert float(row[5]) <= 1e-2  # |x - x*|, x* = (1, 1) in closed form
        assert float(row[6]) <= 1e-6  # f - f*, f* = 0
    steepest, lbfgs = (int(number(row[2])) for row in table[1:])
    assert steepest > 1000 and lbfgs < 100
    # The condition number quoted, against jax.hessian.
    hessian = jax.jit(jax.hessian(main_module.rosenbrock))(jnp.ones(2))
    eigenvalues = np.linalg.eigvalsh(np.asarray(hessian, np.float64))
    flat = " ".join(block.split())
    assert f"condition number {eigenvalues[1] / eigenvalues[0]:,.0f}" in flat
    assert f"takes {steepest:,} steps" in flat and f"takes {lbfgs:,}." in flat


def test_rosenbrock_history_is_that_of_the_plain_optimiser(quick):
    # The recording transformation changes nothing: the same run as the optimiser alone
    # (the job's own run is cached), and its history ends where the stopping test holds.
    name, rule = main_module.QUICK_RUNS[0]
    descent = main_module.run_descent(name, rule, "float32")
    start = jnp.asarray(main_module.ROSENBROCK_START)
    plain = jax.jit(
        lambda x: jaxls.optax.minimize(
            main_module.rosenbrock,
            x,
            main_module.optimiser(name, rule),
            max_iterations=main_module.MAX_ITERATIONS,
            grad_tol=1e-4,
        )
    )(start)
    res = descent.result
    assert int(res.num_iterations) == int(plain.num_iterations)
    assert int(res.num_evals) == int(plain.num_evals)
    np.testing.assert_allclose(np.asarray(res.params), np.asarray(plain.params), rtol=1e-6)
    assert len(descent.values) == len(descent.grad_norms) == int(res.num_iterations) + 1
    assert descent.values[0] == pytest.approx(24.2)  # f(-1.2, 1)
    assert descent.grad_norms[0] == pytest.approx(
        float(optax.tree.norm(jax.grad(main_module.rosenbrock)(start)))
    )
    assert np.all(descent.grad_norms[:-1] > 1e-4) and descent.grad_norms[-1] <= 1e-4


# --- section 5 ------------------------------------------------------------------------------


def test_ad_table_is_the_lecture_graph_with_exact_numbers(quick):
    text, _, _ = quick
    nodes, gradients = tables(section(text, 5))
    w1, w2 = 2.0, 5.0
    v1 = math.log(w1)
    v2 = w2 * v1
    v3 = math.sqrt(v2)
    dv1, dv2 = 1 / w1, w2 / w1
    dv3 = dv2 / (2 * v3)
    outer = 1 + 1 / (2 * v3)  # dL/dv2
    expected = {  # name: (operation, inputs, value, tangent dv/dw1, adjoint dL/dv)
        "w1": ("input", "", w1, 1.0, outer * w2 / w1),
        "w2": ("input", "", w2, 0.0, outer * v1),
        "v1": ("log", "w1", v1, dv1, outer * w2),
        "v2": ("mul", "w2, v1", v2, dv2, outer),
        "v3": ("sqrt", "v2", v3, dv3, 1.0),
        "v4": ("add", "v2, v3", v2 + v3, dv2 + dv3, 1.0),
    }
    rows = rows_by_name(nodes)
    assert list(rows) == list(expected)
    for name, (operation, inputs, *numbers) in expected.items():
        assert rows[name][:2] == [operation, inputs]
        np.testing.assert_allclose(
            [float(c) for c in rows[name][2:]], numbers, rtol=2e-6, atol=1e-6
        )
    grads = {how: [float(c) for c in row] for how, row in rows_by_name(gradients).items()}
    closed = [outer * w2 / w1, outer * v1]
    theirs = [float(g) for g in jax.grad(main_module.lecture_loss, argnums=(0, 1))(w1, w2)]
    np.testing.assert_allclose(grads["jax.grad"], theirs, rtol=1e-6)
    np.testing.assert_allclose(grads["jaxls.ad.grad (reverse mode)"], closed, rtol=1e-6)
    assert grads["closed form"] == [float(f"{g:.9f}") for g in closed]
    # The difference quoted: the larger of the two reverse modes' against the closed form.
    flat = " ".join(section(text, 5).split())
    quoted = float(re.search(r"largest relative difference is (\S+),", flat).group(1))
    ours = grads["jaxls.ad.grad (reverse mode)"]
    largest = max(
        abs(g - c) / c for row in (ours, theirs) for g, c in zip(row, closed, strict=True)
    )
    assert quoted == pytest.approx(largest, rel=0.2, abs=2e-9)  # from 9-digit printouts
    assert quoted < 2 * np.finfo(np.float32).eps


# --- section 6 ------------------------------------------------------------------------------


def test_jacobian_timings_are_consistent(quick):
    text, _, _ = quick
    block = section(text, 6)
    (table,) = tables(block)
    assert [row[0] for row in table[1:]] == ["10", "100", "1,000"]
    for _, forward, reverse, ratio, faster in table[1:]:
        forward, reverse = float(forward), float(reverse)
        assert forward > 0 and reverse > 0
        assert float(ratio) == pytest.approx(reverse / forward, rel=0.02, abs=0.01)
        if reverse != forward:  # as printed, to 3 significant digits
            assert faster == ("reverse" if reverse < forward else "forward")
    assert "max |J - A| over both modes and every m = 0.0e+00." in block
    # The oracle for that line: jaxls's Jacobian of A x is A (m = 10, compiled by the job).
    matrix = np.random.default_rng(10).standard_normal((10, 100)).astype(np.float32)
    jacobian = main_module.jacobian_reverse(matrix, np.ones(100, np.float32))
    np.testing.assert_array_equal(np.asarray(jacobian), matrix)


# --- pictures --------------------------------------------------------------------------------


def test_pictures_are_written_to_a_new_folder_that_is_named(quick):
    text, here, _ = quick
    (folder,) = [p for p in here.iterdir()]
    assert re.fullmatch(r"jaxls-output-\d{8}-\d{6}", folder.name)
    assert f"Pictures go to a new folder {folder.name}/." in text.splitlines()[1]
    assert f"\nPictures, in {folder.name}/:\n" in text
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(main_module.PICTURES.values())
    for name in names:
        assert f"  {folder.name}/{name}\n" in text
        assert_png(folder / name)


def assert_png(path: Path) -> None:
    """A valid PNG of a real figure: the magic bytes, a readable image of a decent size,
    not of one colour."""
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG
    assert path.stat().st_size > 10_000
    image = matplotlib.image.imread(path)[..., :3]
    assert image.shape[0] >= 400 and image.shape[1] >= 600
    drawn = np.any(image < 0.9, axis=-1)  # not white: lines, text, axes
    assert 0.01 < drawn.mean() < 0.5 and len(np.unique(image[drawn])) > 20


def test_pictures_go_into_an_existing_folder_named_by_out(tmp_path):
    (tmp_path / "keep.txt").write_text("not touched")
    pictures = main_module.Pictures(tmp_path, available=True)
    timings = [main_module.JacobianTiming(m, 1e-4 * m**0.5, 1e-5 * m, 0.0) for m in (1, 100, 10**4)]
    pictures.draw("jacobian", main_module.plot_jacobians, timings, "float32")
    assert pictures.folder == tmp_path and pictures.written == [
        tmp_path / main_module.PICTURES["jacobian"]
    ]
    assert (tmp_path / "keep.txt").read_text() == "not touched"
    assert_png(pictures.written[0])


def test_the_default_folder_is_never_an_existing_one(tmp_path):
    base = tmp_path / "jaxls-output-20250101-000000"
    assert main_module.unused_folder(base) == base
    base.mkdir()
    (tmp_path / f"{base.name}-2").mkdir()
    assert main_module.unused_folder(base) == tmp_path / f"{base.name}-3"


# --- float64, without matplotlib ---------------------------------------------------------------


@pytest.fixture(scope="module")
def float64_without_matplotlib(tmp_path_factory):
    here = tmp_path_factory.mktemp("float64")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(here)
        patch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
        text = run_job([*QUICK[:1], "--problems", "16", "--dtype", "float64"])
    return text, here


def test_float64_runs_inside_enable_x64_only(float64_without_matplotlib):
    text, _ = float64_without_matplotlib
    assert "float64" in text.splitlines()[0]
    assert not jax.config.jax_enable_x64 and jnp.zeros(()).dtype == jnp.float32  # left as it was
    # tolerances float32 cannot resolve, certified: float64 it was
    (sweep,) = tables(section(text, 2))
    rows = {row[0]: row[1:] for row in sweep[1:]}
    assert not rows["1e-05"][1].endswith(("~", "!"))  # golden section certifies 1e-5
    assert int(rows["1e-05"][1]) == golden_evals(6.0, 1e-5)
    (zoo_table,) = tables(section(text, 1))
    assert "tol = 1e-06" in " ".join(section(text, 1).split())
    assert all(float(row[4]) <= 1e-6 for row in zoo_table[1:-1] if not row[3].endswith("~"))
    (rosenbrock,) = tables(section(text, 4))
    assert all(row[-1] == "SUCCESS" and float(row[4]) <= 1e-6 for row in rosenbrock[1:])


def test_without_matplotlib_one_line_says_so_and_every_table_is_printed(float64_without_matplotlib):
    text, here = float64_without_matplotlib
    notes = [line for line in text.splitlines() if "matplotlib" in line]
    assert notes[0] == text.splitlines()[1]  # at the start, on one line
    assert 'pip install "jaxls[plots]"' in notes[0]
    assert "Pictures go to" not in text and "drawing" not in text
    assert_tables(text)
    assert list(here.iterdir()) == []  # no folder made


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--problems", "0"], "--problems"),
        (["--problems", "-5"], "--problems"),
        (["--problems", "many"], "--problems"),
        (["--tol", "-1"], "--tol"),
        (["--tol", "0"], "--tol"),
        (["--tol", "nan"], "--tol"),
        (["--tol", "inf"], "--tol"),
        (["--dtype", "float16"], "--dtype"),
        (["--out", "FILE"], "--out"),
        (["--out", "FILE/below"], "--out"),
    ],
)
def test_bad_values_are_one_line_errors_before_any_work(
    argv, option, tmp_path, capsys, monkeypatch
):
    (tmp_path / "FILE").write_text("a file")
    argv = [str(tmp_path / a) if a.startswith("FILE") else a for a in argv]
    monkeypatch.setattr(main_module, "zoo_comparison", pytest.fail)  # no work may start
    with pytest.raises(SystemExit) as exit:
        main_module.main(["--quick", *argv])
    assert exit.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""  # no header, no section
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("python -m jaxls: error: argument") and option in err


def test_options_and_their_defaults():
    parse = main_module.parse
    assert parse([]) == main_module.Settings("float32", False, 100_000, 1e-2, None)
    assert parse(["--quick", "--dtype", "float64"]) == main_module.Settings(
        "float64", True, 1_000, 1e-6, None
    )
    assert parse(["--x64"]).dtype == "float64"  # the former option, an alias
    assert parse(["--problems", "7", "--tol", "3e-2", "--out", "pics"]) == main_module.Settings(
        "float32", False, 7, 3e-2, Path("pics")
    )
    text = main_module.parser().format_help()
    for option in ("--out DIR", "--quick", "--dtype {float32,float64}", "--problems N", "--tol T"):
        assert option in text
