"""GPU shortest paths: the FW / batched Bellman-Ford choice and memory prediction (on the CPU), and
(on a GPU) GPU sparse input, device-resident results and FW == BF, against scipy."""

import logging

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neighbors import kneighbors_graph

import isogan
from isogan import DeviceArray, _core
from isogan._backend import memory
from isogan._backend import cuda_paths
from isogan._backend.cuda_paths import choose_gpu_method, gpu_method_costs
from isogan._backend.memory import paths_device_bytes as predict_device_bytes
from isogan.paths import as_symmetric_csr, geodesic_distances, geodesic_distances_device
from tests.native.test_paths import assert_matches, scipy_reference, swiss_roll_graph


def cuda(test):
    """Mark a test as needing a usable CUDA device (selected by ``-m cuda``, skipped without one)."""
    return pytest.mark.cuda(pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")(test))


def adversarial_graphs(dtype):
    """Random graphs, several components (one isolated node), duplicate points, explicit zero weights."""
    rng = np.random.default_rng(11)
    random = sp.random(90, 90, density=0.04, random_state=rng, format="csr")
    random.data = random.data * 10
    components = sp.block_diag(
        [swiss_roll_graph(120, 5, dtype), swiss_roll_graph(40, 4, dtype, seed=1), sp.csr_matrix((1, 1))], format="csr"
    )
    X = rng.normal(size=(60, 3))
    duplicates = kneighbors_graph(np.vstack([X, X[:12], X[:4]]), 5, mode="distance")
    assert (duplicates.data == 0).any()
    zero_weights = random.copy()
    zero_weights.data[::4] = 0  # explicit zeros: edges of weight 0
    return {"random": random.astype(dtype), "components": components.astype(dtype),
            "duplicates": duplicates.astype(dtype), "zero-weights": zero_weights.astype(dtype)}


# ----------------------------------------------------------------------------- cost model (CPU)
def test_cost_model_prefers_fw_for_small_dense_and_bf_for_large_sparse():
    dense = gpu_method_costs(2000, 2000 * 1999, 2000, 1, np.float32)
    assert dense["FW"] < dense["D"]
    sparse = gpu_method_costs(100_000, 1_500_000, 100_000, 300, np.float32)
    assert sparse["D"] < sparse["FW"]
    # FW's cost is N^3 whatever the edges; BF's grows with the edges and with the sources.
    assert gpu_method_costs(5000, 10, 5000, 1, np.float64)["FW"] == gpu_method_costs(5000, 10**7, 5000, 1, np.float64)["FW"]
    assert gpu_method_costs(5000, 10**5, 10, 50, np.float32)["D"] < gpu_method_costs(5000, 10**5, 5000, 50, np.float32)["D"]
    # float64's min-plus rate is lower (measured 3.0e12/s against 4.6e12/s on an H200).
    assert gpu_method_costs(4000, 1, 4000, 1, np.float64)["FW"] == pytest.approx(
        4.6 / 3.0 * gpu_method_costs(4000, 1, 4000, 1, np.float32)["FW"])


def test_cost_model_has_one_crossover_on_knn_sized_graphs():
    choices = [
        choose_gpu_method(n, 15 * n, n, True, "auto", int(2 * np.sqrt(n)), np.float32)
        for n in (1000, 4000, 16000, 64000, 256000)
    ]
    assert choices[0] == "FW" and choices[-1] == "D"
    assert choices == sorted(choices, key=lambda method: method == "D")  # FW ... FW D ... D


def test_explicit_methods_and_indices():
    assert choose_gpu_method(10, 90, 10, True, "D", None, np.float64) == "D"
    assert choose_gpu_method(10**6, 10**7, 10**6, True, "FW", None, np.float64) == "FW"
    # Floyd-Warshall needs all pairs: a subset of sources always runs the batched single-source method.
    assert choose_gpu_method(10, 90, 3, False, "FW", None, np.float64) == "D"
    assert choose_gpu_method(10, 90, 3, False, "auto", None, np.float64) == "D"


def test_auto_choice_is_logged_at_debug_level(caplog):
    caplog.set_level(logging.DEBUG, logger="isogan")
    choose_gpu_method(500, 5000, 500, True, "auto", 20, np.float32)
    assert "method='auto'" in caplog.text and "cost model, not measured" in caplog.text


def test_hop_diameter_of_a_path_graph():
    n_nodes = 40
    chain = sp.diags([np.ones(n_nodes - 1)], [1], shape=(n_nodes, n_nodes), format="csr")
    graph = as_symmetric_csr(chain)
    assert cuda_paths._hop_diameter(graph) == n_nodes - 1
    assert cuda_paths._hop_diameter(as_symmetric_csr(sp.csr_matrix((3, 3)))) == 0


# ----------------------------------------------------------------------------- memory prediction (CPU)
def test_scratch_bytes_arithmetic():
    # Two (batch, N) byte-flag arrays and one int; the batch is capped so that they stay under 1 GiB.
    assert _core.paths_shortest_paths_cuda_scratch_bytes(1000, 1000) == 2 * 1000 * 1000 + 4
    batch = (1 << 30) // (2 * 100_000)
    assert _core.paths_shortest_paths_cuda_scratch_bytes(100_000, 100_000) == 2 * batch * 100_000 + 4
    assert _core.paths_shortest_paths_cuda_scratch_bytes(10, 0) == 2 * 10 + 4
    # The budget is a parameter (1 GiB by default): 2 * 1000 * 3 bytes hold 3 sources, 1 byte still one.
    assert _core.paths_shortest_paths_cuda_scratch_bytes(1000, 1000, 2 * 1000 * 3) == 2 * 3 * 1000 + 4
    assert _core.paths_shortest_paths_cuda_scratch_bytes(1000, 1000, 1) == 2 * 1000 + 4
    assert predict_device_bytes(1000, 5000, 1000, 4, "D", 2 * 1000 * 3) == \
        1000 * 1000 * 4 + 1001 * 8 + 5000 * 8 + 1000 * 8 + 2 * 3 * 1000 + 4
    for budget in (0, -1):
        with pytest.raises(ValueError, match="flag_budget_bytes must be >= 1"):
            _core.paths_shortest_paths_cuda_scratch_bytes(1000, 1000, budget)


def test_predict_device_bytes_arithmetic():
    n, e = 20_000, 300_000
    graph_bytes = (n + 1) * 8 + e * (4 + 4)
    assert predict_device_bytes(n, e, n, 4, "FW") == n * n * 4 + graph_bytes
    scratch = _core.paths_shortest_paths_cuda_scratch_bytes(n, n)
    assert predict_device_bytes(n, e, n, 4, "D") == n * n * 4 + graph_bytes + n * 8 + scratch
    # float64 doubles the output and the weights.
    assert predict_device_bytes(n, e, 10, 8, "D") == 10 * n * 8 + (n + 1) * 8 + e * 12 + 80 + \
        _core.paths_shortest_paths_cuda_scratch_bytes(n, 10)


def test_device_memory_error_names_bytes_and_remedies(monkeypatch):
    monkeypatch.setattr(memory, "available_device_bytes", lambda: 50_000)
    graph = as_symmetric_csr(swiss_roll_graph(200, 5, np.float32))
    with pytest.raises(MemoryError) as error:
        cuda_paths._ensure_device_paths_memory(graph, 200, "D")
    message = str(error.value)
    needed = predict_device_bytes(200, graph.n_edges, 200, 4, "D")
    assert f"needs {needed:,} bytes" in message and "only 50,000 bytes" in message
    assert "(200, 200) float32 geodesic distance matrix on the GPU" in message
    assert "float32" in message and "n_landmarks" in message and "device='cpu'" in message
    monkeypatch.setattr(memory, "available_device_bytes", lambda: needed)
    cuda_paths._ensure_device_paths_memory(graph, 200, "D")


# ----------------------------------------------------------------------------- GPU-library sparse input (CPU)
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state:UserWarning")
def test_torch_sparse_graph_converts_with_scipy_semantics():
    torch = pytest.importorskip("torch")
    graph = sp.csr_matrix(np.array([[0.0, 1.5, 0.0], [0.0, 0.0, 2.0], [4.0, 0.0, 0.0]], dtype=np.float32))
    csr = torch.sparse_csr_tensor(torch.from_numpy(graph.indptr.astype(np.int64)),
                                  torch.from_numpy(graph.indices.astype(np.int64)), torch.from_numpy(graph.data),
                                  size=graph.shape, check_invariants=True)
    host, like = cuda_paths._device_sparse_to_host(csr)
    assert host.dtype == np.float32 and like.dtype == torch.float32
    np.testing.assert_array_equal(host.toarray(), graph.toarray())
    # COO duplicates are summed, as scipy's COO -> CSR conversion does.
    coo = torch.sparse_coo_tensor(torch.tensor([[0, 0, 1], [1, 1, 2]]), torch.tensor([1.0, 2.0, 5.0]), (3, 3),
                                  check_invariants=True)
    host, _ = cuda_paths._device_sparse_to_host(coo)
    np.testing.assert_array_equal(host.toarray(), [[0, 3.0, 0], [0, 0, 5.0], [0, 0, 0]])
    with pytest.raises(ValueError, match="sparse_csr or sparse_coo"):
        cuda_paths._device_sparse_to_host(csr.to_sparse_csc())


# ----------------------------------------------------------------------------- on a GPU
@cuda
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state:UserWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["auto", "D", "FW"])
@pytest.mark.parametrize("case", ["random", "components", "duplicates", "zero-weights"])
def test_torch_sparse_cuda_graph_matches_scipy(case, method, dtype):
    torch = pytest.importorskip("torch")
    # torch's CSR invariants want sorted columns within a row (kNN graphs list them by distance).
    graph = adversarial_graphs(dtype)[case].sorted_indices()
    tensor = torch.sparse_csr_tensor(torch.from_numpy(graph.indptr.astype(np.int64)),
                                     torch.from_numpy(graph.indices.astype(np.int64)), torch.from_numpy(graph.data),
                                     size=graph.shape, device="cuda", check_invariants=True)
    result = geodesic_distances(tensor, method, device="cuda")
    assert isinstance(result, torch.Tensor) and result.is_cuda and result.layout == torch.strided
    assert_matches(result.cpu().numpy(), scipy_reference(graph), dtype)
    rows = geodesic_distances(tensor, method, indices=[0, -1, 5], device="cuda")
    assert_matches(rows.cpu().numpy(), scipy_reference(graph, indices=[0, -1, 5]), dtype)
    one_row = geodesic_distances(tensor, method, indices=2, device="cuda")
    assert tuple(one_row.shape) == (graph.shape[0],)


@cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["random", "components", "duplicates", "zero-weights"])
def test_cupy_sparse_graph_matches_scipy(case, dtype):
    cupy = pytest.importorskip("cupy")
    import cupyx.scipy.sparse

    graph = adversarial_graphs(dtype)[case]
    result = geodesic_distances(cupyx.scipy.sparse.csr_matrix(graph), device="cuda")
    assert isinstance(result, cupy.ndarray)
    assert_matches(result.get(), scipy_reference(graph), dtype)


@cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["random", "components", "duplicates", "zero-weights"])
def test_floyd_warshall_equals_bellman_ford_on_the_gpu(case, dtype):
    graph = adversarial_graphs(dtype)[case]
    floyd = geodesic_distances(graph, "FW", device="cuda")
    bellman_ford = geodesic_distances(graph, "D", device="cuda")
    assert_matches(floyd, bellman_ford.astype(np.float64), dtype)
    assert_matches(bellman_ford, scipy_reference(graph), dtype)


@cuda
@pytest.mark.parametrize("method", ["auto", "D", "FW"])
def test_device_result_is_a_device_array(method):
    graph = swiss_roll_graph(300, 6, np.float32)
    result = geodesic_distances_device(graph, method)
    assert isinstance(result, DeviceArray) and result.shape == (300, 300) and result.dtype == np.float32
    assert_matches(result.to_host(), scipy_reference(graph), np.float32)


