"""Rules of the control-flow primitives ``cond``, ``scan`` and ``while``.

Each rule is handed the interpreter evaluating the equation (`registry.ForwardInterpreter`
or `registry.ReverseInterpreter`) and runs the branches or the loop body through it, inside
the same control-flow primitive (`lax.switch`, `lax.scan`, `lax.while_loop`), so the
derivative is ordinary JAX again.

* ``cond``: forward mode runs the taken branch's JVP; reverse mode stores only the operands
  and recomputes the taken branch's forward sweep before its backward sweep.
* ``scan``: forward mode scans the body's JVP; reverse mode keeps the tape of every iteration
  (stacked by the forward scan) and reads it back in a reverse scan, nothing recomputed.
* ``while``: forward mode loops on the body's JVP. Reverse mode, which JAX refuses (the
  trip count is not known in advance), takes a bound ``N`` (``max_loop_steps=``, the
  interpreter's): the loop runs as ``N`` guarded iterations in a `lax.scan`, each taken one
  (its condition true) recording its tape, then the loop itself from where they stopped
  (the outputs are the loop's own). A reverse scan reads the tapes back. A loop still
  running after ``N`` iterations gets NaN adjoints, for every input the loop carries or
  its body reads: never a gradient silently truncated. Without a bound, a loop whose
  inputs are concrete (the transform called eagerly) has its iterations counted first and
  that count is the bound; a traced loop without one is refused. With ``k`` checkpoints
  (``loop_checkpoints=``), the tapes are recomputed instead of stored, by recursive
  checkpointing (`checkpoint_plan`): the forward sweep keeps only the carries where each
  of at most ``k`` segments of the ``N`` iterations starts, and the backward sweep, segment
  by segment, last first, recomputes the carries where its own ``k`` segments start, down
  to segments of ``k`` iterations whose tapes it records and reverses: nested scans, one
  level per factor ``k`` of ``N``, so ``O(k log_k N)`` carries and ``k`` tapes held, and
  each iteration evaluated at most ``ceil(log_k N)`` times (``k = 2``: recursive
  bisection). The iterations taken are the first ``trips`` (a skipped iteration leaves the
  carry, hence the condition, as it is), so recomputations test ``i < trips``, not the
  condition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import INPUTS, Reads, add, defjvp_higher_order, defvjp_higher_order
from jaxls._src.ad.registry import instantiate


def float_zero_tangents(values, tangents):
    """Materialise the zero tangents of floating values; integers keep ``None``."""
    return [
        instantiate(t, v) if jnp.issubdtype(jnp.result_type(v), jnp.inexact) else None
        for v, t in zip(values, tangents, strict=True)
    ]


def float_cts(values, cts, active=None):
    """Materialise the zero adjoints of (active) floating values; others stay ``None``."""
    active = [True] * len(values) if active is None else active
    return [
        instantiate(ct, v) if a and jnp.issubdtype(jnp.result_type(v), jnp.inexact) else None
        for v, ct, a in zip(values, cts, active, strict=True)
    ]


def zeros_of(var, drop_leading: bool = False):
    """Zeros shaped like the variable ``var`` (like one slice of it: ``drop_leading``)."""
    shape = var.aval.shape[1:] if drop_leading else var.aval.shape
    return jnp.zeros(shape, var.aval.dtype)


# ---------------------------------------------------------------------------------------
# cond.


@defjvp_higher_order(*jx.COND)
def _cond_jvp(interpreter, eqn, primals, tangents):
    index, ops, tops = primals[0], primals[1:], float_zero_tangents(primals[1:], tangents[1:])

    def branch(c):
        def run(ops, tops):
            outs, touts = interpreter.jvp(c, ops, tops)
            return outs, float_zero_tangents(outs, touts)

        return run

    outs, touts = jax.lax.switch(index, [branch(c) for c in jx.cond_branches(eqn)], ops, tops)
    return list(outs), list(touts)


@defvjp_higher_order(*jx.COND, reads=INPUTS)
def _cond_vjp(interpreter, eqn, residuals, primals, outs, active, cts):
    """The taken branch's forward and backward sweeps, inside a `lax.switch` (the branch's
    intermediate values are recomputed: the cond stores only its operands)."""
    index, ops, op_act = primals[0], primals[1:], active[1:]
    outs_like = [zeros_of(v) for v in eqn.outvars]
    cts = float_cts(outs_like, cts)

    def branch(c):
        def run(ops, cts):
            return float_cts(ops, interpreter.vjp(c, ops, op_act, cts), op_act)

        return run

    cts_in = jax.lax.switch(index, [branch(c) for c in jx.cond_branches(eqn)], ops, cts)
    return [None, *cts_in]


# ---------------------------------------------------------------------------------------
# scan.


@defjvp_higher_order(*jx.SCAN)
def _scan_jvp(interpreter, eqn, primals, tangents):
    spec = jx.scan_spec(eqn)
    k, n = spec.num_consts, spec.num_carry
    consts, carry, xs = primals[:k], primals[k : k + n], primals[k + n :]
    tconsts, txs = tangents[:k], tangents[k + n :]
    tcarry = float_zero_tangents(carry, tangents[k : k + n])

    def body(state, slices):
        (c, tc), (x, tx) = state, slices
        outs, touts = interpreter.jvp(spec.body, [*consts, *c, *x], [*tconsts, *tc, *tx])
        touts = float_zero_tangents(outs, touts)
        return (outs[:n], touts[:n]), (outs[n:], touts[n:])

    (carry, tcarry), (ys, tys) = jax.lax.scan(
        body,
        (carry, tcarry),
        (xs, txs),
        length=spec.length,
        reverse=spec.reverse,
        unroll=spec.unroll,
    )
    return [*carry, *ys], [*tcarry, *tys]


def carry_activity(interpreter, spec: jx.ScanSpec, act: list[bool]) -> list[bool]:
    """The fixed point: a carry is active if its initial value is, or an iteration makes it."""
    return loop_activity(interpreter, spec.body, spec.num_consts, spec.num_carry, act)


def loop_activity(interpreter, body: jx.Closed, k: int, n: int, act: list[bool]) -> list[bool]:
    """`carry_activity` of a loop ``body`` taking ``k`` constants then ``n`` carries (and
    returning the carries first): the activity of its inputs, carries made active where an
    iteration makes them so."""
    act = list(act)
    while True:
        out = interpreter.activity(body, act)
        new = [a or o for a, o in zip(act[k : k + n], out[:n], strict=True)]
        if new == act[k : k + n]:
            return act
        act[k : k + n] = new


@jax.tree_util.register_pytree_node_class
class ScanTape:
    """The stacked tapes of a scan's iterations, with the (static) activity of its inputs."""

    def __init__(self, tapes, act: tuple):
        self.tapes, self.act = tapes, act

    def tree_flatten(self):
        return (self.tapes,), self.act

    @classmethod
    def tree_unflatten(cls, act, children):
        return cls(children[0], act)


