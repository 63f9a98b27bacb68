"""Rule-level tests of the rules of array structure (`jaxls._src.ad.rules`: ``contraction``,
``shape``, ``reductions``, ``cumulative``, ``indexing``, ``sorting``).

Each case is a small ``jnp`` / ``lax`` expression; the equation of the primitive under
test is taken from its jaxpr together with the concrete values of its inputs, and the
rules are checked against ``jax.jvp`` / ``jax.vjp`` of the primitive's ``bind`` (the
oracle, allowed in tests only), against each other (``<u, J v> = <J^T u, v>``), for
dtypes and shapes, eagerly and under ``jax.jit`` of ``jax.vmap``, and for
differentiability of what the rules emit: every emitted primitive has a JVP rule, and
the JVP rules run over a VJP rule's jaxpr agree with ``jax.jvp`` of it (forward over
reverse). ``dot_general`` and ``pad`` also get random configurations (hypothesis), and the
tie conventions of ``cummax`` / ``cummin`` / ``scatter-max`` are recomputed by hand.

Where JAX's own derivative is wrong (``scatter-max`` in ``clip`` mode with out-of-bounds
indices: NaN), a case names an oracle JAX gets right (the same scatter on indices clamped
by hand); where JAX differentiates some inputs only (``scatter-mul``'s updates with repeated
indices), a case holds the others constant, and a test checks that both refuse them.

Dtypes: the comparison with JAX runs every case in float32 (JAX's default), and a case per
primitive, with the rounding-prone ones, in float64 (enabled by the dtype parameter),
bfloat16 and float16; the other checks run in float32 (float64 where a result is float64:
marked ``x64``). The case data are NumPy float64 arrays, cast to the tested dtype.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.ad_zoo import fast_jit
from tests.helpers import primitive_names as _primitive_names
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax
from jax.extend.core import Literal

import jaxls.ad
import jaxls._src.ad.rules  # (fills the rule tables)
from jaxls._src.ad import registry

_rng = np.random.default_rng(0)


def is_float(x):
    """Whether ``x`` (an array, a `jax.ShapeDtypeStruct` or a Python number) is inexact."""
    return jnp.issubdtype(x.dtype if hasattr(x, "dtype") else np.result_type(x), jnp.inexact)


def normal(*shape):
    return _rng.standard_normal(shape)


def ints(*values):
    return np.array(values, dtype=np.int32)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    primitive: str  # the name of the primitive under test; its first equation is taken
    fun: Callable
    args: tuple  # float64 arrays are cast to the tested dtype; integer arrays stay
    # Float inputs of the primitive's equation (positions) held constant: no tangent, no
    # cotangent (``scatter-mul``'s updates with repeated indices, which JAX does not
    # differentiate either).
    constant: tuple = ()
    # The function (of the same arguments, binding the same primitive) whose jax.jvp /
    # jax.vjp the rules must match, where JAX's own derivative of ``fun`` is wrong: the
    # ``clip`` extremal scatters with out-of-bounds indices, matched against the same
    # scatter on indices clamped by hand.
    oracle: Callable | None = None

    def __repr__(self):
        return self.id


_TIES = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 2.0, 0.5], [0.0, -1.0, 4.0, 4.0]])
_KEYS = np.array([[1.0, 0.0, 1.0, 2.0], [0.0, 0.0, 2.0, 1.0], [1.0, 2.0, 0.0, 0.0]])
_ZEROS = np.array([[1.5, 0.0, -2.0, 0.7], [0.3, 0.0, 1.2, 0.0], [-0.8, 1.1, 0.9, 2.0]])
_IDX = ints(2, 0, 2)  # repeated
# Windows of two rows of a (4, 3) operand, starting at rows 3 (half out of bounds), 1 and
# -1: clamped to rows 2 and 0 by ``clip``, filled (gather) or dropped (scatter) by ``fill``.
_STARTS = ints(3, 1, -1)[:, None]
_ROWS = lax.GatherDimensionNumbers(
    offset_dims=(1, 2), collapsed_slice_dims=(), start_index_map=(0,)
)
_ROWS_SCATTER = lax.ScatterDimensionNumbers(
    update_window_dims=(1, 2), inserted_window_dims=(), scatter_dims_to_operand_dims=(0,)
)
_dn = lax.dot_general
# Repeated rows of a (4, 2) operand, with ties: in row 1, ``max`` ties the operand with two
# updates in each column; row 0 ties the operand with one update in column 1, row 3 in
# column 0; row 2 is not written. (Small integers: exact in bfloat16 and float16.)
_TIE_IDX = ints(1, 1, 0, 1, 3)
_TIE_X = np.array([[1.0, 5.0], [5.0, 0.0], [0.0, 2.0], [2.0, -1.0]])
_TIE_V = np.array([[5.0, -3.0], [5.0, 0.0], [2.0, 5.0], [3.0, 0.0], [2.0, 7.0]])
# Messages of six edges (three features) to the nodes of a graph, as a GNN aggregates them:
# receivers 0 and 2 get two messages each, with ties; node 1 one; node 3 none (the empty
# segment: -inf / +inf); receiver 5 is out of bounds (dropped).
_MESSAGES = np.array(
    [
        [1.0, 2.0, 3.0],
        [0.0, 0.0, 0.0],
        [1.0, 5.0, 3.0],
        [4.0, 0.0, -1.0],
        [9.0, 9.0, 9.0],
        [2.0, 2.0, 2.0],
    ]
)
_RECEIVERS = ints(0, 2, 0, 2, 5, 1)
_SORTED_RECEIVERS = ints(0, 0, 1, 2, 2, 5)

CASES = [
    # dot_general
    Case("matvec", "dot_general", lambda a, b: a @ b, (normal(3, 4), normal(4))),
    Case("vecmat", "dot_general", lambda a, b: a @ b, (normal(3), normal(3, 4))),
    Case("matmul", "dot_general", lambda a, b: a @ b, (normal(3, 4), normal(4, 5))),
    Case(
        "batched_matmul",
        "dot_general",
        lambda a, b: jnp.einsum("bij,bjk->bik", a, b),
        (normal(2, 3, 4), normal(2, 4, 5)),
    ),
    Case(
        "contract_two_dims_unsorted",
        "dot_general",
        lambda a, b: _dn(a, b, (((2, 0), (0, 2)), ((), ()))),
        (normal(3, 4, 5), normal(5, 6, 3)),
    ),
    Case(
        "batch_dim_in_middle",
        "dot_general",
        lambda a, b: _dn(a, b, (((2,), (0,)), ((1,), (1,)))),
        (normal(3, 2, 4), normal(4, 2, 5)),
    ),
    Case("outer", "dot_general", lambda a, b: jnp.einsum("i,j->ij", a, b), (normal(3), normal(4))),
    # shapes
    Case("broadcast_row", "broadcast_in_dim", lambda x: jnp.broadcast_to(x, (3, 4)), (normal(4),)),
    Case(
        "broadcast_size_one",
        "broadcast_in_dim",
        lambda x: jnp.broadcast_to(x, (3, 4)),
        (normal(3, 1),),
    ),
    Case(
        "broadcast_mixed",
        "broadcast_in_dim",
        lambda x: jnp.broadcast_to(x, (2, 3, 4)),
        (normal(1, 4),),
    ),
    Case(
        "broadcast_scalar",
        "broadcast_in_dim",
        lambda x: lax.broadcast_in_dim(x, (2, 3), ()),
        (normal(),),
    ),
    Case("expand_dims", "broadcast_in_dim", lambda x: jnp.expand_dims(x, 0), (normal(4),)),
    Case("reshape_flat", "reshape", lambda x: x.reshape(12), (normal(3, 4),)),
    Case(
        "reshape_dimensions",
        "reshape",
        lambda x: lax.reshape(x, (2, 6), dimensions=(1, 0)),
        (normal(3, 4),),
    ),
    Case("squeeze", "squeeze", lambda x: jnp.squeeze(x, (0, 2)), (normal(1, 3, 1),)),
    Case("transpose_2d", "transpose", lambda x: x.T, (normal(3, 4),)),
    Case("transpose_3d", "transpose", lambda x: x.transpose(2, 0, 1), (normal(2, 3, 4),)),
    Case("rev_01", "rev", lambda x: lax.rev(x, (0, 1)), (normal(3, 4),)),
    Case(
        "concatenate_2",
        "concatenate",
        lambda a, b: jnp.concatenate([a, b]),
        (normal(2, 3), normal(1, 3)),
    ),
    Case(
        "concatenate_3",
        "concatenate",
        lambda a, b, c: jnp.concatenate([a, b, c], axis=1),
        (normal(2, 1), normal(2, 3), normal(2, 2)),
    ),
    Case(
        "stack_1",
        "stack",
        lambda a, b, c: jnp.stack([a, b, c], 1),
        (normal(2, 3), normal(2, 3), normal(2, 3)),
    ),
    Case("unstack_1", "unstack", lambda x: jnp.unstack(x, axis=1), (normal(3, 2),)),
    Case("tile_prepend", "tile", lambda x: jnp.tile(x, (2, 1, 3)), (normal(4, 1),)),
    Case(
        "sharding_constraint",
        "sharding_constraint",
        lambda x: lax.with_sharding_constraint(
            x, jax.sharding.SingleDeviceSharding(jax.devices()[0])
        ),
        (normal(3, 4),),
    ),
    Case("split_1", "split", lambda x: jnp.split(x, [1, 3], 1), (normal(3, 4),)),
    # reductions
    Case("sum_0", "reduce_sum", lambda x: x.sum(0), (normal(3, 4),)),
    Case("sum_02", "reduce_sum", lambda x: x.sum((0, 2)), (normal(2, 3, 4),)),
    Case("sum_all", "reduce_sum", lambda x: x.sum(), (normal(3, 4),)),
    Case("max_1", "reduce_max", lambda x: x.max(1), (normal(3, 4),)),
    Case("max_02", "reduce_max", lambda x: x.max((0, 2)), (normal(2, 3, 4),)),
    Case("max_ties", "reduce_max", lambda x: x.max(1), (_TIES,)),
    Case("max_all_ties", "reduce_max", lambda x: x.max(), (_TIES,)),
    Case("min_0", "reduce_min", lambda x: x.min(0), (normal(3, 4),)),
    Case("prod_0", "reduce_prod", lambda x: x.prod(0), (normal(3, 4),)),
    Case("prod_zeros_1", "reduce_prod", lambda x: x.prod(1), (_ZEROS,)),
    Case("prod_zeros_all", "reduce_prod", lambda x: x.prod(), (_ZEROS,)),
    Case("prod_02", "reduce_prod", lambda x: x.prod((0, 2)), (normal(2, 3, 4),)),
    # cumulative reductions
    Case("cumsum_0", "cumsum", lambda x: jnp.cumsum(x, 0), (normal(3, 4),)),
    Case("cumsum_reverse", "cumsum", lambda x: lax.cumsum(x, 1, reverse=True), (normal(3, 4),)),
    Case("cumprod_zeros", "cumprod", lambda x: jnp.cumprod(x, 1), (_ZEROS,)),
    Case("cumprod_reverse", "cumprod", lambda x: lax.cumprod(x, 0, reverse=True), (normal(3, 4),)),
    Case("cummax_0", "cummax", lambda x: lax.cummax(x, 0), (normal(5, 3),)),
    Case("cummax_reverse", "cummax", lambda x: lax.cummax(x, 1, reverse=True), (normal(3, 6),)),
    Case("cummin_1", "cummin", lambda x: lax.cummin(x, 1), (normal(3, 6),)),
    # slicing and padding
    Case("slice_strided", "slice", lambda x: x[::2, 1:], (normal(3, 4),)),
    Case("slice_3d", "slice", lambda x: x[1:, :, 0:4:3], (normal(3, 2, 5),)),
    Case(
        "dynamic_slice",
        "dynamic_slice",
        lambda x, k: lax.dynamic_slice(x, (k, 1), (2, 2)),
        (normal(4, 4), np.int64(1)),
    ),
    Case(
        "dynamic_slice_clamped",
        "dynamic_slice",
        lambda x, k: lax.dynamic_slice(x, (k, 0), (2, 3)),
        (normal(4, 4), np.int64(7)),
    ),
    Case(
        "dynamic_update_slice",
        "dynamic_update_slice",
        lambda x, u, k: lax.dynamic_update_slice(x, u, (k, 1)),
        (normal(4, 4), normal(2, 2), np.int64(1)),
    ),
    Case(
        "dynamic_update_slice_clamped",
        "dynamic_update_slice",
        lambda x, u, k: lax.dynamic_update_slice(x, u, (k, 3)),
        (normal(4, 4), normal(2, 2), np.int64(9)),
    ),
    Case(
        "pad_negative_interior",
        "pad",
        lambda x, v: lax.pad(x, v, [(1, -1, 1), (-1, 2, 0)]),
        (normal(3, 4), normal()),
    ),
    Case(
        "pad_crop_interior", "pad", lambda x, v: lax.pad(x, v, [(-2, 1, 2)]), (normal(4), normal())
    ),
    Case("pad_jnp", "pad", lambda x: jnp.pad(x, ((1, 2), (0, 1))), (normal(2, 3),)),
    Case("pad_scalar", "pad", lambda x, v: lax.pad(x, v, []), (normal(), normal())),
    # indexing
    Case("index_rows", "gather", lambda x: x[_IDX], (normal(3, 4),)),
    Case("index_columns", "gather", lambda x: x[:, ints(3, 0)], (normal(3, 4),)),
    Case("index_fancy", "gather", lambda x: x[ints(0, 2, 2), ints(1, 3, 1)], (normal(3, 4),)),
    Case("index_2d_array", "gather", lambda x: x[np.array([[0, 1], [2, 0]])], (normal(3, 4),)),
    Case(
        "take_along_axis",
        "gather",
        lambda x: jnp.take_along_axis(x, np.array([[0, 3], [2, 2], [1, 0]]), 1),
        (normal(3, 4),),
    ),
    Case(
        "take_clip",
        "gather",
        lambda x: jnp.take(x, ints(5, -7, 1), 0, mode="clip"),
        (normal(3, 4),),
    ),
    Case("take_fill", "gather", lambda x: jnp.take(x, ints(5, 1), 1, mode="fill"), (normal(3, 4),)),
    Case(
        "gather_windows_clip",
        "gather",
        lambda x: lax.gather(x, _STARTS, _ROWS, (2, 3), mode="clip"),
        (normal(4, 3),),
    ),
    Case(
        "gather_windows_fill",
        "gather",
        lambda x: lax.gather(x, _STARTS, _ROWS, (2, 3), mode="fill", fill_value=-1.0),
        (normal(4, 3),),
    ),
    Case(
        "gather_promise_sorted_unique",
        "gather",
        lambda x: x.at[ints(0, 2)].get(
            mode="promise_in_bounds", indices_are_sorted=True, unique_indices=True
        ),
        (normal(3, 4),),
    ),
    Case(
        "gather_batched",
        "gather",
        jax.vmap(lambda x, i: x[i]),
        (normal(2, 4), np.array([[3, 0, 3], [1, 1, 2]], np.int32)),
    ),
    Case(
        "scatter_add_repeated",
        "scatter-add",
        lambda x, v: x.at[_IDX].add(v),
        (normal(3, 4), normal(3, 4)),
    ),
    Case(
        "scatter_add_columns",
        "scatter-add",
        lambda x, v: x.at[:, _IDX].add(v),
        (normal(2, 3), normal(2, 3)),
    ),
    Case(
        "scatter_add_points",
        "scatter-add",
        lambda x, v: x.at[ints(0, 2, 0), ints(1, 1, 1)].add(v),
        (normal(3, 4), normal(3)),
    ),
    Case(
        "scatter_add_oob",
        "scatter-add",
        lambda x, v: x.at[ints(1, 9)].add(v),
        (normal(3, 2), normal(2, 2)),
    ),
    Case(
        "scatter_add_clip",
        "scatter-add",
        lambda x, v: x.at[ints(1, 9, -9)].add(v, mode="clip"),
        (normal(3, 2), normal(3, 2)),
    ),
    Case(
        "scatter_add_windows_fill",
        "scatter-add",
        lambda x, v: lax.scatter_add(x, _STARTS, v, _ROWS_SCATTER, mode="fill"),
        (normal(4, 3), normal(3, 2, 3)),
    ),
    Case(
        "scatter_add_promise_sorted_unique",
        "scatter-add",
        lambda x, v: x.at[ints(0, 2)].add(
            v, mode="promise_in_bounds", indices_are_sorted=True, unique_indices=True
        ),
        (normal(3, 4), normal(2, 4)),
    ),
    Case(
        "scatter_add_batched",
        "scatter-add",
        jax.vmap(lambda x, i, v: x.at[i].add(v)),
        (normal(2, 4), np.array([[3, 0, 3], [1, 1, 2]], np.int32), normal(2, 3)),
    ),
    Case(
        "scatter_sub",
        "scatter-sub",
        lambda x, v: x.at[_IDX].subtract(v),
        (normal(3, 4), normal(3, 4)),
    ),
    Case(
        "scatter_sub_clip",
        "scatter-sub",
        lambda x, v: x.at[ints(2, 7)].subtract(v, mode="clip"),
        (normal(3, 2), normal(2, 2)),
    ),
    Case(
        "scatter_set", "scatter", lambda x, v: x.at[ints(2, 0)].set(v), (normal(3, 4), normal(2, 4))
    ),
    Case(
        "scatter_set_repeated",
        "scatter",
        lambda x, v: x.at[_IDX].set(v),
        (normal(3, 4), normal(3, 4)),
    ),
    Case(
        "scatter_set_columns",
        "scatter",
        lambda x, v: x.at[:, ints(3, 1)].set(v),
        (normal(2, 4), normal(2, 2)),
    ),
    Case(
        "scatter_set_oob",
        "scatter",
        lambda x, v: x.at[ints(1, 9)].set(v),
        (normal(3, 2), normal(2, 2)),
    ),
    Case(
        "scatter_set_clip",
        "scatter",
        lambda x, v: x.at[ints(1, 9, -9)].set(v, mode="clip"),
        (normal(3, 2), normal(3, 2)),
    ),
    Case(
        "scatter_set_windows_fill",
        "scatter",
        lambda x, v: lax.scatter(x, _STARTS, v, _ROWS_SCATTER, mode="fill"),
        (normal(4, 3), normal(3, 2, 3)),
    ),
    Case(
        "scatter_set_promise_sorted_unique",
        "scatter",
        lambda x, v: x.at[ints(0, 2)].set(
            v, mode="promise_in_bounds", indices_are_sorted=True, unique_indices=True
        ),
        (normal(3, 4), normal(2, 4)),
    ),
    Case(
        "scatter_set_batched",
        "scatter",
        jax.vmap(lambda x, i, v: x.at[i].set(v)),
        (normal(2, 4), np.array([[3, 0, 3], [1, 1, 2]], np.int32), normal(2, 3)),
    ),
    Case(
        "scatter_max_ties",
        "scatter-max",
        lambda x, v: x.at[_TIE_IDX].max(v),
        (_TIE_X, _TIE_V),
    ),
    Case(
        "scatter_max_fill",
        "scatter-max",
        lambda x, v: x.at[ints(1, 9, -9, 1)].max(v, mode="fill"),
        (normal(3, 2), normal(4, 2)),
    ),
    Case(
        "scatter_max_clip",
        "scatter-max",
        lambda x, v: x.at[ints(1, 9, -9, 1)].max(v, mode="clip"),
        (normal(3, 2), normal(4, 2)),
        oracle=lambda x, v: x.at[ints(1, 2, 0, 1)].max(v),
    ),
    Case(
        "scatter_max_windows_clip",
        "scatter-max",
        lambda x, v: lax.scatter_max(x, _STARTS, v, _ROWS_SCATTER, mode="clip"),
        (normal(4, 3), normal(3, 2, 3)),
        oracle=lambda x, v: lax.scatter_max(x, ints(2, 1, 0)[:, None], v, _ROWS_SCATTER),
    ),
    Case(
        "scatter_max_promise_sorted_unique",
        "scatter-max",
        lambda x, v: x.at[ints(0, 2)].max(
            v, mode="promise_in_bounds", indices_are_sorted=True, unique_indices=True
        ),
        (normal(3, 4), normal(2, 4)),
    ),
    Case(
        "scatter_max_batched",
        "scatter-max",
        jax.vmap(lambda x, i, v: x.at[i].max(v)),
        (normal(2, 4), np.array([[3, 0, 3], [1, 1, 2]], np.int32), normal(2, 3)),
    ),
    Case(
        "segment_max",
        "scatter-max",
        lambda m: jax.ops.segment_max(m, _RECEIVERS, 4),
        (_MESSAGES,),
    ),
    Case("scatter_min_ties", "scatter-min", lambda x, v: x.at[_TIE_IDX].min(v), (-_TIE_X, -_TIE_V)),
    Case(
        "segment_min_sorted",
        "scatter-min",
        lambda m: jax.ops.segment_min(m, _SORTED_RECEIVERS, 4, indices_are_sorted=True),
        (-_MESSAGES,),
    ),
    Case(
        "scatter_mul_repeated",
        "scatter-mul",
        lambda x, v: x.at[_IDX].multiply(v),
        (normal(3, 4), normal(3, 4)),
        constant=(2,),
    ),
    Case(
        "scatter_mul_promise_unique",
        "scatter-mul",
        lambda x, v: x.at[ints(2, 0)].multiply(v, mode="promise_in_bounds", unique_indices=True),
        (normal(3, 4), normal(2, 4)),
    ),
    Case(
        "scatter_mul_clip_unique",
        "scatter-mul",
        lambda x, v: x.at[ints(1, 9)].multiply(v, mode="clip", unique_indices=True),
        (normal(3, 2), normal(2, 2)),
    ),
    Case(
        "scatter_mul_batched",
        "scatter-mul",
        jax.vmap(lambda x, i, v: x.at[i].multiply(v, unique_indices=True)),
        (normal(2, 4), np.array([[3, 0], [1, 2]], np.int32), normal(2, 2)),
    ),
    Case(
        "segment_prod_unique",
        "scatter-mul",
        lambda m: jax.ops.segment_prod(m, ints(2, 0, 7), 3, unique_indices=True),
        (normal(3, 2),),
    ),
    # sorting
    Case("sort_0", "sort", lambda x: jnp.sort(x, 0), (normal(4, 3),)),
    Case(
        "sort_key_value",
        "sort",
        lambda k, v: lax.sort((k, v), num_keys=1),
        (normal(2, 5), normal(2, 5)),
    ),
    Case(
        "sort_two_keys",
        "sort",
        lambda k, v: lax.sort((k, v), dimension=1, num_keys=2),
        (_KEYS, normal(3, 4)),
    ),
    Case("argsort", "sort", lambda x: jnp.argsort(x, 1), (normal(3, 4),)),
    Case("top_k", "top_k", lambda x: lax.top_k(x, 2), (normal(3, 5),)),
]

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
BF16, F16 = np.dtype(jnp.bfloat16), np.dtype(jnp.float16)
# Low precision: 4 ulps, relative to the largest entry (sums and products round in another
# order than jax's).
TOL = {
    F64: dict(rtol=1e-10, atol=1e-10),
    F32: dict(rtol=2e-5, atol=2e-5),
    BF16: dict(rtol=2**-5, atol=2**-5),
    F16: dict(rtol=2**-8, atol=2**-8),
}


# --------------------------------------------------------------------------- machinery


def _eval_and_capture(closed, args, name):
    """Evaluate ``closed`` (entering ``jit`` sub-jaxprs) up to the first equation named
    ``name``; return it with the concrete values of its inputs. (Eager: each equation
    evaluated compiles, so evaluation stops there.)"""
    found = []

    def run(jaxpr, consts, values):
        env = dict(zip(jaxpr.constvars, consts, strict=True))
        env.update(zip(jaxpr.invars, values, strict=True))
        read = lambda v: v.val if isinstance(v, Literal) else env[v]
        for eqn in jaxpr.eqns:
            inputs = [read(v) for v in eqn.invars]
            if eqn.primitive.name == name:
                found.append((eqn.primitive, dict(eqn.params), inputs))
                return None
            if eqn.primitive.name in ("jit", "pjit"):
                sub = eqn.params["jaxpr"]
                outputs = run(sub.jaxpr, sub.consts, inputs)
                if found:
                    return None
            else:
                outputs = eqn.primitive.bind(*inputs, **eqn.params)
                outputs = outputs if eqn.primitive.multiple_results else [outputs]
            env.update(zip(eqn.outvars, outputs, strict=True))
        return [read(v) for v in jaxpr.outvars]

    run(closed.jaxpr, closed.consts, args)
    assert found, f"no {name} equation"
    return found[0]


@dataclasses.dataclass
class Equation:
    primitive: object
    params: dict
    primals: tuple
    constant: tuple = ()  # float inputs held constant (`Case.constant`)

    def bind(self, *primals):
        out = self.primitive.bind(*primals, **self.params)
        return list(out) if self.primitive.multiple_results else out

    @property
    def multiple(self):
        return self.primitive.multiple_results

    @property
    def name(self):
        return self.primitive.name

    def float_positions(self):
        return [i for i, p in enumerate(self.primals) if is_float(p) and i not in self.constant]

    def outputs(self, primals=None):
        out = self.bind(*(self.primals if primals is None else primals))
        return out if self.multiple else [out]

    def output_types(self):
        """The outputs' shapes and dtypes (`jax.ShapeDtypeStruct`), as `bind` returns them
        (evaluating the primitive eagerly would compile it)."""
        return jax.eval_shape(lambda primals: self.bind(*primals), self.primals)

    def float_function(self):
        """The primitive as a function of its float inputs, returning its float outputs."""
        positions = self.float_positions()
        kept = [i for i, o in enumerate(as_list(self, self.output_types())) if is_float(o)]

        def fun(*floats):
            primals = list(self.primals)
            for i, x in zip(positions, floats, strict=True):
                primals[i] = x
            out = self.outputs(primals)
            return tuple(out[i] for i in kept)

        return fun, kept


_EQUATIONS: dict = {}


def equation(case, dtype):
    """The equation of ``case`` with ``dtype`` floats (cached: building it compiles)."""
    key = (case.id, np.dtype(dtype))
    if key not in _EQUATIONS:
        _EQUATIONS[key] = _equation(case, dtype)
    return _EQUATIONS[key]


def _equation(case, dtype):
    args = [
        np.asarray(a).astype(dtype) if np.issubdtype(np.asarray(a).dtype, np.floating) else a
        for a in case.args
    ]
    with jax.numpy_dtype_promotion("standard"):
        closed = jax.make_jaxpr(case.fun)(*args)
    primitive, params, primals = _eval_and_capture(closed, args, case.primitive)
    return Equation(primitive, params, tuple(primals), case.constant)


def random_like(x, seed):
    """Standard normal values like ``x``, rounded to its dtype on the host (as XLA would,
    without compiling a conversion per shape), as a JAX array (the rules run eagerly too)."""
    rng = np.random.default_rng(seed)
    return jax.device_put(rng.standard_normal(np.shape(x)).astype(x.dtype))


def random_tangents(eqn, seed=1):
    positions = eqn.float_positions()
    return tuple(
        random_like(p, seed + i) if i in positions else None for i, p in enumerate(eqn.primals)
    )


def random_cotangents(eqn, out, seed=100):
    outs = out if eqn.multiple else [out]
    cts = [random_like(o, seed + i) if is_float(o) else None for i, o in enumerate(outs)]
    return cts if eqn.multiple else cts[0]


def call_jvp(eqn, primals, tangents, out):
    return registry.jvp_rules[eqn.name](tuple(primals), tuple(tangents), out, **eqn.params)


def call_vjp(eqn, cts, primals, out):
    """The VJP rule of ``eqn``'s primitive, told which inputs are active where it asks
    (``scatter-mul``, a `registry.HigherOrderVJP`: its updates' cotangent needs unique
    indices, so it must know whether they are differentiated)."""
    return vjp_rule_call(eqn, cts, primals, out, eqn.float_positions())


def vjp_rule_call(eqn, cts, primals, out, positions):
    """The VJP rule of ``eqn`` (anything with ``name`` and ``params``), the float inputs at
    ``positions`` active."""
    rule = registry.vjp_rules[eqn.name]
    if not isinstance(rule, registry.HigherOrderVJP):
        return rule(cts, tuple(primals), out, **eqn.params)
    active = [i in positions for i in range(len(primals))]
    # A first-order primitive: no interpreter, no residuals; one output.
    return tuple(rule.backward(None, eqn, None, list(primals), [out], active, [cts]))


def as_list(eqn, value):
    return list(value) if eqn.multiple else [value]


def assert_close(actual, expected, dtype):
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    tol = TOL[np.dtype(dtype)]
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


def vdot(a, b):
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


# --------------------------------------------------------------------------- against JAX

# float64, bfloat16 and float16 run on the first case of each primitive and on the cases
# prone to rounding.
_LOW = {"contract_two_dims_unsorted", "max_ties", "prod_zeros_all", "cumprod_zeros"}
_LOW |= {next(c.id for c in CASES if c.primitive == p) for p in {c.primitive for c in CASES}}
MATCH_CASES = [
    pytest.param(c, dtype, id=f"{c.id}-{short}")
    for dtype, short in ((F32, "f32"), (F64, "f64"), (BF16, "bf16"), (F16, "f16"))
    for c in CASES
    if dtype == F32 or c.id in _LOW
]


@pytest.mark.parametrize("case, dtype", MATCH_CASES)
def test_rules_match_jax(case, dtype):
    """JVP rule = jax.jvp, VJP rule = jax.vjp (of the primitive's bind, or of the case's
    oracle), cotangents shaped and typed like the primals, and <u, J v> = <J^T u, v>
    between the two rules."""
    oracle = None
    if case.oracle is not None:
        oracle = _equation(dataclasses.replace(case, fun=case.oracle), dtype)
    check_against_jax(equation(case, dtype), dtype, oracle)


def check_against_jax(eqn, dtype, oracle=None):
    """The checks of `test_rules_match_jax` on one equation (against JAX's derivative of
    ``oracle``, by default the equation itself). (Under one `jax.jit`: compiling op by op
    would dominate the run time; the rules run eagerly in
    `test_rules_eager_and_under_jit_of_vmap`.)"""
    out = eqn.output_types()
    positions = eqn.float_positions()
    fun, kept = (eqn if oracle is None else oracle).float_function()
    tangents = random_tangents(eqn)
    cts = random_cotangents(eqn, out)

    @fast_jit
    def rules_and_oracle(primals, tangents, cts):
        out = eqn.bind(*primals)
        floats = [primals[i] for i in positions]
        jv = as_list(eqn, call_jvp(eqn, primals, tangents, out))
        _, jv_jax = jax.jvp(fun, floats, [tangents[i] for i in positions])
        jtu = call_vjp(eqn, cts, primals, out)
        _, pullback = jax.vjp(fun, *floats)
        jtu_jax = pullback(tuple(as_list(eqn, cts)[i] for i in kept))
        return jv, jv_jax, jtu, jtu_jax

    jv, jv_jax, jtu, jtu_jax = rules_and_oracle(eqn.primals, tangents, cts)
    for k, i in enumerate(kept):
        assert_close(jv[i], jv_jax[k], dtype)
    for i, o in enumerate(as_list(eqn, out)):
        if not is_float(o):
            assert jv[i] is None
    assert isinstance(jtu, tuple) and len(jtu) == len(eqn.primals)
    for k, i in enumerate(positions):
        assert_close(jtu[i], jtu_jax[k], dtype)
        assert jtu[i].shape == np.shape(eqn.primals[i])
        assert jtu[i].dtype == eqn.primals[i].dtype
    for i in range(len(eqn.primals)):
        if i not in positions:
            assert jtu[i] is None

    u_jv = sum(vdot(u, t) for u, t in zip(as_list(eqn, cts), jv, strict=True) if u is not None)
    jtu_v = sum(vdot(c, v) for c, v in zip(jtu, tangents, strict=True) if v is not None)
    tol = TOL[dtype]
    assert u_jv == pytest.approx(jtu_v, rel=tol["rtol"], abs=tol["atol"])


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if sum(is_float(a) for a in c.args) > 1 or c.primitive == "sort"],
    ids=repr,
)
def test_jvp_none_tangents(case):
    """Each float input alone: the other tangents None give what zeros give. (In one
    `jax.jit`, the zeros passed in as arguments, so that XLA cannot fold them away.)"""
    eqn = equation(case, F32)
    tangents = random_tangents(eqn)
    zeros = tuple(None if t is None else np.zeros(t.shape, t.dtype) for t in tangents)

    @fast_jit
    def jvps(primals, tangents, zeros):
        out = eqn.bind(*primals)
        pairs = []
        for i in eqn.float_positions():
            only = tuple(t if j == i else None for j, t in enumerate(tangents))
            padded = tuple(
                t if j == i else z for j, (t, z) in enumerate(zip(tangents, zeros, strict=True))
            )
            pairs.append((call_jvp(eqn, primals, only, out), call_jvp(eqn, primals, padded, out)))
        return pairs, call_jvp(eqn, primals, (None,) * len(primals), out)

    pairs, all_none = jvps(eqn.primals, tangents, zeros)
    for with_none, with_zeros in pairs:
        for a, b in zip(as_list(eqn, with_none), as_list(eqn, with_zeros), strict=True):
            if b is None or not is_float(b):
                continue
            a = np.zeros(b.shape, b.dtype) if a is None else a  # a symbolic zero
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert all(t is None for t in as_list(eqn, all_none))


@st.composite
def dot_general_operands(draw):
    """Two operands and random dimension numbers: batch, contracted and free dimensions
    of sizes 1 to 3, laid out in random orders."""
    size = st.integers(1, 3)
    batch = draw(st.lists(size, max_size=2))
    contract = draw(st.lists(size, max_size=2))
    lhs_free = draw(st.lists(size, max_size=2))
    rhs_free = draw(st.lists(size, max_size=2))

    def layout(free):
        dims = [("b", k) for k in range(len(batch))] + [("c", k) for k in range(len(contract))]
        return draw(st.permutations(dims + [("f", k) for k in range(len(free))]))

    lhs, rhs = layout(lhs_free), layout(rhs_free)
    sizes = {"b": batch, "c": contract}
    shape = lambda dims, free: tuple({**sizes, "f": free}[kind][k] for kind, k in dims)
    where = lambda dims, kind: tuple(dims.index((kind, k)) for k in range(len(sizes[kind])))
    numbers = ((where(lhs, "c"), where(rhs, "c")), (where(lhs, "b"), where(rhs, "b")))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(shape(lhs, lhs_free)),
        rng.standard_normal(shape(rhs, rhs_free)),
        numbers,
    )


# A third of the profile's examples: each one compiles.
_FEWER = settings(max_examples=max(8, settings().max_examples // 3))


@_FEWER
@given(dot_general_operands())
def test_dot_general_random_dimension_numbers(operands):
    lhs, rhs, numbers = operands
    case = Case("random", "dot_general", lambda a, b: _dn(a, b, numbers), (lhs, rhs))
    check_against_jax(_equation(case, F32), F32)


@st.composite
def pad_operands(draw):
    """An operand and a padding configuration with negative edges and interior padding
    (the output keeps every dimension non-negative)."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    config = []
    for n in shape:
        interior = draw(st.integers(0, 2))
        inner = n + (n - 1) * interior
        low = draw(st.integers(-inner, 2))
        high = draw(st.integers(-(inner + low), 2))
        config.append((low, high, interior))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return rng.standard_normal(shape), tuple(config)


