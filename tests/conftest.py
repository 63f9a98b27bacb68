"""Strict test configuration, built around JAX's default configuration (x64 off).

* x64 stays off, as for most users: Python floats are float32. A test that needs float64
  gets it locally, inside `jax.enable_x64(True)`, when it is marked ``@pytest.mark.x64``
  (say why in the marker's ``reason``) or when one of its parameters is a 64-bit dtype
  (``dtype=jnp.float64``): parametrising a test over dtypes is all it takes. Arrays made at
  import time are float32; make float64 data inside the test.
* rank promotion raises, warnings are errors (pyproject.toml), hypothesis profiles.
* XLA compiles with its classic CPU fusion emitters, each program as one LLVM module
  (`SUITE_XLA_FLAGS`): compiling, not running, is most of the suite's time; the classic
  emitters compile each search 2-3 times faster than the default MLIR emitters (9 min to
  5 min 20 s for the whole suite on 2 cores), and one module per program saves the
  threads that split code generation, which only compete with the other worker for the
  cores (15% of the suite's CPU time; benchmarks/README.md). Every test passes under the
  defaults too: ``JAXLS_XLA_DEFAULTS=1 python -m pytest`` runs the suite with XLA's
  default options, as users run.
* Tests marked ``@pytest.mark.first`` (those that read a subprocess's report, and the
  longest single tests) run first (`pytest_collection_modifyitems`). xdist's load scheduler
  hands each worker a first chunk of consecutive tests, a quarter of its share: the marked
  tests all land in the first worker's, so no worker waits for a subprocess that the other
  is running, and no long test is left for the end while the other worker idles.
* A persistent compilation cache per xdist worker for the run, removed at the end
  (`pytest_configure`): a program that two tests of a worker compile alike (the same HLO
  from different closures) is compiled once. The executables are the same, so the results
  are too.
* One MLIR context per process for JAX's lowerings (`_one_mlir_context`): JAX makes a new
  context, and loads its dialects into it, for each of the suite's ~9,000 programs. The
  lowered modules are the same, so the programs and results are too
  (tests/test_suite_settings.py); the suite takes 15% less CPU and half the memory
  (benchmarks/README.md).

``JAXLS_XLA_DEFAULTS=1`` turns off all three (XLA's options, the cache and the shared MLIR
context): JAX and XLA as users run them.
"""

import functools
import os
import shutil
import tempfile

# Before JAX starts its backend (importing jax does not), and inherited by xdist's workers
# and the suite's subprocesses. Each is added unless XLA_FLAGS already sets that option.
SUITE_XLA_FLAGS = (
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_cpu_parallel_codegen_split_count=1",
)
if os.environ.get("JAXLS_XLA_DEFAULTS") != "1":
    _flags = os.environ.get("XLA_FLAGS", "").split()
    _set = {flag.split("=")[0] for flag in _flags}
    _flags += [flag for flag in SUITE_XLA_FLAGS if flag.split("=")[0] not in _set]
    os.environ["XLA_FLAGS"] = " ".join(_flags)

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", False)
jax.config.update("jax_numpy_rank_promotion", "raise")


def _one_mlir_context() -> None:
    """Make JAX lower every program of this process in one MLIR context instead of a new
    one each: `jax._src.interpreters.mlir.make_ir_context`, which every lowering calls,
    returns the same context (JAX's own function stays as its ``__wrapped__``;
    tests/test_suite_settings.py checks that the lowered modules are the same). A JAX
    without that function keeps its own behaviour: the suite runs, slower, and
    tests/test_suite_settings.py fails, so that the change is seen."""
    from jax._src.interpreters import mlir

    make = getattr(mlir, "make_ir_context", None)
    if make is None:
        return
    made: list = []  # the process's context, once made

    @functools.wraps(make)
    def the_context():
        if not made:
            made.append(make())
        return made[0]

    mlir.make_ir_context = the_context


if os.environ.get("JAXLS_XLA_DEFAULTS") != "1":
    _one_mlir_context()

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# HYPOTHESIS_PROFILE=thorough python -m pytest  for a longer, randomised search.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

_WIDE = (np.dtype(np.float64), np.dtype(np.complex128), np.dtype(np.int64))


def is_64bit(value) -> bool:
    """Whether a test parameter is (or names) a 64-bit dtype."""
    if isinstance(value, (tuple, list)):
        return any(is_64bit(v) for v in value)
    if value is None:  # np.dtype(None) is float64
        return False
    try:
        return np.dtype(value) in _WIDE
    except (TypeError, ValueError):
        return False


def needs_x64(item) -> bool:
    if item.get_closest_marker("x64") is not None:
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and any(is_64bit(v) for v in callspec.params.values())


_CACHE = pytest.StashKey[str]()  # the run's cache directory, on the controller's config


def pytest_configure(config):
    """The run's compilation caches: a directory made by the controller (or a run without
    xdist), which removes it at the end; each worker, started after this, finds it in the
    environment and keeps its own cache below it (a cache shared by two processes was read
    while the other wrote it: a truncated entry)."""
    if os.environ.get("JAXLS_XLA_DEFAULTS") == "1":
        return
    if not hasattr(config, "workerinput"):
        path = tempfile.mkdtemp(prefix="jaxls-test-compilation-cache-")
        os.environ["JAXLS_TEST_COMPILATION_CACHE"] = path
        config.stash[_CACHE] = path
    path = os.environ.get("JAXLS_TEST_COMPILATION_CACHE")
    if path:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        jax.config.update("jax_compilation_cache_dir", os.path.join(path, worker))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_collection_modifyitems(config, items):
    """The tests marked ``first`` first, the rest in their order (a stable sort, the same
    in every xdist worker, as xdist requires)."""
    items.sort(key=lambda item: item.get_closest_marker("first") is None)


def pytest_unconfigure(config):
    path = config.stash.get(_CACHE, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _x64_where_asked(request):
    """float64 on for this test alone when it asks for it (see the module docstring)."""
    if needs_x64(request.node):
        with jax.enable_x64(True):
            yield
    else:
        yield


@pytest.fixture(params=["eager", "jit"])
def maybe_jit(request):
    """Run a function as is, or under `jax.jit`."""
    return (lambda f: f) if request.param == "eager" else jax.jit
