"""Backtracking specifics: the exact shrink sequence, safeguarded interpolation, scipy.

The contract every inexact search shares (non-descent, NaN, budgets, vmap, dtypes, counts)
is checked in tests/test_step.py.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxls
from jaxls import linezoo

S = jaxls.Status


class TrialRecorder:
    """Wraps ``fun`` of a 1-element ``x`` and records every evaluated ``x[0]``, in order.

    With ``x = 0`` and ``direction = 1`` the recorded values are the trial steps exactly.
    """

    def __init__(self, fun):
        self.fun = fun
        self.steps = []

    def _record(self, x):
        self.steps.append(float(np.asarray(x)[0]))

    def __call__(self, x, *args):
        jax.debug.callback(self._record, x, ordered=True)
        return self.fun(x, *args)


@functools.cache
def value_and_slope(phi):
    """``t -> (phi(t), phi'(t))`` as Python floats, compiled once per ``phi``."""
    compiled = jax.jit(jax.value_and_grad(phi))
    return lambda t: tuple(float(a) for a in compiled(jnp.float64(t)))


def armijo_numpy(phi, step, c1):
    """Armijo at ``step``, from ``phi``'s values, tested in Python float64."""
    value0, slope0 = value_and_slope(phi)(0.0)
    return value_and_slope(phi)(step)[0] <= value0 + c1 * float(step) * slope0


# Problems phi(t) = fun(0 + t 1), each with phi'(0) < 0: the Moré-Thuente functions (with
# their tables' c1) from every starting step, and a few smooth ones with far minimisers.
EXTRA = (
    ("quadratic", lambda t: (t - 3.0) ** 2, 1e-4),
    ("far_quartic", lambda t: (t - 50.0) ** 4 / 1e6 - t, 1e-4),
    ("cosh", lambda t: jnp.cosh(t - 0.7), 0.3),
    ("exp_linear", lambda t: jnp.exp(t) - 5.0 * t, 1e-4),
)
ZOO = [
    (p.name, p.phi, p.c1, step_init)
    for p in linezoo.MORE_THUENTE
    for step_init in linezoo.STEP_INIT
] + [(name, phi, c1, step_init) for name, phi, c1 in EXTRA for step_init in (1e-2, 1.0, 1e2)]


@functools.cache
def _zoo_solver(c1, interpolate):
    """One compiled search for every zoo problem with this ``c1`` (a `lax.switch` on it)."""
    cases = [case for case in ZOO if case[2] == c1]
    branches = [lambda x, phi=phi: phi(x[0]) for _, phi, _, _ in cases]
    recorder = TrialRecorder(lambda x, branch: jax.lax.switch(branch, branches, x))

    @jax.jit
    def solve(branch, step_init):
        fun = lambda x: recorder(x, branch)
        x, d = linezoo.start(), linezoo.direction()
        return jaxls.backtracking(
            fun, x, d, step_init=step_init, c1=c1, interpolate=interpolate, max_evals=60
        )

    def call(case):
        recorder.steps = []
        res = solve(cases.index(case), case[3])
        jax.effects_barrier()
        assert len(recorder.steps) == int(res.num_evals)
        return res, list(recorder.steps)

    return call


@pytest.mark.parametrize("shrink", [0.5, 0.3, 0.9])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shrink_sequence_is_the_lectures_rule(shrink, dtype):
    """Trial steps are exactly ``step_init * shrink^k`` until the first Armijo step."""
    problem = linezoo.MORE_THUENTE[0]  # -t / (t^2 + 2): Armijo needs t <~ 141 (c1 = 1e-4)
    recorder = TrialRecorder(problem.fun)
    x, d = linezoo.start(dtype), linezoo.direction(dtype)
    res = jaxls.backtracking(recorder, x, d, step_init=1e3, shrink=shrink, max_evals=200)
    jax.effects_barrier()
    assert int(res.status) == S.SUCCESS
    steps = np.asarray(recorder.steps, dtype)
    expected = [dtype(0.0), dtype(1e3)]
    while len(expected) < len(steps):
        expected.append(dtype(shrink) * expected[-1])  # rounded as the search rounds it
    np.testing.assert_array_equal(steps, np.asarray(expected, dtype))
    assert res.step.dtype == dtype and float(res.step) == float(steps[-1])
    # Oracle, in NumPy float64: every rejected step fails Armijo, the last one passes.
    value0, slope0 = 0.0, -0.5
    phi = lambda t: -t / (t * t + 2.0)
    armijo = [phi(float(t)) <= value0 + 1e-4 * float(t) * slope0 for t in steps[1:]]
    assert armijo[-1] and not any(armijo[:-1])


def test_larger_c1_never_gives_a_longer_step():
    """The Armijo set shrinks as ``c1`` grows, so the first step of the sequence in it does."""
    problem = linezoo.MORE_THUENTE[0]  # Armijo holds for t^2 <= 2 / c1 - 2
    x, d = linezoo.start(), linezoo.direction()
    steps = [
        float(jaxls.backtracking(problem.fun, x, d, step_init=1e3, c1=c1, max_evals=60).step)
        for c1 in (1e-4, 0.1, 0.5, 0.9)
    ]
    assert steps == sorted(steps, reverse=True)
    assert steps[0] > steps[-1]


def test_interpolation_needs_no_more_evaluations_and_is_safeguarded():
    plain_total = interpolated_total = 0
    for case in ZOO:
        name, phi, c1, step_init = case
        plain, _ = _zoo_solver(c1, False)(case)
        interpolated, steps = _zoo_solver(c1, True)(case)
        assert int(plain.status) == int(interpolated.status) == S.SUCCESS, name
        assert int(interpolated.num_evals) <= int(plain.num_evals), (name, step_init)
        assert armijo_numpy(phi, interpolated.step, c1), (name, step_init)
        assert armijo_numpy(phi, plain.step, c1), (name, step_init)
        # Each interpolated trial lies in [0.1 t, 0.5 t] of the step it replaces.
        trials = steps[1:]
        for before, after in itertools.pairwise(trials):
            assert 0.1 * before * (1 - 1e-15) <= after <= 0.5 * before * (1 + 1e-15), name
        plain_total += int(plain.num_evals)
        interpolated_total += int(interpolated.num_evals)
    assert interpolated_total < plain_total


def test_against_scipy_armijo_backtracking():
    """scipy's quadratic-then-cubic Armijo search on the same problems, as the reference.

    Both steps satisfy Armijo, and the jaxls step (interpolating) is never much shorter than
    scipy's. Where the two steps are comparable (within a factor 10), jaxls needs at most
    one evaluation more. Elsewhere scipy's unsafeguarded quadratic step collapses (to
    3e-10 on mt2 from t = 10, 6e-40 on cosh from t = 100): cheap, and useless, where jaxls
    keeps at least a tenth of the step each time.
    """
    linesearch = pytest.importorskip("scipy.optimize._linesearch")
    collapsed = 0
    for case in ZOO:
        name, phi, c1, step_init = case
        res, _ = _zoo_solver(c1, True)(case)
        ours = float(res.step)
        vg = value_and_slope(phi)
        calls = []
        value0, slope0 = vg(0.0)
        step, _ = linesearch.scalar_search_armijo(
            lambda t, calls=calls, vg=vg: calls.append(t) or vg(t)[0],
            value0,
            slope0,
            c1=c1,
            alpha0=step_init,
        )
        where = (name, step_init, ours, step)
        assert step is not None, where
        assert armijo_numpy(phi, step, c1), where
        assert armijo_numpy(phi, ours, c1), where
        assert ours >= step / 2, where
        if step >= ours / 10:
            assert int(res.num_evals) - 1 <= len(calls) + 1, where  # scipy is given phi(0)
        collapsed += step < 1e-6 * ours
    assert collapsed >= 4


def test_nonfinite_trial_shrinks_plainly():
    """A NaN value gives no model to interpolate: the step shrinks by ``shrink``."""
    recorder = TrialRecorder(lambda x: jnp.where(x[0] > 0.2, jnp.nan, (x[0] - 1.0) ** 2))
    x, d = linezoo.start(), linezoo.direction()
    res = jaxls.backtracking(recorder, x, d, step_init=4.0, shrink=0.5, interpolate=True)
    jax.effects_barrier()
    assert int(res.status) == S.SUCCESS
    steps = recorder.steps
    assert steps == [0.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.125]
    assert float(res.step) == 0.125
