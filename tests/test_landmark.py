"""Landmark Isomap end to end: exactness at L = N, accuracy, landmark choice, components,
out-of-core input, bad input and transform."""

import warnings

import numpy as np
import pytest
from scipy import sparse
from scipy.spatial.distance import pdist
from sklearn.datasets import make_swiss_roll
from sklearn.manifold import Isomap as SklearnIsomap

import isogan.knn
import isogan.mds
import isogan.paths
from isogan import _landmark_choice, landmark


def _chunked_knn_graph(X, n_neighbors, chunk_rows, options):
    distances, indices = isogan.knn.kneighbors_blocked(X, n_neighbors, chunk_rows, **options)
    return isogan.knn.neighbors_to_csr(distances, indices, X.shape[0])


def swiss_roll(n_samples, dtype=np.float64, seed=0):
    X, t = make_swiss_roll(n_samples, random_state=seed)
    arc_length = 0.5 * (t * np.sqrt(1 + t * t) + np.arcsinh(t))
    return X.astype(dtype), np.c_[arc_length, X[:, 1]]


def residual_variance(embedding, truth, n_pairs_points=800):
    sample = np.random.default_rng(0).choice(len(embedding), min(n_pairs_points, len(embedding)), replace=False)
    return 1 - np.corrcoef(pdist(embedding[sample]), pdist(truth[sample]))[0, 1] ** 2


def assert_equal_up_to_sign(actual, expected, **tolerances):
    signs = np.sign(np.sum(actual * expected, axis=0))
    np.testing.assert_allclose(actual * signs, expected, **tolerances)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_points_landmarks_is_exact_isomap(dtype):
    X, _ = swiss_roll(600, dtype)
    model = landmark.landmark_isomap(X, n_landmarks=600, n_neighbors=8, random_state=0, device="cpu")
    expected = SklearnIsomap(n_neighbors=8).fit_transform(X.astype(np.float64))
    assert model.embedding.dtype == dtype
    scale = np.abs(expected).max()
    atol = 1e-7 * scale if dtype == np.float64 else 2e-3 * scale
    assert_equal_up_to_sign(model.embedding.astype(np.float64), expected, atol=atol)


@pytest.mark.parametrize("landmark_method", ["maxmin", "random"])
def test_moderate_landmarks_recover_swiss_roll(landmark_method):
    X, truth = swiss_roll(3000, np.float32)
    model = landmark.landmark_isomap(
        X, n_landmarks=60, n_neighbors=10, landmark_method=landmark_method, random_state=1, device="cpu"
    )
    assert np.all(np.isfinite(model.embedding))
    assert residual_variance(model.embedding, truth) < 0.01


def test_maxmin_is_deterministic_and_spread():
    X, _ = swiss_roll(2000)
    first = landmark.select_landmarks(X, 50, random_state=3)
    again = landmark.select_landmarks(X, 50, random_state=3)
    other = landmark.select_landmarks(X, 50, random_state=4)
    np.testing.assert_array_equal(first, again)
    assert first[0] != other[0]
    assert np.unique(first).size == 50
    # MaxMin covers better than random: its largest point-to-landmark distance is smaller.
    random_pick = landmark.select_landmarks(X, 50, landmark_method="random", random_state=3)

    def covering_radius(index):
        return np.sqrt(((X[:, None, :] - X[index][None]) ** 2).sum(-1).min(axis=1).max())

    assert covering_radius(first) < covering_radius(random_pick)


