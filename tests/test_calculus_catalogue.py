"""Tests of `jaxls.calculus.CATALOGUE`, the closed-form derivatives.

Oracles, both independent of the catalogue's formulas: `jaxls.ad` (``grad``, ``hessian``,
``jacrev``, ``jacfwd``) and `jax` (``grad``, ``hessian``, ``jacrev``), at random points of
each entry's domain, in float32 (normwise relative error below 1e-4: the samplers draw well
conditioned points) and float64 (below 1e-10).

Cost (about 14 s of CPU per dtype, two thirds tracing and compiling the AD oracles): the
standard normals of all samples are drawn in one call (each sample is its `Sampler`'s
``transform`` of them); the transforms, closed forms and AD results of ``CHUNK`` entries are
one jitted function, compiled with the AD tests' fast options, ``POINTS`` points under
`jax.vmap`; results are kept per entry and dtype for the process, and the checks of a
dtype are one test, so that `pytest -n 2` computes each dtype once.
"""

from __future__ import annotations

import functools
import inspect
import math
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxls.ad
from jaxls.calculus import CATALOGUE, Entry, Sampler, catalogue_table, entry
from tests.ad_zoo import fast_jit

DTYPES = (jnp.float32, jnp.float64)
RTOL = {"float32": 1e-4, "float64": 1e-10}
POINTS = 3  # random points per entry
CHUNK = 4  # entries per jitted function: XLA compiles a big function in superlinear time
NAMES = [e.name for e in CATALOGUE]  # parameters by name (an Entry is a tuple)
LECTURE_EXAMPLES = ("lecture_quadratic", "lecture_log_quadratic", "lecture_log_det")


# ------------------------------------------------------------------------------------------
# One jitted evaluation of everything, per dtype.


def _evaluate(e: Entry, args: tuple) -> dict:
    """The value and each derivative as (closed form, jaxls.ad..., jax)."""
    x, *constants = args
    f = lambda x: e.fun(x, *constants)
    out = {"args": args, "value": f(x)}
    if e.grad is not None:
        out["grad"] = (e.grad(*args), jaxls.ad.grad(f)(x), jax.grad(f)(x))
    if e.jacobian is not None:
        out["jacobian"] = (
            e.jacobian(*args),
            jaxls.ad.jacrev(f)(x),
            jaxls.ad.jacfwd(f)(x),
            jax.jacrev(f)(x),
        )
    if e.hessian is not None:
        out["hessian"] = (e.hessian(*args), jaxls.ad.hessian(f)(x), jax.hessian(f)(x))
    return out


ORACLES = {
    "grad": ("jaxls.ad.grad", "jax.grad"),
    "jacobian": ("jaxls.ad.jacrev", "jaxls.ad.jacfwd", "jax.jacrev"),
    "hessian": ("jaxls.ad.hessian", "jax.hessian"),
}


def _normals(dtype) -> jax.Array:
    """The standard normals of every sample, ``(entries, POINTS, draws)``: one call of the
    generator (``e.sample(key, dtype)`` is ``e.sample.transform`` of such a draw)."""
    draws = max(e.sample.draws for e in CATALOGUE)
    return jax.random.normal(jax.random.key(20240612), (len(CATALOGUE), POINTS, draws), dtype)


_RESULTS: dict[tuple[str, str], dict] = {}  # (dtype, name) -> an entry's results


