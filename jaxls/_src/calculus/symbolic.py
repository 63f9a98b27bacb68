r"""Matrix expressions in canonical form: the symbols `jaxls.calculus.derive` computes with.

An expression is a `Sum` of `Term`\ s; a term is a coefficient (a `Fraction`, or a float
where the number is not a small rational), a monomial of scalar factors with rational powers
(``x^T A x``, ``det(X)``, ``exp(a^T x)``) and a *chain*: a matrix product of atoms
(``A^T (A x - b)``). Vectors are columns (an array of shape ``(n,)`` is the ``n x 1`` matrix
of the chain); a 1 x 1 sub-chain such as ``x^T A x`` is recognised as a scalar and moved to
the monomial. Every constructor (`add`, `matmul`, `hadamard`, `func`, ...) returns the
canonical form, so that the simplifications a person would do happen as the expression is
built:

* like terms are collected (``A x + A x = 2 A x``) and common left or right factors taken
  out (``A x + A^T x = (A + A^T) x``); numbers distribute over sums, other factors do not
  (``A^T (A x - b)`` stays as it is);
* transposes go down to the symbols (``(A B)^T = B^T A^T``, ``(A^T)^T = A``,
  ``(X^{-1})^T = X^{-T}``); of a scalar ``s = s^T`` the spelling with fewer transposes is kept
  (``x^T A^T x`` is ``x^T A x``);
* scalars are pulled out of products, Hadamard products, traces and determinants and their
  powers added (``det(X) / det(X) = 1``); ``1^T (u .* v) = u^T v``,
  ``tr(x y^T) = y^T x``, ``X^{-1} X = I``, ``I A = A``, ``1^T 1 = n``.

Dimensions of size 1 are not told apart from scalars: derive from examples whose vectors
and matrices have sizes above 1.

Printing (`text`, `latex`): transposes are ``A^T`` (``A^\top``), inverses ``X^{-1}`` and
``X^{-T}``; in plain text ``.*``, ``./`` and ``.^`` are elementwise (``\odot``, ``\oslash``
and ``^{\circ p}`` in LaTeX), ``1`` (``\mathbf{1}``) is the vector of ones and ``I`` the
identity; ``||x||`` is the Euclidean norm. `operator_count` counts the operators of a LaTeX
formula, so that a derived formula and a catalogue entry are measured alike.

`evaluate` computes an expression with `jax.numpy`; an `Opaque` atom (what the symbolic layer
cannot express: an unsupported primitive) carries the function that computes it.
"""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

Coef = Fraction | float
Shape = tuple[int, ...]
CShape = tuple[int, int]


class Unsupported(Exception):
    """An operation the symbolic layer does not express (the caller falls back to an
    `Opaque` term)."""


def cshape_of(shape: Shape) -> CShape:
    """The matrix shape of an array in a chain: a vector is a column."""
    if len(shape) == 0:
        return (1, 1)
    if len(shape) == 1:
        return (shape[0], 1)
    if len(shape) == 2:
        return (shape[0], shape[1])
    raise Unsupported(f"an array of rank {len(shape)}")


# --- atoms -----------------------------------------------------------------------------------


class Atom:
    """A factor of a chain (non-scalar) or of a monomial (scalar)."""

    @property
    def shape(self) -> Shape:
        raise NotImplementedError

    @property
    def cshape(self) -> CShape:
        return cshape_of(self.shape)


@dataclass(frozen=True)
class Symbol(Atom):
    """A named input (``x``, ``A``)."""

    name: str
    shape_: Shape

    @property
    def shape(self) -> Shape:
        return self.shape_


@dataclass(frozen=True)
class Const(Atom):
    """A constant array of the function (not a fill, not an identity), named ``C0``, ...."""

    name: str
    shape_: Shape
    value: Any = field(compare=False, repr=False)

    @property
    def shape(self) -> Shape:
        return self.shape_


@dataclass(frozen=True)
class Ones(Atom):
    """The vector of ones, ``1``."""

    n: int

    @property
    def shape(self) -> Shape:
        return (self.n,)


@dataclass(frozen=True)
class Identity(Atom):
    """The identity matrix ``I``."""

    n: int

    @property
    def shape(self) -> Shape:
        return (self.n, self.n)


@dataclass(frozen=True)
class T(Atom):
    """The transpose of an atom that cannot take it inside: a symbol, a vector (a row)."""

    arg: Atom

    @property
    def shape(self) -> Shape:
        return self.arg.shape[::-1]

    @property
    def cshape(self) -> CShape:
        r, c = self.arg.cshape
        return (c, r)


@dataclass(frozen=True)
class Paren(Atom):
    """A sum of several terms used as a factor: ``(A x - b)``."""

    arg: Sum

    @property
    def shape(self) -> Shape:
        return self.arg.shape

    @property
    def cshape(self) -> CShape:
        return self.arg.cshape


@dataclass(frozen=True)
class Func(Atom):
    """An elementwise function (``exp``, ``log``, ``logistic``, ...) of an expression."""

    name: str
    arg: Sum

    @property
    def shape(self) -> Shape:
        return self.arg.shape


@dataclass(frozen=True)
class Had(Atom):
    """A Hadamard (elementwise) product of powers: ``u .* v ./ w``."""

    factors: tuple[tuple[Sum, Fraction], ...]

    @property
    def shape(self) -> Shape:
        return self.factors[0][0].shape


@dataclass(frozen=True)
class Inv(Atom):
    """The inverse of a square matrix."""

    arg: Sum

    @property
    def shape(self) -> Shape:
        return self.arg.shape


@dataclass(frozen=True)
class Inner(Atom):
    """A scalar chain: ``x^T A x``, ``a^T x``."""

    chain: tuple[Atom, ...]

    @property
    def shape(self) -> Shape:
        return ()


@dataclass(frozen=True)
class Det(Atom):
    arg: Sum

    @property
    def shape(self) -> Shape:
        return ()


@dataclass(frozen=True)
class LogAbsDet(Atom):
    arg: Sum

    @property
    def shape(self) -> Shape:
        return ()


@dataclass(frozen=True)
class Trace(Atom):
    arg: Sum

    @property
    def shape(self) -> Shape:
        return ()


@dataclass(frozen=True)
class Diagonal(Atom):
    """The vector of the diagonal of a square matrix, ``diag(X)``."""

    arg: Sum

    @property
    def shape(self) -> Shape:
        return self.arg.shape[:1]


@dataclass(frozen=True)
class DiagMat(Atom):
    """The diagonal matrix of a vector, ``Diag(x)``."""

    arg: Sum

    @property
    def shape(self) -> Shape:
        return self.arg.shape * 2


@dataclass(frozen=True)
class Reshape(Atom):
    """An array reshaped (``vec(X)`` from a matrix to a vector)."""

    arg: Sum
    shape_: Shape

    @property
    def shape(self) -> Shape:
        return self.shape_


@dataclass(frozen=True)
class Opaque(Atom):
    """What the symbolic layer cannot express, named after the primitive, computed by
    ``fn(*evaluated args)``. ``uid`` tells apart two opaque terms of the same name and
    arguments (two outputs of a primitive)."""

    name: str
    shape_: Shape
    args: tuple[Sum, ...]
    uid: int
    fn: Callable = field(compare=False, repr=False)

    @property
    def shape(self) -> Shape:
        return self.shape_


# --- terms and sums --------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """``coef * prod(scalar ** power) * chain[0] chain[1] ...``."""

    coef: Coef
    scalars: tuple[tuple[Atom, Fraction], ...]
    chain: tuple[Atom, ...]


@dataclass(frozen=True)
class Sum:
    """A canonical expression: terms in a fixed order. ``shape`` is the array's shape,
    ``cshape`` its matrix shape in a chain (a vector is ``(n, 1)``, or ``(1, n)`` while it is
    transposed inside a computation)."""

    terms: tuple[Term, ...]
    shape: Shape
    cshape: CShape

    @property
    def is_zero(self) -> bool:
        return not self.terms


def shape_of_cshape(cs: CShape) -> Shape:
    if cs == (1, 1):
        return ()
    if cs[1] == 1:
        return (cs[0],)
    if cs[0] == 1:
        return (cs[1],)
    return cs


def zero(shape: Shape, cshape: CShape | None = None) -> Sum:
    return Sum((), shape, cshape_of(shape) if cshape is None else cshape)


def to_coef(value) -> Coef:
    """A number as a `Fraction` where it is a small rational (float32 literals included)."""
    if isinstance(value, Fraction):
        return value
    v = float(value)
    if not math.isfinite(v):
        return v
    frac = Fraction(v).limit_denominator(1000)
    if abs(float(frac) - v) <= 1e-7 * abs(v):
        return frac
    return v


def _abs(c: Coef) -> Coef:
    return -c if c < 0 else c


def _mul_coef(a: Coef, b: Coef) -> Coef:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a * b
    return to_coef(float(a) * float(b))


def _pow_coef(c: Coef, p: Fraction) -> Coef | None:
    """``c ** p``, or None where it is not real (a negative number to a fractional power)."""
    if p.denominator == 1:
        if isinstance(c, Fraction):
            return c ** int(p) if c != 0 or p > 0 else None
        return to_coef(float(c) ** int(p))
    if c <= 0:
        return None
    v = float(c) ** float(p)
    r = Fraction(v).limit_denominator(1000)
    return r if abs(float(r) - v) <= 1e-12 * v else v


def number(c, shape: Shape = ()) -> Sum:
    """``c`` filled to ``shape``."""
    c = to_coef(c)
    if c == 0:
        return zero(shape)
    return Sum((Term(c, (), ones_chain(shape)),), shape, cshape_of(shape))


def ones_chain(shape: Shape) -> tuple[Atom, ...]:
    if len(shape) == 0:
        return ()
    if len(shape) == 1:
        return (Ones(shape[0]),) if shape[0] > 1 else ()
    m, n = cshape_of(shape)
    left: tuple[Atom, ...] = (Ones(m),) if m > 1 else ()
    right: tuple[Atom, ...] = (T(Ones(n)),) if n > 1 else ()
    if not left and not right:
        return ()
    return left + right


