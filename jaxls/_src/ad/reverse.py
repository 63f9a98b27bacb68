"""Reverse mode: a forward sweep that records the values the backward sweep needs (the
tape), then a backward sweep that accumulates adjoints equation by equation, last first.

Only *active* values (floating values that depend on a differentiated input) get adjoints;
the tape holds the inputs and outputs of the equations that touch them. A `lax.scan` keeps
the tape of every iteration (stacked by the scan itself), so its backward sweep reads the
stored values instead of recomputing them; `checkpoint` (``remat``) stores only its inputs
and recomputes the rest during the backward sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.forward import evaluate, unsupported
from jaxls._src.ad.registry import add, instantiate, nondifferentiable, vjp_rules


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
    jaxprs it calls (keyed by equation index). A pytree: `lax.scan` can stack it."""

    def __init__(self, values: dict, subs: dict, active: frozenset):
        self.values, self.subs, self.active = values, subs, active

    def tree_flatten(self):
        keys, subkeys = tuple(self.values), tuple(self.subs)
        children = ([self.values[k] for k in keys], [self.subs[k] for k in subkeys])
        return children, (keys, subkeys, self.active)

    @classmethod
    def tree_unflatten(cls, aux, children):
        keys, subkeys, active = aux
        values, subs = children
        values = dict(zip(keys, values, strict=True))
        return cls(values, dict(zip(subkeys, subs, strict=True)), active)


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


