"""What reverse mode stores (issue 11): `jaxls.ad.saved_residuals` against jax's accounting,
the lean tape (each VJP rule records what it declares it reads), and `jaxls.ad.checkpoint`'s
policies.

The oracle is ``jax._src.ad_checkpoint.saved_residuals``, what
``jax.ad_checkpoint.print_saved_residuals`` prints: the arrays jax's ``vjp`` keeps. Both
list each array once, every positional argument differentiated. Where the totals are
equal the two keep different arrays of the same sizes, or the same ones: ``sin`` keeps its
input where jax keeps ``cos(x)``; ``exp``, ``tanh`` and ``logistic`` their output, as jax;
``mul`` and ``dot_general`` the operand paired with a differentiated one, as jax; a ``scan``
its stacked per-iteration values, as jax (jaxls reads the scanned ``xs`` back from the
argument itself, jax too).

Where jax keeps more, each case names the arrays it keeps that jaxls recomputes from what it
keeps anyway (``JAX_ONLY``), and the test checks the totals differ by exactly those:

* ``tanh``: jax keeps ``1 - t**2`` (an ``output of sub``) besides ``t``;
* ``sin`` next to a ``mul`` that keeps ``x``: jax keeps ``cos(x)`` too;
* ``2.0 * x``: jax keeps the literal ``2.0`` (4 bytes); a literal is in the jaxpr.

Not comparable (not tested for equality): ``jax.nn.relu`` (a custom_jvp: jax keeps its mask
and a broadcast zero, jaxls its input and output), ``x / y`` (jax keeps ``y**-2``, jaxls
``x / y``), ``lax.while_loop`` (jax refuses reverse mode through it).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax._src.ad_checkpoint import saved_residuals as jax_saved_residuals
from jax.ad_checkpoint import checkpoint_name

import jaxls.ad as ad
from jaxls._src.ad import registry
from tests.helpers import close, count_primitive

F32, F64, BF16 = jnp.float32, jnp.float64, jnp.bfloat16
POLICIES = jax.checkpoint_policies


def jax_bytes(f, *args, only=()) -> int:
    """The bytes jax's ``vjp`` keeps (those of the arrays whose description starts with one
    of ``only``, if given)."""
    return sum(
        aval.size * aval.dtype.itemsize
        for aval, where in jax_saved_residuals(f, *args)
        if not only or where.startswith(only)
    )


def data(dtype, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.uniform(0.2, 1.0, shape), dtype) for shape in shapes]


def chain(x):
    return jnp.sum(jnp.tanh(jnp.exp(jnp.sin(x)) * x))


def mlp_tanh(w1, b1, w2, x):
    return jnp.sum(jnp.tanh(x @ w1 + b1) @ w2)


def mlp_relu(w1, b1, w2, x):
    return jnp.sum(jnp.maximum(x @ w1 + b1, 0.0) @ w2)


def softmax_cross_entropy(w, x):
    labels = jax.nn.one_hot(jnp.arange(x.shape[0]) % w.shape[1], w.shape[1], dtype=w.dtype)
    return -jnp.mean(jnp.sum(jax.nn.log_softmax(x @ w) * labels, axis=-1))


def scanned(c, xs):
    def body(c, x):
        c = jnp.sin(c) * x
        return c, c

    last, ys = lax.scan(body, c, xs)
    return jnp.sum(ys * ys) * last * c


def scanned_alone(c, xs):
    """A scan whose inputs and outputs nothing else reads: its VJP rule reads only its
    constants (the stacked tapes hold the rest), so the scan's own inputs are not kept."""

    def body(c, x):
        c = jnp.sin(c) * x
        return c, c

    return jnp.sum(lax.scan(body, c, xs)[1])


