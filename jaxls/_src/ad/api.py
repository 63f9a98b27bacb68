"""The public transforms, with jax's signatures: ``jvp``, ``vjp``, ``grad``, ... on pytrees.

Each traces the function once to a jaxpr (`jax.make_jaxpr`) and interprets it with
jaxls's own rules (`forward`, `reverse`); what they return is ordinary JAX computation, so
`jax.jit` and `jax.vmap` compose with every transform and XLA compiles the result.

jax's contract, kept: what jax refuses, these refuse, with an error that names the call,
the argument and the fix (integer, boolean and PRNG-key inputs to ``grad``, ``jacrev``,
``jacfwd`` and ``hessian``, float0 ones even with ``allow_int``; complex outputs without
``holomorphic=True``; complex inputs to the forward-mode Jacobians without it; a tangent or
cotangent that is not a float for a floating primal or output); integer, boolean and key
inputs of ``vjp`` get float0 cotangents and those of ``jvp`` take and give float0 tangents,
as in jax; keyword arguments of the transformed function are passed through to it, never
differentiated. One convenience jax does not offer: a real tangent or cotangent of another
float dtype (a Python ``1.0`` for a bfloat16 output) is cast to the dtype it seeds.

One limitation jax does not have: the function is traced before it is differentiated, so
Python control flow on the values of its differentiated inputs (``if x > 0:``, ``int(x)``)
cannot run, in its custom_jvp/custom_vjp rules either (`jax.grad` runs them on concrete
values outside `jax.jit`). It raises `TracedControlFlowError`, a
`jax.errors.ConcretizationTypeError`, that names the call and the fixes.

One extension jax does not have: reverse mode through `lax.while_loop` (jax issue 4106),
bounded by ``max_loop_steps=N`` (``grad``, ``value_and_grad``, ``vjp``, ``jacrev``,
``hessian``, ``hvp``). The loop runs as N guarded iterations (``c = body(c) if cond(c) else
c``) whose tapes are kept, N per loop, and read back by the backward sweep. A loop still
running after N iterations gets NaN gradients, every cotangent through it, while its
outputs stay the loop's own (it runs on, untaped): never a silently truncated gradient.
Without a bound, a loop whose inputs are concrete (the transform called eagerly, outside
`jax.jit`, `jax.vmap` and forward mode) has its iterations counted first and is reversed
exactly (jax does as much for a ``lax.fori_loop`` with concrete bounds, which it runs as a
scan); a traced loop without a bound is refused, as in jax. A ``lax.fori_loop`` with array
bounds (``fori_loop(jnp.float32(0), ...)``) is a while loop once traced. With
``loop_checkpoints=k`` the tapes are not kept but recomputed, by recursive checkpointing:
memory ``O(k log_k N)`` instead of ``O(N)``, each iteration evaluated up to ``log_k N``
times instead of once (see `value_and_grad`).
"""

from __future__ import annotations

import contextlib
import operator
from typing import Any, NamedTuple
from collections.abc import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.tree_util import keystr

from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.forward import jvp_closed
from jaxls._src.ad.registry import LoopBound
from jaxls._src.ad.reverse import backward_sweep, forward_sweep
from jaxls._src.results import PyTree

FLOAT0 = jax.dtypes.float0

# --- dtypes and the checks on entry ---------------------------------------------------------


def _dtype(x) -> Any:
    """The dtype of an array, tracer or Python scalar (float0 NumPy arrays and PRNG keys,
    whose dtype is JAX's extended ``key<impl>``, included)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return jnp.result_type(x)
    return dtype if _is_key(dtype) else np.dtype(dtype)


def _is_float(dtype) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.inexact))


def _is_complex(dtype) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.complexfloating))


def _is_key(dtype) -> bool:
    """A PRNG key's dtype (JAX's extended dtypes): no derivative, no zero of its own."""
    return bool(jax.dtypes.issubdtype(dtype, jax.dtypes.extended))


def _is_number(dtype) -> bool:
    """Numbers and booleans: the inputs jax accepts to differentiate (float0 and other
    dtypes that are not numbers are refused even with ``allow_int``)."""
    return _is_key(dtype) or bool(
        jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)
    )


def _name(dtype) -> str:
    """``float32``, ``key<fry>``, and ``float0`` (NumPy prints it as a structured dtype)."""
    return "float0" if dtype == FLOAT0 else str(dtype)


def _float0_zeros(shape):
    return np.zeros(shape, FLOAT0)


def _check_fun(call: str, fun) -> None:
    if not callable(fun):
        raise TypeError(
            f"jaxls.ad.{call}: `fun` must be callable, got {fun!r} (a {type(fun).__name__})."
        )


def _check_flag(call: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"jaxls.ad.{call}({name}={value!r}): `{name}` must be True or False.")
    return bool(value)


def _check_max_loop_steps(call: str, value) -> int | None:
    """None, or a positive int: the most iterations reverse mode records per while loop."""
    if value is None:
        return None
    fix = (
        "the most iterations reverse mode records of each `lax.while_loop` (at least its "
        "trip count: past it the gradients are NaN), or None to refuse while loops"
    )
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        steps = operator.index(value)
    except TypeError:
        raise TypeError(
            f"jaxls.ad.{call}(max_loop_steps={value!r}): `max_loop_steps` must be a positive "
            f"int, {fix}."
        ) from None
    if steps < 1:
        raise ValueError(
            f"jaxls.ad.{call}(max_loop_steps={value!r}): `max_loop_steps` must be at least 1: "
            f"{fix}."
        )
    return steps


def _check_loop_checkpoints(call: str, value) -> int | None:
    """None, or an int of at least 2: the checkpoints per level of a while loop's recursion."""
    if value is None:
        return None
    fix = (
        "the carries reverse mode keeps per level of its recursive checkpointing of each "
        "`lax.while_loop` (2: bisection, the least memory), or None to keep the tape of "
        "every iteration"
    )
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        checkpoints = operator.index(value)
    except TypeError:
        raise TypeError(
            f"jaxls.ad.{call}(loop_checkpoints={value!r}): `loop_checkpoints` must be an int "
            f"of at least 2, {fix}."
        ) from None
    if checkpoints < 2:
        raise ValueError(
            f"jaxls.ad.{call}(loop_checkpoints={value!r}): `loop_checkpoints` must be at "
            f"least 2: {fix}."
        )
    return checkpoints


