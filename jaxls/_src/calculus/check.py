r"""Check a hand-derived gradient (or Hessian) against AD, and name the usual mistake.

`check_gradient` compares ``g(x, *args)`` with `jaxls.ad`'s gradient of ``f(x, *args)``;
`check_hessian` compares ``h(x, *args)`` with its Hessian. When they differ, the
difference is matched against the usual mistakes of a derivation by differentials
(`MISTAKES`), each a transform of the true derivative ``G`` computed by AD:

- ``"transpose"``: ``g = G^T`` for ``f`` of a matrix: a layout mistake (``df = tr(M dX)``
  gives the gradient ``M^T``, not ``M``).
- ``"sign"``: ``g = -G``.
- ``"factor_2"``: ``g = 2 G`` or ``g = G / 2``.
- ``"symmetrisation"``: ``g`` is right when the constant matrices (the square leaves of
  ``args``) are replaced by their symmetric parts, and wrong for the constants given (or
  it is ``G / 2`` there): ``2 A x`` or ``A x`` where ``(A + A^T) x`` was due, ``A b``
  where ``A^T b`` was due. The mistake is in the formula, not in its values at one ``A``
  (``f(x) = x^T A x`` depends on ``A``'s symmetric part alone), so this is the one test
  that needs the constants: pass them as ``args``, not closed over.
- ``"kronecker"`` (`check_hessian`, ``f`` of a matrix): the Kronecker factors swapped,
  ``kron(A, B)`` where ``kron(B, A)`` was due: the Hessian of the vector of the rows
  stacked (NumPy's ``reshape``) read as that of the columns stacked (the textbook's
  ``vec``, ``vec(A X B) = (B^T kron A) vec X``).

The method and its limits. Each candidate is compared at ``num_points`` points (``x`` and
random perturbations of it, symmetric where ``x`` is) so that a coincidence at one point (a
symmetric ``X`` hides a transpose; ``x = 0`` hides a factor) does not name a wrong mistake;
points where AD's derivative is not finite (outside ``f``'s domain) are dropped. A
candidate matches when its largest difference from ``g``, relative to the largest entry of
``G`` at each point, is within ``rtol``. Mistakes are tried in the order above; where two
transforms of ``G`` coincide (``f(X) = tr(A X)``: ``G^T = A``, which is also what
dropping ``A``'s transpose gives), the first is named and the message says the others fit
too. Only single mistakes are named: ``-2 G`` is "not one of the usual mistakes". The
constants are the caller's: with a symmetric ``A``, ``2 A x`` is the gradient, and is
called right.

`apply_mistake` makes each mistake on purpose, from a formula written in `jax.numpy`. The
tests make every mistake on every entry of `CATALOGUE` (and on classic forms of their own)
wherever it makes a difference, and require the right mistake named for at least 95% of
them and none called right (all of them with ``JAXLS_FULL_DIAGNOSIS=1``, a subset by
default).

The checks run eagerly, point by point, and return words: a diagnostic for tests and
teaching, not a transform to `jax.jit`. Eagerly, each primitive's executable is compiled
once and reused by every later check (a check of an ``f`` already seen takes milliseconds).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxls.ad
from jaxls._src.ad import jaxpr as jx
from jaxls._src.calculus.conventions import same_structure, scalar_valued
from jaxls._src.results import PyTree

GRADIENT_MISTAKES = ("transpose", "sign", "factor_2", "symmetrisation")
"""The mistakes `check_gradient` names, in the order it tries them (see the module)."""
HESSIAN_MISTAKES = ("kronecker", "sign", "factor_2", "symmetrisation")
"""The mistakes `check_hessian` names, in the order it tries them (see the module)."""
MISTAKES = ("transpose", "sign", "factor_2", "symmetrisation", "kronecker")
"""Every mistake `apply_mistake` makes (see the module)."""

_WHY = {
    "transpose": (
        "`g` is the transpose of the gradient: a layout mistake. The gradient of f of an "
        "m x n matrix X is the m x n matrix [df/dX_ij], read off df = <G, dX> = tr(G^T dX): "
        "df = tr(M dX) gives G = M^T, not M."
    ),
    "sign": (
        "`g` is minus the gradient: a sign mistake (d(X^-1) = -X^-1 dX X^-1, "
        "d(-log det X) = -<X^-T, dX>)."
    ),
    "double": (
        "`g` is twice the gradient: a factor of 2 (the 1/2 of (1/2) x^T A x cancels the 2 of "
        "d<x, x> = 2 <x, dx>)."
    ),
    "half": (
        "`g` is half the gradient: a factor of 2 lost (d<x, x> = <dx, x> + <x, dx> = "
        "2 <x, dx>: each factor of a product is differentiated)."
    ),
    "symmetric": (
        "`g` is right only when the constant matrices are symmetric: missing "
        "symmetrisation. <u, A dx> = <A^T u, dx>, so d(x^T A x) = <(A + A^T) x, dx>, not "
        "2 <A x, dx> (the lecture's 2 A x assumes A = A^T), and d(b^T A x) = <A^T b, dx>."
    ),
    "symmetric_half": (
        "`g` is A x where (A + A^T) x was due: missing symmetrisation. d(x^T A x) = "
        "<dx, A x> + <x, A dx> = <(A + A^T) x, dx>: one of the two terms was dropped."
    ),
    "kronecker": (
        "`h` has its Kronecker factors swapped: kron(A, B) where kron(B, A) was due. vec "
        "stacks the columns, vec(A X B) = (B^T kron A) vec X; a Hessian of the rows "
        "stacked (NumPy's reshape) has the factors the other way round."
    ),
}
_MISTAKE_OF = {
    "double": "factor_2",
    "half": "factor_2",
    "symmetric": "symmetrisation",
    "symmetric_half": "symmetrisation",
}


class GradientCheck(NamedTuple):
    """What `check_gradient` and `check_hessian` found.

    Attributes:
      ok: whether the hand-derived derivative agrees with AD at every point.
      mistake: None if ``ok`` or if no usual mistake explains the difference; otherwise
        the name of the mistake (one of `MISTAKES`).
      max_error: the largest difference from AD, relative to AD's largest entry, over the
        points.
      message: the finding in words: the mistake, and the rule it broke.
    """

    ok: bool
    mistake: str | None
    max_error: float
    message: str


# --- the mistakes, made on purpose ---------------------------------------------------------


def kronecker_swap(h, shape: tuple[int, ...]):
    """The Hessian of ``f`` of an ``m x n`` matrix (``(m, n, m, n)``) with its Kronecker
    factors swapped: the ``mn x mn`` matrix of the rows stacked, read as the columns'.
    NumPy in, NumPy out; JAX in, JAX out."""
    m, n = shape
    return h.reshape(n, m, n, m).transpose(1, 0, 3, 2)


def from_vec(h, shape: tuple[int, ...]):
    """The ``mn x mn`` Hessian of ``vec X`` (columns stacked) as the ``(m, n, m, n)``
    array ``H[i, j, k, l] = d^2 f / dX_ij dX_kl``."""
    return kronecker_swap(h, shape)


def _swap_last(leaf):
    return leaf.swapaxes(-1, -2) if leaf.ndim >= 2 else leaf


def _swap_stacked(leaf):
    """`_swap_last` of each point of a leaf stacked on a leading axis of points."""
    return leaf.swapaxes(-1, -2) if leaf.ndim >= 3 else leaf


def _is_constant_swap(eqn, varies: bool) -> bool:
    """A ``transpose`` of a square matrix that does not depend on ``x``."""
    if varies or jx.name(eqn) != "transpose":
        return False
    shape = jx.aval(eqn.invars[0]).shape
    perm = tuple(eqn.params["permutation"])
    rank = len(shape)
    swap = (*range(rank - 2), rank - 1, rank - 2)
    return rank >= 2 and perm == swap and shape[-1] == shape[-2]


def _without_constant_transposes(closed: jx.Closed, args: list, varies: list) -> list:
    """Evaluate a jaxpr with every transpose of a constant square matrix (one that does
    not depend on the first argument) left out: ``A^T -> A``."""
    jaxpr = closed.jaxpr
    env: dict = {}
    dep: dict = {}

    def read(atom):
        return jx.literal_value(atom) if jx.is_literal(atom) else env[atom]

    def depends(atom) -> bool:
        return False if jx.is_literal(atom) else dep[atom]

    for var, value in zip(jaxpr.constvars, closed.consts, strict=True):
        env[var], dep[var] = value, False
    for var, value, v in zip(jaxpr.invars, args, varies, strict=True):
        env[var], dep[var] = value, v
    for eqn in jaxpr.eqns:
        ins = [read(a) for a in eqn.invars]
        flags = [depends(a) for a in eqn.invars]
        varies_here = any(flags)
        if _is_constant_swap(eqn, varies_here):
            outs = ins
        elif jx.name(eqn) in jx.CALLS:
            outs = _without_constant_transposes(jx.call_body(eqn), ins, flags)
        else:
            outs = jx.bind(eqn, ins)
        for var, value in zip(eqn.outvars, outs, strict=True):
            env[var], dep[var] = value, varies_here
    return [read(a) for a in jaxpr.outvars]


def _assume_symmetric(formula: Callable) -> Callable:
    def wrong(x, *args):
        closed, _, out_tree = jx.make_jaxpr(formula, x, *args, call="calculus.apply_mistake")
        flat = jax.tree.leaves((x, *args))
        num_x = len(jax.tree.leaves(x))
        varies = [True] * num_x + [False] * (len(flat) - num_x)
        return jax.tree.unflatten(out_tree, _without_constant_transposes(closed, flat, varies))

    return wrong


def apply_mistake(mistake: str, formula: Callable) -> Callable:
    r"""The formula ``formula(x, *args)`` of a gradient (or Hessian) with ``mistake`` made.

    - ``"transpose"``: each matrix of the result transposed (``G^T``).
    - ``"sign"``: ``-G``; ``"factor_2"``: ``2 G``.
    - ``"symmetrisation"``: every transpose of a constant square matrix (one that does not
      depend on ``x``: ``A.T``, ``jnp.linalg.inv(A).T``) left out of the formula, as if the
      constants were symmetric: ``(A + A^T) x - b`` becomes ``2 A x - b``. Found by
      tracing the formula (`jax.make_jaxpr`): a transpose written as ``x @ A`` (for
      ``A^T x``) or inside an ``einsum`` is not seen, and the mistake then makes no
      difference.
    - ``"kronecker"``: for a Hessian of ``f`` of an ``m x n`` matrix (``(m, n, m, n)``,
      or ``mn x mn`` on ``vec X``), the Kronecker factors swapped (see `check_hessian`);
      any other result is left as it is.

    Where a mistake makes no difference (the transpose of a symmetric gradient, a
    symmetrisation without constants), the result equals ``formula``'s.

    Args:
      mistake: one of `MISTAKES`.
      formula: ``formula(x, *args)``, returning an array or a pytree of arrays.

    Returns:
      ``wrong(x, *args)``.

    Raises:
      ValueError: ``mistake`` not one of `MISTAKES`, naming ``jaxls.calculus.apply_mistake``.

    Example:
      >>> import jax.numpy as jnp, jaxls.calculus as mc
      >>> grad = lambda x, A: (A + A.T) @ x
      >>> wrong = mc.apply_mistake("symmetrisation", grad)
      >>> A, x = jnp.array([[1.0, 2.0], [0.0, 1.0]]), jnp.array([1.0, 1.0])
      >>> print(grad(x, A), wrong(x, A))
      [4. 4.] [6. 2.]
    """
    if mistake not in MISTAKES:
        raise ValueError(
            f"jaxls.calculus.apply_mistake(mistake={mistake!r}): `mistake` must be one of "
            f"{', '.join(repr(m) for m in MISTAKES)}."
        )
    if not callable(formula):
        raise TypeError(
            f"jaxls.calculus.apply_mistake: `formula` must be callable, got {formula!r}."
        )
    if mistake == "symmetrisation":
        return _assume_symmetric(formula)

    def wrong(x, *args):
        out = formula(x, *args)
        if mistake == "transpose":
            return jax.tree.map(_swap_last, out)
        if mistake == "sign":
            return jax.tree.map(jnp.negative, out)
        if mistake == "factor_2":
            return jax.tree.map(lambda leaf: 2 * leaf, out)
        shape = jnp.shape(x)  # "kronecker": Hessians of f of a matrix only
        if len(shape) != 2:
            return out
        if jnp.ndim(out) == 4:
            return kronecker_swap(out, shape)
        if jnp.shape(out) == (int(np.prod(shape)),) * 2:  # vec X's: K H K^T, K commutes vec
            return from_vec(out, shape).reshape(jnp.shape(out))
        return out

    return wrong


# --- the check ------------------------------------------------------------------------------


def _is_square(leaf) -> bool:
    """A floating square matrix (or a batch of them): a constant ``A`` that may need
    symmetrising."""
    shape, dtype = np.shape(leaf), jnp.result_type(leaf)
    return len(shape) >= 2 and shape[-1] == shape[-2] and bool(jnp.issubdtype(dtype, jnp.floating))


def _symmetric_part(leaf):
    """A square floating matrix (batch) replaced by its symmetric part (NumPy: nothing to
    compile); others as they are."""
    if not _is_square(leaf):
        return leaf
    array = np.asarray(leaf)
    return (0.5 * (array + np.swapaxes(array, -1, -2))).astype(array.dtype)


def _points(x: PyTree, num_points: int, seed: int) -> list:
    """``x`` and ``num_points - 1`` perturbations of it, by a tenth of each leaf's size
    (symmetric for a symmetric leaf). Drawn in NumPy: nothing to compile."""
    rng = np.random.default_rng(seed)
    leaves, tree = jax.tree.flatten(x)
    points = [x]
    for _ in range(num_points - 1):
        moved = []
        for leaf in leaves:
            array = np.asarray(leaf)
            noise = rng.standard_normal(array.shape)
            if _is_symmetric(array):
                noise = 0.5 * (noise + np.swapaxes(noise, -1, -2))
            rms = np.sqrt(np.mean(np.square(array))) if array.size else 0.0
            moved.append(jnp.asarray(array + 0.1 * (rms if rms > 0 else 1.0) * noise, array.dtype))
        points.append(jax.tree.unflatten(tree, moved))
    return points


def _is_symmetric(leaf) -> bool:
    array = np.asarray(leaf)
    return _is_square(array) and bool(np.array_equal(array, np.swapaxes(array, -1, -2)))


def _relative_error(u: list, c: list, scale, valid) -> float:
    """The largest ``|u - c|`` over the leaves (NumPy arrays with a leading axis of
    points), relative to ``scale``, over the valid points; infinite where the shapes
    differ (a transpose of a non-square gradient)."""
    if any(a.shape != b.shape for a, b in zip(u, c, strict=True)):
        return float("inf")
    per_point = np.max(
        [
            np.max(np.abs(a - b).reshape(len(a), -1), axis=1, initial=0.0)
            for a, b in zip(u, c, strict=True)
        ],
        axis=0,
    )
    with np.errstate(invalid="ignore"):
        return float(np.max(np.where(valid, per_point / scale, 0.0)))


def _scale_and_valid(truth: list):
    """Per point: AD's largest entry (the scale of the errors), and whether it is finite."""
    flat = [leaf.reshape(len(leaf), -1) for leaf in truth]
    finite = np.all([np.all(np.isfinite(a), axis=1) for a in flat], axis=0)
    with np.errstate(invalid="ignore"):
        largest = np.max([np.max(np.abs(a), axis=1, initial=0.0) for a in flat], axis=0)
    tiny = np.finfo(flat[0].dtype).tiny
    return np.maximum(np.where(finite, largest, 1.0), tiny), finite


