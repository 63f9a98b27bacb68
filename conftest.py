"""Root conftest: doctests run in JAX's default configuration (x64 off), as users run them."""

import jax

jax.config.update("jax_enable_x64", False)