def _loop_bound(max_loop_steps: int | None, loop_checkpoints: int | None):
    """What the forward sweep is given for ``while`` loops: the bound, with the checkpoints."""
    if loop_checkpoints is None:
        return max_loop_steps
    return LoopBound(max_loop_steps, loop_checkpoints)


def _check_argnums(call: str, argnums) -> tuple[int, ...]:
    """``argnums`` as a tuple of ints, checked when the transform is made (as jax does)."""
    try:
        if isinstance(argnums, (tuple, list)):
            nums = tuple(operator.index(n) for n in argnums)
        else:
            nums = (operator.index(argnums),)
    except TypeError:
        raise TypeError(
            f"jaxls.ad.{call}(argnums={argnums!r}): `argnums` must be an int or a sequence of "
            "ints, the positions of the arguments to differentiate."
        ) from None
    _check_distinct(call, argnums, nums)
    return nums


def _check_distinct(call: str, argnums, nums) -> None:
    seen = set()
    for n in nums:
        if n in seen:
            raise ValueError(
                f"jaxls.ad.{call}(argnums={argnums!r}): `argnums` names argument {n} twice."
            )
        seen.add(n)


def _resolve_argnums(call: str, argnums, nums, num_args: int, kwargs) -> tuple[int, ...]:
    """The argument positions for a call with ``num_args`` positional arguments."""
    need = max((n + 1 if n >= 0 else -n for n in nums), default=0)
    if need > num_args:
        plural = "s" if need > 1 else ""
        passed = (
            " (keyword arguments are passed through to `fun`, never differentiated)"
            if kwargs
            else ""
        )
        raise TypeError(
            f"jaxls.ad.{call}(argnums={argnums!r}): differentiates positional arguments and "
            f"needs at least {need} positional argument{plural}, got {num_args}{passed}."
        )
    resolved = tuple(n % num_args for n in nums)
    _check_distinct(call, argnums, resolved)
    return resolved


def _leaves(call: str, what: str, index: int, tree) -> list:
    """``(label, leaf)`` for the leaves of one argument, each checked to be a JAX type."""
    result = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        label = f"{what} {index}{keystr(path)}"
        try:
            jax.typeof(leaf)
        except TypeError:
            raise TypeError(
                f"jaxls.ad.{call}: {label} ({leaf!r}, a {type(leaf).__name__}) is not a JAX "
                "array or scalar. Close over it in `fun` instead of passing it."
            ) from None
        result.append((label, leaf))
    return result


def _check_inputs(
    call, nums, diff, *, holomorphic: bool, allow_int: bool, real: bool, int_zeros: bool
):
    """The differentiated arguments' dtypes, as jax checks them.

    ``real``: forward-mode Jacobians, which want real inputs unless ``holomorphic``;
    ``int_zeros``: ``jacrev``, whose ``allow_int`` fills integer blocks with zeros of their
    dtype (a PRNG key has none)."""
    for n, arg in zip(nums, diff, strict=True):
        for label, leaf in _leaves(call, "argument", n, arg):
            dtype = _dtype(leaf)
            if holomorphic and not _is_complex(dtype):
                raise TypeError(
                    f"jaxls.ad.{call}: with holomorphic=True the inputs must be complex; "
                    f"{label} is {_name(dtype)}. Make it complex (`x.astype(jnp.complex64)`) "
                    "or drop holomorphic=True."
                )
            if not _is_number(dtype):
                raise TypeError(
                    f"jaxls.ad.{call}: {label} is {_name(dtype)}, which is not a number (a "
                    "float0 array is the tangent of an integer, not a point), so there is "
                    f"nothing to differentiate, allow_int or not (jax.{call} refuses it too). "
                    "Leave it out of `argnums`."
                )
            if not holomorphic and real and _is_complex(dtype):
                raise TypeError(
                    f"jaxls.ad.{call}: {label} is {_name(dtype)}, and {call} differentiates "
                    f"real inputs (as jax.{call} does). Pass holomorphic=True for a holomorphic "
                    "`fun`; for a non-holomorphic one, use jaxls.ad.jvp."
                )
            if _is_float(dtype):
                continue
            if not allow_int:
                fix = (
                    "or use jaxls.ad.jvp, whose integer inputs take float0 tangents"
                    if real
                    else "or pass allow_int=True for a float0 zero gradient"
                )
                raise TypeError(
                    f"jaxls.ad.{call}: {label} is {_name(dtype)}, and integer, boolean and "
                    f"PRNG key inputs have no derivative (jax.{call} refuses them too). Cast "
                    f"it to a float, leave it out of `argnums`, {fix}."
                )
            if int_zeros and _is_key(dtype):
                raise TypeError(
                    f"jaxls.ad.{call}(allow_int=True): {label} is {_name(dtype)}, a PRNG key, "
                    f"which has no zero of its dtype to fill its Jacobian block with (jax.{call} "
                    "fails on it too). Leave it out of `argnums`, or use jaxls.ad.grad or vjp, "
                    "which give it float0 zeros."
                )


