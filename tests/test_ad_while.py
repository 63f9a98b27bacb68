"""Reverse mode through `lax.while_loop`, bounded by ``max_loop_steps`` (jax refuses it),
the tapes of its iterations stored or recomputed by recursive checkpointing
(``loop_checkpoints``).

Oracles, independent of the code under test: `jax.grad` of the same loop written with a
static trip count (``lax.fori_loop(0, k, ...)``, which jax runs as a ``scan``), and of the
loop unrolled in Python (a Python ``while`` where jax.grad runs it eagerly); for Newton's
iteration, the implicit function theorem. The trip count ``k`` is counted by running the
loop on concrete values. A test with a bound computes jaxls's results and jax's oracles in
one `fast_jit` (compiling dominates the run time); eagerly run the transforms that count
the iterations of a loop without a bound, Python's ``while`` (an oracle) and the tests of
eager calls. What checkpointing saves and what it costs are counted in the traced program:
the bytes of the residuals and of XLA's temporary buffers, and the evaluations of the body.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxls.ad as ad
from tests.ad_zoo import fast_jit


def rtol(dtype) -> float:
    return 2e-4 if jnp.dtype(dtype) == jnp.float32 else 1e-10


def close(actual, expected, tol):
    jax.tree.map(
        lambda a, e: np.testing.assert_allclose(a, e, rtol=tol, atol=tol), actual, expected
    )


def all_nan(tree) -> bool:
    """Every entry of every leaf is NaN (checked in NumPy: an eager `jnp.isnan` compiles per
    shape)."""
    return all(np.all(np.isnan(leaf)) for leaf in jax.device_get(jax.tree.leaves(tree)))


# --- a small zoo of while loops: f(p) = out(while cond(p, c): c = body(p, c)) ---------------


class Loop(NamedTuple):
    name: str
    init: Callable  # init(p) -> carry
    cond: Callable  # cond(p, carry) -> bool
    body: Callable  # body(p, carry) -> carry
    out: Callable  # out(carry) -> real scalar
    point: Callable  # point(dtype) -> p, a pytree of arrays


def _newton_tol(dtype):
    return 1e-5 if jnp.dtype(dtype) == jnp.float32 else 1e-12


def _newton_cond(p, x):
    """``|x^3 + a x - b| > tol (|b| + 1)``: Newton's iteration runs to a tolerance."""
    return jnp.abs(x**3 + p["a"] * x - p["b"]) > _newton_tol(x.dtype) * (jnp.abs(p["b"]) + 1)


def _newton_step(p, x):
    return x - (x**3 + p["a"] * x - p["b"]) / (3 * x**2 + p["a"])


LOOPS = [
    Loop(  # the trip count depends on the differentiated values
        "geometric",
        init=lambda p: p["x"],
        cond=lambda p, x: x < p["limit"],
        body=lambda p, x: p["a"] * x + 0.1 * jnp.sin(x),
        out=lambda x: x**2,
        point=lambda dtype: {
            "a": jnp.asarray(1.3, dtype),
            "x": jnp.asarray(0.7, dtype),
            "limit": jnp.asarray(10.0, dtype),
        },
    ),
    Loop(  # an integer counter, a vector carry, a matrix the body reads
        "counter",
        init=lambda p: (0, p["x"]),
        cond=lambda p, c: c[0] < 4,
        body=lambda p, c: (c[0] + 1, jnp.tanh(p["w"] @ c[1]) + 0.1 * c[1]),
        out=lambda c: jnp.sum(c[1] ** 2),
        point=lambda dtype: {
            "w": jnp.asarray([[0.5, -0.3, 0.2], [0.1, 0.8, -0.4], [-0.6, 0.2, 0.3]], dtype),
            "x": jnp.asarray([0.3, -1.2, 0.7], dtype),
        },
    ),
    Loop(  # the classic: differentiating through an iterative solver
        "newton",
        init=lambda p: p["b"] / (p["a"] + 1),
        cond=_newton_cond,
        body=_newton_step,
        out=lambda x: x,
        point=lambda dtype: {"a": jnp.asarray(2.0, dtype), "b": jnp.asarray(5.0, dtype)},
    ),
]
IDS = [loop.name for loop in LOOPS]


