"""Geodesic distances: shortest paths over Isomap's neighbour graph, and the min-plus product that
maps new points onto a fitted geodesic matrix.

:func:`geodesic_distances` equals ``scipy.sparse.csgraph.shortest_path(graph, directed=False)``
(which is what scikit-learn's Isomap calls) but runs one Dijkstra per source on every core, in the
graph's own float dtype, and on the GPU for GPU input. :func:`geodesic_from_neighbors` and
:func:`min_plus_rows` compute ``G[q, j] = min_k (w_qk + D[nbr_qk, j])`` exactly as
``sklearn.manifold.Isomap.transform`` does, without its Python loop.

Graph semantics (scipy's):

* sparse input (CSR/CSC/COO): every *stored* entry is an edge, explicit zeros included (weight 0,
  e.g. between duplicate points); COO duplicates are summed by the CSR conversion (as scipy does),
  CSR duplicates act as parallel edges (the lightest wins);
* dense input: 0 and +inf mean "no edge";
* undirected: edge {i, j} weighs the smaller of the stored ``w_ij`` and ``w_ji``;
* unreachable pairs are ``+inf``; the diagonal is 0.

Unlike scipy, negative and NaN weights are refused with a ValueError (Isomap's graphs never hold
them, and scipy's Dijkstra gives wrong answers or crashes on them).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

from isogan import _core
from isogan._backend import cuda_paths
from isogan._backend.arrays import DeviceArray, device_array_view, is_device_array
from isogan._backend.memory import ensure_memory
from isogan._backend.policy import check_device, progress_bar, relaxation_seconds, resolve_device, show_progress, threads

__all__ = [
    "SymmetricGraph",
    "as_symmetric_csr",
    "check_sources",
    "geodesic_distances",
    "geodesic_distances_device",
    "geodesic_from_neighbors",
    "geodesic_row_blocks",
    "min_plus_rows",
]

_METHODS = ("auto", "FW", "D")

# Share of all-pairs sources taken in random order before the locality-preserving rest.
_RANDOM_SEED_FRACTION = 0.3
# All-pairs runs reuse finished rows and cost about this fraction of independent searches.
_REUSE_SPEEDUP_FACTOR = 0.25
# Multi-source Dijkstra (explicit ``indices``) relabels the graph in reverse Cuthill-McKee order
# first when it has at least this many nodes and sources: the searches' distance row then stays in
# a few cache lines around the frontier instead of missing on every relaxation of a graph whose
# nodes come in random order. Measured on a k=10 swiss-roll graph (2 cores, 200 sources): 10% at
# N=20k, 5% at 50k, 20% at 100k, 1.7x at 300k, 2.3x at 1M, while the relabelling costs about as
# much as 10-30 single searches; so smaller graphs or fewer sources keep their own order (see
# benchmarks/RESULTS.md, "Locality reordering").
_REORDER_MIN_NODES = 50_000
_REORDER_MIN_SOURCES = 64

_MEMORY_REMEDY = (
    "Use float32 input (half the bytes), landmark Isomap (n_landmarks=...) which keeps only "
    "(n_landmarks, N) distances, or fewer points."
)



def geodesic_distances(
    graph: Any,
    method: str = "auto",
    *,
    indices: Any = None,
    n_jobs: int | None = None,
    device: str = "auto",
    progress: bool | None = None,
) -> Any:
    """Shortest-path (geodesic) distances over an undirected weighted graph.

    Equal to ``scipy.sparse.csgraph.shortest_path(graph, method=method, directed=False,
    indices=indices)``. With ``indices`` and ``method='D'`` the float64 result is bit-identical
    (the same additions in the same order along each shortest path). All pairs reuse finished rows
    (``d(s, v) = d(s, u) + d(u, v)`` once the search from s reaches a node u whose row is done),
    which is several times faster and associates the sums differently: float64 then agrees to about
    1e-15 relative, and 'FW' (blocked order) to 1e-12. float32 is computed in float32 and agrees
    within float32 rounding (<= 1e-5 relative).

    Parameters
    ----------
    graph : sparse matrix, ndarray, or GPU array of shape (N, N)
        Edge weights, e.g. ``sklearn.neighbors.kneighbors_graph(X, mode='distance')``. Sparse:
        every stored entry is an edge (explicit zeros are zero-weight edges). Dense: 0 and +inf
        mean no edge. Weights must be non-negative and not NaN. GPU input stays on its GPU and
        the result is a dense GPU array of the input's library on the same device and stream:
        a GPU *sparse* graph (torch sparse CSR or COO tensor, ``cupyx.scipy.sparse`` matrix;
        its O(E) edge list passes through the host once to be validated and symmetrised) runs
        the GPU kernels chosen by ``method``; a dense GPU array (torch tensor, CuPy array) is
        an adjacency matrix and runs blocked Floyd-Warshall whatever ``method`` says.
    method : {'auto', 'D', 'FW'}, default='auto'
        On the CPU: 'D' Dijkstra from every source, sources spread over threads (with at least
        64 ``indices`` on a graph of at least 50000 nodes the searches run on a copy of the graph
        relabelled in reverse Cuthill-McKee order, for cache locality: same result, up to 2x
        faster on large kNN graphs whose points come in random order); 'FW' blocked
        Floyd-Warshall on the dense matrix (O(N^3); only sensible for small or dense graphs);
        'auto' picks like scipy: 'FW' when the graph has at least N^2/4 edges and no ``indices``
        are given, else 'D'. On the GPU: 'D' is batched frontier Bellman-Ford (many sources per
        launch, O(N * E * rounds) work); 'FW' blocked Floyd-Warshall with min-plus tiles (N^3
        GEMM-shaped work); 'auto' takes the one with the smaller predicted time in the cost
        model of :func:`gpu_method_costs`, whose rates were measured on an NVIDIA H200. With ``indices``,
        'FW' is computed by the single-source method from those sources (Floyd-Warshall needs
        the whole N x N).
    indices : int or array-like of int, optional
        Sources to compute; negative values count from the end as in scipy. An int gives a 1-D
        result of shape (N,), an array of L sources an (L, N) result. Default: all N sources.
    n_jobs : int, optional
        CPU threads (joblib convention: None or -1 = all cores, -2 = all but one).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where to compute. NumPy/scipy input on 'cuda' is computed on the GPU into device memory
        and copied back once as a NumPy array.
    progress : bool, optional
        Show a tqdm bar over the sources. None: only when the call is expected to take more than
        about 2 s.

    Returns
    -------
    dist_matrix : ndarray of shape (N, N), (L, N) or (N,)
        Geodesic distances in the graph's float dtype (float32 stays float32, anything else
        becomes float64); ``+inf`` between disconnected nodes.

    Raises
    ------
    ValueError
        If the graph is not square, has negative or NaN weights, ``method`` is unknown or
        ``indices`` is out of range.
    MemoryError
        If the output (and, on the GPU, the kernels' scratch) cannot fit in host or device memory;
        the message names the bytes and a remedy.

    See Also
    --------
    scipy.sparse.csgraph.shortest_path : The reference implementation.
    geodesic_from_neighbors : Geodesic distances of new points through their neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.sparse import csr_matrix
    >>> from isogan import geodesic_distances
    >>> graph = csr_matrix(np.array([[0, 1.0, 0], [0, 0, 2.0], [0, 0, 0]]))
    >>> geodesic_distances(graph)
    array([[0., 1., 3.],
           [1., 0., 2.],
           [3., 2., 0.]])
    """
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"The 'method' parameter must be a str among {set(_METHODS)}. Got {method!r} instead.")
    on_gpu_sparse = cuda_paths.is_device_sparse(graph)
    if on_gpu_sparse or is_device_array(graph):
        if check_device(device) == "cpu":
            raise ValueError("graph is a GPU array; pass device='cuda' or 'auto', or move it to the host first.")
        resolve_device("cuda", "paths")
        if on_gpu_sparse:
            return cuda_paths.geodesic_on_device_sparse(graph, method, indices)
        return cuda_paths.geodesic_on_device_input(graph, method, indices)
    backend = resolve_device(device, "paths")

    weights = as_symmetric_csr(graph)
    n_nodes = weights.n_nodes
    sources, squeeze = check_sources(indices, n_nodes)
    n_rows = n_nodes if sources is None else sources.size
    out_bytes = n_rows * n_nodes * weights.dtype.itemsize
    what = f"the ({n_rows}, {n_nodes}) {weights.dtype.name} geodesic distance matrix"
    ensure_memory(out_bytes, what, _MEMORY_REMEDY, device="cpu")
    if backend == "cuda":
        result = cuda_paths.geodesic_on_device(weights, method, sources, DeviceArray).to_host()
    else:
        if method == "auto":
            method = "FW" if indices is None and weights.n_edges >= n_nodes * n_nodes / 4 else "D"
        if method == "FW" and sources is None:
            result = _floyd_warshall_host(weights, n_jobs)
        else:
            result = _dijkstra_host(weights, sources, n_jobs, progress)
    return result[0] if squeeze else result


def geodesic_from_neighbors(
    neighbor_distances: Any,
    neighbor_indices: Any,
    dist_matrix: np.ndarray,
    *,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Geodesic distances from new points to the training points, through their neighbours.

    ``G[q, j] = min_k (neighbor_distances[q, k] + dist_matrix[neighbor_indices[q, k], j])``, the
    same additions and comparisons as ``sklearn.manifold.Isomap.transform``, so the result is
    bit-identical to it; computed natively over all cores.

    Parameters
    ----------
    neighbor_distances : array-like of shape (M, k)
        Distance from each new point to each of its k training neighbours.
    neighbor_indices : array-like of int of shape (M, k)
        Training-point index of each neighbour.
    dist_matrix : ndarray, torch.Tensor or cupy.ndarray of shape (N, N)
        Training geodesic distances (e.g. ``Isomap.dist_matrix_``); float32 or float64. A GPU
        array runs the product on its GPU and returns a GPU array.
    n_jobs : int, optional
        CPU threads (joblib convention).

    Returns
    -------
    ndarray of shape (M, N)
        In ``dist_matrix``'s dtype (and library, for GPU input).

    Raises
    ------
    ValueError
        On mismatched shapes or indices outside [0, N).

    See Also
    --------
    min_plus_rows : The same for a ragged (CSR) neighbour graph, e.g. radius neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from isogan.paths import geodesic_from_neighbors
    >>> D = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> geodesic_from_neighbors([[0.5]], [[1]], D)
    array([[1.5, 0.5]])
    """
    dist = _dist_matrix(dist_matrix)
    neighbor_distances = np.asarray(neighbor_distances)
    neighbor_indices = np.asarray(neighbor_indices)
    if neighbor_distances.ndim != 2 or neighbor_distances.shape != neighbor_indices.shape:
        raise ValueError(
            "neighbor_distances and neighbor_indices must be 2-D arrays of the same shape (M, k); got "
            f"{neighbor_distances.shape} and {neighbor_indices.shape}"
        )
    n_queries, n_neighbors = neighbor_distances.shape
    query_indptr = np.arange(n_queries + 1, dtype=np.int64) * n_neighbors
    return _min_plus(query_indptr, neighbor_indices.reshape(-1), neighbor_distances.reshape(-1), dist, n_jobs)


def min_plus_rows(neighbor_graph: Any, dist_matrix: np.ndarray, *, n_jobs: int | None = None) -> np.ndarray:
    """Geodesic distances of new points through a ragged (CSR) neighbour graph.

    ``G[q, j] = min over stored (q, i) of (neighbor_graph[q, i] + dist_matrix[i, j])``; every
    stored entry counts, explicit zeros included (a new point equal to a training point). A row
    without any stored entry gives ``+inf``.

    Parameters
    ----------
    neighbor_graph : sparse matrix of shape (M, N)
        Distances from new points to training points, e.g.
        ``NearestNeighbors.radius_neighbors_graph(Y, mode='distance')``.
    dist_matrix : ndarray, torch.Tensor or cupy.ndarray of shape (N, N)
        Training geodesic distances; float32 or float64. A GPU array runs the product on its GPU
        and returns a GPU array.
    n_jobs : int, optional
        CPU threads (joblib convention).

    Returns
    -------
    ndarray of shape (M, N)
        In ``dist_matrix``'s dtype.

    Raises
    ------
    ValueError
        If ``neighbor_graph`` is not sparse or its column count differs from N.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.sparse import csr_matrix
    >>> from isogan.paths import min_plus_rows
    >>> D = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> min_plus_rows(csr_matrix(np.array([[0.25, 2.0]])), D)
    array([[0.25, 1.25]])
    """
    dist = _dist_matrix(dist_matrix)
    if not sp.issparse(neighbor_graph):
        raise ValueError(f"neighbor_graph must be a scipy sparse matrix, got {type(neighbor_graph).__name__}")
    neighbor_graph = neighbor_graph.tocsr()
    if neighbor_graph.shape[1] != dist.shape[0]:
        raise ValueError(
            f"neighbor_graph has {neighbor_graph.shape[1]} columns but dist_matrix has {dist.shape[0]} training points"
        )
    query_indptr = np.asarray(neighbor_graph.indptr, dtype=np.int64)
    return _min_plus(query_indptr, neighbor_graph.indices, neighbor_graph.data, dist, n_jobs)


# ----------------------------------------------------------------------------- validation


class SymmetricGraph:
    """The undirected CSR graph the kernels read: int64 offsets, int32 columns, min weights."""

    def __init__(self, n_nodes: int, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> None:
        self.n_nodes = n_nodes
        self.indptr = indptr
        self.indices = indices
        self.weights = weights

    @property
    def dtype(self) -> np.dtype:
        return self.weights.dtype

    @property
    def n_edges(self) -> int:
        return int(self.indices.size)


def _float_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def _check_weights(weights: np.ndarray) -> None:
    if np.iscomplexobj(weights):
        raise ValueError("graph weights must be real numbers, got a complex dtype")
    if weights.size and np.isnan(weights).any():
        raise ValueError("graph contains NaN edge weights; geodesic distances need non-negative weights")
    if weights.size and (weights < 0).any():
        raise ValueError(
            "graph contains negative edge weights; geodesic distances need non-negative weights "
            "(use scipy.sparse.csgraph.shortest_path(method='J') for signed graphs)"
        )


def as_symmetric_csr(graph: Any) -> SymmetricGraph:
    """Validate a host graph and return its undirected CSR form."""
    if sp.issparse(graph):
        if graph.ndim != 2 or graph.shape[0] != graph.shape[1]:
            raise ValueError(f"graph must be a square (N, N) matrix, got shape {graph.shape}")
        # Same conversion as scipy's validate_graph: COO duplicates are summed, CSR ones kept.
        csr = graph.T.tocsr() if graph.format == "csc" else graph.tocsr()
        data = np.asarray(csr.data)
        _check_weights(data)
        dtype = _float_dtype(data.dtype)
        indptr = np.asarray(csr.indptr, dtype=np.int64)
        indices = np.asarray(csr.indices, dtype=np.int32)
        data = np.ascontiguousarray(data, dtype=dtype)
        n_nodes = csr.shape[0]
    else:
        dense = np.asarray(graph)
        if dense.dtype.kind not in "biuf":
            raise ValueError(f"graph must hold real numbers, got dtype {dense.dtype}")
        if dense.ndim != 2 or dense.shape[0] != dense.shape[1]:
            raise ValueError(f"graph must be a square (N, N) matrix, got shape {dense.shape}")
        _check_weights(dense)
        dtype = _float_dtype(dense.dtype)
        rows, cols = np.nonzero((dense != 0) & np.isfinite(dense))
        n_nodes = dense.shape[0]
        indptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_nodes), out=indptr[1:])
        indices = cols.astype(np.int32)
        data = np.ascontiguousarray(dense[rows, cols], dtype=dtype)
    if n_nodes >= 2**31 - 1:
        raise ValueError(f"graph has {n_nodes} nodes; at most 2**31 - 2 are supported")
    indptr, indices, weights = _core.paths_symmetrize(indptr, indices, data)
    return SymmetricGraph(n_nodes, indptr, indices, weights)


