"""GPU landmark Isomap: the device twin of :mod:`isogan.landmark`'s fit and transform.

Host arrays (NumPy, ``np.memmap``, :class:`isogan.landmark.NpyRows`) in, NumPy out; every stage
that touches O(N * D) or O(N * L) data runs on the device:

1. the points are streamed to the device ``chunk_rows`` rows at a time (an out-of-core input is
   never loaded whole into host memory) and stay resident there;
2. kNN: blocks of query rows against all resident points (the existing exact kNN kernel), so the
   device holds the points plus one block of results; when the points themselves do not fit,
   query blocks are searched against candidate blocks streamed through the device and the
   running best lists are merged on the host (:func:`streamed_kneighbors`);
3. connected components and their joining, and the symmetric CSR form of the graph, on the host
   (O(N * k) work, as on the CPU path);
4. MaxMin on the device (over all points, or over a uniform candidate pool when a full MaxMin
   would stream more than ``_MAXMIN_TRAFFIC_BYTES`` through the device: each of its L rounds reads
   every point once);
5. batched multi-source shortest paths from the L landmarks (``paths_shortest_paths_cuda``) into
   an (L, N) device matrix, copied once to the host (``LandmarkModel.landmark_geodesic``);
6. classical MDS on the L x L block (the same call as the CPU path) and triangulation of all N
   points on the device against the resident (L, N) matrix.

All kernels run on the legacy default stream, so copies and launches are ordered without explicit
synchronisation. Device bytes are predicted up front (:func:`predict_fit_device_bytes`) and refused
with a MemoryError naming both numbers and a remedy, rather than failing inside CUDA.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from tqdm import tqdm

from isogan import _core
from isogan import _device
from isogan import landmark as _landmark
from isogan import paths as _paths

# Query rows per kNN launch: 2**19 threads fill an H100/H200 (132 SMs x 2048 threads) about twice.
_QUERY_BLOCK_ROWS = 1 << 19

# A full MaxMin reads all N * D values once per landmark; above this many bytes in total it runs
# on a uniformly drawn candidate pool instead (16 GiB: a few seconds of HBM traffic).
_MAXMIN_TRAFFIC_BYTES = 16 * 2**30

# Per-block MaxMin reduction scratch (1024 blocks x (double + int64)).
_MAXMIN_SCRATCH_BYTES = 1024 * 16

# Bytes of gathered landmark columns a transform chunk uploads at most.
_TRANSFORM_GATHER_BYTES = 2**30

# Host rows per block when copying a MaxMin candidate pool to the device.
_DEFAULT_UPLOAD_ROWS = 65536

_REMEDY = "Use fewer landmarks (n_landmarks), float32 input, or device='cpu'."


# ------------------------------------------------------------------------------ memory model
@dataclass(frozen=True)
class DeviceBytes:
    """Bytes the GPU landmark fit holds on the device in each phase.

    Attributes
    ----------
    knn : int
        Resident points plus one block of kNN results and heap scratch.
    maxmin : int
        Points MaxMin reads (all resident points, or the candidate pool) plus its outputs.
    paths : int
        Symmetric CSR graph, sources, the (L, N) landmark rows and the shortest-path scratch.
    triangulation : int
        The (L, N) landmark rows, projection, means and the (N, c) embedding.
    """

    knn: int
    maxmin: int
    paths: int
    triangulation: int

    @property
    def peak(self) -> int:
        """The largest phase: what must be free on the device before the fit starts."""
        return max(self.knn, self.maxmin, self.paths, self.triangulation)


def paths_scratch_bytes(n_samples: int, n_landmarks: int) -> int:
    """Device scratch of the batched shortest-path kernel for L sources over N nodes.

    Parameters
    ----------
    n_samples : int
        Nodes of the graph.
    n_landmarks : int
        Sources.

    Returns
    -------
    int
        Two byte flags per (source, node) of one batch of sources, plus a 4-byte flag; the batch
        holds as many sources as fit in 1 GiB of flags (at least one). The paths stage's own
        arithmetic (``csrc/paths/paths.h``), bound in every build.
    """
    return int(_core.paths_shortest_paths_cuda_scratch_bytes(n_samples, n_landmarks))


def maxmin_pool_size(n_samples: int, n_features: int, n_landmarks: int, itemsize: int,
                     free_bytes: int | None = None) -> int:
    """Candidates MaxMin runs over on the GPU: all points unless that streams too many bytes.

    Parameters
    ----------
    n_samples, n_features : int
        Shape of the points.
    n_landmarks : int
        Landmarks to pick (one pass over the candidates each).
    itemsize : int
        Bytes per coordinate (4 or 8).
    free_bytes : int, optional
        Free device bytes; when given, the pool also fits in half of them.

    Returns
    -------
    int
        ``n_samples`` when ``n_landmarks`` passes over all points stay within 16 GiB (and the
        points fit), else the largest pool that does, and never fewer than ``n_landmarks``.
    """
    fitting = n_samples
    if n_samples * n_features * itemsize * n_landmarks > _MAXMIN_TRAFFIC_BYTES:
        fitting = _MAXMIN_TRAFFIC_BYTES // (n_features * itemsize * n_landmarks)
    if free_bytes is not None:
        fitting = min(fitting, (free_bytes // 2) // (n_features * itemsize + 8))
    return int(min(n_samples, max(n_landmarks, fitting)))


def streamed_chunk_rows(n_samples: int, n_features: int, n_neighbors: int, itemsize: int, free_bytes: int) -> int:
    """Rows per query block and per candidate block when the points do not fit on the device.

    Parameters
    ----------
    n_samples, n_features : int
        Shape of the points.
    n_neighbors : int
        k (k + 1 results per query row are kept on the device).
    itemsize : int
        Bytes per coordinate.
    free_bytes : int
        Free device bytes; the blocks use at most half of them.

    Returns
    -------
    int
        Rows ``C`` with ``2 * C * D * itemsize + C * (k + 1) * (itemsize + 16) <= free_bytes / 2``,
        within ``[n_neighbors + 1, n_samples]``.
    """
    per_row = 2 * n_features * itemsize + (n_neighbors + 1) * (itemsize + 16)
    return int(min(n_samples, max(n_neighbors + 1, (free_bytes // 2) // per_row)))


def predict_fit_device_bytes(
    n_samples: int,
    n_features: int,
    n_neighbors: int,
    n_landmarks: int,
    n_components: int,
    itemsize: int,
    *,
    n_edges: int | None = None,
    maxmin_candidates: int | None = None,
    knn_on_device: bool = True,
    knn_chunk_rows: int | None = None,
    scratch_bytes: int | None = None,
) -> DeviceBytes:
    """Predict the device bytes of each phase of the GPU landmark fit.

    Parameters
    ----------
    n_samples, n_features : int
        Shape of the points.
    n_neighbors : int
        k of the kNN graph.
    n_landmarks : int
        L.
    n_components : int
        c.
    itemsize : int
        Bytes per value of the input dtype (4 for float32, 8 for float64).
    n_edges : int, optional
        Stored entries of the symmetric graph; default ``2 * n_samples * n_neighbors``, the most a
        symmetrised kNN graph can have (joining components adds a handful).
    maxmin_candidates : int, optional
        Points MaxMin runs over; default :func:`maxmin_pool_size`. 0 means no MaxMin on the device
        (random landmarks, or geodesic MaxMin without coordinates).
    knn_on_device : bool, default=True
        Whether the kNN phase runs on the device (and the points are resident for it).
    knn_chunk_rows : int, optional
        When the points do not fit: rows of the query block and of the candidate block streamed
        through the device instead (:func:`streamed_chunk_rows`).
    scratch_bytes : int, optional
        Shortest-path scratch; default :func:`paths_scratch_bytes`.

    Returns
    -------
    DeviceBytes

    Examples
    --------
    >>> from isogan._landmark_cuda import predict_fit_device_bytes
    >>> predict_fit_device_bytes(1000, 3, 10, 50, 2, 8).paths
    748412
    """
    points = n_samples * n_features * itemsize
    block = min(n_samples, _QUERY_BLOCK_ROWS)
    # kNN asks for k + 1 neighbours (the point itself is dropped on the host); the kernel keeps a
    # float64 heap key per result entry.
    knn = points + block * (n_neighbors + 1) * (itemsize + 8 + 8) if knn_on_device else 0
    if knn_on_device and knn_chunk_rows is not None:
        knn = 2 * knn_chunk_rows * n_features * itemsize + knn_chunk_rows * (n_neighbors + 1) * (itemsize + 16)
    if maxmin_candidates is None:
        maxmin_candidates = maxmin_pool_size(n_samples, n_features, n_landmarks, itemsize)
    if maxmin_candidates == 0:
        maxmin = 0
    else:
        # A full MaxMin reads the resident points; a pool is uploaded on its own (points freed).
        candidate_points = maxmin_candidates * n_features * itemsize
        maxmin = candidate_points + maxmin_candidates * 8 + n_landmarks * 8 + _MAXMIN_SCRATCH_BYTES
    if n_edges is None:
        n_edges = 2 * n_samples * n_neighbors
    if scratch_bytes is None:
        scratch_bytes = paths_scratch_bytes(n_samples, n_landmarks)
    rows = n_landmarks * n_samples * itemsize
    graph = (n_samples + 1) * 8 + n_edges * (4 + itemsize)
    paths = graph + n_landmarks * 8 + rows + scratch_bytes
    triangulation = rows + n_components * n_landmarks * 8 + n_landmarks * 8 + n_samples * n_components * itemsize
    return DeviceBytes(knn=knn, maxmin=maxmin, paths=paths, triangulation=triangulation)


def check_fit_device_memory(
    prediction: DeviceBytes, n_samples: int, n_landmarks: int, dtype: np.dtype, free_bytes: int | None = None
) -> None:
    """Refuse up front a GPU landmark fit that cannot fit in free device memory.

    Parameters
    ----------
    prediction : DeviceBytes
        From :func:`predict_fit_device_bytes`.
    n_samples, n_landmarks : int
        For the message.
    dtype : numpy.dtype
        Input dtype, for the message and the remedy.
    free_bytes : int, optional
        Free device bytes; default: asked from the device.

    Raises
    ------
    MemoryError
        Naming the bytes needed, the bytes free, the phase that needs them and a remedy.
    """
    free = _device.available_device_bytes() if free_bytes is None else int(free_bytes)
    dtype = np.dtype(dtype)
    remedy = _REMEDY if dtype == np.float64 else _REMEDY.replace("float32 input, ", "")
    if prediction.peak > free:
        phase = max(("kNN", prediction.knn), ("MaxMin", prediction.maxmin), ("shortest paths", prediction.paths),
                    ("triangulation", prediction.triangulation), key=lambda item: item[1])[0]
        raise MemoryError(
            f"GPU landmark Isomap of {n_samples} points with {n_landmarks} landmarks ({dtype.name}) needs "
            f"{prediction.peak:,} bytes ({prediction.peak / 2**30:.2f} GiB) of GPU memory at its peak "
            f"({phase}) but only {free:,} bytes ({free / 2**30:.2f} GiB) are free. {remedy}"
        )


# ------------------------------------------------------------------------------ device buffers
def _allocate(n_bytes: int, what: str) -> Any:
    """A device buffer of ``n_bytes``; a failed allocation becomes a MemoryError that says what."""
    try:
        return _core.LandmarkDeviceBuffer(int(n_bytes))
    except MemoryError:
        free = _device.available_device_bytes()
        raise MemoryError(
            f"{what} needs {n_bytes:,} bytes ({n_bytes / 2**30:.2f} GiB) of GPU memory but the allocation failed "
            f"({free:,} bytes free now). {_REMEDY}"
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


def _suffix(dtype: np.dtype) -> str:
    return "_f32" if np.dtype(dtype) == np.float32 else "_f64"


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
    points : ndarray, numpy.memmap or isogan.landmark.NpyRows of shape (n_samples, n_features)
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
    for start in tqdm(starts, desc="upload points", unit="block", file=sys.stderr, disable=not show, leave=False):
        block = np.ascontiguousarray(points[start : start + chunk_rows], dtype=dtype)
        buffer.upload(block, start * row_bytes)
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

    ``search`` is ``_core.knn_kneighbors_cuda_ptr_<dtype>``; the device results pass through
    ``distances_buffer`` and ``indices_buffer``. Returns ``(distances, indices)``, both of shape
    ``(n_queries, n_found)``, indices int64 into the candidates.
    """
    search(queries_pointer, candidates_pointer, n_queries, n_candidates, n_features, n_found, metric_code, p, False,
           distances_buffer.pointer, indices_buffer.pointer, 0)
    distances = np.empty((n_queries, n_found), dtype=dtype)
    indices = np.empty((n_queries, n_found), dtype=np.int64)
    distances_buffer.download(distances, 0)
    indices_buffer.download(indices, 0)
    return distances, indices


