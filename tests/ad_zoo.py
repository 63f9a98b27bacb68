"""Functions to differentiate: the lecture's examples and what users write every day.

Each case is ``(name, f, args)``: ``f(*args)`` is evaluated at points away from kinks.
The data are made when `cases` is called, in the dtype asked for (float32 by default, as
JAX's default configuration gives; float64 inside `jax.enable_x64`), never at import.
Shared by tests/test_ad.py and tests/test_x64_global.py; `fast_jit` by every AD test file.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
"""XLA options for the AD tests' jitted functions (and the derivative tests of
tests/test_implicit_*.py, which compare with closed forms and finite differences, never
with an evaluation count): LLVM without its optimisation passes and XLA's classic CPU
emitters. The AD tests spend their time compiling, not running; these
options compile their functions 2 to 3 times faster. Neither enables fast math, and jaxls's
results and the jax oracle's are compiled together, with the same options."""


def fast_jit(fun, **kwargs):
    """`jax.jit` with `FAST_COMPILE` (for the AD tests: ``tests/test_ad*.py``)."""
    return jax.jit(fun, compiler_options=FAST_COMPILE, **kwargs)


class Case(NamedTuple):
    name: str
    f: object
    args: tuple
    scalar: bool = True  # real scalar output (grad, hessian, hvp apply)


def _rng(seed=0):
    return np.random.default_rng(seed)


def lecture(w1, w2):
    """The lecture's worked example: L = w2 log w1 + sqrt(w2 log w1)."""
    return w2 * jnp.log(w1) + jnp.sqrt(w2 * jnp.log(w1))


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def logistic_loss(w, X, y):
    z = X @ w
    return jnp.mean(jnp.logaddexp(0.0, -y * z)) + 1e-2 * jnp.sum(w**2)


def softmax_xent(W, X, labels):
    logits = X @ W
    logp = logits - jax.nn.logsumexp(logits, axis=1, keepdims=True)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def mlp(params, X, labels):
    h = X
    for k, layer in enumerate(params):
        h = h @ layer["w"] + layer["b"][None, :]
        if k < len(params) - 1:
            h = jax.nn.relu(h) if k % 2 == 0 else jnp.tanh(h)
    return jnp.mean(
        jax.nn.logsumexp(h, axis=1) - jnp.take_along_axis(h, labels[:, None], axis=1)[:, 0]
    )


def logdet(A):
    return jnp.linalg.slogdet(A)[1]


def solve_inv(A, b):
    return jnp.sum(jnp.linalg.solve(A, b) ** 2) + jnp.trace(jnp.linalg.inv(A))


def cholesky_logdet(A):
    S = A @ A.T + A.shape[0] * jnp.eye(A.shape[0], dtype=A.dtype)
    return 2.0 * jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(S))))


def rnn(params, xs):
    W, U = params

    def step(h, x):
        h = jnp.tanh(W @ h + U @ x)
        return h, jnp.sum(h**2)

    h, ys = lax.scan(step, jnp.zeros(W.shape[0], W.dtype), xs)
    return jnp.sum(h) + jnp.sum(ys)


def kinks(x):
    """``where``, ``maximum``, ``abs``, ``clip``, evaluated away from their kinks."""
    return jnp.sum(
        jnp.where(x > 0.0, x**2, -x) + jnp.maximum(x, 0.3) + jnp.abs(x) + jnp.clip(x, -0.5, 0.5)
    )


def indexing(x):
    """Gathers, scatter-add, dynamic slices, cumsum, pad, concatenate, sort-free."""
    idx = jnp.array([0, 2, 2, 5])
    y = x.at[idx].add(x[1:5] * 2.0)
    z = lax.dynamic_slice(jnp.cumsum(y), (1,), (4,))
    w = jnp.pad(z, (1, 2)) + jnp.concatenate([z, x[:3]])
    u = lax.dynamic_update_slice(x, w[:3] ** 2, (2,))
    return jnp.sum(w**2) + jnp.max(u) * jnp.min(x) + jnp.sum(x[::2] * x[1::2])


def trig(x):
    return jnp.sum(
        jnp.sin(x) * jnp.cos(x)
        + jnp.tan(x / 4)
        + jnp.arctan(x)
        + jnp.sinh(x / 2)
        + jnp.cosh(x / 3)
        + jnp.exp(-(x**2))
        + jnp.log1p(x**2)
        + jax.nn.sigmoid(x)
        + jax.scipy.special.erf(x)
        + jax.lax.rsqrt(1.0 + x**2)
        + x**3
        + jnp.abs(x) ** 2.5
        + jax.nn.softplus(x)
    )


