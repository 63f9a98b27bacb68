"""What `scale_by_line_search` needs to know about a search, said explicitly: a `SearchSpec`
for each jaxls search in one table (`SPECS`), and the checks of a user's own.

The adapter never reads a search's parameter names: a search is called as its spec's ``kind``
says, with the keywords its spec says the adapter fills in, and the options its spec lists.
Renaming a keyword of a search therefore cannot change how it is called; the test of the
table (``tests/test_optax_adapter.py``) fails instead, naming the keyword.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

from jaxls._src.interval.brent import brent
from jaxls._src.interval.dichotomy import dichotomy
from jaxls._src.interval.fibonacci import fibonacci
from jaxls._src.interval.golden import golden_section
from jaxls._src.interval.parabolic import parabolic
from jaxls._src.step.backtracking import backtracking
from jaxls._src.step.goldstein import goldstein
from jaxls._src.step.hager_zhang import hager_zhang
from jaxls._src.step.wolfe import wolfe

CALL = "optax.scale_by_line_search"


class SearchSpec(NamedTuple):
    """How `jaxls.optax.scale_by_line_search` calls a search.

    ``kind="step"``, a step-size search, is called as ``search(fun, x, direction, *,
    value=, grad=, step_init=, **more)`` and returns a `jaxls.LineSearchResult` (``step``,
    ``value``, ``grad``, ``num_evals``, ``num_grads``, ``status``, ``aux``); ``fun`` is the
    objective on the parameters. ``kind="interval"``, an exact search, is called as
    ``search(phi, lower, upper, **more)`` with ``phi(t)`` the objective along the direction
    and returns a `jaxls.ScalarResult` (``x``, ``num_evals``, ``status``).

    Attributes:
      kind: ``"step"`` or ``"interval"``.
      owns: the keywords the adapter fills in. A step search must take ``value``, ``grad``
        and ``step_init``; it may also take ``step_max`` (the adapter's ``step_max`` is then
        passed to it) and ``has_aux`` (then ``scale_by_line_search(..., has_aux=True)`` is
        allowed). An interval search owns nothing.
      takes_tol: (interval searches) whether the search takes a ``tol``, which the adapter
        then sets relative to the interval unless ``options`` sets it (``"tol"`` must then
        be one of ``options``).
      options: the keywords a user may set through ``scale_by_line_search(search,
        options={...})``.

    Example:
      >>> import jaxls
      >>> def halving(fun, x, direction, *, value, grad, step_init, shrink=0.5):
      ...     return jaxls.backtracking(fun, x, direction, value=value, grad=grad,
      ...                               step_init=step_init, shrink=shrink)
      >>> spec = jaxls.optax.SearchSpec(
      ...     "step", owns=frozenset({"value", "grad", "step_init"}), options=frozenset({"shrink"})
      ... )
      >>> rule = jaxls.optax.scale_by_line_search(halving, spec=spec, options={"shrink": 0.3})
    """

    kind: Literal["interval", "step"]
    owns: frozenset[str] = frozenset()
    takes_tol: bool = False
    options: frozenset[str] = frozenset()


# The keywords every step search takes from the adapter, and those it may take.
STEP_OWNS = frozenset({"value", "grad", "step_init"})
STEP_MAY_OWN = frozenset({"step_max", "has_aux"})

_STEP = STEP_OWNS | STEP_MAY_OWN
SPECS: dict[Callable, SearchSpec] = {
    backtracking: SearchSpec(
        "step",
        owns=STEP_OWNS | {"has_aux"},
        options=frozenset({"c1", "shrink", "interpolate", "trial_grads", "epsilon", "max_evals"}),
    ),
    goldstein: SearchSpec(
        "step", owns=_STEP, options=frozenset({"c1", "grow", "trial_grads", "epsilon", "max_evals"})
    ),
    wolfe: SearchSpec(
        "step",
        owns=_STEP,
        options=frozenset({"c1", "c2", "strong", "grow", "epsilon", "max_evals"}),
    ),
    hager_zhang: SearchSpec(
        "step",
        owns=_STEP,
        options=frozenset({"c1", "c2", "epsilon", "theta", "gamma", "grow", "max_evals"}),
    ),
    golden_section: SearchSpec(
        "interval", takes_tol=True, options=frozenset({"tol", "max_evals", "fixed_evals"})
    ),
    brent: SearchSpec("interval", takes_tol=True, options=frozenset({"tol", "max_evals"})),
    dichotomy: SearchSpec(
        "interval", takes_tol=True, options=frozenset({"tol", "max_evals", "fixed_evals"})
    ),
    fibonacci: SearchSpec("interval", options=frozenset({"fixed_evals"})),
    parabolic: SearchSpec(
        "interval", takes_tol=True, options=frozenset({"tol", "max_evals", "x_init"})
    ),
}


def name_of(search) -> str:
    """``jaxls.wolfe`` for a jaxls search, else the function's name (or its repr)."""
    name = getattr(search, "__name__", None) or repr(search)
    return f"jaxls.{name}" if search in SPECS else name


