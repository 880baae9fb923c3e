"""Geodesic-distance stage: isogan.geodesic_distances against scipy's shortest_path, side by side.

scikit-learn's Isomap computes this stage with ``scipy.sparse.csgraph.shortest_path(graph,
method='auto', directed=False)`` (Dijkstra in float64, one thread); that call is the baseline.
The graph is the k=10 nearest-neighbour distance graph of a swiss roll.

Run: ``PYTHONPATH=python python -m pytest benchmarks/bench_paths.py --benchmark-enable``
(sizes from ``ISOGAN_BENCH_PATHS_SIZES``, default ``2000,8000``; rounds from
``ISOGAN_BENCH_PATHS_ROUNDS``, default 1, since scipy takes ~10 s per round at N=8000).
Each (N, dtype) is one pytest-benchmark group holding the isogan and scipy rows; the isogan row
records its parity with scipy (max relative error) in ``extra_info``.
"""

import os

import numpy as np
import pytest
from scipy.sparse.csgraph import shortest_path
from sklearn.datasets import make_swiss_roll
from sklearn.neighbors import kneighbors_graph

import isogan

SIZES = [int(s) for s in os.environ.get("ISOGAN_BENCH_PATHS_SIZES", "2000,8000").split(",")]
ROUNDS = int(os.environ.get("ISOGAN_BENCH_PATHS_ROUNDS", "1"))
N_NEIGHBORS = 10
DTYPES = [np.float64, np.float32]
DEVICES = ["cpu"] + (["cuda"] if isogan.cuda_available() else [])

# scipy's result per (N, dtype): the float32 graph holds float32 kNN distances, so its reference is
# scipy on that same graph (which scipy computes in float64).
_scipy_results: dict[tuple[int, str], np.ndarray] = {}


def _graph(n_samples, dtype):
    X, _ = make_swiss_roll(n_samples, random_state=0)
    return kneighbors_graph(X.astype(dtype), N_NEIGHBORS, mode="distance").astype(dtype)


def _scipy_reference(n_samples, dtype):
    key = (n_samples, np.dtype(dtype).name)
    if key not in _scipy_results:
        _scipy_results[key] = shortest_path(_graph(n_samples, dtype), method="auto", directed=False)
    return _scipy_results[key]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("n_samples", SIZES)
def test_scipy_shortest_path(benchmark, n_samples, dtype):
    graph = _graph(n_samples, dtype)
    benchmark.group = f"paths N={n_samples} {np.dtype(dtype).name}"
    result = benchmark.pedantic(
        shortest_path, args=(graph,), kwargs={"method": "auto", "directed": False}, rounds=ROUNDS, iterations=1
    )
    _scipy_results[(n_samples, np.dtype(dtype).name)] = result
    assert result.shape == (n_samples, n_samples)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("n_samples", SIZES)
@pytest.mark.parametrize("device", DEVICES)
def test_isogan_geodesic_distances(benchmark, n_samples, dtype, device):
    graph = _graph(n_samples, dtype)
    benchmark.group = f"paths N={n_samples} {np.dtype(dtype).name}"
    result = benchmark.pedantic(
        isogan.geodesic_distances, args=(graph,), kwargs={"device": device, "progress": False}, rounds=ROUNDS, iterations=1
    )
    assert result.dtype == dtype
    reference = _scipy_reference(n_samples, dtype)
    finite = np.isfinite(reference)
    np.testing.assert_array_equal(np.isfinite(result), finite)
    error = float(np.max(np.abs(result[finite] - reference[finite]) / np.maximum(reference[finite], np.finfo(dtype).tiny)))
    benchmark.extra_info["parity_max_relative_error"] = error
    assert error <= (1e-5 if dtype == np.float32 else 1e-12)
