"""Zhang & Hager's non-monotone Armijo rule (2004) as an optax step-size rule."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxls._src import checks
from jaxls._src.adapters import common
from jaxls._src.adapters.common import LineSearchInfo
from jaxls._src.adapters.update import transformation
from jaxls._src.step.backtracking import backtracking

CALL = "optax.nonmonotone_armijo"
UPDATE = f"{CALL}(...).update"


class NonmonotoneArmijoState(NamedTuple):
    """State of `nonmonotone_armijo`.

    Attributes:
      start: where the next search starts: its first trial step.
      value: the objective at the parameters after the last update (``inf`` before the
        first), read by `optax.value_and_grad_from_state` and `jaxls.optax.minimize`.
      grad: its gradient there (zeros before the first update).
      reference: Zhang & Hager's ``C``, the weighted average of past values that the next
        Armijo test compares against (``inf`` before the first update, which sets it to the
        ``value`` it is given).
      weight: their ``Q``, the total weight of that average.
      info: a `LineSearchInfo` on the last search.
      aux: with ``has_aux=True``, the auxiliary output of ``value_fn`` at the parameters
        after the last update (as for `ScaleByLineSearchState`); else None.
    """

    start: jax.Array
    value: jax.Array
    grad: Any
    reference: jax.Array
    weight: jax.Array
    info: LineSearchInfo
    aux: Any = None


def nonmonotone_armijo(
    *,
    eta: float = 0.85,
    c1: float = 1e-4,
    shrink: float = 0.5,
    step_init: float = 1.0,
    grow: float | None = None,
    step_max: float | None = None,
    failure_shrink: float = 0.1,
    interpolate: bool = False,
    max_evals: int = 30,
    has_aux: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Non-monotone Armijo backtracking against Zhang & Hager's average of past values.

    ``update(updates, state, params, *, value, grad, value_fn, **extra_args)`` returns
    ``t d`` with ``d = updates`` (``-grad`` if ``updates`` does not descend) and ``t`` found
    by `jaxls.backtracking` for

    ``f(x_k + t d) <= C_k + c1 t <grad f(x_k), d>``,

    ``Q_0 = 1, C_0 = f(x_0)``; ``Q_{k+1} = eta Q_k + 1``,
    ``C_{k+1} = (eta Q_k C_k + f(x_{k+1})) / Q_{k+1}`` (computed as the convex combination
    ``(eta Q_k / Q_{k+1}) C_k + f(x_{k+1}) / Q_{k+1}``, which cannot overflow).

    ``C_k`` is a weighted average of past values (``>= f(x_k)``), so a step may increase
    ``f`` a little while the average decreases: fewer rejected unit steps for quasi-Newton
    directions in curved valleys. ``eta = 0`` is monotone Armijo (``C_k = f(x_k)``), exactly
    ``scale_by_line_search(jaxls.backtracking)``; ``eta = 1`` compares with the mean of all
    past values.

    Like `scale_by_line_search`, the state keeps ``value`` and ``grad`` at the new parameters
    (`optax.value_and_grad_from_state` and `jaxls.optax.minimize` reuse them), its dtypes
    never change, a derivative through an update holds the step constant, extra keyword arguments
    of ``update`` go to ``value_fn`` (one it does not take is a `TypeError`), ``has_aux``
    keeps the aux at the new parameters in the state, and the failure policy is the same:
    never a step that breaks the test (a failed search returns 0, and the next starts from
    ``failure_shrink`` times this one's start), ``-grad`` for a direction that does not
    descend (``info.fallback``), step 0 and ``NONFINITE`` for a value or gradient that is
    not finite. A first update, or one after a non-finite ``C``, sets
    ``C = f(x_k)``, ``Q = 1``.

    Args:
      eta: weight of the past in ``[0, 1]``.
      c1: Armijo constant in ``(0, 1)``.
      shrink: factor in ``(0, 1)`` applied to a rejected step.
      step_init: first trial step, ``> 0``.
      grow: ``None``: every search starts from ``step_init``; a number ``>= 1``: from
        ``grow`` times the previous accepted step.
      step_max: cap on the first trial step, ``> 0``, or None.
      failure_shrink: factor in ``(0, 1)`` applied to the start after a failed search.
      interpolate: shrink by safeguarded cubic/quadratic interpolation instead of ``shrink``
        (see `jaxls.backtracking`).
      max_evals: cap on calls of the objective per search, ``>= 1`` (each trial is one call;
        the accepted step's gradient comes from its linearisation, as in
        `jaxls.backtracking`).
      has_aux: whether ``value_fn`` returns ``(value, aux)``.

    Returns:
      An `optax.GradientTransformationExtraArgs` whose state is a `NonmonotoneArmijoState`.

    Raises:
      ValueError: a constant out of range, naming the call.
      TypeError: ``max_evals`` not a Python int, ``interpolate`` or ``has_aux`` not a bool.
        At ``update``: ``value``, ``grad`` or ``value_fn`` missing, an extra argument that
        ``value_fn`` does not take, or ``value_fn`` not returning a real scalar (a pair with
        ``has_aux``).

    References:
      H. Zhang & W. W. Hager, "A nonmonotone line search technique and its application to
      unconstrained optimization", SIAM J. Optim. 14(4) (2004), 1043-1056: Algorithm NMLS,
      eqs. (1.4)-(1.5) (here with constant ``eta_k = eta``).

    Example:
      >>> import jax.numpy as jnp, optax, jaxls
      >>> rosenbrock = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
      >>> opt = optax.lbfgs(linesearch=jaxls.optax.nonmonotone_armijo())
      >>> res = jaxls.optax.minimize(rosenbrock, jnp.array([-1.2, 1.0]), opt, grad_tol=1e-8)
      >>> print(res.params, res.message)
      [1. 1.] converged: the requested tolerance or condition is met
    """
    if checks.is_concrete(eta) and not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"`jaxls.{CALL}(eta={eta!r})`: `eta` must be in [0, 1].")
    checks.open_interval(CALL, "c1", c1, 0.0, 1.0)
    checks.open_interval(CALL, "shrink", shrink, 0.0, 1.0)
    restart = common.check_restart(
        CALL, step_init=step_init, grow=grow, failure_shrink=failure_shrink, step_max=step_max
    )
    checks.int_at_least(CALL, "max_evals", max_evals, 1)
    interpolate = checks.boolean(CALL, "interpolate", interpolate)
    has_aux = checks.boolean(CALL, "has_aux", has_aux)
    first = restart.step_init

    def init_fn(params) -> NonmonotoneArmijoState:
        dtype = common.float_dtype(params)
        return NonmonotoneArmijoState(
            start=jnp.asarray(first, dtype),
            value=jnp.asarray(jnp.inf, dtype),
            grad=jax.tree.map(jnp.zeros_like, params),
            reference=jnp.asarray(jnp.inf, dtype),
            weight=jnp.ones((), dtype),
            info=common.initial_info(dtype),
        )

    def average(state, value):
        """``(C_k, Q_k)``: the state's, or ``(f(x_k), 1)`` on a (re)start."""
        restarting = ~jnp.isfinite(state.reference)
        return (
            jnp.where(restarting, value, state.reference),
            jnp.where(restarting, 1, state.weight),
        )

    def search(f, params, direction, value, grad, state):
        reference, _ = average(state, value)
        return backtracking(
            f, params, direction, value=value, grad=grad, step_init=state.start,
            reference=reference, c1=c1, shrink=shrink, interpolate=interpolate,
            max_evals=max_evals, has_aux=has_aux,
        )  # fmt: skip

    def new_state(state, res, value, *, start, info, aux) -> NonmonotoneArmijoState:
        reference, weight = average(state, value)
        new_weight = eta * weight + 1
        new_reference = (eta * weight / new_weight) * reference + res.value / new_weight
        return NonmonotoneArmijoState(
            start, res.value, res.grad, new_reference, new_weight, info, aux
        )

    return transformation(
        UPDATE, init_fn, has_aux=has_aux, restart=restart, search=search, new_state=new_state
    )


__all__ = ["NonmonotoneArmijoState", "nonmonotone_armijo"]
