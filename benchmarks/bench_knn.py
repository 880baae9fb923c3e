"""kNN-graph stage: isogan.knn_graph against sklearn.neighbors.kneighbors_graph, side by side.

Run: ``PYTHONPATH=python pytest benchmarks/bench_knn.py --benchmark-enable``
(sizes from ``ISOGAN_BENCH_KNN_SIZES``, default ``2000,8000``; e.g. ``=500`` for a smoke run).
Each (N, D, dtype) is one pytest-benchmark group holding the isogan and scikit-learn rows.
"""

import os

import numpy as np
import pytest
from sklearn.neighbors import kneighbors_graph

import isogan

SIZES = [int(s) for s in os.environ.get("ISOGAN_BENCH_KNN_SIZES", "2000,8000").split(",")]
N_NEIGHBORS = 10
DEVICES = ["cpu"] + (["cuda"] if isogan.cuda_available() else [])


def _points(n_samples, n_features, dtype):
    return np.random.default_rng(0).normal(size=(n_samples, n_features)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("n_features", [3, 64])
@pytest.mark.parametrize("n_samples", SIZES)
@pytest.mark.parametrize("device", DEVICES)
def test_isogan_knn_graph(benchmark, n_samples, n_features, dtype, device):
    X = _points(n_samples, n_features, dtype)
    benchmark.group = f"knn N={n_samples} D={n_features} {np.dtype(dtype).name}"
    graph = benchmark(isogan.knn_graph, X, n_neighbors=N_NEIGHBORS, device=device)
    assert graph.nnz == n_samples * N_NEIGHBORS


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("n_features", [3, 64])
@pytest.mark.parametrize("n_samples", SIZES)
def test_sklearn_kneighbors_graph(benchmark, n_samples, n_features, dtype):
    X = _points(n_samples, n_features, dtype)
    benchmark.group = f"knn N={n_samples} D={n_features} {np.dtype(dtype).name}"
    graph = benchmark(kneighbors_graph, X, N_NEIGHBORS, mode="distance", n_jobs=-1)
    assert graph.nnz == n_samples * N_NEIGHBORS
