"""jaxls: line searches, matrix calculus and automatic differentiation for JAX."""

from jaxls import ad, calculus, optax
from jaxls._src.interval.bracket import bracket
from jaxls._src.interval.brent import brent
from jaxls._src.interval.dichotomy import dichotomy
from jaxls._src.interval.fibonacci import fibonacci
from jaxls._src.interval.golden import golden_section
from jaxls._src.interval.parabolic import parabolic
from jaxls._src.results import LineSearchResult, ScalarResult, Status, status_message
from jaxls._src.step.backtracking import backtracking
from jaxls._src.step.conditions import (
    approximate_wolfe_condition,
    armijo_condition,
    curvature_condition,
    goldstein_condition,
    strong_curvature_condition,
    strong_wolfe_condition,
    wolfe_condition,
)
from jaxls._src.step.goldstein import goldstein
from jaxls._src.step.hager_zhang import hager_zhang
from jaxls._src.step.wolfe import wolfe

# The one source of the version: pyproject.toml reads it from here ([tool.setuptools.dynamic]).
__version__ = "0.1.0"

__all__ = [
    "LineSearchResult",
    "ScalarResult",
    "Status",
    "ad",
    "approximate_wolfe_condition",
    "armijo_condition",
    "backtracking",
    "bracket",
    "brent",
    "calculus",
    "curvature_condition",
    "dichotomy",
    "fibonacci",
    "golden_section",
    "goldstein",
    "goldstein_condition",
    "hager_zhang",
    "optax",
    "parabolic",
    "status_message",
    "strong_curvature_condition",
    "strong_wolfe_condition",
    "wolfe",
    "wolfe_condition",
]
