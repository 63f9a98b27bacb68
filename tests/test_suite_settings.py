"""The suite's own settings (tests/conftest.py) leave what they speed up unchanged.

One MLIR context serves every lowering of a process: JAX would make a new one for each
program. The modules lowered in the shared context must be those lowered in a fresh one,
text for text, and so must the compiled programs; the oracle is JAX's own function, kept
as the replacement's ``__wrapped__``.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import pytest
from jax._src.interpreters import mlir

import jaxls

DEFAULTS = os.environ.get("JAXLS_XLA_DEFAULTS") == "1"


def _programs():
    """Programs of the kinds the suite lowers: searches alone and batched, an optimiser's
    loop, a custom derivative, an eager operation's program."""
    quartic = lambda x: jnp.sum(x**4) / 4 - jnp.sum(x)
    x = jnp.array([0.0, 0.5])
    return {
        "wolfe": (lambda x: jaxls.wolfe(quartic, x, jnp.ones(2), step_init=0.1), (x,)),
        "golden_section under vmap": (
            jax.vmap(lambda c: jaxls.golden_section(lambda t: (t - c) ** 2, 0.0, 4.0)),
            (jnp.array([0.5, 1.5, 3.0]),),
        ),
        "gradient of a custom_jvp": (jax.grad(lambda x: jnp.sum(jax.nn.relu(x) ** 2)), (x,)),
        "an operation": (jnp.multiply, (x, x)),
    }


def test_one_mlir_context_per_process():
    if DEFAULTS:
        assert not hasattr(mlir.make_ir_context, "__wrapped__"), "JAX's own function"
        return
    assert mlir.make_ir_context() is mlir.make_ir_context()
    fresh = mlir.make_ir_context.__wrapped__
    assert fresh() is not fresh()


@pytest.mark.skipif(DEFAULTS, reason="JAXLS_XLA_DEFAULTS=1: JAX's own contexts, nothing shared")
@pytest.mark.parametrize("name", list(_programs()))
def test_a_shared_context_lowers_and_compiles_the_same_program(name, monkeypatch):
    fun, args = _programs()[name]
    shared = jax.jit(fun).lower(*args)
    monkeypatch.setattr(mlir, "make_ir_context", mlir.make_ir_context.__wrapped__)
    fresh = jax.jit(fun).lower(*args)
    assert shared.as_text() == fresh.as_text()
    assert shared.compile().as_text() == fresh.compile().as_text()
