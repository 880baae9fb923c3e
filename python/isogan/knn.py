"""Exact k-nearest-neighbour and radius-neighbour graphs, native on CPU (OpenMP) and CUDA.

Three public functions:

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

GPU input (a torch CUDA tensor or a CuPy array, float32 or float64, C-contiguous) is read in place
and the result stays on its device, allocated by the input's library: :func:`kneighbors` returns
two device arrays; :func:`knn_graph` and :func:`radius_neighbors` return a
``torch.sparse_csr_tensor`` for torch input and a ``cupyx.scipy.sparse.csr_matrix`` for CuPy input.
"""

from __future__ import annotations

import math
import sys
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_array

from isogan import _core
from isogan._arrays import device_array_view, device_empty, is_device_array
from isogan._device import ensure_memory, resolve_device

__all__ = ["knn_graph", "kneighbors", "radius_neighbors"]

# Native metric codes (csrc/knn/knn.h, enum Metric).
_EUCLIDEAN, _MANHATTAN, _CHEBYSHEV, _MINKOWSKI, _PRECOMPUTED = range(5)
_ALIASES = {
    "euclidean": _EUCLIDEAN,
    "l2": _EUCLIDEAN,
    "manhattan": _MANHATTAN,
    "cityblock": _MANHATTAN,
    "l1": _MANHATTAN,
    "chebyshev": _CHEBYSHEV,
    "infinity": _CHEBYSHEV,
    "precomputed": _PRECOMPUTED,
}


def _native_metric(metric: Any, p: Any, metric_params: dict | None) -> tuple[int, float] | None:
    """Return the native (metric code, p) for a metric, or None when scikit-learn must serve it."""
    if metric_params or not isinstance(metric, str):
        return None
    if metric in _ALIASES:
        return _ALIASES[metric], 2.0
    if metric != "minkowski" or not isinstance(p, Real) or isinstance(p, bool) or not p >= 1:
        return None
    p = float(p)
    if p == 1.0:
        return _MANHATTAN, 1.0
    if p == 2.0:
        return _EUCLIDEAN, 2.0
    if math.isinf(p):
        return _CHEBYSHEV, p
    return _MINKOWSKI, p


_ALGORITHMS = ("auto", "ball_tree", "brute", "kd_tree")
# kd-tree leaf size (points per leaf): 16 was fastest of 8/16/32 for swiss roll N=100k, k=10.
_LEAF_SIZE = 16
# 'auto' crossover, measured on Gaussian data (k=10, one thread): the tree is faster for every N
# at D <= 5, for N >= 32768 at D = 6 (2.3x at N=64000), and slower at D >= 8 up to N=64000.
_TREE_MAX_FEATURES = 5
_TREE_D6_MIN_SAMPLES = 32768


def _check_algorithm(algorithm: Any, precomputed: bool) -> str:
    """Validate ``algorithm`` (scikit-learn's wording) and refuse a tree for precomputed distances."""
    if not isinstance(algorithm, str) or algorithm not in _ALGORITHMS:
        raise ValueError(
            "The 'algorithm' parameter must be a str among {'auto', 'ball_tree', 'brute', 'kd_tree'}. "
            f"Got {algorithm!r} instead."
        )
    if precomputed and algorithm in ("kd_tree", "ball_tree"):
        raise ValueError(
            f"Metric 'precomputed' not valid. Use sorted(sklearn.neighbors.VALID_METRICS['{algorithm}']) to get "
            "valid options. Metric can also be a callable function."
        )
    return algorithm


def _use_tree(algorithm: str, code: int, n_samples_fit: int, n_features: int, device: str) -> bool:
    """Whether a native search runs through the kd-tree (CPU, Minkowski metrics only)."""
    if device != "cpu" or code == _PRECOMPUTED or algorithm == "brute":
        return False
    if algorithm in ("kd_tree", "ball_tree"):
        return True
    return n_features <= _TREE_MAX_FEATURES or (n_features == 6 and n_samples_fit >= _TREE_D6_MIN_SAMPLES)


