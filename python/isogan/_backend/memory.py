"""Memory: what is free, what a call will need, and refusing up front what cannot fit.

Every predictor of isogan lives here, so that an estimator refuses a fit before any work with
the bytes it needs, the bytes free and a remedy that fits the mode the user is in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from isogan import _core

#: Width of the block of vectors the MDS eigensolver iterates on (for the host estimate).
MDS_BLOCK_VECTORS = 64
# Smallest block of the Lanczos solver, and the CUDA product kernel's tile (kTileCols in
# csrc/mds/mds_cuda.cu): device blocks are zero-padded to a multiple of it.
MDS_MIN_BLOCK = 8
MDS_DEVICE_TILE_VECTORS = 16

# Query rows per GPU kNN launch: 2**19 threads fill an H100/H200 (132 SMs x 2048 threads) about twice.
GPU_QUERY_BLOCK_ROWS = 1 << 19
# Bytes of the batched GPU shortest paths' two (sources, N) flag arrays per batch of sources, and
# queries per launch of the GPU min-plus (CUDA's grid.y limit): csrc/paths/paths.h's defaults.
GPU_PATHS_FLAG_BUDGET_BYTES = int(_core.PATHS_FLAG_BUDGET_BYTES)
GPU_MIN_PLUS_QUERIES_PER_LAUNCH = int(_core.MIN_PLUS_MAX_QUERIES_PER_LAUNCH)
# A full GPU MaxMin reads all N * D values once per landmark; above this many bytes in total it
# runs on a uniformly drawn candidate pool instead (16 GiB: a few seconds of HBM traffic).
GPU_MAXMIN_TRAFFIC_BYTES = 16 * 2**30
# Per-block GPU MaxMin reduction scratch (1024 blocks x (double + int64)).
GPU_MAXMIN_SCRATCH_BYTES = 1024 * 16
# Bytes of gathered landmark columns a GPU transform chunk uploads at most.
GPU_TRANSFORM_GATHER_BYTES = 2**30

def exact_remedy(dtype: Any, last_resort: str = "fit fewer points") -> str:
    """What to do when the exact fit's N x N geodesic matrix does not fit (float32 only for float64 data)."""
    landmarks = "use landmark Isomap (n_landmarks=..., --n-landmarks), which keeps only (n_landmarks, N) distances"
    if np.dtype(dtype) == np.float64:
        return f"Pass float32 input (dtype=float32, or --dtype float32 on the command line) to halve it, {landmarks}, or {last_resort}."
    return f"{landmarks[0].upper()}{landmarks[1:]}, or {last_resort}."


def landmark_remedy(dtype: Any, last_resort: str = "fewer points") -> str:
    """What to do when a landmark fit does not fit (float32 only for float64 data)."""
    smaller = "float32 input, " if np.dtype(dtype) == np.float64 else ""
    return f"Use fewer landmarks (n_landmarks), {smaller}or {last_resort}."