@_FEWER
@given(pad_operands())
def test_pad_random_configurations(operands):
    x, config = operands
    case = Case("random", "pad", lambda x, v: lax.pad(x, v, config), (x, np.float64(0.5)))
    check_against_jax(_equation(case, F32), F32)


# --------------------------------------------------------------------------- transformations


def _stack(trees):
    """The examples stacked on the host (NumPy: an eager `jnp.stack` compiles per shape)."""
    return jax.tree.map(lambda *xs: np.stack(xs), *jax.device_get(trees))


@pytest.mark.parametrize("case", [c for c in CASES if c.id in _LOW], ids=repr)
def test_rules_eager_and_under_jit_of_vmap(case):
    """The rules run eagerly on two examples (concrete arrays: no deprecated conversions)
    equal jit(vmap(rules)) over the stacked primals, outputs, tangents and cotangents. (On
    a case per primitive and the rounding-prone ones: eager runs compile op by op; the
    examples are made, and the batched results compared, in NumPy.)"""
    eqn = equation(case, F32)
    examples = []
    for k in range(2):
        # The float32 arithmetic jnp would do, in NumPy (Python floats are weak in both);
        # `jax.device_put`, not `jnp.asarray`, which compiles a copy per shape.
        primals = tuple(
            jax.device_put(np.asarray(p) + 0.01 * k * np.asarray(random_like(p, 50 + i)))
            if is_float(p)
            else jax.device_put(p)
            for i, p in enumerate(eqn.primals)
        )
        out = eqn.bind(*primals)
        examples.append((primals, random_tangents(eqn, 10 * k), out, random_cotangents(eqn, out)))

    def rules(p, t, o, c):
        return as_list(eqn, call_jvp(eqn, p, t, o)), call_vjp(eqn, c, p, o)

    batched = jax.device_get(fast_jit(jax.vmap(rules))(*_stack(examples)))
    for k, example in enumerate(examples):
        single = rules(*example)
        flat_batched, tree_batched = jax.tree.flatten(batched, is_leaf=lambda x: x is None)
        flat_single, tree_single = jax.tree.flatten(single, is_leaf=lambda x: x is None)
        assert tree_batched == tree_single
        for b, s in zip(flat_batched, flat_single, strict=True):
            assert (b is None) == (s is None)
            if s is not None:
                np.testing.assert_allclose(b[k], s, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- differentiability


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_emitted_primitives_have_jvp_rules(case):
    """Everything the rules emit (recursively into sub-jaxprs) can be differentiated."""
    eqn = equation(case, F32)
    out = eqn.output_types()
    tangents = random_tangents(eqn)
    cts = random_cotangents(eqn, out)
    emitted = _primitive_names(
        jax.make_jaxpr(lambda c, p, o: call_vjp(eqn, c, p, o))(cts, eqn.primals, out).jaxpr
    )
    emitted |= _primitive_names(
        jax.make_jaxpr(lambda p, t, o: call_jvp(eqn, p, t, o))(eqn.primals, tangents, out).jaxpr
    )
    missing = sorted(emitted - set(registry.jvp_rules))
    assert not missing, f"{case.id} emits primitives without a JVP rule: {missing}"


def _jvp_of_jaxpr(jaxpr, consts, primals, tangents):
    """Forward mode over a jaxpr with the registered JVP rules (a minimal interpreter,
    entering ``jit`` sub-jaxprs): the primal and tangent outputs (``None``: zero)."""
    env = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, primals, strict=True))
    tenv = dict(zip(jaxpr.invars, tangents, strict=True))
    read = lambda v: v.val if isinstance(v, Literal) else env[v]
    tread = lambda v: None if isinstance(v, Literal) else tenv.get(v)
    for eqn in jaxpr.eqns:
        inputs, tins = [read(v) for v in eqn.invars], [tread(v) for v in eqn.invars]
        if eqn.primitive.name in ("jit", "pjit"):
            sub = eqn.params["jaxpr"]
            outs, touts = _jvp_of_jaxpr(sub.jaxpr, sub.consts, inputs, tins)
        else:
            outs = eqn.primitive.bind(*inputs, **eqn.params)
            if all(t is None for t in tins):
                touts = None
            else:
                rule_out = list(outs) if eqn.primitive.multiple_results else outs
                touts = registry.jvp_rules[eqn.primitive.name](
                    tuple(inputs), tuple(tins), rule_out, **eqn.params
                )
            if not eqn.primitive.multiple_results:
                outs, touts = [outs], [touts]
            touts = [None] * len(outs) if touts is None else touts
        env.update(zip(eqn.outvars, outs, strict=True))
        tenv.update(zip(eqn.outvars, touts, strict=True))
    return [read(v) for v in jaxpr.outvars], [tread(v) for v in jaxpr.outvars]


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_vjp_rules_differentiated_by_jvp_rules(case):
    """Forward over reverse: the registered JVP rules, run over the jaxpr of
    ``(primals, cts) -> vjp_rule(cts, primals, bind(primals))``, agree with jax.jvp of it."""
    eqn = equation(case, F32)
    positions = eqn.float_positions()
    cts = random_cotangents(eqn, eqn.output_types())

    def pullback(floats, cts):
        primals = list(eqn.primals)
        for i, x in zip(positions, floats, strict=True):
            primals[i] = x
        jtu = call_vjp(eqn, cts, primals, eqn.bind(*primals))
        return [jtu[i] for i in positions]

    floats = [eqn.primals[i] for i in positions]
    dfloats = [random_like(x, 30 + i) for i, x in enumerate(floats)]
    dcts = jax.tree.map(lambda c: random_like(c, 40), cts)

    @fast_jit
    def both(floats, cts, dfloats, dcts):
        closed = jax.make_jaxpr(pullback)(floats, cts)
        args, targs = jax.tree.leaves((floats, cts)), jax.tree.leaves((dfloats, dcts))
        _, mine = _jvp_of_jaxpr(closed.jaxpr, closed.consts, args, targs)
        _, theirs = jax.jvp(pullback, (floats, cts), (dfloats, dcts))
        return mine, theirs

    mine, theirs = both(floats, cts, dfloats, dcts)
    for m, t in zip(mine, theirs, strict=True):
        m = jnp.zeros_like(t) if m is None else m
        assert_close(m, t, F32)


