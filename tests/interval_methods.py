"""The exact searches on an interval, behind calling conventions for the contract tests.

``METHODS``: the tolerance-driven searches, ``METHODS[name](fun, lower, upper, *, tol,
max_evals, **options)``. ``FIXED``: the fixed-budget modes, ``FIXED[name](fun, lower, upper,
*, fixed_evals, **options)``. ``test_interval.test_registry_names_every_interval_search``
fails when a public search on ``(fun, lower, upper)`` is missing here.
"""

from jaxls import brent, dichotomy, fibonacci, golden_section, parabolic
from jaxls._src.interval.golden import RHO


def _golden(fun, lower, upper, *, tol, max_evals, **options):
    return golden_section(fun, lower, upper, tol=tol, max_evals=max_evals, **options)


def _dichotomy(fun, lower, upper, *, tol, max_evals, **options):
    return dichotomy(fun, lower, upper, tol=tol, max_evals=max_evals, **options)


def _parabolic(fun, lower, upper, *, tol, max_evals, x_init=None, **options):
    """The only search with a starting point: generic tests may pass ``x_init`` here."""
    return parabolic(fun, lower, upper, tol=tol, max_evals=max_evals, x_init=x_init, **options)


def _brent(fun, lower, upper, *, tol, max_evals, **options):
    return brent(fun, lower, upper, tol=tol, max_evals=max_evals, **options)


METHODS = {
    "dichotomy": _dichotomy,
    "golden_section": _golden,
    "parabolic": _parabolic,
    "brent": _brent,
}

FIXED = {
    "fibonacci": fibonacci,
    "golden_section_fixed": golden_section,
    "dichotomy_fixed": dichotomy,
}

# The first point each search evaluates on ``[lower, upper]``.
START = {
    "dichotomy": lambda lower, upper: lower / 2 + upper / 2,
    "golden_section": lambda lower, upper: lower + RHO * (upper - lower),
    "parabolic": lambda lower, upper: lower / 2 + upper / 2,  # the default x_init
    "brent": lambda lower, upper: lower + RHO * (upper - lower),
}
