"""The tolerance-driven exact searches, behind one calling convention for generic tests."""

import jaxls


def _golden(fun, lower, upper, *, tol, max_evals):
    return jaxls.golden_section(fun, lower, upper, tol=tol, max_evals=max_evals)


def _dichotomy(fun, lower, upper, *, tol, max_evals):
    return jaxls.dichotomy(fun, lower, upper, tol=tol, max_evals=max_evals)


def _parabolic(fun, lower, upper, *, tol, max_evals):
    return jaxls.parabolic(fun, lower, upper, tol=tol, max_evals=max_evals)


def _brent(fun, lower, upper, *, tol, max_evals):
    return jaxls.brent(fun, lower, upper, tol=tol, max_evals=max_evals)


METHODS = {
    "dichotomy": _dichotomy,
    "golden_section": _golden,
    "parabolic": _parabolic,
    "brent": _brent,
}
