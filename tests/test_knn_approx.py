"""algorithm='approximate' (faiss HNSW, the ``isogan[approx]`` extra): recall floors, exact distances, bad input.

These tests need faiss-cpu and do not skip without it: CI job 1 installs ``.[gan,test]``, whose
``test`` extra pulls in ``isogan[approx]``.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from isogan import Isomap, cli
from isogan._backend import approx_knn
from isogan.datasets import make_shapes
from isogan.knn import kneighbors, knn_graph, radius_neighbors, recall_at_k
from sklearn.datasets import make_swiss_roll
from sklearn.utils._param_validation import InvalidParameterError

# The recall floor documented in isogan.knn and Isomap (neighbors_algorithm='approximate').
RECALL_FLOOR = 0.95


def _swiss_roll(n_samples, dtype=np.float64):
    return make_swiss_roll(n_samples, random_state=0)[0].astype(dtype)


def _assert_found_pairs_exact(approx_distances, approx_indices, exact_distances, exact_indices):
    """Every (query, neighbour) pair both searches return has the same distance, bit for bit."""
    for row in range(approx_indices.shape[0]):
        exact = dict(zip(exact_indices[row].tolist(), exact_distances[row].tolist()))
        for j, distance in zip(approx_indices[row].tolist(), approx_distances[row].tolist()):
            if j in exact:
                assert distance == exact[j]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_swiss_roll_recall_and_exact_distances(dtype):
    X = _swiss_roll(4000, dtype)
    distances, indices = kneighbors(X, None, 10, algorithm="approximate")
    exact_distances, exact_indices = kneighbors(X, None, 10, algorithm="brute")
    assert recall_at_k(indices, exact_indices) >= RECALL_FLOOR
    assert distances.dtype == dtype and indices.dtype == np.int64
    _assert_found_pairs_exact(distances, indices, exact_distances, exact_indices)
    # Rows are ordered by (distance, index) and never hold the query itself.
    assert np.all(np.diff(distances, axis=1) >= 0)
    assert not np.any(indices == np.arange(X.shape[0])[:, None])


def test_shapes_images_recall_and_exact_distances():
    X, _ = make_shapes(4000, random_state=0)  # (4000, 784) float32
    distances, indices = kneighbors(X, None, 10, algorithm="approximate")
    exact_distances, exact_indices = kneighbors(X, None, 10, algorithm="brute")
    assert recall_at_k(indices, exact_indices) >= RECALL_FLOOR
    # A missed neighbour must not be replaced by a far point: such long edges are geodesic shortcuts
    # (the old default ef_construction=40 left rows 2-3x too long, doubling the residual variance).
    assert np.all(distances[:, -1] <= 1.5 * exact_distances[:, -1])
    _assert_found_pairs_exact(distances, indices, exact_distances, exact_indices)


def test_stranded_rows_against_a_loop():
    rng = np.random.default_rng(0)
    distances = np.sort(rng.exponential(size=(300, 4)), axis=1)
    distances[::37] *= 4.0  # some rows far above their neighbours
    indices = rng.integers(0, 300, size=(300, 4))
    expected = [row for row in range(300)
                if distances[row, -1] > 1.5 * np.median([distances[j, -1] for j in indices[row]])]
    np.testing.assert_array_equal(approx_knn.stranded_rows(distances, indices, 1.5), expected)
    assert len(expected) > 0


def test_stranded_rows_are_searched_again_exactly():
    # A deliberately weak HNSW graph (4 links, ef 16) strands rows of these images: "neighbours" more
    # than 1.5x farther than the true k-th (37 of 4000 rows when measured); with the repair none remain,
    # every re-searched row equals the exact search's row bit for bit, and the other rows are HNSW's.
    # (Over the points themselves: the projection, a separate choice, is tested below.)
    X, _ = make_shapes(4000, random_state=0)
    exact_distances, exact_indices = kneighbors(X, None, 10, algorithm="brute")
    index = approx_knn.HnswIndex(X, 1, n_links=4, ef_construction=16, ef_search=16, stranded_ratio=None,
                                 projected_features=None)
    raw_distances, raw_indices = index.kneighbors(None, 10, 1)
    assert index.n_researched_ == 0
    assert np.sum(raw_distances[:, -1] > 1.5 * exact_distances[:, -1]) >= 20
    index.stranded_ratio = approx_knn.DEFAULT_STRANDED_RATIO
    distances, indices = index.kneighbors(None, 10, 1)
    assert np.sum(distances[:, -1] > 1.5 * exact_distances[:, -1]) == 0
    changed = np.flatnonzero(np.any(indices != raw_indices, axis=1) | np.any(distances != raw_distances, axis=1))
    # Changed: the re-searched rows, and some of the 100 rows the recall estimate searched exactly.
    assert 0 < changed.size <= index.n_researched_ + 100
    np.testing.assert_array_equal(indices[changed], exact_indices[changed])
    np.testing.assert_array_equal(distances[changed], exact_distances[changed])
    assert recall_at_k(indices, exact_indices) > recall_at_k(raw_indices, exact_indices)


def test_projected_search_of_images_and_its_recall_estimate():
    # 784 features: the graph is built over 64 principal components by default; the exact re-ranking
    # in the full space and the stranded-row repair keep the floor and the edge lengths.
    X, _ = make_shapes(4000, random_state=1)
    exact_distances, exact_indices = kneighbors(X, None, 10, algorithm="brute")
    index = approx_knn.HnswIndex(X, 2)
    assert index._index.d == approx_knn.DEFAULT_PROJECTED_FEATURES
    distances, indices = index.kneighbors(None, 10, 2)
    recall = recall_at_k(indices, exact_indices)
    assert recall >= RECALL_FLOOR
    assert RECALL_FLOOR <= index.recall_estimate_ <= 1.0 and abs(index.recall_estimate_ - recall) <= 0.05
    assert np.all(distances[:, -1] <= 1.5 * exact_distances[:, -1])
    _assert_found_pairs_exact(distances, indices, exact_distances, exact_indices)
    queries = X[:300] + 0.01
    query_distances, query_indices = index.kneighbors(queries, 10, 2)
    assert index.recall_estimate_ is None
    assert recall_at_k(query_indices, kneighbors(X, queries, 10, algorithm="brute")[1]) >= RECALL_FLOOR


def test_a_search_below_the_recall_floor_warns():
    X, _ = make_shapes(2000, random_state=0)
    index = approx_knn.HnswIndex(X, 2, n_links=2, ef_construction=2, ef_search=1, projected_features=1)
    with pytest.warns(UserWarning, match=r"found only 0\.\d+ of the exact 10 nearest neighbours on 100 sampled points"):
        index.kneighbors(None, 10, 2)
    assert index.recall_estimate_ < RECALL_FLOOR


def test_bad_projected_features():
    X = _swiss_roll(100)
    for bad in (0, 3, 10):
        with pytest.raises(ValueError, match=r"projected_features must be None, 'auto' or an int in \[1, n_features = 3\)"):
            approx_knn.HnswIndex(X, 1, projected_features=bad)
    assert approx_knn.HnswIndex(X, 1)._index.d == 3  # 'auto' keeps few features as they are


def test_research_leaves_an_exact_graph_unchanged():
    # Rows flagged on the exact graph (outliers, and duplicates at distance 0) are searched again
    # and come back identical, ties included.
    X = np.ascontiguousarray(np.concatenate([_swiss_roll(1500), _swiss_roll(20) * 5.0, _swiss_roll(1500)[:30]]))
    exact_distances, exact_indices = kneighbors(X, None, 8, algorithm="brute")
    distances, indices = exact_distances.copy(), exact_indices.copy()
    assert approx_knn.research_stranded(X, distances, indices, 1.5, 2) > 0
    np.testing.assert_array_equal(indices, exact_indices)
    np.testing.assert_array_equal(distances, exact_distances)


def test_queries_against_fit_points():
    X = _swiss_roll(3000)
    Y = _swiss_roll(3200)[3000:] + 0.01
    distances, indices = kneighbors(X, Y, 8, algorithm="approximate")
    exact_distances, exact_indices = kneighbors(X, Y, 8, algorithm="brute")
    assert distances.shape == (200, 8)
    assert recall_at_k(indices, exact_indices) >= RECALL_FLOOR
    _assert_found_pairs_exact(distances, indices, exact_distances, exact_indices)


def test_knn_graph_approximate_is_a_csr_of_exact_edge_lengths():
    X = _swiss_roll(2000)
    graph = knn_graph(X, 10, algorithm="approximate")
    exact = knn_graph(X, 10)
    assert sp.issparse(graph) and graph.shape == exact.shape and graph.nnz == exact.nnz
    both = graph.multiply(exact.astype(bool)) - exact.multiply(graph.astype(bool))
    assert both.count_nonzero() == 0  # common edges have equal lengths
    for include_self in (False, True):
        connectivity = knn_graph(X, 10, mode="connectivity", include_self=include_self, algorithm="approximate")
        exact_connectivity = knn_graph(X, 10, mode="connectivity", include_self=include_self)
        np.testing.assert_array_equal(connectivity.diagonal(), exact_connectivity.diagonal())
        assert set(np.unique(connectivity.data)) == {1.0}


def test_isomap_approximate_fit_transform_and_landmarks():
    X = _swiss_roll(3000)
    exact = Isomap(n_neighbors=10).fit(X)
    approx = Isomap(n_neighbors=10, neighbors_algorithm="approximate").fit(X)
    # Same graph up to a few missed neighbours: the embeddings agree up to the sign of each axis.
    correlation = [abs(np.corrcoef(exact.embedding_[:, c], approx.embedding_[:, c])[0, 1]) for c in range(2)]
    assert min(correlation) > 0.99
    Y = X[:50] + 0.01
    assert approx.transform(Y).shape == (50, 2)
    assert hasattr(approx, "_approximate_index")  # built by the first transform, kept for the next
    np.testing.assert_array_equal(approx.transform(Y), approx.transform(Y))
    landmark = Isomap(n_neighbors=10, n_landmarks=100, random_state=0, neighbors_algorithm="approximate").fit(X)
    assert landmark.embedding_.shape == (3000, 2)
    assert landmark.transform(Y).shape == (50, 2)


def test_exact_default_unchanged():
    X = _swiss_roll(1500)
    assert Isomap().neighbors_algorithm == "auto"
    np.testing.assert_array_equal(knn_graph(X, 10).toarray(), knn_graph(X, 10, algorithm="brute").toarray())


def test_cli_embed_neighbors_algorithm_approximate(tmp_path):
    out = tmp_path / "run"
    status = cli.main(["embed", "--dataset", "swiss-roll", "--out", str(out), "--n-samples", "500",
                       "--n-neighbors", "10", "--neighbors-algorithm", "approximate", "--no-plot"])
    assert status == 0
    assert np.load(out / "embedding.npy").shape == (500, 2)


# ---------------------------------------------------------------- bad input
def test_unknown_algorithm_name():
    X = _swiss_roll(100)
    message = r"The 'algorithm' parameter must be a str among \{'approximate', 'auto', 'ball_tree', 'brute', " \
              r"'kd_tree'\}. Got 'hnsw' instead."
    with pytest.raises(ValueError, match=message):
        knn_graph(X, 5, algorithm="hnsw")
    with pytest.raises(ValueError, match=message):
        kneighbors(X, None, 5, algorithm="hnsw")
    with pytest.raises(InvalidParameterError, match="'neighbors_algorithm' parameter of Isomap must be a str among"):
        Isomap(neighbors_algorithm="hnsw").fit(X)


def test_approximate_with_precomputed_metric():
    D = np.abs(np.subtract.outer(np.arange(20.0), np.arange(20.0)))
    message = "algorithm='approximate' searches points, not distances"
    with pytest.raises(ValueError, match=message):
        knn_graph(D, 3, metric="precomputed", algorithm="approximate")
    with pytest.raises(ValueError, match=message):
        kneighbors(D, None, 3, metric="precomputed", algorithm="approximate")
    with pytest.raises(ValueError, match=message):
        Isomap(n_neighbors=3, metric="precomputed", neighbors_algorithm="approximate").fit(D)


def test_approximate_refuses_what_it_cannot_search():
    X = _swiss_roll(100)
    with pytest.raises(ValueError, match="Euclidean distances only"):
        knn_graph(X, 5, metric="manhattan", algorithm="approximate")
    with pytest.raises(ValueError, match="dense points"):
        knn_graph(sp.csr_matrix(X), 5, algorithm="approximate")
    with pytest.raises(ValueError, match="k nearest neighbours only"):
        knn_graph(X, None, radius=1.0, algorithm="approximate")
    with pytest.raises(ValueError, match="k nearest neighbours only"):
        radius_neighbors(X, None, 1.0, algorithm="approximate")


def test_missing_faiss_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    X = _swiss_roll(100)
    with pytest.raises(ImportError, match=r'pip install "isogan\[approx\]"'):
        knn_graph(X, 5, algorithm="approximate")
    with pytest.raises(ImportError, match=r'pip install "isogan\[approx\]"'):
        Isomap(n_neighbors=5, neighbors_algorithm="approximate").fit(X)
    assert cli.main(["embed", "--dataset", "swiss-roll", "--out", "unused-dir", "--n-samples", "100",
                     "--neighbors-algorithm", "approximate", "--no-plot"]) == 1


def test_recall_at_k():
    assert recall_at_k(np.array([[1, 2], [0, 3]]), np.array([[2, 1], [0, 2]])) == 0.75
    with pytest.raises(ValueError, match="same shape"):
        recall_at_k(np.zeros((2, 3)), np.zeros((2, 2)))
