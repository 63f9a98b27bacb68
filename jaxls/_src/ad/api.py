"""The public transforms, with jax's signatures: ``jvp``, ``vjp``, ``grad``, ... on pytrees.

Each traces the function once to a jaxpr (`jax.make_jaxpr`) and interprets it with
jaxls's own rules (`forward`, `reverse`); what they return is ordinary JAX computation, so
`jax.jit` and `jax.vmap` compose with every transform and XLA compiles the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import jaxls._src.ad.rules  # noqa: F401  (registers the rule tables)
from jaxls._src.ad import jaxpr as jx
from jaxls._src.ad.forward import jvp_closed
from jaxls._src.ad.reverse import backward_sweep, forward_sweep


def _is_float(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _zeros(x):
    return jnp.zeros(jnp.shape(x), jnp.result_type(x))


def _primals(c: jx.Closed, flat) -> list:
    """The primals as arrays of the traced input types (a Python ``2.0`` is ``float32``
    without x64, and every rule must see that dtype)."""
    return [jnp.asarray(p, v.aval.dtype) for p, v in zip(flat, c.jaxpr.invars, strict=True)]


def jvp(f: Callable, primals: Sequence, tangents: Sequence):
    """Forward mode: ``(f(*primals), J f(primals) . tangents)``, like `jax.jvp`.

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> value, tangent = jaxls.ad.jvp(jnp.sin, (0.0,), (2.0,))
      >>> print(float(value), float(tangent))
      0.0 2.0
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jaxls.ad.jvp: `primals` and `tangents` must be tuples or lists.")
    if jax.tree.structure(tuple(primals)) != jax.tree.structure(tuple(tangents)):
        raise ValueError(
            "jaxls.ad.jvp: `primals` and `tangents` must have the same structure, got "
            f"{jax.tree.structure(tuple(primals))} and {jax.tree.structure(tuple(tangents))}."
        )
    c, _, out_tree = jx.make_jaxpr(f, *primals)
    flat_p = _primals(c, jax.tree.leaves(tuple(primals)))
    flat_t = []
    for p, t in zip(flat_p, jax.tree.leaves(tuple(tangents)), strict=True):
        if jnp.shape(t) != jnp.shape(p):
            raise ValueError(
                f"jaxls.ad.jvp: a tangent of shape {jnp.shape(t)} for a primal of shape "
                f"{jnp.shape(p)}."
            )
        flat_t.append(jnp.asarray(t, jnp.result_type(p)) if _is_float(p) else None)
    outs, touts = jvp_closed(c, flat_p, flat_t)
    touts = [_zeros(o) if t is None else t for o, t in zip(outs, touts, strict=True)]
    return jax.tree.unflatten(out_tree, outs), jax.tree.unflatten(out_tree, touts)


def vjp(f: Callable, *primals, has_aux: bool = False):
    """Reverse mode: ``(f(*primals), vjp_fn)`` with ``vjp_fn(ct) = ct . J``, like `jax.vjp`.

    The forward sweep runs now and keeps its intermediate values (the tape); each call of
    ``vjp_fn`` runs the backward sweep over them. With ``has_aux``, ``f`` returns
    ``(out, aux)`` and the result is ``(out, vjp_fn, aux)``.
    """
    c, in_tree, out_tree = jx.make_jaxpr(f, *primals)
    flat_p = _primals(c, jax.tree.leaves(primals))
    outs, tape = forward_sweep(c, flat_p, [_is_float(p) for p in flat_p])
    out = jax.tree.unflatten(out_tree, outs)
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError("jaxls.ad.vjp(has_aux=True): `f` must return a pair (out, aux).")
        out, aux = out
        diff_tree = jax.tree.structure(out)
        num_diff = diff_tree.num_leaves
    else:
        diff_tree, num_diff = out_tree, out_tree.num_leaves

    static = _Pullback(
        c,
        in_tree,
        diff_tree,
        [jnp.result_type(o) for o in outs[:num_diff]],
        len(outs) - num_diff,
        [(jnp.shape(p), jnp.result_type(p)) for p in flat_p],
    )
    # A `Partial` is a pytree (its tape is the data): `vjp_fn` can leave a `jax.jit`.
    vjp_fn = jax.tree_util.Partial(static, tape)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


