"""What every optax adapter shares: the update protocol and its errors, routing
``extra_args``, the objective's output, the direction, the next first step, the records."""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxls._src import checks
from jaxls._src.results import Status


class LineSearchInfo(NamedTuple):
    """What the last search of an adapter did, kept in its state for logging.

    Attributes:
      step: the step accepted along the searched direction (0 after a failed search).
      num_evals: calls of the objective the last search made (``int32``): a call computes
        the value, or the value and the gradient together.
      num_grads: how many of those calls computed the gradient (``int32``).
      total_evals: calls made by every search so far (``int32``).
      status: the last search's `jaxls.Status` code (``int32``).
      fallback: True when ``updates`` was not a descent direction and the search ran along
        ``-grad`` instead.
    """

    step: jax.Array
    num_evals: jax.Array
    num_grads: jax.Array
    total_evals: jax.Array
    status: jax.Array
    fallback: jax.Array


def float_dtype(params) -> Any:
    """The real floating dtype that steps and values of ``params`` are kept in."""
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise ValueError("`jaxls.optax`: `params` has no leaves.")
    dtype = jnp.result_type(*leaves)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`jaxls.optax`: `params` must be real floating, got {dtype}.")
    return dtype


def initial_info(dtype) -> LineSearchInfo:
    zero = jnp.zeros((), jnp.int32)
    return LineSearchInfo(jnp.zeros((), dtype), zero, zero, zero, zero, jnp.zeros((), bool))


# --- the update protocol ----------------------------------------------------------------


def require_protocol(call: str, params, value, grad, value_fn) -> None:
    """A `TypeError` naming what is missing from ``update(updates, state, params, *, value,
    grad, value_fn)`` and how to compute it."""
    given = {"params": params, "value": value, "grad": grad, "value_fn": value_fn}
    missing = [f"`{name}`" for name, v in given.items() if v is None]
    if missing:
        raise TypeError(
            f"`jaxls.{call}` needs `params` and the keyword arguments `value`, `grad` and "
            f"`value_fn` (missing: {', '.join(missing)}): the objective's value and gradient "
            "at `params`, and the objective. Compute them with "
            "`value, grad = optax.value_and_grad_from_state(loss)(params, state=state)` "
            "(or `jax.value_and_grad(loss)(params)`), then call "
            "`update(grad, state, params, value=value, grad=grad, value_fn=loss)`."
        )
    checks.function(call, "value_fn", value_fn)


class Watched:
    """``fun`` handed to an optimiser by `jaxls.optax.minimize`: ``called`` becomes True if
    anything but a jaxls rule calls it (while tracing), i.e. if some evaluations are made
    where no `LineSearchInfo` counts them. jaxls's rules call ``fun`` itself."""

    def __init__(self, fun: Callable):
        self.fun = fun
        self.called = False
        self.__signature__ = _signature(fun)

    def __call__(self, *args, **kwargs):
        self.called = True
        return self.fun(*args, **kwargs)


def _signature(fun) -> inspect.Signature | None:
    try:
        return inspect.signature(fun)
    except (TypeError, ValueError):
        return None