def _scan_forward(interpreter, eqn, primals, active):
    """The forward scan, each iteration's forward sweep recording its tape (the
    loop-invariant constants left out: the backward scan is given them again)."""
    spec = jx.scan_spec(eqn)
    k, n = spec.num_consts, spec.num_carry
    act = carry_activity(interpreter, spec, active)
    consts, carry, xs = primals[:k], primals[k : k + n], primals[k + n :]
    skip = frozenset(spec.body.jaxpr.invars[:k])

    def body(c, x):
        outs, tape = interpreter.forward(spec.body, [*consts, *c, *x], act, skip)
        return outs[:n], (outs[n:], tape)

    carry, (ys, tapes) = jax.lax.scan(
        body, carry, xs, length=spec.length, reverse=spec.reverse, unroll=spec.unroll
    )
    return [*carry, *ys], ScanTape(tapes, tuple(act))


def _scan_reads(active, *, num_consts, **params) -> Reads:
    """The backward scan reads the loop-invariant constants (its tapes hold the rest)."""
    return Reads(slice(0, num_consts), False)


@defvjp_higher_order(*jx.SCAN, forward=_scan_forward, reads=_scan_reads)
def _scan_vjp(interpreter, eqn, residuals: ScanTape, primals, outs, active, cts):
    """A reverse scan over the stored tapes: iteration ``i``'s backward sweep reads the
    values iteration ``i`` of the forward scan recorded."""
    spec = jx.scan_spec(eqn)
    act = list(residuals.act)
    k, n = spec.num_consts, spec.num_carry
    consts, carry = primals[:k], primals[k : k + n]
    given = dict(zip(spec.body.jaxpr.invars[:k], consts, strict=True))
    x_slices = [zeros_of(v, drop_leading=True) for v in eqn.invars[k + n :]]
    ct_carry = float_cts(carry, cts[:n], act[k : k + n])
    ct_consts = float_cts(consts, [None] * k, act[:k])
    ct_ys = [
        zeros_of(v) if c is None and jx.is_float_aval(v.aval) else c
        for v, c in zip(eqn.outvars[n:], cts[n:], strict=True)
    ]

    def body(state, slices):
        ct_c, acc = state
        ct_y, tape = slices
        cts_in = interpreter.backward(spec.body, tape, [*ct_c, *ct_y], given)
        acc = [None if a is None else add(a, c) for a, c in zip(acc, cts_in[:k], strict=True)]
        ct_c = float_cts(carry, cts_in[k : k + n], act[k : k + n])
        ct_x = float_cts(x_slices, cts_in[k + n :], act[k + n :])
        return (ct_c, acc), ct_x

    (ct_carry, ct_consts), ct_xs = jax.lax.scan(
        body,
        (ct_carry, ct_consts),
        (ct_ys, residuals.tapes),
        length=spec.length,
        reverse=not spec.reverse,
        unroll=spec.unroll,
    )
    return [*ct_consts, *ct_carry, *ct_xs]


