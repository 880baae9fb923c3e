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
import sys
from typing import Any

import numpy as np
import scipy.sparse as sp

from isogan import _core
from isogan._arrays import device_array_view, device_empty, is_device_array
from isogan._device import ensure_memory, resolve_device

__all__ = ["geodesic_distances", "geodesic_from_neighbors", "min_plus_rows"]

_METHODS = ("auto", "FW", "D")

# Seconds per edge relaxation of one Dijkstra thread on a current x86 core; only used to decide
# whether a call runs long enough (> ~2 s) to deserve a progress bar.
_SECONDS_PER_RELAXATION = 1e-8
_PROGRESS_AFTER_SECONDS = 2.0
# All-pairs runs reuse finished rows and cost about this fraction of independent searches.
_REUSE_SPEEDUP_FACTOR = 0.25

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
    graph : sparse matrix, ndarray, torch.Tensor or cupy.ndarray of shape (N, N)
        Edge weights, e.g. ``sklearn.neighbors.kneighbors_graph(X, mode='distance')``. Sparse:
        every stored entry is an edge (explicit zeros are zero-weight edges). Dense: 0 and +inf
        mean no edge. Weights must be non-negative and not NaN. A GPU array (dense) runs on the GPU
        and returns a GPU array of the same library on the same device.
    method : {'auto', 'D', 'FW'}, default='auto'
        'D': Dijkstra from every source, sources spread over threads. 'FW': blocked
        Floyd-Warshall on the dense matrix (O(N^3); only sensible for small or dense graphs).
        'auto' picks like scipy: 'FW' when the graph has at least N^2/4 edges and no ``indices``
        are given, else 'D'. With ``indices``, 'FW' is computed by Dijkstra from those sources
        (Floyd-Warshall needs the whole N x N).
    indices : int or array-like of int, optional
        Sources to compute; negative values count from the end as in scipy. An int gives a 1-D
        result of shape (N,), an array of L sources an (L, N) result. Default: all N sources.
    n_jobs : int, optional
        CPU threads (joblib convention: None or -1 = all cores, -2 = all but one).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where to compute. NumPy/scipy input on 'cuda' is computed on the GPU and copied back.
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
        If the output cannot fit in memory; the message names the bytes and a remedy.

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
    backend = resolve_device(device)
    if is_device_array(graph):
        if backend != "cuda":
            raise ValueError("graph is a GPU array; pass device='cuda' or 'auto', or move it to the host first.")
        return _geodesic_on_device_input(graph, method, indices)

    weights = _as_symmetric_csr(graph)
    n_nodes = weights.n_nodes
    sources, squeeze = _sources(indices, n_nodes)
    if method == "auto":
        method = "FW" if indices is None and weights.n_edges >= n_nodes * n_nodes / 4 else "D"
    n_rows = n_nodes if sources is None else sources.size
    out_bytes = n_rows * n_nodes * weights.dtype.itemsize
    what = f"the ({n_rows}, {n_nodes}) {weights.dtype.name} geodesic distance matrix"
    if backend == "cuda":
        result = _geodesic_cuda_from_host(weights, method, sources, out_bytes, what)
    else:
        ensure_memory(out_bytes, what, _MEMORY_REMEDY, device="cpu")
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
    dist_matrix : ndarray of shape (N, N)
        Training geodesic distances (e.g. ``Isomap.dist_matrix_``); float32 or float64.
    n_jobs : int, optional
        CPU threads (joblib convention).

    Returns
    -------
    ndarray of shape (M, N)
        In ``dist_matrix``'s dtype.

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
    dist_matrix : ndarray of shape (N, N)
        Training geodesic distances; float32 or float64.
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


class _SymmetricGraph:
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


def _as_symmetric_csr(graph: Any) -> _SymmetricGraph:
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
    return _SymmetricGraph(n_nodes, indptr, indices, weights)


def _sources(indices: Any, n_nodes: int) -> tuple[np.ndarray | None, bool]:
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


