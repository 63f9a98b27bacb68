"""Stochastic Armijo line search, SLS (Vaswani et al. 2019), as an optax step-size rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxls._src import checks, loop
from jaxls._src.adapters import common
from jaxls._src.adapters.common import LineSearchInfo
from jaxls._src.adapters.update import transformation
from jaxls._src.implicit.step import constant_step_value_only
from jaxls._src.results import RUNNING, Status
from jaxls._src.step.conditions import armijo_condition
from jaxls._src.tree import tree_axpy

CALL = "optax.stochastic_armijo"
UPDATE = f"{CALL}(...).update"


class StochasticArmijoState(NamedTuple):
    """State of `stochastic_armijo`.

    It keeps no ``value`` or ``grad``: those of a minibatch are no use on the next one, so
    the training loop computes ``jax.value_and_grad`` on each minibatch (and
    `optax.value_and_grad_from_state` does not apply).

    Attributes:
      start: where the next search starts: its first trial step, already reset:
        ``min(grow ** (batch_size / num_examples) * step, step_max)``.
      info: a `LineSearchInfo` on the last search (``num_evals`` counts value-only
        evaluations; ``num_grads`` is 0).
      aux: with ``has_aux=True``, the auxiliary output of ``value_fn`` on the minibatch at
        the accepted trial point (after a failed search, the previous update's; None before
        the first update); else None.
    """

    start: jax.Array
    info: LineSearchInfo
    aux: Any = None


class _Search(NamedTuple):
    step: jax.Array  # the step being tried; once status is SUCCESS, the accepted one
    num_evals: jax.Array
    num_grads: jax.Array  # always 0: the search evaluates values only
    status: jax.Array
    aux: Any  # value_fn's aux at the accepted step (with has_aux; else None)


@constant_step_value_only
def value_backtracking(
    f: Callable, params, direction, value, grad, step_init, *, c1, shrink, max_evals: int, has_aux
) -> _Search:
    """``t <- shrink t`` from ``step_init`` until ``f(params + t d) <= value + c1 t slope``,
    ``slope = <grad, d>``: the stochastic rule's own search.

    Not `jaxls.backtracking`: that one returns the gradient at the accepted point (from the
    linearisation of its value-only trials, whose residuals it keeps, or one more call),
    which SLS would throw away with the minibatch. This one evaluates forward passes only,
    keeps nothing for a backward pass, and has no interpolation or rounding allowance.

    One forward evaluation of ``f`` per iteration, no gradient. A NaN or inf trial value is
    a rejection. Step 0 unless the status is ``SUCCESS``. The test is computed as
    ``value + c1 (t s) <grad, d / s>`` with ``s`` a power of two near ``max |d_i|`` (exactly
    the same numbers, unless ``<grad, d>`` alone would overflow: a finite gradient always
    gives a finite slope).
    """
    dtype = jnp.result_type(step_init)
    scale = common.scale_down(direction, dtype)
    scaled = jax.tree.map(lambda d: (d / scale.astype(d.dtype)).astype(d.dtype), direction)
    slope = common.slope(grad, scaled, dtype)  # per unit of t s
    aux0 = None
    if has_aux:
        shapes = jax.eval_shape(f, params)[1]
        aux0 = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)

    def body(s: _Search) -> _Search:
        out = f(tree_axpy(s.step, direction, params))
        trial, aux = out if has_aux else (out, None)
        trial = jnp.asarray(trial).astype(dtype)
        ok = (
            armijo_condition(value, slope, trial, s.step * scale, c1)
            & jnp.isfinite(trial)
            & (s.step > 0)  # a step that underflowed to 0 is no success
        )
        return _Search(
            step=jnp.where(ok, s.step, shrink * s.step),
            num_evals=s.num_evals + 1,
            num_grads=s.num_grads,
            status=jnp.where(ok, Status.SUCCESS, RUNNING).astype(jnp.int32),
            aux=common.keep_aux(ok, aux, s.aux),
        )

    status = jnp.where(
        ~(jnp.isfinite(value) & jnp.isfinite(slope)),
        Status.NONFINITE,
        jnp.where(
            ~(jnp.isfinite(step_init) & (step_init > 0)),
            Status.INVALID_INPUT,
            jnp.where(slope < 0, RUNNING, Status.NOT_DESCENT),
        ),
    ).astype(jnp.int32)
    zero = jnp.zeros((), jnp.int32)
    start = _Search(step_init, zero, zero, status, aux0)
    s = loop.run_while(body, start, max_evals)
    return s._replace(step=jnp.where(s.status == Status.SUCCESS, s.step, 0).astype(dtype))


def stochastic_armijo(
    *,
    step_init: float = 1.0,
    step_max: float | None = 10.0,
    c1: float = 0.1,
    shrink: float = 0.9,
    grow: float = 2.0,
    batch_size: int | None = None,
    num_examples: int | None = None,
    failure_shrink: float = 0.1,
    max_evals: int = 100,
    has_aux: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Stochastic Armijo line search (SLS): backtracking on the current minibatch.

    ``update(updates, state, params, *, value, grad, value_fn, **extra_args)`` returns
    ``t d`` with ``d = updates`` (``-grad`` if ``updates`` does not descend) and ``t`` the
    first of ``t0, shrink t0, shrink^2 t0, ...`` that satisfies Armijo on the minibatch,

    ``f_b(w + t d) <= f_b(w) + c1 t <g_b, d>``,  ``f_b = value_fn(., **extra_args)``,

    where ``value = f_b(w)`` and ``grad = g_b`` are the minibatch's value and gradient, which
    the training loop computes with `jax.value_and_grad` on each minibatch (the state keeps
    none: they are no use on the next minibatch). Each search starts from the previous
    accepted step reset by ``t0 = min(t * grow ** (batch_size / num_examples), step_max)``
    (the step may grow by ``grow`` per epoch); the first from ``min(step_init, step_max)``.

    Each trial evaluates only the *value* of ``value_fn``: a forward pass on the minibatch,
    not a forward and a backward one. The search is one `jax.lax.while_loop` with one
    evaluation per iteration and no `jax.lax.cond`, so it stays cheap under `jax.vmap`.
    Extra keyword arguments of ``update`` (``batch=``) are passed to ``value_fn``; one it does
    not take is a `TypeError` naming it, as in optax's searches (a ``value_fn`` with
    ``**kwargs`` takes every one). With ``has_aux=True``, ``value_fn`` returns
    ``(value, aux)`` and the state's ``aux`` is the aux at the accepted trial point (after a
    failed search, the previous update's; None before the first update: set it with
    ``optax.tree.set(state, aux=...)`` where the state's structure must not change).

    SLS's guarantees assume interpolation (every example's loss minimised at the optimum,
    as for over-parametrised models). Without it (noisy labels, regularisation) the steps
    stay large and the iterates wander near the optimum rather than converge: average them,
    or lower ``step_max``.

    Failure policy: a search never moves uphill on the minibatch. If no step passes within
    ``max_evals`` trials (NaN or inf values count as rejections), the update is 0 and the
    next search starts from ``failure_shrink`` times this one's start, so training is never
    stuck. A direction with ``<grad, updates> >= 0`` is replaced by ``-grad``
    (``info.fallback``); a zero minibatch gradient gives a zero update and keeps the start.
    Slopes are computed along the direction divided by a power of two, so a finite gradient
    gives a finite slope even beyond ``sqrt`` of the dtype's largest number.
    The state's dtypes never change, so a jitted training step compiles once.
    Differentiating through an update holds the accepted step constant (as every jaxls
    search does): ``d (t d) = t dd``.

    Args:
      step_init: first trial step of the first search, ``> 0``.
      step_max: cap on every search's first trial step (the paper's ``eta_max``), ``> 0``,
        or None for no cap.
      c1: Armijo constant in ``(0, 1)`` (the paper's ``c = 0.1``).
      shrink: factor in ``(0, 1)`` applied to a rejected step (the paper's ``beta = 0.9``).
      grow: ``>= 1``, the paper's ``gamma = 2``: the start grows by ``grow`` per epoch,
        i.e. by ``grow ** (batch_size / num_examples)`` per search.
      batch_size: examples per minibatch; give it with ``num_examples``, or neither
        (then the start grows by ``grow`` per search, the full-batch case).
      num_examples: examples in the training set, ``>= batch_size``.
      failure_shrink: factor in ``(0, 1)`` applied to the start after a failed search.
      max_evals: cap on value evaluations per search, ``>= 1``.
      has_aux: whether ``value_fn`` returns ``(value, aux)``.

    Returns:
      An `optax.GradientTransformationExtraArgs` whose state is a `StochasticArmijoState`;
      use it after ``optax.sgd(1.0)`` (or another direction) in `optax.chain`.

    Raises:
      ValueError: a constant out of range, or only one of ``batch_size`` and
        ``num_examples``, naming the call.
      TypeError: ``max_evals``, ``batch_size`` or ``num_examples`` not a Python int. At
        ``update``: ``value``, ``grad`` or ``value_fn`` missing, an extra argument that
        ``value_fn`` does not take, or ``value_fn`` not returning a real scalar (a pair with
        ``has_aux``).

    References:
      S. Vaswani, A. Mishkin, I. Laradji, M. Schmidt, G. Gidel & S. Lacoste-Julien,
      "Painless stochastic gradient: interpolation, line-search, and convergence rates",
      NeurIPS 2019: Algorithm 1 (SGD with Armijo line search) and Algorithm 2 (the reset
      ``eta * gamma ** (b / n)``); the defaults are those of the authors' code
      (``init_step_size=1, c=0.1, beta_b=0.9, gamma=2, eta_max=10``).

    Example:
      >>> import jax, jax.numpy as jnp, optax, jaxls
      >>> X = jax.random.normal(jax.random.key(0), (64, 3))
      >>> y = X @ jnp.array([1.0, -2.0, 0.5])
      >>> loss = lambda w, batch: 0.5 * jnp.mean((batch[0] @ w - batch[1]) ** 2)
      >>> rule = jaxls.optax.stochastic_armijo(batch_size=16, num_examples=64)
      >>> opt = optax.chain(optax.sgd(1.0), rule)
      >>> @jax.jit
      ... def train_step(w, state, batch):
      ...     value, grad = jax.value_and_grad(loss)(w, batch)
      ...     updates, state = opt.update(
      ...         grad, state, w, value=value, grad=grad, value_fn=loss, batch=batch
      ...     )
      ...     return optax.apply_updates(w, updates), state
      >>> w = jnp.zeros(3)
      >>> state = opt.init(w)
      >>> for epoch in range(25):
      ...     for i in range(0, 64, 16):
      ...         w, state = train_step(w, state, (X[i : i + 16], y[i : i + 16]))
      >>> print(jnp.round(w, 4))
      [ 1.  -2.   0.5]
    """
    restart = common.check_restart(
        CALL, step_init=step_init, grow=grow, failure_shrink=failure_shrink, step_max=step_max
    )
    checks.open_interval(CALL, "c1", c1, 0.0, 1.0)
    checks.open_interval(CALL, "shrink", shrink, 0.0, 1.0)
    checks.int_at_least(CALL, "max_evals", max_evals, 1)
    has_aux = checks.boolean(CALL, "has_aux", has_aux)
    if (batch_size is None) != (num_examples is None):
        raise ValueError(
            f"`jaxls.{CALL}(batch_size={batch_size!r}, num_examples={num_examples!r})`: give "
            "both `batch_size` and `num_examples`, or neither."
        )
    fraction = 1.0
    if batch_size is not None and num_examples is not None:
        checks.int_at_least(CALL, "batch_size", batch_size, 1)
        checks.int_at_least(CALL, "num_examples", num_examples, batch_size)
        fraction = batch_size / num_examples
    restart = restart._replace(grow=float(grow) ** fraction)
    first = restart.step_init

    def init_fn(params) -> StochasticArmijoState:
        dtype = common.float_dtype(params)
        return StochasticArmijoState(jnp.asarray(first, dtype), common.initial_info(dtype))

    def search(f, params, direction, value, grad, state) -> _Search:
        return value_backtracking(
            f, params, direction, value, grad, state.start,
            c1=c1, shrink=shrink, max_evals=max_evals, has_aux=has_aux,
        )  # fmt: skip

    def new_state(state, res, value, *, start, info, aux) -> StochasticArmijoState:
        return StochasticArmijoState(start, info, aux)

    return transformation(
        UPDATE, init_fn, has_aux=has_aux, restart=restart, search=search, new_state=new_state
    )


__all__ = ["StochasticArmijoState", "stochastic_armijo"]
