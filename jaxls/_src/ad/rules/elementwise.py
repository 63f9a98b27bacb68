r"""JVP and VJP rules of the elementwise primitives.

Arithmetic, powers, exponentials and logarithms, trigonometric and hyperbolic functions,
special functions, selections, conversions, and the comparisons, bitwise and rounding
primitives whose derivative is zero.

Most of these primitives have a diagonal Jacobian: with :math:`d_i = \partial f / \partial x_i`
the output tangent is :math:`\sum_i d_i \dot x_i` and the cotangent of input :math:`i` is
:math:`d_i \bar y`. Such a primitive is declared once, by one function per input that
multiplies a tangent or a cotangent ``v`` by :math:`d_i` (`_diagonal`), and both rules are
built from it. The derivatives are written with ``jax.lax`` / ``jax.numpy`` operations
whose primitives have rules here or among the structural rules (``broadcast_in_dim``,
``reduce_sum``, ``reshape``), so that the rules can be differentiated again.

Conventions, those of JAX's own rules unless said otherwise:

* ``max`` / ``min``: at a tie ``x == y`` each input gets half of the derivative.
* ``clamp(lo, x, hi)``: at ``x == lo`` or ``x == hi`` no input gets a derivative; ``lo``
  gets it where ``lo > x`` (and ``lo < hi``), ``hi`` where ``hi < x``.
* ``abs``: the derivative is ``+1`` at ``x == 0`` (also at ``-0.0``), ``-1`` below.
* ``pow(x, y)``, JAX's formulas: :math:`\partial_y x^y = \log(x) x^y` is taken with
  ``log(1)`` where ``x == 0`` (so ``0`` for ``y > 0``, ``nan`` for ``y < 0``), and
  :math:`\partial_x x^y = y x^{y-1}` for a float ``y``, kept whole so that its own
  derivative in ``y`` is right (``1/x`` at ``y == 0``). At ``x == y == 0`` it is
  ``0 * 0**-1 = nan``, as in JAX: :math:`x^y` is not continuous there (``0**y`` is ``0``
  for ``y > 0``, ``inf`` for ``y < 0``), so it has no derivative. An integer ``y`` has no
  derivative; :math:`\partial_x x^y` is ``0`` where ``y == 0`` and is built with the integer
  exponent ``y - 1``, so every derivative in ``x`` is that of ``integer_pow``: the second
  at ``x == 0`` is ``0`` for ``y`` in ``{0, 1}`` (``x**y`` is ``1`` or ``x``), where JAX's
  rule, which makes ``y`` a float, gives ``nan`` (``0 * 0**-1``).
* ``sqrt``, ``cbrt`` at ``0`` and ``erf_inv`` at ``±1``: ``inf``, as in JAX.
* ``rem(x, y)``: :math:`\partial_x = 1`, :math:`\partial_y = -\operatorname{trunc}(x / y)`.
* ``polygamma(m, x)``: in rules/special.py (with respect to ``x`` only; ``m`` is refused,
  as JAX refuses it).
* Comparisons, logical and bitwise operations, ``sign``, ``floor``, ``ceil``, ``round``,
  ``is_finite`` and ``stop_gradient``: a zero (``None``) derivative.
* ``nextafter``: no derivative; both rules raise `NotImplementedError`, as JAX does (it
  steps to the adjacent float: a zero derivative would be a silent guess).
* Complex inputs: JAX's convention, the cotangent is the transpose (not the adjoint) of
  the linear map, ``ct * f'(x)`` for a holomorphic ``f``; ``real``, ``imag``, ``complex``,
  ``conj`` and ``abs`` follow JAX's transposition rules.

Where the textbook formula loses accuracy, a more careful equivalent is used (all tested
against JAX): ``acosh' = rsqrt(x - 1) rsqrt(x + 1)`` and ``asin' = rsqrt((1 - x)(1 + x))``
are exact near ``|x| = 1`` (``asin'`` and ``acos'`` are differentiated as
``rsqrt(1 - x*x)``, whose reverse derivative at ``|x| = 1`` is ``±inf``, not ``nan``);
``acosh'`` is ``nan`` for ``x <= -1``, where ``acosh`` is ``nan`` and JAX's
``rsqrt(x**2 - 1)`` is finite; ``asinh`` and ``atan2`` scale their arguments by
``max(|x|, ...)`` so that squares overflow or underflow only where the derivative does;
``tanh' = (1 + t)(1 - t)``; ``div``'s :math:`\partial_y = -(x/y)/y` reuses the output.

Broadcasting: jaxprs let a rank-0 operand (a literal such as ``2.0:f32[]`` or a variable)
stand beside rank-``n`` ones. Tangents are broadcast to the output's shape and cotangents
summed back to the input's shape; both are cast to the dtype of the output (tangents) or
of the input (cotangents). Integer and boolean inputs get no tangent or cotangent.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import instantiate as _instantiate
from jaxls._src.ad.registry import is_float as _is_float
from jaxls._src.ad.registry import EVERYTHING, INPUTS, NOTHING, OUTPUTS, ReadsSpec
from jaxls._src.ad.registry import Unrecorded, add, defjvp, defvjp, inputs, nondifferentiable
from jaxls._src.ad.registry import others

# ----------------------------------------------------------------------------- helpers


def _const(value, like):
    """``value`` as a rank-0 NumPy constant of ``like``'s dtype (a literal in a jaxpr)."""
    return np.array(value, _dtype(like))


