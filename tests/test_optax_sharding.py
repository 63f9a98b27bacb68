"""Sharded training: the optax adapters keep the sharding of the parameters and give the
unsharded result.

Eight CPU devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before JAX
starts, so the checks run in one fresh Python process (`CHECK`, below) and the tests read
its report, as in tests/test_sharding.py. The mesh is a `jax.sharding.Mesh` (Auto axes);
explicit-axis meshes are a known limitation of the searches themselves (see
tests/test_sharding.py). Checked: a few jitted training steps of gradient descent with
backtracking, L-BFGS with Wolfe, and gradient descent with an exact search (golden section)
on parameters with a leaf sharded over the mesh and a replicated one; and
`jaxls.optax.minimize` under `jax.vmap` over a batch of problems sharded along the batch.
"""

from __future__ import annotations


import pytest

from tests.helpers import run_on_devices

CHECKS = ("backtracking", "lbfgs_wolfe", "golden_section", "minimize_vmap")

CHECK = r"""
import sys

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import jaxls
from jaxls.optax import minimize, scale_by_line_search

assert jax.device_count() == 8, jax.devices()
MESH = Mesh(np.array(jax.devices()), ("i",))  # Auto axes
SHARDED = NamedSharding(MESH, P("i"))
N = 64  # the sharded leaf's length: 8 per device

OPTIMIZERS = {
    "backtracking": lambda: optax.chain(
        optax.sgd(1.0), scale_by_line_search(jaxls.backtracking, growth=2.0)
    ),
    "lbfgs_wolfe": lambda: optax.lbfgs(linesearch=scale_by_line_search(jaxls.wolfe)),
    "golden_section": lambda: optax.chain(
        optax.sgd(1.0), scale_by_line_search(jaxls.golden_section, step_max=4.0)
    ),
}


def assert_close(res, plain):
    for a, b in zip(jax.tree.leaves(res), jax.tree.leaves(plain), strict=True):
        # A sharded sum adds in another order: equal to rounding, not bitwise.
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


def expected_sharding(leaf):
    # Leaves that follow the sharded parameter (its gradient, L-BFGS's memory of it) are
    # sharded along their last axis; everything else (scalars, the replicated leaf) is
    # replicated.
    if leaf.ndim and leaf.shape[-1] == N:
        return NamedSharding(MESH, P(*[None] * (leaf.ndim - 1), "i"))
    return NamedSharding(MESH, P())


def check_training(name):
    seen = []  # the sharding of every point the loss is evaluated at

    def loss(params):
        jax.debug.inspect_array_sharding(params["u"], callback=seen.append)
        u, v = params["u"], params["v"]
        return jnp.sum(jnp.cosh(u - v[0]) + 0.1 * u**4) + jnp.sum((v - 1.0) ** 2)

    opt = OPTIMIZERS[name]()
    value_and_grad = optax.value_and_grad_from_state(loss)

    @jax.jit
    def step(params, state):
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(params, updates), updates, state

    def train(params):
        state = opt.init(params)
        for _ in range(5):
            params, updates, state = step(params, state)
        return params, updates, state

    params = {"u": jnp.linspace(-1.0, 2.0, N), "v": jnp.array([0.5, -0.5, 2.0])}
    shardings = {"u": SHARDED, "v": NamedSharding(MESH, P())}
    plain = train(params)
    seen.clear()
    res = train(jax.device_put(params, shardings))
    assert seen and all(s.is_equivalent_to(SHARDED, 1) for s in seen), seen
    new_params, updates, state = res
    for tree in (new_params, updates):
        for leaf, sharding in zip(jax.tree.leaves(tree), jax.tree.leaves(shardings), strict=True):
            assert leaf.sharding.is_equivalent_to(sharding, leaf.ndim), leaf.sharding
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        assert leaf.sharding.is_equivalent_to(expected_sharding(leaf), leaf.ndim), (
            jax.tree_util.keystr(path),
            leaf.sharding,
        )
    assert_close(res, plain)
    info = optax.tree.get(state, "info")
    assert int(info.status) == 0, int(info.status)
    return int(info.total_evals)


def check_minimize_vmap():
    # 16 logistic regressions, the batch sharded over the devices (2 per device).
    rng = np.random.default_rng(0)
    inputs = jnp.asarray(rng.normal(size=(16, 50, 4)))
    labels = jnp.asarray((rng.uniform(size=(16, 50)) < 0.5).astype(np.float64))
    opt = optax.lbfgs(linesearch=scale_by_line_search(jaxls.wolfe))

    def fit(x, y):
        def loss(w):
            z = x @ w
            return jnp.mean(jax.nn.softplus(z) - y * z) + 0.005 * jnp.sum(w**2)

        return minimize(loss, jnp.zeros(4), opt, max_steps=100, tol=1e-8)

    solve = jax.jit(jax.vmap(fit))
    plain = solve(inputs, labels)
    res = solve(*jax.device_put((inputs, labels), SHARDED))
    for path, leaf in jax.tree_util.tree_leaves_with_path(res):
        assert leaf.sharding.is_equivalent_to(SHARDED, leaf.ndim), (
            jax.tree_util.keystr(path),
            leaf.sharding,
        )
    assert bool(jnp.all(res.converged)), res.status
    for field in ("status", "num_steps", "num_evals"):
        np.testing.assert_array_equal(getattr(res, field), getattr(plain, field))
    assert_close(res, plain)
    return int(plain.num_evals.sum())


for label in sys.argv[1:]:
    try:
        with jax.set_mesh(MESH):
            evals = check_minimize_vmap() if label == "minimize_vmap" else check_training(label)
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0]
        print(f"FAIL {label}: {type(error).__name__}: {first}", flush=True)
    else:
        print(f"OK {label} ({evals} evaluations)", flush=True)
print("DONE", flush=True)
"""


@pytest.fixture(scope="module")
def report() -> dict[str, str]:
    """``{check: line}`` from one process with 8 CPU devices; a line starts OK or FAIL."""
    lines, output = run_on_devices(CHECK, CHECKS, timeout=300)
    found = {line.split()[1].rstrip(":"): line for line in lines}
    assert set(found) == set(CHECKS), output
    return found


@pytest.mark.parametrize("check", CHECKS[:3])
def test_sharded_training_keeps_sharding_and_matches_unsharded(report, check):
    """Five jitted steps: params, updates and state keep their shardings, every evaluation
    sees the sharded point, and the values equal the unsharded run's (to rounding)."""
    assert report[check].startswith("OK"), report[check]


def test_minimize_vmap_over_a_sharded_batch(report):
    """`minimize` under vmap, batch sharded over 8 devices: every result leaf stays sharded
    along the batch; statuses and counts equal the unsharded batch's, values to rounding."""
    assert report["minimize_vmap"].startswith("OK"), report["minimize_vmap"]
