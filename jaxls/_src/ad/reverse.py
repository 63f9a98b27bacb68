"""Reverse mode: a forward sweep that records the values the backward sweep needs (the
tape), then a backward sweep that accumulates adjoints equation by equation, last first.

Only *active* values (floating values that depend on a differentiated input) get adjoints;
the tape holds the inputs and outputs of the equations that touch them, and the residuals
the rules of higher-order primitives keep (`registry.HigherOrderVJP`, handed `INTERPRETER`):
a `lax.scan` keeps the tape of every iteration (stacked by the scan itself), so its backward
sweep reads the stored values instead of recomputing them; `checkpoint` (``remat``) stores
only its inputs and recomputes the rest during the backward sweep.

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
sweeps run and recorded on the tape, like the linear part.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

import jaxls._src.ad.rules  # noqa: F401  (fills the rule tables)
from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.forward import evaluate, unsupported
from jaxls._src.ad.registry import HigherOrderVJP, ReverseInterpreter, add, nondifferentiable
from jaxls._src.ad.registry import vjp_rule


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
    """Recorded values of one jaxpr's forward sweep, keyed by variable, plus the tapes of the
    jaxprs it calls (keyed by equation index), whether the sweep was over the linear part of
    a ``custom_jvp`` rule (which rules recorded it) and its bound on ``while`` loops. A
    pytree: `lax.scan` can stack it."""

    def __init__(
        self,
        values: dict,
        subs: dict,
        active: frozenset,
        linear: bool = False,
        max_loop_steps: int | None = None,
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


def out_key(eqn, index: int, j: int):
    var = eqn.outvars[j]
    return ("dropped", index, j) if jx.is_drop(var) else var


def forward_sweep(
    c: jx.Closed,
    args: Sequence,
    active_in: Sequence[bool],
    skip=frozenset(),
    *,
    linear: bool = False,
    max_loop_steps: int | None = None,
):
    """Evaluate the jaxpr, recording what the backward sweep needs: ``(outs, tape)``.

    ``skip``: input variables not to record (loop-invariant constants of a scan body, which
    the backward sweep is given again). ``linear``: the jaxpr is the linear part of a
    ``custom_jvp`` rule (`transpose`). ``max_loop_steps``: the most iterations of a
    ``while`` loop to record (None: reverse mode through one is refused).
    """
    env, values, subs = {}, {}, {}
    read = lambda a: jx.literal_value(a) if jx.is_literal(a) else env[a]
    active = set()
    for var, value in zip(c.jaxpr.constvars, c.consts, strict=True):
        env[var] = value
    for var, value, a in zip(c.jaxpr.invars, args, active_in, strict=True):
        env[var] = value
        if a and is_float_var(var):
            active.add(var)
    for i, eqn in enumerate(c.jaxpr.eqns):
        ins = [read(a) for a in eqn.invars]
        act = [not jx.is_literal(a) and a in active for a in eqn.invars]
        if not any(act) or jx.name(eqn) in nondifferentiable:
            outs = jx.bind(eqn, ins)
        else:
            outs, sub = forward_equation(eqn, ins, act, linear, max_loop_steps)
            if sub is not None:
                subs[i] = sub
            for a, value in zip(eqn.invars, ins, strict=True):
                if not jx.is_literal(a) and a not in skip:
                    values[a] = value
            for j, value in enumerate(outs):
                values[out_key(eqn, i, j)] = value
            active.update(differentiable_outs(eqn))
        for var, value in zip(eqn.outvars, outs, strict=True):
            if not jx.is_drop(var):
                env[var] = value
    tape = Tape(values, subs, frozenset(active), linear, max_loop_steps)
    return [read(a) for a in c.jaxpr.outvars], tape


def forward_equation(
    eqn, ins: list, act: list[bool], linear: bool, max_loop_steps: int | None
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
        ins = [value(a) for a in eqn.invars]
        outs = [tape.values[out_key(eqn, i, j)] for j in range(len(eqn.outvars))]
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


def backward_equation(eqn, residuals, ins, outs, act, cts, tape: Tape) -> list:
    """Adjoints of one equation's inputs from those of its outputs (``cts``), by the rules
    that recorded ``tape``."""
    rule = vjp_rule(jx.name(eqn), tape.linear)
    if rule is None:
        raise unsupported(jx.name(eqn), "VJP")
    if isinstance(rule, HigherOrderVJP):
        rules = interpreter(tape.linear, tape.max_loop_steps)
        return rule.backward(rules, eqn, residuals, ins, outs, act, cts)
    if jx.multiple_results(eqn):
        return list(rule(cts, tuple(ins), outs, **eqn.params))
    return list(rule(cts[0], tuple(ins), outs[0], **eqn.params))


def transpose(
    c: jx.Closed,
    args: Sequence,
    active: Sequence[bool],
    cts: Sequence,
    *,
    max_loop_steps: int | None = None,
) -> list:
    """Adjoints of the active ``args`` of a jaxpr linear in them (the tangent part of a
    ``custom_jvp`` rule, its primals inactive): the two sweeps, the rules of its linear part
    first (a ``custom_jvp_call`` there is transposed through its function)."""
    _, tape = forward_sweep(c, args, active, linear=True, max_loop_steps=max_loop_steps)
    return backward_sweep(c, tape, cts)


@functools.cache
def interpreter(linear: bool = False, max_loop_steps: int | None = None) -> ReverseInterpreter:
    """What the VJP rules of higher-order primitives are handed: the sweeps over the linear
    part of a ``custom_jvp`` rule (``linear``: the jaxprs they run are linear part too; the
    backward sweep reads the part from the tape), with the bound on ``while`` loops."""
    return ReverseInterpreter(
        evaluate=evaluate,
        forward=functools.partial(forward_sweep, linear=linear, max_loop_steps=max_loop_steps),
        backward=backward_sweep,
        activity=activity,
        transpose=functools.partial(transpose, max_loop_steps=max_loop_steps),
        max_loop_steps=max_loop_steps,
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