def _results(dtype_name: str, names: tuple[str, ...] = tuple(NAMES)) -> dict:
    """``{name: {"args": ..., "value": ..., "grad": (closed, oracle, ...), ...}}`` as NumPy
    arrays with a leading axis of ``POINTS`` points, for the entries ``names``: computed in
    the caller's x64 mode, ``CHUNK`` entries per jitted function, once per process."""

    def run(entries, z):
        return [
            jax.vmap(lambda z, e=e: _evaluate(e, e.sample.transform(z[: e.sample.draws])))(z)
            for e, z in zip(entries, z, strict=True)
        ]

    missing = [name for name in names if (dtype_name, name) not in _RESULTS]
    if missing:
        z = _normals(jnp.dtype(dtype_name))
        for start in range(0, len(missing), CHUNK):
            entries = [entry(name) for name in missing[start : start + CHUNK]]
            rows = jnp.asarray([NAMES.index(e.name) for e in entries])
            outs = jax.device_get(fast_jit(functools.partial(run, entries))(z[rows]))
            for e, out in zip(entries, outs, strict=True):
                _RESULTS[dtype_name, e.name] = out
    return {name: _RESULTS[dtype_name, name] for name in names}


def _relative_error(actual, expected) -> float:
    """Normwise: ``max |actual - expected| / max |expected|`` (1 where ``expected`` is 0)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return np.inf
    scale = np.max(np.abs(expected), initial=0.0)
    return float(np.max(np.abs(actual - expected), initial=0.0) / (scale if scale > 0 else 1.0))


def _point_errors(closed, oracle) -> float:
    """The worst relative error over the points (the leading axis)."""
    return max(_relative_error(c, o) for c, o in zip(closed, oracle, strict=True))


# ------------------------------------------------------------------------------------------
# The catalogue's shape.


def test_catalogue_has_at_least_80_unique_entries():
    names = [e.name for e in CATALOGUE]
    assert len(names) >= 80, len(names)
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    for name in names:
        assert re.fullmatch(r"[a-z][A-Za-z0-9_]*", name), name


@pytest.mark.parametrize("name", NAMES)
def test_entry_fields_are_consistent(name):
    e = entry(name)
    assert isinstance(e, Entry)
    assert (e.grad is None) != (e.jacobian is None), "an entry has grad or jacobian, not both"
    assert (e.grad is None) == (e.grad_latex is None)
    assert (e.jacobian is None) == (e.jacobian_latex is None)
    assert (e.hessian is None) == (e.hessian_latex is None)
    assert e.hessian is None or e.grad is not None, "Hessians are of scalar functions"
    assert e.latex.startswith("f(") and e.reference.strip()
    for field in ("fun", "sample", "grad", "hessian", "jacobian"):
        value = getattr(e, field)
        assert value is None or callable(value), field


def test_lecture_examples_are_there():
    for number, name in enumerate(LECTURE_EXAMPLES, start=1):
        assert f"lecture, example {number}" in entry(name).reference
    assert entry("lecture_log_det").latex == r"f(X) = \langle S, X \rangle - \log \det X"


def test_entry_lookup():
    assert entry("trace_AXB") is next(e for e in CATALOGUE if e.name == "trace_AXB")
    with pytest.raises(KeyError, match=r"jaxls\.calculus\.entry\('nope'\)"):
        entry("nope")


def _latex_fields(e: Entry):
    for field in ("latex", "grad_latex", "hessian_latex", "jacobian_latex"):
        value = getattr(e, field)
        if value is not None:
            yield field, value


def _balanced(latex: str) -> bool:
    depth = 0
    for char in re.sub(r"\\[{}]", "", latex):  # \{ and \} are literal braces
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize("name", NAMES)
def test_latex_is_well_formed(name):
    e = entry(name)
    for field, latex in _latex_fields(e):
        where = f"{e.name}.{field}: {latex!r}"
        assert latex.strip() and "$" not in latex, where
        assert _balanced(latex), where
        assert len(re.findall(r"\\left\b", latex)) == len(re.findall(r"\\right\b", latex)), where
        assert latex.count(r"\begin{") == latex.count(r"\end{"), where
        assert "\n" not in latex and "  " not in latex, where


def test_balanced_rejects_unbalanced_latex():
    assert _balanced(r"\frac{a}{b} \{x\}")
    assert not _balanced(r"\frac{a}{b")
    assert not _balanced(r"a}{")


# ------------------------------------------------------------------------------------------
# The samplers draw points of the domain the entry states.


def _symmetric(a) -> bool:
    return a.ndim == 2 and a.shape[0] == a.shape[1] and np.allclose(a, a.T, rtol=0, atol=1e-5)


def _well_conditioned(a) -> bool:
    s = np.linalg.svd(a, compute_uv=False)
    return bool(s[-1] > 0.05 * s[0])


PROPERTIES = {
    "symmetric": _symmetric,
    "symmetric positive definite": lambda a: (
        _symmetric(a) and bool(np.linalg.eigvalsh(a)[0] > 0.05 * np.linalg.eigvalsh(a)[-1])
    ),
    "positive definite": lambda a: bool(np.linalg.eigvalsh((a + a.T) / 2)[0] > 0),
    "invertible": lambda a: a.shape[0] == a.shape[1] and _well_conditioned(a),
    "det > 0": lambda a: bool(np.linalg.det(a) > 0) and _well_conditioned(a),
    "det < 0": lambda a: bool(np.linalg.det(a) < 0) and _well_conditioned(a),
    "full column rank": lambda a: a.shape[0] >= a.shape[1] and _well_conditioned(a),
    "positive entries": lambda a: bool(np.all(a > 0)),
    "nonnegative entries": lambda a: bool(np.all(a >= 0)),
    "nonzero": lambda a: bool(np.linalg.norm(a) > 0.1),
    "probability vector": lambda a: (
        a.ndim == 1 and bool(np.all(a > 0)) and np.isclose(a.sum(), 1, atol=1e-5)
    ),
    "rows are probability vectors": lambda a: (
        a.ndim == 2 and bool(np.all(a > 0)) and np.allclose(a.sum(axis=1), 1, atol=1e-5)
    ),
    "labels in {-1, 1}": lambda a: set(np.unique(a)) <= {-1.0, 1.0},
    "labels in {0, 1}": lambda a: set(np.unique(a)) <= {0.0, 1.0},
}


def _domain_clauses(e: Entry):
    """``[(names, shape symbols, properties)]`` from ``e.domain``; ``such that`` clauses
    (conditions across arguments) are left to the check that ``fun`` is finite."""
    for clause in e.domain.split("; "):
        if clause.startswith("such that "):
            continue
        names, _, rest = clause.partition(": ")
        shape, *properties = rest.split(", ")
        joined: list[str] = []  # a property may contain ", " ("labels in {-1, 1}")
        for token in properties:
            if joined and joined[-1] not in PROPERTIES:
                joined[-1] += ", " + token
            else:
                joined.append(token)
        symbols = () if shape == "scalar" else tuple(shape.split(" x "))
        yield names.split(", "), symbols, joined


@pytest.mark.parametrize("name", NAMES)
def test_domain_names_every_argument_once(name):
    e = entry(name)
    parameters = list(inspect.signature(e.fun).parameters)
    described = [name for names, _, _ in _domain_clauses(e) for name in names]
    assert sorted(described) == sorted(parameters), (e.domain, parameters)
    for _, symbols, properties in _domain_clauses(e):
        for symbol in symbols:
            assert re.fullmatch(r"[A-Za-z]|[0-9]+", symbol), (e.name, symbols)
        for prop in properties:
            assert prop in PROPERTIES, (e.name, prop)


def _domain_failures(results: dict, dtype) -> list[str]:
    """The samples have the entry's dtype, shapes and properties; the value is finite."""
    failures = []
    for e in CATALOGUE:
        r = results[e.name]
        parameters = list(inspect.signature(e.fun).parameters)
        args = dict(zip(parameters, r["args"], strict=True))
        if any(a.dtype != dtype for a in args.values()):
            failures.append(f"{e.name}: sample dtypes {[str(a.dtype) for a in args.values()]}")
        if r["value"].dtype != dtype or not np.all(np.isfinite(r["value"])):
            failures.append(f"{e.name}: value {r['value']} ({r['value'].dtype})")
        sizes: dict[str, int] = {}
        for names, symbols, properties in _domain_clauses(e):
            for name in names:
                shape = args[name].shape[1:]  # the points' axis first
                if len(shape) != len(symbols):
                    failures.append(f"{e.name}: {name} has shape {shape}, domain {symbols}")
                    continue
                for symbol, size in zip(symbols, shape, strict=True):
                    expected = int(symbol) if symbol.isdigit() else sizes.setdefault(symbol, size)
                    if size != expected:
                        failures.append(f"{e.name}: {name} {shape} is not {symbols} ({sizes})")
                for prop in properties:
                    for point in args[name]:
                        if not PROPERTIES[prop](np.asarray(point, np.float64)):
                            failures.append(f"{e.name}: {name} is not {prop}: {point}")
    return failures


