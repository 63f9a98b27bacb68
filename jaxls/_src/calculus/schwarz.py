r"""Schwarz's theorem, and the lecture's counterexample.

Schwarz: where the mixed partials ``d^2 f / dx dy`` and ``d^2 f / dy dx`` are continuous,
they are equal, and the Hessian is symmetric. The lecture's counterexample,

    f(x, y) = x y (x^2 - y^2) / (x^2 + y^2),   f(0, 0) = 0,

is twice differentiable away from the origin, where its mixed partial
``(x^6 + 9 x^4 y^2 - 9 x^2 y^4 - y^6) / (x^2 + y^2)^3`` (the same in either order) is
``-1`` along the ``y`` axis and ``+1`` along the ``x`` axis: it has no limit at the origin.
There ``df/dx (0, y) = -y`` and ``df/dy (x, 0) = x``, so the limits taken in the two
orders differ: ``d/dy (df/dx) (0, 0) = -1`` and ``d/dx (df/dy) (0, 0) = +1``
(`mixed_partials_by_limits` takes them by nested finite differences).

What AD returns at the origin: ``[[0, 0], [0, 0]]``, from `jaxls.ad.hessian` and
`jax.hessian` alike. AD differentiates the program, not the function: at the origin the
program of `schwarz_counterexample` takes the ``jnp.where`` branch that returns the
constant ``0``, whose derivatives of every order are ``0``; the limits that define the
mixed partials there are never taken. (Without the second ``where`` that keeps the other
branch's denominator away from ``0``, the derivatives at the origin are NaN: the branch not
taken is differentiated too, and its ``0 / 0`` times a zero cotangent is NaN.) Away from the
origin AD's Hessian is symmetric, as Schwarz's theorem says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def schwarz_counterexample(x: ArrayLike, y: ArrayLike) -> jax.Array:
    r"""The lecture's ``f(x, y) = x y (x^2 - y^2) / (x^2 + y^2)``, ``f(0, 0) = 0``.

    Written with the safe double ``jnp.where`` (the denominator is replaced by ``1`` at the
    origin before dividing), so that its derivatives are finite everywhere.

    Example:
      >>> import jax.numpy as jnp, jaxls.ad, jaxls.calculus as mc
      >>> print(float(mc.schwarz_counterexample(1.0, 2.0)))
      -1.2
      >>> f = lambda p: mc.schwarz_counterexample(p[0], p[1])
      >>> print(jaxls.ad.hessian(f)(jnp.zeros(2)))  # the branch f = 0, not the limits
      [[0. 0.]
       [0. 0.]]
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    r2 = x * x + y * y
    origin = r2 == 0
    return jnp.where(origin, 0, x * y * (x * x - y * y) / jnp.where(origin, 1, r2))


class MixedPartials(NamedTuple):
    """The two mixed partials of ``f(x, y)`` at a point, by limits in the two orders.

    Attributes:
      x_first: ``d/dy (df/dx)``: differentiated in ``x`` first (the inner limit).
      y_first: ``d/dx (df/dy)``: differentiated in ``y`` first.
    """

    x_first: jax.Array
    y_first: jax.Array


def mixed_partials_by_limits(
    f: Callable, x: ArrayLike, y: ArrayLike, *, eps: float = 1e-2, inner: float = 1e-3
) -> MixedPartials:
    r"""``d/dy (df/dx)`` and ``d/dx (df/dy)`` at ``(x, y)`` by nested central differences.

    The inner derivative is taken with the step ``inner * eps``, much smaller than the
    outer step ``eps`` (the name of `jaxls.ad.finite_difference_grad`'s step): the limits
    are taken in order, the inner one first,

        df/dx (a, b) ~ (f(a + k, b) - f(a - k, b)) / (2 k),   k = inner * eps,
        x_first ~ (df/dx (x, y + eps) - df/dx (x, y - eps)) / (2 eps),

    and ``y_first`` likewise with ``x`` and ``y`` exchanged. Where the mixed partials are
    continuous both tend to the same value (Schwarz); for the lecture's counterexample at
    the origin they are ``-1`` and ``+1``, exactly up to ``O(inner^2)``. Roundoff: the
    inner difference loses about ``macheps |f| / (inner eps)``, and the outer one divides
    that by ``eps`` again; the defaults suit the origin, where ``f`` is ``O(eps^2)``.
    Elsewhere in float32 take larger steps (``eps=0.05, inner=0.1``).

    Args:
      f: ``f(x, y)``, a real scalar.
      x, y: the point; their (promoted) dtype is the one the differences are taken in.
      eps: the outer step, positive.
      inner: the inner step as a fraction of ``eps``, in ``(0, 1)``.

    Returns:
      `MixedPartials` ``(x_first, y_first)``. Works under `jax.jit`.

    Raises:
      ValueError: ``eps`` or ``inner`` out of range, naming
        ``jaxls.calculus.mixed_partials_by_limits``.

    Example:
      >>> import jaxls.calculus as mc
      >>> p = mc.mixed_partials_by_limits(mc.schwarz_counterexample, 0.0, 0.0)
      >>> print(round(float(p.x_first), 4), round(float(p.y_first), 4))
      -1.0 1.0
    """
    call = "jaxls.calculus.mixed_partials_by_limits"
    if not callable(f):
        raise TypeError(f"{call}: `f` must be callable, f(x, y), got {f!r}.")
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"{call}(eps={eps!r}): `eps` must be a positive number.")
    if not (isinstance(inner, (int, float)) and 0 < inner < 1):
        raise ValueError(
            f"{call}(inner={inner!r}): `inner` must be in (0, 1), the inner step as a "
            "fraction of the outer one (the inner limit is taken first)."
        )
    dtype = jnp.result_type(x, y, float)
    x, y = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
    h, k = jnp.asarray(eps, dtype), jnp.asarray(eps * inner, dtype)

    def df_dx(a, b):
        return (f(a + k, b) - f(a - k, b)) / (2 * k)

    def df_dy(a, b):
        return (f(a, b + k) - f(a, b - k)) / (2 * k)

    x_first = (df_dx(x, y + h) - df_dx(x, y - h)) / (2 * h)
    y_first = (df_dy(x + h, y) - df_dy(x - h, y)) / (2 * h)
    return MixedPartials(x_first, y_first)


__all__ = ["MixedPartials", "mixed_partials_by_limits", "schwarz_counterexample"]