# name -> (function, argument shapes, jax's extra arrays, dtypes)
CASES = {
    "sin": (lambda x: jnp.sum(jnp.sin(x)), [(6,)], (), (F32, F64, BF16)),
    "exp_log": (lambda x: jnp.sum(jnp.exp(x) * jnp.log(x)), [(6,)], (), (F32, F64)),
    "chain": (chain, [(6,)], ("output of cos", "output of sub"), (F32, F64, BF16)),
    "affine": (lambda x: jnp.sum(2.0 * x + 1.0), [(6,)], ("from a literal",), (F32, F64)),
    "linear": (
        lambda x: jnp.sum(jnp.broadcast_to(x.reshape(2, 3).T, (4, 3, 2)) - x.reshape(1, 3, 2)),
        [(6,)],
        (),
        (F32,),
    ),
    "arguments": (lambda x, y: jnp.sum(x * y), [(6,), (6,)], (), (F32, F64)),
    "mlp_tanh": (mlp_tanh, [(6, 4), (1, 4), (4, 3), (5, 6)], ("output of sub",), (F32, F64)),
    "mlp_relu": (mlp_relu, [(6, 4), (1, 4), (4, 3), (5, 6)], (), (F32, F64, BF16)),
    "softmax_cross_entropy": (softmax_cross_entropy, [(6, 4), (5, 6)], (), (F32, F64)),
    "matmul_chain": (lambda a, b, c: jnp.sum(a @ b @ c), [(5, 5)] * 3, (), (F32, F64, BF16)),
    "scan": (scanned, [(), (6,)], (), (F32, F64)),
    "scan_alone": (scanned_alone, [(), (6,)], (), (F32, F64)),
}
PARAMS = [
    pytest.param(name, dtype, id=f"{name}-{jnp.dtype(dtype).name}")
    for name, (*_, dtypes) in CASES.items()
    for dtype in dtypes
]


@pytest.mark.parametrize(("name", "dtype"), PARAMS)
def test_total_bytes_are_jaxs(name, dtype):
    """The tape's total is jax's, less the arrays jax keeps and jaxls recomputes (module
    docstring)."""
    f, shapes, jax_only, _ = CASES[name]
    args = data(dtype, *shapes)
    ours = ad.saved_residuals(f, *args)
    extra = jax_bytes(f, *args, only=jax_only) if jax_only else 0
    assert not jax_only or extra > 0, f"jax keeps none of {jax_only}: compare totals directly"
    assert ours.total_bytes == jax_bytes(f, *args) - extra, str(ours)
    assert ours.total_bytes == sum(int(np.prod(r.shape)) * r.dtype.itemsize for r in ours)


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if F32 in case[3]])
def test_the_lean_tape_gives_jaxs_gradients(name):
    f, shapes, *_ = CASES[name]
    args = data(F32, *shapes, seed=1)
    nums = tuple(range(len(args)))
    close(ad.grad(f, argnums=nums)(*args), jax.grad(f, argnums=nums)(*args), 2e-5)


def test_each_residual_is_described():
    x, y = data(F32, (3,), (3,))
    res = ad.saved_residuals(lambda x, y: jnp.sum(jnp.sin(x) * jnp.exp(y)), x, y)
    assert [r.description.split(" at ")[0] for r in res] == [
        "argument x",
        "output of sin",
        "output of exp",
    ]
    assert [r.shape for r in res] == [(3,)] * 3 and res.total_bytes == 36
    assert res[0].source == "" and "test_ad_residuals.py:" in res[1].source
    assert res[1].description == f"output of sin at {res[1].source}"
    table = str(res)
    assert table.splitlines()[-1].split() == ["total", "36", "3", "arrays"]
    assert "f32[3]" in table


def test_residuals_of_a_scan_are_stacked_and_of_a_jit_call_inlined():
    c, xs = data(F32, (), (6,))
    res = ad.saved_residuals(scanned, c, xs)
    stacked = [r for r in res if " in scan at " in r.description]
    assert stacked and all(r.shape == (6,) for r in stacked)
    res = ad.saved_residuals(lambda x: jnp.sum(jax.jit(jnp.tanh)(x)), xs)
    assert [r.description.split(" at ")[0] for r in res] == ["output of tanh"]
    assert "in jit 'tanh'" in res[0].description


def test_residuals_of_a_while_loop_need_a_bound():
    def newton(a):
        return lax.while_loop(lambda x: jnp.abs(x * x - a) > 1e-5, lambda x: 0.5 * (x + a / x), a)

    a = jnp.float32(4.0)
    res = ad.saved_residuals(newton, a, max_loop_steps=8)
    assert any(" in while at " in r.description and r.shape[:1] == (8,) for r in res)
    assert res.total_bytes == sum(r.bytes for r in res) > 0
    with pytest.raises(NotImplementedError, match="max_loop_steps"):
        ad.saved_residuals(newton, a)


def test_saved_residuals_refuses_bad_input_naming_the_call():
    with pytest.raises(TypeError, match=r"jaxls\.ad\.saved_residuals: `fun` must be callable"):
        ad.saved_residuals("sin", 1.0)
    with pytest.raises(TypeError, match=r"jaxls\.ad\.saved_residuals: argument 0 .* not a JAX"):
        ad.saved_residuals(jnp.sin, "x")
    with pytest.raises(ValueError, match=r"saved_residuals\(max_loop_steps=0\)"):
        ad.saved_residuals(jnp.sin, 1.0, max_loop_steps=0)


