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
* What a VJP rule reads of its equation's values is declared with it (``reads=`` of
  `defvjp` and `defvjp_higher_order`, a `Reads`; by default everything): reverse mode's
  forward sweep records on its tape only what the rules read, and hands each rule the
  values it declared unread as `Unrecorded` placeholders, which carry a shape and a dtype
  and refuse to be computed with (`UnrecordedValueError`): a rule that reads more than it
  declares fails loudly. A linear primitive (``add``, ``reshape``, ``reduce_sum``) reads
  nothing, ``exp`` its output, ``sin`` its input, ``mul`` and ``dot_general`` the operand
  paired with an active one: reads that depend on which inputs are active (or on the
  parameters) are declared as a function of them, and such a rule is passed ``active=`` (a
  tuple of bools) and computes no cotangent for an inactive input.
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


class Reads(NamedTuple):
    """What a VJP rule reads of its equation's values, besides their shapes and dtypes.

    Attributes:
      inputs: the positions of the inputs it reads: a frozenset, or a `slice` of the
        positions (``slice(1, None)``: every input but the first, as the indices of
        ``dynamic_slice``). Literal inputs are always at hand (they are in the jaxpr).
      outputs: whether it reads the outputs.
    """

    inputs: frozenset[int] | slice = slice(None)
    outputs: bool = True

    def positions(self, num_inputs: int) -> frozenset[int]:
        """The positions read among ``num_inputs`` inputs."""
        if isinstance(self.inputs, slice):
            return frozenset(range(num_inputs)[self.inputs])
        return self.inputs


EVERYTHING = Reads()
"""Every input and output: the conservative default."""

NOTHING = Reads(frozenset(), False)
"""Shapes and dtypes only (a linear primitive: ``add``, ``reshape``, ``reduce_sum``)."""

OUTPUTS = Reads(frozenset(), True)
"""The outputs only (``exp``, ``tanh``, ``logistic``, ``sqrt``)."""

INPUTS = Reads(slice(None), False)
"""The inputs only (``sin``, ``log``)."""


def inputs(*positions: int, outputs: bool = False) -> Reads:
    """The inputs at ``positions`` (and the outputs if ``outputs``)."""
    return Reads(frozenset(positions), outputs)


def others(active: Sequence[bool], **params) -> Reads:
    """The inputs paired with an active one (``mul``, ``dot_general``): the cotangent of an
    operand of a bilinear map is the cotangent times the other operand."""
    return Reads(
        frozenset(j for j in range(len(active)) if any(a for i, a in enumerate(active) if i != j)),
        False,
    )


ReadsSpec = Reads | Callable[..., Reads]
"""A `Reads`, or a function ``reads(active, **params) -> Reads`` of the activity of the
equation's inputs (a tuple of bools) and of its parameters (a ``scan`` reads its first
``num_consts`` inputs). A first-order rule declared so is passed ``active=`` and computes
cotangents for the active inputs only."""

vjp_reads: dict[str, ReadsSpec] = {}
"""What the first-order VJP rule of each primitive reads (`EVERYTHING` if not listed)."""


class UnrecordedValueError(TypeError):
    """A VJP rule computed with a value it declared unread (``reads=``): a wrong
    declaration in the rule tables, never the user's error."""


class Unrecorded:
    """A value reverse mode's tape does not hold, as the VJP rule that declared it unread is
    handed it: its shape and dtype (``np.shape``, ``jnp.zeros_like`` work), nothing else.
    Arithmetic on it, ``np.asarray`` and JAX operations raise (`UnrecordedValueError`, or
    JAX's `TypeError` naming this class, which the backward sweep re-raises as one)."""

    __slots__ = ("dtype", "shape", "what")

    def __init__(self, shape, dtype, what: str):
        self.shape, self.dtype, self.what = tuple(shape), dtype, what

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=int))

    def __repr__(self) -> str:
        return f"Unrecorded({self.what}, {self.shape}, {self.dtype})"

    def refuse(self, *args, **kwargs):
        raise UnrecordedValueError(
            f"jaxls.ad: a VJP rule read {self.what}, which it declares unread (the `reads=` "
            "of its `defvjp`), so reverse mode's tape does not hold it. Declare it read."
        )

    __array__ = refuse
    __hash__ = object.__hash__


for _dunder in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and",
                "or", "xor", "lshift", "rshift"):  # fmt: skip
    setattr(Unrecorded, f"__{_dunder}__", Unrecorded.refuse)
    setattr(Unrecorded, f"__r{_dunder}__", Unrecorded.refuse)
for _dunder in ("neg", "pos", "abs", "invert", "getitem", "bool", "float", "int", "complex",
                "index", "iter", "len", "lt", "le", "gt", "ge", "eq", "ne"):  # fmt: skip
    setattr(Unrecorded, f"__{_dunder}__", Unrecorded.refuse)
del _dunder


class ForwardInterpreter(NamedTuple):
    """Forward mode, as the JVP rule of a higher-order primitive is given it.

    Attributes:
      evaluate: ``evaluate(closed, args) -> outs``, no derivative.
      jvp: ``jvp(closed, primals, tangents) -> (outs, tangent_outs)``, tangents ``None``
        where zero.
    """

    evaluate: Callable
    jvp: Callable


