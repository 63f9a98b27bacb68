r"""Gradients as formulas: `derive` reads a JAX function's jaxpr and writes its gradient in
matrix notation.

``derive(lambda x, A, b, c: x @ A @ x - b @ x + c, x, A, b, c)`` is ``(A + A^T) x - b``.

How: the function is traced to a jaxpr (`jax.make_jaxpr`) and the two sweeps of reverse
mode run over it with symbols (`symbolic.Sum`) in place of arrays: a forward sweep gives
every variable its expression in the inputs (``x``, ``A``, named after the function's
parameters), a backward sweep accumulates adjoints from the output's ``1`` back to the
differentiated input, one VJP rule per primitive. The sweeps have the structure of
`jaxls.ad`'s (`jaxls._src.ad.reverse`): they take which equations to differentiate from
its `differentiated` (activity, pruning, ``stop_gradient``), read the jaxpr through
`jaxls._src.ad.jaxpr`, inline ``jit`` calls and keep a tape of the sub-sweeps. They cannot
run `jaxls.ad`'s numeric rules themselves (those compute with `jax.numpy`, not symbols), so
the rules here are the same VJPs written over expressions, in tables keyed by primitive
name (`FORWARD`, `VJP`, and `NAMED` for the ``jit`` functions of `jax.numpy.linalg` that
are recognised whole: ``det``, ``slogdet``, ``inv``, ``solve``, ``trace``, ``diagonal``).

What the symbolic layer cannot express (a primitive without a rule here, ``max``,
``select_n``, a ``custom_jvp`` function, batched products) becomes an `symbolic.Opaque`
term named after the primitive, which carries the function that computes it (its VJP is
computed by `jaxls.ad.vjp`): the formula stays right, if less readable.

Every formula is checked before it is returned: `Formula.evaluate` against `jaxls.ad.grad`
(`jaxls.ad.hessian` for ``order=2``) at the example arguments and two random perturbations
of them; a disagreement raises `DerivationError` (a bug in this module, never a formula
shown).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, NamedTuple

import jax
from jax.typing import ArrayLike
import jax.numpy as jnp
import numpy as np

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.reverse import differentiated
from jaxls._src.calculus import symbolic as sy
from jaxls._src.calculus.symbolic import Sum, Unsupported


class DerivationError(RuntimeError):
    """A derived formula disagreed with automatic differentiation: a bug in
    `jaxls.calculus.derive`, never a formula returned."""


# --- the formula -----------------------------------------------------------------------------


class Formula:
    r"""A derivative in matrix notation, from `derive`.

    Attributes:
      expr: the expression (``symbolic.Sum``, private).
      names: the names of the function's arguments, as the formula uses them.
      argnums: the argument differentiated.
      order: 1 (gradient) or 2 (Hessian).
      text: plain text, ``(A + A^T) x - b``.
      latex: LaTeX, ``(A + A^\top) x - b``.
      opaque: the names of the opaque terms (what the symbolic layer could not express);
        empty for a formula in matrix notation throughout.
    """

    def __init__(self, expr: Sum, names: Sequence[str], argnums: int, order: int):
        self.expr, self.names = expr, tuple(names)
        self.argnums, self.order = argnums, order

    @property
    def text(self) -> str:
        return sy.text(self.expr)

    @property
    def latex(self) -> str:
        return sy.latex(self.expr)

    @property
    def opaque(self) -> tuple[str, ...]:
        found = {a.name: None for a in sy.atoms(self.expr) if isinstance(a, sy.Opaque)}
        return tuple(found)

    @property
    def operator_count(self) -> int:
        """`operator_count` of `latex`."""
        return sy.operator_count(self.latex)

    def evaluate(self, *args: ArrayLike) -> jax.Array:
        """The formula computed with `jax.numpy` at ``args`` (the function's arguments)."""
        if len(args) != len(self.names):
            raise TypeError(
                f"Formula.evaluate: takes the function's {len(self.names)} arguments "
                f"({', '.join(self.names)}); got {len(args)}."
            )
        values = [jnp.asarray(a) for a in args]
        floats = [v.dtype for v in values if jnp.issubdtype(v.dtype, jnp.floating)]
        dtype = jnp.result_type(*floats) if floats else jnp.float32
        return sy.evaluate(self.expr, dict(zip(self.names, values, strict=True)), dtype)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"

    def _repr_latex_(self) -> str:
        return f"${self.latex}$"


# --- the public function ---------------------------------------------------------------------


def derive(
    f: Callable,
    *example_args: ArrayLike,
    argnums: int = 0,
    order: int = 1,
    names: Sequence[str] | None = None,
) -> Formula:
    r"""The gradient (``order=2``: the Hessian) of a scalar JAX function, as a formula.

    ``f`` is traced at ``example_args`` (scalars, vectors, matrices); the reverse sweep runs
    over its jaxpr with symbols named after ``f``'s parameters, and the result is simplified
    as a person would (like terms collected, transposes pushed to the symbols, scalars pulled
    out). The formula is then checked against `jaxls.ad` at the example and two random
    perturbations of it.

    Args:
      f: ``f(*args) -> scalar``, in `jax.numpy`.
      *example_args: arrays of rank at most 2, whose sizes (above 1) fix the shapes.
      argnums: the argument to differentiate.
      order: 1 for the gradient, 2 for the Hessian (of a scalar or vector argument, where
        the symbolic layer expresses it as a matrix).
      names: the arguments' names in the formula (default: ``f``'s parameter names).

    Returns:
      A `Formula`: ``.text``, ``.latex``, ``.evaluate(*args)``.

    Raises:
      ValueError: ``argnums`` out of range, ``f`` not scalar-valued, an argument of rank
        above 2, a differentiated argument that is not floating, a gradient that is not
        finite at the example.
      NotImplementedError: ``order=2`` where the Hessian has no matrix form here.
      DerivationError: the formula disagreed with automatic differentiation (a bug).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxls.calculus import derive
      >>> x, A, b, c = jnp.ones(3), jnp.eye(3) + 1.0, jnp.arange(3.0), jnp.float32(1.0)
      >>> print(derive(lambda x, A, b, c: x @ A @ x - b @ x + c, x, A, b, c))
      (A + A^T) x - b
      >>> print(derive(lambda x, A, b, c: x @ A @ x - b @ x + c, x, A, b, c, order=2))
      A + A^T
    """
    args = _check(f, example_args, argnums, order)
    names = _names(f, len(args), names)
    expr = gradient_expression(f, args, argnums, names)
    formula = Formula(expr, names, argnums, 1)
    if order == 2:
        formula = _hessian(formula, args, argnums)
    _verify(formula, f, args)
    return formula


def _check(f, example_args, argnums, order) -> list:
    if not callable(f):
        raise TypeError(f"jaxls.calculus.derive: `f` must be callable; got {f!r}.")
    if order not in (1, 2):
        raise ValueError(f"jaxls.calculus.derive(order={order!r}): order is 1 or 2.")
    if not isinstance(argnums, int) or isinstance(argnums, bool):
        raise TypeError(f"jaxls.calculus.derive(argnums={argnums!r}): argnums is one int.")
    if not -len(example_args) <= argnums < len(example_args):
        raise ValueError(
            f"jaxls.calculus.derive(argnums={argnums}): `f` was given "
            f"{len(example_args)} example argument(s)."
        )
    args = []
    for i, a in enumerate(example_args):
        if not isinstance(a, (jax.Array, np.ndarray, np.generic, int, float)):
            raise TypeError(
                f"jaxls.calculus.derive: example argument {i} is a {type(a).__name__}; "
                "pass arrays or numbers (no pytrees)."
            )
        if isinstance(a, jax.core.Tracer):
            raise TypeError("jaxls.calculus.derive: the example arguments must be concrete.")
        a = jnp.asarray(a)
        if a.ndim > 2:
            raise ValueError(
                f"jaxls.calculus.derive: example argument {i} has shape {a.shape}; the "
                "formulas are over scalars, vectors and matrices (rank at most 2)."
            )
        args.append(a)
    x = args[argnums]
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(
            f"jaxls.calculus.derive(argnums={argnums}): the differentiated argument has "
            f"dtype {x.dtype}; it must be floating."
        )
    return args


def _names(f, n: int, names: Sequence[str] | None) -> list[str]:
    if names is not None:
        names = list(names)
        if len(names) != n or len(set(names)) != n:
            raise ValueError(
                f"jaxls.calculus.derive(names={names!r}): give {n} distinct names, one per "
                "argument."
            )
        return names
    out: list[str] = []
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            out.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            out.extend(f"{p.name}{i}" for i in range(n - len(out)))
            break
    out = out[:n]
    taken = set(out)
    for i in range(len(out), n):
        name = f"x{i}"
        while name in taken:
            name += "_"
        out.append(name)
        taken.add(name)
    return out


def gradient_expression(f: Callable, args: Sequence, argnums: int, names: Sequence[str]) -> Sum:
    """The gradient of ``f`` in ``args[argnums]`` as an expression (unchecked)."""
    argnums = argnums % len(args)
    closed = jx.closed(jax.make_jaxpr(f)(*args))
    outs = closed.jaxpr.outvars
    if len(outs) != 1:
        raise ValueError(
            f"jaxls.calculus.derive: `f` returns {len(outs)} arrays; a gradient needs one "
            "real scalar."
        )
    out_aval = jx.aval(outs[0])
    if out_aval.shape != () or not jnp.issubdtype(out_aval.dtype, jnp.floating):
        raise ValueError(
            f"jaxls.calculus.derive: `f` returns an array of shape {out_aval.shape} and dtype "
            f"{out_aval.dtype}; a gradient needs a real scalar."
        )
    ctx = _Context()
    ins = [sy.symbol(name, tuple(a.shape)) for name, a in zip(names, args, strict=True)]
    active = [i == argnums for i in range(len(args))]
    _, tape = forward_sweep(ctx, closed, ins, [None] * len(args), active)
    cts = backward_sweep(ctx, closed, tape, [sy.number(1)])
    ct = cts[argnums]
    shape = tuple(args[argnums].shape)
    return sy.zero(shape) if ct is None else _conform(ct, shape)


# --- the sweeps ------------------------------------------------------------------------------


class _Context:
    """Names of constants and identities of opaque terms, for one derivation."""

    def __init__(self):
        self.num_consts = 0
        self.num_opaque = 0

    def uid(self) -> int:
        self.num_opaque += 1
        return self.num_opaque

    def const(self, value) -> Sum:
        """A constant array of the function: a number, a fill, a multiple of the identity or
        a named constant ``C0``, ``C1``, ...."""
        v = np.asarray(value)
        if v.ndim > 2:
            return sy.opaque("const", v.shape, (), lambda v=v: jnp.asarray(v), self.uid())
        if np.issubdtype(v.dtype, np.floating):
            if v.ndim == 0:
                return sy.number(v.item())
            flat = v.reshape(-1)
            if np.all(flat == flat[0]):
                return sy.number(flat[0].item(), v.shape)
            if v.ndim == 2 and v.shape[0] == v.shape[1]:
                d = v[0, 0].item()
                if np.array_equal(v, d * np.eye(v.shape[0], dtype=v.dtype)):
                    return sy.scale(d, sy.from_atom(sy.Identity(v.shape[0])))
        name = f"C{self.num_consts}"
        self.num_consts += 1
        return sy.from_atom(sy.Const(name, v.shape, v))


class Tape(NamedTuple):
    """What the symbolic forward sweep of one jaxpr keeps for its backward sweep."""

    env: dict  # variable -> expression
    outs: dict  # equation index -> its output expressions
    subs: dict  # equation index -> the tape of an inlined call, or OPAQUE
    acts: list  # per equation: activity of its inputs where differentiated, else None
    active: frozenset


def forward_sweep(ctx: _Context, c: jx.Closed, ins: Sequence[Sum], values: Sequence, active_in):
    """Expressions of the jaxpr's outputs from its inputs' (``values``: concrete values
    where known, else None), and the tape."""
    env: dict = {}
    known: dict = {}
    acts, active = differentiated(c, list(active_in))
    for var, const in zip(c.jaxpr.constvars, c.consts, strict=True):
        env[var] = ctx.const(const)
        known[var] = const
    for var, s, v in zip(c.jaxpr.invars, ins, values, strict=True):
        env[var] = s
        if v is not None:
            known[var] = v

    def read(a):
        return ctx.const(jx.literal_value(a)) if jx.is_literal(a) else env[a]

    def value(a):
        return jx.literal_value(a) if jx.is_literal(a) else known.get(a)

    outs_of, subs = {}, {}
    for i, eqn in enumerate(c.jaxpr.eqns):
        vals = [value(a) for a in eqn.invars]
        if all(v is not None for v in vals) and jx.name(eqn) not in _RANDOM:
            outs_v = jx.bind(eqn, vals)
            outs = [ctx.const(o) for o in outs_v]
            for var, o in zip(eqn.outvars, outs_v, strict=True):
                if not jx.is_drop(var):
                    known[var] = o
        else:
            sins = [read(a) for a in eqn.invars]
            act = acts[i] if acts[i] is not None else (False,) * len(eqn.invars)
            outs, sub = _forward_equation(ctx, eqn, sins, vals, act)
            if sub is not None:
                subs[i] = sub
        outs_of[i] = outs
        for var, o in zip(eqn.outvars, outs, strict=True):
            if not jx.is_drop(var):
                env[var] = o
    return [read(a) for a in c.jaxpr.outvars], Tape(env, outs_of, subs, acts, active)


_RANDOM = frozenset({"random_bits", "random_seed", "random_wrap", "random_unwrap"})


OPAQUE = "opaque"
"""What the tape keeps of an equation the forward sweep made opaque: its backward sweep
is opaque too."""


def _forward_equation(ctx, eqn, ins: list[Sum], vals: list, act) -> tuple[list[Sum], Any]:
    """The outputs of one equation, and what the tape keeps of it: the tape of an inlined
    ``jit`` call, `OPAQUE`, or None."""
    name = jx.name(eqn)
    try:
        if name in jx.CALLS or name in jx.CUSTOM_JVP:
            named = _named(eqn)
            if named is not None:
                return _shaped(eqn, named.forward(ins)), None
            if name in jx.CALLS:
                outs, tape = forward_sweep(ctx, jx.call_body(eqn), ins, vals, act)
                return _shaped(eqn, outs), tape
        elif name in FORWARD:
            return _shaped(eqn, FORWARD[name](eqn, ins)), None
    except Unsupported:
        pass
    return _opaque_forward(ctx, eqn, ins), OPAQUE


def _shaped(eqn, outs: list[Sum]) -> list[Sum]:
    return [_conform(o, jx.aval(v).shape) for o, v in zip(outs, eqn.outvars, strict=True)]


def backward_sweep(ctx: _Context, c: jx.Closed, tape: Tape, cts_out: Sequence) -> list:
    """Adjoint expressions of the jaxpr's inputs (None for zero) from its outputs'."""
    ct: dict = {}
    for var, g in zip(c.jaxpr.outvars, cts_out, strict=True):
        if g is not None and not jx.is_literal(var) and var in tape.active and not g.is_zero:
            ct[var] = g if var not in ct else sy.add(ct[var], g)

    def read(a):
        return ctx.const(jx.literal_value(a)) if jx.is_literal(a) else tape.env[a]

    for i in reversed(range(len(c.jaxpr.eqns))):
        eqn, act = c.jaxpr.eqns[i], tape.acts[i]
        if act is None:
            continue
        cts = [None if jx.is_drop(v) else ct.pop(v, None) for v in eqn.outvars]
        if all(g is None for g in cts):
            continue
        ins = [read(a) for a in eqn.invars]
        cts_in = _backward_equation(ctx, eqn, ins, tape.outs[i], cts, act, tape.subs.get(i))
        for a, is_active, g in zip(eqn.invars, act, cts_in, strict=True):
            if is_active and g is not None and not g.is_zero:
                g = _conform(g, jx.aval(a).shape)
                ct[a] = g if a not in ct else sy.add(ct[a], g)
    return [None if jx.is_literal(v) else ct.get(v) for v in c.jaxpr.invars]


def _backward_equation(ctx, eqn, ins, outs, cts, act, sub) -> list:
    if sub is OPAQUE:
        return _opaque_vjp(ctx, eqn, ins, cts, act)
    if isinstance(sub, Tape):
        return backward_sweep(ctx, jx.call_body(eqn), sub, cts)
    name = jx.name(eqn)
    named = _named(eqn) if name in jx.CALLS or name in jx.CUSTOM_JVP else None
    try:
        if named is not None:
            return named.vjp(ins, outs, cts)
        return VJP[name](eqn, ins, outs, cts, act)
    except Unsupported:
        return _opaque_vjp(ctx, eqn, ins, cts, act)


def _conform(g: Sum, shape) -> Sum:
    """An expression with the array shape of a variable (a vector as a column)."""
    shape = tuple(shape)
    if g.shape == shape and (len(shape) != 1 or g.cshape[1] == 1):
        return g
    return sy.reshape(sy.as_column(g) if len(g.shape) == 1 else g, shape)


# --- opaque terms ------------------------------------------------------------------------------


def _opaque_forward(ctx, eqn, ins: list[Sum]) -> list[Sum]:
    name = _display_name(eqn)
    outs = []
    for k, var in enumerate(eqn.outvars):
        fn = lambda *vals, k=k: jx.bind(eqn, list(vals))[k]
        outs.append(sy.opaque(name, jx.aval(var).shape, ins, fn, ctx.uid()))
    return outs


def _display_name(eqn) -> str:
    name = jx.name(eqn)
    if name in jx.CALLS or name in jx.CUSTOM_JVP or name in jx.CUSTOM_VJP:
        called = jx.call_name(eqn)
        return called.lstrip("_") if called != "?" else name
    return name


def _opaque_vjp(ctx, eqn, ins: list[Sum], cts: list, act) -> list:
    """Cotangents of an equation the symbolic layer does not express: opaque terms that
    `jaxls.ad.vjp` computes."""
    from jaxls._src.ad.api import vjp

    positions = [k for k, a in enumerate(act) if a]
    float_outs = [k for k, v in enumerate(eqn.outvars) if jx.is_float_aval(jx.aval(v))]
    ct_args = [
        cts[k] if cts[k] is not None else sy.zero(tuple(jx.aval(eqn.outvars[k]).shape))
        for k in float_outs
    ]
    n_in = len(ins)
    out: list[Sum | None] = []
    for pos in range(len(ins)):
        if pos not in positions:
            out.append(None)
            continue

        def fn(*vals, pos=pos):
            primals, ct_vals = list(vals[:n_in]), vals[n_in:]

            def g(*xs):
                full = list(primals)
                for p, x in zip(positions, xs, strict=True):
                    full[p] = x
                res = jx.bind(eqn, full)
                return tuple(res[k] for k in float_outs)

            _, pullback = vjp(g, *[primals[p] for p in positions])
            return pullback(tuple(ct_vals))[positions.index(pos)]

        shape = tuple(jx.aval(eqn.invars[pos]).shape)
        # vjp_max, or vjp1_select_n for the second input where several are active
        name = f"vjp{pos if len(positions) > 1 else ''}_{_display_name(eqn)}"
        out.append(sy.opaque(name, shape, (*ins, *ct_args), fn, ctx.uid()))
    return out


# --- rules: first-order primitives -------------------------------------------------------------

FORWARD: dict[str, Callable] = {}
"""``rule(eqn, ins) -> outs``: the expressions of an equation's outputs."""

VJP: dict[str, Callable] = {}
"""``rule(eqn, ins, outs, cts, act) -> cts_in``: the adjoint expressions of its inputs."""


def _unbroadcast(g: Sum, x: Sum) -> Sum:
    """The adjoint of an operand broadcast to the result's shape: its broadcast axes
    summed."""
    if x.shape == g.shape:
        return g
    if x.shape == ():
        return sy.total(g)
    axes = [d for d, (m, n) in enumerate(zip(x.shape, g.shape, strict=True)) if m == 1 and n != 1]
    return _conform(sy.reduce_sum(g, axes), x.shape)


def _bcast(a: Sum, shape) -> Sum:
    """An operand broadcast to the result's shape (a scalar, or axes of size 1)."""
    shape = tuple(shape)
    a = sy.as_column(a)
    if a.shape == shape:
        return a
    if a.shape == ():
        return sy.times(a, sy.number(1, shape))
    if len(a.shape) == len(shape):
        return sy.broadcast(a, shape, tuple(range(len(shape))))
    raise Unsupported("a broadcast of another rank")


def _out_shape(eqn, k=0):
    return tuple(jx.aval(eqn.outvars[k]).shape)


def _add_forward(eqn, ins):
    a, b = ins
    shape = _out_shape(eqn)
    return [sy.add(_bcast(a, shape), _bcast(b, shape))]


def _sub_forward(eqn, ins):
    a, b = ins
    shape = _out_shape(eqn)
    return [sy.sub(_bcast(a, shape), _bcast(b, shape))]


def _add_vjp(eqn, ins, outs, cts, act, sign=1):
    (g,) = cts
    a, b = ins
    return [_unbroadcast(g, a), _unbroadcast(g if sign > 0 else sy.neg(g), b)]


FORWARD["add"] = FORWARD["add_any"] = _add_forward
VJP["add"] = VJP["add_any"] = _add_vjp
FORWARD["sub"] = _sub_forward
VJP["sub"] = lambda eqn, ins, outs, cts, act: _add_vjp(eqn, ins, outs, cts, act, sign=-1)
FORWARD["neg"] = lambda eqn, ins: [sy.neg(ins[0])]
VJP["neg"] = lambda eqn, ins, outs, cts, act: [sy.neg(cts[0])]


def _identity_forward(eqn, ins):
    """A copy, or a conversion to a floating type (an integer ``n`` is the number ``n``)."""
    if jx.is_float_aval(jx.aval(eqn.invars[0])) and not jx.is_float_aval(jx.aval(eqn.outvars[0])):
        raise Unsupported("a conversion from floats to integers")
    return [ins[0]]


for _name in ("convert_element_type", "copy", "copy_p", "stop_gradient", "optimization_barrier"):
    FORWARD[_name] = _identity_forward
    VJP[_name] = lambda eqn, ins, outs, cts, act: [cts[0]]


def _operands(eqn, ins) -> tuple[Sum, Sum]:
    """The two operands of an elementwise product, broadcast alike (a scalar stays a
    scalar: it scales)."""
    shape = _out_shape(eqn)
    a, b = ins
    return (a if a.shape == () else _bcast(a, shape)), (b if b.shape == () else _bcast(b, shape))


def _mul_forward(eqn, ins):
    a, b = _operands(eqn, ins)
    return [sy.hadamard(a, b)]


def _mul_vjp(eqn, ins, outs, cts, act):
    (g,) = cts
    a, b = _operands(eqn, ins)
    return [
        _unbroadcast(sy.hadamard(g, b), ins[0]) if act[0] else None,
        _unbroadcast(sy.hadamard(g, a), ins[1]) if act[1] else None,
    ]


FORWARD["mul"] = _mul_forward
VJP["mul"] = _mul_vjp


def _div_forward(eqn, ins):
    a, b = _operands(eqn, ins)
    return [sy.hadamard(a, sy.power(b, -1))]


def _div_vjp(eqn, ins, outs, cts, act):
    (g,) = cts
    a, b = _operands(eqn, ins)
    ga = sy.hadamard(g, sy.power(b, -1)) if act[0] else None
    gb = sy.neg(sy.hadamard(sy.hadamard(g, a), sy.power(b, -2))) if act[1] else None
    return [
        None if ga is None else _unbroadcast(ga, ins[0]),
        None if gb is None else _unbroadcast(gb, ins[1]),
    ]


FORWARD["div"] = _div_forward
VJP["div"] = _div_vjp


def _power_rule(p):
    def forward(eqn, ins):
        return [sy.power(ins[0], p(eqn))]

    def vjp(eqn, ins, outs, cts, act):
        y = p(eqn)
        return [sy.hadamard(cts[0], sy.scale(y, sy.power(ins[0], y - 1)))]

    return forward, vjp


for _name, _p in (
    ("integer_pow", lambda eqn: Fraction(eqn.params["y"])),
    ("square", lambda eqn: Fraction(2)),
    ("sqrt", lambda eqn: Fraction(1, 2)),
    ("rsqrt", lambda eqn: Fraction(-1, 2)),
    ("cbrt", lambda eqn: Fraction(1, 3)),
):
    FORWARD[_name], VJP[_name] = _power_rule(_p)


def _pow_exponent(eqn) -> Fraction:
    y = eqn.invars[1]
    if not jx.is_literal(y):
        raise Unsupported("pow with a variable exponent")
    c = sy.to_coef(jx.literal_value(y))
    if not isinstance(c, Fraction) or jx.aval(y).shape != ():
        raise Unsupported("pow with an irrational exponent")
    return c


def _pow_forward(eqn, ins):
    return [sy.power(ins[0], _pow_exponent(eqn))]


def _pow_vjp(eqn, ins, outs, cts, act):
    if act[1]:
        raise Unsupported("pow in its exponent")
    y = _pow_exponent(eqn)
    return [sy.hadamard(cts[0], sy.scale(y, sy.power(ins[0], y - 1))), None]


FORWARD["pow"] = _pow_forward
VJP["pow"] = _pow_vjp


def _one_plus(x: Sum, s: Sum, sign=1) -> Sum:
    """``1 + s`` (``1 - s``) with the ones shaped like ``x``."""
    one = sy.number(1, x.shape)
    return sy.add(one, s) if sign > 0 else sy.sub(one, s)


_DERIVATIVES: dict[str, Callable[[Sum, Sum], Sum]] = {
    "exp": lambda x, y: y,
    "log": lambda x, y: sy.power(x, -1),
    "sin": lambda x, y: sy.func("cos", x),
    "cos": lambda x, y: sy.neg(sy.func("sin", x)),
    "tan": lambda x, y: _one_plus(x, sy.power(y, 2)),
    "tanh": lambda x, y: _one_plus(x, sy.power(y, 2), -1),
    "logistic": lambda x, y: sy.hadamard(y, _one_plus(x, y, -1)),
    "log1p": lambda x, y: sy.power(_one_plus(x, x), -1),
    "expm1": lambda x, y: _one_plus(x, y),
    "sinh": lambda x, y: sy.func("cosh", x),
    "cosh": lambda x, y: sy.func("sinh", x),
    "atan": lambda x, y: sy.power(_one_plus(x, sy.power(x, 2)), -1),
    "asin": lambda x, y: sy.power(_one_plus(x, sy.power(x, 2), -1), Fraction(-1, 2)),
    "acos": lambda x, y: sy.neg(sy.power(_one_plus(x, sy.power(x, 2), -1), Fraction(-1, 2))),
    "asinh": lambda x, y: sy.power(_one_plus(x, sy.power(x, 2)), Fraction(-1, 2)),
    "atanh": lambda x, y: sy.power(_one_plus(x, sy.power(x, 2), -1), -1),
    "erf": lambda x, y: sy.scale(2 / math.sqrt(math.pi), sy.func("exp", sy.neg(sy.power(x, 2)))),
    "abs": lambda x, y: sy.func("sign", x),
    "lgamma": lambda x, y: sy.func("digamma", x),
}


def _elementwise(name):
    def forward(eqn, ins):
        return [sy.func(name, ins[0])]

    def vjp(eqn, ins, outs, cts, act):
        return [sy.hadamard(cts[0], _DERIVATIVES[name](ins[0], outs[0]))]

    return forward, vjp


for _name in _DERIVATIVES:
    FORWARD[_name], VJP[_name] = _elementwise(_name)
FORWARD["sign"] = lambda eqn, ins: [sy.func("sign", ins[0])]


def _transpose_forward(eqn, ins):
    perm = tuple(eqn.params["permutation"])
    if perm == tuple(range(len(perm))):
        return [ins[0]]
    if perm == (1, 0):
        return [sy.transpose(ins[0])]
    raise Unsupported("a transpose of rank > 2")


FORWARD["transpose"] = _transpose_forward
VJP["transpose"] = lambda eqn, ins, outs, cts, act: _transpose_forward(eqn, cts)


def _reduce_sum_forward(eqn, ins):
    return [sy.reduce_sum(ins[0], eqn.params["axes"])]


def _reduce_sum_vjp(eqn, ins, outs, cts, act):
    shape = tuple(ins[0].shape)
    axes = tuple(eqn.params["axes"])
    kept = tuple(d for d in range(len(shape)) if d not in axes)
    return [sy.broadcast(cts[0], shape, kept)]


FORWARD["reduce_sum"] = _reduce_sum_forward
VJP["reduce_sum"] = _reduce_sum_vjp


def _broadcast_forward(eqn, ins):
    return [sy.broadcast(ins[0], _out_shape(eqn), eqn.params["broadcast_dimensions"])]


def _broadcast_vjp(eqn, ins, outs, cts, act):
    if len(eqn.invars) != 1:
        raise Unsupported("a dynamic broadcast")
    in_shape = tuple(ins[0].shape)
    out_shape = _out_shape(eqn)
    dims = tuple(eqn.params["broadcast_dimensions"])
    axes = [d for d in range(len(out_shape)) if d not in dims]
    axes += [d for k, d in enumerate(dims) if in_shape[k] == 1 and out_shape[d] != 1]
    g = sy.reduce_sum(cts[0], sorted(axes)) if axes else cts[0]
    return [_conform(g, in_shape)]


FORWARD["broadcast_in_dim"] = _broadcast_forward
VJP["broadcast_in_dim"] = _broadcast_vjp


def _reshape_forward(eqn, ins):
    if len(eqn.invars) != 1:
        raise Unsupported("a dynamic reshape")
    return [sy.reshape(ins[0], _out_shape(eqn))]


def _reshape_vjp(eqn, ins, outs, cts, act):
    return [sy.reshape(cts[0], tuple(ins[0].shape))]


for _name in ("reshape", "squeeze", "expand_dims"):
    FORWARD[_name] = _reshape_forward
    VJP[_name] = _reshape_vjp


class _Dot(NamedTuple):
    """A ``dot_general`` of operands of rank <= 2 as a matrix product ``L' R'``."""

    kind: str  # "matmul", "outer", "scale", "frobenius"
    lhs_t: bool  # L' = L^T
    rhs_t: bool  # R' = R^T
    out_t: bool  # the result is the transpose of L' R' (a row turned column)


def _dot_plan(eqn) -> _Dot:
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    if lb or rb:
        raise Unsupported("a batched dot_general")
    l_rank, r_rank = (len(jx.aval(v).shape) for v in eqn.invars)
    lc, rc = tuple(lc), tuple(rc)
    if l_rank > 2 or r_rank > 2:
        raise Unsupported("a dot_general of rank > 2")
    if l_rank == 0 or r_rank == 0:
        return _Dot("scale", False, False, False)
    if len(lc) == 0:
        if l_rank == 1 and r_rank == 1:
            return _Dot("outer", False, True, False)
        raise Unsupported("an outer product of rank > 2")
    if len(lc) == 1:
        lhs_t = l_rank == 1 or lc == (0,)
        rhs_t = r_rank == 2 and rc == (1,)
        out_t = l_rank == 1 and r_rank == 2
        return _Dot("matmul", lhs_t, rhs_t, out_t)
    if len(lc) == 2 and l_rank == r_rank == 2:
        return _Dot("frobenius", False, rc != lc, False)
    raise Unsupported("a dot_general contracting several dimensions")


def _t(a: Sum, flag: bool) -> Sum:
    return sy.transpose(a) if flag else a


def _dot_forward(eqn, ins):
    plan = _dot_plan(eqn)
    a, b = ins
    if plan.kind == "scale":
        return [sy.hadamard(a, b)]
    if plan.kind == "outer":
        return [sy.matmul(a, sy.transpose(b))]
    if plan.kind == "frobenius":  # sum_ij L_ij R'_ij = tr(L^T R')
        return [sy.trace(sy.matmul(sy.transpose(a), _t(b, plan.rhs_t)))]
    p = sy.matmul(_t(a, plan.lhs_t), _t(b, plan.rhs_t))
    return [_t(p, plan.out_t)]


def _dot_vjp(eqn, ins, outs, cts, act):
    plan = _dot_plan(eqn)
    a, b = ins
    (g,) = cts
    if plan.kind == "scale":
        return _mul_vjp(eqn, ins, outs, cts, act)
    if plan.kind == "outer":
        return [
            sy.matmul(g, b) if act[0] else None,
            sy.matmul(sy.transpose(g), a) if act[1] else None,
        ]
    if plan.kind == "frobenius":
        return [
            sy.times(g, _t(b, plan.rhs_t)) if act[0] else None,
            sy.times(g, _t(a, plan.rhs_t)) if act[1] else None,
        ]
    gp = _t(g, plan.out_t)
    lp, rp = _t(a, plan.lhs_t), _t(b, plan.rhs_t)
    ga = _t(sy.matmul(gp, sy.transpose(rp)), plan.lhs_t) if act[0] else None
    gb = _t(sy.matmul(sy.transpose(lp), gp), plan.rhs_t) if act[1] else None
    return [ga, gb]


FORWARD["dot_general"] = _dot_forward
VJP["dot_general"] = _dot_vjp


# --- rules: jax.numpy functions recognised whole -----------------------------------------------


class Named(NamedTuple):
    """A ``jit`` function of `jax.numpy` recognised by its name and shapes."""

    check: Callable  # check(in_shapes, out_shapes) -> bool
    forward: Callable  # forward(ins) -> outs
    vjp: Callable  # vjp(ins, outs, cts) -> cts_in


def _square(s) -> bool:
    return len(s) == 2 and s[0] == s[1] and s[0] > 1


def _inv_t(x: Sum) -> Sum:
    return sy.transpose(sy.inv(x))


def _solve_vjp(ins, outs, cts):
    a, _ = ins
    (x,), (g,) = outs, cts
    gb = sy.matmul(_inv_t(a), g)
    ga = sy.neg(sy.matmul(gb, sy.transpose(x)))
    return [ga, gb]


NAMED: dict[str, Named] = {
    "trace": Named(
        lambda i, o: _square(i[0]) and o == [()],
        lambda ins: [sy.trace(ins[0])],
        lambda ins, outs, cts: [sy.times(cts[0], sy.from_atom(sy.Identity(ins[0].shape[0])))],
    ),
    "det": Named(
        lambda i, o: _square(i[0]) and o == [()],
        lambda ins: [sy.det(ins[0])],
        lambda ins, outs, cts: [sy.times(cts[0], sy.times(outs[0], _inv_t(ins[0])))],
    ),
    "slogdet": Named(
        lambda i, o: _square(i[0]) and o == [(), ()],
        lambda ins: [sy.func("sign", sy.det(ins[0])), sy.logabsdet(ins[0])],
        lambda ins, outs, cts: [None if cts[1] is None else sy.times(cts[1], _inv_t(ins[0]))],
    ),
    "inv": Named(
        lambda i, o: _square(i[0]) and o == [i[0]],
        lambda ins: [sy.inv(ins[0])],
        lambda ins, outs, cts: [
            sy.neg(sy.matmul(sy.matmul(sy.transpose(outs[0]), cts[0]), sy.transpose(outs[0])))
        ],
    ),
    "solve": Named(
        lambda i, o: _square(i[0]) and len(i[1]) in (1, 2) and i[1][0] == i[0][0] and o == [i[1]],
        lambda ins: [sy.matmul(sy.inv(ins[0]), ins[1])],
        _solve_vjp,
    ),
    "diagonal": Named(
        lambda i, o: _square(i[0]) and o == [i[0][:1]],
        lambda ins: [sy.diagonal(ins[0])],
        lambda ins, outs, cts: [sy.diagmat(cts[0])],
    ),
    "_diag": Named(
        lambda i, o: len(i[0]) == 1 and i[0][0] > 1 and o == [i[0] * 2],
        lambda ins: [sy.diagmat(ins[0])],
        lambda ins, outs, cts: [sy.diagonal(cts[0])],
    ),
}


def _logaddexp_forward(ins):
    a, b = ins
    if sy.is_number(b) == 0:
        return [sy.func("softplus", a)]
    if sy.is_number(a) == 0:
        return [sy.func("softplus", b)]
    shape = a.shape if a.shape else b.shape
    return [
        sy.func("log", sy.add(sy.func("exp", _bcast(a, shape)), sy.func("exp", _bcast(b, shape))))
    ]


def _logaddexp_vjp(ins, outs, cts):
    a, b = ins
    (g,) = cts
    shape = g.shape
    d = sy.sub(_bcast(a, shape), _bcast(b, shape))
    return [
        _unbroadcast(sy.hadamard(g, sy.func("logistic", d)), a),
        _unbroadcast(sy.hadamard(g, sy.func("logistic", sy.neg(d))), b),
    ]


CUSTOM_NAMED: dict[str, Named] = {
    "logaddexp": Named(
        lambda i, o: len(i) == 2 and all(s in ((), o[0]) for s in i),
        _logaddexp_forward,
        _logaddexp_vjp,
    ),
}
"""The ``custom_jvp`` functions of `jax.numpy` recognised whole (the others are opaque)."""


def _named(eqn) -> Named | None:
    table = CUSTOM_NAMED if jx.name(eqn) in jx.CUSTOM_JVP else NAMED
    named = table.get(jx.call_name(eqn))
    if named is None:
        return None
    ins = [tuple(jx.aval(v).shape) for v in eqn.invars]
    outs = [tuple(jx.aval(v).shape) for v in eqn.outvars]
    if not all(jx.is_float_aval(jx.aval(v)) for v in eqn.invars) or not named.check(ins, outs):
        return None
    return named


# --- the Hessian ---------------------------------------------------------------------------------


def _hessian(grad: Formula, args: list, argnums: int) -> Formula:
    """The Hessian as the gradient of ``<v, grad f(x)>`` in ``x``, ``H v``, with ``v``
    taken off the right."""
    x = args[argnums]
    if x.ndim > 1:
        raise NotImplementedError(
            "jaxls.calculus.derive(order=2): the Hessian in a matrix argument is a 4-d "
            "array, which has no matrix formula; differentiate in a vector argument."
        )
    names = list(grad.names)
    v_name = "v"
    while v_name in names:
        v_name += "_"
    v = jnp.asarray(np.random.RandomState(1).standard_normal(x.shape), x.dtype)

    def directional(*a):
        *fargs, direction = a
        return jnp.sum(direction * grad.evaluate(*fargs))

    expr = gradient_expression(directional, [*args, v], argnums, [*names, v_name])
    hess = _strip_direction(expr, sy.Symbol(v_name, tuple(x.shape)))
    return Formula(hess, names, argnums, 2)


def _strip_direction(expr: Sum, v: sy.Symbol) -> Sum:
    """``M`` of an expression ``M v`` linear in the direction ``v``."""
    if not v.shape:
        terms = []
        for t in expr.terms:
            mono = dict(t.scalars)
            if mono.get(v) != 1:
                raise _no_matrix_form()
            del mono[v]
            terms.append(sy.make_term(t.coef, tuple(mono.items()), t.chain))
        out = sy.make_sum(terms, (), (1, 1))
    else:
        n = v.shape[0]
        out = sy.zero((n, n))
        for t in expr.terms:
            out = sy.add(out, _strip_term(t, v, n))
    if any(a == v for a in sy.atoms(out)):
        raise _no_matrix_form()
    return out


def _no_matrix_form() -> NotImplementedError:
    return NotImplementedError(
        "jaxls.calculus.derive(order=2): this Hessian has no matrix formula here (the "
        "symbolic layer could not write it as a matrix times a direction)."
    )


def _strip_term(t: sy.Term, v: sy.Symbol, n: int) -> Sum:
    """``M`` of one term ``M v``: ``v`` last in the chain, in a last parenthesised factor,
    in a Hadamard product (``u .* v = Diag(u) v``) or in a scalar factor ``w^T v``."""
    for k, (atom, p) in enumerate(t.scalars):
        if isinstance(atom, sy.Inner) and v in (atom.chain[-1], sy.transpose_atom(atom.chain[0])):
            if p != 1:
                raise _no_matrix_form()
            chain = atom.chain if atom.chain[-1] == v else sy.transpose_chain(atom.chain)
            rest = sy.Sum(
                (sy.make_term(t.coef, t.scalars[:k] + t.scalars[k + 1 :], ()),), (), (1, 1)
            )
            row = sy.make_term(1, (), chain[:-1])
            outer = sy.matmul(_chain(t.chain), sy.Sum((row,), (n,), (1, n)))
            return sy.times(rest, sy.with_shape(outer, (n, n)))
    if not t.chain:
        raise _no_matrix_form()
    *prefix, last = t.chain
    if last == v:
        m = sy.from_atom(sy.Identity(n))
    elif isinstance(last, sy.Paren) and any(a == v for a in sy.atoms(last.arg)):
        m = sy.zero((n, n))
        for u in last.arg.terms:
            m = sy.add(m, _strip_term(u, v, n))
    elif isinstance(last, sy.Had) and (sy.from_atom(v), Fraction(1)) in last.factors:
        factors = dict(last.factors)
        del factors[sy.from_atom(v)]
        rest = sy._had_build(Fraction(1), (), factors, (n,), (n, 1))
        m = sy.diagmat(rest)
    else:
        raise _no_matrix_form()
    scalar = sy.Sum((sy.make_term(t.coef, t.scalars, ()),), (), (1, 1))
    return sy.times(scalar, sy.matmul(_chain(tuple(prefix)), m) if prefix else m)


def _chain(chain: tuple) -> Sum:
    t = sy.make_term(1, (), chain)
    cs = (chain[0].cshape[0], chain[-1].cshape[1])
    return sy.Sum((t,), sy.shape_of_cshape(cs), cs)


# --- verification ------------------------------------------------------------------------------


def _verify(formula: Formula, f: Callable, args: list) -> None:
    """Compare the formula with `jaxls.ad` at the example and two perturbations of it."""
    from jaxls._src.ad.api import grad, hessian

    transform = grad if formula.order == 1 else hessian
    reference = transform(f, formula.argnums)
    rng = np.random.RandomState(0)
    points = [args]
    for _ in range(2):
        point = []
        for a in args:
            if jnp.issubdtype(a.dtype, jnp.floating):  # in NumPy: no compilation
                value = np.asarray(a, np.float64)
                rms = float(np.sqrt(np.mean(np.square(value)))) if value.size else 0.0
                noise = rng.standard_normal(a.shape) * 0.05 * (rms if rms > 0 else 1.0)
                a = jnp.asarray((value + noise).astype(a.dtype))
            point.append(a)
        points.append(point)
    dtype = jnp.result_type(*[a.dtype for a in args if jnp.issubdtype(a.dtype, jnp.floating)])
    tol = 1e-7 if jnp.finfo(dtype).bits >= 64 else 2e-3
    # One compiled program for the three points (eagerly, each small operation of the
    # formula and of the reverse sweep would be compiled on its own), compiled without
    # XLA's backend optimisations: it runs three times, and compiling is most of its cost.
    both = jax.jit(lambda *p: (formula.evaluate(*p), reference(*p)))
    compiled = both.lower(*args).compile(compiler_options={"xla_backend_optimization_level": "0"})
    for k, point in enumerate(points):
        got_k, want_k = compiled(*point)
        want = np.asarray(want_k, np.float64)
        if not np.all(np.isfinite(want)):
            if k == 0:
                raise ValueError(
                    "jaxls.calculus.derive: the derivative is not finite at the example "
                    "arguments; choose a point inside the function's domain."
                )
            continue
        got = np.asarray(got_k, np.float64)
        scale = 1.0 + float(np.max(np.abs(want), initial=0.0))
        err = (
            float(np.max(np.abs(got - want), initial=0.0)) if got.shape == want.shape else math.inf
        )
        if not np.all(np.isfinite(got)) or err > tol * scale:
            raise DerivationError(
                f"jaxls.calculus.derive: the derived formula {formula.text!r} disagrees with "
                f"jaxls.ad (max error {err:.3g}, at point {k}); this is a bug in "
                "jaxls.calculus.derive, please report it with the function."
            )


__all__ = ["FORWARD", "NAMED", "VJP", "DerivationError", "Formula", "derive", "gradient_expression"]
