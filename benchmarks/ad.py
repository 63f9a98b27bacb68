"""Automatic differentiation: jaxls.ad against jax's own transforms, in one run.

    python3 benchmarks/ad.py            # everything (about four minutes on 2 cores)
    python3 benchmarks/ad.py --quick    # small sizes, under a minute

Part 1, cost of the transforms. For each problem and transform, jaxls's (``jaxls.ad.grad``,
``jacfwd``, ``jacrev``, ``hvp``) against jax's (``jax.grad``, ``jax.jacfwd``,
``jax.jacrev``, and for the Hessian-vector product ``jax.jvp(jax.grad(f), (x,), (v,))[1]``),
both forward over reverse:

* run time: the jitted function, compiled and called once or twice (warm-up), then called
  ``--repeats`` times, jaxls and jax alternately (so that a slow spell of this shared machine
  hits both), each call timed to ``block_until_ready``; the median of each;
* compile time: ``jax.jit(fresh).lower(*args).compile()`` timed as a whole (tracing, which
  for jaxls includes its interpretation of the jaxpr, lowering and XLA's compilation), a
  new function object each time so that no cache helps; the median of ``--compiles``.

The data are arguments of the jitted function, not constants folded into it. The table also
counts the equations of each jitted function's jaxpr (sub-jaxprs included) and checks that
jaxls and jax agree (largest difference over the largest value). ``OPENBLAS_NUM_THREADS``
is 1 unless set (see below). Problems (float64 unless said):

* Rosenbrock, ``sum 100 (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2``, n = 10^6: grad, jacrev
  (one VJP: a scalar output), hvp; jacfwd (n JVPs, vmapped) at n = 1000 instead.
* an MLP, 784 -> 512 -> 512 -> 512 -> 10, tanh, batch 256, softmax cross-entropy, float32:
  grad, jacrev and hvp with respect to the parameter pytree (8 leaves); jacfwd with respect
  to the last layer's bias (10 JVPs, the other parameters fixed).
* an RNN in ``lax.scan``: ``h = tanh(h W + x_t U + b)``, hidden 128, input 32, batch 32,
  100 steps, squared error of ``h_T V`` against a target, float32: grad, jacrev, hvp with
  respect to ``(W, U, b, V)``.
* a CNN, ResNet-style: a 3x3 stem convolution (stride 2, SAME), 3x3 max pooling (stride
  2), a residual block of a 3x3 convolution and a depthwise 3x3 convolution, global
  average pooling and a dense softmax classifier; 32x32x3 images, 64 channels, batch 64,
  float32: grad and hvp with respect to the parameters.
* a 2-layer pre-norm causal transformer (4 heads, width 128, GELU MLP, layer norm, dropout
  on the attention weights through ``random_bits``), 64 tokens, batch 16, vocabulary 256,
  next-token cross-entropy, float32: grad and hvp with respect to the parameters.
* ``jnp.linalg.slogdet(A)[1]`` of a 200 x 200 matrix (well conditioned): grad, jacrev, hvp;
  jacfwd at 50 x 50 (2,500 JVPs: at 200 x 200 jacfwd's 40,000 vmapped JVPs would hold
  40,000 tangent matrices, 12.8 GB in float64).

Part 2, forward versus reverse mode (the lecture's figure): ``jacfwd`` and ``jacrev`` of
``f(x) = A x``, n = 100 inputs, m outputs from 1 to 30,000 (float32): forward mode costs n
JVPs whatever m, reverse mode m VJPs; they cross near m = n. The table is printed and the
figure saved to ``benchmarks/ad_fwd_vs_rev.png`` (log-log, jaxls and jax).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

# jaxlib's LAPACK kernels (lu, triangular_solve: the log-det rows) call scipy's OpenBLAS,
# whose own threads, on a shared 2-core machine, fight XLA's thread pool: the same jitted
# log-det hvp then takes 2 ms or 10-160 ms from one run to the next, for jaxls and jax alike.
# One BLAS thread (set before numpy and jax load OpenBLAS) keeps that noise out of the ratios.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax

# float64: jaxls.ad is compared with jax at equal precision, as the figures in
# benchmarks/README.md were measured; the test suite also checks float32 and bfloat16.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np

import jaxls.ad

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks.machine, run as a script
from benchmarks.machine import draw_jacobian_times


# ---------------------------------------------------------------------------------------
# Timing


def _block(out):
    return jax.block_until_ready(out)


def compile_time(make: Callable[[], Callable], args: tuple, compiles: int) -> float:
    """Median seconds of ``jax.jit(make()).lower(*args).compile()``, a fresh function each
    time (``make`` returns a new closure), so neither jax's tracing cache nor the executable
    cache can answer."""
    times = []
    for _ in range(compiles):
        fun = make()
        start = time.perf_counter()
        jax.jit(fun).lower(*args).compile()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_times(funs: list[Callable], args: tuple, repeats: int, budget: float):
    """Median seconds per call of each jitted function, and the outputs of the first call.

    Each function is compiled and called once (warm-up; twice if that is quick), then the
    functions are called alternately: ``repeats`` rounds at most, at least 3, and no more
    once ``budget`` seconds have been spent timing."""
    jitted = [jax.jit(f) for f in funs]
    outs = []
    for f in jitted:
        start = time.perf_counter()
        outs.append(_block(f(*args)))  # compile and warm up
        if time.perf_counter() - start < 2.0:
            _block(f(*args))
    times: list[list[float]] = [[] for _ in jitted]
    spent, rounds = 0.0, 0
    while rounds < repeats and (rounds < 3 or spent < budget):
        for f, ts in zip(jitted, times, strict=True):
            start = time.perf_counter()
            _block(f(*args))
            ts.append(time.perf_counter() - start)
            spent += ts[-1]
        rounds += 1
    return [statistics.median(ts) for ts in times], outs


def count_eqns(jaxpr) -> int:
    """Equations of a jaxpr, those of its sub-jaxprs (scan bodies, calls, ...) included."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0
    for eqn in jaxpr.eqns:
        total += 1
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    total += count_eqns(sub)
    return total


