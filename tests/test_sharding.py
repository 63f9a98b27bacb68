"""Sharded inputs: every search keeps the sharding of its data and gives the unsharded result.

Eight CPU devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before JAX
starts, so the checks run in a fresh Python process (`CHECK`, below) and this test reads its
exit code and report. Every inexact search that `jaxls` exports is covered (found at run
time, as in tests/test_step.py), and one exact search, golden section, under ``vmap`` over
a sharded batch of intervals.
"""

from __future__ import annotations


import pytest

from tests.helpers import run_on_devices

import jaxls

SEARCHES = ("backtracking", "goldstein", "wolfe", "hager_zhang")

CHECK = r"""
import inspect
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import jaxls

assert jax.device_count() == 8, jax.devices()
SEARCHES = sys.argv[1:]


def bowl(x):
    return jnp.sum((x["u"] - 1.0) ** 2 + 0.1 * (x["u"] - 1.0) ** 4) + jnp.sum(
        jnp.cosh(x["v"] + 0.5)
    )


def variants(name):
    fun = getattr(jaxls, name)
    if "strong" in inspect.signature(fun).parameters:
        return [(f"{name}(strong={s})", fun, {"strong": s}) for s in (True, False)]
    return [(name, fun, {})]


def check_search(sharded, search, kwargs):
    same = lambda a: a.sharding.is_equivalent_to(sharded, a.ndim)
    x = {"u": jnp.linspace(-1.0, 2.0, 64), "v": jnp.linspace(0.0, 1.0, 32).reshape(8, 4)}
    d = jax.tree.map(lambda g: -g, jax.grad(bowl)(x))
    xs, ds = jax.device_put((x, d), sharded)
    assert all(same(a) for a in jax.tree.leaves((xs, ds)))
    seen = []  # the sharding of each point the objective is evaluated at

    def watched(y):
        jax.debug.inspect_array_sharding(y["u"], callback=seen.append)
        return bowl(y)

    solve = jax.jit(lambda x, d: search(watched, x, d, step_init=3.0, **kwargs))
    plain = solve(x, d)
    seen.clear()
    res = solve(xs, ds)
    assert seen and all(s.is_equivalent_to(sharded, 1) for s in seen), seen
    assert int(res.status) == int(plain.status) == 0, res.status
    assert int(res.num_evals) == int(plain.num_evals)
    assert all(same(g) for g in jax.tree.leaves(res.grad))
    for a, b in zip(jax.tree.leaves(res), jax.tree.leaves(plain), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-15)

    # A batch of 16 problems sharded over the devices: members are independent, so the
    # result is bitwise the unsharded one, and stays sharded along the batch.
    def one(x0, d0, step_init):
        fun = lambda y: jnp.sum(jnp.cosh(y - 1.5) + 0.25 * y**4)
        return search(fun, x0, d0, step_init=step_init, **kwargs)

    keys = jax.random.split(jax.random.key(0), 2)
    x0 = jax.random.normal(keys[0], (16, 3))
    d0 = jax.random.normal(keys[1], (16, 3))
    step_init = jnp.logspace(-3, 3, 16)
    batched = jax.jit(jax.vmap(one))
    plain = batched(x0, d0, step_init)
    res = batched(*jax.device_put((x0, d0, step_init), sharded))
    for a, b in zip(jax.tree.leaves(res), jax.tree.leaves(plain), strict=True):
        assert same(a), a.sharding
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    return int(plain.num_evals.sum())


def check_golden(sharded):
    # An exact search under vmap over a sharded batch of intervals.
    same = lambda a: a.sharding.is_equivalent_to(sharded, a.ndim)
    lower = jnp.linspace(-3.0, 1.0, 32)
    upper = lower + jnp.linspace(2.0, 6.0, 32)
    centre = lower + 0.3 * (upper - lower)  # the minimiser, inside each interval

    def golden(lo, hi, c):
        return jaxls.golden_section(lambda t: jnp.cosh(t - c), lo, hi, tol=1e-9)

    solve = jax.jit(jax.vmap(golden))
    plain = solve(lower, upper, centre)
    res = solve(*jax.device_put((lower, upper, centre), sharded))
    for a, b in zip(jax.tree.leaves(res), jax.tree.leaves(plain), strict=True):
        assert same(a), a.sharding
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert bool(jnp.all(res.converged))
    np.testing.assert_allclose(res.x, centre, atol=1e-6)
    return int(plain.num_evals.sum())


MESHES = {
    "auto": Mesh(np.array(jax.devices()), ("i",)),  # jax.sharding.Mesh: Auto axes
    "explicit": jax.make_mesh((8,), ("i",)),  # jax.make_mesh's default: Explicit axes
}
for kind, mesh in MESHES.items():
    sharded = NamedSharding(mesh, P("i"))
    checks = [
        (label, lambda search=search, kwargs=kwargs: check_search(sharded, search, kwargs))
        for name in SEARCHES
        for label, search, kwargs in variants(name)
    ]
    checks.append(("golden_section", lambda: check_golden(sharded)))
    for label, check in checks:
        try:
            with jax.set_mesh(mesh):  # explicit axes need the mesh in context
                evals = check()
        except Exception as error:
            first = (str(error).strip().splitlines() or [""])[0]
            print(f"FAIL {kind} {label}: {type(error).__name__}: {first}", flush=True)
        else:
            print(f"OK {kind} {label} ({evals} evaluations)", flush=True)
print("DONE", flush=True)
"""


def _label_name(line: str) -> tuple[str, str]:
    """``("auto", "wolfe")`` from ``"OK auto wolfe(strong=True) (...)"``."""
    _, kind, label = line.split()[:3]
    return kind, label.split("(")[0].rstrip(":")


@pytest.fixture(scope="module")
def report() -> list[str]:
    """The checker's lines, ``OK|FAIL kind label ...``, from one process with 8 devices."""
    names = [name for name in SEARCHES if hasattr(jaxls, name)]
    lines, output = run_on_devices(CHECK, names, x64=True)
    checked = {_label_name(line) for line in lines}
    for name in [*names, "golden_section"]:
        for kind in ("auto", "explicit"):
            assert (kind, name) in checked, (kind, name, output)
    return lines


def test_sharded_searches_keep_sharding_and_match_unsharded(report):
    """``jax.sharding.Mesh`` (Auto axes): every search, and golden section under vmap."""
    auto = [line for line in report if _label_name(line)[0] == "auto"]
    assert auto and all(line.startswith("OK") for line in auto), "\n".join(auto)


@pytest.mark.xfail(
    strict=True,
    reason="explicit-axis meshes (jax.make_mesh's default) are not supported yet: the "
    "while_loop carries of the inexact searches mix P(None) and P('i') shardings "
    "(ShardingTypeError) or lose the mesh ('Resource axis: i ... not found in mesh: ()'), "
    "and JAX's batched while_loop fails the same way for golden section under vmap, "
    "reproduced without jaxls. Auto-axis meshes (jax.sharding.Mesh) work: see above",
)
def test_explicit_mesh_sharding(report):
    """``jax.make_mesh`` (Explicit axes, its default): the same checks."""
    explicit = [line for line in report if _label_name(line)[0] == "explicit"]
    assert explicit and all(line.startswith("OK") for line in explicit), "\n".join(explicit)
