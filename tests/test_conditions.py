"""The public step-size predicates (`jaxls.armijo_condition` and the rest).

Oracle: each condition recomputed exactly, in rational arithmetic (`fractions.Fraction`), on
the inputs as the predicate sees them (rounded to the dtype). The predicate computes in its
dtype, so it may disagree with the exact answer only within rounding of the terms it
compares; where the exact margin is wider than that, they must agree. Beside that: the
defaults are the searches' own, a step that does not decrease never passes, NaN never
passes, and the predicates broadcast and work under `jit` and `vmap`, in every float dtype.
"""

from __future__ import annotations

import functools
import inspect
from fractions import Fraction

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings

import jaxls

DTYPES = [jnp.bfloat16, jnp.float16, jnp.float32, jnp.float64]


def default(fun, name):
    return inspect.signature(fun).parameters[name].default


def test_defaults_are_the_searches_defaults():
    """One default per constant: a predicate's default is that of the search that tests it."""
    assert default(jaxls.armijo_condition, "c1") == default(jaxls.backtracking, "c1")
    assert default(jaxls.armijo_condition, "c1") == default(jaxls.wolfe, "c1")
    for fun in (jaxls.wolfe_condition, jaxls.strong_wolfe_condition):
        assert default(fun, "c1") == default(jaxls.wolfe, "c1")
        assert default(fun, "c2") == default(jaxls.wolfe, "c2")
    for fun in (jaxls.curvature_condition, jaxls.strong_curvature_condition):
        assert default(fun, "c2") == default(jaxls.wolfe, "c2")
    assert default(jaxls.goldstein_condition, "c1") == default(jaxls.goldstein, "c1")
    for name in ("c1", "c2", "epsilon"):
        assert default(jaxls.approximate_wolfe_condition, name) == default(
            jaxls.hager_zhang, name
        ), name


# --- the exact oracle ------------------------------------------------------------------


def rounded(value, dtype) -> Fraction:
    """``value`` as the predicate sees it: rounded to ``dtype``, then exact; subnormals
    flushed to zero, as XLA on CPU does."""
    value = float(np.asarray(jnp.asarray(value, dtype), np.float64))
    return Fraction(0 if abs(value) < float(jnp.finfo(dtype).tiny) else value)


def ulp(dtype) -> Fraction:
    return Fraction(float(jnp.finfo(dtype).eps))


def exact(name, v0, s0, v, s, t, c1, c2, epsilon):
    """``(holds, margin)``: the condition in exact arithmetic, and how far its tightest
    inequality is from equality (relative to the size of its terms, in ulps)."""
    change = v - v0
    armijo = (change - c1 * t * s0, abs(change) + abs(c1 * t * s0))  # <= 0
    curvature = (c2 * s0 - s, abs(s) + abs(c2 * s0))  # <= 0
    strong = (abs(s) - c2 * abs(s0), abs(s) + abs(c2 * s0))  # <= 0
    lower = ((1 - c1) * t * s0 - change, abs(change) + abs((1 - c1) * t * s0))  # <= 0
    upper_slope = (s - (2 * c1 - 1) * s0, abs(s) + abs((2 * c1 - 1) * s0))  # <= 0
    ceiling = (v - v0 - epsilon * abs(v0), abs(v) + abs(v0) + abs(epsilon * v0))  # <= 0
    parts = {
        "armijo": [armijo],
        "goldstein": [armijo, lower],
        "curvature": [curvature],
        "strong_curvature": [strong],
        "wolfe": [armijo, curvature],
        "strong_wolfe": [armijo, strong],
        "approximate_wolfe": [upper_slope, curvature, ceiling],
    }[name]
    holds = all(gap <= 0 for gap, _ in parts)
    # A strict decrease is part of Armijo: equality (no decrease) never passes for t > 0.
    if name in ("armijo", "goldstein", "wolfe", "strong_wolfe") and t > 0:
        holds = holds and change < 0
    margin = min(abs(gap) / size if size else Fraction(10**9) for gap, size in parts)
    return holds, margin


@functools.cache
def compiled(name):
    return jax.jit(functools.partial(call, name))


def call(name, v0, s0, v, s, t, c1, c2, epsilon):
    return {
        "armijo": lambda: jaxls.armijo_condition(v0, s0, v, t, c1),
        "goldstein": lambda: jaxls.goldstein_condition(v0, s0, v, t, c1),
        "curvature": lambda: jaxls.curvature_condition(s0, s, c2),
        "strong_curvature": lambda: jaxls.strong_curvature_condition(s0, s, c2),
        "wolfe": lambda: jaxls.wolfe_condition(v0, s0, v, s, t, c1, c2),
        "strong_wolfe": lambda: jaxls.strong_wolfe_condition(v0, s0, v, s, t, c1, c2),
        "approximate_wolfe": lambda: jaxls.approximate_wolfe_condition(
            v0, s0, v, s, c1, c2, epsilon
        ),
    }[name]()