# ---------------------------------------------------------------------------------------
# while.


@defjvp_higher_order(*jx.WHILE)
def _while_jvp(interpreter, eqn, primals, tangents):
    spec = jx.while_spec(eqn)
    a, b = spec.cond_nconsts, spec.body_nconsts
    cond_consts, body_consts, carry = primals[:a], primals[a : a + b], primals[a + b :]
    tbody, tcarry = tangents[a : a + b], float_zero_tangents(carry, tangents[a + b :])

    def cond(state):
        return interpreter.evaluate(spec.cond, [*cond_consts, *state[0]])[0]

    def body(state):
        outs, touts = interpreter.jvp(spec.body, [*body_consts, *state[0]], [*tbody, *state[1]])
        return outs, float_zero_tangents(outs, touts)

    carry, tcarry = jax.lax.while_loop(cond, body, (carry, tcarry))
    return list(carry), list(tcarry)


def _refused():
    raise NotImplementedError(
        "jaxls.ad: reverse mode through `lax.while_loop` under `jax.jit` (or `vmap`, or inside "
        "another loop or transform) needs a bound on its trip count, which is not known in "
        "advance (JAX refuses it too; called eagerly, jaxls counts the iterations first). "
        "Pass `max_loop_steps=N` to `jaxls.ad.grad` (or `value_and_grad`, `vjp`, `jacrev`, "
        "`hessian`, `hvp`) to record up to N iterations of each loop (its gradients are NaN "
        "if it runs longer); or use forward mode (`jaxls.ad.jvp`, `jacfwd`), or `lax.scan` / "
        "`lax.fori_loop` with static bounds."
    )


def _trip_count(interpreter, spec, cond_consts, body_consts, carry) -> int:
    """How many iterations the loop runs from ``carry`` (concrete values: run it once)."""

    def cond(state):
        return interpreter.evaluate(spec.cond, [*cond_consts, *state[1]])[0]

    def body(state):
        return state[0] + 1, interpreter.evaluate(spec.body, [*body_consts, *state[1]])

    count, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), list(carry)))
    return max(int(count), 1)


