"""The CUDA backend of the landmark pipeline: host arrays in, NumPy out, heavy steps on the device.

Every stage that touches O(N * D) or O(N * L) data runs on the device:

1. the points are streamed to the device ``chunk_rows`` rows at a time (an out-of-core input is
   never loaded whole into host memory) and stay resident there;
2. kNN: blocks of query rows against all resident points (the exact kNN kernel), so the device
   holds the points plus one block of results; when the points themselves do not fit, query
   blocks are searched against candidate blocks streamed through the device and the running
   best lists are merged on the host (:func:`streamed_kneighbors`);
3. MaxMin on the device over the resident points, or over a candidate pool uploaded on its own
   (:func:`isogan._backend.memory.maxmin_pool_size`);
4. batched multi-source shortest paths from the L landmarks (``paths_shortest_paths_cuda``) into
   an (L, N) device matrix, copied once to the host (``LandmarkModel.landmark_geodesic``);
5. triangulation of all N points on the device against the resident (L, N) matrix; the
   transform's min-plus and triangulation likewise.

Device bytes are predicted up front (:func:`isogan._backend.memory.predict_fit_device_bytes`) and
refused with a MemoryError naming both numbers and a remedy, rather than failing inside CUDA.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from isogan import _core
from isogan import knn as _knn
from isogan import paths as _paths
from isogan._backend.cpu import check_landmark_host_memory, float_dtype
from isogan._backend import memory
from isogan._backend.memory import (
    GPU_PATHS_FLAG_BUDGET_BYTES,
    GPU_QUERY_BLOCK_ROWS,
    check_fit_device_memory,
    landmark_remedy,
    maxmin_pool_size,
    paths_scratch_bytes,
    predict_fit_device_bytes,
    streamed_chunk_rows,
    transform_chunk_rows,
)
from isogan._backend.policy import progress_bar
from isogan.io import is_out_of_core
# Host rows per block when copying a MaxMin candidate pool to the device.
_DEFAULT_UPLOAD_ROWS = 65536


# ------------------------------------------------------------------------------ device buffers
def _allocate(n_bytes: int, what: str) -> Any:
    """A device buffer of ``n_bytes``; a failed allocation becomes a MemoryError that says what."""
    try:
        return _core.LandmarkDeviceBuffer(int(n_bytes))
    except MemoryError:
        free = memory.available_device_bytes()
        raise MemoryError(
            f"{what} needs {n_bytes:,} bytes ({n_bytes / 2**30:.2f} GiB) of GPU memory but the allocation failed "
            f"({free:,} bytes free now). " + landmark_remedy(np.float64, "device='cpu'")
        ) from None


def _upload(host: np.ndarray, what: str) -> Any:
    host = np.ascontiguousarray(host)
    buffer = _allocate(host.nbytes, what)
    buffer.upload(host, 0)
    return buffer


def _download(buffer: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    out = np.empty(shape, dtype=dtype)
    buffer.download(out, 0)
    return out


class ResidentPoints:
    """(N, D) points held on the device between the kNN and MaxMin stages.

    Parameters
    ----------
    buffer : isogan._core.LandmarkDeviceBuffer
        The row-major points.
    shape : tuple (n_samples, n_features)
        Their shape.
    dtype : numpy.dtype
        float32 or float64.
    """

    def __init__(self, buffer: Any, shape: tuple[int, int], dtype: np.dtype) -> None:
        self.buffer = buffer
        self.shape = shape
        self.dtype = np.dtype(dtype)

    @property
    def pointer(self) -> int:
        """Device address of the first point."""
        return int(self.buffer.pointer)

    def release(self) -> None:
        """Free the device copy now (the last stage that reads it is done)."""
        self.buffer = None


def upload_points(points: Any, chunk_rows: int, dtype: np.dtype, show: bool = False) -> ResidentPoints:
    """Stream (N, D) points to a device buffer ``chunk_rows`` rows at a time.

    Parameters
    ----------
    points : ndarray, numpy.memmap or isogan.io.NpyRows of shape (n_samples, n_features)
        The points; only one block of rows is on the host at a time.
    chunk_rows : int
        Rows per block.
    dtype : numpy.dtype
        float32 or float64: the device copy's type.
    show : bool, default=False
        Progress bar.

    Returns
    -------
    ResidentPoints
        The (n_samples, n_features) row-major points on the device.
    """
    n_samples, n_features = points.shape
    row_bytes = n_features * np.dtype(dtype).itemsize
    buffer = _allocate(n_samples * row_bytes, f"the ({n_samples}, {n_features}) {np.dtype(dtype).name} points")
    starts = range(0, n_samples, chunk_rows)
    with progress_bar(len(starts), "upload points", show, unit="block") as bar:
        for start in starts:
            block = np.ascontiguousarray(points[start : start + chunk_rows], dtype=dtype)
            buffer.upload(block, start * row_bytes)
            bar.update(1)
    return ResidentPoints(buffer, (n_samples, n_features), dtype)


# ------------------------------------------------------------------------------ kNN
def drop_self(indices: np.ndarray, distances: np.ndarray, first_row: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn k + 1 nearest points of rows ``first_row...`` (self included) into their k nearest others.

    Each query row is itself a fit point; its k + 1 nearest points sorted by (distance, index)
    contain it unless k + 1 exact duplicates with smaller indices precede it. Dropping it where
    present, and the last entry otherwise, leaves the k nearest *other* points in the same order:
    what a search that skips the query's own index returns.

    Parameters
    ----------
    indices : ndarray of shape (n_rows, k + 1), int64
        Neighbour indices of rows ``first_row, first_row + 1, ...``.
    distances : ndarray of shape (n_rows, k + 1)
        Their distances.
    first_row : int
        Fit index of the first row.

    Returns
    -------
    indices, distances : ndarrays of shape (n_rows, k)
    """
    n_rows, width = indices.shape
    own = np.arange(first_row, first_row + n_rows, dtype=indices.dtype)[:, None]
    keep = indices != own
    keep[keep.all(axis=1), width - 1] = False
    return indices[keep].reshape(n_rows, width - 1), distances[keep].reshape(n_rows, width - 1)


