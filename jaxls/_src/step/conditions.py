r"""The step-size conditions of inexact line search, as pure predicates.

All take scalars of ``phi(t) = f(x + t d)``: ``value0 = phi(0)``, ``slope0 = phi'(0) < 0``,
``value = phi(t)``, ``slope = phi'(t)`` and the step ``t``; they broadcast, work under
``jit`` and ``vmap``, and return boolean arrays (False wherever an input is NaN).

Values are compared through their difference ``phi(t) - phi(0)``, which is exact (Sterbenz)
when the two are within a factor 2, rather than against ``phi(0) + c1 t phi'(0)``, whose
rounding hides any decrease below half an ulp of ``phi(0)``: so a step that does not
decrease ``phi`` never satisfies the Armijo (sufficient decrease) condition, whatever the
dtype.

References:
  J. Nocedal & S. J. Wright, Numerical Optimization, 2nd ed. (2006), sec. 3.1, eqs. (3.4),
  (3.6), (3.7), (3.11); W. W. Hager & H. Zhang, SIAM J. Optim. 16 (2005), eq. (4.1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "approximate_wolfe_condition",
    "armijo_condition",
    "curvature_condition",
    "goldstein_condition",
    "strong_curvature_condition",
    "strong_wolfe_condition",
    "wolfe_condition",
]

# The default rounding allowance of the approximate Wolfe test, in ulps of phi(0): the
# searches' ``epsilon=None`` and `approximate_wolfe_condition`'s.
EPSILON_ULPS = 16


def armijo_condition(
    value0: float | jax.Array,
    slope0: float | jax.Array,
    value: float | jax.Array,
    step: float | jax.Array,
    c1: float | jax.Array = 1e-4,
) -> jax.Array | bool:
    r"""Sufficient decrease: ``phi(t) <= phi(0) + c1 t phi'(0)``.

    The lecture's ``f(x_k - a grad f) <= f(x_k) - c1 a ||grad f||^2`` for ``d = -grad f``.
    Tested as ``phi(t) - phi(0) <= c1 t phi'(0)``, and for ``t > 0`` with a strict decrease
    ``phi(t) < phi(0)`` even where ``c1 t phi'(0)`` underflows to zero: a step that does not
    decrease ``phi`` never passes.

    Example:
      >>> import jaxls
      >>> bool(jaxls.armijo_condition(1.0, -2.0, 0.5, 0.1, c1=1e-4))
      True
    """
    change = value - value0
    return (change <= c1 * step * slope0) & ((change < 0) | (step == 0))


def goldstein_condition(
    value0: float | jax.Array,
    slope0: float | jax.Array,
    value: float | jax.Array,
    step: float | jax.Array,
    c1: float | jax.Array = 0.1,
) -> jax.Array | bool:
    r"""Goldstein: ``phi(0) + (1 - c1) t phi'(0) <= phi(t) <= phi(0) + c1 t phi'(0)``.

    ``0 < c1 < 1/2``: Nocedal & Wright's ``c`` (eq. 3.11), here ``c1`` as the upper line is
    the Armijo condition with that constant; the lower line, of slope ``(1 - c1) phi'(0)``,
    rules out steps that are too short. The lecture writes the lines with slopes ``rho`` and
    ``1 - rho`` times ``phi'(0)``, ``rho in (1/2, 1)``: the same condition with
    ``c1 = 1 - rho``. The default is `jaxls.goldstein`'s.

    Example:
      >>> import jaxls
      >>> bool(jaxls.goldstein_condition(1.0, -2.0, 0.5, 0.5, c1=0.25))  # 0.25 <= 0.5 <= 0.75
      True
    """
    return ((1 - c1) * step * slope0 <= value - value0) & armijo_condition(
        value0, slope0, value, step, c1
    )


def curvature_condition(
    slope0: float | jax.Array, slope: float | jax.Array, c2: float | jax.Array = 0.9
) -> jax.Array | bool:
    r"""Curvature: ``phi'(t) >= c2 phi'(0)``: the slope has flattened enough.

    Example:
      >>> import jaxls
      >>> bool(jaxls.curvature_condition(-2.0, -0.1, c2=0.9))
      True
    """
    return slope >= c2 * slope0


def strong_curvature_condition(
    slope0: float | jax.Array, slope: float | jax.Array, c2: float | jax.Array = 0.9
) -> jax.Array | bool:
    r"""Strong curvature: ``|phi'(t)| <= c2 |phi'(0)|``.

    Example:
      >>> import jaxls
      >>> bool(jaxls.strong_curvature_condition(-2.0, 1.9, c2=0.9))
      False
    """
    return jnp.abs(slope) <= c2 * jnp.abs(slope0)


def wolfe_condition(
    value0: float | jax.Array,
    slope0: float | jax.Array,
    value: float | jax.Array,
    slope: float | jax.Array,
    step: float | jax.Array,
    c1: float | jax.Array = 1e-4,
    c2: float | jax.Array = 0.9,
) -> jax.Array | bool:
    r"""Weak Wolfe: Armijo with ``c1`` and curvature with ``c2``, ``0 < c1 < c2 < 1``.

    Example:
      >>> import jaxls
      >>> bool(jaxls.wolfe_condition(1.0, -2.0, 0.2, -0.1, 0.5))
      True
    """
    return armijo_condition(value0, slope0, value, step, c1) & curvature_condition(
        slope0, slope, c2
    )


def strong_wolfe_condition(
    value0: float | jax.Array,
    slope0: float | jax.Array,
    value: float | jax.Array,
    slope: float | jax.Array,
    step: float | jax.Array,
    c1: float | jax.Array = 1e-4,
    c2: float | jax.Array = 0.9,
) -> jax.Array | bool:
    r"""Strong Wolfe: Armijo with ``c1`` and ``|phi'(t)| <= c2 |phi'(0)|``.

    Example:
      >>> import jaxls
      >>> bool(jaxls.strong_wolfe_condition(1.0, -2.0, 0.2, 1.9, 0.5))
      False
    """
    return armijo_condition(value0, slope0, value, step, c1) & strong_curvature_condition(
        slope0, slope, c2
    )


def approximate_wolfe_condition(
    value0: float | jax.Array,
    slope0: float | jax.Array,
    value: float | jax.Array,
    slope: float | jax.Array,
    c1: float | jax.Array = 0.1,
    c2: float | jax.Array = 0.9,
    epsilon: float | jax.Array | None = None,
) -> jax.Array | bool:
    r"""Hager-Zhang's approximate Wolfe conditions.

    ``(2 c1 - 1) phi'(0) >= phi'(t) >= c2 phi'(0)`` and
    ``phi(t) <= phi(0) + epsilon |phi(0)|``: the Armijo condition with ``phi`` replaced by
    its quadratic model, which stays meaningful where ``phi(t) - phi(0)`` is lost to
    rounding. Requires ``0 < c1 < 1/2``, ``c1 <= c2 < 1``. ``epsilon=None`` is the searches'
    default, 16 ulps of the inputs' dtype (at least float32; Hager & Zhang's 1e-6 is about 8
    ulps of float32 and 5e9 of float64).

    Example:
      >>> import jaxls
      >>> bool(jaxls.approximate_wolfe_condition(1.0, -2.0, 1.0, -1.0))
      True
    """
    if epsilon is None:
        dtype = jnp.result_type(value0, value, float)
        epsilon = EPSILON_ULPS * jnp.finfo(jnp.promote_types(dtype, jnp.float32)).eps
    return (
        ((2 * c1 - 1) * slope0 >= slope)
        & curvature_condition(slope0, slope, c2)
        & (value <= value0 + epsilon * jnp.abs(value0))
    )
