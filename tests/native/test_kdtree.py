"""kd-tree kNN / radius search: bit for bit equal to isogan's brute force, and to scikit-learn.

The contract is identity with the brute force (same distances, same (distance, index) order,
same tie-breaking); scikit-learn's brute NearestNeighbors is the independent oracle for the
distances and, where there are no ties, for the indices.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import cdist
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import NearestNeighbors

import isogan
from isogan import _core
from isogan.knn import kneighbors, knn_graph, radius_neighbors

P_CODES = [(1, 0, 2.0), (2, 1, 1.0), (np.inf, 2, np.inf), (3, 3, 3.0)]  # (p, native code, native p)
DTYPES = [np.float32, np.float64]


def _both_kneighbors(X, Y, k, p, **options):
    brute = kneighbors(X, Y, k, p=p, algorithm="brute", **options)
    tree = kneighbors(X, Y, k, p=p, algorithm="kd_tree", **options)
    return brute, tree


def _assert_identical(brute, tree):
    np.testing.assert_array_equal(tree[0], brute[0])
    np.testing.assert_array_equal(tree[1], brute[1])
    assert tree[0].dtype == brute[0].dtype and tree[1].dtype == np.int64


def _assert_same_csr(brute, tree):
    np.testing.assert_array_equal(tree.indptr, brute.indptr)
    np.testing.assert_array_equal(tree.indices, brute.indices)
    np.testing.assert_array_equal(tree.data, brute.data)
    assert tree.dtype == brute.dtype


def _oracle_indices(X, Y, k, p):
    """k nearest by exact (distance, index) order from scipy's cdist, excluding self when Y is None."""
    distances = cdist(X if Y is None else Y, X, "chebyshev") if p == np.inf else cdist(
        X if Y is None else Y, X, "minkowski", p=p)
    if Y is None:
        np.fill_diagonal(distances, np.inf)
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


def _sklearn_brute(X, p):
    return NearestNeighbors(algorithm="brute", p=p).fit(X.astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [p for p, _, _ in P_CODES])
@pytest.mark.parametrize("n_features", [1, 3, 20])
def test_kneighbors_random_matches_brute_and_sklearn(dtype, p, n_features):
    rng = np.random.default_rng(n_features)
    X = rng.normal(size=(300, n_features)).astype(dtype)
    Y = rng.normal(size=(40, n_features)).astype(dtype)
    for queries in (None, Y):
        brute, tree = _both_kneighbors(X, queries, 7, p)
        _assert_identical(brute, tree)
        expected_distances, _ = _sklearn_brute(X, p).kneighbors(queries, 7)
        # scikit-learn's brute Euclidean expands ||x||^2 - 2 x.y + ||y||^2: not exact for close pairs.
        tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-7 if p == 2 else 1e-12)
        np.testing.assert_allclose(tree[0], expected_distances, **tolerance)
        if dtype == np.float64:  # continuous data, no ties: the exact (distance, index) order
            np.testing.assert_array_equal(tree[1], _oracle_indices(X, queries, 7, p))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p,code,native_p", P_CODES)