def _check_config(call, name, fun, x, num_points, rtol, seed):
    for what, value in (("f", fun[0]), (name, fun[1])):
        if not callable(value):
            raise TypeError(
                f"jaxls.calculus.{call}: `{what}` must be callable, got {value!r} "
                f"(a {type(value).__name__})."
            )
    leaves = jax.tree.leaves(x)
    if not leaves or not all(jnp.issubdtype(jnp.result_type(v), jnp.floating) for v in leaves):
        raise TypeError(
            f"jaxls.calculus.{call}: `x` must be a real floating array (or a pytree of them), "
            f"got {x!r}."
        )
    try:
        if isinstance(num_points, (bool, np.bool_)):
            raise TypeError
        points = operator.index(num_points)
    except TypeError:
        points = 0
    if points < 1:
        raise ValueError(
            f"jaxls.calculus.{call}(num_points={num_points!r}): `num_points` must be an int "
            "of at least 1, the points (x and perturbations of it) where the check is made."
        )
    if rtol is not None and not (isinstance(rtol, (int, float)) and rtol > 0):
        raise ValueError(
            f"jaxls.calculus.{call}(rtol={rtol!r}): `rtol` must be a positive number or None "
            "(10 sqrt(eps) of x's dtype)."
        )
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"jaxls.calculus.{call}(seed={seed!r}): `seed` must be an int.")
    dtype = jnp.result_type(*leaves)
    return points, (10 * float(np.sqrt(jnp.finfo(dtype).eps)) if rtol is None else float(rtol))


