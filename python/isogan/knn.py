"""k-nearest-neighbour and radius-neighbour graphs: exact, native on CPU (OpenMP) and CUDA, or approximate.

Three public search functions:

- :func:`knn_graph`: the (N, N) sparse neighbour graph of a data set, equal to
  :func:`sklearn.neighbors.kneighbors_graph` / :func:`sklearn.neighbors.radius_neighbors_graph`.
- :func:`kneighbors`: the k nearest fit points of each query, ``(distances (M, k), indices (M, k))``,
  as :meth:`sklearn.neighbors.NearestNeighbors.kneighbors` returns them (used by
  ``Isomap.transform``).
- :func:`radius_neighbors`: all fit points within a radius of each query, as a CSR (M, N) matrix.

Distances are exact (float64 accumulation, as scikit-learn's trees compute them) and neighbours
are ordered by (distance, index): among equal distances the smaller index wins. scikit-learn's own
choice among tied neighbours depends on its algorithm (a kd-tree visits points in tree order), so
with ties at the k-th place the *set* of neighbours may differ from scikit-learn's while every
distance agrees.

Native metrics: minkowski with p >= 1 (p=1, 2 and inf have fast paths) and its aliases
'euclidean'/'l2', 'manhattan'/'cityblock'/'l1', 'chebyshev'/'infinity', plus
``metric='precomputed'`` with a dense distance matrix. Everything else (other metrics, callables,
non-empty ``metric_params``, minkowski p < 1, sparse X, a sparse precomputed graph) is computed
by scikit-learn's :class:`~sklearn.neighbors.NearestNeighbors` with the same result.

Search algorithm (``algorithm=``, scikit-learn's names): 'brute' is the blocked brute force,
'kd_tree' an exact kd-tree (O(N log N) for low-dimensional data), 'auto' picks the kd-tree for
native Minkowski searches on the CPU when the data have few features (``n_features <= 5``, or
``n_features == 6`` from 32768 fit points on; measured crossover on Gaussian data, the hardest
case for a tree) and brute force otherwise. 'ball_tree' is accepted for scikit-learn
compatibility and runs the kd-tree: both are exact, so only the speed differs. The two native
algorithms return identical results bit for bit (same distances, same tie-breaking). Precomputed
distances and GPU searches are always brute force; metrics served by scikit-learn receive
``algorithm`` unchanged.

``algorithm='approximate'`` is the one inexact choice, never picked by 'auto': an HNSW graph
(faiss-cpu, the optional ``pip install "isogan[approx]"``) finds the candidate neighbours, then
the exact distance of every returned pair is recomputed, so the graph's edge lengths are those of
the exact search, bit for bit, and only some neighbours may differ. It searches k nearest
neighbours (no radius) in Euclidean distance on the CPU, whatever ``device`` says; at
N=100k x 784 (``isogan.datasets.make_shapes``, two cores) it took 6.0 s against 164 s for the
exact brute force (``benchmarks/RESULTS.md``). Its recall (:func:`recall_at_k`) is >= 0.95 on the swiss roll and the shapes images with
the default parameters (:mod:`isogan._backend.approx_knn` says what more recall costs).

GPU input (a torch CUDA tensor or a CuPy array, float32 or float64, C-contiguous) is read in place
and the result stays on its device, allocated by the input's library: :func:`kneighbors` returns
two device arrays; :func:`knn_graph` and :func:`radius_neighbors` return a
``torch.sparse_csr_tensor`` for torch input and a ``cupyx.scipy.sparse.csr_matrix`` for CuPy input.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from isogan import _core
from isogan._backend import approx_knn, cuda_knn
from isogan._backend.arrays import is_device_array
from isogan._backend.policy import check_device, resolve_device, threads
from isogan._knn_checks import (
    _EUCLIDEAN,
    _LEAF_SIZE,
    PRECOMPUTED,
    _check_algorithm,
    _check_features,
    _check_host,
    _check_k_fits,
    _check_mode,
    _check_not_approximate_radius,
    _check_radius,
    _check_tree_memory,
    _out_dtype,
    _require_device_pair,
    _Shape,
    _square_check,
    _use_tree,
    check_n_neighbors,
    native_metric,
)
from isogan._knn_results import merge_nearest, neighbors_to_csr, recall_at_k

__all__ = ["PRECOMPUTED", "check_n_neighbors", "kneighbors", "kneighbors_blocked", "knn_graph", "merge_nearest",
           "native_metric", "neighbors_to_csr", "radius_neighbors", "recall_at_k"]

# ---------------------------------------------------------------- host search (numpy in, numpy out)
def _host_kneighbors(fit: np.ndarray, queries: np.ndarray | None, k: int, code: int, p: float, n_jobs: int,
                     device: str, algorithm: str = "brute") -> tuple[np.ndarray, np.ndarray]:
    exclude_self = queries is None
    queries = fit if queries is None else queries
    points = queries if code == PRECOMPUTED else fit
    if _use_tree(algorithm, code, fit.shape[0], fit.shape[1], device):
        _check_tree_memory(fit, queries.shape[0] * k * (8 + fit.dtype.itemsize))
        return _core.knn_kneighbors_kdtree(queries, points, k, code, p, exclude_self, n_jobs, _LEAF_SIZE)
    if device == "cuda":
        return cuda_knn.host_kneighbors(queries, points, k, code, p, exclude_self)
    return _core.knn_kneighbors(queries, points, k, code, p, exclude_self, n_jobs)


def _host_radius(fit: np.ndarray, queries: np.ndarray | None, radius: float, code: int, p: float, n_jobs: int,
                 device: str, algorithm: str = "brute") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    exclude_self = queries is None
    queries = fit if queries is None else queries
    points = queries if code == PRECOMPUTED else fit
    if _use_tree(algorithm, code, fit.shape[0], fit.shape[1], device):
        _check_tree_memory(fit, (queries.shape[0] + 1) * 8)
        return _core.knn_radius_kdtree(queries, points, radius, code, p, exclude_self, n_jobs, _LEAF_SIZE)
    if device == "cuda":
        return cuda_knn.host_radius(queries, points, radius, code, p, exclude_self)
    return _core.knn_radius(queries, points, radius, code, p, exclude_self, n_jobs)


# ---------------------------------------------------------------- approximate search (faiss HNSW)
def _check_approximate(X: Any, metric: Any, p: Any, metric_params: dict | None, device: Any, input_name: str) -> np.ndarray:
    """Validate the input of an approximate search: dense host points, Euclidean distance."""
    code_p = native_metric(metric, p, metric_params)
    if code_p is None or code_p[0] != _EUCLIDEAN:
        raise ValueError(
            f"algorithm='approximate' searches Euclidean distances only (metric='euclidean', or 'minkowski' with "
            f"p=2, no metric_params); got metric={metric!r}, p={p!r}, metric_params={metric_params!r}. "
            "Use an exact algorithm ('auto') for this metric."
        )
    check_device(device)
    if is_device_array(X):
        raise ValueError("algorithm='approximate' runs on the CPU: pass host (NumPy) arrays, e.g. .cpu() / .get().")
    if sp.issparse(X):
        raise ValueError("algorithm='approximate' needs dense points; got a sparse matrix. Use an exact algorithm ('auto').")
    return _check_host(X, False, input_name)


# ---------------------------------------------------------------- scikit-learn fallback
def _sklearn_neighbors(fit: Any, metric: Any, p: Any, metric_params: dict | None, n_jobs: Any,
                       n_neighbors: int | None = None, radius: float | None = None,
                       algorithm: str = "auto") -> NearestNeighbors:
    params = {"metric": metric, "p": p, "metric_params": metric_params, "n_jobs": n_jobs, "algorithm": algorithm}
    if n_neighbors is not None:
        params["n_neighbors"] = n_neighbors
    if radius is not None:
        params["radius"] = radius
    return NearestNeighbors(**params).fit(fit)


def _as_output_csr(graph: sp.spmatrix, dtype: np.dtype) -> sp.csr_matrix:
    graph = sp.csr_matrix(graph)
    return sp.csr_matrix((graph.data.astype(dtype, copy=False), graph.indices, graph.indptr), shape=graph.shape)


# ---------------------------------------------------------------- public API
def knn_graph(
    X: Any,
    n_neighbors: int | None = 5,
    radius: float | None = None,
    *,
    metric: Any = "minkowski",
    p: float = 2,
    metric_params: dict | None = None,
    mode: str = "distance",
    include_self: bool | str = False,
    n_jobs: int | None = None,
    device: str = "auto",
    algorithm: str = "auto",
) -> Any:
    """Build the k-nearest-neighbour or radius-neighbour graph of ``X``.

    Equal to :func:`sklearn.neighbors.kneighbors_graph` (``n_neighbors`` set) or
    :func:`sklearn.neighbors.radius_neighbors_graph` (``radius`` set), computed exactly in native
    code by blocked brute force or a kd-tree (``algorithm``).

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features), or GPU array
        Points; with ``metric='precomputed'`` a (n_samples, n_samples) distance matrix, dense or
        sparse (scikit-learn semantics: only stored entries are candidate neighbours). Integer
        input becomes float64; float32 stays float32.
    n_neighbors : int or None, default=5
        Neighbours per point. Exactly one of ``n_neighbors`` and ``radius`` must be set.
    radius : float or None, default=None
        Include every point within this distance (inclusive).
    metric : str or callable, default='minkowski'
        Distance; see the module docstring for what runs natively.
    p : float, default=2
        Minkowski exponent.
    metric_params : dict or None, default=None
        Extra metric arguments (served by scikit-learn).
    mode : {'distance', 'connectivity'}, default='distance'
        Store distances, or ones.
    include_self : bool or 'auto', default=False
        Whether each point is its own neighbour ('auto': True for mode='connectivity'). When
        False a point is excluded by index, so its duplicates stay neighbours at distance 0.
    n_jobs : int or None, default=None
        CPU threads (None: all cores; -1: all; -2: all but one).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where host input is searched. GPU input is always searched on its GPU.
    algorithm : {'auto', 'brute', 'kd_tree', 'ball_tree', 'approximate'}, default='auto'
        Native CPU search: exact blocked brute force, or an exact kd-tree ('ball_tree' also runs
        the kd-tree); 'auto' picks the tree for few features (see the module docstring). The
        result is the same either way. GPU and precomputed searches are brute force (a tree
        with ``metric='precomputed'`` is a ValueError, as in scikit-learn). 'approximate': an
        HNSW search on the CPU (needs ``isogan[approx]``; Euclidean, ``n_neighbors`` only)
        whose neighbours may differ from the exact ones (recall >= 0.95 on the swiss roll and
        the shapes images) while every returned distance is exact.

    Returns
    -------
    graph : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        Row i holds the neighbours of point i (kNN: by increasing (distance, index); radius:
        by increasing index), in X's float dtype; scipy stores the index arrays as int32 when
        they fit (as scikit-learn's graphs), int64 otherwise. For GPU input a
        ``torch.sparse_csr_tensor`` (torch) or ``cupyx.scipy.sparse.csr_matrix`` (CuPy) on the
        input's device, with int64 indices.

    Raises
    ------
    ValueError
        Both or neither of ``n_neighbors``/``radius`` set, ``n_neighbors >= n_samples``,
        ``n_neighbors < 1``, a negative radius, NaN/inf, an empty or non-2-D ``X``, an unknown
        ``algorithm``; with ``algorithm='approximate'``: a radius, a non-Euclidean or
        precomputed metric, sparse or GPU input.
    TypeError
        A non-integer ``n_neighbors``.
    ImportError
        ``algorithm='approximate'`` without faiss-cpu (``pip install "isogan[approx]"``).

    See Also
    --------
    kneighbors : k nearest fit points of new queries.
    radius_neighbors : fit points within a radius of new queries.

    Examples
    --------
    >>> import numpy as np
    >>> from isogan import knn_graph
    >>> knn_graph(np.array([[0.0], [1.0], [3.0]]), n_neighbors=1).toarray()
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 2., 0.]])
    """
    if n_neighbors is not None and radius is not None:
        raise ValueError(
            "Both n_neighbors and radius are provided. Use knn_graph(X, radius=..., n_neighbors=None) "
            "if intended to use radius-based neighbors."
        )
    if n_neighbors is None and radius is None:
        raise ValueError("One of n_neighbors and radius must be set.")
    _check_mode(mode)
    if include_self not in (True, False, "auto"):
        raise ValueError(f"The 'include_self' parameter must be a bool or 'auto'. Got {include_self!r} instead.")
    if include_self == "auto":
        include_self = mode == "connectivity"
    _check_algorithm(algorithm, metric == "precomputed")
    if n_neighbors is not None:
        k = check_n_neighbors(n_neighbors)
        if is_device_array(X):
            distances, indices = kneighbors(X, None if not include_self else X, k, metric=metric, p=p,
                                            metric_params=metric_params, n_jobs=n_jobs, device=device,
                                            algorithm=algorithm)
            m = distances.shape[0]
            xp = cuda_knn.device_module(X)
            indptr = xp.arange(0, m * k + 1, k, dtype=xp.int64) if xp.__name__ == "cupy" else \
                xp.arange(0, m * k + 1, k, dtype=xp.int64, device=X.device)
            data = distances.reshape(-1) if mode == "distance" else xp.ones_like(distances).reshape(-1)
            return cuda_knn.device_csr(X, indptr, indices.reshape(-1), data, (m, m))
        if algorithm == "approximate":
            X = _check_approximate(X, metric, p, metric_params, device, "X")
            n_samples = X.shape[0]
            _check_k_fits(k, n_samples, n_samples, query_is_train=not include_self)
            distances, indices = approx_knn.approximate_kneighbors(X, None if not include_self else X, k,
                                                                   threads(n_jobs))
        else:
            code_p = native_metric(metric, p, metric_params)
            precomputed = metric == "precomputed"
            X = _check_host(X, precomputed)
            if precomputed:
                _square_check(X)
            n_samples = X.shape[0]
            _check_k_fits(k, n_samples, n_samples, query_is_train=not include_self)
            if code_p is None or sp.issparse(X):
                nn = _sklearn_neighbors(X, metric, p, metric_params, n_jobs, n_neighbors=k, algorithm=algorithm)
                return _as_output_csr(nn.kneighbors_graph(None if not include_self else X, k, mode=mode), _out_dtype(X))
            distances, indices = _host_kneighbors(X, None if not include_self else X, k, *code_p, threads(n_jobs),
                                                  resolve_device(device, "knn"), algorithm)
        dtype = _out_dtype(X)
        data = distances.ravel() if mode == "distance" else np.ones(n_samples * k, dtype=dtype)
        return sp.csr_matrix((data, indices.ravel(), np.arange(0, n_samples * k + 1, k)), shape=(n_samples, n_samples))

    r = _check_radius(radius)
    _check_not_approximate_radius(algorithm)
    if is_device_array(X):
        graph = radius_neighbors(X, None if not include_self else X, r, metric=metric, p=p,
                                 metric_params=metric_params, n_jobs=n_jobs, device=device, algorithm=algorithm)
        if mode == "connectivity":
            xp = cuda_knn.device_module(X)
            if xp.__name__ == "cupy":
                graph.data[:] = 1
            else:
                graph = _torch_ones_like_csr(graph)
        return graph
    graph = radius_neighbors(X, None if not include_self else X, r, metric=metric, p=p,
                             metric_params=metric_params, n_jobs=n_jobs, device=device, algorithm=algorithm)
    if mode == "connectivity":
        graph.data[:] = 1
    return graph


def _torch_ones_like_csr(graph: Any) -> Any:
    """Return a torch sparse CSR tensor with ``graph``'s pattern and all stored values 1."""
    return cuda_knn.device_csr(graph.values(), graph.crow_indices(), graph.col_indices(),
                       sys.modules["torch"].ones_like(graph.values()), tuple(graph.shape))


