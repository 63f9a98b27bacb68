"""Test utilities shared by several test files."""

from __future__ import annotations

import functools
import importlib
import math
import os
import pathlib
import pkgutil
import subprocess
import sys

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np
import optax
import scipy
from hypothesis import strategies as st

import jaxls


EPS = float(np.finfo(np.float64).eps)


def scipy_private(module: str):
    """A private scipy module an oracle needs (``scipy.optimize._dcsrch``): imported, never
    skipped. pyproject.toml pins scipy to the releases that have it; a scipy without it
    fails the test with this message rather than silently dropping the oracle."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise AssertionError(
            f"the oracle needs the private module {module}, absent from scipy "
            f"{scipy.__version__}: port the oracle, then move the pin in pyproject.toml"
        ) from error


def count_primitive(jaxpr, name: str) -> int:
    """Occurrences of primitive ``name`` in a (closed) jaxpr, sub-jaxprs included."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0
    for eqn in jaxpr.eqns:
        total += eqn.primitive.name == name
        for sub in jex.core.jaxprs_in_params(eqn.params):
            total += count_primitive(sub, name)
    return total


def primitive_names(jaxpr) -> set[str]:
    """Names of the primitives in a (closed) jaxpr and, recursively, in its sub-jaxprs."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for sub in jex.core.jaxprs_in_params(eqn.params):
            names |= primitive_names(sub)
    return names


def loop_eqns(jaxpr, primitive: str) -> list:
    """Every equation of ``primitive`` (``"while"``, ``"scan"``) in a jaxpr, recursively."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == primitive:
            found.append(eqn)
        for sub in jex.core.jaxprs_in_params(eqn.params):
            found.extend(loop_eqns(sub, primitive))
    return found


def while_bodies(jaxpr) -> list:
    """The body jaxprs of every `while` loop in a jaxpr, searched recursively."""
    return [eqn.params["body_jaxpr"] for eqn in loop_eqns(jaxpr, "while")]


def check_fixed_budget_loop(jaxpr, marker: str, length: int) -> None:
    """A fixed budget is one `scan` of ``length`` steps, one evaluation each, no `while`;
    one step per loop iteration (unrolled, each step is copied into every fusion of the
    state's fields: 3-4 times the compile time, benchmarks/README.md)."""
    assert while_bodies(jaxpr) == []
    (scan,) = loop_eqns(jaxpr, "scan")
    assert scan.params["length"] == length
    assert scan.params["unroll"] == 1, scan.params["unroll"]
    assert count_primitive(scan.params["jaxpr"], marker) == 1
    assert count_primitive(jaxpr, marker) == 1
    assert count_primitive(jaxpr, "cond") == 0


class EvalCounter:
    """Wraps ``fun`` so that every *executed* evaluation is counted on the host.

    Extra arguments are passed on: ``counter(x, *params)`` evaluates ``fun(x, *params)``.
    """

    def __init__(self, fun):
        self.fun = fun
        self.count = 0

    def _tick(self, *_):
        self.count += 1

    def __call__(self, x, *params):
        jax.debug.callback(self._tick, x)
        return self.fun(x, *params)


class EvalRecorder:
    """Wraps a scalar ``fun``: every *executed* evaluation's point and value, in order.

    Extra arguments are passed on: ``recorder(x, *params)`` evaluates ``fun(x, *params)``.
    """

    def __init__(self, fun):
        self.fun = fun
        self.points: list[float] = []
        self.values: list[float] = []

    def _record(self, x, value):
        self.points.append(float(x))
        self.values.append(float(value))

    def __call__(self, x, *params):
        value = self.fun(x, *params)
        jax.debug.callback(self._record, x, value)
        return value

    def clear(self):
        self.points.clear()
        self.values.clear()


def recording_search(search, fun):
    """``search(fun, x, d, step_init=t0)`` jitted once (``x``, ``d``, ``t0`` traced) and
    recording the points ``fun`` is evaluated at: ``call(x, d, t0)`` returns the result and
    those points (host copies), in order."""
    points: list = []

    def recording(y):
        jax.debug.callback(lambda p: points.append(np.asarray(p)), y)
        return fun(y)

    solve = jax.jit(lambda x, d, t0: search(recording, x, d, step_init=t0))

    def call(x, d, t0):
        points.clear()
        res = solve(x, d, t0)
        jax.effects_barrier()
        return res, list(points)

    return call


def tree_equal_bitwise(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(leaves_a, leaves_b, strict=True)
    )


def member(batch, i: int):
    """Member ``i`` of a batched pytree (a result of `jax.vmap`)."""
    return jax.tree.map(lambda leaf: leaf[i], batch)


