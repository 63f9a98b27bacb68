"""Rule-level tests of the elementwise JVP / VJP rules (jaxls/_src/ad/rules/elementwise.py).

For every primitive, at seeded random float32, float64, bfloat16 and float16 inputs in its
domain (away from kinks and branch cuts), the JVP rule is compared with `jax.jvp` of the
primitive's bind computed in the same dtype,
the VJP rule with `jax.vjp`, and the two rules with each other (<u, J v> = <J^T u, v>);
dtypes and shapes are checked, and the rules are run again under `jax.jit(jax.vmap(...))`.
Further tests: symbolic-zero tangents, rank-0 operands, JAX's conventions at kinks and ties,
the zero-derivative primitives, complex inputs, second derivatives (`jax.jvp` of the VJP
rules; `jaxls.ad`'s second-order transforms of ``pow``; every primitive's at edge points:
0, 1, negative) against JAX's, and that every primitive the rules emit has rules itself
(so that they can be differentiated again).
"""

from __future__ import annotations

import dataclasses
import warnings
import zlib
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.ad_zoo import fast_jit
from tests.helpers import primitive_names as emitted_primitives
from jax import lax
from jax._src.lax import lax as lax_internal  # eq_to_p, le_to_p, lt_to_p: no public binder

import jaxls.ad as ad
from jaxls._src.ad import registry
from jaxls._src.ad.rules import elementwise

SHAPE = (3, 4)
BF16, F16 = np.dtype(jnp.bfloat16), np.dtype(jnp.float16)
# Low precision: relative to the largest entry (see `assert_close`): formulas that differ
# from jax's (tanh' = (1 + t)(1 - t) against 1 - t**2) round differently by a few ulps of
# the largest value, not of each entry.
TOL = {
    np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6),
    np.dtype(np.float64): dict(rtol=1e-11, atol=1e-13),
    BF16: dict(rtol=2**-5, atol=2**-5),  # 4 ulps
    F16: dict(rtol=2**-8, atol=2**-8),  # 4 ulps
}


# ----------------------------------------------------------------------------- samplers


def uniform(lo, hi):
    return lambda rng, shape, dtype: rng.uniform(lo, hi, shape).astype(dtype)


def away_from_zero(lo, hi):
    def sample(rng, shape, dtype):
        return (rng.choice([-1.0, 1.0], shape) * rng.uniform(lo, hi, shape)).astype(dtype)

    return sample


def integers(lo, hi, dtype=np.int32):
    return lambda rng, shape, _: rng.integers(lo, hi + 1, shape).astype(dtype)


def constant(value):
    return lambda rng, shape, dtype: np.full(shape, value, dtype)


def booleans(rng, shape, dtype):
    return rng.random(shape) < 0.5


ANY = uniform(-2.0, 2.0)
POSITIVE = uniform(0.5, 3.0)
UNIT = uniform(-0.9, 0.9)


@dataclasses.dataclass(frozen=True)
class Case:
    """A primitive, through a function that binds it alone, with samplers of its inputs.

    ``sample``: overrides the samplers, ``sample(rng, shape, dtype) -> inputs``.
    (``polygamma``, whose order is never differentiated, is in test_ad_rules_special.py.)
    """

    id: str
    fun: Callable
    samplers: tuple = ()
    sample: Callable | None = None

    def inputs(self, dtype, shape=SHAPE):
        rng = np.random.default_rng(zlib.crc32(f"{self.id}-{np.dtype(dtype)}".encode()))
        if self.sample is not None:
            return tuple(self.sample(rng, shape, dtype))
        return tuple(sample(rng, shape, dtype) for sample in self.samplers)

    def primitive(self, xs):
        """The primitive and parameters that ``fun`` binds (checked to be one equation)."""
        with warnings.catch_warnings():  # complex to real conversion warns
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            (eqn,) = jax.make_jaxpr(self.fun)(*xs).jaxpr.eqns
        return eqn.primitive, dict(eqn.params)

    def differentiated(self, xs):
        """Positions of the inputs that carry tangents."""
        return tuple(i for i, x in enumerate(xs) if is_float(x))


def rem_inputs(rng, shape, dtype):
    """x = q y with q at least 0.1 away from an integer: away from rem's jumps."""
    y = away_from_zero(0.5, 2.0)(rng, shape, dtype)
    q = rng.integers(-3, 4, shape) + rng.choice([-1, 1], shape) * rng.uniform(0.1, 0.9, shape)
    return (q * y).astype(dtype), y


def chooser_inputs(rng, shape, dtype):
    """Distinct x and y (ties are tested on their own)."""
    x = ANY(rng, shape, dtype)
    return x, (x + away_from_zero(0.1, 1.0)(rng, shape, dtype)).astype(dtype)


def clamp_inputs(rng, shape, dtype):
    """lo < hi, and x at least 0.05 away from both; about a third of x in each region."""
    lo = uniform(-1.5, -0.5)(rng, shape, dtype)
    hi = uniform(0.5, 1.5)(rng, shape, dtype)
    region = rng.integers(0, 3, shape)
    x = np.where(region == 0, lo - 0.5, np.where(region == 1, 0.0, hi + 0.5))
    return lo, (x + rng.uniform(-0.4, 0.4, shape)).astype(dtype), hi


def select_inputs(n_cases, which_sampler):
    def sample(rng, shape, dtype):
        return (which_sampler(rng, shape, dtype), *(ANY(rng, shape, dtype) for _ in range(n_cases)))

    return sample


def other_float(dtype):
    """A float dtype to convert to: narrower (float32 to bfloat16: the conversion that
    `jnp.sum` inserts, where bfloat16 lost its derivative in issue 9), or float32."""
    return jnp.bfloat16 if np.dtype(dtype) in (np.float32, np.float64) else np.float32


def bind_add_any(x, y):
    """``add_any``, JAX's sum of tangents: taken from the jaxpr of a gradient."""
    jaxpr = jax.make_jaxpr(jax.grad(lambda z: jnp.sin(z) * z))(1.0)
    (prim,) = {e.primitive for e in jaxpr.eqns if e.primitive.name == "add_any"}
    return prim.bind(x, y)