def check_sources(indices: Any, n_nodes: int) -> tuple[np.ndarray | None, bool]:
    """Return (sources as int64 or None for all, whether the result is one 1-D row)."""
    if indices is None:
        return None, False
    requested = np.asarray(indices)
    if requested.dtype.kind not in "iu" and requested.size:
        raise ValueError(f"indices must be integers, got dtype {requested.dtype}")
    squeeze = requested.ndim == 0
    if requested.ndim > 1:
        raise ValueError(f"indices must be an int or a 1-D array of ints, got shape {requested.shape}")
    sources = np.array(requested, dtype=np.int64).reshape(-1)
    sources[sources < 0] += n_nodes
    if sources.size and (sources.min() < 0 or sources.max() >= n_nodes):
        raise ValueError(f"indices out of range 0...{n_nodes - 1}")
    return sources, squeeze


def _dist_matrix(dist_matrix: Any) -> Any:
    if is_device_array(dist_matrix):
        view = device_array_view(dist_matrix)
        if view.dtype not in (np.float32, np.float64) or len(view.shape) != 2 or view.shape[0] != view.shape[1]:
            raise ValueError(f"dist_matrix must be a square float32/float64 matrix, got {view.shape} {view.dtype}")
        return dist_matrix
    dist = np.asarray(dist_matrix)
    if dist.dtype not in (np.float32, np.float64):
        dist = dist.astype(np.float64)
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dist_matrix must be a square (N, N) matrix, got shape {dist.shape}")
    return np.ascontiguousarray(dist)


