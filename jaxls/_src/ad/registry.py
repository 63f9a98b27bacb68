"""Rule tables of the hand-written AD: one JVP rule and one VJP rule per primitive.

Rules are looked up by primitive *name* (``"sin"``, ``"dot_general"``), which is stable
across JAX releases where the primitive objects move between modules.

* A JVP rule is ``jvp(primals, tangents, out, **params) -> tangent_out``. ``primals`` and
  ``tangents`` are tuples aligned with the equation's inputs; a tangent is ``None`` when it
  is a symbolic zero (an input that does not depend on the differentiated arguments, or an
  integer input). ``out`` is the primal output, already computed by the interpreter (a
  list for primitives with several results). It returns the output tangent (``None`` for a
  zero tangent; a list for several results).
* A primitive whose derivative is zero (``sign``, comparisons, ``stop_gradient``) is also
  listed in ``nondifferentiable``: its outputs are never active, so reverse mode neither
  records it nor sends adjoints through it.
* A VJP rule is ``vjp(cts, primals, out, **params) -> cts_in``: ``cts`` is the cotangent of
  the output (for several results, a list with ``None`` for zero cotangents; for one
  result, never ``None``: the interpreter skips equations whose outputs have no
  cotangent). It returns one cotangent per input, ``None`` where there is none (integer
  inputs, or inputs the output does not depend on differentiably).
* A higher-order primitive (``jit``, ``cond``, ``scan``, ``custom_jvp_call``, ...) holds
  jaxprs that the interpreter must evaluate in turn. Its rules sit in the same tables,
  registered with `defjvp_higher_order` / `defvjp_higher_order`, and are handed the
  interpreter evaluating the equation (a `ForwardInterpreter` or a `ReverseInterpreter`)
  with the equation itself. The interpreters look every primitive up in the tables alone,
  and the rule modules import neither interpreter: adding a primitive, higher-order or
  not, is one table entry.
* `linear_vjp_rules` holds the few VJP rules that differ in the *linear part* of a
  ``custom_jvp`` rule, the jaxpr reverse mode transposes (`ReverseInterpreter.transpose`):
  there a ``custom_jvp_call`` applies its function to tangents, so it is linear in them and
  transposed through its function's jaxpr, as JAX does (through its rule, it would meet
  itself again in a rule such as ``f(x) = -x``, ``(f(x), f(t))``, and never end).

Rules build their results with `jax.lax` / `jax.numpy` operations, so they work eagerly,
under `jax.jit` and `jax.vmap`, and their output can be differentiated again (every
primitive a VJP rule emits must itself have a JVP rule: tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxls._src.ad import jaxpr as jx

jvp_rules: dict[str, Callable] = {}
vjp_rules: dict[str, Callable] = {}
linear_vjp_rules: dict[str, Callable] = {}
nondifferentiable: set[str] = set()


class ForwardInterpreter(NamedTuple):
    """Forward mode, as the JVP rule of a higher-order primitive is given it.

    Attributes:
      evaluate: ``evaluate(closed, args) -> outs``, no derivative.
      jvp: ``jvp(closed, primals, tangents) -> (outs, tangent_outs)``, tangents ``None``
        where zero.
    """

    evaluate: Callable
    jvp: Callable


class ReverseInterpreter(NamedTuple):
    """Reverse mode, as the VJP rule of a higher-order primitive is given it.

    Attributes:
      evaluate: ``evaluate(closed, args) -> outs``, no derivative.
      forward: ``forward(closed, args, active, skip=frozenset()) -> (outs, tape)``, the
        forward sweep (``skip``: input variables left out of the tape).
      backward: ``backward(closed, tape, cts, given=None) -> cts_in``, the backward sweep
        (``given``: the values of the variables left out of the tape).
      activity: ``activity(closed, active) -> active_out``, which outputs depend on an
        active input.
      transpose: ``transpose(closed, args, active, cts) -> cts_in``, the adjoint of a jaxpr
        linear in its active inputs (the tangent part of a ``custom_jvp`` rule): a forward
        and a backward sweep with the rules of `linear_vjp_rules` first. The interpreter
        handed to the rules inside it is the one for linear parts, so that a jaxpr the
        linear part calls (a ``jit``, a ``scan`` body) is linear part too.
      max_loop_steps: the most iterations of a ``while`` loop that reverse mode records
        (the ``max_loop_steps=`` of `jaxls.ad.grad`, ``vjp``, ...), or None: reverse mode
        through a ``while`` loop is then refused. ``forward`` and ``transpose`` pass it on
        to the jaxprs they run, and record it on the tape for ``backward``.
    """

    evaluate: Callable
    forward: Callable
    backward: Callable
    activity: Callable
    transpose: Callable
    max_loop_steps: int | None = None

    def vjp(self, c, args: Sequence, active: Sequence[bool], cts: Sequence) -> list:
        """Forward then backward sweep of ``c``: the adjoints of ``args``."""
        _, tape = self.forward(c, args, active)
        return self.backward(c, tape, cts)


class HigherOrderJVP(NamedTuple):
    """The JVP rule of a higher-order primitive (an entry of `jvp_rules`):
    ``rule(interpreter, eqn, primals, tangents) -> (outs, tangent_outs)``, lists aligned
    with the equation's outputs; the rule computes the outputs itself."""

    rule: Callable


