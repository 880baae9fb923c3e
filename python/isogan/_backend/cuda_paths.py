"""GPU shortest paths: the CUDA calls of :mod:`isogan.paths`, its GPU cost model and GPU inputs.

Host graphs are validated and symmetrised by :func:`isogan.paths.as_symmetric_csr`, uploaded, and
their rows computed into a GPU array of the caller's library (torch, CuPy or
:class:`isogan.DeviceArray`) on that array's stream.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from isogan import _core
from isogan._backend.arrays import DeviceArray, device_array_view, device_empty, from_host_like
from isogan._backend.memory import (
    GPU_MIN_PLUS_QUERIES_PER_LAUNCH,
    GPU_PATHS_FLAG_BUDGET_BYTES,
    ensure_memory,
    paths_device_bytes,
)

if TYPE_CHECKING:
    from isogan.paths import SymmetricGraph

logger = logging.getLogger("isogan")

_METHODS = ("auto", "FW", "D")

_DEVICE_MEMORY_REMEDY = (
    "Use float32 input (half the bytes), landmark Isomap (n_landmarks=...) which keeps only "
    "(n_landmarks, N) distances, or device='cpu'."
)

# GPU cost model of the two all-pairs algorithms (DESIGN.md, "Geodesic distances"), its rates
# measured on an NVIDIA H200 (benchmarks/gpu_bench.py paths, swiss-roll k=10 graphs, N=5k-20k,
# 2026-12-04; benchmarks/RESULTS.md, section GPU). Other GPUs shift the crossover, not the results.
# Blocked Floyd-Warshall: N^3 min-plus operations (an add and a min each) in shared-memory tiles on
# the CUDA cores: 3.6-4.7e12/s float32 and 2.5-3.1e12/s float64 measured (rising with N).
_GPU_MIN_PLUS_PER_SECOND = {np.dtype(np.float32): 4.6e12, np.dtype(np.float64): 3.0e12}
# Batched Bellman-Ford: each round scans the (sources, N) activity flags (coalesced byte reads)
# and relaxes the edges of the active nodes with scattered atomicMin updates; the relaxation rate
# is the one that reproduces the measured times (0.19, 1.05, 3.0 s at N=5k, 10k, 20k) within 30%.
_GPU_FLAG_READS_PER_SECOND = 2.0e12
_GPU_RELAXATIONS_PER_SECOND = 4.5e9
_BF_RELAXATIONS_PER_EDGE = 3.0
_BF_ROUNDS_PER_HOP = 2.0


def gpu_method_costs(n_nodes: int, n_edges: int, n_sources: int, hop_diameter: int, dtype: Any) -> dict[str, float]:
    """Predicted GPU seconds of the two shortest-path algorithms, from isogan's cost model.

    * ``'FW'`` (blocked Floyd-Warshall, all pairs only): ``N^3`` min-plus operations at 4.6e12/s
      (float32) or 3.0e12/s (float64), whatever the sources or the density;
    * ``'D'`` (batched frontier Bellman-Ford): per source, ``3 E`` scattered edge relaxations at
      4.5e9/s, plus one scan of the N activity flags per round at 2e12/s, with
      ``2 * (hop_diameter + 1)`` rounds.

    So 'FW' wins on small or dense graphs and 'D' on large sparse ones; for a k=10 kNN graph
    (E ~ 11 N) the model puts the crossover near N ~ 2.4 x 10^4 (float64) and 3.8 x 10^4 (float32).
    The rates were measured on an NVIDIA H200 (benchmarks/RESULTS.md, section GPU).

    Parameters
    ----------
    n_nodes : int
        Nodes N.
    n_edges : int
        Stored directed edges E of the symmetric graph (each undirected edge counts twice).
    n_sources : int
        Rows wanted; 'FW' always computes all N.
    hop_diameter : int
        Estimated largest number of edges on a fewest-hop path (see :func:`choose_gpu_method`).
    dtype : numpy dtype
        float32 or float64.

    Returns
    -------
    dict of str to float
        ``{'FW': seconds, 'D': seconds}``.

    Examples
    --------
    >>> import numpy as np
    >>> from isogan._backend.cuda_paths import gpu_method_costs
    >>> costs = gpu_method_costs(1000, 500_000, 1000, 3, np.float32)
    >>> costs["FW"] < costs["D"]
    True
    """
    n_nodes, n_edges, n_sources = int(n_nodes), int(n_edges), int(n_sources)
    floyd = float(n_nodes) ** 3 / _GPU_MIN_PLUS_PER_SECOND[np.dtype(dtype)]
    rounds = _BF_ROUNDS_PER_HOP * (int(hop_diameter) + 1)
    per_source = (_BF_RELAXATIONS_PER_EDGE * n_edges / _GPU_RELAXATIONS_PER_SECOND
                  + rounds * n_nodes / _GPU_FLAG_READS_PER_SECOND)
    return {"FW": floyd, "D": n_sources * per_source}


def _hop_diameter(graph: "SymmetricGraph") -> int:
    """Fewest-hop eccentricity found by a double BFS sweep (a lower bound of the hop diameter, O(E))."""
    if graph.n_nodes == 0 or graph.n_edges == 0:
        return 0
    adjacency = sp.csr_matrix(
        (np.ones(graph.n_edges), graph.indices, graph.indptr), shape=(graph.n_nodes, graph.n_nodes)
    )
    hops = shortest_path(adjacency, method="D", unweighted=True, indices=0)
    farthest = int(np.argmax(np.where(np.isfinite(hops), hops, -1.0)))
    hops = shortest_path(adjacency, method="D", unweighted=True, indices=farthest)
    return int(np.max(hops[np.isfinite(hops)]))


def choose_gpu_method(n_nodes: int, n_edges: int, n_sources: int, all_pairs: bool, method: str,
                      hop_diameter: int | None, dtype: Any) -> str:
    """Resolve a ``method`` argument to the GPU algorithm that runs: 'FW' or 'D'.

    'FW' runs only for all pairs; 'D' (batched Bellman-Ford) serves explicit ``indices`` and
    ``method='D'``; ``method='auto'`` takes the faster one in :func:`gpu_method_costs`' model
    (a model, not a measurement) and logs its figures at debug level.

    Parameters
    ----------
    n_nodes, n_edges, n_sources : int
        As in :func:`gpu_method_costs`.
    all_pairs : bool
        Whether every source is wanted (no ``indices``).
    method : {'auto', 'FW', 'D'}
        The user's choice.
    hop_diameter : int or None
        Hop-diameter estimate; only read for ``method='auto'`` with all pairs.
    dtype : numpy dtype
        float32 or float64.

    Returns
    -------
    str
        'FW' or 'D'.
    """
    if not all_pairs or method == "D":
        return "D"
    if method == "FW":
        return "FW"
    costs = gpu_method_costs(n_nodes, n_edges, n_sources, hop_diameter or 0, dtype)
    choice = "FW" if costs["FW"] <= costs["D"] else "D"
    logger.debug(
        "geodesic_distances on the GPU, method='auto': %s (cost model, not measured: Floyd-Warshall %.3g s, "
        "batched Bellman-Ford %.3g s; N=%d, E=%d, hop diameter ~%d)",
        choice, costs["FW"], costs["D"], n_nodes, n_edges, hop_diameter or 0,
    )
    return choice


def _ensure_device_paths_memory(graph: "SymmetricGraph", n_sources: int, method: str,
                                flag_budget_bytes: int = GPU_PATHS_FLAG_BUDGET_BYTES) -> None:
    n_nodes = graph.n_nodes
    needed = paths_device_bytes(n_nodes, graph.n_edges, n_sources, graph.dtype.itemsize, method, flag_budget_bytes)
    name = "Floyd-Warshall" if method == "FW" else "batched Bellman-Ford"
    what = (f"the ({n_sources}, {n_nodes}) {graph.dtype.name} geodesic distance matrix on the GPU "
            f"({name}, with its graph and scratch)")
    ensure_memory(needed, what, _DEVICE_MEMORY_REMEDY, device="cuda")


def _run_paths_on_device(graph: "SymmetricGraph", method: str, sources: np.ndarray | None, out: Any,
                         flag_budget_bytes: int) -> None:
    """Write the geodesic rows of ``sources`` (None: all, in node order) into the GPU array ``out``.

    The graph (O(E)) is uploaded with ``out``'s library (torch, CuPy or DeviceArray) and every
    kernel runs on ``out``'s stream, so no synchronisation with the caller's work is needed.
    """
    out_view = device_array_view(out)
    n_nodes = graph.n_nodes
    if n_nodes == 0 or out_view.shape[0] == 0:
        return
    stream = out_view.stream

    # The uploads are released when this function returns; their frees are stream-ordered (torch's
    # and CuPy's pools, cudaFreeAsync for a DeviceArray), so they wait for the kernels queued here.
    def upload(array: np.ndarray) -> tuple[Any, int]:
        device = _to_device_like(array, out)
        return device, device_array_view(device).pointer if array.size else 0

    indptr, indptr_pointer = upload(graph.indptr)
    indices, indices_pointer = upload(graph.indices)
    weights, weights_pointer = upload(graph.weights)
    if method == "FW":
        _core.paths_csr_floyd_start_cuda(indptr_pointer, indices_pointer, weights_pointer, n_nodes,
                                         out_view.pointer, graph.dtype, stream)
        _core.paths_floyd_warshall_cuda(out_view.pointer, n_nodes, graph.dtype, stream, False)
    else:
        rows = np.arange(n_nodes, dtype=np.int64) if sources is None else np.ascontiguousarray(sources, np.int64)
        device_sources, sources_pointer = upload(rows)
        _core.paths_shortest_paths_cuda(indptr_pointer, indices_pointer, weights_pointer, n_nodes,
                                        sources_pointer, rows.size, out_view.pointer, graph.dtype, stream,
                                        flag_budget_bytes)


def _resolved_gpu_method(graph: "SymmetricGraph", method: str, sources: np.ndarray | None) -> str:
    all_pairs = sources is None
    n_sources = graph.n_nodes if all_pairs else sources.size
    hop_diameter = _hop_diameter(graph) if method == "auto" and all_pairs else None
    return choose_gpu_method(graph.n_nodes, graph.n_edges, n_sources, all_pairs, method, hop_diameter, graph.dtype)


def geodesic_on_device(
    graph: "SymmetricGraph",
    method: str,
    sources: np.ndarray | None,
    allocate: Callable[[tuple[int, int], np.dtype], Any],
    *,
    flag_budget_bytes: int = GPU_PATHS_FLAG_BUDGET_BYTES,
) -> Any:
    """Geodesic rows of a validated host graph, computed on the GPU into ``allocate(shape, dtype)``.

    The GPU method is resolved and its device bytes checked before anything is allocated. The
    batched Bellman-Ford ('D') takes its sources in batches whose two (batch, N) byte-flag arrays
    fit ``flag_budget_bytes`` (1 GiB; less makes small graphs run in several batches).
    """
    n_sources = graph.n_nodes if sources is None else sources.size
    method = _resolved_gpu_method(graph, method, sources)
    _ensure_device_paths_memory(graph, n_sources, method, flag_budget_bytes)
    out = allocate((n_sources, graph.n_nodes), graph.dtype)
    _run_paths_on_device(graph, method, sources, out, flag_budget_bytes)
    return out


def is_device_sparse(graph: Any) -> bool:
    """Whether ``graph`` is a sparse matrix in GPU memory (torch sparse CUDA tensor, cupyx sparse)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(graph, torch.Tensor):
        return bool(graph.is_cuda) and graph.layout != torch.strided
    return type(graph).__module__.startswith("cupyx.scipy.sparse")