def _dist_matrix(dist_matrix: Any) -> np.ndarray:
    dist = np.asarray(dist_matrix)
    if dist.dtype not in (np.float32, np.float64):
        dist = dist.astype(np.float64)
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dist_matrix must be a square (N, N) matrix, got shape {dist.shape}")
    return np.ascontiguousarray(dist)


# ----------------------------------------------------------------------------- CPU


def _dijkstra_host(
    graph: _SymmetricGraph, sources: np.ndarray | None, n_jobs: int | None, progress: bool | None
) -> np.ndarray:
    """Dijkstra from each source; all pairs (sources=None) reuse finished rows (see paths_cpu.cpp)."""
    n_nodes = graph.n_nodes
    all_pairs = sources is None
    if all_pairs:
        # A random order spreads finished rows evenly over the graph, so later searches meet them
        # in every direction and stop early.
        sources = np.random.default_rng(0).permutation(n_nodes).astype(np.int64)
        out = np.empty((n_nodes, n_nodes), dtype=graph.dtype)
        row_done = np.zeros(n_nodes, dtype=np.uint8)
    else:
        out = np.empty((sources.size, n_nodes), dtype=graph.dtype)
    n_threads = _core.resolve_threads(_jobs(n_jobs))

    def run(start: int, stop: int) -> None:
        if all_pairs:
            _core.paths_all_pairs(
                graph.indptr, graph.indices, graph.weights, sources[start:stop], out, row_done, n_threads
            )
        else:
            _core.paths_dijkstra(
                graph.indptr, graph.indices, graph.weights, sources[start:stop], out[start:stop], n_threads
            )

    relaxations_per_source = (graph.n_edges + n_nodes) * (_REUSE_SPEEDUP_FACTOR if all_pairs else 1.0)
    expected_seconds = sources.size * relaxations_per_source * _SECONDS_PER_RELAXATION / n_threads
    show = expected_seconds > _PROGRESS_AFTER_SECONDS if progress is None else bool(progress)
    if not show or sources.size == 0:
        run(0, sources.size)
        return out
    from tqdm.auto import tqdm

    # Each chunk is one native call: ~100 updates, each chunk still long enough to keep every thread busy.
    chunk = max(8 * n_threads, math.ceil(sources.size / 100))
    with tqdm(total=sources.size, desc="geodesic distances", unit="source", file=sys.stderr, leave=False) as bar:
        for start in range(0, sources.size, chunk):
            stop = min(sources.size, start + chunk)
            run(start, stop)
            bar.update(stop - start)
    return out


def _floyd_start(graph: _SymmetricGraph) -> np.ndarray:
    """Dense (N, N) start matrix of Floyd-Warshall: edge weights, +inf elsewhere, 0 diagonal."""
    n_nodes = graph.n_nodes
    dist = np.full((n_nodes, n_nodes), np.inf, dtype=graph.dtype)
    rows = np.repeat(np.arange(n_nodes), np.diff(graph.indptr))
    dist[rows, graph.indices] = graph.weights
    np.fill_diagonal(dist, 0)
    return dist


def _floyd_warshall_host(graph: _SymmetricGraph, n_jobs: int | None) -> np.ndarray:
    dist = _floyd_start(graph)
    _core.paths_floyd_warshall(dist, _jobs(n_jobs))
    return dist