def routed(call: str, value_fn: Callable, extra_args: dict) -> dict:
    """The keyword arguments of ``extra_args`` for ``value_fn``: every one must be a keyword
    parameter of ``value_fn`` (other than its first, the parameters), else `TypeError`, as
    in optax's own searches. A ``value_fn`` with ``**kwargs``, or one whose signature
    cannot be read, takes them all.

    This reads the signature of the *user's* objective, never of a jaxls component, and
    routes nothing: every extra argument goes to ``value_fn`` unchanged. It is here because
    optax's protocol does the same (``optax.scale_by_zoom_linesearch`` reads ``value_fn``'s
    signature and raises a `TypeError` for an extra argument it does not take), and doing
    it before the call names every such argument and ``value_fn``'s parameters, where
    Python's own error, raised while JAX traces, would name only the first."""
    signature = _signature(value_fn)
    if signature is None:
        return dict(extra_args)
    parameters = list(signature.parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(extra_args)
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {p.name for p in parameters[1:] if p.kind in keyword}
    unknown = sorted(set(extra_args) - names)
    if unknown:
        shown = ", ".join(f"`{k}`" for k in unknown)
        raise TypeError(
            f"`jaxls.{call}`: `value_fn` ({getattr(value_fn, '__name__', value_fn)!r}) takes "
            f"no argument {shown}; its parameters are {signature}. The keyword arguments of "
            "`update` go to `value_fn` (the parameters being optimised are its first "
            "argument), and one it does not take is an error, as in optax's own line "
            "searches. Correct the name, or give `value_fn` a `**kwargs` parameter to "
            "accept arguments meant for other transformations of a chain."
        )
    return dict(extra_args)


def objective(call: str, value_fn: Callable, extra_args: dict, params, has_aux: bool):
    """``params -> value_fn(params, **extra_args)``, after checking that it returns a real
    scalar (a pair ``(scalar, aux)`` with ``has_aux``) at ``params``: errors name ``call``.

    `jaxls.optax.minimize` hands rules a `Watched` objective; a rule calls the function
    inside, so that its evaluations, which it counts, are not taken for unseen ones.
    """
    if isinstance(value_fn, Watched):
        value_fn = value_fn.fun
    kwargs = routed(call, value_fn, extra_args)
    f = lambda p: value_fn(p, **kwargs)
    check_output(call, "value_fn", jax.eval_shape(f, params), has_aux)
    return f


def check_output(call: str, name: str, out, has_aux: bool) -> None:
    """The objective's output (shapes from `jax.eval_shape`): a real floating scalar, or with
    ``has_aux`` a pair ``(real floating scalar, aux)``."""
    out, _ = checks.objective_output(call, name, out, has_aux)
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(
            f"`jaxls.{call}`: `{name}` must return a real floating scalar, got dtype {out.dtype}."
        )


def finite_start(value, grad) -> jax.Array:
    """Whether ``value`` and every entry of ``grad`` are finite: else the update is 0 with
    ``NONFINITE`` (the search would call the direction ``-grad`` invalid)."""
    leaves = [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grad)]
    return jnp.isfinite(value) & jnp.all(jnp.stack(leaves))


def value_only(fun: Callable, has_aux: bool) -> Callable:
    """``fun`` returning only the value (``fun(x)[0]`` with ``has_aux``)."""
    return (lambda x: fun(x)[0]) if has_aux else fun


def keep_aux(moved, aux, previous):
    """The aux of the new parameters: ``aux`` (the accepted point's) if the search moved,
    else ``previous`` (the last update's: the parameters did not move), or ``aux`` if there
    is none (the search's placeholder for a first update that failed)."""
    if aux is None or previous is None:
        return aux
    return jax.tree.map(lambda a, b: jnp.where(moved, a, b), aux, previous)


# --- meshes with explicit axes ------------------------------------------------------------


def _explicit_mesh() -> bool:
    mesh = jax.sharding.get_abstract_mesh()
    return any(t == jax.sharding.AxisType.Explicit for t in getattr(mesh, "axis_types", ()))


# JAX's errors for a `lax.while_loop` batched over a batch sharded on explicit axes (JAX 0.10,
# reproduced without jaxls): the first for a plain loop, the second for nested loops.
_BATCHED_LOOP_ERRORS = ("not found in mesh", "All operands should have the same sharding")


@contextlib.contextmanager
def explicit_axes_advice(call: str):
    """Re-raise JAX's errors for a batched `jax.lax.while_loop` on a mesh with explicit axes
    as a `ValueError` naming the call and the workarounds."""
    try:
        yield
    except Exception as error:  # JAX raises ValueError or its own ShardingTypeError
        first = " ".join(str(error).split())
        if not (_explicit_mesh() and any(e in first for e in _BATCHED_LOOP_ERRORS)):
            raise
        raise ValueError(
            f"`jaxls.{call}` on a mesh with explicit axes (`jax.make_mesh`'s default): JAX "
            f"could not run its `lax.while_loop` ({type(error).__name__}: {first[:200]}). JAX "
            "cannot batch a while loop over a batch sharded on explicit axes (`jax.vmap` over "
            "sharded problems). Use a mesh with Auto axes, `jax.make_mesh(shape, names, "
            "axis_types=(jax.sharding.AxisType.Auto,) * len(names))` (or "
            "`jax.sharding.Mesh(devices, names)`), or give each device its own members: "
            "`jax.shard_map(jax.vmap(fit), in_specs=P('i'), out_specs=P('i'), "
            "check_vma=False)`."
        ) from error


