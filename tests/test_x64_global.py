"""x64 turned on for the whole program (``JAX_ENABLE_X64=1``), with warnings as errors.

The suite runs in JAX's default configuration (x64 off) and enables float64 per test
(tests/conftest.py); users who turn x64 on globally get Python floats as float64 everywhere,
including at import time. One subprocess runs the checks below in a fresh interpreter.

Each check is one jitted function (jaxls's result and jax's, side by side): run eagerly, a
zoo case compiled every primitive on its own, 35 s of the test's 48 for the same
comparisons. Golden section stays eager, the one call from an eager caller. The subprocess
runs with XLA's default options, not the suite's faster-compiling ones (tests/conftest.py).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import warnings
    warnings.simplefilter("error")
    import jax, jax.numpy as jnp, numpy as np, optax
    assert jax.config.jax_enable_x64
    import jaxls
    from tests import ad_zoo

    def close(a, b, rtol=1e-7):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            x, y = np.asarray(x), np.asarray(y)
            assert x.dtype == y.dtype, (x.dtype, y.dtype)
            scale = max(1.0, float(np.max(np.abs(y), initial=0.0)))
            np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * scale)

    def both(case):  # jaxls's JVP and gradient (or Jacobian) of a zoo case, and jax's
        reverse = (jaxls.ad.grad, jax.grad) if case.scalar else (jaxls.ad.jacrev, jax.jacrev)
        return lambda args: [
            (ad.jvp(case.f, args, args), rev(case.f)(*args))
            for ad, rev in zip((jaxls.ad, jax), reverse, strict=True)
        ]

    for case in ad_zoo.cases(jnp.float64):
        ours, theirs = jax.jit(both(case))(case.args)
        close(ours, theirs)
    # Python floats are float64 here: every rule must see that dtype (closed over, so that
    # jaxls is handed the Python floats themselves).
    g = lambda x: jnp.sin(x) * x
    pairs = ((jaxls.ad.grad, jaxls.ad.hessian), (jax.grad, jax.hessian))
    lecture = lambda: [(grad(ad_zoo.lecture, argnums=(0, 1))(2.0, 5.0), hessian(g)(2.0))
                       for grad, hessian in pairs]
    close(*jax.jit(lecture)())

    rosenbrock = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    x0 = jnp.array([-1.2, 1.0])
    res = jax.jit(lambda x: jaxls.wolfe(rosenbrock, x, -jax.grad(rosenbrock)(x)))(x0)
    assert res.step.dtype == jnp.float64 and int(res.status) == 0, res
    golden = jaxls.golden_section(lambda t: (t - 2.0) ** 2, 0.0, 5.0, tol=1e-9)
    assert golden.x.dtype == jnp.float64 and abs(float(golden.x) - 2.0) <= 1e-9, golden
    assert int(golden.status) == 0, golden
    opt = optax.lbfgs(linesearch=jaxls.optax.scale_by_line_search(jaxls.wolfe))
    out = jax.jit(lambda x: jaxls.optax.minimize(rosenbrock, x, opt, grad_tol=1e-8))(x0)
    assert int(out.status) == 0 and out.params.dtype == jnp.float64, out
    np.testing.assert_allclose(out.params, [1.0, 1.0], atol=1e-7)
    print("OK")
    """
)


@pytest.mark.first  # a subprocess (tests/conftest.py)
def test_x64_enabled_for_the_whole_program():
    root = pathlib.Path(__file__).parent.parent
    env = {**os.environ, "JAX_ENABLE_X64": "1", "PYTHONPATH": str(root)}
    env.pop("XLA_FLAGS", None)  # XLA's default options, as users run (not the suite's)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), done.stderr[-3000:]
