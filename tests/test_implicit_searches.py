"""Derivatives through every jaxls search (`jaxls._src.implicit`), checked against oracles.

* An exact search on an interval (`EXACT`) is differentiated by the implicit function
  theorem at its minimiser: ``dx* = -f_x,theta dtheta / f_xx`` inside, the bound's
  derivative on a bound, the value by the envelope theorem; NaN where the search failed or
  the minimum is not strict. Oracles: a closed-form minimiser, central finite differences of
  the re-solved problem in float64, ``f_theta`` at the minimiser.
* `jaxls.bracket` holds its decisions constant: each returned point is
  ``x0 + c step_init`` with ``c`` a constant.
* An inexact search (`INEXACT`) holds its accepted step constant: the oracle recomputes
  value and gradient at ``x + stop_gradient(t) d`` with `jax.value_and_grad`.

Each check runs in one compiled program per search (a batch of problems under `jax.vmap`,
each member with its own parameters), and both of jax's modes and `jaxls.ad` are compared.
The cost test reads the jaxprs: the derivative adds no loop and O(1) evaluations.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import jaxls
from tests.ad_zoo import fast_jit
from tests.helpers import count_primitive, loop_eqns

S = jaxls.Status
FOUND = (S.SUCCESS, S.ROUNDING)  # the statuses whose derivative exists
X64 = pytest.mark.x64(reason="derivatives to 1e-6 and below need float64 minimisers")


class Exact(NamedTuple):
    """An exact search as tested: the jaxls function and its fixed keywords (a budget)."""

    search: Callable
    options: dict


EXACT = {
    "golden_section": Exact(jaxls.golden_section, {"max_evals": 200}),
    "brent": Exact(jaxls.brent, {"max_evals": 200}),
    "parabolic": Exact(jaxls.parabolic, {"max_evals": 200}),
    "dichotomy": Exact(jaxls.dichotomy, {"max_evals": 400}),
    "fibonacci": Exact(jaxls.fibonacci, {"fixed_evals": 90}),
    "golden_section_fixed": Exact(jaxls.golden_section, {"fixed_evals": 90}),
    "dichotomy_fixed": Exact(jaxls.dichotomy, {"fixed_evals": 120}),
}
EXACT_NAMES = sorted(EXACT)
TOL_DRIVEN = [name for name in EXACT_NAMES if "fixed_evals" not in EXACT[name].options]

INEXACT = {
    "backtracking": jaxls.backtracking,
    "goldstein": jaxls.goldstein,
    "wolfe": jaxls.wolfe,
    "hager_zhang": jaxls.hager_zhang,
}
INEXACT_NAMES = sorted(INEXACT)

# `jaxls.ad` cannot differentiate fibonacci (see the test that marks it).


def minimise(name, fun, lower, upper, *, tol=None, **options):
    """``EXACT[name]`` on ``[lower, upper]``; ``tol`` for the tolerance-driven ones only (a
    fixed budget runs its evaluations)."""
    search, fixed = EXACT[name]
    options = {**fixed, **options}
    if "fixed_evals" not in options:
        options["tol"] = tol
    return search(fun, lower, upper, **options)


def test_registries_name_every_search():
    """Every public exact search (on ``(fun, lower, upper)``) and every public inexact search
    (returning a `LineSearchResult`) is registered here: a new search fails this test until
    its derivatives are tested."""
    exact = {
        name
        for name in jaxls.__all__
        if callable(obj := getattr(jaxls, name))
        and {"fun", "lower", "upper"} <= set(inspect.signature(obj).parameters)
    }
    assert exact == {"golden_section", "brent", "parabolic", "dichotomy", "fibonacci"}
    assert exact == {entry.search.__name__ for entry in EXACT.values()}
    inexact = {
        name
        for name in jaxls.__all__
        if inspect.isfunction(obj := getattr(jaxls, name))
        and "LineSearchResult" in str(inspect.signature(obj).return_annotation)
    }
    assert inexact == {"backtracking", "goldstein", "wolfe", "hager_zhang"} == set(INEXACT)
    assert all(INEXACT[name].__name__ == name for name in INEXACT)


# --- exact searches ------------------------------------------------------------------------


def quartic(x, theta):
    """Minimiser ``sin(theta)`` with value 0 (the values resolve it to rounding), so
    ``dx*/dtheta = cos(theta)``; ``f_x,theta`` depends on ``x`` through ``(1 + theta^2)``, so
    an error in ``x*`` shows in the derivative."""
    d = x - jnp.sin(theta)
    return (1 + theta**2) * d**2 + 0.1 * d**4


def shifted(x, theta):
    """Minimiser ``sin(theta)``; ``f_x,theta / f_xx = -cos(theta)`` at *every* ``x``, so the
    derivative is exact however coarse the search's dtype."""
    d = x - jnp.sin(theta)
    return d**2 + 0.1 * d**4