def kneighbors(
    X_fit: Any,
    Y: Any = None,
    n_neighbors: int = 5,
    *,
    metric: Any = "minkowski",
    p: float = 2,
    metric_params: dict | None = None,
    n_jobs: int | None = None,
    device: str = "auto",
    algorithm: str = "auto",
) -> tuple[Any, Any]:
    """Find the k nearest fit points of each query point.

    Parameters
    ----------
    X_fit : array-like of shape (n_samples_fit, n_features), or GPU array
        The fit set (with ``metric='precomputed'``: its (n_samples_fit, n_samples_fit) distance
        matrix, used only for validation and ``Y=None``).
    Y : array-like of shape (n_queries, n_features), GPU array or None, default=None
        Query points (precomputed: (n_queries, n_samples_fit) distances to the fit points). None
        queries the fit set itself, each point excluding itself (by index), as
        ``NearestNeighbors.kneighbors(None)`` does.
    n_neighbors : int, default=5
        Neighbours per query.
    metric, p, metric_params, n_jobs, device, algorithm
        As in :func:`knn_graph`.

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors)
        In the input's float dtype, increasing along each row.
    indices : ndarray of shape (n_queries, n_neighbors), int64
        Fit-point indices; ties by increasing index. GPU input gives device arrays of the input's
        library.

    Raises
    ------
    ValueError
        ``n_neighbors`` larger than the fit set (or equal to it with ``Y=None``), feature-count
        mismatch, invalid arrays; with ``algorithm='approximate'`` a non-Euclidean or
        precomputed metric, sparse or GPU input.
    ImportError
        ``algorithm='approximate'`` without faiss-cpu (``pip install "isogan[approx]"``).

    See Also
    --------
    knn_graph, radius_neighbors

    Examples
    --------
    >>> import numpy as np
    >>> from isogan.knn import kneighbors
    >>> distances, indices = kneighbors(np.array([[0.0], [1.0], [3.0]]), np.array([[2.5]]), 2)
    >>> distances, indices
    (array([[0.5, 1.5]]), array([[2, 1]]))
    """
    k = check_n_neighbors(n_neighbors)
    precomputed = metric == "precomputed"
    _check_algorithm(algorithm, precomputed)
    if algorithm == "approximate":
        X_fit = _check_approximate(X_fit, metric, p, metric_params, device, "X_fit")
        if Y is not None:
            Y = _check_approximate(Y, metric, p, metric_params, device, "Y")
            _check_features(Y.shape[1], X_fit.shape[1])
            Y = Y.astype(X_fit.dtype, copy=False)
        _check_k_fits(k, X_fit.shape[0], X_fit.shape[0] if Y is None else Y.shape[0], query_is_train=Y is None)
        return approx_knn.approximate_kneighbors(X_fit, Y, k, threads(n_jobs))
    if is_device_array(X_fit) or (Y is not None and is_device_array(Y)):
        _require_device_pair(X_fit, Y, device)
        code_p = native_metric(metric, p, metric_params)
        if code_p is None:
            raise ValueError(f"metric={metric!r} with these parameters is not implemented on the GPU; "
                             "pass host (NumPy) arrays to use scikit-learn's implementation.")
        fit_view = cuda_knn.check_device_array(X_fit, "X_fit", precomputed)
        if precomputed:
            _square_check(_Shape(fit_view.shape))
        n_fit = fit_view.shape[0]
        if Y is not None:
            y_view = cuda_knn.check_device_array(Y, "Y", precomputed)
            _check_features(y_view.shape[1], n_fit if precomputed else fit_view.shape[1], y_view.dtype, fit_view.dtype)
        n_queries = n_fit if Y is None else y_view.shape[0]
        _check_k_fits(k, n_fit, n_queries, query_is_train=Y is None)
        return cuda_knn.device_kneighbors(X_fit, Y, k, *code_p)

    code_p = native_metric(metric, p, metric_params)
    X_fit = _check_host(X_fit, precomputed, "X_fit")
    if precomputed:
        _square_check(X_fit)
    n_fit = X_fit.shape[0]
    if Y is not None:
        Y = _check_host(Y, precomputed, "Y")
        _check_features(Y.shape[1], n_fit if precomputed else X_fit.shape[1])
        if not sp.issparse(Y) and not sp.issparse(X_fit) and Y.dtype != X_fit.dtype:
            Y = Y.astype(X_fit.dtype)
    n_queries = n_fit if Y is None else Y.shape[0]
    _check_k_fits(k, n_fit, n_queries, query_is_train=Y is None)
    dtype = _out_dtype(X_fit)
    if code_p is None or sp.issparse(X_fit) or (Y is not None and sp.issparse(Y)):
        nn = _sklearn_neighbors(X_fit, metric, p, metric_params, n_jobs, n_neighbors=k, algorithm=algorithm)
        distances, indices = nn.kneighbors(Y, k)
        return distances.astype(dtype, copy=False), indices.astype(np.int64, copy=False)
    return _host_kneighbors(X_fit, Y, k, *code_p, threads(n_jobs), resolve_device(device, "knn"), algorithm)


