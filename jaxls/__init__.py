"""jaxls: line searches and automatic differentiation for JAX."""

from jaxls._src.interval.fibonacci import fibonacci
from jaxls._src.interval.golden import golden_section
from jaxls._src.results import ScalarResult, Status, status_message

__version__ = "0.1.0"

__all__ = [
    "ScalarResult",
    "Status",
    "fibonacci",
    "golden_section",
    "status_message",
]
