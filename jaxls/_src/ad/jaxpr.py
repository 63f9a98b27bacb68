"""Everything the AD interpreter reads from JAX's jaxpr structures, in one place.

The interpreter walks jaxprs (equations, variables, literals, the parameters of
higher-order primitives), which JAX changes between releases. This module is the only one
that touches them: supported are the releases in ``SUPPORTED`` (``pyproject.toml`` pins the
same range); a new release that renames a primitive or a parameter is adapted here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import warnings

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np

SUPPORTED = ((0, 10), (0, 11))  # CI runs 0.10.x; 0.11.x has the same jaxpr structure

Literal = jex.core.Literal

# Higher-order primitives, by name (several names: the name changed between releases).
CALLS = frozenset({"jit", "pjit", "closed_call", "core_call"})
REMAT = frozenset({"remat2", "checkpoint", "remat"})
CUSTOM_JVP = frozenset({"custom_jvp_call"})
CUSTOM_VJP = frozenset({"custom_vjp_call", "custom_vjp_call_jaxpr"})
COND = frozenset({"cond"})
SCAN = frozenset({"scan"})
WHILE = frozenset({"while"})
LINEAR_SOLVE = frozenset({"custom_linear_solve"})


def version() -> tuple[int, int]:
    major, minor = jax.__version__.split(".")[:2]
    return int(major), int(minor)


def check_version() -> None:
    """Warn once, at import, when the installed JAX is outside the supported releases."""
    if version() not in SUPPORTED:
        warnings.warn(
            f"jaxls.ad supports JAX {', '.join(f'{a}.{b}' for a, b in SUPPORTED)}; found "
            f"{jax.__version__}. Its jaxpr interpreter may meet unknown primitives or "
            "parameters (adapt jaxls/_src/ad/jaxpr.py).",
            RuntimeWarning,
            stacklevel=2,
        )


class Closed(NamedTuple):
    """A jaxpr with its constants: ``fun(*args) = eval(jaxpr, consts, *args)``."""

    jaxpr: Any
    consts: Sequence[Any]


def closed(obj) -> Closed:
    """A `Closed` from a ClosedJaxpr (``.jaxpr``, ``.consts``) or an open Jaxpr."""
    if hasattr(obj, "consts"):
        return Closed(obj.jaxpr, list(obj.consts))
    return Closed(obj, [])


def make_jaxpr(f: Callable, *args, call: str = "trace"):
    """Trace ``f(*args)`` (pytrees) once: ``(Closed, in_tree, out_tree)``. An output that is
    not a JAX type raises a `TypeError` naming ``jaxls.ad.<call>``."""
    flat, in_tree = jax.tree.flatten(args)
    out_tree_box = []

    def flat_f(*flat_args):
        out = f(*jax.tree.unflatten(in_tree, flat_args))
        for path, leaf in jax.tree_util.tree_leaves_with_path(out):
            try:
                jax.typeof(leaf)
            except TypeError:
                where = f" at output{jax.tree_util.keystr(path)}" if path else ""
                raise TypeError(
                    f"jaxls.ad.{call}: `fun` returned {leaf!r} (a {type(leaf).__name__}){where}, "
                    "not a JAX array or scalar."
                ) from None
        out_flat, out_tree = jax.tree.flatten(out)
        out_tree_box.append(out_tree)
        return out_flat

    traced = jax.make_jaxpr(flat_f)(*flat)
    return closed(traced), in_tree, out_tree_box[0]


def name(eqn) -> str:
    return eqn.primitive.name


def is_literal(atom) -> bool:
    return isinstance(atom, Literal)


def literal_value(atom):
    return atom.val


def is_drop(var) -> bool:
    """Whether an output variable is unused (``_`` in a printed jaxpr)."""
    return type(var).__name__ == "DropVar"


def aval(atom):
    return atom.aval


def is_float_aval(a) -> bool:
    """Whether an abstract value carries derivatives (`jnp.issubdtype`: knows bfloat16)."""
    return bool(jnp.issubdtype(a.dtype, jnp.inexact))


def bind(eqn, args: Sequence[Any]) -> list:
    """Evaluate one equation on ``args``: its outputs, always as a list."""
    params = eqn.primitive.get_bind_params(eqn.params)
    if isinstance(params, tuple):  # JAX < 0.7: (subfuns, params)
        subfuns, params = params
        out = eqn.primitive.bind(*subfuns, *args, **params)
    else:
        out = eqn.primitive.bind(*args, **params)
    return list(out) if eqn.primitive.multiple_results else [out]


def multiple_results(eqn) -> bool:
    return eqn.primitive.multiple_results


# --- parameters of higher-order primitives -------------------------------------------------


def call_body(eqn) -> Closed:
    """The jaxpr a ``jit`` / ``pjit`` / ``closed_call`` / ``remat`` equation calls."""
    params = eqn.params
    body = params.get("jaxpr", params.get("call_jaxpr"))
    return closed(body)


def cond_branches(eqn) -> list[Closed]:
    return [closed(b) for b in eqn.params["branches"]]


class ScanSpec(NamedTuple):
    body: Closed
    num_consts: int
    num_carry: int
    length: int
    reverse: bool
    unroll: Any


def scan_spec(eqn) -> ScanSpec:
    p = eqn.params
    return ScanSpec(
        closed(p["jaxpr"]), p["num_consts"], p["num_carry"], p["length"], p["reverse"], p["unroll"]
    )


class WhileSpec(NamedTuple):
    cond: Closed
    body: Closed
    cond_nconsts: int
    body_nconsts: int


def while_spec(eqn) -> WhileSpec:
    p = eqn.params
    return WhileSpec(
        closed(p["cond_jaxpr"]), closed(p["body_jaxpr"]), p["cond_nconsts"], p["body_nconsts"]
    )


def custom_jvp_parts(eqn):
    """``(call, num_consts, jvp)``: the function, and its author's JVP as a `Closed` taking
    ``(*primals, *tangents)`` (every tangent materialised, constants excluded) and returning
    ``(*outs, *tangent_outs)``, with a list of which tangent outputs are symbolic zeros."""
    p = eqn.params
    num_consts = p["num_consts"]
    num_args = len(eqn.invars) - num_consts
    jvp_jaxpr, jvp_consts, out_zeros = p["jvp_jaxpr_fun"].call_wrapped(*([False] * num_args))
    return closed(p["call_jaxpr"]), num_consts, Closed(jvp_jaxpr, list(jvp_consts)), out_zeros


def is_concrete(values) -> bool:
    """Whether no leaf of ``values`` is a tracer: the interpreter runs eagerly, outside
    `jax.jit`, `jax.vmap` and the forward pass of another transform."""
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(values))


def call_name(eqn) -> str:
    """The name of the function a call equation (``jit``, ``custom_jvp_call``) calls, from
    its jaxpr's debug information (``"?"`` without)."""
    body = eqn.params.get("call_jaxpr", eqn.params.get("jaxpr"))
    info = getattr(getattr(body, "jaxpr", body), "debug_info", None)
    return getattr(info, "func_name", None) or "?"