def _check_shapes(call, name, user, x, allowed, wanted: str):
    """``user`` must have ``x``'s structure, each leaf a shape in ``allowed``."""
    x_leaves, u_leaves = jax.tree.leaves(x), jax.tree.leaves(user)
    if same_structure(user, x):
        bad = [
            (jnp.shape(u), jnp.shape(v))
            for u, v in zip(u_leaves, x_leaves, strict=True)
            if jnp.shape(u) not in allowed(jnp.shape(v))
        ]
        if not bad:
            return
        got = f"shape {bad[0][0]} for a leaf of x of shape {bad[0][1]}"
    else:
        got = f"{jax.tree.structure(user)} for x's {jax.tree.structure(x)}"
    raise ValueError(f"jaxls.calculus.{call}: `{name}` must return {wanted}; got {got}.")


def _diagnose(candidates, rtol, error, kind: str) -> GradientCheck:
    """The first candidate within ``rtol`` names the mistake."""
    matches = [label for label, err in candidates if err <= rtol]
    if not matches:
        return GradientCheck(
            False,
            None,
            error,
            f"`{kind}` differs from AD by up to {error:.3g} (relative), and is none of the "
            f"usual mistakes ({', '.join(MISTAKES)}) alone.",
        )
    label = matches[0]
    mistake = _MISTAKE_OF.get(label, label)
    others = sorted({_MISTAKE_OF.get(m, m) for m in matches[1:]} - {mistake})
    also = f" It is also what {' and '.join(others)} would give here." if others else ""
    return GradientCheck(False, mistake, error, _WHY[label].replace("`g`", f"`{kind}`") + also)


