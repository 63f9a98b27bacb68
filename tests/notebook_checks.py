"""What the notebooks' claims are checked with: closed forms in float64 and readers of the
figures they draw (tests/test_notebooks.py runs each notebook, then the ``check`` function of
``tests/claims_<notebook>.py`` on what its cells left in their namespace)."""

from __future__ import annotations

import itertools
import pathlib
import re

import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).parent.parent
EPS32 = float(jnp.finfo(jnp.float32).eps)  # 1.2e-7: the notebooks run in float32
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def close(actual, expected, rtol, atol=0.0, claim=""):
    np.testing.assert_allclose(
        np.asarray(actual, np.float64),
        np.asarray(expected, np.float64),
        rtol=rtol,
        atol=atol,
        err_msg=claim,
    )


def decreasing(values) -> bool:
    return all(b < a for a, b in itertools.pairwise(values))


def line_data(ax) -> list[np.ndarray]:
    """The (x, y) data of every line drawn on a matplotlib Axes."""
    return [np.asarray(line.get_xydata(), np.float64) for line in ax.get_lines()]


def drew(ax, x, y) -> bool:
    """Whether a line of the Axes has the points (x, y) (float32 data: rtol 1e-6)."""
    points = np.c_[np.asarray(x, np.float64), np.asarray(y, np.float64)]
    return any(d.shape == points.shape and np.allclose(d, points, rtol=1e-6) for d in line_data(ax))


def shaded(ax) -> list[tuple[float, float]]:
    """The x ranges of the axvspan patches of an Axes (Polygon or Rectangle alike)."""
    spans = []
    for patch in ax.patches:
        xs = patch.get_patch_transform().transform(patch.get_path().vertices)[:, 0]
        spans.append((round(float(xs.min()), 5), round(float(xs.max()), 5)))
    return sorted(spans)