def test_random_selection_respects_random_state():
    X, _ = swiss_roll(500)
    a = landmark.select_landmarks(X, 40, landmark_method="random", random_state=7)
    b = landmark.select_landmarks(X, 40, landmark_method="random", random_state=np.random.RandomState(7))
    c = landmark.select_landmarks(X, 40, landmark_method="random", random_state=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.unique(a).size == 40


def test_component_without_landmark_gets_one_and_coordinates_stay_finite():
    X, _ = swiss_roll(400)
    # A small second component far away; 20 random landmarks (seed 0) all fall in the big one.
    X_two = np.vstack([X, X[:30] + 1000.0])
    graph = isogan.knn.knn_graph(X_two, n_neighbors=6, mode="distance", device="cpu")
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(graph, directed=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = landmark.landmark_isomap(X_two, n_landmarks=20, n_neighbors=6, landmark_method="random",
                                         random_state=0, device="cpu")
    messages = [str(w.message) for w in caught]
    assert any("connected components of the neighbors graph is 2" in m for m in messages)
    assert any("had no landmark" in m for m in messages)
    assert np.all(np.isfinite(model.embedding))
    assert len(set(labels[model.landmark_index])) == 2
    with pytest.warns(UserWarning, match="no landmark"):
        covered = _landmark_choice.cover_components(np.array([0, 1, 2]), labels)
    assert covered.size == 4 and labels[covered[-1]] != labels[0]


def test_disconnected_graph_without_coordinates_raises():
    graph = sparse.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=float))
    with pytest.raises(ValueError, match="connected components"):
        landmark.fit_landmark_model(graph, 3, 2)


def test_geodesic_maxmin_without_coordinates():
    X, truth = swiss_roll(800)
    graph = isogan.knn.knn_graph(X, n_neighbors=10, mode="distance", device="cpu")
    model = landmark.fit_landmark_model(graph, 40, 2, random_state=0, device="cpu")
    again = landmark.fit_landmark_model(graph, 40, 2, random_state=0, device="cpu")
    np.testing.assert_array_equal(model.landmark_index, again.landmark_index)
    assert residual_variance(model.embedding, truth) < 0.01


@pytest.mark.parametrize("landmark_method", ["maxmin", "random"])
def test_memmap_input_equals_in_memory(tmp_path, landmark_method):
    X, _ = swiss_roll(1500, np.float32)
    path = tmp_path / "points.npy"
    np.save(path, np.ascontiguousarray(X))
    np.save(tmp_path / "fortran.npy", np.asfortranarray(X))
    in_memory = landmark.landmark_isomap(X, 50, n_neighbors=8, landmark_method=landmark_method, random_state=0,
                                         device="cpu", chunk_rows=4096)
    mapped = np.load(path, mmap_mode="r")
    # chunk_rows below n_samples forces the blocked kNN; a MaxMin pool as large as the data
    # makes the landmark choice identical to the in-memory one.
    out_of_core = landmark.landmark_isomap(mapped, 50, n_neighbors=8, landmark_method=landmark_method,
                                           random_state=0, device="cpu", chunk_rows=400)
    from_path = landmark.landmark_isomap(str(path), 50, n_neighbors=8, landmark_method=landmark_method,
                                         random_state=0, device="cpu", chunk_rows=4096)
    from_path_blocked = landmark.landmark_isomap(path, 50, n_neighbors=8, landmark_method=landmark_method,
                                                 random_state=0, device="cpu", chunk_rows=400)
    np.testing.assert_allclose(from_path.embedding, in_memory.embedding, rtol=1e-5, atol=1e-4)
    scale = np.abs(in_memory.embedding).max()
    from_fortran = landmark.landmark_isomap(tmp_path / "fortran.npy", 50, n_neighbors=8, landmark_method=landmark_method,
                                            random_state=0, device="cpu", chunk_rows=400)
    np.testing.assert_array_equal(from_fortran.embedding, from_path_blocked.embedding)
    for blocked in (out_of_core, from_path_blocked):
        assert np.all(np.isfinite(blocked.embedding))
        if landmark_method == "random":
            np.testing.assert_array_equal(blocked.landmark_index, in_memory.landmark_index)
            assert_equal_up_to_sign(blocked.embedding, in_memory.embedding, atol=1e-4 * scale)
    # The MaxMin pool of an out-of-core input is a random subset: same seed, same landmarks.
    np.testing.assert_array_equal(out_of_core.landmark_index, from_path_blocked.landmark_index)


def test_npy_rows_reads_slices_and_rows(tmp_path):
    X = np.random.default_rng(0).normal(size=(300, 5))
    np.save(tmp_path / "x.npy", X)
    rows = landmark.NpyRows(tmp_path / "x.npy")
    assert rows.shape == (300, 5) and rows.dtype == np.float64 and rows.ndim == 2
    np.testing.assert_array_equal(rows[17:250], X[17:250])
    np.testing.assert_array_equal(rows[290:400], X[290:])
    np.testing.assert_array_equal(rows[np.array([299, 0, 5])], X[[299, 0, 5]])
    np.save(tmp_path / "f.npy", np.asfortranarray(X))
    with pytest.raises(ValueError, match="Fortran"):
        landmark.NpyRows(tmp_path / "f.npy")
    np.save(tmp_path / "i.npy", np.arange(10).reshape(5, 2))
    with pytest.raises(ValueError, match="float32 or float64"):
        landmark.landmark_isomap(tmp_path / "i.npy", 3, n_neighbors=2, device="cpu")


