"""Derivatives of a whole optimisation's solution by the implicit function theorem.

``jaxls.optax.minimize`` and ``jaxls.optax.implicit_argmin`` differentiate the minimiser
``x*(theta)`` of ``f(x, theta)`` through ``grad_x f(x*, theta) = 0``, never through the
loop that found it: ``dx* = -H^{-1} (d/dtheta grad_x f) dtheta``, solved by conjugate
gradients with Hessian-vector products. The oracles: closed forms (ridge regression,
``x* = (X^T X + lam I)^{-1} X^T y`` with ``dx*/dlam = -(X^T X + lam I)^{-1} x*``; a scalar
problem), central finite differences of the re-solved problem (logistic regression, whose
minimiser has no closed form), `jnp.linalg.solve` for the conjugate gradients, and the
jaxpr of the derivative (nothing in it grows with the number of iterations).

Derivatives are compared in float64, where the solvers reach ``grad_tol = 1e-12`` and a
central difference resolves 1e-6 relative; float32, JAX's default, with a loose tolerance.
Most problems are solved by gradient descent with step ``1 / L`` (``optax.sgd``), cheap to
compile: the derivative does not depend on the optimiser that found the minimiser. The
logistic regression uses L-BFGS (optax's zoom search) and a Newton loop.
"""

from __future__ import annotations

import collections
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxls
from jaxls._src.implicit.solution import conjugate_gradient
from jaxls.optax import implicit_argmin, minimize
from tests.ad_zoo import fast_jit

with warnings.catch_warnings():  # "JAXopt is no longer maintained": it is an oracle here
    warnings.simplefilter("ignore", DeprecationWarning)
    import jaxopt

S = jaxls.Status
X64 = "derivatives compared with closed forms and finite differences to 1e-6 relative"


# --- ridge regression ---------------------------------------------------------------------


def ridge_data(dtype, n=30, features=5):
    """A least-squares problem ``(X, y)`` in ``dtype``; ``X^T X`` has eigenvalues in
    ``[10, 47]``, so gradient descent with step ``0.02 < 1 / L`` converges for ``lam <= 2``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, features))
    y = X @ rng.standard_normal(features) + 0.5 * rng.standard_normal(n)
    return jnp.asarray(X, dtype), jnp.asarray(y, dtype)


def ridge_closed_form(X, y, lam):
    """``(x*, dx*/dlam)`` in float64 NumPy."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    A = X.T @ X + lam * np.eye(X.shape[1])
    w = np.linalg.solve(A, X.T @ y)
    return w, -np.linalg.solve(A, w)


def ridge_solver(X, y, *, grad_tol, has_aux=False, **options):
    """``(lam, params0) -> minimize(ridge objective)`` by gradient descent: the whole
    `MinimizeResult`, differentiable in ``lam``. With ``has_aux``, ``aux`` is
    ``(X @ w, lam * w)``: fitted values, and the penalty's gradient (depends on ``lam``)."""

    def solve(lam, params0=None):
        params0 = jnp.zeros(X.shape[1], X.dtype) if params0 is None else params0

        def fun(w):
            value = jnp.sum((X @ w - y) ** 2) / 2 + lam * jnp.sum(w**2) / 2
            return (value, (X @ w, lam * w)) if has_aux else value

        return minimize(
            fun, params0, optax.sgd(0.02), grad_tol=grad_tol, has_aux=has_aux, **options
        )

    return solve