def forward_sweep(c: jx.Closed, args: Sequence, active_in: Sequence[bool], skip=frozenset()):
    """Evaluate the jaxpr, recording what the backward sweep needs: ``(outs, tape)``.

    ``skip``: input variables not to record (loop-invariant constants of a scan body, which
    the backward sweep is given again).
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
            outs, sub = forward_equation(eqn, ins, act)
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
    return [read(a) for a in c.jaxpr.outvars], Tape(values, subs, frozenset(active))


def forward_equation(eqn, ins: list, act: list[bool]) -> tuple[list, Any]:
    """Outputs of an active equation, and the sub-tape it needs (or None)."""
    name = jx.name(eqn)
    if name in jx.CALLS:
        return forward_sweep(jx.call_body(eqn), ins, act)
    if name in jx.SCAN:
        return forward_scan(eqn, ins, act)
    if name in jx.CUSTOM_VJP:
        return forward_custom_vjp(eqn, ins)
    if name in jx.WHILE:
        raise NotImplementedError(
            "jaxls.ad: reverse mode through `lax.while_loop` is undefined (its trip count is "
            "not known in advance; JAX refuses it too). Use forward mode (`jaxls.ad.jvp`, "
            "`jacfwd`), or `lax.scan` / `lax.fori_loop` with static bounds."
        )
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
        cts_in = backward_equation(eqn, tape.subs.get(i), ins, outs, act, cts)
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


def backward_equation(eqn, sub, ins, outs, act, cts) -> list:
    name = jx.name(eqn)
    if name in jx.CALLS:
        return backward_sweep(jx.call_body(eqn), sub, cts)
    if name in jx.REMAT:
        body = jx.call_body(eqn)
        _, recomputed = forward_sweep(body, jx.optimization_barrier(ins), act)
        return backward_sweep(body, recomputed, cts)
    if name in jx.COND:
        return backward_cond(eqn, ins, act, cts)
    if name in jx.SCAN:
        return backward_scan(eqn, sub, ins, act, cts)
    if name in jx.CUSTOM_JVP:
        return backward_custom_jvp(eqn, ins, act, cts)
    if name in jx.CUSTOM_VJP:
        return backward_custom_vjp(eqn, sub, outs, cts)
    if name in jx.LINEAR_SOLVE:
        from jaxls._src.ad.linear_solve import vjp_linear_solve

        return vjp_linear_solve(eqn, ins, outs, act, cts)
    rule = vjp_rules.get(name)
    if rule is None:
        raise unsupported(name, "VJP")
    if jx.multiple_results(eqn):
        return list(rule(cts, tuple(ins), outs, **eqn.params))
    return list(rule(cts[0], tuple(ins), outs[0], **eqn.params))


def vjp_closed(c: jx.Closed, args: Sequence, active_in: Sequence[bool], cts_out: Sequence):
    """Forward then backward sweep: the adjoints of ``args``."""
    _, tape = forward_sweep(c, args, active_in)
    return backward_sweep(c, tape, cts_out)


def float_cts(values, cts, active=None):
    """Materialise the zero adjoints of (active) floating values; others stay ``None``."""
    active = [True] * len(values) if active is None else active
    return [
        instantiate(ct, v) if a and jnp.issubdtype(jnp.result_type(v), jnp.inexact) else None
        for v, ct, a in zip(values, cts, active, strict=True)
    ]


def backward_cond(eqn, ins, act, cts):
    """The taken branch's forward and backward sweeps, inside a `lax.switch` (the branch's
    intermediate values are recomputed: the cond stores only its operands)."""
    index, ops, op_act = ins[0], ins[1:], act[1:]
    outs_like = [jnp.zeros(v.aval.shape, v.aval.dtype) for v in eqn.outvars]
    cts = float_cts(outs_like, cts)

    def branch(c):
        def run(ops, cts):
            return float_cts(ops, vjp_closed(c, ops, op_act, cts), op_act)

        return run

    cts_in = jax.lax.switch(index, [branch(c) for c in jx.cond_branches(eqn)], ops, cts)
    return [None, *cts_in]


def carry_activity(spec: jx.ScanSpec, act: list[bool]) -> list[bool]:
    """The fixed point: a carry is active if its initial value is, or an iteration makes it."""
    k, n = spec.num_consts, spec.num_carry
    act = list(act)
    while True:
        out = activity(spec.body, act)
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


def forward_scan(eqn, ins, act):
    spec = jx.scan_spec(eqn)
    k, n = spec.num_consts, spec.num_carry
    act = carry_activity(spec, act)
    consts, carry, xs = ins[:k], ins[k : k + n], ins[k + n :]
    skip = frozenset(spec.body.jaxpr.invars[:k])

    def body(c, x):
        outs, tape = forward_sweep(spec.body, [*consts, *c, *x], act, skip)
        return outs[:n], (outs[n:], tape)

    carry, (ys, tapes) = jax.lax.scan(
        body, carry, xs, length=spec.length, reverse=spec.reverse, unroll=spec.unroll
    )
    return [*carry, *ys], ScanTape(tapes, tuple(act))


def zeros_of(var, drop_leading: bool = False):
    shape = var.aval.shape[1:] if drop_leading else var.aval.shape
    return jnp.zeros(shape, var.aval.dtype)


def backward_scan(eqn, sub: ScanTape, ins, act, cts):
    """A reverse scan over the stored tapes: iteration ``i``'s backward sweep reads the
    values iteration ``i`` of the forward scan recorded."""
    spec = jx.scan_spec(eqn)
    act = list(sub.act)
    k, n = spec.num_consts, spec.num_carry
    consts, carry = ins[:k], ins[k : k + n]
    given = dict(zip(spec.body.jaxpr.invars[:k], consts, strict=True))
    x_slices = [zeros_of(v, drop_leading=True) for v in eqn.invars[k + n :]]
    ct_carry = float_cts(carry, cts[:n], act[k : k + n])
    ct_consts = float_cts(consts, [None] * k, act[:k])
    ct_ys = [
        zeros_of(v) if c is None and is_float_var(v) else c
        for v, c in zip(eqn.outvars[n:], cts[n:], strict=True)
    ]

    def body(state, slices):
        ct_c, acc = state
        ct_y, tape = slices
        cts_in = backward_sweep(spec.body, tape, [*ct_c, *ct_y], given)
        acc = [None if a is None else add(a, c) for a, c in zip(acc, cts_in[:k], strict=True)]
        ct_c = float_cts(carry, cts_in[k : k + n], act[k : k + n])
        ct_x = float_cts(x_slices, cts_in[k + n :], act[k + n :])
        return (ct_c, acc), ct_x

    (ct_carry, ct_consts), ct_xs = jax.lax.scan(
        body,
        (ct_carry, ct_consts),
        (ct_ys, sub.tapes),
        length=spec.length,
        reverse=not spec.reverse,
        unroll=spec.unroll,
    )
    return [*ct_consts, *ct_carry, *ct_xs]


def backward_custom_jvp(eqn, ins, act, cts):
    """The author's JVP is linear in the tangents: its adjoint, by a reverse sweep over it
    with the primals held fixed, is the VJP (jaxls transposes it itself)."""
    _, num_consts, rule, out_zeros = jx.custom_jvp_parts(eqn)
    primals = ins[num_consts:]
    tangents = [jnp.zeros(jnp.shape(p), jnp.result_type(p)) for p in primals]
    act_rule = [False] * len(primals) + list(act[num_consts:])
    cts_rule = [None] * len(eqn.outvars)
    cts_rule += [c for c, zero in zip(cts, out_zeros, strict=True) if not zero]
    cts_in = vjp_closed(rule, [*primals, *tangents], act_rule, cts_rule)
    return [None] * num_consts + cts_in[len(primals) :]


def forward_custom_vjp(eqn, ins):
    """Run the author's ``fwd``: the outputs, and the residuals its ``bwd`` will need."""
    _, num_consts, fwd, input_fwds, num_res, _ = jx.custom_vjp_parts(eqn)
    args = ins[num_consts:]
    res_and_outs = evaluate(fwd, args)
    num_res_out = num_res - sum(f is not None for f in input_fwds)
    computed = iter(res_and_outs[:num_res_out])
    residuals = [next(computed) if f is None else args[f] for f in input_fwds]
    return res_and_outs[num_res_out:], residuals


def backward_custom_vjp(eqn, residuals, outs, cts):
    _, num_consts, _, _, _, bwd = jx.custom_vjp_parts(eqn)
    cts = [instantiate(c, o) for c, o in zip(cts, outs, strict=True)]
    cts_in = bwd(*residuals, *cts)
    return [None] * num_consts + [None if jx.is_symbolic_zero(c) else c for c in cts_in]


__all__ = ["Tape", "activity", "backward_sweep", "forward_sweep", "vjp_closed"]
