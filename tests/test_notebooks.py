"""The notebooks run: their code cells execute in order, in one namespace, without Jupyter
(a notebook is JSON; the code cells are read with the standard library)."""

from __future__ import annotations

import json
import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, capsys):
    cells = json.loads(path.read_text())["cells"]
    namespace: dict = {"__name__": "__notebook__"}
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        exec(compile("".join(cell["source"]), f"{path.name}[{index}]", "exec"), namespace)
        printed = capsys.readouterr().out
        stored = "".join(
            "".join(o.get("text", "")) for o in cell["outputs"] if o["output_type"] == "stream"
        )
        # The stored output was produced by the same code: the first line must agree.
        if stored:
            assert printed.splitlines()[0].split()[:2] == stored.splitlines()[0].split()[:2], index