def _check_tree_memory(fit: np.ndarray, n_result_bytes: int) -> None:
    """Refuse up front a kd-tree search whose tree and result cannot fit in host memory."""
    n_samples, n_features = fit.shape
    need = int(_core.knn_kdtree_bytes(n_samples, n_features, fit.dtype.itemsize, _LEAF_SIZE)) + n_result_bytes
    ensure_memory(need, f"the kd-tree over {n_samples} x {n_features} points and the kNN result",
                  "Use float32 data, fewer points or algorithm='brute'.")


def _check_n_neighbors(n_neighbors: Any) -> int:
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, Integral):
        if isinstance(n_neighbors, Real) and n_neighbors <= 0:
            raise ValueError(f"Expected n_neighbors > 0. Got {n_neighbors}")
        raise TypeError(f"n_neighbors does not take {type(n_neighbors)} value, enter integer value")
    if n_neighbors <= 0:
        raise ValueError(f"Expected n_neighbors > 0. Got {n_neighbors}")
    return int(n_neighbors)


def _check_radius(radius: Any) -> float:
    if isinstance(radius, bool) or not isinstance(radius, Real) or not radius >= 0:
        raise ValueError(f"The 'radius' parameter must be a float in the range [0, inf). Got {radius!r} instead.")
    return float(radius)


def _check_mode(mode: Any) -> None:
    if mode not in ("distance", "connectivity"):
        raise ValueError(f"The 'mode' parameter must be a str among {{'connectivity', 'distance'}}. Got {mode!r} instead.")


def _n_jobs(n_jobs: Any) -> int:
    if n_jobs is None:
        return 0
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral):
        raise ValueError(f"The 'n_jobs' parameter must be an int or None. Got {n_jobs!r} instead.")
    return int(n_jobs)


def _check_host(X: Any, precomputed: bool, input_name: str = "X") -> Any:
    """Validate a host array (or sparse matrix) like scikit-learn's NearestNeighbors.fit does."""
    if precomputed and not sp.issparse(X):
        X = check_array(X, dtype=[np.float64, np.float32], order="C", ensure_non_negative=True, input_name=input_name)
    else:
        X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32], order="C", input_name=input_name)
    return X


def _square_check(X: Any) -> None:
    if X.shape[0] != X.shape[1]:
        raise ValueError(f"Precomputed matrix must be square. Input is a {X.shape[0]}x{X.shape[1]} matrix.")


def _check_k_fits(n_neighbors: int, n_samples_fit: int, n_queries: int, query_is_train: bool) -> None:
    if query_is_train and n_neighbors >= n_samples_fit:
        raise ValueError(
            f"Expected n_neighbors < n_samples_fit, but n_neighbors = {n_neighbors}, "
            f"n_samples_fit = {n_samples_fit}, n_samples = {n_queries}"
        )
    if not query_is_train and n_neighbors > n_samples_fit:
        raise ValueError(
            f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {n_neighbors}, "
            f"n_samples_fit = {n_samples_fit}, n_samples = {n_queries}"
        )


def _out_dtype(X: Any) -> np.dtype:
    return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)


# ---------------------------------------------------------------- host search (numpy in, numpy out)
def _host_kneighbors(fit: np.ndarray, queries: np.ndarray | None, k: int, code: int, p: float, n_jobs: int,
                     device: str, algorithm: str = "brute") -> tuple[np.ndarray, np.ndarray]:
    exclude_self = queries is None
    queries = fit if queries is None else queries
    points = queries if code == _PRECOMPUTED else fit
    if _use_tree(algorithm, code, fit.shape[0], fit.shape[1], device):
        _check_tree_memory(fit, queries.shape[0] * k * (8 + fit.dtype.itemsize))
        return _core.knn_kneighbors_kdtree(queries, points, k, code, p, exclude_self, n_jobs, _LEAF_SIZE)
    if device == "cuda":
        itemsize = fit.dtype.itemsize
        # Inputs, the (M, k) distances and int64 indices, and the kernel's (M, k) float64 heap keys.
        need = (queries.size + (0 if code == _PRECOMPUTED else points.size)) * itemsize + queries.shape[0] * k * (16 + itemsize)
        ensure_memory(need, "the kNN search", "Use float32 data, fewer points or device='cpu'.", device="cuda")
        return _core.knn_kneighbors_cuda(queries, points, k, code, p, exclude_self)
    return _core.knn_kneighbors(queries, points, k, code, p, exclude_self, n_jobs)