def _is_complex(x) -> bool:
    return jnp.issubdtype(_dtype(x), jnp.complexfloating)


def _sum_to(v, shape):
    """Sum ``v`` over the axes that broadcasting from ``shape`` added or stretched."""
    lead = v.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and v.shape[lead + i] != 1)
    if lead:
        v = jnp.sum(v, axis=tuple(range(lead)))
    if stretched:
        v = jnp.sum(v, axis=tuple(a - lead for a in stretched), keepdims=True)
    return v


def _fit(v, like):
    """``v`` with the dtype and shape of ``like``: broadcast up, or summed down, to its shape.

    A complex ``v`` fitted to a real ``like`` keeps its real part (JAX's transpose of the
    real-to-complex conversion)."""
    v = jnp.asarray(v)
    dtype, shape = _dtype(like), np.shape(like)
    if v.shape != shape:
        if np.broadcast_shapes(v.shape, shape) == shape:
            v = jnp.broadcast_to(v, shape)
        else:
            v = _sum_to(v, shape)
    if _is_complex(v) and not jnp.issubdtype(dtype, jnp.complexfloating):
        v = jnp.real(v)
    if v.dtype != dtype:
        v = lax.convert_element_type(v, dtype)
    return v


def _where(pred, on_true, on_false):
    """``lax.select`` after broadcasting its operands together (one ``select_n``)."""
    on_true, on_false = jnp.asarray(on_true), jnp.asarray(on_false)
    shape = np.broadcast_shapes(np.shape(pred), on_true.shape, on_false.shape)
    on_true, on_false = jnp.broadcast_to(on_true, shape), jnp.broadcast_to(on_false, shape)
    if np.shape(pred) not in ((), shape):
        pred = jnp.broadcast_to(pred, shape)
    return lax.select(pred, on_true, on_false)


def _mask(pred, v):
    """``v`` where ``pred``, else zero (a select, so an infinite ``v`` gives no ``nan``)."""
    v = jnp.asarray(v)
    shape = np.broadcast_shapes(np.shape(pred), v.shape)
    return _where(pred, v, lax.full(shape, 0, v.dtype))


def _zero_rule(*names):
    """Register a zero derivative: no tangent out, no cotangent for any input (and outputs
    that reverse mode never makes active)."""
    nondifferentiable.update(names)

    @defjvp(*names)
    def jvp(primals, tangents, out, **params):
        return None

    @defvjp(*names, reads=NOTHING)
    def vjp(cts, primals, out, **params):
        return (None,) * len(primals)


def _diagonal(*names, partials, reads: ReadsSpec):
    """Register the rules of primitives with a diagonal Jacobian.

    Args:
      names: the primitives' names.
      partials: one entry per input, ``times_partial(v, out, *primals) -> v * ∂out/∂input``
        with ``v`` a tangent of the input or a cotangent of the output, or ``None`` for an
        input the output does not depend on differentiably. Parameters are ignored.
      reads: what the partials of the active inputs read of ``out`` and ``primals`` (the
        VJP rule's `registry.Reads`; the others reach it as `registry.Unrecorded`). The
        VJP rule computes the cotangents of the ``active`` inputs only.
    """

    @defjvp(*names)
    def jvp(primals, tangents, out, **params):
        if not _is_float(out):
            return None
        primals = tuple(map(jnp.asarray, primals))
        result = None
        for times_partial, x, t in zip(partials, primals, tangents, strict=True):
            if t is not None and times_partial is not None and _is_float(x):
                result = add(result, times_partial(t, out, *primals))
        return None if result is None else _fit(result, out)

    @defvjp(*names, reads=reads)
    def vjp(ct, primals, out, *, active=None, **params):
        active = (True,) * len(primals) if active is None else active
        primals = tuple(x if isinstance(x, Unrecorded) else jnp.asarray(x) for x in primals)
        return tuple(
            None
            if times_partial is None or not a or not _is_float(x)
            else _fit(times_partial(ct, out, *primals), x)
            for times_partial, x, a in zip(partials, primals, active, strict=True)
        )


