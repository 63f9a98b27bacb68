"""Hand-written automatic differentiation, with jax's signatures.

Forward mode (``jvp``, ``jacfwd``) and reverse mode (``vjp``, ``grad``, ``jacrev``) trace a
plain JAX function to a jaxpr and interpret it with jaxls's own rule per primitive:
a JVP rule for forward mode; for reverse mode a forward sweep that keeps the intermediate
values (the tape) and a backward sweep that accumulates adjoints. The results are ordinary
JAX computations: `jax.jit` and `jax.vmap` compose with every transform.

jax's contract is kept: every float dtype JAX knows (bfloat16 and float16 included) carries
derivatives; what jax refuses (integer, boolean and PRNG-key inputs to ``grad`` without
``allow_int``, float0 inputs, complex outputs without ``holomorphic=True``, a tangent or
cotangent of the wrong kind, ``nextafter``) is refused with an error that names the call,
the argument and the fix; keyword arguments of a transformed function are passed through,
never differentiated. The random primitives are constants (a dropout mask), as in jax.

One limitation jax does not have: the function is traced to a jaxpr before it is
differentiated, so Python control flow on the values of its differentiated inputs
(``if x > 0:``), in its custom_jvp / custom_vjp rules too, raises `TracedControlFlowError`
(a `jax.errors.ConcretizationTypeError`) naming the call and the fixes (``lax.cond``,
``jnp.where``, or leaving the argument out of ``argnums``).

What reverse mode stores between its two sweeps (each rule keeps only what it reads; a
``checkpoint``'s policy, jax's, decides what is recomputed) is listed by
``saved_residuals``, as ``jax.ad_checkpoint.print_saved_residuals`` lists jax's.

One extension jax does not have: reverse mode through ``lax.while_loop`` (jax issue 4106)
with ``max_loop_steps=N`` (``grad``, ``value_and_grad``, ``vjp``, ``jacrev``, ``hessian``,
``hvp``): each loop runs as N guarded iterations whose values are kept. A loop still
running after N iterations makes the gradient NaN (its value stays the loop's own); without
the option such a loop is refused, as in jax. With ``loop_checkpoints=k`` too, the
iterations are recomputed from ``O(k log_k N)`` stored carries instead (recursive
checkpointing; ``k = 2``: bisection), each evaluated at most ``ceil(log_k N)`` times.
"""

from jaxls._src.ad.api import (
    TracedControlFlowError,
    checkpoint,
    grad,
    hessian,
    hvp,
    jacfwd,
    jacrev,
    jvp,
    value_and_grad,
    vjp,
)
from jaxls._src.ad.finite_diff import check_grads, finite_difference_grad
from jaxls._src.ad.graph import Graph, Node, trace
from jaxls._src.ad.residuals import Residual, Residuals, print_saved_residuals, saved_residuals
from jaxls._src.ad.jaxpr import check_version as _check_version

_check_version()

__all__ = [
    "Graph",
    "Node",
    "Residual",
    "Residuals",
    "TracedControlFlowError",
    "check_grads",
    "checkpoint",
    "finite_difference_grad",
    "grad",
    "hessian",
    "hvp",
    "jacfwd",
    "jacrev",
    "jvp",
    "print_saved_residuals",
    "saved_residuals",
    "trace",
    "value_and_grad",
    "vjp",
]