def _check_outputs(call: str, out, *, holomorphic: bool) -> None:
    """Real floating outputs, complex ones if ``holomorphic``."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(out):
        dtype, where = _dtype(leaf), f"output{keystr(path)}"
        if holomorphic and not _is_complex(dtype):
            raise TypeError(
                f"jaxls.ad.{call}: with holomorphic=True `fun` must return complex values; "
                f"its {where} is {_name(dtype)}."
            )
        if not holomorphic and _is_complex(dtype):
            raise TypeError(
                f"jaxls.ad.{call}: `fun`'s {where} is {_name(dtype)}. Pass "
                "holomorphic=True for the derivative of a holomorphic function; for a "
                "non-holomorphic one, use jaxls.ad.vjp (as jax asks too)."
            )
        if not _is_float(dtype):
            raise TypeError(
                f"jaxls.ad.{call}: `fun`'s {where} is {_name(dtype)}, which has no "
                f"derivative (jax.{call} refuses it too); return it as `aux` with "
                "has_aux=True, or use jaxls.ad.vjp, whose integer, boolean and key outputs "
                "take float0 cotangents."
            )


def _check_scalar(call: str, value, holomorphic: bool) -> None:
    """One real (``holomorphic``: complex) floating scalar, as jax's ``grad`` asks."""
    kind = "complex" if holomorphic else "real"
    fix = (
        "For a Jacobian use jaxls.ad.jacrev or jacfwd; for a vector-Jacobian product, "
        "jaxls.ad.vjp; to return more than the value, has_aux=True."
    )
    if value is None or not jax.tree_util.treedef_is_leaf(jax.tree.structure(value)):
        got = "None" if value is None else f"a {type(value).__name__}"
        raise TypeError(f"jaxls.ad.{call}: `fun` must return a {kind} scalar, got {got}. {fix}")
    dtype, shape = _dtype(value), jnp.shape(value)
    if shape != ():
        raise TypeError(
            f"jaxls.ad.{call}: `fun` must return a {kind} scalar, got "
            f"{_name(dtype)}{list(shape)}. {fix}"
        )
    if not _is_float(dtype):
        raise TypeError(
            f"jaxls.ad.{call}: `fun` must return a {kind} scalar, got {_name(dtype)}[], which "
            "has no derivative (jax.grad refuses it too); for a function with integer "
            "outputs, use jaxls.ad.vjp, whose integer outputs take float0 cotangents."
        )
    _check_outputs(call, value, holomorphic=holomorphic)


class TracedControlFlowError(jax.errors.ConcretizationTypeError):
    """Python control flow on a value that jaxls.ad has traced (``if x > 0:``, ``int(x)``).

    A `jax.errors.ConcretizationTypeError`, so a `TypeError`: code that catches JAX's own
    error (`jax.errors.TracerBoolConversionError` is one) catches it too. The original
    error is its ``__cause__``."""

    def __init__(self, message: str):
        # JAX's constructor takes a tracer; this error takes its message only.
        TypeError.__init__(self, message)


# The transforms that differentiate some arguments and keep the others concrete.
_ARGNUMS_CALLS = frozenset({"grad", "value_and_grad", "jacrev", "jacfwd", "hessian"})


@contextlib.contextmanager
def traced_values(call: str) -> Iterator[None]:
    """Re-raise a concretization error from tracing ``fun`` or running its custom rules as
    a `TracedControlFlowError` that names the call, the limitation and the fixes."""
    try:
        yield
    except TracedControlFlowError:
        raise  # from a transform inside this one (hessian's jacrev), already explained
    except (
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerIntegerConversionError,
    ) as err:
        fix = (
            "leave the argument the Python code reads out of `argnums` (arguments not "
            "differentiated, and keyword arguments, stay concrete)"
            if call in _ARGNUMS_CALLS
            else "close over a value that must stay concrete (`functools.partial`) instead "
            "of passing it"
        )
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TracedControlFlowError(
            f"jaxls.ad.{call} traces `fun` to a jaxpr before differentiating, so Python "
            "control flow on the values of its inputs cannot run, in `fun` or in its "
            "custom_jvp/custom_vjp rules (`if x > 0:`, `int(x)`; here: "
            f"{first}). jax's transforms run them on concrete values outside `jax.jit`; "
            "jaxls.ad cannot. Use `jax.lax.cond`, `jnp.where` or `lax.select` for branches, "
            f"`jax.lax.fori_loop` or `while_loop` for loops, or {fix}."
        ) from err


def _split_aux(call: str, out):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(
            f"jaxls.ad.{call}(has_aux=True): `fun` must return a pair (out, aux), got "
            f"{type(out).__name__}."
        )
    return out[0], out[1]


def _primals(c: jx.Closed, flat) -> list:
    """The primals as arrays of the traced input types (a Python ``2.0`` is ``float32``
    without x64, and every rule must see that dtype)."""
    return [jnp.asarray(p, v.aval.dtype) for p, v in zip(flat, c.jaxpr.invars, strict=True)]


# --- forward mode ---------------------------------------------------------------------------


def jvp(
    fun: Callable, primals: Sequence, tangents: Sequence, has_aux: bool = False
) -> tuple[Any, ...]:
    r"""Forward mode: ``(fun(*primals), J fun(primals) . tangents)``, like `jax.jvp`.

    Args:
      fun: the function, of pytrees of arrays.
      primals: a tuple or list, the point.
      tangents: like ``primals``, the direction. A floating primal takes a float tangent,
        cast to its dtype (jax asks for the dtype itself; integer, boolean, float0 and
        complex-for-real tangents are refused, as in jax); an integer, boolean or PRNG-key
        primal takes float0 zeros, ``np.zeros(shape, jax.dtypes.float0)``, as in jax.
      has_aux: ``fun`` returns ``(out, aux)``; ``aux`` is returned, not differentiated.

    Returns:
      ``(out, tangent_out)``, and ``aux`` third with ``has_aux``. Integer, boolean and key
      outputs get float0 tangents, as in jax.

    Raises:
      TypeError, ValueError: a tangent of the wrong shape or kind (`TypeError`, as jax), an
        argument that is not a JAX type (each naming the tangent or primal).
      TracedControlFlowError: Python control flow on a primal's value (see the module).

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> value, tangent = jaxls.ad.jvp(jnp.sin, (0.0,), (2.0,))
      >>> print(float(value), float(tangent))
      0.0 2.0
    """
    _check_fun("jvp", fun)
    has_aux = _check_flag("jvp", "has_aux", has_aux)
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(
            "jaxls.ad.jvp: `primals` and `tangents` must be tuples or lists, got "
            f"{type(primals).__name__} and {type(tangents).__name__}."
        )
    return _jvp("jvp", fun, tuple(primals), tuple(tangents), has_aux)


