"""Execute notebooks in place, so that their stored outputs (text and figures) are what their
cells give now: ``python3 notebooks/execute.py notebooks/NAME.ipynb ...`` (every notebook
when none is named). tests/test_notebooks.py runs the cells again and checks both the stored
text (digits aside) and the notebook's claims. Needs the ``docs`` or ``test`` extra
(nbclient, ipykernel, matplotlib)."""

from __future__ import annotations

import pathlib
import sys
import time

import nbclient
import nbformat


def execute(path: pathlib.Path) -> float:
    """Run ``path``'s cells in a fresh kernel, from its folder; write the outputs back."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}}
    )
    client.execute()
    for cell in notebook.cells:  # no execution counts or timings: diffs show content only
        if cell.cell_type == "code":
            cell.execution_count = None
            cell.metadata.pop("execution", None)
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = None
    nbformat.write(notebook, path)
    return time.perf_counter() - start


if __name__ == "__main__":
    here = pathlib.Path(__file__).parent
    paths = [pathlib.Path(p) for p in sys.argv[1:]] or sorted(here.glob("*.ipynb"))
    for path in paths:
        print(f"{path}: {execute(path):.1f} s", flush=True)
