"""``_core.knn_kneighbors_among``: exact re-ranking of candidate lists, against a NumPy oracle and the exact search."""

import numpy as np
import pytest
from isogan import _core
from isogan.knn import kneighbors

EUCLIDEAN = 0


def oracle_among(queries, points, candidates, k, exclude_self):
    """k nearest of each row's distinct candidates by (distance, index), float64 distances."""
    distances, indices = [], []
    for q, row in enumerate(candidates):
        pool = sorted({int(j) for j in row if not (exclude_self and j == q)})
        d = np.sqrt(((points[pool].astype(np.float64) - queries[q].astype(np.float64)) ** 2).sum(axis=1))
        order = np.lexsort((pool, d))[:k]
        distances.append(d[order])
        indices.append(np.asarray(pool)[order])
    return np.array(distances), np.array(indices)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_among_matches_oracle_with_repeats_and_ties(dtype, exclude_self):
    rng = np.random.default_rng(0)
    # Integer coordinates make many ties; repeated candidate indices must count once.
    points = rng.integers(0, 4, size=(60, 5)).astype(dtype)
    queries = points if exclude_self else rng.integers(0, 4, size=(40, 5)).astype(dtype)
    candidates = rng.integers(0, 60, size=(queries.shape[0], 30)).astype(np.int64)
    if exclude_self:
        candidates[:, 0] = np.arange(60)  # each point among its own candidates
    k = 4
    distances, indices = _core.knn_kneighbors_among(queries, points, candidates, k, EUCLIDEAN, 2.0, exclude_self, 2)
    expected_distances, expected_indices = oracle_among(queries, points, candidates, k, exclude_self)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances.astype(dtype), rtol=1e-6)
    assert distances.dtype == dtype and indices.dtype == np.int64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_points_as_candidates_equal_exact_search_bit_for_bit(dtype):
    rng = np.random.default_rng(1)
    points = rng.normal(size=(300, 17)).astype(dtype)
    candidates = np.tile(np.arange(300, dtype=np.int64)[::-1], (300, 1))
    distances, indices = _core.knn_kneighbors_among(points, points, candidates, 7, EUCLIDEAN, 2.0, True, 1)
    exact_distances, exact_indices = kneighbors(points, None, 7, algorithm="brute")
    np.testing.assert_array_equal(indices, exact_indices)
    assert np.array_equal(distances, exact_distances)


def test_one_point_one_candidate():
    point = np.array([[1.0, 2.0]])
    distances, indices = _core.knn_kneighbors_among(point, point, np.zeros((1, 1), np.int64), 1, EUCLIDEAN, 2.0, False, 1)
    assert distances.tolist() == [[0.0]] and indices.tolist() == [[0]]


def test_bad_input_raises():
    points = np.zeros((5, 2))
    good = np.zeros((5, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="not a point index"):
        _core.knn_kneighbors_among(points, points, np.full((5, 3), 5, np.int64), 1, EUCLIDEAN, 2.0, False, 1)
    with pytest.raises(ValueError, match="fewer than n_neighbors"):
        _core.knn_kneighbors_among(points, points, good, 2, EUCLIDEAN, 2.0, False, 1)  # one distinct candidate
    with pytest.raises(ValueError, match="must be in"):
        _core.knn_kneighbors_among(points, points, good, 4, EUCLIDEAN, 2.0, False, 1)
    with pytest.raises(ValueError, match="candidates has extent"):
        _core.knn_kneighbors_among(points, points, good[:4], 1, EUCLIDEAN, 2.0, False, 1)
    with pytest.raises(ValueError, match="precomputed"):
        _core.knn_kneighbors_among(np.zeros((5, 5)), np.zeros((5, 5)), good, 1, 4, 2.0, False, 1)
    with pytest.raises(TypeError):  # mixed dtypes pick no overload: no hidden copy
        _core.knn_kneighbors_among(points.astype(np.float32), points, good, 1, EUCLIDEAN, 2.0, False, 1)
    with pytest.raises(TypeError):
        _core.knn_kneighbors_among(points, points, good.astype(np.int32), 1, EUCLIDEAN, 2.0, False, 1)