def _linear(*names, apply, transpose):
    """Register the rules of a linear unary primitive: ``apply(t, **params)`` is its action
    on a tangent, ``transpose(ct, x, **params)`` its transpose (``x``: the primal input)."""

    @defjvp(*names)
    def jvp(primals, tangents, out, **params):
        (t,) = tangents
        if t is None or not _is_float(out):
            return None
        return _fit(apply(t, **params), out)

    @defvjp(*names, reads=NOTHING)
    def vjp(ct, primals, out, **params):
        (x,) = primals
        if not _is_float(x):
            return (None,)
        return (_fit(transpose(ct, x, **params), x),)


# ----------------------------------------------------------------------------- arithmetic

_diagonal(
    "add", "add_any", partials=(lambda v, out, x, y: v, lambda v, out, x, y: v), reads=NOTHING
)
_diagonal("sub", partials=(lambda v, out, x, y: v, lambda v, out, x, y: -v), reads=NOTHING)


@defjvp("sub")
def _sub_jvp(primals, tangents, out, **params):
    """``t_x - t_y`` as one ``sub`` (the diagonal form would emit ``neg`` and ``add``)."""
    tx, ty = (
        t if t is not None and _is_float(x) else None
        for t, x in zip(tangents, primals, strict=True)
    )
    if not _is_float(out) or (tx is None and ty is None):
        return None
    if tx is None:
        return _fit(-ty, out)
    return _fit(tx if ty is None else tx - ty, out)


_diagonal("mul", partials=(lambda v, out, x, y: v * y, lambda v, out, x, y: x * v), reads=others)
_diagonal(
    "div",
    partials=(
        lambda v, out, x, y: v / y,
        # d(x/y)/dy = -x/y**2 = -(x/y)/y, from the output: no overflow in y**2.
        lambda v, out, x, y: -(v * (out / y)),
    ),
    reads=lambda active, **_: inputs(1, outputs=active[1]),
)
_diagonal("neg", partials=(lambda v, out, x: -v,), reads=NOTHING)


def _chooser_partial(v, out, x, other):
    """``max`` / ``min``: ``v`` where ``x`` was chosen, half of it at a tie (JAX)."""
    shared = _where(other == out, v * _const(0.5, v), v)
    return _mask(x == out, shared)


_diagonal(
    "max",
    "min",
    partials=(
        lambda v, out, x, y: _chooser_partial(v, out, x, y),
        lambda v, out, x, y: _chooser_partial(v, out, y, x),
    ),
    reads=EVERYTHING,
)

_diagonal(
    "clamp",
    partials=(
        lambda v, out, lo, x, hi: _mask((lo > x) & (lo < hi), v),
        lambda v, out, lo, x, hi: _mask((x > lo) & (x < hi), v),
        lambda v, out, lo, x, hi: _mask(hi < x, v),
    ),
    reads=INPUTS,
)


def _trunc(q):
    return jnp.sign(q) * jnp.floor(jnp.abs(q))


_diagonal(
    "rem",
    partials=(lambda v, out, x, y: v, lambda v, out, x, y: -(v * _trunc(x / y))),
    reads=lambda active, **_: inputs(0, 1) if active[1] else NOTHING,
)

# ----------------------------------------------------------------------------- powers


def _pow_partial_x(v, out, x, y):
    """d(x**y)/dx = y x**(y-1) (JAX's formula; nan at x == y == 0, as 0 * 0**-1).

    For a float ``y`` the formula is kept whole, so that its derivative with respect to
    ``y``, x**(y-1) (1 + y log x), is 1/x at y == 0: masking y == 0 to a constant would make
    it 0. An integer ``y`` has no derivative: the partial is 0 where y == 0 and keeps the
    exponent y - 1 an integer, so that its derivatives in x are those of ``integer_pow``
    (no 0 * inf at x == 0)."""
    one = _const(1, y)
    if _is_float(y):
        return v * (y * lax.pow(x, y - one))
    nonzero = y != _const(0, y)
    power = lax.pow(x, _where(nonzero, y, one) - one)
    return v * _mask(nonzero, lax.convert_element_type(y, _dtype(x)) * power)