def _integer_pow(y):
    return Case(f"integer_pow_{y}", lambda x: lax.integer_pow(x, y), (away_from_zero(0.5, 2.0),))


CASES = [
    Case("add", lax.add, (ANY, ANY)),
    Case("add_any", bind_add_any, (ANY, ANY)),
    Case("sub", lax.sub, (ANY, ANY)),
    Case("mul", lax.mul, (ANY, ANY)),
    Case("div", lax.div, (ANY, away_from_zero(0.5, 2.0))),
    Case("neg", lax.neg, (ANY,)),
    Case("max", lax.max, sample=chooser_inputs),
    Case("min", lax.min, sample=chooser_inputs),
    Case("pow", lax.pow, (uniform(0.5, 2.0), ANY)),
    Case("pow_negative_base", lax.pow, (uniform(-2.0, -0.5), integers(-3, 3))),
    Case("pow_int", lax.pow, (uniform(0.5, 2.0), integers(-3, 3))),
    *(_integer_pow(y) for y in (0, 1, 2, 3, -2)),
    Case("square", lax.square, (ANY,)),
    Case("exp", lax.exp, (ANY,)),
    Case("exp2", lax.exp2, (ANY,)),
    Case("log", lax.log, (POSITIVE,)),
    Case("log1p", lax.log1p, (uniform(-0.5, 3.0),)),
    Case("expm1", lax.expm1, (ANY,)),
    Case("sqrt", lax.sqrt, (POSITIVE,)),
    Case("rsqrt", lax.rsqrt, (POSITIVE,)),
    Case("cbrt", lax.cbrt, (away_from_zero(0.3, 3.0),)),
    Case("sin", lax.sin, (ANY,)),
    Case("cos", lax.cos, (ANY,)),
    Case("tan", lax.tan, (uniform(-1.2, 1.2),)),
    Case("asin", lax.asin, (UNIT,)),
    Case("acos", lax.acos, (UNIT,)),
    Case("atan", lax.atan, (uniform(-4.0, 4.0),)),
    Case("atan2", lax.atan2, (away_from_zero(0.2, 2.0), ANY)),
    Case("sinh", lax.sinh, (ANY,)),
    Case("cosh", lax.cosh, (ANY,)),
    Case("tanh", lax.tanh, (ANY,)),
    Case("asinh", lax.asinh, (uniform(-4.0, 4.0),)),
    Case("acosh", lax.acosh, (uniform(1.1, 4.0),)),
    Case("atanh", lax.atanh, (UNIT,)),
    Case("logistic", lax.logistic, (uniform(-4.0, 4.0),)),
    Case("erf", lax.erf, (ANY,)),
    Case("erfc", lax.erfc, (ANY,)),
    Case("erf_inv", lax.erf_inv, (UNIT,)),
    Case("lgamma", lax.lgamma, (POSITIVE,)),
    Case("digamma", lax.digamma, (POSITIVE,)),
    Case("bessel_i0e", lax.bessel_i0e, (ANY,)),
    Case("bessel_i1e", lax.bessel_i1e, (ANY,)),
    Case("abs", lax.abs, (away_from_zero(0.1, 2.0),)),
    Case("rem", lax.rem, sample=rem_inputs),
    Case("clamp", lax.clamp, sample=clamp_inputs),
    Case("select_n_bool", lax.select_n, sample=select_inputs(2, booleans)),
    Case("select_n_int", lax.select_n, sample=select_inputs(3, integers(0, 2))),
    Case(
        "convert_element_type", lambda x: lax.convert_element_type(x, other_float(x.dtype)), (ANY,)
    ),
    Case("convert_to_int", lambda x: lax.convert_element_type(x, np.int32), (ANY,)),
    Case(
        "convert_from_int",
        lambda n: lax.convert_element_type(n, np.float32),
        (integers(-5, 5),),
    ),
    Case("copy", lax.copy_p.bind, (ANY,)),
    Case("reduce_precision", lambda x: lax.reduce_precision(x, 5, 10), (ANY,)),
]

ZERO_CASES = [
    Case("sign", lax.sign, (away_from_zero(0.1, 2.0),)),
    Case("floor", lax.floor, (ANY,)),
    Case("ceil", lax.ceil, (ANY,)),
    Case("round", lax.round, (ANY,)),
    Case("stop_gradient", lax.stop_gradient, (ANY,)),
    Case("is_finite", lax.is_finite, (ANY,)),
    *(Case(op, getattr(lax, op), (ANY, ANY)) for op in ("eq", "ne", "lt", "le", "gt", "ge")),
    Case("and", lax.bitwise_and, (booleans, booleans)),
    Case("or", lax.bitwise_or, (integers(0, 9), integers(0, 9))),
    Case("xor", lax.bitwise_xor, (integers(0, 9), integers(0, 9))),
    Case("not", lax.bitwise_not, (booleans,)),
    Case("shift_left", lax.shift_left, (integers(0, 9), integers(0, 3))),
    Case("shift_right_arithmetic", lax.shift_right_arithmetic, (integers(-9, 9), integers(0, 3))),
    Case("shift_right_logical", lax.shift_right_logical, (integers(0, 9), integers(0, 3))),
    Case("population_count", lax.population_count, (integers(0, 99),)),
    Case("clz", lax.clz, (integers(0, 99),)),
    Case("mulhi", lax.mulhi, (integers(-99, 99), integers(-99, 99))),
    *(
        Case(p.name, p.bind, (ANY, ANY))
        for p in (lax_internal.eq_to_p, lax_internal.le_to_p, lax_internal.lt_to_p)
    ),
    Case("bitcast_convert_type", lambda x: lax.bitcast_convert_type(x, np.int32), (ANY,)),
]

UNDEFINED_CASES = [Case("nextafter", lax.nextafter, (ANY, ANY))]  # no derivative, in JAX either

