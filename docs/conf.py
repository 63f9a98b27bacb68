"""Sphinx configuration of the jaxls documentation site.

Build it offline, warnings as errors (``.ci/run`` does)::

    python3 -m sphinx -W --keep-going -E -b html docs docs/_build/html

The API reference (``docs/api/*.rst``) is autodoc + napoleon over the Google-style
docstrings; the notebooks of the top-level ``notebooks/`` folder are copied into
``docs/notebooks/`` (git-ignored) on every build and rendered by myst-nb with their stored
outputs, never executed (``tests/test_notebooks.py`` executes them). Every name of a public
module's ``__all__`` must be documented: ``check_public_names`` fails the build otherwise.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re
import shutil
import sys

from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the checkout's jaxls, installed or not

import jaxls  # after the path is set

logger = logging.getLogger(__name__)

# The public modules; every name of their ``__all__`` is documented in docs/api/.
PUBLIC_MODULES = (
    "jaxls",
    "jaxls.optax",
    "jaxls.ad",
    "jaxls.calculus",
    "jaxls.zoo",
    "jaxls.linezoo",
)

project = "jaxls"
author = "the jaxls authors"
copyright = "the jaxls authors"
version = release = jaxls.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_nb",  # Markdown (MyST) pages and notebooks; it loads myst_parser itself
]

root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# Broken cross-references are errors (with -W): a renamed function, a typo in a docstring.
nitpicky = True
# A name in single backquotes (`Status`, `jaxls.optax.minimize`), as the docstrings write
# names, is a cross-reference to that Python object.
default_role = "py:obj"
# Other projects' types in signatures and docstrings (``jax.Array``, ``optax.Params``,
# ``collections.abc.Callable``): the site is built offline, without intersphinx (which
# downloads the other projects' inventories), so they cannot resolve. Only names outside
# jaxls are listed: a jaxls name that does not resolve still fails the build.
nitpick_ignore_regex = [
    ("py:.*", r"(jax|jaxlib|optax|numpy|scipy)(\..*)?"),
    # jax.lax, jax.numpy and numpy as the docstrings abbreviate them
    ("py:.*", r"(lax|jnp|np)\..*"),
    ("py:.*", r"collections\.abc\..*"),
]

# -- autodoc and napoleon (Google-style docstrings) -------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True  # defaults as written in the source
# ``jax.typing.ArrayLike`` by its name, not as the union it stands for.
autodoc_type_aliases = {"ArrayLike": "jax.typing.ArrayLike"}
maximum_signature_line_length = 88  # one parameter per line beyond this
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# The ``Attributes:`` sections say what each field holds (``int32``, a pytree like ``x``);
# the class signature shows the annotations.
napoleon_attr_annotations = False

# -- myst-nb: notebooks rendered with their stored outputs, never executed ---------------
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# -- HTML ----------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = f"jaxls {release}"
html_theme_options = {"show_toc_level": 2}


# -- the notebooks -----------------------------------------------------------------------
NOTEBOOK_SOURCES = ROOT / "notebooks"
NOTEBOOK_GLOB = "*.ipynb"  # every notebook there, those added later included
NOTEBOOK_COPIES = DOCS / "notebooks"  # git-ignored (docs/.gitignore); index.md globs it


def copy_notebooks(app=None, config=None) -> list[pathlib.Path]:
    """Copy ``notebooks/*.ipynb`` into ``docs/notebooks/``, dropping copies whose source left.

    A copy is rewritten only when its source changed, so that incremental builds stay
    incremental. Returns the copies.
    """
    NOTEBOOK_COPIES.mkdir(exist_ok=True)
    sources = sorted(NOTEBOOK_SOURCES.glob(NOTEBOOK_GLOB))
    names = {p.name for p in sources}
    for stale in NOTEBOOK_COPIES.glob(NOTEBOOK_GLOB):
        if stale.name not in names:
            stale.unlink()
    for source in sources:
        copy = NOTEBOOK_COPIES / source.name
        if not copy.exists() or copy.read_bytes() != source.read_bytes():
            shutil.copyfile(source, copy)
    return [NOTEBOOK_COPIES / name for name in sorted(names)]


# -- every public name documented --------------------------------------------------------
def public_names() -> set[str]:
    """``{"jaxls.brent", "jaxls.optax.minimize", ...}``: every name of every ``__all__``."""
    names = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names |= {f"{module_name}.{name}" for name in module.__all__}
    return names


def check_public_names(app, exception) -> None:
    """Fail the build (a warning, an error under -W) for a public name left undocumented.

    It runs when the build finishes, every build, an incremental one that read nothing
    new included.
    """
    if exception is not None:
        return
    domain = app.env.get_domain("py")
    documented = {
        name for name, entry in domain.objects.items() if not getattr(entry, "aliased", False)
    }
    documented |= set(domain.modules)
    missing = sorted(public_names() - documented)
    for name in missing:
        logger.warning(
            "public name %s (in its module's __all__) is not documented: add it to docs/api/",
            name,
            type="jaxls",
            subtype="undocumented",
        )


def skip_namedtuple_fields(app, what, name, obj, skip, options):
    """Leave out a NamedTuple's field accessors ("Alias for field number 0").

    The class docstring's ``Attributes:`` section documents the fields (napoleon turns it
    into attribute entries); the accessors would document each one twice.
    """
    if (inspect.getdoc(obj) or "").startswith("Alias for field number"):
        return True
    return None


def own_docstrings_only(app, what, name, obj, options, lines) -> None:
    """Document a constant by its own docstring, and each `Status` by its message.

    A constant re-exported from a private module (``jaxls.calculus.MISTAKES``) has its
    docstring in that module, where autodoc does not look; without one, autodoc would give
    the docstring of its type (``int``, ``tuple``), and the API page describes it instead.
    The members of `jaxls.Status` have no docstrings: each is documented by
    ``Status.message``, the text results show.
    """
    if obj is jaxls.Status:
        for member in jaxls.Status:
            message = re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", member.message)  # literals
            lines += ["", f".. py:attribute:: {member.name}", f"   :value: {int(member)}", ""]
            lines += [f"   {message[0].upper()}{message[1:]}."]
    elif what == "data" and (not lines or inspect.getdoc(obj) == inspect.getdoc(type(obj))):
        lines[:] = attribute_docstring(name.rpartition(".")[2], obj)


def attribute_docstring(name: str, obj: object) -> list[str]:
    """The docstring written under ``name = ...`` in the jaxls module that defines ``obj``."""
    for module_name, module in sorted(sys.modules.items()):
        if module_name.startswith("jaxls") and getattr(module, name, None) is obj:
            docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
            if ("", name) in docs:
                return list(docs[("", name)])
    return []


def setup(app):
    app.connect("config-inited", copy_notebooks)  # before Sphinx lists the source files
    app.connect("build-finished", check_public_names)
    app.connect("autodoc-skip-member", skip_namedtuple_fields)
    app.connect("autodoc-process-docstring", own_docstrings_only)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