def device_kneighbors(
    resident: ResidentPoints, n_neighbors: int, metric_code: int, p: float, show: bool = False
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

    Returns
    -------
    distances : ndarray of shape (n_samples, k), dtype
    indices : ndarray of shape (n_samples, k), int64
        Sorted by (distance, index), the point itself excluded, as :func:`isogan.knn.kneighbors`.
    """
    n_samples, n_features = resident.shape
    dtype = resident.dtype
    search = getattr(_core, f"knn_kneighbors_cuda_ptr_{dtype.name}")
    width = n_neighbors + 1
    block = min(n_samples, _QUERY_BLOCK_ROWS)
    block_distances = _allocate(block * width * dtype.itemsize, "a block of kNN distances")
    block_indices = _allocate(block * width * 8, "a block of kNN indices")
    distances = np.empty((n_samples, n_neighbors), dtype=dtype)
    indices = np.empty((n_samples, n_neighbors), dtype=np.int64)
    row_bytes = n_features * dtype.itemsize
    starts = range(0, n_samples, block)
    for start in tqdm(starts, desc="kNN (GPU)", unit="block", file=sys.stderr, disable=not show, leave=False):
        n_rows = min(block, n_samples - start)
        found_distances, found_indices = _search_block(
            search, resident.pointer + start * row_bytes, resident.pointer, n_rows, n_samples, n_features, width,
            metric_code, p, block_distances, block_indices, dtype,
        )
        kept_indices, kept_distances = drop_self(found_indices, found_distances, start)
        indices[start : start + n_rows] = kept_indices
        distances[start : start + n_rows] = kept_distances
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
    points : ndarray, numpy.memmap or isogan.landmark.NpyRows of shape (n_samples, n_features)
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
    search = getattr(_core, f"knn_kneighbors_cuda_ptr_{dtype.name}")
    width = n_neighbors + 1
    query_buffer = _allocate(block_rows * n_features * dtype.itemsize, "a block of query points")
    candidate_buffer = _allocate(block_rows * n_features * dtype.itemsize, "a block of candidate points")
    found_distances_buffer = _allocate(block_rows * width * dtype.itemsize, "a block of kNN distances")
    found_indices_buffer = _allocate(block_rows * width * 8, "a block of kNN indices")
    distances = np.empty((n_samples, n_neighbors), dtype=dtype)
    indices = np.empty((n_samples, n_neighbors), dtype=np.int64)
    starts = range(0, n_samples, block_rows)
    blocks = tqdm(total=len(starts) ** 2, desc="kNN (GPU, streamed)", unit="block", file=sys.stderr,
                  disable=not show, leave=False)
    try:
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
                merged_distance = np.concatenate([best_distance, found_distance], axis=1)
                merged_index = np.concatenate([best_index, found_index + candidate_start], axis=1)
                order = np.argsort(merged_distance, axis=1, kind="stable")[:, :width]
                best_distance = np.take_along_axis(merged_distance, order, axis=1)
                best_index = np.take_along_axis(merged_index, order, axis=1)
                blocks.update(1)
            kept_index, kept_distance = drop_self(best_index, best_distance, query_start)
            indices[query_start : query_start + n_query] = kept_index
            distances[query_start : query_start + n_query] = kept_distance
    finally:
        blocks.close()
    return distances, indices


def knn_graph_cuda(
    points: Any, n_neighbors: int, metric_code: int, p: float, dtype: np.dtype, *, n_landmarks: int,
    n_components: int, chunk_rows: int, show: bool = False,
) -> tuple[sparse.csr_matrix, ResidentPoints | None]:
    """kNN graph of host or out-of-core points on the GPU; the points stay on the device.

    Parameters
    ----------
    points : ndarray, numpy.memmap or isogan.landmark.NpyRows of shape (n_samples, n_features)
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
    free = _device.available_device_bytes()
    prediction = predict_fit_device_bytes(n_samples, n_features, n_neighbors, n_landmarks, n_components,
                                          dtype.itemsize)
    resident = None
    if prediction.knn <= free:
        check_fit_device_memory(prediction, n_samples, n_landmarks, dtype, free_bytes=free)
        resident = upload_points(points, chunk_rows, dtype, show)
        distances, indices = device_kneighbors(resident, n_neighbors, metric_code, p, show)
    else:
        # The points do not fit: stream query blocks and candidate blocks through the device.
        block_rows = streamed_chunk_rows(n_samples, n_features, n_neighbors, dtype.itemsize, free)
        prediction = predict_fit_device_bytes(
            n_samples, n_features, n_neighbors, n_landmarks, n_components, dtype.itemsize, knn_chunk_rows=block_rows,
            maxmin_candidates=maxmin_pool_size(n_samples, n_features, n_landmarks, dtype.itemsize, free),
        )
        check_fit_device_memory(prediction, n_samples, n_landmarks, dtype, free_bytes=free)
        distances, indices = streamed_kneighbors(points, n_neighbors, metric_code, p, dtype, block_rows, show)
    indptr = np.arange(0, n_samples * n_neighbors + 1, n_neighbors, dtype=np.int64)
    graph = sparse.csr_matrix((distances.ravel(), indices.ravel(), indptr), shape=(n_samples, n_samples))
    return graph, resident


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
    getattr(_core, "landmark_maxmin_cuda" + _suffix(resident.dtype))(
        resident.pointer, n_points, n_features, n_landmarks, first_landmark, landmark_index.pointer,
        min_sq_distance.pointer, 0,
    )
    return _download(landmark_index, (n_landmarks,), np.dtype(np.int64))


def _select_landmarks_cuda(
    points: Any, resident: ResidentPoints | None, n_landmarks: int, landmark_method: str, random_state: Any,
    pool_size: int | None,
) -> np.ndarray:
    """MaxMin on the device over all points or a candidate pool; random choice as on the CPU.

    Releases ``resident`` once it is no longer needed (before a pool is uploaded).
    """
    from sklearn.utils import check_random_state

    n_samples, n_features = points.shape
    dtype = np.dtype(np.float32) if points.dtype == np.float32 else np.dtype(np.float64)
    if landmark_method == "random":
        return _landmark.select_landmarks(np.empty((n_samples, 0)), n_landmarks, landmark_method="random",
                                          random_state=random_state)
    if pool_size is None:
        free = None if resident is not None and resident.buffer is not None else _device.available_device_bytes()
        pool_size = maxmin_pool_size(n_samples, n_features, n_landmarks, dtype.itemsize, free)
    if pool_size >= n_samples and resident is not None and resident.buffer is not None:
        first = int(check_random_state(random_state).randint(n_samples))
        return maxmin_cuda(resident, n_landmarks, first)
    if resident is not None:
        resident.release()
    # The same pool, and the same first landmark within it, as the CPU's out-of-core path.
    candidates = np.arange(n_samples)
    if pool_size < n_samples:
        candidates = np.sort(check_random_state(random_state).choice(n_samples, size=pool_size, replace=False))
    pool = upload_points(_RowsOf(points, candidates), max(1, _DEFAULT_UPLOAD_ROWS), dtype)
    first = int(check_random_state(random_state).randint(candidates.size))
    return candidates[maxmin_cuda(pool, n_landmarks, first)]


class _RowsOf:
    """The rows ``index`` of ``points``, sliceable like an array (read block by block)."""

    def __init__(self, points: Any, index: np.ndarray) -> None:
        self._points = points
        self._index = index
        self.shape = (index.size, points.shape[1])
        self.dtype = points.dtype

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.asarray(self._points[self._index[rows]])


def fit_landmark_model_cuda(
    graph: Any,
    n_landmarks: int,
    n_components: int = 2,
    *,
    points: Any = None,
    resident: ResidentPoints | None = None,
    landmark_method: str = "maxmin",
    random_state: Any = None,
    component_labels: np.ndarray | None = None,
    path_method: str = "auto",
    maxmin_pool: int | None = None,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> "_landmark.LandmarkModel":
    """Fit landmark Isomap on the GPU on a connected neighbour graph (twin of ``fit_landmark_model``).

    Parameters
    ----------
    graph : sparse matrix of shape (n_samples, n_samples)
        Connected neighbour graph of edge lengths.
    n_landmarks : int
        ``n_components + 1 <= n_landmarks <= n_samples``.
    n_components : int, default=2
        Dimension of the embedding.
    points : array of shape (n_samples, n_features), optional
        Coordinates for MaxMin in input space (host, memmap or NpyRows). Without them MaxMin runs
        in geodesic space.
    resident : ResidentPoints, optional
        The same points already on the device (from :func:`knn_graph_cuda`); released here as soon
        as MaxMin is done.
    landmark_method : {'maxmin', 'random'}, default='maxmin'
        How landmarks are chosen.
    random_state : int, RandomState instance or None, default=None
        Seeds the landmark choice.
    component_labels : ndarray of shape (n_samples,), optional
        Components of the graph before joining; each one without a landmark gets one (warning).
    path_method : {'auto', 'D', 'FW'}, default='auto'
        Only used by geodesic MaxMin (no coordinates); the landmark rows always come from the
        batched GPU shortest-path kernel.
    maxmin_pool : int, optional
        Candidates for MaxMin; default :func:`maxmin_pool_size`.
    n_jobs : int or None, default=None
        Host threads (symmetrisation, MDS of the L x L block).
    progress : bool or None, default=None
        Progress bar over the stages; None shows it from 20000 points on.

    Returns
    -------
    isogan.landmark.LandmarkModel
        Host arrays, ``timings`` per stage.

    Raises
    ------
    ValueError
        Bad ``n_landmarks``, or a disconnected graph.
    MemoryError
        When the device or host cannot hold the (L, N) landmark rows (bytes and remedy named).
    """
    from scipy.sparse.csgraph import connected_components

    n_samples = graph.shape[0]
    n_landmarks = _landmark.check_n_landmarks(n_landmarks, n_components, n_samples)
    landmark_method = _landmark._check_method(landmark_method)
    n_graph_components, _ = connected_components(graph, directed=False)
    if n_graph_components > 1:
        raise ValueError(
            f"The neighbour graph has {n_graph_components} connected components, so geodesic "
            "distances between them are infinite. Join its components first (landmark_isomap does, "
            "from the input coordinates) or increase n_neighbors."
        )
    show = n_samples >= _landmark._PROGRESS_MIN_SAMPLES if progress is None else bool(progress)
    timings: dict[str, float] = {}

    bar = tqdm(total=3, desc="landmark Isomap (GPU)", unit="stage", file=sys.stderr, disable=not show, leave=False)
    bar.set_postfix_str("landmarks", refresh=False)
    try:
        start = time.perf_counter()
        host_rows = None
        if points is not None:
            landmark_index = _select_landmarks_cuda(points, resident, n_landmarks, landmark_method, random_state,
                                                    maxmin_pool)
        elif landmark_method == "maxmin":
            landmark_index, host_rows = _landmark._geodesic_maxmin(graph, n_landmarks, random_state, path_method, n_jobs,
                                                                   "cuda", show)
        else:
            landmark_index = _landmark.select_landmarks(np.empty((n_samples, 0)), n_landmarks, landmark_method="random",
                                                        random_state=random_state)
        if resident is not None:
            resident.release()  # MaxMin was the last reader of the points
        if component_labels is not None:
            landmark_index = _landmark._cover_components(landmark_index, component_labels)
        timings["landmarks"] = time.perf_counter() - start
        bar.update(1)
        bar.set_postfix_str("geodesic distances (GPU)", refresh=False)

        start = time.perf_counter()
        symmetric = _paths._as_symmetric_csr(graph)
        dtype = symmetric.dtype
        rows_shape = (landmark_index.size, n_samples)
        rows_what = f"the ({rows_shape[0]}, {rows_shape[1]}) {dtype.name} landmark geodesic rows"
        _device.ensure_memory(rows_shape[0] * n_samples * dtype.itemsize, rows_what,
                              "Use fewer landmarks (n_landmarks) or float32 input.", device="cpu")
        prediction = predict_fit_device_bytes(
            n_samples, 0, 0, landmark_index.size, n_components, dtype.itemsize, n_edges=symmetric.n_edges,
            maxmin_candidates=0, knn_on_device=False,
        )
        check_fit_device_memory(prediction, n_samples, landmark_index.size, dtype)
        device_rows = _allocate(rows_shape[0] * n_samples * dtype.itemsize, rows_what)
        if host_rows is not None and host_rows.shape[0] == landmark_index.size:
            landmark_geodesic = np.ascontiguousarray(host_rows, dtype=dtype)
            device_rows.upload(landmark_geodesic, 0)
        else:
            _device_shortest_paths(symmetric, landmark_index, device_rows)
            landmark_geodesic = _download(device_rows, rows_shape, dtype)
        timings["paths"] = time.perf_counter() - start
        bar.update(1)
        bar.set_postfix_str("MDS + triangulation (GPU)", refresh=False)

        start = time.perf_counter()

        def triangulate_on_device(geodesic: np.ndarray, projection: np.ndarray, mean_sq: np.ndarray) -> np.ndarray:
            return triangulate_cuda(device_rows, geodesic.shape, geodesic.dtype, projection, mean_sq)

        model = _landmark._embed_landmarks(landmark_index, landmark_geodesic, n_components, n_jobs, "cuda",
                                           triangulate_fn=triangulate_on_device)
        timings["mds"] = time.perf_counter() - start
        bar.update(1)
    finally:
        bar.close()
    model.timings = timings
    return model


def _device_shortest_paths(symmetric: Any, landmark_index: np.ndarray, device_rows: Any) -> None:
    """Batched shortest paths from the landmarks into the (L, N) device rows."""
    indptr = _upload(symmetric.indptr, "the neighbour graph offsets")
    indices = _upload(symmetric.indices, "the neighbour graph columns")
    weights = _upload(symmetric.weights, "the neighbour graph weights")
    sources = _upload(np.asarray(landmark_index, dtype=np.int64), "the landmark indices")
    _core.paths_shortest_paths_cuda(
        indptr.pointer, indices.pointer, weights.pointer, symmetric.n_nodes, symmetric.n_edges, sources.pointer,
        landmark_index.size, device_rows.pointer, symmetric.dtype.name, 0,
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
    getattr(_core, "landmark_triangulate_cuda" + _suffix(dtype))(
        device_geodesic.pointer, device_projection.pointer, device_mean.pointer, n_landmarks, n_points, n_components,
        embedding.pointer, 0,
    )
    return _download(embedding, (n_points, n_components), np.dtype(dtype))


# ------------------------------------------------------------------------------ transform
def transform_chunk_rows(n_landmarks: int, n_neighbors: int, itemsize: int, chunk_rows: int) -> int:
    """New points per GPU transform chunk: their gathered landmark columns stay within 1 GiB.

    Parameters
    ----------
    n_landmarks : int
        L.
    n_neighbors : int
        Neighbours per new point (columns gathered per point at most).
    itemsize : int
        Bytes per distance.
    chunk_rows : int
        The caller's upper bound.

    Returns
    -------
    int
        At least 1.
    """
    fitting = _TRANSFORM_GATHER_BYTES // max(1, n_landmarks * n_neighbors * itemsize)
    return int(max(1, min(chunk_rows, fitting)))


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
    getattr(_core, "landmark_min_plus_cuda" + _suffix(dtype))(
        device_columns.pointer, device_index.pointer, device_distance.pointer, n_landmarks, n_columns, n_queries,
        n_neighbors, out.pointer, 0,
    )
    return out


def transform_cuda(
    model: "_landmark.LandmarkModel", neighbor_index: np.ndarray, neighbor_distance: np.ndarray, chunk_rows: int
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
