"""Landmark Isomap (de Silva & Tenenbaum 2003): Isomap for large N in O(N * L) memory.

Exact Isomap keeps the N x N geodesic matrix. Landmark Isomap runs shortest paths from L chosen
landmarks only (an L x N matrix), embeds the landmarks by classical MDS on their L x L block and
places every other point by distance-based triangulation against the landmarks::

    x_i = -1/2 * pinv(E_L)^T (delta_i - delta_mean)

where ``E_L`` (L, c) is the landmark embedding, ``delta_i[l]`` the squared geodesic distance from
point i to landmark l and ``delta_mean`` the column mean of the squared L x L block. With L = N it
is exact Isomap. New points are embedded the same way, their distances to the landmarks being the
min-plus product of their neighbour distances with the landmark rows.

Landmark choice
---------------
``'maxmin'`` (default) is farthest-point sampling: the first landmark is drawn by
``random_state``, each next one is the point farthest from all landmarks so far. It runs in
*input space* (Euclidean), O(N * L * D) in a native kernel: for N = 100k, L = 1000, D = 3 that is
well under a second. MaxMin in *geodesic* space would need L sequential single-source shortest
paths (a Dijkstra over the whole graph per landmark, no parallelism over sources), several times
the cost of the batched landmark rows; it is used only when there are no input coordinates (a
precomputed neighbour graph), where its rows double as the landmark rows. ``'random'`` draws L
distinct points uniformly.

Memory
------
Held at once: the neighbour graph (N * k values and indices, twice after symmetrisation), the
landmark rows (L * N in the input dtype) and O(N * c) outputs. For out-of-core input
(``np.memmap`` or a ``.npy`` path) the points are never loaded whole: the kNN graph is built over
blocks of ``chunk_rows`` query rows times ``chunk_rows`` candidate rows read from the file, so the
points in memory are at most ``2 * chunk_rows * D`` values; MaxMin then runs on a uniformly drawn
candidate pool of at most ``chunk_rows`` rows (a full MaxMin would read the file L times).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from tqdm import tqdm

from isogan import _core
from isogan import _device
from isogan import knn as _knn
from isogan import mds as _mds
from isogan import paths as _paths

_LANDMARK_METHODS = ("maxmin", "random")

# Rows read from an out-of-core file at a time when the caller does not say (float32, D = 784:
# about 200 MB per block).
_DEFAULT_CHUNK_ROWS = 65536

# Fits of at least this many points show per-stage progress bars when ``progress`` is None.
_PROGRESS_MIN_SAMPLES = 20000


@dataclass
class LandmarkModel:
    """A fitted landmark Isomap: what is needed to embed the training set and new points.

    Attributes
    ----------
    landmark_index : ndarray of shape (n_landmarks,)
        Indices of the landmarks among the training points, in selection order.
    landmark_geodesic : ndarray of shape (n_landmarks, n_samples)
        Geodesic distances from every landmark to every training point (input dtype).
    landmark_embedding : ndarray of shape (n_landmarks, n_components)
        Classical MDS embedding of the landmarks.
    eigenvalues : ndarray of shape (n_components,)
        Eigenvalues of the centred landmark kernel, descending.
    eigenvectors : ndarray of shape (n_landmarks, n_components)
        Eigenvectors of the centred landmark kernel.
    projection : ndarray of shape (n_components, n_landmarks)
        ``-1/2 * pinv(landmark_embedding)``: maps centred squared distances to coordinates.
    mean_sq_distance : ndarray of shape (n_landmarks,)
        Column means of the squared landmark block (``delta_mean``), float64.
    embedding : ndarray of shape (n_samples, n_components)
        Triangulated coordinates of all training points.
    timings : dict of str to float
        Wall-clock seconds per stage.
    """

    landmark_index: np.ndarray
    landmark_geodesic: np.ndarray
    landmark_embedding: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    projection: np.ndarray
    mean_sq_distance: np.ndarray
    embedding: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------ validation
def check_n_landmarks(n_landmarks: Any, n_components: int, n_samples: int) -> int:
    """Validate ``n_landmarks`` against the number of components and of samples.

    Parameters
    ----------
    n_landmarks : int
        Requested number of landmarks.
    n_components : int
        Dimension of the embedding.
    n_samples : int
        Number of training points.

    Returns
    -------
    int
        ``n_landmarks`` as a Python int.

    Raises
    ------
    ValueError
        If ``n_landmarks`` is not an int with ``n_components + 1 <= n_landmarks <= n_samples``.
    """
    if not isinstance(n_landmarks, Integral) or isinstance(n_landmarks, bool):
        raise ValueError(f"n_landmarks must be an int, got {n_landmarks!r}")
    if n_landmarks < n_components + 1:
        raise ValueError(
            f"Expected n_landmarks >= n_components + 1, but n_landmarks = {n_landmarks}, "
            f"n_components = {n_components}. Use at least n_components + 1 landmarks."
        )
    if n_landmarks > n_samples:
        raise ValueError(
            f"Expected n_landmarks <= n_samples, but n_landmarks = {n_landmarks}, n_samples = {n_samples}."
        )
    return int(n_landmarks)


def _check_method(landmark_method: Any) -> str:
    if landmark_method not in _LANDMARK_METHODS:
        raise ValueError(
            f"The 'landmark_method' parameter must be a str among {set(_LANDMARK_METHODS)}. "
            f"Got {landmark_method!r} instead."
        )
    return str(landmark_method)


# ------------------------------------------------------------------------------ selection
def select_landmarks(
    points: np.ndarray,
    n_landmarks: int,
    *,
    landmark_method: str = "maxmin",
    random_state: Any = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Choose landmarks among points given by their coordinates.

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
        Threads for the MaxMin kernel (joblib convention; None uses all).

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
    from sklearn.utils import check_random_state

    landmark_method = _check_method(landmark_method)
    n_samples = points.shape[0]
    if not isinstance(n_landmarks, Integral) or not 1 <= n_landmarks <= n_samples:
        raise ValueError(f"n_landmarks must be an int in [1, {n_samples}], got {n_landmarks!r}")
    rng = check_random_state(random_state)
    if landmark_method == "random":
        return np.sort(rng.choice(n_samples, size=int(n_landmarks), replace=False)).astype(np.int64)
    first = int(rng.randint(n_samples))
    dtype = np.float32 if points.dtype == np.float32 else np.float64
    contiguous = np.ascontiguousarray(points, dtype=dtype)
    landmark_index, _ = _core.landmark_maxmin(contiguous, int(n_landmarks), first, _threads(n_jobs))
    return landmark_index


def _threads(n_jobs: int | None) -> int:
    return 0 if n_jobs is None else int(n_jobs)


# ------------------------------------------------------------------------------ fitting
def fit_landmark_model(
    graph: Any,
    n_landmarks: int,
    n_components: int = 2,
    *,
    points: np.ndarray | None = None,
    landmark_method: str = "maxmin",
    random_state: Any = None,
    component_labels: np.ndarray | None = None,
    path_method: str = "auto",
    n_jobs: int | None = None,
    device: str = "auto",
    progress: bool | None = None,
) -> LandmarkModel:
    """Fit landmark Isomap on a connected neighbour graph.

    Parameters
    ----------
    graph : sparse matrix of shape (n_samples, n_samples)
        Connected neighbour graph of edge lengths (as from :func:`isogan.knn_graph`).
    n_landmarks : int
        Number of landmarks, ``n_components + 1 <= n_landmarks <= n_samples``.
    n_components : int, default=2
        Dimension of the embedding.
    points : ndarray of shape (n_samples, n_features), optional
        Coordinates of the points, used for MaxMin in input space. Without them MaxMin runs in
        geodesic space (L sequential shortest-path runs).
    landmark_method : {'maxmin', 'random'}, default='maxmin'
        How landmarks are chosen (see :func:`select_landmarks`).
    random_state : int, RandomState instance or None, default=None
        Seeds the landmark choice.
    component_labels : ndarray of shape (n_samples,), optional
        Connected components of the neighbour graph before its components were joined. Every
        component left without a landmark gets one (with a warning), so that each part of the
        data anchors the embedding.
    path_method : {'auto', 'D', 'FW'}, default='auto'
        Shortest-path method passed to :func:`isogan.geodesic_distances`.
    n_jobs : int or None, default=None
        Threads (joblib convention).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where MaxMin, the shortest paths, MDS and triangulation run ('auto': a usable GPU, else
        the CPU; 'cuda' without one raises RuntimeError).
    progress : bool or None, default=None
        Show per-stage progress bars; None shows them from 20000 points on.

    Returns
    -------
    LandmarkModel

    Raises
    ------
    ValueError
        If ``n_landmarks`` is out of range, or the graph is disconnected (join its components
        first, as :func:`landmark_isomap` does).
    RuntimeError
        If ``device='cuda'`` and no CUDA device is usable.
    MemoryError
        On the GPU, when the landmark rows do not fit (the message names bytes and a remedy).
    """
    if _device.resolve_device(device) == "cuda":
        from isogan import _landmark_cuda

        return _landmark_cuda.fit_landmark_model_cuda(
            graph, n_landmarks, n_components, points=points, landmark_method=landmark_method,
            random_state=random_state, component_labels=component_labels, path_method=path_method,
            n_jobs=n_jobs, progress=progress,
        )
    n_samples = graph.shape[0]
    n_landmarks = check_n_landmarks(n_landmarks, n_components, n_samples)
    landmark_method = _check_method(landmark_method)
    n_graph_components, _ = connected_components(graph, directed=False)
    if n_graph_components > 1:
        raise ValueError(
            f"The neighbour graph has {n_graph_components} connected components, so geodesic "
            "distances between them are infinite. Join its components first (landmark_isomap does, "
            "from the input coordinates) or increase n_neighbors."
        )
    show = n_samples >= _PROGRESS_MIN_SAMPLES if progress is None else bool(progress)
    timings: dict[str, float] = {}
    bar = tqdm(total=3, desc="landmark Isomap", unit="stage", file=sys.stderr, disable=not show, leave=False)
    try:
        start = time.perf_counter()
        bar.set_postfix_str("landmarks", refresh=False)
        landmark_geodesic = None
        if landmark_method == "maxmin" and points is None:
            landmark_index, landmark_geodesic = _geodesic_maxmin(
                graph, n_landmarks, random_state, path_method, n_jobs, device, show
            )
        elif points is not None:
            landmark_index = select_landmarks(
                points, n_landmarks, landmark_method=landmark_method, random_state=random_state, n_jobs=n_jobs
            )
        else:
            landmark_index = select_landmarks(
                np.zeros((n_samples, 1)), n_landmarks, landmark_method="random", random_state=random_state
            )
        if component_labels is not None:
            landmark_index = _cover_components(landmark_index, component_labels)
            if landmark_geodesic is not None and landmark_geodesic.shape[0] < landmark_index.size:
                extra = landmark_index[landmark_geodesic.shape[0] :]
                extra_rows = _paths.geodesic_distances(
                    graph, method=path_method, indices=extra, n_jobs=n_jobs, device=device
                )
                landmark_geodesic = np.vstack([landmark_geodesic, _to_numpy(extra_rows)])
        timings["landmarks"] = time.perf_counter() - start
        bar.update(1)

        start = time.perf_counter()
        bar.set_postfix_str("geodesic distances", refresh=False)
        if landmark_geodesic is None:
            landmark_geodesic = _to_numpy(
                _paths.geodesic_distances(
                    graph, method=path_method, indices=landmark_index, n_jobs=n_jobs, device=device, progress=show
                )
            )
        landmark_geodesic = np.ascontiguousarray(landmark_geodesic)
        timings["paths"] = time.perf_counter() - start
        bar.update(1)

        start = time.perf_counter()
        bar.set_postfix_str("MDS + triangulation", refresh=False)
        model = _embed_landmarks(landmark_index, landmark_geodesic, n_components, n_jobs, device)
        timings["mds"] = time.perf_counter() - start
        bar.update(1)
    finally:
        bar.close()
    model.timings = timings
    return model


def _to_numpy(array: Any) -> np.ndarray:
    if hasattr(array, "__cuda_array_interface__"):
        return array.get() if hasattr(array, "get") else array.detach().cpu().numpy()
    return np.asarray(array)


def _geodesic_maxmin(
    graph: Any, n_landmarks: int, random_state: Any, path_method: str, n_jobs: int | None, device: str, show: bool
) -> tuple[np.ndarray, np.ndarray]:
    """MaxMin in geodesic space: one shortest-path run per landmark; the rows are kept."""
    from sklearn.utils import check_random_state

    n_samples = graph.shape[0]
    rng = check_random_state(random_state)
    current = int(rng.randint(n_samples))
    landmark_index = np.empty(n_landmarks, dtype=np.int64)
    rows: np.ndarray | None = None
    nearest = np.full(n_samples, np.inf)
    picked = np.zeros(n_samples, dtype=bool)
    for position in tqdm(range(n_landmarks), desc="MaxMin (geodesic)", file=sys.stderr, disable=not show, leave=False):
        landmark_index[position] = current
        picked[current] = True
        row = _to_numpy(
            _paths.geodesic_distances(graph, method=path_method, indices=np.array([current]), n_jobs=n_jobs, device=device)
        )[0]
        if rows is None:
            rows = np.empty((n_landmarks, n_samples), dtype=row.dtype)
        rows[position] = row
        np.minimum(nearest, row, out=nearest)
        # Ties go to the smallest index; picked points (distance 0) never come back.
        candidates = np.where(picked, -1.0, nearest)
        current = int(np.argmax(candidates))
    return landmark_index, rows


def _cover_components(landmark_index: np.ndarray, component_labels: np.ndarray) -> np.ndarray:
    """Add one landmark (the lowest index) to every component that has none, with a warning."""
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
        stacklevel=3,
    )
    return np.concatenate([landmark_index, first_points[missing]]).astype(np.int64)


def _embed_landmarks(
    landmark_index: np.ndarray,
    landmark_geodesic: np.ndarray,
    n_components: int,
    n_jobs: int | None,
    device: str,
    triangulate_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> LandmarkModel:
    """Classical MDS on the landmark block, then triangulation of every point.

    ``triangulate_fn(landmark_geodesic, projection, mean_sq_distance)`` places the points; the
    default is the CPU kernel (:func:`triangulate`), the GPU fit passes its device twin.
    """
    # max() propagates inf and NaN without an (L, N) temporary.
    if not np.isfinite(landmark_geodesic.max()):
        raise ValueError("Geodesic distances from the landmarks are not all finite; the neighbour graph is disconnected.")
    block = landmark_geodesic[:, landmark_index].astype(np.float64)
    # Dijkstra from a and from b may round d(a, b) differently in float32: symmetrise.
    block = 0.5 * (block + block.T)
    landmark_embedding, eigenvalues, eigenvectors = _mds.classical_mds(
        block, n_components=n_components, device=device, n_jobs=n_jobs
    )
    landmark_embedding = _to_numpy(landmark_embedding)
    eigenvalues = _to_numpy(eigenvalues).astype(np.float64)
    eigenvectors = _to_numpy(eigenvectors).astype(np.float64)
    mean_sq_distance = np.mean(block * block, axis=0)
    projection = np.zeros((eigenvectors.shape[1], eigenvectors.shape[0]), dtype=np.float64)
    positive = np.flatnonzero(eigenvalues > 0)
    projection[positive] = -0.5 * (eigenvectors[:, positive] / np.sqrt(eigenvalues[positive])).T
    if triangulate_fn is None:
        embedding = triangulate(landmark_geodesic, projection, mean_sq_distance, n_jobs=n_jobs)
    else:
        embedding = triangulate_fn(landmark_geodesic, projection, mean_sq_distance)
    return LandmarkModel(
        landmark_index=landmark_index,
        landmark_geodesic=landmark_geodesic,
        landmark_embedding=landmark_embedding,
        eigenvalues=eigenvalues,
        eigenvectors=eigenvectors,
        projection=projection,
        mean_sq_distance=mean_sq_distance,
        embedding=embedding,
    )


def triangulate(
    landmark_geodesic: np.ndarray, projection: np.ndarray, mean_sq_distance: np.ndarray, *, n_jobs: int | None = None
) -> np.ndarray:
    """Distance-based triangulation of points from their geodesic distances to the landmarks.

    Parameters
    ----------
    landmark_geodesic : ndarray of shape (n_landmarks, n_points)
        Distances from each landmark to each point to place, float32 or float64.
    projection : ndarray of shape (n_components, n_landmarks)
        ``-1/2 * pinv(landmark_embedding)`` (:attr:`LandmarkModel.projection`).
    mean_sq_distance : ndarray of shape (n_landmarks,)
        Column means of the squared landmark block.
    n_jobs : int or None, default=None
        Threads (joblib convention; None uses all).

    Returns
    -------
    ndarray of shape (n_points, n_components)
        Coordinates, in the dtype of ``landmark_geodesic``.
    """
    geodesic = np.ascontiguousarray(landmark_geodesic)
    if geodesic.dtype not in (np.float32, np.float64):
        geodesic = geodesic.astype(np.float64)
    return _core.landmark_triangulate(
        geodesic,
        np.ascontiguousarray(projection, dtype=np.float64),
        np.ascontiguousarray(mean_sq_distance, dtype=np.float64),
        _threads(n_jobs),
    )


def transform_from_neighbors(
    model: LandmarkModel, neighbors: Any, *, n_jobs: int | None = None, chunk_rows: int = 65536, device: str = "cpu"
) -> np.ndarray:
    """Embed new points given their neighbours among the training points.

    Each new point's geodesic distance to a landmark is the min-plus product of its neighbour
    edge lengths with the landmark rows; it is then triangulated like a training point. Work and
    memory are O(M * L) per chunk of ``chunk_rows`` points.

    Parameters
    ----------
    model : LandmarkModel
        The fitted model.
    neighbors : tuple (distances, indices) of arrays of shape (n_queries, k), or sparse matrix of shape (n_queries, n_samples)
        The neighbours of each new point among the training points: the output of
        :func:`isogan.knn.kneighbors`, or a graph of edge lengths (e.g. radius neighbours) with
        every row non-empty.
    n_jobs : int or None, default=None
        Threads (joblib convention; None uses all).
    chunk_rows : int, default=65536
        New points processed at a time (on the GPU, fewer when their landmark columns would
        exceed 1 GiB).
    device : {'cpu', 'cuda', 'auto'}, default='cpu'
        Where the min-plus product and the triangulation run.

    Returns
    -------
    ndarray of shape (n_queries, n_components)
        In the dtype of the landmark rows.

    Raises
    ------
    ValueError
        If the neighbours do not index the training set, or a new point has none.
    RuntimeError
        If ``device='cuda'`` and no CUDA device is usable.
    """
    backend = _device.resolve_device(device)
    n_train = model.landmark_geodesic.shape[1]
    dtype = model.landmark_geodesic.dtype
    if isinstance(neighbors, tuple):
        neighbor_distance = np.ascontiguousarray(neighbors[0], dtype=dtype)
        neighbor_index = np.ascontiguousarray(neighbors[1], dtype=np.int64)
        if neighbor_distance.ndim != 2 or neighbor_distance.shape != neighbor_index.shape:
            raise ValueError("neighbour distances and indices must be 2-D arrays of the same shape")
        if neighbor_index.shape[0] and neighbor_index.shape[1] == 0:
            raise ValueError("Every new point needs at least one training neighbour; got k = 0.")
    else:
        graph = sparse.csr_matrix(neighbors)
        if graph.shape[1] != n_train:
            raise ValueError(f"The neighbour graph has {graph.shape[1]} columns, expected n_samples = {n_train}")
        row_counts = np.diff(graph.indptr)
        if graph.shape[0] and row_counts.min() == 0:
            first = int(np.flatnonzero(row_counts == 0)[0])
            raise ValueError(f"Row {first} of the neighbour graph has no training neighbour; its distances are undefined.")
        # Pad ragged rows (radius graphs) by repeating each row's first neighbour: min is unchanged.
        neighbor_index, neighbor_distance = _padded_rows(graph, int(row_counts.max(initial=1)), dtype)
    n_queries = neighbor_index.shape[0]
    if n_queries and (neighbor_index.min() < 0 or neighbor_index.max() >= n_train):
        raise ValueError(f"neighbour indices hold values outside [0, {n_train}), the training points")
    if backend == "cuda" and n_queries:
        from isogan import _landmark_cuda

        return _landmark_cuda.transform_cuda(model, neighbor_index, neighbor_distance, chunk_rows)
    out = np.empty((n_queries, model.projection.shape[0]), dtype=dtype)
    for start in range(0, n_queries, chunk_rows):
        stop = start + chunk_rows
        query_geodesic = _core.landmark_min_plus(
            model.landmark_geodesic, neighbor_index[start:stop], neighbor_distance[start:stop], _threads(n_jobs)
        )
        out[start:stop] = triangulate(query_geodesic, model.projection, model.mean_sq_distance, n_jobs=n_jobs)
    return out


def _padded_rows(rows: sparse.csr_matrix, width: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    counts = np.diff(rows.indptr)
    position = np.arange(width)[None, :]
    take = rows.indptr[:-1, None] + np.where(position < counts[:, None], position, 0)
    neighbor_index = np.ascontiguousarray(rows.indices[take], dtype=np.int64)
    neighbor_distance = np.ascontiguousarray(rows.data[take], dtype=dtype)
    return neighbor_index, neighbor_distance


# ------------------------------------------------------------------------------ end to end
def landmark_isomap(
    X: Any,
    n_landmarks: int,
    n_components: int = 2,
    *,
    n_neighbors: int = 5,
    metric: str = "minkowski",
    p: float = 2,
    metric_params: dict | None = None,
    landmark_method: str = "maxmin",
    random_state: Any = None,
    path_method: str = "auto",
    chunk_rows: int | None = None,
    n_jobs: int | None = None,
    device: str = "auto",
    progress: bool | None = None,
    neighbors_algorithm: str = "auto",
) -> LandmarkModel:
    """Embed points with landmark Isomap, in O(N * L) memory; the input may live on disk.

    Parameters
    ----------
    X : ndarray, numpy.memmap or str/os.PathLike of shape (n_samples, n_features)
        The points; a path names a ``.npy`` file, read block by block with plain file reads
        (so only the blocks in use count towards the process's memory; a Fortran-ordered file
        is memory-mapped instead). A memmap or file of
        more than ``chunk_rows`` rows is never loaded whole.
    n_landmarks : int
        Number of landmarks, ``n_components + 1 <= n_landmarks <= n_samples``.
    n_components : int, default=2
        Dimension of the embedding.
    n_neighbors : int, default=5
        Neighbours per point in the kNN graph.
    metric : str, default='minkowski'
        kNN metric (as in :func:`isogan.knn_graph`); MaxMin always uses Euclidean distance.
    p : float, default=2
        Minkowski power.
    metric_params : dict, optional
        Extra metric arguments.
    landmark_method : {'maxmin', 'random'}, default='maxmin'
        How landmarks are chosen (see :func:`select_landmarks`).
    random_state : int, RandomState instance or None, default=None
        Seeds the landmark choice.
    path_method : {'auto', 'D', 'FW'}, default='auto'
        Shortest-path method.
    chunk_rows : int, optional
        Rows of an out-of-core input read at a time (default 65536); bounds the points held in
        memory to ``2 * chunk_rows * n_features`` values.
    n_jobs : int or None, default=None
        Threads (joblib convention).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the stages run. On 'cuda' the points are streamed to the device ``chunk_rows`` rows
        at a time and stay there for the kNN search (query blocks against all points) and MaxMin;
        landmark rows, MDS and triangulation follow on the device. 'auto' uses a usable GPU, else
        the CPU; 'cuda' without one raises RuntimeError.
    progress : bool or None, default=None
        Per-stage progress bars; None shows them from 20000 points on.
    neighbors_algorithm : {'auto', 'brute', 'kd_tree', 'ball_tree'}, default='auto'
        kNN search algorithm (as ``algorithm`` in :func:`isogan.knn_graph`); the graph is the
        same whichever runs.

    Returns
    -------
    LandmarkModel
        ``.embedding`` holds the (n_samples, n_components) coordinates.

    Raises
    ------
    ValueError
        If ``n_landmarks`` is not in ``[n_components + 1, n_samples]``, ``n_neighbors`` is not
        below ``n_samples``, or the input is not a 2-D float array.
    RuntimeError
        If ``device='cuda'`` and no CUDA device is usable (the message says why).
    MemoryError
        On the GPU, when the points or the (L, N) landmark rows do not fit in free device memory
        (the message names the bytes needed, the bytes free and a remedy).

    Warns
    -----
    UserWarning
        When the neighbour graph is disconnected: its components are joined through their
        nearest pairs (as scikit-learn's Isomap does) and a landmark is added to every component
        that has none.

    Examples
    --------
    >>> from sklearn.datasets import make_swiss_roll
    >>> from isogan.landmark import landmark_isomap
    >>> X, _ = make_swiss_roll(2000, random_state=0)
    >>> landmark_isomap(X, n_landmarks=100, n_neighbors=10, random_state=0).embedding.shape
    (2000, 2)
    """
    points = _open_points(X) if isinstance(X, (str, os.PathLike)) else X
    if not isinstance(points, (np.ndarray, NpyRows)):
        points = np.asarray(points)
    if points.ndim != 2:
        raise ValueError(f"Expected a 2-D array of points, got shape {points.shape}")
    on_disk = isinstance(points, (np.memmap, NpyRows))
    if points.dtype not in (np.float32, np.float64):
        if on_disk:
            raise ValueError(f"Out-of-core input must be float32 or float64, got {points.dtype}")
        points = points.astype(np.float64)
    n_samples = points.shape[0]
    n_landmarks = check_n_landmarks(n_landmarks, n_components, n_samples)
    if not isinstance(n_neighbors, Integral) or not 1 <= n_neighbors < n_samples:
        raise ValueError(
            f"Expected n_neighbors < n_samples_fit, but n_neighbors = {n_neighbors}, n_samples_fit = {n_samples}"
        )
    chunk_rows = _DEFAULT_CHUNK_ROWS if chunk_rows is None else int(chunk_rows)
    if chunk_rows < n_neighbors + 1:
        raise ValueError(f"chunk_rows must be > n_neighbors, got {chunk_rows}")
    out_of_core = on_disk and n_samples > chunk_rows
    backend = _device.resolve_device(device)
    native_metric = _knn._native_metric(metric, p, metric_params)
    # The GPU streams out-of-core points to the device block by block and keeps them there.
    on_gpu = backend == "cuda" and native_metric is not None and native_metric[0] != _knn._PRECOMPUTED
    if not out_of_core and not on_gpu:
        points = np.ascontiguousarray(points[0:n_samples])
    show = n_samples >= _PROGRESS_MIN_SAMPLES if progress is None else bool(progress)
    knn_options = dict(
        metric=metric, p=p, metric_params=metric_params, n_jobs=n_jobs, device=backend, algorithm=neighbors_algorithm
    )

    start = time.perf_counter()
    resident = None
    if on_gpu:
        from isogan import _landmark_cuda

        graph, resident = _landmark_cuda.knn_graph_cuda(
            points, n_neighbors, native_metric[0], native_metric[1], points.dtype, n_landmarks=n_landmarks,
            n_components=n_components, chunk_rows=chunk_rows, show=show,
        )
    elif out_of_core:
        graph = _chunked_knn_graph(points, n_neighbors, chunk_rows, knn_options, show)
    else:
        graph = _knn.knn_graph(points, n_neighbors=n_neighbors, mode="distance", **knn_options)
    knn_seconds = time.perf_counter() - start

    start = time.perf_counter()
    n_graph_components, labels = connected_components(graph, directed=False)
    component_labels = None
    if n_graph_components > 1:
        warnings.warn(
            f"The number of connected components of the neighbors graph is {n_graph_components} > 1. "
            "Completing the graph to fit Isomap might be slow. Increase the number of neighbors to avoid this issue.",
            stacklevel=2,
        )
        graph = _join_components(points, graph, labels, chunk_rows, metric, p, metric_params)
        component_labels = labels
    connect_seconds = time.perf_counter() - start

    if backend == "cuda":
        from isogan import _landmark_cuda

        # Out of core, MaxMin runs on the same candidate pool as on the CPU.
        model = _landmark_cuda.fit_landmark_model_cuda(
            graph, n_landmarks, n_components, points=points, resident=resident, landmark_method=landmark_method,
            random_state=random_state, component_labels=component_labels, path_method=path_method,
            maxmin_pool=max(n_landmarks, chunk_rows) if out_of_core else None, n_jobs=n_jobs, progress=show,
        )
        model.timings = {"knn": knn_seconds, "connect": connect_seconds, **model.timings}
        return model
    candidates = None
    maxmin_points = points
    if out_of_core and landmark_method == "maxmin":
        from sklearn.utils import check_random_state

        # A full MaxMin would read the file once per landmark: run it on a random candidate pool.
        pool_rng = check_random_state(random_state)
        candidates = np.sort(pool_rng.choice(n_samples, size=max(n_landmarks, chunk_rows), replace=False))
        maxmin_points = np.ascontiguousarray(points[candidates])
    if candidates is None:
        model = fit_landmark_model(
            graph, n_landmarks, n_components, points=maxmin_points, landmark_method=landmark_method,
            random_state=random_state, component_labels=component_labels, path_method=path_method,
            n_jobs=n_jobs, device=device, progress=show,
        )
    else:
        pool_index = select_landmarks(maxmin_points, n_landmarks, random_state=random_state, n_jobs=n_jobs)
        landmark_index = candidates[pool_index]
        model = _fit_with_landmarks(graph, landmark_index, n_components, component_labels, path_method, n_jobs, device)
    model.timings = {"knn": knn_seconds, "connect": connect_seconds, **model.timings}
    return model


def _fit_with_landmarks(
    graph: Any,
    landmark_index: np.ndarray,
    n_components: int,
    component_labels: np.ndarray | None,
    path_method: str,
    n_jobs: int | None,
    device: str,
) -> LandmarkModel:
    """Landmark rows, MDS and triangulation for landmarks already chosen."""
    start = time.perf_counter()
    if component_labels is not None:
        landmark_index = _cover_components(landmark_index, component_labels)
    landmark_geodesic = np.ascontiguousarray(
        _to_numpy(_paths.geodesic_distances(graph, method=path_method, indices=landmark_index, n_jobs=n_jobs, device=device))
    )
    paths_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model = _embed_landmarks(landmark_index, landmark_geodesic, n_components, n_jobs, device)
    model.timings = {"paths": paths_seconds, "mds": time.perf_counter() - start}
    return model


def _chunked_knn_graph(
    points: np.ndarray, n_neighbors: int, chunk_rows: int, knn_options: dict, show: bool
) -> sparse.csr_matrix:
    """kNN graph of an out-of-core array: blocks of query rows against blocks of candidate rows.

    At most two blocks of ``chunk_rows`` rows are in memory at once, plus the running
    (chunk_rows, n_neighbors) best lists.
    """
    n_samples = points.shape[0]
    dtype = points.dtype
    starts = range(0, n_samples, chunk_rows)
    # Blocks are merged in increasing index order with a stable sort: ties go to the smaller
    # index, as in the in-memory kNN stage.
    indices = np.empty((n_samples, n_neighbors), dtype=np.int64)
    distances = np.empty((n_samples, n_neighbors), dtype=dtype)
    blocks = tqdm(total=len(starts) ** 2, desc="kNN (out of core)", unit="block", file=sys.stderr, disable=not show, leave=False)
    try:
        for query_start in starts:
            query = np.ascontiguousarray(points[query_start : query_start + chunk_rows])
            n_query = query.shape[0]
            best_distance = np.full((n_query, n_neighbors), np.inf, dtype=dtype)
            best_index = np.full((n_query, n_neighbors), -1, dtype=np.int64)
            for candidate_start in starts:
                if candidate_start == query_start:
                    if n_query == 1:  # a last block of one row has no other point in it
                        blocks.update(1)
                        continue
                    # Y=None: each point is excluded by index, so its duplicates stay neighbours.
                    block_distance, block_index = _knn.kneighbors(
                        query, None, min(n_neighbors, n_query - 1), **knn_options
                    )
                else:
                    candidate = np.ascontiguousarray(points[candidate_start : candidate_start + chunk_rows])
                    block_distance, block_index = _knn.kneighbors(
                        candidate, query, min(n_neighbors, candidate.shape[0]), **knn_options
                    )
                block_distance = np.asarray(block_distance, dtype=dtype)
                block_index = np.asarray(block_index, dtype=np.int64) + candidate_start
                merged_distance = np.concatenate([best_distance, block_distance], axis=1)
                merged_index = np.concatenate([best_index, block_index], axis=1)
                order = np.argsort(merged_distance, axis=1, kind="stable")[:, :n_neighbors]
                best_distance = np.take_along_axis(merged_distance, order, axis=1)
                best_index = np.take_along_axis(merged_index, order, axis=1)
                blocks.update(1)
            indices[query_start : query_start + n_query] = best_index
            distances[query_start : query_start + n_query] = best_distance
    finally:
        blocks.close()
    indptr = np.arange(0, n_samples * n_neighbors + 1, n_neighbors, dtype=np.int64)
    return sparse.csr_matrix((distances.ravel(), indices.ravel(), indptr), shape=(n_samples, n_samples))


def _join_components(
    points: np.ndarray,
    graph: Any,
    labels: np.ndarray,
    chunk_rows: int,
    metric: str,
    p: float,
    metric_params: dict | None,
) -> sparse.csr_matrix:
    """Add, for every two components, an edge between their nearest pair (scikit-learn's rule).

    The nearest pair is found block by block, so no more than ``chunk_rows`` x ``chunk_rows``
    distances exist at once.
    """
    from sklearn.metrics import pairwise_distances

    metric_kwargs = dict(metric_params or {})
    if metric == "minkowski":
        metric_kwargs.setdefault("p", p)
    n_labels = int(labels.max()) + 1
    members = [np.flatnonzero(labels == label) for label in range(n_labels)]
    rows, cols, values = [], [], []
    for a in range(n_labels):
        for b in range(a + 1, n_labels):
            best = (np.inf, -1, -1)
            for a_start in range(0, members[a].size, chunk_rows):
                a_index = members[a][a_start : a_start + chunk_rows]
                a_points = np.asarray(points[a_index], dtype=np.float64)
                for b_start in range(0, members[b].size, chunk_rows):
                    b_index = members[b][b_start : b_start + chunk_rows]
                    block = pairwise_distances(a_points, np.asarray(points[b_index], dtype=np.float64), metric=metric, **metric_kwargs)
                    flat = int(np.argmin(block))
                    i, j = divmod(flat, block.shape[1])
                    if block[i, j] < best[0]:
                        best = (float(block[i, j]), int(a_index[i]), int(b_index[j]))
            # A zero-length edge would vanish from a sparse graph; keep it as the smallest positive.
            length = max(best[0], np.finfo(graph.dtype).tiny)
            rows += [best[1], best[2]]
            cols += [best[2], best[1]]
            values += [length, length]
    extra = sparse.csr_matrix((np.array(values, dtype=graph.dtype), (rows, cols)), shape=graph.shape)
    return sparse.csr_matrix(graph + extra)


class NpyRows:
    """Rows of a C-ordered ``.npy`` file, read on demand with ``os.pread`` (no memory map).

    Reading through a memory map would leave every touched page resident in the process; plain
    reads keep only the blocks asked for.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file holding a 2-D C-ordered array.

    Attributes
    ----------
    shape : tuple of int
        Shape of the stored array.
    dtype : numpy.dtype
        Element type of the stored array.
    ndim : int
        Number of dimensions of the stored array.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        shape, fortran_order, dtype, self._offset = _npy_header(self.path)
        if fortran_order:
            raise ValueError(f"{self.path} holds a Fortran-ordered array; save it C-ordered (np.ascontiguousarray).")
        self.shape = tuple(int(extent) for extent in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        """Read a slice of rows (step 1) or the rows at the given indices."""
        row_shape = self.shape[1:]
        with open(self.path, "rb", buffering=0) as handle:
            descriptor = handle.fileno()
            if isinstance(rows, slice):
                start, stop, step = rows.indices(self.shape[0])
                if step != 1:
                    raise ValueError("NpyRows reads contiguous slices only")
                count = max(stop - start, 0)
                out = np.empty((count, *row_shape), dtype=self.dtype)
                _read_exact(descriptor, out, self._offset + start * self._row_bytes)
                return out
            index = np.asarray(rows, dtype=np.int64)
            out = np.empty((index.size, *row_shape), dtype=self.dtype)
            for position, row in enumerate(index):
                _read_exact(descriptor, out[position], self._offset + int(row) * self._row_bytes)
            return out


def _npy_header(path: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, byte offset of the data) of a ``.npy`` file."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        # Format 3.0 only changes the header's text encoding, not its layout, from 2.0.
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(handle)
        return shape, fortran_order, dtype, handle.tell()


def _open_points(path: str | os.PathLike) -> NpyRows | np.ndarray:
    """Rows of a C-ordered ``.npy`` file, or a memory map of a Fortran-ordered one."""
    if _npy_header(os.fspath(path))[1]:
        return np.load(os.fspath(path), mmap_mode="r")
    return NpyRows(path)


def _read_exact(descriptor: int, out: np.ndarray, offset: int) -> None:
    view = memoryview(out).cast("B")
    done = 0
    while done < view.nbytes:
        n_read = os.preadv(descriptor, [view[done:]], offset + done)
        if n_read <= 0:
            raise OSError(f"unexpected end of file at byte {offset + done}")
        done += n_read
