"""What every benchmark prints first: the command that produced its figures, and the
machine (date, jax, backend and device, CPUs, Python, load average), so that a figure in
benchmarks/README.md can be traced and repeated."""

from __future__ import annotations

import datetime
import os
import platform

import jax


def print_header(command: str) -> None:
    """Print ``command: ...`` and a line describing the machine."""
    print(f"command: {command}")
    print(
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"jax {jax.__version__}, {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