def available_host_bytes() -> int:
    """Return the bytes of host memory available to a new allocation (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def available_device_bytes() -> int:
    """Return the free bytes on the current CUDA device."""
    free_bytes, _ = _core.cuda_memory_info()
    return int(free_bytes)


def ensure_memory(n_bytes: int, what: str, remedy: str, device: str = "cpu") -> None:
    """Refuse up front an allocation that cannot fit.

    Parameters
    ----------
    n_bytes : int
        Bytes the call is about to need.
    what : str
        What the bytes hold, e.g. ``"the (20000, 20000) float64 geodesic distance matrix"``.
    remedy : str
        What the user can do instead.
    device : {'cpu', 'cuda'}
        Where the bytes will be allocated.

    Raises
    ------
    MemoryError
        If ``n_bytes`` exceeds the memory available on ``device``.
    """
    available = available_device_bytes() if device == "cuda" else available_host_bytes()
    if n_bytes > available:
        where = "free GPU memory" if device == "cuda" else "available host memory"
        raise MemoryError(
            f"{what} needs {n_bytes:,} bytes ({n_bytes / 2**30:.2f} GiB) but only {available:,} bytes "
            f"({available / 2**30:.2f} GiB) of {where} are left. {remedy}"
        )


# ------------------------------------------------------------------------------ exact Isomap
def exact_fit_host_bytes(n_samples: int, n_neighbors: int | None, itemsize: int, dense_solver: bool) -> int:
    """Host bytes of an exact Isomap fit: the (N, N) geodesic matrix plus its working set.

    The symmetrised neighbour graph (values + int64 columns) and the MDS block vectors; a radius
    graph's size is unknown before it is built, so it is not counted. The dense solver writes the
    centred kernel out as a second N x N array.
    """
    square_bytes = n_samples * n_samples * itemsize
    graph_entries = 2 * n_samples * (n_neighbors or 0)
    working_bytes = graph_entries * (itemsize + 8) + n_samples * MDS_BLOCK_VECTORS * 8
    if dense_solver:
        working_bytes += square_bytes
    return square_bytes + working_bytes


def mds_device_product_bytes(n_samples: int, n_components: int) -> int:
    """Device bytes one CUDA block product over an (n_samples, n_samples) matrix allocates.

    The block Lanczos solver multiplies blocks of ``max(8, 2 * n_components rounded up to 8)``
    vectors; the kernel pads a block to a multiple of 16 float64 columns and holds it twice (the
    input block and the product).
    """
    block = max(MDS_MIN_BLOCK, -(-2 * n_components // 8) * 8)
    padded = -(-block // MDS_DEVICE_TILE_VECTORS) * MDS_DEVICE_TILE_VECTORS
    return 2 * 8 * n_samples * padded


def paths_device_bytes(n_nodes: int, n_edges: int, n_sources: int, itemsize: int, method: str,
                       flag_budget_bytes: int = GPU_PATHS_FLAG_BUDGET_BYTES) -> int:
    """Device bytes one GPU shortest-path call allocates, predicted before any allocation.

    The (n_sources, N) output, the uploaded symmetric CSR graph (int64 offsets, int32 columns,
    weights), and for 'D' the int64 sources and the batched kernel's two byte-flag arrays
    (``_core.paths_shortest_paths_cuda_scratch_bytes``, batches of sources whose flags fit
    ``flag_budget_bytes``).

    Examples
    --------
    >>> from isogan._backend.memory import paths_device_bytes
    >>> paths_device_bytes(100, 1000, 100, 4, "FW")
    48808
    """
    n_nodes, n_edges, n_sources = int(n_nodes), int(n_edges), int(n_sources)
    total = n_sources * n_nodes * itemsize + (n_nodes + 1) * 8 + n_edges * (4 + itemsize)
    if method == "D":
        total += n_sources * 8 + paths_scratch_bytes(n_nodes, n_sources, flag_budget_bytes)
    return total


def exact_fit_device_bytes(n_samples: int, n_neighbors: int | None, n_components: int, itemsize: int,
                           path_method: str) -> int:
    """Peak GPU bytes of an exact fit on 'cuda', predicted before anything is allocated.

    The larger of the shortest-path stage (the (N, N) output, the uploaded graph and, unless
    ``path_method='FW'``, the batched Bellman-Ford scratch) and the eigensolver stage (the (N, N)
    matrix plus one block product's vectors). A radius graph's size is unknown up front; it is
    counted as one neighbour per point and checked again before the upload.
    """
    n_edges = 2 * n_samples * (n_neighbors or 1)
    method = "FW" if path_method == "FW" else "D"
    paths_bytes = paths_device_bytes(n_samples, n_edges, n_samples, itemsize, method)
    mds_bytes = n_samples * n_samples * itemsize + mds_device_product_bytes(n_samples, n_components)
    return max(paths_bytes, mds_bytes)


# ------------------------------------------------------------------------------ landmark Isomap
def landmark_fit_host_bytes(n_samples: int, n_landmarks: int, n_neighbors: int | None, n_components: int,
                            itemsize: int, rows_in_memory: int | None = None) -> int:
    """Host bytes of a landmark fit at its peak (the landmark MDS, with the rows still held).

    The (L, N) landmark rows (or, when they are spilled to disk, the ``rows_in_memory`` bytes of
    them held at once), the kNN result and its symmetrised CSR form (values + int32 columns
    + int64 offsets, twice while symmetrising), the (N, c) embedding, and four float64 (L, L)
    arrays of the landmark MDS (the block, its symmetrised copy, its squares, the fitted kernel
    state's copy).
    """
    rows = n_landmarks * n_samples * itemsize if rows_in_memory is None else int(rows_in_memory)
    edges = 2 * n_samples * (n_neighbors or 1)
    graph = 2 * (edges * (itemsize + 4) + (n_samples + 1) * 8) + n_samples * (n_neighbors or 1) * (itemsize + 8)
    landmark_mds = 4 * n_landmarks * n_landmarks * 8
    return rows + graph + n_samples * n_components * 8 + landmark_mds


@dataclass(frozen=True)
class HostFitBytes:
    """What a CPU landmark fit needs before it starts.

    Attributes
    ----------
    memory : int
        Peak host bytes (:func:`landmark_fit_host_bytes`).
    disk : int
        Bytes of landmark rows spilled to a temporary file; 0 when they stay in memory.
    """

    memory: int
    disk: int


def paths_scratch_bytes(n_samples: int, n_landmarks: int, flag_budget_bytes: int = GPU_PATHS_FLAG_BUDGET_BYTES) -> int:
    """Device scratch of the batched shortest-path kernel for L sources over N nodes.

    Two byte flags per (source, node) of one batch of sources, plus a 4-byte flag; the batch holds
    as many sources as fit in ``flag_budget_bytes`` of flags (1 GiB by default, at least one
    source). The paths stage's own arithmetic (``csrc/paths/paths.h``), bound in every build.
    """
    return int(_core.paths_shortest_paths_cuda_scratch_bytes(n_samples, n_landmarks, flag_budget_bytes))


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


def maxmin_pool_size(n_samples: int, n_features: int, n_landmarks: int, itemsize: int,
                     free_bytes: int | None = None) -> int:
    """Candidates MaxMin runs over on the GPU: all points unless that streams too many bytes.

    Returns ``n_samples`` when ``n_landmarks`` passes over all points stay within 16 GiB (and the
    points fit in half of ``free_bytes`` when given), else the largest pool that does, and never
    fewer than ``n_landmarks``.
    """
    fitting = n_samples
    if n_samples * n_features * itemsize * n_landmarks > GPU_MAXMIN_TRAFFIC_BYTES:
        fitting = GPU_MAXMIN_TRAFFIC_BYTES // (n_features * itemsize * n_landmarks)
    if free_bytes is not None:
        fitting = min(fitting, (free_bytes // 2) // (n_features * itemsize + 8))
    return int(min(n_samples, max(n_landmarks, fitting)))


def streamed_chunk_rows(n_samples: int, n_features: int, n_neighbors: int, itemsize: int, free_bytes: int) -> int:
    """Rows per query block and per candidate block when the points do not fit on the device.

    ``C`` with ``2 * C * D * itemsize + C * (k + 1) * (itemsize + 16) <= free_bytes / 2``, within
    ``[n_neighbors + 1, n_samples]``.
    """
    per_row = 2 * n_features * itemsize + (n_neighbors + 1) * (itemsize + 16)
    return int(min(n_samples, max(n_neighbors + 1, (free_bytes // 2) // per_row)))


def transform_chunk_rows(n_landmarks: int, n_neighbors: int, itemsize: int, chunk_rows: int) -> int:
    """New points per GPU transform chunk: their gathered landmark columns stay within 1 GiB."""
    fitting = GPU_TRANSFORM_GATHER_BYTES // max(1, n_landmarks * n_neighbors * itemsize)
    return int(max(1, min(chunk_rows, fitting)))


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
    query_block_rows: int = GPU_QUERY_BLOCK_ROWS,
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
    query_block_rows : int, default=GPU_QUERY_BLOCK_ROWS
        Query rows per kNN launch over the resident points (2**19).

    Returns
    -------
    DeviceBytes

    Examples
    --------
    >>> from isogan._backend.memory import predict_fit_device_bytes
    >>> predict_fit_device_bytes(1000, 3, 10, 50, 2, 8).paths
    748412
    """
    points = n_samples * n_features * itemsize
    block = min(n_samples, query_block_rows)
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
        maxmin = candidate_points + maxmin_candidates * 8 + n_landmarks * 8 + GPU_MAXMIN_SCRATCH_BYTES
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

    Raises
    ------
    MemoryError
        Naming the bytes needed, the bytes free, the phase that needs them and a remedy.
    """
    free = available_device_bytes() if free_bytes is None else int(free_bytes)
    dtype = np.dtype(dtype)
    remedy = landmark_remedy(dtype, "device='cpu'")
    if prediction.peak > free:
        phase = max(("kNN", prediction.knn), ("MaxMin", prediction.maxmin), ("shortest paths", prediction.paths),
                    ("triangulation", prediction.triangulation), key=lambda item: item[1])[0]
        raise MemoryError(
            f"GPU landmark Isomap of {n_samples} points with {n_landmarks} landmarks ({dtype.name}) needs "
            f"{prediction.peak:,} bytes ({prediction.peak / 2**30:.2f} GiB) of GPU memory at its peak "
            f"({phase}) but only {free:,} bytes ({free / 2**30:.2f} GiB) are free. {remedy}"
        )
