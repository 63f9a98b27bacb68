"""`jaxls.calculus.derive`: gradients of JAX functions as formulas in matrix notation.

Oracles: `jax.grad` / `jax.hessian` (independent of the jaxpr interpreter that `derive`
checks itself against), and the catalogue's own closed forms (``Entry.grad``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxls._src.calculus.derive as derive_module
from jaxls.calculus import CATALOGUE, DerivationError, Formula, derive, operator_count
from tests.ad_zoo import fast_jit


def _data(dtype=jnp.float32, n=4):
    k = jax.random.split(jax.random.key(0), 6)
    x = jax.random.normal(k[0], (n,), dtype)
    A = jax.random.normal(k[1], (n, n), dtype)
    b = jax.random.normal(k[2], (n,), dtype)
    B = jax.random.normal(k[3], (n, n), dtype)
    S = jax.random.normal(k[4], (n, n), dtype)
    spd = A @ A.T + n * jnp.eye(n, dtype=dtype)
    return x, A, b, B, S, spd


# --- the five examples -------------------------------------------------------------

LECTURE = [
    ("quadratic", lambda x, A, b, c: x @ A @ x - b @ x + c, "xAbc", "(A + A^T) x - b"),
    ("log_quadratic", lambda x, A: jnp.log(x @ A @ x), "xP", "(A + A^T) x / (x^T A x)"),
    ("log_det", lambda X, S: jnp.sum(S * X) - jnp.linalg.slogdet(X)[1], "PS", "S - X^{-T}"),
    ("log_det_vdot", lambda X, S: jnp.vdot(S, X) - jnp.log(jnp.linalg.det(X)), "PS", "S - X^{-T}"),
    ("least_squares", lambda x, A, b: 0.5 * jnp.sum((A @ x - b) ** 2), "xAb", "A^T (A x - b)"),
    (
        "least_squares_norm",
        lambda x, A, b: 0.5 * jnp.linalg.norm(A @ x - b) ** 2,
        "xAb",
        "A^T (A x - b)",
    ),
    (
        "least_squares_dot",
        lambda x, A, b: 0.5 * (A @ x - b) @ (A @ x - b),
        "xAb",
        "A^T (A x - b)",
    ),
    ("trace_AXB", lambda X, A, B: jnp.trace(A @ X @ B), "SAB", "A^T B^T"),
]


def _args(spec, dtype=jnp.float32):
    x, A, b, B, S, spd = _data(dtype)
    table = {"x": x, "A": A, "b": b, "B": B, "S": S, "P": spd, "c": jnp.asarray(0.3, dtype)}
    return [table[k] for k in spec]


@pytest.mark.parametrize("name, fun, spec, want", LECTURE, ids=[c[0] for c in LECTURE])
def test_lecture_examples_print_as_a_person_writes_them(name, fun, spec, want):
    formula = derive(fun, *_args(spec))
    assert formula.text == want
    assert str(formula) == want
    assert formula.opaque == ()


def test_latex_spelling():
    (_, fun, spec, _) = LECTURE[0]
    assert derive(fun, *_args(spec)).latex == r"(A + A^\top) x - b"
    (_, fun, spec, _) = LECTURE[1]
    assert derive(fun, *_args(spec)).latex == r"\frac{(A + A^\top) x}{x^\top A x}"
    (_, fun, spec, _) = LECTURE[2]
    formula = derive(fun, *_args(spec))
    assert formula.latex == r"S - X^{-\top}"
    assert formula._repr_latex_() == r"$S - X^{-\top}$"
    assert repr(formula) == "Formula('S - X^{-T}')"


def test_names_come_from_the_parameters_or_from_names():
    x, A, *_ = _data()
    assert derive(lambda u, M: u @ M @ u, x, A).text == "(M + M^T) u"
    assert derive(lambda u, M: u @ M @ u, x, A, names=["y", "Q"]).text == "(Q + Q^T) y"
    assert derive(lambda *a: a[0] @ a[1] @ a[0], x, A).text == "(a1 + a1^T) a0"


def test_argnums_picks_the_argument():
    x, A, b, *_ = _data()
    # d/dA of x^T A x - b^T x is the outer product x x^T
    assert derive(LECTURE[0][1], x, A, b, jnp.float32(1.0), argnums=1).text == "x x^T"
    assert derive(LECTURE[0][1], x, A, b, jnp.float32(1.0), argnums=-2).text == "-x"


# --- order 2 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fun, spec, want",
    [
        (LECTURE[0][1], "xAbc", "A + A^T"),
        (lambda x, A, b: 0.5 * jnp.sum((A @ x - b) ** 2), "xAb", "A^T A"),
        (lambda x: jnp.sum(jnp.exp(x)), "x", "Diag(exp(x))"),
        (lambda x, b: jnp.exp(b @ x), "xb", "exp(b^T x) b b^T"),
        (lambda x: jnp.linalg.norm(x), "x", "I / ||x|| - x x^T / ||x||^3"),
    ],
)
def test_hessian(fun, spec, want):
    args = _args(spec)
    formula = derive(fun, *args, order=2)
    assert formula.text == want
    assert formula.order == 2
    np.testing.assert_allclose(
        formula.evaluate(*args), fast_jit(jax.hessian(fun))(*args), rtol=2e-4, atol=2e-4
    )


def test_hessian_of_a_scalar_argument():
    fun = lambda t, a: jnp.sin(a * t) * t
    args = (jnp.float32(0.7), jnp.float32(2.0))
    formula = derive(fun, *args, order=2)
    np.testing.assert_allclose(
        formula.evaluate(*args), fast_jit(jax.hessian(fun))(*args), rtol=1e-5
    )


def test_hessian_in_a_matrix_is_refused():
    with pytest.raises(NotImplementedError, match="matrix argument"):
        derive(LECTURE[2][1], *_args("PS"), order=2)


# --- what the symbolic layer cannot express ------------------------------------------------


def test_unsupported_primitive_is_a_named_opaque_term_that_evaluates():
    x, A, *_ = _data()
    fun = lambda x, A: jnp.sum(jax.nn.relu(A @ x))
    formula = derive(fun, x, A)
    assert formula.opaque == ("vjp_relu",)
    assert formula.text == "A^T vjp_relu(A x, 1)"  # the matrix part stays a formula
    np.testing.assert_allclose(formula.evaluate(x, A), jax.grad(fun)(x, A), rtol=1e-5)


def test_several_opaque_inputs_are_told_apart():
    x, *_ = _data()
    fun = lambda x: jnp.sum(jnp.where(x > 0, x**2, -x))
    formula = derive(fun, x)
    assert set(formula.opaque) == {"vjp1_select_n", "vjp2_select_n", "gt"}
    np.testing.assert_allclose(formula.evaluate(x), jax.grad(fun)(x), rtol=1e-5)


def test_a_wrong_rule_is_caught_and_never_shown(monkeypatch):
    wrong = lambda eqn, ins, outs, cts, act: [cts[0]]  # d sin = identity: wrong
    monkeypatch.setitem(derive_module.VJP, "sin", wrong)
    x, *_ = _data()
    with pytest.raises(DerivationError, match=r"disagrees with jaxls\.ad"):
        derive(lambda x: jnp.sum(jnp.sin(x)), x)


# --- evaluation, in both precisions --------------------------------------------------------

EVALUATED = [
    (LECTURE[0][1], "xAbc"),
    (LECTURE[1][1], "xP"),
    (LECTURE[2][1], "PS"),
    (LECTURE[6][1], "xAb"),
    (lambda X, b: b @ jnp.linalg.solve(X, b) + jnp.trace(jnp.linalg.inv(X)), "Pb"),
    (lambda x, A: jax.nn.logsumexp(A @ x) + jnp.sum(jax.nn.softplus(x)), "xA"),
    (lambda x, A: jnp.sum(jax.nn.relu(A @ x) ** 2), "xA"),
]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("k", range(len(EVALUATED)))
def test_evaluate_matches_jax_grad(k, dtype):
    fun, spec = EVALUATED[k]
    args = _args(spec, dtype)
    formula = derive(fun, *args)
    got = formula.evaluate(*args)
    assert got.dtype == dtype
    rtol = 1e-4 if dtype == jnp.float32 else 1e-10
    # evaluate composes with jit; jax.grad in the same program (eagerly, its operations
    # would be compiled one by one)
    jitted, want = fast_jit(lambda *a: (formula.evaluate(*a), jax.grad(fun)(*a)))(*args)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(jitted, got, rtol=rtol, atol=rtol)


# --- errors ----------------------------------------------------------------------------------


def test_bad_inputs_name_the_call():
    x, A, *_ = _data()
    with pytest.raises(ValueError, match=r"shape \(4,\).*real scalar"):
        derive(lambda x, A: A @ x, x, A)
    with pytest.raises(ValueError, match="returns 2 arrays"):
        derive(lambda x: (x @ x, x @ x), x)
    with pytest.raises(ValueError, match=r"derive\(argnums=2\)"):
        derive(lambda x, A: x @ A @ x, x, A, argnums=2)
    with pytest.raises(TypeError, match="argnums is one int"):
        derive(lambda x, A: x @ A @ x, x, A, argnums=(0, 1))
    with pytest.raises(ValueError, match=r"order=3"):
        derive(lambda x: x @ x, x, order=3)
    with pytest.raises(ValueError, match="rank at most 2"):
        derive(lambda x: jnp.sum(x), jnp.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="must be floating"):
        derive(lambda x, n: jnp.sum(x) * n, x, jnp.int32(3), argnums=1)
    with pytest.raises(TypeError, match="no pytrees"):
        derive(lambda p: p["x"] @ p["x"], {"x": x})
    with pytest.raises(ValueError, match="not finite"):
        derive(lambda x: jnp.sum(jnp.sqrt(x)), -jnp.abs(x))
    with pytest.raises(ValueError, match="distinct names"):
        derive(lambda x, A: x @ A @ x, x, A, names=["x", "x"])
    with pytest.raises(TypeError, match="concrete"):
        jax.jit(lambda x: derive(lambda y: y @ y, x).evaluate(x))(x)


# --- operator count --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "latex, count",
    [
        (r"(A + A^\top) x - b", 4),
        (r"\frac{(A + A^\top) x}{x^\top A x}", 7),
        (r"S - X^{-\top}", 2),
        (r"e^{a^\top x} a", 4),  # the superscript, the transpose and product inside, a
        (r"\frac{x}{\lVert x \rVert_2}", 2),
        (r"\langle x, A x \rangle", 2),
        (r"A^\top p, \quad p = \operatorname{softmax}(A x + b)", 5),
        (r"\sum_{r=0}^{2} (X^r)^\top", 3),
        (r"\log \det X, \quad X \succ 0", 2),
        (r"\log \det X \text{ (X invertible)}", 2),
        (r"4 x^{\odot 3}", 2),
        (r"I", 0),
    ],
)
def test_operator_count(latex, count):
    assert operator_count(latex) == count


# --- the catalogue -------------------------------------------------------------------------


# Compiled once for all entries, without XLA's backend optimisations: compiling is what
# costs (sampling every entry eagerly compiles each of its small operations on its own).
_FAST = {"xla_backend_optimization_level": "0"}


def _compiled(fun, *args):
    return jax.jit(fun).lower(*args).compile(compiler_options=_FAST)(*args)


@pytest.fixture(scope="module")
def derived():
    """Every catalogue entry with a gradient, derived once from its function."""
    entries = [e for e in CATALOGUE if e.grad is not None]
    draws = sorted({e.sample.draws for e in entries})

    def sample(key):  # e.sample(key, dtype), the normals of each size drawn once
        normals = {n: jax.random.normal(key, (n,), jnp.float32) for n in draws}
        return [e.sample.transform(normals[e.sample.draws]) for e in entries]

    samples = _compiled(sample, jax.random.key(0))
    return {
        e.name: (e, args, derive(e.fun, *args)) for e, args in zip(entries, samples, strict=True)
    }


def test_catalogue_formulas_agree_with_the_catalogue(derived):
    """A third oracle: the catalogue's own closed form (its sampler respects its domain:
    symmetric where the closed form assumes it)."""
    rows = list(derived.values())

    def errors(all_args):
        return [
            jnp.max(jnp.abs(formula.evaluate(*args) - e.grad(*args)))
            / (1 + jnp.max(jnp.abs(e.grad(*args))))
            for (e, _, formula), args in zip(rows, all_args, strict=True)
        ]

    errs = _compiled(errors, [args for _, args, _ in rows])
    bad = {e.name: float(err) for (e, _, _), err in zip(rows, errs, strict=True) if err > 2e-3}
    assert not bad


def test_catalogue_target_at_least_40_formulas_no_longer_than_the_catalogue(derived):
    short = [
        name
        for name, (e, _, formula) in derived.items()
        if not formula.opaque and formula.operator_count <= operator_count(e.grad_latex)
    ]
    assert len(short) >= 40, short
    assert all(not formula.opaque for _, _, formula in derived.values())
    assert "trace_AXB" in short and "lecture_log_det" in short


def test_catalogue_hessians(derived):
    for name in ("lecture_quadratic", "quadratic_form", "least_squares", "squared_norm"):
        e, args, _ = derived[name]
        formula = derive(e.fun, *args, order=2)
        np.testing.assert_allclose(
            formula.evaluate(*args), e.hessian(*args), rtol=1e-4, atol=1e-4, err_msg=name
        )
        assert not formula.opaque


def test_formula_is_exported():
    assert isinstance(derive(lambda x: x @ x, jnp.ones(2) * 2), Formula)
