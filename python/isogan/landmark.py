"""Landmark Isomap (de Silva & Tenenbaum 2003): Isomap for large N in O(N * L) memory.

Exact Isomap keeps the N x N geodesic matrix. Landmark Isomap runs shortest paths from L chosen
landmarks only (an L x N matrix), embeds the landmarks by classical MDS on their L x L block and
places every other point by distance-based triangulation against the landmarks::

    x_i = -1/2 * pinv(E_L)^T (delta_i - delta_mean)

where ``E_L`` (L, c) is the landmark embedding, ``delta_i[l]`` the squared geodesic distance from
point i to landmark l and ``delta_mean`` the column mean of the squared L x L block. With L = N it
is exact Isomap. New points are embedded the same way, their distances to the landmarks being the
min-plus product of their neighbour distances with the landmark rows.

This module holds the algorithm once. Where its heavy steps run (MaxMin, the landmark shortest
paths, triangulation, the transform's min-plus) is a *backend*'s business
(:mod:`isogan._backend`: CPU, CUDA, Dask); the algorithm only calls the backend's stage methods.

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
landmark rows (L * N in the input dtype; on the CPU past ``memory_budget`` one block of them, the
rest spilled to a temporary file) and O(N * c) outputs. For out-of-core input
(``np.memmap`` or a ``.npy`` path) the points are never loaded whole: the kNN graph is built over
blocks of ``chunk_rows`` query rows times ``chunk_rows`` candidate rows read from the file, so the
points in memory are at most ``2 * chunk_rows * D`` values; MaxMin then runs on a uniformly drawn
candidate pool of at most ``chunk_rows`` rows (a full MaxMin would read the file L times).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.utils import check_random_state

from isogan import mds as _mds
from isogan._backend import Backend, get_backend
from isogan._landmark_choice import check_landmark_method, choose_landmarks, cover_components, select_landmarks
from isogan._backend.policy import progress_bar, relaxation_seconds, show_progress, threads
from isogan._ranges import check_edge_range, check_kernel_range, check_point_range
from isogan.connect import connect_components
from isogan.io import NpyRows, is_out_of_core, open_points
from isogan.knn import check_n_neighbors

__all__ = [
    "LandmarkModel",
    "check_n_landmarks",
    "choose_landmarks",
    "fit_landmark_model",
    "landmark_isomap",
    "select_landmarks",
    "transform_from_neighbors",
    "triangulate",
]


#: Rows read from an out-of-core file at a time when the caller does not say (float32, D = 784:
#: about 200 MB per block).
DEFAULT_CHUNK_ROWS = 65536


@dataclass
class LandmarkModel:
    """A fitted landmark Isomap: what is needed to embed the training set and new points.

    Attributes
    ----------
    landmark_index : ndarray of shape (n_landmarks,)
        Indices of the landmarks among the training points, in selection order.
    landmark_geodesic : ndarray of shape (n_landmarks, n_samples)
        Geodesic distances from every landmark to every training point (input dtype); for a
        distributed backend, that backend's handle on rows that stay where they were computed.
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
    landmark_block : ndarray of shape (n_landmarks, n_landmarks)
        The symmetrised geodesic distances between landmarks, float64 (what MDS saw).
    embedding : ndarray of shape (n_samples, n_components)
        Triangulated coordinates of all training points.
    component_labels : ndarray of shape (n_samples,) or None
        Connected components of the neighbour graph before they were joined (None: one).
    timings : dict of str to float
        Wall-clock seconds per stage.
    """

    landmark_index: np.ndarray
    landmark_geodesic: Any
    landmark_embedding: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    projection: np.ndarray
    mean_sq_distance: np.ndarray
    landmark_block: np.ndarray
    embedding: Any
    component_labels: np.ndarray | None = None
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


def _check_connected(graph: Any) -> None:
    from scipy.sparse.csgraph import connected_components

    n_graph_components, _ = connected_components(graph, directed=False)
    if n_graph_components > 1:
        raise ValueError(
            f"The neighbour graph has {n_graph_components} connected components, so geodesic "
            "distances between them are infinite. Join its components first (landmark_isomap does, "
            "from the input coordinates) or increase n_neighbors."
        )


# ------------------------------------------------------------------------------ fitting
def fit_landmark_model(
    graph: Any,
    n_landmarks: int,
    n_components: int = 2,
    *,
    points: Any = None,
    landmark_method: str = "maxmin",
    random_state: Any = None,
    component_labels: np.ndarray | None = None,
    path_method: str = "auto",
    n_jobs: int | None = None,
    device: str = "auto",
    backend: Backend | None = None,
    maxmin_pool: int | None = None,
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
    points : array of shape (n_samples, n_features), optional
        Coordinates of the points (host, memmap or :class:`isogan.io.NpyRows`), used for MaxMin
        in input space. Without them MaxMin runs in geodesic space (L sequential shortest paths).
    landmark_method : {'maxmin', 'random'}, default='maxmin'
        How landmarks are chosen (see :func:`select_landmarks`).
    random_state : int, RandomState instance or None, default=None
        Seeds the landmark choice, then the start vectors of the eigensolver: a seeded fit is
        reproducible bit for bit (None: the eigenvectors may differ run to run in the last bits).
    component_labels : ndarray of shape (n_samples,), optional
        Connected components of the neighbour graph before its components were joined. Every
        component left without a landmark gets one (with a warning), so that each part of the
        data anchors the embedding.
    path_method : {'auto', 'D', 'FW'}, default='auto'
        Shortest-path method passed to :func:`isogan.geodesic_distances` (CPU rows).
    n_jobs : int or None, default=None
        Threads (None: all cores, bounded by ``threadpoolctl`` / ``OMP_NUM_THREADS``).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the stages run when ``backend`` is not given ('cuda' without a usable GPU raises
        RuntimeError; 'auto' runs on the CPU until the CUDA landmark path is verified on hardware).
    backend : isogan._backend.Backend, optional
        The backend to run on (overrides ``device``); the one that built the graph keeps its
        resident points for MaxMin.
    maxmin_pool : int, optional
        MaxMin over a uniform candidate pool of this many points instead of all of them.
    progress : bool or None, default=None
        Per-stage progress bars; None shows them when the fit is predicted to take over ~2 s.

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
        When the landmark rows do not fit (the message names bytes and a remedy).
    """
    backend = get_backend(device, n_jobs) if backend is None else backend
    n_samples = graph.shape[0]
    n_landmarks = check_n_landmarks(n_landmarks, n_components, n_samples)
    landmark_method = check_landmark_method(landmark_method)
    _check_connected(graph)
    check_edge_range(sparse.csr_matrix(graph).data, n_landmarks, graph.dtype)
    show = show_progress(relaxation_seconds(n_landmarks, n_samples, graph.nnz, threads(n_jobs)), progress)
    timings: dict[str, float] = {}
    # One generator for the landmark choice and then the eigensolver's start vectors: a seeded fit
    # is reproducible bit for bit.
    rng = check_random_state(random_state)
    with progress_bar(3, f"landmark Isomap ({backend.name})", show, unit="stage") as bar:
        start = time.perf_counter()
        bar.set_postfix_str("landmarks", refresh=False)
        landmark_index, known_rows = choose_landmarks(
            graph, n_landmarks, backend, points=points, landmark_method=landmark_method, random_state=rng,
            maxmin_pool=maxmin_pool, path_method=path_method, show=show,
        )
        backend.release_points()
        if component_labels is not None:
            landmark_index = cover_components(landmark_index, component_labels)
        timings["landmarks"] = time.perf_counter() - start
        bar.update(1)

        start = time.perf_counter()
        bar.set_postfix_str("geodesic distances", refresh=False)
        if known_rows is None:
            rows = backend.landmark_rows(graph, landmark_index, path_method=path_method, show=show)
        else:
            if known_rows.shape[0] < landmark_index.size:
                extra = backend.geodesic_rows(graph, landmark_index[known_rows.shape[0] :], path_method)
                known_rows = np.vstack([known_rows, extra])
            rows = backend.rows_from_host(known_rows)
        timings["paths"] = time.perf_counter() - start
        bar.update(1)

        start = time.perf_counter()
        bar.set_postfix_str("MDS + triangulation", refresh=False)
        model = embed_landmarks(landmark_index, rows, n_components, backend, random_state=rng)
        timings["mds"] = time.perf_counter() - start
        bar.update(1)
    model.component_labels = component_labels
    model.timings = timings
    return model