@pytest.mark.x64(reason=X64)
def test_ridge_solution_derivative_in_every_mode_is_the_closed_form():
    """``dx*/dlam`` by `jax.jacobian`, `jax.jacfwd`, `jax.jvp`, ``jaxls.ad.jacrev``,
    ``jaxls.ad.jacfwd`` and ``jaxls.ad.grad`` (all under one `jax.jit`) is
    ``-(X^T X + lam I)^{-1} x*`` to 1e-8 and the central difference of the re-solved
    problem to 1e-6, relative; the starting point carries no derivative (zero)."""
    X, y = ridge_data(jnp.float64)
    solve = ridge_solver(X, y, grad_tol=1e-12, max_iterations=1000)
    params = lambda lam: solve(lam).params
    weights = jnp.arange(1.0, 6.0)

    @fast_jit
    def derivatives(lam, params0):
        return {
            "jax.jacobian": jax.jacobian(params)(lam),
            "jax.jacfwd": jax.jacfwd(params)(lam),
            "jax.jvp": jax.jvp(params, (lam,), (jnp.ones_like(lam),))[1],
            "jaxls.ad.jacrev": jaxls.ad.jacrev(params)(lam),
            "jaxls.ad.jacfwd": jaxls.ad.jacfwd(params)(lam),
            "jaxls.ad.grad": jaxls.ad.grad(lambda lam: params(lam) @ weights)(lam),
            "params0": jax.grad(lambda p0: jnp.sum(solve(lam, p0).params))(params0),
        }

    lam, h = 0.5, 1e-4
    w, exact = ridge_closed_form(X, y, lam)
    solve_jit = fast_jit(solve)
    res = solve_jit(jnp.asarray(lam))
    assert res.status == S.SUCCESS
    np.testing.assert_allclose(res.params, w, rtol=1e-10)
    fd = (solve_jit(jnp.asarray(lam + h)).params - solve_jit(jnp.asarray(lam - h)).params) / (2 * h)
    np.testing.assert_allclose(fd, exact, rtol=1e-6)  # the two oracles agree

    got = derivatives(jnp.asarray(lam), jnp.ones(5))
    for mode in ("jax.jacobian", "jax.jacfwd", "jax.jvp", "jaxls.ad.jacrev", "jaxls.ad.jacfwd"):
        assert got[mode].shape == (5,) and got[mode].dtype == jnp.float64, mode
        np.testing.assert_allclose(got[mode], exact, rtol=1e-8, err_msg=mode)
        np.testing.assert_allclose(got[mode], fd, rtol=1e-6, err_msg=mode)
    np.testing.assert_allclose(got["jaxls.ad.grad"], exact @ np.arange(1.0, 6.0), rtol=1e-8)
    np.testing.assert_array_equal(got["params0"], np.zeros(5))


@pytest.mark.x64(reason=X64)
def test_value_by_the_envelope_theorem_and_grad_and_aux_tangents():
    """With ``has_aux``: the value's derivative is ``f_lam = |x*|^2 / 2`` (envelope
    theorem) in forward and reverse mode, and matches the central difference of the
    re-solved values; ``aux = (X x*, lam x*)`` has tangent ``(X dx*, x* + lam dx*)``; the
    gradient's tangent is finite and zero (the gradient stays zero along the solution
    path), the gradient norm's finite."""
    X, y = ridge_data(jnp.float64)
    solve = ridge_solver(X, y, grad_tol=1e-12, has_aux=True, max_iterations=1000)
    fields = lambda lam: (lambda r: (r.params, r.value, r.grad, r.grad_norm, r.aux))(solve(lam))

    @fast_jit
    def tangents(lam):
        primal, tangent = jax.jvp(fields, (lam,), (jnp.ones_like(lam),))
        return primal, tangent, jax.grad(lambda lam: solve(lam).value)(lam)

    lam, h = 0.5, 1e-4
    w, exact = ridge_closed_form(X, y, lam)
    (params, value, _, _, aux), tangent, reverse = tangents(jnp.asarray(lam))
    dparams, dvalue, dgrad, dnorm, daux = tangent
    np.testing.assert_allclose(aux[0], X @ params, rtol=1e-12)
    np.testing.assert_allclose(dparams, exact, rtol=1e-8)
    np.testing.assert_allclose(dvalue, np.sum(w**2) / 2, rtol=1e-10)
    np.testing.assert_allclose(reverse, np.sum(w**2) / 2, rtol=1e-10)
    values = fast_jit(lambda lam: solve(lam).value)
    fd = (values(jnp.asarray(lam + h)) - values(jnp.asarray(lam - h))) / (2 * h)
    np.testing.assert_allclose(dvalue, fd, rtol=1e-6)
    np.testing.assert_allclose(daux[0], np.asarray(X) @ exact, rtol=1e-8)
    np.testing.assert_allclose(daux[1], w + lam * exact, rtol=1e-8)
    assert np.all(np.isfinite(dgrad)) and np.isfinite(dnorm)
    np.testing.assert_allclose(dgrad, 0.0, atol=1e-9)
    assert value.dtype == dvalue.dtype == jnp.float64


