"""Matrix calculus, as the lecture teaches it, as code that checks itself.

Conventions (``jaxls._src.calculus.conventions``): the gradient of a real scalar function of
a matrix has the matrix's shape, ``df = <grad f(X), dX>`` with ``<A, B> = tr(A^T B)``; the
Hessian is the Jacobian of the gradient, transposed, ``H = (J(grad f))^T``; a Jacobian's
layout is named, never implied (``layout="numerator"``: JAX's ``m x n``;
``"denominator"``: the lecture's ``n x m``).

* ``gradient``, ``hessian``, ``jacobian``, ``differential``: derivatives by `jaxls.ad`.
* ``gradient_from_differential``: the lecture's method, ``df = <g, dx>`` read off a
  differential written by hand (its linearity checked).
* ``check_gradient``, ``check_hessian``: a hand-derived derivative against AD, the usual
  mistakes named (``MISTAKES``).
* ``CATALOGUE``: closed forms (gradients, Hessians, Jacobians) with LaTeX, domains,
  samplers and references, every one checked by the tests; ``catalogue_table`` renders it
  (docs/catalogue.md).
* ``derive``: a gradient (or Hessian) as a formula in matrix notation, derived from the
  function's jaxpr, checked against AD before it is returned.
* ``mixed_partials_by_limits``, ``schwarz_counterexample``: the lecture's counterexample to
  the symmetry of second derivatives.
"""

from jaxls._src.calculus.catalogue import CATALOGUE, Entry, Sampler, catalogue_table, entry
from jaxls._src.calculus.check import (
    GRADIENT_MISTAKES,
    HESSIAN_MISTAKES,
    MISTAKES,
    GradientCheck,
    apply_mistake,
    check_gradient,
    check_hessian,
)
from jaxls._src.calculus.conventions import differential, gradient, hessian, jacobian
from jaxls._src.calculus.derive import DerivationError, Formula, derive
from jaxls._src.calculus.differentials import gradient_from_differential
from jaxls._src.calculus.schwarz import (
    MixedPartials,
    mixed_partials_by_limits,
    schwarz_counterexample,
)
from jaxls._src.calculus.symbolic import operator_count

__all__ = [
    "CATALOGUE",
    "GRADIENT_MISTAKES",
    "HESSIAN_MISTAKES",
    "MISTAKES",
    "DerivationError",
    "Entry",
    "Formula",
    "GradientCheck",
    "MixedPartials",
    "Sampler",
    "apply_mistake",
    "catalogue_table",
    "check_gradient",
    "check_hessian",
    "derive",
    "differential",
    "entry",
    "gradient",
    "gradient_from_differential",
    "hessian",
    "jacobian",
    "mixed_partials_by_limits",
    "operator_count",
    "schwarz_counterexample",
]
