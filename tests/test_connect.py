"""Connect stage: joining components keeps every stored edge, as scikit-learn's Isomap does."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.manifold import Isomap as SklearnIsomap

import isogan
from isogan.connect import connect_components


def test_join_keeps_explicit_zero_edges_between_duplicates():
    # Found by hypothesis: with k=1 the duplicate points 3 and 3 are joined by an explicit zero
    # edge, and sparse addition of the component-joining edges dropped it.
    graph = sp.csr_matrix((np.array([1.0, 1.0, 0.0, 0.0]), np.array([1, 0, 3, 2]), np.arange(5)), shape=(4, 4))
    points = np.array([[1.0], [2.0], [3.0], [3.0]])
    with pytest.warns(UserWarning, match="connected components"):
        joined, labels = connect_components(graph, points)
    assert labels is not None and len(np.unique(labels)) == 2
    assert joined.nnz == graph.nnz + 2
    assert joined[2, 3] == 0 and joined[3, 2] == 0
    assert 3 in joined[2].indices and 2 in joined[3].indices


def test_duplicate_points_embedding_matches_sklearn():
    X = np.array([[1.0], [2.0], [3.0], [3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = isogan.Isomap(n_neighbors=1, n_components=1).fit(X)
        theirs = SklearnIsomap(n_neighbors=1, n_components=1).fit(X)
    np.testing.assert_allclose(ours.dist_matrix_, theirs.dist_matrix_, atol=1e-12)
    np.testing.assert_allclose(np.abs(ours.embedding_), np.abs(theirs.embedding_), atol=1e-10)


def test_connected_graph_is_returned_without_labels():
    graph = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    joined, labels = connect_components(graph, np.array([[0.0], [1.0]]))
    assert labels is None
    assert (joined != graph).nnz == 0
