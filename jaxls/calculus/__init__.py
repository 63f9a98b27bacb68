"""Matrix calculus, as the lecture teaches it, as code that checks itself.

See `jaxls._src.calculus.catalogue` for the conventions (the gradient of a scalar function
of a matrix has the matrix's shape; ``df = <g, dx>``).
"""

from jaxls._src.calculus.catalogue import CATALOGUE, Entry, entry

__all__ = ["CATALOGUE", "Entry", "entry"]
