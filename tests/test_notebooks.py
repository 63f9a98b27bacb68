"""The notebooks run, and what they say is true.

Their code cells execute in order, in one namespace, without Jupyter (a notebook is JSON,
read with the standard library); the cells assert their own claims as they go. Then the
``check`` function of ``tests/claims_<notebook>.py`` checks the claims of the notebook's
text, printed output and figures against the objects its cells left in the namespace, with
closed forms, `jax.grad`, `jax.hessian` and NumPy as oracles; a notebook without one fails.
The stored outputs must be what the cells print now, digits aside: after editing a cell,
regenerate them with ``python3 notebooks/execute.py notebooks/<notebook>.ipynb``.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import re

import pytest

from tests.notebook_checks import NUMBER

ROOT = pathlib.Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def claims(stem: str):
    """The ``check(namespace)`` of ``tests/claims_<stem>.py``."""
    return importlib.import_module(f"tests.claims_{stem}").check


def words(text: str) -> list[str]:
    """The printed text with every number replaced by ``#``, split on whitespace."""
    return NUMBER.sub("#", text).split()


def test_every_notebook_has_claims():
    assert len(NOTEBOOKS) >= 2
    written = sorted(p.stem.removeprefix("claims_") for p in ROOT.glob("tests/claims_*.py"))
    assert written == [p.stem for p in NOTEBOOKS]
    assert all(callable(claims(stem)) for stem in written)


@pytest.mark.first  # the longest tests (tests/conftest.py)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook(path, capsys):
    assert (ROOT / f"tests/claims_{path.stem}.py").exists(), f"{path.name}: write its claims"
    notebook = json.loads(path.read_text())
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5)
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[\w-]{1,64}", i) for i in ids)
    namespace: dict = {"__name__": "__notebook__"}
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        exec(compile("".join(cell["source"]), f"{path.name}[{index}]", "exec"), namespace)
        printed = capsys.readouterr().out
        stored = "".join(
            "".join(o["text"]) for o in cell["outputs"] if o["output_type"] == "stream"
        )
        assert words(printed) == words(stored), f"{path.name}[{index}]: stale output, regenerate it"
    claims(path.stem)(namespace)
