"""Drivers: whole optimisations built on optax transformations (the rules live in
`jaxls._src.adapters`)."""
