r"""Derivatives through a step-size search: the accepted step held constant.

The step an inexact search accepts (backtracking, Goldstein, Wolfe, Hager-Zhang) is
piecewise constant in the problem's data, or defined by inequalities: it has no useful
derivative. The convention, the same for every search: **the step ``t`` is a constant**
(its derivative is zero), and everything the search returns at the accepted point
``y = x + t d`` is differentiated as a function of ``y`` and of the objective's
parameters ``theta``:

* ``d value = <grad f(y), dx + t dd> + f_theta dtheta``,
* ``d grad = H(y) (dx + t dd) + grad_x f_theta dtheta``,
* ``d slope = <d grad, d> + <grad f(y), dd>``, and the aux output likewise;

``step`` has derivative 0; ``num_evals``, ``status``, ``num_grads`` and ``met_nonfinite``
none. A failed search returns ``t = 0``, and so the derivatives of ``f`` at ``x``. The
given ``value`` and ``grad`` (``f`` and its gradient at ``x``) only decide the step: their
derivatives are not used. Cost: one JVP of ``value_and_grad`` at ``y`` (about one
Hessian-vector product), never a differentiation through the loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import jax
import jax.numpy as jnp

from jaxls._src.implicit.common import bind, cast_like, hoist, split_traced, zero_tangent
from jaxls._src.results import LineSearchResult
from jaxls._src.tree import tree_axpy, tree_vdot

Search = TypeVar("Search", bound=Callable[..., LineSearchResult])


def constant_step(search: Search) -> Search:
    """``search(fun, x, direction, **options)``, differentiable by the constant-step
    convention (module docstring) with respect to ``x``, ``direction`` and the values
    ``fun`` and ``value_and_grad`` close over."""

    @functools.wraps(search)
    def differentiable(fun, x, direction, **options):
        value_and_grad = options.get("value_and_grad")
        has_aux = options.get("has_aux", False)
        try:
            x = jax.tree.map(jnp.asarray, x)
            direction = jax.tree.map(jnp.asarray, direction)
            fun_c, fun_consts = (None, []) if fun is None else hoist(fun, x)
            vg_c, vg_consts = (None, []) if value_and_grad is None else hoist(value_and_grad, x)
        except (TypeError, ValueError):  # bad input: the search says what is wrong
            return search(fun, x, direction, **options)
        dynamic, static = split_traced(options, keep=("value_and_grad",))

        def objectives(fun_consts, vg_consts):
            f = None if fun_c is None else bind(fun_c, fun_consts)
            vg = None if vg_c is None else bind(vg_c, vg_consts)
            return f, vg

        @jax.custom_jvp
        def run(x, direction, dynamic, fun_consts, vg_consts):
            f, vg = objectives(fun_consts, vg_consts)
            fixed = {**static, **dynamic}
            if vg is not None:
                fixed["value_and_grad"] = vg
            return search(f, x, direction, **fixed)

        @run.defjvp
        def run_jvp(primals, tangents):
            x, direction, _, fun_consts, vg_consts = primals
            dx, ddirection, _, dfun_consts, dvg_consts = tangents
            res = run(*primals)

            def value_and_grad_at(y, fun_consts, vg_consts):
                f, vg = objectives(fun_consts, vg_consts)
                return (vg or jax.value_and_grad(f, has_aux=has_aux))(y)

            y = tree_axpy(res.step, direction, x)
            dy = tree_axpy(res.step, ddirection, dx)
            consts, dconsts = (fun_consts, vg_consts), (dfun_consts, dvg_consts)
            (_, grad), (dout, dgrad) = jax.jvp(value_and_grad_at, (y, *consts), (dy, *dconsts))
            dvalue, daux = dout if has_aux else (dout, None)
            dslope = tree_vdot(dgrad, direction) + tree_vdot(grad, ddirection)
            tangent = LineSearchResult(
                step=jnp.zeros_like(res.step),
                value=jnp.asarray(dvalue).astype(res.value.dtype),
                grad=cast_like(dgrad, res.grad),
                slope=dslope.astype(res.slope.dtype),
                num_evals=zero_tangent(res.num_evals),
                status=zero_tangent(res.status),
                num_grads=zero_tangent(res.num_grads),
                met_nonfinite=zero_tangent(res.met_nonfinite),
                aux=None if res.aux is None else cast_like(daux, res.aux),
            )
            return res, tangent

        return run(x, direction, dynamic, fun_consts, vg_consts)

    return differentiable  # type: ignore[return-value]


def constant_step_value_only(search: Callable) -> Callable:
    """A value-only search ``search(f, x, direction, *arrays, **config) -> state`` (a
    NamedTuple with ``step`` and ``aux`` fields, the rest integers), differentiable by the
    same convention: ``step`` has derivative 0, ``aux`` (``f``'s aux output at the accepted
    point, with ``config["has_aux"]``) is differentiated at ``x + t d``; ``arrays`` (the
    value and gradient at ``x``, a first step) and traced ``config`` values (``c1``,
    ``shrink``) only decide the step: passed explicitly, their derivative is none."""

    @functools.wraps(search)
    def differentiable(f, x, direction, *arrays, **config):
        converted, consts = hoist(f, x)
        dynamic, static = split_traced(config)

        @jax.custom_jvp
        def run(x, direction, arrays, dynamic, consts):
            return search(bind(converted, consts), x, direction, *arrays, **static, **dynamic)

        @run.defjvp
        def run_jvp(primals, tangents):
            x, direction, _, _, consts = primals
            dx, ddirection, _, _, dconsts = tangents
            res = run(*primals)
            tangent = zero_tangent(res)
            if config.get("has_aux"):
                y = tree_axpy(res.step, direction, x)
                dy = tree_axpy(res.step, ddirection, dx)
                aux_at = lambda y, consts: converted(y, *consts)[1]
                daux = jax.jvp(aux_at, (y, consts), (dy, dconsts))[1]
                tangent = tangent._replace(aux=cast_like(daux, res.aux))
            return res, tangent

        return run(x, direction, arrays, dynamic, consts)

    return differentiable


__all__ = ["constant_step", "constant_step_value_only"]
