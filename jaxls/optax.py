"""jaxls searches as optax step-size rules, and a driver that runs a whole optimisation.

``scale_by_line_search(search, ...)`` turns any jaxls search into an
`optax.GradientTransformationExtraArgs` that follows optax's line-search protocol
(``update(updates, state, params, *, value, grad, value_fn, **extra_args)``);
``stochastic_armijo`` and ``nonmonotone_armijo`` are step-size rules for minibatch and
non-monotone training; ``minimize`` runs an optimiser to a gradient-norm tolerance as one
jittable, vmappable function.
"""

from jaxls._src.adapters.common import LineSearchInfo
from jaxls._src.adapters.line_search import ScaleByLineSearchState, scale_by_line_search
from jaxls._src.adapters.minimize import MinimizeResult, minimize
from jaxls._src.adapters.nonmonotone import NonmonotoneArmijoState, nonmonotone_armijo
from jaxls._src.adapters.stochastic import StochasticArmijoState, stochastic_armijo

__all__ = [
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
