"""Any jaxls search as an optax step-size rule, following optax's line-search protocol."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxls._src import checks
from jaxls._src.adapters import common
from jaxls._src.adapters.common import LineSearchInfo
from jaxls._src.results import Status
from jaxls._src.step.line import tree_axpy

CALL = "optax.scale_by_line_search"

# Arguments the adapter fills in itself; `config` may not set them.
_OWNED = {
    "exact": {"fun", "lower", "upper"},
    "inexact": {"fun", "x", "direction", "value", "grad", "value_and_grad", "step_init"},
}


class ScaleByLineSearchState(NamedTuple):
    """State of `scale_by_line_search`.

    Attributes:
      start: where the next search starts: its first trial step (step-size searches) or
        the upper end of its interval ``[0, start]`` (interval searches).
      value: the objective at the parameters after the last update (``inf`` before the
        first), read by `optax.value_and_grad_from_state`.
      grad: its gradient there (zeros before the first update).
      info: a `LineSearchInfo` on the last search.
      aux: with ``has_aux=True``, the auxiliary output of ``value_fn`` at the parameters
        after the last update (None before the first: see `scale_by_line_search`); else None.
    """

    start: jax.Array
    value: jax.Array
    grad: Any
    info: LineSearchInfo
    aux: Any = None


def search_kind(search: Callable) -> str:
    """``"exact"`` for interval searches ``(fun, lower, upper)``, ``"inexact"`` for
    step-size searches ``(fun, x, direction)``."""
    if not callable(search):
        raise TypeError(f"`jaxls.{CALL}`: `search` must be a jaxls search, got {search!r}.")
    names = set(inspect.signature(search).parameters)
    if {"lower", "upper"} <= names:
        return "exact"
    if {"x", "direction", "value_and_grad"} <= names:
        return "inexact"
    raise TypeError(
        f"`jaxls.{CALL}`: `search` must be an interval search `(fun, lower, upper, ...)` such "
        "as `jaxls.golden_section`, or a step-size search `(fun, x, direction, ...)` such as "
        f"`jaxls.wolfe`; got {getattr(search, '__name__', search)!r}."
    )


def check_config(search: Callable, kind: str, config: dict) -> None:
    """Reject unknown or adapter-owned keywords, and bad values, when the rule is built."""
    name = getattr(search, "__name__", "search")
    accepted = set(inspect.signature(search).parameters)
    for key in config:
        if key in _OWNED[kind]:
            raise TypeError(f"`jaxls.{CALL}({name}, {key}=...)`: the adapter sets `{key}` itself.")
        if key not in accepted:
            raise TypeError(
                f"`jaxls.{CALL}({name}, {key}=...)`: `jaxls.{name}` takes no argument `{key}`."
            )
    # Trace the search once on a toy problem so that its own checks raise now, not later.
    f = lambda t: (t - 1.0) ** 2
    if kind == "exact":
        jax.eval_shape(lambda: search(f, 0.0, 1.0, **config))
    else:
        jax.eval_shape(lambda: search(f, jnp.zeros(()), jnp.ones(()), **config))


def scale_by_line_search(
    search: Callable,
    *,
    step_init: float = 1.0,
    grow: float | None = None,
    step_max: float | None = None,
    failure_shrink: float = 0.1,
    has_aux: bool = False,
    **config,
) -> optax.GradientTransformationExtraArgs:
    r"""Scale ``updates`` by a step that a jaxls search finds along them.

    ``update(updates, state, params, *, value, grad, value_fn, **extra_args)`` returns
    ``t * d`` where ``d = updates`` (or ``-grad`` if ``updates`` does not descend) and ``t``
    is what ``search`` finds for ``phi(t) = value_fn(params + t d, **extra_args)``:

    * a step-size search (`jaxls.backtracking`, `jaxls.goldstein`, `jaxls.wolfe`,
      `jaxls.hager_zhang`) starts from the state's ``start``; it is given ``value_fn``
      and differentiates it with JAX (value-only trials take the accepted trial's gradient
      from that call's linearisation);
    * an interval search (`jaxls.golden_section`, `jaxls.brent`, `jaxls.dichotomy`,
      `jaxls.fibonacci`, `jaxls.parabolic`) minimises ``phi`` on ``[0, start]``
      (initially ``step_max``, which it requires): exact line search. Its trials are
      values only; one value-and-gradient evaluation at the minimiser follows. Without a
      ``tol`` in ``config``, a search that takes one (all but `jaxls.fibonacci`) gets
      ``tol = max(1e-6, 8 eps) start`` (plus the dtype's smallest normal number;
      ``eps`` of the parameters' dtype): a step needs accuracy relative to its interval,
      not the search's own default for a minimiser, ``sqrt(eps) max(1, start)``
      (``3.5e-4`` on ``[0, 1]`` in float32). That is ``1e-6`` of the interval in float32
      and float64, and twice what bfloat16 and float16 resolve, so it never warns; it
      follows ``start`` (traced or not) as failures shrink it. A given ``tol`` is
      used as is.

    This is optax's own line-search protocol (as in `optax.scale_by_zoom_linesearch`): the
    state holds ``value`` and ``grad`` at the new parameters (the point the search accepted),
    so the next step's `optax.value_and_grad_from_state` costs no evaluation, and its dtypes
    never change, so a jitted step compiles once. It drops into
    ``optax.lbfgs(linesearch=...)`` and after ``optax.sgd(1.0)`` in `optax.chain`. (A bare
    search, ``optax.lbfgs(linesearch=jaxls.wolfe)``, raises a `TypeError` at ``init`` that
    says to wrap it.)

    Failure policy, unlike optax's searches: a search never moves uphill, beyond the
    rounding allowance of `jaxls.wolfe`'s ``epsilon`` and `jaxls.hager_zhang`'s approximate
    Wolfe conditions (a failed search returns step 0: the parameters do not change); a
    direction with ``<grad, updates> >= 0`` is replaced by ``-grad`` (``info.fallback``;
    the test is made on rescaled copies, so a gradient beyond ``sqrt`` of the dtype's
    largest number is handled too); after a failed search the next starts from
    ``failure_shrink`` times this one's start instead of repeating the same failure, so a
    run is never stuck at step 0 for ever, except after ``ROUNDING`` (no step the dtype
    resolves along ``d`` is lower: a shorter start cannot help), where it restarts as after
    a success. A ``value`` or
    ``grad`` that is not finite gives step 0 and ``NONFINITE``. The state's ``info`` records
    the step, status and counts of the last search, as the search reports them.

    Extra keyword arguments of ``update`` (a minibatch, say) are passed to ``value_fn``;
    one that ``value_fn`` does not take is a `TypeError` naming it, as in optax's searches
    (a ``value_fn`` with ``**kwargs`` takes every one). Everything the update returns is
    wrapped in `jax.lax.stop_gradient`: differentiating through a training step does not
    differentiate through the search by accident.

    With ``has_aux=True``, ``value_fn`` returns ``(value, aux)`` (as for
    `jax.value_and_grad`'s ``has_aux``), ``value`` given to ``update`` is the scalar alone,
    and the state's ``aux`` is the aux at the new parameters: the accepted point's, or after
    a failed search (the parameters did not move) the previous update's. ``init`` cannot know
    its structure, so ``aux`` is None until the first update; where the state's structure
    must not change (a `jax.lax.scan`, a jitted step traced once), set it after ``init``:
    ``state = optax.tree.set(state, aux=aux0)`` with the aux of the initial parameters.

    Args:
      search: a jaxls search.
      step_init: first trial step of a step-size search, ``> 0``.
      grow: ``None``: every search starts from ``step_init`` (the quasi-Newton unit step);
        a number ``>= 1``: from ``grow`` times the previous accepted step (optax's
        ``increase_factor``; 2 suits gradient descent). This is the adapter's own ``grow``,
        between searches; to set a search's ``grow`` (within a search: `jaxls.goldstein`,
        `jaxls.wolfe`, `jaxls.hager_zhang`), pass ``functools.partial(jaxls.wolfe,
        grow=4.0)`` as ``search``.
      step_max: largest step; required for interval searches (their interval is
        ``[0, step_max]``), optional otherwise. It is passed to searches that take it and
        caps the first trial step of the others.
      failure_shrink: factor in ``(0, 1)`` applied to the start after a failed search.
      has_aux: whether ``value_fn`` returns ``(value, aux)``.
      **config: keyword arguments of ``search`` (``c1``, ``c2``, ``tol``, ``max_evals``, ...),
        checked now. An interval search's ``tol`` defaults to ``max(1e-6, 8 eps)`` times its
        interval's length (above).

    Returns:
      An `optax.GradientTransformationExtraArgs` whose state is a `ScaleByLineSearchState`.

    Raises:
      TypeError: ``search`` is not a jaxls search, or ``config`` has a keyword it does not
        take (or one the adapter sets: ``x``, ``direction``, ``value``, ``step_init``, ...).
        At ``update``: ``value``, ``grad`` or ``value_fn`` missing, an extra argument that
        ``value_fn`` does not take, or ``value_fn`` not returning a real scalar (a pair with
        ``has_aux``).
      ValueError: a bad constant, of the adapter or of ``search``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, jaxls
      >>> f = lambda w: jnp.sum((w - 1.0) ** 2) + 0.5 * jnp.sum(w ** 4)
      >>> opt = optax.lbfgs(linesearch=jaxls.optax.scale_by_line_search(jaxls.wolfe))
      >>> w = jnp.zeros(3)
      >>> state = opt.init(w)
      >>> value_and_grad = optax.value_and_grad_from_state(f)
      >>> for _ in range(8):
      ...     value, grad = value_and_grad(w, state=state)
      ...     updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
      ...     w = optax.apply_updates(w, updates)
      >>> print(jnp.round(w, 5))
      [0.68233 0.68233 0.68233]
    """
    kind = search_kind(search)
    name = getattr(search, "__name__", "search")
    call = f"{CALL}({name}).update"
    has_aux = checks.boolean(CALL, "has_aux", has_aux)
    restart = common.check_restart(
        CALL, step_init=step_init, grow=grow, failure_shrink=failure_shrink, step_max=step_max
    )
    if kind == "exact" and step_max is None:
        raise ValueError(
            f"`jaxls.{CALL}({name})`: an interval search needs `step_max`: it "
            "minimises along the direction on [0, step_max]."
        )
    parameters = inspect.signature(search).parameters
    if kind == "inexact" and has_aux and "has_aux" not in parameters:
        raise TypeError(f"`jaxls.{CALL}({name}, has_aux=True)`: `jaxls.{name}` takes no `has_aux`.")
    passes_step_max = kind == "inexact" and "step_max" in parameters
    if passes_step_max and "step_max" in config:
        raise TypeError(f"`jaxls.{CALL}`: give `step_max` once, to the adapter.")
    if passes_step_max and step_max is not None:
        config = {**config, "step_max": step_max}
    check_config(search, kind, config)
    if kind == "exact" and step_max is not None:  # the first interval is [0, step_max]
        restart = restart._replace(step_init=step_max)
    if has_aux:
        config = {**config, "has_aux": True} if kind == "inexact" else config
    step_tol = kind == "exact" and "tol" in parameters and "tol" not in config
    first = restart.step_init

    def init_fn(params) -> ScaleByLineSearchState:
        dtype = common.float_dtype(params)
        return ScaleByLineSearchState(
            start=jnp.asarray(first, dtype),
            value=jnp.asarray(jnp.inf, dtype),
            grad=jax.tree.map(jnp.zeros_like, params),
            info=common.initial_info(dtype),
        )

    def run_search(f, params, direction, value, grad, start):
        if kind == "exact":
            exact_config = {**config, "tol": default_step_tol(start)} if step_tol else config
            return exact_step(
                search, f, params, direction, value, grad, start, exact_config, has_aux
            )
        return search(
            f,
            params,
            direction,
            value=value,
            grad=grad,
            step_init=start,
            **config,
        )

    def update_fn(
        updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args
    ):
        common.require_protocol(call, params, value, grad, value_fn)
        f = common.objective(call, value_fn, extra_args, params, has_aux)
        dtype = state.start.dtype
        direction, fallback = common.descent_direction(updates, grad, dtype)
        value = jnp.asarray(value).astype(dtype)
        with common.explicit_axes_advice(call):
            res = run_search(f, params, direction, value, grad, state.start)
        start_finite = common.finite_start(value, grad)
        step = jnp.where(start_finite, res.step, 0).astype(dtype)
        status = jnp.where(start_finite, res.status, Status.NONFINITE)
        info, failed = common.record(
            state.info, step, res.num_evals, res.num_grads, status, fallback
        )
        new_state = ScaleByLineSearchState(
            # ROUNDING: nothing along d that the dtype resolves is lower. A shorter start
            # cannot help; the next direction may need a step near step_init.
            start=common.next_start(
                step, failed & (status != Status.ROUNDING), state.start, restart
            ),
            value=res.value,
            grad=res.grad,
            info=info,
            aux=common.keep_aux(step > 0, res.aux, state.aux),
        )
        new_state = common.finish(new_state, state)
        return jax.lax.stop_gradient((common.scale_accepted(step, direction), new_state))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


# The default `tol` of an interval search in the adapter, relative to its interval [0, upper]:
# STEP_RTOL where the dtype resolves it (float32 and wider: 4 eps < 1e-6), else STEP_EPS eps,
# twice what the dtype resolves (bfloat16, float16).
STEP_RTOL = 1e-6
STEP_EPS = 8


def default_step_tol(upper) -> jax.Array:
    """``max(1e-6, 8 eps) upper + tiny`` in the dtype of ``upper`` (which may be traced).

    Above the ``4 eps upper + tiny`` the dtype resolves on ``[0, upper]``, so it never warns
    (``tiny``, the smallest normal number, keeps it so for an ``upper`` near underflow)."""
    info = jnp.finfo(upper.dtype)
    rtol = max(STEP_RTOL, STEP_EPS * float(info.eps))
    return (rtol * upper + info.tiny).astype(upper.dtype)


class _ExactStep(NamedTuple):
    step: jax.Array
    value: jax.Array
    grad: Any
    num_evals: jax.Array
    num_grads: jax.Array
    status: jax.Array
    aux: Any


def exact_step(search, f, params, direction, value, grad, upper, config, has_aux) -> _ExactStep:
    """Minimise ``phi(t) = f(params + t d)`` on ``[0, upper]`` (values only), then take value
    and gradient at the minimiser (one more evaluation, which the next step reuses from the
    state).

    The minimiser is kept only if it decreases ``f`` (else step 0, ``NO_DECREASE``, or
    ``NOT_DESCENT`` if ``d`` does not descend, or ``NONFINITE`` if ``f(params)`` is not finite).
    """
    dtype = value.dtype
    value_of = common.value_only(f, has_aux)
    phi = lambda t: value_of(tree_axpy(t, direction, params))
    res = search(phi, jnp.zeros((), dtype), upper, **config)
    step = jnp.asarray(res.x, dtype)
    out, new_grad = jax.value_and_grad(f, has_aux=has_aux)(tree_axpy(step, direction, params))
    new_value, aux = out if has_aux else (out, None)
    new_value = jnp.asarray(new_value).astype(dtype)
    descent = common.descends(grad, direction, dtype)
    better = descent & (new_value < value) & jnp.isfinite(new_value) & _all_finite(new_grad)
    status = jnp.where(
        better,
        res.status,
        jnp.where(
            ~jnp.isfinite(value),
            Status.NONFINITE,
            jnp.where(descent, Status.NO_DECREASE, Status.NOT_DESCENT),
        ),
    )
    return _ExactStep(
        step=jnp.where(better, step, 0),
        value=jnp.where(better, new_value, value),
        grad=jax.tree.map(lambda new, old: jnp.where(better, new, old), new_grad, grad),
        num_evals=(res.num_evals + 1).astype(jnp.int32),
        num_grads=jnp.ones((), jnp.int32),
        status=status.astype(jnp.int32),
        aux=aux,
    )


def refuse_as_transformation(search: Callable) -> None:
    """Give a bare jaxls search ``init`` and ``update`` attributes that raise a `TypeError`
    saying how to wrap it, so that ``optax.lbfgs(linesearch=jaxls.wolfe)`` (or
    ``optax.chain(..., jaxls.wolfe)``) fails at ``init`` with that message instead of
    ``AttributeError: 'function' object has no attribute 'init'``. The search itself is
    unchanged."""
    name = search.__name__
    extra = ", step_max=..." if search_kind(search) == "exact" else ""
    message = (
        f"`jaxls.{name}` is a line search, not an optax transformation: wrap it as an optax "
        f"step-size rule with `jaxls.optax.scale_by_line_search(jaxls.{name}{extra})`, e.g. "
        f"`optax.lbfgs(linesearch=jaxls.optax.scale_by_line_search(jaxls.{name}{extra}))`."
    )

    def refuse(*args, **kwargs):
        raise TypeError(message)

    setattr(search, "init", refuse)  # noqa: B010 (a function's attributes, not a class's)
    setattr(search, "update", refuse)  # noqa: B010


__all__ = ["ScaleByLineSearchState", "refuse_as_transformation", "scale_by_line_search"]
