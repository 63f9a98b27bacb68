"""Rules for primitives that are neither arithmetic nor array structure: optimisation
barriers (emitted by `jaxls.ad.checkpoint`'s recomputation), ``name`` (the identity that
`jax.ad_checkpoint.checkpoint_name` marks a value with, for remat policies), and boolean /
integer bookkeeping that carries no derivative (``platform_index``, boolean reductions)."""

from __future__ import annotations

from jax import lax

from jaxls._src.ad.registry import NOTHING, defjvp, defvjp, instantiate

# Integer, boolean and key-valued results: no tangent, and no cotangent for their inputs.
# The random primitives are constants of the differentiated function, as in JAX (dropout's
# mask, a noise sample): their inputs are keys and shapes, their outputs bits or keys.
RANDOM = ("random_bits", "random_seed", "random_wrap", "random_unwrap", "random_split",
          "random_fold_in", "threefry2x32")  # fmt: skip
NO_DERIVATIVE = ("platform_index", "reduce_or", "reduce_and", "reduce_xor", *RANDOM)


@defjvp(*NO_DERIVATIVE)
def _no_tangent(primals, tangents, out, **params):
    return [None] * len(out) if isinstance(out, (list, tuple)) else None


@defvjp(*NO_DERIVATIVE, reads=NOTHING)
def _no_cotangent(cts, primals, out, **params):
    return [None] * len(primals)


@defjvp("optimization_barrier")
def _barrier_jvp(primals, tangents, out, **params):
    """The barrier is the identity: tangents pass through (behind a barrier of their own)."""
    present = [t for t in tangents if t is not None]
    passed = iter(lax.optimization_barrier(present)) if present else iter(())
    return [None if t is None else next(passed) for t in tangents]


@defvjp("optimization_barrier", reads=NOTHING)
def _barrier_vjp(cts, primals, out, **params):
    return [None if c is None else instantiate(c, p) for c, p in zip(cts, primals, strict=True)]


@defjvp("name")
def _name_jvp(primals, tangents, out, **params):
    """``name`` is the identity: the tangent passes through (unnamed: a name marks a primal
    value for a remat policy)."""
    (t,) = tangents
    return t


@defvjp("name", reads=NOTHING)
def _name_vjp(ct, primals, out, **params):
    return (ct,)


__all__ = ["NO_DERIVATIVE", "RANDOM"]
