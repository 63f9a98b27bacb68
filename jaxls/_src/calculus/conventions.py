r"""Gradient, Hessian, Jacobian and differential, with their layouts said out loud.

The conventions (the lecture's, and the Matrix Cookbook's):

* ``f : R^n -> R``: the gradient ``grad f(x) = df/dx`` has ``x``'s shape, and
  ``df = <grad f(x), dx>`` (``<A, B> = tr(A^T B)``). For ``f`` of an ``m x n`` matrix ``X``
  the gradient is the ``m x n`` matrix of the ``df / dX_ij``.
* The Hessian ``H[i, j] = d^2 f / dx_i dx_j`` has shape ``x.shape + x.shape``: of a
  matrix ``X``, ``(m, n, m, n)`` with ``H[i, j, k, l] = d^2 f / dX_ij dX_kl``.
* ``f : R^n -> R^m``: two layouts of the Jacobian, both in use, so none is the default:

  - ``layout="numerator"`` (JAX's, ``jax.jacfwd``): ``m x n``, ``J[i, j] = df_i / dx_j``;
    its rows are the gradients (of shape ``out_shape + in_shape``).
  - ``layout="denominator"`` (the lecture's ``J = df / dx^T``): ``n x m``,
    ``J[j, i] = df_i / dx_j``; its columns are the gradients (``in_shape + out_shape``).

  One is the other's transpose, never silently: ``layout`` is a required keyword.
* The lecture's ``H = (J(grad f))^T``: with the denominator layout,
  ``hessian(f)(x) == jacobian(gradient(f), layout="denominator")(x).T``; with the
  numerator layout no transpose is needed (and ``H`` is symmetric where Schwarz's
  theorem holds, so both agree there).

Everything is computed by `jaxls.ad` (reverse mode for gradients, forward over reverse for
Hessians, forward mode for Jacobians), on pytrees, under `jax.jit` and `jax.vmap`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxls.ad
from jaxls._src.results import PyTree

LAYOUTS = ("numerator", "denominator")


def _check_callable(call: str, name: str, fun) -> None:
    if not callable(fun):
        raise TypeError(
            f"jaxls.calculus.{call}: `{name}` must be callable, got {fun!r} "
            f"(a {type(fun).__name__})."
        )


def _check_argnums(call: str, argnums) -> None:
    try:
        nums = (
            [operator.index(n) for n in argnums]
            if isinstance(argnums, (tuple, list))
            else [operator.index(argnums)]
        )
    except TypeError:
        raise TypeError(
            f"jaxls.calculus.{call}(argnums={argnums!r}): `argnums` must be an int or a "
            "sequence of ints, the positions of the arguments to differentiate."
        ) from None
    if len(set(nums)) != len(nums):
        raise ValueError(
            f"jaxls.calculus.{call}(argnums={argnums!r}): `argnums` names an argument twice."
        )


def check_layout(call: str, layout) -> str:
    """``layout``, checked: ``"numerator"`` or ``"denominator"``, never a default."""
    meaning = (
        'layout="numerator" (JAX\'s, m x n: J[i, j] = df_i/dx_j, rows are gradients) or '
        'layout="denominator" (the lecture\'s df/dx^T, n x m: columns are gradients)'
    )
    if layout is None:
        raise TypeError(
            f"jaxls.calculus.{call}: `layout` is required, as the two layouts of a Jacobian "
            f"are each other's transpose: pass {meaning}."
        )
    if layout not in LAYOUTS:
        raise ValueError(f"jaxls.calculus.{call}(layout={layout!r}): `layout` must be {meaning}.")
    return layout


def scalar_valued(call: str, f: Callable, name: str = "f") -> Callable:
    """``f``, raising a `TypeError` naming ``jaxls.calculus.<call>`` and ``name`` when it
    returns anything but one real floating scalar (checked as it is traced: no cost)."""

    def checked(*args, **kwargs):
        out = f(*args, **kwargs)
        leaves = jax.tree.leaves(out)
        if len(leaves) != 1 or not jax.tree_util.treedef_is_leaf(jax.tree.structure(out)):
            got = f"a {type(out).__name__} with {len(leaves)} leaves"
        else:
            shape, dtype = jnp.shape(out), jnp.result_type(out)
            if shape == () and jnp.issubdtype(dtype, jnp.floating):
                return out
            got = f"{dtype}{list(shape)}"
        raise TypeError(
            f"jaxls.calculus.{call}: `{name}` must return a real floating scalar (a gradient "
            f"belongs to a scalar function), got {got}. For a vector-valued function use "
            'jaxls.calculus.jacobian(f, layout="numerator" or "denominator").'
        )

    return checked


def gradient(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    r"""The gradient ``grad f(x)``, shaped like ``x``: ``df = <grad f(x), dx>``.

    For ``f`` of a matrix ``X`` (``m x n``) the gradient is the ``m x n`` matrix
    ``[df / dX_ij]``, not a vector; for a pytree ``x``, a pytree like ``x``. Reverse mode
    (`jaxls.ad.grad`).

    Args:
      f: a function returning one real floating scalar.
      argnums: the position (or positions: a tuple of gradients) of the argument(s).

    Returns:
      A function of ``f``'s arguments returning the gradient.

    Raises:
      TypeError: ``f`` not callable, ``argnums`` not ints, or (when called) ``f`` not
        returning a real scalar, each naming ``jaxls.calculus.gradient``.

    References:
      Petersen & Pedersen, *The Matrix Cookbook* (2012), (81) and (100).

    Example:
      ``f(X) = tr(A X)`` has the gradient ``A^T``, shaped like ``X`` (here ``2 x 3``):

      >>> import jax.numpy as jnp, jaxls.calculus as mc
      >>> A = jnp.arange(6.0).reshape(3, 2)
      >>> print(mc.gradient(lambda X: jnp.trace(A @ X))(jnp.ones((2, 3))))
      [[0. 2. 4.]
       [1. 3. 5.]]
    """
    _check_callable("gradient", "f", f)
    _check_argnums("gradient", argnums)
    return jaxls.ad.grad(scalar_valued("gradient", f), argnums)


def hessian(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    r"""The Hessian ``H[i, j] = d^2 f / dx_i dx_j``, of shape ``x.shape + x.shape``.

    ``d^2 f = <H dx_1, dx>``; for ``f`` of an ``m x n`` matrix ``X``, the ``(m, n, m, n)``
    array ``H[i, j, k, l] = d^2 f / dX_ij dX_kl`` (JAX's layout; reshaped row-major it is
    the ``mn x mn`` matrix acting on ``X.reshape(-1)``). The lecture's
    ``H = (J(grad f))^T`` holds with `jacobian` in the denominator layout. Forward over
    reverse (`jaxls.ad.hessian`).

    Args:
      f: a function returning one real floating scalar.
      argnums: the position (or positions: nested tuples of blocks) of the argument(s).

    Returns:
      A function of ``f``'s arguments returning the Hessian.

    Raises:
      TypeError: as `gradient`, naming ``jaxls.calculus.hessian``.

    Example:
      ``f(x) = x^T A x`` has ``H = A + A^T``, ``(J(grad f))^T`` in the lecture's layout:

      >>> import jax.numpy as jnp, jaxls.calculus as mc
      >>> A = jnp.array([[1.0, 2.0], [0.0, 3.0]])
      >>> f = lambda x: x @ A @ x
      >>> x = jnp.array([1.0, -1.0])
      >>> print(mc.hessian(f)(x))
      [[2. 2.]
       [2. 6.]]
      >>> print(mc.jacobian(mc.gradient(f), layout="denominator")(x).T)
      [[2. 2.]
       [2. 6.]]
    """
    _check_callable("hessian", "f", f)
    _check_argnums("hessian", argnums)
    return jaxls.ad.hessian(scalar_valued("hessian", f), argnums)


def _to_denominator(jac: PyTree, args: tuple, argnums) -> PyTree:
    """Each block ``out_shape + in_shape`` of a numerator-layout Jacobian moved to
    ``in_shape + out_shape``; the nesting (outputs outside, inputs inside) is kept."""
    diff = args[argnums] if not isinstance(argnums, (tuple, list)) else [args[n] for n in argnums]
    in_ndims = [np.ndim(leaf) for leaf in jax.tree.leaves(diff)]
    blocks, tree = jax.tree.flatten(jac)
    moved = []
    for k, block in enumerate(blocks):
        n_in = in_ndims[k % len(in_ndims)]
        n_out = block.ndim - n_in
        axes = (*range(n_out, block.ndim), *range(n_out))
        moved.append(jnp.transpose(block, axes))
    return jax.tree.unflatten(tree, moved)


def jacobian(
    f: Callable, argnums: int | Sequence[int] = 0, *, layout: str | None = None
) -> Callable:
    r"""The Jacobian of ``f``, in the layout named by ``layout`` (required).

    - ``layout="numerator"``: JAX's ``m x n``, ``J[i, j] = df_i / dx_j``; each block has
      shape ``out_shape + in_shape`` (as `jax.jacfwd`); the rows are the gradients.
    - ``layout="denominator"``: the lecture's ``df / dx^T``, ``n x m``,
      ``J[j, i] = df_i / dx_j``; each block has shape ``in_shape + out_shape``; the columns
      are the gradients.

    For pytrees, the blocks nest as in `jax.jacfwd` (the output's tree outside, the
    input's inside) in both layouts. Forward mode (`jaxls.ad.jacfwd`).

    Args:
      f: a function of arrays (pytrees) returning arrays (a pytree).
      argnums: the position (or positions) of the argument(s).
      layout: ``"numerator"`` or ``"denominator"``; no default (the two are each other's
        transpose, so a default would be a silent transpose for half the readers).

    Returns:
      A function of ``f``'s arguments returning the Jacobian.

    Raises:
      TypeError: ``layout`` not given, ``f`` not callable, ``argnums`` not ints.
      ValueError: ``layout`` misspelt; each naming ``jaxls.calculus.jacobian``.

    Example:
      The lecture's ``f(x, y) = (x + y, x - y)`` at ``(1, 2)``, then ``f(x) = A x`` for a
      ``3 x 2`` matrix ``A``: ``J = A`` (numerator), ``A^T`` (denominator):

      >>> import jax.numpy as jnp, jaxls.calculus as mc
      >>> f = lambda v: jnp.array([v[0] + v[1], v[0] - v[1]])
      >>> print(mc.jacobian(f, layout="numerator")(jnp.array([1.0, 2.0])))
      [[ 1.  1.]
       [ 1. -1.]]
      >>> A = jnp.arange(6.0).reshape(3, 2)
      >>> print(mc.jacobian(lambda x: A @ x, layout="denominator")(jnp.ones(2)))
      [[0. 2. 4.]
       [1. 3. 5.]]
    """
    layout = check_layout("jacobian", layout)
    _check_callable("jacobian", "f", f)
    _check_argnums("jacobian", argnums)
    jac = jaxls.ad.jacfwd(f, argnums)
    if layout == "numerator":
        return jac

    def jac_denominator(*args, **kwargs):
        return _to_denominator(jac(*args, **kwargs), args, argnums)

    return jac_denominator


def same_structure(a: PyTree, b: PyTree) -> bool:
    """Whether two pytrees have the same structure."""
    tree: Any = jax.tree.structure(a)  # typed: jaxlib's PyTreeDef has no stub for ==
    return bool(tree == jax.tree.structure(b))


def check_like(call: str, name: str, value: PyTree, like: PyTree, like_name: str = "x") -> None:
    """A `ValueError` naming the call and ``name`` unless ``value`` has the structure and
    the leaf shapes of ``like``."""
    shapes = [jnp.shape(v) for v in jax.tree.leaves(value)]
    like_shapes = [jnp.shape(v) for v in jax.tree.leaves(like)]
    if not same_structure(value, like) or shapes != like_shapes:
        tree, like_tree = jax.tree.structure(value), jax.tree.structure(like)
        raise ValueError(
            f"jaxls.calculus.{call}: `{name}` must have the structure and shapes of "
            f"`{like_name}`: got {tree} with shapes {shapes}, for {like_tree} with shapes "
            f"{like_shapes}."
        )


def differential(f: Callable, x: PyTree, dx: PyTree) -> Any:
    r"""The differential ``df`` of ``f`` at ``x`` in the direction ``dx``: a JVP.

    ``df = f'(x)[dx]``, the linear part of ``f(x + dx) - f(x)``; for a scalar ``f``,
    ``df = <grad f(x), dx>``. ``x`` may be a matrix or a pytree (a tuple ``(X, Y)`` for a
    function of two matrices), ``dx`` the same; the result is shaped like ``f(x)``.
    Forward mode (`jaxls.ad.jvp`).

    Args:
      f: a function of one argument (a pytree).
      x: the point.
      dx: the direction, shaped like ``x``.

    Returns:
      ``df``, shaped like ``f(x)``.

    Raises:
      TypeError: ``f`` not callable.
      ValueError: ``dx`` not shaped like ``x``; both naming ``jaxls.calculus.differential``.

    Example:
      The lecture's ``d(det X) = det X <X^{-T}, dX>`` and ``d(X^{-1}) = -X^{-1} dX X^{-1}``:

      >>> import jax.numpy as jnp, jaxls.calculus as mc
      >>> X = jnp.array([[2.0, 1.0], [0.0, 1.0]])
      >>> dX = jnp.array([[0.0, 1.0], [1.0, 0.0]])
      >>> print(mc.differential(jnp.linalg.det, X, dX))
      -1.0
      >>> print(jnp.linalg.det(X) * jnp.sum(jnp.linalg.inv(X).T * dX))
      -1.0
      >>> print(mc.differential(jnp.linalg.inv, X, dX))
      [[ 0.25 -0.75]
       [-0.5   0.5 ]]
      >>> Xi = jnp.linalg.inv(X)
      >>> print(-Xi @ dX @ Xi)
      [[ 0.25 -0.75]
       [-0.5   0.5 ]]
    """
    _check_callable("differential", "f", f)
    check_like("differential", "dx", dx, x)
    return jaxls.ad.jvp(f, (x,), (dx,))[1]


__all__ = ["LAYOUTS", "differential", "gradient", "hessian", "jacobian"]
