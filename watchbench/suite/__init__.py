"""Benchmark suites: their definitions and running one in a booted guest."""
