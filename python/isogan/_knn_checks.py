"""Validation of the neighbour searches' arguments and the native metric codes (scikit-learn's wording).

Shared by :mod:`isogan.knn` (host, GPU and approximate searches) and the GPU landmark backend:
the metric -> native code mapping of ``csrc/knn/knn.h``, the 'auto' kd-tree crossover, and the
checks of ``n_neighbors``, ``radius``, ``mode``, ``algorithm``, shapes and dtypes.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

from isogan import _core
from isogan._backend.arrays import is_device_array
from isogan._backend.memory import ensure_memory
from isogan._backend.policy import resolve_device

# Native metric codes (csrc/knn/knn.h, enum Metric).
_EUCLIDEAN, _MANHATTAN, _CHEBYSHEV, _MINKOWSKI, PRECOMPUTED = range(5)
_ALIASES = {
    "euclidean": _EUCLIDEAN,
    "l2": _EUCLIDEAN,
    "manhattan": _MANHATTAN,
    "cityblock": _MANHATTAN,
    "l1": _MANHATTAN,
    "chebyshev": _CHEBYSHEV,
    "infinity": _CHEBYSHEV,
    "precomputed": PRECOMPUTED,
}


def native_metric(metric: Any, p: Any, metric_params: dict | None) -> tuple[int, float] | None:
    """Return the native (metric code, p) for a metric, or None when scikit-learn must serve it.

    Parameters
    ----------
    metric : str or callable
        As in :func:`knn_graph`.
    p : float
        Minkowski power.
    metric_params : dict or None
        Extra metric arguments (any makes scikit-learn serve the metric).

    Returns
    -------
    tuple of (int, float) or None
        The code of ``csrc/knn/knn.h``'s ``Metric`` (:data:`PRECOMPUTED` for distances given)
        and the power, or None.
    """
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


_ALGORITHMS = ("approximate", "auto", "ball_tree", "brute", "kd_tree")
# kd-tree leaf size (points per leaf): 16 was fastest of 8/16/32 for swiss roll N=100k, k=10.
_LEAF_SIZE = 16
# 'auto' crossover, measured on Gaussian data (k=10, one thread): the tree is faster for every N
# at D <= 5, for N >= 32768 at D = 6 (2.3x at N=64000), and slower at D >= 8 up to N=64000.
_TREE_MAX_FEATURES = 5
_TREE_D6_MIN_SAMPLES = 32768


def _check_algorithm(algorithm: Any, precomputed: bool) -> str:
    """Validate ``algorithm`` (scikit-learn's wording); refuse a tree or approximate search for distances given."""
    if not isinstance(algorithm, str) or algorithm not in _ALGORITHMS:
        raise ValueError(
            "The 'algorithm' parameter must be a str among {" + ", ".join(repr(name) for name in _ALGORITHMS) + "}. "
            f"Got {algorithm!r} instead."
        )
    if precomputed and algorithm == "approximate":
        raise ValueError(
            "algorithm='approximate' searches points, not distances: with metric='precomputed' use an exact "
            "algorithm ('auto' or 'brute')."
        )
    if precomputed and algorithm in ("kd_tree", "ball_tree"):
        raise ValueError(
            f"Metric 'precomputed' not valid. Use sorted(sklearn.neighbors.VALID_METRICS['{algorithm}']) to get "
            "valid options. Metric can also be a callable function."
        )
    return algorithm


def _use_tree(algorithm: str, code: int, n_samples_fit: int, n_features: int, device: str) -> bool:
    """Whether a native search runs through the kd-tree (CPU, Minkowski metrics only)."""
    if device != "cpu" or code == PRECOMPUTED or algorithm == "brute":
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


def _check_not_approximate_radius(algorithm: str) -> None:
    if algorithm == "approximate":
        raise ValueError("algorithm='approximate' finds k nearest neighbours only; a radius search needs an exact "
                         "algorithm ('auto', 'brute' or 'kd_tree').")


def check_n_neighbors(n_neighbors: Any) -> int:
    """``n_neighbors`` as an int >= 1 (scikit-learn's TypeError / ValueError wording otherwise)."""
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
    resolve_device(device, "knn")
    if device == "cpu":
        raise ValueError("GPU input with device='cpu': move the arrays to the host first (e.g. .cpu() / .get()).")
    if not is_device_array(X_fit) or (Y is not None and not is_device_array(Y)):
        raise ValueError("X_fit and Y must both be GPU arrays or both host arrays.")
    resolve_device("cuda", "knn")
