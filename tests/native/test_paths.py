"""Geodesic distances and the transform min-plus against scipy and naive NumPy oracles."""

import _thread
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import shortest_path
from sklearn.neighbors import kneighbors_graph

import isogan
from isogan.paths import geodesic_distances, geodesic_from_neighbors, min_plus_rows

cuda = pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")


def scipy_reference(graph, method="D", indices=None):
    return shortest_path(graph, method=method, directed=False, indices=indices)


def assert_matches(result, reference, dtype):
    """Same +inf pattern; finite entries within the dtype's rounding."""
    reference = np.asarray(reference, dtype=np.float64)
    assert result.dtype == dtype
    assert result.shape == reference.shape
    np.testing.assert_array_equal(np.isinf(result), np.isinf(reference))
    finite = np.isfinite(reference)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(result[finite], reference[finite], rtol=rtol, atol=0)


def random_graph(n_nodes, density, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    graph = sp.random(n_nodes, n_nodes, density=density, random_state=rng, format="csr", dtype=np.float64)
    graph.data = (graph.data * 10).astype(dtype)
    return graph


def swiss_roll_graph(n_samples, n_neighbors, dtype, seed=0):
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.random(n_samples))
    X = np.column_stack([t * np.cos(t), 21 * rng.random(n_samples), t * np.sin(t)]).astype(dtype)
    return kneighbors_graph(X, n_neighbors, mode="distance").astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(3))
def test_random_sparse_graph_matches_scipy(dtype, seed):
    graph = random_graph(60, 0.05, seed, dtype)
    assert_matches(geodesic_distances(graph, "D", n_jobs=2), scipy_reference(graph), dtype)


