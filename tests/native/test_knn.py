"""kNN / radius graphs against scikit-learn and a NumPy (distance, index) oracle."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors, kneighbors_graph, radius_neighbors_graph

import isogan
from isogan.knn import kneighbors, knn_graph, radius_neighbors

P_VALUES = [1, 2, 3, np.inf]
cuda = pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")


def _cdist(A, B, p):
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if p == np.inf:
        return cdist(A, B, "chebyshev")
    return cdist(A, B, "minkowski", p=p)


def oracle_kneighbors(X, Y, k, p):
    """k nearest by (distance, index), excluding self when Y is None."""
    D = _cdist(X if Y is None else Y, X, p)
    if Y is None:
        np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, axis=1), order


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def assert_graph_matches_sklearn(graph, expected, dtype):
    """Same sparsity pattern and distances (within the dtype's rounding)."""
    expected = sp.csr_matrix(expected)
    expected.sort_indices()
    graph = graph.copy()
    graph.sort_indices()
    np.testing.assert_array_equal(graph.indptr, expected.indptr)
    np.testing.assert_array_equal(graph.indices, expected.indices)
    np.testing.assert_allclose(graph.data, expected.data, **tol(dtype))


def assert_rows_sorted_by_distance_then_index(distances, indices):
    for drow, irow in zip(distances, indices):
        keys = list(zip(drow.tolist(), irow.tolist()))
        assert keys == sorted(keys)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("n_features", [3, 20])
def test_knn_graph_matches_sklearn_random(dtype, p, n_features):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, n_features)).astype(dtype)
    graph = knn_graph(X, n_neighbors=7, p=p, device="cpu")
    assert graph.dtype == dtype and graph.shape == (300, 300)
    expected = kneighbors_graph(X.astype(np.float64), 7, mode="distance", p=p)
    assert_graph_matches_sklearn(graph, expected, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", P_VALUES)
def test_radius_graph_matches_sklearn(dtype, p):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(250, 4)).astype(dtype)
    graph = knn_graph(X, n_neighbors=None, radius=1.3, p=p, device="cpu")
    assert graph.dtype == dtype
    expected = radius_neighbors_graph(X.astype(np.float64), 1.3, mode="distance", p=p)
    assert_graph_matches_sklearn(graph, expected, dtype)


@pytest.mark.parametrize("metric, p", [("euclidean", 2), ("l2", 2), ("manhattan", 1), ("cityblock", 1),
                                       ("l1", 1), ("chebyshev", np.inf), ("infinity", np.inf)])
def test_metric_aliases(metric, p):
    X = np.random.default_rng(2).normal(size=(120, 5))
    graph = knn_graph(X, n_neighbors=4, metric=metric, device="cpu")
    assert_graph_matches_sklearn(graph, kneighbors_graph(X, 4, mode="distance", metric="minkowski", p=p), X.dtype)


@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("k", [1, 5, 29])
def test_ties_and_duplicates_on_integer_grid(p, k):
    """Grid points: many equal distances and exact duplicates; (distance, index) order must hold."""
    rng = np.random.default_rng(3)
    X = rng.integers(0, 4, size=(30, 2)).astype(np.float64)
    distances, indices = kneighbors(X, None, k, p=p, device="cpu")
    want_d, want_i = oracle_kneighbors(X, None, k, p)
    np.testing.assert_array_equal(indices, want_i)
    np.testing.assert_array_equal(distances, want_d)
    # scikit-learn's choice among tied neighbours differs, its distances do not.
    sk_d, _ = NearestNeighbors(n_neighbors=k, p=p).fit(X).kneighbors()
    np.testing.assert_array_equal(distances, sk_d)
    # duplicates of a point stay its neighbours at distance 0; the point itself never does
    assert not np.any(indices == np.arange(30)[:, None])


