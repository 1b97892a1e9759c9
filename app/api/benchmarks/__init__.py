"""Benchmark runs, their regressions and trends, and the `/benchmarks` routes."""
