"""Rules of the control-flow primitives ``cond``, ``scan`` and ``while``.

Each rule is handed the interpreter evaluating the equation (`registry.ForwardInterpreter`
or `registry.ReverseInterpreter`) and runs the branches or the loop body through it, inside
the same control-flow primitive (`lax.switch`, `lax.scan`, `lax.while_loop`), so the
derivative is ordinary JAX again.

* ``cond``: forward mode runs the taken branch's JVP; reverse mode stores only the operands
  and recomputes the taken branch's forward sweep before its backward sweep.
* ``scan``: forward mode scans the body's JVP; reverse mode keeps the tape of every iteration
  (stacked by the forward scan) and reads it back in a reverse scan, nothing recomputed.
* ``while``: forward mode loops on the body's JVP; reverse mode is refused, as JAX refuses
  it (the trip count is not known in advance).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import add, defjvp_higher_order, defvjp_higher_order, instantiate


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


@defvjp_higher_order(*jx.COND)
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
    k, n = spec.num_consts, spec.num_carry
    act = list(act)
    while True:
        out = interpreter.activity(spec.body, act)
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


@defvjp_higher_order(*jx.SCAN, forward=_scan_forward)
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


def _while_vjp_refused(*_):
    raise NotImplementedError(
        "jaxls.ad: reverse mode through `lax.while_loop` is undefined (its trip count is "
        "not known in advance; JAX refuses it too). Use forward mode (`jaxls.ad.jvp`, "
        "`jacfwd`), or `lax.scan` / `lax.fori_loop` with static bounds."
    )


# Refused in the forward sweep already, as soon as the loop meets an active input.
defvjp_higher_order(*jx.WHILE, forward=_while_vjp_refused)(_while_vjp_refused)


__all__ = ["ScanTape", "carry_activity", "float_cts", "float_zero_tangents"]
