"""Strict test configuration: float64 on (float32 data is still tested), hypothesis
profiles, and rank promotion errors so that shape bugs cannot hide."""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# HYPOTHESIS_PROFILE=thorough python -m pytest  for a longer, randomised search.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(params=["eager", "jit"])
def maybe_jit(request):
    """Run a function as is, or under `jax.jit`."""
    return (lambda f: f) if request.param == "eager" else jax.jit