def is_fill_chain(chain: Sequence[Atom]) -> bool:
    """Whether a chain is the array of ones (``1``, ``1 1^T``, ``1^T``)."""
    if not 0 < len(chain) <= 2:
        return False
    return all(isinstance(a, Ones) or (isinstance(a, T) and isinstance(a.arg, Ones)) for a in chain)


def from_atom(atom: Atom) -> Sum:
    """The expression of one atom."""
    if atom.shape == ():
        return Sum((make_term(1, ((atom, Fraction(1)),), ()),), (), (1, 1))
    t = make_term(Fraction(1), (), (atom,))
    return make_sum([t], atom.shape, atom.cshape)


def symbol(name: str, shape: Shape) -> Sum:
    return from_atom(Symbol(name, tuple(shape)))


def with_shape(a: Sum, shape: Shape) -> Sum:
    """The same expression labelled with another array shape of the same chain shape."""
    if cshape_of(shape) != a.cshape:
        raise Unsupported(f"relabel {a.shape} as {shape}")
    return Sum(a.terms, tuple(shape), a.cshape)


def is_number(a: Sum) -> Coef | None:
    """The number a scalar expression is, or None."""
    if a.shape != ():
        return None
    if a.is_zero:
        return Fraction(0)
    if len(a.terms) == 1 and not a.terms[0].scalars and not a.terms[0].chain:
        return a.terms[0].coef
    return None


def fill_value(a: Sum) -> Sum | None:
    """The scalar ``s`` of an expression ``s 1`` (a filled array), or None."""
    if a.is_zero:
        return zero(())
    if len(a.terms) == 1 and is_fill_chain(a.terms[0].chain):
        t = a.terms[0]
        return Sum((Term(t.coef, t.scalars, ()),), (), (1, 1))
    return None


# --- canonical construction ------------------------------------------------------------------


def make_term(coef: Coef, scalars: Iterable[tuple[Atom, Fraction]], chain: Iterable[Atom]) -> Term:
    """A normalised term: identities dropped, inverses cancelled, 1 x 1 sub-chains moved to
    the monomial, like scalar factors merged."""
    coef = to_coef(coef)
    mono: dict[Atom, Fraction] = defaultdict(Fraction)
    for a, p in scalars:
        mono[a] += Fraction(p)
    chain = list(chain)
    changed = True
    while changed:
        changed = False
        if len(chain) > 1 and any(isinstance(a, Identity) for a in chain):
            rest = [a for a in chain if not isinstance(a, Identity)]
            chain = rest or chain[:1]
            changed = True
            continue
        for i in range(len(chain) - 1):
            a, b = chain[i], chain[i + 1]
            if isinstance(a, T) and isinstance(a.arg, Ones) and isinstance(b, Ones):
                coef = _mul_coef(coef, Fraction(b.n))
                del chain[i : i + 2]
                changed = True
                break
            if (isinstance(a, DiagMat) and isinstance(b, Ones)) or (
                isinstance(a, T) and isinstance(a.arg, Ones) and isinstance(b, DiagMat)
            ):
                d = a if isinstance(a, DiagMat) else b
                assert isinstance(d, DiagMat)
                c, m, inner = as_factor(d.arg)
                if isinstance(b, DiagMat):
                    inner = transpose_chain(inner)
                coef = _mul_coef(coef, c)
                for x, p in m:
                    mono[x] += p
                chain[i : i + 2] = list(inner)
                changed = True
                break
            n = _cancels(a, b)
            if n:
                chain[i : i + 2] = [Identity(n)]
                changed = True
                break
        if changed:
            continue
        span = _scalar_span(chain)
        if span is not None:
            i, j = span
            c, m = inner_value(tuple(chain[i : j + 1]))
            coef = _mul_coef(coef, c)
            for a, p in m:
                mono[a] += p
            del chain[i : j + 1]
            changed = True
    # A monomial with a numeric factor folds it into the coefficient.
    items = []
    for a, p in mono.items():
        if p == 0:
            continue
        items.append((a, p))
    items.sort(key=lambda ap: (isinstance(ap[0], Paren), _key(ap[0]), ap[1]))  # sums last
    return Term(coef, tuple(items), tuple(chain))


def _cancels(a: Atom, b: Atom) -> int:
    """``n`` where ``a b`` is the ``n x n`` identity (``X^{-1} X``), else 0."""
    for inv, other in ((a, b), (b, a)):
        if isinstance(inv, Inv):
            t = inv.arg.terms
            if len(t) == 1 and t[0].coef == 1 and not t[0].scalars and t[0].chain == (other,):
                return other.cshape[0]
    return 0


def _scalar_span(chain: Sequence[Atom]) -> tuple[int, int] | None:
    """The first 1 x 1 sub-chain (a row start to the next column end)."""
    for i, a in enumerate(chain):
        if a.cshape[0] == 1:
            for j in range(i, len(chain)):
                if chain[j].cshape[1] == 1:
                    return i, j
            return None
    return None


def transpose_atom(a: Atom) -> Atom:
    if isinstance(a, T):
        return a.arg
    if isinstance(a, (Identity, DiagMat)):
        return a
    if isinstance(a, Inv):
        return Inv(transpose(a.arg))
    if len(a.shape) == 2:
        if isinstance(a, Func):
            return Func(a.name, transpose(a.arg))
        if isinstance(a, Had):
            return Had(tuple(sorted(((transpose(s), p) for s, p in a.factors), key=_factor_key)))
        if isinstance(a, Paren):
            return Paren(transpose(a.arg))
    return T(a)


def transpose_chain(chain: Sequence[Atom]) -> tuple[Atom, ...]:
    return tuple(transpose_atom(a) for a in reversed(chain))


def inner_value(sub: tuple[Atom, ...]) -> tuple[Coef, tuple[tuple[Atom, Fraction], ...]]:
    """A 1 x 1 chain as ``(coef, monomial)``: ``1^T (u .* v) = u^T v`` and
    ``1^T (U .* V) 1 = tr(U^T V)``; otherwise the spelling with fewer transposes."""
    if len(sub) == 2 and sub[0] == T(Ones(sub[0].cshape[1])) and isinstance(sub[1], Had):
        pair = _had_pair(sub[1])
        if pair is not None:
            return _as_monomial(matmul(transpose(pair[0]), pair[1]))
    if (
        len(sub) == 2
        and isinstance(sub[0], T)
        and isinstance(sub[0].arg, Had)
        and sub[1] == Ones(sub[1].cshape[0])
    ):
        pair = _had_pair(sub[0].arg)
        if pair is not None:
            return _as_monomial(matmul(transpose(pair[0]), pair[1]))
    if (
        len(sub) == 3
        and sub[0] == T(Ones(sub[0].cshape[1]))
        and isinstance(sub[1], Had)
        and sub[2] == Ones(sub[2].cshape[0])
    ):
        pair = _had_pair(sub[1])
        if pair is not None:
            return _as_monomial(trace(matmul(transpose(pair[0]), pair[1])))
    flipped = transpose_chain(sub)
    best = min(sub, flipped, key=lambda c: (sum(isinstance(a, T) for a in c), _chain_key(c)))
    return Fraction(1), ((Inner(tuple(best)), Fraction(1)),)


def _had_pair(h: Had) -> tuple[Sum, Sum] | None:
    if len(h.factors) == 2 and all(p == 1 for _, p in h.factors):
        return h.factors[0][0], h.factors[1][0]
    if len(h.factors) == 1 and h.factors[0][1] == 2:
        return h.factors[0][0], h.factors[0][0]
    return None


def _as_monomial(a: Sum) -> tuple[Coef, tuple[tuple[Atom, Fraction], ...]]:
    """A scalar expression as ``(coef, monomial)`` (a sum becomes one factor)."""
    c, m, chain = as_factor(a)
    assert not chain
    return c, m


def make_sum(terms: Iterable[Term], shape: Shape, cshape: CShape) -> Sum:
    """The canonical sum: like terms collected, common factors taken out, terms ordered."""
    collected: dict[tuple, Coef] = {}
    for t in _splice(terms, shape):
        key = (t.scalars, t.chain)
        collected[key] = _add_coef(collected[key], t.coef) if key in collected else t.coef
    out = [Term(c, s, ch) for (s, ch), c in collected.items() if c != 0]
    out = _factor(out, cshape)
    out.sort(key=_term_key)
    return Sum(tuple(out), tuple(shape), tuple(cshape))  # type: ignore[arg-type]


def _splice(terms: Iterable[Term], shape: Shape) -> Iterable[Term]:
    """Terms, a number times a parenthesised sum replaced by the sum's terms, scaled."""
    for t in terms:
        ch = t.chain
        if not t.scalars and len(ch) == 1 and isinstance(ch[0], Paren) and ch[0].arg.shape == shape:
            yield from (
                Term(_mul_coef(t.coef, u.coef), u.scalars, u.chain) for u in ch[0].arg.terms
            )
        else:
            yield t


def _add_coef(a: Coef, b: Coef) -> Coef:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a + b
    s = float(a) + float(b)
    return Fraction(0) if abs(s) <= 1e-12 * max(abs(float(a)), abs(float(b))) else to_coef(s)