def test_chunked_knn_graph_equals_in_memory_graph():
    X, _ = swiss_roll(700, np.float32)
    X[5] = X[6]  # a duplicate: self must still be dropped, not its twin
    options = dict(metric="minkowski", p=2, metric_params=None, n_jobs=None, device="cpu")
    chunked = _chunked_knn_graph(X, 6, 128, options)
    # 700 = 5 * 139 + 5 and 700 = 699 + 1: ragged last blocks, down to a single row.
    for chunk_rows in (139, 699):
        other = _chunked_knn_graph(X, 6, chunk_rows, options)
        np.testing.assert_array_equal(other.toarray(), chunked.toarray())
    direct = sparse.csr_matrix(isogan.knn.knn_graph(X, n_neighbors=6, mode="distance", device="cpu"))
    assert chunked.shape == direct.shape
    np.testing.assert_allclose(np.sort(chunked.toarray(), axis=1), np.sort(direct.toarray(), axis=1), atol=1e-5)
    assert chunked.diagonal().sum() == 0 and (chunked[5, 5] == 0)


@pytest.mark.parametrize("n_landmarks", [0, 2, 501, 2.5, None])
def test_bad_n_landmarks_raise(n_landmarks):
    X, _ = swiss_roll(500)
    with pytest.raises(ValueError, match="n_landmarks"):
        landmark.landmark_isomap(X, n_landmarks, n_components=2, device="cpu")


def test_bad_inputs_raise():
    X, _ = swiss_roll(100)
    with pytest.raises(ValueError, match="landmark_method"):
        landmark.select_landmarks(X, 5, landmark_method="kmeans")
    with pytest.raises(ValueError, match="n_neighbors"):
        landmark.landmark_isomap(X, 10, n_neighbors=100, device="cpu")
    with pytest.raises(ValueError, match="2-D"):
        landmark.landmark_isomap(X[:, 0], 10, device="cpu")


def test_transform_of_training_points_matches_embedding():
    X, _ = swiss_roll(1200)
    model = landmark.landmark_isomap(X, 80, n_neighbors=10, random_state=0, device="cpu")
    distances, indices = isogan.knn.kneighbors(X, X[:300], 10, device="cpu")
    scale = np.abs(model.embedding).max()
    transformed = landmark.transform_from_neighbors(model, (distances, indices), chunk_rows=128)
    np.testing.assert_allclose(transformed, model.embedding[:300], atol=1e-8 * scale)
    # Row 5 keeps only its first neighbour (itself): ragged rows, as a radius graph has.
    keep = np.ones((300, 10), dtype=bool)
    keep[5, 1:] = False
    counts = keep.sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    graph = sparse.csr_matrix((distances[keep], indices[keep], indptr), shape=(300, 1200))
    from_graph = landmark.transform_from_neighbors(model, graph)
    np.testing.assert_allclose(from_graph, model.embedding[:300], atol=1e-8 * scale)
    with pytest.raises(ValueError, match="columns"):
        landmark.transform_from_neighbors(model, sparse.csr_matrix((2, 5)))
    with pytest.raises(ValueError, match="no training neighbour"):
        landmark.transform_from_neighbors(model, sparse.csr_matrix((2, 1200)))
    with pytest.raises(ValueError, match="same shape"):
        landmark.transform_from_neighbors(model, (distances, indices[:, :3]))
    with pytest.raises(ValueError, match="outside"):
        landmark.transform_from_neighbors(model, (distances, indices + 1200))


