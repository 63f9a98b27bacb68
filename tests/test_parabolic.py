"""Successive parabolic interpolation: what its safeguards and its starting point are for.

Exact quadratics (where the lecture's listing divides by zero), starts that do not bracket
(monotone functions), and ``x_init``. The contract shared by every interval search (oracles
on the zoo, failures, jit, vmap, ...) is checked in ``test_interval.py``.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxls
from jaxls._src.interval.common import resolution
from tests.helpers import EvalCounter, EvalRecorder, assert_members_match, tree_equal_bitwise

S = jaxls.Status


def lecture_listing(f, x1, x2, x3, tol):
    """The unsafeguarded method, in plain Python floats, as the lecture lists it."""
    f1, f2, f3 = f(x1), f(x2), f(x3)
    while x3 - x1 > tol:
        num = (x2 - x1) ** 2 * (f2 - f3) - (x2 - x3) ** 2 * (f2 - f1)
        u = x2 - num / (2 * ((x2 - x1) * (f2 - f3) - (x2 - x3) * (f2 - f1)))
        fu = f(u)
        if fu < f2:  # u is the new middle point; x2 becomes an end
            if u < x2:
                x3, f3 = x2, f2
            else:
                x1, f1 = x2, f2
            x2, f2 = u, fu
        elif u < x2:
            x1, f1 = u, fu
        else:
            x3, f3 = u, fu
    return (x1 + x3) / 2


def quadratic(x, centre):
    """``3 (x - centre)^2 + 1``: in Python floats for the listing, in JAX for the search."""
    return 3.0 * (x - centre) ** 2 + 1.0


@functools.partial(jax.jit, static_argnames="tol")
def _parabolic_on_quadratic(centre, lower, upper, *, tol):
    """`parabolic` on `quadratic`: one program (per dtype) for every centre and interval."""
    return jaxls.parabolic(lambda x: quadratic(x, centre), lower, upper, tol=tol)


@pytest.mark.parametrize(
    "centre, lower, upper",
    [(2.0, 0.0, 5.0), (2.5, 0.0, 5.0), (1000.25, 1000.0, 1003.0), (-7.3, -20.0, -4.0)],
)
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_exact_quadratic(centre, lower, upper, dtype):
    if dtype == jnp.float64:
        # The lecture's listing lands on the minimiser, then its triple degenerates.
        with pytest.raises(ZeroDivisionError):
            lecture_listing(lambda x: quadratic(x, centre), lower, (lower + upper) / 2, upper, 1e-6)
    lo, up = jnp.asarray(lower, dtype), jnp.asarray(upper, dtype)
    tol = 1e-6 if dtype == jnp.float64 else 1e-3
    # The centre traced, in the dtype: what `x - centre` would round the Python float to.
    res = _parabolic_on_quadratic(jnp.asarray(centre, dtype), lo, up, tol=tol)
    assert int(res.status) == S.SUCCESS
    assert int(res.num_evals) <= 6
    assert res.x.dtype == dtype and np.isfinite(float(res.value))
    assert abs(float(res.x) - centre) <= tol
    assert max(float(res.x - res.lower), float(res.upper - res.x)) <= tol


# Starts that do not bracket: ``(fun, lower, upper, xmin)``.
NOT_BRACKETING = {
    "increasing": (lambda x: x, 0.0, 1.0, 0.0),
    "decreasing": (lambda x: -x, 0.0, 1.0, 1.0),
    "exp": (jnp.exp, -3.0, 2.0, -3.0),
    "quadratic_left": (lambda x: (x + 1.0) ** 2, 0.0, 5.0, 0.0),
    "quartic_far": (lambda x: (x - 1001.5) ** 4, 1000.0, 1001.0, 1001.0),
    "near_lower": (lambda x: (x - 0.01) ** 2, 0.0, 5.0, 0.01),
    "near_upper": (lambda x: (x - 4.99) ** 2, 0.0, 5.0, 4.99),
}


@jax.jit
def _parabolic_not_bracketing(lower, upper, tol, i):
    """`parabolic` on the ``i``-th of `NOT_BRACKETING`: one program (per dtype) for every
    case, ``i`` the traced index of a `lax.switch`."""
    funs = [fun for fun, *_ in NOT_BRACKETING.values()]
    return jaxls.parabolic(lambda x: jax.lax.switch(i, funs, x), lower, upper, tol=tol)


@pytest.mark.parametrize("case", list(NOT_BRACKETING))
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_start_that_does_not_bracket(case, dtype):
    """``f(lower) < f(x_init)`` or ``f(upper) < f(x_init)``: the search still converges."""
    _, lower, upper, xmin = NOT_BRACKETING[case]
    lo, up = jnp.asarray(lower, dtype), jnp.asarray(upper, dtype)
    tol = max(1e-8, 4 * float(resolution(lo, up)))
    res = _parabolic_not_bracketing(
        lo, up, jnp.asarray(tol, dtype), list(NOT_BRACKETING).index(case)
    )
    assert int(res.status) == S.SUCCESS
    assert abs(float(res.x) - xmin) <= tol + 4 * float(jnp.finfo(dtype).eps) * abs(xmin)
    assert lower <= float(res.lower) <= float(res.x) <= float(res.upper) <= upper


def test_x_init():
    """The initial triple: ``x_init``, ``lower``, then ``upper`` unless ``f(lower) < f(x_init)``
    already puts the minimiser in ``[lower, x_init]``; ``x_init`` may be traced."""
    objective = lambda x, c: (x - c) ** 2 + 0.1 * (x - c) ** 4
    recorder = EvalRecorder(objective)
    solve = jax.jit(
        lambda c, x0: jaxls.parabolic(lambda x: recorder(x, c), 0.0, 5.0, tol=1e-5, x_init=x0)
    )
    for centre, x_init in [(2.0, 0.001), (2.0, 1.0), (2.0, 2.0), (2.0, 4.999), (0.2, 4.0)]:
        recorder.clear()
        res = solve(centre, x_init)
        jax.effects_barrier()
        points = recorder.points
        assert int(res.status) == S.SUCCESS
        assert abs(float(res.x) - centre) <= 1e-5
        assert points[:2] == [float(jnp.float32(x_init)), 0.0]
        bracketing = float(objective(x_init, centre)) <= float(objective(0.0, centre))
        assert (points[2] == 5.0) == bracketing
        assert len(points) == int(res.num_evals)
    # A concrete x_init is checked eagerly and used as given, in the dtype of the bounds.
    res = jaxls.parabolic(lambda x: x**2, -1.0, 2.0, tol=1e-5, x_init=1.5)
    assert abs(float(res.x)) <= 1e-5
    lo, up = jnp.bfloat16(0.0), jnp.bfloat16(1.0)
    res = jaxls.parabolic(lambda x: jnp.abs(x - 0.3), lo, up, tol=0.05, x_init=0.25)
    for field in (res.x, res.value, res.lower, res.upper):
        assert field.dtype == jnp.bfloat16
    assert int(res.status) == S.SUCCESS and abs(float(res.x) - 0.3) <= 0.05


@pytest.mark.parametrize("x_init", [2.0, 0.0, 1.0, -0.5, math.nan, math.inf])
def test_bad_concrete_x_init_raises(x_init):
    with pytest.raises(ValueError, match=r"`jaxls\.parabolic\(.*`x_init`"):
        jaxls.parabolic(lambda x: x**2, 0.0, 1.0, x_init=x_init)


def test_bad_traced_x_init_reports_invalid():
    """Not strictly inside ``(lower, upper)``: nothing is evaluated, alone or in a batch."""
    counter = EvalCounter(lambda x: (x - 0.3) ** 2)

    def solve(x0):
        return jaxls.parabolic(counter, 0.0, 1.0, tol=1e-6, max_evals=20, x_init=x0)

    single = jax.jit(solve)
    bad = [1.5, 0.0, 1.0, -0.5, np.nan, np.inf]
    for x_init in bad:
        res = single(x_init)
        assert int(res.status) == S.INVALID_INPUT
        assert int(res.num_evals) == 0
        assert np.isnan(float(res.x)) and np.isnan(float(res.value))
        assert tree_equal_bitwise((res.lower, res.upper), (0.0, 1.0))
    jax.effects_barrier()
    assert counter.count == 0
    x_inits = jnp.array([0.25, 0.9, *bad])
    batched = jax.jit(jax.vmap(solve))(x_inits)
    assert [int(s) for s in batched.status] == [S.SUCCESS] * 2 + [S.INVALID_INPUT] * len(bad)
    assert_members_match(batched, single, x_inits)
