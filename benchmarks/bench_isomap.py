"""End-to-end ``Isomap.fit_transform``: isogan against scikit-learn, grouped by size and dtype.

Run: ``PYTHONPATH=python python -m pytest benchmarks/bench_isomap.py --benchmark-enable
--bench-sizes 2000,8000``. Peak memory and per-stage times are measured by ``isogan bench``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import sklearn.manifold

import isogan
from isogan.bench.data import relative_max_error, swiss_roll

N_NEIGHBORS = 10
N_COMPONENTS = 2
ESTIMATORS: dict[str, Callable[[], object]] = {
    "isogan": lambda: isogan.Isomap(n_neighbors=N_NEIGHBORS, n_components=N_COMPONENTS),
    "sklearn": lambda: sklearn.manifold.Isomap(n_neighbors=N_NEIGHBORS, n_components=N_COMPONENTS),
}


@pytest.mark.parametrize("implementation", ["sklearn", "isogan"])
def test_isomap_fit_transform(benchmark, implementation: str, swiss_roll_data: np.ndarray, n_samples: int, dtype: str, bench_rounds: int, result_cache: dict) -> None:
    """Time ``fit_transform`` of one implementation; record parity with the other when it ran first."""
    benchmark.group = f"isomap fit_transform N={n_samples} {dtype}"
    make_estimator = ESTIMATORS[implementation]
    # First calls pay lazy imports and thread-pool start-up; keep them out of the timed rounds.
    make_estimator().fit_transform(swiss_roll(256, dtype, random_state=1))
    embedding = benchmark.pedantic(lambda: make_estimator().fit_transform(swiss_roll_data), rounds=bench_rounds, iterations=1)
    assert embedding.shape == (n_samples, N_COMPONENTS)
    assert embedding.dtype == np.dtype(dtype)
    result_cache[(implementation, n_samples, dtype)] = embedding
    other = "isogan" if implementation == "sklearn" else "sklearn"
    if (other, n_samples, dtype) in result_cache:
        isogan_embedding = result_cache[("isogan", n_samples, dtype)]
        sklearn_embedding = result_cache[("sklearn", n_samples, dtype)]
        benchmark.extra_info["parity_error"] = relative_max_error(isogan_embedding, sklearn_embedding)