def _factor(terms: list[Term], cshape: CShape) -> list[Term]:
    """Take common right (then left) factors out of groups of terms, until none is left:
    ``A x + A^T x = (A + A^T) x``; then common scalar factors, where that shortens the
    sum (`operator_count`)."""
    while len(terms) > 1:
        best = None
        for side in (-1, 0):
            groups: dict[Atom, list[int]] = defaultdict(list)
            for i, t in enumerate(terms):
                # (A + 2 s I) x is no clearer than A x + 2 s x: an identity only for a
                # term without scalar factors
                if len(t.chain) > 1 or (t.chain and not t.scalars):
                    groups[t.chain[side]].append(i)
            for members in groups.values():
                if len(members) > 1 and (best is None or len(members) > len(best[1])):
                    best = (side, members)
            if best is not None:
                break
        if best is None:
            return _factor_scalars(terms, cshape)
        side, members = best
        group = [terms[i] for i in members]
        k = _common_length(group, side)
        if side == -1:
            common = group[0].chain[len(group[0].chain) - k :]
            rests = [t.chain[: len(t.chain) - k] for t in group]
            inner_cs = (cshape[0], common[0].cshape[0])
        else:
            common = group[0].chain[:k]
            rests = [t.chain[k:] for t in group]
            inner_cs = (common[-1].cshape[1], cshape[1])
        inner_terms = [
            make_term(t.coef, t.scalars, rest or _identity_chain(inner_cs))
            for t, rest in zip(group, rests, strict=True)
        ]
        inner = make_sum(inner_terms, shape_of_cshape(inner_cs), inner_cs)
        if side == -1:
            product = matmul(inner, _chain_sum(common))
        else:
            product = matmul(_chain_sum(common), inner)
        others = [t for i, t in enumerate(terms) if i not in members]
        terms = others + list(product.terms)
        if len(product.terms) != 1:  # cancelled to zero, or did not factor: stop here
            return terms
    return terms


def _factor_scalars(terms: list[Term], cshape: CShape) -> list[Term]:
    """Take out the scalar factor most terms share, if that shortens the sum."""
    while len(terms) > 1:
        shared: dict[Atom, list[int]] = defaultdict(list)
        for i, t in enumerate(terms):
            for x, _ in t.scalars:
                shared[x].append(i)
        best = None
        for x, members in shared.items():
            powers = [dict(terms[i].scalars)[x] for i in members]
            if len(members) > 1 and (all(p > 0 for p in powers) or all(p < 0 for p in powers)):
                if best is None or len(members) > len(best[1]):
                    best = (x, members)
        if best is None:
            return terms
        x, members = best
        group = [terms[i] for i in members]
        shape = shape_of_cshape(cshape)
        q = min((dict(t.scalars)[x] for t in group), key=abs)
        inner = make_sum(
            [make_term(t.coef, (*t.scalars, (x, -q)), t.chain) for t in group], shape, cshape
        )
        c, mono, chain = as_factor(inner)
        product = make_term(c, (*mono, (x, q)), chain)
        candidate = [t for i, t in enumerate(terms) if i not in members] + [product]
        before = operator_count(_print_sum(Sum(tuple(terms), shape, cshape), LATEX))
        after = operator_count(_print_sum(Sum(tuple(candidate), shape, cshape), LATEX))
        if after >= before:
            return terms
        terms = candidate
    return terms


def _identity_chain(cs: CShape) -> tuple[Atom, ...]:
    if cs[0] != cs[1]:
        raise AssertionError(f"no identity of shape {cs}")
    return (Identity(cs[0]),) if cs[0] > 1 else ()


def _common_length(group: list[Term], side: int) -> int:
    """The length of the longest common suffix (``side = -1``) or prefix of the chains,
    leaving at least one factor (or an identity) on the other side."""
    k = 1
    while True:
        k1 = k + 1
        chains = [t.chain for t in group]
        if any(len(c) < k1 for c in chains):
            return k
        ends = [c[len(c) - k1 :] if side == -1 else c[:k1] for c in chains]
        if any(e != ends[0] for e in ends[1:]):
            return k
        if all(len(c) == k1 for c in chains) and len(group) > 1:
            return k
        if any(len(c) == k1 and t.scalars for t, c in zip(group, chains, strict=True)):
            return k
        k = k1


def _chain_sum(chain: Sequence[Atom]) -> Sum:
    t = make_term(Fraction(1), (), chain)
    cs = _chain_cshape(chain)
    return Sum((t,), shape_of_cshape(cs), cs)


def _chain_cshape(chain: Sequence[Atom]) -> CShape:
    if not chain:
        return (1, 1)
    return (chain[0].cshape[0], chain[-1].cshape[1])


def as_factor(a: Sum) -> tuple[Coef, tuple[tuple[Atom, Fraction], ...], tuple[Atom, ...]]:
    """An expression as ``(coef, monomial, chain)`` for a product: a sum of several terms
    becomes one parenthesised factor, with the factors common to its terms taken out."""
    if len(a.terms) == 1:
        t = a.terms[0]
        return t.coef, t.scalars, t.chain
    if a.is_zero:
        raise AssertionError("as_factor of zero")
    coef, mono, inner = _extract_common(a)
    if inner.shape == ():
        return coef, (*mono, (Paren(inner), Fraction(1))), ()
    if len(inner.shape) == 1 and inner.cshape[0] == 1 and inner.cshape[1] > 1:  # a row
        return coef, mono, (T(Paren(transpose(inner))),)
    return coef, mono, (Paren(inner),)


def _extract_common(a: Sum) -> tuple[Coef, tuple[tuple[Atom, Fraction], ...], Sum]:
    coefs = [t.coef for t in a.terms]
    coef: Coef = Fraction(1)
    if all(_abs(c) == _abs(coefs[0]) for c in coefs):
        coef = _abs(coefs[0])
        if all(c < 0 for c in coefs):
            coef = -coef
    monos = [dict(t.scalars) for t in a.terms]
    common: list[tuple[Atom, Fraction]] = []
    for atom in monos[0]:
        powers = [m.get(atom) for m in monos]
        if any(q is None for q in powers):
            continue
        qs = [q for q in powers if q is not None]
        if all(q > 0 for q in qs):
            common.append((atom, min(qs)))
        elif all(q < 0 for q in qs):
            common.append((atom, max(qs)))
    if coef == 1 and not common:
        return coef, (), a
    divide = [(atom, -p) for atom, p in common]
    terms = [
        make_term(
            _mul_coef(t.coef, _pow_coef(coef, Fraction(-1)) or 1), (*t.scalars, *divide), t.chain
        )
        for t in a.terms
    ]
    inner = make_sum(terms, a.shape, a.cshape)
    return coef, tuple(common), inner


# --- operations ------------------------------------------------------------------------------


def add(*sums: Sum) -> Sum:
    first = sums[0]
    for s in sums[1:]:
        if s.shape != first.shape or s.cshape != first.cshape:
            raise AssertionError(
                f"add: shapes {first.shape}/{first.cshape} and {s.shape}/{s.cshape}"
            )
    return make_sum([t for s in sums for t in s.terms], first.shape, first.cshape)


def scale(c, a: Sum) -> Sum:
    """``c a`` for a number ``c`` (distributed over the terms)."""
    c = to_coef(c)
    if c == 0:
        return zero(a.shape, a.cshape)
    terms = [Term(_mul_coef(c, t.coef), t.scalars, t.chain) for t in a.terms]
    return make_sum(terms, a.shape, a.cshape)


def neg(a: Sum) -> Sum:
    return scale(Fraction(-1), a)


def sub(a: Sum, b: Sum) -> Sum:
    return add(a, neg(b))


def times(s: Sum, a: Sum) -> Sum:
    """``s a`` for a scalar expression ``s``."""
    if s.shape != ():
        raise AssertionError("times: not a scalar")
    if s.is_zero or a.is_zero:
        return zero(a.shape, a.cshape)
    c = is_number(s)
    if c is not None:
        return scale(c, a)
    cs, ms, _ = as_factor(s)
    ca, ma, cha = as_factor(a)
    t = make_term(_mul_coef(cs, ca), (*ms, *ma), cha)
    return make_sum([t], a.shape, a.cshape)


def matmul(a: Sum, b: Sum) -> Sum:
    """The matrix product of two expressions in their chain shapes."""
    if a.cshape[1] != b.cshape[0]:
        raise AssertionError(f"matmul: {a.cshape} @ {b.cshape}")
    cs = (a.cshape[0], b.cshape[1])
    shape = shape_of_cshape(cs)
    if a.is_zero or b.is_zero:
        return zero(shape, cs)
    ca, ma, cha = as_factor(a)
    cb, mb, chb = as_factor(b)
    t = make_term(_mul_coef(ca, cb), (*ma, *mb), (*cha, *chb))
    return make_sum([t], shape, cs)


def transpose(a: Sum) -> Sum:
    cs = (a.cshape[1], a.cshape[0])
    shape = a.shape[::-1] if len(a.shape) == 2 else a.shape
    terms = [Term(t.coef, t.scalars, transpose_chain(t.chain)) for t in a.terms]
    return make_sum(terms, shape, cs)


def as_column(a: Sum) -> Sum:
    """A vector in its array orientation (a column)."""
    if len(a.shape) == 1 and a.cshape[0] == 1 and a.cshape[1] > 1:
        return transpose(a)
    return a


def total(a: Sum) -> Sum:
    """The sum of the entries: ``1^T v``, ``1^T M 1``."""
    if a.shape == ():
        return a
    a = as_column(a)
    m, n = a.cshape
    left = _chain_sum((T(Ones(m)),)) if m > 1 else None
    right = _chain_sum((Ones(n),)) if n > 1 else None
    out = a
    if left is not None:
        out = matmul(left, out)
    if right is not None:
        out = matmul(out, right)
    return out


def hadamard(a: Sum, b: Sum) -> Sum:
    """The elementwise product (a scalar operand scales the other)."""
    if a.shape == ():
        return times(a, b)
    if b.shape == ():
        return times(b, a)
    if a.shape != b.shape:
        raise AssertionError(f"hadamard: {a.shape} and {b.shape}")
    if a.cshape == (1, 1):  # arrays of one element
        return Sum(times(Sum(a.terms, (), (1, 1)), Sum(b.terms, (), (1, 1))).terms, a.shape, (1, 1))
    a, b = as_column(a), as_column(b)
    if a.is_zero or b.is_zero:
        return zero(a.shape, a.cshape)
    coef: Coef = Fraction(1)
    mono: list[tuple[Atom, Fraction]] = []
    factors: dict[Sum, Fraction] = defaultdict(Fraction)
    for x in (a, b):
        c, m, core = _had_parts(x)
        coef = _mul_coef(coef, c)
        mono.extend(m)
        for s, p in core:
            factors[s] += p
    return _had_build(coef, mono, factors, a.shape, a.cshape)