# ----------------------------------------------------------------------------- CPU


def _dijkstra_host(
    graph: SymmetricGraph, sources: np.ndarray | None, n_jobs: int | None, progress: bool | None
) -> np.ndarray:
    """Dijkstra from each source; all pairs (sources=None) reuse finished rows (see paths_cpu.cpp)."""
    n_nodes = graph.n_nodes
    if sources is None:
        out = np.empty((n_nodes, n_nodes), dtype=graph.dtype)
        _run_dijkstra(graph, None, None, out, n_jobs, progress)
        return out
    out = np.empty((sources.size, n_nodes), dtype=graph.dtype)
    graph, sources, column_order = _search_order(graph, sources)
    _run_dijkstra(graph, sources, column_order, out, n_jobs, progress)
    return out


def _search_order(graph: SymmetricGraph, sources: np.ndarray) -> tuple[SymmetricGraph, np.ndarray, np.ndarray | None]:
    """The graph the searches run on (relabelled for locality when large), their sources in its labels,
    and the order that maps its columns back to the caller's (None: unchanged)."""
    n_nodes = graph.n_nodes
    if n_nodes < _REORDER_MIN_NODES or sources.size < _REORDER_MIN_SOURCES:
        return graph, sources, None
    graph, column_order = _locality_relabelled(graph)
    position = np.empty(n_nodes, dtype=np.int64)
    position[column_order] = np.arange(n_nodes, dtype=np.int64)
    return graph, position[sources], column_order


