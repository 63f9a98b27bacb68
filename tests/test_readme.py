"""The README's Python snippets run as pasted and print what the README says they print.

Every ```python block of README.md runs in a fresh namespace (nothing carried over from an
earlier block), in one fresh interpreter in JAX's default configuration (x64 off, as a
reader's), with warnings as errors. A block followed directly by a ```text block must print
exactly that text, numbers aside: every number printed must be the README's to 4 significant
digits (the README may round, never differ). A block must leave x64 as it found it (off): a
snippet that needs float64 enables it locally, with ``jax.enable_x64``.
"""

from __future__ import annotations

import json
import math
import pathlib
import re
import subprocess
import sys

import pytest

from tests.notebook_checks import NUMBER

ROOT = pathlib.Path(__file__).parent.parent
FENCE = re.compile(r"^```python\n(.*?)^```\n(?:\n*^```text\n(.*?)^```\n)?", re.S | re.M)

RUNNER = r"""
import contextlib, io, json, sys, traceback, warnings
warnings.simplefilter("error")
import jax
results = []
for source in json.load(sys.stdin):
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(source, "README.md", "exec"), {"__name__": "__main__"})
        error = None if not jax.config.jax_enable_x64 else "left jax_enable_x64 on"
    except BaseException:
        error = traceback.format_exc(limit=-3)
    results.append({"out": out.getvalue(), "error": error})
print(json.dumps(results))
"""


def snippets() -> list[tuple[str, str | None]]:
    """``(code, expected output or None)`` for every Python block of the README."""
    readme = (ROOT / "README.md").read_text()
    return [(code, text or None) for code, text in FENCE.findall(readme)]


def agrees(printed: str, expected: str) -> bool:
    """The same words, numbers aside, and every printed number the README's to 4
    significant digits (the README's digits, however few, must round the printed value)."""
    if NUMBER.sub("#", printed).split() != NUMBER.sub("#", expected).split():
        return False
    for got, want in zip(NUMBER.findall(printed), NUMBER.findall(expected), strict=True):
        got_value, want_value = float(got), float(want)
        digits = len(re.sub(r"[eE].*|[-+.]", "", want).lstrip("0")) or 1
        shown = float(f"{got_value:.{min(digits, 4)}g}") if got_value else 0.0
        if not math.isclose(shown, float(f"{want_value:.{min(digits, 4)}g}"), rel_tol=1e-9):
            return False
    return True


def test_the_readme_has_its_snippets():
    blocks = snippets()
    assert len(blocks) >= 8
    assert sum(expected is not None for _, expected in blocks) >= 6, "say what blocks print"


@pytest.mark.first  # a subprocess, about 15 s (tests/conftest.py)
def test_every_readme_snippet_runs_as_pasted_and_prints_what_it_says():
    blocks = snippets()
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([code for code, _ in blocks]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    failures = []
    for index, ((code, expected), result) in enumerate(zip(blocks, results, strict=True)):
        first = code.strip().splitlines()[0]
        if result["error"]:
            failures.append(f"block {index + 1} ({first}):\n{result['error']}")
        elif expected is not None and not agrees(result["out"], expected):
            failures.append(
                f"block {index + 1} ({first}) printed:\n{result['out']}README says:\n{expected}"
            )
    assert not failures, "\n\n".join(failures)


def test_agrees_compares_words_and_rounded_numbers():
    assert agrees("x = 2.8296099 9 True", "x = 2.8296 9 True")
    assert agrees("1.0019258e-3", "1.002e-3")
    assert not agrees("x = 2.8396099", "x = 2.8296")
    assert not agrees("x = 2.83 True", "x = 2.83 False")
    assert not agrees("9 evaluations", "10 evaluations")
