"""The rule tables against a catalogue of the models people differentiate: every primitive in
the jaxpr of each model, and in the jaxpr of jaxls's own gradient of it (which a Hessian
differentiates again), has both a JVP and a VJP rule. A model that needs a primitive without
one fails here, naming it.

The catalogue: a ResNet-style CNN (strided, dilated and grouped convolutions, max and
average pooling, batch normalisation), a 2-layer transformer (attention, layer norm, GELU,
dropout), an FNO-style spectral layer (`jnp.fft`), a graph network's message passing
(`segment_sum`, `segment_max`), and the functions of `jnp.linalg` and `jax.scipy.linalg`
that jax differentiates. Each model's gradient is checked against `jax.grad` in the files
of its rules (test_ad_rules_nn.py, test_ad_rules_fft.py, test_ad_rules_linalg.py, ...);
here only the tables.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxls.ad as ad
from jaxls._src.ad.registry import jvp_rules, vjp_rules
from tests.helpers import primitive_names
from tests.test_ad_rules_fft import spectral_layer
from tests.test_ad_rules_nn import (
    cnn_loss,
    counting_sequences,
    init_cnn,
    init_transformer,
    synthetic_images,
    transformer_loss,
)


def _matrix(n=4, m=None, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, m or n)) / np.sqrt(n)
    return jnp.asarray(a + (2 * np.eye(n, m or n) if m in (None, n) else 0), jnp.float32)


def _gnn(params, features, senders, receivers):
    """One round of message passing: messages along edges, summed and maxed per node."""
    messages = jnp.tanh(features[senders] @ params["w"])
    total = jax.ops.segment_sum(messages, receivers, num_segments=features.shape[0])
    largest = jax.ops.segment_max(messages, receivers, num_segments=features.shape[0])
    return jnp.sum((total + largest) ** 2)


def _spd():
    return _matrix() @ _matrix().T + jnp.eye(4)


def _grid():
    return jnp.sin(jnp.linspace(0, 6, 32))[None, :] * jnp.ones((4, 1))


# name -> (function, a thunk making its arguments): only the arguments' shapes are needed
# (`jax.eval_shape`), and only when the entry's test runs, not when every xdist worker
# collects the module.
CATALOGUE = {
    "cnn": (cnn_loss, lambda: (init_cnn(jax.random.key(0)), *synthetic_images())),
    "transformer": (
        transformer_loss,
        lambda: (init_transformer(jax.random.key(0)), counting_sequences(), jax.random.key(1)),
    ),
    "fno_layer": (
        lambda p, u: jnp.sum(spectral_layer(p, u) ** 2),
        lambda: ({"w_re": jnp.ones(8), "w_im": jnp.zeros(8), "a": jnp.asarray(0.1)}, _grid()),
    ),
    "gnn": (
        _gnn,
        lambda: (
            {"w": _matrix(3)[:3]},
            jnp.ones((5, 3)),
            jnp.array([0, 1, 2, 3, 4, 0]),
            jnp.array([1, 2, 3, 4, 0, 2]),
        ),
    ),
    "solve_inv_det": (
        lambda a: (
            jnp.sum(jnp.linalg.solve(a, jnp.ones(4)))
            + jnp.sum(jnp.linalg.inv(a))
            + jnp.linalg.det(a)
            + jnp.linalg.slogdet(a)[1]
        ),
        lambda: (_matrix(),),
    ),
    "cholesky_eigh": (
        lambda s: jnp.sum(jnp.linalg.cholesky(s)) + jnp.sum(jnp.linalg.eigh(s)[0] ** 2),
        lambda: (_spd(),),
    ),
    "svd_pinv_lstsq_norms": (
        lambda a: (
            jnp.sum(jnp.linalg.svd(a, full_matrices=False)[0] ** 2)
            + jnp.sum(jnp.linalg.pinv(a))
            + jnp.sum(jnp.linalg.lstsq(a, jnp.ones(5))[0])
            + jnp.linalg.norm(a, 2)
            + jnp.linalg.norm(a, "nuc")
        ),
        lambda: (_matrix(5, 3),),
    ),
    "qr": (lambda a: jnp.sum(jnp.linalg.qr(a)[0] ** 3), lambda: (_matrix(5, 3),)),
    "expm": (lambda a: jnp.sum(jax.scipy.linalg.expm(0.5 * a)), lambda: (_matrix(),)),
    "eigvals": (lambda a: jnp.sum(jnp.abs(jnp.linalg.eigvals(a)) ** 2), lambda: (_matrix(),)),
    "tridiagonal_solve": (
        lambda d, b: jnp.sum(
            jax.lax.linalg.tridiagonal_solve(0.1 * d.at[0].set(0), 3 + d, 0.1 * d.at[-1].set(0), b)
        ),
        lambda: (jnp.linspace(0.5, 1.5, 4), jnp.ones((4, 2))),
    ),
}


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_every_primitive_of_the_catalogue_has_both_rules(name):
    fun, make_args = CATALOGUE[name]
    args = jax.eval_shape(make_args)  # the jaxprs need the arguments' shapes only
    names = primitive_names(jax.make_jaxpr(fun)(*args).jaxpr)
    missing = sorted(n for n in names if n not in jvp_rules or n not in vjp_rules)
    assert not missing, f"{name}: no rules for {missing}"
    # What jaxls's gradient emits is differentiated again by a Hessian.
    names = primitive_names(jax.make_jaxpr(ad.grad(fun))(*args).jaxpr)
    missing = sorted(n for n in names if n not in jvp_rules or n not in vjp_rules)
    assert not missing, f"{name}, its gradient: no rules for {missing}"