# --------------------------------------------------------------------------- special cases


@pytest.mark.x64(reason="the product's result type is float64")
def test_dot_general_preferred_element_type():
    """float32 operands with a float64 result: the cotangents are float32."""
    a, b = jnp.asarray(normal(3, 4), np.float32), jnp.asarray(normal(4, 2), np.float32)
    closed = jax.make_jaxpr(
        lambda a, b: _dn(a, b, (((1,), (0,)), ((), ())), preferred_element_type=np.float64)
    )(a, b)
    primitive, params, primals = _eval_and_capture(closed, [a, b], "dot_general")
    eqn = Equation(primitive, params, tuple(primals))
    out = eqn.bind(a, b)
    assert out.dtype == np.float64
    ct = random_like(out, 3)
    ct_a, ct_b = call_vjp(eqn, ct, (a, b), out)
    assert ct_a.dtype == ct_b.dtype == np.float32
    _, pullback = jax.vjp(eqn.bind, a, b)
    for actual, expected in zip((ct_a, ct_b), pullback(ct), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    t_out = call_jvp(eqn, (a, b), (random_like(a, 1), random_like(b, 2)), out)
    assert t_out.dtype == np.float64


@pytest.mark.parametrize(
    "name, fun",
    [
        ("argmax", lambda x: x.argmax(1)),
        ("argmin", lambda x: x.argmin(0)),
        ("iota", lambda x: jnp.arange(4) + x[0, 0]),
    ],
    ids=["argmax", "argmin", "iota"],
)
def test_integer_outputs_have_no_derivative(name, fun):
    x = jnp.asarray(normal(3, 4))
    primitive, params, primals = _eval_and_capture(jax.make_jaxpr(fun)(x), [x], name)
    out = primitive.bind(*primals, **params)
    tangents = tuple(jnp.ones_like(p) for p in primals)
    assert registry.jvp_rules[name](tuple(primals), tangents, out, **params) is None
    cts = registry.vjp_rules[name](jnp.ones(np.shape(out)), tuple(primals), out, **params)
    assert cts == (None,) * len(primals)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("primitive", [lax.cummax_p, lax.cummin_p], ids=["cummax", "cummin"])
def test_cumulative_extreme_ties_split_like_reduce_max_of_prefix(primitive, reverse):
    """Output i gets reduce_max's derivative of the prefix x[:i + 1] (suffix x[i:] when
    reversed): equal shares among its ties. Recomputed in NumPy as a weight matrix W;
    the JVP is W t and the VJP W^T ct."""
    x = np.array([1.0, 3.0, 2.0, 3.0, 3.0, 5.0, 5.0, 0.0, 5.0])
    x = x if primitive is lax.cummax_p else -x
    n = len(x)
    weights = np.zeros((n, n))
    for i in range(n):
        window = np.arange(i, n) if reverse else np.arange(i + 1)
        extreme = x[window].max() if primitive is lax.cummax_p else x[window].min()
        ties = window[x[window] == extreme]
        weights[i, ties] = 1.0 / len(ties)
    eqn = Equation(primitive, dict(axis=0, reverse=reverse), (jnp.asarray(x, F32),))
    out = eqn.bind(*eqn.primals)
    t, ct = jnp.asarray(normal(n), F32), jnp.asarray(normal(n), F32)
    rules = fast_jit(
        lambda t, ct: (call_jvp(eqn, eqn.primals, (t,), out), call_vjp(eqn, ct, eqn.primals, out))
    )
    jv, (jtu,) = rules(t, ct)
    np.testing.assert_allclose(jv, weights @ np.asarray(t), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jtu, weights.T @ np.asarray(ct), rtol=1e-6, atol=1e-6)


def test_reduce_max_ties_split_equally():
    x = jnp.array([2.0, 5.0, 5.0, 5.0, 1.0])
    eqn = Equation(lax.reduce_max_p, dict(axes=(0,)), (x,))
    (ct_x,) = call_vjp(eqn, jnp.array(3.0), (x,), eqn.bind(x))
    np.testing.assert_allclose(ct_x, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_reduce_prod_exact_with_zeros():
    x = jnp.array([0.0, 2.0, 3.0])
    eqn = Equation(lax.reduce_prod_p, dict(axes=(0,)), (x,))
    (ct_x,) = call_vjp(eqn, jnp.array(1.0), (x,), eqn.bind(x))
    np.testing.assert_array_equal(ct_x, [6.0, 0.0, 0.0])


def test_scatter_repeated_indices_only_winner_differentiates():
    """x.at[[1, 1]].set(v): one of the two updates wins; only it gets a cotangent."""
    x, v = jnp.zeros(3), jnp.array([1.0, 2.0])
    closed = jax.make_jaxpr(lambda x, v: x.at[ints(1, 1)].set(v))(x, v)
    primitive, params, primals = _eval_and_capture(closed, [x, v], "scatter")
    eqn = Equation(primitive, params, tuple(primals))
    out = eqn.bind(*primals)
    ct_x, _, ct_v = call_vjp(eqn, jnp.array([1.0, 10.0, 100.0]), primals, out)
    np.testing.assert_array_equal(ct_x, [1.0, 0.0, 100.0])
    winner = int(np.flatnonzero(np.asarray(v) == np.asarray(out)[1])[0])
    np.testing.assert_array_equal(ct_v, np.where(np.arange(2) == winner, 10.0, 0.0))


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("transform", ["jacfwd", "jacrev"])
def test_scatter_apply_refused_as_jax_does(transform):
    """``x.at[i].apply(f)`` is a ``scatter`` whose ``update_jaxpr`` is ``f``: JAX has no
    derivative for it, and the rules refuse it rather than differentiate an overwrite
    (they gave ``[[1, 0], [0, 0]]``)."""
    f = lambda x: x.at[1].apply(jnp.sin)
    x = jnp.array([0.5, 1.0])
    with pytest.raises(NotImplementedError):
        getattr(jax, transform)(f)(x)
    with pytest.raises(NotImplementedError, match=r"update_jaxpr.*x\.at\[i\]\.set\(f\(x\[i\]\)\)"):
        getattr(jaxls.ad, transform)(f)(x)


_AT = {
    "set": ("scatter", lambda r: r.set(2.0)),
    "add": ("scatter-add", lambda r: r.add(2.0)),
    "subtract": ("scatter-sub", lambda r: r.subtract(2.0)),
    "mul": ("scatter-mul", lambda r: r.mul(2.0)),
    "min": ("scatter-min", lambda r: r.min(2.0)),
    "max": ("scatter-max", lambda r: r.max(2.0)),
    "apply": ("scatter", lambda r: r.apply(jnp.sin)),
}
"""``x.at[i].<method>``: the scatter primitive it binds, whose ``update_jaxpr`` is the
method's combiner, and the call."""

_OWN = {
    "scatter": "set",
    "scatter-add": "add",
    "scatter-sub": "subtract",
    "scatter-mul": "mul",
    "scatter-min": "min",
    "scatter-max": "max",
}
_ONE_HOT = {"mode": lax.GatherScatterMode.ONE_HOT}
_PRIMITIVES = {
    "scatter": lax.scatter_p,
    "scatter-add": lax.scatter_add_p,
    "scatter-sub": lax.scatter_sub_p,
    "scatter-mul": lax.scatter_mul_p,
    "scatter-min": lax.scatter_min_p,
    "scatter-max": lax.scatter_max_p,
}


def _params_of(fun, name, x):
    """The parameters of the first ``name`` equation of ``fun(x)``."""
    eqns = jax.make_jaxpr(fun)(x).jaxpr.eqns
    return dict(next(e for e in eqns if e.primitive.name == name).params)


@pytest.mark.parametrize(
    "name, method, overrides",
    [
        pytest.param(name, method, {}, id=f"{name}-update_jaxpr-of-{method}")
        for name, own in _OWN.items()
        for method in _AT
        if method != own
    ]
    + [pytest.param(name, own, _ONE_HOT, id=f"{name}-one_hot") for name, own in _OWN.items()],
)
def test_scatter_rules_refuse_parameters_they_do_not_implement(name, method, overrides):
    """A scatter rule differentiates one combiner (``scatter``: overwrite, no
    ``update_jaxpr``; ``scatter-add``: ``add``; ``scatter-sub``: ``sub``; ``scatter-mul``,
    ``scatter-min``, ``scatter-max``: ``mul``, ``min``, ``max``) and the index modes
    ``clip``, ``fill`` and ``promise_in_bounds``. Given another ``update_jaxpr`` (which
    the primitive applies: ``scatter-add`` bound with ``mul`` multiplies) or mode, its JVP
    and VJP rules raise rather than guess."""
    donor, at = _AT[method]
    params = _params_of(lambda x: at(x.at[ints(1)]), donor, jnp.arange(3.0)) | overrides
    x, indices, updates = jnp.arange(3.0), ints(1)[:, None], jnp.ones(1)
    primals, tangents = (x, indices, updates), (x, None, updates)
    match = f"`{name}`.*{'mode' if overrides else 'update_jaxpr'}"
    with pytest.raises(NotImplementedError, match=match):
        registry.jvp_rules[name](primals, tangents, x, **params)
    eqn = Equation(_PRIMITIVES[name], params, primals)
    with pytest.raises(NotImplementedError, match=match):
        vjp_rule_call(eqn, x, primals, x, positions=(0, 2))


def test_gather_rules_refuse_one_hot_mode():
    x, indices = jnp.arange(3.0), ints(1)[:, None]
    params = _params_of(lambda x: x[ints(1)], "gather", x) | _ONE_HOT
    with pytest.raises(NotImplementedError, match=r"`gather`.*mode"):
        registry.jvp_rules["gather"]((x, indices), (x, None), x[:1], **params)
    with pytest.raises(NotImplementedError, match=r"`gather`.*mode"):
        registry.vjp_rules["gather"](x[:1], (x, indices), x[:1], **params)


_PRODUCTS = {
    "at_multiply": (lambda x, v: x.at[_IDX].multiply(v), (normal(3, 4), normal(3, 4))),
    "segment_prod": (
        lambda ones, m: ones * jax.ops.segment_prod(m, _RECEIVERS, 4),
        (np.ones((4, 3)), _MESSAGES),
    ),
}


@pytest.mark.parametrize(
    "fun_name, transform",
    [("at_multiply", "jacfwd"), ("at_multiply", "jacrev"), ("segment_prod", "jacrev")],
)
def test_scatter_mul_with_repeated_indices_differentiates_the_operand_alone(fun_name, transform):
    """``scatter-mul`` with repeated indices (``unique_indices=False``, the default, as in
    ``jax.ops.segment_prod``): JAX differentiates it with respect to the operand only, and
    so do the rules (reverse mode told that the updates are constant); with respect to the
    updates both refuse, the rules naming the way out."""
    fun, args = _PRODUCTS[fun_name]
    x, v = (jnp.asarray(a, F32) for a in args)
    expected = fast_jit(getattr(jax, transform)(fun, 0))(x, v)
    actual = fast_jit(getattr(jaxls.ad, transform)(fun, 0))(x, v)
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
    with pytest.raises(NotImplementedError):
        jax.eval_shape(getattr(jax, transform)(fun, 1), x, v)
    with pytest.raises(NotImplementedError, match=r"`scatter-mul`.*updates.*unique_indices=True"):
        jax.eval_shape(getattr(jaxls.ad, transform)(fun, 1), x, v)


def test_scatter_extremal_ties_split_equally():
    """``x.at[[0, 0, 0]].max([5, 5, 3])`` with ``x = [5, nan]``: the operand and the two
    updates that attain 5 share the derivative in thirds (JAX's convention, that of
    ``reduce_max``), the losing update gets none. Where the output is NaN, the values that
    are NaN attain it: an element no update touches keeps its derivative, as in JAX."""
    eqn = equation(
        Case(
            "ties",
            "scatter-max",
            lambda x, v: x.at[ints(0, 0, 0)].max(v),
            (np.array([5.0, np.nan]), np.array([5.0, 5.0, 3.0])),
        ),
        F32,
    )
    out = eqn.bind(*eqn.primals)
    t = jnp.array([3.0, 7.0]), None, jnp.array([6.0, 9.0, 100.0])
    rules = fast_jit(
        lambda t, ct: (call_jvp(eqn, eqn.primals, t, out), call_vjp(eqn, ct, eqn.primals, out))
    )
    jv, (ct_x, _, ct_v) = rules(t, jnp.array([3.0, 2.0]))
    np.testing.assert_allclose(jv, [(3.0 + 6.0 + 9.0) / 3, 7.0], rtol=1e-6)
    np.testing.assert_allclose(ct_x, [1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(ct_v, [1.0, 1.0, 0.0], rtol=1e-6)


def _message_passing(params, h, receivers):
    """A scalar loss of one graph layer: node states mixed, sent along the edges (scaled by
    ``scatter-mul`` on distinct edges), aggregated by maximum and minimum at the receivers."""
    w, scale = params[:9].reshape(3, 3), params[9:]
    senders = ints(1, 0, 3, 2, 0, 1)
    messages = jnp.tanh(h @ w)[senders]
    messages = messages.at[ints(4, 0, 2)].multiply(scale[:, None], unique_indices=True)
    high = jax.ops.segment_max(messages, receivers, 4)
    low = jax.ops.segment_min(messages, receivers, 4)
    return jnp.sum(jnp.sin(high) * low)


def test_message_passing_layer_grad_and_hessian():
    """A GNN layer end to end: jaxls.ad's gradient and Hessian (the rules differentiated
    again) equal JAX's, under jit and vmap over graphs with different receivers."""
    params = jnp.asarray(normal(12), F32)
    h = jnp.asarray(normal(4, 3), F32)
    receivers = np.array([[0, 2, 0, 2, 1, 3], [3, 3, 1, 0, 2, 2]], np.int32)

    def derivatives(params, h, receivers):
        return [
            [module.grad(_message_passing)(params, h, receivers) for module in (jaxls.ad, jax)],
            [module.hessian(_message_passing)(params, h, receivers) for module in (jaxls.ad, jax)],
        ]

    batched = fast_jit(jax.vmap(derivatives, in_axes=(None, None, 0)))
    for actual, expected in batched(params, h, receivers):
        np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=2e-5)