def _had_parts(
    x: Sum,
) -> tuple[Coef, tuple[tuple[Atom, Fraction], ...], list[tuple[Sum, Fraction]]]:
    """``(coef, monomial, Hadamard factors)`` of an array expression."""
    if len(x.terms) == 1:
        t = x.terms[0]
        if not t.chain or is_fill_chain(t.chain):  # no chain: an array of one element
            return t.coef, t.scalars, []
        if len(t.chain) == 1 and isinstance(t.chain[0], Had):
            return t.coef, t.scalars, list(t.chain[0].factors)
        core = make_sum([Term(Fraction(1), (), t.chain)], x.shape, x.cshape)
        return t.coef, t.scalars, [(core, Fraction(1))]
    coef, mono, inner = _extract_common(x)
    return coef, mono, [(inner, Fraction(1))]


_QUOTIENTS = {("sinh", "cosh"): "tanh", ("sin", "cos"): "tan"}


def _quotients(factors: dict[Sum, Fraction]) -> dict[Sum, Fraction]:
    """``sinh(u) ./ cosh(u) = tanh(u)``, ``sin(u) ./ cos(u) = tan(u)``."""
    funcs = {}
    for s in factors:
        if (
            len(s.terms) == 1
            and s.terms[0].coef == 1
            and not s.terms[0].scalars
            and len(s.terms[0].chain) == 1
        ):
            x = s.terms[0].chain[0]
            if isinstance(x, Func):
                funcs[(x.name, x.arg)] = s
    out = dict(factors)
    for (num, den), name in _QUOTIENTS.items():
        for (fname, arg), s in funcs.items():
            d = funcs.get((den, arg))
            if fname != num or d is None or s not in out or d not in out:
                continue
            p, q = out[s], out[d]
            if p > 0 and q < 0:
                k = min(p, -q)
                out[s], out[d] = p - k, q + k
                tan = from_atom(Func(name, arg))
                out[tan] = out.get(tan, Fraction(0)) + k
    return {s: p for s, p in out.items() if p != 0}


def _had_build(coef, mono, factors: dict[Sum, Fraction], shape: Shape, cs: CShape) -> Sum:
    factors = _quotients(factors)
    items = [(s, p) for s, p in factors.items() if p != 0]
    # (u v^T) .* (w z^T) = (u .* w) (v .* z)^T
    if len(items) > 1 and all(_outer_parts(s) is not None for s, _ in items):
        lefts: dict[Sum, Fraction] = defaultdict(Fraction)
        rights: dict[Sum, Fraction] = defaultdict(Fraction)
        for s, p in items:
            u, v = _outer_parts(s)  # type: ignore[misc]
            for side, part in ((lefts, u), (rights, v)):
                c, m, core = _had_parts(part)
                if c != 1 or m:
                    raise AssertionError("outer parts carry no factors")
                for f, q in core:
                    side[f] += q * p
        left = _had_build(Fraction(1), (), lefts, (cs[0],), (cs[0], 1))
        right = _had_build(Fraction(1), (), rights, (cs[1],), (cs[1], 1))
        out = matmul(left, transpose(right))
        return times(Sum((make_term(coef, mono, ()),), (), (1, 1)), with_shape(out, shape))
    if len(items) == 2 and all(p == 1 for _, p in items) and len(shape) == 2:
        for (s, _), (other, _) in (items, items[::-1]):
            parts = _outer_parts(s)
            if parts is None:
                continue
            u, v = parts
            scal = Sum((make_term(coef, mono, ()),), (), (1, 1))
            if fill_value(v) is not None and fill_value(v) == number(1):
                return times(scal, with_shape(matmul(diagmat(u), other), shape))
            if fill_value(u) is not None and fill_value(u) == number(1):
                return times(scal, with_shape(matmul(other, diagmat(v)), shape))
    if not items:
        chain = ones_chain(shape)
    elif len(items) == 1 and items[0][1] == 1:
        single = items[0][0]
        t = single.terms[0] if len(single.terms) == 1 else None
        chain = t.chain if t is not None else (Paren(single),)
    else:
        chain = (Had(tuple(sorted(items, key=_factor_key))),)
    t = make_term(coef, mono, chain)
    return make_sum([t], shape, cs)


def _outer_parts(s: Sum) -> tuple[Sum, Sum] | None:
    """``(u, v)`` of an outer product ``u v^T`` (one term, two vector atoms)."""
    if len(s.terms) != 1 or len(s.shape) != 2:
        return None
    t = s.terms[0]
    if t.coef != 1 or t.scalars or len(t.chain) != 2:
        return None
    u, vt = t.chain
    if u.cshape[1] != 1 or vt.cshape[0] != 1:
        return None
    return from_atom(u), from_atom(transpose_atom(vt))


def power(a: Sum, p) -> Sum:
    """``a ** p`` (elementwise for an array)."""
    p = Fraction(p)
    if p == 1:
        return a
    if a.shape == ():
        return _scalar_power(a, p)
    a = as_column(a)
    if p == 0:
        return number(1, a.shape)
    coef, mono, core = _had_parts(a)
    c = _pow_coef(coef, p)
    new_mono = _mono_power(mono, p)
    if c is None or new_mono is None or not all(_power_safe(q, p) for _, q in core):
        return _had_build(Fraction(1), (), {a: p}, a.shape, a.cshape)
    factors: dict[Sum, Fraction] = defaultdict(Fraction)
    for s, q in core:
        factors[s] += q * p
    return _had_build(c, new_mono, factors, a.shape, a.cshape)


def _power_safe(q: Fraction, p: Fraction) -> bool:
    """Whether ``(x ** q) ** p = x ** (q p)`` for every ``x`` where the left side is real."""
    return p.denominator == 1 or abs(q) == 1 or q.denominator != 1


def _mono_power(mono, p: Fraction):
    out = []
    for atom, q in mono:
        if not _power_safe(q, p):
            return None
        out.append((atom, q * p))
    return tuple(out)


def _scalar_power(a: Sum, p: Fraction) -> Sum:
    if p == 0:
        return number(1)
    if a.is_zero:
        if p > 0:
            return a
        raise Unsupported("a power of zero")
    c = is_number(a)
    if c is not None:
        v = _pow_coef(c, p)
        if v is None:
            return Sum((make_term(1, ((Paren(a), p),), ()),), (), (1, 1))
        return number(v)
    if len(a.terms) == 1:
        t = a.terms[0]
        pc = _pow_coef(t.coef, p)
        mono = _mono_power(t.scalars, p)
        if pc is not None and mono is not None:
            return Sum((make_term(pc, mono, ()),), (), (1, 1))
        return Sum((make_term(1, ((Paren(a), p),), ()),), (), (1, 1))
    coef, mono, inner = _extract_common(a)
    pc = _pow_coef(coef, p)
    mono2 = _mono_power(mono, p)
    if pc is None or mono2 is None:
        return Sum((make_term(1, ((Paren(a), p),), ()),), (), (1, 1))
    return Sum((make_term(pc, (*mono2, (Paren(inner), p)), ()),), (), (1, 1))


def reciprocal(a: Sum) -> Sum:
    return power(a, -1)


# Elementwise functions: how to compute them, and their names when printed.
FUNCTIONS: dict[str, Callable] = {
    "exp": jnp.exp,
    "log": jnp.log,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "tan": jnp.tan,
    "tanh": jnp.tanh,
    "sinh": jnp.sinh,
    "cosh": jnp.cosh,
    "asin": jnp.arcsin,
    "acos": jnp.arccos,
    "atan": jnp.arctan,
    "asinh": jnp.arcsinh,
    "atanh": jnp.arctanh,
    "logistic": lambda x: lax.logistic(x),
    "softplus": lambda x: jnp.logaddexp(x, 0.0),
    "log1p": jnp.log1p,
    "expm1": jnp.expm1,
    "erf": lambda x: lax.erf(x),
    "abs": jnp.abs,
    "sign": jnp.sign,
    "lgamma": lambda x: lax.lgamma(x),
    "digamma": lambda x: lax.digamma(x),
}

_NUMPY: dict[str, Callable[[float], float]] = {
    "exp": math.exp,
    "log": math.log,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "tanh": math.tanh,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "atan": math.atan,
    "log1p": math.log1p,
    "expm1": math.expm1,
    "logistic": lambda v: 1.0 / (1.0 + math.exp(-v)),
    "abs": abs,
    "sign": lambda v: float(np.sign(v)),
    "erf": math.erf,
}

# f(x) > 0 for every real x
_POSITIVE_FUNCS = frozenset({"exp", "logistic", "cosh"})


def func(name: str, a: Sum) -> Sum:
    """An elementwise function of an expression."""
    if name not in FUNCTIONS:
        raise Unsupported(f"function {name}")
    a = as_column(a)
    if a.shape == ():
        c = is_number(a)
        if c is not None and name in _NUMPY:
            try:
                return number(_NUMPY[name](float(c)))
            except (ValueError, OverflowError):
                pass
    else:
        s = fill_value(a)
        if s is not None:
            return times(func(name, s), number(1, a.shape))
    inverse = {"exp": "log", "log": "exp"}.get(name)
    if inverse is not None and len(a.terms) == 1:
        t = a.terms[0]
        inner = t.scalars[0][0] if len(t.scalars) == 1 and t.scalars[0][1] == 1 else None
        if len(t.chain) == 1 and not t.scalars:
            inner = t.chain[0]
        if t.coef == 1 and isinstance(inner, Func) and inner.name == inverse:
            if a.shape == () or not t.scalars:
                return inner.arg
    if name in ("abs", "sign") and positive(a):
        return a if name == "abs" else number(1, a.shape)
    if name == "exp" and a.shape != () and len(a.terms) > 1:
        fills = [t for t in a.terms if is_fill_chain(t.chain)]
        rest = [t for t in a.terms if not is_fill_chain(t.chain)]
        if fills and rest:
            s = make_sum([Term(t.coef, t.scalars, ()) for t in fills], (), (1, 1))
            return times(func("exp", s), func("exp", make_sum(rest, a.shape, a.cshape)))
    return from_atom(Func(name, a))