def _host_radius(fit: np.ndarray, queries: np.ndarray | None, radius: float, code: int, p: float, n_jobs: int,
                 device: str, algorithm: str = "brute") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    exclude_self = queries is None
    queries = fit if queries is None else queries
    points = queries if code == _PRECOMPUTED else fit
    if _use_tree(algorithm, code, fit.shape[0], fit.shape[1], device):
        _check_tree_memory(fit, (queries.shape[0] + 1) * 8)
        return _core.knn_radius_kdtree(queries, points, radius, code, p, exclude_self, n_jobs, _LEAF_SIZE)
    if device == "cuda":
        return _core.knn_radius_cuda(queries, points, radius, code, p, exclude_self)
    return _core.knn_radius(queries, points, radius, code, p, exclude_self, n_jobs)


# ---------------------------------------------------------------- device search (GPU arrays in place)
def _device_module(x: Any) -> Any:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch
    import cupy

    return cupy


def _check_device_array(x: Any, name: str, precomputed: bool) -> Any:
    """Validate a GPU array in place: 2-D, float32/float64, C-contiguous, finite (non-negative if precomputed)."""
    view = device_array_view(x)
    if view.dtype not in (np.float32, np.float64):
        raise TypeError(f"GPU input {name} must be float32 or float64, got {view.dtype}.")
    if len(view.shape) != 2:
        raise ValueError(f"Expected 2D array, got {len(view.shape)}D array instead for {name}.")
    if view.shape[0] < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={view.shape}) while a minimum of 1 is required.")
    xp = _device_module(x)
    if not bool(xp.isfinite(x).all()):
        raise ValueError(f"Input {name} contains NaN or infinity.")
    if precomputed and bool((x < 0).any()):
        raise ValueError(f"Negative values in data passed to {name}.")
    return view


def _ptr_fn(name: str, dtype: np.dtype) -> Any:
    return getattr(_core, f"knn_{name}_cuda_ptr_{np.dtype(dtype).name}")


def _device_kneighbors(fit: Any, queries: Any | None, k: int, code: int, p: float) -> tuple[Any, Any]:
    exclude_self = queries is None
    queries = fit if queries is None else queries
    q_view = device_array_view(queries)
    f_view = q_view if code == _PRECOMPUTED else device_array_view(fit)
    n_points = q_view.shape[1] if code == _PRECOMPUTED else f_view.shape[0]
    m = q_view.shape[0]
    # The (M, k) distances and int64 indices, and the kernel's (M, k) float64 heap keys.
    ensure_memory(m * k * (16 + q_view.dtype.itemsize), "the kNN result", "Use fewer query points or device='cpu'.",
                  device="cuda")
    distances = device_empty(queries, (m, k), q_view.dtype)
    indices = device_empty(queries, (m, k), np.dtype(np.int64))
    _ptr_fn("kneighbors", q_view.dtype)(
        q_view.pointer, f_view.pointer, m, n_points, q_view.shape[1], k, code, p, exclude_self,
        device_array_view(distances).pointer, device_array_view(indices).pointer, q_view.stream)
    return distances, indices


