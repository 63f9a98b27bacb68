"""The tolerance-driven exact searches, behind one calling convention for generic tests."""

from jaxls import brent, dichotomy, golden_section, parabolic
from jaxls._src.interval.golden import RHO


def _golden(fun, lower, upper, *, tol, max_evals):
    return golden_section(fun, lower, upper, tol=tol, max_evals=max_evals)


def _dichotomy(fun, lower, upper, *, tol, max_evals):
    return dichotomy(fun, lower, upper, tol=tol, max_evals=max_evals)


def _parabolic(fun, lower, upper, *, tol, max_evals, x_init=None):
    """The only search with a starting point: generic tests may pass ``x_init`` here."""
    return parabolic(fun, lower, upper, tol=tol, max_evals=max_evals, x_init=x_init)


def _brent(fun, lower, upper, *, tol, max_evals):
    return brent(fun, lower, upper, tol=tol, max_evals=max_evals)


METHODS = {
    "dichotomy": _dichotomy,
    "golden_section": _golden,
    "parabolic": _parabolic,
    "brent": _brent,
}

# The first point each search evaluates on ``[lower, upper]``.
START = {
    "dichotomy": lambda lower, upper: lower / 2 + upper / 2,
    "golden_section": lambda lower, upper: lower + RHO * (upper - lower),
    "parabolic": lambda lower, upper: (lower + upper) / 2,  # the default x_init
    "brent": lambda lower, upper: lower + RHO * (upper - lower),
}