def test_float64_dijkstra_from_indices_is_bit_identical_to_scipy():
    graph = swiss_roll_graph(300, 6, np.float64)
    indices = np.arange(0, 300, 7)
    np.testing.assert_array_equal(geodesic_distances(graph, "D", indices=indices), scipy_reference(graph, indices=indices))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_pairs_row_reuse_on_a_long_path_graph(dtype):
    # A long chain plus shortcuts: deep shortest-path trees, many ties, rows reused at every depth.
    n_nodes = 500
    rng = np.random.default_rng(5)
    chain = sp.diags([rng.random(n_nodes - 1) + 0.5], [1], shape=(n_nodes, n_nodes), format="csr")
    shortcuts = sp.random(n_nodes, n_nodes, density=0.002, random_state=rng, format="csr") * 20
    graph = (chain + shortcuts).astype(dtype)
    for n_jobs in (1, 2):
        assert_matches(geodesic_distances(graph, n_jobs=n_jobs), scipy_reference(graph), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_knn_graph_matches_scipy(dtype):
    graph = swiss_roll_graph(400, 8, dtype)
    result = geodesic_distances(graph)
    assert_matches(result, scipy_reference(graph), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["D", "FW", "auto"])
def test_several_components_give_inf(dtype, method):
    blocks = [swiss_roll_graph(n, 4, dtype, seed=n) for n in (30, 45)] + [sp.csr_matrix((1, 1), dtype=dtype)]
    graph = sp.block_diag(blocks, format="csr").astype(dtype)
    result = geodesic_distances(graph, method)
    assert np.isinf(result[0, 40]) and np.isinf(result[-1, 0])
    assert_matches(result, scipy_reference(graph, method if method != "auto" else "D"), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_duplicate_points_give_zero_weight_edges(dtype):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 3)).astype(dtype)
    X = np.vstack([X, X[:10], X[:3]])
    graph = kneighbors_graph(X, 5, mode="distance").astype(dtype)
    assert (graph.data == 0).any()  # explicit zeros: edges of weight 0, as scipy reads them
    result = geodesic_distances(graph)
    assert_matches(result, scipy_reference(graph), dtype)
    np.testing.assert_allclose(result[50], result[0], rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_explicit_zero_is_an_edge_and_dense_zero_is_not():
    graph = sp.csr_matrix((np.array([0.0, 1.0]), np.array([1, 2]), np.array([0, 1, 2, 2])), shape=(3, 3))
    expected = np.array([[0, 0, 1], [0, 0, 1], [1, 1, 0]], dtype=float)
    np.testing.assert_array_equal(geodesic_distances(graph), expected)
    np.testing.assert_array_equal(geodesic_distances(graph, "FW"), expected)
    dense_result = geodesic_distances(graph.toarray())
    np.testing.assert_array_equal(dense_result, scipy_reference(graph.toarray()))
    assert np.isinf(dense_result[0, 1])


def test_one_node_and_empty_graph():
    np.testing.assert_array_equal(geodesic_distances(sp.csr_matrix((1, 1))), [[0.0]])
    np.testing.assert_array_equal(geodesic_distances(np.zeros((1, 1)), "FW"), [[0.0]])
    assert geodesic_distances(sp.csr_matrix((0, 0))).shape == (0, 0)
    edgeless = geodesic_distances(sp.csr_matrix((3, 3), dtype=np.float32))
    assert edgeless.dtype == np.float32
    np.testing.assert_array_equal(np.isinf(edgeless), ~np.eye(3, dtype=bool))


@pytest.mark.parametrize("method", ["D", "FW"])
def test_asymmetric_input_uses_the_lighter_direction(method):
    graph = random_graph(40, 0.1, 7)
    graph = graph + sp.random(40, 40, density=0.1, random_state=8, format="csr") * 3  # (i,j) != (j,i)
    assert (graph != graph.T).nnz > 0
    assert_matches(geodesic_distances(graph, method), scipy_reference(graph, method), np.float64)


def test_duplicate_entries_follow_scipy():
    # CSR duplicates: parallel edges (lightest wins); COO duplicates: summed by the CSR conversion.
    csr = sp.csr_matrix((np.array([3.0, 2.0]), np.array([1, 1]), np.array([0, 2, 2, 2])), shape=(3, 3))
    np.testing.assert_array_equal(geodesic_distances(csr), scipy_reference(csr))
    coo = sp.coo_matrix((np.array([3.0, 2.0]), (np.array([0, 0]), np.array([1, 1]))), shape=(3, 3))
    np.testing.assert_array_equal(geodesic_distances(coo), scipy_reference(coo))
    assert geodesic_distances(coo)[0, 1] == 5.0


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dense"])
def test_input_formats(fmt):
    graph = random_graph(30, 0.15, 11)
    converted = graph.toarray() if fmt == "dense" else graph.asformat(fmt)
    assert_matches(geodesic_distances(converted), scipy_reference(graph), np.float64)


def test_integer_graph_gives_float64():
    graph = sp.csr_matrix(np.array([[0, 2, 0], [0, 0, 3], [0, 0, 0]], dtype=np.int64))
    result = geodesic_distances(graph)
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, scipy_reference(graph))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_indices_subset(dtype):
    graph = swiss_roll_graph(200, 6, dtype)
    indices = np.array([5, 0, 199, 5, -1])
    assert_matches(geodesic_distances(graph, indices=indices), scipy_reference(graph, indices=indices), dtype)
    row = geodesic_distances(graph, indices=7)
    assert row.shape == (200,)
    assert_matches(row, scipy_reference(graph, indices=7), dtype)
    assert geodesic_distances(graph, indices=[]).shape == (0, 200)
    # Floyd-Warshall with sources: computed by Dijkstra from them (scipy refuses the combination).
    assert_matches(geodesic_distances(graph, "FW", indices=[3, 4]), scipy_reference(graph, indices=[3, 4]), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_floyd_warshall_matches_dijkstra_and_scipy(dtype):
    graph = swiss_roll_graph(150, 5, dtype)  # 150 > the 64-wide tile: three pivot blocks, a ragged one
    floyd = geodesic_distances(graph, "FW", n_jobs=2)
    assert_matches(floyd, scipy_reference(graph, "FW"), dtype)
    assert_matches(floyd, geodesic_distances(graph, "D"), dtype)


def test_auto_picks_floyd_warshall_for_dense_graphs():
    rng = np.random.default_rng(0)
    dense = rng.random((70, 70))
    assert_matches(geodesic_distances(dense), scipy_reference(dense, "auto"), np.float64)


def test_progress_chunks_give_the_same_result():
    graph = swiss_roll_graph(120, 5, np.float64)
    np.testing.assert_array_equal(
        geodesic_distances(graph, progress=True, n_jobs=2), geodesic_distances(graph, progress=False)
    )


@pytest.mark.parametrize(
    "graph, message",
    [
        (sp.csr_matrix(np.array([[0, -1.0], [0, 0]])), "negative"),
        (sp.csr_matrix(np.array([[0, np.nan], [0, 0]])), "NaN"),
        (np.array([[0, np.nan], [0, 0]]), "NaN"),
        (np.array([[0, -2.0], [1, 0]]), "negative"),
        (sp.csr_matrix((2, 3)), "square"),
        (np.zeros((2, 3)), "square"),
        (np.zeros(4), "square"),
        (np.array([["a", "b"], ["c", "d"]]), "real"),
        (np.array([[0, 1j], [0, 0]]), "real"),
    ],
)
def test_bad_graphs_raise(graph, message):
    with pytest.raises(ValueError, match=message):
        geodesic_distances(graph)


def test_bad_arguments_raise():
    graph = random_graph(10, 0.2, 0)
    with pytest.raises(ValueError, match="'method' parameter"):
        geodesic_distances(graph, "x")
    with pytest.raises(ValueError, match="out of range"):
        geodesic_distances(graph, indices=[10])
    with pytest.raises(ValueError, match="out of range"):
        geodesic_distances(graph, indices=[-11])
    with pytest.raises(ValueError, match="integers"):
        geodesic_distances(graph, indices=[1.5])
    with pytest.raises(ValueError, match="device"):
        geodesic_distances(graph, device="tpu")


def test_output_that_cannot_fit_is_refused():
    huge = sp.csr_matrix((2_000_000, 2_000_000), dtype=np.float32)
    with pytest.raises(MemoryError, match="bytes.*float32.*n_landmarks"):
        geodesic_distances(huge, device="cpu")


def test_native_entry_points_reject_bad_arrays():
    indptr = np.array([0, 1, 1], dtype=np.int64)
    with pytest.raises(ValueError, match="out of range"):
        isogan._core.paths_symmetrize(indptr, np.array([5], dtype=np.int32), np.array([1.0]))
    with pytest.raises(ValueError, match="nnz"):
        isogan._core.paths_symmetrize(np.array([0, 2, 2], dtype=np.int64), np.array([1], dtype=np.int32), np.array([1.0]))
    with pytest.raises(TypeError):
        isogan._core.paths_symmetrize(indptr, np.array([1], dtype=np.int64), np.array([1.0]))
    out = np.empty((1, 2))
    with pytest.raises(ValueError, match="source"):
        isogan._core.paths_dijkstra(indptr, np.array([1], dtype=np.int32), np.array([1.0]), np.array([2]), out, 1)


# ----------------------------------------------------------------------------- min-plus


def naive_min_plus(neighbor_distances, neighbor_indices, dist):
    """scikit-learn's Isomap.transform loop."""
    out = np.zeros((len(neighbor_indices), dist.shape[0]), dtype=dist.dtype)
    for q in range(len(neighbor_indices)):
        out[q] = np.min(dist[neighbor_indices[q]] + neighbor_distances[q][:, None], 0)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_min_plus_is_bit_identical_to_sklearns_loop(dtype):
    graph = swiss_roll_graph(300, 6, dtype)
    dist = geodesic_distances(graph)
    rng = np.random.default_rng(0)
    neighbor_indices = rng.integers(0, 300, size=(25, 7))
    neighbor_distances = rng.random((25, 7)).astype(dtype)
    neighbor_distances[0, 0] = 0  # a new point on top of a training point
    result = geodesic_from_neighbors(neighbor_distances, neighbor_indices, dist, n_jobs=2)
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, naive_min_plus(neighbor_distances, neighbor_indices, dist))