def _search_block(
    search: Any, queries_pointer: int, candidates_pointer: int, n_queries: int, n_candidates: int, n_features: int,
    n_found: int, metric_code: int, p: float, distances_buffer: Any, indices_buffer: Any, dtype: np.dtype,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_found`` nearest candidates of each query, searched on the device and copied to the host.

    ``search`` is ``_core.knn_kneighbors_cuda``; the device results pass through
    ``distances_buffer`` and ``indices_buffer``. Returns ``(distances, indices)``, both of shape
    ``(n_queries, n_found)``, indices int64 into the candidates.
    """
    search(queries_pointer, candidates_pointer, n_queries, n_candidates, n_features, n_found, metric_code, p, False,
           distances_buffer.pointer, indices_buffer.pointer, dtype, 0)
    distances = np.empty((n_queries, n_found), dtype=dtype)
    indices = np.empty((n_queries, n_found), dtype=np.int64)
    distances_buffer.download(distances, 0)
    indices_buffer.download(indices, 0)
    return distances, indices


def device_kneighbors(
    resident: ResidentPoints, n_neighbors: int, metric_code: int, p: float, show: bool = False,
    query_block_rows: int = GPU_QUERY_BLOCK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest other points of every resident point, query block by query block.

    Parameters
    ----------
    resident : ResidentPoints
        (n_samples, n_features) points on the device.
    n_neighbors : int
        k, ``1 <= k < n_samples``.
    metric_code : int
        Native metric code (isogan.knn), not precomputed.
    p : float
        Minkowski power.
    show : bool, default=False
        Progress bar.
    query_block_rows : int, default=GPU_QUERY_BLOCK_ROWS
        Query rows per launch (2**19); the device holds one block of results at a time.

    Returns
    -------
    distances : ndarray of shape (n_samples, k), dtype
    indices : ndarray of shape (n_samples, k), int64
        Sorted by (distance, index), the point itself excluded, as :func:`isogan.knn.kneighbors`.
    """
    if query_block_rows < 1:
        raise ValueError(f"query_block_rows must be >= 1, got {query_block_rows}")
    n_samples, n_features = resident.shape
    dtype = resident.dtype
    search = _core.knn_kneighbors_cuda
    width = n_neighbors + 1
    block = min(n_samples, query_block_rows)
    block_distances = _allocate(block * width * dtype.itemsize, "a block of kNN distances")
    block_indices = _allocate(block * width * 8, "a block of kNN indices")
    distances = np.empty((n_samples, n_neighbors), dtype=dtype)
    indices = np.empty((n_samples, n_neighbors), dtype=np.int64)
    row_bytes = n_features * dtype.itemsize
    starts = range(0, n_samples, block)
    with progress_bar(len(starts), "kNN (GPU)", show, unit="block") as bar:
        for start in starts:
            n_rows = min(block, n_samples - start)
            found_distances, found_indices = _search_block(
                search, resident.pointer + start * row_bytes, resident.pointer, n_rows, n_samples, n_features, width,
                metric_code, p, block_distances, block_indices, dtype,
            )
            kept_indices, kept_distances = drop_self(found_indices, found_distances, start)
            indices[start : start + n_rows] = kept_indices
            distances[start : start + n_rows] = kept_distances
            bar.update(1)
    return distances, indices


def streamed_kneighbors(
    points: Any, n_neighbors: int, metric_code: int, p: float, dtype: np.dtype, block_rows: int, show: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest other points when the points do not fit on the device.

    Each block of query rows is searched against every block of candidate rows in increasing
    index order; the running k + 1 best are merged on the host with a stable sort (ties keep the
    smaller index, as in one search over all points), then the point itself is dropped.

    Parameters
    ----------
    points : ndarray, numpy.memmap or isogan.io.NpyRows of shape (n_samples, n_features)
        The points, read ``block_rows`` rows at a time.
    n_neighbors : int
        k, ``1 <= k < n_samples``.
    metric_code : int
        Native metric code (isogan.knn), not precomputed.
    p : float
        Minkowski power.
    dtype : numpy.dtype
        float32 or float64.
    block_rows : int
        Rows per query block and per candidate block (at least ``n_neighbors + 1``).
    show : bool, default=False
        Progress bar.

    Returns
    -------
    distances : ndarray of shape (n_samples, k), dtype
    indices : ndarray of shape (n_samples, k), int64
    """
    n_samples, n_features = points.shape
    dtype = np.dtype(dtype)
    search = _core.knn_kneighbors_cuda
    width = n_neighbors + 1
    query_buffer = _allocate(block_rows * n_features * dtype.itemsize, "a block of query points")
    candidate_buffer = _allocate(block_rows * n_features * dtype.itemsize, "a block of candidate points")
    found_distances_buffer = _allocate(block_rows * width * dtype.itemsize, "a block of kNN distances")
    found_indices_buffer = _allocate(block_rows * width * 8, "a block of kNN indices")
    distances = np.empty((n_samples, n_neighbors), dtype=dtype)
    indices = np.empty((n_samples, n_neighbors), dtype=np.int64)
    starts = range(0, n_samples, block_rows)
    with progress_bar(len(starts) ** 2, "kNN (GPU, streamed)", show, unit="block") as blocks:
        for query_start in starts:
            query = np.ascontiguousarray(points[query_start : query_start + block_rows], dtype=dtype)
            n_query = query.shape[0]
            query_buffer.upload(query, 0)
            best_distance = np.full((n_query, width), np.inf, dtype=dtype)
            best_index = np.full((n_query, width), -1, dtype=np.int64)
            for candidate_start in starts:
                if candidate_start == query_start:
                    candidate_pointer, n_candidates = query_buffer.pointer, n_query
                else:
                    candidate = np.ascontiguousarray(points[candidate_start : candidate_start + block_rows],
                                                     dtype=dtype)
                    candidate_buffer.upload(candidate, 0)
                    candidate_pointer, n_candidates = candidate_buffer.pointer, candidate.shape[0]
                found_width = min(width, n_candidates)
                found_distance, found_index = _search_block(
                    search, query_buffer.pointer, candidate_pointer, n_query, n_candidates, n_features, found_width,
                    metric_code, p, found_distances_buffer, found_indices_buffer, dtype,
                )
                best_distance, best_index = _knn.merge_nearest(
                    best_distance, best_index, found_distance, found_index + candidate_start, width
                )
                blocks.update(1)
            kept_index, kept_distance = drop_self(best_index, best_distance, query_start)
            indices[query_start : query_start + n_query] = kept_index
            distances[query_start : query_start + n_query] = kept_distance
    return distances, indices


def knn_graph_cuda(
    points: Any, n_neighbors: int, metric_code: int, p: float, dtype: np.dtype, *, n_landmarks: int,
    n_components: int, chunk_rows: int, show: bool = False, query_block_rows: int = GPU_QUERY_BLOCK_ROWS,
) -> tuple[Any, ResidentPoints | None]:
    """kNN graph of host or out-of-core points on the GPU; the points stay on the device.

    Parameters
    ----------
    points : ndarray, numpy.memmap or isogan.io.NpyRows of shape (n_samples, n_features)
        The points, streamed to the device ``chunk_rows`` rows at a time.
    n_neighbors : int
        k.
    metric_code : int
        Native metric code (isogan.knn).
    p : float
        Minkowski power.
    dtype : numpy.dtype
        float32 or float64.
    n_landmarks, n_components : int
        For the up-front memory check of the whole fit.
    chunk_rows : int
        Rows per host block while uploading.
    show : bool, default=False
        Progress bars.
    query_block_rows : int, default=GPU_QUERY_BLOCK_ROWS
        Query rows per kNN launch over the resident points (see :func:`device_kneighbors`).

    Returns
    -------
    graph : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        Distances to the k nearest other points (``mode='distance'``).
    resident : ResidentPoints or None
        The points, still on the device, for MaxMin; None when they did not fit and were streamed
        through it block by block (MaxMin then runs on a candidate pool that fits).

    Raises
    ------
    MemoryError
        When the fit's peak does not fit in free GPU memory even with the points streamed.
    """
    n_samples, n_features = points.shape
    dtype = np.dtype(dtype)
    free = memory.available_device_bytes()
    prediction = predict_fit_device_bytes(n_samples, n_features, n_neighbors, n_landmarks, n_components,
                                          dtype.itemsize, query_block_rows=query_block_rows)
    resident = None
    if prediction.knn <= free:
        check_fit_device_memory(prediction, n_samples, n_landmarks, dtype, free_bytes=free)
        resident = upload_points(points, chunk_rows, dtype, show)
        distances, indices = device_kneighbors(resident, n_neighbors, metric_code, p, show, query_block_rows)
    else:
        # The points do not fit: stream query blocks and candidate blocks through the device.
        block_rows = streamed_chunk_rows(n_samples, n_features, n_neighbors, dtype.itemsize, free)
        prediction = predict_fit_device_bytes(
            n_samples, n_features, n_neighbors, n_landmarks, n_components, dtype.itemsize, knn_chunk_rows=block_rows,
            maxmin_candidates=maxmin_pool_size(n_samples, n_features, n_landmarks, dtype.itemsize, free),
        )
        check_fit_device_memory(prediction, n_samples, n_landmarks, dtype, free_bytes=free)
        distances, indices = streamed_kneighbors(points, n_neighbors, metric_code, p, dtype, block_rows, show)
    return _knn.neighbors_to_csr(distances, indices, n_samples), resident


# ------------------------------------------------------------------------------ fit
def maxmin_cuda(resident: ResidentPoints, n_landmarks: int, first_landmark: int) -> np.ndarray:
    """MaxMin landmarks among resident points (the device twin of ``_core.landmark_maxmin``).

    Parameters
    ----------
    resident : ResidentPoints
        (n_points, n_features) points on the device.
    n_landmarks : int
        ``1 <= n_landmarks <= n_points``.
    first_landmark : int
        Index of the first landmark.

    Returns
    -------
    ndarray of shape (n_landmarks,), int64
        Landmark indices in selection order (ties to the smallest index, as on the CPU).
    """
    n_points, n_features = resident.shape
    if not 1 <= n_landmarks <= n_points or not 0 <= first_landmark < n_points:
        raise ValueError(f"Need 1 <= n_landmarks <= {n_points} and 0 <= first_landmark < {n_points}")
    landmark_index = _allocate(n_landmarks * 8, "the MaxMin landmark indices")
    min_sq_distance = _allocate(n_points * 8, "the MaxMin distances")
    _core.landmark_maxmin_cuda(
        resident.pointer, n_points, n_features, n_landmarks, first_landmark, landmark_index.pointer,
        min_sq_distance.pointer, resident.dtype, 0,
    )
    return _download(landmark_index, (n_landmarks,), np.dtype(np.int64))


def _device_shortest_paths(symmetric: Any, landmark_index: np.ndarray, device_rows: Any,
                           flag_budget_bytes: int = GPU_PATHS_FLAG_BUDGET_BYTES) -> None:
    """Batched shortest paths from the landmarks into the (L, N) device rows.

    The landmarks go in batches whose two (batch, N) byte-flag arrays fit ``flag_budget_bytes``.
    """
    indptr = _upload(symmetric.indptr, "the neighbour graph offsets")
    indices = _upload(symmetric.indices, "the neighbour graph columns")
    weights = _upload(symmetric.weights, "the neighbour graph weights")
    sources = _upload(np.asarray(landmark_index, dtype=np.int64), "the landmark indices")
    _core.paths_shortest_paths_cuda(
        indptr.pointer, indices.pointer, weights.pointer, symmetric.n_nodes, sources.pointer, landmark_index.size,
        device_rows.pointer, symmetric.dtype, 0, flag_budget_bytes,
    )


def triangulate_cuda(
    device_geodesic: Any, shape: tuple[int, int], dtype: np.dtype, projection: np.ndarray, mean_sq_distance: np.ndarray
) -> np.ndarray:
    """Triangulate points on the device from their (L, M) landmark distances held there.

    Parameters
    ----------
    device_geodesic : isogan._core.LandmarkDeviceBuffer
        (n_landmarks, n_points) row-major distances on the device.
    shape : tuple (n_landmarks, n_points)
        Its shape.
    dtype : numpy.dtype
        Its dtype (float32 or float64), also the result's.
    projection : ndarray of shape (n_components, n_landmarks)
        ``-1/2 * pinv(landmark_embedding)``.
    mean_sq_distance : ndarray of shape (n_landmarks,)
        Column means of the squared landmark block.

    Returns
    -------
    ndarray of shape (n_points, n_components)
    """
    n_landmarks, n_points = shape
    projection = np.ascontiguousarray(projection, dtype=np.float64)
    mean_sq_distance = np.ascontiguousarray(mean_sq_distance, dtype=np.float64)
    if projection.shape[1] != n_landmarks or mean_sq_distance.shape != (n_landmarks,):
        raise ValueError(f"projection must be (n_components, {n_landmarks}) and mean_sq_distance ({n_landmarks},)")
    n_components = projection.shape[0]
    device_projection = _upload(projection, "the triangulation projection")
    device_mean = _upload(mean_sq_distance, "the landmark mean squared distances")
    embedding = _allocate(n_points * n_components * np.dtype(dtype).itemsize, "the embedding")
    _core.landmark_triangulate_cuda(
        device_geodesic.pointer, device_projection.pointer, device_mean.pointer, n_landmarks, n_points, n_components,
        embedding.pointer, np.dtype(dtype), 0,
    )
    return _download(embedding, (n_points, n_components), np.dtype(dtype))


# ------------------------------------------------------------------------------ transform
def min_plus_cuda(landmark_columns: np.ndarray, neighbor_index: np.ndarray, neighbor_distance: np.ndarray) -> Any:
    """Distances from new points to the landmarks, on the device; the result stays there.

    Parameters
    ----------
    landmark_columns : ndarray of shape (n_landmarks, n_columns)
        Landmark rows restricted to the columns the neighbours index.
    neighbor_index : ndarray of shape (n_queries, k), int64
        Neighbour columns, in ``[0, n_columns)``.
    neighbor_distance : ndarray of shape (n_queries, k)
        Edge lengths, dtype of ``landmark_columns``.

    Returns
    -------
    isogan._core.LandmarkDeviceBuffer
        (n_landmarks, n_queries) row-major distances on the device.
    """
    dtype = landmark_columns.dtype
    n_landmarks, n_columns = landmark_columns.shape
    n_queries, n_neighbors = neighbor_index.shape
    device_columns = _upload(landmark_columns, "the gathered landmark columns")
    device_index = _upload(neighbor_index, "the neighbour indices")
    device_distance = _upload(neighbor_distance, "the neighbour distances")
    out = _allocate(n_landmarks * n_queries * dtype.itemsize, "the new points' landmark distances")
    _core.landmark_min_plus_cuda(
        device_columns.pointer, device_index.pointer, device_distance.pointer, n_landmarks, n_columns, n_queries,
        n_neighbors, out.pointer, dtype, 0,
    )
    return out


def transform_cuda(
    model: Any, neighbor_index: np.ndarray, neighbor_distance: np.ndarray, chunk_rows: int
) -> np.ndarray:
    """Embed new points on the GPU from their neighbours among the training points.

    Per chunk of new points, only the landmark-row columns their neighbours index are gathered on
    the host and uploaded; min-plus and triangulation run on the device.

    Parameters
    ----------
    model : isogan.landmark.LandmarkModel
        The fitted model.
    neighbor_index : ndarray of shape (n_queries, k), int64
        Training-point indices, validated in range by the caller.
    neighbor_distance : ndarray of shape (n_queries, k)
        Edge lengths, dtype of ``model.landmark_geodesic``.
    chunk_rows : int
        Upper bound on new points per chunk.

    Returns
    -------
    ndarray of shape (n_queries, n_components)
    """
    geodesic = model.landmark_geodesic
    dtype = geodesic.dtype
    n_landmarks = geodesic.shape[0]
    n_queries, n_neighbors = neighbor_index.shape
    out = np.empty((n_queries, model.projection.shape[0]), dtype=dtype)
    step = transform_chunk_rows(n_landmarks, n_neighbors, dtype.itemsize, chunk_rows)
    for start in range(0, n_queries, step):
        index = neighbor_index[start : start + step]
        columns, local_index = np.unique(index, return_inverse=True)
        local_index = np.ascontiguousarray(local_index.reshape(index.shape), dtype=np.int64)
        query_geodesic = min_plus_cuda(np.ascontiguousarray(geodesic[:, columns]), local_index,
                                       np.ascontiguousarray(neighbor_distance[start : start + step], dtype=dtype))
        out[start : start + index.shape[0]] = triangulate_cuda(
            query_geodesic, (n_landmarks, index.shape[0]), dtype, model.projection, model.mean_sq_distance
        )
    return out


class CudaBackend:
    """Landmark stages on the GPU (see the module docstring).

    One object serves one fit: the points it uploads for the kNN search stay resident for MaxMin,
    and the (L, N) rows it computes stay on the device for triangulation.

    Parameters
    ----------
    n_jobs : int or None, default=None
        Host threads (symmetrisation, MDS of the L x L block).
    query_block_rows : int, default=GPU_QUERY_BLOCK_ROWS
        Query rows per kNN launch over the resident points (2**19).
    flag_budget_bytes : int, default=GPU_PATHS_FLAG_BUDGET_BYTES
        Bytes of the landmark shortest paths' two (batch, N) flag arrays per batch of landmarks
        (1 GiB).

    Both defaults are reached only by large inputs; tests pass smaller values to run those branches
    on small ones.
    """

    name = "cuda"

    def __init__(self, n_jobs: int | None = None, *, query_block_rows: int = GPU_QUERY_BLOCK_ROWS,
                 flag_budget_bytes: int = GPU_PATHS_FLAG_BUDGET_BYTES) -> None:
        self.n_jobs = n_jobs
        self.query_block_rows = query_block_rows
        self.flag_budget_bytes = flag_budget_bytes
        self._resident: ResidentPoints | None = None
        self._resident_source: Any = None
        self._device_rows: Any = None

    def check_fit_memory(self, points: Any, n_neighbors: int | None, n_landmarks: int, n_components: int) -> None:
        """Refuse up front a fit whose host rows or GPU peak cannot fit."""
        check_landmark_host_memory(points.shape[0], n_landmarks, n_neighbors, n_components, points.dtype)

    def neighbor_graph(self, points: Any, n_neighbors: int | None, *, chunk_rows: int, show: bool = False,
                       n_landmarks: int = 1, n_components: int = 2, metric: Any = "minkowski", p: float = 2,
                       metric_params: dict | None = None, **options: Any) -> Any:
        """kNN graph with the points kept on the device for MaxMin; other searches as ``knn_graph``."""
        native = _knn.native_metric(metric, p, metric_params)
        # The approximate search runs on the CPU (isogan.knn): the exact GPU search is not its fallback.
        blocked = (n_neighbors is not None and native is not None and native[0] != _knn.PRECOMPUTED
                   and options.get("algorithm") != "approximate"
                   and (isinstance(points, np.ndarray) or is_out_of_core(points, 0)))
        if not blocked:
            if options.get("algorithm") == "approximate" and is_out_of_core(points, chunk_rows):
                return _knn.neighbors_to_csr(*_knn.kneighbors_blocked(
                    points, n_neighbors, chunk_rows, metric=metric, p=p, metric_params=metric_params, **options
                ), points.shape[0])
            return _knn.knn_graph(points, n_neighbors=n_neighbors, radius=options.pop("radius", None), mode="distance",
                                  metric=metric, p=p, metric_params=metric_params, n_jobs=self.n_jobs, device="cuda",
                                  **options)
        graph, self._resident = knn_graph_cuda(
            points, n_neighbors, native[0], native[1], float_dtype(points.dtype), n_landmarks=n_landmarks,
            n_components=n_components, chunk_rows=chunk_rows, show=show, query_block_rows=self.query_block_rows,
        )
        self._resident_source = points
        return graph

    def maxmin_pool(self, points: Any, n_landmarks: int, chunk_rows: int | None) -> int | None:
        """Out of core: the CPU's pool; else all points unless MaxMin would stream too many bytes."""
        if chunk_rows is not None:
            return max(n_landmarks, chunk_rows)
        n_samples, n_features = points.shape
        free = None if self._resident is not None else memory.available_device_bytes()
        return maxmin_pool_size(n_samples, n_features, n_landmarks, float_dtype(points.dtype).itemsize, free)

    def maxmin(self, points: Any, n_landmarks: int, first: int) -> np.ndarray:
        """MaxMin on the device: over the resident points when these are they, else over an upload."""
        if self._resident is not None and points is self._resident_source:
            return maxmin_cuda(self._resident, n_landmarks, first)
        self.release_points()
        pool = upload_points(points, _DEFAULT_UPLOAD_ROWS, float_dtype(points.dtype))
        return maxmin_cuda(pool, n_landmarks, first)

    def release_points(self) -> None:
        """Free the resident points (MaxMin was their last reader)."""
        if self._resident is not None:
            self._resident.release()
        self._resident = None
        self._resident_source = None

    def geodesic_rows(self, graph: Any, sources: np.ndarray, path_method: str) -> np.ndarray:
        """Rows from ``sources`` by the GPU shortest paths, on the host."""
        return np.ascontiguousarray(_paths.geodesic_distances(graph, method=path_method, indices=sources,
                                                              n_jobs=self.n_jobs, device="cuda"))

    def _allocate_rows(self, shape: tuple[int, int], dtype: np.dtype, n_edges: int) -> Any:
        n_landmarks, n_samples = shape
        check_landmark_host_memory(n_samples, n_landmarks, None, 0, dtype)
        prediction = predict_fit_device_bytes(
            n_samples, 0, 0, n_landmarks, 2, dtype.itemsize, n_edges=n_edges, maxmin_candidates=0, knn_on_device=False,
            scratch_bytes=paths_scratch_bytes(n_samples, n_landmarks, self.flag_budget_bytes),
        )
        check_fit_device_memory(prediction, n_samples, n_landmarks, dtype)
        return _allocate(n_landmarks * n_samples * dtype.itemsize,
                         f"the ({n_landmarks}, {n_samples}) {dtype.name} landmark geodesic rows")

    def landmark_rows(self, graph: Any, landmark_index: np.ndarray, *, path_method: str, show: bool) -> np.ndarray:
        """Batched shortest paths into device rows, kept for triangulation; returns the host copy."""
        symmetric = _paths.as_symmetric_csr(graph)
        shape = (landmark_index.size, symmetric.n_nodes)
        self._device_rows = self._allocate_rows(shape, symmetric.dtype, symmetric.n_edges)
        _device_shortest_paths(symmetric, landmark_index, self._device_rows, self.flag_budget_bytes)
        return _download(self._device_rows, shape, symmetric.dtype)

    def rows_from_host(self, host_rows: np.ndarray) -> np.ndarray:
        """Upload rows computed elsewhere (geodesic MaxMin) for triangulation on the device."""
        host_rows = np.ascontiguousarray(host_rows)
        self._device_rows = self._allocate_rows(host_rows.shape, host_rows.dtype, 0)
        self._device_rows.upload(host_rows, 0)
        return host_rows

    def rows_largest(self, rows: np.ndarray) -> np.generic:
        """max() of the host copy (inf and NaN propagate), in its dtype."""
        return rows.max()

    def landmark_block(self, rows: np.ndarray, landmark_index: np.ndarray) -> np.ndarray:
        """Columns of the landmarks from the host copy, float64."""
        return rows[:, landmark_index].astype(np.float64)

    def triangulate(self, rows: np.ndarray, projection: np.ndarray, mean_sq_distance: np.ndarray) -> np.ndarray:
        """Triangulation on the device against the resident rows."""
        return triangulate_cuda(self._device_rows, rows.shape, rows.dtype, projection, mean_sq_distance)

    def rows_result(self, rows: np.ndarray) -> np.ndarray:
        """The host copy; the device rows are freed."""
        self._device_rows = None
        return rows

    def transform(self, model: Any, neighbor_index: np.ndarray, neighbor_distance: np.ndarray) -> np.ndarray:
        """Min-plus and triangulation of new points on the device."""
        return transform_cuda(model, neighbor_index, neighbor_distance, neighbor_index.shape[0])
