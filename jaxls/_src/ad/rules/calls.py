"""Rules of the primitives that call a jaxpr: ``jit`` (``pjit``, ``closed_call``), ``remat``
(`jaxls.ad.checkpoint`), and the calls of functions with their author's derivative,
``custom_jvp_call`` and ``custom_vjp_call``.

Each rule is handed the interpreter evaluating the equation (`registry.ForwardInterpreter`
or `registry.ReverseInterpreter`) and runs the callee through it.

* ``jit``: forward mode interprets the callee inline; reverse mode keeps the callee's tape
  as the call's residuals.
* ``remat``: reverse mode keeps only the inputs and recomputes the callee's forward sweep
  (behind an optimisation barrier) before its backward sweep.
* ``custom_jvp_call``: the author's JVP; reverse mode transposes it (it is linear in the
  tangents) by a reverse sweep over it with the primals held fixed.
* ``custom_vjp_call``: reverse mode runs the author's ``fwd`` (its residuals are kept) and
  ``bwd``; forward mode is refused, as JAX refuses it.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import defjvp_higher_order, defvjp_higher_order, instantiate

# ---------------------------------------------------------------------------------------
# jit and remat.


@defjvp_higher_order(*jx.CALLS, *jx.REMAT)
def _call_jvp(interpreter, eqn, primals, tangents):
    return interpreter.jvp(jx.call_body(eqn), primals, tangents)


def _call_forward(interpreter, eqn, primals, active):
    """The callee's forward sweep; its tape is the call's residuals."""
    return interpreter.forward(jx.call_body(eqn), primals, active)


@defvjp_higher_order(*jx.CALLS, forward=_call_forward)
def _call_vjp(interpreter, eqn, tape, primals, outs, active, cts):
    return interpreter.backward(jx.call_body(eqn), tape, cts)


@defvjp_higher_order(*jx.REMAT)
def _remat_vjp(interpreter, eqn, residuals, primals, outs, active, cts):
    """The callee's forward sweep again, from its inputs (behind a barrier, so that XLA does
    not merge it with the original), then its backward sweep."""
    body = jx.call_body(eqn)
    _, recomputed = interpreter.forward(body, jx.optimization_barrier(primals), active)
    return interpreter.backward(body, recomputed, cts)


# ---------------------------------------------------------------------------------------
# custom_jvp_call.


@defjvp_higher_order(*jx.CUSTOM_JVP)
def _custom_jvp_jvp(interpreter, eqn, primals, tangents):
    """The author's JVP, every tangent materialised (constants must carry none)."""
    _, num_consts, rule, out_zeros = jx.custom_jvp_parts(eqn)
    if any(t is not None for t in tangents[:num_consts]):
        raise NotImplementedError(
            "jaxls.ad: a custom_jvp function closed over a differentiated value"
        )
    args = primals[num_consts:]
    targs = [instantiate(t, p) for p, t in zip(args, tangents[num_consts:], strict=True)]
    res = interpreter.evaluate(rule, [*args, *targs])
    num_out = len(eqn.outvars)
    outs, nonzero = res[:num_out], iter(res[num_out:])
    touts = [None if zero else next(nonzero) for zero in out_zeros]
    return outs, touts


@defvjp_higher_order(*jx.CUSTOM_JVP)
def _custom_jvp_vjp(interpreter, eqn, residuals, primals, outs, active, cts):
    """The author's JVP is linear in the tangents: its adjoint, by a reverse sweep over it
    with the primals held fixed, is the VJP (jaxls transposes it itself)."""
    _, num_consts, rule, out_zeros = jx.custom_jvp_parts(eqn)
    args = primals[num_consts:]
    targs = [jnp.zeros(jnp.shape(p), jnp.result_type(p)) for p in args]
    act_rule = [False] * len(args) + list(active[num_consts:])
    cts_rule = [None] * len(eqn.outvars)
    cts_rule += [c for c, zero in zip(cts, out_zeros, strict=True) if not zero]
    cts_in = interpreter.vjp(rule, [*args, *targs], act_rule, cts_rule)
    return [None] * num_consts + cts_in[len(args) :]


# ---------------------------------------------------------------------------------------
# custom_vjp_call.


@defjvp_higher_order(*jx.CUSTOM_VJP)
def _custom_vjp_jvp(interpreter, eqn, primals, tangents):
    raise NotImplementedError(
        "jaxls.ad: forward mode through a `jax.custom_vjp` function is undefined (JAX "
        "refuses it too): use reverse mode (`jaxls.ad.vjp`, `grad`, `jacrev`)."
    )


def _custom_vjp_forward(interpreter, eqn, primals, active):
    """Run the author's ``fwd``: the outputs, and the residuals its ``bwd`` will need."""
    _, num_consts, fwd, input_fwds, num_res, _ = jx.custom_vjp_parts(eqn)
    args = primals[num_consts:]
    res_and_outs = interpreter.evaluate(fwd, args)
    num_res_out = num_res - sum(f is not None for f in input_fwds)
    computed = iter(res_and_outs[:num_res_out])
    residuals = [next(computed) if f is None else args[f] for f in input_fwds]
    return res_and_outs[num_res_out:], residuals


@defvjp_higher_order(*jx.CUSTOM_VJP, forward=_custom_vjp_forward)
def _custom_vjp_vjp(interpreter, eqn, residuals, primals, outs, active, cts):
    """The author's ``bwd`` on the residuals of ``fwd``."""
    _, num_consts, _, _, _, bwd = jx.custom_vjp_parts(eqn)
    cts = [instantiate(c, o) for c, o in zip(cts, outs, strict=True)]
    cts_in = bwd(*residuals, *cts)
    return [None] * num_consts + [None if jx.is_symbolic_zero(c) else c for c in cts_in]


__all__: list[str] = []
