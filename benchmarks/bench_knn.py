"""kNN-graph stage: isogan.knn_graph against sklearn.neighbors.kneighbors_graph, side by side.

Run: ``PYTHONPATH=python pytest benchmarks/bench_knn.py --benchmark-enable``
(sizes from ``ISOGAN_BENCH_KNN_SIZES``, default ``2000,8000``; e.g. ``=500`` for a smoke run).
Each (N, D, dtype) is one pytest-benchmark group holding the isogan and scikit-learn rows.

kd-tree group (``ISOGAN_BENCH_KDTREE_SIZES``, default ``100000``): swiss roll D=3 float64, k=10,
isogan's kd-tree vs isogan's brute force (N <= 200000 only: it is O(N^2)) vs scikit-learn's
``NearestNeighbors(algorithm='kd_tree', n_jobs=-1)``, fit and query together, one round each
(``=100000,1000000`` for the 1M row).
"""

import os

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors, kneighbors_graph

import isogan
from isogan.bench.data import swiss_roll
from isogan.knn import kneighbors

SIZES = [int(s) for s in os.environ.get("ISOGAN_BENCH_KNN_SIZES", "2000,8000").split(",")]
N_NEIGHBORS = 10
TREE_SIZES = [int(s) for s in os.environ.get("ISOGAN_BENCH_KDTREE_SIZES", "100000").split(",")]
BRUTE_MAX_SAMPLES = 200_000
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


def _kdtree_group(n_samples):
    return f"kd-tree swiss roll N={n_samples} D=3 k={N_NEIGHBORS}"


@pytest.mark.parametrize("algorithm", ["kd_tree", "brute"])
@pytest.mark.parametrize("n_samples", TREE_SIZES)
def test_isogan_kneighbors_tree_vs_brute(benchmark, n_samples, algorithm, result_cache):
    if algorithm == "brute" and n_samples > BRUTE_MAX_SAMPLES:
        pytest.skip("brute force is O(N^2): measured up to 200000 points only")
    X = swiss_roll(n_samples, np.float64)
    benchmark.group = _kdtree_group(n_samples)
    distances, indices = benchmark.pedantic(kneighbors, args=(X, None, N_NEIGHBORS), kwargs={"algorithm": algorithm},
                                            rounds=1, iterations=1)
    previous = result_cache.setdefault(("kdtree", n_samples), (distances, indices))
    np.testing.assert_array_equal(indices, previous[1])  # tree and brute: the same result bit for bit
    np.testing.assert_array_equal(distances, previous[0])


@pytest.mark.parametrize("n_samples", TREE_SIZES)
def test_sklearn_kd_tree_kneighbors(benchmark, n_samples):
    X = swiss_roll(n_samples, np.float64)
    benchmark.group = _kdtree_group(n_samples)

    def fit_and_query():
        return NearestNeighbors(n_neighbors=N_NEIGHBORS, algorithm="kd_tree", n_jobs=-1).fit(X).kneighbors()

    distances, _ = benchmark.pedantic(fit_and_query, rounds=1, iterations=1)
    assert distances.shape == (n_samples, N_NEIGHBORS)