def _run_dijkstra(graph: SymmetricGraph, sources: np.ndarray | None, column_order: np.ndarray | None,
                  out: np.ndarray, n_jobs: int | None, progress: bool | None) -> None:
    """Fill ``out`` with the rows of ``sources`` (None: all pairs, in node order), in native chunks."""
    n_nodes = graph.n_nodes
    all_pairs = sources is None
    if all_pairs:
        sources = _all_pairs_order(graph)
    n_threads = threads(n_jobs)

    def run(start: int, stop: int) -> None:
        if all_pairs:
            _core.paths_all_pairs(graph.indptr, graph.indices, graph.weights, sources, start, stop, out, n_threads)
        else:
            _core.paths_dijkstra(
                graph.indptr, graph.indices, graph.weights, sources[start:stop], out[start:stop], n_threads,
                column_order,
            )

    search_share = _REUSE_SPEEDUP_FACTOR if all_pairs else 1.0
    show = show_progress(relaxation_seconds(sources.size * search_share, n_nodes, graph.n_edges, n_threads), progress)
    if not show or sources.size == 0:
        run(0, sources.size)
        return
    # Each chunk is one native call: ~100 updates, each chunk still long enough to keep every thread busy.
    chunk = max(8 * n_threads, math.ceil(sources.size / 100))
    with progress_bar(sources.size, "geodesic distances", True, unit="source") as bar:
        for start in range(0, sources.size, chunk):
            stop = min(sources.size, start + chunk)
            run(start, stop)
            bar.update(stop - start)


