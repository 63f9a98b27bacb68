"""Forward mode: evaluate a jaxpr on (primal, tangent) pairs, one JVP rule per equation.

Tangents are ``None`` when they are symbolic zeros (the value does not depend on the
differentiated inputs): equations whose inputs all have zero tangents are only evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import instantiate, jvp_rules


def unsupported(name: str, mode: str) -> NotImplementedError:
    return NotImplementedError(
        f"jaxls.ad: no {mode} rule for the primitive `{name}`. Differentiate this function "
        f"with `jax.{'jvp' if mode == 'JVP' else 'vjp'}` instead, or open an issue naming "
        f"`{name}`."
    )


def evaluate(c: jx.Closed, args: Sequence) -> list:
    """Evaluate a jaxpr equation by equation (no derivative)."""
    env = {}
    read = lambda a: jx.literal_value(a) if jx.is_literal(a) else env[a]
    for var, value in zip(c.jaxpr.constvars, c.consts, strict=True):
        env[var] = value
    for var, value in zip(c.jaxpr.invars, args, strict=True):
        env[var] = value
    for eqn in c.jaxpr.eqns:
        outs = jx.bind(eqn, [read(a) for a in eqn.invars])
        for var, value in zip(eqn.outvars, outs, strict=True):
            if not jx.is_drop(var):
                env[var] = value
    return [read(a) for a in c.jaxpr.outvars]


def float_zero_tangents(values, tangents):
    """Materialise the zero tangents of floating values; integers keep ``None``."""
    return [
        instantiate(t, v) if jnp.issubdtype(jnp.result_type(v), jnp.inexact) else None
        for v, t in zip(values, tangents, strict=True)
    ]


def jvp_closed(c: jx.Closed, primals: Sequence, tangents: Sequence) -> tuple[list, list]:
    """Push ``tangents`` through the jaxpr: ``(outs, tangent_outs)``."""
    env, tenv = {}, {}

    def read(a):
        return (jx.literal_value(a), None) if jx.is_literal(a) else (env[a], tenv.get(a))

    for var, value in zip(c.jaxpr.constvars, c.consts, strict=True):
        env[var] = value
    for var, value, tangent in zip(c.jaxpr.invars, primals, tangents, strict=True):
        env[var], tenv[var] = value, tangent
    for eqn in c.jaxpr.eqns:
        pairs = [read(a) for a in eqn.invars]
        ins, tins = [p for p, _ in pairs], [t for _, t in pairs]
        if all(t is None for t in tins):
            outs, touts = jx.bind(eqn, ins), [None] * len(eqn.outvars)
        else:
            outs, touts = jvp_equation(eqn, ins, tins)
        for var, value, tangent in zip(eqn.outvars, outs, touts, strict=True):
            if not jx.is_drop(var):
                env[var], tenv[var] = value, tangent if jx.is_float_aval(var.aval) else None
    outs = [read(a) for a in c.jaxpr.outvars]
    return [o for o, _ in outs], [t for _, t in outs]


def jvp_equation(eqn, ins: list, tins: list) -> tuple[list, list]:
    name = jx.name(eqn)
    if name in jx.CALLS or name in jx.REMAT:
        return jvp_closed(jx.call_body(eqn), ins, tins)
    if name in jx.COND:
        return jvp_cond(eqn, ins, tins)
    if name in jx.SCAN:
        return jvp_scan(eqn, ins, tins)
    if name in jx.WHILE:
        return jvp_while(eqn, ins, tins)
    if name in jx.CUSTOM_JVP:
        return jvp_custom_jvp(eqn, ins, tins)
    if name in jx.CUSTOM_VJP:
        raise NotImplementedError(
            "jaxls.ad: forward mode through a `jax.custom_vjp` function is undefined (JAX "
            "refuses it too): use reverse mode (`jaxls.ad.vjp`, `grad`, `jacrev`)."
        )
    if name in jx.LINEAR_SOLVE:
        from jaxls._src.ad.linear_solve import jvp_linear_solve

        return jvp_linear_solve(eqn, ins, tins)
    rule = jvp_rules.get(name)
    if rule is None:
        raise unsupported(name, "JVP")
    outs = jx.bind(eqn, ins)
    out = outs if jx.multiple_results(eqn) else outs[0]
    tout = rule(tuple(ins), tuple(tins), out, **eqn.params)
    return outs, list(tout) if jx.multiple_results(eqn) else [tout]


def jvp_cond(eqn, ins, tins):
    index, ops, tops = ins[0], ins[1:], float_zero_tangents(ins[1:], tins[1:])

    def branch(c):
        def run(ops, tops):
            outs, touts = jvp_closed(c, ops, tops)
            return outs, float_zero_tangents(outs, touts)

        return run

    outs, touts = jax.lax.switch(index, [branch(c) for c in jx.cond_branches(eqn)], ops, tops)
    return list(outs), list(touts)


def jvp_scan(eqn, ins, tins):
    spec = jx.scan_spec(eqn)
    k, n = spec.num_consts, spec.num_carry
    consts, carry, xs = ins[:k], ins[k : k + n], ins[k + n :]
    tconsts, tcarry, txs = tins[:k], float_zero_tangents(carry, tins[k : k + n]), tins[k + n :]

    def body(state, slices):
        (c, tc), (x, tx) = state, slices
        outs, touts = jvp_closed(spec.body, [*consts, *c, *x], [*tconsts, *tc, *tx])
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


def jvp_while(eqn, ins, tins):
    spec = jx.while_spec(eqn)
    a, b = spec.cond_nconsts, spec.body_nconsts
    cond_consts, body_consts, carry = ins[:a], ins[a : a + b], ins[a + b :]
    tbody, tcarry = tins[a : a + b], float_zero_tangents(carry, tins[a + b :])

    def cond(state):
        return evaluate(spec.cond, [*cond_consts, *state[0]])[0]

    def body(state):
        outs, touts = jvp_closed(spec.body, [*body_consts, *state[0]], [*tbody, *state[1]])
        return outs, float_zero_tangents(outs, touts)

    carry, tcarry = jax.lax.while_loop(cond, body, (carry, tcarry))
    return list(carry), list(tcarry)


def jvp_custom_jvp(eqn, ins, tins):
    _, num_consts, rule, out_zeros = jx.custom_jvp_parts(eqn)
    if any(t is not None for t in tins[:num_consts]):
        raise NotImplementedError(
            "jaxls.ad: a custom_jvp function closed over a differentiated value"
        )
    primals = ins[num_consts:]
    tangents = [instantiate(t, p) for p, t in zip(primals, tins[num_consts:], strict=True)]
    res = evaluate(rule, [*primals, *tangents])
    num_out = len(eqn.outvars)
    outs, nonzero = res[:num_out], iter(res[num_out:])
    touts = [None if zero else next(nonzero) for zero in out_zeros]
    return outs, touts


__all__ = ["evaluate", "jvp_closed"]