def general(x, p):
    """No closed form, a minimum value of 0.086 (far from 0): a pytree of parameters."""
    c = p["centres"]
    return p["scale"] * (x - c[0]) ** 2 + (x - c[1]) ** 4 + 0.1 * jnp.sin(3 * x)


THETAS = (0.7, -0.4, 1.3)


@X64
@pytest.mark.parametrize("name", EXACT_NAMES)
def test_exact_minimiser_derivative_matches_the_closed_form(name):
    """``jax.grad`` of ``x*(theta)`` (theta closed over) equals ``cos(theta)`` to 1e-10 in
    float64, under jit and vmap (each member its own theta); ``x*`` is ``sin(theta)``."""

    def x_star(theta):
        res = minimise(name, lambda x: quartic(x, theta), -3.0, 3.0, tol=1e-13)
        return res.x, res

    thetas = jnp.asarray(THETAS, jnp.float64)
    grads, res = fast_jit(jax.vmap(jax.grad(x_star, has_aux=True)))(thetas)
    assert all(int(s) in FOUND for s in res.status)
    np.testing.assert_allclose(res.x, np.sin(THETAS), rtol=0, atol=1e-12)
    assert grads.dtype == jnp.float64
    np.testing.assert_allclose(grads, np.cos(THETAS), rtol=1e-10)


FD_STEP = 1e-2  # 4th-order stencil: truncation ~1e-10, noise from x* (~1e-9) / h ~1e-7
# One per search function (the fixed-budget modes of golden section and dichotomy share
# their rule and their result with the tolerance-driven ones: the other tests cover them).
FD_NAMES = ["brent", "dichotomy", "fibonacci", "golden_section", "parabolic"]


@X64
@pytest.mark.parametrize("name", FD_NAMES)
def test_exact_derivatives_match_finite_differences_and_the_envelope(name):
    """For `general` (parameters a pytree passed through `functools.partial`, minimum value
    far from 0), ``jax.jacfwd`` of the minimiser equals central differences of the
    re-solved problem to 1e-6 relative (the issue's target) in float64; the value's
    derivative equals them too and equals the envelope theorem's ``f_theta(x*, theta)``."""
    p = {"scale": jnp.float64(1.5), "centres": jnp.array([0.3, 0.6])}
    unravel = ravel_pytree(p)[1]

    def x_and_value(p):
        res = minimise(name, functools.partial(general, p=p), -3.0, 3.0, tol=1e-13)
        return (res.x, res.value), res

    @fast_jit
    def run(p):
        jac, res = jax.jacfwd(x_and_value, has_aux=True)(p)
        flat = ravel_pytree(p)[0]
        offsets = jnp.array([-2.0, -1.0, 1.0, 2.0]) * FD_STEP
        points = flat[None, None, :] + offsets[:, None, None] * jnp.eye(flat.size)[None]
        resolved = jax.vmap(jax.vmap(lambda f: x_and_value(unravel(f))[0]))(points)
        fd = [(8 * (r[2] - r[1]) - (r[3] - r[0])) / (12 * FD_STEP) for r in resolved]
        envelope = jax.grad(general, argnums=1)(res.x, p)
        return jac, fd, envelope, res

    jac, (fd_x, fd_value), envelope, res = run(p)
    assert int(res.status) in FOUND
    jac_x, jac_value = ravel_pytree(jac[0])[0], ravel_pytree(jac[1])[0]
    for ours, fd in ((jac_x, fd_x), (jac_value, fd_value)):
        assert np.max(np.abs(ours - fd)) <= 1e-6 * np.max(np.abs(fd))
    np.testing.assert_allclose(jac_value, ravel_pytree(envelope)[0], rtol=1e-9, atol=1e-15)
    assert np.all(np.abs(fd_x) > 1e-3)  # every parameter moves the minimiser


@pytest.mark.parametrize(
    "name",
    EXACT_NAMES,
)
def test_jaxls_ad_grad_differentiates_exact_searches(name):
    """`jaxls.ad.grad` of the minimiser equals ``cos(theta)`` under jit and vmap in float32,
    as jax's own transforms do."""

    def x_star(theta):
        return minimise(name, lambda x: quartic(x, theta), -3.0, 3.0, tol=1e-5).x

    grads = fast_jit(jax.vmap(jaxls.ad.grad(x_star)))(jnp.asarray(THETAS, jnp.float32))
    assert grads.dtype == jnp.float32
    np.testing.assert_allclose(grads, np.cos(THETAS), rtol=1e-4)


