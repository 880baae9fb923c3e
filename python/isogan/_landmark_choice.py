"""Landmark choice for landmark Isomap: MaxMin (input or geodesic space) and random draws.

:func:`choose_landmarks` is the pipeline's step (:func:`isogan.landmark.fit_landmark_model`
calls it); :func:`select_landmarks` the same choice from coordinates alone, on the CPU. Both are
re-exported by :mod:`isogan.landmark`, whose docstring says which method runs where and why.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from isogan._backend import Backend, get_backend
from isogan._backend.policy import progress_bar

__all__ = ["check_landmark_method", "choose_landmarks", "cover_components", "select_landmarks"]

_LANDMARK_METHODS = ("maxmin", "random")


def check_landmark_method(landmark_method: Any) -> str:
    """Validate ``landmark_method`` ('maxmin' or 'random'), with scikit-learn's wording."""
    if landmark_method not in _LANDMARK_METHODS:
        raise ValueError(
            f"The 'landmark_method' parameter must be a str among {set(_LANDMARK_METHODS)}. "
            f"Got {landmark_method!r} instead."
        )
    return str(landmark_method)



def select_landmarks(
    points: np.ndarray,
    n_landmarks: int,
    *,
    landmark_method: str = "maxmin",
    random_state: Any = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Choose landmarks among points given by their coordinates (on the CPU).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Input coordinates, float32 or float64 (a memmap is read as it is).
    n_landmarks : int
        Number of landmarks, ``1 <= n_landmarks <= n_samples``.
    landmark_method : {'maxmin', 'random'}, default='maxmin'
        'maxmin': farthest-point sampling in input space (Euclidean), first landmark drawn from
        ``random_state``; 'random': ``n_landmarks`` distinct points drawn uniformly.
    random_state : int, RandomState instance or None, default=None
        Seeds the first MaxMin landmark or the random draw.
    n_jobs : int or None, default=None
        Threads for the MaxMin kernel (None: all cores, see :func:`isogan._backend.policy.threads`).

    Returns
    -------
    ndarray of shape (n_landmarks,), int64
        Indices of the landmarks, in selection order, all distinct.

    Examples
    --------
    >>> import numpy as np
    >>> from isogan.landmark import select_landmarks
    >>> points = np.array([[0.0], [1.0], [10.0], [4.0]])
    >>> select_landmarks(points, 2, random_state=0).tolist()
    [0, 2]
    """
    landmark_method = check_landmark_method(landmark_method)
    n_samples = points.shape[0]
    if not isinstance(n_landmarks, Integral) or not 1 <= n_landmarks <= n_samples:
        raise ValueError(f"n_landmarks must be an int in [1, {n_samples}], got {n_landmarks!r}")
    if landmark_method == "random":
        return _random_landmarks(n_samples, int(n_landmarks), random_state)
    first = int(check_random_state(random_state).randint(n_samples))
    return get_backend("cpu", n_jobs).maxmin(points, int(n_landmarks), first)


def _random_landmarks(n_samples: int, n_landmarks: int, random_state: Any) -> np.ndarray:
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n_samples, size=n_landmarks, replace=False)).astype(np.int64)


def choose_landmarks(
    graph: Any,
    n_landmarks: int,
    backend: Backend,
    *,
    points: Any = None,
    landmark_method: str = "maxmin",
    random_state: Any = None,
    maxmin_pool: int | None = None,
    path_method: str = "auto",
    show: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The landmarks, and their geodesic rows when choosing them computed those (geodesic MaxMin).

    MaxMin runs in input space over all points, or over a uniform candidate pool of
    ``maxmin_pool`` points (out-of-core input, or a device that cannot hold them all); without
    coordinates it runs in geodesic space on the graph.
    """
    n_samples = graph.shape[0]
    if landmark_method == "random":
        return _random_landmarks(n_samples, n_landmarks, random_state), None
    if points is None:
        return _geodesic_maxmin(graph, n_landmarks, random_state, backend, path_method, show)
    pool = n_samples if maxmin_pool is None else min(n_samples, max(n_landmarks, int(maxmin_pool)))
    if pool >= n_samples:
        first = int(check_random_state(random_state).randint(n_samples))
        return backend.maxmin(points, n_landmarks, first), None
    # A full MaxMin would read the points once per landmark: run it on a random candidate pool.
    candidates = np.sort(check_random_state(random_state).choice(n_samples, size=pool, replace=False))
    first = int(check_random_state(random_state).randint(pool))
    return candidates[backend.maxmin(_RowsOf(points, candidates), n_landmarks, first)], None


class _RowsOf:
    """The rows ``index`` of ``points``, sliceable like an array (read block by block)."""

    def __init__(self, points: Any, index: np.ndarray) -> None:
        self._points = points
        self._index = index
        self.shape = (index.size, points.shape[1])
        self.dtype = points.dtype

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.asarray(self._points[self._index[rows]])


def _geodesic_maxmin(
    graph: Any, n_landmarks: int, random_state: Any, backend: Backend, path_method: str, show: bool
) -> tuple[np.ndarray, np.ndarray]:
    """MaxMin in geodesic space: one shortest-path run per landmark; the rows are kept."""
    n_samples = graph.shape[0]
    current = int(check_random_state(random_state).randint(n_samples))
    landmark_index = np.empty(n_landmarks, dtype=np.int64)
    rows: np.ndarray | None = None
    nearest = np.full(n_samples, np.inf)
    picked = np.zeros(n_samples, dtype=bool)
    with progress_bar(n_landmarks, "MaxMin (geodesic)", show, unit="landmark") as bar:
        for position in range(n_landmarks):
            landmark_index[position] = current
            picked[current] = True
            row = backend.geodesic_rows(graph, np.array([current]), path_method)[0]
            if rows is None:
                rows = np.empty((n_landmarks, n_samples), dtype=row.dtype)
            rows[position] = row
            np.minimum(nearest, row, out=nearest)
            # Ties go to the smallest index; picked points (distance 0) never come back.
            current = int(np.argmax(np.where(picked, -1.0, nearest)))
            bar.update(1)
    return landmark_index, rows


def cover_components(landmark_index: np.ndarray, component_labels: np.ndarray) -> np.ndarray:
    """Add one landmark (the lowest index) to every component that has none, with a warning.

    Parameters
    ----------
    landmark_index : ndarray of shape (n_landmarks,), int64
        The landmarks chosen so far.
    component_labels : ndarray of shape (n_samples,), int
        Connected-component label of every point.

    Returns
    -------
    ndarray of int64
        ``landmark_index``, followed by the first point of each component it missed.
    """
    labels = np.asarray(component_labels)
    n_labels = int(labels.max()) + 1
    covered = np.zeros(n_labels, dtype=bool)
    covered[labels[landmark_index]] = True
    missing = np.flatnonzero(~covered)
    if missing.size == 0:
        return landmark_index
    # First point of each component, in component order.
    first_points = np.full(n_labels, labels.size, dtype=np.int64)
    np.minimum.at(first_points, labels, np.arange(labels.size, dtype=np.int64))
    warnings.warn(
        f"{missing.size} connected component(s) of the neighbour graph had no landmark; one landmark was "
        f"added in each, so n_landmarks is now {landmark_index.size + missing.size}. Increase "
        "n_landmarks or n_neighbors to avoid this.",
        stacklevel=4,
    )
    return np.concatenate([landmark_index, first_points[missing]]).astype(np.int64)
