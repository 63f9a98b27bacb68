"""The suite's own settings (tests/conftest.py) leave what they speed up unchanged.

One MLIR context serves every lowering of a process: JAX would make a new one for each
program. The modules lowered in the shared context must be those lowered in a fresh one,
text for text, and so must the compiled programs (their debug metadata aside) and their
results, bit for bit; the oracle is JAX's own function, kept as the replacement's
``__wrapped__``.
"""

from __future__ import annotations

import os
import re

import jax
import jax.numpy as jnp
import pytest
from jax._src.interpreters import mlir

import jaxls
from tests.helpers import tree_equal_bitwise

DEFAULTS = os.environ.get("JAXLS_XLA_DEFAULTS") == "1"


def _programs():
    """Programs of the kinds the suite lowers: a search alone, a search batched, a custom
    derivative, an eager operation's program."""
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
    # JAX caches a function's lowered module: each lowering traces a new wrapper, else the
    # second would return the first module, and the test would compare it with itself.
    shared = jax.jit(lambda *a: fun(*a)).lower(*args)
    assert shared.compiler_ir("stablehlo").context is mlir.make_ir_context()
    monkeypatch.setattr(mlir, "make_ir_context", mlir.make_ir_context.__wrapped__)
    fresh = jax.jit(lambda *a: fun(*a)).lower(*args)
    assert fresh.compiler_ir("stablehlo").context is not shared.compiler_ir("stablehlo").context
    assert shared.as_text() == fresh.as_text()
    compiled = shared.compile(), fresh.compile()
    assert _program(compiled[0]) == _program(compiled[1])
    assert tree_equal_bitwise(compiled[0](*args), compiled[1](*args))


def _program(compiled) -> str:
    """The compiled HLO without its debug metadata: the tables of source files, functions
    and stack frames (which list them in the order the lowering met them) and each
    instruction's ``metadata={...}``."""
    text = compiled.as_text()
    tables = re.compile(r"\n\nFileNames\n.*?\n\n\n", re.S)
    assert len(tables.findall(text)) <= 1, "one block of tables, after the module's header"
    text = tables.sub("\n\n", text)
    return re.sub(r', metadata=\{(?:[^{}"]|"[^"]*")*\}', "", text)