def positive(a: Sum) -> bool:
    """Whether every entry of the expression is positive wherever it is defined."""
    return bool(a.terms) and all(_positive_term(t) for t in a.terms)


def _positive_term(t: Term) -> bool:
    if t.coef <= 0:
        return False
    return all(_positive_atom(x) or (p.numerator % 2 == 0) for x, p in t.scalars) and all(
        _positive_atom(x) for x in t.chain
    )


def _positive_atom(x: Atom) -> bool:
    if isinstance(x, Ones):
        return True
    if isinstance(x, T):
        return _positive_atom(x.arg)
    if isinstance(x, Func):
        return x.name in _POSITIVE_FUNCS
    if isinstance(x, Paren):
        return positive(x.arg)
    if isinstance(x, Had):
        return all(positive(s) or p.numerator % 2 == 0 for s, p in x.factors)
    if isinstance(x, Inner):
        return all(_positive_atom(y) for y in x.chain)
    return False


def inv(a: Sum) -> Sum:
    """The matrix inverse."""
    if len(a.shape) != 2 or a.shape[0] != a.shape[1]:
        raise Unsupported("inverse of a non-square array")
    if a.is_zero:
        raise Unsupported("inverse of zero")
    c, m, chain = as_factor(a)
    ic = _pow_coef(c, Fraction(-1))
    mono = tuple((x, -p) for x, p in m)
    if len(chain) == 1 and isinstance(chain[0], Inv):
        core = chain[0].arg
    elif len(chain) == 1 and isinstance(chain[0], Identity):
        core = _chain_sum(chain)
    elif len(chain) > 1 and all(x.cshape[0] == x.cshape[1] for x in chain):
        # (A B)^{-1} = B^{-1} A^{-1} for square factors
        core = inv(from_atom(chain[-1]))
        for x in reversed(chain[:-1]):
            core = matmul(core, inv(from_atom(x)))
    else:
        core = from_atom(Inv(_chain_sum(chain)))
    return _scaled(ic, mono, core)


def det(a: Sum) -> Sum:
    """The determinant: scalars and products of square factors taken out."""
    n = _square(a)
    if a.is_zero:
        return zero(())
    c, m, chain = as_factor(a)
    dc = _pow_coef(c, Fraction(n))
    out: list[tuple[Atom, Fraction]] = [(x, p * n) for x, p in m]
    for x in chain:
        if x.cshape[0] != x.cshape[1]:
            return _scaled(dc, out, from_atom(Det(_chain_sum(chain))))
    for x in chain:
        base = x.arg if isinstance(x, T) else x
        if isinstance(base, Identity):
            continue
        if isinstance(base, Inv):
            out.append((Det(_canonical_det_arg(base.arg)), Fraction(-1)))
        else:
            out.append((Det(_canonical_det_arg(from_atom(base))), Fraction(1)))
    return Sum((make_term(dc if dc is not None else 1, out, ()),), (), (1, 1))


def _canonical_det_arg(a: Sum) -> Sum:
    """``det(X^T) = det(X)``: the spelling with fewer transposes."""
    b = transpose(a)
    return min(a, b, key=lambda s: (_count_t(s), _key_sum(s)))


def _count_t(a: Sum) -> int:
    return sum(isinstance(x, T) for t in a.terms for x in t.chain)


def _scaled(c, mono, a: Sum) -> Sum:
    return times(Sum((make_term(c if c is not None else 1, mono, ()),), (), (1, 1)), a)


def _square(a: Sum) -> int:
    if len(a.shape) != 2 or a.shape[0] != a.shape[1]:
        raise Unsupported("determinant of a non-square array")
    return a.shape[0]


def logabsdet(a: Sum) -> Sum:
    """``log |det(X)|``."""
    _square(a)
    return from_atom(LogAbsDet(_canonical_det_arg(a)))


def trace(a: Sum) -> Sum:
    """The trace, by linearity, with the cyclic spelling that has fewest transposes."""
    if len(a.shape) != 2 or a.shape[0] != a.shape[1]:
        raise Unsupported("trace of a non-square array")
    terms: list[Term] = []
    for t in a.terms:
        terms.extend(_trace_term(t).terms)
    return make_sum(terms, (), (1, 1))


def _trace_term(t: Term) -> Sum:
    chain = t.chain
    if len(chain) == 1 and isinstance(chain[0], Identity):
        return Sum((make_term(_mul_coef(t.coef, Fraction(chain[0].n)), t.scalars, ()),), (), (1, 1))
    # tr(u R) = R u for a column u first: a scalar chain
    for k in range(len(chain)):
        if chain[k].cshape[1] == 1 and k < len(chain) - 1:
            rotated = chain[k + 1 :] + chain[: k + 1]
            return Sum((make_term(t.coef, t.scalars, rotated),), (), (1, 1))
    options = []
    for c in (chain, transpose_chain(chain)):
        for k in range(len(c)):
            options.append(c[k:] + c[:k])
    best = min(options, key=lambda c: (sum(isinstance(x, T) for x in c), _chain_key(c)))
    return Sum(
        (make_term(t.coef, (*t.scalars, (Trace(_chain_sum(best)), Fraction(1))), ()),), (), (1, 1)
    )


def diagonal(a: Sum) -> Sum:
    """The vector of the diagonal: ``diag(Diag(v)) = v``, scalars taken out."""
    _square(a)
    if len(a.terms) == 1 and (a.terms[0].coef != 1 or a.terms[0].scalars):
        t = a.terms[0]
        core = diagonal(_chain_sum(t.chain))
        return times(Sum((make_term(t.coef, t.scalars, ()),), (), (1, 1)), core)
    only = a.terms[0].chain[0] if len(a.terms) == 1 and len(a.terms[0].chain) == 1 else None
    if isinstance(only, DiagMat):
        t = a.terms[0]
        return times(Sum((make_term(t.coef, t.scalars, ()),), (), (1, 1)), only.arg)
    if (
        len(a.terms) == 1
        and len(a.terms[0].chain) == 1
        and isinstance(a.terms[0].chain[0], Identity)
    ):
        t = a.terms[0]
        return times(Sum((make_term(t.coef, t.scalars, ()),), (), (1, 1)), number(1, (a.shape[0],)))
    return from_atom(Diagonal(a))


def diagmat(a: Sum) -> Sum:
    """The diagonal matrix of a vector: ``Diag(1) = I``."""
    a = as_column(a)
    if len(a.shape) != 1:
        raise Unsupported("Diag of a non-vector")
    s = fill_value(a)
    if s is not None:
        return times(s, from_atom(Identity(a.shape[0])))
    if len(a.terms) == 1 and (a.terms[0].coef != 1 or a.terms[0].scalars):
        t = a.terms[0]
        core = diagmat(_chain_sum(t.chain))
        return times(Sum((make_term(t.coef, t.scalars, ()),), (), (1, 1)), core)
    return from_atom(DiagMat(a))


def reshape(a: Sum, shape: Shape) -> Sum:
    """A reshape: a relabelling where the chain shape allows, ``vec`` otherwise."""
    shape = tuple(shape)
    if shape == a.shape:
        return a
    if math.prod(shape) != math.prod(a.shape):
        raise AssertionError("reshape: sizes differ")
    if len(shape) > 2:
        raise Unsupported(f"an array of rank {len(shape)}")
    col = as_column(a) if len(a.shape) == 1 else a
    if cshape_of(shape) == col.cshape:
        return Sum(col.terms, shape, col.cshape)
    if len(shape) == 2 and shape[0] == 1 and len(a.shape) <= 1:
        return with_shape(transpose(col), shape) if a.shape else with_shape(col, shape)
    if len(a.shape) == 2 and a.shape[0] == 1 and len(shape) == 1:
        return Sum(transpose(a).terms, shape, (shape[0], 1))
    if (
        len(a.terms) == 1
        and len(a.terms[0].chain) == 1
        and isinstance(a.terms[0].chain[0], Reshape)
    ):
        t = a.terms[0]
        inner = t.chain[0].arg  # type: ignore[attr-defined]
        scal = Sum((make_term(t.coef, t.scalars, ()),), (), (1, 1))
        return times(scal, reshape(inner, shape))
    c, m, chain = as_factor(col)
    core = _chain_sum(chain) if chain else None
    if core is None:
        raise AssertionError("reshape of a scalar")
    return times(
        Sum((make_term(c, m, ()),), (), (1, 1)),
        from_atom(Reshape(with_shape(core, col.shape), shape)),
    )


def broadcast(a: Sum, shape: Shape, dims: Sequence[int]) -> Sum:
    """``broadcast_in_dim``: ``s 1``, ``1 x^T``, ``x 1^T``, or a relabelling."""
    shape = tuple(shape)
    if len(shape) > 2:
        raise Unsupported(f"an array of rank {len(shape)}")
    if a.shape == ():
        return times(a, number(1, shape)) if shape else a
    a = as_column(a)
    if len(shape) == 1:
        if a.shape == shape:
            return a
        return times(reshape(a, ()), number(1, shape))
    m, n = shape
    # the operand as a 2-D array aligned with the result's axes
    if len(a.shape) == 1:
        (d,) = dims
        if a.shape[0] == 1:
            return times(reshape(a, ()), number(1, shape))
        op = a if d == 0 else transpose(a)
        op_cs = (a.shape[0], 1) if d == 0 else (1, a.shape[0])
    else:
        if tuple(dims) != (0, 1):
            raise Unsupported("broadcast with a permutation")
        op, op_cs = a, a.cshape
    if op_cs == (1, 1):
        return times(reshape(a, ()), number(1, shape))
    out = op
    if op_cs[0] == 1 and m > 1:
        out = matmul(_chain_sum((Ones(m),)), out)
    if op_cs[1] == 1 and n > 1:
        out = matmul(out, _chain_sum((T(Ones(n)),)))
    return with_shape(out, shape)


