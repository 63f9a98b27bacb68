"""Tests of the AD rules that neural networks need: ``conv_general_dilated``
(rules/convolution.py), ``reduce_window_sum`` / ``_max`` / ``_min`` (rules/windows.py),
``name`` and the random primitives (constants, rules/misc.py); then a small CNN and a
2-layer transformer with dropout, trained with `jaxls.ad.grad` and with `jax.grad`.

Oracles: `jax.jvp` / `jax.vjp` of each primitive's ``bind`` and the dot-product identity
between the two rules (`check_rules`, one `jax.jit` per case), `jax.hessian` for second
order (the VJP rules emit convolutions, pads and windowed sums that are differentiated
again), and, where JAX's reverse mode refuses (max pooling with window dilation), JAX's
forward mode. float32 (JAX's default) and float64 (per test, by its dtype parameter);
bfloat16 against jax in bfloat16.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.ad_checkpoint import checkpoint_name

import jaxls.ad as ad
from jaxls._src.ad.registry import jvp_rules, vjp_rules
from tests.ad_zoo import fast_jit
from tests.helpers import primitive_names, sgd_losses
from tests.test_ad_rules_linalg import check_rules

F32, F64 = np.float32, np.float64

# (window_strides, padding, lhs_dilation, rhs_dilation, feature_group_count, layouts)
CONVS = {
    "plain": ((1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1, ("NCHW", "OIHW", "NCHW")),
    "strided_padded_nhwc": ((2, 1), ((1, 2), (0, 1)), (1, 1), (1, 1), 1, ("NHWC", "HWIO", "NHWC")),
    "atrous_grouped": ((1, 2), ((1, 0), (2, 1)), (1, 1), (2, 1), 2, ("NHWC", "HWIO", "NHWC")),
    "cropping_input_dilated": (
        (2, 2), ((-1, 1), (1, -1)), (2, 1), (1, 2), 1, ("NCHW", "OIHW", "NCHW")
    ),
    "depthwise_same": ((1, 1), "SAME", (1, 1), (1, 1), 4, ("NHWC", "HWIO", "NHWC")),
    "mixed_layouts": ((3, 2), ((2, 2), (1, 1)), (1, 3), (2, 2), 2, ("NCHW", "IOHW", "NHWC")),
}  # fmt: skip
CHANNELS, FEATURES = 4, 8


def conv_operands(config, dtype, seed=0):
    *_, groups, layouts = config
    rng = np.random.default_rng(seed)
    lhs_shape = (2, CHANNELS, 7, 6) if layouts[0] == "NCHW" else (2, 7, 6, CHANNELS)
    in_per_group = CHANNELS // groups
    rhs_shape = {
        "OIHW": (FEATURES, in_per_group, 3, 2),
        "HWIO": (3, 2, in_per_group, FEATURES),
        "IOHW": (in_per_group, FEATURES, 3, 2),
    }[layouts[1]]
    lhs = jnp.asarray(rng.standard_normal(lhs_shape), dtype)
    rhs = jnp.asarray(rng.standard_normal(rhs_shape), dtype)
    return lhs, rhs


def conv_fn(config):
    strides, padding, lhs_dilation, rhs_dilation, groups, layouts = config
    return lambda lhs, rhs: lax.conv_general_dilated(
        lhs, rhs, strides, padding, lhs_dilation, rhs_dilation, layouts,
        feature_group_count=groups,
    )  # fmt: skip


def conv_params(config, lhs, rhs):
    """The equation's parameters, as JAX binds them."""
    (eqn,) = jax.make_jaxpr(conv_fn(config))(lhs, rhs).eqns
    return eqn.params


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name", list(CONVS))
def test_conv_rules_against_jax(name, dtype):
    lhs, rhs = conv_operands(CONVS[name], dtype)
    params = conv_params(CONVS[name], lhs, rhs)
    check_rules(lax.conv_general_dilated_p, (lhs, rhs), params, argnums=(0, 1))


@pytest.mark.parametrize("name", list(CONVS))
def test_conv_second_order_against_jax_hessian(name):
    """Reverse over reverse and forward over reverse: the VJP rule's convolutions (input
    dilated by the stride, kernels reversed and regrouped) are differentiated again."""
    lhs, rhs = conv_operands(CONVS[name], F32)
    conv = conv_fn(CONVS[name])
    loss = lambda lhs, rhs: jnp.sum(jnp.sin(conv(lhs, rhs)))
    small = lhs[:1]

    @fast_jit
    def both(lhs, rhs):
        ours = (
            ad.hessian(loss, argnums=0)(lhs, rhs),
            ad.jacrev(ad.grad(loss, argnums=1), argnums=0)(lhs, rhs),
        )
        theirs = (
            jax.hessian(loss, argnums=0)(lhs, rhs),
            jax.jacrev(jax.grad(loss, argnums=1), argnums=0)(lhs, rhs),
        )
        return ours, theirs

    ours, theirs = both(small, rhs)
    for a, b in zip(ours, theirs, strict=True):
        scale = float(np.max(np.abs(b)))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * scale)