def test_jaxls_ad_jvp_and_jacrev_through_the_bounds():
    """`jaxls.ad.jvp` and `jaxls.ad.jacrev` with respect to ``(theta, lower, upper)`` (the
    minimiser on the lower bound): ``dx* = dlower``, the value's by the chain rule."""

    def outputs(args):
        theta, lower, upper = args
        res = jaxls.golden_section(lambda x: shifted(x, theta), lower, upper, tol=1e-5)
        return jnp.stack([res.x, res.value])

    @fast_jit
    def run(args):
        tangent = jnp.array([1.0, -2.0, 0.5])
        return jaxls.ad.jvp(outputs, (args,), (tangent,))[1], jaxls.ad.jacrev(outputs)(args)

    forward, jacobian = run(jnp.array([0.0, 0.5, 2.0]))
    slope = 1.05  # f_x at d = 0.5: 2 d + 0.4 d^3; f_theta = -f_x cos(0)
    want = np.array([[0.0, 1.0, 0.0], [-slope, slope, 0.0]])
    np.testing.assert_allclose(jacobian, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(forward, want @ np.array([1.0, -2.0, 0.5]), rtol=1e-4)


def jacobians(fun, args):
    """``(aux, forward, reverse)`` of ``fun(args) = (outputs, aux)`` (``args`` a vector,
    ``outputs`` a tuple of scalars): one linearisation, so one primal loop; ``forward[i][j]``
    is ``d output_i / d args_j`` (the linear map applied to each basis vector), ``reverse``
    the transpose applied to ones, ``sum_i d output_i / d args``."""
    out, linear, aux = jax.linearize(fun, args, has_aux=True)
    forward = jax.vmap(linear)(jnp.eye(args.size, dtype=args.dtype))
    (reverse,) = jax.linear_transpose(linear, args)(jax.tree.map(jnp.ones_like, out))
    return aux, jnp.stack(forward), reverse


# Rows (theta, lower, upper) of the float32 batch; theta > 2 makes the objective NaN.
BATCH = np.array(
    [
        [0.7, -3.0, 3.0],  # interior: x* = sin(theta)
        [-0.4, -3.0, 3.0],
        [1.3, -3.0, 3.0],
        [0.0, 0.5, 2.0],  # x* = lower (sin 0 = 0 below it)
        [0.0, -2.0, -0.5],  # x* = upper
        [0.5, 1.0, -1.0],  # bounds out of order: INVALID_INPUT
        [3.0, -3.0, 3.0],  # NaN objective: NONFINITE
    ],
    np.float32,
)


def batch_oracle():
    """The expected Jacobian rows of ``(x, value, aux)`` wrt ``(theta, lower, upper)`` for
    the valid members of `BATCH`, ``aux = theta exp(x)``."""
    rows = []
    for theta, lower, upper in BATCH[:5].astype(np.float64):
        x = np.clip(np.sin(theta), lower, upper)
        dx = np.array([np.cos(theta), 0, 0]) if lower < x < upper else np.zeros(3)
        if x == lower:
            dx[1] = 1
        if x == upper:
            dx[2] = 1
        d = x - np.sin(theta)
        f_x = 2 * d + 0.4 * d**3
        dvalue = f_x * dx + np.array([-f_x * np.cos(theta), 0, 0])  # chain rule + f_theta
        daux = np.exp(x) * (theta * dx + np.array([1, 0, 0]))
        rows.append(np.stack([dx, dvalue, daux]))
    return np.stack(rows)


@pytest.mark.parametrize("name", EXACT_NAMES)
def test_exact_derivatives_in_float32_under_jit_and_vmap_bounds_aux_and_failures(name):
    """One float32 batch (`BATCH`), each member with its own theta and traced bounds, the
    objective closed over with ``has_aux`` (``aux = theta exp(x)``): forward derivatives of
    ``x``, ``value`` and ``aux`` wrt ``(theta, lower, upper)`` match `batch_oracle`: inside,
    ``dx*/dtheta = cos(theta)`` and the bounds' derivatives 0; on a bound, ``dx* = d bound``
    and the value by the chain rule ``f_x d bound + f_theta``; reverse mode agrees. A member
    with bounds out of order (``INVALID_INPUT``) and one whose objective is NaN
    (``NONFINITE``) get NaN in both modes without touching the others."""

    def solve(args):
        theta, lower, upper = args

        def fun(x):
            return jnp.where(theta > 2, jnp.nan, shifted(x, theta)), theta * jnp.exp(x)

        res = minimise(name, fun, lower, upper, tol=1e-5, has_aux=True)
        return (res.x, res.value, res.aux), res.status

    status, forward, reverse = fast_jit(jax.vmap(functools.partial(jacobians, solve)))(BATCH)
    np.testing.assert_array_equal(status[5:], [S.INVALID_INPUT, S.NONFINITE])
    assert all(int(s) in FOUND for s in status[:5])
    assert forward.dtype == reverse.dtype == jnp.float32
    want = batch_oracle()
    np.testing.assert_allclose(forward[:5], want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(reverse[:5], want.sum(axis=1), rtol=1e-4, atol=1e-4)
    assert np.all(np.isnan(forward[5:])) and np.all(np.isnan(reverse[5:]))


@pytest.mark.parametrize("name", ["golden_section", "brent", "fibonacci"])
def test_exact_derivative_in_bfloat16_is_bfloat16(name):
    """In bfloat16 (under jit and vmap) the derivative is bfloat16, never a silent zero,
    and ``cos(theta)`` to a few bfloat16 roundings (theta itself rounded to bfloat16)."""

    def x_star(theta):
        return minimise(name, lambda x: shifted(x, theta), -1.5, 1.5, tol=0.05).x

    thetas = jnp.asarray(THETAS, jnp.bfloat16)
    grads = fast_jit(jax.vmap(jax.grad(x_star)))(thetas)
    assert grads.dtype == jnp.bfloat16
    want = np.cos(np.asarray(thetas, np.float64))
    np.testing.assert_allclose(np.asarray(grads, np.float64), want, rtol=3e-2)


@pytest.mark.parametrize("name", TOL_DRIVEN)
def test_exhausted_budget_gives_nan_derivatives_in_both_modes(name):
    """``max_evals=3`` ends in ``MAX_EVALS``: the tangents of ``x`` and ``value`` are NaN in
    forward mode, the gradient of ``x + value`` is NaN in reverse mode."""

    def outputs(theta):
        res = minimise(name, lambda x: quartic(x, theta[0]), -3.0, 3.0, tol=1e-4, max_evals=3)
        return (res.x, res.value), res.status

    status, forward, reverse = fast_jit(functools.partial(jacobians, outputs))(jnp.ones(1))
    assert int(status) == S.MAX_EVALS
    assert np.all(np.isnan(forward)) and np.all(np.isnan(reverse))


def test_failed_search_gives_nan_for_every_floating_output():
    """The documented convention: after ``MAX_EVALS`` every floating output's tangent is
    NaN, the final bracket's ends included (here both are still the original bounds)."""

    def outputs(theta):
        res = jaxls.golden_section(lambda x: (x - theta) ** 2, -3.0, 3.0, max_evals=1)
        return (res.x, res.value, res.lower, res.upper), res.status

    jvp = fast_jit(lambda t: jax.jvp(outputs, (t,), (jnp.ones_like(t),), has_aux=True)[1:])
    forward, status = jvp(jnp.float32(0.7))
    assert int(status) == S.MAX_EVALS
    assert all(np.isnan(t) for t in forward), forward


def test_degenerate_minimum_gives_nan_derivatives():
    """``|x - theta|`` has ``f_xx = 0`` by AD at its (interior) minimiser: the search
    succeeds, the forward derivative of ``x`` and ``value`` is NaN (reverse mode: see
    `test_reverse_mode_keeps_the_nan`)."""

    def outputs(theta):
        res = jaxls.golden_section(lambda x: jnp.abs(x - theta), -3.0, 3.0)
        return (res.x, res.value), (res.x, res.status)

    _, forward, (x, status) = fast_jit(
        lambda t: jax.jvp(outputs, (t,), (jnp.ones_like(t),), has_aux=True)
    )(jnp.float32(0.7))
    assert int(status) in FOUND and abs(float(x) - 0.7) < 1e-3
    assert np.all(np.isnan(forward))


@pytest.mark.parametrize("case", ["failed_search_wrt_upper", "degenerate_wrt_theta"])
def test_reverse_mode_keeps_the_nan(case):
    """Where the derivative does not exist, reverse mode is NaN as forward mode is (the
    convention of implicit/common.py: a NaN made by a linear multiplication so that
    reverse mode keeps it)."""
    if case == "failed_search_wrt_upper":  # MAX_EVALS, minimiser inside

        def x_star(a):
            return jaxls.golden_section(lambda x: (x - 0.7) ** 2, -3.0, a, max_evals=3).x

    else:  # f_xx = 0: |x - theta|

        def x_star(a):
            return jaxls.golden_section(lambda x: jnp.abs(x - a), -3.0, 3.0).x

    at = jnp.float32(3.0 if case == "failed_search_wrt_upper" else 0.7)
    forward, reverse = fast_jit(
        lambda a: (jax.jvp(x_star, (a,), (jnp.ones_like(a),))[1], jax.grad(x_star)(a))
    )(at)
    assert np.isnan(forward)
    assert np.isnan(reverse), reverse


def test_integer_arguments_are_refused_and_integer_closures_pass():
    """Differentiating with respect to an integer is jax's TypeError (and `jaxls.ad`'s);
    an integer closed over next to a float parameter carries no derivative and does not
    stop the float one's."""

    def x_star(theta, n):
        return jaxls.golden_section(lambda x: (x - theta * n) ** 2, -3.0, 3.0).x

    with pytest.raises(TypeError):
        jax.grad(x_star, argnums=1)(0.5, 2)
    with pytest.raises(TypeError):
        jaxls.ad.grad(x_star, argnums=1)(0.5, 2)
    grad = fast_jit(jax.grad(x_star))(jnp.float32(0.5), jnp.int32(2))
    np.testing.assert_allclose(grad, 2.0, rtol=1e-5)


# --- cost -------------------------------------------------------------------------------


def marked(x, theta):
    """Unimodal, minimiser ``theta``; ``expm1`` marks an evaluation."""
    return jnp.expm1((x - theta) ** 2)


def loops(jaxpr) -> list:
    return loop_eqns(jaxpr, "while") + loop_eqns(jaxpr, "scan")


def loop_body(eqn):
    return eqn.params["body_jaxpr"] if eqn.primitive.name == "while" else eqn.params["jaxpr"]


def outside_the_loop(jaxpr, marker="expm1") -> int:
    """Evaluations (marker primitives) in ``jaxpr`` outside its (one) loop."""
    (loop,) = loops(jaxpr)
    return count_primitive(jaxpr, marker) - count_primitive(loop_body(loop), marker)


def eqn_count(jaxpr) -> int:
    return len(getattr(jaxpr, "jaxpr", jaxpr).eqns)


@pytest.mark.parametrize("name", EXACT_NAMES + INEXACT_NAMES)
def test_derivative_costs_o1_evaluations_and_no_loop(name):
    """The jaxprs of `jax.grad` and `jax.jvp` hold exactly one loop, the primal search's,
    with the primal body (no tangent carried through the iterations, none transposed);
    outside it, a handful of evaluations of the objective, as many for a budget 4 times
    larger."""
    if name in EXACT:
        budget = "fixed_evals" if name not in TOL_DRIVEN else "max_evals"

        def solve(theta, size):
            res = minimise(name, lambda x: marked(x, theta), -3.0, 3.0, **{budget: size})
            return res.x + res.value

        sizes = (30, 120)
    else:

        def solve(theta, size):
            x = jnp.zeros(2)
            fun = lambda y: jnp.sum(marked(y, theta))
            res = INEXACT[name](fun, x, jnp.ones(2), max_evals=size)
            return res.value + res.slope

        sizes = (10, 40)
    theta = jnp.float32(0.5)
    primal = jax.make_jaxpr(solve, static_argnums=1)(theta, sizes[0])
    (primal_loop,) = loops(primal)
    grads = [jax.make_jaxpr(jax.grad(solve), static_argnums=1)(theta, n) for n in sizes]
    jvp = jax.make_jaxpr(lambda t: jax.jvp(lambda t: solve(t, sizes[0]), (t,), (t,)))(theta)
    extra = []
    for jaxpr in (*grads, jvp):
        (loop,) = loops(jaxpr)
        assert loop.primitive == primal_loop.primitive
        assert eqn_count(loop_body(loop)) == eqn_count(loop_body(primal_loop))
        extra.append(outside_the_loop(jaxpr) - outside_the_loop(primal))
    assert extra[0] == extra[1]  # independent of the budget
    assert all(0 < n <= 8 for n in extra), extra


# --- bracket ----------------------------------------------------------------------------


def test_bracket_holds_its_decisions_constant():
    """`jaxls.bracket`: each returned point is ``x0 + c step_init`` with ``c`` constant, so
    its derivative wrt ``x0`` is 1, wrt ``step_init`` is ``c``, wrt theta 0; the value's
    derivative is ``f_x dx + f_theta`` (oracle: the points rebuilt from stop-gradient ``c``
    and the objective evaluated there). Forward and reverse mode, under jit and vmap."""

    def outputs(args):
        x0, step, theta = args
        res = jaxls.bracket(lambda x: shifted(x, theta), x0, step_init=step)
        return (res.x, res.lower, res.upper, res.value), res

    def oracle(args, factors):
        x0, step, theta = args
        points = [x0 + c * step for c in factors]
        return (*points, shifted(points[0], theta))

    @fast_jit
    @jax.vmap
    def run(args):
        out, linear, res = jax.linearize(outputs, args, has_aux=True)
        factors = [jax.lax.stop_gradient((p - args[0]) / args[1]) for p in out[:3]]
        tangent = jnp.array([1.0, -2.0, 0.5])
        forward = linear(tangent)
        along_x0 = linear(jnp.array([1.0, 0.0, 0.0]))
        (reverse,) = jax.linear_transpose(linear, args)(tuple(jnp.ones_like(v) for v in out))
        want_forward = jax.jvp(lambda a: oracle(a, factors), (args,), (tangent,))[1]
        want_reverse = jax.grad(lambda a: sum(oracle(a, factors)))(args)
        return res.status, forward, along_x0, reverse, want_forward, want_reverse, factors

    args = jnp.array([[0.0, 0.3, 2.5], [4.0, -1.0, 0.5], [-1.0, 2.0, -0.2]])
    status, forward, along_x0, reverse, want_forward, want_reverse, factors = run(args)
    np.testing.assert_array_equal(status, S.SUCCESS)
    # the step mattered: some point of each member has d p / d step_init = c != 0
    assert np.all(np.max(np.abs(np.stack(factors)), axis=0) > 0.5)
    for ours, want in zip((*forward, reverse), (*want_forward, want_reverse), strict=True):
        np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.stack(along_x0[:3]), 1.0, rtol=1e-6)  # every point
    np.testing.assert_allclose(reverse[:, 2], want_reverse[:, 2], rtol=1e-5)
    assert np.all(np.abs(reverse[:, 2]) > 1e-3)  # theta reaches the value: f_theta


# --- inexact searches -----------------------------------------------------------------


def objective(x, theta):
    """A pytree ``x = {"w": (3,), "b": ()}``, parameters ``theta`` (3,): smooth, convex
    along the tested directions, Hessian depending on ``x`` and ``theta``."""
    w, b = x["w"], x["b"]
    return (
        0.5 * jnp.sum(theta * (w - 1.0) ** 2)
        + 0.1 * jnp.sum(w**4)
        + (b - theta[0]) ** 2
        + 0.1 * jnp.sin(theta[1] * b)
    )


def objective_with_aux(x, theta):
    return objective(x, theta), {"scaled": theta[2] * x["w"] ** 2, "count": jnp.int32(3)}


def tree_sum(tree) -> jax.Array:
    return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(tree))


