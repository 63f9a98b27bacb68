"""Sharded training: the optax adapters keep the sharding of the parameters and give the
unsharded result, on meshes with Auto axes (`jax.sharding.Mesh`) and with Explicit axes
(`jax.make_mesh`'s default).

Eight CPU devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before JAX
starts, so the checks run in one fresh Python process (`CHECK`, below), in JAX's default
configuration (float32), and the tests read its report, as in tests/test_sharding.py; each
unsharded reference run is made once, without a mesh, for every check compared with it.
Checked on both meshes: a few jitted training steps of gradient descent with backtracking,
an exact search (golden section) and the stochastic Armijo rule, on parameters with a leaf
sharded over the mesh and a replicated one; `jaxls.optax.minimize` on such parameters; and
`minimize` under `jax.vmap` over a batch of problems sharded along the batch. L-BFGS runs on
the Auto mesh only: optax's own `scale_by_lbfgs` takes `jnp.vdot`s of sharded leaves, which
JAX refuses on Explicit axes (ambiguous output sharding), with any line search.

On Explicit axes JAX cannot batch a `lax.while_loop` over a sharded batch (`Resource axis: i
... not found in mesh: ()`, JAX 0.10, with or without jaxls): `minimize` under `jax.vmap`
there raises an error that names the two workarounds, and the second,
`jax.shard_map(jax.vmap(fit), ...)`, is checked to work.
"""

from __future__ import annotations

import pytest

from tests.helpers import run_on_devices
from tests.test_sharding import once_per_run

pytestmark = pytest.mark.first  # one subprocess for the module (tests/conftest.py)

TRAINING = ("backtracking", "golden_section", "stochastic_armijo", "lbfgs_wolfe")
CHECKS = {
    "auto": (*TRAINING, "minimize", "minimize_vmap"),
    "explicit": (*TRAINING[:3], "minimize", "minimize_vmap", "minimize_shard_map"),
}