COMPLEX_ANY = lambda rng, shape, dtype: (
    ANY(rng, shape, np.float64) + 1j * ANY(rng, shape, np.float64)
).astype(dtype)


def complex_cases(wide: bool):
    """(case, dtype of its inputs): complex64 and float32 by default, complex128 and float64
    when ``wide`` (the test enables x64 by its dtype parameter)."""
    c, r = (np.complex128, np.float64) if wide else (np.complex64, np.float32)
    return [(Case(name, fun, (COMPLEX_ANY,) * n), c) for name, fun, n in COMPLEX_FUNS] + [
        (Case("complex", lax.complex, (ANY, ANY)), r),
        (Case("conj_of_real", lax.conj, (ANY,)), r),
        (Case("convert_to_complex", lambda x: lax.convert_element_type(x, c), (ANY,)), r),
    ]


COMPLEX_FUNS = [
    ("mul", lax.mul, 2),
    ("div", lax.div, 2),
    ("exp", lax.exp, 1),
    ("log", lax.log, 1),
    ("sin", lax.sin, 1),
    ("sqrt", lax.sqrt, 1),
    ("tanh", lax.tanh, 1),
    ("asinh", lax.asinh, 1),
    ("abs", lax.abs, 1),
    ("real", lax.real, 1),
    ("imag", lax.imag, 1),
    ("conj", lax.conj, 1),
    ("convert_to_real", lambda z: lax.convert_element_type(z, np.float32), 1),
]
COMPLEX_CASES = complex_cases(wide=False) + complex_cases(wide=True)


# ----------------------------------------------------------------------------- helpers


def dtype_of(x):
    """The dtype of an array or scalar (``np.result_type`` of a jax.Array is deprecated)."""
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.result_type(x)


def is_float(x):
    return jnp.issubdtype(dtype_of(x), jnp.inexact)


def random_like(rng, x):
    """Standard normal values shaped like ``x`` (an array or a `jax.ShapeDtypeStruct`)."""
    shape, dtype = np.shape(x), dtype_of(x)
    v = rng.standard_normal(shape)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        v = v + 1j * rng.standard_normal(shape)
    return v.astype(dtype)


def tangents_and_cotangent(xs, out, diff, seed=0):
    rng = np.random.default_rng(seed)
    ts = tuple(random_like(rng, x) if i in diff else None for i, x in enumerate(xs))
    return ts, random_like(rng, out)


def replace(xs, positions, values):
    args = list(xs)
    for i, x in zip(positions, values, strict=True):
        args[i] = x
    return args


def rules(prim, params, xs, ts, ct):
    """Our JVP and VJP rules at ``xs``, with the output computed as the interpreter does."""
    out = prim.bind(*xs, **params)
    tangent = registry.jvp_rules[prim.name](xs, ts, out, **params)
    cts = registry.vjp_rules[prim.name](ct, xs, out, **params)
    return tangent, cts


def jax_oracle(f, diff_xs, diff_ts, ct):
    """`jax.jvp` and `jax.vjp` of ``f`` (a function of the differentiated inputs only)."""
    return jax.jvp(f, diff_xs, diff_ts)[1], jax.vjp(f, *diff_xs)[1](ct)


def assert_like(value, primal):
    assert value is not None
    assert np.shape(value) == np.shape(primal), (np.shape(value), np.shape(primal))
    assert dtype_of(value) == dtype_of(primal), (dtype_of(value), dtype_of(primal))


def wide(x):
    """``x`` as float64 or complex128 NumPy values (bfloat16 has no NumPy arithmetic)."""
    complex_ = jnp.issubdtype(dtype_of(x), jnp.complexfloating)
    return np.asarray(x, np.complex128 if complex_ else np.float64)


def assert_close(actual, expected, dtype):
    tol = TOL[np.dtype(dtype)]
    actual, expected = wide(actual), wide(expected)
    if np.dtype(dtype) in (BF16, F16):  # relative to the largest entry
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        tol = dict(rtol=tol["rtol"], atol=tol["atol"] * scale)
    np.testing.assert_allclose(actual, expected, **tol)


def vdot(a, b):
    return np.real(np.sum(wide(a) * wide(b)))


def tolerance_dtype(*arrays):
    """The least precise real dtype among the arrays' (a complex dtype counts as its
    parts')."""
    dtypes = [np.dtype(dtype_of(a)) for a in arrays if is_float(a)]
    reals = [np.dtype(jnp.finfo(d).dtype) for d in dtypes]
    return max(reals, key=lambda d: float(jnp.finfo(d).eps))


def ids(cases):
    return [c.id for c in cases]


# ----------------------------------------------------------------------------- tests


DTYPE_CASES = [
    pytest.param(case, np.dtype(dtype), id=f"{case.id}-{np.dtype(dtype).name}")
    for dtype in (np.float32, np.float64, jnp.bfloat16, jnp.float16)
    for case in CASES
]