class HigherOrderVJP(NamedTuple):
    """The VJP rule of a higher-order primitive (an entry of `vjp_rules`), in two parts.

    Attributes:
      forward: ``forward(interpreter, eqn, primals, active) -> (outs, residuals)``, run by
        the forward sweep on an equation with an active input; ``residuals`` (a pytree, or
        ``None``) is kept on the tape for ``backward``.
      backward: ``backward(interpreter, eqn, residuals, primals, outs, active, cts) ->
        cts_in``, with ``cts`` a list (``None`` for zero) and one cotangent (or ``None``)
        per input returned.
    """

    forward: Callable
    backward: Callable


def evaluate_only(interpreter, eqn, primals, active) -> tuple[list, Any]:
    """The default forward part of a `HigherOrderVJP`: evaluate the equation, keep no
    residuals (the backward part recomputes what it needs from the inputs)."""
    return jx.bind(eqn, primals), None


def defjvp(*names: str):
    """Register the decorated function as the JVP rule of the primitives ``names``."""

    def register(rule):
        for name in names:
            jvp_rules[name] = rule
        return rule

    return register


def defvjp(*names: str):
    """Register the decorated function as the VJP rule of the primitives ``names``."""

    def register(rule):
        for name in names:
            vjp_rules[name] = rule
        return rule

    return register


def defjvp_higher_order(*names: str):
    """Register the decorated function as the `HigherOrderJVP` rule of ``names``."""

    def register(rule):
        for name in names:
            jvp_rules[name] = HigherOrderJVP(rule)
        return rule

    return register


def defvjp_higher_order(*names: str, forward: Callable = evaluate_only, linear: bool = False):
    """Register the decorated function as the backward part of the `HigherOrderVJP` rule of
    ``names``, ``forward`` as its forward part; in `linear_vjp_rules` if ``linear``."""
    table = linear_vjp_rules if linear else vjp_rules

    def register(backward):
        for name in names:
            table[name] = HigherOrderVJP(forward, backward)
        return backward

    return register


def vjp_rule(name: str, linear: bool = False):
    """The VJP rule of primitive ``name`` (None if it has none); in the linear part of a
    ``custom_jvp`` rule (``linear``), the one of `linear_vjp_rules` if there is one."""
    rule = linear_vjp_rules.get(name) if linear else None
    return vjp_rules.get(name) if rule is None else rule


def dtype_of(x) -> np.dtype:
    """The dtype of an array, tracer, NumPy value or Python scalar (``x.dtype`` first:
    ``np.result_type`` of a concrete ``jax.Array`` is deprecated)."""
    dtype = getattr(x, "dtype", None)
    return np.result_type(x) if dtype is None else np.dtype(dtype)


def is_float(x) -> bool:
    """Whether ``x`` has an inexact dtype (only those carry tangents and cotangents).

    `jnp.issubdtype`, not NumPy's: NumPy does not count bfloat16 (nor JAX's other extended
    floats) as inexact, and reverse mode dropped their adjoints."""
    return bool(jnp.issubdtype(dtype_of(x), jnp.inexact))


def zeros_like(x):
    """A materialised zero tangent for the primal ``x`` (``lax.full``: no nested ``jit``)."""
    return lax.full(np.shape(x), 0, dtype_of(x))


def instantiate(tangent, primal):
    """``tangent``, or zeros shaped like ``primal`` if it is the symbolic zero ``None``."""
    return zeros_like(primal) if tangent is None else tangent


def add(a, b):
    """Sum of two tangents or cotangents, either possibly ``None`` (zero)."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


__all__ = [
    "ForwardInterpreter",
    "HigherOrderJVP",
    "HigherOrderVJP",
    "ReverseInterpreter",
    "add",
    "defjvp",
    "defjvp_higher_order",
    "defvjp",
    "defvjp_higher_order",
    "dtype_of",
    "evaluate_only",
    "instantiate",
    "is_float",
    "jvp_rules",
    "linear_vjp_rules",
    "nondifferentiable",
    "vjp_rule",
    "vjp_rules",
    "zeros_like",
]
