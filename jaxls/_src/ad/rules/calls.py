"""Rules of the primitives that call a jaxpr: ``jit`` (``pjit``, ``closed_call``), ``remat``
(`jaxls.ad.checkpoint`), and the calls of functions with their author's derivative,
``custom_jvp_call`` and ``custom_vjp_call``.

Each rule is handed the interpreter evaluating the equation (`registry.ForwardInterpreter`
or `registry.ReverseInterpreter`) and runs the callee through it.

* ``jit``: forward mode interprets the callee inline; reverse mode keeps the callee's tape
  as the call's residuals.
* ``remat``: reverse mode keeps what the equation's policy (`jax.checkpoint_policies`) saves
  of what the callee's backward sweep needs, and the inputs it needs (by default, with
  nothing saveable, the inputs alone); before its backward sweep it recomputes the rest
  from them (behind an optimisation barrier), as jax does: each value the policy saves is
  read back, not recomputed. The policy is asked about the callee's own equations: a call,
  scan or loop among them is kept (its outputs and residuals) or recomputed whole, where
  jax asks about the equations inside it too. An ``Offloadable`` answer of a policy (host
  offloading) is refused.
* ``custom_jvp_call``: the author's JVP; reverse mode transposes it (it is linear in the
  tangents) by a reverse sweep over it with the primals held fixed. In the linear part of
  a rule so transposed, a ``custom_jvp_call`` (the function applied to a tangent, as in
  ``f(x) = -x`` with the rule ``(f(x), f(t))``) is transposed through its function's
  jaxpr, as JAX transposes it, not through its rule again (which never ended).
* ``custom_vjp_call``: reverse mode runs the author's ``fwd`` (its residuals are kept) and
  ``bwd``; forward mode is refused, as JAX refuses it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.registry import INPUTS, NOTHING, defjvp_higher_order, defvjp_higher_order
from jaxls._src.ad.registry import instantiate

# ---------------------------------------------------------------------------------------
# jit and remat.


@defjvp_higher_order(*jx.CALLS, *jx.REMAT)
def _call_jvp(interpreter, eqn, primals, tangents):
    return interpreter.jvp(jx.call_body(eqn), primals, tangents)


def _call_forward(interpreter, eqn, primals, active):
    """The callee's forward sweep; its tape is the call's residuals."""
    return interpreter.forward(jx.call_body(eqn), primals, active)


@defvjp_higher_order(*jx.CALLS, forward=_call_forward, reads=NOTHING)
@defvjp_higher_order(*jx.CUSTOM_JVP, forward=_call_forward, linear=True, reads=NOTHING)
def _call_vjp(interpreter, eqn, tape, primals, outs, active, cts):
    return interpreter.backward(jx.call_body(eqn), tape, cts)


def _remat_forward(interpreter, eqn, primals, active):
    """The callee's forward sweep, keeping of what its backward sweep needs only what the
    equation's policy saves, and the inputs it needs (`reverse.checkpoint_plan`)."""
    return interpreter.forward(jx.call_body(eqn), primals, active, policy=jx.remat_policy(eqn))


@defvjp_higher_order(*jx.REMAT, forward=_remat_forward, reads=NOTHING)
def _remat_vjp(interpreter, eqn, saved, primals, outs, active, cts):
    """The rest of the callee's forward sweep, recomputed from what was saved (behind a
    barrier, so that XLA does not merge it with the original), then its backward sweep."""
    body, policy = jx.call_body(eqn), jx.remat_policy(eqn)
    if jax.tree.leaves(saved):
        saved = jx.optimization_barrier(saved)
    _, tape = interpreter.forward(body, primals, active, policy=policy, saved=saved)
    return interpreter.backward(body, tape, cts)


# ---------------------------------------------------------------------------------------
# custom_jvp_call.


def _author_jvp(eqn):
    """``(num_consts, rule, out_zeros)`` of `jx.custom_jvp_parts`, the rule's outputs
    checked against the call's.

    They differ where `jax.vmap` batched the rule but not the function: a function whose
    output does not depend on the mapped input is traced unbatched, and its rule, traced
    later (when first differentiated), is batched with its tangent, primal output included.
    The traced program holds one value for the whole batch and no tangent per member
    (jax-ml/jax#16374: ``jax.jvp(jax.jit(jax.vmap(f)), ...)`` fails on it too).
    """
    _, num_consts, rule, out_zeros = jx.custom_jvp_parts(eqn)
    expected = [jx.aval(v).shape for v in eqn.outvars]
    nonzero = [s for s, zero in zip(expected, out_zeros, strict=True) if not zero]
    got = [jx.aval(v).shape for v in rule.jaxpr.outvars]
    if got != expected + nonzero:
        name = jx.call_name(eqn)
        raise NotImplementedError(
            f"jaxls.ad: the JVP rule of the custom_jvp function `{name}` returns outputs of "
            f"shapes {got[: len(expected)]} where `{name}` returns {expected}. This happens "
            f"under `jax.vmap` when `{name}`'s output does not depend on the mapped input "
            "but its rule's tangent does: the traced program holds one value for the whole "
            "batch, and cannot carry a tangent per member (jax's "
            "`jax.jvp(jax.jit(jax.vmap(f)), ...)` fails on it too). Make the output depend "
            "on the input or, for a zero derivative, return a tangent computed from the "
            "output, `jnp.zeros_like(out)`."
        )
    return num_consts, rule, out_zeros


@defjvp_higher_order(*jx.CUSTOM_JVP)
def _custom_jvp_jvp(interpreter, eqn, primals, tangents):
    """The author's JVP, every tangent materialised (constants must carry none)."""
    num_consts, rule, out_zeros = _author_jvp(eqn)
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


@defvjp_higher_order(*jx.CUSTOM_JVP, reads=INPUTS)
def _custom_jvp_vjp(interpreter, eqn, residuals, primals, outs, active, cts):
    """The author's JVP is linear in the tangents: its adjoint, by a reverse sweep over it
    with the primals held fixed, is the VJP (jaxls transposes it itself)."""
    num_consts, rule, out_zeros = _author_jvp(eqn)
    args = primals[num_consts:]
    targs = [jnp.zeros(jnp.shape(p), jnp.result_type(p)) for p in args]
    act_rule = [False] * len(args) + list(active[num_consts:])
    cts_rule = [None] * len(eqn.outvars)
    cts_rule += [c for c, zero in zip(cts, out_zeros, strict=True) if not zero]
    cts_in = interpreter.transpose(rule, [*args, *targs], act_rule, cts_rule)
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


@defvjp_higher_order(*jx.CUSTOM_VJP, forward=_custom_vjp_forward, reads=NOTHING)
def _custom_vjp_vjp(interpreter, eqn, residuals, primals, outs, active, cts):
    """The author's ``bwd`` on the residuals of ``fwd``."""
    _, num_consts, _, _, _, bwd = jx.custom_vjp_parts(eqn)
    cts = [instantiate(c, o) for c, o in zip(cts, outs, strict=True)]
    cts_in = bwd(*residuals, *cts)
    return [None] * num_consts + [None if jx.is_symbolic_zero(c) else c for c in cts_in]


__all__: list[str] = []