@cuda
def test_gpu_memory_refused_before_allocation(monkeypatch):
    monkeypatch.setattr(memory, "available_device_bytes", lambda: 1000)
    with pytest.raises(MemoryError, match="geodesic distance matrix on the GPU"):
        geodesic_distances(swiss_roll_graph(100, 5, np.float64), device="cuda")
    monkeypatch.undo()
    assert geodesic_distances(swiss_roll_graph(100, 5, np.float64), device="cuda").shape == (100, 100)


# ----------------------------------------------------------------------------- thresholds only large inputs reach (GPU)
@cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["random", "components", "duplicates", "zero-weights"])
def test_bellman_ford_in_several_source_batches_matches_scipy(case, dtype):
    # 1 GiB of flags batches the sources only past 2**29 / N of them; 2 * N * 7 bytes batches 7 at a
    # time, the last batch ragged.
    graph = adversarial_graphs(dtype)[case]
    symmetric = as_symmetric_csr(graph)
    n_nodes = symmetric.n_nodes
    reference = scipy_reference(graph)
    for sources in (None, np.array([n_nodes - 1, 0, 3, 3, 17, 2, 9, 11, 5], dtype=np.int64)):
        result = cuda_paths.geodesic_on_device(symmetric, "D", sources, DeviceArray, flag_budget_bytes=2 * n_nodes * 7)
        assert_matches(result.to_host(), reference if sources is None else reference[sources], dtype)


@cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_min_plus_in_several_launches_matches_cpu(dtype):
    # 65,535 queries a launch by default (CUDA's grid.y limit); 7 a launch splits 40 queries into 6.
    rng = np.random.default_rng(5)
    n_nodes, n_queries = 200, 40
    dist = scipy_reference(swiss_roll_graph(n_nodes, 6, dtype)).astype(dtype)
    counts = rng.integers(1, 6, size=n_queries)
    query_indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    neighbor_index = rng.integers(0, n_nodes, size=int(query_indptr[-1])).astype(np.int64)
    neighbor_dist = rng.uniform(0, 2, size=neighbor_index.size).astype(dtype)
    expected = np.empty((n_queries, n_nodes), dtype=dtype)
    _core.paths_min_plus(query_indptr, neighbor_index, neighbor_dist, dist, expected, 1)
    device_dist = DeviceArray.from_host(dist)
    for max_queries_per_launch in (memory.GPU_MIN_PLUS_QUERIES_PER_LAUNCH, 7, 1):
        got = cuda_paths.min_plus_on_device(query_indptr, neighbor_index, neighbor_dist, device_dist, n_queries,
                                            max_queries_per_launch=max_queries_per_launch)
        np.testing.assert_array_equal(got.to_host(), expected)
    for bad in (0, 65536):
        with pytest.raises(ValueError, match="max_queries_per_launch"):
            cuda_paths.min_plus_on_device(query_indptr, neighbor_index, neighbor_dist, device_dist, n_queries,
                                          max_queries_per_launch=bad)
