"""jaxls searches as optax step-size rules, and a driver that runs a whole optimisation.

``scale_by_line_search(search, ..., options={...})`` turns any jaxls search (or a search of
your own, described by a ``SearchSpec``) into an `optax.GradientTransformationExtraArgs`
that follows optax's line-search protocol
(``update(updates, state, params, *, value, grad, value_fn, **extra_args)``);
``stochastic_armijo`` and ``nonmonotone_armijo`` are step-size rules for minibatch and
non-monotone training; ``minimize`` runs an optimiser to a gradient-norm tolerance as one
jittable, vmappable function, differentiable with respect to the objective's parameters by
the implicit function theorem; ``implicit_argmin`` gives the same derivative to a training
loop of your own.

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
from jaxls._src.adapters.nonmonotone import NonmonotoneArmijoState, nonmonotone_armijo
from jaxls._src.adapters.spec import SPECS, SearchSpec
from jaxls._src.adapters.stochastic import StochasticArmijoState, stochastic_armijo
from jaxls._src.drivers.minimize import UNCOUNTED, MinimizeResult, minimize
from jaxls._src.implicit.solution import implicit_argmin

for _search in SPECS:
    refuse_as_transformation(_search)
del _search, refuse_as_transformation, SPECS

__all__ = [
    "UNCOUNTED",
    "LineSearchInfo",
    "MinimizeResult",
    "NonmonotoneArmijoState",
    "ScaleByLineSearchState",
    "SearchSpec",
    "StochasticArmijoState",
    "implicit_argmin",
    "minimize",
    "nonmonotone_armijo",
    "scale_by_line_search",
    "stochastic_armijo",
]