def _jvp(call, fun, primals: tuple, tangents: tuple, has_aux=False, int_zeros=False, **flags):
    """`jvp` after its argument checks. ``int_zeros``: integer outputs get zeros of their
    dtype instead of float0 (jax's Jacobians do so); ``flags``: `_tangent`'s."""
    if jax.tree.structure(primals) != jax.tree.structure(tangents):
        what = "`primals` and `tangents`" if call == "jvp" else "`x` and `v`"
        raise ValueError(
            f"jaxls.ad.{call}: {what} must have the same structure, got "
            f"{jax.tree.structure(primals)} and {jax.tree.structure(tangents)}."
        )
    labelled_p = [x for i, p in enumerate(primals) for x in _leaves(call, "primal", i, p)]
    labelled_t = [x for i, t in enumerate(tangents) for x in _leaves(call, "tangent", i, t)]
    with traced_values(call):
        c, _, out_tree = jx.make_jaxpr(fun, *primals, call=call)
        flat_p = _primals(c, [p for _, p in labelled_p])
        flat_t = [
            _tangent(call, p, label, t, **flags)
            for p, (label, t) in zip(flat_p, labelled_t, strict=True)
        ]
        outs, touts = jvp_closed(c, flat_p, flat_t)
    out = jax.tree.unflatten(out_tree, outs)
    if has_aux:
        out, aux = _split_aux(call, out)
    if int_zeros:  # a Jacobian: no block for an output without a zero of its dtype
        _check_no_keys(call, out)
    touts = [
        _zero_tangent(o, int_zeros) if t is None else t for o, t in zip(outs, touts, strict=True)
    ]
    tout = jax.tree.unflatten(out_tree, touts)
    return (out, tout[0], aux) if has_aux else (out, tout)


def _check_no_keys(call: str, out) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(out):
        if _is_key(_dtype(leaf)):
            raise TypeError(
                f"jaxls.ad.{call}: `fun`'s output{keystr(path)} is {_name(_dtype(leaf))}, a "
                f"PRNG key, which has no derivative (jax.{call} fails on it too); return it "
                "as `aux` with has_aux=True."
            )


def _tangent(call: str, primal, label: str, tangent, integers: bool = False):
    """The tangent seeding ``primal`` (None for a primal without derivative), checked as
    jax.jvp checks it, except that a real float tangent of another float dtype is cast.
    ``integers``: integer tangents are cast too (`hvp`'s direction)."""
    p_dtype, t_dtype = _dtype(primal), _dtype(tangent)
    if jnp.shape(tangent) != jnp.shape(primal):
        raise ValueError(
            f"jaxls.ad.{call}: {label} has shape {jnp.shape(tangent)} for a primal of shape "
            f"{jnp.shape(primal)}."
        )
    if not _is_float(p_dtype):
        if t_dtype != FLOAT0:
            raise TypeError(
                f"jaxls.ad.{call}: {label} is {_name(t_dtype)} for a primal of dtype "
                f"{_name(p_dtype)}, which has no tangent space: pass float0 zeros, "
                "`np.zeros(shape, jax.dtypes.float0)`, as jax.jvp asks."
            )
        return None
    if _is_complex(t_dtype) and not _is_complex(p_dtype):
        raise TypeError(
            f"jaxls.ad.{call}: {label} is {_name(t_dtype)} for a {_name(p_dtype)} primal: its "
            "imaginary part would be dropped."
        )
    cast = _is_float(t_dtype) or (integers and jnp.issubdtype(t_dtype, jnp.integer))
    if not cast:
        raise TypeError(
            f"jaxls.ad.{call}: {label} is {_name(t_dtype)} for a {_name(p_dtype)} primal: a "
            "tangent of a floating primal is a float (jax.jvp asks for the primal's dtype; "
            f"jaxls casts a float of another precision). Pass `t.astype(jnp.{p_dtype})`."
        )
    return jnp.asarray(tangent, p_dtype)


def _zero_tangent(out, int_zeros: bool):
    dtype = _dtype(out)
    if _is_float(dtype) or (int_zeros and not _is_key(dtype)):
        return jnp.zeros(jnp.shape(out), dtype)
    return _float0_zeros(jnp.shape(out))


# --- reverse mode ---------------------------------------------------------------------------


def vjp(
    fun: Callable,
    *primals: PyTree,
    has_aux: bool = False,
    max_loop_steps: int | None = None,
    loop_checkpoints: int | None = None,
) -> tuple[Any, ...]:
    r"""Reverse mode: ``(fun(*primals), vjp_fn)`` with ``vjp_fn(ct) = ct . J``, like `jax.vjp`.

    The forward sweep runs now and keeps its intermediate values (the tape); each call of
    ``vjp_fn`` runs the backward sweep over them. ``vjp_fn`` takes a cotangent shaped like
    the output (a float one is cast to a floating output's dtype, where jax asks for the
    dtype itself, and any other is refused with a `ValueError`, as in jax; an integer,
    boolean or key output takes any array of its shape and ignores it, float0 zeros or
    ``ones_like``, as jax does) and returns one cotangent per primal: float0 zeros for an
    integer, boolean or key primal, as in jax.

    Args:
      fun: the function, of pytrees of arrays.
      *primals: the point.
      has_aux: ``fun`` returns ``(out, aux)``; the result is then ``(out, vjp_fn, aux)``.
      max_loop_steps: the most iterations of each `lax.while_loop` in ``fun`` that reverse
        mode records (see `value_and_grad`); None refuses while loops, as jax does.
      loop_checkpoints: None keeps the tape of every iteration of a while loop; an int
        ``k >= 2`` recomputes them by recursive checkpointing (see `value_and_grad`).

    Raises:
      TypeError, ValueError: an argument that is not a JAX type, a ``max_loop_steps``
        that is not a positive int, a ``loop_checkpoints`` that is not an int of at least
        2; from ``vjp_fn``, a cotangent of the wrong structure,
        shape or kind (`ValueError`, as jax; naming it).
      NotImplementedError: a while loop without ``max_loop_steps``.
      TracedControlFlowError: Python control flow on a primal's value (see the module).

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> out, vjp_fn = jaxls.ad.vjp(lambda x, y: x * y, 3.0, 4.0)
      >>> print([float(c) for c in vjp_fn(1.0)])
      [4.0, 3.0]
    """
    _check_fun("vjp", fun)
    has_aux = _check_flag("vjp", "has_aux", has_aux)
    steps = _check_max_loop_steps("vjp", max_loop_steps)
    checkpoints = _check_loop_checkpoints("vjp", loop_checkpoints)
    return _vjp("vjp", fun, primals, has_aux, max_loop_steps=_loop_bound(steps, checkpoints))


