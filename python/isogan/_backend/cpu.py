"""The CPU backend of the landmark pipeline: native C++/OpenMP kernels on host arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from isogan import _core
from isogan import knn as _knn
from isogan import paths as _paths
from isogan._backend.memory import (
    HostFitBytes,
    available_host_bytes,
    ensure_memory,
    landmark_fit_host_bytes,
    landmark_remedy,
)
from isogan._backend.policy import threads
from isogan._backend.spill import SpilledRows, check_spill_disk
from isogan.io import NpyRows, is_out_of_core


def float_dtype(dtype: Any) -> np.dtype:
    """float32 stays float32; every other dtype computes in float64."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


# Bytes of landmark rows read or computed at a time when they are spilled to disk.
_SPILL_BLOCK_BYTES = 2**30


def predict_landmark_host_bytes(n_samples: int, n_landmarks: int, n_neighbors: int | None, n_components: int,
                                dtype: Any, spill_block_bytes: int | None = None) -> HostFitBytes:
    """Host memory and disk of a landmark fit; with ``spill_block_bytes`` its rows go to disk.

    Spilled, only ``spill_block_bytes`` of the (L, N) rows are in memory at once and all of them
    are on disk.
    """
    itemsize = float_dtype(dtype).itemsize
    memory = landmark_fit_host_bytes(n_samples, n_landmarks, n_neighbors, n_components, itemsize, spill_block_bytes)
    disk = 0 if spill_block_bytes is None else n_landmarks * n_samples * itemsize
    return HostFitBytes(memory=memory, disk=disk)


def check_landmark_host_memory(n_samples: int, n_landmarks: int, n_neighbors: int | None, n_components: int,
                               dtype: Any, spill_block_bytes: int | None = None) -> None:
    """Refuse up front a landmark fit whose rows (or, spilled, one block of them) and graph cannot fit.

    With ``spill_block_bytes`` the (L, N) rows go to disk and only that many bytes of them are in
    memory at once; the disk they need is checked too.

    Raises
    ------
    MemoryError
        When the predicted peak exceeds the available host memory (bytes and a remedy named).
    OSError
        When the spilled rows exceed the free disk of ``TMPDIR`` (bytes named).
    """
    dtype = float_dtype(dtype)
    needed = predict_landmark_host_bytes(n_samples, n_landmarks, n_neighbors, n_components, dtype, spill_block_bytes)
    rows = "landmark geodesic rows," if spill_block_bytes is None else \
        "landmark geodesic rows spilled to disk, one block in memory,"
    what = (f"Landmark Isomap of {n_samples} points with {n_landmarks} landmarks ({dtype.name}: the "
            f"({n_landmarks}, {n_samples}) {rows} the neighbour graph and the ({n_landmarks}, {n_landmarks}) "
            "landmark MDS)")
    ensure_memory(needed.memory, what, landmark_remedy(dtype))
    if needed.disk:
        check_spill_disk(needed.disk)


