"""What every step-size search shares: input handling, the starting point, the result.

The searches work on ``phi(tau) = f(x + tau d / s)``: ``s`` is the power of two nearest
below ``max |d_i|`` (1 when ``max |d_i| <= 1``), so that a steep objective whose slope
``<grad f, d>`` is beyond the dtype's range (``d = -grad f`` with ``|grad f| > 1.8e19`` in
float32) still gives a finite slope and a usable step. Multiplying and dividing by a power
of two is exact, so for every other problem the trial points, and so the search, are those
of ``phi(t) = f(x + t d)`` with ``t = tau / s``: `result` converts back.

A search whose trials need no slope (backtracking, Goldstein) calls ``phi_trial`` (the
value only) at its trials and completes the trial it accepts with its gradient: by
transposing that call's linearisation when the search differentiates ``fun`` itself, else
by one more call of the user's ``value_and_grad``; `finish` computes the gradient of a
returned step whose gradient is still unknown.
`Start.resolution` gives the steps too short to move ``x`` (`resolution.py`), on demand;
`skip_still` starts a search that never tries them (wolfe, hager_zhang).
`run_while` is the loop driver, with a clear error where JAX's batched while loop cannot run
(`jax.vmap` over arrays sharded along explicit mesh axes).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src import checks, loop
from jaxls._src.loop import select
from jaxls._src.results import RUNNING, LineSearchResult, Status
from jaxls._src.step.conditions import EPSILON_ULPS
from jaxls._src.step.line import (
    LinePoint,
    directional_derivative,
    real_dtype,
    restrict,
    split_aux,
)
from jaxls._src.step.resolution import Resolution, line_resolution


class Start(NamedTuple):
    """A validated search: ``phi``, its value at ``tau = 0`` and the initial status."""

    phi: Callable  # tau -> LinePoint: one call of value_and_grad
    phi_trial: Callable  # tau -> line.Trial: the value (one call), the gradient on demand
    origin: LinePoint  # tau = 0
    step_init: jax.Array  # the first trial, at most step_max (0 for members that won't run)
    step_max: jax.Array  # the largest step tried (the dtype's largest number: no limit)
    num_evals: jax.Array  # 1 if the origin had to be evaluated, else 0
    status: jax.Array  # RUNNING, or INVALID_INPUT / NONFINITE / NOT_DESCENT (ROUNDING: skip_still)
    dtype: Any  # of steps, values and slopes (the dtype rule of `jaxls.Status`' module)
    scale: jax.Array  # s: the search's step tau is s times the user's step t
    gradient_calls: bool  # a trial's gradient takes a call (the user's value_and_grad)
    x: Any  # the point, its leaves as arrays
    line_direction: Any  # d / s, leaf by leaf: phi(tau) = f(x + tau line_direction)

    def constant(self, value) -> jax.Array:
        """A configuration constant (Python number or array) in the search's dtype."""
        return jnp.asarray(value).astype(self.dtype)

    def resolution(self) -> Resolution:
        """The step resolution of ``phi`` (`jaxls._src.step.resolution`), in ``tau``: every
        step below ``still`` leaves ``x`` unchanged, every step from ``moves`` on moves it.
        Computed on demand, from the scaled direction ``phi`` steps along: a search that
        does not ask for it pays nothing."""
        return line_resolution(self.x, self.line_direction, self.dtype)


def _floating(call: str, name: str, tree):
    """The leaves of ``tree`` as arrays, checked to be floating (real or complex)."""
    leaves = [jnp.asarray(leaf) for leaf in jax.tree.leaves(tree)]
    for leaf in leaves:
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(
                f"`jaxls.{call}`: `{name}` must be floating, got a leaf of dtype {leaf.dtype}; "
                f"convert it, e.g. `{name}.astype(jnp.float32)`."
            )
    return leaves