def reduce_sum(a: Sum, axes: Sequence[int]) -> Sum:
    """``reduce_sum`` over ``axes``: ``1^T v``, ``M 1``, ``M^T 1``, ``1^T M 1``."""
    axes = tuple(sorted(axes))
    if not axes:
        return a
    if len(a.shape) == 1 or set(axes) == set(range(len(a.shape))):
        return total(a)
    m, n = a.shape
    if axes == (1,):
        out = matmul(a, _chain_sum((Ones(n),))) if n > 1 else a
        return with_shape(out, (m,)) if out.cshape == (m, 1) else reshape(out, (m,))
    out = matmul(transpose(a), _chain_sum((Ones(m),))) if m > 1 else transpose(a)
    return with_shape(out, (n,)) if out.cshape == (n, 1) else reshape(out, (n,))


def opaque(name: str, shape: Shape, args: Sequence[Sum], fn: Callable, uid: int) -> Sum:
    atom = Opaque(name, tuple(shape), tuple(args), uid, fn)
    if len(shape) > 2:
        return Sum((Term(Fraction(1), (), (atom,)),), tuple(shape), (0, 0))
    return from_atom(atom)


def atoms(a: Sum) -> Iterable[Atom]:
    """Every atom of an expression, nested ones included."""
    for t in a.terms:
        for x, _ in t.scalars:
            yield from _atoms_of(x)
        for x in t.chain:
            yield from _atoms_of(x)


def _atoms_of(x: Atom) -> Iterable[Atom]:
    yield x
    if isinstance(x, T):
        yield from _atoms_of(x.arg)
    elif isinstance(x, Inner):
        for y in x.chain:
            yield from _atoms_of(y)
    elif isinstance(x, Had):
        for s, _ in x.factors:
            yield from atoms(s)
    elif isinstance(x, Opaque):
        for s in x.args:
            yield from atoms(s)
    elif hasattr(x, "arg") and isinstance(x.arg, Sum):
        yield from atoms(x.arg)


# --- evaluation -------------------------------------------------------------------------------


def evaluate(a: Sum, env: dict[str, Any], dtype) -> Any:
    """The expression computed with `jax.numpy` (``env`` maps symbol names to arrays)."""
    return _Evaluator(env, dtype).sum(a)


class _Evaluator:
    def __init__(self, env, dtype):
        self.env, self.dtype = env, dtype

    def number(self, c: Coef):
        return jnp.asarray(float(c), self.dtype)

    def sum(self, a: Sum):
        if a.is_zero:
            return jnp.zeros(a.shape, self.dtype)
        values = [jnp.reshape(self.term(t, a.cshape), a.shape) for t in a.terms]
        out = values[0]
        for v in values[1:]:
            out = out + v
        return out

    def term(self, t: Term, cs: CShape):
        if t.coef == 1 and not t.scalars and t.chain:  # integer and boolean opaque values too
            return self.chain(t.chain)
        v = self.number(t.coef)
        for x, p in t.scalars:
            v = v * self.pow(self.atom(x), p)
        if t.chain:
            return v * self.chain(t.chain)
        return jnp.broadcast_to(v, cs)

    def chain(self, chain: Sequence[Atom]):
        if len(chain) == 1 and not isinstance(chain[0], T):  # of any rank (an opaque term)
            return self.atom(chain[0])
        out = None
        for x in chain:
            m = self.as2d(x)
            out = m if out is None else out @ m
        return out

    def as2d(self, x: Atom):
        if isinstance(x, T):
            return self.as2d(x.arg).T
        return jnp.reshape(self.atom(x), x.cshape)

    def pow(self, v, p: Fraction):
        if p == 1:
            return v
        if p.denominator == 1:
            return v ** int(p)
        if p == Fraction(1, 2):
            return jnp.sqrt(v)
        if p == Fraction(-1, 2):
            return lax.rsqrt(v)
        return jnp.power(v, jnp.asarray(float(p), self.dtype))

    @functools.singledispatchmethod
    def atom(self, x: Atom):
        raise NotImplementedError(type(x).__name__)

    @atom.register
    def _(self, x: Symbol):
        return jnp.asarray(self.env[x.name])

    @atom.register
    def _(self, x: Const):
        return jnp.asarray(x.value)

    @atom.register
    def _(self, x: Ones):
        return jnp.ones((x.n,), self.dtype)

    @atom.register
    def _(self, x: Identity):
        return jnp.eye(x.n, dtype=self.dtype)

    @atom.register
    def _(self, x: T):
        v = self.atom(x.arg)
        return v.T if v.ndim == 2 else v

    @atom.register
    def _(self, x: Paren):
        return self.sum(x.arg)

    @atom.register
    def _(self, x: Func):
        return FUNCTIONS[x.name](self.sum(x.arg))

    @atom.register
    def _(self, x: Had):
        out = None
        for s, p in x.factors:
            v = self.pow(self.sum(s), p)
            out = v if out is None else out * v
        return out

    @atom.register
    def _(self, x: Inv):
        return jnp.linalg.inv(self.sum(x.arg))

    @atom.register
    def _(self, x: Inner):
        return jnp.reshape(self.chain(x.chain), ())

    @atom.register
    def _(self, x: Det):
        return jnp.linalg.det(self.sum(x.arg))

    @atom.register
    def _(self, x: LogAbsDet):
        return jnp.linalg.slogdet(self.sum(x.arg))[1]

    @atom.register
    def _(self, x: Trace):
        return jnp.trace(self.sum(x.arg))

    @atom.register
    def _(self, x: Diagonal):
        return jnp.diagonal(self.sum(x.arg))

    @atom.register
    def _(self, x: DiagMat):
        return jnp.diag(self.sum(x.arg))

    @atom.register
    def _(self, x: Reshape):
        return jnp.reshape(self.sum(x.arg), x.shape)

    @atom.register
    def _(self, x: Opaque):
        return x.fn(*[self.sum(s) for s in x.args])


# --- printing ---------------------------------------------------------------------------------


class _Style:
    """How one notation spells things."""

    def __init__(self, latex: bool):
        self.latex = latex
        self.T = r"^\top" if latex else "^T"
        self.inv = "^{-1}"
        self.invT = r"^{-\top}" if latex else "^{-T}"
        self.had = r" \odot " if latex else " .* "
        self.hdiv = r" \oslash " if latex else " ./ "
        self.one = r"\mathbf{1}" if latex else "1"


TEXT, LATEX = _Style(False), _Style(True)

_TEXT_FUNCS = {"logistic": "sigmoid"}
_LATEX_FUNCS = {
    "exp": r"\exp",
    "log": r"\log",
    "sin": r"\sin",
    "cos": r"\cos",
    "tan": r"\tan",
    "tanh": r"\tanh",
    "sinh": r"\sinh",
    "cosh": r"\cosh",
    "asin": r"\arcsin",
    "acos": r"\arccos",
    "atan": r"\arctan",
    "logistic": r"\sigma",
}
_GREEK = frozenset(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma "
    "tau upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega".split()
)


def text(a: Sum) -> str:
    """Plain-text spelling: ``(A + A^T) x - b``."""
    return _print_top(a, TEXT)


def latex(a: Sum) -> str:
    r"""LaTeX spelling: ``(A + A^\top) x - b``."""
    return _print_top(a, LATEX)


def _print_top(a: Sum, st: _Style) -> str:
    """An expression, with a common coefficient taken out where that saves operators
    (``2 (x - 1)``), or a matrix as the transpose of its transpose where that saves
    operators: ``B^T X^T + X^T B^T = (X B + B X)^T``."""
    plain = _print_sum(a, st)
    coefs = {_abs(t.coef) for t in a.terms}
    if len(a.terms) > 1 and len(coefs) == 1 and coefs != {1}:
        (c,) = coefs
        inner = scale(_pow_coef(c, Fraction(-1)) if isinstance(c, Fraction) else 1 / c, a)
        pulled = f"{_print_coef(c, LATEX)} ({_print_sum(inner, LATEX)})"
        if operator_count(pulled) < operator_count(_print_sum(a, LATEX)):
            return f"{_print_coef(c, st)} ({_print_sum(inner, st)})"
    if len(a.shape) != 2 or a.is_zero:
        return plain
    flipped = _print_transposed(transpose(a), LATEX)
    plain_latex = _print_sum(a, LATEX)
    saved = operator_count(plain_latex) - operator_count(flipped)
    fewer_transposes = plain_latex.count(r"\top") - flipped.count(r"\top")
    # A^T B^T stays as it is; -X^{-T} A^T B^T X^{-T} is -(X^{-1} B A X^{-1})^T
    if saved >= 2 or (saved >= 1 and fewer_transposes >= 2):
        return _print_transposed(transpose(a), st)
    return plain


def _print_transposed(b: Sum, st: _Style) -> str:
    """``(b)^T``, a coefficient and a sign kept outside."""
    if len(b.terms) == 1:
        t = b.terms[0]
        sign = "-" if t.coef < 0 else ""
        coef = _abs(t.coef)
        head = f"{_print_coef(coef, st)} " if coef != 1 else ""
        body = _print_term(t, st, Fraction(1))
        return f"{sign}{head}({body}){st.T}"
    if all(t.coef < 0 for t in b.terms):
        return f"-({_print_sum(neg(b), st)}){st.T}"
    return f"({_print_sum(b, st)}){st.T}"


@functools.lru_cache(maxsize=8192)
def _print_sum(a: Sum, st: _Style) -> str:
    if a.is_zero:
        return "0"
    parts = []
    for i, t in enumerate(a.terms):
        negative = t.coef < 0
        body = _print_term(t, st, _abs(t.coef))
        if i == 0:
            parts.append("-" + body if negative else body)
        else:
            parts.append((" - " if negative else " + ") + body)
    return "".join(parts)


