"""Shared options and fixtures of the pytest-benchmark suites.

Options (after ``python -m pytest benchmarks --benchmark-enable``):

``--bench-sizes 2000,4000``
    swiss roll sizes given to every benchmark with an ``n_samples`` argument (default 1000,2000; the
    full 2k-16k curve with peak memory is ``isogan bench``'s job);
``--bench-dtypes float64,float32``
    dtypes given to every benchmark with a ``dtype`` argument;
``--bench-rounds 3``
    rounds of ``benchmark.pedantic`` in the suites that use :func:`bench_rounds`.

A benchmark that parametrizes ``n_samples`` or ``dtype`` itself keeps its own values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from isogan.bench.data import swiss_roll


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the benchmark options."""
    group = parser.getgroup("isogan benchmarks")
    group.addoption("--bench-sizes", default="1000,2000", help="comma-separated swiss roll sizes (default: 1000,2000)")
    group.addoption("--bench-dtypes", default="float64,float32", help="comma-separated dtypes (default: float64,float32)")
    group.addoption("--bench-rounds", type=int, default=3, help="rounds per benchmark (default: 3)")


def _explicitly_parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    """Return whether the benchmark's own ``parametrize`` marks already set ``name``."""
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        if isinstance(names, str):
            names = [part.strip() for part in names.split(",")]
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give ``n_samples`` and ``dtype`` arguments the sizes and dtypes chosen on the command line."""
    options = {
        "n_samples": [int(size) for size in metafunc.config.getoption("--bench-sizes").split(",")],
        "dtype": metafunc.config.getoption("--bench-dtypes").split(","),
    }
    for name, values in options.items():
        if name in metafunc.fixturenames and not _explicitly_parametrized(metafunc, name):
            metafunc.parametrize(name, values, ids=[f"{name}={value}" for value in values])


@pytest.fixture(scope="session")
def bench_rounds(pytestconfig: pytest.Config) -> int:
    """Rounds each benchmark runs (``--bench-rounds``)."""
    return int(pytestconfig.getoption("--bench-rounds"))


@pytest.fixture(scope="session")
def make_swiss_roll_data() -> Callable[[int, str], np.ndarray]:
    """Return a cached factory ``(n_samples, dtype) -> swiss roll`` (read-only arrays, seed 0)."""
    cache: dict[tuple[int, str], np.ndarray] = {}

    def make(n_samples: int, dtype: str) -> np.ndarray:
        key = (n_samples, str(np.dtype(dtype)))
        if key not in cache:
            points = swiss_roll(n_samples, dtype)
            points.flags.writeable = False
            cache[key] = points
        return cache[key]

    return make


@pytest.fixture
def swiss_roll_data(make_swiss_roll_data: Callable[[int, str], np.ndarray], n_samples: int, dtype: str) -> np.ndarray:
    """The swiss roll of the benchmark's ``n_samples`` and ``dtype``."""
    return make_swiss_roll_data(n_samples, dtype)


@pytest.fixture(scope="session")
def result_cache() -> dict:
    """Session-wide dict where a benchmark leaves a result for its baseline's parity check."""
    return {}