def geodesic_row_blocks(
    graph: Any, indices: Any, block_rows: int, *, n_jobs: int | None = None, progress: bool | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Geodesic rows from many sources, ``block_rows`` at a time, for callers that cannot hold them all.

    The same rows as ``geodesic_distances(graph, indices=indices, device='cpu')`` (bit-identical),
    with the graph validated, symmetrised and relabelled once; one (block_rows, N) buffer is
    reused, so each yielded block is valid until the next one is asked for.

    Parameters
    ----------
    graph : sparse matrix or ndarray of shape (N, N)
        As in :func:`geodesic_distances`.
    indices : array-like of int of shape (L,)
        Sources.
    block_rows : int
        Rows per block (at least 1).
    n_jobs : int or None, default=None
        Threads (None: all cores).
    progress : bool or None, default=None
        Progress bar over the sources (None: when predicted to take over ~2 s).

    Yields
    ------
    start : int
        Position of the block's first source in ``indices``.
    rows : ndarray of shape (n_block, N)
        Its geodesic rows, in the graph's float dtype.
    """
    weights = as_symmetric_csr(graph)
    sources, _ = check_sources(indices, weights.n_nodes)
    block_rows = max(1, int(block_rows))
    search_graph, search_sources, column_order = _search_order(weights, sources)
    buffer = np.empty((min(block_rows, sources.size), weights.n_nodes), dtype=weights.dtype)
    show = show_progress(relaxation_seconds(sources.size, weights.n_nodes, weights.n_edges, threads(n_jobs)), progress)
    with progress_bar(sources.size, "geodesic distances", show, unit="source") as bar:
        for start in range(0, sources.size, block_rows):
            block = buffer[: min(block_rows, sources.size - start)]
            _run_dijkstra(search_graph, search_sources[start : start + block.shape[0]], column_order, block, n_jobs,
                          False)
            bar.update(block.shape[0])
            yield start, block


def _locality_relabelled(graph: SymmetricGraph) -> tuple[SymmetricGraph, np.ndarray]:
    """The graph relabelled in reverse Cuthill-McKee order, and that order.

    Node ``v`` of the returned graph is node ``order[v]`` of ``graph``; edges and weights are
    unchanged (explicit zero weights included), so shortest-path distances are the same numbers:
    Dijkstra's result is the minimum over paths of the sums along each path, whatever the labels.
    Graph neighbours get nearby labels, so a search's distance row is read and written in a few
    cache lines around its frontier. Costs O(E) time and one more copy of the graph.
    """
    n_nodes = graph.n_nodes
    adjacency = sp.csr_matrix((graph.weights, graph.indices, graph.indptr), shape=(n_nodes, n_nodes))
    order = reverse_cuthill_mckee(adjacency, symmetric_mode=True).astype(np.int64)
    position = np.empty(n_nodes, dtype=np.int32)
    position[order] = np.arange(n_nodes, dtype=np.int32)
    degree = np.diff(graph.indptr)[order]
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(degree, out=indptr[1:])
    # Entry e of the new CSR is entry source_entry[e] of the old one: new row r is old row order[r].
    source_entry = np.repeat(graph.indptr[:-1][order] - indptr[:-1], degree) + np.arange(graph.n_edges, dtype=np.int64)
    relabelled = sp.csr_matrix(
        (graph.weights[source_entry], position[graph.indices[source_entry]], indptr), shape=(n_nodes, n_nodes)
    )
    relabelled.has_sorted_indices = False
    relabelled.sort_indices()
    return (
        SymmetricGraph(
            n_nodes,
            np.asarray(relabelled.indptr, dtype=np.int64),
            np.asarray(relabelled.indices, dtype=np.int32),
            np.ascontiguousarray(relabelled.data, dtype=graph.dtype),
        ),
        order,
    )


def _all_pairs_order(graph: SymmetricGraph) -> np.ndarray:
    """Source order for all pairs with row reuse.

    The first ``_RANDOM_SEED_FRACTION`` of the sources, in random order, spread finished rows evenly
    over the graph, so that every later search meets finished rows in every direction and stops
    early. The rest follow a bandwidth-reducing (reverse Cuthill-McKee) order: consecutive sources
    are graph neighbours, whose searches reuse the same finished rows while they are still in cache
    (10-15% less CPU time than an all-random order on an N=8000 swiss-roll kNN graph).
    """
    n_nodes = graph.n_nodes
    order = np.random.default_rng(0).permutation(n_nodes)
    n_seed = int(_RANDOM_SEED_FRACTION * n_nodes)
    is_seed = np.zeros(n_nodes, dtype=bool)
    is_seed[order[:n_seed]] = True
    adjacency = sp.csr_matrix((graph.weights, graph.indices, graph.indptr), shape=(n_nodes, n_nodes))
    local_order = reverse_cuthill_mckee(adjacency, symmetric_mode=True)
    return np.concatenate([order[:n_seed], local_order[~is_seed[local_order]]]).astype(np.int64)


def _floyd_start(graph: SymmetricGraph) -> np.ndarray:
    """Dense (N, N) start matrix of Floyd-Warshall: edge weights, +inf elsewhere, 0 diagonal."""
    n_nodes = graph.n_nodes
    dist = np.full((n_nodes, n_nodes), np.inf, dtype=graph.dtype)
    rows = np.repeat(np.arange(n_nodes), np.diff(graph.indptr))
    dist[rows, graph.indices] = graph.weights
    np.fill_diagonal(dist, 0)
    return dist


def _floyd_warshall_host(graph: SymmetricGraph, n_jobs: int | None) -> np.ndarray:
    dist = _floyd_start(graph)
    _core.paths_floyd_warshall(dist, threads(n_jobs))
    return dist


def _min_plus(
    query_indptr: np.ndarray, neighbor_index: Any, neighbor_dist: Any, dist: Any, n_jobs: int | None
) -> Any:
    neighbor_index = np.asarray(neighbor_index)
    if neighbor_index.dtype.kind not in "iu" and neighbor_index.size:
        raise ValueError(f"neighbour indices must be integers, got dtype {neighbor_index.dtype}")
    neighbor_index = np.ascontiguousarray(neighbor_index, dtype=np.int64)
    dtype = np.dtype(dist.dtype) if not is_device_array(dist) else device_array_view(dist).dtype
    neighbor_dist = np.ascontiguousarray(neighbor_dist, dtype=dtype)
    n_nodes = dist.shape[0]
    if neighbor_index.size and (neighbor_index.min() < 0 or neighbor_index.max() >= n_nodes):
        raise ValueError(f"neighbour indices must lie in [0, {n_nodes}), the training points of dist_matrix")
    n_queries = query_indptr.size - 1
    what = f"the ({n_queries}, {n_nodes}) {dtype.name} geodesic distances of the new points"
    remedy = "Transform the new points in smaller batches."
    if is_device_array(dist):
        ensure_memory(n_queries * n_nodes * dtype.itemsize, what, remedy, device="cuda")
        return cuda_paths.min_plus_on_device(query_indptr, neighbor_index, neighbor_dist, dist, n_queries)
    ensure_memory(n_queries * n_nodes * dtype.itemsize, what, remedy)
    out = np.empty((n_queries, n_nodes), dtype=dtype)
    _core.paths_min_plus(query_indptr, neighbor_index, neighbor_dist, dist, out, threads(n_jobs))
    return out


def geodesic_distances_device(graph: Any, method: str = "auto") -> DeviceArray:
    """All-pairs geodesic distances of a host graph, computed on the GPU and left there.

    The device-resident twin of :func:`geodesic_distances` for host graphs, used by
    ``Isomap(device='cuda')``: the O(E) graph is validated and symmetrised on the host, uploaded,
    and the (N, N) result stays in GPU memory as a :class:`~isogan.DeviceArray` (torch and CuPy can
    read it in place; :func:`isogan.classical_mds` reads it in place). Needs neither torch nor CuPy.

    Parameters
    ----------
    graph : sparse matrix or ndarray of shape (N, N)
        As in :func:`geodesic_distances`.
    method : {'auto', 'D', 'FW'}, default='auto'
        GPU algorithm, as in :func:`geodesic_distances` ('auto': the cost model's choice).

    Returns
    -------
    DeviceArray of shape (N, N)
        float32 for a float32 graph, else float64; ``+inf`` between disconnected nodes.

    Raises
    ------
    RuntimeError
        Without a usable CUDA device (the reason is given).
    MemoryError
        If the result, graph and scratch do not fit in free GPU memory (bytes and remedy named).
    ValueError
        As :func:`geodesic_distances` for a bad graph or ``method``.
    """
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"The 'method' parameter must be a str among {set(_METHODS)}. Got {method!r} instead.")
    resolve_device("cuda", "paths")
    return cuda_paths.geodesic_on_device(as_symmetric_csr(graph), method, None, DeviceArray)