def direction_at(x, theta, sign):
    """``-sign grad f(x, theta)``: descent for ``sign = 1``, ascent for ``sign = -1``."""
    return jax.tree.map(lambda g: -sign * g, jax.grad(objective)(x, theta))


def scalar_summary(res) -> jax.Array:
    """What the tests differentiate: value, every gradient leaf, slope and step."""
    return res.value + tree_sum(res.grad) + res.slope + res.step


def constant_step_oracle(x, theta, sign, step, has_aux=False):
    """`scalar_summary` with the step held constant: value and gradient recomputed at
    ``y = x + t d`` with `jax.value_and_grad` (and the aux's float leaf, with ``has_aux``)."""
    t = jax.lax.stop_gradient(step)
    d = direction_at(x, theta, sign)
    y = jax.tree.map(lambda a, b: a + t * b, x, d)
    value, grad = jax.value_and_grad(objective)(y, theta)
    slope = sum(
        jnp.vdot(g, e) for g, e in zip(jax.tree.leaves(grad), jax.tree.leaves(d), strict=True)
    )
    out = value + tree_sum(grad) + slope + t
    if has_aux:
        out = out + jnp.sum(objective_with_aux(y, theta)[1]["scaled"])
    return out


X0 = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.float32(0.3)}
# member 2: an ascent direction (NOT_DESCENT, step 0)
BATCH_THETAS = jnp.array([[1.0, 2.0, 0.5], [3.0, 0.5, 1.5], [2.0, 1.0, 1.0]])
BATCH_SIGNS = jnp.array([1.0, 1.0, -1.0])