CHECK = r"""
import functools
import sys

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import jaxls
from jaxls.optax import minimize, scale_by_line_search, stochastic_armijo

assert jax.device_count() == 8, jax.devices()
MESHES = {
    "auto": Mesh(np.array(jax.devices()), ("i",)),  # Auto axes
    "explicit": jax.make_mesh((8,), ("i",)),  # jax.make_mesh's default: Explicit axes
}
N = 64  # the sharded leaf's length: 8 per device

OPTIMIZERS = {
    "backtracking": lambda: optax.chain(
        optax.sgd(1.0), scale_by_line_search(jaxls.backtracking, grow=2.0)
    ),
    "golden_section": lambda: optax.chain(
        optax.sgd(1.0),
        scale_by_line_search(jaxls.golden_section, step_max=4.0, options={"tol": 1e-4}),
    ),
    "stochastic_armijo": lambda: optax.chain(optax.sgd(1.0), stochastic_armijo(step_max=4.0)),
    "lbfgs_wolfe": lambda: optax.lbfgs(linesearch=scale_by_line_search(jaxls.wolfe)),
}


def assert_close(res, plain):
    # A sharded sum adds in another order: float32 rounding, grown over a few steps.
    for a, b in zip(jax.tree.leaves(res), jax.tree.leaves(plain), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * scale + 1e-6)


def loss(params):
    u, v = params["u"], params["v"]
    return jnp.sum(jnp.cosh(u - v[0]) + 0.1 * u**4) + jnp.sum((v - 1.0) ** 2)


PARAMS = {
    "u": np.linspace(-1.0, 2.0, N, dtype=np.float32),
    "v": np.array([0.5, -0.5, 2.0], np.float32),
}


def shard_params(mesh):
    shardings = {"u": NamedSharding(mesh, P("i")), "v": NamedSharding(mesh, P())}
    return jax.device_put(PARAMS, shardings), shardings


def expected_sharding(mesh, leaf):
    # Leaves that follow the sharded parameter (its gradient, L-BFGS's memory of it) are
    # sharded along their last axis; everything else (scalars, the replicated leaf) is
    # replicated.
    if leaf.ndim and leaf.shape[-1] == N:
        return NamedSharding(mesh, P(*[None] * (leaf.ndim - 1), "i"))
    return NamedSharding(mesh, P())


SEEN = []  # the sharding of every point `watched` is evaluated at


def watched(params):
    jax.debug.inspect_array_sharding(params["u"], callback=SEEN.append)
    return loss(params)


def train(name, params):
    # Five jitted steps: the first step's (params, updates, state), and the last's.
    opt = OPTIMIZERS[name]()

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(watched)(params)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=watched)
        return optax.apply_updates(params, updates), updates, state

    state = opt.init(params)
    first = step(params, state)
    params, updates, state = first
    for _ in range(4):
        params, updates, state = step(params, state)
    return first, (params, updates, state)


def check_training(mesh, name, reference):
    plain_first, plain = reference
    SEEN.clear()
    params, shardings = shard_params(mesh)
    first, res = train(name, params)
    sharded = NamedSharding(mesh, P("i"))
    assert SEEN and all(s.is_equivalent_to(sharded, 1) for s in SEEN), SEEN
    new_params, updates, state = res
    for tree in (new_params, updates):
        for leaf, sharding in zip(jax.tree.leaves(tree), jax.tree.leaves(shardings), strict=True):
            assert leaf.sharding.is_equivalent_to(sharding, leaf.ndim), leaf.sharding
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        assert leaf.sharding.is_equivalent_to(expected_sharding(mesh, leaf), leaf.ndim), (
            jax.tree_util.keystr(path),
            leaf.sharding,
        )
    # The first step equals the unsharded one to float32 rounding; over five, rounding in
    # the order of sharded sums moves the iterates (an exact search picks another point of
    # a minimum flat to rounding): the losses agree.
    assert_close(first, plain_first)
    np.testing.assert_allclose(loss(new_params), loss(plain[0]), rtol=2e-3)
    info = optax.tree.get(state, "info")
    # Golden section may end a search in ROUNDING: a minimum flat to float32's rounding.
    assert int(info.status) in ((0, 7) if name == "golden_section" else (0,)), int(info.status)
    return int(info.total_evals)


def minimize_solver():
    opt = OPTIMIZERS["golden_section"]()
    return jax.jit(lambda p: minimize(loss, p, opt, max_iterations=20, grad_tol=1e-4))


def check_minimize(mesh, plain):
    params, shardings = shard_params(mesh)
    res = minimize_solver()(params)
    for leaf, sharding in zip(jax.tree.leaves(res.params), jax.tree.leaves(shardings), strict=True):
        assert leaf.sharding.is_equivalent_to(sharding, leaf.ndim), leaf.sharding
    assert int(res.status) == int(plain.status), (res.status, plain.status)
    assert abs(int(res.num_iterations) - int(plain.num_iterations)) <= 2
    np.testing.assert_allclose(res.value, plain.value, rtol=2e-3)
    return int(res.num_evals)


def logistic_batch():
    # 16 logistic regressions, the batch sharded over the devices (2 per device).
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(16, 50, 4)).astype(np.float32)
    labels = (rng.uniform(size=(16, 50)) < 0.5).astype(np.float32)
    return inputs, labels


def fit(x, y):
    opt = optax.lbfgs(linesearch=scale_by_line_search(jaxls.wolfe))

    def loss(w):
        z = x @ w
        return jnp.mean(jax.nn.softplus(z) - y * z) + 0.005 * jnp.sum(w**2)

    return minimize(loss, jnp.zeros(4), opt, max_iterations=100, grad_tol=1e-5)


def compare_batches(res, plain, sharded):
    # Sharding the batch changes how XLA fuses each member's arithmetic: equal statuses,
    # step counts within 3, solutions within tol / lambda (strong convexity) of each other.
    for path, leaf in jax.tree_util.tree_leaves_with_path(res):
        assert leaf.sharding.is_equivalent_to(sharded, leaf.ndim), (
            jax.tree_util.keystr(path),
            leaf.sharding,
        )
    assert bool(jnp.all(res.converged)), res.status
    np.testing.assert_array_equal(res.status, plain.status)
    assert int(jnp.max(jnp.abs(res.num_iterations - plain.num_iterations))) <= 3
    np.testing.assert_allclose(res.params, plain.params, atol=2e-3)
    return int(plain.num_evals.sum())


def check_minimize_vmap(mesh, plain):
    sharded = NamedSharding(mesh, P("i"))
    solve = jax.jit(jax.vmap(fit))
    return compare_batches(solve(*jax.device_put(logistic_batch(), sharded)), plain, sharded)


def check_minimize_shard_map(mesh, plain):
    # The workaround for Explicit axes: each device runs a vmap over its own members
    # (check_vma=False: the searches' loop carries start device-invariant).
    sharded = NamedSharding(mesh, P("i"))
    data = logistic_batch()
    per_device = jax.shard_map(jax.vmap(fit), in_specs=P("i"), out_specs=P("i"), check_vma=False)
    solve = jax.jit(per_device)
    return compare_batches(solve(*jax.device_put(data, sharded)), plain, sharded)


@functools.cache
def reference(problem):
    # A check's unsharded run, without a mesh, computed once for every check that compares
    # with it (on both meshes; `minimize_vmap` and `minimize_shard_map` share theirs).
    if problem in OPTIMIZERS:
        return train(problem, jax.tree.map(jnp.asarray, PARAMS))
    if problem == "minimize":
        return minimize_solver()(jax.tree.map(jnp.asarray, PARAMS))
    return jax.jit(jax.vmap(fit))(*map(jnp.asarray, logistic_batch()))


for argument in sys.argv[1:]:
    kind, label = argument.split("/")
    mesh = MESHES[kind]
    check = {
        "minimize": check_minimize,
        "minimize_vmap": check_minimize_vmap,
        "minimize_shard_map": check_minimize_shard_map,
    }.get(label, lambda mesh, plain, label=label: check_training(mesh, label, plain))
    try:
        plain = reference("logistic_batch" if label.startswith("minimize_") else label)
        with jax.set_mesh(mesh):  # explicit axes need the mesh in context
            evals = check(mesh, plain)
    except Exception as error:
        message = " ".join(str(error).split())
        print(f"FAIL {kind} {label}: {type(error).__name__}: {message}", flush=True)
    else:
        print(f"OK {kind} {label} ({evals} evaluations)", flush=True)
print("DONE", flush=True)
"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict[str, str]]:
    """``{kind: {check: line}}`` from one process with 8 CPU devices (run once); a line starts
    OK or FAIL."""
    arguments = [f"{kind}/{check}" for kind, checks in CHECKS.items() for check in checks]
    lines, output = once_per_run(
        tmp_path_factory,
        "test_optax_sharding",
        lambda: run_on_devices(CHECK, arguments, timeout=500),
    )
    found = {kind: {} for kind in CHECKS}
    for line in lines:
        _, kind, check = line.split()[:3]
        found[kind][check.rstrip(":")] = line
    assert {kind: set(f) for kind, f in found.items()} == {
        kind: set(checks) for kind, checks in CHECKS.items()
    }, output
    return found


@pytest.mark.parametrize(
    ("kind", "check"),
    [(kind, check) for kind, checks in CHECKS.items() for check in checks if check in TRAINING],
)
def test_sharded_training_keeps_sharding_and_matches_unsharded(kind, check, reports):
    """Five jitted steps of each rule: params, updates and state keep their shardings, every
    evaluation sees the sharded point, the first step equals the unsharded one and the last
    loss the unsharded run's (to float32 rounding). On Explicit axes the step-size searches'
    own slope (`jaxls._src.step.line.directional_derivative`, a `jnp.vdot`) must be a sum of
    products for `backtracking` to pass."""
    line = reports[kind][check]
    assert line.startswith("OK"), line


@pytest.mark.parametrize("kind", list(CHECKS))
def test_minimize_on_sharded_parameters(kind, reports):
    line = reports[kind]["minimize"]
    assert line.startswith("OK"), line


def test_minimize_vmap_over_a_sharded_batch(reports):
    """`minimize` under vmap, batch sharded over 8 devices (Auto axes): every result leaf
    stays sharded along the batch; statuses equal the unsharded batch's."""
    line = reports["auto"]["minimize_vmap"]
    assert line.startswith("OK"), line


def test_minimize_vmap_on_explicit_axes_names_the_workarounds(reports):
    """JAX cannot batch the while loop over a batch sharded on Explicit axes: the error
    names the call and the two workarounds, and the second (`shard_map` of the `vmap`)
    gives the same results, sharded along the batch."""
    found = reports["explicit"]
    line = found["minimize_vmap"]
    assert line.startswith("FAIL explicit minimize_vmap: ValueError"), line
    assert "`jaxls.optax.minimize` on a mesh with explicit axes" in line, line
    assert "AxisType.Auto" in line and "jax.shard_map(jax.vmap(fit)" in line, line
    assert found["minimize_shard_map"].startswith("OK"), found["minimize_shard_map"]