def custom_vjp_parts(eqn):
    """``(call, num_consts, fwd, input_fwds, num_res, bwd)`` of a ``custom_vjp_call``.

    ``fwd`` (a `Closed`) maps the non-constant inputs to ``(*residuals, *outs)`` where only
    the residuals not forwarded from inputs appear; ``input_fwds[i]`` is the input index of
    residual ``i`` if forwarded, else None. ``bwd(*residuals, *cts) -> cts_in``.
    """
    p = eqn.params
    num_consts = p["num_consts"]
    num_args = len(eqn.invars) - num_consts
    fwd_jaxpr, fwd_consts = p["fwd_jaxpr_thunk"].call_wrapped(*([True] * num_args))
    _, res_tree, input_fwds = p["out_trees"]()
    bwd = p["bwd"].call_wrapped
    return (
        closed(p["call_jaxpr"]),
        num_consts,
        Closed(fwd_jaxpr, list(fwd_consts)),
        list(input_fwds),
        res_tree.num_leaves,
        bwd,
    )


def is_symbolic_zero(x) -> bool:
    """Whether ``x`` is one of JAX's symbolic-zero objects (returned by some ``bwd``)."""
    return x is None or type(x).__name__ in ("Zero", "SymbolicZero")


class LinearSolveSpec(NamedTuple):
    matvec: Closed | None
    vecmat: Closed | None
    solve: Closed | None
    transpose_solve: Closed | None
    const_lengths: Any  # fields matvec, vecmat, solve, transpose_solve: consts counts


