"""Packaging: one source for the version, the py.typed marker, complete ``__all__`` lists."""

import __future__

import importlib
import inspect
import importlib.metadata
import importlib.resources
import pathlib
import types
from collections.abc import Callable

import pytest
from packaging.version import Version

import jaxls
from tests.helpers import public_modules

PYPROJECT = pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml"

# Every public module, and the private module of the result types the others import.
MODULES = (*public_modules(), "jaxls._src.results")

# Plain data defined in a module (constants, problem tables): public unless underscored.
DATA = (bool, int, float, complex, str, bytes, tuple, list, dict, set, frozenset)


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library >= 3.11")
    return tomllib.loads(PYPROJECT.read_text())


def test_version_is_the_installed_distributions():
    assert jaxls.__version__ == importlib.metadata.version("jaxls")
    assert str(Version(jaxls.__version__)) == jaxls.__version__  # PEP 440, normalised


def test_pyproject_reads_the_version_from_the_package():
    config = pyproject()
    assert "version" not in config["project"], "the version lives in jaxls/__init__.py only"
    assert "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "jaxls.__version__"}


def test_py_typed_marker_is_shipped():
    assert importlib.resources.files("jaxls").joinpath("py.typed").is_file()
    assert "py.typed" in pyproject()["tool"]["setuptools"]["package-data"]["jaxls"]


def defined_here(value: object) -> bool:
    """Whether a module attribute belongs to jaxls, rather than being an import it uses."""
    if isinstance(value, (types.ModuleType, type(__future__.annotations))):
        return False
    if isinstance(value, DATA):
        return True
    return str(getattr(value, "__module__", "")).startswith("jaxls")


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_exactly_the_public_names(name):
    module = importlib.import_module(name)
    listed = module.__all__
    assert len(set(listed)) == len(listed), f"{name}.__all__ has duplicates"
    assert [n for n in listed if not hasattr(module, n)] == [], f"{name}.__all__ names absent"
    public = {n for n, v in vars(module).items() if not n.startswith("_") and defined_here(v)}
    assert sorted(public - set(listed)) == [], f"public names of {name} missing from __all__"
    assert [n for n in listed if n.startswith("_")] == []


@pytest.mark.parametrize("name", MODULES)
def test_star_import_gives_all(name):
    namespace: dict = {}
    exec(f"from {name} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(importlib.import_module(name).__all__)


# The modules whose exports are the API a user calls; zoo and linezoo hold test problems.
API_MODULES = ("jaxls", "jaxls.optax", "jaxls.ad", "jaxls.calculus")


def unannotated(fun: Callable[..., object], method: bool = False) -> list[str]:
    """The parameters of ``fun`` (``*args`` and ``**kwargs`` included; a method's ``self``
    excepted) and its return that carry no annotation."""
    signature = inspect.signature(fun)
    parameters = list(signature.parameters.values())[1 if method else 0 :]
    missing = [p.name for p in parameters if p.annotation is p.empty]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def public_callables(name: str) -> dict[str, tuple[Callable[..., object], bool]]:
    """Every function in ``name.__all__``, and every public method and property of its classes
    that jaxls defines (a NamedTuple's generated methods and enum machinery are not), each
    with whether it is a method."""
    module = importlib.import_module(name)
    found: dict[str, tuple[Callable[..., object], bool]] = {}
    for export in module.__all__:
        value = getattr(module, export)
        if inspect.isfunction(value):
            found[f"{name}.{export}"] = (value, False)
        elif inspect.isclass(value):
            for attr, member in vars(value).items():
                member = member.fget if isinstance(member, property) else member
                if (
                    not attr.startswith("_")
                    and inspect.isfunction(member)
                    and member.__module__.startswith("jaxls")
                ):
                    found[f"{name}.{export}.{attr}"] = (member, True)
    return found


@pytest.mark.parametrize("name", API_MODULES)
def test_public_signatures_are_annotated(name):
    # No exemption: even the pass-throughs (`ad.vjp(*primals)`, `ad.trace(*args)`,
    # `ad.checkpoint(**kwargs)`, `scale_by_line_search(**misplaced)`) are annotated.
    callables = public_callables(name)
    assert callables, f"no public callables found in {name}"
    missing = {
        where: m for where, (fun, method) in callables.items() if (m := unannotated(fun, method))
    }
    assert missing == {}, f"unannotated parameters or returns: {missing}"
