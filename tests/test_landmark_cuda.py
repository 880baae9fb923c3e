"""GPU landmark Isomap end to end: device policy without a GPU (CPU), GPU == CPU (GPU)."""

import logging

import numpy as np
import pytest
from sklearn.datasets import make_swiss_roll

import isogan
from isogan import Isomap, landmark
from isogan.connect import connect_components

needs_gpu = pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")
needs_no_gpu = pytest.mark.skipif(isogan.cuda_available(), reason="checks the behaviour without a usable GPU")


def swiss_roll(n_samples, dtype=np.float64, seed=0):
    X, _ = make_swiss_roll(n_samples, random_state=seed)
    return X.astype(dtype)


def two_rolls(dtype=np.float64):
    """Two far-apart swiss rolls: a disconnected 5-NN graph."""
    X = swiss_roll(300, dtype)
    return np.vstack([X, X[:200] + 1000]).astype(dtype)


def assert_close(actual, expected, dtype):
    assert actual.dtype == expected.dtype
    scale = np.abs(expected).max()
    rtol = 1e-3 if dtype == np.float32 else 1e-6
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


# ------------------------------------------------------------------------------ without a GPU (CPU)
@needs_no_gpu
def test_auto_without_gpu_gives_the_cpu_result_and_says_why(caplog):
    X = swiss_roll(400)
    with caplog.at_level(logging.DEBUG, logger="isogan"):
        auto = Isomap(n_neighbors=8, n_landmarks=40, random_state=0, device="auto").fit(X)
    assert any("falls back to the CPU" in record.getMessage() and record.levelno == logging.DEBUG
               for record in caplog.records)
    cpu = Isomap(n_neighbors=8, n_landmarks=40, random_state=0, device="cpu").fit(X)
    np.testing.assert_array_equal(auto.embedding_, cpu.embedding_)
    np.testing.assert_array_equal(auto.transform(X[:20]), cpu.transform(X[:20]))
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="isogan"):
        model = landmark.landmark_isomap(X, 40, n_neighbors=8, random_state=0, device="auto")
    assert any("falls back to the CPU" in record.getMessage() for record in caplog.records)
    np.testing.assert_array_equal(model.embedding, cpu.embedding_)


@needs_no_gpu
def test_cuda_without_gpu_raises_with_the_reason():
    X = swiss_roll(200)
    reason = isogan._backend.policy.cuda_unavailable_reason()
    with pytest.raises(RuntimeError, match="CUDA is not usable") as error:
        Isomap(n_neighbors=8, n_landmarks=20, device="cuda").fit(X)
    assert reason in str(error.value)
    with pytest.raises(RuntimeError, match="device='cpu'"):
        landmark.landmark_isomap(X, 20, n_neighbors=8, device="cuda")
    graph = isogan.knn.knn_graph(X, n_neighbors=8, mode="distance", device="cpu")
    with pytest.raises(RuntimeError, match="CUDA is not usable"):
        landmark.fit_landmark_model(graph, 20, points=X, device="cuda")
    model = landmark.fit_landmark_model(graph, 20, points=X, device="cpu")
    distances, indices = isogan.knn.kneighbors(X, X[:5], 3, device="cpu")
    with pytest.raises(RuntimeError, match="CUDA is not usable"):
        landmark.transform_from_neighbors(model, (distances, indices), device="cuda")


