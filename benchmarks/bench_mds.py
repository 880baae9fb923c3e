"""MDS eigensolve stage: ``isogan.classical_mds`` against scikit-learn's Isomap tail
(``KernelPCA(kernel="precomputed").fit_transform(-0.5 * D**2)``) on swiss-roll geodesic matrices.

Run: ``PYTHONPATH=python python -m pytest benchmarks/bench_mds.py --benchmark-enable``
(add ``-k 2000`` for the small size only). The geodesic matrices (scipy Dijkstra, k=10) are built
once per size and dtype, outside the timed region; both implementations get the same matrix.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy.sparse.csgraph import shortest_path
from sklearn.datasets import make_swiss_roll
from sklearn.decomposition import KernelPCA
from sklearn.neighbors import kneighbors_graph

from isogan import classical_mds

N_COMPONENTS = 2
SIZES = [2000, 8000]
DTYPES = ["float32", "float64"]


@functools.lru_cache(maxsize=2)
def _geodesics64(n_samples: int) -> np.ndarray:
    points, _ = make_swiss_roll(n_samples, random_state=0)
    return shortest_path(kneighbors_graph(points, 10, mode="distance"), directed=False)


def geodesics(n_samples: int, dtype: str) -> np.ndarray:
    """Swiss-roll geodesic distance matrix (n_samples, n_samples) of ``dtype``."""
    return _geodesics64(n_samples).astype(dtype)


def sklearn_mds(dist: np.ndarray) -> np.ndarray:
    """What scikit-learn 1.9's Isomap does after the shortest paths."""
    kernel = dist**2
    kernel *= -0.5
    return KernelPCA(N_COMPONENTS, kernel="precomputed", eigen_solver="auto").fit_transform(kernel)


def isogan_mds(dist: np.ndarray) -> np.ndarray:
    return classical_mds(dist, N_COMPONENTS)[0]


IMPLEMENTATIONS = {"sklearn": sklearn_mds, "isogan": isogan_mds}
_results: dict[tuple[str, int, str], np.ndarray] = {}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_samples", SIZES)
@pytest.mark.parametrize("implementation", ["sklearn", "isogan"])
def test_classical_mds(benchmark, implementation: str, n_samples: int, dtype: str) -> None:
    """Time one implementation; record the parity error once both have run."""
    benchmark.group = f"mds N={n_samples} {dtype}"
    dist = geodesics(n_samples, dtype)
    embedding = benchmark.pedantic(IMPLEMENTATIONS[implementation], args=(dist,), rounds=3, iterations=1,
                                   warmup_rounds=0)
    assert embedding.shape == (n_samples, N_COMPONENTS) and embedding.dtype == np.dtype(dtype)
    _results[(implementation, n_samples, dtype)] = embedding
    if ("sklearn", n_samples, dtype) in _results and ("isogan", n_samples, dtype) in _results:
        reference = _results[("sklearn", n_samples, dtype)].astype(np.float64)
        error = np.abs(_results[("isogan", n_samples, dtype)] - reference).max() / np.abs(reference).max()
        benchmark.extra_info["parity_error"] = float(error)
        assert error <= (1e-3 if dtype == "float32" else 1e-6)
