"""A tiny pytest-benchmark benchmark, run once to record a real --benchmark-json fixture.

Not collected by the suite (no test_ prefix); see ../README.md for the command.
"""

import os

import pytest


@pytest.mark.parametrize("size", [64, 4096])
def test_pipe_roundtrip(benchmark, size):
    """Write then read ``size`` bytes through an ordinary pipe on the host."""
    r, w = os.pipe()
    payload = b"x" * size

    def roundtrip():
        os.write(w, payload)
        return os.read(r, size)

    benchmark.extra_info["benchmark"] = "py-pipe-read"
    benchmark.extra_info["params"] = {"reader": "same-thread"}
    try:
        assert benchmark(roundtrip) == payload
    finally:
        os.close(r)
        os.close(w)
