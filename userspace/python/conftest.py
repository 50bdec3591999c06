"""Options and fixtures of the Python benchmarks (run in the guest by ``inv bench``).

The suite files (bench/suites/*.toml) pass the parameters as pytest options, e.g.
``--wq-iterations 2000 --wq-rounds 5 --wq-queues 1,2 --wq-sizes 16,4096``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import wqpy  # noqa: E402


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("watchbench")
    group.addoption("--wq-iterations", type=int, default=2000, help="posts (or records) per round")
    group.addoption("--wq-rounds", type=int, default=5, help="timed rounds per benchmark")
    group.addoption("--wq-warmup", type=int, default=1, help="untimed warm-up rounds")
    group.addoption("--wq-queues", type=_ints, default=[1, 2], help="watching queues, e.g. 1,2")
    group.addoption(
        "--wq-sizes", type=_ints, default=[16, 256, 4096], help="read buffer sizes of py-pipe-read"
    )
    group.addoption("--wq-queue-size", type=int, default=256, help="notes per queue (1..512)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "queues" in metafunc.fixturenames:
        metafunc.parametrize("queues", metafunc.config.getoption("--wq-queues"))
    if "read_size" in metafunc.fixturenames:
        metafunc.parametrize("read_size", metafunc.config.getoption("--wq-sizes"))


@pytest.fixture(scope="session")
def wq_supported() -> None:
    """Skip (with the reason) when the kernel lacks notification pipes or key watches."""
    try:
        wqpy.probe()
    except wqpy.Unsupported as exc:
        pytest.skip(str(exc))


@pytest.fixture
def opts(request: pytest.FixtureRequest) -> dict[str, int]:
    cfg = request.config
    size = cfg.getoption("--wq-queue-size")
    if not 1 <= size <= 512:
        raise pytest.UsageError("--wq-queue-size must be in 1..512")
    return {
        "iterations": cfg.getoption("--wq-iterations"),
        "rounds": cfg.getoption("--wq-rounds"),
        "warmup": cfg.getoption("--wq-warmup"),
        "queue_size": size,
    }