def pytree_out(p):
    """A pytree in, a pytree out (not a scalar)."""
    return {"a": p["w"] * jnp.sum(p["b"]), "b": (jnp.sin(p["w"]), p["b"] ** 2)}


@jax.custom_vjp
def clipped_identity(x):
    return x


clipped_identity.defvjp(lambda x: (x, None), lambda _, ct: (jnp.clip(ct, -1.0, 1.0),))


def custom_vjp_user(x):
    return jnp.sum(clipped_identity(x) * x)


def nested_jit(x):
    inner = jax.jit(lambda y: jnp.sin(y) * y)
    return jnp.sum(inner(x) + jax.jit(inner)(2.0 * x))


def cond_fn(x):
    return lax.cond(jnp.sum(x) > 0, lambda y: jnp.sum(jnp.sin(y)), lambda y: jnp.sum(y**2), x)


def checkpointed(x):
    g = jax.checkpoint(lambda y: jnp.sin(jnp.sin(y)) * y)
    return jnp.sum(g(g(x)))


NAMES = (
    "lecture", "rosenbrock", "logistic", "softmax_xent", "mlp", "logdet", "solve_inv",
    "cholesky", "rnn", "kinks", "indexing", "trig", "pytree_out", "nested_jit", "cond",
    "checkpoint",
)  # fmt: skip
"""The names of `cases`, in order, known without making data (for test ids)."""

NOT_SCALAR = frozenset({"pytree_out"})
"""Cases whose output is not a real scalar (no grad, hessian, hvp)."""

LAPACK = frozenset({"logdet", "solve_inv", "cholesky"})
"""Cases that call LAPACK-backed linear algebra (LU, Cholesky), which has no bfloat16 or
float16 kernels on CPU (`NotImplementedError: Unsupported dtype bfloat16`), in jax too."""


def cases(dtype=jnp.float32) -> list[Case]:
    # The data are made in NumPy, in ``dtype``, and put on the device: the values JAX's
    # eager operations gave (each draw rounded once; exact sums, signs and halvings),
    # without compiling an operation for each shape.
    r, dtype = _rng(0), np.dtype(dtype)
    n = lambda *shape: r.normal(size=shape).astype(dtype)
    put = jax.device_put
    a = lambda *shape: put(n(*shape))
    X = a(20, 5)
    y = put(np.sign(n(20)))
    labels = jnp.asarray(r.integers(0, 3, size=20))
    spd = put(n(4, 4) + 4 * np.eye(4, dtype=dtype))
    mlp_params = [  # divided by 3 on the device, as before: NumPy's differs by an ulp
        {"w": put(n(5, 8) / 2), "b": put(n(8) / 4)},
        {"w": a(8, 8) / 3, "b": put(n(8) / 4)},
        {"w": a(8, 3) / 3, "b": put(n(3) / 4)},
    ]
    return [
        Case("lecture", lecture, put((np.asarray(2.0, dtype), np.asarray(5.0, dtype)))),
        Case("rosenbrock", rosenbrock, (a(6),)),
        Case("logistic", lambda w: logistic_loss(w, X, y), (a(5),)),
        Case("softmax_xent", lambda W: softmax_xent(W, X, labels), (a(5, 3),)),
        Case("mlp", lambda p: mlp(p, X, labels), (mlp_params,)),
        Case("logdet", logdet, (spd,)),
        Case("solve_inv", solve_inv, (spd, a(4))),
        Case("cholesky", cholesky_logdet, (a(4, 4),)),
        Case("rnn", rnn, (put((n(4, 4) / 2, n(4, 3) / 2)), a(6, 3))),
        Case("kinks", kinks, (put(np.asarray([-1.3, -0.7, 0.2, 0.45, 0.9, 1.6], dtype)),)),
        Case("indexing", indexing, (a(8),)),
        Case("trig", trig, (put(r.uniform(0.1, 1.5, size=7).astype(dtype)),)),
        Case("pytree_out", pytree_out, ({"w": a(3), "b": a(2)},), scalar=False),
        Case("nested_jit", nested_jit, (a(4),)),
        Case("cond", cond_fn, (put(n(3) + 1.0),)),
        Case("checkpoint", checkpointed, (a(4),)),
    ]


def case(name: str, dtype=jnp.float32) -> Case:
    """The case called ``name``, with data of ``dtype``."""
    return cases(dtype)[NAMES.index(name)]


def custom_vjp_case(dtype=jnp.float32) -> Case:
    """A `jax.custom_vjp` function (its author's ``bwd`` clips the cotangent)."""
    return Case("custom_vjp", custom_vjp_user, (jnp.asarray([0.3, -2.0, 1.5], dtype),))