def _device_sparse_to_host(graph: Any) -> tuple[sp.spmatrix, Any]:
    """The scipy form of a GPU sparse graph (its O(E) edge list), and a dense array of its library.

    torch: a sparse CSR tensor, or a COO tensor (duplicates summed, as scipy's COO conversion does).
    cupyx: any format (``.get()`` keeps it, and the usual scipy semantics apply).
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(graph, torch.Tensor):
        if graph.layout == torch.sparse_coo:
            graph = graph.coalesce()
            values = graph.values()
            rows, cols = graph.indices().cpu().numpy()
            host = sp.coo_matrix((_torch_values_to_numpy(values), (rows, cols)), shape=tuple(graph.shape))
        elif graph.layout == torch.sparse_csr:
            values = graph.values()
            host = sp.csr_matrix(
                (_torch_values_to_numpy(values), graph.col_indices().cpu().numpy(), graph.crow_indices().cpu().numpy()),
                shape=tuple(graph.shape),
            )
        else:
            raise ValueError(f"a torch sparse graph must have the sparse_csr or sparse_coo layout, got {graph.layout}")
        return host, values
    return graph.get(), graph.data


def _torch_values_to_numpy(values: Any) -> np.ndarray:
    import torch

    if values.is_floating_point() and values.dtype not in (torch.float32, torch.float64):
        values = values.to(torch.float64)
    return values.detach().cpu().numpy()


def geodesic_on_device_sparse(graph: Any, method: str, indices: Any) -> Any:
    """GPU sparse graph in, dense GPU distances out (the input's library, device and stream)."""
    host_graph, like = _device_sparse_to_host(graph)
    from isogan import paths

    weights = paths.as_symmetric_csr(host_graph)
    sources, squeeze = paths.check_sources(indices, weights.n_nodes)
    out = geodesic_on_device(weights, method, sources, lambda shape, dtype: device_empty(like, shape, dtype))
    return out[0] if squeeze else out


def geodesic_on_device_input(graph: Any, method: str, indices: Any) -> Any:
    """Dense GPU adjacency in, GPU distances out (same library, device and stream)."""
    if isinstance(graph, DeviceArray):
        raise ValueError("a DeviceArray graph is not supported; pass a scipy/numpy graph, or a torch/CuPy array.")
    view = device_array_view(graph)
    if len(view.shape) != 2 or view.shape[0] != view.shape[1]:
        raise ValueError(f"graph must be a square (N, N) matrix, got shape {view.shape}")
    if view.dtype not in (np.float32, np.float64):
        raise ValueError(f"a GPU graph must be float32 or float64, got {view.dtype}")
    n_nodes = view.shape[0]
    from isogan import paths

    sources, squeeze = paths.check_sources(indices, n_nodes)
    out_bytes = n_nodes * n_nodes * view.dtype.itemsize
    ensure_memory(
        out_bytes, f"the ({n_nodes}, {n_nodes}) {view.dtype.name} geodesic distance matrix", _DEVICE_MEMORY_REMEDY,
        device="cuda",
    )
    # Copy the adjacency with the input's own library, then turn it into distances in place.
    dist = device_empty(graph, (n_nodes, n_nodes), view.dtype)
    dist[...] = graph
    if _has_nan_or_negative(dist):
        raise ValueError("graph contains negative or NaN edge weights; geodesic distances need non-negative weights")
    dist_view = device_array_view(dist)
    _core.paths_floyd_warshall_cuda(dist_view.pointer, n_nodes, view.dtype, dist_view.stream, True)
    if sources is None:
        return dist
    rows = dist[sources.tolist()]
    return rows[0] if squeeze else rows


def _to_device_like(array: np.ndarray, like: Any) -> Any:
    """Copy a host array to ``like``'s device with ``like``'s library (torch, CuPy or DeviceArray)."""
    if not array.size:
        return device_empty(like, array.shape, array.dtype)
    return from_host_like(array, like)


def min_plus_on_device(
    query_indptr: np.ndarray, neighbor_index: np.ndarray, neighbor_dist: np.ndarray, dist: Any, n_queries: int,
    *, max_queries_per_launch: int = GPU_MIN_PLUS_QUERIES_PER_LAUNCH,
) -> Any:
    """The transform min-plus on a GPU geodesic matrix; the result stays on that GPU.

    Queries go ``max_queries_per_launch`` a launch (65,535, CUDA's grid.y limit, at most).
    """
    view = device_array_view(dist)
    n_nodes = view.shape[0]
    device_indptr = _to_device_like(query_indptr, dist)
    device_index = _to_device_like(neighbor_index, dist)
    device_neighbor_dist = _to_device_like(neighbor_dist, dist)
    out = device_empty(dist, (n_queries, n_nodes), view.dtype)
    _core.paths_min_plus_cuda(
        device_array_view(device_indptr).pointer,
        device_array_view(device_index).pointer if neighbor_index.size else 0,
        device_array_view(device_neighbor_dist).pointer if neighbor_dist.size else 0,
        view.pointer,
        n_queries,
        n_nodes,
        device_array_view(out).pointer if n_queries * n_nodes else 0,
        view.dtype,
        view.stream,
        max_queries_per_launch,
    )
    return out


def _has_nan_or_negative(array: Any) -> bool:
    """Whether a torch or CuPy array holds a NaN or a negative value (one device reduction)."""
    return bool(((array != array) | (array < 0)).any())
