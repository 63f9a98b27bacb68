"""jaxls: line searches and automatic differentiation for JAX."""

from jaxls._src.interval.bracket import bracket
from jaxls._src.interval.brent import brent
from jaxls._src.interval.dichotomy import dichotomy
from jaxls._src.interval.fibonacci import fibonacci
from jaxls._src.interval.golden import golden_section
from jaxls._src.interval.parabolic import parabolic
from jaxls._src.results import ScalarResult, Status, status_message

__version__ = "0.1.0"

__all__ = [
    "ScalarResult",
    "Status",
    "bracket",
    "brent",
    "dichotomy",
    "fibonacci",
    "golden_section",
    "parabolic",
    "status_message",
]