class LoopBound(NamedTuple):
    """How reverse mode runs a ``while`` loop (the transforms' ``max_loop_steps=`` and
    ``loop_checkpoints=``): at most ``steps`` iterations (None: counted where the loop's
    inputs are concrete, refused otherwise), recomputed from ``checkpoints`` carries per
    level of a recursion (None: the tape of every iteration kept). The forward sweep passes
    it on to the jaxprs it runs and records it on the tape (`reverse.interpreter`)."""

    steps: int | None = None
    checkpoints: int | None = None


class ReverseInterpreter(NamedTuple):
    """Reverse mode, as the VJP rule of a higher-order primitive is given it.

    Attributes:
      evaluate: ``evaluate(closed, args) -> outs``, no derivative.
      forward: ``forward(closed, args, active, skip=frozenset()) -> (outs, tape)``, the
        forward sweep (``skip``: input variables left out of the tape); with ``policy=``, a
        `jax.checkpoint` policy, the sweep of a checkpointed jaxpr, which keeps what the
        policy saves, and with ``saved=`` (that tape) its recomputation, ``(None, tape)``.
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
      loop_checkpoints: None, the tape of every iteration of a ``while`` loop is kept; an
        int ``k``, they are recomputed from ``k`` checkpoints per level of a recursion
        (the ``loop_checkpoints=`` of `jaxls.ad.grad`, ...; `rules.control_flow`). Passed
        on and recorded like ``max_loop_steps``.
    """

    evaluate: Callable
    forward: Callable
    backward: Callable
    activity: Callable
    transpose: Callable
    max_loop_steps: int | None = None
    loop_checkpoints: int | None = None

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
      reads: which of ``primals`` and ``outs`` ``backward`` reads (a `ReadsSpec`; the
        tape records those, the others are `Unrecorded`), besides its ``residuals``.
    """

    forward: Callable
    backward: Callable
    reads: ReadsSpec = EVERYTHING


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


def defvjp(*names: str, reads: ReadsSpec = EVERYTHING):
    """Register the decorated function as the VJP rule of the primitives ``names``, reading
    ``reads`` of their values (a `Reads`, or a function of the inputs' activity returning
    one: the rule is then passed ``active=``)."""

    def register(rule):
        for name in names:
            vjp_rules[name] = rule
            vjp_reads[name] = reads
        return rule

    return register


def defjvp_higher_order(*names: str):
    """Register the decorated function as the `HigherOrderJVP` rule of ``names``."""

    def register(rule):
        for name in names:
            jvp_rules[name] = HigherOrderJVP(rule)
        return rule

    return register


def defvjp_higher_order(
    *names: str,
    forward: Callable = evaluate_only,
    linear: bool = False,
    reads: ReadsSpec = EVERYTHING,
):
    """Register the decorated function as the backward part of the `HigherOrderVJP` rule of
    ``names``, ``forward`` as its forward part, reading ``reads`` of the equation's inputs
    and outputs; in `linear_vjp_rules` if ``linear``."""
    table = linear_vjp_rules if linear else vjp_rules

    def register(backward):
        for name in names:
            table[name] = HigherOrderVJP(forward, backward, reads)
        return backward

    return register


def vjp_rule(name: str, linear: bool = False):
    """The VJP rule of primitive ``name`` (None if it has none); in the linear part of a
    ``custom_jvp`` rule (``linear``), the one of `linear_vjp_rules` if there is one."""
    rule = linear_vjp_rules.get(name) if linear else None
    return vjp_rules.get(name) if rule is None else rule


def declared_reads(name: str, active: Sequence[bool], params, linear: bool = False) -> Reads:
    """What the VJP rule of primitive ``name`` (`vjp_rule`) reads for an equation with
    ``params`` whose inputs are ``active``."""
    rule = vjp_rule(name, linear)
    spec = rule.reads if isinstance(rule, HigherOrderVJP) else vjp_reads.get(name, EVERYTHING)
    return spec if isinstance(spec, Reads) else spec(tuple(active), **params)


def reads_depend_on_activity(name: str) -> bool:
    """Whether the first-order VJP rule of ``name`` declares its reads as a function (of
    the activity: it takes ``active=``)."""
    return not isinstance(vjp_reads.get(name, EVERYTHING), Reads)


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
    "EVERYTHING",
    "INPUTS",
    "NOTHING",
    "OUTPUTS",
    "ForwardInterpreter",
    "HigherOrderJVP",
    "HigherOrderVJP",
    "LoopBound",
    "Reads",
    "ReadsSpec",
    "ReverseInterpreter",
    "Unrecorded",
    "UnrecordedValueError",
    "add",
    "declared_reads",
    "defjvp",
    "defjvp_higher_order",
    "defvjp",
    "defvjp_higher_order",
    "dtype_of",
    "evaluate_only",
    "inputs",
    "instantiate",
    "is_float",
    "jvp_rules",
    "linear_vjp_rules",
    "nondifferentiable",
    "others",
    "reads_depend_on_activity",
    "vjp_reads",
    "vjp_rule",
    "vjp_rules",
    "zeros_like",
]
