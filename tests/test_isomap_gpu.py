"""Isomap(device='cuda') exact fit against the CPU fit (on a GPU), and the device dispatch and GPU
memory prediction (on the CPU)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

import isogan
from isogan import Isomap
from isogan._backend import memory, policy
from isogan import paths as paths_module
from tests.test_isomap import TOLERANCE, make_points, relative_max_error


def cuda(test):
    """Mark a test as needing a usable CUDA device (selected by ``-m cuda``, skipped without one)."""
    return pytest.mark.cuda(pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")(test))


def fit_recording_warnings(X: np.ndarray, **params) -> tuple[Isomap, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = Isomap(**params).fit(X)
    return model, [str(w.message) for w in caught]


# ----------------------------------------------------------------------------- dispatch (CPU)
@pytest.mark.skipif(isogan.cuda_available(), reason="needs a machine without a usable CUDA device")
def test_auto_without_gpu_gives_the_cpu_result_and_logs_why(caplog):
    X = make_points("swiss-roll", 120)
    caplog.set_level(logging.DEBUG, logger="isogan")
    auto = Isomap(n_neighbors=8, device="auto").fit(X)
    assert "device='auto' falls back to the CPU" in caplog.text
    assert policy.cuda_unavailable_reason() in caplog.text
    cpu = Isomap(n_neighbors=8, device="cpu").fit(X)
    np.testing.assert_array_equal(auto.embedding_, cpu.embedding_)
    np.testing.assert_array_equal(auto.dist_matrix_, cpu.dist_matrix_)
    assert "download" not in auto.timings_


@pytest.mark.skipif(isogan.cuda_available(), reason="needs a machine without a usable CUDA device")
def test_device_stage_functions_without_gpu_raise_runtime_error():
    graph = np.array([[0, 1.0], [1.0, 0]])
    with pytest.raises(RuntimeError, match="CUDA is not usable"):
        paths_module.geodesic_distances_device(graph)
    with pytest.raises(RuntimeError, match="CUDA is not usable"):
        isogan.geodesic_distances(graph, device="cuda")


# ----------------------------------------------------------------------------- memory prediction (CPU)
@pytest.mark.parametrize("path_method, paths_dominate", [("auto", True), ("FW", False)])
def test_device_fit_bytes_prediction(path_method, paths_dominate):
    n_samples, n_neighbors = 5000, 10
    square = n_samples * n_samples * 4
    n_edges = 2 * n_samples * n_neighbors
    paths = memory.paths_device_bytes(n_samples, n_edges, n_samples, 4, "FW" if path_method == "FW" else "D")
    eigensolver = square + memory.mds_device_product_bytes(n_samples, 2)
    assert memory.exact_fit_device_bytes(n_samples, n_neighbors, 2, 4, path_method) == max(paths, eigensolver)
    assert (paths >= eigensolver) == paths_dominate
    # 2 components: blocks of 8 vectors, padded to 16 float64 columns, input and product.
    assert memory.mds_device_product_bytes(n_samples, 2) == 2 * 8 * n_samples * 16
    assert memory.mds_device_product_bytes(n_samples, 9) == 2 * 8 * n_samples * 32


def test_fit_refused_when_the_gpu_cannot_hold_it(monkeypatch):
    monkeypatch.setattr(memory, "available_device_bytes", lambda: 123_456)
    model = Isomap(n_neighbors=8)
    with pytest.raises(MemoryError) as error:
        model._check_exact_fit_memory(400, np.dtype(np.float64), "cuda")
    message = str(error.value)
    needed = memory.exact_fit_device_bytes(400, 8, 2, 8, "auto")
    assert f"needs {needed:,} bytes" in message and "only 123,456 bytes" in message
    assert "free GPU memory" in message
    assert "float32" in message and "n_landmarks" in message and "device='cpu'" in message
    model._check_exact_fit_memory(400, np.dtype(np.float64), "cpu")  # the host check alone passes


# ----------------------------------------------------------------------------- on a GPU
@cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "name, n_neighbors", [("swiss-roll", 10), ("s-curve", 8), ("digits", 10), ("blobs", 12)]
)
def test_gpu_exact_fit_equals_cpu_fit(name, n_neighbors, dtype):
    X = make_points(name).astype(dtype)
    gpu, gpu_warnings = fit_recording_warnings(X, n_neighbors=n_neighbors, n_components=3, device="cuda")
    cpu, cpu_warnings = fit_recording_warnings(X, n_neighbors=n_neighbors, n_components=3, device="cpu")
    assert gpu_warnings == cpu_warnings  # same component joining
    assert isinstance(gpu.dist_matrix_, np.ndarray) and gpu.dist_matrix_.dtype == dtype
    assert isinstance(gpu.embedding_, np.ndarray) and gpu.embedding_.dtype == dtype
    assert "download" in gpu.timings_
    tolerance = TOLERANCE[dtype]
    assert relative_max_error(gpu.dist_matrix_, cpu.dist_matrix_) <= tolerance
    assert relative_max_error(gpu.embedding_, cpu.embedding_) <= tolerance
    assert relative_max_error(gpu.kernel_pca_.eigenvalues_, cpu.kernel_pca_.eigenvalues_) <= tolerance
    assert relative_max_error(gpu.kernel_pca_.eigenvectors_, cpu.kernel_pca_.eigenvectors_) <= 10 * tolerance
    new = X[:25] + 0.05
    assert relative_max_error(gpu.transform(new), cpu.transform(new)) <= tolerance


@cuda
@pytest.mark.parametrize("path_method", ["FW", "D"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_path_methods_equal_cpu_fit(path_method, dtype):
    X = make_points("swiss-roll", 400).astype(dtype)
    gpu = Isomap(n_neighbors=10, path_method=path_method, device="cuda").fit(X)
    cpu = Isomap(n_neighbors=10, device="cpu").fit(X)
    assert relative_max_error(gpu.dist_matrix_, cpu.dist_matrix_) <= TOLERANCE[dtype]
    assert relative_max_error(gpu.embedding_, cpu.embedding_) <= TOLERANCE[dtype]


@cuda
def test_gpu_fit_keeps_the_geodesic_matrix_in_a_device_array(monkeypatch, mds_inputs):
    # The eigensolver must receive isogan's own DeviceArray (no torch/CuPy, no host N x N copy).
    X = make_points("swiss-roll", 200)
    gpu = Isomap(n_neighbors=10, device="cuda").fit(X)
    assert len(mds_inputs) == 1 and isinstance(mds_inputs[0], isogan.DeviceArray)
    assert mds_inputs[0].shape == (200, 200)
    monkeypatch.undo()
    cpu = Isomap(n_neighbors=10, device="cpu").fit(X)
    assert relative_max_error(gpu.embedding_, cpu.embedding_) <= TOLERANCE[np.float64]


@cuda
def test_classical_mds_reads_a_device_array_in_place():
    X = make_points("s-curve", 250)
    cpu = Isomap(n_neighbors=8, device="cpu").fit(X)
    device_matrix = isogan.DeviceArray.from_host(cpu.dist_matrix_)
    embedding, eigenvalues, _ = isogan.classical_mds(device_matrix, n_components=2, device="cuda")
    assert isinstance(embedding, isogan.DeviceArray)
    assert relative_max_error(embedding.to_host(), cpu.embedding_) <= TOLERANCE[np.float64]
    assert relative_max_error(eigenvalues.to_host(), cpu.kernel_pca_.eigenvalues_) <= TOLERANCE[np.float64]