class CpuBackend:
    """Landmark stages on the CPU.

    When the (L, N) landmark rows exceed ``memory_budget`` they are spilled to a temporary file
    (:class:`isogan._backend.spill.SpilledRows`) and computed, triangulated and checked block by
    block; the fitted model then keeps a read-only memory map of them.

    Parameters
    ----------
    n_jobs : int or None, default=None
        Threads (None: all cores, bounded by ``threadpoolctl`` / ``OMP_NUM_THREADS``).
    memory_budget : int or None, default=None
        Bytes of landmark rows held in memory at most; None: half the host memory available when
        the fit starts (read once, by :meth:`check_fit_memory` or the first stage that needs it,
        and kept for the life of this backend).
    """

    name = "cpu"

    def __init__(self, n_jobs: int | None = None, memory_budget: int | None = None) -> None:
        self.n_jobs = n_jobs
        self.memory_budget = memory_budget
        self._resolved_budget: int | None = None

    def _budget(self) -> int:
        """The budget in bytes, resolved once: the spill decision checked before the fit is the one it runs.

        Resolving it again when the rows are computed would see less free memory (the graph is
        built by then) and could spill a fit whose disk was never checked.
        """
        if self._resolved_budget is None:
            budget = available_host_bytes() // 2 if self.memory_budget is None else self.memory_budget
            self._resolved_budget = int(budget)
        return self._resolved_budget

    def _spill_block_bytes(self, n_landmarks: int, n_samples: int, itemsize: int) -> int | None:
        """Bytes of rows in memory at once when they must spill (None: they fit the budget)."""
        budget = self._budget()
        if n_landmarks * n_samples * itemsize <= budget:
            return None
        return max(n_samples * itemsize, min(budget // 4, _SPILL_BLOCK_BYTES))

    def predict_fit_bytes(self, points: Any, n_neighbors: int | None, n_landmarks: int,
                          n_components: int) -> HostFitBytes:
        """Host memory at the fit's peak and disk it spills to, under this backend's budget.

        Parameters
        ----------
        points : array of shape (n_samples, n_features)
            The points (only their shape and dtype are read).
        n_neighbors : int or None
            k of the neighbour graph (None: a radius graph, counted as one neighbour per point).
        n_landmarks : int
            L.
        n_components : int
            c.

        Returns
        -------
        HostFitBytes
            ``disk`` is 0 when the (L, N) rows fit the budget and stay in memory.
        """
        n_samples = points.shape[0]
        dtype = float_dtype(points.dtype)
        return predict_landmark_host_bytes(n_samples, n_landmarks, n_neighbors, n_components, dtype,
                                           self._spill_block_bytes(n_landmarks, n_samples, dtype.itemsize))

    def check_fit_memory(self, points: Any, n_neighbors: int | None, n_landmarks: int, n_components: int) -> None:
        """Refuse up front a fit whose landmark rows (or their spill block), graph or spill disk cannot fit."""
        n_samples = points.shape[0]
        dtype = float_dtype(points.dtype)
        check_landmark_host_memory(n_samples, n_landmarks, n_neighbors, n_components, dtype,
                                   self._spill_block_bytes(n_landmarks, n_samples, dtype.itemsize))

    def neighbor_graph(self, points: Any, n_neighbors: int | None, *, chunk_rows: int, show: bool = False,
                       n_landmarks: int | None = None, n_components: int | None = None, **options: Any) -> Any:
        """kNN graph of in-memory points, or of out-of-core points block against block."""
        if n_neighbors is not None and is_out_of_core(points, chunk_rows):
            distances, indices = _knn.kneighbors_blocked(points, n_neighbors, chunk_rows, show=show, n_jobs=self.n_jobs,
                                                         device="cpu", **options)
            return _knn.neighbors_to_csr(distances, indices, points.shape[0])
        if isinstance(points, (np.memmap, NpyRows)):
            points = np.ascontiguousarray(points[0 : points.shape[0]])
        radius = options.pop("radius", None)
        return _knn.knn_graph(points, n_neighbors=n_neighbors, radius=radius, mode="distance", n_jobs=self.n_jobs,
                              device="cpu", **options)

    def maxmin_pool(self, points: Any, n_landmarks: int, chunk_rows: int | None) -> int | None:
        """All points in memory; a pool of ``chunk_rows`` out of core (a full MaxMin reads the file L times)."""
        return None if chunk_rows is None else max(n_landmarks, chunk_rows)

    def maxmin(self, points: Any, n_landmarks: int, first: int) -> np.ndarray:
        """Farthest-point sampling in input space (``_core.landmark_maxmin``)."""
        dtype = float_dtype(points.dtype)
        if not isinstance(points, np.ndarray):
            points = points[0 : points.shape[0]]
        contiguous = np.ascontiguousarray(points, dtype=dtype)
        landmark_index, _ = _core.landmark_maxmin(contiguous, int(n_landmarks), int(first), threads(self.n_jobs))
        return landmark_index

    def release_points(self) -> None:
        """Nothing is kept."""

    def geodesic_rows(self, graph: Any, sources: np.ndarray, path_method: str) -> np.ndarray:
        """Dijkstra rows from ``sources``."""
        return np.ascontiguousarray(
            _paths.geodesic_distances(graph, method=path_method, indices=sources, n_jobs=self.n_jobs, device="cpu")
        )

    def landmark_rows(self, graph: Any, landmark_index: np.ndarray, *, path_method: str,
                      show: bool) -> np.ndarray | SpilledRows:
        """The (L, N) rows, multi-source Dijkstra over all cores; spilled block by block past the budget."""
        n_samples = graph.shape[0]
        dtype = float_dtype(graph.dtype)
        block_bytes = self._spill_block_bytes(landmark_index.size, n_samples, dtype.itemsize)
        if block_bytes is None:
            return np.ascontiguousarray(
                _paths.geodesic_distances(graph, method=path_method, indices=landmark_index, n_jobs=self.n_jobs,
                                          device="cpu", progress=show)
            )
        spilled = SpilledRows((landmark_index.size, n_samples), dtype, block_bytes, kept_columns=landmark_index)
        block_rows = block_bytes // (n_samples * dtype.itemsize)
        for start, rows in _paths.geodesic_row_blocks(graph, landmark_index, block_rows, n_jobs=self.n_jobs,
                                                      progress=show):
            spilled.write_rows(start, rows)
        return spilled

    def rows_from_host(self, host_rows: np.ndarray) -> np.ndarray:
        """Host rows are this backend's rows."""
        return np.ascontiguousarray(host_rows)

    def rows_largest(self, rows: np.ndarray | SpilledRows) -> np.generic:
        """max() propagates inf and NaN without an (L, N) temporary."""
        if isinstance(rows, SpilledRows):
            if rows.largest is not None and rows.rows_written == rows.shape[0]:
                return rows.largest
            return np.max([block.max() for _, block in rows.column_blocks()])
        return rows.max()

    def landmark_block(self, rows: np.ndarray | SpilledRows, landmark_index: np.ndarray) -> np.ndarray:
        """Columns of the landmarks, float64 (spilled: kept in memory when the rows were written)."""
        if isinstance(rows, SpilledRows):
            if rows.kept is not None and np.array_equal(rows.kept_columns, landmark_index):
                return rows.kept.astype(np.float64)
            block_of_landmarks = np.empty((rows.shape[0], landmark_index.size), dtype=np.float64)
            for start, columns in rows.column_blocks():
                inside = (landmark_index >= start) & (landmark_index < start + columns.shape[1])
                block_of_landmarks[:, inside] = columns[:, landmark_index[inside] - start]
            return block_of_landmarks
        return rows[:, landmark_index].astype(np.float64)

    def triangulate(self, rows: np.ndarray | SpilledRows, projection: np.ndarray,
                    mean_sq_distance: np.ndarray) -> np.ndarray:
        """``_core.landmark_triangulate`` over all cores, in the rows' dtype (by column blocks when spilled)."""
        if isinstance(rows, SpilledRows):
            out = np.empty((rows.shape[1], projection.shape[0]), dtype=rows.dtype)
            for start, block in rows.column_blocks():
                out[start : start + block.shape[1]] = self.triangulate(block, projection, mean_sq_distance)
            return out
        geodesic = np.ascontiguousarray(rows)
        if geodesic.dtype not in (np.float32, np.float64):
            geodesic = geodesic.astype(np.float64)
        return _core.landmark_triangulate(
            geodesic,
            np.ascontiguousarray(projection, dtype=np.float64),
            np.ascontiguousarray(mean_sq_distance, dtype=np.float64),
            threads(self.n_jobs),
        )

    def rows_result(self, rows: np.ndarray | SpilledRows) -> np.ndarray:
        """The host rows, or a read-only memory map of the spilled ones."""
        if not isinstance(rows, SpilledRows):
            return rows
        mapped = rows.as_array()
        rows.close()
        return mapped

    def transform(self, model: Any, neighbor_index: np.ndarray, neighbor_distance: np.ndarray) -> np.ndarray:
        """Min-plus of the neighbour edges with the landmark rows, then triangulation."""
        query_geodesic = _core.landmark_min_plus(model.landmark_geodesic, neighbor_index, neighbor_distance,
                                                 threads(self.n_jobs))
        return self.triangulate(query_geodesic, model.projection, model.mean_sq_distance)
