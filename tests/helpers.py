"""Test utilities shared by several test files."""

from __future__ import annotations

import functools
import math

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np

from tests.interval_methods import METHODS

EPS = float(np.finfo(np.float64).eps)


def count_primitive(jaxpr, name: str) -> int:
    """Occurrences of primitive ``name`` in a (closed) jaxpr, sub-jaxprs included."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0
    for eqn in jaxpr.eqns:
        total += eqn.primitive.name == name
        for sub in jex.core.jaxprs_in_params(eqn.params):
            total += count_primitive(sub, name)
    return total


def loop_eqns(jaxpr, primitive: str) -> list:
    """Every equation of ``primitive`` (``"while"``, ``"scan"``) in a jaxpr, recursively."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == primitive:
            found.append(eqn)
        for sub in jex.core.jaxprs_in_params(eqn.params):
            found.extend(loop_eqns(sub, primitive))
    return found


def while_bodies(jaxpr) -> list:
    """The body jaxprs of every `while` loop in a jaxpr, searched recursively."""
    return [eqn.params["body_jaxpr"] for eqn in loop_eqns(jaxpr, "while")]


def check_fixed_budget_loop(jaxpr, marker: str, length: int) -> None:
    """A fixed budget is one `scan` of ``length`` steps, one evaluation each, no `while`."""
    assert while_bodies(jaxpr) == []
    (scan,) = loop_eqns(jaxpr, "scan")
    assert scan.params["length"] == length
    assert count_primitive(scan.params["jaxpr"], marker) == 1
    assert count_primitive(jaxpr, marker) == 1
    assert count_primitive(jaxpr, "cond") == 0


class EvalCounter:
    """Wraps ``fun`` so that every *executed* evaluation is counted on the host.

    Extra arguments are passed on: ``counter(x, *params)`` evaluates ``fun(x, *params)``.
    """

    def __init__(self, fun):
        self.fun = fun
        self.count = 0

    def _tick(self, *_):
        self.count += 1

    def __call__(self, x, *params):
        jax.debug.callback(self._tick, x)
        return self.fun(x, *params)


class EvalRecorder:
    """Wraps a scalar ``fun``: every *executed* evaluation's point and value, in order.

    Extra arguments are passed on: ``recorder(x, *params)`` evaluates ``fun(x, *params)``.
    """

    def __init__(self, fun):
        self.fun = fun
        self.points: list[float] = []
        self.values: list[float] = []

    def _record(self, x, value):
        self.points.append(float(x))
        self.values.append(float(value))

    def __call__(self, x, *params):
        value = self.fun(x, *params)
        jax.debug.callback(self._record, x, value)
        return value

    def clear(self):
        self.points.clear()
        self.values.clear()


def tree_equal_bitwise(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(leaves_a, leaves_b, strict=True)
    )


def member(batch, i: int):
    """Member ``i`` of a batched pytree (a result of `jax.vmap`)."""
    return jax.tree.map(lambda leaf: leaf[i], batch)


def assert_members_match(batched, single, *args) -> None:
    """Each member of ``batched`` bitwise equal to ``single`` run on that member's arguments."""
    for i in range(len(args[0])):
        alone = single(*(arg[i] for arg in args))
        assert tree_equal_bitwise(member(batched, i), alone), (i, member(batched, i), alone)


def slack(scale: float, dtype=np.float64) -> float:
    """What function values resolve near a smooth minimum at ``scale``: ``~sqrt(eps) scale``."""
    return 4 * math.sqrt(float(np.finfo(dtype).eps)) * max(1.0, abs(scale))


def guarded(fun, lower, upper):
    """``fun``, but NaN outside ``[lower, upper]``: a search that evaluated there would stop
    with ``NONFINITE``, so ``SUCCESS`` proves that it never did."""
    return lambda x: jnp.where((x < lower) | (x > upper), jnp.nan, fun(jnp.clip(x, lower, upper)))


def zoo_batch(problems, objective=lambda problem: problem.fun):
    """Many zoo problems for one compiled, vmapped search: ``(fun, lowers, uppers, indices)``.

    ``fun(x, i)`` is ``objective(problems[i])(x)`` (a `lax.switch`); map over the arrays
    ``lowers``, ``uppers`` and ``indices``.
    """
    funs = [objective(problem) for problem in problems]
    fun = lambda x, i: jax.lax.switch(i, funs, x)
    lowers = jnp.array([problem.lower for problem in problems])
    uppers = jnp.array([problem.upper for problem in problems])
    return fun, lowers, uppers, jnp.arange(len(problems))


@functools.cache
def zoo_solver(name: str, problem, max_evals: int = 500):
    """``METHODS[name]`` on the guarded zoo ``problem``, jitted once: bounds and tolerance
    are traced arguments ``(lower, upper, tol)``."""
    fun = guarded(problem.fun, problem.lower, problem.upper)
    method = METHODS[name]
    return jax.jit(lambda lo, up, tol: method(fun, lo, up, tol=tol, max_evals=max_evals))


def halvings(width: float, tol: float) -> int:
    """Dichotomy's ``k = ceil(log2(width / (2 tol)))``: the halvings after which the midpoint
    is within ``tol`` of both bracket ends."""
    return max(0, math.ceil(math.log2(width / (2 * tol))))


def on_knife_edge(width: float, tol: float) -> bool:
    """``width / (2 tol)`` a power of two, up to rounding: `halvings` may go either way."""
    ratio = math.log2(width / (2 * tol))
    return abs(ratio - round(ratio)) < 1e-9