# --- directions and norms without overflow -----------------------------------------------


def _exponent(tree, dtype) -> jax.Array:
    """``e`` with ``max |leaf| = m 2^e``, ``0.5 <= m < 1`` (0 for zero or non-finite)."""
    largest = jnp.max(jnp.stack([jnp.max(jnp.abs(a)).astype(dtype) for a in jax.tree.leaves(tree)]))
    _, e = jnp.frexp(largest)
    return jnp.where(jnp.isfinite(largest) & (largest > 0), e, 0)


def normalized(tree, dtype):
    """``tree / 2^e`` in ``dtype`` with ``max |leaf| / 2^e`` in ``[0.5, 1)``: exact, and
    neither overflows nor underflows in products and sums of a few of its entries."""
    e = _exponent(tree, dtype)
    return jax.tree.map(lambda a: jnp.ldexp(jnp.asarray(a).astype(dtype), -e), tree)


def scale_down(tree, dtype) -> jax.Array:
    """``s``: the power of two ``2^(e-1) <= max |leaf|`` if that is above 1, else 1; ``tree
    / s`` has entries at most 1 (the step searches' own scaling of the direction)."""
    e = _exponent(tree, dtype)
    return jnp.where(e > 1, jnp.ldexp(jnp.ones((), dtype), e - 1), 1).astype(dtype)


def slope(grad, direction, dtype) -> jax.Array:
    """``Re sum(g d)`` over the leaves (`jaxls._src.step.line.directional_derivative`), in at
    least ``dtype``, as an elementwise product and a sum: unlike `jnp.vdot`, a sum over an
    axis sharded on a mesh with explicit axes has a well-defined (replicated) result."""

    def leaf(g, d):
        wide = jnp.promote_types(jnp.result_type(g, d), dtype)
        return jnp.sum(jnp.real(jnp.asarray(g, wide) * jnp.asarray(d, wide)))

    products = [
        leaf(g, d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction), strict=True)
    ]
    return sum(products[1:], products[0]).astype(dtype)


def descends(grad, direction, dtype) -> jax.Array:
    """Whether ``<grad, direction> < 0``, computed on normalised copies, so that neither an
    overflow (``|grad|^2 > 3.4e38`` in float32) nor an underflow changes the answer."""
    return slope(normalized(grad, dtype), normalized(direction, dtype), dtype) < 0


def descent_direction(updates, grad, dtype):
    """``updates`` if it is a descent direction, else ``-grad``; and whether it fell back.

    ``<grad, updates> >= 0`` (a stale quasi-Newton model, an ascent direction, a NaN) would
    make any search return step 0; ``-grad`` always descends unless ``grad`` is 0.
    """
    grad = jax.tree.map(lambda g, u: jnp.asarray(g).astype(u.dtype), grad, updates)
    fallback = ~descends(grad, updates, dtype)
    direction = jax.tree.map(lambda u, g: jnp.where(fallback, -g, u), updates, grad)
    return direction, fallback


def grad_norm(grad) -> jax.Array:
    """The Euclidean norm of a gradient pytree, finite for every finite gradient (the sum of
    squares is taken of the gradient divided by a power of two near its largest entry)."""
    leaves = jax.tree.leaves(grad)
    dtype = jnp.finfo(jnp.result_type(*leaves)).dtype
    e = _exponent(grad, dtype)
    squares = [jnp.sum(jnp.abs(jnp.ldexp(jnp.asarray(g).astype(dtype), -e)) ** 2) for g in leaves]
    return jnp.ldexp(jnp.sqrt(sum(squares[1:], squares[0])), e)


