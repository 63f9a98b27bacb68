r"""JVP and VJP rules of the special functions JAX differentiates through formulas of its own:
the regularized incomplete gamma functions ``igamma`` / ``igammac``
(`jax.scipy.special.gammainc` / ``gammaincc``), the regularized incomplete beta function
``regularized_incomplete_beta`` (``betainc``), and the gamma sampler ``random_gamma``
(`jax.random.gamma`, ``loggamma``, and ``beta`` / ``dirichlet`` built on them). ``lgamma``,
``digamma`` and ``polygamma`` are among the elementwise rules.

With :math:`P(a, x) = \gamma(a, x) / \Gamma(a)` and :math:`Q = 1 - P` (DLMF 8.2.1, 8.2.4),
and :math:`I_x(a, b) = B_x(a, b) / B(a, b)` (DLMF 8.17.1, 8.17.2), the formulas are JAX's:

* :math:`\partial_x P = x^{a-1} e^{-x} / \Gamma(a)`, computed as
  ``exp(-x + (a - 1) log x - lgamma(a))``; :math:`\partial_a P` is the primitive
  ``igamma_grad_a(a, x)``; ``igammac``'s are their negatives.
* :math:`\partial_x I_x(a, b) = x^{a-1} (1 - x)^{b-1} / B(a, b)`, computed as
  ``exp((b - 1) log1p(-x) + (a - 1) log x - lbeta)``.
* ``random_gamma``: a sample :math:`s` of :math:`\mathrm{Gamma}(a, 1)` is differentiated
  implicitly through its CDF, :math:`ds/da = -\partial_a P(a, s) / \partial_x P(a, s)`
  (``lax.random_gamma_grad``, Figurnov et al. 2018, "Implicit reparameterization
  gradients", eq. 6); for ``log_space`` samples, divided by :math:`s` (taken as the
  smallest normal number where it underflows to 0, as JAX does). The key gets none.

What JAX refuses is refused the same way, with the same exception type:

* ``igamma_grad_a`` has no derivative (``NotImplementedError``; JAX has no rule for it):
  the incomplete gamma functions have second derivatives in ``x`` only, not in ``a``.
* ``betainc`` with respect to ``a`` or ``b`` raises ``ValueError``, as JAX's rule does.
* ``lax.random_gamma_grad`` is not a primitive but a computation with while loops: forward
  mode differentiates it, reverse mode refuses it (the ``while`` rules), as in JAX; so a
  sample's second derivative is defined forward over reverse (`jaxls.ad.hessian`).

The VJP rules of ``igamma``, ``igammac`` and ``regularized_incomplete_beta`` are told which
inputs are active (they are registered as `registry.HigherOrderVJP`, whose backward part
receives the activity), so that they emit the partial of active inputs only: a cotangent
computed for an inactive ``a`` would put ``igamma_grad_a`` (and for ``betainc`` a refusal)
into the derivative, where forward-over-reverse would then meet it.

A rank-0 operand may stand beside arrays (``igamma a 2.0:f32[]``): primals are broadcast
to the output's shape, and cotangents summed back to the operand's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxls._src.ad.registry import EVERYTHING, INPUTS, NOTHING, add, defjvp, defvjp
from jaxls._src.ad.registry import defvjp_higher_order
from jaxls._src.ad.registry import dtype_of as _dtype
from jaxls._src.ad.registry import is_float as _is_float

# A partial ``times_partial(v, *primals) -> v * d out / d input``, with the primals broadcast
# to the output's shape; ``None`` for an input without derivative (an integer, a key).
Partial = Callable | None


def _const(value, like):
    return np.array(value, _dtype(like))


def _sum_to(v, shape: tuple[int, ...]):
    """``v`` summed over the axes that broadcasting from ``shape`` added or stretched."""
    if v.shape == shape:
        return v
    lead = v.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and v.shape[lead + i] != 1)
    return lax.reshape(jnp.sum(v, axis=(*range(lead), *stretched)), shape)


def _broadcast(primals, shape):
    return [jnp.broadcast_to(p, shape) if _is_float(p) else p for p in primals]


def _elementwise(name: str, partials: Sequence[Partial], refuse: Callable | None = None):
    """Register the rules of the elementwise primitive ``name``, from one partial per input.

    ``refuse(differentiated)``, if given, raises where JAX refuses the derivative with
    respect to the inputs flagged in ``differentiated`` (nonzero tangent, active input).
    The VJP is a `HigherOrderVJP` only to learn which inputs are active (see the module's
    docstring); it keeps no residuals.
    """

    @defjvp(name)
    def jvp(primals, tangents, out, **params):
        differentiated = [
            t is not None and _is_float(x) for t, x in zip(tangents, primals, strict=True)
        ]
        if refuse is not None:
            refuse(differentiated)
        primals = _broadcast(primals, np.shape(out))
        result = None
        for times_partial, t, d in zip(partials, tangents, differentiated, strict=True):
            if d and times_partial is not None:
                result = add(result, times_partial(jnp.broadcast_to(t, np.shape(out)), *primals))
        return result

    @defvjp_higher_order(name, reads=INPUTS)
    def vjp(interpreter, eqn, residuals, primals, outs, active, cts):
        differentiated = [a and _is_float(x) for a, x in zip(active, primals, strict=True)]
        if refuse is not None:
            refuse(differentiated)
        (ct,) = cts
        shapes = [np.shape(x) for x in primals]
        primals = _broadcast(primals, np.shape(ct))
        return [
            _sum_to(times_partial(ct, *primals), shape) if d and times_partial is not None else None
            for times_partial, shape, d in zip(partials, shapes, differentiated, strict=True)
        ]

    return jvp, vjp


# ----------------------------------------------------------------------------- incomplete gamma


def _igamma_partial_x(v, a, x):
    """x**(a-1) exp(-x) / Gamma(a), in logarithms (JAX's formula)."""
    one = _const(1, a)
    return v * jnp.exp(-x + (a - one) * jnp.log(x) - lax.lgamma(a))


_elementwise(
    "igamma",
    (lambda v, a, x: v * lax.igamma_grad_a(a, x), _igamma_partial_x),
)
_elementwise(
    "igammac",
    (lambda v, a, x: -(v * lax.igamma_grad_a(a, x)), lambda v, a, x: -_igamma_partial_x(v, a, x)),
)


def _refuse_igamma_grad_a(*args, **params):
    raise NotImplementedError(
        "jaxls.ad: `igamma_grad_a`, the derivative of `jax.scipy.special.gammainc` / "
        "`gammaincc` in their shape parameter `a`, has no derivative (JAX has none either): "
        "second derivatives of the incomplete gamma functions exist in `x` only. Hold `a` "
        "fixed (`jax.lax.stop_gradient`) in the differentiated function's derivative."
    )


defjvp("igamma_grad_a")(_refuse_igamma_grad_a)
defvjp("igamma_grad_a", reads=NOTHING)(_refuse_igamma_grad_a)

# ----------------------------------------------------------------------------- polygamma


def _refuse_polygamma_m(differentiated: Sequence[bool]) -> None:
    if differentiated[0]:
        raise ValueError(
            "jaxls.ad: `polygamma(m, x)` has no derivative with respect to its order `m`, only "
            'x (JAX refuses it too: "polygamma gradient with respect to m is not '
            'supported"). Hold `m` fixed (an integer, or `jax.lax.stop_gradient`).'
        )


_elementwise(
    "polygamma",
    (None, lambda v, m, x: v * lax.polygamma(m + _const(1, m), x)),
    refuse=_refuse_polygamma_m,
)

# ----------------------------------------------------------------------------- incomplete beta


def _betainc_partial_x(v, a, b, x):
    """x**(a-1) (1-x)**(b-1) / B(a, b), in logarithms (JAX's formula)."""
    one = _const(1, a)
    lbeta = lax.lgamma(a) + lax.lgamma(b) - lax.lgamma(a + b)
    return v * jnp.exp((b - one) * jnp.log1p(-x) + (a - one) * jnp.log(x) - lbeta)


def _refuse_betainc_a_b(differentiated: Sequence[bool]) -> None:
    if differentiated[0] or differentiated[1]:
        raise ValueError(
            "jaxls.ad: `regularized_incomplete_beta` (`jax.scipy.special.betainc`) has no "
            'derivative with respect to a and b, only x (JAX refuses them too: "Betainc '
            'gradient with respect to a and b not supported."). Hold `a` and `b` fixed '
            "(`jax.lax.stop_gradient`)."
        )


_elementwise(
    "regularized_incomplete_beta",
    (None, None, _betainc_partial_x),
    refuse=_refuse_betainc_a_b,
)

# ----------------------------------------------------------------------------- gamma sampler


def _random_gamma_times_partial(v, a, sample, log_space: bool):
    """``v * d sample / d a``, implicitly through the CDF (``lax.random_gamma_grad``)."""
    if not log_space:
        return v * lax.random_gamma_grad(a, sample)
    value = jnp.exp(sample)
    tiny = jnp.full_like(value, jnp.finfo(_dtype(value)).tiny)
    value = lax.select(value == _const(0, value), tiny, value)
    return v * (lax.random_gamma_grad(a, value) / value)


@defjvp("random_gamma")
def _random_gamma_jvp(primals, tangents, out, *, log_space):
    (_, a), (_, t) = primals, tangents
    if t is None or not _is_float(a):
        return None
    return _random_gamma_times_partial(t, a, out, log_space)


@defvjp("random_gamma", reads=EVERYTHING)
def _random_gamma_vjp(ct, primals, out, *, log_space):
    _, a = primals
    if not _is_float(a):
        return (None, None)
    return (None, _random_gamma_times_partial(ct, a, out, log_space))


__all__: list[str] = []
