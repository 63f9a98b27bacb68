"""The rule tables' contents: importing this package registers every family's rules in
`jaxls._src.ad.registry`, one module per family.

* arithmetic: `elementwise` (arithmetic, transcendental functions, comparisons, casts),
  `misc` (optimisation barriers, ``name``, derivative-free bookkeeping, the random
  primitives);
* array structure: `contraction` (``dot_general``), `convolution`
  (``conv_general_dilated``), `shape`, `reductions`, `windows` (``reduce_window_*``),
  `cumulative`, `indexing` (slicing, padding, gather, scatter), `sorting`, with their
  helpers in `common`; `fft`;
* special functions with formulas of their own: `special` (``igamma``, ``igammac``,
  ``regularized_incomplete_beta``, ``random_gamma``, ``polygamma``);
* linear algebra: `linalg` (``lu``, ``triangular_solve``, ``cholesky``, ``eigh``, ``svd``,
  ``qr``, ``eig``, ``tridiagonal_solve``; ``schur`` refused), `linear_solve`
  (``custom_linear_solve``);
* higher-order primitives, whose rules are handed the interpreter: `calls` (``jit``,
  ``remat``, ``custom_jvp_call``, ``custom_vjp_call``), `control_flow` (``cond``, ``scan``,
  ``while``).
"""

from jaxls._src.ad.rules import (  # noqa: F401  (each module registers its rules)
    calls,
    contraction,
    control_flow,
    convolution,
    cumulative,
    elementwise,
    fft,
    indexing,
    linalg,
    linear_solve,
    misc,
    reductions,
    shape,
    sorting,
    special,
    windows,
)