def max_rel_error(a, b) -> float:
    """``max |a - b| / max |b|`` over all leaves (a check that both compute the same)."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    pairs = zip(la, lb, strict=True)
    num = max(float(jnp.max(jnp.abs(jnp.asarray(x) - jnp.asarray(y)))) for x, y in pairs)
    den = max(float(jnp.max(jnp.abs(jnp.asarray(y)))) for y in lb)
    return num / max(den, 1e-300)


# ---------------------------------------------------------------------------------------
# Problems


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def mlp_init(key, sizes, dtype=jnp.float32):
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        key, k1, k2 = jax.random.split(key, 3)
        w = jax.random.normal(k1, (fan_in, fan_out), dtype) / np.sqrt(fan_in).astype(dtype)
        b = 0.1 * jax.random.normal(k2, (fan_out,), dtype)
        params.append((w, b))
    return params


def mlp_loss(params, x, y):
    h = x
    for w, b in params[:-1]:
        h = jnp.tanh(h @ w + b)
    w, b = params[-1]
    logits = h @ w + b
    return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * y, axis=-1))


def rnn_loss(params, xs, target):
    w, u, b, v = params
    h0 = jnp.zeros((xs.shape[1], w.shape[0]), w.dtype)

    def step(h, x):
        return jnp.tanh(h @ w + x @ u + b), None

    h, _ = jax.lax.scan(step, h0, xs)
    return 0.5 * jnp.mean((h @ v - target) ** 2)


def cnn_init(key, channels, classes, dtype=jnp.float32):
    """A ResNet-style stack: a stem convolution, a residual block of two 3x3 convolutions
    (the second depthwise), max pooling, average pooling and a dense classifier (HWIO)."""
    k = jax.random.split(key, 4)
    he = lambda key, shape: (
        jax.random.normal(key, shape) * np.sqrt(2 / np.prod(shape[:3]))
    ).astype(dtype)
    return {
        "stem": he(k[0], (3, 3, 3, channels)),
        "conv1": he(k[1], (3, 3, channels, channels)),
        "conv2": he(k[2], (3, 3, 1, channels)),  # depthwise: one group per channel
        "dense": he(k[3], (1, 1, channels, classes))[0, 0],
    }


def cnn_loss(params, images, labels):
    dn = ("NHWC", "HWIO", "NHWC")
    conv = lambda x, w, stride=1, groups=1: jax.lax.conv_general_dilated(
        x, w, (stride, stride), "SAME", dimension_numbers=dn, feature_group_count=groups
    )
    h = jax.nn.relu(conv(images, params["stem"], stride=2))
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")
    r = jax.nn.relu(conv(h, params["conv1"]))
    h = jax.nn.relu(h + conv(r, params["conv2"], groups=h.shape[-1]))
    pooled = jnp.mean(h, axis=(1, 2))
    logits = pooled @ params["dense"]
    return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * labels, axis=-1))


def transformer_init(key, layers, width, vocab):
    keys = iter(jax.random.split(key, 6 * layers + 2))
    normal = lambda *shape: jax.random.normal(next(keys), shape, jnp.float32) / np.sqrt(shape[0])
    blocks = [
        {
            "qkv": normal(width, 3 * width), "out": normal(width, width),
            "up": normal(width, 4 * width), "down": normal(4 * width, width),
            "norm1": jnp.ones(width, jnp.float32), "norm2": jnp.ones(width, jnp.float32),
        }
        for _ in range(layers)
    ]  # fmt: skip
    return {"embed": normal(vocab, width), "blocks": blocks, "head": normal(width, vocab)}


def transformer_loss(params, tokens, key, heads=4, rate=0.1):
    """Next-token cross-entropy of a pre-norm causal transformer with dropout on the
    attention weights."""
    x = params["embed"][tokens[:, :-1]]
    batch, length, width = x.shape
    causal = jnp.tril(jnp.ones((length, length), bool))

    def norm(x, gain):
        mean = jnp.mean(x, -1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(jnp.var(x, -1, keepdims=True) + 1e-5) * gain

    for block, k in zip(
        params["blocks"], jax.random.split(key, len(params["blocks"])), strict=True
    ):
        q, kk, v = jnp.split(norm(x, block["norm1"]) @ block["qkv"], 3, axis=-1)
        q, kk, v = (a.reshape(batch, length, heads, width // heads) for a in (q, kk, v))
        scores = jnp.einsum("bthd,bshd->bhts", q, kk) / np.sqrt(width // heads)
        weights = jax.nn.softmax(jnp.where(causal, scores, -1e9), axis=-1)
        weights = jnp.where(
            jax.random.bernoulli(k, 1 - rate, weights.shape), weights / (1 - rate), 0
        )
        x = (
            x
            + jnp.einsum("bhts,bshd->bthd", weights, v).reshape(batch, length, width) @ block["out"]
        )
        x = x + jax.nn.gelu(norm(x, block["norm2"]) @ block["up"]) @ block["down"]
    logits = x @ params["head"]
    targets = jax.nn.one_hot(tokens[:, 1:], logits.shape[-1])
    return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * targets, axis=-1))


def logdet(a):
    return jnp.linalg.slogdet(a)[1]


class Case(NamedTuple):
    """One row: ``jaxls(*args)`` against ``jax_(*args)``; ``make_*`` build fresh closures."""

    problem: str
    transform: str
    size: str
    make_jaxls: Callable[[], Callable]
    make_jax: Callable[[], Callable]
    args: tuple
    target: float  # the run-time ratio aimed at (1.05 or 1.10)

    @property
    def make_fns(self):
        return (self.make_jaxls, self.make_jax)


def _tree_normal(key, tree):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        treedef, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)]
    )


def scalar_cases(name, loss, diff, data, size, target, *, transforms, jacfwd_arg=None):
    """Cases for a scalar ``loss(diff, *data)``: grad, jacrev, hvp with respect to ``diff``
    (``jacfwd_arg``: ``(size, loss_b, b, data_b)`` for jacfwd on another argument)."""
    v = _tree_normal(jax.random.PRNGKey(7), diff)
    cases = []

    def bound(f_of_args):
        return lambda: lambda *a: f_of_args(*a)

    if "grad" in transforms:
        cases.append(
            Case(
                name,
                "grad",
                size,
                bound(lambda p, *d: jaxls.ad.grad(loss)(p, *d)),
                bound(lambda p, *d: jax.grad(loss)(p, *d)),
                (diff, *data),
                target,
            )
        )
    if "jacrev" in transforms:
        cases.append(
            Case(
                name,
                "jacrev",
                size,
                bound(lambda p, *d: jaxls.ad.jacrev(loss)(p, *d)),
                bound(lambda p, *d: jax.jacrev(loss)(p, *d)),
                (diff, *data),
                target,
            )
        )
    if "hvp" in transforms:
        cases.append(
            Case(
                name,
                "hvp",
                size,
                bound(lambda p, t, *d: jaxls.ad.hvp(lambda q: loss(q, *d), p, t)),
                bound(lambda p, t, *d: jax.jvp(lambda q: jax.grad(loss)(q, *d), (p,), (t,))[1]),
                (diff, v, *data),
                target,
            )
        )
    if jacfwd_arg is not None:
        size_b, loss_b, b, data_b = jacfwd_arg
        cases.append(
            Case(
                name,
                "jacfwd",
                size_b,
                bound(lambda q, *d: jaxls.ad.jacfwd(loss_b)(q, *d)),
                bound(lambda q, *d: jax.jacfwd(loss_b)(q, *d)),
                (b, *data_b),
                target,
            )
        )
    return cases


def build_cases(quick: bool) -> list[Case]:
    key = jax.random.PRNGKey(0)
    k = jax.random.split(key, 8)
    cases = []

    # Rosenbrock (float64).
    n = 10_000 if quick else 1_000_000
    n_fwd = 100 if quick else 1000
    x = jax.random.uniform(k[0], (n,), jnp.float64, -1.5, 1.5)
    x_fwd = x[:n_fwd]
    cases += scalar_cases(
        "Rosenbrock",
        lambda x: rosenbrock(x),
        x,
        (),
        f"n = {n:,}",
        1.05,
        transforms=("grad", "jacrev", "hvp"),
        jacfwd_arg=(f"n = {n_fwd:,}", lambda x: rosenbrock(x), x_fwd, ()),
    )

    # MLP (float32).
    sizes = (784, 64, 64, 64, 10) if quick else (784, 512, 512, 512, 10)
    batch = 32 if quick else 256
    params = mlp_init(k[1], sizes)
    xb = jax.random.normal(k[2], (batch, sizes[0]), jnp.float32)
    yb = jax.nn.one_hot(jax.random.randint(k[3], (batch,), 0, sizes[-1]), sizes[-1])
    yb = yb.astype(jnp.float32)
    last_b = params[-1][1]

    def loss_last_bias(b, params, x, y):
        return mlp_loss([*params[:-1], (params[-1][0], b)], x, y)

    hidden = "x".join(str(s) for s in sizes[1:-1])
    cases += scalar_cases(
        "MLP",
        mlp_loss,
        params,
        (xb, yb),
        f"{hidden}, batch {batch}",
        1.05,
        transforms=("grad", "jacrev", "hvp"),
        jacfwd_arg=(f"last bias ({sizes[-1]})", loss_last_bias, last_b, (params, xb, yb)),
    )

    # RNN in lax.scan (float32).
    hid, inp, rbatch, steps = (32, 8, 8, 20) if quick else (128, 32, 32, 100)
    w = jax.random.normal(k[4], (hid, hid), jnp.float32) / np.sqrt(hid).astype(np.float32)
    u = jax.random.normal(k[5], (inp, hid), jnp.float32) / np.sqrt(inp).astype(np.float32)
    b = jnp.zeros((hid,), jnp.float32)
    v = jax.random.normal(k[6], (hid, 1), jnp.float32) / np.sqrt(hid).astype(np.float32)
    xs = jax.random.normal(k[7], (steps, rbatch, inp), jnp.float32)
    target = jnp.ones((rbatch, 1), jnp.float32)
    cases += scalar_cases(
        "RNN (scan)",
        rnn_loss,
        (w, u, b, v),
        (xs, target),
        f"hidden {hid}, {steps} steps, batch {rbatch}",
        1.10,
        transforms=("grad", "jacrev", "hvp"),
    )

    # CNN (float32): convolutions, max pooling, a residual block.
    side, cbatch, channels = (16, 8, 16) if quick else (32, 64, 64)
    cparams = cnn_init(jax.random.PRNGKey(12), channels, 10)
    images = jax.random.normal(jax.random.PRNGKey(13), (cbatch, side, side, 3), jnp.float32)
    labels = jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(14), (cbatch,), 0, 10), 10)
    cases += scalar_cases(
        "CNN",
        cnn_loss,
        cparams,
        (images, labels.astype(jnp.float32)),
        f"{side}x{side}x3, {channels} channels, batch {cbatch}",
        1.05,
        transforms=("grad", "hvp"),
    )

    # A 2-layer transformer (float32) with dropout.
    width, tbatch, length, vocab = (32, 4, 16, 50) if quick else (128, 16, 64, 256)
    tparams = transformer_init(jax.random.PRNGKey(15), 2, width, vocab)
    tokens = jax.random.randint(jax.random.PRNGKey(16), (tbatch, length + 1), 0, vocab)
    cases += scalar_cases(
        "transformer",
        transformer_loss,
        tparams,
        (tokens, jax.random.key(17)),
        f"2 layers, width {width}, {length} tokens, batch {tbatch}",
        1.05,
        transforms=("grad", "hvp"),
    )

    # log-det (float64).
    d = 40 if quick else 200
    d_fwd = 10 if quick else 50
    a = jax.random.normal(jax.random.PRNGKey(11), (d, d), jnp.float64) / np.sqrt(d)
    a = a + 2.0 * jnp.eye(d)
    cases += scalar_cases(
        "log-det",
        logdet,
        a,
        (),
        f"{d} x {d}",
        1.10,
        transforms=("grad", "jacrev", "hvp"),
        jacfwd_arg=(f"{d_fwd} x {d_fwd}", logdet, a[:d_fwd, :d_fwd], ()),
    )
    return cases


# ---------------------------------------------------------------------------------------
# Part 1


class Row(NamedTuple):
    case: Case
    run: tuple[float, float]  # jaxls, jax (seconds)
    comp: tuple[float, float]
    eqns: tuple[int, int]  # jaxpr equations of the jitted function, sub-jaxprs included
    error: float


COMPILE_TARGET = 1.5


def part1(cases: list[Case], repeats: int, compiles: int, budget: float) -> list[Row]:
    rows = []
    for case in cases:
        eqns = tuple(count_eqns(jax.make_jaxpr(mk())(*case.args)) for mk in case.make_fns)
        run, (out_a, out_b) = run_times([mk() for mk in case.make_fns], case.args, repeats, budget)
        comp = tuple(compile_time(mk, case.args, compiles) for mk in case.make_fns)
        rows.append(Row(case, tuple(run), comp, eqns, max_rel_error(out_a, out_b)))
        print(
            f"  {case.problem} {case.transform}: run {run[0] * 1e3:.3g} / {run[1] * 1e3:.3g} ms,"
            f" compile {comp[0]:.3g} / {comp[1]:.3g} s",
            file=sys.stderr,
            flush=True,
        )
    return rows


def _ms(t: float) -> str:
    return f"{t * 1e3:.3g}" if t < 10 else f"{t * 1e3:,.0f}"


def print_part1(rows: list[Row]) -> None:
    print(
        "| problem | size | transform | run jaxls (ms) | run jax (ms) | ratio | target "
        "| compile jaxls (s) | compile jax (s) | ratio | eqns jaxls / jax | max rel. diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r.case
        run_ratio = r.run[0] / r.run[1]
        comp_ratio = r.comp[0] / r.comp[1]
        run_ok = "met" if run_ratio <= c.target else "**missed**"
        comp_ok = "" if comp_ratio <= COMPILE_TARGET else " **missed**"
        print(
            f"| {c.problem} | {c.size} | {c.transform} | {_ms(r.run[0])} | {_ms(r.run[1])} "
            f"| {run_ratio:.2f} | <= {c.target:.2f} {run_ok} | {r.comp[0]:.2f} | "
            f"{r.comp[1]:.2f} | {comp_ratio:.2f}{comp_ok} | {r.eqns[0]} / {r.eqns[1]} "
            f"| {r.error:.0e} |"
        )
    print()
    print(
        f"targets: run ratio <= 1.05 (Rosenbrock, MLP) or 1.10 (RNN, log-det); compile ratio "
        f"<= {COMPILE_TARGET}"
    )


# ---------------------------------------------------------------------------------------
# Part 2: forward versus reverse mode on f(x) = A x


def _ax(x, a):
    return a @ x


MODES = {
    "jacfwd": (lambda x, a: jaxls.ad.jacfwd(_ax)(x, a), lambda x, a: jax.jacfwd(_ax)(x, a)),
    "jacrev": (lambda x, a: jaxls.ad.jacrev(_ax)(x, a), lambda x, a: jax.jacrev(_ax)(x, a)),
}


def part2(n: int, ms: list[int], repeats: int, budget: float):
    """Rows ``(m, jaxls jacfwd, jaxls jacrev, jax jacfwd, jax jacrev)`` in seconds: each
    mode timed on its own, jaxls and jax alternately (a reverse-mode Jacobian with m =
    30,000 builds a 3.6 GB identity, which would disturb whatever runs after it)."""
    rows = []
    x = jnp.linspace(-1.0, 1.0, n, dtype=jnp.float32)
    for m in ms:
        a = jax.random.normal(jax.random.PRNGKey(m), (m, n), jnp.float32)
        (af, bf), _ = run_times(list(MODES["jacfwd"]), (x, a), repeats, budget)
        (ar, br), _ = run_times(list(MODES["jacrev"]), (x, a), repeats, budget)
        rows.append((m, af, ar, bf, br))
        print(
            f"  m = {m}: jacfwd {af * 1e3:.3g} / {bf * 1e3:.3g} ms, "
            f"jacrev {ar * 1e3:.3g} / {br * 1e3:.3g} ms",
            file=sys.stderr,
            flush=True,
        )
        del a
    return rows


def crossing(ms, fwd, rev):
    """The m past which reverse mode stays slower than forward mode, interpolated in
    log-log between the two sizes around the last sign change of ``log(rev / fwd)``."""
    r = np.log(np.asarray(rev) / np.asarray(fwd))
    if r[-1] <= 0:
        return None
    below = np.nonzero(r <= 0)[0]
    if len(below) == 0:
        return ms[0]
    i = below[-1]
    lm = np.log(ms[i]) + (np.log(ms[i + 1]) - np.log(ms[i])) * (-r[i]) / (r[i + 1] - r[i])
    return float(np.exp(lm))


def print_part2(rows, n):
    print(
        "| m | jaxls jacfwd (ms) | jaxls jacrev (ms) | jax jacfwd (ms) | jax jacrev (ms) "
        "| jacfwd jaxls/jax | jacrev jaxls/jax | rev/fwd jaxls | rev/fwd jax |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for m, af, ar, bf, br in rows:
        print(
            f"| {m:,} | {_ms(af)} | {_ms(ar)} | {_ms(bf)} | {_ms(br)} | {af / bf:.2f} "
            f"| {ar / br:.2f} | {ar / af:.2g} | {br / bf:.2g} |"
        )
    print()
    ms = [r[0] for r in rows]
    for label, i, j in (("jaxls", 1, 2), ("jax", 3, 4)):
        cross = crossing(ms, [r[i] for r in rows], [r[j] for r in rows])
        where = "never" if cross is None else f"m = {cross:,.0f}"
        print(f"{label}: reverse mode slower than forward mode from {where} on (n = {n})")


def plot_part2(rows, n, path):
    try:
        import matplotlib
    except ImportError:
        print("(matplotlib missing, no figure: pip install matplotlib)", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.array([r[0] for r in rows])
    t = np.array([r[1:] for r in rows]) * 1e3
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    draw_jacobian_times(ax, m, t, n, f"Forward vs reverse mode, n = {n} inputs")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"figure saved to {os.path.relpath(path)}", file=sys.stderr)


# ---------------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (max)")
    parser.add_argument("--compiles", type=int, default=None, help="compiles timed per cell")
    parser.add_argument(
        "--problem", action="append", default=None, help="only this problem of part 1 (repeatable)"
    )
    parser.add_argument("--skip-part1", action="store_true")
    parser.add_argument("--skip-part2", action="store_true")
    parser.add_argument(
        "--figure",
        default=None,
        help="figure path (default benchmarks/ad_fwd_vs_rev.png; with --quick, a temporary file)",
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # tables and progress (stderr) in order
    repeats = args.repeats or (10 if args.quick else 200)
    compiles = args.compiles or (1 if args.quick else 5)
    budget = 0.3 if args.quick else 5.0

    command = "python3 benchmarks/ad.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    print(f"command: {command}")
    print(
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"jax {jax.__version__}, {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
        f"{os.getloadavg()[0]:.1f}; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}"
    )
    print(
        f"run: median of up to {repeats} jitted calls after warm-up (jaxls and jax "
        f"alternately); compile: median of {compiles} x jax.jit(fresh).lower(*args).compile()"
    )
    print()

    if not args.skip_part1:
        cases = build_cases(args.quick)
        if args.problem:
            unknown = set(args.problem) - {case.problem for case in cases}
            if unknown:
                parser.error(f"--problem: no problem named {sorted(unknown)}")
            cases = [case for case in cases if case.problem in args.problem]
        rows = part1(cases, repeats, compiles, budget)
        print("## Part 1: jaxls.ad / jax (ratio = jaxls / jax)\n")
        print_part1(rows)
        print()

    if not args.skip_part2:
        n = 100
        if args.quick:
            ms = [1, 10, 100, 1000]
        else:
            ms = sorted({int(v) for v in np.round(np.logspace(0, np.log10(30_000), 10))})
        rows2 = part2(n, ms, repeats, budget / 2)
        print(f"## Part 2: forward vs reverse, f(x) = A x, n = {n}, float32\n")
        print_part2(rows2, n)
        figure = args.figure
        if figure is None:
            figure = (
                os.path.join(tempfile.gettempdir(), "ad_fwd_vs_rev_quick.png")
                if args.quick
                else os.path.join(HERE, "ad_fwd_vs_rev.png")
            )
        plot_part2(rows2, n, figure)


if __name__ == "__main__":
    main()