def test_print_saved_residuals_prints_the_table(capsys):
    ad.print_saved_residuals(lambda x, y: jnp.sum(x * y), jnp.ones(2), jnp.ones(2))
    out = capsys.readouterr().out
    assert "argument x" in out and "argument y" in out and "total" in out and "16" in out


# --- declared reads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "f", "error"),
    [
        # JAX's own TypeError on the placeholder (jnp.cos of it), re-raised as ours.
        ("sin", lambda x: jnp.sum(jnp.sin(x)), "computed with a value it declares unread"),
        # Arithmetic on the placeholder raises ours directly (`ct * y`, `ct * out`).
        ("mul", lambda x: jnp.sum(x * x), r"read input \d of `mul`"),
        ("exp", lambda x: jnp.sum(jnp.exp(x)), "read output 0 of `exp`"),
    ],
)
def test_a_rule_reading_what_it_declares_unread_fails_loudly(monkeypatch, name, f, error):
    x = jnp.ones(3)
    assert ad.grad(f)(x) is not None  # the declaration in the tables is right
    monkeypatch.setitem(registry.vjp_reads, name, registry.NOTHING)
    with pytest.raises(registry.UnrecordedValueError, match=error):
        ad.grad(f)(x)


def test_an_unread_value_keeps_its_shape_and_dtype():
    placeholder = registry.Unrecorded((2, 3), np.dtype(np.float32), "input 0 of `x`")
    assert np.shape(placeholder) == (2, 3) and np.ndim(placeholder) == 2
    assert jnp.zeros_like(placeholder).dtype == jnp.float32
    for compute in (lambda p: p + 1.0, lambda p: np.asarray(p), lambda p: p[0], bool):
        with pytest.raises(registry.UnrecordedValueError):
            compute(placeholder)


def test_linear_primitives_keep_nothing_and_mul_keeps_only_the_other_operand():
    x, y = data(F32, (6,), (6,))
    assert ad.saved_residuals(CASES["linear"][0], x).total_bytes == 0
    # Only y is differentiated (x, a keyword, is a constant): mul keeps x, for y's
    # cotangent, and not y, which it would keep for x's.
    res = ad.saved_residuals(lambda y, x: jnp.sum(x * y), y, x=x)
    assert [(r.description, r.shape) for r in res] == [("constant", (6,))]


# --- checkpoint policies --------------------------------------------------------------------


def two_layers(w1, w2, x):
    """Two layers ``h -> tanh(z) sin(z)``, ``z = h @ w`` named ``z1``, ``z2``: without a
    checkpoint reverse mode keeps ``z``, ``tanh(z)`` and ``sin(z)`` of each."""
    z1 = checkpoint_name(x @ w1, "z1")
    h = jnp.tanh(z1) * jnp.sin(z1)
    z2 = checkpoint_name(h @ w2, "z2")
    return jnp.tanh(z2) * jnp.sin(z2)


def checkpointed(policy):
    if policy == "none":
        return lambda w1, w2, x: jnp.sum(two_layers(w1, w2, x))
    block = ad.checkpoint(two_layers, policy=policy)
    return lambda w1, w2, x: jnp.sum(block(w1, w2, x))


def saves_tanh(primitive, *avals, **params):
    """A policy of one's own: keep the outputs of tanh."""
    return primitive.name == "tanh"


# policy -> the arrays jax keeps that jaxls recomputes (each tanh's 1 - t**2, `sub`).
CHECKPOINT_POLICIES = {
    "none": ("output of sub",),
    None: (),
    "nothing_saveable": (),
    "dots_saveable": (),
    "dots_with_no_batch_dims_saveable": (),
    "everything_saveable": ("output of sub",),
    "only_z1": (),
    "any_but_z1": (),
    "anything_except_z1": ("output of sub",),
    "dots_or_z1": (),
    "saves_tanh": (),
    "z1_saved_none_offloaded": (),  # a policy answering jax's Saveable / Recompute
}