def embed_landmarks(landmark_index: np.ndarray, rows: Any, n_components: int, backend: Backend,
                    random_state: Any = None) -> LandmarkModel:
    """Classical MDS on the landmark block, then triangulation of every point.

    Parameters
    ----------
    landmark_index : ndarray of shape (n_landmarks,)
        The landmarks.
    rows : backend rows of shape (n_landmarks, n_samples)
        Their geodesic rows, as the backend's ``landmark_rows`` returned them.
    n_components : int
        Dimension of the embedding.
    backend : isogan._backend.Backend
        Where the rows live.
    random_state : int, RandomState instance or None, default=None
        Seeds the start vectors of the eigensolver on the landmark block.

    Returns
    -------
    LandmarkModel
    """
    largest = backend.rows_largest(rows)
    if np.isinf(largest):
        raise ValueError("Geodesic distances from the landmarks are not all finite; the neighbour graph is disconnected.")
    # The triangulation sums n_landmarks squared rows per point.
    check_kernel_range(largest, landmark_index.size, largest.dtype, "geodesic distances from the landmarks")
    block = backend.landmark_block(rows, landmark_index)
    # Dijkstra from a and from b may round d(a, b) differently in float32: symmetrise.
    block = 0.5 * (block + block.T)
    landmark_embedding, eigenvalues, eigenvectors = _mds.classical_mds(
        block, n_components=n_components, random_state=random_state, device="cpu"
    )
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    eigenvectors = np.asarray(eigenvectors, dtype=np.float64)
    mean_sq_distance = np.mean(block * block, axis=0)
    projection = np.zeros((eigenvectors.shape[1], eigenvectors.shape[0]), dtype=np.float64)
    positive = np.flatnonzero(eigenvalues > 0)
    projection[positive] = -0.5 * (eigenvectors[:, positive] / np.sqrt(eigenvalues[positive])).T
    embedding = backend.triangulate(rows, projection, mean_sq_distance)
    return LandmarkModel(
        landmark_index=landmark_index,
        landmark_geodesic=backend.rows_result(rows),
        landmark_embedding=np.asarray(landmark_embedding),
        eigenvalues=eigenvalues,
        eigenvectors=eigenvectors,
        projection=projection,
        mean_sq_distance=mean_sq_distance,
        landmark_block=block,
        embedding=embedding,
    )