@pytest.mark.parametrize(("case", "dtype"), DTYPE_CASES)
def test_rules_match_jax(case, dtype):
    """JVP and VJP rules against `jax.jvp` / `jax.vjp`, each other, and themselves under
    `jax.vmap` (over the leading axis); all in one `jax.jit`."""
    xs = case.inputs(dtype)
    prim, params = case.primitive(xs)
    out = jax.eval_shape(lambda xs: prim.bind(*xs, **params), xs)
    diff = case.differentiated(xs)
    ts, ct = tangents_and_cotangent(xs, out, diff)

    @fast_jit
    def compute(xs, ts, ct):
        def f(*diff_xs):
            return prim.bind(*replace(xs, diff, diff_xs), **params)

        mine = rules(prim, params, xs, ts, ct)
        batched = jax.vmap(partial(rules, prim, params))(xs, ts, ct)
        if not diff or not is_float(out):
            return mine, batched, None
        reference = jax_oracle(f, [xs[i] for i in diff], [ts[i] for i in diff], ct)
        return mine, batched, reference

    (tangent, cts), (tangent_b, cts_b), reference = compute(xs, ts, ct)
    assert len(cts) == len(xs) and len(cts_b) == len(xs)
    for i in range(len(xs)):
        if i not in diff:
            assert cts[i] is None and cts_b[i] is None, i
    if reference is None or case.id == "integer_pow_0":  # no derivative, or a constant
        assert tangent is None and tangent_b is None
        assert all(c is None for c in cts)
        return
    t_ref, cts_ref = reference
    tol = tolerance_dtype(out, xs[diff[0]])

    assert_like(tangent, out)
    assert_like(tangent_b, out)
    assert_close(tangent, t_ref, tol)
    assert_close(tangent_b, tangent, tol)
    for i, ct_ref in zip(diff, cts_ref, strict=True):
        assert_like(cts[i], xs[i])
        assert_like(cts_b[i], xs[i])
        assert_close(cts[i], ct_ref, tol)
        assert_close(cts_b[i], cts[i], tol)

    # The rules against each other: <ct, J t> = sum_i <J_i^T ct, t_i> (J linear: not for
    # reduce_precision, whose "linear" map rounds).
    if case.id != "reduce_precision":
        lhs, rhs = vdot(ct, tangent), sum(vdot(cts[i], ts[i]) for i in diff)
        scale = np.sqrt(vdot(ct, ct) * vdot(tangent, tangent)) + 1e-30
        assert abs(lhs - rhs) <= 10 * TOL[tol]["rtol"] * scale


EAGER = ["pow_int", "integer_pow_3", "clamp", "select_n_int", "abs", "convert_element_type"]


@pytest.mark.parametrize("case", [c for c in CASES if c.id in EAGER], ids=EAGER)
def test_rules_run_eagerly(case):
    """Outside `jax.jit` (concrete arrays, NumPy inputs): the same values as under jit."""
    xs = case.inputs(np.float32, shape=(3,))
    prim, params = case.primitive(xs)
    out = prim.bind(*xs, **params)
    ts, ct = tangents_and_cotangent(xs, out, case.differentiated(xs))
    eager = rules(prim, params, xs, ts, ct)
    jitted = fast_jit(partial(rules, prim, params))(xs, ts, ct)
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True):
        assert_like(a, b)
        assert_close(a, b, np.float32)


MULTI_INPUT = [c for c in CASES if len(c.differentiated(c.inputs(np.float32))) > 1]


@pytest.mark.parametrize("case", MULTI_INPUT, ids=ids(MULTI_INPUT))
def test_symbolic_zero_tangents(case):
    """Tangents for some inputs only; None for all inputs gives None."""
    xs = case.inputs(np.float32)
    prim, params = case.primitive(xs)
    out = jax.eval_shape(lambda xs: prim.bind(*xs, **params), xs)
    diff = case.differentiated(xs)
    ts, _ = tangents_and_cotangent(xs, out, diff)
    rule = registry.jvp_rules[prim.name]

    @fast_jit
    def compute(xs, ts):
        out = prim.bind(*xs, **params)
        f = lambda *diff_xs: prim.bind(*replace(xs, diff, diff_xs), **params)
        results = [rule(xs, (None,) * len(xs), out, **params)]
        for keep in diff:
            only = tuple(t if i == keep else None for i, t in enumerate(ts))
            zeros = [ts[i] if i == keep else jnp.zeros_like(xs[i]) for i in diff]
            expected = jax.jvp(f, [xs[i] for i in diff], zeros)[1]
            results.append((rule(xs, only, out, **params), expected))
        return results

    none, *pairs = compute(xs, ts)
    assert none is None
    for tangent, expected in pairs:
        assert_like(tangent, out)
        assert_close(tangent, expected, np.float32)


SCALAR_OPERAND = [
    *(
        c
        for c in CASES
        if c.id in ("add", "sub", "mul", "div", "max", "min", "pow", "atan2", "rem")
    ),
    Case("pow_int", lax.pow, (uniform(0.5, 2.0), integers(-3, 3))),
    Case("clamp", lax.clamp, (constant(-0.5), ANY, constant(0.5))),
    Case("select_n", lax.select_n, (booleans, ANY, ANY)),
]


def rank0_inputs(case, scalar, dtype, shape=SHAPE):
    """The case's inputs with the one at ``scalar`` reduced to rank 0 (None if invalid)."""
    full = case.inputs(dtype, shape)
    if (
        scalar >= len(full)
        or (case.id.startswith("select_n") and scalar != 0)  # cases must share a shape
        or (case.id.startswith("clamp") and scalar == 1)  # x may not be rank 0 beside lo, hi
    ):
        return None
    return tuple(x[(0,) * x.ndim] if i == scalar else x for i, x in enumerate(full))


RANK0 = [
    (case, scalar)
    for case in SCALAR_OPERAND
    for scalar in range(3)
    if rank0_inputs(case, scalar, np.float32, shape=(2,)) is not None
]


@pytest.mark.parametrize("case, scalar", RANK0, ids=[f"{c.id}-{i}" for c, i in RANK0])
def test_rank0_operands(case, scalar, dtype=np.float32):
    """Jaxprs let rank-0 operands (literals, or variables) stand beside rank-n ones:
    tangents are broadcast, cotangents summed back to rank 0. The rank-0 operand is a
    NumPy constant (as a literal is) and a jit argument in turn; the reference broadcasts
    it first (JAX's own clamp JVP fails on a rank-0 bound)."""
    xs = rank0_inputs(case, scalar, dtype)
    prim, params = case.primitive(xs)
    out = jax.eval_shape(lambda xs: prim.bind(*xs, **params), xs)
    diff = case.differentiated(xs)
    ts, ct = tangents_and_cotangent(xs, out, diff, seed=1)
    constant = xs[scalar]

    @fast_jit
    def compute(xs, ts, ct):
        def f(*diff_xs):
            args = replace(xs, diff, diff_xs)
            return prim.bind(*(jnp.broadcast_to(a, out.shape) for a in args), **params)

        literal = replace(xs, [scalar], [constant])
        mine = [rules(prim, params, xs, ts, ct), rules(prim, params, literal, ts, ct)]
        return mine, jax_oracle(f, [xs[i] for i in diff], [ts[i] for i in diff], ct)

    mine, (t_ref, cts_ref) = compute(xs, ts, ct)
    for tangent, cts in mine:
        assert_like(tangent, out)
        assert_close(tangent, t_ref, dtype)
        for i, ct_ref in zip(diff, cts_ref, strict=True):
            assert_like(cts[i], xs[i])
            assert_close(cts[i], ct_ref, dtype)