def same_structure(a, b) -> bool:
    """Whether two pytrees have the same structure (`operator.eq`: jaxlib's `PyTreeDef` has no
    type stubs, so mypy cannot type ``==`` on it)."""
    return bool(operator.eq(jax.tree.structure(a), jax.tree.structure(b)))


def direction_scale(direction, dtype) -> jax.Array:
    """``s``: the largest power of two ``<= max |d_i|``, or 1 if that is below 1 or not
    finite (then the search fails on the direction anyway)."""
    largest = jnp.max(jnp.stack([jnp.max(jnp.abs(d)).astype(dtype) for d in direction]))
    _, exponent = jnp.frexp(largest)
    usable = jnp.isfinite(largest) & (largest > 1)
    return jnp.where(usable, jnp.ldexp(jnp.ones((), dtype), exponent - 1), 1).astype(dtype)


def setup(
    call: str,
    fun: Callable | None,
    x,
    direction,
    *,
    value=None,
    grad=None,
    value_and_grad: Callable | None = None,
    has_aux: bool = False,
    step_init=1.0,
    step_max=None,
    max_evals: int,
    valid=True,
) -> Start:
    """Validate, build ``phi``, evaluate the origin if needed, and check for descent.

    ``value_and_grad(x) -> (f(x), grad f(x))`` (``((f(x), aux), grad f(x))`` with
    ``has_aux``, as `jax.value_and_grad` returns) defaults to ``jax.value_and_grad(fun)``;
    value-only calls use ``fun``, or ``value_and_grad`` if ``fun`` is None. The gradient at
    a value-only trial is the transpose of that call's linearisation when ``value_and_grad``
    is JAX's own (not given), else one more call of the given ``value_and_grad``
    (`line.restrict`). The origin is
    evaluated at ``x`` itself (one call, counted) unless both ``value`` and ``grad`` are
    given. ``valid`` is the conjunction of the search's own checks of its constants (True,
    or a traced boolean). A member gets ``INVALID_INPUT`` if it is not valid, if a traced
    ``step_init`` is not positive and finite or ``step_max`` not positive, or if the
    direction is not finite; ``NONFINITE`` if ``phi(0)`` or ``phi'(0)`` is not; and
    ``NOT_DESCENT`` if ``phi'(0) >= 0``. Such members never run: their result is the
    origin. ``step_max=None`` means the dtype's largest finite number; the first trial step
    is ``min(step_init, step_max)``.
    """
    has_aux = checks.boolean(call, "has_aux", has_aux)
    if value_and_grad is None:
        if fun is None:
            raise TypeError(f"`jaxls.{call}`: give `fun` or `value_and_grad`.")
        checks.function(call, "fun", fun)
        value_and_grad = jax.value_and_grad(fun, has_aux=has_aux)
        value_fn, trials = fun, "linearize"
    else:
        checks.function(call, "value_and_grad", value_and_grad)
        if fun is not None:
            checks.function(call, "fun", fun)
            value_fn, trials = fun, "call"
        else:
            value_fn, trials = (lambda y: value_and_grad(y)[0]), "full"
    valid = valid & checks.positive(call, "step_init", step_init)
    if step_max is not None:
        checks.scalar(call, "step_max", step_max)
        if checks.is_concrete(step_max) and not float(step_max) > 0:
            raise ValueError(f"`jaxls.{call}(step_max={step_max!r})`: `step_max` must be > 0.")
    checks.int_at_least(call, "max_evals", max_evals, 1)
    if not same_structure(x, direction):
        raise ValueError(
            f"`jaxls.{call}`: `x` and `direction` must be pytrees of the same structure, got "
            f"{jax.tree.structure(x)} and {jax.tree.structure(direction)}."
        )
    x_leaves = _floating(call, "x", x)
    d_leaves = _floating(call, "direction", direction)
    if not x_leaves:
        raise ValueError(f"`jaxls.{call}`: `x` has no leaves.")
    for a, b in zip(x_leaves, d_leaves, strict=True):
        if a.shape != b.shape:
            raise ValueError(
                f"`jaxls.{call}`: `x` and `direction` leaves differ in shape: "
                f"{a.shape} and {b.shape}."
            )
    x = jax.tree.unflatten(jax.tree.structure(x), x_leaves)
    direction = jax.tree.unflatten(jax.tree.structure(direction), d_leaves)

    data_dtype = real_dtype(jnp.result_type(*x_leaves, *d_leaves))
    out, aux_shape = checks.objective_output(call, "fun", jax.eval_shape(value_fn, x), has_aux)
    value_dtype = out.dtype
    dtype = data_dtype
    if jnp.issubdtype(value_dtype, jnp.floating):
        dtype = jnp.promote_types(data_dtype, value_dtype)

    scale = direction_scale(d_leaves, dtype)
    # Exact: s is a power of two (each leaf keeps its dtype).
    scaled = jax.tree.map(
        lambda d: (d / scale.astype(real_dtype(d.dtype))).astype(d.dtype), direction
    )
    phi, phi_trial = restrict(value_and_grad, value_fn, x, scaled, dtype, has_aux, trials=trials)

    if value is None or grad is None:
        out, grad = value_and_grad(x)
        value, aux = split_aux(out, has_aux)
        num_evals = jnp.ones((), jnp.int32)
    else:
        if not same_structure(grad, x) or any(
            jnp.shape(g) != a.shape for g, a in zip(jax.tree.leaves(grad), x_leaves, strict=True)
        ):
            raise ValueError(
                f"`jaxls.{call}`: `grad` must be a pytree like `x` (same structure and shapes); "
                f"got {jax.tree.map(jnp.shape, grad)} for `x` of shapes "
                f"{jax.tree.map(jnp.shape, x)}."
            )
        if jnp.shape(value) != ():
            raise ValueError(
                f"`jaxls.{call}`: `value` must be the scalar f(x), got shape {jnp.shape(value)}."
            )
        if not jnp.issubdtype(jnp.result_type(value), jnp.floating):
            raise TypeError(
                f"`jaxls.{call}`: `value` must be the real floating f(x), got dtype "
                f"{jnp.result_type(value)}."
            )
        # Each leaf in the dtype of x's leaf, as the gradients computed at trial steps are.
        grad = jax.tree.map(lambda g, a: jnp.asarray(g).astype(a.dtype), grad, x)
        aux = (
            None
            if aux_shape is None
            else jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), aux_shape)
        )
        num_evals = jnp.zeros((), jnp.int32)
    origin = LinePoint(
        jnp.zeros((), dtype),
        jnp.asarray(value).astype(dtype),
        directional_derivative(grad, scaled, dtype),
        grad,
        aux,
    )

    direction_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(d)) for d in d_leaves]))
    step_init = jnp.minimum(jnp.asarray(step_init).astype(dtype) * scale, jnp.finfo(dtype).max)
    if step_max is None:
        step_max = jnp.asarray(jnp.finfo(dtype).max, dtype)
    else:
        step_max = jnp.asarray(step_max).astype(dtype) * scale
    status = jnp.where(
        ~(valid & direction_finite & (step_max > 0)),
        Status.INVALID_INPUT,
        jnp.where(
            ~(jnp.isfinite(origin.value) & jnp.isfinite(origin.slope)),
            Status.NONFINITE,
            jnp.where(origin.slope < 0, RUNNING, Status.NOT_DESCENT),
        ),
    ).astype(jnp.int32)
    running = status == RUNNING
    first = jnp.where(running, jnp.minimum(step_init, step_max), 0).astype(dtype)
    return Start(
        phi,
        phi_trial,
        origin,
        first,
        step_max,
        num_evals,
        status,
        dtype,
        scale,
        trials == "call",
        x,
        scaled,
    )