NAMES = [
    "armijo",
    "goldstein",
    "curvature",
    "strong_curvature",
    "wolfe",
    "strong_wolfe",
    "approximate_wolfe",
]


def test_every_public_condition_is_tested():
    """A new or renamed predicate must be added to `NAMES`."""
    exported = {name for name in jaxls.__all__ if name.endswith("_condition")}
    assert exported == {f"{name}_condition" for name in NAMES}


# phi(0), phi'(0) < 0, phi(t) near phi(0) (so that the conditions are often near their
# boundaries), phi'(t), t > 0.
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
cases = st.tuples(
    finite,
    st.floats(-100.0, -1e-3),
    st.floats(-1.0, 1.0),
    finite,
    st.floats(1e-3, 10.0),
    st.sampled_from([1e-4, 0.1, 0.3, 0.45]),
    st.sampled_from([0.5, 0.9, 0.99]),
)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=4)
@given(case=st.lists(cases, min_size=64, max_size=64))
def test_agrees_with_exact_arithmetic_beyond_rounding(name, dtype, case):
    """64 random cases per example, as one vectorised (jitted) call: wherever the exact answer holds
    or fails by more than rounding (64 ulps of the terms), the predicate gives it."""
    v0, s0, dv, s, t, c1, c2 = (np.array(column) for column in zip(*case, strict=True))
    v = v0 + dv * np.abs(s0 * t)  # phi(t) within |phi'(0) t| of phi(0)
    eps = 16 * float(jnp.finfo(jnp.promote_types(dtype, jnp.float32)).eps)
    args = [jnp.asarray(a, dtype) for a in (v0, s0, v, s, t, c1, c2)]
    got = np.asarray(compiled(name)(*args, jnp.asarray(eps, dtype)))
    assert got.shape == (64,) and got.dtype == bool
    tested = 0
    for i in range(64):
        exact_args = [rounded(a[i], dtype) for a in (v0, s0, v, s, t, c1, c2)]
        holds, margin = exact(name, *exact_args, rounded(eps, dtype))
        if margin > 64 * ulp(dtype):
            tested += 1
            assert bool(got[i]) == holds, (i, [float(a) for a in exact_args], margin)
    # Most cases are clear of their boundaries; a batch that is not (Hypothesis also draws
    # the constants of the code it finds imported, which can make most cases alike: its
    # draws then depend on which modules a worker has imported) says too little and is
    # replaced by another, rather than failed (and shrunk, for minutes).
    assume(tested >= 16)


def test_defaults_match_the_explicit_constants():
    args = (1.0, -2.0, 0.9, -0.5, 0.2)
    assert jaxls.wolfe_condition(*args) == jaxls.wolfe_condition(*args, c1=1e-4, c2=0.9)
    assert jaxls.goldstein_condition(1.0, -2.0, 0.7, 0.2) == jaxls.goldstein_condition(
        1.0, -2.0, 0.7, 0.2, c1=0.1
    )


# --- exact properties, in every dtype ---------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_decrease_never_passes(dtype):
    """phi(t) >= phi(0) with t > 0 fails every Armijo-based condition, even where
    ``c1 t phi'(0)`` underflows to zero or is below half an ulp of phi(0)."""
    one = jnp.asarray(1.0, dtype)
    tiny = jnp.asarray(jnp.finfo(dtype).tiny, dtype)
    for step, slope0 in [(tiny, -one), (one, -tiny), (jnp.asarray(1e-3, dtype), -one)]:
        for value in (one, one + jnp.asarray(jnp.finfo(dtype).eps, dtype)):
            assert not bool(jaxls.armijo_condition(one, slope0, value, step))
            assert not bool(jaxls.goldstein_condition(one, slope0, value, step))
            assert not bool(jaxls.wolfe_condition(one, slope0, value, 0 * one, step))
            assert not bool(jaxls.strong_wolfe_condition(one, slope0, value, 0 * one, step))
    # One ulp lower is a decrease, and passes where the asked decrease rounds below it.
    lower = jnp.nextafter(one, jnp.asarray(0.0, dtype))
    assert bool(jaxls.armijo_condition(one, -tiny, lower, one))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("position", range(5))
