"""One name per concept across the public API (issue 10), read from the signatures.

Every public function of `jaxls` and `jaxls.optax` is checked: no parameter carries a name
that was retired for another (`RETIRED`), and the searches and rules that share a concept
share its name and, where the meaning agrees, its default. The registries below are
explicit: a public search or rule that is missing from them, or renamed, fails
`test_registries_cover_the_public_api`, so a new one is checked too.
"""

from __future__ import annotations

import inspect

import pytest

import jaxls
import jaxls.optax
from jaxls import optax as jo

# Retired names and the name of their concept now. A setting is never named like a result
# field (`num_evals`, `step`, `num_iterations` say what a search did).
RETIRED = {
    "growth": "grow",  # the factor by which a step grows (the optax adapters)
    "rho": "grow",  # Hager and Zhang's symbol for it
    "c": "c1",  # Goldstein's constant: the Armijo constant of its upper line
    "max_steps": "max_iterations",  # an optimiser's iteration budget
    "num_steps": "max_iterations",
    "num_evals": "fixed_evals",  # a fixed budget of calls (the result field counts calls)
    "num_iterations": "max_iterations",
    "step": "step_init",  # a first trial length (`step` is the accepted step of a result)
}


def public_functions() -> dict[str, object]:
    found = {}
    modules = ((jaxls, "jaxls"), (jaxls.optax, "jaxls.optax"), (jaxls.calculus, "jaxls.calculus"))
    for module, prefix in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                found[f"{prefix}.{name}"] = obj
    return found


def parameters(fun) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fun).parameters)


def default(fun, name):
    return parameters(fun)[name].default


# Step-size searches (they return a `LineSearchResult`), and whether they grow a step.
STEP_SEARCHES = {
    "backtracking": False,  # only shrinks from step_init: no grow, no step_max
    "goldstein": True,
    "wolfe": True,
    "hager_zhang": True,
}
# Interval searches (they return a `ScalarResult`), and their fixed-budget setting if any.
INTERVAL_SEARCHES = {
    "bracket": None,
    "brent": None,
    "dichotomy": "optional",
    "fibonacci": "required",
    "golden_section": "optional",
    "parabolic": None,
}
# The optax rules: the keyword of the factor by which the next search's start grows.
RULES = {"scale_by_line_search": None, "nonmonotone_armijo": None, "stochastic_armijo": 2.0}
# Defaults that differ from the shared one on purpose, with the reason.
STEP_MAX_EXCEPTIONS = {
    "stochastic_armijo": "Vaswani et al.'s eta_max = 10: SLS's steps climb to the cap",
}
# State fields: where the next search starts.
STATES = [jo.ScaleByLineSearchState, jo.NonmonotoneArmijoState, jo.StochasticArmijoState]


def _returns(fun, result: str) -> bool:
    return result in str(inspect.signature(fun).return_annotation)


def test_registries_cover_the_public_api():
    functions = {name.removeprefix("jaxls."): f for name, f in public_functions().items()}
    steps = {n for n, f in functions.items() if _returns(f, "LineSearchResult")}
    intervals = {n for n, f in functions.items() if _returns(f, "ScalarResult")}
    rules = {
        n.removeprefix("optax.")
        for n, f in functions.items()
        if _returns(f, "GradientTransformation")
    }
    assert steps == set(STEP_SEARCHES)
    assert intervals == set(INTERVAL_SEARCHES)
    assert rules == set(RULES)
    states = {getattr(jo, n) for n in jo.__all__ if n.endswith("State")}
    assert states == set(STATES)


@pytest.mark.parametrize("name", sorted(public_functions()))
def test_no_public_parameter_has_a_retired_name(name):
    fun = public_functions()[name]
    for parameter in parameters(fun):
        if name.endswith("_condition") and parameter == "step":
            continue  # a predicate's `step` is the step t it tests, as a result's step is
        assert parameter not in RETIRED, (
            f"`{name}({parameter}=...)`: the concept is named `{RETIRED.get(parameter)}`"
        )


@pytest.mark.parametrize("name", sorted(STEP_SEARCHES))
def test_step_searches_share_names_and_defaults(name):
    search = getattr(jaxls, name)
    params = parameters(search)
    assert "c1" in params  # the Armijo constant, Goldstein's upper line included
    assert default(search, "step_init") == 1.0 and default(search, "max_evals") == 30
    if STEP_SEARCHES[name]:
        assert default(search, "grow") == 2.0
        assert params["step_max"].default is None  # the dtype's largest finite number
    else:
        assert "grow" not in params and "step_max" not in params
    if "c2" in params:
        assert default(search, "c2") == 0.9


@pytest.mark.parametrize("name", sorted(INTERVAL_SEARCHES))
def test_interval_searches_name_a_fixed_budget_fixed_evals(name):
    params = parameters(getattr(jaxls, name))
    mode = INTERVAL_SEARCHES[name]
    if mode is None:
        assert "fixed_evals" not in params
    elif mode == "optional":
        assert params["fixed_evals"].default is None and "max_evals" in params
    else:
        assert params["fixed_evals"].default is inspect.Parameter.empty
    if "max_evals" in params:
        # Enough to reach float64's resolution on any interval: 100, or 200 for dichotomy's
        # two evaluations per halving (its docstring says so); bracket's 50 grow its step by
        # up to 2^50.
        expected = {"dichotomy": 200, "bracket": 50}.get(name, 100)
        assert default(getattr(jaxls, name), "max_evals") == expected


def test_bracket_starts_from_step_init_and_grows_by_grow():
    params = parameters(jaxls.bracket)
    assert "step_init" in params and "grow" in params


@pytest.mark.parametrize("name", sorted(RULES))
def test_rules_share_names_and_defaults(name):
    rule = getattr(jo, name)
    params = parameters(rule)
    assert default(rule, "grow") == RULES[name]
    assert default(rule, "step_init") == 1.0 and default(rule, "failure_shrink") == 0.1
    if name in STEP_MAX_EXCEPTIONS:
        assert params["step_max"].default is not None, STEP_MAX_EXCEPTIONS[name]
    else:
        assert params["step_max"].default is None


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.__name__)
def test_states_keep_where_the_next_search_starts_as_start(state):
    assert "start" in state._fields and "step_init" not in state._fields


def test_an_iteration_budget_is_named_for_iterations():
    assert jaxls.Status.MAX_ITERATIONS.name == "MAX_ITERATIONS"
    assert not hasattr(jaxls.Status, "MAX_STEPS")
    assert "max_iterations" in jaxls.Status.MAX_ITERATIONS.message
    assert "num_iterations" in jo.MinimizeResult._fields
    assert "num_steps" not in jo.MinimizeResult._fields
    assert default(jo.minimize, "max_iterations") == 1000


def test_goldstein_condition_names_its_constant_c1():
    assert "c1" in parameters(jaxls.goldstein_condition)
    # The upper line is the Armijo condition with the same c1.
    assert bool(jaxls.goldstein_condition(1.0, -2.0, 0.5, 0.5, c1=0.25))
    assert not bool(jaxls.goldstein_condition(1.0, -2.0, 0.9, 0.5, c1=0.25))
