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


# Steps unrolled per iteration of the fixed-budget scan.
FIXED_UNROLL = 4


def run_while(step: Callable, state, max_evals: int):
    """Run ``step`` until the state leaves RUNNING or ``max_evals`` evaluations are spent."""

    def cond(s):
        return (s.status == RUNNING) & (s.num_evals < max_evals)

    state = jax.lax.while_loop(cond, step, state)
    return state._replace(
        status=jnp.where(state.status == RUNNING, Status.MAX_EVALS, state.status).astype(jnp.int32)
    )


def run_fixed(step: Callable, state, length: int, xs=None, unroll: int = FIXED_UNROLL):
    """Apply ``step`` exactly ``length`` times; members that stopped (NaN, invalid) stay frozen.

    A `lax.scan` with a static trip count: no data-dependent predicate, ``unroll`` steps per
    loop iteration. ``xs`` (optional) gives each step a parameter: ``step(state, xs[i])``.
    The objective executes once per step for every member; a stopped member's result is
    discarded. Measured on a 2-core CPU (golden section, 33 steps, 10^6 problems): the scan
    runs 3.3-3.9 million problems/s and compiles in 0.2-0.3 s, while a fully unrolled
    Python loop took 15 s to compile at 10 steps (XLA duplicates work across the fused
    steps, exponentially), and unrolling with a barrier after each step ran 5 times slower
    than the scan, its fusions growing with the step count.
    """

    def body(s, x):
        new = step(s) if xs is None else step(s, x)
        return select(s.status == RUNNING, new, s), None

    state, _ = jax.lax.scan(body, state, xs, length=length, unroll=unroll)
    return state._replace(
        status=jnp.where(state.status == RUNNING, Status.SUCCESS, state.status).astype(jnp.int32)
    )