@pytest.mark.parametrize("name", INEXACT_NAMES)
def test_inexact_derivatives_hold_the_step_constant(name):
    """With only ``value_and_grad=`` (``fun=None``) and ``has_aux=True``: the derivatives
    of value + sum(grad) + slope + step + sum(aux) wrt ``x`` (a pytree) and theta (closed
    over), reaching the direction ``-grad f(x, theta)`` through both, equal the
    constant-step oracle (value, gradient and aux recomputed at ``x + t d``), in forward
    mode (the whole Jacobian) and reverse mode, under jit and vmap (each member its own
    theta); the step's own tangent is exactly 0; a non-descent direction
    (``NOT_DESCENT``, step 0) gives the derivatives of f at ``x``, finite."""
    unravel = ravel_pytree((X0, BATCH_THETAS[0]))[1]

    def summary(z, sign):
        x, theta = unravel(z)
        vg = jax.value_and_grad(lambda y: objective_with_aux(y, theta), has_aux=True)
        res = INEXACT[name](None, x, direction_at(x, theta, sign), value_and_grad=vg, has_aux=True)
        return (scalar_summary(res) + jnp.sum(res.aux["scaled"]), res.step), res

    def oracle(z, sign, step):
        x, theta = unravel(z)
        return constant_step_oracle(x, theta, sign, step, has_aux=True)

    @fast_jit
    @jax.vmap
    def run(theta, sign):
        z = ravel_pytree((X0, theta))[0]
        res, forward, reverse = jacobians(functools.partial(summary, sign=sign), z)
        return forward, reverse, jax.grad(oracle)(z, sign, res.step), res

    forward, reverse, want, res = run(BATCH_THETAS, BATCH_SIGNS)
    np.testing.assert_array_equal(res.status, [S.SUCCESS, S.SUCCESS, S.NOT_DESCENT])
    assert np.all(res.step[:2] > 0) and res.step[2] == 0
    assert np.all(np.isfinite(forward)) and np.all(np.isfinite(reverse))
    np.testing.assert_array_equal(forward[:, 1], 0.0)  # the step's tangent
    np.testing.assert_allclose(forward[:, 0], want, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(reverse, want, rtol=2e-5, atol=2e-5)  # d(out + step)


def test_inexact_jax_grad_and_jaxls_ad_grad_through_fun():
    """With ``fun=`` (pytree ``x``, theta closed over): `jax.grad` and `jaxls.ad.grad` of
    value + sum(grad) + slope + step wrt ``x`` and theta equal the constant-step oracle,
    under jit and vmap, the ``NOT_DESCENT`` member included. (The rule is one wrapper,
    `constant_step`, for every search; the test above runs each search through it.)"""
    name = "backtracking"  # value-only trials, whose linearisations the search keeps

    def summary(x, theta, sign):
        res = INEXACT[name](lambda y: objective(y, theta), x, direction_at(x, theta, sign))
        return scalar_summary(res), res

    @fast_jit
    @jax.vmap
    def run(theta, sign):
        grads, res = jax.grad(summary, argnums=(0, 1), has_aux=True)(X0, theta, sign)
        want = jax.grad(constant_step_oracle, argnums=(0, 1))(X0, theta, sign, res.step)
        ad_grads = jaxls.ad.grad(lambda x, t: summary(x, t, sign)[0], argnums=(0, 1))(X0, theta)
        return grads, want, ad_grads, res

    grads, want, ad_grads, res = run(BATCH_THETAS, BATCH_SIGNS)
    np.testing.assert_array_equal(res.status, [S.SUCCESS, S.SUCCESS, S.NOT_DESCENT])
    per_member = jax.vmap(lambda tree: ravel_pytree(tree)[0])
    assert np.all(np.isfinite(per_member(grads)))
    for ours in (grads, ad_grads):
        np.testing.assert_allclose(per_member(ours), per_member(want), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_inexact_derivative_in_half_precision_keeps_the_dtype(dtype):
    """Parameters in bfloat16 / float16 (the loss computed in their dtype): the gradient
    through a Wolfe search with respect to ``x`` and theta has the parameters' dtype, is
    finite and nonzero, and is the constant-step oracle's to the dtype's precision."""
    f = lambda x, theta: jnp.sum(theta * (x - 1) ** 2 + 0.1 * x**4)

    def through(x, theta):
        d = -jax.grad(f)(x, theta)
        res = jaxls.wolfe(lambda y: f(y, theta), x, d)
        return res.value + jnp.sum(res.grad), res.step

    def oracle(x, theta, step):
        d = -jax.grad(f)(x, theta)
        value, grad = jax.value_and_grad(f)(x + step * d, theta)
        return value + jnp.sum(grad)

    x, theta = jnp.asarray([0.2, -0.5, 1.7], dtype), jnp.asarray([1.0, 2.0, 0.5], dtype)
    grads, step = fast_jit(jax.grad(through, argnums=(0, 1), has_aux=True))(x, theta)
    want = jax.grad(oracle, argnums=(0, 1))(x, theta, step)
    for got, expected in zip(grads, want, strict=True):
        assert got.dtype == dtype and bool(jnp.all(jnp.isfinite(got))) and bool(jnp.any(got != 0))
        np.testing.assert_allclose(
            np.asarray(got, np.float32), np.asarray(expected, np.float32), rtol=5e-2, atol=5e-2
        )


# --- the stochastic rule's value-only search ---------------------------------------------


@pytest.mark.parametrize("has_aux", [False, True], ids=["plain", "has_aux"])
def test_stochastic_armijo_update_holds_the_step_constant(has_aux):
    """`jaxls.optax.stochastic_armijo`: the loss after one update, differentiated wrt a
    parameter of the loss (``jax.grad``), equals the oracle ``loss(w - t grad, theta)``
    with the accepted step ``t`` constant; with ``has_aux``, the state's aux (at the
    accepted point) is differentiated there too. Finite."""
    X = jnp.array([[1.0, 0.5], [-0.3, 2.0], [0.7, -1.2], [1.5, 0.2]])
    y = jnp.array([1.0, -0.5, 0.3, 2.0])
    w = jnp.array([0.2, -0.1])

    def loss(w, theta):
        value = 0.5 * jnp.mean((X @ w - theta * y) ** 2) + 0.05 * theta * jnp.sum(w**2)
        return (value, {"norm": theta * jnp.sum(w**2)}) if has_aux else value

    def value_of(w, theta):
        return loss(w, theta)[0] if has_aux else loss(w, theta)

    rule = jaxls.optax.stochastic_armijo(has_aux=has_aux, step_init=4.0)
    opt = optax.chain(optax.sgd(1.0), rule)

    def after_update(theta):
        value, grad = jax.value_and_grad(value_of)(w, theta)
        updates, state = opt.update(
            grad, opt.init(w), w, value=value, grad=grad, value_fn=lambda v: loss(v, theta)
        )
        new = optax.apply_updates(w, updates)
        out = value_of(new, theta)
        if has_aux:
            out = out + state[1].aux["norm"]
        return out, state[1].info.step

    def oracle(theta, step):
        new = w - jax.lax.stop_gradient(step) * jax.grad(value_of)(w, theta)
        out = value_of(new, theta)
        return out + loss(new, theta)[1]["norm"] if has_aux else out

    @fast_jit
    def run(theta):
        grad, step = jax.grad(after_update, has_aux=True)(theta)
        return grad, step, jax.grad(oracle)(theta, step)

    grad, step, want = run(jnp.float32(1.3))
    assert 0 < float(step) < 4.0  # the search backtracked: the step is not the start
    assert np.isfinite(grad)
    np.testing.assert_allclose(grad, want, rtol=1e-5)


def test_traced_constants_of_a_rule_carry_no_derivative():
    """A rule's constant traced and differentiated (``c1`` of `stochastic_armijo`, under
    jit and vmap): its derivative is 0 (it only decides the step), never a leaked tracer;
    the loss's parameter still gets the constant-step derivative."""

    def total(c1, theta):
        opt = jaxls.optax.stochastic_armijo(c1=c1)
        f = lambda w: theta * jnp.sum((w - 2.0) ** 2) + jnp.sum(w**4)
        w = jnp.array([1.0, -0.5])
        value, grad = jax.value_and_grad(f)(w)
        out, state = opt.update(-grad, opt.init(w), w, value=value, grad=grad, value_fn=f)
        return jnp.sum(out), state.info.step

    c1s, thetas = jnp.array([0.1, 0.2]), jnp.array([1.5, 1.5])
    d_c1, d_theta = fast_jit(jax.vmap(jax.grad(lambda c, t: total(c, t)[0], argnums=(0, 1))))(
        c1s, thetas
    )
    steps = jax.vmap(lambda c, t: total(c, t)[1])(c1s, thetas)
    # The oracle: d/dtheta of -t * sum(grad f(w; theta)) with t fixed: -t * sum(2 (w - 2)).
    expected = -steps * jnp.sum(2 * (jnp.array([1.0, -0.5]) - 2.0))
    np.testing.assert_array_equal(d_c1, 0.0)
    np.testing.assert_allclose(d_theta, expected, rtol=1e-5)
