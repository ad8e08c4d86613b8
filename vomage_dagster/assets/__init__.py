"""Dagster assets: thin shells over the domain code and the resources."""
