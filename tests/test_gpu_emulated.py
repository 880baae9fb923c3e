"""The Python side of the GPU exact chain, run on the CPU against an emulated device.

No GPU is needed: ``isogan.DeviceArray`` is replaced by a numpy-backed stand-in with the same
interface (``__cuda_array_interface__``, ``from_host``, ``to_host``, ``copy_to``) and every CUDA entry
point the chain calls by a CPU twin that checks its arguments (shapes, dtypes, pointers) and computes
the same result with isogan's CPU kernels. This exercises the orchestration that otherwise first
runs on a GPU machine: allocation sizes, pointer plumbing, method choice, the device-resident hand-off
from shortest paths to the eigensolver and the single copy to ``dist_matrix_``. The kernels
themselves are tested on a GPU by tests/test_isomap_gpu.py and tests/native/test_paths_gpu.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path
from sklearn import datasets
from sklearn.neighbors import kneighbors_graph

import isogan
from isogan import Isomap, _core
from isogan._backend import arrays as _arrays
from isogan._backend import cuda_paths
from isogan import paths as paths_module
from tests.test_isomap import TOLERANCE, relative_max_error


class EmulatedDeviceArray:
    """A numpy-backed stand-in for isogan.DeviceArray; its 'device pointer' is the host address."""

    registry: dict[int, np.ndarray] = {}
    allocations: list[tuple[tuple[int, ...], np.dtype]] = []

    def __init__(self, shape, dtype, stream: int = 0) -> None:
        dtype = np.dtype(dtype)
        # Uninitialised device memory: NaN (floats) or a byte pattern, so unwritten entries show.
        fill = np.nan if dtype.kind == "f" else 0x5A
        self._data = np.full(tuple(int(extent) for extent in shape), fill, dtype=dtype)
        self.stream = int(stream)
        EmulatedDeviceArray.registry[self.pointer] = self._data
        EmulatedDeviceArray.allocations.append((self._data.shape, dtype))

    @staticmethod
    def from_host(host: np.ndarray, stream: int = 0) -> "EmulatedDeviceArray":
        assert host.flags.c_contiguous
        array = EmulatedDeviceArray(host.shape, host.dtype, stream)
        array._data[...] = host
        return array

    pointer = property(lambda self: int(self._data.ctypes.data) if self._data.size else 0)
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    nbytes = property(lambda self: self._data.nbytes)
    size = property(lambda self: self._data.size)
    ndim = property(lambda self: self._data.ndim)

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.pointer, False), "strides": None,
                "version": 3, "stream": self.stream or 1}

    def to_host(self) -> np.ndarray:
        return self._data.copy()

    def copy_to(self, out: np.ndarray) -> None:
        assert out.flags.c_contiguous and out.shape == self.shape and out.dtype == self.dtype
        out[...] = self._data


def _at(pointer: int, shape: tuple[int, ...], dtype: str | np.dtype) -> np.ndarray:
    """The emulated device array at ``pointer``, checked against the shape and dtype the caller claims."""
    if int(np.prod(shape)) == 0:
        return np.empty(shape, dtype=dtype)
    array = EmulatedDeviceArray.registry[pointer]
    assert array.shape == tuple(shape) or array.size == int(np.prod(shape)), (array.shape, shape)
    assert array.dtype == np.dtype(dtype), (array.dtype, dtype)
    return array.reshape(shape)


def _check_dtype(dtype) -> None:
    """The native device-pointer entries take the element type as a numpy.dtype (and refuse anything else)."""
    assert isinstance(dtype, np.dtype), dtype


def _sources_per_batch(n_nodes: int, n_sources: int, flag_budget_bytes: int) -> int:
    """The batch the native call takes, read back from its own scratch arithmetic (csrc/paths/paths.h)."""
    scratch = _core.paths_shortest_paths_cuda_scratch_bytes(n_nodes, n_sources, flag_budget_bytes)
    return (scratch - 4) // (2 * max(n_nodes, 1))


def _shortest_paths(indptr, indices, weights, n_nodes, sources, n_sources, out, dtype, stream,
                    flag_budget_bytes=_core.PATHS_FLAG_BUDGET_BYTES):
    _check_dtype(dtype)
    offsets = _at(indptr, (n_nodes + 1,), np.int64)
    nnz = int(offsets[-1])
    graph = (offsets, _at(indices, (nnz,), np.int32), _at(weights, (nnz,), dtype))
    rows, all_sources = _at(out, (n_sources, n_nodes), dtype), _at(sources, (n_sources,), np.int64)
    batch = _sources_per_batch(n_nodes, n_sources, flag_budget_bytes)
    for first in range(0, n_sources, batch):
        _core.paths_dijkstra(*graph, all_sources[first : first + batch], rows[first : first + batch], 0)
        _shortest_paths.batches += 1


_shortest_paths.batches = 0


def _csr_floyd_start(indptr, indices, weights, n_nodes, dist, dtype, stream):
    _check_dtype(dtype)
    offsets = _at(indptr, (n_nodes + 1,), np.int64)
    nnz = int(offsets[-1])
    start = _at(dist, (n_nodes, n_nodes), dtype)
    start[...] = np.inf
    rows = np.repeat(np.arange(n_nodes), np.diff(offsets))
    start[rows, _at(indices, (nnz,), np.int32)] = _at(weights, (nnz,), dtype)
    np.fill_diagonal(start, 0)


def _floyd_warshall(dist, n, dtype, stream, from_dense_graph=False):
    _check_dtype(dtype)
    assert not from_dense_graph
    _core.paths_floyd_warshall(_at(dist, (n, n), dtype), 0)


def _centered_matmul(dist, n, dtype, block, stream):
    _check_dtype(dtype)
    return _core.mds_centered_kernel_matmul(_at(dist, (n, n), dtype), block, 0)


def _squared_matmul(dist, n_rows, n_cols, dtype, block, stream):
    _check_dtype(dtype)
    return _core.mds_squared_matmul(_at(dist, (n_rows, n_cols), dtype), block, 0)


def _row_means(dist, n_rows, n_cols, dtype, stream):
    _check_dtype(dtype)
    return _core.mds_squared_row_means(_at(dist, (n_rows, n_cols), dtype), 0)


def _symmetry(dist, n, dtype, stream):
    _check_dtype(dtype)
    return _core.mds_symmetry_report(_at(dist, (n, n), dtype), 0)


def _knn_cuda(queries, points, n_neighbors, metric, p, exclude_self):
    return _core.knn_kneighbors(queries, points, n_neighbors, metric, p, exclude_self, 0)


@pytest.fixture
def emulated_gpu(monkeypatch):
    """Make isogan believe a GPU is there, backed by the CPU twins above."""
    EmulatedDeviceArray.registry.clear()
    EmulatedDeviceArray.allocations.clear()
    _shortest_paths.batches = 0
    status = {"available": True, "reason": "", "device_count": 1, "driver_version": 13000, "runtime_version": 13000}
    fakes = {
        "cuda_status": lambda: status,
        "cuda_memory_info": lambda: (1 << 40, 1 << 40),
        "paths_shortest_paths_cuda": _shortest_paths,
        "paths_csr_floyd_start_cuda": _csr_floyd_start,
        "paths_floyd_warshall_cuda": _floyd_warshall,
        "mds_centered_kernel_matmul_cuda": _centered_matmul,
        "mds_squared_matmul_cuda": _squared_matmul,
        "mds_squared_row_means_cuda": _row_means,
        "mds_symmetry_report_cuda": _symmetry,
        "knn_kneighbors_cuda_host": _knn_cuda,
    }
    for name, fake in fakes.items():
        monkeypatch.setattr(_core, name, fake, raising=False)
    monkeypatch.setattr(_arrays, "DeviceArray", EmulatedDeviceArray)
    monkeypatch.setattr(paths_module, "DeviceArray", EmulatedDeviceArray)
    monkeypatch.setattr(cuda_paths, "DeviceArray", EmulatedDeviceArray)
    return EmulatedDeviceArray


def swiss_roll_graph(n_samples: int, n_neighbors: int, dtype) -> sp.csr_matrix:
    X = datasets.make_swiss_roll(n_samples, random_state=0)[0].astype(dtype)
    return kneighbors_graph(X, n_neighbors, mode="distance").astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["auto", "FW", "D"])
def test_host_graph_on_the_emulated_gpu_matches_scipy(emulated_gpu, method, dtype):
    blocks = [swiss_roll_graph(150, 6, dtype), swiss_roll_graph(40, 4, dtype)]
    graph = sp.block_diag(blocks, format="csr").astype(dtype)
    result = isogan.geodesic_distances(graph, method, device="cuda")
    assert isinstance(result, np.ndarray) and result.dtype == dtype
    reference = shortest_path(graph, directed=False)
    np.testing.assert_array_equal(np.isinf(result), np.isinf(reference))
    finite = np.isfinite(reference)
    np.testing.assert_allclose(result[finite], reference[finite], rtol=1e-5 if dtype == np.float32 else 1e-12)
    # One (N, N) output allocation of the graph's dtype, besides the O(E) uploads.
    square = [shape for shape, allocated in emulated_gpu.allocations if shape == (190, 190)]
    assert square == [(190, 190)]
    rows = isogan.geodesic_distances(graph, method, indices=[3, -1], device="cuda")
    np.testing.assert_allclose(rows, result[[3, -1]], rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_device_result_stays_a_device_array(emulated_gpu):
    graph = swiss_roll_graph(120, 6, np.float32)
    result = paths_module.geodesic_distances_device(graph, "D")
    assert isinstance(result, emulated_gpu) and result.shape == (120, 120) and result.dtype == np.float32
    np.testing.assert_allclose(result.to_host(), shortest_path(graph, directed=False), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_flag_budget_batches_sources_on_the_emulated_gpu(emulated_gpu, dtype):
    # 2 * 130 * 7 bytes of flags: 7 sources a batch, so 130 sources run in 19 batches, the last ragged.
    graph = swiss_roll_graph(130, 6, dtype)
    symmetric = paths_module.as_symmetric_csr(graph)
    result = cuda_paths.geodesic_on_device(symmetric, "D", None, emulated_gpu, flag_budget_bytes=2 * 130 * 7)
    assert _shortest_paths.batches == 19
    np.testing.assert_allclose(result.to_host(), shortest_path(graph, directed=False),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)
    with pytest.raises(ValueError, match="flag_budget_bytes"):
        _core.paths_shortest_paths_cuda_scratch_bytes(130, 130, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("path_method", ["auto", "FW", "D"])
def test_isomap_on_the_emulated_gpu_equals_the_cpu_fit(emulated_gpu, mds_inputs, path_method, dtype):
    X = datasets.make_swiss_roll(300, random_state=0)[0].astype(dtype)
    gpu = Isomap(n_neighbors=10, n_components=3, path_method=path_method, device="cuda").fit(X)
    assert len(mds_inputs) == 1 and isinstance(mds_inputs[0], emulated_gpu)  # read in place, no host N x N
    assert "download" in gpu.timings_
    cpu = Isomap(n_neighbors=10, n_components=3, path_method=path_method, device="cpu").fit(X)
    assert isinstance(gpu.dist_matrix_, np.ndarray) and gpu.dist_matrix_.dtype == dtype
    assert gpu.embedding_.dtype == dtype and not np.isnan(gpu.embedding_).any()
    tolerance = TOLERANCE[dtype]
    assert relative_max_error(gpu.dist_matrix_, cpu.dist_matrix_) <= tolerance
    assert relative_max_error(gpu.embedding_, cpu.embedding_) <= tolerance
    assert relative_max_error(gpu.kernel_pca_.eigenvalues_, cpu.kernel_pca_.eigenvalues_) <= tolerance
    new = X[:20] + 0.05
    assert relative_max_error(gpu.transform(new), cpu.transform(new)) <= tolerance


def test_disconnected_graph_joined_on_the_host_before_the_emulated_gpu(emulated_gpu):
    X = datasets.make_blobs(200, n_features=3, centers=2, cluster_std=0.3, center_box=(-50, 50), random_state=0)[0]
    with warnings.catch_warnings(record=True) as gpu_warnings:
        warnings.simplefilter("always")
        gpu = Isomap(n_neighbors=5, device="cuda").fit(X)
    with warnings.catch_warnings(record=True) as cpu_warnings:
        warnings.simplefilter("always")
        cpu = Isomap(n_neighbors=5, device="cpu").fit(X)
    assert [str(w.message) for w in gpu_warnings] == [str(w.message) for w in cpu_warnings]
    assert any("connected components" in str(w.message) for w in gpu_warnings)
    assert np.isfinite(gpu.dist_matrix_).all()
    assert relative_max_error(gpu.embedding_, cpu.embedding_) <= 1e-6


def test_small_fit_with_the_dense_eigensolver_on_the_emulated_gpu(emulated_gpu):
    # N <= 256: the 'dense' solver copies the matrix to the host once (the one allowed exception).
    X = datasets.make_s_curve(120, random_state=1)[0]
    gpu = Isomap(n_neighbors=8, device="cuda").fit(X)
    cpu = Isomap(n_neighbors=8, device="cpu").fit(X)
    assert relative_max_error(gpu.embedding_, cpu.embedding_) <= 1e-6


def test_emulated_gpu_memory_refused_before_allocation(emulated_gpu, monkeypatch):
    X = datasets.make_swiss_roll(300, random_state=0)[0]
    monkeypatch.setattr(_core, "cuda_memory_info", lambda: (300 * 300 * 8, 1 << 40))
    with pytest.raises(MemoryError, match="free GPU memory") as error:
        Isomap(n_neighbors=10, device="cuda").fit(X)
    assert "device='cpu'" in str(error.value)
    assert not [shape for shape, _ in emulated_gpu.allocations if shape == (300, 300)]
    monkeypatch.setattr(_core, "cuda_memory_info", lambda: (1 << 40, 1 << 40))
    assert Isomap(n_neighbors=10, device="cuda").fit(X).embedding_.shape == (300, 2)


# ------------------------------------------- regressions found on the H200 run (2026-12-04)
def test_estimator_makes_strided_gpu_input_contiguous_once():
    # make_swiss_roll returns a Fortran-ordered array; torch.from_numpy(X).cuda() kept its strides
    # and the fit refused it. The estimator now copies such input once on its device (as
    # check_array does on the host), while the native views still refuse strides.
    torch = pytest.importorskip("torch")
    fortran = torch.from_numpy(np.asfortranarray(np.arange(12.0).reshape(4, 3)))
    assert not fortran.is_contiguous()
    contiguous = _arrays.as_c_contiguous_device(fortran)
    assert contiguous.is_contiguous() and torch.equal(contiguous, fortran)
    assert _arrays.as_c_contiguous_device(contiguous) is contiguous


def test_device_csr_from_torch_does_not_warn():
    # torch 2.11 nags ("Sparse invariant checks are implicitly disabled") on every sparse CSR
    # construction; the kNN graph of torch input must not warn.
    torch = pytest.importorskip("torch")
    from isogan._backend.cuda_knn import device_csr

    indptr, indices, data = torch.tensor([0, 1, 2]), torch.tensor([1, 0]), torch.tensor([0.5, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = device_csr(data, indptr, indices, data, (2, 2))
    np.testing.assert_array_equal(graph.to_dense().numpy(), [[0.0, 0.5], [0.5, 0.0]])