def skip_still(start: Start) -> tuple[Start, jax.Array]:
    """``start`` for a search that never tries a step too short to move ``x``, and
    ``moves``, the least step that moves it (`Start.resolution`).

    The first trial is raised to ``moves`` (and still at most ``step_max``); a member for
    which no step up to ``step_max`` moves ``x`` gets ``ROUNDING`` at once (it never runs).
    The search raises its later trials to ``moves`` too.
    """
    still, moves = start.resolution()
    running = start.status == RUNNING
    frozen = running & (still > start.step_max)  # no step up to step_max moves x
    first = jnp.minimum(jnp.maximum(start.step_init, moves), start.step_max)
    first = jnp.where(running, first, 0).astype(start.dtype)
    status = jnp.where(frozen, Status.ROUNDING, start.status).astype(jnp.int32)
    return start._replace(step_init=first, status=status), moves


def result(
    start: Start, point: LinePoint, num_evals, status, *, num_grads=None, met_nonfinite=False
) -> LineSearchResult:
    """The result at ``point``, in the user's step units (``t = tau / s``)."""
    return LineSearchResult(
        step=point.step / start.scale,
        value=point.value,
        grad=point.grad,
        slope=point.slope * start.scale,
        num_evals=jnp.asarray(num_evals, jnp.int32),
        status=jnp.asarray(status, jnp.int32),
        num_grads=jnp.asarray(num_evals if num_grads is None else num_grads, jnp.int32),
        met_nonfinite=jnp.asarray(met_nonfinite, bool),
        aux=point.aux,
    )