def while_fun(loop: Loop) -> Callable:
    def f(p):
        c = lax.while_loop(
            functools.partial(loop.cond, p), functools.partial(loop.body, p), loop.init(p)
        )
        return loop.out(c)

    return f


def trips(loop: Loop, p) -> int:
    """The trip count, by running the loop on concrete values."""
    c, k = loop.init(p), 0
    while bool(loop.cond(p, c)):
        c, k = loop.body(p, c), k + 1
    return k


def fori_fun(loop: Loop, k: int) -> Callable:
    """Oracle 1: a static trip count (jax runs it as a scan, and differentiates that)."""
    return lambda p: loop.out(lax.fori_loop(0, k, lambda i, c: loop.body(p, c), loop.init(p)))


def unrolled_fun(loop: Loop, k: int) -> Callable:
    """Oracle 2: the loop unrolled in Python."""

    def f(p):
        c = loop.init(p)
        for _ in range(k):
            c = loop.body(p, c)
        return loop.out(c)

    return f


def python_while_fun(loop: Loop) -> Callable:
    """Oracle 2': a Python while loop (jax.grad runs it on concrete values, eagerly)."""

    def f(p):
        c = loop.init(p)
        while bool(loop.cond(p, c)):
            c = loop.body(p, c)
        return loop.out(c)

    return f


# --- gradients against the oracles ----------------------------------------------------------


