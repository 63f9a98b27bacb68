"""The documentation site's sources, checked without building it.

The build itself (``python3 -m sphinx -W --keep-going -E -b html docs docs/_build/html``,
run by ``.ci/run``) needs the ``docs`` extra and takes a while; these checks need neither:
every public name is on an API page, every notebook is picked up, and ``docs/conf.py``
keeps the settings that make the build strict and never execute a notebook. The files are
read as text (``conf.py`` as a syntax tree), so Sphinx need not be installed.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import itertools
import json
import pathlib
import re

from tests.helpers import public_modules

ROOT = pathlib.Path(__file__).parent.parent
DOCS = ROOT / "docs"
API_PAGES = sorted((DOCS / "api").glob("*.rst"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# ``.. autofunction:: jaxls.brent``, ``.. autoclass:: jaxls.calculus.Formula(expr, ...)``,
# ``.. py:data:: name``: the name each directive documents.
DIRECTIVE = re.compile(
    r"^\s*\.\.\s+(?:auto|py:)(?:module|function|class|exception|data|attribute)::"
    r"\s+([\w.]+)",
    re.MULTILINE,
)


def conf() -> dict[str, object]:
    """The literal assignments of ``docs/conf.py`` (``nitpicky = True``, ...), by name."""
    values = {}
    for node in ast.parse((DOCS / "conf.py").read_text()).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            try:
                value = ast.literal_eval(node.value)
            except ValueError:  # not a literal (a path, a call)
                continue
            for target in targets:
                if isinstance(target, ast.Name):
                    values[target.id] = value
    return values


def documented() -> list[str]:
    """Every name an API page documents, in order (a name twice is listed twice)."""
    return [name for page in API_PAGES for name in DIRECTIVE.findall(page.read_text())]


def test_conf_lists_every_public_module():
    modules = conf()["PUBLIC_MODULES"]
    assert sorted(modules) == public_modules()
    assert {"jaxls.optax", "jaxls.ad", "jaxls.calculus", "jaxls.zoo"} <= set(modules)


def test_api_pages_document_every_public_name():
    assert API_PAGES, "docs/api/*.rst: no API pages"
    names = documented()
    assert len(names) == len(set(names)), "a name documented twice"
    missing = []
    for module_name in conf()["PUBLIC_MODULES"]:
        module = importlib.import_module(module_name)
        assert module.__all__
        assert module_name in names, f"{module_name}: no automodule on an API page"
        missing += [
            f"{module_name}.{n}" for n in module.__all__ if f"{module_name}.{n}" not in names
        ]
    assert not missing, f"public names on no page of docs/api/: {missing}"


def test_api_pages_document_only_what_exists():
    public = set(conf()["PUBLIC_MODULES"])
    for name in documented():
        module_name, _, attribute = name.rpartition(".")
        if name in public:
            continue
        assert module_name in public, f"{name}: documented outside the public modules"
        assert attribute in importlib.import_module(module_name).__all__, name


def test_index_links_every_api_page():
    index = (DOCS / "index.md").read_text()
    for page in API_PAGES:
        assert re.search(rf"^api/{page.stem}$", index, re.MULTILINE), page.name


def test_every_notebook_is_picked_up():
    assert NOTEBOOKS, "notebooks/: no notebook"
    settings = conf()
    index = (DOCS / "index.md").read_text()
    toctree = re.search(r"```\{toctree\}\n(.*?)```", index, re.DOTALL)
    assert toctree and ":glob:" in toctree.group(1), "index.md: the notebooks' toctree globs"
    globbed = [line for line in toctree.group(1).splitlines() if line.startswith("notebooks/")]
    assert globbed == ["notebooks/*"]
    # conf.py copies ../notebooks/<NOTEBOOK_GLOB> into docs/notebooks/, which git ignores.
    assert 'NOTEBOOK_SOURCES = ROOT / "notebooks"' in (DOCS / "conf.py").read_text()
    assert "notebooks/" in (DOCS / ".gitignore").read_text().splitlines()
    for path in NOTEBOOKS:
        assert fnmatch.fnmatch(path.name, settings["NOTEBOOK_GLOB"]), path.name
        assert fnmatch.fnmatch(f"notebooks/{path.stem}", globbed[0]), path.name
        excluded = [p for p in settings["exclude_patterns"] if fnmatch.fnmatch(path.name, p)]
        assert not excluded, f"{path.name}: excluded by {excluded}"


def headings(notebook: dict) -> list[int]:
    """The levels of the Markdown headings of a notebook, in order (code fences skipped)."""
    levels, fenced = [], False
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for line in "".join(cell["source"]).splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            elif not fenced and (match := re.match(r"(#{1,6})\s", line)):
                levels.append(len(match.group(1)))
    return levels


def test_every_notebook_is_a_page():
    """A title first and no skipped heading level: what myst-nb needs to build it without
    warnings (a skipped level warns, and the build turns warnings into errors)."""
    for path in NOTEBOOKS:
        levels = headings(json.loads(path.read_text()))
        assert levels[:1] == [1] and levels.count(1) == 1, f"{path.name}: one '# title' first"
        jumps = [(a, b) for a, b in itertools.pairwise(levels) if b > a + 1]
        assert not jumps, f"{path.name}: heading levels skipped: {jumps}"


def test_conf_is_strict_and_never_executes():
    settings = conf()
    assert settings["nitpicky"] is True
    assert settings["nb_execution_mode"] == "off"
    assert {"sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_nb"} <= set(settings["extensions"])
    assert settings["napoleon_google_docstring"] is True
    assert "intersphinx" not in str(settings["extensions"])  # it needs the network
    # The ignored references are other projects' names: a jaxls name must still resolve.
    for _, pattern in settings["nitpick_ignore_regex"]:
        for name in ("jaxls", "jaxls.brent", "jaxls.optax.minimize", "brent", "Status"):
            assert not re.fullmatch(pattern, name), (pattern, name)
    source = (DOCS / "conf.py").read_text()
    assert 'app.connect("build-finished", check_public_names)' in source


def test_ci_builds_the_docs_with_warnings_as_errors():
    commands = [line for line in (ROOT / ".ci/run").read_text().splitlines() if "sphinx" in line]
    assert commands, ".ci/run: no docs build"
    assert all(" -W " in line and " docs " in line for line in commands), commands