def _stacked(fun, points, args, first=None) -> list:
    """``fun(point, *args)`` at each point (``first``: its value at the first, known),
    eagerly: the primitives' executables are compiled once, for every check. Its leaves
    as NumPy arrays with a leading axis of points."""
    values = [fun(p, *args) if i or first is None else first for i, p in enumerate(points)]
    leaves = [jax.tree.leaves(v) for v in values]
    return [np.stack([np.asarray(v[i]) for v in leaves]) for i in range(len(leaves[0]))]


def _run(call, name, f, formula, x, args, order, num_points, rtol, seed) -> GradientCheck:
    num_points, rtol = _check_config(call, name, (f, formula), x, num_points, rtol, seed)
    scalar = scalar_valued(call, f)
    truth_fun = jaxls.ad.grad(scalar) if order == 1 else jaxls.ad.hessian(scalar)
    points = _points(x, num_points, seed)
    user_tree = formula(x, *args)
    x_leaves = jax.tree.leaves(x)
    if order == 1:
        wanted = "an array shaped like `x` (the gradient of f of an m x n matrix is m x n)"

        def allowed(s):
            return (s, s[:-2] + s[-2:][::-1])

    else:
        wanted = (
            "the Hessian, of shape x.shape + x.shape, or for an m x n matrix X the mn x mn "
            "matrix acting on vec X (columns stacked)"
        )

        def allowed(s):
            return (s + s, (int(np.prod(s)),) * 2) if len(s) == 2 else (s + s,)

    _check_shapes(call, name, user_tree, x, allowed, wanted)
    truth, user = _stacked(truth_fun, points, args), _stacked(formula, points, args, user_tree)
    scale, valid = _scale_and_valid(truth)
    if not valid[0]:
        raise ValueError(
            f"jaxls.calculus.{call}: AD's derivative of `f` at `x` is not finite; choose a "
            "point inside f's domain."
        )
    shape = np.shape(x_leaves[0])
    matrix = order == 2 and len(shape) == 2

    def tensor(h):  # a Hessian given as the mn x mn matrix of vec X, as (m, n, m, n)
        return np.stack([from_vec(p, shape) for p in h]) if h.ndim == 3 else h

    if matrix:
        user = [tensor(user[0])]
    if order == 1 and any(u.shape[1:] != np.shape(v) for u, v in zip(user, x_leaves, strict=True)):
        # the shape of x^T: only a transpose can explain it
        error = _relative_error(user, [_swap_stacked(t) for t in truth], scale, valid)
        return _diagnose([("transpose", error)], rtol, float("inf"), name)
    error = _relative_error(user, truth, scale, valid)
    if error <= rtol:
        return GradientCheck(True, None, error, f"`{name}` agrees with AD (up to {error:.3g}).")

    def compare(transform):
        return _relative_error(user, [transform(t) for t in truth], scale, valid)

    candidates = []
    if matrix:
        m, n = shape
        swapped = lambda t: t.reshape(-1, n, m, n, m).transpose(0, 2, 1, 4, 3)
        candidates.append(("kronecker", compare(swapped)))
    if order == 1 and any(np.ndim(v) >= 2 for v in x_leaves):
        candidates.append(("transpose", compare(_swap_stacked)))
    candidates.append(("sign", compare(np.negative)))
    candidates.append(("double", compare(lambda t: 2 * t)))
    candidates.append(("half", compare(lambda t: t / 2)))
    if any(_is_square(a) and not _is_symmetric(a) for a in jax.tree.leaves(args)):
        symmetric_args = tuple(jax.tree.map(_symmetric_part, args))
        truth_s = _stacked(truth_fun, points, symmetric_args)
        user_s = _stacked(formula, points, symmetric_args)
        user_s = [tensor(user_s[0])] if matrix else user_s
        scale_s, valid_s = _scale_and_valid(truth_s)
        valid_s = valid_s & valid
        if np.any(valid_s):
            candidates.append(("symmetric", _relative_error(user_s, truth_s, scale_s, valid_s)))
            half = [t / 2 for t in truth_s]
            candidates.append(("symmetric_half", _relative_error(user_s, half, scale_s, valid_s)))
    return _diagnose(candidates, rtol, error, name)