class _Pullback:
    """The backward sweep of one traced function, given its tape and an output cotangent."""

    def __init__(self, c, in_tree, diff_tree, out_dtypes, num_aux, primals):
        self.c, self.in_tree, self.diff_tree = c, in_tree, diff_tree
        self.out_dtypes, self.num_aux, self.primals = out_dtypes, num_aux, primals

    def __call__(self, tape, ct):
        if jax.tree.structure(ct) != self.diff_tree:
            raise ValueError(
                f"jaxls.ad.vjp: the cotangent's structure {jax.tree.structure(ct)} differs "
                f"from the output's {self.diff_tree}."
            )
        leaves = jax.tree.leaves(ct)
        flat_ct = [jnp.asarray(x, d) for x, d in zip(leaves, self.out_dtypes, strict=True)]
        cts = backward_sweep(self.c, tape, flat_ct + [None] * self.num_aux)
        cts = [
            jnp.zeros(shape, dtype) if x is None else x
            for (shape, dtype), x in zip(self.primals, cts, strict=True)
        ]
        return jax.tree.unflatten(self.in_tree, cts)


def _argnums(call: str, argnums, nargs: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            raise ValueError(f"jaxls.ad.{call}: argnums {argnums!r} out of range ({nargs} args).")
    return tuple(n % nargs for n in nums)


def _partial(f, args, nums):
    """``g(*diff_args)``: ``f`` with the arguments not in ``nums`` fixed."""

    def g(*diff):
        full = list(args)
        for n, d in zip(nums, diff, strict=True):
            full[n] = d
        return f(*full)

    return g, tuple(args[n] for n in nums)


def value_and_grad(f: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """``(f(x), grad f(x))`` by reverse mode, like `jax.value_and_grad`."""

    def value_and_grad_f(*args):
        nums = _argnums("value_and_grad", argnums, len(args))
        g, diff = _partial(f, args, nums)
        res = vjp(g, *diff, has_aux=has_aux)
        value = res[0]
        if jnp.shape(value) != () or not _is_float(value):
            raise TypeError(
                "jaxls.ad.grad: `f` must return a real scalar, got "
                f"{jnp.result_type(value)}{list(jnp.shape(value))}."
            )
        grads = res[1](jnp.ones((), jnp.result_type(value)))
        grads = grads[0] if isinstance(argnums, int) else grads
        return ((value, res[2]) if has_aux else value), grads

    return value_and_grad_f


def grad(f: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """The gradient of a real scalar function by reverse mode, like `jax.grad`.

    Example:
      >>> import jax.numpy as jnp, jaxls.ad
      >>> loss = lambda w1, w2: w2 * jnp.log(w1) + jnp.sqrt(w2 * jnp.log(w1))
      >>> dw1, dw2 = jaxls.ad.grad(loss, argnums=(0, 1))(2.0, 5.0)
      >>> print(round(float(dw1), 6), round(float(dw2), 6))
      3.171448 0.879312
    """
    vg = value_and_grad(f, argnums, has_aux)

    def grad_f(*args):
        (value, g) = vg(*args)
        return (g, value[1]) if has_aux else g

    return grad_f


def _jacobian_tree(flat_jac, out_shapes, x):
    """Reshape per-output-leaf Jacobians ``(*out_shape or out_size, n)`` over the flattened
    input into jax's layout:
    ``out_leaf.shape + in_leaf.shape`` for each (output leaf, input leaf)."""
    in_leaves, in_tree = jax.tree.flatten(x)
    sizes = [int(np.prod(jnp.shape(leaf))) for leaf in in_leaves]
    cuts = np.cumsum(sizes)[:-1].tolist()
    result = []
    for jac, out_shape in zip(flat_jac, out_shapes, strict=True):
        jac = jac.reshape((*out_shape, sum(sizes)))
        parts = jnp.split(jac, cuts, axis=-1) if cuts else [jac]
        parts = [
            p.reshape((*out_shape, *jnp.shape(leaf)))
            for p, leaf in zip(parts, in_leaves, strict=True)
        ]
        result.append(jax.tree.unflatten(in_tree, parts))
    return result


def jacfwd(f: Callable, argnums=0) -> Callable:
    """The Jacobian by forward mode, one JVP per input coordinate (vmapped), like `jax.jacfwd`."""

    def jac_f(*args):
        nums = _argnums("jacfwd", argnums, len(args))
        g, diff = _partial(f, args, nums)
        flat, unravel = ravel_pytree(diff)
        push = lambda v: jvp(lambda z: g(*unravel(z)), (flat,), (v,))[1]
        basis = jnp.eye(flat.size, dtype=flat.dtype)
        jac = jax.vmap(push, out_axes=-1)(basis)
        out_leaves, out_tree = jax.tree.flatten(jac)
        shaped = _jacobian_tree(out_leaves, [jnp.shape(j)[:-1] for j in out_leaves], diff)
        shaped = [s if not isinstance(argnums, int) else s[0] for s in shaped]
        return jax.tree.unflatten(out_tree, shaped)

    return jac_f


def jacrev(f: Callable, argnums=0) -> Callable:
    """The Jacobian by reverse mode, one VJP per output coordinate (vmapped), like `jax.jacrev`.

    The pulled-back rows stay leaf by leaf (no flattening of the input pytree), so a large
    parameter pytree costs no concatenation; a function with a single output gets one VJP
    without a `vmap` over a batch of one.
    """

    def jac_f(*args):
        nums = _argnums("jacrev", argnums, len(args))
        g, diff = _partial(f, args, nums)
        out, pull = vjp(g, *diff)
        flat_out, unravel_out = ravel_pytree(out)
        basis = jnp.eye(flat_out.size, dtype=flat_out.dtype)
        if flat_out.size == 1:  # one output: one VJP, no batch of one to vmap over
            rows = jax.tree.map(lambda r: r[None], pull(unravel_out(basis[0])))
        else:
            rows = jax.vmap(lambda ct: pull(unravel_out(ct)))(basis)  # leaves: (m, *leaf)
        out_leaves, out_tree = jax.tree.flatten(out)
        shaped, start = [], 0
        for leaf in out_leaves:
            size, shape = int(np.prod(jnp.shape(leaf))), jnp.shape(leaf)
            block = (
                rows
                if len(out_leaves) == 1
                else jax.tree.map(lambda r, s=start, n=size: r[s : s + n], rows)
            )
            tree = jax.tree.map(lambda r, shape=shape: r.reshape((*shape, *r.shape[1:])), block)
            shaped.append(tree[0] if isinstance(argnums, int) else tree)
            start += size
        return jax.tree.unflatten(out_tree, shaped)

    return jac_f


def hessian(f: Callable, argnums=0) -> Callable:
    """The Hessian, forward over reverse: ``jacfwd(jacrev(f))``, like `jax.hessian`."""
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f: Callable, x, v):
    """The Hessian-vector product ``H(x) v`` of a scalar ``f``, forward over reverse: one JVP
    of the gradient, never the Hessian itself."""
    return jvp(grad(f), (x,), (v,))[1]


def checkpoint(f: Callable, **kwargs) -> Callable:
    """Mark ``f`` to be recomputed, not stored, by reverse mode (cuts memory for time).

    The forward sweep keeps only ``f``'s inputs; the backward sweep re-runs ``f`` (behind an
    optimisation barrier so XLA does not merge the two runs) and then its backward sweep.
    The marking is `jax.checkpoint`'s (``remat``) equation, so ``kwargs`` (``policy``,
    ``prevent_cse``) are jax's; no JAX derivative rule is used.
    """
    return jax.checkpoint(f, **kwargs)


__all__ = [
    "checkpoint",
    "grad",
    "hessian",
    "hvp",
    "jacfwd",
    "jacrev",
    "jvp",
    "value_and_grad",
    "vjp",
]
