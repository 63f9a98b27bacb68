"""Any jaxls search as an optax step-size rule, following optax's line-search protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxls._src import checks
from jaxls._src.adapters import common, spec as specs
from jaxls._src.adapters.common import LineSearchInfo
from jaxls._src.adapters.spec import SearchSpec
from jaxls._src.adapters.update import transformation
from jaxls._src.results import Status
from jaxls._src.tree import tree_axpy

CALL = specs.CALL


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


def check_options(search: Callable, spec: SearchSpec, options: dict) -> None:
    """Reject options the spec does not list, and bad values, when the rule is built.

    The search is traced once on a toy problem (`jax.eval_shape`, called as its spec's kind
    says), so that its own checks of its options raise now, not at the first update.
    """
    specs.check_options(search, spec, options)
    f = lambda t: (t - 1.0) ** 2
    if spec.kind == "interval":
        jax.eval_shape(lambda: search(f, 0.0, 1.0, **options))
    else:
        zero, one = jnp.zeros(()), jnp.ones(())
        jax.eval_shape(
            lambda: search(f, zero, one, value=one, grad=-2 * one, step_init=one, **options)
        )


def scale_by_line_search(
    search: Callable,
    *,
    step_init: float = 1.0,
    grow: float | None = None,
    step_max: float | None = None,
    failure_shrink: float = 0.1,
    has_aux: bool = False,
    options: dict[str, Any] | None = None,
    spec: SearchSpec | None = None,
    **misplaced: Any,
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
      ``tol`` in ``options``, a search that takes one (all but `jaxls.fibonacci`) gets
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
    rounding allowance ``epsilon`` of the step-size searches (`jaxls.backtracking`,
    `jaxls.goldstein`, `jaxls.wolfe`; `jaxls.hager_zhang`'s approximate Wolfe conditions),
    a few ulps where the slopes certify a decrease the values cannot show (a failed search
    returns step 0: the parameters do not change); a
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
    (a ``value_fn`` with ``**kwargs`` takes every one). Differentiating through an
    update (a meta-gradient, `jax.grad` of a loss after a training step) holds the accepted
    step constant, as every jaxls search does: ``d (t d) = t dd``, and the value and
    gradient the state keeps are differentiated at the new parameters; never through the
    search's loop.

    With ``has_aux=True``, ``value_fn`` returns ``(value, aux)`` (as for
    `jax.value_and_grad`'s ``has_aux``), ``value`` given to ``update`` is the scalar alone,
    and the state's ``aux`` is the aux at the new parameters: the accepted point's, or after
    a failed search (the parameters did not move) the previous update's. ``init`` cannot know
    its structure, so ``aux`` is None until the first update; where the state's structure
    must not change (a `jax.lax.scan`, a jitted step traced once), set it after ``init``:
    ``state = optax.tree.set(state, aux=aux0)`` with the aux of the initial parameters.

    Args:
      search: a jaxls search, or a search of your own described by ``spec``.
      step_init: first trial step of a step-size search, ``> 0``.
      grow: ``None``: every search starts from ``step_init`` (the quasi-Newton unit step);
        a number ``>= 1``: from ``grow`` times the previous accepted step (optax's
        ``increase_factor``; 2 suits gradient descent). This is the adapter's own ``grow``,
        between searches; a search's ``grow`` (within a search: `jaxls.goldstein`,
        `jaxls.wolfe`, `jaxls.hager_zhang`) is one of its ``options``.
      step_max: largest step; required for interval searches (their interval is
        ``[0, step_max]``), optional otherwise. It is passed to searches that take it and
        caps the first trial step of the others.
      failure_shrink: factor in ``(0, 1)`` applied to the start after a failed search.
      has_aux: whether ``value_fn`` returns ``(value, aux)``.
      options: the search's own settings (``{"c1": 1e-3, "grow": 4.0}``, ``{"tol": ...}``),
        the keywords its `SearchSpec` lists as ``options``, checked now. An interval
        search's ``tol`` defaults to ``max(1e-6, 8 eps)`` times its interval's length
        (above). The adapter's keywords and the search's are kept apart, so ``grow=`` of
        the adapter is never taken for a search's ``grow``.
      spec: how to call ``search`` (a `SearchSpec`): needed for a search of your own,
        taken from jaxls's table for jaxls's searches. The adapter never reads a search's
        parameter names.
      **misplaced: refused with a `TypeError` naming the fix: a search's setting given
        here (``scale_by_line_search(jaxls.wolfe, c1=1e-3)``) belongs in
        ``options={"c1": 1e-3}``.

    Returns:
      An `optax.GradientTransformationExtraArgs` whose state is a `ScaleByLineSearchState`.

    Raises:
      TypeError: ``search`` is neither a jaxls search nor given a ``spec``; a search's
        setting given as a keyword of the adapter; ``options`` with a keyword the spec
        does not list (or one the adapter sets: ``value``, ``step_init``, ...).
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
    spec = specs.spec_of(search, spec)
    name = specs.name_of(search)
    call = f"{CALL}({name}).update"
    if misplaced:
        refuse_misplaced(name, spec, misplaced)
    options = {} if options is None else dict(options)
    has_aux = checks.boolean(CALL, "has_aux", has_aux)
    restart = common.check_restart(
        CALL, step_init=step_init, grow=grow, failure_shrink=failure_shrink, step_max=step_max
    )
    interval = spec.kind == "interval"
    if interval and step_max is None:
        raise ValueError(
            f"`jaxls.{CALL}({name})`: an interval search needs `step_max`: it "
            "minimises along the direction on [0, step_max]."
        )
    if not interval and has_aux and "has_aux" not in spec.owns:
        raise TypeError(
            f"`jaxls.{CALL}({name}, has_aux=True)`: the search's spec does not own `has_aux`."
        )
    check_options(search, spec, options)
    if not interval and "step_max" in spec.owns and step_max is not None:
        options["step_max"] = step_max
    if not interval and has_aux:
        options["has_aux"] = True
    if interval and step_max is not None:  # the first interval is [0, step_max]
        restart = restart._replace(step_init=step_max)
    default_tol = interval and spec.takes_tol and "tol" not in options
    first = restart.step_init

    def init_fn(params) -> ScaleByLineSearchState:
        dtype = common.float_dtype(params)
        return ScaleByLineSearchState(
            start=jnp.asarray(first, dtype),
            value=jnp.asarray(jnp.inf, dtype),
            grad=jax.tree.map(jnp.zeros_like, params),
            info=common.initial_info(dtype),
        )

    def run_search(f, params, direction, value, grad, state):
        if interval:
            tol = {"tol": default_step_tol(state.start)} if default_tol else {}
            return exact_step(
                search, f, params, direction, value, grad, state.start, options | tol, has_aux
            )
        return search(
            f, params, direction, value=value, grad=grad, step_init=state.start, **options
        )

    def new_state(state, res, value, *, start, info, aux) -> ScaleByLineSearchState:
        return ScaleByLineSearchState(start, res.value, res.grad, info, aux)

    return transformation(
        call, init_fn, has_aux=has_aux, restart=restart, search=run_search, new_state=new_state
    )


# The adapter's own keywords, which a misplaced search option is told apart from.
ADAPTER_KEYWORDS = ("step_init", "grow", "step_max", "failure_shrink", "has_aux")


def refuse_misplaced(name: str, spec: SearchSpec, misplaced: dict) -> None:
    """A `TypeError` for keywords given to the adapter that are not its own: a search's
    options go in ``options={...}``, so that the adapter's ``grow`` (between searches) and a
    search's ``grow`` (within one) are never confused."""
    key = sorted(misplaced)[0]
    if key in spec.options:
        raise TypeError(
            f"`jaxls.{CALL}({name}, {key}=...)`: `{key}` is an option of the search: pass it "
            f"as `jaxls.{CALL}({name}, options={{{key!r}: ...}})`. The adapter's own keywords are "
            f"{', '.join(f'`{k}`' for k in ADAPTER_KEYWORDS)}."
        )
    raise TypeError(
        f"`jaxls.{CALL}({name}, {key}=...)`: neither the adapter nor the search takes `{key}`. "
        f"The adapter's keywords are {', '.join(f'`{k}`' for k in ADAPTER_KEYWORDS)}; the "
        f"search's options (in `options={{...}}`) are {sorted(spec.options)}."
    )


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