def check_gradient(
    f: Callable,
    g: Callable,
    x: PyTree,
    *args: PyTree,
    num_points: int = 3,
    rtol: float | None = None,
    seed: int = 0,
) -> GradientCheck:
    r"""Compare a hand-derived gradient ``g`` with AD's, and name the mistake if they differ.

    ``g(x, *args)`` should be ``grad f(x, *args)`` (shaped like ``x``: the gradient of
    ``f`` of a matrix is a matrix of its shape), computed by `jaxls.ad.grad`. Compared at
    ``x`` and ``num_points - 1`` random perturbations of it; where they differ, the
    difference is matched against `MISTAKES` (``"transpose"``, ``"sign"``,
    ``"factor_2"``, ``"symmetrisation"``; see the module for the method and its limits).
    A diagnostic for tests and teaching: it runs eagerly (not under `jax.jit`) and returns
    words.

    Args:
      f: ``f(x, *args)``, a real scalar.
      g: ``g(x, *args)``, the gradient to check, shaped like ``x``.
      x: the point (an array, a matrix, a pytree); floating.
      *args: the constants (``A``, ``b``, ...), passed to ``f`` and ``g``: the
        symmetrisation test replaces their square matrices by their symmetric parts.
      num_points: the points compared (``x`` and perturbations of it by a tenth of its
        size): a coincidence at one point does not decide.
      rtol: the largest difference called equal, relative to the gradient's largest
        entry; None: ``10 sqrt(eps)`` of ``x``'s dtype.
      seed: the seed of the perturbations (NumPy's generator).

    Returns:
      A `GradientCheck` ``(ok, mistake, max_error, message)``.

    Raises:
      TypeError: ``f`` or ``g`` not callable, ``f`` not returning a real scalar, ``x`` not
        floating.
      ValueError: ``g`` returning a shape other than ``x``'s (or its transpose, which is
        diagnosed), ``num_points`` or ``rtol`` out of range, AD's gradient not finite at
        ``x``; each naming ``jaxls.calculus.check_gradient`` and the argument.

    Example:
      The lecture's ``f(x) = <x, A x> - b^T x``, with ``2 A x - b`` (right only for a
      symmetric ``A``):

      >>> import jax.numpy as jnp, jaxls.calculus as mc
      >>> f = lambda x, A, b: x @ A @ x - b @ x
      >>> A = jnp.array([[2.0, 1.0], [0.0, 3.0]])
      >>> x, b = jnp.array([1.0, -2.0]), jnp.array([0.5, 1.0])
      >>> mc.check_gradient(f, lambda x, A, b: (A + A.T) @ x - b, x, A, b).ok
      True
      >>> result = mc.check_gradient(f, lambda x, A, b: 2 * A @ x - b, x, A, b)
      >>> print(result.ok, result.mistake)
      False symmetrisation
      >>> print(mc.check_gradient(lambda X: jnp.trace(A @ X), lambda X: A, A).mistake)
      transpose
    """
    return _run("check_gradient", "g", f, g, x, args, 1, num_points, rtol, seed)