def _vjp(
    call: str,
    fun,
    primals: tuple,
    has_aux: bool,
    float0: bool = True,
    max_loop_steps: int | LoopBound | None = None,
):
    """`vjp` after its argument checks. ``float0=False``: integer primals get zeros of their
    own dtype (jax's ``jacrev(allow_int=True)`` does so)."""
    leaves = [x for i, p in enumerate(primals) for _, x in _leaves(call, "argument", i, p)]
    with traced_values(call):
        c, in_tree, out_tree = jx.make_jaxpr(fun, *primals, call=call)
        flat_p = _primals(c, leaves)
        active = [_is_float(_dtype(p)) for p in flat_p]
        outs, tape = forward_sweep(c, flat_p, active, max_loop_steps=max_loop_steps)
    out = jax.tree.unflatten(out_tree, outs)
    if has_aux:
        out, aux = _split_aux(call, out)
        diff_tree = jax.tree.structure(out)
    else:
        diff_tree = out_tree
    num_diff = diff_tree.num_leaves
    static = _Pullback(
        call,
        c,
        in_tree,
        diff_tree,
        [(jnp.shape(o), _dtype(o)) for o in outs[:num_diff]],
        len(outs) - num_diff,
        [(jnp.shape(p), _dtype(p)) for p in flat_p],
        float0,
    )
    # A `Partial` is a pytree (its tape is the data): `vjp_fn` can leave a `jax.jit`.
    vjp_fn = jax.tree_util.Partial(static, tape)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


class _Pullback:
    """The backward sweep of one traced function, given its tape and an output cotangent."""

    def __init__(self, call, c, in_tree, diff_tree, outs, num_aux, primals, float0):
        self.call, self.c, self.in_tree, self.diff_tree = call, c, in_tree, diff_tree
        self.outs, self.num_aux, self.primals, self.float0 = outs, num_aux, primals, float0

    def __call__(self, tape, ct):
        if jax.tree.structure(ct) != self.diff_tree:
            raise ValueError(
                f"jaxls.ad.vjp: the cotangent's structure {jax.tree.structure(ct)} differs "
                f"from the output's {self.diff_tree}."
            )
        labelled = jax.tree_util.tree_leaves_with_path(ct)
        flat_ct = [
            self._cotangent(f"cotangent{keystr(path)}", x, shape, dtype)
            for (path, x), (shape, dtype) in zip(labelled, self.outs, strict=True)
        ]
        with traced_values(self.call):  # a custom_vjp's bwd runs here
            cts = backward_sweep(self.c, tape, flat_ct + [None] * self.num_aux)
        cts = [
            self._zero(shape, dtype) if x is None else x
            for (shape, dtype), x in zip(self.primals, cts, strict=True)
        ]
        return jax.tree.unflatten(self.in_tree, cts)

    def _zero(self, shape, dtype):
        if _is_float(dtype) or not self.float0:
            return jnp.zeros(shape, dtype)
        return _float0_zeros(shape)

    @staticmethod
    def _cotangent(label, x, shape, dtype):
        """The cotangent of one output, checked as jax checks it (`ValueError`), except that
        a real float cotangent of another float dtype is cast. An output without derivative
        (integer, boolean, key) takes any array of its shape, ignored: float0 zeros, or the
        ``ones_like(out)`` that jax accepts too."""
        try:
            jax.typeof(x)
        except TypeError:
            raise TypeError(
                f"jaxls.ad.vjp: the {label} ({x!r}, a {type(x).__name__}) is not a JAX array or "
                "scalar."
            ) from None
        if jnp.shape(x) != shape:
            raise ValueError(
                f"jaxls.ad.vjp: the {label} has shape {jnp.shape(x)}, the output's is {shape}."
            )
        x_dtype = _dtype(x)
        if not _is_float(dtype):
            return None
        if _is_complex(x_dtype) and not _is_complex(dtype):
            raise ValueError(
                f"jaxls.ad.vjp: the {label} is {_name(x_dtype)} for a {_name(dtype)} output: "
                "its imaginary part would be dropped."
            )
        if not _is_float(x_dtype):
            raise ValueError(
                f"jaxls.ad.vjp: the {label} is {_name(x_dtype)} for a {_name(dtype)} output: "
                "the cotangent of a floating output is a float (jax asks for the output's "
                f"dtype; jaxls casts a float of another precision). Pass "
                f"`ct.astype(jnp.{dtype})`."
            )
        return jnp.asarray(x, dtype)


def _partial(fun, args, kwargs, nums):
    """``g(*diff_args)``: ``fun`` with the arguments not in ``nums`` and the keyword
    arguments fixed (keywords are passed through, never differentiated, as in jax)."""

    def g(*diff):
        full = list(args)
        for n, d in zip(nums, diff, strict=True):
            full[n] = d
        return fun(*full, **kwargs)

    return g, tuple(args[n] for n in nums)


