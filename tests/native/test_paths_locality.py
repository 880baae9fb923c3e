"""Locality reordering of multi-source Dijkstra: the graph is relabelled in reverse Cuthill-McKee
order and rows are scattered back to the caller's column order. The distances must be the very
same numbers as without the relabelling (bit for bit), on adversarial graphs too."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from isogan import _core
from isogan import landmark
from isogan import paths

DTYPES = [np.float32, np.float64]


@pytest.fixture
def reorder_always(monkeypatch):
    monkeypatch.setattr(paths, "_REORDER_MIN_NODES", 0)
    monkeypatch.setattr(paths, "_REORDER_MIN_SOURCES", 0)


def _without_reordering(graph, sources, monkeypatch, **kwargs):
    with monkeypatch.context() as patch:
        patch.setattr(paths, "_REORDER_MIN_NODES", np.iinfo(np.int64).max)
        return paths.geodesic_distances(graph, indices=sources, device="cpu", **kwargs)


def _adversarial_graph(n_nodes, dtype, seed):
    """Random sparse graph with integer weights (many equal path lengths), zero-weight edges
    (duplicate points), isolated nodes and several components, nodes in random order."""
    rng = np.random.default_rng(seed)
    n_edges = 3 * n_nodes
    rows = rng.integers(0, n_nodes, n_edges)
    cols = rng.integers(0, n_nodes, n_edges)
    weights = rng.integers(0, 4, n_edges).astype(dtype)
    # Cut the graph into blocks: an edge only survives inside its block, so there are several
    # components, some of them single nodes.
    block = rng.integers(0, 5, n_nodes)
    keep = block[rows] == block[cols]
    graph = sp.csr_matrix((weights[keep], (rows[keep], cols[keep])), shape=(n_nodes, n_nodes))
    graph.sum_duplicates()
    graph.data[rng.random(graph.nnz) < 0.2] = 0  # explicit zeros stay stored edges
    return graph


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reordered_rows_are_bit_identical(dtype, seed, monkeypatch, reorder_always):
    graph = _adversarial_graph(300, dtype, seed)
    sources = np.random.default_rng(seed).choice(300, 40, replace=False)
    reordered = paths.geodesic_distances(graph, indices=sources, device="cpu")
    plain = _without_reordering(graph, sources, monkeypatch)
    assert reordered.dtype == dtype
    assert np.isinf(plain).any() and (plain == 0).sum() > sources.size  # components and zero edges
    np.testing.assert_array_equal(reordered, plain)
    if dtype == np.float64:
        np.testing.assert_array_equal(reordered, shortest_path(graph, method="D", directed=False, indices=sources))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reordered_rows_with_repeated_sources_and_progress_chunks(dtype, monkeypatch, reorder_always):
    graph = _adversarial_graph(200, dtype, 3)
    sources = np.array([5, 5, 0, 199, -1, 17, 5])
    reordered = paths.geodesic_distances(graph, indices=sources, device="cpu", progress=True, n_jobs=2)
    np.testing.assert_array_equal(reordered, _without_reordering(graph, sources, monkeypatch))
    np.testing.assert_array_equal(paths.geodesic_distances(graph, indices=7, device="cpu"),
                                  _without_reordering(graph, 7, monkeypatch))


def test_relabelled_graph_has_the_same_edges_explicit_zeros_included():
    graph = paths.as_symmetric_csr(_adversarial_graph(150, np.float64, 4))
    relabelled, order = paths._locality_relabelled(graph)
    assert sorted(order.tolist()) == list(range(150))
    assert relabelled.n_edges == graph.n_edges
    for new_row in range(150):
        old_row = order[new_row]
        old_columns = graph.indices[graph.indptr[old_row]:graph.indptr[old_row + 1]]
        old_weights = graph.weights[graph.indptr[old_row]:graph.indptr[old_row + 1]]
        new_columns = relabelled.indices[relabelled.indptr[new_row]:relabelled.indptr[new_row + 1]]
        new_weights = relabelled.weights[relabelled.indptr[new_row]:relabelled.indptr[new_row + 1]]
        assert np.all(np.diff(new_columns) > 0)  # sorted, unique
        restored = dict(zip(order[new_columns].tolist(), new_weights.tolist()))
        assert restored == dict(zip(old_columns.tolist(), old_weights.tolist()))


def test_thresholds_decide_when_the_graph_is_relabelled(monkeypatch):
    calls = []
    relabel = paths._locality_relabelled
    monkeypatch.setattr(paths, "_locality_relabelled", lambda graph: calls.append(graph.n_nodes) or relabel(graph))
    graph = _adversarial_graph(100, np.float64, 5)
    paths.geodesic_distances(graph, indices=np.arange(20), device="cpu")
    assert calls == []  # default: far below the node threshold
    monkeypatch.setattr(paths, "_REORDER_MIN_NODES", 100)
    monkeypatch.setattr(paths, "_REORDER_MIN_SOURCES", 20)
    paths.geodesic_distances(graph, indices=np.arange(19), device="cpu")
    paths.geodesic_distances(graph, device="cpu")  # all pairs keep their own order
    assert calls == []
    paths.geodesic_distances(graph, indices=np.arange(20), device="cpu")
    assert calls == [100]


@pytest.mark.parametrize("dtype", DTYPES)
def test_native_column_order_scatters_rows(dtype):
    graph = paths.as_symmetric_csr(_adversarial_graph(120, dtype, 6))
    sources = np.arange(0, 120, 7, dtype=np.int64)
    dijkstra = _core.paths_dijkstra
    plain = np.empty((sources.size, 120), dtype=dtype)
    dijkstra(graph.indptr, graph.indices, graph.weights, sources, plain, 1)
    identity = np.empty_like(plain)
    dijkstra(graph.indptr, graph.indices, graph.weights, sources, identity, 2, np.arange(120, dtype=np.int64))
    np.testing.assert_array_equal(identity, plain)
    relabelled, order = paths._locality_relabelled(graph)
    position = np.empty(120, dtype=np.int64)
    position[order] = np.arange(120)
    scattered = np.empty_like(plain)
    dijkstra(relabelled.indptr, relabelled.indices, relabelled.weights, position[sources], scattered, 2, order)
    np.testing.assert_array_equal(scattered, plain)


def test_native_column_order_is_checked():
    graph = paths.as_symmetric_csr(_adversarial_graph(10, np.float64, 7))
    sources = np.array([0, 3], dtype=np.int64)
    out = np.empty((2, 10))
    args = (graph.indptr, graph.indices, graph.weights, sources, out, 1)
    with pytest.raises(ValueError, match="column_order"):
        _core.paths_dijkstra(*args, np.arange(9, dtype=np.int64))
    with pytest.raises(ValueError, match="permutation"):
        _core.paths_dijkstra(*args, np.zeros(10, dtype=np.int64))
    with pytest.raises(ValueError, match="permutation"):
        _core.paths_dijkstra(*args, np.arange(1, 11, dtype=np.int64))
    with pytest.raises(TypeError):
        _core.paths_dijkstra(*args, np.arange(10, dtype=np.int32))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("landmark_method", ["maxmin", "random"])
def test_landmark_isomap_is_bit_identical_with_reordering(dtype, landmark_method, monkeypatch):
    rng = np.random.default_rng(8)
    X = rng.random((400, 3)).astype(dtype)
    X[200:210] = X[0]  # duplicate points: zero-weight edges

    def fit():
        return landmark.landmark_isomap(X, n_landmarks=30, n_neighbors=6, landmark_method=landmark_method,
                                        random_state=0, device="cpu", progress=False)

    with monkeypatch.context() as patch:
        patch.setattr(paths, "_REORDER_MIN_NODES", np.iinfo(np.int64).max)
        plain = fit()
    with monkeypatch.context() as patch:
        patch.setattr(paths, "_REORDER_MIN_NODES", 0)
        patch.setattr(paths, "_REORDER_MIN_SOURCES", 0)
        reordered = fit()
    np.testing.assert_array_equal(reordered.landmark_index, plain.landmark_index)
    np.testing.assert_array_equal(reordered.landmark_geodesic, plain.landmark_geodesic)
    np.testing.assert_array_equal(reordered.embedding, plain.embedding)