def check_hessian(
    f: Callable,
    h: Callable,
    x: PyTree,
    *args: PyTree,
    num_points: int = 3,
    rtol: float | None = None,
    seed: int = 0,
) -> GradientCheck:
    r"""Compare a hand-derived Hessian ``h`` with AD's, and name the mistake if they differ.

    ``h(x, *args)`` should be the Hessian of ``f(x, *args)`` in ``x`` (one array):
    ``x.shape + x.shape`` (JAX's layout, `jaxls.calculus.hessian`), or, for ``f`` of an
    ``m x n`` matrix ``X``, the ``mn x mn`` matrix acting on ``vec X``, the columns of
    ``X`` stacked (the textbook's layout: ``d^2 f = vec(dX)^T H vec(dX)``). The mistakes
    named: ``"kronecker"`` (``kron(A, B)`` where ``kron(B, A)`` was due: the Hessian of
    the rows stacked), ``"sign"``, ``"factor_2"``, ``"symmetrisation"``; arguments,
    method and limits as `check_gradient`.

    Raises:
      TypeError, ValueError: as `check_gradient`, naming ``jaxls.calculus.check_hessian``
        and ``h``.

    Example:
      ``f(X) = tr(X^T A X B)`` has ``H = B^T kron A + B kron A^T`` on ``vec X``:

      >>> import jax.numpy as jnp, jaxls.calculus as mc
      >>> f = lambda X, A, B: jnp.trace(X.T @ A @ X @ B)
      >>> A = jnp.array([[1.0, 2.0], [0.0, 1.0]])
      >>> B = jnp.array([[2.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
      >>> X = jnp.ones((2, 3))
      >>> right = lambda X, A, B: jnp.kron(B.T, A) + jnp.kron(B, A.T)
      >>> mc.check_hessian(f, right, X, A, B).ok
      True
      >>> wrong = lambda X, A, B: jnp.kron(A, B.T) + jnp.kron(A.T, B)
      >>> print(mc.check_hessian(f, wrong, X, A, B).mistake)
      kronecker
    """
    if len(jax.tree.leaves(x)) != 1 or not jax.tree_util.treedef_is_leaf(jax.tree.structure(x)):
        raise TypeError(
            "jaxls.calculus.check_hessian: `x` must be one array (a vector or a matrix), "
            f"got {type(x).__name__}; for a pytree, check the gradient with check_gradient."
        )
    return _run("check_hessian", "h", f, h, x, args, 2, num_points, rtol, seed)


__all__ = [
    "MISTAKES",
    "GradientCheck",
    "apply_mistake",
    "check_gradient",
    "check_hessian",
    "kronecker_swap",
]
