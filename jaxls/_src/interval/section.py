"""The section step shared by golden-section and Fibonacci search.

State: a bracket ``[lower, upper]`` holding the best point ``x`` found so far. A step places
one new point ``u`` at a fraction ``rho`` of the bracket from the end *far* from ``x`` (the
mirror of ``x`` when ``x`` sits at the matching ratio), evaluates it once, and keeps the part
of the bracket that must contain the minimiser of a unimodal function (Kiefer 1953).

Before any evaluation ``x`` is a placeholder at ``upper`` with value ``+inf``: the first step
then lands at ``lower + rho * (upper - lower)`` and the generic update keeps the whole bracket,
so no evaluation is special-cased. Widths are taken in halves (`common.toward`), so that an
interval wider than the dtype's largest number is searched like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxls._src.interval import common
from jaxls._src.interval.common import select


class SectionState(NamedTuple):
    lower: jax.Array
    upper: jax.Array
    x: jax.Array
    value: jax.Array
    aux: Any  # fun's aux output at x (None without has_aux)
    ties: jax.Array
    num_evals: jax.Array
    status: jax.Array


def init(problem: common.Interval) -> SectionState:
    return SectionState(
        lower=problem.lower,
        upper=problem.upper,
        x=problem.upper,
        value=jnp.asarray(jnp.inf, problem.dtype),
        aux=problem.aux,
        ties=jnp.zeros((), jnp.int32),
        num_evals=jnp.zeros((), jnp.int32),
        status=common.initial_status(problem),
    )


def make_step(fun: Callable, problem: common.Interval, tol, rho=None) -> Callable:
    """One evaluation at ``rho * (upper - lower)`` from the end far from ``x``.

    The search succeeds when ``max(x - lower, upper - x) <= tol`` and stops with
    ``ROUNDING`` at the dtype's resolution (pass ``tol=0`` for a fixed budget). ``rho`` is
    fixed here or given to each call of the step.
    """

    def step(s: SectionState, rho=rho) -> SectionState:
        # Either difference may overflow, never both (they add up to the width): the
        # comparison is right even then.
        x_right = s.x - s.lower > s.upper - s.x
        far = jnp.where(x_right, s.lower, s.upper)
        u = common.toward(far, jnp.where(x_right, s.upper, s.lower), rho)
        u = jnp.clip(u, s.lower, s.upper)
        fu, aux_u = common.evaluate(fun, u, problem)

        better = fu <= s.value
        left = u < s.x
        lower = jnp.where(better, jnp.where(left, s.lower, s.x), jnp.where(left, u, s.lower))
        upper = jnp.where(better, jnp.where(left, s.x, s.upper), jnp.where(left, s.upper, u))
        x = jnp.where(better, u, s.x)
        value = jnp.where(better, fu, s.value)

        # A NaN or inf stops the search on the best finite point; if it is the very first
        # value, the result is that point (finite, inside the interval) with its value.
        finite = jnp.isfinite(fu)
        first = s.num_evals == 0
        lower = jnp.where(finite, lower, s.lower)
        upper = jnp.where(finite, upper, s.upper)
        x = jnp.where(finite, x, jnp.where(first, u, s.x))
        value = jnp.where(finite, value, jnp.where(first, fu, s.value))
        aux = select(jnp.where(finite, better, first), aux_u, s.aux)  # the aux of x

        ties = common.count_ties(s.ties, fu, s.value)
        status = common.stop_status(common.spread(x, lower, upper), problem, tol, finite, ties)
        return SectionState(lower, upper, x, value, aux, ties, s.num_evals + 1, status)

    return step


def finish(problem: common.Interval, s: SectionState):
    return common.result(problem, s.x, s.value, s.lower, s.upper, s.num_evals, s.status, s.aux)