def test_conv_batch_groups_forward_only():
    """`batch_group_count > 1` (emitted by JAX's own transposition, not by layers): forward
    mode matches jax; reverse mode is refused, naming the parameter."""
    rng = np.random.default_rng(1)
    lhs = jnp.asarray(rng.standard_normal((4, 3, 6)), F32)
    rhs = jnp.asarray(rng.standard_normal((4, 3, 2)), F32)  # 4 output features, 2 groups
    conv = lambda lhs, rhs: lax.conv_general_dilated(lhs, rhs, (1,), "VALID", batch_group_count=2)
    t = (jnp.ones_like(lhs), jnp.ones_like(rhs))
    _, ours = ad.jvp(conv, (lhs, rhs), t)
    _, theirs = jax.jvp(conv, (lhs, rhs), t)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    with pytest.raises(NotImplementedError, match="batch_group_count=2"):
        ad.grad(lambda lhs: jnp.sum(conv(lhs, rhs)))(lhs)


# --- windowed reductions (pooling) ---------------------------------------------------------

# (window_dimensions, window_strides, padding, base_dilation, window_dilation)
WINDOWS = {
    "pool_2x2": ((1, 2, 2, 1), (1, 2, 2, 1), "VALID", (1, 1, 1, 1), (1, 1, 1, 1)),
    "pool_3x3_same": ((1, 3, 3, 1), (1, 2, 2, 1), "SAME", (1, 1, 1, 1), (1, 1, 1, 1)),
    "overlapping_padded": (
        (1, 3, 2, 1), (1, 1, 2, 1), ((0, 0), (1, 2), (0, 1), (0, 0)), (1, 1, 1, 1), (1, 1, 1, 1)
    ),
    "base_dilated": (
        (1, 2, 2, 1), (1, 2, 1, 1), ((0, 0), (1, 0), (0, 1), (0, 0)), (1, 2, 1, 1), (1, 1, 1, 1)
    ),
}  # fmt: skip
REDUCERS = {"sum": (lax.add, 0.0), "max": (lax.max, -np.inf), "min": (lax.min, np.inf)}


def window_fn(reducer, window):
    op, init = REDUCERS[reducer]
    dims, strides, padding, base, dilation = window
    return lambda x: lax.reduce_window(x, np.array(init, x.dtype), op, dims, strides, padding,
                                       base, dilation)  # fmt: skip


def window_operand(dtype, seed=0):
    # Distinct values: a maximum's derivative is defined (no ties).
    values = np.random.default_rng(seed).permutation(2 * 7 * 6 * 3).reshape(2, 7, 6, 3)
    return jnp.asarray(values / 10.0 - 12.0, dtype)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("reducer", list(REDUCERS))
@pytest.mark.parametrize("window", list(WINDOWS))
def test_window_rules_against_jax(window, reducer, dtype):
    x = window_operand(dtype)
    (eqn,) = jax.make_jaxpr(window_fn(reducer, WINDOWS[window]))(x).eqns
    check_rules(eqn.primitive, (x,), eqn.params)