def exact_step(search, f, params, direction, value, grad, upper, options, has_aux) -> _ExactStep:
    """Minimise ``phi(t) = f(params + t d)`` on ``[0, upper]`` (values only), then take value
    and gradient at the minimiser (one more evaluation, which the next step reuses from the
    state).

    The minimiser is kept only if it decreases ``f`` (else step 0, ``NO_DECREASE``, or
    ``NOT_DESCENT`` if ``d`` does not descend, or ``NONFINITE`` if ``f(params)`` is not finite).
    """
    dtype = value.dtype
    value_of = common.value_only(f, has_aux)
    phi = lambda t: value_of(tree_axpy(t, direction, params))
    res = search(phi, jnp.zeros((), dtype), upper, **options)
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
    extra = ", step_max=..." if specs.SPECS[search].kind == "interval" else ""
    message = (
        f"`jaxls.{name}` is a line search, not an optax transformation: wrap it as an optax "
        f"step-size rule with `jaxls.optax.scale_by_line_search(jaxls.{name}{extra})`, e.g. "
        f"`optax.lbfgs(linesearch=jaxls.optax.scale_by_line_search(jaxls.{name}{extra}))`."
    )

    def refuse(*args, **kwargs):
        raise TypeError(message)

    setattr(search, "init", refuse)  # noqa: B010 (a function's attributes, not a class's)
    setattr(search, "update", refuse)  # noqa: B010


__all__ = [
    "ScaleByLineSearchState",
    "SearchSpec",
    "refuse_as_transformation",
    "scale_by_line_search",
]
