"""GPU landmark pipeline: the memory model and host-side pieces (CPU), the device kernels (GPU)."""

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

import isogan
from isogan import _core
from isogan import _landmark_choice
from isogan._backend import cuda_landmark as lc
from isogan._backend import memory as memory_module
from isogan._knn_checks import _EUCLIDEAN, _MANHATTAN

needs_gpu = pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")


# ------------------------------------------------------------------------------ memory model (CPU)
def test_paths_scratch_mirrors_the_kernel_batching():
    # 1 GiB of two flag arrays: 2**30 / (2 * 1e6) = 536 sources per batch.
    assert memory_module.paths_scratch_bytes(1_000_000, 2000) == 2 * 536 * 1_000_000 + 4
    assert memory_module.paths_scratch_bytes(1000, 50) == 2 * 50 * 1000 + 4
    # More nodes than the budget holds for one source: still one source per batch.
    assert memory_module.paths_scratch_bytes(2**30, 10) == 2 * 2**30 + 4
    # A smaller budget (what a test passes to reach the batched branch): 2 * 1000 * 7 bytes, 7 sources.
    assert memory_module.paths_scratch_bytes(1000, 50, 2 * 1000 * 7) == 2 * 7 * 1000 + 4
    assert memory_module.GPU_PATHS_FLAG_BUDGET_BYTES == 2**30
    assert memory_module.GPU_MIN_PLUS_QUERIES_PER_LAUNCH == 65535


def test_maxmin_pool_is_all_points_until_the_traffic_budget():
    assert memory_module.maxmin_pool_size(100_000, 3, 1000, 4) == 100_000
    # 1M x 784 float32, L = 1000: 16 GiB / (784 * 4 * 1000) candidates.
    assert memory_module.maxmin_pool_size(1_000_000, 784, 1000, 4) == 16 * 2**30 // (784 * 4 * 1000)
    # Never fewer candidates than landmarks.
    assert memory_module.maxmin_pool_size(10_000_000, 784, 8000, 8) == 8000


def test_predict_fit_device_bytes_arithmetic():
    n, d, k, L, c, s = 1000, 3, 10, 50, 2, 8
    bytes_ = memory_module.predict_fit_device_bytes(n, d, k, L, c, s)
    points = n * d * s
    assert bytes_.knn == points + n * (k + 1) * (s + 8 + 8)
    assert bytes_.maxmin == points + n * 8 + L * 8 + 1024 * 16
    graph = (n + 1) * 8 + 2 * n * k * (4 + s)
    rows = L * n * s
    assert bytes_.paths == graph + L * 8 + rows + (2 * L * n + 4)
    assert bytes_.triangulation == rows + c * L * 8 + L * 8 + n * c * s
    assert bytes_.peak == max(bytes_.knn, bytes_.maxmin, bytes_.paths, bytes_.triangulation)
    # Fewer query rows per kNN launch hold fewer results on the device.
    small_blocks = memory_module.predict_fit_device_bytes(n, d, k, L, c, s, query_block_rows=64)
    assert small_blocks.knn == points + 64 * (k + 1) * (s + 8 + 8)


def test_predict_fit_device_bytes_at_target_scale():
    # N = 10M x 64 float32, k = 10, L = 1000: the (L, N) rows dominate (40 GB).
    n, d, k, L = 10_000_000, 64, 10, 1000
    bytes_ = memory_module.predict_fit_device_bytes(n, d, k, L, 2, 4)
    assert bytes_.knn == n * d * 4 + (1 << 19) * (k + 1) * 20
    rows = L * n * 4
    assert bytes_.peak == bytes_.paths
    assert rows < bytes_.paths < rows + 3 * 10**9
    # Options: known edge count, no MaxMin on the device, kNN elsewhere, measured scratch.
    custom = memory_module.predict_fit_device_bytes(n, d, k, L, 2, 4, n_edges=123, maxmin_candidates=0, knn_on_device=False,
                                         scratch_bytes=7)
    assert custom.knn == 0 and custom.maxmin == 0
    assert custom.paths == (n + 1) * 8 + 123 * 8 + L * 8 + rows + 7