def _device_radius(fit: Any, queries: Any | None, radius: float, code: int, p: float) -> tuple[Any, Any, Any, int]:
    exclude_self = queries is None
    queries = fit if queries is None else queries
    q_view = device_array_view(queries)
    f_view = q_view if code == _PRECOMPUTED else device_array_view(fit)
    n_points = q_view.shape[1] if code == _PRECOMPUTED else f_view.shape[0]
    m = q_view.shape[0]
    indptr = device_empty(queries, (m + 1,), np.dtype(np.int64))
    args = (q_view.pointer, f_view.pointer, m, n_points, q_view.shape[1], radius, code, p, exclude_self,
            device_array_view(indptr).pointer)
    nnz = int(_ptr_fn("radius_count", q_view.dtype)(*args, q_view.stream))
    ensure_memory(nnz * (8 + q_view.dtype.itemsize), "the radius-neighbour graph",
                  "Use a smaller radius, fewer points or device='cpu'.", device="cuda")
    indices = device_empty(queries, (nnz,), np.dtype(np.int64))
    distances = device_empty(queries, (nnz,), q_view.dtype)
    if nnz > 0:
        _ptr_fn("radius_fill", q_view.dtype)(*args, device_array_view(indices).pointer,
                                             device_array_view(distances).pointer, q_view.stream)
    return indptr, indices, distances, n_points


