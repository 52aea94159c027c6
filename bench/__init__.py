"""Benchmarks and baselines (run as modules: python -m bench.NAME)."""
