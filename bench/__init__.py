"""Benchmarks: Relance against the bare Temporal engine it runs on (`python -m bench`)."""
