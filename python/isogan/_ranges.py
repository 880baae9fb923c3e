"""What a dtype can represent: refuse inputs whose squared distances overflow or underflow it.

Isomap's kernel is ``-0.5 * D**2``: its products sum squared distances, so distances past
``sqrt(finfo.max / n_terms)`` give inf, and distances below ``sqrt(finfo.tiny)`` give squares that
are zero or subnormal (an all-zero or imprecise embedding). Isomap is scale-equivariant
(``embedding(c X) = c embedding(X)``), so the remedy is always to rescale. The checks run at each
stage boundary, as early as the stage allows: on the points before the kNN search, on the kNN
edge lengths, and on the geodesic distances before the eigensolve or the triangulation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["check_edge_range", "check_kernel_range", "check_point_range"]

# Metrics whose distance between two points lies between the largest coordinate difference
# (Chebyshev) and the sum of the coordinate differences (Manhattan): every Minkowski p >= 1.
_MINKOWSKI_METRICS = frozenset({"euclidean", "l2", "minkowski", "manhattan", "l1", "cityblock", "chebyshev",
                                "infinity", "p"})


def _rescale_hint(name: str) -> str:
    return "rescale the input (the embedding scales with it)" + (" or use float64." if name == "float32" else ".")


def check_kernel_range(largest_distance: float, n_terms: int, dtype: Any, what: str = "geodesic distances") -> None:
    """Refuse distances whose squares Isomap's kernel ``-0.5 * D**2`` cannot hold in ``dtype``.

    The kernel products sum ``n_terms`` squared distances per entry (in double precision) and the
    eigenvalues, of the order of those sums, are returned in ``dtype``: past
    ``sqrt(finfo.max / n_terms)`` they overflow to inf. Below ``sqrt(finfo.tiny)`` every square
    is zero or subnormal, and the embedding would be zeros or lose its precision.

    Parameters
    ----------
    largest_distance : float
        The largest distance that enters the kernel (or a lower bound of it, to refuse early).
    n_terms : int
        Squared distances summed per product: the number of training points (or landmarks).
    dtype : dtype
        float32 or float64, the dtype of the distances and of the results.
    what : str, default="geodesic distances"
        Names the distances in the message.

    Raises
    ------
    ValueError
        When the squares overflow or underflow ``dtype``; the message says the values are outside
        what ``dtype`` can represent, and how to rescale.
    """
    finfo = np.finfo(dtype)
    name = np.dtype(dtype).name
    largest = float(largest_distance)
    if not largest <= math.sqrt(float(finfo.max) / max(int(n_terms), 1)):
        raise ValueError(
            f"The squared {what} overflow {name}: the largest distance is {largest:.3g}, and {n_terms} of "
            f"their squares must sum below {float(finfo.max):.3g}, so the Isomap kernel -0.5 * D**2 would contain "
            f"infinity or a value too large for dtype('{name}'). The values are outside what {name} can "
            f"represent here: {_rescale_hint(name)}"
        )
    if 0.0 < largest < math.sqrt(float(finfo.tiny)):
        raise ValueError(
            f"The squared {what} underflow {name}: the largest distance is {largest:.3g}, and its square is below "
            f"the smallest normal {name} ({float(finfo.tiny):.3g}), so the Isomap kernel -0.5 * D**2 would be zero "
            f"or lose its precision. The values are outside what {name} can represent here: {_rescale_hint(name)}"
        )


def _column_bounds(points: np.ndarray | sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature minimum and maximum (implicit zeros of a sparse matrix included), float64."""
    if sp.issparse(points):
        return (np.asarray(points.min(axis=0).todense(), dtype=np.float64).ravel(),
                np.asarray(points.max(axis=0).todense(), dtype=np.float64).ravel())
    return points.min(axis=0).astype(np.float64), points.max(axis=0).astype(np.float64)


def check_point_range(points: Any, n_terms: int, metric: Any, dtype: Any) -> None:
    """Refuse, before the kNN search, points whose distances the kernel cannot square in ``dtype``.

    For the Minkowski metrics the largest distance is at least the largest per-feature range and
    at most the sum of the ranges, so an O(N D) pass over the points bounds it without any
    distance computed: ranges past :func:`check_kernel_range`'s overflow bound, or all of them
    below its underflow bound, are refused. Coordinates whose squares overflow (the kNN search
    squares norms) are refused too. Other metrics, out-of-core and GPU points are left to the
    checks on the edge lengths and the geodesic distances.

    Parameters
    ----------
    points : ndarray or sparse matrix of shape (n_samples, n_features)
        Validated, finite points (anything else is not checked here).
    n_terms : int
        Squared distances summed per kernel product (training points, or landmarks).
    metric : str or callable
        The kNN search's effective metric.
    dtype : dtype
        The working precision.

    Raises
    ------
    ValueError
        With :func:`check_kernel_range`'s wording.
    """
    if not (isinstance(points, np.ndarray) or sp.issparse(points)) or points.shape[0] == 0 or points.ndim != 2:
        return
    if metric == "precomputed":
        values = points.data if sp.issparse(points) else points
        check_kernel_range(float(values.max(initial=0.0)), n_terms, dtype, "precomputed distances")
        return
    if not isinstance(metric, str) or metric not in _MINKOWSKI_METRICS:
        return
    low, high = _column_bounds(points)
    ranges = high - low
    name = np.dtype(dtype).name
    largest_coordinate = float(max(np.abs(low).max(initial=0.0), np.abs(high).max(initial=0.0)))
    if largest_coordinate > math.sqrt(float(np.finfo(dtype).max) / max(points.shape[1], 1)):
        raise ValueError(
            f"The squared coordinates of X overflow {name}: the largest absolute value is {largest_coordinate:.3g}, "
            f"and the squared norms of {points.shape[1]} features must stay below {float(np.finfo(dtype).max):.3g}. "
            f"The values are outside what {name} can represent here: {_rescale_hint(name)}"
        )
    check_kernel_range(float(ranges.max(initial=0.0)), n_terms, dtype, "distances between the points of X")
    spread = float(ranges.sum())
    if spread > 0.0:
        check_kernel_range(spread, n_terms, dtype, "distances between the points of X")


def check_edge_range(edge_lengths: np.ndarray, n_terms: int, dtype: Any, what: str = "neighbour distances") -> None:
    """Refuse kNN edge lengths that overflowed (inf) or whose squares overflow ``dtype``.

    The shortest paths only add to the edges, so the longest edge bounds the geodesics from below.

    Parameters
    ----------
    edge_lengths : ndarray
        The stored lengths of the neighbour graph (``graph.data``).
    n_terms : int
        Squared distances summed per kernel product.
    dtype : dtype
        The working precision.
    what : str, default="neighbour distances"
        Names the distances in the message.

    Raises
    ------
    ValueError
        With :func:`check_kernel_range`'s wording.
    """
    if edge_lengths.size:
        check_kernel_range(float(edge_lengths.max()), n_terms, dtype, what)