def test_ties_match_sklearn_brute_graph_without_duplicates_beyond_k():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [2.0, 2.0]])
    graph = knn_graph(X, n_neighbors=2, device="cpu")
    # point 0 has four neighbours at distance 1: the two smallest indices win
    assert sorted(graph[0].indices.tolist()) == [1, 2]
    expected = NearestNeighbors(n_neighbors=2, algorithm="brute").fit(X).kneighbors_graph(mode="distance")
    assert_graph_matches_sklearn(graph, expected, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_k_equals_n_minus_one_and_one_point_queries(dtype):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 3)).astype(dtype)
    graph = knn_graph(X, n_neighbors=39, device="cpu")
    assert graph.nnz == 40 * 39
    assert_graph_matches_sklearn(graph, kneighbors_graph(X.astype(np.float64), 39, mode="distance"), dtype)
    Y = rng.normal(size=(1, 3)).astype(dtype)
    distances, indices = kneighbors(X, Y, 40, device="cpu")
    want_d, want_i = oracle_kneighbors(X, Y, 40, 2)
    np.testing.assert_array_equal(indices, want_i)
    np.testing.assert_allclose(distances, want_d, **tol(dtype))
    assert distances.dtype == dtype and indices.dtype == np.int64


def test_query_set_differs_from_fit_set():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 6))
    Y = rng.normal(size=(77, 6))
    for p in P_VALUES:
        distances, indices = kneighbors(X, Y, 8, p=p, device="cpu")
        sk_d, sk_i = NearestNeighbors(n_neighbors=8, p=p).fit(X).kneighbors(Y)
        np.testing.assert_array_equal(indices, sk_i)
        np.testing.assert_allclose(distances, sk_d, rtol=1e-12)
        graph = radius_neighbors(X, Y, 2.0, p=p, device="cpu")
        expected = NearestNeighbors(radius=2.0, p=p).fit(X).radius_neighbors_graph(Y, mode="distance")
        assert graph.shape == (77, 500)
        assert_graph_matches_sklearn(graph, expected, np.float64)
        assert all(np.all(np.diff(graph.indices[a:b]) > 0) for a, b in zip(graph.indptr, graph.indptr[1:]))


def test_include_self_and_connectivity():
    X = np.random.default_rng(6).normal(size=(60, 3))
    for include_self in (True, False, "auto"):
        for mode in ("distance", "connectivity"):
            graph = knn_graph(X, n_neighbors=5, mode=mode, include_self=include_self, device="cpu")
            expected = kneighbors_graph(X, 5, mode=mode, include_self=include_self)
            assert_graph_matches_sklearn(graph, expected, np.float64)
            graph = knn_graph(X, n_neighbors=None, radius=0.9, mode=mode, include_self=include_self, device="cpu")
            expected = radius_neighbors_graph(X, 0.9, mode=mode, include_self=include_self)
            assert_graph_matches_sklearn(graph, expected, np.float64)


def test_radius_is_inclusive():
    X = np.array([[0.0], [1.0], [2.0], [3.5]])
    graph = knn_graph(X, n_neighbors=None, radius=1.0, device="cpu")
    assert graph[1].indices.tolist() == [0, 2]
    assert graph[3].nnz == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_precomputed_dense(dtype):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(80, 4))
    D = cdist(X, X).astype(dtype)
    graph = knn_graph(D, n_neighbors=6, metric="precomputed", device="cpu")
    assert graph.dtype == dtype
    expected = kneighbors_graph(D.astype(np.float64), 6, mode="distance", metric="precomputed")
    assert_graph_matches_sklearn(graph, expected, dtype)
    graph = knn_graph(D, n_neighbors=None, radius=1.5, metric="precomputed", device="cpu")
    expected = radius_neighbors_graph(D.astype(np.float64), 1.5, mode="distance", metric="precomputed")
    assert_graph_matches_sklearn(graph, expected, dtype)
    distances, indices = kneighbors(D, D[:5], 3, metric="precomputed", device="cpu")
    np.testing.assert_array_equal(indices[:, 0], np.arange(5))