def value_and_grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    *,
    max_loop_steps: int | None = None,
    loop_checkpoints: int | None = None,
) -> Callable:
    r"""``(fun(x), grad fun(x))`` by reverse mode, like `jax.value_and_grad`.

    Args:
      fun: a function of pytrees of arrays returning a real scalar (a complex one with
        ``holomorphic``); keyword arguments of the returned function are passed to ``fun``
        and not differentiated.
      argnums: the position, or a sequence of positions, of the arguments to differentiate.
      has_aux: ``fun`` returns ``(value, aux)``; the result is ``((value, aux), grad)``.
      holomorphic: ``fun`` is holomorphic in complex inputs (and returns a complex scalar):
        the result is its complex derivative.
      allow_int: integer, boolean and PRNG-key arguments in ``argnums`` get float0 zero
        gradients instead of a `TypeError` (float0 arguments are refused all the same).
      max_loop_steps: reverse mode through a `lax.while_loop` (which jax refuses) records
        up to this many iterations of each loop (of each run of it, for a nested loop),
        its memory growing with the bound; None (the default) refuses while loops. **A
        loop still running after** ``max_loop_steps`` **iterations makes the gradient
        NaN** (every derivative that passes through the loop; test it with `jnp.isnan`);
        the value stays the loop's own. Under `jax.vmap`, per member.
      loop_checkpoints: how reverse mode keeps what a `lax.while_loop` computed. None (the
        default): the tape of each of its (up to ``max_loop_steps``) iterations, ``N``
        tapes. An int ``k >= 2``: recursive checkpointing, the same gradients in less
        memory for more time: the ``N`` iterations are split into at most ``k`` segments
        whose starting carries alone are kept; the backward sweep takes the segments last
        first, recomputes each from its carry and splits it in turn, down to segments of
        ``k`` iterations, whose tapes it records and reverses. For ``N > k`` that is ``L =
        ceil(log_k N)`` levels: at most ``(L - 1) k`` carries and ``k`` tapes held at once
        (``k`` carries between the two sweeps) instead of ``N`` tapes, and each iteration
        evaluated at most ``L`` times instead of once (every level but the last recomputes
        all of its segments but the last). ``k = 2`` is recursive bisection,
        ``O(log N)`` memory for ``O(N log N)`` evaluations; ``k`` near ``sqrt(N)`` keeps
        ``O(sqrt N)`` for one evaluation more. A uniform schedule, not the binomial one of
        Revolve (optimal for a given number of checkpoints; Griewank and Walther,
        *Evaluating Derivatives*, 2nd ed., SIAM 2008, chapter 12). ``N`` is rounded up to
        ``n k^(L-1)`` guarded iterations, those past ``N`` skipped (evaluated and
        discarded under `jax.vmap`, as `lax.cond` there runs both branches).

    Raises:
      TypeError, ValueError: as jax does (an integer input without ``allow_int``, a float0
        input, a complex output without ``holomorphic``, a non-scalar or integer output,
        bad ``argnums``), a ``max_loop_steps`` that is not a positive int and a
        ``loop_checkpoints`` that is not an int of at least 2, each naming the call, the
        argument and the fix.
      NotImplementedError: a `lax.while_loop` on the way of a derivative without
        ``max_loop_steps``.
      TracedControlFlowError: Python control flow on the value of a differentiated
        argument (see the module); the other arguments stay concrete.

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> value, g = jaxls.ad.value_and_grad(lambda x, s=1.0: s * jnp.sum(x ** 2))(
      ...     jnp.array([1.0, 2.0]), s=3.0)
      >>> print(float(value), g)
      15.0 [ 6. 12.]

      Through a while loop (Newton's iteration for ``sqrt(a)``; ``d sqrt(a)/da = 1/4`` at 4):

      >>> from jax import lax
      >>> def root(a):
      ...     step = lambda x: 0.5 * (x + a / x)
      ...     done = lambda x: jnp.abs(x * x - a) > 1e-6 * a
      ...     return lax.while_loop(done, step, a)
      >>> value, g = jaxls.ad.value_and_grad(root, max_loop_steps=20)(4.0)
      >>> print(round(float(value), 5), round(float(g), 5))
      2.0 0.25
      >>> print(jaxls.ad.grad(root, max_loop_steps=3)(4.0))  # it takes 4 iterations
      nan
      >>> print(jaxls.ad.grad(root, max_loop_steps=20, loop_checkpoints=2)(4.0))  # bisection
      0.25
    """
    return _value_and_grad(
        "value_and_grad",
        fun,
        argnums,
        has_aux,
        holomorphic,
        allow_int,
        max_loop_steps,
        loop_checkpoints,
    )


class _Config(NamedTuple):
    """The checked configuration of a differentiating transform."""

    nums: Any
    has_aux: bool
    holomorphic: bool
    allow_int: bool
    single: bool  # argnums is an int: results for one argument, not a tuple
    max_loop_steps: int | LoopBound | None  # reverse mode: the bound on while loops


def _configure(
    call,
    fun,
    argnums,
    has_aux,
    holomorphic,
    allow_int=False,
    max_loop_steps=None,
    loop_checkpoints=None,
) -> _Config:
    _check_fun(call, fun)
    return _Config(
        _check_argnums(call, argnums),
        _check_flag(call, "has_aux", has_aux),
        _check_flag(call, "holomorphic", holomorphic),
        _check_flag(call, "allow_int", allow_int),
        not isinstance(argnums, (tuple, list)),
        _loop_bound(
            _check_max_loop_steps(call, max_loop_steps),
            _check_loop_checkpoints(call, loop_checkpoints),
        ),
    )


def _arguments(call, config: _Config, fun, argnums, args, kwargs, *, real, int_zeros=False):
    """``(g, diff)``: ``fun`` as a function of the differentiated arguments ``diff``,
    checked (``real``, ``int_zeros``: see `_check_inputs`)."""
    resolved = _resolve_argnums(call, argnums, config.nums, len(args), kwargs)
    g, diff = _partial(fun, args, kwargs, resolved)
    _check_inputs(
        call,
        resolved,
        diff,
        holomorphic=config.holomorphic,
        allow_int=config.allow_int,
        real=real,
        int_zeros=int_zeros,
    )
    return g, diff


def _value_and_grad(
    call, fun, argnums, has_aux, holomorphic, allow_int, max_loop_steps=None, loop_checkpoints=None
):
    config = _configure(
        call, fun, argnums, has_aux, holomorphic, allow_int, max_loop_steps, loop_checkpoints
    )

    def value_and_grad_fun(*args, **kwargs):
        g, diff = _arguments(call, config, fun, argnums, args, kwargs, real=False)
        res = _vjp(call, g, diff, config.has_aux, max_loop_steps=config.max_loop_steps)
        value = res[0]
        _check_scalar(call, value, config.holomorphic)
        grads = res[1](jnp.ones((), _dtype(value)))
        grads = grads[0] if config.single else grads
        return ((value, res[2]) if config.has_aux else value), grads

    return value_and_grad_fun


def grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    *,
    max_loop_steps: int | None = None,
    loop_checkpoints: int | None = None,
) -> Callable:
    r"""The gradient of a real scalar function by reverse mode, like `jax.grad`.

    Arguments as `value_and_grad` (``max_loop_steps``: reverse mode through
    `lax.while_loop`, NaN gradients for a loop that runs longer; ``loop_checkpoints``: its
    iterations recomputed by recursive checkpointing); with ``has_aux`` the result is
    ``(grad, aux)``.

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> loss = lambda w1, w2: w2 * jnp.log(w1) + jnp.sqrt(w2 * jnp.log(w1))
      >>> dw1, dw2 = jaxls.ad.grad(loss, argnums=(0, 1))(2.0, 5.0)
      >>> print(round(float(dw1), 5), round(float(dw2), 5))
      3.17145 0.87931
    """
    return _grad(
        "grad", fun, argnums, has_aux, holomorphic, allow_int, max_loop_steps, loop_checkpoints
    )