def test_check_fit_device_memory_names_bytes_and_remedy():
    prediction = memory_module.predict_fit_device_bytes(100_000, 3, 10, 1000, 2, 8)
    with pytest.raises(MemoryError) as error:
        memory_module.check_fit_device_memory(prediction, 100_000, 1000, np.dtype(np.float64), free_bytes=10**8)
    message = str(error.value)
    assert f"{prediction.peak:,} bytes" in message and f"{10**8:,} bytes" in message
    assert "fewer landmarks" in message and "float32" in message and "device='cpu'" in message
    assert "shortest paths" in message
    # float32 input: the remedy does not suggest float32 again.
    prediction32 = memory_module.predict_fit_device_bytes(100_000, 3, 10, 1000, 2, 4)
    with pytest.raises(MemoryError, match="fewer landmarks") as error:
        memory_module.check_fit_device_memory(prediction32, 100_000, 1000, np.dtype(np.float32), free_bytes=10**8)
    assert "float32" not in str(error.value).split("free.")[1]
    memory_module.check_fit_device_memory(prediction, 100_000, 1000, np.dtype(np.float64), free_bytes=prediction.peak)


def test_streamed_chunk_rows_and_prediction():
    # 1M x 784 float32, k = 10, 1 GB free: half of it over 2 * 784 * 4 + 11 * 20 bytes per row.
    rows = memory_module.streamed_chunk_rows(1_000_000, 784, 10, 4, 10**9)
    assert rows == (10**9 // 2) // (2 * 784 * 4 + 11 * 20)
    assert memory_module.streamed_chunk_rows(100, 3, 10, 8, 10**12) == 100
    assert memory_module.streamed_chunk_rows(100, 3, 10, 8, 0) == 11
    streamed = memory_module.predict_fit_device_bytes(1_000_000, 784, 10, 100, 2, 4, knn_chunk_rows=rows)
    assert streamed.knn == 2 * rows * 784 * 4 + rows * 11 * 20 <= 10**9 // 2
    # The MaxMin pool also fits in half the free memory when a free size is given.
    assert memory_module.maxmin_pool_size(1_000_000, 784, 10, 4, free_bytes=10**9) == (10**9 // 2) // (784 * 4 + 8)
    assert memory_module.maxmin_pool_size(1_000_000, 784, 100, 4, free_bytes=10**9) == 16 * 2**30 // (784 * 4 * 100)
    assert memory_module.maxmin_pool_size(1000, 784, 100, 4, free_bytes=0) == 100


def test_transform_chunk_rows():
    assert memory_module.transform_chunk_rows(1000, 10, 4, 65536) == 2**30 // 40000
    assert memory_module.transform_chunk_rows(10, 5, 8, 100) == 100
    assert memory_module.transform_chunk_rows(10**9, 10**3, 8, 100) == 1


# ------------------------------------------------------------------------------ host-side kNN pieces (CPU)
def _drop_self_oracle(indices, distances, first_row, k):
    kept_index, kept_distance = [], []
    for row, (found, found_distance) in enumerate(zip(indices, distances)):
        pairs = [(i, d) for i, d in zip(found, found_distance) if i != first_row + row][:k]
        kept_index.append([i for i, _ in pairs])
        kept_distance.append([d for _, d in pairs])
    return np.array(kept_index), np.array(kept_distance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", [_EUCLIDEAN, _MANHATTAN])
def test_k_plus_one_search_then_drop_self_equals_exclude_self(dtype, metric):
    rng = np.random.default_rng(0)
    # Duplicates (rows 0..9 equal, more than k + 1 of them) and ties on a grid.
    X = np.vstack([np.zeros((10, 3)), rng.integers(0, 3, size=(60, 3)), rng.normal(size=(50, 3))]).astype(dtype)
    k = 4
    expected_distances, expected_indices = _core.knn_kneighbors(X, X, k, metric, 2.0, True, 1)
    for first, stop in [(0, 120), (0, 37), (37, 120)]:
        distances, indices = _core.knn_kneighbors(X[first:stop], X, k + 1, metric, 2.0, False, 1)
        kept_indices, kept_distances = lc.drop_self(indices, distances, first)
        np.testing.assert_array_equal(kept_indices, expected_indices[first:stop])
        np.testing.assert_array_equal(kept_distances, expected_distances[first:stop])
        oracle_indices, oracle_distances = _drop_self_oracle(indices, distances, first, k)
        np.testing.assert_array_equal(kept_indices, oracle_indices)
        np.testing.assert_array_equal(kept_distances, oracle_distances)


def test_rows_of_reads_the_indexed_rows_block_by_block():
    X = np.arange(30.0).reshape(10, 3)
    rows = _landmark_choice._RowsOf(X, np.array([1, 4, 7, 9]))
    assert rows.shape == (4, 3) and rows.dtype == X.dtype
    np.testing.assert_array_equal(rows[1:3], X[[4, 7]])


def test_device_buffer_is_bound_only_with_cuda():
    assert hasattr(_core, "LandmarkDeviceBuffer") == isogan.cuda_built()


# ------------------------------------------------------------------------------ device kernels (GPU)
def _points(dtype, n=500, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
@needs_gpu
def test_device_buffer_round_trip_and_bounds(dtype):
    host = _points(dtype)
    buffer = lc._upload(host, "test")
    assert buffer.nbytes == host.nbytes
    back = np.empty_like(host)
    buffer.download(back, 0)
    np.testing.assert_array_equal(back, host)
    part = np.empty((10, 4), dtype=dtype)
    buffer.download(part, 5 * 4 * host.itemsize)
    np.testing.assert_array_equal(part, host[5:15])
    with pytest.raises(ValueError, match="overruns"):
        buffer.upload(np.empty((501, 4), dtype=dtype), 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        buffer.download(np.empty((4, 500), dtype=dtype).T, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
@needs_gpu
def test_maxmin_cuda_matches_cpu(dtype):
    rng = np.random.default_rng(1)
    # Random points plus duplicates and grid ties.
    X = np.vstack([rng.normal(size=(300, 5)), np.zeros((20, 5)), rng.integers(0, 2, size=(80, 5))]).astype(dtype)
    resident = lc.upload_points(X, 64, np.dtype(dtype))
    for n_landmarks, first in [(1, 3), (25, 0), (400, 17)]:
        expected, _ = _core.landmark_maxmin(X, n_landmarks, first, 1)
        np.testing.assert_array_equal(lc.maxmin_cuda(resident, n_landmarks, first), expected)
    with pytest.raises(ValueError):
        lc.maxmin_cuda(resident, 401, 0)


def test_device_kneighbors_refuses_empty_query_blocks():
    resident = lc.ResidentPoints(None, (10, 3), np.dtype(np.float64))  # refused before any device access
    for bad in (0, -4):
        with pytest.raises(ValueError, match="query_block_rows must be >= 1"):
            lc.device_kneighbors(resident, 2, _EUCLIDEAN, 2.0, query_block_rows=bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
@needs_gpu
def test_device_kneighbors_matches_cpu_across_query_blocks(dtype):
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(size=(200, 3)), np.ones((15, 3)), rng.integers(0, 3, size=(85, 3))]).astype(dtype)
    for metric in (_EUCLIDEAN, _MANHATTAN):
        expected_distances, expected_indices = _core.knn_kneighbors(X, X, 6, metric, 2.0, True, 1)
        resident = lc.upload_points(X, 50, np.dtype(dtype))
        # 64 query rows a launch (2**19 by default): several blocks and a ragged last one.
        distances, indices = lc.device_kneighbors(resident, 6, metric, 2.0, query_block_rows=64)
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_array_equal(distances, expected_distances)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
@needs_gpu
def test_shortest_paths_from_landmarks_match_scipy(dtype):
    from isogan import paths

    rng = np.random.default_rng(3)
    n = 300
    # A random sparse graph with two components and a zero-weight edge.
    rows = rng.integers(0, 150, size=900)
    cols = rng.integers(0, 150, size=900)
    rows = np.r_[rows, rng.integers(150, n, size=900), 0]
    cols = np.r_[cols, rng.integers(150, n, size=900), 1]
    weights = np.r_[rng.uniform(0.1, 2.0, size=1800), 0.0].astype(dtype)
    graph = sparse.csr_matrix((weights, (rows, cols)), shape=(n, n))
    graph.sum_duplicates()
    symmetric = paths.as_symmetric_csr(graph)
    sources = np.array([0, 5, 160, 299, 5], dtype=np.int64)
    expected = dijkstra(graph.astype(np.float64), directed=False, indices=sources)
    # The default budget takes all 5 sources in one batch; 2 * n * 2 bytes of flags, 2 sources a
    # batch (the branch that 1 GiB reaches only past 2**29 / N sources).
    for flag_budget_bytes in (memory_module.GPU_PATHS_FLAG_BUDGET_BYTES, 2 * n * 2):
        rows_buffer = lc._allocate(sources.size * n * np.dtype(dtype).itemsize, "test rows")
        lc._device_shortest_paths(symmetric, sources, rows_buffer, flag_budget_bytes)
        got = lc._download(rows_buffer, (sources.size, n), np.dtype(dtype))
        np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.cuda
@needs_gpu
def test_triangulate_and_min_plus_cuda_match_cpu(dtype):
    rng = np.random.default_rng(4)
    geodesic = rng.uniform(0, 5, size=(30, 700)).astype(dtype)
    projection = rng.normal(size=(3, 30))
    mean_sq = rng.uniform(size=30)
    expected = _core.landmark_triangulate(geodesic, projection, mean_sq, 1)
    got = lc.triangulate_cuda(lc._upload(geodesic, "test"), geodesic.shape, geodesic.dtype, projection, mean_sq)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())

    index = rng.integers(0, 700, size=(90, 5)).astype(np.int64)
    distance = rng.uniform(0, 1, size=(90, 5)).astype(dtype)
    expected_rows = _core.landmark_min_plus(geodesic, index, distance, 1)
    got_rows = lc._download(lc.min_plus_cuda(geodesic, index, distance), (30, 90), np.dtype(dtype))
    np.testing.assert_array_equal(got_rows, expected_rows)


# ------------------------------------------------------------------------------ orchestration on a fake device (CPU)
class FakeDeviceCore:
    """Stands in for isogan._core's CUDA entries: 'device' memory is host memory at real addresses,
    and each device kernel runs its CPU twin on views of it. The signatures mirror csrc/*/*_py.cpp, so
    the GPU pipeline's pointer arithmetic, shapes and argument order run without a GPU."""

    def __init__(self):
        self._blocks = {}  # base address -> uint8 array
        self.shortest_path_batches = 0

    def __getattr__(self, name):
        return getattr(_core, name)

    def view(self, address, dtype, shape):
        dtype = np.dtype(dtype)
        n_bytes = int(np.prod(shape)) * dtype.itemsize
        if n_bytes == 0:
            return np.empty(shape, dtype=dtype)
        for base, block in self._blocks.items():
            if base <= address and address + n_bytes <= base + block.size:
                return np.ndarray(shape, dtype=dtype, buffer=block, offset=address - base)
        raise AssertionError(f"no fake device allocation holds {n_bytes} bytes at {address}")

    def LandmarkDeviceBuffer(self, n_bytes):
        fake = self

        class Buffer:
            def __init__(self):
                self._block = np.zeros(max(n_bytes, 1), dtype=np.uint8)
                self.nbytes = n_bytes
                self.pointer = self._block.ctypes.data if n_bytes else 0
                fake._blocks[self._block.ctypes.data] = self._block

            def upload(self, host, offset=0):
                assert host.flags.c_contiguous and offset + host.nbytes <= self.nbytes
                self._block[offset : offset + host.nbytes] = host.reshape(-1).view(np.uint8)

            def download(self, host, offset=0):
                assert host.flags.c_contiguous and offset + host.nbytes <= self.nbytes
                host.reshape(-1).view(np.uint8)[:] = self._block[offset : offset + host.nbytes]

        return Buffer()

    def knn_kneighbors_cuda(self, queries, points, n_queries, n_points, n_features, n_neighbors, metric, p,
                            exclude_self, distances, indices, dtype, stream):
        assert isinstance(dtype, np.dtype)
        q = self.view(queries, dtype, (n_queries, n_features))
        x = self.view(points, dtype, (n_points, n_features))
        found_distances, found_indices = _core.knn_kneighbors(q.copy(), x.copy(), n_neighbors, metric, p,
                                                              exclude_self, 1)
        self.view(distances, dtype, (n_queries, n_neighbors))[:] = found_distances
        self.view(indices, np.int64, (n_queries, n_neighbors))[:] = found_indices

    def landmark_maxmin_cuda(self, points, n_points, n_features, n_landmarks, first, landmark_index, min_sq_distance,
                             dtype, stream):
        assert isinstance(dtype, np.dtype)
        x = self.view(points, dtype, (n_points, n_features)).copy()
        index, min_sq = _core.landmark_maxmin(x, n_landmarks, first, 1)
        self.view(landmark_index, np.int64, (n_landmarks,))[:] = index
        self.view(min_sq_distance, np.float64, (n_points,))[:] = min_sq

    def landmark_triangulate_cuda(self, geodesic, projection, mean_sq, n_landmarks, n_points, n_components, embedding,
                                  dtype, stream):
        assert isinstance(dtype, np.dtype)
        result = _core.landmark_triangulate(
            self.view(geodesic, dtype, (n_landmarks, n_points)).copy(),
            self.view(projection, np.float64, (n_components, n_landmarks)).copy(),
            self.view(mean_sq, np.float64, (n_landmarks,)).copy(), 1)
        self.view(embedding, dtype, (n_points, n_components))[:] = result

    def landmark_min_plus_cuda(self, geodesic, index, distance, n_landmarks, n_train, n_queries, n_neighbors, out,
                               dtype, stream):
        assert isinstance(dtype, np.dtype)
        result = _core.landmark_min_plus(
            self.view(geodesic, dtype, (n_landmarks, n_train)).copy(),
            self.view(index, np.int64, (n_queries, n_neighbors)).copy(),
            self.view(distance, dtype, (n_queries, n_neighbors)).copy(), 1)
        self.view(out, dtype, (n_landmarks, n_queries))[:] = result

    def paths_shortest_paths_cuda(self, indptr, indices, weights, n_nodes, sources, n_sources, out, dtype, stream,
                                  flag_budget_bytes=_core.PATHS_FLAG_BUDGET_BYTES):
        assert isinstance(dtype, np.dtype)
        nnz = int(self.view(indptr, np.int64, (n_nodes + 1,))[-1])
        graph = (self.view(indptr, np.int64, (n_nodes + 1,)).copy(), self.view(indices, np.int32, (nnz,)).copy(),
                 self.view(weights, dtype, (nnz,)).copy())
        all_sources = self.view(sources, np.int64, (n_sources,)).copy()
        # The batch the native call takes, from its own scratch arithmetic (csrc/paths/paths.h).
        batch = (_core.paths_shortest_paths_cuda_scratch_bytes(n_nodes, n_sources, flag_budget_bytes) - 4) // (2 * n_nodes)
        for first in range(0, n_sources, batch):
            result = np.empty((min(batch, n_sources - first), n_nodes), dtype=dtype)
            _core.paths_dijkstra(*graph, all_sources[first : first + batch], result, 1)
            self.view(out + first * n_nodes * dtype.itemsize, dtype, result.shape)[:] = result
            self.shortest_path_batches += 1



@pytest.fixture
def fake_device(monkeypatch):
    """Route the GPU landmark pipeline to FakeDeviceCore; other stages stay on the CPU."""
    import isogan._backend
    from isogan import isomap, knn, mds
    from isogan._backend import memory

    fake = FakeDeviceCore()
    monkeypatch.setattr(lc, "_core", fake)
    # The landmark stage runs on the fake device; kNN queries of transform and MDS stay on the CPU.
    landmark_on_device = lambda device, stage="landmark": "cuda" if device != "cpu" and stage == "landmark" else "cpu"  # noqa: E731
    monkeypatch.setattr(isogan._backend, "resolve_device", landmark_on_device)
    monkeypatch.setattr(isomap, "resolve_device", landmark_on_device)
    monkeypatch.setattr(memory, "available_device_bytes", lambda: 2**40)
    monkeypatch.setattr(knn, "resolve_device", lambda device, stage="knn": "cpu")
    cpu_mds = mds.classical_mds
    monkeypatch.setattr(mds, "classical_mds", lambda *args, **kwargs: cpu_mds(*args, **{**kwargs, "device": "cpu"}))
    return fake


def _swiss_roll(n, dtype):
    from sklearn.datasets import make_swiss_roll

    return make_swiss_roll(n, random_state=0)[0].astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("landmark_method", ["maxmin", "random"])
def test_gpu_pipeline_on_fake_device_equals_cpu_estimator(fake_device, monkeypatch, dtype, landmark_method):
    from isogan import Isomap

    X = _swiss_roll(700, dtype)

    class SmallLaunches(lc.CudaBackend):
        """128 kNN query rows a launch (several blocks) and 7 landmarks a shortest-path batch."""

        def __init__(self, n_jobs=None):
            super().__init__(n_jobs, query_block_rows=128, flag_budget_bytes=2 * 700 * 7)

    monkeypatch.setattr(lc, "CudaBackend", SmallLaunches)
    params = dict(n_neighbors=8, n_landmarks=40, landmark_method=landmark_method, random_state=0)
    cpu = Isomap(device="cpu", **params).fit(X)
    gpu = Isomap(device="cuda", **params).fit(X)
    assert fake_device._blocks  # the pipeline ran on the fake device
    assert fake_device.shortest_path_batches == 6  # 40 landmarks, 7 a batch
    np.testing.assert_array_equal(gpu.landmark_index_, cpu.landmark_index_)
    np.testing.assert_array_equal(gpu.landmark_model_.landmark_geodesic, cpu.landmark_model_.landmark_geodesic)
    np.testing.assert_allclose(gpu.embedding_, cpu.embedding_, rtol=1e-6, atol=1e-6 * np.abs(cpu.embedding_).max())
    assert gpu.embedding_.dtype == dtype
    queries = X[:90] + 0.01
    np.testing.assert_allclose(gpu.transform(queries), cpu.transform(queries), rtol=1e-6,
                               atol=1e-6 * np.abs(cpu.embedding_).max())


def test_gpu_pipeline_on_fake_device_small_transform_chunks(fake_device, monkeypatch):
    from isogan import Isomap

    X = _swiss_roll(500, np.float64)
    cpu = Isomap(device="cpu", n_neighbors=8, n_landmarks=30, random_state=0).fit(X)
    gpu = Isomap(device="cuda", n_neighbors=8, n_landmarks=30, random_state=0).fit(X)
    monkeypatch.setattr(memory_module, "GPU_TRANSFORM_GATHER_BYTES", 30 * 8 * 8 * 7)  # 7 queries per chunk
    np.testing.assert_allclose(gpu.transform(X[:50] * 1.01), cpu.transform(X[:50] * 1.01), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_pipeline_on_fake_device_out_of_core_and_components(fake_device, tmp_path, dtype):
    from isogan import landmark

    X = _swiss_roll(600, dtype)
    X = np.vstack([X, X[:150] + 1000]).astype(dtype)
    path = tmp_path / "points.npy"
    np.save(path, X)
    options = dict(n_neighbors=6, random_state=0, chunk_rows=200)
    with pytest.warns(UserWarning, match="connected components"):
        cpu = landmark.landmark_isomap(path, 20, device="cpu", **options)
    with pytest.warns(UserWarning, match="connected components"):
        gpu = landmark.landmark_isomap(path, 20, device="cuda", **options)
    np.testing.assert_array_equal(gpu.landmark_index, cpu.landmark_index)
    assert np.isfinite(gpu.embedding).all()
    np.testing.assert_allclose(gpu.embedding, cpu.embedding, rtol=1e-6, atol=1e-6 * np.abs(cpu.embedding).max())


def test_gpu_pipeline_on_fake_device_geodesic_maxmin(fake_device, monkeypatch):
    from sklearn.metrics import pairwise_distances

    from isogan import Isomap, paths

    # Geodesic MaxMin asks the shortest-path stage for one row at a time: serve it on the CPU.
    cpu_paths = paths.geodesic_distances
    monkeypatch.setattr(paths, "geodesic_distances", lambda *a, **k: cpu_paths(*a, **{**k, "device": "cpu"}))
    D = pairwise_distances(_swiss_roll(400, np.float64))
    cpu = Isomap(n_neighbors=8, n_landmarks=25, metric="precomputed", random_state=0, device="cpu").fit(D)
    gpu = Isomap(n_neighbors=8, n_landmarks=25, metric="precomputed", random_state=0, device="cuda").fit(D)
    np.testing.assert_array_equal(gpu.landmark_index_, cpu.landmark_index_)
    np.testing.assert_allclose(gpu.embedding_, cpu.embedding_, rtol=1e-9, atol=1e-9)


def test_gpu_pipeline_on_fake_device_refuses_what_does_not_fit(fake_device, monkeypatch):
    from isogan import Isomap
    from isogan._backend import memory

    X = _swiss_roll(500, np.float64)
    for free in (5000, 100_000):  # points streamed or resident: the (30, 500) rows do not fit either way
        monkeypatch.setattr(memory, "available_device_bytes", lambda: free)
        with pytest.raises(MemoryError, match="GPU landmark Isomap of 500 points with 30 landmarks") as error:
            Isomap(device="cuda", n_neighbors=8, n_landmarks=30).fit(X)
        assert f"only {free:,} bytes" in str(error.value) and "fewer landmarks" in str(error.value)
    monkeypatch.setattr(memory, "available_device_bytes", lambda: 10**6)
    assert np.isfinite(Isomap(device="cuda", n_neighbors=8, n_landmarks=30).fit_transform(X)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_knn_on_fake_device_equals_cpu_when_points_do_not_fit(fake_device, monkeypatch, dtype):
    from isogan import landmark
    from isogan._backend import memory

    rng = np.random.default_rng(5)
    # 200 features: the points (700 x 200) outweigh the (40, 700) landmark rows; duplicates and ties.
    X = np.vstack([rng.normal(size=(600, 200)), np.zeros((30, 200)), rng.integers(0, 2, size=(70, 200))]).astype(dtype)
    free = X.nbytes // 2
    monkeypatch.setattr(memory, "available_device_bytes", lambda: free)
    graph, resident = lc.knn_graph_cuda(X, 8, _EUCLIDEAN, 2.0, dtype, n_landmarks=40, n_components=2, chunk_rows=100)
    assert resident is None
    assert memory_module.streamed_chunk_rows(700, 200, 8, np.dtype(dtype).itemsize, free) < 700  # several blocks
    expected_distances, expected_indices = _core.knn_kneighbors(X, X, 8, _EUCLIDEAN, 2.0, True, 1)
    np.testing.assert_array_equal(graph.indices.reshape(700, 8), expected_indices)
    np.testing.assert_array_equal(graph.data.reshape(700, 8), expected_distances)
    model = landmark.landmark_isomap(X, 40, n_neighbors=8, random_state=0, device="cuda")
    assert np.unique(model.landmark_index).size == 40 and np.isfinite(model.embedding).all()


def test_gpu_pipeline_on_fake_device_radius_graph_and_ragged_transform(fake_device):
    from isogan import Isomap

    X = _swiss_roll(600, np.float64)
    params = dict(n_neighbors=None, radius=5.0, n_landmarks=30, random_state=0)
    cpu = Isomap(device="cpu", **params).fit(X)
    gpu = Isomap(device="cuda", **params).fit(X)
    np.testing.assert_array_equal(gpu.landmark_index_, cpu.landmark_index_)
    np.testing.assert_allclose(gpu.embedding_, cpu.embedding_, rtol=1e-9, atol=1e-9 * np.abs(cpu.embedding_).max())
    queries = X[:40] + 0.05  # ragged neighbour rows, padded before the device min-plus
    np.testing.assert_allclose(gpu.transform(queries), cpu.transform(queries), rtol=1e-9,
                               atol=1e-9 * np.abs(cpu.embedding_).max())