@pytest.mark.parametrize(
    "case, dtype", COMPLEX_CASES, ids=[f"{c.id}-{np.dtype(d).name}" for c, d in COMPLEX_CASES]
)
def test_complex_inputs(case, dtype):
    """JAX's convention for complex numbers: the transpose, not the adjoint."""
    xs = case.inputs(dtype)
    prim, params = case.primitive(xs)
    out = jax.eval_shape(lambda xs: prim.bind(*xs, **params), xs)
    diff = case.differentiated(xs)
    ts, ct = tangents_and_cotangent(xs, out, diff)

    @fast_jit
    def compute(xs, ts, ct):
        f = lambda *diff_xs: prim.bind(*replace(xs, diff, diff_xs), **params)
        reference = jax_oracle(f, [xs[i] for i in diff], [ts[i] for i in diff], ct)
        return rules(prim, params, xs, ts, ct), reference

    (tangent, cts), (t_ref, cts_ref) = compute(xs, ts, ct)
    tol = tolerance_dtype(out, *xs)
    assert_like(tangent, out)
    assert_close(tangent, t_ref, tol)
    for i, ct_ref in zip(diff, cts_ref, strict=True):
        assert_like(cts[i], xs[i])
        assert_close(cts[i], ct_ref, tol)


@pytest.mark.parametrize("case", ZERO_CASES, ids=ids(ZERO_CASES))
def test_zero_derivatives(case):
    """No tangent, no cotangent, and outputs that reverse mode never makes active."""
    xs = case.inputs(np.float32)
    prim, params = case.primitive(xs)
    out = prim.bind(*xs, **params)
    ts = tuple(np.ones_like(x) if is_float(x) else None for x in xs)
    assert registry.jvp_rules[prim.name](xs, ts, out, **params) is None
    assert registry.vjp_rules[prim.name](np.ones_like(out), xs, out, **params) == (None,) * len(xs)
    assert prim.name in registry.nondifferentiable
    if is_float(out):
        expected = jax.jvp(lambda *a: prim.bind(*a, **params), xs, ts)[1]
        assert not np.any(np.asarray(expected))


@pytest.mark.parametrize("case", UNDEFINED_CASES, ids=ids(UNDEFINED_CASES))
def test_undefined_derivatives_refuse_like_jax(case):
    """Issue 9, item 16: ``nextafter`` had a zero derivative; JAX has none and raises."""
    xs = case.inputs(np.float32)
    prim, params = case.primitive(xs)
    out = prim.bind(*xs, **params)
    ts = tuple(np.ones_like(x) for x in xs)
    with pytest.raises(NotImplementedError):
        jax.jvp(lambda *a: prim.bind(*a, **params), xs, ts)
    pattern = rf"`{prim.name}` has no derivative.*stop_gradient"
    with pytest.raises(NotImplementedError, match=pattern):
        registry.jvp_rules[prim.name](xs, ts, out, **params)
    with pytest.raises(NotImplementedError, match=pattern):
        registry.vjp_rules[prim.name](np.ones_like(out), xs, out, **params)
    assert prim.name not in registry.nondifferentiable


def bound(fun, *args):
    """The primitive ``fun`` binds, its parameters, and its operands as functions of
    ``args``: each operand is ``args[k]`` (index ``k``) or a literal (index ``None``)."""
    jaxpr = jax.make_jaxpr(fun)(*args).jaxpr
    (eqn,) = jaxpr.eqns
    index = [jaxpr.invars.index(v) if v in jaxpr.invars else None for v in eqn.invars]
    operands = [args[k] if k is not None else v.val for k, v in zip(index, eqn.invars, strict=True)]
    return eqn.primitive, dict(eqn.params), operands, index


def jax_partials(fun, *args):
    """JAX's partials of ``fun`` at scalar ``args`` (its VJP with cotangent 1: the oracle)."""
    return jnp.stack(jax.vjp(fun, *args)[1](jnp.ones((), dtype_of(args[0]))))


def rule_partials(fun, *args):
    """Our partials of ``fun`` (one primitive) at scalar float ``args``: from the VJP rule
    with cotangent 1, and from the JVP rule along each argument."""
    prim, params, operands, index = bound(fun, *args)
    out = prim.bind(*operands, **params)
    one = jnp.ones((), dtype_of(args[0]))
    cts = registry.vjp_rules[prim.name](one, operands, out, **params)
    from_vjp, from_jvp = [], []
    for k in range(len(args)):
        ts = tuple(one if j == k else None for j in index)
        tangent = registry.jvp_rules[prim.name](operands, ts, out, **params)
        from_jvp.append(jnp.zeros(()) if tangent is None else tangent)
        from_vjp.append(
            sum((c for c, j in zip(cts, index, strict=True) if j == k and c is not None), 0.0)
        )
    return jnp.stack(from_vjp), jnp.stack(from_jvp)


