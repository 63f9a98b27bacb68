"""Loop drivers shared by every search, and `select` over pytrees.

Every search is a state machine whose step makes exactly one objective evaluation, outside
any `lax.cond`, so that under `jax.vmap` each iteration costs one evaluation per member. The
state is a NamedTuple with (at least) ``num_evals`` and ``status`` fields; a step sets
``status`` from ``RUNNING`` to a final `Status` when the search ends.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxls._src.results import RUNNING, Status


def select(pred, on_true, on_false):
    """`jnp.where` over two pytrees of the same structure (states, `Point`s)."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def run_while(step: Callable, state, max_evals: int):
    """Run ``step`` until the state leaves RUNNING or ``max_evals`` evaluations are spent."""

    def cond(s):
        return (s.status == RUNNING) & (s.num_evals < max_evals)

    state = jax.lax.while_loop(cond, step, state)
    return state._replace(
        status=jnp.where(state.status == RUNNING, Status.MAX_EVALS, state.status).astype(jnp.int32)
    )


def run_fixed(step: Callable, state, length: int, xs=None):
    """Apply ``step`` up to ``length`` times: a member that stopped (NaN, invalid) is frozen.

    A `lax.scan` with a static trip count and no loop predicate, one step per loop
    iteration. ``xs`` (optional) gives each step a parameter: ``step(state, xs[i])``. Each
    step is guarded by a `lax.cond` on the state's ``status``: run alone, a stopped member
    makes no more evaluations, so its ``num_evals`` is the number of calls of the objective
    actually executed; under `jax.vmap` the predicate is batched and JAX turns the `cond`
    into a `select` of both branches, so the step (one evaluation) runs for every member
    and a stopped member's result is discarded, as in a batched `lax.while_loop` (run
    alone, the `cond` made a call 2.7 times faster than computing both branches).

    Not unrolled: XLA:CPU emits one fusion per field of the state, each with its own copy
    of the step, so every unrolled step multiplies the program. Measured on a shared 2-core
    CPU (golden section and Fibonacci, float64, a budget of 33 steps, the lecture's problem
    of benchmarks/exact.py, JAX's default XLA options): against 4 steps per iteration, one
    step compiles in 0.13-0.20 s instead of 0.43-0.72 s, a single problem runs 2-3.5 times
    faster and 10^6 problems 6-25% faster (2.1-2.4 million problems/s). A fully unrolled
    Python loop took 15 s to compile at 10 steps, and unrolling with a barrier after each
    step ran 5 times slower than the scan, its fusions growing with the step count.
    """

    def body(s, x):
        running = s.status == RUNNING
        if xs is None:
            return jax.lax.cond(running, step, lambda s: s, s), None
        return jax.lax.cond(running, step, lambda s, x: s, s, x), None

    state, _ = jax.lax.scan(body, state, xs, length=length)
    return state._replace(
        status=jnp.where(state.status == RUNNING, Status.SUCCESS, state.status).astype(jnp.int32)
    )