def _print_coef(c: Coef, st: _Style) -> str:
    if isinstance(c, Fraction):
        if c.denominator == 1:
            return str(c.numerator)
        d = c.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d == 1:
            return str(float(c))
        if st.latex:
            return rf"\frac{{{c.numerator}}}{{{c.denominator}}}"
        return f"({c.numerator}/{c.denominator})"
    return f"{float(c):.6g}"


@dataclass(frozen=True)
class _Softmax(Atom):
    """Printing only: ``exp(u) / (1^T exp(u))`` is written ``softmax(u)``."""

    arg: Sum

    @property
    def shape(self) -> Shape:
        return self.arg.shape


def _softmax_rewrite(t: Term) -> tuple[tuple, tuple]:
    """``(scalars, chain)`` of a term with ``exp(u) / (1^T exp(u))`` as ``softmax(u)``."""
    for k, x in enumerate(t.chain):
        if isinstance(x, Func) and x.name == "exp" and len(x.shape) == 1:
            ones = T(Ones(x.shape[0]))
            for denominator in (Inner((ones, x)), Inner((T(x), Ones(x.shape[0])))):
                if (denominator, Fraction(-1)) in t.scalars:
                    scalars = tuple(sp for sp in t.scalars if sp != (denominator, Fraction(-1)))
                    chain = (*t.chain[:k], _Softmax(x.arg), *t.chain[k + 1 :])
                    return scalars, chain
    return t.scalars, t.chain


def _print_term(t: Term, st: _Style, coef: Coef) -> str:
    scalars, chain = _softmax_rewrite(t)
    nums = [(x, p) for x, p in scalars if p > 0]
    dens = [(x, -p) for x, p in scalars if p < 0]
    runs = _runs(chain)
    many = len(nums) + len(runs) > 1
    num_parts = []
    if coef != 1:
        num_parts.append(_print_coef(coef, st))
        many = True
    num_parts += [_print_power(x, p, st, alone=not many) for x, p in nums]
    num_parts += [_print_run(x, k, st, alone=len(runs) == 1 and not nums) for x, k in runs]
    num = " ".join(num_parts)
    if not dens:
        return num or "1"
    den_parts = [_print_power(x, p, st, alone=st.latex and len(dens) == 1) for x, p in dens]
    den = " ".join(den_parts)
    if st.latex and coef == 1 and not nums and len(runs) == 1 and isinstance(runs[0][0], Paren):
        num = _print_sum(runs[0][0].arg, st) if runs[0][1] == 1 else num  # \frac{a - b}{c}
    if st.latex:
        return rf"\frac{{{num or '1'}}}{{{den}}}"
    if len(dens) > 1:
        den = f"({den})"
    return f"{num or '1'} / {den}"


def _runs(chain: Sequence[Atom]) -> list[tuple[Atom, int]]:
    """Runs of a repeated square factor, to be written as powers (``X X = X^2``)."""
    out: list[tuple[Atom, int]] = []
    for x in chain:
        if out and out[-1][0] == x and _power_base(x) is not None:
            out[-1] = (x, out[-1][1] + 1)
        else:
            out.append((x, 1))
    return out


def _power_base(x: Atom) -> tuple[Atom | Sum, int] | None:
    """``(base, sign)`` of a square factor written as a power: ``X`` (``+1``), ``X^{-1}``
    (``-1``), ``(A + B)``; None for factors that are not written so."""
    if x.cshape[0] != x.cshape[1]:
        return None
    if isinstance(x, (Symbol, Const, Paren)) or (
        isinstance(x, T) and isinstance(x.arg, (Symbol, Const))
    ):
        return x, 1
    if isinstance(x, Inv):
        t = x.arg.terms
        if len(t) == 1 and t[0].coef == 1 and not t[0].scalars and len(t[0].chain) == 1:
            if isinstance(t[0].chain[0], (Symbol, Const)):
                return t[0].chain[0], -1
            if isinstance(t[0].chain[0], T) and isinstance(t[0].chain[0].arg, (Symbol, Const)):
                return x, 1  # (X^{-T})^k
            return None
        return x.arg, -1
    return None


def _print_run(x: Atom, k: int, st: _Style, alone: bool) -> str:
    if k == 1:
        return _print_chain_atom(x, st, alone)
    base, sign = _power_base(x)  # type: ignore[misc]
    inner = _print_atom(base, st) if isinstance(base, Atom) else f"({_print_sum(base, st)})"
    if isinstance(base, (T, Inv)):
        inner = f"({inner})"
    return f"{inner}^{{{sign * k}}}" if st.latex or sign < 0 else f"{inner}^{k}"


def _norm_of(x: Atom) -> tuple[Atom, str] | None:
    """``(v, "")`` of ``v^T v``, ``(X, "F")`` of ``tr(X^T X)``: squared norms."""
    if isinstance(x, Inner) and len(x.chain) == 2 and x.chain[0] == transpose_atom(x.chain[1]):
        return x.chain[1], ""
    if isinstance(x, Trace) and len(x.arg.terms) == 1:
        t = x.arg.terms[0]
        if t.coef == 1 and not t.scalars and len(t.chain) == 2:
            a, b = t.chain
            if a == transpose_atom(b):
                return (a if isinstance(b, T) else b), "F"
    return None


def _print_norm(v: Atom, sub: str, st: _Style) -> str:
    inner = _print_sum(v.arg, st) if isinstance(v, Paren) else _print_atom(v, st)
    if st.latex:
        return rf"\|{inner}\|" + (f"_{sub}" if sub else "")
    return f"||{inner}||" + (f"_{sub}" if sub else "")


def _print_power(x: Atom, p: Fraction, st: _Style, alone: bool) -> str:
    norm = _norm_of(x)
    if norm is not None and (2 * p).denominator == 1:
        text = _print_norm(*norm, st)
        k = int(2 * p)
        return text if k == 1 else f"{text}^{{{k}}}" if st.latex else f"{text}^{k}"
    if p == 1:
        return _print_scalar_atom(x, st, alone)
    if p == Fraction(1, 2):
        inside = _print_scalar_atom(x, st, alone=True)
        return rf"\sqrt{{{inside}}}" if st.latex else f"sqrt({inside})"
    base = _print_scalar_atom(x, st, alone=False)
    if isinstance(x, Func) and x.name == "exp" and st.latex:
        base = f"({base})"
    exp = str(p.numerator) if p.denominator == 1 else f"{p.numerator}/{p.denominator}"
    if st.latex:
        return f"{base}^{{{exp}}}"
    return f"{base}^{exp}" if p.denominator == 1 and p > 0 else f"{base}^({exp})"


def _print_name(name: str, st: _Style) -> str:
    if not st.latex:
        return name
    if len(name) == 1:
        return name
    if name in _GREEK:
        return "\\" + name
    m = re.fullmatch(r"([A-Za-z])_?(\d+)", name)
    if m:
        return f"{m.group(1)}_{{{m.group(2)}}}"
    return r"\mathrm{" + name.replace("_", r"\_") + "}"


def _call(name: str, args: str, st: _Style) -> str:
    if st.latex:
        fname = _LATEX_FUNCS.get(name)
        if fname is None:
            fname = r"\operatorname{" + name.replace("_", r"\_") + "}"
        return rf"{fname}({args})"
    return f"{_TEXT_FUNCS.get(name, name)}({args})"


def _print_scalar_atom(x: Atom, st: _Style, alone: bool) -> str:
    if isinstance(x, Inner):
        s = " ".join(_print_chain_atom(y, st, alone=False) for y in x.chain)
        return s if alone or len(x.chain) == 1 else f"({s})"
    if isinstance(x, Paren):
        return f"({_print_sum(x.arg, st)})"
    return _print_atom(x, st)


def _print_chain_atom(x: Atom, st: _Style, alone: bool) -> str:
    s = _print_atom(x, st)
    if isinstance(x, Had) and not alone and (len(x.factors) > 1 or x.factors[0][1] != 1):
        return f"({s})"
    return s


@functools.lru_cache(maxsize=8192)
def _print_atom(x: Atom, st: _Style) -> str:
    if isinstance(x, Symbol):
        return _print_name(x.name, st)
    if isinstance(x, Const):
        return _print_name(x.name, st)
    if isinstance(x, Ones):
        return st.one
    if isinstance(x, Identity):
        return "I"
    if isinstance(x, T):
        inner = _print_atom(x.arg, st)
        if isinstance(x.arg, Had) or (st.latex and isinstance(x.arg, Func) and x.arg.name == "exp"):
            inner = f"({inner})"
        return inner + st.T
    if isinstance(x, Paren):
        return f"({_print_sum(x.arg, st)})"
    if isinstance(x, Func):
        if x.name == "exp" and st.latex:
            return f"e^{{{_print_sum(x.arg, st)}}}"
        return _call(x.name, _print_sum(x.arg, st), st)
    if isinstance(x, _Softmax):
        return _call("softmax", _print_sum(x.arg, st), st)
    if isinstance(x, Had):
        return _print_had(x, st)
    if isinstance(x, Inv):
        t = x.arg.terms
        if len(t) == 1 and t[0].coef == 1 and not t[0].scalars and len(t[0].chain) == 1:
            y = t[0].chain[0]
            if isinstance(y, T) and isinstance(y.arg, (Symbol, Const)):
                return _print_atom(y.arg, st) + st.invT
            if isinstance(y, (Symbol, Const)):
                return _print_atom(y, st) + st.inv
        return f"({_print_sum(x.arg, st)})" + st.inv
    if isinstance(x, Inner):
        return " ".join(_print_chain_atom(y, st, alone=False) for y in x.chain)
    if isinstance(x, Det):
        return rf"\det({_print_sum(x.arg, st)})" if st.latex else f"det({_print_sum(x.arg, st)})"
    if isinstance(x, LogAbsDet):
        inner = _print_sum(x.arg, st)
        return rf"\log|\det({inner})|" if st.latex else f"log|det({inner})|"
    if isinstance(x, Trace):
        return _call("tr", _print_sum(x.arg, st), st)
    if isinstance(x, Diagonal):
        return _call("diag", _print_sum(x.arg, st), st)
    if isinstance(x, DiagMat):
        return _call("Diag", _print_sum(x.arg, st), st)
    if isinstance(x, Reshape):
        if len(x.shape) == 1 and len(x.arg.shape) == 2:
            return _call("vec", _print_sum(x.arg, st), st)
        return _call("reshape", f"{_print_sum(x.arg, st)}, {x.shape}", st)
    if isinstance(x, Opaque):
        return _call(x.name, ", ".join(_print_sum(s, st) for s in x.args), st)
    raise NotImplementedError(type(x).__name__)


