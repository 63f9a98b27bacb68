"""jaxls searches as optax step-size rules, and a driver that runs a whole optimisation.

``scale_by_line_search(search, ...)`` turns any jaxls search into an
`optax.GradientTransformationExtraArgs` that follows optax's line-search protocol
(``update(updates, state, params, *, value, grad, value_fn, **extra_args)``);
``stochastic_armijo`` and ``nonmonotone_armijo`` are step-size rules for minibatch and
non-monotone training; ``minimize`` runs an optimiser to a gradient-norm tolerance as one
jittable, vmappable function.

Importing this module (as ``import jaxls`` does) also gives every jaxls search ``init`` and
``update`` attributes that raise a `TypeError` saying how to wrap it: a bare search passed
where optax expects a transformation (``optax.lbfgs(linesearch=jaxls.wolfe)``) then fails
at ``init`` with that advice instead of an ``AttributeError``.
"""

from jaxls._src.adapters.common import LineSearchInfo
from jaxls._src.adapters.line_search import (
    ScaleByLineSearchState,
    refuse_as_transformation,
    scale_by_line_search,
)
from jaxls._src.adapters.minimize import UNCOUNTED, MinimizeResult, minimize
from jaxls._src.adapters.nonmonotone import NonmonotoneArmijoState, nonmonotone_armijo
from jaxls._src.adapters.stochastic import StochasticArmijoState, stochastic_armijo
from jaxls._src.interval.brent import brent
from jaxls._src.interval.dichotomy import dichotomy
from jaxls._src.interval.fibonacci import fibonacci
from jaxls._src.interval.golden import golden_section
from jaxls._src.interval.parabolic import parabolic
from jaxls._src.step.backtracking import backtracking
from jaxls._src.step.goldstein import goldstein
from jaxls._src.step.hager_zhang import hager_zhang
from jaxls._src.step.wolfe import wolfe

for _search in (
    backtracking, goldstein, wolfe, hager_zhang,
    golden_section, brent, dichotomy, fibonacci, parabolic,
):  # fmt: skip
    refuse_as_transformation(_search)
del _search, refuse_as_transformation, backtracking, goldstein, wolfe, hager_zhang
del golden_section, brent, dichotomy, fibonacci, parabolic

__all__ = [
    "UNCOUNTED",
    "LineSearchInfo",
    "MinimizeResult",
    "NonmonotoneArmijoState",
    "ScaleByLineSearchState",
    "StochasticArmijoState",
    "minimize",
    "nonmonotone_armijo",
    "scale_by_line_search",
    "stochastic_armijo",
]