def _pow_partial_y(v, out, x, y):
    """d(x**y)/dy = log(x) x**y, with log(1) where x == 0 (JAX). The select replaces x, not
    the partial: the dependence on y stays, and on x it is lost only at x == 0, where
    log's derivative is infinite (as in JAX)."""
    x_safe = _where(x == _const(0, x), _const(1, x), x)
    return v * (out * jnp.log(x_safe))


_diagonal(
    "pow",
    partials=(_pow_partial_x, _pow_partial_y),
    reads=lambda active, **_: inputs(0, 1, outputs=active[1]),
)


def _integer_pow_times_partial(v, x, y: int):
    if y == 1:
        return v
    if y == 2:
        return v * (_const(2, x) * x)
    return v * (_const(y, x) * lax.integer_pow(x, y - 1))


@defjvp("integer_pow")
def _integer_pow_jvp(primals, tangents, out, *, y):
    (x,), (t,) = primals, tangents
    if t is None or y == 0 or not _is_float(x):
        return None
    return _fit(_integer_pow_times_partial(t, x, y), out)


@defvjp("integer_pow", reads=INPUTS)
def _integer_pow_vjp(ct, primals, out, *, y):
    (x,) = primals
    if y == 0 or not _is_float(x):
        return (None,)
    return (_fit(_integer_pow_times_partial(ct, x, y), x),)


_diagonal("square", partials=(lambda v, out, x: v * (_const(2, x) * x),), reads=INPUTS)
_diagonal("sqrt", partials=(lambda v, out, x: v * (_const(0.5, out) / out),), reads=OUTPUTS)
_diagonal(
    "rsqrt", partials=(lambda v, out, x: v * (_const(-0.5, out) * (out / x)),), reads=EVERYTHING
)
_diagonal(
    "cbrt",
    partials=(lambda v, out, x: v * (_const(1 / 3, out) * lax.integer_pow(out, -2)),),
    reads=OUTPUTS,
)

# ----------------------------------------------------------------------------- exp and log

_diagonal("exp", partials=(lambda v, out, x: v * out,), reads=OUTPUTS)
_diagonal("exp2", partials=(lambda v, out, x: v * (out * _const(np.log(2.0), out)),), reads=OUTPUTS)
_diagonal("expm1", partials=(lambda v, out, x: v * (out + _const(1, out)),), reads=OUTPUTS)
_diagonal("log", partials=(lambda v, out, x: v / x,), reads=INPUTS)
_diagonal("log1p", partials=(lambda v, out, x: v / (x + _const(1, x)),), reads=INPUTS)
_diagonal(
    "logistic", partials=(lambda v, out, x: v * (out * (_const(1, out) - out)),), reads=OUTPUTS
)

# ----------------------------------------------------------------------------- trigonometric

_diagonal("sin", partials=(lambda v, out, x: v * jnp.cos(x),), reads=INPUTS)
_diagonal("cos", partials=(lambda v, out, x: -(v * jnp.sin(x)),), reads=INPUTS)
_diagonal("tan", partials=(lambda v, out, x: v * (_const(1, out) + out * out),), reads=OUTPUTS)


def _rsqrt_one_minus_square(x):
    """1 / sqrt(1 - x**2), with the value of (1 - x)(1 + x) (exact near |x| = 1) and the
    derivative of 1 - x*x: differentiated in reverse mode, the product would multiply the
    infinite cotangent at |x| = 1 by 1 - |x| = 0 (nan; asin'' is ±inf there, as JAX's)."""
    one = _const(1, x)
    textbook = one - x * x
    exact = lax.stop_gradient((one - x) * (one + x)) + (textbook - lax.stop_gradient(textbook))
    return lax.rsqrt(exact)


_diagonal("asin", partials=(lambda v, out, x: v * _rsqrt_one_minus_square(x),), reads=INPUTS)
_diagonal("acos", partials=(lambda v, out, x: -(v * _rsqrt_one_minus_square(x)),), reads=INPUTS)
_diagonal("atan", partials=(lambda v, out, x: v / (_const(1, x) + x * x),), reads=INPUTS)


