"""Test utilities shared by several test files."""

from __future__ import annotations

import jax
import jax.extend as jex
import numpy as np


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
    """Wraps ``fun`` so that every *executed* evaluation is counted on the host."""

    def __init__(self, fun):
        self.fun = fun
        self.count = 0

    def _tick(self, *_):
        self.count += 1

    def __call__(self, x):
        jax.debug.callback(self._tick, x)
        return self.fun(x)


def tree_equal_bitwise(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(leaves_a, leaves_b, strict=True)
    )