def test_nan_never_passes(dtype, position):
    base = [1.0, -2.0, 0.5, -0.1, 0.5]  # value0, slope0, value, slope, step: passes all
    base = [jnp.asarray(b, dtype) for b in base]
    assert bool(jaxls.wolfe_condition(*base)) and bool(jaxls.strong_wolfe_condition(*base))
    args = list(base)
    args[position] = jnp.asarray(jnp.nan, dtype)
    v0, s0, v, s, t = args
    assert not bool(jaxls.wolfe_condition(v0, s0, v, s, t))
    assert not bool(jaxls.strong_wolfe_condition(v0, s0, v, s, t))
    if position != 3:
        assert not bool(jaxls.armijo_condition(v0, s0, v, t))
        assert not bool(jaxls.goldstein_condition(v0, s0, v, t, c1=0.4))
    if position != 4:
        assert not bool(jaxls.approximate_wolfe_condition(v0, s0, v, s))
    if position in (1, 3):
        assert not bool(jaxls.curvature_condition(s0, s))
        assert not bool(jaxls.strong_curvature_condition(s0, s))


def test_goldstein_band_on_a_parabola():
    """phi(t) = 1 - 2t + t^2: the Goldstein band of c1 = 1/4 is t in [1/2, 3/2] (both lines
    meet the parabola there), exactly in binary arithmetic."""
    phi = lambda t: 1 - 2 * t + t * t
    for t, inside in [(0.25, False), (0.5, True), (1.0, True), (1.5, True), (1.75, False)]:
        assert bool(jaxls.goldstein_condition(1.0, -2.0, phi(t), t, c1=0.25)) == inside, t
        assert bool(jaxls.armijo_condition(1.0, -2.0, phi(t), t, c1=0.25)) == (t <= 1.5), t


@pytest.mark.parametrize("dtype", DTYPES)
def test_approximate_wolfe_default_epsilon_is_16_ulps(dtype):
    """``epsilon=None``: phi(t) may exceed phi(0) by 16 ulps of the dtype (at least
    float32's), the searches' default; not by 32."""
    wide = jnp.finfo(jnp.promote_types(dtype, jnp.float32)).eps
    v0 = jnp.asarray(1.0, dtype)
    for ulps, passes in [(8, True), (16, True), (32, False)]:
        value = jnp.asarray(1.0 + ulps * float(wide), jnp.promote_types(dtype, jnp.float32))
        if jnp.asarray(value, dtype) == value:  # representable: test it in dtype
            got = jaxls.approximate_wolfe_condition(v0, -1.0, jnp.asarray(value, dtype), -0.5)
            assert bool(got) == passes, ulps
    # The paper's 1e-6 given explicitly.
    x64 = jax.config.jax_enable_x64
    if dtype == jnp.float64 or (dtype == jnp.float32 and not x64):
        assert bool(jaxls.approximate_wolfe_condition(1.0, -1.0, 1.0 + 5e-7, -0.5, epsilon=1e-6))


def test_slope_bounds_of_approximate_wolfe():
    """(2 c1 - 1) phi'(0) >= phi'(t) >= c2 phi'(0): with c1 = 0.1, c2 = 0.9, phi'(0) = -1,
    the slope must lie in [-0.9, 0.8]."""
    for slope, passes in [(-0.95, False), (-0.9, True), (0.0, True), (0.8, True), (0.85, False)]:
        assert bool(jaxls.approximate_wolfe_condition(1.0, -1.0, 1.0, slope)) == passes, slope


# --- shapes and transformations --------------------------------------------------------


def test_broadcast_jit_and_vmap_agree():
    """(Every dtype is in the exact test above, which runs under `jit`.)"""
    key = jax.random.key(0)
    v0, s0, dv, s, t = jax.random.normal(key, (5, 100))
    s0, t = -jnp.abs(s0) - 0.1, jnp.abs(t) + 0.01
    v = v0 + dv * jnp.abs(s0 * t)
    for fun, args, at_origin in [
        (jaxls.armijo_condition, (v0, s0, v, t), 2),
        (jaxls.goldstein_condition, (v0, s0, v, t), 2),
        (jaxls.curvature_condition, (s0, s), 1),
        (jaxls.strong_curvature_condition, (s0, s), 1),
        (jaxls.wolfe_condition, (v0, s0, v, s, t), 2),
        (jaxls.strong_wolfe_condition, (v0, s0, v, s, t), 2),
        (jaxls.approximate_wolfe_condition, (v0, s0, v, s), 2),
    ]:
        eager = np.asarray(fun(*args))
        assert eager.shape == (100,) and eager.dtype == bool, fun.__name__
        np.testing.assert_array_equal(jax.jit(fun)(*args), eager)
        np.testing.assert_array_equal(jax.vmap(fun)(*args), eager)
        # Scalars against arrays broadcast: the origin shared by every trial.
        shared = fun(*(a[0] if i < at_origin else a for i, a in enumerate(args)))
        assert np.asarray(shared).shape == (100,), fun.__name__
    assert 0 < int(jnp.sum(jaxls.wolfe_condition(v0, s0, v, s, t))) < 100  # both outcomes