def radius_neighbors(
    X_fit: Any,
    Y: Any = None,
    radius: float = 1.0,
    *,
    metric: Any = "minkowski",
    p: float = 2,
    metric_params: dict | None = None,
    n_jobs: int | None = None,
    device: str = "auto",
    algorithm: str = "auto",
) -> Any:
    """Find all fit points within ``radius`` (inclusive) of each query point.

    Parameters
    ----------
    X_fit : array-like of shape (n_samples_fit, n_features), or GPU array
        The fit set (precomputed: its square distance matrix).
    Y : array-like of shape (n_queries, n_features), GPU array or None, default=None
        Query points (precomputed: distances to the fit points); None queries the fit set
        itself, each point excluding itself by index.
    radius : float, default=1.0
        Inclusive distance limit.
    metric, p, metric_params, n_jobs, device, algorithm
        As in :func:`knn_graph` ('approximate' is refused: it has no radius search).

    Returns
    -------
    graph : scipy.sparse.csr_matrix of shape (n_queries, n_samples_fit)
        Distances to the neighbours of each query, columns increasing within a row, in the
        input's float dtype (GPU input: a torch/CuPy sparse CSR on the input's device).
        ``graph.indptr`` delimits each query's neighbours, as ``Isomap.transform`` needs.

    See Also
    --------
    knn_graph, kneighbors

    Examples
    --------
    >>> import numpy as np
    >>> from isogan.knn import radius_neighbors
    >>> radius_neighbors(np.array([[0.0], [1.0], [3.0]]), np.array([[0.5]]), 1.0).toarray()
    array([[0.5, 0.5, 0. ]])
    """
    r = _check_radius(radius)
    precomputed = metric == "precomputed"
    _check_algorithm(algorithm, precomputed)
    _check_not_approximate_radius(algorithm)
    if is_device_array(X_fit) or (Y is not None and is_device_array(Y)):
        _require_device_pair(X_fit, Y, device)
        code_p = native_metric(metric, p, metric_params)
        if code_p is None:
            raise ValueError(f"metric={metric!r} with these parameters is not implemented on the GPU; "
                             "pass host (NumPy) arrays to use scikit-learn's implementation.")
        fit_view = cuda_knn.check_device_array(X_fit, "X_fit", precomputed)
        if precomputed:
            _square_check(_Shape(fit_view.shape))
        if Y is not None:
            y_view = cuda_knn.check_device_array(Y, "Y", precomputed)
            _check_features(y_view.shape[1], fit_view.shape[0] if precomputed else fit_view.shape[1],
                            y_view.dtype, fit_view.dtype)
        indptr, indices, distances, n_points = cuda_knn.device_radius(X_fit, Y, r, *code_p)
        return cuda_knn.device_csr(X_fit, indptr, indices, distances, (indptr.shape[0] - 1, n_points))

    code_p = native_metric(metric, p, metric_params)
    X_fit = _check_host(X_fit, precomputed, "X_fit")
    if precomputed:
        _square_check(X_fit)
    n_fit = X_fit.shape[0]
    if Y is not None:
        Y = _check_host(Y, precomputed, "Y")
        _check_features(Y.shape[1], n_fit if precomputed else X_fit.shape[1])
        if not sp.issparse(Y) and not sp.issparse(X_fit) and Y.dtype != X_fit.dtype:
            Y = Y.astype(X_fit.dtype)
    dtype = _out_dtype(X_fit)
    if code_p is None or sp.issparse(X_fit) or (Y is not None and sp.issparse(Y)):
        nn = _sklearn_neighbors(X_fit, metric, p, metric_params, n_jobs, radius=r, algorithm=algorithm)
        graph = sp.csr_matrix(nn.radius_neighbors_graph(Y, r, mode="distance"))
        graph.sort_indices()
        return _as_output_csr(graph, dtype)
    indptr, indices, distances = _host_radius(X_fit, Y, r, *code_p, threads(n_jobs), resolve_device(device, "knn"),
                                              algorithm)
    n_queries = indptr.shape[0] - 1
    return sp.csr_matrix((distances, indices, indptr), shape=(n_queries, n_fit))