def _layout_failures(results: dict) -> list[str]:
    """Gradients shaped like x, Jacobians ``out_shape + in_shape``, Hessians ``x.shape * 2``."""
    failures = []
    for e in CATALOGUE:
        r = results[e.name]
        x_shape, out_shape = r["args"][0].shape[1:], r["value"].shape[1:]
        shapes = {"grad": x_shape, "jacobian": out_shape + x_shape, "hessian": x_shape * 2}
        if e.grad is not None and out_shape != ():
            failures.append(f"{e.name}: a gradient of a value of shape {out_shape}")
        for kind, shape in shapes.items():
            if kind in r and r[kind][0].shape[1:] != shape:
                failures.append(f"{e.name}: {kind} {r[kind][0].shape[1:]}, not {shape}")
    return failures


def _derivative_failures(results: dict, rtol: float) -> list[str]:
    """Each closed form against each of its oracles; each closed-form Hessian symmetric."""
    failures = []
    for e in CATALOGUE:
        for kind, oracles in ORACLES.items():
            if kind not in results[e.name]:
                continue
            closed, *computed = results[e.name][kind]
            for oracle, value in zip(oracles, computed, strict=True):
                error = _point_errors(closed, value)
                if not error <= rtol:
                    failures.append(f"{e.name}: {kind} vs {oracle}: relative error {error:.2e}")
            if kind == "hessian":
                size = math.isqrt(closed[0].size)
                H = closed.reshape(POINTS, size, size)
                error = _point_errors(np.swapaxes(H, 1, 2), H)
                if not error <= rtol:
                    failures.append(f"{e.name}: the Hessian is not symmetric: {error:.2e}")
    return failures