def _atan2_partials(x, y):
    """(∂/∂x, ∂/∂y) of atan2(x, y) = (y, -x) / (x**2 + y**2), with x and y scaled by
    max(|x|, |y|) so that the squares neither overflow nor underflow."""
    scale = jnp.maximum(jnp.abs(x), jnp.abs(y))
    xs, ys = x / scale, y / scale
    denominator = scale * (xs * xs + ys * ys)
    return ys / denominator, -(xs / denominator)


_diagonal(
    "atan2",
    partials=(
        lambda v, out, x, y: v * _atan2_partials(x, y)[0],
        lambda v, out, x, y: v * _atan2_partials(x, y)[1],
    ),
    reads=INPUTS,
)

# ----------------------------------------------------------------------------- hyperbolic

_diagonal("sinh", partials=(lambda v, out, x: v * jnp.cosh(x),), reads=INPUTS)
_diagonal("cosh", partials=(lambda v, out, x: v * jnp.sinh(x),), reads=INPUTS)
_diagonal(
    "tanh",
    partials=(lambda v, out, x: v * ((_const(1, out) + out) * (_const(1, out) - out)),),
    reads=OUTPUTS,
)


def _asinh_derivative(x):
    """1 / sqrt(1 + x**2) = rsqrt((x/m)**2 + (1/m)**2) / m with m = max(|x|, 1): no
    overflow of x**2 for large |x|."""
    scale = jnp.maximum(jnp.abs(x), _const(1, jnp.abs(x)))
    xs, ones = x / scale, _const(1, x) / scale
    return lax.rsqrt(xs * xs + ones * ones) / scale


_diagonal("asinh", partials=(lambda v, out, x: v * _asinh_derivative(x),), reads=INPUTS)
_diagonal(
    "acosh",
    partials=(lambda v, out, x: v * (lax.rsqrt(x - _const(1, x)) * lax.rsqrt(x + _const(1, x))),),
    reads=INPUTS,
)
_diagonal(
    "atanh",
    partials=(lambda v, out, x: v / (_const(1, x) - x) / (_const(1, x) + x),),
    reads=INPUTS,
)

# ----------------------------------------------------------------------------- special functions

_TWO_OVER_SQRT_PI = 2 / np.sqrt(np.pi)

_diagonal(
    "erf",
    partials=(lambda v, out, x: v * (_const(_TWO_OVER_SQRT_PI, x) * jnp.exp(-(x * x))),),
    reads=INPUTS,
)
_diagonal(
    "erfc",
    partials=(lambda v, out, x: v * (_const(-_TWO_OVER_SQRT_PI, x) * jnp.exp(-(x * x))),),
    reads=INPUTS,
)
_diagonal(
    "erf_inv",
    partials=(lambda v, out, x: v * (_const(np.sqrt(np.pi) / 2, x) * jnp.exp(out * out)),),
    reads=OUTPUTS,
)
_diagonal("lgamma", partials=(lambda v, out, x: v * lax.digamma(x),), reads=INPUTS)
_diagonal("digamma", partials=(lambda v, out, x: v * lax.polygamma(_const(1, x), x),), reads=INPUTS)
_diagonal(
    "bessel_i0e",
    partials=(lambda v, out, x: v * (lax.bessel_i1e(x) - jnp.sign(x) * out),),
    reads=EVERYTHING,
)


def _bessel_i1e_derivative(x, out):
    """i1e'(x) = i0e(x) - i1e(x) (sign(x) + 1/x), and 1/2 at |x| <= eps (JAX)."""
    eps = _const(jnp.finfo(_dtype(x)).eps, x)
    not_tiny = jnp.abs(x) > eps
    x_safe = _where(not_tiny, x, eps)
    derivative = lax.bessel_i0e(x_safe) - out * (jnp.sign(x_safe) + _const(1, x) / x_safe)
    return _where(not_tiny, derivative, _const(0.5, x))


_diagonal(
    "bessel_i1e",
    partials=(lambda v, out, x: v * _bessel_i1e_derivative(x, out),),
    reads=EVERYTHING,
)

# ----------------------------------------------------------------------------- abs and complex


def _abs_direction(x, out):
    """conj(x) / |x| for a complex x (0 at 0, as JAX): the gradient of |x|."""
    out_safe = _where(out == _const(0, out), _const(1, out), out)
    return jnp.conj(x) / out_safe


@defjvp("abs")
def _abs_jvp(primals, tangents, out, **params):
    (x,), (t,) = primals, tangents
    if t is None or not _is_float(x):
        return None
    if _is_complex(x):
        return _fit(jnp.real(t * _abs_direction(x, out)), out)
    return _fit(_where(x >= _const(0, x), t, -t), out)