# ------------------------------------------------------------------------------ on a GPU
@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("landmark_method", ["maxmin", "random"])
def test_gpu_estimator_equals_cpu(dtype, landmark_method):
    X = swiss_roll(1500, dtype)
    params = dict(n_neighbors=10, n_landmarks=120, landmark_method=landmark_method, random_state=0)
    cpu = Isomap(device="cpu", **params).fit(X)
    gpu = Isomap(device="cuda", **params).fit(X)
    np.testing.assert_array_equal(gpu.landmark_index_, cpu.landmark_index_)
    np.testing.assert_allclose(gpu.landmark_model_.landmark_geodesic, cpu.landmark_model_.landmark_geodesic,
                               rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(gpu.embedding_, cpu.embedding_, dtype)
    assert np.isfinite(gpu.embedding_).all()
    assert_close(gpu.transform(X[:300] + 0.01), cpu.transform(X[:300] + 0.01), dtype)
    auto = Isomap(device="auto", **params).fit(X)
    assert_close(auto.embedding_, gpu.embedding_, dtype)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_disconnected_graph_adds_landmarks_like_cpu(dtype):
    X = two_rolls(dtype)
    # Random landmarks drawn from the first roll only would leave the second without one.
    params = dict(n_neighbors=5, n_landmarks=30, random_state=0)
    with pytest.warns(UserWarning) as cpu_warnings:
        cpu = Isomap(device="cpu", **params).fit(X)
    with pytest.warns(UserWarning) as gpu_warnings:
        gpu = Isomap(device="cuda", **params).fit(X)
    assert [str(w.message) for w in gpu_warnings] == [str(w.message) for w in cpu_warnings]
    np.testing.assert_array_equal(gpu.landmark_index_, cpu.landmark_index_)
    assert np.isfinite(gpu.embedding_).all()
    assert_close(gpu.embedding_, cpu.embedding_, dtype)


@pytest.mark.cuda
@needs_gpu
def test_gpu_component_without_landmark_gets_one_like_cpu():
    X = two_rolls()
    graph = isogan.knn.knn_graph(X, n_neighbors=5, mode="distance", device="cpu")
    labels = np.r_[np.zeros(300, dtype=np.int64), np.ones(200, dtype=np.int64)]
    with pytest.warns(UserWarning, match="connected components"):
        joined, joined_labels = connect_components(graph, X)
    np.testing.assert_array_equal(joined_labels, labels)
    # Point 499 alone in a third component: 3 random landmarks (seed 0) miss it.
    labels[499] = 2
    options = dict(points=X, landmark_method="random", random_state=0, component_labels=labels)
    with pytest.warns(UserWarning, match="had no landmark"):
        cpu = landmark.fit_landmark_model(joined, 3, device="cpu", **options)
    with pytest.warns(UserWarning, match="had no landmark"):
        gpu = landmark.fit_landmark_model(joined, 3, device="cuda", **options)
    np.testing.assert_array_equal(gpu.landmark_index, cpu.landmark_index)
    assert 499 in gpu.landmark_index and np.isfinite(gpu.embedding).all()
    assert_close(gpu.embedding, cpu.embedding, np.float64)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_out_of_core_equals_cpu_out_of_core(tmp_path, dtype):
    X = swiss_roll(2000, dtype)
    path = tmp_path / "points.npy"
    np.save(path, X)
    options = dict(n_neighbors=8, random_state=0, chunk_rows=300)
    cpu = landmark.landmark_isomap(path, 80, device="cpu", **options)
    gpu = landmark.landmark_isomap(path, 80, device="cuda", **options)
    memmap = landmark.landmark_isomap(np.load(path, mmap_mode="r"), 80, device="cuda", **options)
    np.testing.assert_array_equal(gpu.landmark_index, cpu.landmark_index)
    assert_close(gpu.embedding, cpu.embedding, dtype)
    np.testing.assert_array_equal(memmap.landmark_index, gpu.landmark_index)
    assert_close(memmap.embedding, gpu.embedding, dtype)


@pytest.mark.cuda
@needs_gpu
def test_gpu_precomputed_input_uses_geodesic_maxmin():
    from sklearn.metrics import pairwise_distances

    X = swiss_roll(500)
    D = pairwise_distances(X)
    cpu = Isomap(n_neighbors=8, n_landmarks=30, metric="precomputed", random_state=0, device="cpu").fit(D)
    gpu = Isomap(n_neighbors=8, n_landmarks=30, metric="precomputed", random_state=0, device="cuda").fit(D)
    np.testing.assert_array_equal(gpu.landmark_index_, cpu.landmark_index_)
    assert_close(gpu.embedding_, cpu.embedding_, np.float64)


@pytest.mark.cuda
@needs_gpu
def test_gpu_memory_error_names_bytes_and_next_fit_works(monkeypatch):
    from isogan._backend import memory

    X = swiss_roll(800)
    monkeypatch.setattr(memory, "available_device_bytes", lambda: 1000)
    with pytest.raises(MemoryError, match="1,000 bytes") as error:
        Isomap(n_neighbors=8, n_landmarks=50, device="cuda").fit(X)
    assert "device='cpu'" in str(error.value)
    monkeypatch.undo()
    assert np.isfinite(Isomap(n_neighbors=8, n_landmarks=50, device="cuda").fit_transform(X)).all()


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_streamed_knn_when_points_do_not_fit(monkeypatch, dtype):
    from isogan import _core
    from isogan._backend import cuda_landmark as _landmark_cuda
    from isogan._backend import memory
    from isogan._knn_checks import _EUCLIDEAN

    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(size=(600, 200)), np.zeros((30, 200)), rng.integers(0, 2, size=(70, 200))]).astype(dtype)
    monkeypatch.setattr(memory, "available_device_bytes", lambda: X.nbytes // 2)
    graph, resident = _landmark_cuda.knn_graph_cuda(X, 8, _EUCLIDEAN, 2.0, dtype, n_landmarks=40, n_components=2,
                                                    chunk_rows=100)
    assert resident is None
    expected_distances, expected_indices = _core.knn_kneighbors(X, X, 8, _EUCLIDEAN, 2.0, True, 1)
    np.testing.assert_array_equal(graph.indices.reshape(700, 8), expected_indices)
    np.testing.assert_array_equal(graph.data.reshape(700, 8), expected_distances)
    model = landmark.landmark_isomap(X, 40, n_neighbors=8, random_state=0, device="cuda")
    assert np.unique(model.landmark_index).size == 40 and np.isfinite(model.embedding).all()
