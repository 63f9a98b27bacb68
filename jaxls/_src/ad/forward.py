"""Forward mode: evaluate a jaxpr on (primal, tangent) pairs, one JVP rule per equation.

Tangents are ``None`` when they are symbolic zeros (the value does not depend on the
differentiated inputs): equations whose inputs all have zero tangents are only evaluated.
Every primitive's rule, higher-order ones included, is looked up in `registry.jvp_rules`;
the rule of a higher-order primitive is handed `INTERPRETER` to evaluate its jaxprs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jaxls._src.ad.rules  # noqa: F401  (fills the rule tables)
from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import ForwardInterpreter, HigherOrderJVP, jvp_rules


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


def jvp_closed(
    c: jx.Closed, primals: Sequence, tangents: Sequence, record: Callable | None = None
) -> tuple[list, list]:
    """Push ``tangents`` through the jaxpr: ``(outs, tangent_outs)``.

    ``record(eqn, outs, tangent_outs)``, if given, is called on each equation of ``c`` (not
    of the jaxprs it calls) once evaluated, with the tangents as stored (``None`` for
    integer outputs): `jaxls.ad.trace` builds its graph with it.
    """
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
        if all(t is None for t in tins) or not any(jx.is_float_aval(v.aval) for v in eqn.outvars):
            # Nothing to differentiate: no input tangent, or no floating output (integer
            # results, or none at all, as `jax.debug.callback`'s): evaluated only.
            outs, touts = jx.bind(eqn, ins), [None] * len(eqn.outvars)
        else:
            outs, touts = jvp_equation(eqn, ins, tins)
        touts = [
            t if jx.is_float_aval(var.aval) else None
            for var, t in zip(eqn.outvars, touts, strict=True)
        ]
        if record is not None:
            record(eqn, outs, touts)
        for var, value, tangent in zip(eqn.outvars, outs, touts, strict=True):
            if not jx.is_drop(var):
                env[var], tenv[var] = value, tangent
    outs = [read(a) for a in c.jaxpr.outvars]
    return [o for o, _ in outs], [t for _, t in outs]


def jvp_equation(eqn, ins: list, tins: list) -> tuple[list, list]:
    """Outputs and output tangents of one equation with a nonzero input tangent."""
    rule = jvp_rules.get(jx.name(eqn))
    if rule is None:
        raise unsupported(jx.name(eqn), "JVP")
    if isinstance(rule, HigherOrderJVP):
        return rule.rule(INTERPRETER, eqn, ins, tins)
    outs = jx.bind(eqn, ins)
    out = outs if jx.multiple_results(eqn) else outs[0]
    tout = rule(tuple(ins), tuple(tins), out, **eqn.params)
    return outs, list(tout) if jx.multiple_results(eqn) else [tout]


INTERPRETER = ForwardInterpreter(evaluate=evaluate, jvp=jvp_closed)
"""What the JVP rules of higher-order primitives are handed."""


__all__ = ["INTERPRETER", "evaluate", "jvp_closed", "unsupported"]
