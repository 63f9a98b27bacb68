"""Derivatives of the searches' and `minimize`'s answers (see `common` for the design)."""