@pytest.mark.x64(reason=X64)
def test_vmap_over_lambdas_gives_each_its_own_derivative():
    """`jax.vmap` of `jax.jacobian` under `jax.jit` over a batch of regularisation
    strengths: each member, converged after its own number of iterations, has the closed
    form derivative at its own ``lam``."""
    X, y = ridge_data(jnp.float64)
    solve = ridge_solver(X, y, grad_tol=1e-12, max_iterations=2000)
    lams = jnp.asarray([0.01, 0.3, 2.0])

    @fast_jit
    @jax.vmap
    def batched(lam):
        res = solve(lam)
        return res.status, res.num_iterations, jax.jacobian(lambda lam: solve(lam).params)(lam)

    status, iterations, jacobians = batched(lams)
    np.testing.assert_array_equal(status, S.SUCCESS)
    assert len(set(np.asarray(iterations).tolist())) == 3  # each stopped on its own test
    for lam, jacobian in zip(np.asarray(lams), jacobians, strict=True):
        np.testing.assert_allclose(jacobian, ridge_closed_form(X, y, lam)[1], rtol=1e-8)


def test_float32_derivative_with_a_reachable_tolerance():
    """In float32 (JAX's default) with ``grad_tol = 1e-4`` (reachable where the gradient
    has rounding ``~1e-5``) and the default CG tolerance, `jax.grad` and `jax.jacfwd` are
    the float64 closed form to 1e-3 relative, in float32."""
    X, y = ridge_data(jnp.float32)
    solve = ridge_solver(X, y, grad_tol=1e-4, max_iterations=1000)

    @fast_jit
    def derivatives(lam):
        res = solve(lam)
        jacobian = jax.jacobian(lambda lam: solve(lam).params)(lam)
        return res.status, jacobian, jax.jacfwd(lambda lam: solve(lam).params)(lam)

    status, reverse, forward = derivatives(jnp.float32(0.5))
    exact = ridge_closed_form(X, y, 0.5)[1]
    assert status == S.SUCCESS
    assert reverse.dtype == forward.dtype == jnp.float32
    np.testing.assert_allclose(reverse, exact, rtol=1e-3)
    np.testing.assert_allclose(forward, exact, rtol=1e-3)