# ------------------------------------------------------------------------------ estimator
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_estimator_all_landmarks_equals_exact(dtype):
    from isogan import Isomap

    X, _ = swiss_roll(500, dtype)
    exact = Isomap(n_neighbors=8).fit(X)
    landmarked = Isomap(n_neighbors=8, n_landmarks=500, random_state=0).fit(X)
    scale = np.abs(exact.embedding_).max()
    tolerance = 1e-7 if dtype == np.float64 else 2e-3
    assert landmarked.embedding_.dtype == dtype
    assert_equal_up_to_sign(landmarked.embedding_, exact.embedding_, atol=tolerance * scale)
    assert_equal_up_to_sign(landmarked.transform(X[:40]), exact.transform(X[:40]), atol=tolerance * scale)
    assert landmarked.reconstruction_error() == pytest.approx(exact.reconstruction_error(), rel=1e-4)
    assert not hasattr(landmarked, "dist_matrix_") and landmarked.landmark_index_.shape == (500,)


def test_estimator_landmarks_accuracy_transform_and_refit():
    from isogan import Isomap

    X, truth = swiss_roll(2000, np.float32)
    isomap = Isomap(n_neighbors=10, n_landmarks=80, random_state=0)
    embedding = isomap.fit_transform(X)
    assert residual_variance(embedding, truth) < 0.01
    np.testing.assert_allclose(isomap.transform(X[:100]), embedding[:100], atol=1e-4 * np.abs(embedding).max())
    assert set(isomap.timings_) >= {"knn", "landmarks", "paths", "mds"}
    again = Isomap(n_neighbors=10, n_landmarks=80, random_state=0).fit(X)
    np.testing.assert_array_equal(again.landmark_index_, isomap.landmark_index_)
    isomap.set_params(n_landmarks=None).fit(X[:300])
    assert hasattr(isomap, "dist_matrix_") and not hasattr(isomap, "landmark_model_")
    assert isomap.transform(X[:3]).shape == (3, 2)


def test_estimator_precomputed_input_uses_geodesic_maxmin():
    from sklearn.metrics import pairwise_distances

    from isogan import Isomap

    X, truth = swiss_roll(800)  # at 600 points k = 10 short-circuits the roll, even exactly
    distances = pairwise_distances(X)
    isomap = Isomap(n_neighbors=10, metric="precomputed", n_landmarks=40, random_state=0).fit(distances)
    assert residual_variance(isomap.embedding_, truth) < 0.01


def test_estimator_component_without_landmark_gets_one():
    from isogan import Isomap

    X, _ = swiss_roll(400)
    X_two = np.vstack([X, X[:30] + 1000.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        isomap = Isomap(n_neighbors=6, n_landmarks=20, landmark_method="random", random_state=0).fit(X_two)
    assert any("had no landmark" in str(w.message) for w in caught)
    assert np.all(np.isfinite(isomap.embedding_))
    assert np.any(isomap.landmark_index_ >= 400)


@pytest.mark.parametrize("params, match", [
    ({"n_landmarks": 2}, "n_landmarks >= n_components"),
    ({"n_landmarks": 101}, "n_landmarks <= n_samples"),
    ({"n_landmarks": 0}, "n_landmarks"),
    ({"n_landmarks": 10, "landmark_method": "kmeans"}, "landmark_method"),
])
def test_estimator_bad_landmark_parameters_raise(params, match):
    from isogan import Isomap

    X, _ = swiss_roll(100)
    with pytest.raises(ValueError, match=match):
        Isomap(n_neighbors=5, **params).fit(X)


# ------------------------------------------------------------------------------ command line
def test_cli_embed_input_out_of_core(tmp_path, capsys):
    from isogan.cli import main

    X, truth = swiss_roll(1500, np.float32)
    np.save(tmp_path / "big.npy", np.ascontiguousarray(X))
    status = main(["embed", "--input", str(tmp_path / "big.npy"), "--n-landmarks", "60", "--chunk-rows", "500",
                   "--out", str(tmp_path / "out"), "--device", "cpu", "--no-plot"])
    assert status == 0
    embedding = np.load(tmp_path / "out" / "embedding.npy")
    assert embedding.shape == (1500, 2) and residual_variance(embedding, truth) < 0.01
    assert main(["embed", "--input", str(tmp_path / "big.npy"), "--out", str(tmp_path / "o2"), "--no-plot"]) == 2
    assert "needs --n-landmarks" in capsys.readouterr().err