def test_precomputed_sparse_uses_sklearn_semantics():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(50, 3))
    sparse = kneighbors_graph(X, 10, mode="distance")  # sorted by row values, as sklearn wants
    graph = knn_graph(sparse, n_neighbors=4, metric="precomputed")
    expected = kneighbors_graph(sparse, 4, mode="distance", metric="precomputed")
    assert_graph_matches_sklearn(graph, expected, np.float64)


def test_precomputed_errors():
    with pytest.raises(ValueError, match="Precomputed matrix must be square"):
        knn_graph(np.ones((3, 4)), n_neighbors=1, metric="precomputed")
    with pytest.raises(ValueError, match="Negative values"):
        knn_graph(-np.ones((3, 3)), n_neighbors=1, metric="precomputed")


@pytest.mark.parametrize("metric, params", [("cosine", None), ("minkowski", {"w": np.arange(1.0, 4.0)}),
                                            ("seuclidean", {"V": np.arange(1.0, 4.0)})])
def test_fallback_metrics_equal_sklearn(metric, params):
    X = np.random.default_rng(9).normal(size=(70, 3)).astype(np.float32)
    graph = knn_graph(X, n_neighbors=5, metric=metric, metric_params=params)
    assert graph.dtype == np.float32
    expected = kneighbors_graph(X, 5, mode="distance", metric=metric, metric_params=params)
    assert_graph_matches_sklearn(graph, expected, np.float32)
    distances, indices = kneighbors(X, X[:3], 2, metric=metric, metric_params=params)
    sk_d, sk_i = NearestNeighbors(n_neighbors=2, metric=metric, metric_params=params).fit(X).kneighbors(X[:3])
    np.testing.assert_array_equal(indices, sk_i)


def test_callable_metric_and_sparse_input_fall_back():
    X = np.random.default_rng(10).normal(size=(40, 3))
    graph = knn_graph(X, n_neighbors=3, metric=lambda a, b: np.abs(a - b).sum())
    assert_graph_matches_sklearn(graph, kneighbors_graph(X, 3, mode="distance", p=1), np.float64)
    graph = knn_graph(sp.csr_matrix(X), n_neighbors=3)
    assert_graph_matches_sklearn(graph, kneighbors_graph(X, 3, mode="distance"), np.float64)


def test_integer_input_becomes_float64_and_float32_stays():
    X = np.arange(20).reshape(10, 2)
    assert knn_graph(X, n_neighbors=2).dtype == np.float64
    assert knn_graph(X.astype(np.float32), n_neighbors=2).dtype == np.float32


def test_far_from_origin_float32_is_still_exact():
    """Centring keeps the ||x||^2 - 2x.y shortlist sound when the data sit far from 0."""
    rng = np.random.default_rng(11)
    X = (1e4 + rng.normal(size=(200, 3))).astype(np.float32)
    distances, indices = kneighbors(X, None, 5, device="cpu")
    want_d, want_i = oracle_kneighbors(X, None, 5, 2)
    np.testing.assert_array_equal(indices, want_i)
    np.testing.assert_allclose(distances, want_d, rtol=1e-6)


def test_threads_do_not_change_the_result():
    X = np.random.default_rng(12).normal(size=(333, 5))
    one = knn_graph(X, n_neighbors=6, n_jobs=1, device="cpu")
    two = knn_graph(X, n_neighbors=6, n_jobs=2, device="cpu")
    assert (one != two).nnz == 0