def _grad(
    call,
    fun,
    argnums=0,
    has_aux=False,
    holomorphic=False,
    allow_int=False,
    max_loop_steps=None,
    loop_checkpoints=None,
):
    vg = _value_and_grad(
        call, fun, argnums, has_aux, holomorphic, allow_int, max_loop_steps, loop_checkpoints
    )

    def grad_fun(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_fun


# --- Jacobians ------------------------------------------------------------------------------


def _jacobian_tree(flat_jac, out_shapes, x):
    """Reshape per-output-leaf Jacobians ``(*out_shape or out_size, n)`` over the flattened
    input into jax's layout:
    ``out_leaf.shape + in_leaf.shape`` for each (output leaf, input leaf)."""
    in_leaves, in_tree = jax.tree.flatten(x)
    sizes = [int(np.prod(jnp.shape(leaf))) for leaf in in_leaves]
    cuts = np.cumsum(sizes)[:-1].tolist()
    result = []
    for jac, out_shape in zip(flat_jac, out_shapes, strict=True):
        jac = jac.reshape((*out_shape, sum(sizes)))
        parts = jnp.split(jac, cuts, axis=-1) if cuts else [jac]
        parts = [
            p.reshape((*out_shape, *jnp.shape(leaf)))
            for p, leaf in zip(parts, in_leaves, strict=True)
        ]
        result.append(jax.tree.unflatten(in_tree, parts))
    return result


def jacfwd(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
) -> Callable:
    r"""The Jacobian by forward mode, one JVP per input coordinate (vmapped), like
    `jax.jacfwd`.

    Real floating inputs (complex ones with ``holomorphic``, and complex outputs then);
    integer outputs get zero Jacobians of their dtype, as in jax. Keyword arguments of the
    returned function are passed to ``fun``; with ``has_aux`` the result is
    ``(jacobian, aux)``.

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> print(jaxls.ad.jacfwd(lambda x: x[::-1] ** 2)(jnp.array([1.0, 2.0])))
      [[0. 4.]
       [2. 0.]]
    """
    return _jacfwd("jacfwd", fun, argnums, has_aux, holomorphic)


def _jacfwd(call, fun, argnums, has_aux, holomorphic):
    config = _configure(call, fun, argnums, has_aux, holomorphic)
    has_aux, holomorphic, single = config.has_aux, config.holomorphic, config.single

    def jac_fun(*args, **kwargs):
        g, diff = _arguments(call, config, fun, argnums, args, kwargs, real=True)
        flat, unravel = ravel_pytree(diff)

        def push(v):
            res = _jvp(call, lambda z: g(*unravel(z)), (flat,), (v,), has_aux, int_zeros=True)
            return res[1], (res[2] if has_aux else None)

        basis = jnp.eye(flat.size, dtype=flat.dtype)
        jac, aux = jax.vmap(push, out_axes=(-1, None))(basis)
        if holomorphic:
            _check_outputs(call, jac, holomorphic=True)
        out_leaves, out_tree = jax.tree.flatten(jac)
        shaped = _jacobian_tree(out_leaves, [jnp.shape(j)[:-1] for j in out_leaves], diff)
        shaped = [s[0] if single else s for s in shaped]
        result = jax.tree.unflatten(out_tree, shaped)
        return (result, aux) if has_aux else result

    return jac_fun


def jacrev(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    *,
    max_loop_steps: int | None = None,
    loop_checkpoints: int | None = None,
) -> Callable:
    r"""The Jacobian by reverse mode, one VJP per output coordinate (vmapped), like
    `jax.jacrev`.

    Real floating outputs (complex ones with ``holomorphic``, and complex inputs then);
    ``allow_int``: integer inputs get zero Jacobians of their dtype, as in jax (a PRNG key,
    which has no zero, is refused; jax fails on it too). The
    pulled-back rows stay leaf by leaf (no flattening of the input pytree), so a large
    parameter pytree costs no concatenation; a function with a single output gets one VJP
    without a `jax.vmap` over a batch of one. Keyword arguments of the returned function are
    passed to ``fun``; with ``has_aux`` the result is ``(jacobian, aux)``.
    ``max_loop_steps``, ``loop_checkpoints``: reverse mode through `lax.while_loop`, as in
    `value_and_grad` (the rows through a loop that runs longer are NaN).

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> print(jaxls.ad.jacrev(lambda x: x[::-1] ** 2)(jnp.array([1.0, 2.0])))
      [[0. 4.]
       [2. 0.]]
    """
    return _jacrev(
        "jacrev", fun, argnums, has_aux, holomorphic, allow_int, max_loop_steps, loop_checkpoints
    )


def _jacrev(
    call, fun, argnums, has_aux, holomorphic, allow_int, max_loop_steps=None, loop_checkpoints=None
):
    config = _configure(
        call, fun, argnums, has_aux, holomorphic, allow_int, max_loop_steps, loop_checkpoints
    )
    has_aux, holomorphic, single = config.has_aux, config.holomorphic, config.single

    def jac_fun(*args, **kwargs):
        g, diff = _arguments(call, config, fun, argnums, args, kwargs, real=False, int_zeros=True)
        res = _vjp(call, g, diff, has_aux, float0=False, max_loop_steps=config.max_loop_steps)
        out, pull = res[0], res[1]
        _check_outputs(call, out, holomorphic=holomorphic)
        flat_out, unravel_out = ravel_pytree(out)
        basis = jnp.eye(flat_out.size, dtype=flat_out.dtype)
        if flat_out.size == 1:  # one output: one VJP, no batch of one to vmap over
            rows = jax.tree.map(lambda r: r[None], pull(unravel_out(basis[0])))
        else:
            rows = jax.vmap(lambda ct: pull(unravel_out(ct)))(basis)  # leaves: (m, *leaf)
        out_leaves, out_tree = jax.tree.flatten(out)
        shaped, start = [], 0
        for leaf in out_leaves:
            size, shape = int(np.prod(jnp.shape(leaf))), jnp.shape(leaf)
            block = (
                rows
                if len(out_leaves) == 1
                else jax.tree.map(lambda r, s=start, n=size: r[s : s + n], rows)
            )
            tree = jax.tree.map(lambda r, shape=shape: r.reshape((*shape, *r.shape[1:])), block)
            shaped.append(tree[0] if single else tree)
            start += size
        result = jax.tree.unflatten(out_tree, shaped)
        return (result, res[2]) if has_aux else result

    return jac_fun


def hessian(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    *,
    max_loop_steps: int | None = None,
    loop_checkpoints: int | None = None,
) -> Callable:
    r"""The Hessian, forward over reverse: ``jacfwd(jacrev(fun))``, like `jax.hessian`.

    ``max_loop_steps``, ``loop_checkpoints``: reverse mode through `lax.while_loop`, as in
    `value_and_grad` (NaN where a loop runs longer).

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> print(jaxls.ad.hessian(lambda x: x[0] ** 2 * x[1])(jnp.array([1.0, 2.0])))
      [[4. 2.]
       [2. 0.]]
    """
    inner = _jacrev(
        "hessian", fun, argnums, has_aux, holomorphic, False, max_loop_steps, loop_checkpoints
    )
    return _jacfwd("hessian", inner, argnums, has_aux, holomorphic)


def hvp(
    fun: Callable,
    x: PyTree,
    v: PyTree,
    *,
    max_loop_steps: int | None = None,
    loop_checkpoints: int | None = None,
) -> PyTree:
    r"""The Hessian-vector product ``H(x) v`` of a real scalar ``fun``, forward over
    reverse: one JVP of the gradient, never the Hessian itself. ``v`` is like ``x``; an
    integer direction (a basis vector ``jnp.array([1, 0])``) is cast to ``x``'s dtype.
    ``max_loop_steps``, ``loop_checkpoints``: reverse mode through `lax.while_loop`, as in
    `value_and_grad` (NaN where a loop runs longer).

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> f = lambda x: x[0] ** 2 * x[1]
      >>> print(jaxls.ad.hvp(f, jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0])))
      [4. 2.]
    """
    gradient = _grad("hvp", fun, max_loop_steps=max_loop_steps, loop_checkpoints=loop_checkpoints)
    return _jvp("hvp", gradient, (x,), (v,), integers=True)[1]


def checkpoint(
    fun: Callable,
    *,
    prevent_cse: bool = True,
    policy: Callable[..., Any] | None = None,
    static_argnums: int | tuple[int, ...] = (),
) -> Callable:
    """Mark ``fun`` to be recomputed, not stored, by reverse mode (cuts memory for time),
    like `jax.checkpoint`.

    Reverse mode keeps, of what ``fun``'s backward sweep needs, only what ``policy`` saves,
    and the inputs it needs; the backward sweep recomputes the rest from them (behind an
    optimisation barrier, so that XLA does not merge the two runs), reusing the saved
    values, then runs ``fun``'s backward sweep. The policies are jax's
    (`jax.checkpoint_policies`), asked as jax asks them, ``policy(primitive, *avals_in,
    **params)`` for each equation of ``fun``: ``nothing_saveable`` (the default: keep the
    inputs alone), ``dots_saveable`` and ``dots_with_no_batch_dims_saveable`` (keep the
    results of matrix products and convolutions), ``save_only_these_names(...)`` and
    ``save_any_names_but_these(...)`` (keep values named with
    `jax.ad_checkpoint.checkpoint_name`), ``everything_saveable`` (keep what reverse mode
    keeps without a checkpoint), ``save_from_both_policies``, or a function of your own.
    The offloading policies (``offload_dot_with_no_batch_dims``,
    ``save_and_offload_only_these_names``) are refused when differentiated: jaxls does not
    move values to host memory. The policy is asked about the equations of ``fun`` itself:
    a ``jit`` call, ``scan`` or loop in it is kept or recomputed whole (jax asks about the
    equations inside too). `saved_residuals` shows what a policy keeps. The marking is
    `jax.checkpoint`'s (``remat``) equation, made with these arguments; no JAX derivative
    rule is used.

    Args:
      fun: the function to recompute.
      prevent_cse: as in `jax.checkpoint` (jaxls's recomputation is behind a barrier
        either way).
      policy: which values of ``fun`` to keep rather than recompute (None: none, as jax).
      static_argnums: as in `jax.checkpoint`.

    Raises:
      TypeError: ``fun`` or ``policy`` not callable.

    Example:
      ``sin(h) * cos(h)`` with ``h = x @ w``: without a checkpoint the tape keeps ``w``,
      ``x``, ``h``, ``sin(h)``, ``cos(h)``; with ``dots_saveable``, ``w``, ``x`` and ``h``;
      with the default policy, ``w`` and ``x``:

      >>> import jax, jax.numpy as jnp, jaxls.ad
      >>> def block(w, x):
      ...     h = x @ w
      ...     return jnp.sin(h) * jnp.cos(h)
      >>> def loss(policy):
      ...     if policy == "none":
      ...         return lambda w, x: jnp.sum(block(w, x))
      ...     return lambda w, x: jnp.sum(jaxls.ad.checkpoint(block, policy=policy)(w, x))
      >>> w, x = jnp.ones((4, 4)), jnp.ones((2, 4))
      >>> for policy in ("none", jax.checkpoint_policies.dots_saveable, None):
      ...     print(jaxls.ad.saved_residuals(loss(policy), w, x).total_bytes)
      192
      128
      96
      >>> g = jaxls.ad.grad(loss(jax.checkpoint_policies.dots_saveable))(w, x)
      >>> bool(jnp.allclose(g, jax.grad(loss("none"))(w, x)))
      True
    """
    _check_fun("checkpoint", fun)
    if policy is not None and not callable(policy):
        raise TypeError(
            f"jaxls.ad.checkpoint(policy={policy!r}): `policy` must be None or callable, one "
            "of `jax.checkpoint_policies` (`dots_saveable`, `save_only_these_names('h')`) or "
            "a function `policy(primitive, *avals, **params) -> bool` of your own."
        )
    return jax.checkpoint(
        fun, prevent_cse=prevent_cse, policy=policy, static_argnums=static_argnums
    )


__all__ = [
    "TracedControlFlowError",
    "checkpoint",
    "grad",
    "hessian",
    "hvp",
    "jacfwd",
    "jacrev",
    "jvp",
    "value_and_grad",
    "vjp",
]