KINKS = {
    "max_tie": (lax.max, (1.0, 1.0)),  # half each
    "min_tie": (lax.min, (-2.0, -2.0)),
    "max_nan": (lax.max, (np.nan, 1.0)),
    "clamp_at_lo": (lax.clamp, (0.0, 0.0, 1.0)),  # x at a bound: no derivative at all
    "clamp_at_hi": (lax.clamp, (0.0, 1.0, 1.0)),
    "clamp_below": (lax.clamp, (0.0, -1.0, 1.0)),
    "clamp_lo_above_hi": (lax.clamp, (1.0, 0.5, 0.0)),
    "clamp_all_equal": (lax.clamp, (0.0, 0.0, 0.0)),
    "abs_at_0": (lax.abs, (0.0,)),  # +1 at 0, also at -0.0
    "abs_at_minus_0": (lax.abs, (-0.0,)),
    "pow_0_2": (lax.pow, (0.0, 2.0)),  # d/dy log(x) x**y taken as 0 at x == 0
    "pow_0_half": (lax.pow, (0.0, 0.5)),
    "pow_0_minus_1": (lax.pow, (0.0, -1.0)),
    "pow_0_0": (lax.pow, (0.0, 0.0)),  # d/dx nan: 0 * 0**-1 (issue 11 (e))
    "pow_negative_base": (lax.pow, (-2.0, 3.0)),
    "pow_int_0_0": (lambda x: lax.pow(x, 0), (0.0,)),
    "pow_int_0_minus_1": (lambda x: lax.pow(x, -1), (0.0,)),
    "integer_pow_0_minus_2": (lambda x: lax.integer_pow(x, -2), (0.0,)),
    "sqrt_0": (lax.sqrt, (0.0,)),  # inf
    "cbrt_0": (lax.cbrt, (0.0,)),
    "rsqrt_0": (lax.rsqrt, (0.0,)),
    "erf_inv_1": (lax.erf_inv, (1.0,)),
    "log_0": (lax.log, (0.0,)),
    "acosh_1": (lax.acosh, (1.0,)),
    "asin_1": (lax.asin, (1.0,)),
    "atan2_origin": (lax.atan2, (0.0, 0.0)),  # nan
    "rem_positive": (lax.rem, (5.5, 2.0)),  # d/dy = -trunc(x / y)
    "rem_negative": (lax.rem, (-5.5, 2.0)),
    "bessel_i1e_0": (lax.bessel_i1e, (0.0,)),
    "select_n_literal_which": (lambda x: lax.select_n(True, x, x), (1.0,)),
}


@pytest.fixture(scope="module")
def kink_partials():
    """Ours (from both rules) and JAX's partials at every kink, in one `jax.jit`."""

    @fast_jit
    def compute(all_args):
        return {
            name: (*rule_partials(fun, *all_args[name]), jax_partials(fun, *all_args[name]))
            for name, (fun, _) in KINKS.items()
        }

    all_args = {name: tuple(map(np.float32, args)) for name, (_, args) in KINKS.items()}
    return compute(all_args)


@pytest.mark.parametrize("name", KINKS)
def test_conventions_at_kinks_match_jax(name, kink_partials):
    from_vjp, from_jvp, from_jax = kink_partials[name]
    np.testing.assert_array_equal(from_vjp, from_jax)
    np.testing.assert_array_equal(from_jvp, from_jax)


def test_pow_zero_exponent():
    """Issue 11 (e): at x == y == 0, d/dx is y x**(y-1) = 0 * inf = nan for a float y, as
    in JAX (jaxls gave 0). x**y is not continuous at (0, 0) (0**y is 0 for y > 0, inf for
    y < 0), so it has no derivative there and nan says so; d/dy is log(1) 0**0 = 0 (JAX). An
    integer exponent 0 has no derivative: d/dx is 0 for every x (JAX, and ``integer_pow``)."""
    zero = np.float32(0.0)
    for partials in (*rule_partials(lax.pow, zero, zero), jax_partials(lax.pow, zero, zero)):
        np.testing.assert_array_equal(partials, [np.nan, 0.0])
    for partials in rule_partials(lambda x: lax.pow(x, 0), zero):
        np.testing.assert_array_equal(partials, [0.0])


def test_acosh_outside_its_domain():
    """acosh is nan for x < 1; so is its derivative, rsqrt(x - 1) rsqrt(x + 1), where
    JAX's rsqrt(x**2 - 1) is finite for x <= -1 (inf at -1): a slope of no function."""
    for x in (-1.0, -2.0):
        for partials in rule_partials(lax.acosh, np.float32(x)):
            assert np.isnan(partials).all(), x
        assert not np.isnan(jax_partials(lax.acosh, np.float32(x))).any(), x


def test_numerically_careful_formulas():
    """Where JAX's textbook formulas overflow or cancel, the rules keep the true value."""

    def derivative(fun, *args):
        prim, params, operands, _ = bound(fun, *args)
        out = prim.bind(*operands, **params)
        return registry.vjp_rules[prim.name](jnp.ones_like(out), operands, out, **params)

    # asinh' = 1 / sqrt(1 + x**2) at x = 1e30 in float32 (x**2 overflows).
    np.testing.assert_allclose(derivative(lax.asinh, np.float32(1e30))[0], 1e-30, rtol=1e-6)
    # atan2 at tiny and huge arguments (x**2 + y**2 underflows or overflows in float32).
    for s in (1e-25, 1e25):
        dx, dy = derivative(lax.atan2, np.float32(s), np.float32(s))
        np.testing.assert_allclose([dx, dy], [0.5 / s, -0.5 / s], rtol=1e-6)
    # acosh' = 1/sqrt(x**2 - 1) near x = 1: x**2 - 1 cancels, (x - 1)(x + 1) does not.
    x = 1 + 2.0**-20
    np.testing.assert_allclose(
        derivative(lax.acosh, np.float32(x))[0], 1 / np.sqrt(x * x - 1), rtol=1e-6
    )


SECOND_ORDER = ["div", "max", "pow", "pow_int", "integer_pow_3", "rsqrt", "cbrt", "atan2",
                "asinh", "acosh", "tanh", "logistic", "abs", "clamp", "select_n_int",
                "rem"]  # fmt: skip


