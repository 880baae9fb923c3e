"""Benchmark data and accuracy: manifolds with their true coordinates, residual variance, parity."""

from __future__ import annotations

from typing import Any

import numpy as np

# Rows of the geodesic distance matrix kept for the paths-stage parity check.
PATH_CHECK_ROWS = 16
# Manifolds of the scaling benchmark: the 3-D swiss roll and isogan.datasets.make_shapes images.
BENCH_DATASETS = ("swiss-roll", "shapes")
# Features of each benchmark manifold's points.
DATASET_FEATURES = {"swiss-roll": 3, "shapes": 28 * 28}


def swiss_roll_with_coordinates(
    n_samples: int, dtype: str | np.dtype = "float64", random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Return the benchmark swiss roll and its true 2-D coordinates.

    Parameters
    ----------
    n_samples : int
        Number of points.
    dtype : str or numpy.dtype, default='float64'
        dtype of the returned points.
    random_state : int, default=0
        Seed of :func:`sklearn.datasets.make_swiss_roll` (no noise).

    Returns
    -------
    points : numpy.ndarray of shape (n_samples, 3)
        C-contiguous points.
    coordinates : numpy.ndarray of shape (n_samples, 2), float64
        Where each point lies on the unrolled sheet: arc length along the spiral
        (``t -> (t cos t, t sin t)``), and height.
    """
    from sklearn.datasets import make_swiss_roll

    points, spiral_angle = make_swiss_roll(n_samples=n_samples, noise=0.0, random_state=random_state)
    # Arc length of the spiral (t cos t, t sin t) from 0 to t.
    arc_length = 0.5 * (spiral_angle * np.sqrt(1.0 + spiral_angle * spiral_angle) + np.arcsinh(spiral_angle))
    coordinates = np.column_stack([arc_length, points[:, 1]])
    return np.ascontiguousarray(points, dtype=dtype), coordinates


def manifold_with_coordinates(
    dataset: str, n_samples: int, dtype: str | np.dtype = "float64", random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Return a benchmark manifold and the true coordinates its embedding is scored against.

    Parameters
    ----------
    dataset : {'swiss-roll', 'shapes'}
        'swiss-roll': :func:`swiss_roll_with_coordinates` (3 features, coordinates arc length and
        height). 'shapes': :func:`isogan.datasets.make_shapes` (28 x 28 = 784 features,
        coordinates the four factors angle, scale, x and y).
    n_samples : int
        Number of points.
    dtype : str or numpy.dtype, default='float64'
        dtype of the returned points.
    random_state : int, default=0
        Seed of the draw.

    Returns
    -------
    points : numpy.ndarray of shape (n_samples, n_features)
        C-contiguous points.
    coordinates : numpy.ndarray of shape (n_samples, n_factors), float64

    Raises
    ------
    ValueError
        If ``dataset`` is not one of :data:`BENCH_DATASETS`.
    """
    if dataset == "swiss-roll":
        return swiss_roll_with_coordinates(n_samples, dtype, random_state)
    if dataset == "shapes":
        from isogan.datasets import make_shapes

        points, factors = make_shapes(n_samples, random_state=random_state)
        return np.ascontiguousarray(points, dtype=dtype), factors
    raise ValueError(f"Unknown dataset {dataset!r}; expected one of {BENCH_DATASETS}")


def swiss_roll(n_samples: int, dtype: str | np.dtype = "float64", random_state: int = 0) -> np.ndarray:
    """Return the swiss roll used by every benchmark.

    Parameters
    ----------
    n_samples : int
        Number of points.
    dtype : str or numpy.dtype, default='float64'
        dtype of the returned array.
    random_state : int, default=0
        Seed of :func:`sklearn.datasets.make_swiss_roll` (no noise).

    Returns
    -------
    numpy.ndarray of shape (n_samples, 3)
        C-contiguous points.
    """
    return swiss_roll_with_coordinates(n_samples, dtype, random_state)[0]


def residual_variance(embedding: np.ndarray, coordinates: np.ndarray, n_points: int = 2000) -> float:
    """Return ``1 - r**2`` between pairwise distances of an embedding and of the true coordinates.

    The usual Isomap quality measure (Tenenbaum et al. 2000): ``r`` is the correlation of the
    pairwise Euclidean distances of the embedding with those of the true coordinates, on at most
    ``n_points`` points drawn with a fixed seed (so every N costs the same).

    Parameters
    ----------
    embedding : numpy.ndarray of shape (n_samples, n_components)
        Embedded points.
    coordinates : numpy.ndarray of shape (n_samples, n_true)
        True coordinates (e.g. from :func:`swiss_roll_with_coordinates`).
    n_points : int, default=2000
        Points used (all when there are fewer).

    Returns
    -------
    float
        0 for an embedding isometric to the truth up to scale; 1 for one unrelated to it.

    Examples
    --------
    >>> coordinates = np.random.default_rng(0).normal(size=(50, 2))
    >>> round(residual_variance(3.0 * coordinates + 1.0, coordinates), 12)
    0.0
    """
    from scipy.spatial.distance import pdist

    sample = np.random.default_rng(0).choice(len(embedding), min(n_points, len(embedding)), replace=False)
    correlation = np.corrcoef(
        pdist(np.asarray(embedding[sample], dtype=np.float64)), pdist(np.asarray(coordinates[sample], dtype=np.float64))
    )[0, 1]
    return float(1.0 - correlation * correlation)


def relative_max_error(result: np.ndarray, reference: np.ndarray) -> float:
    """Return ``max|result - reference| / max|reference|`` computed in float64.

    Parameters
    ----------
    result : numpy.ndarray
        Values to check.
    reference : numpy.ndarray
        Reference values, same shape as ``result``.

    Returns
    -------
    float
        The relative max error; ``inf`` when the shapes differ, when ``result`` has non-finite values
        where ``reference`` is finite, or when ``reference`` is all zero and ``result`` is not.

    Examples
    --------
    >>> relative_max_error(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    0.2
    """
    result = np.asarray(result, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if result.shape != reference.shape:
        return float("inf")
    if not np.array_equal(np.isfinite(result), np.isfinite(reference)):
        return float("inf")
    finite = np.isfinite(reference)
    if not finite.any():
        return 0.0
    scale = float(np.max(np.abs(reference[finite])))
    diff = float(np.max(np.abs(result[finite] - reference[finite])))
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale


def sorted_neighbor_distances(graph: Any, n_neighbors: int) -> np.ndarray:
    """Return each row's ``n_neighbors`` smallest stored distances, sorted (a tie-proof knn check).

    Parameters
    ----------
    graph : scipy.sparse matrix of shape (N, N)
        Neighbour graph with distances as stored values.
    n_neighbors : int
        Distances kept per row; rows with fewer stored values are padded with ``inf``.

    Returns
    -------
    numpy.ndarray of shape (N, n_neighbors), float64
    """
    import scipy.sparse

    csr = scipy.sparse.csr_matrix(graph)
    csr.sort_indices()
    rows = np.full((csr.shape[0], n_neighbors), np.inf)
    for row in range(csr.shape[0]):
        values = np.sort(np.asarray(csr.data[csr.indptr[row] : csr.indptr[row + 1]], dtype=np.float64))
        rows[row, : min(n_neighbors, values.size)] = values[:n_neighbors]
    return rows


def path_check_rows(n_samples: int) -> np.ndarray:
    """Return the indices of the geodesic-matrix rows kept for the paths parity check.

    Parameters
    ----------
    n_samples : int
        Number of points.

    Returns
    -------
    numpy.ndarray of int64
        At most :data:`PATH_CHECK_ROWS` evenly spaced row indices.
    """
    return np.unique(np.linspace(0, n_samples - 1, num=min(PATH_CHECK_ROWS, n_samples)).astype(np.int64))
