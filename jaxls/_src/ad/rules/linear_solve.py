"""Rules of ``custom_linear_solve`` (behind `jnp.linalg.solve` and `inv`).

``x = A^{-1} b`` where ``A`` is given by a ``matvec`` jaxpr (with constants, the matrix)
and its inverse by a ``solve`` jaxpr. Tangent: ``dx = A^{-1} (db - dA x)``, with ``dA x``
the tangent of ``matvec`` with respect to its constants at fixed ``x``. Adjoint:
``ct_b = A^{-T} ct_x`` and the matvec constants get ``-(d/dconsts <ct_b, A x>)``, a reverse
sweep over ``matvec`` with ``x`` held fixed. ``A^{-T}`` is applied as the same primitive
with transposed roles, so a second derivative still sees ``A``. Both rules are handed the
interpreter evaluating the equation and run ``matvec`` (and ``solve``) through it.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import defjvp_higher_order, defvjp_higher_order


def split(eqn, ins):
    """``(spec, (matvec, vecmat, solve, transpose_solve) constants, b)`` from the inputs."""
    spec = jx.linear_solve_spec(eqn)
    lengths = spec.const_lengths
    sizes = [lengths.matvec, lengths.vecmat, lengths.solve, lengths.transpose_solve]
    groups, start = [], 0
    for size in sizes:
        groups.append(ins[start : start + size])
        start += size
    return spec, groups, ins[start:]


@defjvp_higher_order(*jx.LINEAR_SOLVE)
def _linear_solve_jvp(interpreter, eqn, primals, tangents):
    spec, (mv, _, _, _), b = split(eqn, primals)
    _, (tmv, _, _, _), tb = split(eqn, tangents)
    x = jx.bind(eqn, primals)
    rhs = [jnp.zeros_like(xi) if t is None else t for xi, t in zip(x, tb, strict=True)]
    if any(t is not None for t in tmv):
        zeros = [None] * len(x)
        _, dax = interpreter.jvp(spec.matvec, [*mv, *x], [*tmv, *zeros])
        rhs = [r if d is None else r - d for r, d in zip(rhs, dax, strict=True)]
    num_consts = len(primals) - len(b)
    dx = jx.bind(eqn, [*primals[:num_consts], *rhs])
    return x, dx


@defvjp_higher_order(*jx.LINEAR_SOLVE)
def _linear_solve_vjp(interpreter, eqn, residuals, primals, outs, active, cts):
    spec, (mv, vm, sv, ts), _ = split(eqn, primals)
    cts = [jnp.zeros_like(o) if c is None else c for o, c in zip(outs, cts, strict=True)]
    ct_b = jx.bind_transposed_linear_solve(eqn, (mv, vm, sv, ts), cts)
    if ct_b is None:  # a symmetric solve: A^T = A
        ct_b = interpreter.evaluate(spec.solve, [*sv, *cts])
    ct_mv = [None] * len(mv)
    _, (act_mv, _, _, _), _ = split(eqn, active)
    if any(act_mv):
        ct_mv = interpreter.vjp(spec.matvec, [*mv, *outs], [*act_mv, *[False] * len(outs)], ct_b)
        ct_mv = [None if c is None else -c for c in ct_mv[: len(mv)]]
    return [*ct_mv, *[None] * (len(vm) + len(sv) + len(ts)), *ct_b]


__all__ = ["split"]
