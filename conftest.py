"""Root conftest: float64 on for the test suite and the doctests alike."""

import jax

jax.config.update("jax_enable_x64", True)