def triangulate(
    landmark_geodesic: np.ndarray, projection: np.ndarray, mean_sq_distance: np.ndarray, *, n_jobs: int | None = None
) -> np.ndarray:
    """Distance-based triangulation of points from their geodesic distances to the landmarks (CPU).

    Parameters
    ----------
    landmark_geodesic : ndarray of shape (n_landmarks, n_points)
        Distances from each landmark to each point to place, float32 or float64.
    projection : ndarray of shape (n_components, n_landmarks)
        ``-1/2 * pinv(landmark_embedding)`` (:attr:`LandmarkModel.projection`).
    mean_sq_distance : ndarray of shape (n_landmarks,)
        Column means of the squared landmark block.
    n_jobs : int or None, default=None
        Threads (None: all cores).

    Returns
    -------
    ndarray of shape (n_points, n_components)
        Coordinates, in the dtype of ``landmark_geodesic``.
    """
    return get_backend("cpu", n_jobs).triangulate(landmark_geodesic, projection, mean_sq_distance)


# ------------------------------------------------------------------------------ transform
def transform_from_neighbors(
    model: LandmarkModel,
    neighbors: Any,
    *,
    n_jobs: int | None = None,
    chunk_rows: int = 65536,
    device: str = "cpu",
    backend: Backend | None = None,
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
        Threads (None: all cores).
    chunk_rows : int, default=65536
        New points processed at a time (on the GPU, fewer when their landmark columns would
        exceed 1 GiB).
    device : {'cpu', 'cuda', 'auto'}, default='cpu'
        Where the min-plus product and the triangulation run, when ``backend`` is not given.
    backend : isogan._backend.Backend, optional
        The backend to run on (overrides ``device``).

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
    backend = get_backend(device, n_jobs) if backend is None else backend
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
    n_landmarks = model.landmark_index.size
    # Every geodesic distance of a new point is at least its nearest neighbour's distance.
    check_edge_range(neighbor_distance.min(axis=1) if n_queries else neighbor_distance, n_landmarks, dtype,
                     "distances from X to its nearest training points")
    if n_queries and (neighbor_index.min() < 0 or neighbor_index.max() >= n_train):
        raise ValueError(f"neighbour indices hold values outside [0, {n_train}), the training points")
    out = np.empty((n_queries, model.projection.shape[0]), dtype=dtype)
    for start in range(0, n_queries, chunk_rows):
        stop = start + chunk_rows
        out[start:stop] = backend.transform(model, neighbor_index[start:stop], neighbor_distance[start:stop])
    if not np.isfinite(out).all():
        # A new point far from the training set: its landmark distances square past the dtype.
        check_kernel_range(float(neighbor_distance.max()) + float(model.landmark_geodesic.max()), n_landmarks,
                           dtype, "geodesic distances from X to the landmarks")
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
    memory_budget: int | None = None,
) -> LandmarkModel:
    """Embed points with landmark Isomap, in O(N * L) memory; the input may live on disk.

    kNN graph -> join its components -> :func:`fit_landmark_model`, each step on the backend of
    ``device``.

    Parameters
    ----------
    X : ndarray, numpy.memmap or str/os.PathLike of shape (n_samples, n_features)
        The points; a path names a ``.npy`` file, read block by block with plain file reads
        (:class:`isogan.io.NpyRows`; a Fortran-ordered file is memory-mapped instead). A memmap
        or file of more than ``chunk_rows`` rows is never loaded whole.
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
        Threads (None: all cores).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the stages run. On 'cuda' the points are streamed to the device ``chunk_rows`` rows
        at a time and stay there for the kNN search (query blocks against all points) and MaxMin;
        landmark rows and triangulation follow on the device. 'auto' runs on the CPU until the
        CUDA landmark path is verified on hardware; 'cuda' without a usable GPU raises RuntimeError.
    progress : bool or None, default=None
        Per-stage progress bars; None shows them for stages predicted to take over ~2 s.
    neighbors_algorithm : {'auto', 'brute', 'kd_tree', 'ball_tree', 'approximate'}, default='auto'
        kNN search algorithm (as ``algorithm`` in :func:`isogan.knn_graph`); the graph is the
        same whichever exact one runs. 'approximate' (HNSW, ``isogan[approx]``) needs the points
        in memory: an input on disk larger than ``chunk_rows`` is refused (ValueError).
    memory_budget : int or None, default=None
        CPU: bytes of landmark rows kept in memory; past it they spill to a temporary file and
        are read back block by block (see :class:`isogan.Isomap`). None: half the available
        host memory.

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
        When the points or the (L, N) landmark rows do not fit in free memory (the message names
        the bytes needed, the bytes free and a remedy).

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
    points = open_points(X) if isinstance(X, (str, os.PathLike)) else X
    if not isinstance(points, (np.ndarray, NpyRows)):
        points = np.asarray(points)
    if points.ndim != 2:
        raise ValueError(f"Expected a 2-D array of points, got shape {points.shape}")
    if points.dtype not in (np.float32, np.float64):
        if isinstance(points, (np.memmap, NpyRows)):
            raise ValueError(f"Out-of-core input must be float32 or float64, got {points.dtype}")
        points = points.astype(np.float64)
    n_samples = points.shape[0]
    n_landmarks = check_n_landmarks(n_landmarks, n_components, n_samples)
    landmark_method = check_landmark_method(landmark_method)
    n_neighbors = check_n_neighbors(n_neighbors)
    if n_neighbors >= n_samples:
        raise ValueError(
            f"Expected n_neighbors < n_samples_fit, but n_neighbors = {n_neighbors}, n_samples_fit = {n_samples}"
        )
    chunk_rows = DEFAULT_CHUNK_ROWS if chunk_rows is None else int(chunk_rows)
    if chunk_rows < n_neighbors + 1:
        raise ValueError(f"chunk_rows must be > n_neighbors, got {chunk_rows}")
    if not isinstance(points, (np.memmap, NpyRows)):
        # Files are checked on their neighbour distances instead (no extra pass over the disk).
        check_point_range(points, n_landmarks, metric, points.dtype)
    backend = get_backend(device, n_jobs, memory_budget)
    backend.check_fit_memory(points, n_neighbors, n_landmarks, n_components)
    out_of_core = is_out_of_core(points, chunk_rows)
    show = show_progress(relaxation_seconds(n_landmarks, n_samples, 2 * n_samples * n_neighbors, threads(n_jobs)),
                         progress)

    start = time.perf_counter()
    graph = backend.neighbor_graph(
        points, n_neighbors, metric=metric, p=p, metric_params=metric_params, algorithm=neighbors_algorithm,
        chunk_rows=chunk_rows, n_landmarks=n_landmarks, n_components=n_components, show=show,
    )
    knn_seconds = time.perf_counter() - start
    start = time.perf_counter()
    graph, component_labels = connect_components(
        graph, points, metric=metric, metric_params={**(metric_params or {}), **({"p": p} if metric == "minkowski" else {})},
        chunk_rows=chunk_rows, stacklevel=3,
    )
    connect_seconds = time.perf_counter() - start
    model = fit_landmark_model(
        graph, n_landmarks, n_components, points=points, landmark_method=landmark_method, random_state=random_state,
        component_labels=component_labels, path_method=path_method, n_jobs=n_jobs, backend=backend,
        maxmin_pool=backend.maxmin_pool(points, n_landmarks, chunk_rows if out_of_core else None), progress=show,
    )
    model.timings = {"knn": knn_seconds, "connect": connect_seconds, **model.timings}
    return model