def assert_members_match(batched, single, *args) -> None:
    """Each member of ``batched`` bitwise equal to ``single`` run on that member's arguments."""
    for i in range(len(args[0])):
        alone = single(*(arg[i] for arg in args))
        assert tree_equal_bitwise(member(batched, i), alone), (i, member(batched, i), alone)


def slack(scale: float, dtype=np.float64) -> float:
    """What function values resolve near a smooth minimum at ``scale``: ``~sqrt(eps) scale``."""
    return 4 * math.sqrt(float(np.finfo(dtype).eps)) * max(1.0, abs(scale))


def guarded(fun, lower, upper):
    """``fun``, but NaN outside ``[lower, upper]``: a search that evaluated there would stop
    with ``NONFINITE``, so ``SUCCESS`` proves that it never did."""
    return lambda x: jnp.where((x < lower) | (x > upper), jnp.nan, fun(jnp.clip(x, lower, upper)))


def zoo_rows(problems, objective=lambda problem: problem.fun):
    """`zoo_batch`'s objective as a gather: ``fun(x, i)`` computes every problem's
    ``objective(problem)`` at ``x`` and takes problem ``i``'s.

    Under `jax.vmap` this computes what `zoo_batch`'s `lax.switch` does (a batched
    ``switch`` is a ``select_n`` of every branch, each evaluated for every member), bit for
    bit, but compiles 2.5 times faster in a fixed-budget search: XLA copies the chain of
    ``select``s into the fusion of every problem's evaluation, in each step.
    """
    funs = [objective(problem) for problem in problems]
    return lambda x, i: jnp.stack([f(x) for f in funs])[i]


@functools.cache
def compiled_value_and_grad(fun):
    """``jax.jit(jax.value_and_grad(fun))``, compiled once per function (and argument
    types): for oracles that evaluate ``fun`` at many points."""
    return jax.jit(jax.value_and_grad(fun))


def zoo_batch(problems, objective=lambda problem: problem.fun):
    """Many zoo problems for one compiled, vmapped search: ``(fun, lowers, uppers, indices)``.

    ``fun(x, i)`` is ``objective(problems[i])(x)`` (a `lax.switch`); map over the arrays
    ``lowers``, ``uppers`` and ``indices``.
    """
    funs = [objective(problem) for problem in problems]
    fun = lambda x, i: jax.lax.switch(i, funs, x)
    lowers = jnp.array([problem.lower for problem in problems])
    uppers = jnp.array([problem.upper for problem in problems])
    return fun, lowers, uppers, jnp.arange(len(problems))


def halvings(width: float, tol: float) -> int:
    """Dichotomy's ``k = ceil(log2(width / (2 tol)))``: the halvings after which the midpoint
    is within ``tol`` of both bracket ends."""
    return max(0, math.ceil(math.log2(width / (2 * tol))))


def on_knife_edge(width: float, tol: float) -> bool:
    """``width / (2 tol)`` a power of two, up to rounding: `halvings` may go either way."""
    ratio = math.log2(width / (2 * tol))
    return abs(ratio - round(ratio)) < 1e-9


# --- smooth problems on pytrees, shared by the hypothesis tests of the step searches -------


def arrays(lo, hi, shape):
    """Hypothesis strategy: float64 arrays of ``shape`` with entries in ``[lo, hi]``."""
    n = int(np.prod(shape))
    return st.lists(st.floats(lo, hi), min_size=n, max_size=n).map(
        lambda v: np.asarray(v, np.float64).reshape(shape)
    )


tree_params = st.fixed_dictionaries(
    {
        "a": arrays(0.1, 10.0, (3,)),
        "c": arrays(-2.0, 2.0, (3,)),
        "b": arrays(0.0, 1.0, (3,)),
        "e": arrays(0.1, 3.0, (2, 2)),
        "q": arrays(-2.0, 2.0, (2, 2)),
        "e0": st.floats(0.1, 3.0),
        "q0": st.floats(-2.0, 2.0),
    }
)
tree_points = st.fixed_dictionaries(
    {"u": arrays(-2.0, 2.0, (3,)), "vw": st.tuples(arrays(-2.0, 2.0, (2, 2)), st.floats(-2, 2))}
)


def tree_objective(xp, p, x):
    """``sum a (u - c)^2 + b u^4 + sum e cosh(v - q) + e0 cosh(w - q0)``, in jnp or NumPy."""
    u, (v, w) = x["u"], x["vw"]
    return (
        xp.sum(p["a"] * (u - p["c"]) ** 2 + p["b"] * u**4)
        + xp.sum(p["e"] * xp.cosh(v - p["q"]))
        + p["e0"] * xp.cosh(w - p["q0"])
    )