# --- where the next search starts ---------------------------------------------------------


class Restart(NamedTuple):
    """How the next search of an adapter starts (see `next_start`)."""

    step_init: float  # the first search's start, already capped at step_max
    grow: float | None
    failure_shrink: float
    step_max: float | None


def next_start(step, failed, previous_start, restart: Restart):
    """Where the next search starts (the states' ``start``).

    After a search that made progress: ``step_init`` (``grow=None``), or the accepted step
    times ``grow``, capped at ``step_max``. After a failed search (step 0 along a descent
    direction): ``failure_shrink`` times the start it began from, so that a run never
    repeats the same failure for ever; if that underflows, ``step_init`` again.
    """
    step_init, grow, failure_shrink, step_max = restart
    dtype = previous_start.dtype
    if grow is None:
        success = jnp.asarray(step_init, dtype)
    else:
        success = jnp.asarray(grow, dtype) * step
    if step_max is not None:
        success = jnp.minimum(success, jnp.asarray(step_max, dtype))
    new = jnp.where(failed, jnp.asarray(failure_shrink, dtype) * previous_start, success)
    usable = jnp.isfinite(new) & (new >= jnp.finfo(dtype).tiny)
    return jnp.where(usable, new, jnp.asarray(step_init, dtype)).astype(dtype)


def check_restart(call: str, *, step_init, grow, failure_shrink, step_max) -> Restart:
    """Eager checks of the restart constants (errors name ``call``), and the `Restart` they
    make: the first search starts from ``min(step_init, step_max)``."""
    checks.positive(call, "step_init", step_init)
    if grow is not None:
        checks.finite(call, "grow", grow)
        if not float(grow) >= 1.0:
            raise ValueError(f"`jaxls.{call}(grow={grow!r})`: `grow` must be >= 1 or None.")
    checks.open_interval(call, "failure_shrink", failure_shrink, 0.0, 1.0)
    if step_max is not None:
        checks.positive(call, "step_max", step_max)
    first = min(step_init, math.inf if step_max is None else step_max)
    return Restart(first, grow, failure_shrink, step_max)


def record(previous: LineSearchInfo, step, num_evals, num_grads, status, fallback):
    """The `LineSearchInfo` of the search that just ran, and whether it failed.

    A search fails when it returns step 0 along a descent direction; step 0 along ``-grad``
    with ``NOT_DESCENT`` is no failure: ``grad`` is 0 (a stationary point).
    """
    stationary = fallback & (status == Status.NOT_DESCENT)
    failed = (step == 0) & ~stationary
    num_evals = jnp.asarray(num_evals, jnp.int32)
    info = LineSearchInfo(
        step=step,
        num_evals=num_evals,
        num_grads=jnp.asarray(num_grads, jnp.int32),
        total_evals=previous.total_evals + num_evals,
        status=jnp.asarray(status, jnp.int32),
        fallback=fallback,
    )
    return info, failed


def scale_accepted(step, direction):
    """``step * direction``, each leaf keeping its dtype, and exact zeros where ``step`` is 0:
    a failed search along a non-finite direction leaves the parameters unchanged."""
    return jax.tree.map(lambda d: jnp.where(step > 0, jnp.asarray(step, d.dtype) * d, 0), direction)


def finish(new_state, state):
    """``new_state`` with the dtypes of ``state`` (so a jitted step is traced once), ``aux``
    as it is (its structure is known only after the first update)."""
    aux = getattr(new_state, "aux", None)
    cast = optax.tree.cast_like(new_state._replace(aux=None), other_tree=state._replace(aux=None))
    return cast._replace(aux=aux)


__all__ = [
    "LineSearchInfo",
    "Restart",
    "Watched",
    "check_output",
    "check_restart",
    "descends",
    "descent_direction",
    "explicit_axes_advice",
    "finish",
    "finite_start",
    "float_dtype",
    "grad_norm",
    "initial_info",
    "keep_aux",
    "next_start",
    "normalized",
    "objective",
    "record",
    "require_protocol",
    "routed",
    "scale_accepted",
    "scale_down",
    "slope",
    "value_only",
]