def test_min_plus_with_disconnected_training_graph():
    dist = geodesic_distances(sp.block_diag([random_graph(20, 0.3, 1), random_graph(30, 0.3, 2)], format="csr"))
    neighbor_indices = np.array([[0, 1], [25, 40]])
    neighbor_distances = np.array([[0.5, 0.25], [1.0, 2.0]])
    result = geodesic_from_neighbors(neighbor_distances, neighbor_indices, dist)
    np.testing.assert_array_equal(result, naive_min_plus(neighbor_distances, neighbor_indices, dist))
    assert np.isinf(result[0, 30]) and np.isinf(result[1, 0])


def test_min_plus_rows_csr_matches_loop():
    dist = geodesic_distances(swiss_roll_graph(2100, 6, np.float64))  # > one 2048-column block
    rng = np.random.default_rng(1)
    dense = np.where(rng.random((6, 2100)) < 0.003, rng.random((6, 2100)), 0)
    dense[2] = 0  # a query without neighbours: +inf
    coo = sp.coo_matrix(dense)
    rows = np.append(coo.row, 4)  # an explicit zero: a neighbour at distance 0
    cols = np.append(coo.col, 17)
    graph = sp.csr_matrix((np.append(coo.data, 0.0), (rows, cols)), shape=dense.shape)
    assert graph.nnz == coo.nnz + 1
    result = min_plus_rows(graph, dist, n_jobs=2)
    for q in range(6):
        row = graph.getrow(q)
        if row.nnz == 0:
            assert np.isinf(result[q]).all()
        else:
            np.testing.assert_array_equal(result[q], naive_min_plus([row.data], [row.indices], dist)[0])
    np.testing.assert_array_equal(result[4], np.minimum(result[4], dist[17]))