# ---------------------------------------------------------------- blocks and components
def kneighbors_blocked(
    points: Any, n_neighbors: int, chunk_rows: int, *, show: bool = False, **options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest other points of every point, over blocks of rows of an array that may live on disk.

    Blocks of ``chunk_rows`` query rows are searched against every block of ``chunk_rows``
    candidate rows (:func:`kneighbors`) and merged with :func:`merge_nearest`, so at most two
    blocks of points are in memory at once; the result equals one search over all points.

    Parameters
    ----------
    points : ndarray, numpy.memmap or isogan.io.NpyRows of shape (n_samples, n_features)
        Points, sliced ``chunk_rows`` rows at a time.
    n_neighbors : int
        k, ``1 <= k < n_samples``.
    chunk_rows : int
        Rows per block.
    show : bool, default=False
        Progress bar over the blocks.
    **options
        ``metric``, ``p``, ``metric_params``, ``n_jobs``, ``device``, ``algorithm`` of :func:`kneighbors`.

    Returns
    -------
    distances : ndarray of shape (n_samples, k), the points' dtype
    indices : ndarray of shape (n_samples, k), int64
    """
    from isogan._backend.policy import progress_bar

    if options.get("algorithm") == "approximate":
        raise ValueError(
            "algorithm='approximate' needs the points in memory (its graph holds a float32 copy of them); "
            "points on disk are searched exactly block by block: use algorithm='auto', or load the points."
        )
    n_samples = points.shape[0]
    dtype = points.dtype
    starts = range(0, n_samples, chunk_rows)
    indices = np.empty((n_samples, n_neighbors), dtype=np.int64)
    distances = np.empty((n_samples, n_neighbors), dtype=dtype)
    with progress_bar(len(starts) ** 2, "kNN (blocks)", show, unit="block") as blocks:
        for query_start in starts:
            query = np.ascontiguousarray(points[query_start : query_start + chunk_rows])
            n_query = query.shape[0]
            best_distance = np.full((n_query, n_neighbors), np.inf, dtype=dtype)
            best_index = np.full((n_query, n_neighbors), -1, dtype=np.int64)
            for candidate_start in starts:
                blocks.update(1)
                if candidate_start == query_start:
                    if n_query == 1:  # a last block of one row has no other point in it
                        continue
                    # Y=None: each point is excluded by index, so its duplicates stay neighbours.
                    found_distance, found_index = kneighbors(query, None, min(n_neighbors, n_query - 1), **options)
                else:
                    candidate = np.ascontiguousarray(points[candidate_start : candidate_start + chunk_rows])
                    found_distance, found_index = kneighbors(
                        candidate, query, min(n_neighbors, candidate.shape[0]), **options
                    )
                best_distance, best_index = merge_nearest(
                    best_distance, best_index, np.asarray(found_distance, dtype=dtype),
                    np.asarray(found_index, dtype=np.int64) + candidate_start, n_neighbors,
                )
            indices[query_start : query_start + n_query] = best_index
            distances[query_start : query_start + n_query] = best_distance
    return distances, indices