@pytest.mark.parametrize("slack", [0, 3], ids=["bound=trips", "bound=trips+3"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("loop", LOOPS, ids=IDS)
def test_value_and_grad_match_two_oracles(loop, dtype, slack):
    p = loop.point(dtype)
    k = trips(loop, p)
    assert k >= 2
    f = while_fun(loop)

    @fast_jit  # jaxls's gradient, the loop's own value and the first two oracles
    def results(p):
        ours = ad.value_and_grad(f, max_loop_steps=k + slack)(p)
        return ours, f(p), jax.grad(fori_fun(loop, k))(p), jax.grad(unrolled_fun(loop, k))(p)

    (value, g), own, fori, unrolled = results(p)
    np.testing.assert_allclose(value, own, rtol=rtol(dtype) / 100)  # the loop's own result
    assert value.dtype == dtype and all(x.dtype == dtype for x in jax.tree.leaves(g))
    close(g, fori, rtol(dtype))
    close(g, unrolled, rtol(dtype))
    close(g, jax.grad(python_while_fun(loop))(p), rtol(dtype))  # eager: Python's while


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_newton_iteration_matches_the_implicit_function_theorem(dtype):
    """x(a, b) solves x^3 + a x - b = 0: dx/db = 1/(3x^2 + a), dx/da = -x/(3x^2 + a)."""
    loop = LOOPS[IDS.index("newton")]
    p = loop.point(dtype)
    f = while_fun(loop)
    x, g = jax.device_get(fast_jit(ad.value_and_grad(f, max_loop_steps=50))(p))
    a, b = np.asarray(p["a"]), np.asarray(p["b"])  # the closed forms in NumPy, in dtype
    slope = 3 * x**2 + a
    np.testing.assert_allclose(x**3 + a * x, b, rtol=10 * _newton_tol(dtype))
    tol = 100 * _newton_tol(dtype) if dtype == jnp.float32 else 1e-8
    close(g, {"a": -x / slope, "b": 1 / slope}, tol)


def test_vjp_and_jacrev_of_a_vector_valued_loop():
    loop = LOOPS[IDS.index("counter")]
    p = loop.point(jnp.float32)

    def f(p):
        return lax.while_loop(
            functools.partial(loop.cond, p), functools.partial(loop.body, p), loop.init(p)
        )[1]

    k = trips(loop, p)
    g = lambda p: lax.fori_loop(0, k, lambda i, c: loop.body(p, c), loop.init(p))[1]
    ct = jnp.asarray([1.0, -2.0, 0.5])

    @fast_jit  # jaxls's and jax's in one program
    def results(p, ct):
        out, pull = ad.vjp(f, p, max_loop_steps=k)
        ours = out, pull(ct), ad.jacrev(f, max_loop_steps=k + 1)(p)
        return ours, (f(p), jax.vjp(g, p)[1](ct), jax.jacrev(g)(p))

    (out, cts, jacobian), (own, cts_jax, jacobian_jax) = results(p, ct)
    close(out, own, 1e-6)
    close(cts, cts_jax, rtol(jnp.float32))
    close(jacobian, jacobian_jax, rtol(jnp.float32))


# --- past the bound: NaN gradients, the loop's own value ------------------------------------


@pytest.mark.parametrize("loop", LOOPS, ids=IDS)
def test_a_loop_past_its_bound_has_nan_gradients_and_its_own_value(loop):
    p = loop.point(jnp.float32)
    k = trips(loop, p)
    f = while_fun(loop)
    (value, g), own = fast_jit(lambda p: (ad.value_and_grad(f, max_loop_steps=k - 1)(p), f(p)))(p)
    np.testing.assert_allclose(value, own, rtol=1e-6)  # the loop ran to its end
    # Every input whose derivative passes through the loop gets NaN, never a truncated
    # gradient (the loop's limit, read by its condition only, has a zero derivative).
    diff = {key: v for key, v in g.items() if key != "limit"}
    assert all_nan(diff), g
    if "limit" in g:
        assert float(g["limit"]) == 0.0


def test_past_the_bound_the_hessian_and_jacobian_are_nan_too():
    loop = LOOPS[IDS.index("counter")]
    p = loop.point(jnp.float32)["x"]
    w = loop.point(jnp.float32)["w"]
    f = lambda x: while_fun(loop)({"w": w, "x": x})
    vector = lambda x: jnp.stack([f(x), 2 * f(x)])
    results = fast_jit(
        lambda p: [
            ad.hessian(f, max_loop_steps=3)(p),
            ad.hessian(f, max_loop_steps=3, loop_checkpoints=2)(p),
            ad.hvp(f, p, jnp.ones(3), max_loop_steps=3),
            ad.jacrev(vector, max_loop_steps=3)(p),
        ]
    )(p)
    for result in results:
        assert all_nan(result)


# --- vmap: members that stop at different counts --------------------------------------------


@pytest.mark.parametrize("checkpoints", [None, 2], ids=["stored", "bisection"])
def test_vmap_members_stop_at_different_counts(checkpoints):
    loop = LOOPS[IDS.index("geometric")]
    p0 = loop.point(jnp.float32)
    starts = jnp.asarray([0.7, 2.0, 5.0, 9.5, 12.0], jnp.float32)  # 12.0: no iteration at all
    batch = {**{key: jnp.broadcast_to(v, starts.shape) for key, v in p0.items()}, "x": starts}
    host = jax.device_get(batch)  # (indexing device arrays eagerly compiles)
    members = [jax.tree.map(lambda v, i=i: jax.device_put(v[i]), host) for i in range(starts.size)]
    counts = [trips(loop, m) for m in members]
    assert len(set(counts)) >= 4 and min(counts) == 0
    f = while_fun(loop)
    options = {"loop_checkpoints": checkpoints}
    # A bound between the counts: NaN for the members that run longer, exact for the others.
    bound = sorted(counts)[2]

    @fast_jit  # jaxls's under both bounds, and the oracles (each member's unrolled loop)
    def results(batch, members):
        grads = jax.vmap(ad.grad(f, max_loop_steps=max(counts), **options))(batch)
        short = jax.vmap(ad.value_and_grad(f, max_loop_steps=bound, **options))(batch)
        expected = [
            jax.grad(unrolled_fun(loop, n))(m) for n, m in zip(counts, members, strict=True)
        ]
        return grads, short, jax.vmap(f)(batch), expected

    grads, (values, short), own, expected = jax.device_get(results(batch, members))
    for i in range(len(members)):
        close(jax.tree.map(lambda v, i=i: v[i], grads), expected[i], rtol(jnp.float32))
    np.testing.assert_allclose(values, own, rtol=1e-6)
    for i in range(len(members)):
        got = jax.tree.map(lambda v, i=i: v[i], short)
        if counts[i] > bound:
            assert all(bool(np.isnan(got[key])) for key in ("a", "x"))
        else:
            close(got, expected[i], rtol(jnp.float32))


def test_a_body_that_blows_up_once_finished_leaves_the_gradient_finite():
    """The body evaluated past the end (as `vmap` does for the members that finished first)
    divides by zero; the guarded iterations discard it, adjoints included."""

    def f(x, n):
        body = lambda c: (c[0] + 1, c[1] / (n - c[0]).astype(x.dtype) + jnp.sin(c[1]))
        return lax.while_loop(lambda c: c[0] < n, body, (0, x))[1]

    def unrolled(x, n):
        c = (0, x)
        for _ in range(n):
            c = (c[0] + 1, c[1] / (n - c[0]) + jnp.sin(c[1]))
        return c[1]

    counts = [1, 3, 5]
    xs, ns = jnp.asarray([0.5, 1.5, 2.5], jnp.float32), jnp.asarray(counts)

    @fast_jit  # jaxls's, batched and not, and the oracle of each member (its count static)
    def results(xs, ns):
        grads = jax.vmap(ad.grad(f, max_loop_steps=6))(xs, ns)
        first = ad.grad(f, max_loop_steps=6)(xs[0], ns[0])
        return grads, first, [jax.grad(unrolled)(xs[i], n) for i, n in enumerate(counts)]

    grads, first, expected = results(xs, ns)
    assert np.all(np.isfinite(grads))
    close(grads, np.stack(expected), rtol(jnp.float32))
    close(first, expected[0], rtol(jnp.float32))


# --- second order ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_hessian_and_hvp_through_a_while_loop(dtype):
    loop = LOOPS[IDS.index("counter")]
    w, x = loop.point(dtype)["w"], loop.point(dtype)["x"]
    loop_f = lambda x: while_fun(loop)({"w": w, "x": x})
    fori_f = lambda x: fori_fun(loop, 4)({"w": w, "x": x})
    unrolled_f = lambda x: unrolled_fun(loop, 4)({"w": w, "x": x})
    v = jnp.asarray([1.0, -0.5, 2.0], dtype)

    @fast_jit  # jaxls's and the oracles in one program
    def results(x, v):
        ours = [ad.hessian(loop_f, max_loop_steps=6, loop_checkpoints=c)(x) for c in (None, 2)]
        hvp = ad.hvp(loop_f, x, v, max_loop_steps=4)
        return ours, hvp, jax.hessian(fori_f)(x), jax.hessian(unrolled_f)(x)

    (h, h_checkpointed), hvp, h_fori, h_unrolled = jax.device_get(results(x, v))
    close(h, h_fori, rtol(dtype))
    close(h, h_unrolled, rtol(dtype))
    close(h_checkpointed, h, rtol(dtype))
    close(hvp, h @ np.asarray(v), rtol(dtype))


def test_hessian_through_newton_matches_the_unrolled_loop():
    loop = LOOPS[IDS.index("newton")]
    p = loop.point(jnp.float32)
    k = trips(loop, p)
    f = lambda v: while_fun(loop)({"a": v[0], "b": v[1]})
    g = lambda v: unrolled_fun(loop, k)({"a": v[0], "b": v[1]})
    v = jnp.stack([p["a"], p["b"]])
    both = lambda v: (ad.hessian(f, max_loop_steps=k + 2)(v), jax.hessian(g)(v))
    ours, theirs = fast_jit(both)(v)
    close(ours, theirs, 1e-3)


# --- fori_loop with array bounds is a while loop once traced --------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_fori_loop_with_float_bounds(dtype):
    def f(x):  # jnp.float32(0), made while tracing: a traced bound
        return jnp.sum(lax.fori_loop(dtype(0), dtype(3), lambda i, c: jnp.sin(c) * c + i, x))

    def unrolled(x):
        for i in range(3):
            x = jnp.sin(x) * x + i
        return jnp.sum(x)

    x = jnp.asarray([0.3, -0.8], dtype)
    assert "while" in str(jax.make_jaxpr(f)(x))  # jaxls differentiates the traced loop
    # Eagerly both differentiate it without a bound (jax sees concrete bounds, jaxls counts
    # the iterations); under jit both refuse it, and jaxls names the bound.
    close(ad.grad(f)(x), jax.grad(f)(x), rtol(dtype))
    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work"):
        jax.jit(jax.grad(f))(x)
    with pytest.raises(NotImplementedError, match=r"max_loop_steps=N"):
        jax.jit(ad.grad(f))(x)
    g = jax.jit(ad.grad(f, max_loop_steps=3))(x)
    close(g, jax.grad(f)(x), rtol(dtype))  # jax sees concrete bounds: a scan
    close(g, fast_jit(jax.grad(unrolled))(x), rtol(dtype))
    assert all_nan(ad.grad(f, max_loop_steps=2)(x))


# --- while loops inside other control flow, and nested --------------------------------------


def _py_while(cond, body, c):
    while bool(cond(c)):
        c = body(c)
    return c


def _py_scan(body, c, xs):
    ys = []
    for x in xs:
        c, y = body(c, x)
        ys.append(y)
    return c, jnp.stack(ys)


def _py_cond(pred, true, false, *ops):
    return true(*ops) if bool(pred) else false(*ops)


class Flow(NamedTuple):
    """The control flow a composite function is built from: jax's, or Python's (oracle)."""

    while_loop: Callable
    scan: Callable
    cond: Callable
    jit: Callable


JAX = Flow(lax.while_loop, lax.scan, lax.cond, jax.jit)
PYTHON = Flow(_py_while, _py_scan, _py_cond, lambda f: f)


def _grow(flow: Flow, a, x):
    """A while loop whose trip count depends on ``x``: grow it past 3."""
    return flow.while_loop(lambda c: c < 3.0, lambda c: a * c + 0.1 * jnp.cos(c), x)


COMPOSITES: dict[str, Callable[[Flow, Any], Any]] = {
    "nested": lambda flow, p: flow.while_loop(
        lambda c: c[0] < 3,
        lambda c: (c[0] + 1, _grow(flow, p[0], c[1] * 0.4 + 0.5) * p[1]),
        (0, p[1]),
    )[1],
    "in_scan": lambda flow, p: flow.scan(
        lambda c, x: (_grow(flow, p[0], c * 0.3 + x), c), p[1], jnp.asarray([0.2, 0.9, 0.1])
    )[1].sum(),
    "in_cond": lambda flow, p: flow.cond(
        p[1] > 0, lambda q: _grow(flow, q[0], q[1]), lambda q: -q[1], p
    ),
    "in_jit": lambda flow, p: flow.jit(lambda q: _grow(flow, q[0], q[1]) ** 2)(p),
    "in_checkpoint": lambda flow, p: (
        jax.checkpoint(lambda q: _grow(flow, q[0], q[1]))(p) if flow is JAX else _grow(flow, *p)
    ),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_while_loops_nested_and_inside_other_control_flow(name):
    f = COMPOSITES[name]
    p = jnp.asarray([1.4, 0.6], jnp.float32)

    @fast_jit  # jaxls's under two bounds, and the loop's own value
    def results(p):
        ours = ad.value_and_grad(functools.partial(f, JAX), max_loop_steps=8)(p)
        return ours, ad.grad(functools.partial(f, JAX), max_loop_steps=1)(p), f(JAX, p)

    (value, g), short, own = results(p)
    np.testing.assert_allclose(value, own, rtol=1e-6)
    close(g, jax.grad(functools.partial(f, PYTHON))(p), rtol(jnp.float32))  # eager: Python's
    assert all_nan(short)


@jax.custom_jvp
def _cube(x):
    return x**3


@_cube.defjvp
def _cube_jvp(primals, tangents):
    """The tangent ``3 x^2 t`` by a while loop over it (reverse mode transposes it)."""
    (x,), (t,) = primals, tangents
    _, t2 = lax.while_loop(lambda c: c[0] < 2, lambda c: (c[0] + 1, c[1] * x), (0, t))
    return _cube(x), 3 * t2


def test_a_while_loop_in_the_rule_of_a_custom_jvp_function_is_transposed():
    f = lambda x: jnp.sum(jnp.sin(_cube(x)))
    x = jnp.asarray([0.4, -1.1], jnp.float32)

    @fast_jit  # jaxls's under three bounds, and the oracle
    def results(x):
        ours = [ad.grad(f, max_loop_steps=n, loop_checkpoints=c)(x) for n, c in ((2, None), (5, 2))]
        short = ad.grad(f, max_loop_steps=1)(x)
        return ours, short, jax.grad(lambda x: jnp.sum(jnp.sin(x**3)))(x)

    ours, short, expected = results(x)
    for g in ours:
        close(g, expected, rtol(jnp.float32))
    close(ad.grad(f)(x), expected, rtol(jnp.float32))  # eagerly: counted
    with pytest.raises(NotImplementedError, match="max_loop_steps"):
        jax.jit(ad.grad(f))(x)
    assert all_nan(short)


# --- recursive checkpointing: loop_checkpoints=k --------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("loop", LOOPS, ids=IDS)
def test_checkpointed_gradients_equal_the_stored_ones_and_the_oracles(loop, dtype):
    """Bisection and ``k = 3`` with a bound 3 past the trip count (guarded iterations
    skipped at every level of the recursion, and past the bound in the last segments), and
    a bound 1 short of it (NaN), one program; the stored tapes' gradient and the oracles in
    it too."""
    p = loop.point(dtype)
    k = trips(loop, p)
    f = while_fun(loop)

    def results(p):
        stored = ad.value_and_grad(f, max_loop_steps=k + 3)(p)
        checkpointed = [
            ad.value_and_grad(f, max_loop_steps=k + 3, loop_checkpoints=c)(p) for c in (2, 3)
        ]
        short = ad.grad(f, max_loop_steps=k - 1, loop_checkpoints=2)(p)
        return stored, checkpointed, short

    oracles = lambda p: (jax.grad(unrolled_fun(loop, k))(p), jax.grad(fori_fun(loop, k))(p))
    ours, (expected, fori) = fast_jit(lambda p: (results(p), oracles(p)))(p)
    stored, checkpointed, short = ours
    for value, g in checkpointed:
        np.testing.assert_allclose(value, stored[0], rtol=rtol(dtype) / 100)
        assert all(x.dtype == dtype for x in jax.tree.leaves(g))
        close(g, stored[1], rtol(dtype))
        close(g, expected, rtol(dtype))
        close(g, fori, rtol(dtype))
    assert all_nan({key: v for key, v in short.items() if key != "limit"})


def test_checkpointed_eagerly_without_a_bound_counts_the_iterations():
    loop = LOOPS[IDS.index("geometric")]
    p = loop.point(jnp.float32)
    g = ad.grad(while_fun(loop), loop_checkpoints=2)(p)  # counted: 2^(L-1) < k <= 2^L
    close(g, fast_jit(jax.grad(unrolled_fun(loop, trips(loop, p))))(p), rtol(jnp.float32))
    with pytest.raises(NotImplementedError, match=r"max_loop_steps=N"):
        jax.jit(ad.grad(while_fun(loop), loop_checkpoints=2))(p)


@pytest.mark.parametrize("name", ["nested", "in_scan"])
def test_checkpointed_loops_nested_and_inside_a_scan(name):
    f = functools.partial(COMPOSITES[name], JAX)
    p = jnp.asarray([1.4, 0.6], jnp.float32)
    grads = lambda p: [ad.grad(f, max_loop_steps=n, loop_checkpoints=2)(p) for n in (8, 1)]
    g, short = fast_jit(grads)(p)
    close(g, jax.grad(functools.partial(COMPOSITES[name], PYTHON))(p), rtol(jnp.float32))
    assert all_nan(short)


def _rnn(x, steps):
    """A loop of ``steps`` iterations of an RNN-like body on a 64-vector."""
    body = lambda c: (c[0] + 1, jnp.tanh(c[1]) * 0.9 + 0.1 * jnp.sin(c[1]))
    return jnp.sum(lax.while_loop(lambda c: c[0] < steps, body, (0, x))[1] ** 2)


def _bytes(tree) -> int:
    return sum(int(np.prod(leaf.shape)) * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def test_checkpointing_stores_logarithmically_many_bytes():
    """16 times the iterations: the stored tapes take 16 times the bytes, the checkpoints
    (bisection) the same; XLA's temporary buffers for the whole gradient grow 16 times and
    about 1.4 times (one level of the recursion per doubling)."""
    x = jnp.ones(64, jnp.float32)

    def residuals(steps, checkpoints):  # what the forward sweep keeps for the backward
        f = functools.partial(_rnn, steps=steps)
        pullback = lambda x: ad.vjp(f, x, max_loop_steps=steps, loop_checkpoints=checkpoints)[1]
        return _bytes(jax.eval_shape(pullback, x))

    def temporaries(steps, checkpoints):
        grad = ad.grad(_rnn, max_loop_steps=steps, loop_checkpoints=checkpoints)
        compiled = fast_jit(grad, static_argnums=1).lower(x, steps).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    stored = [residuals(n, None) for n in (64, 1024)]
    checkpointed = [residuals(n, 2) for n in (64, 1024)]
    assert 15 < stored[1] / stored[0] < 17
    assert checkpointed[1] == checkpointed[0] < stored[0] / 20
    stored = [temporaries(n, None) for n in (64, 1024)]
    checkpointed = [temporaries(n, 2) for n in (64, 1024)]
    assert stored[1] / stored[0] > 12
    assert checkpointed[1] / checkpointed[0] < 2
    assert checkpointed[1] < stored[1] / 20


def _evaluations(jaxpr, primitive: str) -> int:
    """How many times ``primitive`` runs in ``jaxpr`` if every `lax.cond` takes its costlier
    branch: the equations, those in a scan's body times its length (a while loop's body
    counts for none: the loop the forward sweep ends with runs no iteration below the
    bound)."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == primitive:
            total += 1
        elif name == "scan":
            total += eqn.params["length"] * _evaluations(eqn.params["jaxpr"].jaxpr, primitive)
        elif name == "cond":
            total += max(_evaluations(b.jaxpr, primitive) for b in eqn.params["branches"])
        elif name != "while":
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                total += _evaluations(sub, primitive)
    return total


@pytest.mark.parametrize(("checkpoints", "levels"), [(None, 1), (2, 6), (4, 3), (8, 2)])
def test_checkpointing_evaluates_each_iteration_at_most_once_per_level(checkpoints, levels):
    """64 iterations taken: the body's ``sin`` runs 64 times in the stored mode, and with
    ``k`` checkpoints per level ``64 (2 + (L - 2)(k - 1) / k)`` times (the forward sweep,
    ``L - 2`` levels that recompute all of their segments but the last, the last level);
    its adjoint, ``cos``, 64 times in both."""
    grad = ad.grad(_rnn, max_loop_steps=64, loop_checkpoints=checkpoints)
    jaxpr = jax.make_jaxpr(grad, static_argnums=1)(jnp.ones(3), 64).jaxpr
    expected = 64 if levels == 1 else 64 * (2 + (levels - 2) * (checkpoints - 1) / checkpoints)
    assert _evaluations(jaxpr, "sin") == expected <= 64 * levels
    assert _evaluations(jaxpr, "cos") == 64


# --- what needs no bound, and what is refused -----------------------------------------------


def test_forward_mode_and_a_loop_whose_carry_is_not_differentiated_need_no_bound():
    # Only the condition reads x: the result is piecewise constant in x, as jax.grad says.
    count = lambda x: lax.while_loop(lambda c: c < x, lambda c: c + 1.0, 0.0)
    assert float(ad.grad(count)(3.5)) == float(jax.grad(count)(3.5)) == 0.0
    loop = LOOPS[IDS.index("geometric")]
    p = loop.point(jnp.float32)
    ones = jax.tree.map(jnp.ones_like, p)
    close(ad.jvp(while_fun(loop), (p,), (ones,)), jax.jvp(while_fun(loop), (p,), (ones,)), 1e-5)


CALLS = {
    "grad": lambda f, x, n, **kw: ad.grad(f, max_loop_steps=n, **kw)(x),
    "value_and_grad": lambda f, x, n, **kw: ad.value_and_grad(f, max_loop_steps=n, **kw)(x),
    "vjp": lambda f, x, n, **kw: ad.vjp(f, x, max_loop_steps=n, **kw),
    "jacrev": lambda f, x, n, **kw: ad.jacrev(f, max_loop_steps=n, **kw)(x),
    "hessian": lambda f, x, n, **kw: ad.hessian(f, max_loop_steps=n, **kw)(x),
    "hvp": lambda f, x, n, **kw: ad.hvp(f, x, x, max_loop_steps=n, **kw),
}


@pytest.mark.parametrize(
    ("bad", "error"),
    [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError), ("4", TypeError)],
)
@pytest.mark.parametrize("call", sorted(CALLS))
def test_max_loop_steps_is_checked(call, bad, error):
    f = lambda x: jnp.sum(jnp.sin(x))
    match = rf"jaxls\.ad\.{call}\(max_loop_steps={bad!r}\): `max_loop_steps` must be"
    with pytest.raises(error, match=match):
        CALLS[call](f, jnp.ones(2), bad)


@pytest.mark.parametrize(("bad", "error"), [(1, ValueError), (2.5, TypeError), (True, TypeError)])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_loop_checkpoints_is_checked(call, bad, error):
    f = lambda x: jnp.sum(jnp.sin(x))
    match = rf"jaxls\.ad\.{call}\(loop_checkpoints={bad!r}\): `loop_checkpoints` must be"
    with pytest.raises(error, match=match):
        CALLS[call](f, jnp.ones(2), 4, loop_checkpoints=bad)


# Reverse mode on concrete values (the forward sweep runs eagerly): the trip count is counted.
EAGER = {"grad", "value_and_grad", "vjp", "jacrev"}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_reverse_transform_takes_the_bound_or_refuses_the_loop(call):
    """Under jit, every reverse transform refuses a while loop without a bound, naming it;
    eagerly, those whose forward sweep sees concrete values count its iterations (a
    Hessian's runs under forward mode: traced, refused)."""
    f = lambda x: jnp.sum(
        lax.while_loop(lambda c: c[0] < 2, lambda c: (c[0] + 1, c[1] * c[1]), (0, x))[1]
    )
    x = jnp.asarray([0.5, 1.5], jnp.float32)
    with pytest.raises(NotImplementedError, match=r"while_loop.*max_loop_steps=N"):
        jax.jit(lambda x: CALLS[call](f, x, None))(x)
    bounded = CALLS[call](f, x, np.int32(2))  # a NumPy integer is an int
    if call in EAGER:
        counted = CALLS[call](f, x, None)
        if call == "vjp":  # (out, vjp_fn): compare the outputs and the pullbacks' results
            counted, bounded = [(out, fn(jnp.ones(()))) for out, fn in (counted, bounded)]
        jax.tree.map(np.testing.assert_array_equal, counted, bounded)
    else:
        with pytest.raises(NotImplementedError, match=r"while_loop.*max_loop_steps=N"):
            CALLS[call](f, x, None)