def test_min_plus_bad_input_raises():
    dist = np.zeros((4, 4))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        geodesic_from_neighbors([[1.0]], [[4]], dist)
    with pytest.raises(ValueError, match="same shape"):
        geodesic_from_neighbors([[1.0, 2.0]], [[1]], dist)
    with pytest.raises(ValueError, match="square"):
        geodesic_from_neighbors([[1.0]], [[1]], np.zeros((4, 3)))
    with pytest.raises(ValueError, match="columns"):
        min_plus_rows(sp.csr_matrix((2, 5)), dist)
    with pytest.raises(ValueError, match="sparse"):
        min_plus_rows(np.zeros((2, 4)), dist)


# ----------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    n_nodes=st.integers(1, 25),
    density=st.floats(0.0, 0.6),
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
    zero_fraction=st.floats(0.0, 0.5),
    method=st.sampled_from(["D", "FW"]),
)
def test_property_matches_scipy(n_nodes, density, seed, dtype, zero_fraction, method):
    rng = np.random.default_rng(seed)
    graph = sp.random(n_nodes, n_nodes, density=density, random_state=rng, format="csr")
    graph.data = np.round(graph.data * 4) / 2  # many ties
    graph.data[rng.random(graph.nnz) < zero_fraction] = 0  # explicit zero-weight edges
    graph = graph.astype(dtype)
    result = geodesic_distances(graph, method)
    assert_matches(result, scipy_reference(graph, method), dtype)
    np.testing.assert_array_equal(np.diag(result), 0)


# ----------------------------------------------------------------------------- Ctrl-C


@pytest.mark.slow
def test_ctrl_c_interrupts_a_long_call():
    graph = swiss_roll_graph(6000, 10, np.float64)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        geodesic_distances(graph, progress=False, n_jobs=1)
    timer.join()
    assert time.perf_counter() - start < 2.5


# ----------------------------------------------------------------------------- CUDA


@cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["D", "FW"])
def test_cuda_matches_scipy(dtype, method):
    blocks = [swiss_roll_graph(300, 6, dtype), swiss_roll_graph(70, 4, dtype, seed=1)]
    graph = sp.block_diag(blocks, format="csr")
    assert_matches(geodesic_distances(graph, method, device="cuda"), scipy_reference(graph, method), dtype)


@cuda
def test_cuda_indices_and_duplicates():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 3))
    graph = kneighbors_graph(np.vstack([X, X[:5]]), 5, mode="distance")
    indices = [0, 84, 3]
    result = geodesic_distances(graph, indices=indices, device="cuda")
    assert_matches(result, scipy_reference(graph, indices=indices), np.float64)


@cuda
def test_cuda_torch_input_stays_on_device():
    torch = pytest.importorskip("torch")
    graph = swiss_roll_graph(200, 6, np.float32)
    dense = torch.as_tensor(graph.toarray(), device="cuda")
    result = geodesic_distances(dense, device="cuda")
    assert result.is_cuda and result.dtype == torch.float32
    assert_matches(result.cpu().numpy(), scipy_reference(graph), np.float32)