def _min_plus(
    query_indptr: np.ndarray, neighbor_index: Any, neighbor_dist: Any, dist: np.ndarray, n_jobs: int | None
) -> np.ndarray:
    neighbor_index = np.asarray(neighbor_index)
    if neighbor_index.dtype.kind not in "iu" and neighbor_index.size:
        raise ValueError(f"neighbour indices must be integers, got dtype {neighbor_index.dtype}")
    neighbor_index = np.ascontiguousarray(neighbor_index, dtype=np.int64)
    neighbor_dist = np.ascontiguousarray(neighbor_dist, dtype=dist.dtype)
    n_nodes = dist.shape[0]
    if neighbor_index.size and (neighbor_index.min() < 0 or neighbor_index.max() >= n_nodes):
        raise ValueError(f"neighbour indices must lie in [0, {n_nodes}), the training points of dist_matrix")
    n_queries = query_indptr.size - 1
    ensure_memory(
        n_queries * n_nodes * dist.dtype.itemsize,
        f"the ({n_queries}, {n_nodes}) {dist.dtype.name} geodesic distances of the new points",
        "Transform the new points in smaller batches.",
    )
    out = np.empty((n_queries, n_nodes), dtype=dist.dtype)
    _core.paths_min_plus(query_indptr, neighbor_index, neighbor_dist, dist, out, _jobs(n_jobs))
    return out


def _jobs(n_jobs: int | None) -> int:
    return 0 if n_jobs is None else int(n_jobs)


# ----------------------------------------------------------------------------- CUDA


def _geodesic_cuda_from_host(
    graph: _SymmetricGraph, method: str, sources: np.ndarray | None, out_bytes: int, what: str
) -> np.ndarray:
    """NumPy in, NumPy out: the kernels run on the GPU, staging through device buffers."""
    n_nodes = graph.n_nodes
    if method == "FW" and sources is None:
        ensure_memory(out_bytes, what, _MEMORY_REMEDY, device="cuda")
        dist = _floyd_start(graph)
        _core.paths_floyd_warshall_cuda_host(dist)
        return dist
    if sources is None:
        sources = np.arange(n_nodes, dtype=np.int64)
    scratch = int(_core.paths_shortest_paths_cuda_scratch_bytes(n_nodes, sources.size))
    graph_bytes = graph.indptr.nbytes + graph.indices.nbytes + graph.weights.nbytes + sources.nbytes
    ensure_memory(out_bytes + scratch + graph_bytes, what, _MEMORY_REMEDY, device="cuda")
    ensure_memory(out_bytes, what, _MEMORY_REMEDY, device="cpu")
    out = np.empty((sources.size, n_nodes), dtype=graph.dtype)
    _core.paths_shortest_paths_cuda_host(graph.indptr, graph.indices, graph.weights, sources, out)
    return out


def _geodesic_on_device_input(graph: Any, method: str, indices: Any) -> Any:
    """Dense GPU adjacency in, GPU distances out (same library, device and stream)."""
    view = device_array_view(graph)
    if len(view.shape) != 2 or view.shape[0] != view.shape[1]:
        raise ValueError(f"graph must be a square (N, N) matrix, got shape {view.shape}")
    if view.dtype not in (np.float32, np.float64):
        raise ValueError(f"a GPU graph must be float32 or float64, got {view.dtype}")
    n_nodes = view.shape[0]
    sources, squeeze = _sources(indices, n_nodes)
    out_bytes = n_nodes * n_nodes * view.dtype.itemsize
    ensure_memory(
        out_bytes, f"the ({n_nodes}, {n_nodes}) {view.dtype.name} geodesic distance matrix", _MEMORY_REMEDY, device="cuda"
    )
    # Copy the adjacency with the input's own library, then turn it into distances in place.
    dist = device_empty(graph, (n_nodes, n_nodes), view.dtype)
    dist[...] = graph
    if _has_nan_or_negative(dist):
        raise ValueError("graph contains negative or NaN edge weights; geodesic distances need non-negative weights")
    dist_view = device_array_view(dist)
    _core.paths_floyd_warshall_cuda(dist_view.pointer, n_nodes, view.dtype.name, dist_view.stream, True)
    if sources is None:
        return dist
    rows = dist[sources.tolist()]
    return rows[0] if squeeze else rows


def _has_nan_or_negative(array: Any) -> bool:
    """Whether a torch or CuPy array holds a NaN or a negative value (one device reduction)."""
    return bool(((array != array) | (array < 0)).any())
