"""Importing this package fills the rule tables of `jaxls._src.ad.registry`."""

import importlib

for _family in ("elementwise", "structural", "linalg", "misc"):
    try:
        importlib.import_module(f"jaxls._src.ad.rules.{_family}")
    except ModuleNotFoundError as error:  # pragma: no cover - only while a family is missing
        if error.name != f"jaxls._src.ad.rules.{_family}":
            raise