def policy_of(name):
    """The policy a `CHECKPOINT_POLICIES` key names (``"none"``: no checkpoint)."""
    made = {
        None: None,
        "none": "none",
        "only_z1": POLICIES.save_only_these_names("z1"),
        "any_but_z1": POLICIES.save_any_names_but_these("z1"),
        "anything_except_z1": POLICIES.save_anything_except_these_names("z1"),
        "dots_or_z1": POLICIES.save_from_both_policies(
            POLICIES.dots_saveable, POLICIES.save_only_these_names("z1")
        ),
        "saves_tanh": saves_tanh,
        "z1_saved_none_offloaded": POLICIES.save_and_offload_only_these_names(
            names_which_can_be_saved=["z1"],
            names_which_can_be_offloaded=[],
            offload_src="device",
            offload_dst="pinned_host",
        ),
    }
    return made[name] if name in made else getattr(POLICIES, name)


@pytest.mark.parametrize("name", list(CHECKPOINT_POLICIES))
def test_checkpoint_keeps_what_jax_keeps(name):
    f = checkpointed(policy_of(name))
    args = data(F32, (8, 8), (8, 8), (4, 8))
    jax_only = CHECKPOINT_POLICIES[name]
    extra = jax_bytes(f, *args, only=jax_only) if jax_only else 0
    assert not jax_only or extra > 0, f"jax keeps none of {jax_only}: compare totals directly"
    assert ad.saved_residuals(f, *args).total_bytes == jax_bytes(f, *args) - extra


def test_checkpoint_policies_trade_memory_for_recomputation():
    """nothing_saveable < dots_saveable < no checkpoint in bytes kept, and the more is kept,
    the fewer matrix products the backward sweep recomputes (none with dots_saveable)."""
    args = data(F32, (8, 8), (8, 8), (4, 8))
    kept, products = {}, {}
    for name in ("nothing_saveable", "dots_saveable", "none"):
        f = checkpointed(policy_of(name))
        kept[name] = ad.saved_residuals(f, *args).total_bytes
        products[name] = count_primitive(jax.make_jaxpr(ad.grad(f))(*args), "dot_general")
    assert kept["nothing_saveable"] < kept["dots_saveable"] < kept["none"]
    # grad in w1: 2 products forward, 2 backward (h's cotangent, then w1's; none for w2
    # and x, not differentiated). nothing_saveable recomputes the 2 forward ones.
    assert products["none"] == 4
    assert products["dots_saveable"] == products["none"]
    assert products["nothing_saveable"] == products["none"] + 2


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name", [n for n in CHECKPOINT_POLICIES if n != "none"])
def test_checkpoint_gradients_are_jaxs(name, dtype):
    f = checkpointed(policy_of(name))
    args = data(dtype, (4, 4), (4, 4), (3, 4), seed=2)
    tol = 2e-5 if dtype == F32 else 1e-12
    nums = (0, 1, 2)
    close(ad.grad(f, argnums=nums)(*args), jax.grad(f, argnums=nums)(*args), tol)


def test_checkpoint_refuses_offloading_and_bad_policies():
    args = data(F32, (4, 4), (4, 4), (3, 4))
    offload = POLICIES.offload_dot_with_no_batch_dims("device", "pinned_host")
    with pytest.raises(NotImplementedError, match="offloads"):
        ad.grad(checkpointed(offload))(*args)
    with pytest.raises(TypeError, match=r"jaxls\.ad\.checkpoint\(policy=3\)"):
        ad.checkpoint(jnp.sin, policy=3)
    with pytest.raises(TypeError, match=r"jaxls\.ad\.checkpoint: `fun` must be callable"):
        ad.checkpoint(3)


def test_a_checkpointed_function_applied_twice_describes_each_calls_inputs():
    """One jaxpr called twice (the same `ad.checkpoint` function applied twice) has the same
    variables in both calls: each call's residuals are described by its own inputs (w1 and x
    for the first, w2 and the first call's output for the second), as jax lists them."""
    block = ad.checkpoint(lambda y, w: jnp.tanh(y * w))
    f = lambda w1, w2, x: jnp.sum(block(block(x, w1), w2))
    kept = ad.saved_residuals(f, 1.0, 2.0, jnp.ones(3))
    assert [r.description.split(" at ")[0] for r in kept] == [
        "argument w1",
        "argument w2",
        "argument x",
        "output of remat2",
    ], str(kept)
    theirs = jax_saved_residuals(f, 1.0, 2.0, jnp.ones(3))
    assert sorted(r.shape for r in kept) == sorted(aval.shape for aval, _ in theirs)
    assert kept.total_bytes == jax_bytes(f, 1.0, 2.0, jnp.ones(3))