def _device_csr(like: Any, indptr: Any, indices: Any, data: Any, shape: tuple[int, int]) -> Any:
    """A sparse CSR matrix on ``like``'s device, built by ``like``'s library."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(like, torch.Tensor):
        with warnings.catch_warnings():
            # torch flags its whole sparse CSR layout as beta; the tensor is a plain container here.
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)
            return torch.sparse_csr_tensor(indptr, indices, data, size=shape, check_invariants=False)
    import cupyx.scipy.sparse

    return cupyx.scipy.sparse.csr_matrix((data, indices, indptr), shape=shape)


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
    algorithm : {'auto', 'brute', 'kd_tree', 'ball_tree'}, default='auto'
        Native CPU search: exact blocked brute force, or an exact kd-tree ('ball_tree' also runs
        the kd-tree); 'auto' picks the tree for few features (see the module docstring). The
        result is the same either way. GPU and precomputed searches are brute force (a tree
        with ``metric='precomputed'`` is a ValueError, as in scikit-learn).

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
        ``algorithm``.
    TypeError
        A non-integer ``n_neighbors``.

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
        k = _check_n_neighbors(n_neighbors)
        if is_device_array(X):
            distances, indices = kneighbors(X, None if not include_self else X, k, metric=metric, p=p,
                                            metric_params=metric_params, n_jobs=n_jobs, device=device,
                                            algorithm=algorithm)
            m = distances.shape[0]
            xp = _device_module(X)
            indptr = xp.arange(0, m * k + 1, k, dtype=xp.int64) if xp.__name__ == "cupy" else \
                xp.arange(0, m * k + 1, k, dtype=xp.int64, device=X.device)
            data = distances.reshape(-1) if mode == "distance" else xp.ones_like(distances).reshape(-1)
            return _device_csr(X, indptr, indices.reshape(-1), data, (m, m))
        code_p = _native_metric(metric, p, metric_params)
        precomputed = metric == "precomputed"
        X = _check_host(X, precomputed)
        if precomputed:
            _square_check(X)
        dtype = _out_dtype(X)
        n_samples = X.shape[0]
        _check_k_fits(k, n_samples, n_samples, query_is_train=not include_self)
        if code_p is None or sp.issparse(X):
            nn = _sklearn_neighbors(X, metric, p, metric_params, n_jobs, n_neighbors=k, algorithm=algorithm)
            return _as_output_csr(nn.kneighbors_graph(None if not include_self else X, k, mode=mode), dtype)
        distances, indices = _host_kneighbors(X, None if not include_self else X, k, *code_p, _n_jobs(n_jobs),
                                              resolve_device(device), algorithm)
        data = distances.ravel() if mode == "distance" else np.ones(n_samples * k, dtype=dtype)
        return sp.csr_matrix((data, indices.ravel(), np.arange(0, n_samples * k + 1, k)), shape=(n_samples, n_samples))

    r = _check_radius(radius)
    if is_device_array(X):
        graph = radius_neighbors(X, None if not include_self else X, r, metric=metric, p=p,
                                 metric_params=metric_params, n_jobs=n_jobs, device=device, algorithm=algorithm)
        if mode == "connectivity":
            xp = _device_module(X)
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
    return _device_csr(graph.values(), graph.crow_indices(), graph.col_indices(),
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
        mismatch, invalid arrays.

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
    k = _check_n_neighbors(n_neighbors)
    precomputed = metric == "precomputed"
    _check_algorithm(algorithm, precomputed)
    if is_device_array(X_fit) or (Y is not None and is_device_array(Y)):
        _require_device_pair(X_fit, Y, device)
        code_p = _native_metric(metric, p, metric_params)
        if code_p is None:
            raise ValueError(f"metric={metric!r} with these parameters is not implemented on the GPU; "
                             "pass host (NumPy) arrays to use scikit-learn's implementation.")
        fit_view = _check_device_array(X_fit, "X_fit", precomputed)
        if precomputed:
            _square_check(_Shape(fit_view.shape))
        n_fit = fit_view.shape[0]
        if Y is not None:
            y_view = _check_device_array(Y, "Y", precomputed)
            _check_features(y_view.shape[1], n_fit if precomputed else fit_view.shape[1], y_view.dtype, fit_view.dtype)
        n_queries = n_fit if Y is None else y_view.shape[0]
        _check_k_fits(k, n_fit, n_queries, query_is_train=Y is None)
        return _device_kneighbors(X_fit, Y, k, *code_p)

    code_p = _native_metric(metric, p, metric_params)
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
    return _host_kneighbors(X_fit, Y, k, *code_p, _n_jobs(n_jobs), resolve_device(device), algorithm)


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
        As in :func:`knn_graph`.

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
    if is_device_array(X_fit) or (Y is not None and is_device_array(Y)):
        _require_device_pair(X_fit, Y, device)
        code_p = _native_metric(metric, p, metric_params)
        if code_p is None:
            raise ValueError(f"metric={metric!r} with these parameters is not implemented on the GPU; "
                             "pass host (NumPy) arrays to use scikit-learn's implementation.")
        fit_view = _check_device_array(X_fit, "X_fit", precomputed)
        if precomputed:
            _square_check(_Shape(fit_view.shape))
        if Y is not None:
            y_view = _check_device_array(Y, "Y", precomputed)
            _check_features(y_view.shape[1], fit_view.shape[0] if precomputed else fit_view.shape[1],
                            y_view.dtype, fit_view.dtype)
        indptr, indices, distances, n_points = _device_radius(X_fit, Y, r, *code_p)
        return _device_csr(X_fit, indptr, indices, distances, (indptr.shape[0] - 1, n_points))

    code_p = _native_metric(metric, p, metric_params)
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
    indptr, indices, distances = _host_radius(X_fit, Y, r, *code_p, _n_jobs(n_jobs), resolve_device(device),
                                              algorithm)
    n_queries = indptr.shape[0] - 1
    return sp.csr_matrix((distances, indices, indptr), shape=(n_queries, n_fit))


class _Shape:
    """Just a shape, for the checks shared by host and GPU input."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape


def _check_features(n_query_features: int, n_fit_features: int, query_dtype: Any = None, fit_dtype: Any = None) -> None:
    if n_query_features != n_fit_features:
        raise ValueError(f"Y has {n_query_features} features, but X_fit has {n_fit_features} features.")
    if query_dtype is not None and query_dtype != fit_dtype:
        raise TypeError(f"GPU query dtype {query_dtype} differs from the fit set's {fit_dtype}; convert one of them.")


def _require_device_pair(X_fit: Any, Y: Any, device: str) -> None:
    """GPU input runs on its GPU; mixing host and GPU arrays, or asking for the CPU, is refused."""
    resolve_device(device)
    if device == "cpu":
        raise ValueError("GPU input with device='cpu': move the arrays to the host first (e.g. .cpu() / .get()).")
    if not is_device_array(X_fit) or (Y is not None and not is_device_array(Y)):
        raise ValueError("X_fit and Y must both be GPU arrays or both host arrays.")
    resolve_device("cuda")