def tree_grad(p, x):
    u, (v, w) = x["u"], x["vw"]
    return {
        "u": 2 * p["a"] * (u - p["c"]) + 4 * p["b"] * u**3,
        "vw": (p["e"] * np.sinh(v - p["q"]), p["e0"] * np.sinh(w - p["q0"])),
    }


def tree_dot(a, b):
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return float(sum(np.vdot(u, v) for u, v in pairs))


def run_on_devices(script: str, args, *, devices: int = 8, timeout: int = 600, x64: bool = False):
    """Run ``python -c script *args`` in a fresh process on ``devices`` CPU devices (from the
    repository root, which is on its path); return its output lines, checked to exit 0 and
    to end with ``DONE``, without that last line."""
    root = pathlib.Path(__file__).parent.parent
    env = dict(os.environ)
    flag = f"--xla_force_host_platform_device_count={devices}"
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flag).strip()
    env["JAX_PLATFORMS"] = "cpu"
    if x64:
        env["JAX_ENABLE_X64"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    lines = done.stdout.splitlines()
    assert lines and lines[-1] == "DONE", output
    return lines[:-1], output


def make_logistic(num: int, seed: int = 0):
    """``num`` L2-regularised logistic regressions, 100 x 5 each, labels from a random ``w``
    plus noise, as float32 ``(X, y)`` (issue 9's family; benchmarks/float32.py measures
    them)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(num, 100, 5))
    w_true = rng.normal(size=(num, 5))
    y = np.sign(np.einsum("nij,nj->ni", X, w_true) + 0.8 * rng.normal(size=(num, 100)))
    return jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)


@functools.cache
def lbfgs_logistic_fit(search, max_iterations: int, options: tuple = ()):
    """L-BFGS with ``search`` (its ``options``, as sorted pairs) under
    `jaxls.optax.minimize` to ``grad_tol=1e-6``: jitted and vmapped over `make_logistic`'s
    problems."""
    rule = jaxls.optax.scale_by_line_search(search, options=dict(options))
    opt = optax.lbfgs(linesearch=rule)

    def fit(X, y):
        loss = lambda w: jnp.mean(jnp.logaddexp(0.0, -y * (X @ w))) + 1e-2 * (w @ w)
        return jaxls.optax.minimize(
            loss, jnp.zeros(5), opt, grad_tol=1e-6, max_iterations=max_iterations
        )

    return jax.jit(jax.vmap(fit))


def close(ours, theirs, tol):
    """Leaf by leaf: the same dtype and shape, values within ``tol`` of each leaf's largest
    entry (the AD tests' comparison of jaxls with jax)."""

    def check(a, b):
        assert jnp.result_type(a) == jnp.result_type(b), (jnp.result_type(a), jnp.result_type(b))
        assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
        wide = (
            np.complex128 if jnp.issubdtype(jnp.result_type(b), jnp.complexfloating) else np.float64
        )
        a, b = np.asarray(a, wide), np.asarray(b, wide)
        scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)

    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    jax.tree.map(check, ours, theirs)


def random_like(tree, seed):
    """Standard normal NumPy values shaped and typed like the leaves of ``tree`` (arrays or
    `jax.ShapeDtypeStruct`): drawn on the host, so that no jitted function compiles a
    random number generator (which made up a third of the AD contract's compile time)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda x: np.asarray(rng.standard_normal(np.shape(x)), jnp.result_type(x.dtype)), tree
    )


def sgd_losses(grad, loss, params, batches, learning_rate, *, jit=jax.jit):
    """The losses of plain gradient descent on ``loss(params, *batch)``, one step per batch
    compiled by ``jit``, with gradients from ``grad`` (`jaxls.ad.grad` or `jax.grad`). The
    AD tests pass `tests.ad_zoo.fast_jit`: they compare the two gradients' losses to a
    tolerance, each compiled with the same options (a transformer's step compiles 5 times
    faster)."""

    @jit
    def step(params, *batch):
        g = grad(loss)(params, *batch)
        return jax.tree.map(lambda p, d: p - learning_rate * d, params, g), loss(params, *batch)

    losses = []
    for batch in batches:
        params, value = step(params, *batch)
        losses.append(float(value))
    return np.array(losses)


def public_modules() -> list[str]:
    """``jaxls`` and its submodules whose names do not start with an underscore."""
    found, packages = ["jaxls"], [jaxls]
    while packages:
        package = packages.pop()
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if not info.name.rpartition(".")[2].startswith("_"):
                found.append(info.name)
                if info.ispkg:
                    packages.append(importlib.import_module(info.name))
    return sorted(found)