@pytest.mark.parametrize("reducer", list(REDUCERS))
def test_window_second_order_against_jax_hessian(reducer):
    pool = window_fn(reducer, WINDOWS["pool_3x3_same"])
    loss = lambda x: jnp.sum(jnp.sin(pool(x)) ** 2)
    x = window_operand(F32)[:1, :5, :4, :2]
    ours, theirs = fast_jit(lambda x: (ad.hessian(loss)(x), jax.hessian(loss)(x)))(x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reducer", ["max", "min"])
def test_pooling_with_window_dilation_in_reverse_mode_where_jax_refuses(reducer):
    """JAX's reverse mode raises for max pooling with window dilation; jaxls's reverse mode
    (its Jacobian by rows) equals JAX's forward mode (by columns)."""
    pads = ((0, 0), (1, 2), (0, 1), (0, 0))
    window = ((1, 3, 2, 1), (1, 2, 1, 1), pads, (1, 2, 1, 1), (1, 1, 2, 1))
    pool = window_fn(reducer, window)
    x = window_operand(F32)[:1]
    with pytest.raises(NotImplementedError):
        jax.jacrev(pool)(x)
    ours, theirs = fast_jit(lambda x: (ad.jacrev(pool)(x), jax.jacfwd(pool)(x)))(x)
    np.testing.assert_array_equal(ours, theirs)


def test_checkpoint_name_is_the_identity_in_both_modes():
    f = lambda x: jnp.sum(jnp.sin(checkpoint_name(2.0 * x, "hidden")) ** 2)
    x = jnp.arange(4.0)
    assert "name" in {e.primitive.name for e in jax.make_jaxpr(f)(x).eqns}
    ours, theirs = fast_jit(lambda x: ((ad.grad(f)(x), ad.hessian(f)(x)),
                                       (jax.grad(f)(x), jax.hessian(f)(x))))(x)  # fmt: skip
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


# --- a small CNN, trained with both -------------------------------------------------------


def init_cnn(key, dtype=F32):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {
        "conv1": jax.random.normal(k1, (3, 3, 1, 8), dtype) / 3.0,  # HWIO
        "conv2": jax.random.normal(k2, (3, 3, 2, 8), dtype) / 4.0,  # 4 feature groups
        "scale": jnp.ones((8,), dtype),
        "dense": jax.random.normal(k3, (8 * 2 * 2, 3), dtype) / 6.0,
        "bias": jax.random.normal(k4, (3,), dtype) * 0.0,
    }


def cnn(params, images):
    """conv (stride 2, SAME) -> relu -> max pool -> grouped atrous conv -> batch norm ->
    gelu -> average pool -> dense: the primitives of a ResNet-style stack."""
    dn = ("NHWC", "HWIO", "NHWC")
    h = lax.conv_general_dilated(images, params["conv1"], (2, 2), "SAME", dimension_numbers=dn)
    h = jax.nn.relu(h)
    h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 1, 1, 1), "SAME")
    h = lax.conv_general_dilated(
        h, params["conv2"], (1, 1), "SAME", rhs_dilation=(2, 2), dimension_numbers=dn,
        feature_group_count=4,
    )  # fmt: skip
    mean = jnp.mean(h, axis=(0, 1, 2), keepdims=True)
    var = jnp.var(h, axis=(0, 1, 2), keepdims=True)
    h = (h - mean) * lax.rsqrt(var + 1e-5) * params["scale"].reshape(1, 1, 1, -1)
    h = jax.nn.gelu(h)
    h = lax.reduce_window(h, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0
    return h.reshape(h.shape[0], -1) @ params["dense"] + params["bias"][None, :]


def cnn_loss(params, images, labels):
    logits = cnn(params, images)
    return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(labels, 3), axis=-1))


