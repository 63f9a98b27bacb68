"""Reverse mode: a forward sweep that records the values the backward sweep needs (the
tape), then a backward sweep that accumulates adjoints equation by equation, last first.

Only *active* values (floating values that depend on a differentiated input) get adjoints.
Of the equations that touch them and have an output on the way to the result
(`differentiated`: not the maximum ``log_softmax`` subtracts under ``stop_gradient``), the
tape holds what their VJP rules declare they read
(`registry.Reads`: nothing for ``add`` or ``reshape``, the output of ``exp``, the input of
``sin``, the operand paired with an active one for ``mul`` and ``dot_general``), each rule
handed the values it declared unread as `registry.Unrecorded` placeholders (shape and dtype
only: a rule that reads one fails loudly); and it holds the residuals the rules of
higher-order primitives keep (`registry.HigherOrderVJP`, handed `INTERPRETER`): a
`lax.scan` keeps the tape of every iteration (stacked by the scan itself), so its backward
sweep reads the stored values instead of recomputing them; `checkpoint` (``remat``) keeps
what its policy saves (`checkpoint_plan`: by default, only the inputs its backward sweep
needs) and recomputes the rest during the backward sweep. `jaxls.ad.saved_residuals`
lists what a tape holds.

The adjoint of a ``custom_jvp`` function is the transpose of its author's JVP, by the same
two sweeps over the rule's jaxpr with the primals held fixed (`transpose`). As JAX does, it
takes every equation of the rule that touches a tangent to be linear in it: there, a
``custom_jvp_call`` (the function applied to a tangent) is transposed through its
function's jaxpr, not its rule (`registry.linear_vjp_rules`). The tape records which rules
its forward sweep used, so that the backward sweep uses the same.

A ``while`` loop has no trip count known in advance, so reverse mode through it needs a
bound, the ``max_loop_steps=`` of the public transforms: the forward sweep records up to
that many iterations (`rules.control_flow`). The bound is the interpreter's
(`ReverseInterpreter.max_loop_steps`, made by `interpreter`), passed to every jaxpr the
sweeps run and recorded on the tape, like the linear part; with ``loop_checkpoints=`` it is
a `registry.LoopBound`, which also says how many checkpoints the loops' reverse mode keeps.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

import jaxls._src.ad.rules  # noqa: F401  (fills the rule tables)
from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.forward import evaluate, unsupported
from jaxls._src.ad.registry import HigherOrderVJP, ReverseInterpreter, add, nondifferentiable
from jaxls._src.ad.registry import LoopBound
from jaxls._src.ad.registry import Unrecorded, UnrecordedValueError, declared_reads
from jaxls._src.ad.registry import reads_depend_on_activity, vjp_rule


def is_float_var(var) -> bool:
    return jx.is_float_aval(var.aval)


def differentiable_outs(eqn) -> list:
    """The outputs of an equation with active inputs that become active: its floating
    outputs, none for a primitive whose derivative is zero."""
    if jx.name(eqn) in nondifferentiable:
        return []
    return [v for v in eqn.outvars if not jx.is_drop(v) and is_float_var(v)]


@jax.tree_util.register_pytree_node_class
class Tape:
    """Recorded values of one jaxpr's forward sweep (those its rules read), keyed by
    variable, plus the residuals of its higher-order equations, such as the tapes of the
    jaxprs it calls (keyed by equation index), whether the sweep was over the linear part of
    a ``custom_jvp`` rule (which rules recorded it) and its bound on ``while`` loops. A
    pytree: `lax.scan` can stack it."""

    def __init__(
        self,
        values: dict,
        subs: dict,
        active: frozenset,
        linear: bool = False,
        max_loop_steps: int | LoopBound | None = None,
    ):
        self.values, self.subs, self.active, self.linear = values, subs, active, linear
        self.max_loop_steps = max_loop_steps

    def tree_flatten(self):
        keys, subkeys = tuple(self.values), tuple(self.subs)
        children = ([self.values[k] for k in keys], [self.subs[k] for k in subkeys])
        return children, (keys, subkeys, self.active, self.linear, self.max_loop_steps)

    @classmethod
    def tree_unflatten(cls, aux, children):
        keys, subkeys, active, linear, max_loop_steps = aux
        values, subs = children
        values = dict(zip(keys, values, strict=True))
        subs = dict(zip(subkeys, subs, strict=True))
        return cls(values, subs, active, linear, max_loop_steps)


def activity(c: jx.Closed, active_in: Sequence[bool]) -> list[bool]:
    """Which outputs depend on an active input (over-approximated through sub-jaxprs)."""
    active = {v for v, a in zip(c.jaxpr.invars, active_in, strict=True) if a and is_float_var(v)}
    for eqn in c.jaxpr.eqns:
        if any(not jx.is_literal(a) and a in active for a in eqn.invars):
            active.update(differentiable_outs(eqn))
    return [not jx.is_literal(v) and v in active for v in c.jaxpr.outvars]


def differentiated(
    c: jx.Closed, active_in: Sequence[bool]
) -> tuple[list[tuple[bool, ...] | None], frozenset]:
    """Per equation, the activity of its inputs where the backward sweep may differentiate
    it, None elsewhere; and the active variables.

    An equation is differentiated if it has an active input, a derivative (not
    ``stop_gradient``, a comparison) and an output on a differentiable path to the jaxpr's
    outputs: the others never receive an adjoint, so the tape keeps nothing of them (the
    maximum that ``log_softmax`` subtracts under ``stop_gradient``), as jax's partial
    evaluation keeps nothing of them either.
    """
    active = {v for v, a in zip(c.jaxpr.invars, active_in, strict=True) if a and is_float_var(v)}
    acts: list[tuple[bool, ...] | None] = []
    for eqn in c.jaxpr.eqns:
        act = tuple(not jx.is_literal(a) and a in active for a in eqn.invars)
        if any(act) and jx.name(eqn) not in nondifferentiable:
            acts.append(act)
            active.update(differentiable_outs(eqn))
        else:
            acts.append(None)
    reached = {v for v in c.jaxpr.outvars if not jx.is_literal(v) and v in active}
    for i in reversed(range(len(acts))):
        eqn, flags = c.jaxpr.eqns[i], acts[i]
        if flags is None:
            continue
        if any(not jx.is_drop(v) and v in reached for v in eqn.outvars):
            reached.update(a for a, x in zip(eqn.invars, flags, strict=True) if x)
        else:
            acts[i] = None
    return acts, frozenset(active)


def out_key(eqn, index: int, j: int):
    var = eqn.outvars[j]
    return ("dropped", index, j) if jx.is_drop(var) else var


def tape_reads(eqn, act: Sequence[bool], linear: bool) -> tuple[frozenset[int], bool]:
    """What the tape records of an active equation: the positions of the inputs its VJP rule
    reads (literals need no recording: the jaxpr holds them), and whether its outputs."""
    reads = declared_reads(jx.name(eqn), act, eqn.params, linear)
    return reads.positions(len(eqn.invars)), reads.outputs


def forward_sweep(
    c: jx.Closed,
    args: Sequence,
    active_in: Sequence[bool],
    skip=frozenset(),
    *,
    linear: bool = False,
    max_loop_steps: int | LoopBound | None = None,
    policy=None,
    saved: Tape | None = None,
):
    """Evaluate the jaxpr, recording what the backward sweep needs: ``(outs, tape)``.

    ``skip``: input variables not to record (loop-invariant constants of a scan body, which
    the backward sweep is given again). ``linear``: the jaxpr is the linear part of a
    ``custom_jvp`` rule (`transpose`). ``max_loop_steps``: the most iterations of a
    ``while`` loop to record (None: reverse mode through one is refused).

    ``policy``: the jaxpr is the body of a `jax.checkpoint` with this policy
    (`checkpoint_plan`). The sweep then records only what the policy saves of what the
    backward sweep needs, and the inputs it needs; with ``saved``, the tape so recorded, it
    recomputes the rest from it and returns ``(None, tape)`` with the whole tape.
    """
    if policy is not None:
        plan = checkpoint_plan(c, active_in, policy, linear)
        if saved is None:
            return _checkpoint_forward(c, args, plan, linear, max_loop_steps)
        return None, _recompute(c, plan, saved, linear, max_loop_steps)
    env, values, subs = {}, {}, {}
    read = lambda a: jx.literal_value(a) if jx.is_literal(a) else env[a]
    acts, active = differentiated(c, active_in)
    for var, value in zip(c.jaxpr.constvars, c.consts, strict=True):
        env[var] = value
    for var, value in zip(c.jaxpr.invars, args, strict=True):
        env[var] = value
    for i, (eqn, act) in enumerate(zip(c.jaxpr.eqns, acts, strict=True)):
        ins = [read(a) for a in eqn.invars]
        if act is None:
            outs = jx.bind(eqn, ins)
        else:
            outs, sub = forward_equation(eqn, ins, list(act), linear, max_loop_steps)
            if sub is not None:
                subs[i] = sub
            positions, outputs = tape_reads(eqn, act, linear)
            for k in positions:
                a = eqn.invars[k]
                if not jx.is_literal(a) and a not in skip:
                    values[a] = ins[k]
            if outputs:
                for j, value in enumerate(outs):
                    values[out_key(eqn, i, j)] = value
        for var, value in zip(eqn.outvars, outs, strict=True):
            if not jx.is_drop(var):
                env[var] = value
    tape = Tape(values, subs, active, linear, max_loop_steps)
    return [read(a) for a in c.jaxpr.outvars], tape


class CheckpointPlan(NamedTuple):
    """What reverse mode keeps of the body of a `jax.checkpoint` under its policy.

    Attributes:
      active: per equation, the activity of its inputs (None: not differentiated).
      active_vars: the active variables (the tape's ``active``).
      saved: the tape keys (variables, `out_key` of dropped outputs) the forward sweep
        keeps: outputs of equations the policy saves, and inputs, that the backward sweep
        or a recomputation needs.
      saved_subs: the (indices of the) higher-order equations whose residuals it keeps.
      recompute: the equations the backward part runs again, those whose outputs (or
        residuals) are needed and not saved.
    """

    active: tuple[tuple[bool, ...] | None, ...]
    active_vars: frozenset
    saved: frozenset
    saved_subs: frozenset[int]
    recompute: frozenset[int]


def checkpoint_plan(
    c: jx.Closed, active_in: Sequence[bool], policy, linear: bool = False
) -> CheckpointPlan:
    """What to keep of a checkpointed jaxpr, as jax's partial evaluation decides it.

    The backward sweep needs what the rules of the differentiated equations read
    (`differentiated`, `tape_reads`) and the residuals of the higher-order ones. Last
    equation first: a needed value is kept if the policy saves the equation computing it
    (``policy(primitive, *avals_in, **params)``, `jx.policy_saves`); otherwise that
    equation is recomputed, and its inputs are needed in turn. The jaxpr's inputs so needed
    are kept too. Nothing else is: each value saved is needed, each equation recomputed is.
    """
    eqns = c.jaxpr.eqns
    acts, active = differentiated(c, active_in)
    needed: set = set()
    saved: set = set()
    saved_subs, recompute = set(), set()
    for i in reversed(range(len(eqns))):
        eqn, act = eqns[i], acts[i]
        keys = [out_key(eqn, i, j) for j in range(len(eqn.outvars))]
        has_residuals = False
        if act is not None:
            positions, outputs = tape_reads(eqn, act, linear)
            needed.update(eqn.invars[k] for k in positions if not jx.is_literal(eqn.invars[k]))
            if outputs:
                needed.update(keys)
            has_residuals = isinstance(vjp_rule(jx.name(eqn), linear), HigherOrderVJP)
        wanted = [k for k in keys if k in needed]
        if not wanted and not has_residuals:
            continue
        if jx.policy_saves(policy, eqn):
            saved.update(wanted)
            if has_residuals:
                saved_subs.add(i)
        else:
            recompute.add(i)
            needed.update(a for a in eqn.invars if not jx.is_literal(a))
    saved.update(v for v in c.jaxpr.invars if v in needed)
    return CheckpointPlan(
        tuple(acts),
        frozenset(active),
        frozenset(saved),
        frozenset(saved_subs),
        frozenset(recompute),
    )


def _checkpoint_forward(c: jx.Closed, args: Sequence, plan: CheckpointPlan, linear, max_loop_steps):
    """The forward sweep of a checkpointed jaxpr: every equation evaluated, and recorded
    only the values and residuals that ``plan`` saves."""
    env, values, subs = {}, {}, {}
    read = lambda a: jx.literal_value(a) if jx.is_literal(a) else env[a]
    for var, value in zip(c.jaxpr.constvars, c.consts, strict=True):
        env[var] = value
    for var, value in zip(c.jaxpr.invars, args, strict=True):
        env[var] = value
        if var in plan.saved:
            values[var] = value
    for i, eqn in enumerate(c.jaxpr.eqns):
        ins = [read(a) for a in eqn.invars]
        act = plan.active[i]
        if i in plan.saved_subs and act is not None:
            outs, sub = forward_equation(eqn, ins, list(act), linear, max_loop_steps)
            if sub is not None:
                subs[i] = sub
        else:
            outs = jx.bind(eqn, ins)
        for j, (var, value) in enumerate(zip(eqn.outvars, outs, strict=True)):
            key = out_key(eqn, i, j)
            if key in plan.saved:
                values[key] = value
            if not jx.is_drop(var):
                env[var] = value
    tape = Tape(values, subs, plan.active_vars, linear, max_loop_steps)
    return [read(a) for a in c.jaxpr.outvars], tape


def _recompute(c: jx.Closed, plan: CheckpointPlan, saved: Tape, linear, max_loop_steps) -> Tape:
    """The tape of a checkpointed jaxpr, from what `_checkpoint_forward` saved: the
    equations ``plan`` recomputes run again (higher-order ones recording their residuals),
    the saved values and residuals are reused, and the tape records what the rules read."""
    env = dict(saved.values)
    values, subs = {}, {}
    read = lambda a: jx.literal_value(a) if jx.is_literal(a) else env[a]
    for var, value in zip(c.jaxpr.constvars, c.consts, strict=True):
        env[var] = value
    for i, eqn in enumerate(c.jaxpr.eqns):
        act = plan.active[i]
        if i in plan.recompute:
            ins = [read(a) for a in eqn.invars]
            if act is None:
                outs = jx.bind(eqn, ins)
            else:
                outs, sub = forward_equation(eqn, ins, list(act), linear, max_loop_steps)
                if sub is not None:
                    subs[i] = sub
            env.update((out_key(eqn, i, j), value) for j, value in enumerate(outs))
        elif i in saved.subs:
            subs[i] = saved.subs[i]
        if act is not None:
            positions, outputs = tape_reads(eqn, act, linear)
            read_in = [eqn.invars[k] for k in positions if not jx.is_literal(eqn.invars[k])]
            values.update((a, env[a]) for a in read_in)
            if outputs:
                keys = [out_key(eqn, i, j) for j in range(len(eqn.outvars))]
                values.update((k, env[k]) for k in keys)
    return Tape(values, subs, plan.active_vars, linear, max_loop_steps)


def forward_equation(
    eqn, ins: list, act: list[bool], linear: bool, max_loop_steps: int | LoopBound | None
) -> tuple[list, Any]:
    """Outputs of an active equation, and the residuals its VJP rule keeps (or None): those
    of a higher-order primitive's forward part, none for a first-order primitive (its rule
    reads the equation's inputs and outputs on the tape)."""
    rule = vjp_rule(jx.name(eqn), linear)
    if isinstance(rule, HigherOrderVJP):
        return rule.forward(interpreter(linear, max_loop_steps), eqn, ins, act)
    return jx.bind(eqn, ins), None


def backward_sweep(c: jx.Closed, tape: Tape, cts_out: Sequence, given=None, record=None) -> list:
    """Adjoints of the jaxpr's inputs (``None`` for zero) from those of its outputs.

    ``given`` maps variables left out of the tape (``skip``) to their values. ``record``, a
    dict, receives the final adjoint of every variable (for `jaxls.ad.trace`).
    """
    given = given or {}
    ct = {}

    def value(a):
        if jx.is_literal(a):
            return jx.literal_value(a)
        return tape.values[a] if a in tape.values else given[a]

    for var, c_out in zip(c.jaxpr.outvars, cts_out, strict=True):
        if c_out is not None and not jx.is_literal(var) and var in tape.active:
            ct[var] = add(ct.get(var), c_out)
    for i in reversed(range(len(c.jaxpr.eqns))):
        eqn = c.jaxpr.eqns[i]
        cts = [None if jx.is_drop(v) else ct.pop(v, None) for v in eqn.outvars]
        if record is not None:
            record.update((v, x) for v, x in zip(eqn.outvars, cts, strict=True) if x is not None)
        if all(x is None for x in cts):
            continue
        act = [not jx.is_literal(a) and a in tape.active for a in eqn.invars]
        if not any(act):
            continue
        positions, outputs = tape_reads(eqn, act, tape.linear)
        ins = [
            value(a) if k in positions or jx.is_literal(a) else unrecorded(eqn, a, f"input {k}")
            for k, a in enumerate(eqn.invars)
        ]
        outs = [
            tape.values[out_key(eqn, i, j)] if outputs else unrecorded(eqn, v, f"output {j}")
            for j, v in enumerate(eqn.outvars)
        ]
        cts_in = backward_equation(eqn, tape.subs.get(i), ins, outs, act, cts, tape)
        for a, is_active, c_in in zip(eqn.invars, act, cts_in, strict=True):
            if is_active and c_in is not None:
                if jx.is_symbolic_zero(c_in):
                    continue
                c_in = jnp.asarray(c_in)
                if c_in.dtype != a.aval.dtype:
                    c_in = c_in.astype(a.aval.dtype)
                ct[a] = add(ct.get(a), c_in)
    if record is not None:
        record.update((v, ct[v]) for v in c.jaxpr.invars if v in ct)
    return [None if jx.is_literal(v) else ct.get(v) for v in c.jaxpr.invars]


def unrecorded(eqn, var, what: str) -> Unrecorded:
    """What a VJP rule is handed for a value of ``eqn`` it declares unread."""
    aval = jx.aval(var)
    return Unrecorded(aval.shape, aval.dtype, f"{what} of `{jx.name(eqn)}`")


def backward_equation(eqn, residuals, ins, outs, act, cts, tape: Tape) -> list:
    """Adjoints of one equation's inputs from those of its outputs (``cts``), by the rules
    that recorded ``tape``. A rule that computes with a value it declared unread raises
    `registry.UnrecordedValueError`."""
    name = jx.name(eqn)
    rule = vjp_rule(name, tape.linear)
    if rule is None:
        raise unsupported(name, "VJP")
    try:
        if isinstance(rule, HigherOrderVJP):
            rules = interpreter(tape.linear, tape.max_loop_steps)
            return rule.backward(rules, eqn, residuals, ins, outs, act, cts)
        params = (
            dict(eqn.params, active=tuple(act)) if reads_depend_on_activity(name) else eqn.params
        )
        if jx.multiple_results(eqn):
            return list(rule(cts, tuple(ins), outs, **params))
        return list(rule(cts[0], tuple(ins), outs[0], **params))
    except TypeError as err:
        # JAX's own error for a placeholder passed to an operation names its class.
        missing = [x.what for x in (*ins, *outs) if isinstance(x, Unrecorded)]
        if isinstance(err, UnrecordedValueError) or not missing or "Unrecorded" not in str(err):
            raise
        raise UnrecordedValueError(
            f"jaxls.ad: the VJP rule of `{name}` computed with a value it declares unread "
            f"(the `reads=` of its `defvjp`), which reverse mode's tape does not hold; it "
            f"was handed placeholders for {', '.join(missing)}. Declare the value read."
        ) from err


def transpose(
    c: jx.Closed,
    args: Sequence,
    active: Sequence[bool],
    cts: Sequence,
    *,
    max_loop_steps: int | LoopBound | None = None,
) -> list:
    """Adjoints of the active ``args`` of a jaxpr linear in them (the tangent part of a
    ``custom_jvp`` rule, its primals inactive): the two sweeps, the rules of its linear part
    first (a ``custom_jvp_call`` there is transposed through its function)."""
    _, tape = forward_sweep(c, args, active, linear=True, max_loop_steps=max_loop_steps)
    return backward_sweep(c, tape, cts)


@functools.cache
def interpreter(
    linear: bool = False, max_loop_steps: int | LoopBound | None = None
) -> ReverseInterpreter:
    """What the VJP rules of higher-order primitives are handed: the sweeps over the linear
    part of a ``custom_jvp`` rule (``linear``: the jaxprs they run are linear part too; the
    backward sweep reads the part from the tape), with the bound on ``while`` loops: an
    int, or a `LoopBound` (the bound and the checkpoints of the loops' reverse mode)."""
    bound = max_loop_steps if isinstance(max_loop_steps, LoopBound) else LoopBound(max_loop_steps)
    return ReverseInterpreter(
        evaluate=evaluate,
        forward=functools.partial(forward_sweep, linear=linear, max_loop_steps=max_loop_steps),
        backward=backward_sweep,
        activity=activity,
        transpose=functools.partial(transpose, max_loop_steps=max_loop_steps),
        max_loop_steps=bound.steps,
        loop_checkpoints=bound.checkpoints,
    )


INTERPRETER = interpreter(linear=False)
"""What the VJP rules of higher-order primitives are handed (no bound on ``while`` loops)."""

LINEAR_INTERPRETER = interpreter(linear=True)
"""What they are handed in the linear part of a ``custom_jvp`` rule."""


__all__ = [
    "INTERPRETER",
    "LINEAR_INTERPRETER",
    "Tape",
    "activity",
    "backward_sweep",
    "forward_sweep",
    "interpreter",
    "transpose",
]
