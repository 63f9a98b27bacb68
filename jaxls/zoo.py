"""Test problems shared by the test suite, the benchmarks and ``python -m jaxls``.

``INTERVAL`` holds unimodal problems on an interval with their exact minimiser ``xmin``
(some at a bound, some far from 0, one non-smooth, one flat), written in ``jax.numpy`` so
that they run under ``jit`` and ``vmap``. Their constants are Python floats (weakly typed),
so a problem evaluates in the dtype of ``x``: float32, float64, bfloat16 or float16. The
bounds and ``xmin`` are exact Python floats; in a narrow dtype the bounds round (bfloat16
holds only 1000 and 1004 near ``far_quadratic``'s interval [1000, 1003]).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["INTERVAL", "SMOOTH_INTERVAL", "IntervalProblem", "lecture"]


class IntervalProblem(NamedTuple):
    """A problem on an interval: ``fun`` minimised on ``[lower, upper]`` at ``xmin``.

    Attributes:
      name: a short identifier (``"lecture"``, ``"sin"``, ...).
      fun: ``x -> f(x)``, a scalar function of a scalar, in ``jax.numpy``.
      lower: lower end of the interval.
      upper: upper end of the interval.
      xmin: the exact minimiser on ``[lower, upper]``.
      smooth: False for a problem with a kink (``abs``).
    """

    name: str
    fun: Callable[[jax.Array], jax.Array]
    lower: float
    upper: float
    xmin: float  # exact minimiser on [lower, upper]
    smooth: bool = True


def lecture(x: ArrayLike) -> jax.Array:
    """The lecture's Figure 18 function, minimised at ``2 sqrt(2)`` on ``[0, 6]``."""
    return 1.0 - jnp.sqrt(2.0 / jnp.pi) * x**2 * jnp.exp(-(x**2) / 8.0) / 8.0


INTERVAL = (
    IntervalProblem("lecture", lecture, 0.0, 6.0, 2.0 * math.sqrt(2.0)),
    IntervalProblem("quadratic", lambda x: (x - 2.0) ** 2, 0.0, 5.0, 2.0),
    IntervalProblem("far_quadratic", lambda x: (x - 1000.25) ** 2, 1000.0, 1003.0, 1000.25),
    IntervalProblem("quartic", lambda x: (x - 1.0) ** 4, -2.0, 3.0, 1.0),
    IntervalProblem("exp_linear", lambda x: jnp.exp(x) - 2.0 * x, 0.0, 2.0, math.log(2.0)),
    IntervalProblem("x_log_x", lambda x: x * jnp.log(x), 0.1, 2.0, math.exp(-1.0)),
    IntervalProblem("cosh", lambda x: jnp.cosh(x - 3.0), 2.5, 10.0, 3.0),
    IntervalProblem("bound", lambda x: x**2, 1.0, 4.0, 1.0),
    IntervalProblem("sin", jnp.sin, 3.0, 6.0, 1.5 * math.pi),
    IntervalProblem("x_plus_inverse", lambda x: x + 1.0 / x, 0.5, 5.0, 1.0),
    IntervalProblem("gamma_like", lambda x: -x * jnp.exp(-x), 0.0, 5.0, 1.0),
    # minimiser: 2 y + exp(y) = 0 with y = x + 7.5
    IntervalProblem(
        "negative_side",
        lambda x: (x + 7.5) ** 2 + jnp.exp(x + 7.5),
        -20.0,
        -4.0,
        -7.5 - 0.35173371124919584,
    ),
    IntervalProblem("abs", lambda x: jnp.abs(x - 0.3), -1.0, 1.0, 0.3, smooth=False),
)

SMOOTH_INTERVAL = tuple(p for p in INTERVAL if p.smooth)
