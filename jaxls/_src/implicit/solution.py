r"""Derivatives of the solution of a whole optimisation by the implicit function theorem.

``x*(theta)`` minimises ``f(x, theta)``: ``grad_x f(x*, theta) = 0``. Differentiating it,

    ``H dx* = -(d/dtheta grad_x f) dtheta``,  ``H = grad_x^2 f(x*, theta)``,

which holds where ``H`` is positive definite (a strict minimum: strong convexity at the
solution). It is solved matrix-free by conjugate gradients (`conjugate_gradient`), one
Hessian-vector product per iteration (forward-over-reverse), wrapped in
`jax.lax.custom_linear_solve` so that reverse mode transposes it by one more solve with the
same (symmetric) ``H``: the derivative costs a few dozen Hessian-vector products and memory
of a few copies of ``x``, whatever the number of optimisation steps that found ``x*``.
By the envelope theorem ``d f(x*, theta) = f_theta dtheta``.

Where ``H`` is not positive definite along a direction CG meets (``p^T H p <= 0``, or not
finite), there is no strict minimum and the derivative is NaN. CG explores only the
directions the right-hand side excites: at a saddle, a derivative whose solve never meets
the negative curvature is finite, and is the derivative of that stationary point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxls._src import checks
from jaxls._src.implicit.common import (
    bind,
    hoist,
    nan_unless,
    poison,
    poisoned,
    scale,
    zero_tangent,
)
from jaxls._src.results import Status
from jaxls._src.tree import tree_axpy, tree_vdot


def default_cg_tol(dtype) -> float:
    """``eps ** 0.75`` of ``dtype``: between what the dtype resolves and ``sqrt(eps)``
    (``6.4e-6`` in float32, ``1.8e-12`` in float64)."""
    return float(jnp.finfo(dtype).eps) ** 0.75


def default_cg_max_iterations(x) -> int:
    """Twice the number of unknowns (CG's exact-arithmetic bound, doubled for rounding),
    at least 10."""
    return max(10, 2 * sum(math.prod(np.shape(leaf)) for leaf in jax.tree.leaves(x)))


class _CG(NamedTuple):
    x: Any
    r: Any
    p: Any
    rr: jax.Array  # <r, r>
    k: jax.Array
    ok: jax.Array  # every p^T H p > 0 and finite so far


def conjugate_gradient(matvec: Callable, b, *, tol, max_iterations: int):
    """``H^{-1} b`` by conjugate gradients (Hestenes & Stiefel 1952; Nocedal & Wright
    2006, Alg. 5.2) from 0, until ``|r| <= tol |b|`` or ``max_iterations``; NaN (every
    leaf) if a direction of non-positive (or non-finite) curvature is met (``H`` is not
    positive definite there) or ``b`` is not finite. ``b`` and the result are pytrees."""
    dtype = jnp.result_type(*jax.tree.leaves(b), jnp.float32)
    bb = tree_vdot(b, b).astype(dtype)
    stop = jnp.asarray(tol, dtype) ** 2 * bb
    zero = jax.tree.map(jnp.zeros_like, b)
    # A right-hand side that is not finite (a NaN tangent, masked upstream) gives NaN.
    start = _CG(zero, b, b, bb, jnp.zeros((), jnp.int32), jnp.isfinite(bb))

    def running(s: _CG):
        return s.ok & (s.rr > stop) & (s.k < max_iterations)

    def iteration(s: _CG) -> _CG:
        hp = matvec(s.p)
        curvature = tree_vdot(s.p, hp).astype(dtype)
        ok = jnp.isfinite(curvature) & (curvature > 0)
        alpha = jnp.where(ok, s.rr / jnp.where(ok, curvature, 1), 0)
        x = tree_axpy(alpha, s.p, s.x)
        r = tree_axpy(-alpha, hp, s.r)
        rr = tree_vdot(r, r).astype(dtype)
        p = tree_axpy(rr / jnp.where(s.rr > 0, s.rr, 1), s.p, r)
        return _CG(x, r, p, rr, s.k + 1, ok)

    s = jax.lax.while_loop(running, iteration, start)
    return scale(s.x, nan_unless(s.ok, dtype))


def solve_hessian(grad_x: Callable, x, b, *, cg_tol, cg_max_iterations: int):
    """``H^{-1} b`` for ``H`` the Jacobian of ``grad_x`` at ``x`` (symmetric), by
    `conjugate_gradient` inside `jax.lax.custom_linear_solve`: linear in ``b``, and
    transposed by the same solve."""

    def hvp(v):
        return jax.jvp(grad_x, (x,), (v,))[1]

    def cg(matvec, b):
        return conjugate_gradient(matvec, b, tol=cg_tol, max_iterations=cg_max_iterations)

    return jax.lax.custom_linear_solve(hvp, b, cg, symmetric=True)


def solution_tangent(value_of: Callable, x, consts, dconsts, *, cg_tol, cg_max_iterations):
    """``(dx*, d f(x*, theta), grad_x, d grad_x)``: the implicit function theorem's ``dx*``
    for ``theta``'s tangent ``dconsts``, the envelope theorem's value tangent, the gradient
    at ``x*`` and its tangent. ``value_of(x, consts)`` is the objective's value."""
    grad_x = jax.grad(value_of)
    # f_theta dtheta and (d/dtheta grad_x f) dtheta, in one JVP.
    (_, grad), (dvalue, mixed) = jax.jvp(
        lambda c: jax.value_and_grad(value_of)(x, c), (consts,), (dconsts,)
    )
    rhs = jax.tree.map(jnp.negative, mixed)
    at_theta = lambda y: grad_x(y, consts)
    dx = solve_hessian(at_theta, x, rhs, cg_tol=cg_tol, cg_max_iterations=cg_max_iterations)
    hdx = jax.jvp(at_theta, (x,), (dx,))[1]  # d grad = H dx + mixed (~0 where solved)
    dgrad = jax.tree.map(jnp.add, hdx, mixed)
    return dx, dvalue, grad, dgrad


def minimum(fun: Callable, params, run: Callable, has_aux: bool, cg_tol, cg_max_iterations):
    """``run(fun, params)`` (`jaxls.optax.minimize`'s loop and result), differentiable with
    respect to the values ``fun`` closes over by the implicit function theorem (module
    docstring). NaN derivatives unless the status is ``SUCCESS`` (the gradient norm met
    ``grad_tol``: ``x*`` is a stationary point to that accuracy); the starting point, the
    optimiser (its hyperparameters: the loop closes over them, and they are hoisted too,
    so that differentiating with respect to a learning rate gives its true derivative, 0,
    not a leaked tracer) and the optimiser state carry none."""
    params = jax.tree.map(jnp.asarray, params)
    converted, consts = hoist(fun, params)

    def loop(params, *consts):  # fun's values explicit; the optimiser's still closed over
        return run(bind(converted, consts), params)

    loop_converted, others = hoist(loop, params, *consts)

    @jax.custom_jvp
    def solve(params, consts, others):
        return loop_converted(params, *consts, *others)

    @solve.defjvp
    def solve_jvp(primals, tangents):
        params, consts, others = primals
        _, dconsts, _ = tangents
        res = solve(params, consts, others)
        x = res.params
        dtype = res.value.dtype

        def value_of(x, consts):
            out = converted(x, *consts)
            return (out[0] if has_aux else out).astype(dtype)

        tol = default_cg_tol(dtype) if cg_tol is None else cg_tol
        most = default_cg_max_iterations(x) if cg_max_iterations is None else cg_max_iterations
        dx, dvalue, grad, dgrad = solution_tangent(
            value_of, x, consts, dconsts, cg_tol=tol, cg_max_iterations=most
        )
        bad = poison(res.status == Status.SUCCESS, dtype, dconsts)  # NaN unless SUCCESS
        dx, dgrad = poisoned(dx, bad, x), poisoned(dgrad, bad, res.grad)
        norm = res.grad_norm
        dnorm = tree_vdot(grad, dgrad).astype(dtype) / jnp.where(norm > 0, norm, 1)
        daux = None
        if has_aux:
            aux_at = lambda x, consts: converted(x, *consts)[1]
            daux = poisoned(jax.jvp(aux_at, (x, consts), (dx, dconsts))[1], bad, res.aux)
        tangent = res._replace(
            params=dx,
            value=(dvalue + bad).astype(dtype),
            grad=dgrad,
            grad_norm=(jnp.where(norm > 0, dnorm, 0) + bad).astype(norm.dtype),
            num_iterations=zero_tangent(res.num_iterations),
            num_evals=zero_tangent(res.num_evals),
            num_grads=zero_tangent(res.num_grads),
            status=zero_tangent(res.status),
            state=zero_tangent(res.state),
            aux=daux,
        )
        return res, tangent

    return solve(params, consts, others)


def check_cg(call: str, cg_tol, cg_max_iterations) -> None:
    """Eager checks of the linear solve's configuration (`None`: the defaults)."""
    if cg_tol is not None:
        checks.positive(call, "cg_tol", cg_tol)
    if cg_max_iterations is not None:
        checks.int_at_least(call, "cg_max_iterations", cg_max_iterations, 1)


def implicit_argmin(
    solver: Callable,
    objective: Callable,
    *,
    cg_tol: float | None = None,
    cg_max_iterations: int | None = None,
) -> Callable:
    r"""``solver``, with the derivative of its solution by the implicit function theorem.

    ``solution = implicit_argmin(solver, objective)`` is the function
    ``theta -> solver(theta)`` whose derivatives (`jax.grad`, `jax.jvp`, `jax.jacfwd`,
    ``jaxls.ad``, under `jax.jit` and `jax.vmap`) are those of ``x*(theta)``, the minimiser
    of ``objective(x, theta)``, not of the solver's iterations:

    ``dx* = -H^{-1} (d/dtheta grad_x objective) dtheta``,  ``H`` the Hessian at ``x*``,

    solved matrix-free by conjugate gradients (`jax.lax.custom_linear_solve`, so reverse
    mode works too) with Hessian-vector products: memory of a few copies of ``x``, whatever
    ``solver`` does (a Python loop, a `lax.while_loop`, optax steps). The recipe for a
    training loop of your own: write it as ``solver(theta)``, the loss as
    ``objective(params, theta)``, and differentiate ``implicit_argmin(solver, objective)``.

    Conditions: ``solver(theta)`` returns a minimiser, ``grad_x objective = 0`` there (to
    the accuracy the derivative needs), and ``H`` is positive definite there (a strict
    minimum; strong convexity at the solution). Where CG meets a direction of non-positive
    curvature, the derivative is NaN (every leaf), never a silently wrong number.
    What ``objective`` closes over (its data) is differentiated like ``theta``; what
    ``solver`` closes over (a learning rate, a starting point) carries no derivative: the
    minimiser does not depend on it.

    Args:
      solver: ``solver(theta) -> x*``, pytrees of floating arrays.
      objective: ``objective(x, theta) -> scalar``, twice differentiable at ``x*``.
      cg_tol: relative residual ``|H v - b| <= cg_tol |b|`` at which CG stops; default
        ``eps ** 0.75`` of ``x*``'s dtype (``6.4e-6`` in float32, ``1.8e-12`` in float64).
      cg_max_iterations: cap on CG iterations (Hessian-vector products); default twice
        the number of unknowns, at least 10.

    Returns:
      ``solution(theta)``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxls
      >>> X = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]]); y = jnp.array([1.0, 0.0, 2.0])
      >>> objective = lambda w, lam: jnp.sum((X @ w - y) ** 2) / 2 + lam * jnp.sum(w**2) / 2
      >>> ridge = lambda lam: jnp.linalg.solve(X.T @ X + lam * jnp.eye(2), X.T @ y)
      >>> solution = jaxls.optax.implicit_argmin(ridge, objective)
      >>> d_implicit = jax.jacobian(solution)(0.5)  # -(X^T X + lam I)^{-1} w*
      >>> bool(jnp.allclose(d_implicit, -jnp.linalg.solve(X.T @ X + 0.5 * jnp.eye(2), ridge(0.5))))
      True
    """
    call = "optax.implicit_argmin"
    checks.function(call, "solver", solver)
    checks.function(call, "objective", objective)
    check_cg(call, cg_tol, cg_max_iterations)

    def solution(theta):
        theta = jax.tree.map(jnp.asarray, theta)
        # Closed-over values made explicit (`hoist`): the objective's are parameters of the
        # problem like theta (its data, differentiable); the solver's only decide.
        shapes = jax.eval_shape(solver, theta)
        example = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        objective_c, data = hoist(objective, example, theta)
        solver_c, others = hoist(solver, theta)

        @jax.custom_jvp
        def solve(theta, data, others):
            return solver_c(theta, *others)

        @solve.defjvp
        def solve_jvp(primals, tangents):
            theta, data, others = primals
            dtheta, ddata, _ = tangents
            x = solve(theta, data, others)
            dtype = jnp.result_type(*jax.tree.leaves(x))
            tol = default_cg_tol(dtype) if cg_tol is None else cg_tol
            most = default_cg_max_iterations(x) if cg_max_iterations is None else cg_max_iterations
            value_of = lambda x, p: objective_c(x, p[0], *p[1])
            dx, *_ = solution_tangent(
                value_of, x, (theta, data), (dtheta, ddata), cg_tol=tol, cg_max_iterations=most
            )
            return x, jax.tree.map(lambda t, leaf: t.astype(leaf.dtype), dx, x)

        return solve(theta, data, others)

    return solution


__all__ = [
    "check_cg",
    "conjugate_gradient",
    "default_cg_max_iterations",
    "default_cg_tol",
    "implicit_argmin",
    "minimum",
    "solution_tangent",
    "solve_hessian",
]