@pytest.mark.first  # one of the longest tests (tests/conftest.py)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_entry_at_random_points_of_its_domain(dtype):
    """Every entry at ``POINTS`` points: the samples lie in the domain, the closed forms
    have the conventions' layout and agree with `jaxls.ad` and `jax` (one test per dtype:
    the results are computed once per process, whatever the workers' split)."""
    name = jnp.dtype(dtype).name
    results = _results(name)
    assert sorted(results) == sorted(NAMES)
    failures = {
        "domain": _domain_failures(results, np.dtype(dtype)),
        "layout": _layout_failures(results),
        "derivatives": _derivative_failures(results, RTOL[name]),
    }
    assert not any(failures.values()), "\n".join(
        f"{check}: {line}" for check, lines in failures.items() for line in lines
    )


def test_a_sample_is_a_transform_of_normals():
    """``e.sample(key, dtype)`` is ``e.sample.transform`` of ``draws`` standard normals, the
    identity `_results` relies on; every sampler is a `Sampler` with enough draws."""
    key = jax.random.key(7)
    for e in CATALOGUE:
        assert isinstance(e.sample, Sampler), e.name
        assert e.sample.draws & (e.sample.draws - 1) == 0, e.name  # a power of two
    for name in ("lecture_log_det", "logistic_loss", "log_barrier"):
        sample = entry(name).sample
        direct = sample(key, jnp.float32)
        via = sample.transform(jax.random.normal(key, (sample.draws,), jnp.float32))
        for a, b in zip(direct, via, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.x64(reason="the lecture's formulas are compared with the oracles at 1e-10")
def test_the_lecture_assumes_A_symmetric():
    """Example 1's ``2 A x - b`` (and example 2's ``2 A x / <x, Ax>``) is the gradient only
    for a symmetric ``A``: at the catalogue's non-symmetric ``A`` it is wrong, and the
    check sees it."""
    results = _results("float64", ("lecture_quadratic", "log_quadratic_form"))
    r = results["lecture_quadratic"]
    x, A, b, _ = r["args"]
    lecture = np.einsum("pij,pj->pi", 2 * A, x) - b
    assert _point_errors(lecture, r["grad"][2]) > 1e-2
    symmetric = (A + np.swapaxes(A, 1, 2)) / 2
    assert _point_errors(np.einsum("pij,pj->pi", 2 * symmetric, x) - b, r["grad"][2]) <= 1e-10
    r = results["log_quadratic_form"]
    x, A = r["args"]
    Ax = np.einsum("pij,pj->pi", A, x)
    lecture = 2 * Ax / np.einsum("pi,pi->p", x, Ax)[:, None]
    assert _point_errors(lecture, r["grad"][2]) > 1e-2


@pytest.mark.x64(reason="wrong formulas are told from right ones at 1e-10")
def test_the_check_rejects_wrong_formulas():
    """Common slips fail the comparison at the catalogue's points: a transposed gradient,
    a missing symmetrisation, a factor 2, a sign, a Hessian with two indices swapped (a
    Kronecker factor transposed)."""
    slips = (
        "trace_square_B",
        "quadratic_form",
        "trace_XtX",
        "log_det",
        "trace_XtBXC",
        "trace_AXBX",
    )
    results = _results("float64", slips)
    jax_grad = lambda name: results[name]["grad"][2]
    jax_hessian = lambda name: results[name]["hessian"][2]
    closed_grad = lambda name: results[name]["grad"][0]
    closed_hessian = lambda name: results[name]["hessian"][0]
    x, A = results["quadratic_form"]["args"]
    wrong = {
        "transpose (trace_square_B)": (
            np.swapaxes(closed_grad("trace_square_B"), 1, 2),
            jax_grad("trace_square_B"),
        ),
        "no symmetrisation (quadratic_form)": (
            2 * (A @ x[..., None])[..., 0],
            jax_grad("quadratic_form"),
        ),
        "factor 2 (trace_XtX)": (closed_grad("trace_XtX") / 2, jax_grad("trace_XtX")),
        "sign (log_det)": (-closed_grad("log_det"), jax_grad("log_det")),
        "H_ijkl for H_kjil (trace_XtBXC)": (
            np.einsum("pijkl->pkjil", closed_hessian("trace_XtBXC")),
            jax_hessian("trace_XtBXC"),
        ),
        "H_ijkl for H_ilkj (trace_AXBX)": (
            np.einsum("pijkl->pilkj", closed_hessian("trace_AXBX")),
            jax_hessian("trace_AXBX"),
        ),
    }
    for slip, (formula, oracle) in wrong.items():
        assert formula.shape == oracle.shape, slip
        assert _point_errors(formula, oracle) > 1e-3, slip


def test_the_docs_table_is_the_catalogues():
    """docs/catalogue.md renders `catalogue_table()` (regenerate it after changing an entry:
    its header, then ``jaxls.calculus.catalogue_table()``)."""
    page = (pathlib.Path(__file__).parent.parent / "docs" / "catalogue.md").read_text()
    table = catalogue_table()
    assert page.endswith(table), "docs/catalogue.md is stale: regenerate its table"
    assert table.count("\n") == len(CATALOGUE) + 2