def linear_solve_spec(eqn) -> LinearSolveSpec:
    p = eqn.params
    jaxprs = p["jaxprs"]
    get = lambda j: None if j is None else closed(j)
    return LinearSolveSpec(
        get(jaxprs.matvec),
        get(jaxprs.vecmat),
        get(jaxprs.solve),
        get(jaxprs.transpose_solve),
        p["const_lengths"],
    )


def bind_transposed_linear_solve(eqn, groups, rhs) -> list | None:
    """``A^{-T} rhs`` as the same primitive with the roles of ``A`` and ``A^T`` swapped (so
    that differentiating it again reaches ``A`` through the matvec constants), or None if
    the solve has no transpose (no ``vecmat``)."""
    params = dict(eqn.params)
    if params["jaxprs"].vecmat is None or params["jaxprs"].transpose_solve is None:
        return None
    params["jaxprs"] = params["jaxprs"].transpose()
    params["const_lengths"] = params["const_lengths"].transpose()
    matvec, vecmat, solve, transpose_solve = groups
    return list(eqn.primitive.bind(*vecmat, *matvec, *transpose_solve, *solve, *rhs, **params))


def remat_policy(eqn):
    """The policy of a ``remat`` (`jax.checkpoint`) equation; jax's default, which saves
    nothing, for none."""
    policy = eqn.params.get("policy")
    return jax.checkpoint_policies.nothing_saveable if policy is None else policy


def policy_saves(policy, eqn) -> bool:
    """Whether a `jax.checkpoint` policy saves the outputs of ``eqn``, asked as jax asks it,
    ``policy(primitive, *avals_in, **params)``. It answers a bool, or jax's ``Saveable`` /
    ``Recompute``; an ``Offloadable`` (to host memory) is refused: jaxls does not offload."""
    from jax._src.interpreters import partial_eval as pe

    answer = policy(eqn.primitive, *[aval(a) for a in eqn.invars], **eqn.params)
    if isinstance(answer, (bool, np.bool_)):
        return bool(answer)
    if isinstance(answer, pe.SaveableType):
        return True
    if isinstance(answer, pe.RecomputeType):
        return False
    if isinstance(answer, pe.Offloadable):
        raise NotImplementedError(
            f"jaxls.ad.checkpoint: the policy {policy!r} offloads the output of `{name(eqn)}` "
            "to host memory (`Offloadable`), which jaxls does not implement. Use a policy "
            "that saves or recomputes it instead (`save_only_these_names`, `dots_saveable`)."
        )
    raise TypeError(
        f"jaxls.ad.checkpoint: the policy {policy!r} returned {answer!r} for `{name(eqn)}`; a "
        "policy returns a bool, or `Saveable` / `Recompute` (as jax asks)."
    )


def source_summary(eqn) -> str:
    """Where the equation was traced from, as jax's ``print_saved_residuals`` names it
    (``file.py:12:4 (fun)``)."""
    from jax._src import source_info_util

    return source_info_util.summarize(eqn.source_info)


def sub_jaxprs(eqn) -> list:
    """The jaxprs an equation's parameters hold (open ones: ``.jaxpr`` of closed ones)."""
    return list(jex.core.jaxprs_in_params(eqn.params))


def optimization_barrier(values):
    """Keep XLA from merging a recomputation with the original (used by `checkpoint`)."""
    return jax.lax.optimization_barrier(values)


__all__ = [
    "CALLS",
    "COND",
    "CUSTOM_JVP",
    "CUSTOM_VJP",
    "LINEAR_SOLVE",
    "REMAT",
    "SCAN",
    "SUPPORTED",
    "WHILE",
    "Closed",
    "aval",
    "bind",
    "call_body",
    "call_name",
    "closed",
    "cond_branches",
    "custom_jvp_parts",
    "custom_vjp_parts",
    "is_concrete",
    "is_drop",
    "is_literal",
    "is_symbolic_zero",
    "linear_solve_spec",
    "literal_value",
    "make_jaxpr",
    "policy_saves",
    "remat_policy",
    "scan_spec",
    "source_summary",
    "sub_jaxprs",
    "while_spec",
]