@pytest.mark.parametrize("leaf_size", [1, 2, 5, 16])
def test_duplicates_and_ties_pick_the_same_indices_as_brute(dtype, p, code, native_p, leaf_size):
    rng = np.random.default_rng(1)
    # A coarse integer grid with repeated points: many exact ties at every k-th place.
    X = rng.integers(0, 4, size=(200, 3)).astype(dtype)
    X[50:80] = X[3]
    for exclude_self, queries in ((True, X), (False, X), (False, X[::7].copy())):
        brute = _core.knn_kneighbors(queries, X, 9, code, native_p, exclude_self, 0)
        tree = _core.knn_kneighbors_kdtree(queries, X, 9, code, native_p, exclude_self, 0, leaf_size)
        _assert_identical(brute, tree)
        radius_brute = _core.knn_radius(queries, X, 1.0, code, native_p, exclude_self, 0)
        radius_tree = _core.knn_radius_kdtree(queries, X, 1.0, code, native_p, exclude_self, 0, leaf_size)
        for expected, got in zip(radius_brute, radius_tree):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exclude_self_is_by_index_duplicates_stay_neighbours(dtype):
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=dtype)
    brute, tree = _both_kneighbors(X, None, 2, 2)
    _assert_identical(brute, tree)
    np.testing.assert_array_equal(tree[1][0], [1, 3])
    np.testing.assert_array_equal(tree[0][0], [0.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_point_and_all_neighbours(dtype):
    X = np.array([[1.5, -2.0]], dtype=dtype)
    brute, tree = _both_kneighbors(X, np.array([[0.0, 0.0]], dtype=dtype), 1, 2)
    _assert_identical(brute, tree)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(33, 4)).astype(dtype)
    brute, tree = _both_kneighbors(X, None, 32, 2)  # k = N - 1
    _assert_identical(brute, tree)
    assert all(sorted(row.tolist() + [i]) == list(range(33)) for i, row in enumerate(tree[1]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [1, 2, np.inf, 3])
def test_all_points_identical(dtype, p):
    X = np.full((60, 3), 0.25, dtype=dtype)
    brute, tree = _both_kneighbors(X, None, 5, p)
    _assert_identical(brute, tree)
    np.testing.assert_array_equal(tree[0], 0.0)
    # Ties everywhere: the smallest indices other than the query itself.
    np.testing.assert_array_equal(tree[1][10], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(tree[1][2], [0, 1, 3, 4, 5])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [1, 2, np.inf, 3])
@pytest.mark.parametrize("n_features", [1, 3, 20])
def test_radius_matches_brute_and_sklearn(dtype, p, n_features):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(250, n_features)).astype(dtype)
    Y = rng.normal(size=(30, n_features)).astype(dtype)
    radius = float(np.median(kneighbors(X, None, 5, p=p, algorithm="brute")[0][:, -1]))
    for queries in (None, Y):
        brute = radius_neighbors(X, queries, radius, p=p, algorithm="brute")
        tree = radius_neighbors(X, queries, radius, p=p, algorithm="kd_tree")
        _assert_same_csr(brute, tree)
        assert tree.nnz > 0
        if dtype == np.float64:  # float32 input may round a boundary point differently in scikit-learn
            expected = sp.csr_matrix(_sklearn_brute(X, p).radius_neighbors_graph(queries, radius, mode="distance"))
            expected.sort_indices()
            np.testing.assert_array_equal(tree.indptr, expected.indptr)
            np.testing.assert_array_equal(tree.indices, expected.indices)


@pytest.mark.parametrize("dtype", DTYPES)
def test_radius_inclusive_at_the_boundary(dtype):
    X = np.array([[0.0], [1.0], [2.0], [3.0]], dtype=dtype)
    graph = radius_neighbors(X, None, 1.0, algorithm="kd_tree")
    np.testing.assert_array_equal(graph.indptr, [0, 1, 3, 5, 6])
    np.testing.assert_array_equal(graph.indices, [1, 0, 2, 1, 3, 2])


def test_knn_graph_and_isomap_route_through_the_tree():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 3))
    brute = knn_graph(X, 6, algorithm="brute")
    for algorithm in ("auto", "kd_tree", "ball_tree"):
        _assert_same_csr(brute, knn_graph(X, 6, algorithm=algorithm))
    _assert_same_csr(knn_graph(X, None, radius=0.5, algorithm="brute"),
                     knn_graph(X, None, radius=0.5, algorithm="kd_tree"))
    embeddings = [isogan.Isomap(n_neighbors=8, neighbors_algorithm=algorithm, device="cpu").fit(X)
                  for algorithm in ("brute", "kd_tree")]
    # Same neighbour graph; the threaded eigensolver itself varies in the last bits from run to run.
    np.testing.assert_allclose(embeddings[0].embedding_, embeddings[1].embedding_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(embeddings[0].transform(X[:20]), embeddings[1].transform(X[:20]), rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    n_points=st.integers(1, 60),
    n_features=st.integers(1, 5),
    n_neighbors=st.integers(1, 8),
    grid=st.sampled_from([2, 5, 1000]),
    p_code=st.sampled_from(P_CODES),
    dtype=st.sampled_from(DTYPES),
    leaf_size=st.integers(1, 20),
    exclude_self=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_tree_equals_brute(n_points, n_features, n_neighbors, grid, p_code, dtype, leaf_size, exclude_self,
                                    seed):
    rng = np.random.default_rng(seed)
    X = (rng.integers(0, grid, size=(n_points, n_features)) / grid).astype(dtype)
    _, code, native_p = p_code
    k = min(n_neighbors, n_points - exclude_self)
    queries = X if exclude_self else (rng.integers(0, grid, size=(7, n_features)) / grid).astype(dtype)
    if k >= 1:
        brute = _core.knn_kneighbors(queries, X, k, code, native_p, exclude_self, 0)
        tree = _core.knn_kneighbors_kdtree(queries, X, k, code, native_p, exclude_self, 0, leaf_size)
        _assert_identical(brute, tree)
    radius_brute = _core.knn_radius(queries, X, 0.3, code, native_p, exclude_self, 0)
    radius_tree = _core.knn_radius_kdtree(queries, X, 0.3, code, native_p, exclude_self, 0, leaf_size)
    for expected, got in zip(radius_brute, radius_tree):
        np.testing.assert_array_equal(got, expected)


def test_many_threads_large_enough_to_split_work():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(6000, 2)).astype(np.float32)
    brute = _core.knn_kneighbors(X, X, 4, 0, 2.0, True, 2)
    tree = _core.knn_kneighbors_kdtree(X, X, 4, 0, 2.0, True, 2, 16)
    _assert_identical(brute, tree)


@pytest.mark.slow
def test_ctrl_c_stops_a_long_tree_search():
    """A SIGINT during the tree search surfaces as KeyboardInterrupt within about a second."""
    import _thread
    import threading
    import time

    X = np.random.default_rng(30).normal(size=(60_000, 8))  # ~10 s of tree search: 8-D is a tree's worst case
    timer = threading.Timer(0.2, _thread.interrupt_main)
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            kneighbors(X, None, 10, algorithm="kd_tree")
    finally:
        timer.cancel()
    assert time.perf_counter() - start < 3.0


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("function", [knn_graph, kneighbors, radius_neighbors])
def test_unknown_algorithm_is_a_value_error(function):
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="'algorithm' parameter must be a str among"):
        function(X, algorithm="octree")
    with pytest.raises(ValueError, match="'algorithm' parameter must be a str among"):
        function(X, algorithm=None)


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
def test_tree_with_precomputed_distances_is_a_value_error(algorithm):
    D = np.array([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="Metric 'precomputed' not valid"):
        knn_graph(D, 1, metric="precomputed", algorithm=algorithm)
    np.testing.assert_array_equal(knn_graph(D, 1, metric="precomputed", algorithm="brute").toarray(),
                                  [[0.0, 1.0], [1.0, 0.0]])


def test_isomap_rejects_unknown_neighbors_algorithm():
    with pytest.raises(ValueError, match="neighbors_algorithm"):
        isogan.Isomap(neighbors_algorithm="octree").fit(np.random.default_rng(0).normal(size=(20, 3)))


def test_native_tree_rejects_bad_arguments():
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="leaf_size"):
        _core.knn_kneighbors_kdtree(X, X, 1, 0, 2.0, True, 0, 0)
    with pytest.raises(ValueError, match="leaf_size"):
        _core.knn_radius_kdtree(X, X, 1.0, 0, 2.0, True, 0, -3)
    with pytest.raises(ValueError, match="precomputed"):
        _core.knn_kneighbors_kdtree(X[:2, :2].copy(), X, 1, 4, 2.0, False, 0, 16)
    with pytest.raises(ValueError, match="n_neighbors"):
        _core.knn_kneighbors_kdtree(X, X, 5, 0, 2.0, True, 0, 16)
    with pytest.raises(ValueError, match="radius"):
        _core.knn_radius_kdtree(X, X, -1.0, 0, 2.0, True, 0, 16)
    with pytest.raises(ValueError, match="extent"):
        _core.knn_kneighbors_kdtree(X, np.zeros((5, 3)), 1, 0, 2.0, False, 0, 16)
    with pytest.raises(TypeError):
        _core.knn_kneighbors_kdtree(X.astype(np.float32), X, 1, 0, 2.0, False, 0, 16)
    with pytest.raises(ValueError, match="p must be >= 1"):
        _core.knn_kneighbors_kdtree(X, X, 1, 3, 0.5, True, 0, 16)


def test_tree_memory_is_predicted():
    # (N, D) float64: permutation 8 B + copy 8 D B per point, plus nodes of 2 ranges and a box.
    n_bytes = _core.knn_kdtree_bytes(1_000_000, 3, 8, 16)
    assert 32_000_000 <= n_bytes <= 32_000_000 + 2 * 131072 * (16 + 48)
    with pytest.raises(ValueError):
        _core.knn_kdtree_bytes(0, 3, 8, 16)