def synthetic_images(n=16, seed=0):
    """Three classes of 8x8 images: a bright row, a bright column, or a bright diagonal."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = 0.3 * rng.standard_normal((n, 8, 8, 1))
    for i, label in enumerate(labels):
        k = rng.integers(1, 7)
        if label == 0:
            images[i, k, :, 0] += 1.0
        elif label == 1:
            images[i, :, k, 0] += 1.0
        else:
            images[i, np.arange(8), np.arange(8), 0] += 1.0
    return jnp.asarray(images, F32), jnp.asarray(labels)


def test_cnn_traced_primitives_all_have_rules():
    params = init_cnn(jax.random.key(0))
    images, labels = synthetic_images()
    # The model's primitives, and those jaxls's own gradient emits (differentiated again by
    # a Hessian): each has both rules.
    names = primitive_names(jax.make_jaxpr(cnn_loss)(params, images, labels).jaxpr)
    names |= primitive_names(jax.make_jaxpr(ad.grad(cnn_loss))(params, images, labels).jaxpr)
    assert {"conv_general_dilated", "reduce_window_max", "reduce_window_sum"} <= names
    missing = {n for n in names if n not in jvp_rules or n not in vjp_rules}
    assert not missing, missing


def test_cnn_trained_with_jaxls_grad_equals_jax_grad():
    """Ten SGD steps with each gradient, under `jit`: the losses agree to float32 rounding,
    and they fall."""
    params = init_cnn(jax.random.key(0))
    images, labels = synthetic_images()

    batches = [(images, labels)] * 10
    ours, theirs = (
        sgd_losses(g, cnn_loss, params, batches, 0.1, jit=fast_jit) for g in (ad.grad, jax.grad)
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < 0.8 * ours[0]


def test_cnn_gradient_in_bfloat16_matches_jax_in_bfloat16():
    params = init_cnn(jax.random.key(1), jnp.bfloat16)
    images, labels = synthetic_images()
    images = images.astype(jnp.bfloat16)
    ours, theirs = fast_jit(
        lambda p: (ad.grad(cnn_loss)(p, images, labels), jax.grad(cnn_loss)(p, images, labels))
    )(params)
    for key in params:
        a, b = np.asarray(ours[key], F32), np.asarray(theirs[key], F32)
        assert ours[key].dtype == jnp.bfloat16
        scale = float(np.max(np.abs(b)))
        np.testing.assert_allclose(a, b, rtol=0, atol=0.1 * scale, err_msg=key)


# --- a 2-layer transformer with dropout, trained with both ---------------------------------

D, HEADS, T, VOCAB = 16, 2, 6, 5


def init_transformer(key, layers=2):
    keys = iter(jax.random.split(key, 6 * layers + 2))
    normal = lambda shape: jax.random.normal(next(keys), shape, F32) / np.sqrt(shape[0])
    blocks = [
        {
            "wq": normal((D, D)), "wk": normal((D, D)), "wv": normal((D, D)), "wo": normal((D, D)),
            "w1": normal((D, 4 * D)), "w2": normal((4 * D, D)),
            "g1": jnp.ones(D), "g2": jnp.ones(D),
        }
        for _ in range(layers)
    ]  # fmt: skip
    return {"embed": normal((VOCAB, D)), "blocks": blocks, "out": normal((D, VOCAB))}


def layer_norm(x, gain):
    mean = jnp.mean(x, -1, keepdims=True)
    return (x - mean) * lax.rsqrt(jnp.var(x, -1, keepdims=True) + 1e-5) * gain[None, None, :]


def transformer(params, tokens, key, rate=0.1):
    """Causal multi-head attention and a GELU MLP per block, pre-layer-norm, dropout on the
    attention weights (``random_bits`` through `jax.random.bernoulli`)."""
    x = params["embed"][tokens]
    batch = tokens.shape[0]
    causal = jnp.tril(jnp.ones((T, T), bool))
    for block, k in zip(
        params["blocks"], jax.random.split(key, len(params["blocks"])), strict=True
    ):
        h = layer_norm(x, block["g1"])
        q, kk, v = (h @ block[w] for w in ("wq", "wk", "wv"))
        q, kk, v = (a.reshape(batch, T, HEADS, D // HEADS) for a in (q, kk, v))
        scores = jnp.einsum("bthd,bshd->bhts", q, kk) / np.sqrt(D // HEADS)
        weights = jax.nn.softmax(jnp.where(causal, scores, -1e9), axis=-1)
        keep = jax.random.bernoulli(k, 1.0 - rate, weights.shape)
        weights = jnp.where(keep, weights / (1.0 - rate), 0.0)
        attended = jnp.einsum("bhts,bshd->bthd", weights, v).reshape(batch, T, D)
        x = x + attended @ block["wo"]
        x = x + jax.nn.gelu(layer_norm(x, block["g2"]) @ block["w1"]) @ block["w2"]
    return x @ params["out"]


def transformer_loss(params, tokens, key):
    """Predict each next token of a sequence that counts up modulo VOCAB."""
    logits = transformer(params, tokens[:, :-1], key)
    targets = jax.nn.one_hot(tokens[:, 1:], VOCAB)
    return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * targets, axis=-1))


def counting_sequences(n=8, seed=0):
    starts = np.random.default_rng(seed).integers(0, VOCAB, n)
    return jnp.asarray((starts[:, None] + np.arange(T + 1)[None, :]) % VOCAB)


def test_transformer_traced_primitives_all_have_rules():
    params, tokens, key = (
        init_transformer(jax.random.key(0)),
        counting_sequences(),
        jax.random.key(1),
    )
    names = primitive_names(jax.make_jaxpr(transformer_loss)(params, tokens, key).jaxpr)
    names |= primitive_names(jax.make_jaxpr(ad.grad(transformer_loss))(params, tokens, key).jaxpr)
    assert {"random_bits", "dot_general", "erf"} & names
    missing = {n for n in names if n not in jvp_rules or n not in vjp_rules}
    assert not missing, missing


def test_transformer_trained_with_jaxls_grad_equals_jax_grad():
    """Ten SGD steps with a fresh dropout key each, under `jit`: the losses agree
    to float32 rounding and fall; the dropout masks are the same (constants in both)."""
    params, tokens = init_transformer(jax.random.key(0)), counting_sequences()

    batches = [(tokens, key) for key in jax.random.split(jax.random.key(2), 10)]
    ours, theirs = (
        sgd_losses(g, transformer_loss, params, batches, 0.3, jit=fast_jit)
        for g in (ad.grad, jax.grad)
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < 0.8 * ours[0]