def _print_had(x: Had, st: _Style) -> str:
    def factor(s: Sum, p: Fraction) -> str:
        t = s.terms
        simple = len(t) == 1 and t[0].coef == 1 and not t[0].scalars and len(t[0].chain) == 1
        base = _print_atom(t[0].chain[0], st) if simple else f"({_print_sum(s, st)})"
        if simple and isinstance(t[0].chain[0], T):
            base = f"({base})"
        if abs(p) == 1:
            return base
        q = abs(p)
        if q == Fraction(1, 2):
            inner = (
                base[1:-1] if base.startswith("(") and base.endswith(")") and not simple else base
            )
            return rf"\sqrt{{{inner}}}" if st.latex else f"sqrt({inner})"
        exp = str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"
        if st.latex:
            return rf"{base}^{{\circ {exp}}}"
        return f"{base}.^{exp}" if q.denominator == 1 else f"{base}.^({exp})"

    pos = [factor(s, p) for s, p in x.factors if p > 0]
    negs = [factor(s, p) for s, p in x.factors if p < 0]
    out = st.had.join(pos) if pos else st.one
    for n in negs:
        out += st.hdiv + n
    return out


def _key(x: Atom) -> str:
    return _print_atom(x, TEXT) if not isinstance(x, Inner) else _print_scalar_atom(x, TEXT, True)


def _key_sum(a: Sum) -> str:
    return _print_sum(a, TEXT)


def _chain_key(chain: Sequence[Atom]) -> str:
    return " ".join(_print_atom(x, TEXT) for x in chain)


def _factor_key(sp: tuple[Sum, Fraction]) -> tuple:
    return (sp[1] < 0, len(sp[0].terms) > 1, _key_sum(sp[0]), sp[1])  # sums last


def _term_key(t: Term) -> tuple:
    return (t.coef < 0, _print_term(t, TEXT, _abs(t.coef)))


# --- operator count ----------------------------------------------------------------------------

_TOKEN = re.compile(r"\\\||\\[{}]|\\[A-Za-z]+|\\.|[0-9]+(?:\.[0-9]+)?|[A-Za-z]|\S")
_FUNC_COMMANDS = frozenset(
    "exp log ln sin cos tan tanh sinh cosh arcsin arccos arctan det tr Tr diag Diag vec "
    "softmax sigmoid sqrt frac".split()
)
_BINARY = frozenset(
    {"+", "-", "/", "*", r"\cdot", r"\times", r"\odot", r"\oslash", r"\otimes", r"\circ", r"\ast"}
)
_SPACING = frozenset(
    {
        r"\left",
        r"\right",
        r"\big",
        r"\bigl",
        r"\bigr",
        r"\Big",
        r"\Bigl",
        r"\Bigr",
        r"\quad",
        r"\qquad",
        r"\,",
        r"\;",
        r"\:",
        r"\!",
        "\\ ",
        r"\displaystyle",
        r"\limits",
    }
)
_ALIASES = {
    r"\lVert": r"\|",
    r"\rVert": r"\|",
    r"\Vert": r"\|",
    r"\lvert": "|",
    r"\rvert": "|",
    r"\vert": "|",
    r"\tfrac": r"\frac",
    r"\dfrac": r"\frac",
    r"\ln": r"\log",
}
_SEPARATORS = frozenset(
    {
        ",",
        "=",
        "&",
        ";",
        ":",
        "<",
        ">",
        r"\le",
        r"\ge",
        r"\leq",
        r"\geq",
        r"\neq",
        r"\in",
        r"\approx",
        r"\succ",
        r"\succeq",
        r"\prec",
        r"\preceq",
        r"\equiv",
    }
)
_NAMED = (r"\operatorname", r"\mathrm", r"\mathbf", r"\boldsymbol", r"\mathit", r"\bm", r"\mathcal")


def operator_count(formula: str) -> int:
    r"""The number of operators of a LaTeX formula, the measure `derive` compares with the
    catalogue's.

    Counted once each: ``+`` and ``-`` (binary or unary), ``/``, ``\cdot``, ``\odot``,
    ``\oslash`` and the like; a superscript (a transpose ``^\top``, an inverse ``^{-1}`` or
    ``^{-\top}``, a power ``^2`` or ``^{\circ 2}``) plus the operators inside it
    (``e^{a^\top x}`` has 3); a function (``\exp``, ``\log``, ``\det``, ``\sqrt``, ``\frac``,
    ``\sum``, ``\sigma(``, ``\operatorname{tr}(``, ...); a norm ``\|x\|`` or an absolute
    value ``|x|``; an inner product ``\langle a, b \rangle``; a product written by
    juxtaposition (``A x``, ``2 x``, ``(A + B) x``). Subscripts, the limits of a sum,
    ``\text{...}``, braces, ``\left``/``\right`` and spacing count nothing. So
    ``(A + A^\top) x - b`` has 4: ``+``, ``^\top``, the product and ``-``.
    """
    tokens = []
    raw = _TOKEN.findall(formula)
    i = 0
    while i < len(raw):
        tok = _ALIASES.get(raw[i], raw[i])
        if tok == r"\text":  # words: not counted
            i, _ = _group(raw, i + 1)
            continue
        if tok not in _SPACING:
            tokens.append(tok)
        i += 1
    return _count(tokens)


def _count(tokens: list[str]) -> int:
    count = 0
    prev_end = False  # the previous token ends an operand: a juxtaposed operand is a product
    inside = {r"\|": False, "|": False}  # an open norm / absolute value
    i = 0

    def operand_start():
        nonlocal count
        if prev_end:
            count += 1

    while i < len(tokens):
        tok = tokens[i]
        if tok == "^":
            i, group = _group(tokens, i + 1)
            count += 1 + _count(_exponent(group))
            prev_end = True
            continue
        if tok == "_":
            i, _ = _group(tokens, i + 1)
            continue
        if tok in _BINARY:
            count += 1
            prev_end = False
            i += 1
            continue
        if tok in _SEPARATORS:
            prev_end = False
            i += 1
            continue
        if tok in inside:
            if inside[tok]:
                inside[tok] = False
                prev_end = True
            else:
                operand_start()
                inside[tok] = True
                count += 1
                prev_end = False
            i += 1
            continue
        if tok in ("(", "[", "{", r"\{", r"\langle"):
            close = {"(": ")", "[": "]", "{": "}", r"\{": r"\}", r"\langle": r"\rangle"}[tok]
            j = _matching(tokens, i, tok, close)
            operand_start()
            count += (tok == r"\langle") + _count(tokens[i + 1 : j])
            prev_end = True
            i = j + 1
            continue
        if tok in _NAMED:
            i, group = _group(tokens, i + 1)
            name = "".join(group)
            operand_start()
            if name in _FUNC_COMMANDS or (len(name) > 1 and i < len(tokens) and tokens[i] == "("):
                count += 1
                prev_end = False
            else:
                prev_end = True
            continue
        if tok == r"\sum" or tok == r"\prod":
            operand_start()
            count += 1
            i += 1
            while i < len(tokens) and tokens[i] in ("_", "^"):  # the limits
                i, _ = _group(tokens, i + 1)
            prev_end = False
            continue
        if tok in (r"\frac", r"\sqrt"):
            operand_start()
            count += 1
            i += 1
            for _ in range(2 if tok == r"\frac" else 1):
                i, group = _group(tokens, i)
                count += _count(group)
            prev_end = True
            continue
        is_call = tok == r"\sigma" and i + 1 < len(tokens) and tokens[i + 1] == "("
        if (tok.startswith("\\") and tok[1:] in _FUNC_COMMANDS) or is_call:
            operand_start()
            count += 1
            prev_end = False
            i += 1
            continue
        if tok in (")", "]", "}", r"\}", r"\rangle"):  # unbalanced: ignored
            i += 1
            continue
        operand_start()  # a letter, a number, a Greek letter or another command
        prev_end = True
        i += 1
    return count


def _exponent(group: list[str]) -> list[str]:
    r"""An exponent's tokens without the sign or Hadamard mark that makes it one power:
    ``-1``, ``-\top``, ``\circ 2``."""
    while group and group[0] in ("-", r"\circ", r"\odot"):
        group = group[1:]
    return group


def _matching(tokens: list[str], i: int, open_: str, close: str) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j] == open_:
            depth += 1
        elif tokens[j] == close:
            depth -= 1
            if depth == 0:
                return j
    return len(tokens)


def _group(tokens: list[str], i: int) -> tuple[int, list[str]]:
    """The ``{...}`` group (or single token) at ``tokens[i]``: ``(end, tokens inside)``."""
    if i >= len(tokens):
        return i, []
    if tokens[i] != "{":
        return i + 1, [tokens[i]]
    j = _matching(tokens, i, "{", "}")
    return j + 1, tokens[i + 1 : j]


__all__ = [
    "Atom",
    "Sum",
    "Term",
    "Unsupported",
    "add",
    "broadcast",
    "det",
    "diagmat",
    "diagonal",
    "evaluate",
    "from_atom",
    "func",
    "hadamard",
    "inv",
    "latex",
    "logabsdet",
    "matmul",
    "neg",
    "number",
    "opaque",
    "operator_count",
    "power",
    "reduce_sum",
    "reshape",
    "scale",
    "sub",
    "symbol",
    "text",
    "times",
    "total",
    "trace",
    "transpose",
]