def checkpoint_plan(steps: int, checkpoints: int | None) -> tuple[int, ...]:
    """The recursion of checkpointed reverse mode through ``steps`` guarded iterations: how
    many segments each level splits its own into, ``(n, k, ..., k)`` for ``k =
    checkpoints``: ``L`` levels, ``k^(L-1) < steps <= n k^(L-1)``, ``2 <= n <= k``; a
    segment of the last level is one iteration. One level, ``(steps,)``, stores the tape
    of every iteration: without checkpoints, or if ``steps <= k``.

    >>> checkpoint_plan(1000, 2)  # bisection: 2^10 >= 1000 iterations, 10 levels
    (2, 2, 2, 2, 2, 2, 2, 2, 2, 2)
    >>> checkpoint_plan(1000, 32), checkpoint_plan(600, 32), checkpoint_plan(5, 8)
    ((32, 32), (19, 32), (5,))
    """
    if checkpoints is None or steps <= checkpoints:
        return (steps,)
    size, levels = checkpoints, 2  # size = k^(levels - 1): the iterations of a segment
    while size * checkpoints < steps:
        size, levels = size * checkpoints, levels + 1
    return (-(-steps // size),) + (checkpoints,) * (levels - 1)


class _Body(NamedTuple):
    """One iteration of a ``while`` loop as reverse mode runs it (closures over the loop's
    constants and the activity of the body's inputs)."""

    cond: Callable  # cond(c) -> bool: the loop's condition
    evaluate: Callable  # evaluate(c) -> c: the body, untaped
    forward: Callable  # forward(c) -> (c, tape): the body's forward sweep
    backward: Callable  # backward(ct_c, tape) -> (ct_consts, ct_c): its backward sweep
    no_cts: list  # zero adjoints of the body's constants (None where inactive)


def _body(interpreter, spec: jx.WhileSpec, primals, act: list[bool]) -> _Body:
    a, b = spec.cond_nconsts, spec.body_nconsts
    cond_consts, body_consts, carry = primals[:a], primals[a : a + b], primals[a + b :]
    skip = frozenset(spec.body.jaxpr.invars[:b])  # loop-invariant: given to the backward sweep
    given = dict(zip(spec.body.jaxpr.invars[:b], body_consts, strict=True))

    def backward(ct_c, tape):
        cts_in = interpreter.backward(spec.body, tape, ct_c, given)
        return float_cts(body_consts, cts_in[:b], act[:b]), float_cts(carry, cts_in[b:], act[b:])

    return _Body(
        cond=lambda c: interpreter.evaluate(spec.cond, [*cond_consts, *c])[0],
        evaluate=lambda c: interpreter.evaluate(spec.body, [*body_consts, *c]),
        forward=lambda c: interpreter.forward(spec.body, [*body_consts, *c], act, skip),
        backward=backward,
        no_cts=float_cts(body_consts, [None] * b, act[:b]),
    )


def _blank(tree):
    """Zeros shaped like the leaves of ``tree`` (of `jax.ShapeDtypeStruct`)."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), tree)


def _iterations(n: int, first=0, stride: int = 1):
    """The indices ``first + stride * j`` (int32) of ``n`` guarded iterations."""
    return first + stride * jnp.arange(n, dtype=jnp.int32)


def _accumulate(acc, cts):
    return [None if x is None else add(x, y) for x, y in zip(acc, cts, strict=True)]


def _tape_iterations(body: _Body, carry, taken_of, index):
    """Guarded iterations ``c = body(c) if taken else c`` at ``index`` (``taken =
    taken_of(c, i)``), each taken one recording its tape (blank where skipped):
    ``(carry, (tapes, taken))``."""
    blank = _blank(jax.eval_shape(body.forward, list(carry))[1])

    def step(c, i):
        taken = taken_of(c, i)
        c, tape = jax.lax.cond(taken, body.forward, lambda c: (c, blank), c)
        return c, (tape, taken)

    return jax.lax.scan(step, list(carry), index)


def _reverse_tapes(body: _Body, tapes, taken, ct_c, acc):
    """A reverse scan over recorded iterations, the backward sweep of each one taken
    (skipped ones pass the adjoint through): ``(ct_c, acc)``, the constants' adjoints
    accumulated in ``acc``."""

    def step(state, slices):
        (ct_c, acc), (tape, taken) = state, slices
        skipped = lambda ct_c, _: (body.no_cts, ct_c)
        ct_k, ct_c = jax.lax.cond(taken, body.backward, skipped, ct_c, tape)
        return (ct_c, _accumulate(acc, ct_k)), None

    (ct_c, acc), _ = jax.lax.scan(step, (ct_c, acc), (tapes, taken), reverse=True)
    return ct_c, acc


def _advance(body: _Body, carry, trips, index):
    """Guarded iterations at ``index``, untaped: those before ``trips`` run the body."""

    def step(c, i):
        return jax.lax.cond(i < trips, body.evaluate, list, c), None

    return jax.lax.scan(step, list(carry), index)[0]


def _reverse_segments(body: _Body, plan, level: int, checkpoints, first, trips, ct_c, acc):
    """A reverse scan over the ``plan[level]`` segments of one segment of the level above,
    each started from its carry in ``checkpoints`` (stacked) at iteration ``first`` (an
    array) and reversed by `_reverse_segment`."""

    def step(state, slices):
        (ct_c, acc), (carry, start) = state, slices
        return _reverse_segment(body, plan, level + 1, carry, start, trips, ct_c, acc), None

    (ct_c, acc), _ = jax.lax.scan(step, (ct_c, acc), (checkpoints, first), reverse=True)
    return ct_c, acc


def _reverse_segment(body: _Body, plan, level: int, carry, first, trips, ct_c, acc):
    """The adjoints through the ``prod(plan[level:])`` guarded iterations from ``carry`` at
    iteration ``first``. The last level tapes them and reverses the tapes; any other
    recomputes the carries where its ``plan[level]`` segments start (those of all but its
    last segment evaluated once more) and reverses the segments, last first."""
    count, size = plan[level], math.prod(plan[level + 1 :])
    index = _iterations(count, first, size)
    if size == 1:
        _, (tapes, taken) = _tape_iterations(body, carry, lambda c, i: i < trips, index)
        return _reverse_tapes(body, tapes, taken, ct_c, acc)

    def segment(c, start):
        end = _advance(body, c, trips, _iterations(size, start))
        return end, end

    _, ends = jax.lax.scan(segment, list(carry), index[:-1])
    starts = jax.tree.map(lambda c, e: jnp.concatenate([c[None], e]), list(carry), ends)
    return _reverse_segments(body, plan, level, starts, index, trips, ct_c, acc)


@jax.tree_util.register_pytree_node_class
class WhileTape:
    """What reverse mode keeps of a ``while`` loop run as ``max_loop_steps`` guarded
    iterations: the tape of each (stacked; blank where skipped), whether it ran
    (``taken``), whether the loop was still running after the last (``overflow``), and the
    (static) activity of the body's inputs."""

    def __init__(self, tapes, taken, overflow, act: tuple):
        self.tapes, self.taken, self.overflow, self.act = tapes, taken, overflow, act

    def tree_flatten(self):
        return (self.tapes, self.taken, self.overflow), self.act

    @classmethod
    def tree_unflatten(cls, act, children):
        tapes, taken, overflow = children
        return cls(tapes, taken, overflow, act)

    def reverse(self, body: _Body, ct_c, acc):
        """The adjoints through the loop: the stored tapes read back, last first."""
        return _reverse_tapes(body, self.tapes, self.taken, ct_c, acc)


@jax.tree_util.register_pytree_node_class
class WhileCheckpoints:
    """What checkpointed reverse mode (``loop_checkpoints=k``) keeps of a ``while`` loop:
    the carries where the ``plan[0]`` segments of the first level start (stacked), how
    many iterations ran (``trips``, at most the bound: the taken ones are the first
    ``trips``, as a skipped iteration leaves the carry, hence the condition, unchanged),
    whether the loop was still running after the bound (``overflow``); static, the activity
    of the body's inputs and the `checkpoint_plan`."""

    def __init__(self, checkpoints, trips, overflow, act: tuple, plan: tuple):
        self.checkpoints, self.trips, self.overflow = checkpoints, trips, overflow
        self.act, self.plan = act, plan

    def tree_flatten(self):
        return (self.checkpoints, self.trips, self.overflow), (self.act, self.plan)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    def reverse(self, body: _Body, ct_c, acc):
        """The adjoints through the loop: its segments reversed, last first, each
        recursively (`_reverse_segment`)."""
        first = _iterations(self.plan[0], 0, math.prod(self.plan[1:]))
        plan, checkpoints, trips = self.plan, self.checkpoints, self.trips
        return _reverse_segments(body, plan, 0, checkpoints, first, trips, ct_c, acc)


def _checkpointed(body: _Body, carry, steps: int, plan, act) -> tuple[list, WhileCheckpoints]:
    """The forward part of checkpointed reverse mode: ``prod(plan)`` guarded iterations
    (those past ``steps`` skipped), untaped, keeping the carry where each of the
    ``plan[0]`` segments of the first level starts, and counting the iterations taken."""
    size = math.prod(plan[1:])

    def step(state, i):
        c, trips = state
        taken = (i < steps) & body.cond(c)
        c = jax.lax.cond(taken, body.evaluate, list, c)
        return (c, trips + taken.astype(jnp.int32)), None

    def segment(state, first):
        end, _ = jax.lax.scan(step, state, _iterations(size, first))
        return end, state[0]

    state = (list(carry), jnp.int32(0))
    (carry, trips), starts = jax.lax.scan(segment, state, _iterations(plan[0], 0, size))
    return carry, WhileCheckpoints(starts, trips, body.cond(carry), tuple(act), plan)


def _while_forward(interpreter, eqn, primals, active):
    """``max_loop_steps`` guarded iterations, ``c = body(c) if cond(c) else c``, then the
    loop itself from where they stopped (it stops at once, unless the bound was too small:
    ``overflow``), so that the outputs are the loop's own. Without ``loop_checkpoints``, a
    `lax.scan` stacks the tapes of the iterations taken (`WhileTape`); with it, the
    iterations run untaped and only the carries that start the first level's segments of
    the `checkpoint_plan` are kept (`WhileCheckpoints`)."""
    spec = jx.while_spec(eqn)
    a, b = spec.cond_nconsts, spec.body_nconsts
    cond_consts, body_consts, carry = primals[:a], primals[a : a + b], primals[a + b :]
    act = loop_activity(interpreter, spec.body, b, len(carry), list(active[a:]))
    if not any(act[b:]):  # the carry does not depend on an active value: no derivative
        return jx.bind(eqn, primals), None
    steps = interpreter.max_loop_steps
    if steps is None:
        # Eagerly (every value concrete), the trip count is counted first, as jax's
        # `fori_loop` with concrete bounds is a scan; traced, it needs the user's bound.
        if not jx.is_concrete(primals):
            _refused()
        steps = _trip_count(interpreter, spec, cond_consts, body_consts, carry)
    body = _body(interpreter, spec, primals, act)
    plan = checkpoint_plan(steps, interpreter.loop_checkpoints)
    residuals: WhileTape | WhileCheckpoints
    if len(plan) == 1:
        carry, (tapes, taken) = _tape_iterations(
            body, carry, lambda c, i: body.cond(c), _iterations(steps)
        )
        residuals = WhileTape(tapes, taken, body.cond(carry), tuple(act))
    else:
        carry, residuals = _checkpointed(body, carry, steps, plan, act)
    outs = jx.bind(eqn, [*cond_consts, *body_consts, *carry])
    return outs, residuals


def _poison(ct, overflow):
    """``ct``, NaN where the loop ran past its bound (a product, so that the tangents of
    ``ct``, and a Hessian, are NaN too)."""
    if ct is None:
        return None
    return ct * jnp.where(overflow, jnp.nan, 1).astype(ct.dtype)


def _while_reads(active, *, cond_nconsts, body_nconsts, **params) -> Reads:
    """The backward sweep reads the body's constants (its residuals hold the carries)."""
    return Reads(slice(cond_nconsts, cond_nconsts + body_nconsts), False)


@defvjp_higher_order(*jx.WHILE, forward=_while_forward, reads=_while_reads)
def _while_vjp(
    interpreter, eqn, residuals: WhileTape | WhileCheckpoints | None, primals, outs, active, cts
):
    """The adjoints through the recorded iterations, last first (`WhileTape.reverse`,
    `WhileCheckpoints.reverse`); NaN adjoints if the loop ran past the bound."""
    if residuals is None:
        return [None] * len(primals)
    spec = jx.while_spec(eqn)
    a, b = spec.cond_nconsts, spec.body_nconsts
    act = list(residuals.act)
    body = _body(interpreter, spec, primals, act)
    ct_carry = float_cts(primals[a + b :], cts, act[b:])
    ct_carry, ct_consts = residuals.reverse(body, ct_carry, body.no_cts)
    poisoned = [_poison(ct, residuals.overflow) for ct in [*ct_consts, *ct_carry]]
    return [None] * a + poisoned


__all__ = [
    "ScanTape",
    "WhileCheckpoints",
    "WhileTape",
    "carry_activity",
    "checkpoint_plan",
    "float_cts",
    "float_zero_tangents",
]