def test_bad_inputs():
    X = np.random.default_rng(13).normal(size=(10, 2))
    with pytest.raises(ValueError, match=r"Expected n_neighbors < n_samples_fit, but n_neighbors = 10, "
                                         r"n_samples_fit = 10, n_samples = 10"):
        knn_graph(X, n_neighbors=10)
    with pytest.raises(ValueError, match=r"Expected n_neighbors <= n_samples_fit, but n_neighbors = 11, "
                                         r"n_samples_fit = 10, n_samples = 10"):
        kneighbors(X, X, 11)
    with pytest.raises(ValueError, match="Expected n_neighbors > 0. Got 0"):
        knn_graph(X, n_neighbors=0)
    with pytest.raises(TypeError, match="n_neighbors does not take"):
        knn_graph(X, n_neighbors=2.5)
    with pytest.raises(ValueError, match="Both n_neighbors and radius"):
        knn_graph(X, n_neighbors=3, radius=1.0)
    with pytest.raises(ValueError, match="One of n_neighbors and radius"):
        knn_graph(X, n_neighbors=None)
    with pytest.raises(ValueError, match="radius"):
        knn_graph(X, n_neighbors=None, radius=-1.0)
    with pytest.raises(ValueError, match="mode"):
        knn_graph(X, mode="weights")
    with pytest.raises(ValueError, match="device"):
        knn_graph(X, device="tpu")
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        knn_graph(bad)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        knn_graph(bad)
    with pytest.raises(ValueError, match="0 sample"):
        knn_graph(np.empty((0, 2)))
    with pytest.raises(ValueError, match="Expected 2D array"):
        knn_graph(np.ones(5))
    with pytest.raises(ValueError, match="dim 3"):
        knn_graph(np.ones((4, 2, 2)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        knn_graph(X + 1j)
    with pytest.raises(ValueError):
        knn_graph([["a", "b"], ["c", "d"]], n_neighbors=1)
    with pytest.raises(ValueError, match="n_neighbors = 1, n_samples_fit = 1"):
        knn_graph(np.ones((1, 3)), n_neighbors=1)
    with pytest.raises(ValueError, match="features"):
        kneighbors(X, np.ones((2, 3)), 2)


@pytest.mark.skipif(isogan.cuda_available(), reason="checks the no-GPU error")
def test_cuda_request_without_gpu():
    with pytest.raises(RuntimeError, match="CUDA is not usable"):
        knn_graph(np.ones((5, 2)), n_neighbors=2, device="cuda")


def test_native_binding_rejects_bad_shapes_and_dtypes():
    from isogan import _core

    X = np.ones((5, 3))
    with pytest.raises(ValueError, match="points"):
        _core.knn_kneighbors(X, np.ones((5, 2)), 2, 0, 2.0, False, 1)
    with pytest.raises(ValueError, match="n_neighbors"):
        _core.knn_kneighbors(X, X, 5, 0, 2.0, True, 1)
    with pytest.raises(TypeError):
        _core.knn_kneighbors(X.astype(np.float32), X, 2, 0, 2.0, False, 1)
    with pytest.raises(ValueError, match="metric"):
        _core.knn_kneighbors(X, X, 2, 9, 2.0, False, 1)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 25),
    d=st.integers(1, 4),
    k=st.integers(1, 6),
    p=st.sampled_from(P_VALUES),
    dtype=st.sampled_from([np.float32, np.float64]),
    levels=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_property_equals_oracle_and_sklearn(n, d, k, p, dtype, levels, seed):
    """Few distinct coordinate values: duplicates and ties everywhere. No crash, exact parity."""
    X = np.random.default_rng(seed).integers(0, levels, size=(n, d)).astype(dtype)
    if k >= n:
        with pytest.raises(ValueError, match="Expected n_neighbors < n_samples_fit"):
            knn_graph(X, n_neighbors=k, p=p)
        return
    distances, indices = kneighbors(X, None, k, p=p, device="cpu")
    want_d, want_i = oracle_kneighbors(X, None, k, p)
    np.testing.assert_array_equal(indices, want_i)
    np.testing.assert_allclose(distances, want_d, **tol(dtype))
    sk_d, _ = NearestNeighbors(n_neighbors=k, p=p).fit(X.astype(np.float64)).kneighbors()
    np.testing.assert_allclose(distances, sk_d, **tol(dtype))
    graph = knn_graph(X, n_neighbors=None, radius=1.0, p=p, device="cpu")
    expected = radius_neighbors_graph(X.astype(np.float64), 1.0, mode="distance", p=p)
    assert_graph_matches_sklearn(graph, expected, dtype)


# ---------------------------------------------------------------- CUDA (skip without a GPU)
@cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", P_VALUES)
def test_cuda_host_arrays_equal_cpu_and_sklearn(dtype, p):
    rng = np.random.default_rng(20)
    X = rng.integers(0, 5, size=(300, 3)).astype(dtype) + rng.normal(size=(300, 3)).astype(dtype) * (p == 2)
    Y = rng.normal(size=(41, 3)).astype(dtype)
    # p=1, 2, inf: bit-identical; general p: the device pow() may differ from the host's by an ulp.
    same = np.testing.assert_array_equal if p != 3 else (lambda a, b: np.testing.assert_allclose(a, b, **tol(dtype)))
    for k in (1, 7, 299):
        cpu = kneighbors(X, None, k, p=p, device="cpu")
        gpu = kneighbors(X, None, k, p=p, device="cuda")
        np.testing.assert_array_equal(gpu[1], cpu[1])
        same(gpu[0], cpu[0])
    cpu = kneighbors(X, Y, 9, p=p, device="cpu")
    gpu = kneighbors(X, Y, 9, p=p, device="cuda")
    np.testing.assert_array_equal(gpu[1], cpu[1])
    np.testing.assert_allclose(gpu[0], NearestNeighbors(n_neighbors=9, p=p).fit(X).kneighbors(Y)[0], **tol(dtype))
    for include_self in (False, True):
        cpu_graph = knn_graph(X, n_neighbors=None, radius=1.5, p=p, include_self=include_self, device="cpu")
        gpu_graph = knn_graph(X, n_neighbors=None, radius=1.5, p=p, include_self=include_self, device="cuda")
        np.testing.assert_array_equal(gpu_graph.indptr, cpu_graph.indptr)
        np.testing.assert_array_equal(gpu_graph.indices, cpu_graph.indices)
        same(gpu_graph.data, cpu_graph.data)


@cuda
def test_cuda_precomputed_and_large_k():
    rng = np.random.default_rng(21)
    X = rng.normal(size=(200, 5))
    D = cdist(X, X)
    cpu = knn_graph(D, n_neighbors=150, metric="precomputed", device="cpu")
    gpu = knn_graph(D, n_neighbors=150, metric="precomputed", device="cuda")
    assert (cpu != gpu).nnz == 0
    cpu = knn_graph(D, n_neighbors=None, radius=2.0, metric="precomputed", device="cpu")
    gpu = knn_graph(D, n_neighbors=None, radius=2.0, metric="precomputed", device="cuda")
    assert (cpu != gpu).nnz == 0


@cuda
def test_cuda_torch_tensors_stay_on_device():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(22)
    X = rng.normal(size=(256, 16)).astype(np.float32)
    Xt = torch.from_numpy(X).cuda()
    distances, indices = kneighbors(Xt, None, 5)
    assert distances.is_cuda and indices.dtype == torch.int64
    cpu_d, cpu_i = kneighbors(X, None, 5, device="cpu")
    np.testing.assert_array_equal(indices.cpu().numpy(), cpu_i)
    np.testing.assert_array_equal(distances.cpu().numpy(), cpu_d)
    graph = knn_graph(Xt, n_neighbors=5)
    assert graph.layout == torch.sparse_csr and graph.device.type == "cuda"
    dense = graph.to_dense().cpu().numpy()
    np.testing.assert_array_equal(dense, knn_graph(X, n_neighbors=5, device="cpu").toarray())
    radius_graph = radius_neighbors(Xt, None, 4.0)
    cpu_radius = radius_neighbors(X, None, 4.0, device="cpu")
    np.testing.assert_array_equal(radius_graph.crow_indices().cpu().numpy(), cpu_radius.indptr)
    np.testing.assert_array_equal(radius_graph.col_indices().cpu().numpy(), cpu_radius.indices)
    with pytest.raises(ValueError, match="device='cpu'"):
        kneighbors(Xt, None, 5, device="cpu")