def gradient_at(start: Start, point: LinePoint, known=False) -> tuple[LinePoint, jax.Array]:
    """``point`` with its slope and gradient, and whether a call was made: one call of
    ``value_and_grad`` at ``point.step``, skipped where the gradient is ``known`` and at
    step 0 (the origin, whose gradient is known). The value and aux stay those of the call
    that accepted the step. Under `jax.vmap` the call runs for every member and the known
    point is selected where no call was due, as in a batched `lax.cond`."""
    called = (point.step != 0) & ~jnp.asarray(known, bool)
    full = jax.lax.cond(called, start.phi, lambda t: point, point.step)
    return full._replace(value=point.value, aux=point.aux), called


def finish(
    start: Start, point: LinePoint, num_evals, num_grads, status, met_nonfinite, *, known
) -> LineSearchResult:
    """The result at ``point``, whose gradient is computed unless ``known`` (a boolean, may
    be traced): one call (`gradient_at`), counted in ``num_evals`` and ``num_grads``. If the
    gradient is not finite, the result is the origin with ``NONFINITE``."""
    point, called = gradient_at(start, point, known)
    bad = (point.step != 0) & ~jnp.isfinite(point.slope)
    return result(
        start,
        select(bad, start.origin, point),
        num_evals + called,
        jnp.where(bad, Status.NONFINITE, status),
        num_grads=num_grads + called,
        met_nonfinite=met_nonfinite | bad,
    )


# The curvature constant of the approximate Wolfe test of searches that have none of their own.
APPROXIMATE_C2 = 0.9


class Rounding(NamedTuple):
    """Hager & Zhang's approximate Wolfe test, for where values are rounding noise.

    Near a minimiser the decrease a step can make falls below the rounding error of ``f``
    (float32 resolves about ``6e-8 |f|``): an exact test of sufficient decrease then rejects
    every step, and an optimiser stalls above its gradient tolerance. Where the decrease
    asked for, ``c1 t |phi'(0)|``, is below ``allowance = epsilon |phi(0)|``, a step is
    accepted on Hager & Zhang's approximate Wolfe conditions (SIAM J. Optim. 16 (2005), eq.
    (4.1)): ``phi(t) <= phi(0) + allowance`` and ``c2 phi'(0) <= phi'(t) <= (2 c1 - 1)
    phi'(0)``. The upper bound is the Armijo condition of the quadratic model through
    ``phi'(0)`` and ``phi'(t)``, which slopes resolve where values do not; the lower bound
    (curvature) refuses the tiny steps at which no decrease is visible because nothing
    moved.
    """

    allowance: jax.Array  # epsilon |phi(0)|: values closer than this are rounding noise
    decrease: jax.Array  # c1 |phi'(0)|: the exact test asks for t times this
    upper_slope: jax.Array  # (2 c1 - 1) phi'(0), in at least float32
    lower_slope: jax.Array  # c2 phi'(0)

    def unresolved(self, step) -> jax.Array:
        """Whether the exact test asks for a decrease below the allowance."""
        return step * self.decrease <= self.allowance

    def holds(self, reference, point: LinePoint) -> jax.Array:
        """The approximate Wolfe conditions at ``point`` (its slope known), against
        ``reference`` (``phi(0)``, or a non-monotone rule's reference value)."""
        slope = point.slope.astype(self.upper_slope.dtype)
        return (
            self.unresolved(point.step)
            & jnp.isfinite(point.value)
            & (point.value <= reference + self.allowance)
            & (slope <= self.upper_slope)
            & (point.slope >= self.lower_slope)
        )