@pytest.mark.x64(reason="second derivatives compared with jax's at rtol 1e-9")
def test_second_order_matches_jax():
    """The VJP rules differentiated again (here by `jax.jvp`, through the primitives they
    emit) give JAX's second derivatives: the formulas are smooth where they should be."""
    cases = [c for c in CASES if c.id in SECOND_ORDER]

    def hessian_vector_products(case):
        xs = case.inputs(np.float64)
        prim, params = case.primitive(xs)
        diff = case.differentiated(xs)
        out = jax.eval_shape(lambda xs: prim.bind(*xs, **params), xs)
        ts, ct = tangents_and_cotangent(xs, out, diff)

        def ours(*diff_xs):
            args = replace(xs, diff, diff_xs)
            out = prim.bind(*args, **params)
            cts = registry.vjp_rules[prim.name](ct, args, out, **params)
            return [cts[i] for i in diff]

        def theirs(*diff_xs):
            f = lambda *d: prim.bind(*replace(xs, diff, d), **params)
            return jax.vjp(f, *diff_xs)[1](ct)

        diff_xs, diff_ts = [xs[i] for i in diff], [ts[i] for i in diff]
        return jax.jvp(ours, diff_xs, diff_ts)[1], jax.jvp(theirs, diff_xs, diff_ts)[1]

    results = fast_jit(lambda: [hessian_vector_products(c) for c in cases])()
    for case, (mine, reference) in zip(cases, results, strict=True):
        for a, b in zip(mine, reference, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=case.id)


POW_POINTS = [
    (2.0, 0.0), (0.5, 0.0), (-2.0, 0.0),  # y == 0: d2/dxdy = 1/x (issue 11 (a))
    (0.0, 0.0),  # nan (issue 11 (e))
    (0.0, 2.0), (0.0, 1.0), (0.0, 0.5), (0.0, -1.0),  # x == 0
    (-2.0, 3.0), (-1.5, -2.0), (-1.0, 1.0), (-0.5, 0.0),  # x < 0, integer-valued y
    (1.5, 2.5), (1.0, -0.5), (3.0, 1.0),
]  # fmt: skip

SECOND_DERIVATIVES = {
    "jacfwd-jacfwd": lambda m, f, argnums: m.jacfwd(m.jacfwd(f, argnums), argnums),
    "jacrev-jacrev": lambda m, f, argnums: m.jacrev(m.jacrev(f, argnums), argnums),
    "hessian": lambda m, f, argnums: m.hessian(f, argnums),
}

# jnp.power is also what `x ** y` binds.
POW_FUNS = {"lax.pow": lax.pow, "jnp.power": jnp.power}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_pow_second_derivatives_match_jax(dtype):
    """Issue 11 (a): the mixed second derivative of x**y at y == 0 is
    x**(y-1) (1 + y log x) = 1/x; jaxls gave 0 (its d/dx was masked to a constant where
    y == 0). Every second derivative (forward over forward, reverse over reverse, hessian)
    of ``pow`` against JAX's at y == 0, x == 0, (0, 0) and negative x, and the mixed one
    at y == 0, x > 0 against 1/x."""
    x, y = (np.array(c, dtype) for c in zip(*POW_POINTS, strict=True))

    @fast_jit
    def compute(x, y):
        return {
            f"{fun_name} {name}": [jax.vmap(second(m, fun, (0, 1)))(x, y) for m in (ad, jax)]
            for fun_name, fun in POW_FUNS.items()
            for name, second in SECOND_DERIVATIVES.items()
        }

    results = compute(x, y)
    for label, (mine, theirs) in results.items():
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True):
            assert_like(a, b)
            np.testing.assert_allclose(wide(a), wide(b), **TOL[np.dtype(dtype)], err_msg=label)
    at_y0 = (y == 0) & (x > 0)  # x < 0: nan (log x), as JAX's
    (_, dxdy), (dydx, _) = results["lax.pow hessian"][0]
    for mixed in (dxdy, dydx):
        np.testing.assert_allclose(wide(mixed)[at_y0], 1 / wide(x)[at_y0], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_pow_integer_exponent_second_derivatives(dtype):
    """``jnp.power(x, n)`` with an integer array ``n`` binds ``pow`` with an integer
    exponent: its second derivatives are those of ``integer_pow(x, n)`` (JAX's, the oracle),
    0 at x == 0 for n in {0, 1} included. JAX's own ``pow`` rule converts ``n`` to a float
    there and gives nan (0 * 0**-1); jaxls keeps the exponent an integer."""
    x, y = (np.array(c, dtype) for c in zip(*POW_POINTS, strict=True))
    n = y.astype(np.int32)

    @fast_jit
    def compute(x):  # n static, for integer_pow
        mine = {
            name: jax.vmap(second(ad, jnp.power, 0))(x, n)
            for name, second in SECOND_DERIVATIVES.items()
        }
        reference = [jax.hessian(partial(lax.integer_pow, y=int(k)))(x[i]) for i, k in enumerate(n)]
        return mine, jnp.stack(reference)

    mine, reference = compute(x)
    for name, second in mine.items():
        assert_like(second, x)
        np.testing.assert_allclose(
            wide(second), wide(reference), **TOL[np.dtype(dtype)], err_msg=name
        )
    assert np.all(wide(reference)[(x == 0) & ((n == 0) | (n == 1))] == 0)


EDGE_VALUES = (0.0, 1.0, -1.0, -2.0, 0.5)
NO_HESSIAN = ("convert_to_int", "convert_from_int")  # an integer output, or input


def edge_points(case, dtype):
    """Every combination of the edge values (0, 1, negative: where rules mask, select or
    divide) for the differentiated inputs, with each value the case samples for the other
    inputs (integer exponents, ``which``, ``m``); then two points in the case's domain."""
    sample = case.inputs(dtype, shape=(16,))  # every value of the small integer samplers
    diff = case.differentiated(sample)
    values = [
        np.array(EDGE_VALUES, dtype) if i in diff else np.unique(x) for i, x in enumerate(sample)
    ]
    grid = np.meshgrid(*values, indexing="ij")
    return tuple(np.concatenate([g.ravel(), x[:2]]) for g, x in zip(grid, sample, strict=True))


def _integer_exponent_0_or_1(x, n):
    return (x == 0) & ((n == 0) | (n == 1))


DIFFERS_FROM_JAX = {
    # x**n with an integer n in {0, 1} is a polynomial of degree <= 1: 0 at x == 0, where
    # JAX's rule makes n a float and gets nan (0 * 0**-1).
    "pow_int": (_integer_exponent_0_or_1, 0.0),
    "pow_negative_base": (_integer_exponent_0_or_1, 0.0),
    # acosh is nan for x < 1, its derivatives too; JAX's rsqrt(x**2 - 1) is finite at x <= -1.
    "acosh": (lambda x: x <= -1, np.nan),
}
"""Where jaxls's second derivatives differ from JAX's by design (module docstring of the
rules): ``case id: (where(*inputs), jaxls's value there)``."""


@pytest.mark.x64(reason="one dtype keeps the sweep cheap; float64's tolerance is the tighter")
def test_second_order_sweep_at_edges(dtype=np.float64):
    """Issue 11: the second derivatives of every primitive above, `jaxls.ad.hessian` (forward
    over reverse: the VJP rules, then the JVP rules of what they emit) and jacrev of jacrev
    (the VJP rules twice), against JAX's, at scalar points on edges (0, 1, negative, ties)
    and inside the domain; nan and inf where JAX's, except where `DIFFERS_FROM_JAX` says.
    One `jax.jit` for all (tracing is most of the cost: jacfwd of jacfwd, the JVP rules
    twice, is left to the pow test and `test_second_order_matches_jax`)."""
    cases = [c for c in CASES if c.id not in NO_HESSIAN]
    points = {c.id: edge_points(c, dtype) for c in cases}

    def second_derivatives(case, xs):
        prim, params = case.primitive(xs)
        diff = case.differentiated(xs)

        def at_point(*point):
            f = lambda *d: prim.bind(*replace(point, diff, d), **params)
            at, argnums = [point[i] for i in diff], tuple(range(len(diff)))
            return {
                mode: [SECOND_DERIVATIVES[mode](m, f, argnums)(*at) for m in (ad, jax)]
                for mode in ("hessian", "jacrev-jacrev")
            }

        return jax.vmap(at_point)(*xs)

    results = fast_jit(lambda p: {c.id: second_derivatives(c, p[c.id]) for c in cases})(points)
    tol = TOL[np.dtype(dtype)]
    failures = []
    for case in cases:
        differs, value = np.zeros(len(points[case.id][0]), bool), np.nan
        if case.id in DIFFERS_FROM_JAX:
            where, value = DIFFERS_FROM_JAX[case.id]
            differs = where(*points[case.id])
            assert differs.any(), case.id
        for mode, (mine, theirs) in results[case.id].items():
            for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True):
                assert_like(a, b)
                a, b = wide(a), wide(b)
                bad = ~np.isclose(a, b, equal_nan=True, **tol) & ~differs
                bad |= differs & ~np.isclose(a, value, equal_nan=True)
                if bad.any():
                    at = [np.asarray(x)[bad] for x in points[case.id]]
                    failures.append(f"{case.id} {mode} at {at}: {a[bad]} (jax: {b[bad]})")
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------------- closure


