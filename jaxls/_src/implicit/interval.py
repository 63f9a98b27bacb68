r"""Derivatives of an exact search's minimiser by the implicit function theorem.

For ``x*(theta) = argmin f(x, theta)`` on ``[lower(theta), upper(theta)]``:

* an interior minimiser satisfies ``f_x(x*, theta) = 0``; differentiating it,
  ``dx* = -f_x,theta dtheta / f_xx`` (``f_xx > 0``), and by the envelope theorem
  ``d value* = f_theta dtheta`` (the ``f_x dx*`` term vanishes);
* a minimiser at a bound moves with it, ``dx* = d lower`` (or ``d upper``), and
  ``d value* = f_x d lower + f_theta dtheta``.

The bound is *active* when the final bracket still has the interval's end and the Newton
step from ``x*``, ``x* - f_x / f_xx``, lands at or beyond it (for ``f_xx <= 0``: when ``f_x``
points out of the interval there): ``x*`` then sits within the tolerance of the bound
because the minimum lies on it, not because an interior minimiser happens to be close.

The derivative is NaN (every floating output's) where it does not exist or the answer is
not a minimiser: a status other than ``SUCCESS`` or ``ROUNDING`` (the status says why:
``MAX_EVALS``, ``NONFINITE``, ``INVALID_INPUT``), or ``f_xx <= 0`` (or not finite) at an
interior minimiser (a degenerate or non-strict minimum: the status is ``SUCCESS``, the NaN
is the signal; ``f(x) = |x - theta|`` has ``f_xx = 0`` by AD and gets it). Each final
bracket end moves with its bound while it is one, else with ``x*`` (the bracket's width is
held constant); ``num_evals`` and ``status`` carry no derivative.

Cost: the gradient, ``f_xx`` and ``f_x,theta dtheta`` at ``x*`` (a few evaluations of
derivatives of ``f``), whatever the number of iterations; nothing of the loop is kept.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxls._src.implicit.common import cast_like, hoist, poison, poisoned, zero_tangent
from jaxls._src.interval.common import Interval
from jaxls._src.results import ScalarResult, Status


def minimiser(fun: Callable, problem: Interval, run: Callable, *starts) -> ScalarResult:
    """``run(fun, problem, *starts)`` (an exact search's loop and result), differentiable
    with respect to ``fun``'s closed-over values and the bounds by the implicit function
    theorem (see the module docstring). ``starts``: arrays the loop starts from or steps
    by (a first trial point, Fibonacci's fractions), passed explicitly (a closed-over
    array would be a tracer under ``jaxls.ad``'s trace), on which the minimiser does not
    depend: their derivative is none."""
    has_aux = problem.has_aux
    converted, consts = hoist(fun, jnp.zeros((), problem.dtype))
    fields = {k: v for k, v in problem._asdict().items() if k != "has_aux"}

    @jax.custom_jvp
    def solve(fields, consts, starts):
        problem = Interval(**fields, has_aux=has_aux)
        return run(lambda x: converted(x, *consts), problem, *starts)

    @solve.defjvp
    def solve_jvp(primals, tangents):
        fields, consts, starts = primals
        dfields, dconsts, _ = tangents
        res = solve(fields, consts, starts)
        return res, _tangent(converted, has_aux, res, fields, dfields, consts, dconsts)

    return solve(fields, consts, starts)


def fixed_decisions(fun: Callable, dtype, has_aux: bool, run: Callable, x0, step_init, *rest):
    """``run(fun, x0, step_init, *rest)`` (`jaxls.bracket`'s loop and result),
    differentiable with the search's decisions held constant: every point it returns is
    ``x0 + c step_init`` with ``c`` a constant, so ``d p = d x0 + c d step_init``, and the
    value (and aux) there is differentiated at that point: ``f_x dp + f_theta dtheta``.
    ``rest`` (``grow``, flags) only decide."""
    converted, consts = hoist(fun, jnp.zeros((), dtype))

    @jax.custom_jvp
    def search(x0, step_init, rest, consts):
        return run(lambda x: converted(x, *consts), x0, step_init, *rest)

    @search.defjvp
    def search_jvp(primals, tangents):
        x0, step_init, rest, consts = primals
        dx0, dstep, _, dconsts = tangents
        res = search(x0, step_init, rest, consts)
        moved = lambda p: dx0 + (p - x0) / step_init * dstep
        dx = moved(res.x)
        dout = jax.jvp(lambda x, c: converted(x, *c), (res.x, consts), (dx, dconsts))[1]
        dvalue, daux = dout if has_aux else (dout, None)
        tangent = ScalarResult(
            x=dx,
            value=jnp.asarray(dvalue).astype(res.value.dtype),
            lower=moved(res.lower),
            upper=moved(res.upper),
            num_evals=zero_tangent(res.num_evals),
            status=zero_tangent(res.status),
            aux=None if daux is None else cast_like(daux, res.aux),
        )
        return res, tangent

    return search(x0, step_init, rest, consts)


def _tangent(converted, has_aux, res: ScalarResult, fields, dfields, consts, dconsts):
    def value(x, consts):
        out = converted(x, *consts)
        return (out[0] if has_aux else out).astype(res.x.dtype)

    def slope(x, consts):
        return jax.grad(value)(x, consts)

    lower, upper = fields["lower"], fields["upper"]
    x = jnp.where(jnp.isfinite(res.x), res.x, lower)  # invalid members: NaN, masked below
    one = jnp.ones((), x.dtype)
    f_x, f_xx = jax.jvp(lambda x: slope(x, consts), (x,), (one,))
    # f_theta dtheta and f_x,theta dtheta, in one JVP.
    d_theta, mixed = jax.jvp(lambda c: jax.value_and_grad(value)(x, c), (consts,), (dconsts,))[1]
    convex = jnp.isfinite(f_xx) & (f_xx > 0)
    curvature = jnp.where(convex, f_xx, one)  # a safe divisor (masked where not convex)
    newton = x - f_x / curvature
    at_lower, at_upper = res.lower <= lower, res.upper >= upper
    on_lower = at_lower & jnp.where(convex, newton <= lower, f_x > 0)
    on_upper = at_upper & ~on_lower & jnp.where(convex, newton >= upper, f_x < 0)
    interior = ~(on_lower | on_upper)
    found = (res.status == Status.SUCCESS) | (res.status == Status.ROUNDING)
    ok = found & (convex | ~interior) & jnp.isfinite(f_x)
    # NaN with respect to every input where the derivative does not exist (`poison`).
    # The given bounds too: for invalid input the search's own were replaced (`invalidate`).
    bounds = [dfields[k] for k in ("lower", "upper", "given_lower", "given_upper")]
    bad = poison(ok, x.dtype, bounds, dconsts)
    dx = jnp.where(
        on_lower, dfields["lower"], jnp.where(on_upper, dfields["upper"], -mixed / curvature)
    )
    dx = dx + bad
    # value*: the envelope theorem inside (no f_x dx term), the chain rule on a bound.
    dvalue = jnp.where(interior, 0, f_x) * dx + d_theta + bad
    daux = None
    if has_aux:
        aux_at = lambda x, consts: converted(x, *consts)[1]
        daux = poisoned(jax.jvp(aux_at, (x, consts), (dx, dconsts))[1], bad, res.aux)
    return ScalarResult(
        x=dx,
        value=dvalue.astype(res.value.dtype),
        lower=jnp.where(at_lower, dfields["lower"], dx) + bad,
        upper=jnp.where(at_upper, dfields["upper"], dx) + bad,
        num_evals=zero_tangent(res.num_evals),
        status=zero_tangent(res.status),
        aux=daux,
    )


__all__ = ["fixed_decisions", "minimiser"]