def rounding(start: Start, epsilon, c1, c2=APPROXIMATE_C2) -> Rounding:
    """`Rounding` for ``epsilon`` (None: `EPSILON_ULPS` ulps of the search's dtype) and the
    search's ``c1`` (both already checked)."""
    dtype = start.dtype
    if epsilon is None:
        epsilon = EPSILON_ULPS * jnp.finfo(dtype).eps
    epsilon, c1 = start.constant(epsilon), start.constant(c1)
    # In at least float32: in bfloat16 or float16, 2 c1 - 1 with c1 = 1e-4 rounds to -1 and
    # admits the step mirroring phi(0) on a parabola.
    wide = jnp.promote_types(dtype, jnp.float32)
    upper = (2 * c1.astype(wide) - 1) * start.origin.slope.astype(wide)
    return Rounding(
        epsilon * jnp.abs(start.origin.value),
        c1 * jnp.abs(start.origin.slope),
        upper,
        start.constant(c2) * start.origin.slope,
    )


EXPLICIT_AXES_WORKAROUND = (
    "under `jax.vmap` over arrays sharded along explicit mesh axes (`jax.make_mesh`'s "
    "default), JAX's batched `lax.while_loop` fails on its own (reproduced without jaxls, "
    "JAX {version}). Use a mesh with auto axes, `jax.make_mesh(shape, names, axis_types="
    "(jax.sharding.AxisType.Auto,) * len(names))` or `jax.sharding.Mesh(devices, names)`; "
    "the arrays keep their shardings and the results are sharded like them."
)


def run_while(step: Callable, state, max_evals: int, call: str = "search"):
    """`jaxls._src.loop.run_while`, with a clear error where JAX's batched while loop fails:
    under `jax.vmap` over data sharded along explicit mesh axes ("Resource axis ... is not
    found in mesh: ()", JAX 0.10, as soon as the loop predicate is batched). Unbatched, and
    with auto axes, the loop works and nothing changes."""
    try:
        return loop.run_while(step, state, max_evals)
    except Exception as error:
        mesh = jax.sharding.get_abstract_mesh()
        explicit = not mesh.empty and jax.sharding.AxisType.Explicit in mesh.axis_types
        # JAX raises a ValueError in the loop, or a ShardingTypeError (not public) while
        # tracing a body that mixes the batch's sharding with a replicated constant.
        known = "not found in mesh" in str(error) or type(error).__name__ == "ShardingTypeError"
        if explicit and known:
            message = EXPLICIT_AXES_WORKAROUND.format(version=jax.__version__)
            raise ValueError(f"`jaxls.{call}`: {message}") from error
        raise


def origin_result(start: Start) -> LineSearchResult:
    """The result for members that never run: the origin, with the initial status."""
    return result(start, start.origin, start.num_evals, start.status)


__all__ = [
    "LinePoint",
    "Start",
    "finish",
    "gradient_at",
    "origin_result",
    "result",
    "run_while",
    "select",
    "setup",
    "skip_still",
]
