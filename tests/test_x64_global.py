"""x64 turned on for the whole program (``JAX_ENABLE_X64=1``), with warnings as errors.

The suite runs in JAX's default configuration (x64 off) and enables float64 per test
(tests/conftest.py); users who turn x64 on globally get Python floats as float64 everywhere,
including at import time. One subprocess runs the checks below in a fresh interpreter.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

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

    for case in ad_zoo.cases(jnp.float64):
        args = case.args
        close(jaxls.ad.jvp(case.f, args, args), jax.jvp(case.f, args, args))
        if case.scalar:
            close(jaxls.ad.grad(case.f)(*args), jax.grad(case.f)(*args))
        else:
            close(jaxls.ad.jacrev(case.f)(*args), jax.jacrev(case.f)(*args))
    # Python floats are float64 here: every rule must see that dtype.
    close(jaxls.ad.grad(ad_zoo.lecture, argnums=(0, 1))(2.0, 5.0),
          jax.grad(ad_zoo.lecture, argnums=(0, 1))(2.0, 5.0))
    g = lambda x: jnp.sin(x) * x
    close(jaxls.ad.hessian(g)(2.0), jax.hessian(g)(2.0))

    rosenbrock = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    x0 = jnp.array([-1.2, 1.0])
    res = jaxls.wolfe(rosenbrock, x0, -jax.grad(rosenbrock)(x0))
    assert res.step.dtype == jnp.float64 and int(res.status) == 0, res
    golden = jaxls.golden_section(lambda t: (t - 2.0) ** 2, 0.0, 5.0, tol=1e-9)
    assert golden.x.dtype == jnp.float64 and abs(float(golden.x) - 2.0) <= 1e-9, golden
    assert int(golden.status) == 0, golden
    opt = optax.lbfgs(linesearch=jaxls.optax.scale_by_line_search(jaxls.wolfe))
    out = jax.jit(lambda x: jaxls.optax.minimize(rosenbrock, x, opt, tol=1e-8))(x0)
    assert int(out.status) == 0 and out.params.dtype == jnp.float64, out
    np.testing.assert_allclose(out.params, [1.0, 1.0], atol=1e-7)
    print("OK")
    """
)


def test_x64_enabled_for_the_whole_program():
    root = pathlib.Path(__file__).parent.parent
    env = {**os.environ, "JAX_ENABLE_X64": "1", "PYTHONPATH": str(root)}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), done.stderr[-3000:]