@defvjp("abs", reads=EVERYTHING)
def _abs_vjp(ct, primals, out, **params):
    (x,) = primals
    if not _is_float(x):
        return (None,)
    if _is_complex(x):
        return (_fit(ct * _abs_direction(x, out), x),)
    return (_fit(_where(x >= _const(0, x), ct, -ct), x),)


def _complex_of(re, im):
    return lax.complex(re, im)


_linear(
    "real",
    apply=lambda t: jnp.real(t),
    transpose=lambda ct, x: _complex_of(ct, jnp.zeros_like(ct)),
)
_linear(
    "imag",
    apply=lambda t: jnp.imag(t),
    transpose=lambda ct, x: _complex_of(jnp.zeros_like(ct), -ct),
)
_linear(
    "conj",
    apply=lambda t, **params: lax.conj(t),
    transpose=lambda ct, x, **params: lax.conj(ct) if _is_complex(x) else jnp.real(ct),
)


@defjvp("complex")
def _complex_jvp(primals, tangents, out, **params):
    if all(t is None for t in tangents):
        return None
    re, im = (_fit(_instantiate(t, x), x) for t, x in zip(tangents, primals, strict=True))
    return _fit(_complex_of(re, im), out)


@defvjp("complex", reads=NOTHING)
def _complex_vjp(ct, primals, out, **params):
    re, im = primals
    return _fit(jnp.real(ct), re), _fit(-jnp.imag(ct), im)


# ----------------------------------------------------------------------------- identities

_linear("copy", apply=lambda t: t, transpose=lambda ct, x: ct)
_linear(
    "reduce_precision",
    apply=lambda t, **params: lax.reduce_precision(t, **params),
    transpose=lambda ct, x, **params: lax.reduce_precision(ct, **params),
)


@defjvp("convert_element_type")
def _convert_element_type_jvp(primals, tangents, out, *, new_dtype, **params):
    (t,) = tangents
    if t is None or not jnp.issubdtype(new_dtype, jnp.inexact):
        return None
    return _fit(t, out)


@defvjp("convert_element_type", reads=NOTHING)
def _convert_element_type_vjp(ct, primals, out, *, new_dtype, **params):
    (x,) = primals
    if not _is_float(x) or not jnp.issubdtype(new_dtype, jnp.inexact):
        return (None,)
    return (_fit(ct, x),)


# ----------------------------------------------------------------------------- selection


@defjvp("select_n")
def _select_n_jvp(primals, tangents, out, **params):
    which, *cases = primals
    case_tangents = tangents[1:]
    if not _is_float(out) or all(t is None for t in case_tangents):
        return None
    case_tangents = [
        _fit(_instantiate(t, c), out) for t, c in zip(case_tangents, cases, strict=True)
    ]
    return lax.select_n(which, *case_tangents)


@defvjp("select_n", reads=inputs(0))
def _select_n_vjp(ct, primals, out, **params):
    which, *cases = primals
    zeros = jnp.zeros_like(ct)
    case_cts = tuple(
        _fit(lax.select_n(which, *(ct if j == i else zeros for j in range(len(cases)))), c)
        if _is_float(c)
        else None
        for i, c in enumerate(cases)
    )
    return (None, *case_cts)


# ----------------------------------------------------------------------------- zero derivatives

_zero_rule(
    # piecewise constant
    "sign",
    "floor",
    "ceil",
    "round",
    "stop_gradient",
    # boolean or integer results
    "is_finite",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "eq_to",
    "le_to",
    "lt_to",
    "and",
    "or",
    "not",
    "xor",
    "shift_left",
    "shift_right_arithmetic",
    "shift_right_logical",
    "population_count",
    "clz",
    "mulhi",
    "bitcast_convert_type",
)


# ----------------------------------------------------------------------------- no derivative


def _undefined_rule(name, why):
    """Register rules that refuse: the primitive has no derivative (JAX has none either)."""

    def refuse(*args, **params):
        raise NotImplementedError(
            f"jaxls.ad: `{name}` has no derivative ({why}); JAX refuses it too. If a zero "
            f"derivative is meant, wrap its operands in `jax.lax.stop_gradient`."
        )

    defjvp(name)(refuse)
    defvjp(name, reads=NOTHING)(refuse)


_undefined_rule("nextafter", "it steps to the adjacent floating-point number")