def closure_inputs():
    """(case id, inputs) of every case, small, and with each operand in turn at rank 0
    (which makes the rules broadcast and sum)."""
    for case, dtype in [(c, np.float32) for c in CASES + ZERO_CASES] + complex_cases(wide=False):
        yield case, case.inputs(dtype, shape=(3,))
    for case in SCALAR_OPERAND:
        for scalar in range(3):
            xs = rank0_inputs(case, scalar, np.float32, shape=(3,))
            if xs is not None:
                yield case, xs


def emitted_by_rules(case, xs):
    """The primitives that the JVP and the VJP rule of ``case`` emit at ``xs``, other than
    the case's own primitive (which recomputes the output)."""
    prim, params = case.primitive(xs)
    diff = case.differentiated(xs)
    ts = tuple(np.ones_like(x) if i in diff else None for i, x in enumerate(xs))
    out = jax.eval_shape(lambda xs: prim.bind(*xs, **params), xs)
    ct = np.ones(out.shape, out.dtype)

    def jvp(xs, ts):
        return registry.jvp_rules[prim.name](xs, ts, prim.bind(*xs, **params), **params)

    def vjp(ct, xs):
        return registry.vjp_rules[prim.name](ct, xs, prim.bind(*xs, **params), **params)

    return (
        emitted_primitives(jax.make_jaxpr(jvp)(xs, ts).jaxpr) - {prim.name},
        emitted_primitives(jax.make_jaxpr(vjp)(ct, xs).jaxpr) - {prim.name},
    )


def test_emitted_primitives_have_rules():
    """Every primitive a rule emits has a JVP rule (forward over either mode) and, for the
    VJP rules, a VJP rule too (reverse over reverse): the rules can be differentiated.

    Besides elementwise primitives, the rules emit ``broadcast_in_dim`` (zeros, rank-0
    operands) and ``reduce_sum`` (cotangents of rank-0 operands), whose rules are in
    ``rules/shape.py`` and ``rules/reductions.py`` (imported with the package)."""
    missing_jvp, missing_vjp = {}, {}
    for case, xs in closure_inputs():
        from_jvp, from_vjp = emitted_by_rules(case, xs)
        for name in from_jvp | from_vjp:
            if name not in registry.jvp_rules:
                missing_jvp.setdefault(name, case.id)
        for name in from_vjp:
            if name not in registry.vjp_rules:
                missing_vjp.setdefault(name, case.id)
    assert not missing_jvp, f"emitted without a JVP rule (primitive: first case): {missing_jvp}"
    assert not missing_vjp, f"emitted without a VJP rule (primitive: first case): {missing_vjp}"


def test_every_registered_rule_is_tested():
    """The cases above cover every primitive whose rules this module registers."""
    ours = {
        name
        for table in (registry.jvp_rules, registry.vjp_rules)
        for name, rule in table.items()
        if rule.__module__ == elementwise.__name__
    }
    tested = {case.primitive(xs)[0].name for case, xs in closure_inputs()}
    tested |= {case.primitive(case.inputs(np.float32))[0].name for case in UNDEFINED_CASES}
    assert ours - tested == set()
    for name in ours:
        assert name in registry.jvp_rules and name in registry.vjp_rules
