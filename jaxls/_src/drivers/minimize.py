"""A whole optimisation as one pure, jittable, vmappable function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxls._src import checks
from jaxls._src.adapters.common import (
    LineSearchInfo,
    Watched,
    check_output,
    explicit_axes_advice,
    grad_norm,
    value_only,
)
from jaxls._src.implicit import solution
from jaxls._src.results import PyTree, Status, status_message

CALL = "optax.minimize"


class MinimizeResult(NamedTuple):
    """Result of `minimize`; under `jax.vmap` every field has a batch axis.

    Attributes:
      params: the last parameters.
      value: the objective there.
      grad: its gradient there.
      grad_norm: the gradient's Euclidean norm.
      num_iterations: optimiser iterations (updates) made (``int32``).
      num_evals: calls of ``fun`` (``int32``), each computing the value or the value and
        the gradient: those `minimize` made itself and those of jaxls's rules (read from
        their `LineSearchInfo`). ``-1`` (`UNCOUNTED`) when some other part of the optimiser
        calls the objective (optax's own line searches, as in ``optax.lbfgs()``): its calls
        cannot be seen, so the count is unknown rather than too small.
      num_grads: how many of those calls computed the gradient (``int32``), or ``-1`` when
        ``num_evals`` is.
      status: ``SUCCESS`` (``grad_norm <= grad_tol``), ``MAX_ITERATIONS`` or ``NONFINITE``.
      state: the optimiser state after the last iteration.
      aux: with ``has_aux=True``, the auxiliary output of ``fun`` at ``params``; else None.
    """

    params: Any
    value: jax.Array
    grad: Any
    grad_norm: jax.Array
    num_iterations: jax.Array
    num_evals: jax.Array
    num_grads: jax.Array
    status: jax.Array
    state: Any
    aux: Any = None

    @property
    def converged(self) -> jax.Array:
        return jnp.asarray(self.status) == Status.SUCCESS

    @property
    def message(self) -> str | list:
        return status_message(self.status)


# `MinimizeResult.num_evals` and `num_grads` when the optimiser evaluates where no count is seen.
UNCOUNTED = -1


class _Carry(NamedTuple):
    params: Any
    state: Any
    value: jax.Array
    grad: Any
    num_iterations: jax.Array
    num_evals: jax.Array
    num_grads: jax.Array


def line_search_infos(state: PyTree) -> list[LineSearchInfo]:
    """Every jaxls `LineSearchInfo` inside an optimiser state."""
    nodes = jax.tree.leaves(state, is_leaf=lambda s: isinstance(s, LineSearchInfo))
    return [s for s in nodes if isinstance(s, LineSearchInfo)]


def stored_value_and_grad(state: PyTree) -> Any:
    """``(value, grad)`` kept in the state by a line search, or None if it keeps none."""
    try:
        value = optax.tree.get(state, "value")
        grad = optax.tree.get(state, "grad")
    except KeyError:  # several: ambiguous, evaluate instead
        return None
    return None if value is None or grad is None else (value, grad)


def minimize(
    fun: Callable,
    params: PyTree,
    optimizer: optax.GradientTransformation,
    *,
    max_iterations: int = 1000,
    grad_tol: float = 1e-6,
    has_aux: bool = False,
    cg_tol: float | None = None,
    cg_max_iterations: int | None = None,
) -> MinimizeResult:
    r"""Run ``optimizer`` on ``fun`` from ``params`` until ``||grad fun|| <= grad_tol``.

    One `jax.lax.while_loop`: jit it once, and `jax.vmap` it over a batch of problems (data
    closed over, or different starting points); each member stops on its own test and keeps
    its own counts and status, members that finished are frozen while the others run.

    Each iteration calls ``optimizer.update(grad, state, params, value=, grad=, value_fn=fun)``.
    When the optimiser's state keeps the value and gradient at the new parameters (jaxls's
    adapters and optax's line searches do, as the chain's last transformation), they are
    reused: no evaluation besides the line search's. ``num_evals`` counts every call of
    ``fun`` when all of them are made by `minimize` and jaxls's rules; when some other part
    of the optimiser calls ``fun`` (optax's zoom search in ``optax.lbfgs()``), it reads
    `UNCOUNTED` (``-1``): unknown, never a count that is too small.

    With ``has_aux=True``, ``fun`` returns ``(value, aux)``: the optimiser is given the value
    alone (build its rules without ``has_aux``), and the result's ``aux`` is that of the last
    parameters (one more call of ``fun``, a value-only one, counted in ``num_evals``).

    Differentiable with respect to what ``fun`` closes over (hyperparameters ``theta`` of
    the objective: a regularisation strength, sample weights, data), with `jax.grad`,
    `jax.jvp`, `jax.jacfwd` and ``jaxls.ad`` alike, under `jax.jit` and `jax.vmap`, by the
    implicit function theorem on ``grad f(x*, theta) = 0``, never through the loop:

    ``d params = -H^{-1} (d/dtheta grad f) dtheta``,  ``d value = f_theta dtheta``
    (envelope theorem),

    ``H`` the Hessian at the solution, solved by conjugate gradients with Hessian-vector
    products (``cg_tol``, ``cg_max_iterations``; see `jaxls.optax.implicit_argmin`): memory
    independent of the number of iterations. Conditions: ``status`` is ``SUCCESS`` (else
    every derivative is NaN: ``params`` is no stationary point to ``grad_tol``) and ``H`` is
    positive definite at the solution (where the conjugate gradients meet a direction of
    non-positive curvature the derivative is NaN; one whose solve never meets it, at a
    saddle, is that of the stationary point found). The
    starting ``params`` and the optimiser's hyperparameters carry no derivative (the
    solution does not depend on them), and neither does ``state``. Make ``grad_tol`` as
    small as the derivative's accuracy needs: the derivative is that of the exact minimiser
    evaluated at the one found.

    Args:
      fun: scalar objective of a pytree of parameters.
      params: starting parameters.
      optimizer: any optax transformation (plain ones are wrapped with
        `optax.with_extra_args_support`).
      max_iterations: cap on optimiser iterations (calls of ``optimizer.update``), ``>= 0``.
      grad_tol: stop when the gradient norm is at most ``grad_tol`` (``>= 0``). (The
        interval searches' ``tol`` is a different concept, a width on the step axis.)
      has_aux: whether ``fun`` returns ``(value, aux)``.
      cg_tol: relative residual at which the derivative's conjugate gradients stop;
        default ``eps ** 0.75`` of the value's dtype.
      cg_max_iterations: cap on those iterations; default twice the number of parameters.

    Returns:
      A `MinimizeResult`.

    Raises:
      TypeError: ``fun`` not a function, or not returning a real scalar (a pair
        ``(scalar, aux)`` with ``has_aux``) at ``params``.
      ValueError: ``max_iterations < 0``, ``grad_tol < 0``, ``cg_tol <= 0`` or
        ``cg_max_iterations < 1``.

    Example:
      >>> import jax.numpy as jnp, optax, jaxls
      >>> rosenbrock = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
      >>> opt = optax.lbfgs(linesearch=jaxls.optax.scale_by_line_search(jaxls.wolfe))
      >>> res = jaxls.optax.minimize(rosenbrock, jnp.array([-1.2, 1.0]), opt, grad_tol=1e-8)
      >>> print(res.params, res.message)
      [1. 1.] converged: the requested tolerance or condition is met
    """
    checks.function(CALL, "fun", fun)
    has_aux = checks.boolean(CALL, "has_aux", has_aux)
    checks.int_at_least(CALL, "max_iterations", max_iterations, 0)
    if checks.is_concrete(grad_tol) and not float(grad_tol) >= 0:
        raise ValueError(
            f"`jaxls.{CALL}(grad_tol={grad_tol!r})`: `grad_tol` must be >= 0 (the gradient norm "
            "at which to stop)."
        )
    check_output(CALL, "fun", jax.eval_shape(fun, params), has_aux)
    solution.check_cg(CALL, cg_tol, cg_max_iterations)
    optimizer = optax.with_extra_args_support(optimizer)

    def run(fun: Callable, params: PyTree) -> MinimizeResult:
        return _run(fun, params, optimizer, max_iterations, grad_tol, has_aux)

    with explicit_axes_advice(CALL):  # the loop is traced, then run, in there
        return solution.minimum(fun, params, run, has_aux, cg_tol, cg_max_iterations)


def _run(
    fun: Callable,
    params: PyTree,
    optimizer: optax.GradientTransformationExtraArgs,
    max_iterations: int,
    grad_tol: float,
    has_aux: bool,
) -> MinimizeResult:
    """The optimisation loop of `minimize` (its inputs checked)."""
    value_fn = Watched(value_only(fun, has_aux))  # what the optimiser sees
    value_and_grad = jax.value_and_grad(value_fn.fun)  # the driver's own calls
    value, grad = value_and_grad(params)
    state = optimizer.init(params)
    reuse = stored_value_and_grad(state) is not None
    dtype = jnp.asarray(value).dtype

    def running(c: _Carry) -> jax.Array:
        return (
            jnp.isfinite(c.value)
            & (grad_norm(c.grad) > grad_tol)
            & (c.num_iterations < max_iterations)
        )

    def iteration(c: _Carry) -> _Carry:
        updates, state = optimizer.update(
            c.grad, c.state, c.params, value=c.value, grad=c.grad, value_fn=value_fn
        )
        params = optax.apply_updates(c.params, updates)
        infos = line_search_infos(state)
        evals = c.num_evals + sum(info.num_evals for info in infos)
        grads = c.num_grads + sum(info.num_grads for info in infos)
        if reuse:
            value, grad = stored_value_and_grad(state)
        else:
            value, grad = value_and_grad(params)
            evals, grads = evals + 1, grads + 1
        value = jnp.asarray(value, dtype)
        return _Carry(params, state, value, grad, c.num_iterations + 1, evals, grads)

    one = jnp.ones((), jnp.int32)
    carry = _Carry(params, state, jnp.asarray(value, dtype), grad, 0 * one, one, one)
    with explicit_axes_advice(CALL):
        params, state, value, grad, iterations, evals, grads = jax.lax.while_loop(
            running, iteration, carry
        )
    aux = None
    if has_aux:
        _, aux = fun(params)
        evals = evals + 1
    if value_fn.called:  # some transformation evaluated where no count is kept
        evals = grads = jnp.full((), UNCOUNTED, jnp.int32)
    norm = grad_norm(grad)
    status = jnp.where(
        ~jnp.isfinite(value),
        Status.NONFINITE,
        jnp.where(norm <= grad_tol, Status.SUCCESS, Status.MAX_ITERATIONS),
    ).astype(jnp.int32)
    return MinimizeResult(params, value, grad, norm, iterations, evals, grads, status, state, aux)


__all__ = ["UNCOUNTED", "MinimizeResult", "minimize"]