def walk(jaxpr):
    """Every equation of a jaxpr and of the jaxprs inside it (loop bodies, branches,
    linear solves' jaxprs)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            items = param if isinstance(param, (tuple, list)) else (param,)
            for item in items:
                inner = getattr(item, "jaxpr", item)  # a ClosedJaxpr's Jaxpr
                if isinstance(inner, jax.extend.core.Jaxpr):
                    yield from walk(inner)


def test_derivative_memory_does_not_grow_with_the_iteration_cap():
    """The jaxpr of `jax.grad` of the solution holds no ``scan`` and the same values (the
    same multiset of shapes and primitives) with ``max_iterations`` 200 and 2000, and no
    value with an axis of either length: nothing of the loop's iterations is stored,
    whatever the number of steps (the derivative is solved at the solution)."""
    X, y = ridge_data(jnp.float32)

    def summary(max_iterations):
        solve = ridge_solver(X, y, grad_tol=1e-4, max_iterations=max_iterations)
        grad = jax.grad(lambda lam: jnp.sum(solve(lam).params))
        eqns = list(walk(jax.make_jaxpr(grad)(jnp.float32(0.5)).jaxpr))
        shapes = [v.aval.shape for eqn in eqns for v in eqn.outvars if hasattr(v.aval, "shape")]
        primitives = collections.Counter(eqn.primitive.name for eqn in eqns)
        return collections.Counter(shapes), primitives

    shapes_200, primitives_200 = summary(200)
    shapes_2000, primitives_2000 = summary(2000)
    assert primitives_200["while"] >= 2  # the optimiser's loop and conjugate gradients
    assert "scan" not in primitives_200
    assert primitives_200 == primitives_2000
    assert shapes_200 == shapes_2000
    assert not any(n in (200, 2000) for shape in shapes_200 for n in shape)


# --- logistic regression: the derivative of a validation loss ------------------------------


@pytest.mark.x64(reason=X64)
def test_logistic_regression_hypergradient_matches_finite_differences():
    """theta = (regularisation strength, per-sample weights) of an L2-regularised logistic
    regression: `jax.grad` of a validation loss of ``x*(theta)`` found by
    ``minimize(optax.lbfgs())``, and found by a Newton ``lax.while_loop`` wrapped in
    `implicit_argmin` (the recipe for a training loop of one's own), both equal the
    central differences (every component of theta) of the validation loss of the
    re-solved problem to 1e-6 relative, and jaxopt's implicit differentiation
    (`jaxopt.implicit_diff.custom_root` on the optimality condition ``grad_x f = 0``) of the
    same Newton solver to 1e-8."""
    rng = np.random.default_rng(1)
    n, d = 40, 5
    X, Xv = jnp.asarray(rng.standard_normal((n, d))), jnp.asarray(rng.standard_normal((20, d)))
    truth = rng.standard_normal(d)
    y = jnp.asarray(np.where(np.asarray(X) @ truth + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0))
    yv = jnp.asarray(np.where(np.asarray(Xv) @ truth > 0, 1.0, -1.0))

    def objective(w, theta):
        lam, weights = theta
        return jnp.sum(weights * jax.nn.softplus(-y * (X @ w))) / n + lam * jnp.sum(w**2) / 2

    def validation(w):
        return jnp.mean(jax.nn.softplus(-yv * (Xv @ w)))

    def lbfgs(theta):
        fun = lambda w: objective(w, theta)
        return minimize(fun, jnp.zeros(d), optax.lbfgs(), grad_tol=1e-10)

    def newton(theta):
        grad = lambda w: jax.grad(objective)(w, theta)

        def step(carry):
            w, k = carry
            return w - jnp.linalg.solve(jax.hessian(objective)(w, theta), grad(w)), k + 1

        running = lambda carry: (jnp.linalg.norm(grad(carry[0])) > 1e-14) & (carry[1] < 50)
        return jax.lax.while_loop(running, step, (jnp.zeros(d), 0))[0]

    solution = implicit_argmin(newton, objective)
    by_jaxopt_solver = jaxopt.implicit_diff.custom_root(jax.grad(objective))(
        lambda init, theta: newton(theta)
    )

    @fast_jit
    def hypergradients(theta):
        res = lbfgs(theta)
        by_minimize = jax.grad(lambda theta: validation(lbfgs(theta).params))(theta)
        by_newton = jax.grad(lambda theta: validation(solution(theta)))(theta)
        zeros = jnp.zeros(d)
        by_jaxopt = jax.grad(lambda theta: validation(by_jaxopt_solver(zeros, theta)))(theta)
        return res.status, res.params, by_minimize, by_newton, by_jaxopt

    theta = (jnp.asarray(0.1), jnp.asarray(rng.uniform(0.5, 1.5, n)))
    status, params, by_minimize, by_newton, by_jaxopt = hypergradients(theta)
    for ours in (by_minimize, by_newton):
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(by_jaxopt), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-8)
    assert status == S.SUCCESS
    np.testing.assert_allclose(params, newton(theta), rtol=1e-8)

    # Central differences in each of the 1 + n components of theta, re-solved (by Newton's
    # method to a gradient of 1e-14, the same minimiser), in one vmapped call.
    h = 2e-5
    steps = h * np.eye(1 + n)
    point = np.concatenate([[theta[0]], theta[1]])
    shifted = jnp.asarray(np.concatenate([point + steps, point - steps]))
    losses = fast_jit(jax.vmap(lambda t: validation(newton((t[0], t[1:])))))(shifted)
    fd = (losses[: 1 + n] - losses[1 + n :]) / (2 * h)
    for name, (dlam, dweights) in {"minimize": by_minimize, "newton": by_newton}.items():
        got = np.concatenate([[dlam], dweights])
        assert np.abs(got).min() > 1e-5  # every component is tested, none is ~0
        np.testing.assert_allclose(got, fd, rtol=1e-6, err_msg=name)


# --- where the derivative does not exist -----------------------------------------------------


def not_converged(X, y):
    """Ridge regression stopped after 3 iterations (status ``MAX_ITERATIONS``), with aux."""
    return ridge_solver(X, y, grad_tol=1e-4, has_aux=True, max_iterations=3)


def test_not_converged_gives_nan_forward_derivatives():
    """Stopped by ``max_iterations`` (status ``MAX_ITERATIONS``): the forward-mode tangents
    of the parameters, value, gradient, gradient norm and aux are NaN, and so is the
    reverse-mode derivative of the value: never the derivative of an unconverged point."""
    solve = not_converged(*ridge_data(jnp.float32))
    fields = lambda lam: (lambda r: (r.params, r.value, r.grad, r.grad_norm, r.aux))(solve(lam))

    @fast_jit
    def derivatives(lam):
        _, tangents = jax.jvp(fields, (lam,), (jnp.ones_like(lam),))
        value = jax.grad(lambda lam: solve(lam).value)(lam)
        return solve(lam).status, tangents, value

    status, tangents, value = derivatives(jnp.float32(0.5))
    assert status == S.MAX_ITERATIONS
    for tangent in jax.tree.leaves((tangents, value)):
        assert np.all(np.isnan(tangent))


def test_not_converged_gives_nan_reverse_derivatives():
    """Stopped by ``max_iterations``: the reverse-mode derivatives (`jax.grad`,
    ``jaxls.ad.grad``) of the parameters and of aux are NaN, as the forward ones are (the
    NaN mask reaches the transposed solve as a NaN right-hand side, which
    `conjugate_gradient` returns as NaN, not as its zero start)."""
    solve = not_converged(*ridge_data(jnp.float32))

    @fast_jit
    def derivatives(lam):
        return (
            jax.grad(lambda lam: jnp.sum(solve(lam).params))(lam),
            jaxls.ad.grad(lambda lam: jnp.sum(solve(lam).params))(lam),
            jax.grad(lambda lam: jnp.sum(solve(lam).aux[1]))(lam),
        )

    for derivative in derivatives(jnp.float32(0.5)):
        assert np.isnan(derivative)


@fast_jit
def stationary_start(a, c):
    """``minimize`` of ``sum(c x^2) / 2 + a sum(x)`` from ``x = 0`` (stationary at
    ``a = 0``): status, iterations, and the derivative of ``x*`` in ``a`` forward
    (`jax.jacfwd`) and reverse (`jax.grad` of ``sum(x*)``)."""

    def params(a):
        fun = lambda x: jnp.sum(c * x**2) / 2 + a * jnp.sum(x)
        return minimize(fun, jnp.zeros(2), optax.sgd(0.1), grad_tol=1e-6)

    res = params(a)
    forward = jax.jacfwd(lambda a: params(a).params)(a)
    reverse = jax.grad(lambda a: jnp.sum(params(a).params))(a)
    return res.status, res.num_iterations, forward, reverse


@pytest.mark.parametrize(
    ("curvatures", "expected"),
    [
        ((1.0, 2.0), (-1.0, -0.5)),  # a minimum: the control, dx* = -1 / c
        ((-1.0, -1.0), None),  # a maximum
        ((1.0, -2.0), None),  # a saddle: CG's first direction has negative curvature
        ((1.0, -1.0), None),  # ... zero curvature
        ((3.0, -1.0), None),  # ... positive first, negative next
    ],
)
def test_stationary_point_that_is_no_minimum_gives_nan(curvatures, expected):
    """``f(x) = sum(c x^2) / 2 + a sum(x)`` started at its stationary point ``x = 0`` with
    ``a = 0``: `minimize` returns ``SUCCESS`` at once, and the derivative in ``a``
    (forward and reverse) is ``-1 / c`` at a minimum and NaN (conjugate gradients meet
    non-positive curvature) at a maximum or saddle."""
    status, iterations, forward, reverse = stationary_start(
        jnp.float32(0.0), jnp.asarray(curvatures)
    )
    assert status == S.SUCCESS and iterations == 0
    if expected is None:
        assert np.all(np.isnan(forward)) and np.isnan(reverse)
    else:
        np.testing.assert_allclose(forward, expected, rtol=1e-6)
        np.testing.assert_allclose(reverse, sum(expected), rtol=1e-6)


@pytest.mark.x64(reason="conjugate gradients compared with a direct solve to 1e-10")
def test_conjugate_gradient_solves_spd_systems_and_refuses_indefinite_ones():
    """`conjugate_gradient` equals `jnp.linalg.solve` on a symmetric positive definite
    matrix (a pytree right-hand side too), and is NaN (every leaf) on indefinite ones and
    on a singular positive semidefinite one whose curvature vanishes exactly along a
    direction CG takes."""
    rng = np.random.default_rng(2)
    M = rng.standard_normal((6, 6))
    spd = jnp.asarray(M @ M.T + 0.5 * np.eye(6))
    b = jnp.asarray(rng.standard_normal(6))

    @fast_jit
    def cg(A, b):
        return conjugate_gradient(lambda v: A @ v, b, tol=1e-13, max_iterations=50)

    np.testing.assert_allclose(cg(spd, b), jnp.linalg.solve(spd, b), rtol=1e-10)

    # b as the pytree (b[:2], b[2:]), the matrix applied to the concatenation.
    def matvec(v):
        full = spd @ jnp.concatenate(v)
        return full[:2], full[2:]

    x = conjugate_gradient(matvec, (b[:2], b[2:]), tol=1e-13, max_iterations=50)
    assert isinstance(x, tuple) and x[0].shape == (2,) and x[1].shape == (4,)
    np.testing.assert_allclose(jnp.concatenate(x), jnp.linalg.solve(spd, b), rtol=1e-10)

    Q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    indefinite = jnp.asarray(Q @ np.diag([3.0, 2.0, 1.0, 0.5, -0.5, -1.0]) @ Q.T)
    assert np.all(np.isnan(cg(indefinite, b)))
    x = conjugate_gradient(lambda v: (-v[0], v[1]), (b[:2], b[2:]), tol=1e-13, max_iterations=50)
    assert all(np.all(np.isnan(leaf)) for leaf in x)
    # diag(1, 1, 0) from b = 1: the second direction is (0, 0, 1.5), of curvature 0.
    singular = jnp.diag(jnp.asarray([1.0, 1.0, 0.0]))
    assert np.all(np.isnan(cg(singular, jnp.ones(3))))


# --- configuration and inputs ----------------------------------------------------------------


def call(name, **options):
    """``minimize`` or ``implicit_argmin`` on a small problem, with ``options``."""
    objective = lambda x, a: jnp.sum((x - a) ** 2)
    if name == "minimize":
        fun = lambda x: objective(x, 1.0)
        return minimize(fun, jnp.zeros(2), optax.sgd(0.1), **options)
    return implicit_argmin(lambda a: a * jnp.ones(2), objective, **options)


@pytest.mark.parametrize("name", ["minimize", "implicit_argmin"])
@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"cg_tol": -1.0}, "cg_tol"),
        ({"cg_tol": 0.0}, "cg_tol"),
        ({"cg_tol": float("nan")}, "cg_tol"),
        ({"cg_max_iterations": 0}, "cg_max_iterations"),
    ],
)
def test_bad_configuration_raises_naming_the_call(name, options, argument):
    """``cg_tol <= 0`` (or NaN) and ``cg_max_iterations < 1`` raise `ValueError` naming
    ``jaxls.optax.<call>(<argument>=...)``, when the call is made."""
    with pytest.raises(ValueError, match=rf"jaxls\.optax\.{name}\({argument}="):
        call(name, **options)


@pytest.mark.parametrize("name", ["minimize", "implicit_argmin"])
def test_non_integer_cg_max_iterations_raises_type_error(name):
    """``cg_max_iterations`` is a static Python int: a float is a `TypeError`."""
    with pytest.raises(TypeError, match=rf"jaxls\.optax\.{name}\(cg_max_iterations="):
        call(name, cg_max_iterations=10.0)


def test_differentiating_with_respect_to_an_integer_is_jax_type_error():
    """An integer ``theta`` has no derivative: `jax.grad` refuses it (jax's own
    `TypeError`), for `minimize` and `implicit_argmin` alike."""

    def by_minimize(a):
        return minimize(lambda x: jnp.sum((x - a) ** 2), jnp.zeros(2), optax.sgd(0.1)).value

    solution = implicit_argmin(lambda a: a * jnp.ones(2), lambda x, a: jnp.sum((x - a) ** 2))
    for f in (by_minimize, lambda a: jnp.sum(solution(a))):
        with pytest.raises(TypeError, match="int32"):
            jax.grad(f)(3)


# --- a scalar problem --------------------------------------------------------------------------


def test_scalar_implicit_argmin_is_the_closed_form():
    """``x*(a) = log a`` minimises ``exp(x) - a x``: `implicit_argmin` around a Newton
    `lax.fori_loop` has derivative ``1 / a`` by `jax.grad` and `jax.jacfwd`, batched by
    `jax.vmap`, and second derivative ``-1 / a^2`` (the rule is itself differentiable),
    in float32."""
    objective = lambda x, a: jnp.exp(x) - a * x
    newton = lambda a: jax.lax.fori_loop(0, 40, lambda _, x: x - 1 + a * jnp.exp(-x), 0 * a)
    solution = implicit_argmin(newton, objective)

    @fast_jit
    @jax.vmap
    def derivatives(a):
        first = jax.grad(solution)
        return solution(a), first(a), jax.jacfwd(solution)(a), jax.grad(first)(a)

    a = jnp.asarray([0.5, 2.0, 7.0])
    x, reverse, forward, second = derivatives(a)
    np.testing.assert_allclose(x, np.log(a), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(reverse, 1 / a, rtol=1e-5)
    np.testing.assert_allclose(forward, 1 / a, rtol=1e-5)
    np.testing.assert_allclose(second, -1 / a**2, rtol=1e-4)


def test_the_optimisers_hyperparameters_carry_no_derivative():
    """The solution does not depend on the optimiser that found it: differentiating with
    respect to a learning rate (closed over by the optimiser, not by ``fun``) gives 0 in
    every mode, not a leaked tracer, while ``fun``'s parameter still gets its derivative."""

    def solve(lr, centre):
        fun = lambda w: jnp.sum((w - centre) ** 2)
        return minimize(fun, jnp.zeros(2), optax.sgd(lr), grad_tol=1e-4).params[0]

    @fast_jit
    def derivatives(lr, centre):
        return (
            jax.grad(solve, argnums=(0, 1))(lr, centre),
            jax.jacfwd(solve, argnums=(0, 1))(lr, centre),
            jaxls.ad.grad(solve, argnums=(0, 1))(lr, centre),
        )

    for d_lr, d_centre in derivatives(jnp.float32(0.1), jnp.float32(1.5)):
        assert float(d_lr) == 0.0
        np.testing.assert_allclose(float(d_centre), 1.0, rtol=1e-5)


@pytest.mark.x64(reason="the closed form's derivative compared to 1e-8")
def test_implicit_argmin_differentiates_the_objectives_data_not_the_solvers_constants():
    """A training loop of one's own, as users write it: the objective closes over its data
    ``y``, the solver over a learning rate. The derivative with respect to ``y`` and to
    ``lam`` is the closed form's (ridge), with respect to the learning rate 0 (the
    minimiser does not depend on it), forward and reverse mode alike."""
    X = jnp.asarray([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]])

    def fitted(y, lam, lr):
        objective = lambda w, lam: jnp.sum((X @ w - y) ** 2) / 2 + lam * jnp.sum(w**2) / 2
        step = lambda _, w: w - lr * jax.grad(objective)(w, lam)
        solver = lambda lam: jax.lax.fori_loop(0, 3000, step, jnp.zeros(2))
        return jnp.sum(implicit_argmin(solver, objective)(lam))

    def closed(y, lam):
        return jnp.sum(jnp.linalg.solve(X.T @ X + lam * jnp.eye(2), X.T @ y))

    y, lam, lr = jnp.asarray([1.0, 0.0, 2.0]), jnp.asarray(0.5), jnp.asarray(0.01)
    expected = jax.grad(closed, argnums=(0, 1))(y, lam)
    reverse = fast_jit(jax.grad(fitted, argnums=(0, 1, 2)))(y, lam, lr)
    forward = fast_jit(jax.jacfwd(fitted, argnums=(0, 1, 2)))(y, lam, lr)
    for got in (reverse, forward):
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-8)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-8)
        assert float(got[2]) == 0.0