def spec_of(search, spec: SearchSpec | None) -> SearchSpec:
    """``spec`` (checked) if given, else the table's entry for ``search``; a `TypeError`
    naming the fix for a search with neither."""
    if not callable(search):
        raise TypeError(f"`jaxls.{CALL}`: `search` must be a line search, got {search!r}.")
    if spec is None:
        spec = SPECS.get(search)
    if spec is None:
        raise TypeError(
            f"`jaxls.{CALL}({name_of(search)})`: this search has no description, so the "
            "adapter cannot know how to call it. Pass a jaxls search (`jaxls.wolfe`, "
            "`jaxls.golden_section`, ...) with its settings as `options={...}` (rather than "
            "`functools.partial`), or describe your own: `scale_by_line_search(search, "
            'spec=jaxls.optax.SearchSpec("step", owns=frozenset({"value", "grad", '
            '"step_init"}), options=frozenset({...})))` (see `jaxls.optax.SearchSpec`).'
        )
    return check_spec(search, spec)


def check_spec(search, spec: SearchSpec) -> SearchSpec:
    """``spec`` with frozensets, after checking that it says something the adapter can do."""
    where = f"`jaxls.{CALL}({name_of(search)}, spec=...)`"
    if not isinstance(spec, SearchSpec):
        raise TypeError(f"{where}: `spec` must be a `jaxls.optax.SearchSpec`, got {spec!r}.")
    owns, options = frozenset(spec.owns), frozenset(spec.options)
    if spec.kind == "step":
        allowed, required = _STEP, STEP_OWNS
    elif spec.kind == "interval":
        allowed = required = frozenset()
    else:
        raise ValueError(f'{where}: `kind` must be "step" or "interval", got {spec.kind!r}.')
    if not required <= owns <= allowed:
        raise ValueError(
            f"{where}: a {spec.kind} search owns {sorted(required)} and may own "
            f"{sorted(allowed - required)}; got `owns={sorted(owns)}`."
        )
    if owns & options:
        raise ValueError(f"{where}: {sorted(owns & options)} cannot be both owned and options.")
    if spec.takes_tol and not (spec.kind == "interval" and "tol" in options):
        raise ValueError(f'{where}: `takes_tol` is for interval searches with "tol" in `options`.')
    return spec._replace(owns=owns, options=options)


def check_options(search, spec: SearchSpec, options: dict) -> None:
    """A `TypeError` for a keyword of ``options`` that the search's spec does not list."""
    for key in options:
        if key in spec.owns or (key == "step_max" and spec.kind == "step"):
            raise TypeError(
                f"`jaxls.{CALL}({name_of(search)}, options={{{key!r}: ...}})`: the adapter "
                f"sets `{key}` itself: give it to the adapter, `{CALL}(..., {key}=...)`, if "
                "it is one of the adapter's arguments."
            )
        if key not in spec.options:
            raise TypeError(
                f"`jaxls.{CALL}({name_of(search)}, options={{{key!r}: ...}})`: "
                f"`{name_of(search)}` has no option `{key}`; its options are "
                f"{sorted(spec.options)}."
            )


__all__ = ["SPECS", "STEP_MAY_OWN", "STEP_OWNS", "SearchSpec", "check_options", "spec_of"]
