"""Backends: where isogan's stages run, behind one small interface.

The algorithms (:mod:`isogan.landmark` above all) are written once and call a backend's stage
methods; a backend knows how to run a stage on its hardware and nothing of the algorithm.

- :mod:`isogan._backend.cpu`: native C++/OpenMP kernels on host arrays.
- :mod:`isogan._backend.cuda_landmark` (with ``cuda_knn``, ``cuda_paths``, ``cuda_mds``): the CUDA
  kernels, on device memory owned by :class:`isogan.DeviceArray` or read in place from torch/CuPy.
- :mod:`isogan._backend.dask` (optional, ``isogan[dask]``): the landmark stages as tasks on the
  workers of a ``distributed.Client`` (:class:`~isogan._backend.dask.DaskBackend`), for the
  estimator :class:`isogan.dask.Isomap`; built per fit, not through :func:`get_backend`.

Shared by all: :mod:`~isogan._backend.policy` (device choice, threads, progress),
:mod:`~isogan._backend.memory` (what is free, what a call needs, up-front refusal) and
:mod:`~isogan._backend.arrays` (GPU array interop).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from isogan._backend.policy import resolve_device

__all__ = ["Backend", "get_backend"]


class Backend(Protocol):
    """The stage calls of the landmark pipeline (shapes as in :mod:`isogan.landmark`).

    ``rows`` below is the backend's own handle on the (L, N) landmark geodesic rows: a host array
    for the CPU, host and device copies for CUDA, per-worker shares for Dask.
    """

    name: str

    def check_fit_memory(self, points: Any, n_neighbors: int | None, n_landmarks: int, n_components: int) -> None:
        """Refuse, before any work, a fit whose peak memory cannot fit (MemoryError with bytes and remedy)."""

    def neighbor_graph(self, points: Any, n_neighbors: int | None, **options: Any) -> Any:
        """The (N, N) CSR distance graph of the points' neighbours, exactly as :func:`isogan.knn_graph`."""

    def maxmin_pool(self, points: Any, n_landmarks: int, chunk_rows: int | None) -> int | None:
        """Candidates MaxMin runs over (None: all points)."""

    def maxmin(self, points: Any, n_landmarks: int, first: int) -> np.ndarray:
        """Farthest-point landmarks among ``points`` starting from ``first`` (int64, selection order)."""

    def release_points(self) -> None:
        """Drop any copy of the points kept for MaxMin."""

    def geodesic_rows(self, graph: Any, sources: np.ndarray, path_method: str) -> np.ndarray:
        """Host (len(sources), N) geodesic rows (geodesic MaxMin and extra landmarks)."""

    def landmark_rows(self, graph: Any, landmark_index: np.ndarray, *, path_method: str, show: bool) -> Any:
        """The landmark rows, computed where this backend keeps them."""

    def rows_from_host(self, host_rows: np.ndarray) -> Any:
        """Landmark rows already on the host, as this backend's rows."""

    def rows_largest(self, rows: Any) -> np.generic:
        """The largest landmark distance (inf or NaN when one is), a numpy scalar in the rows' dtype."""

    def landmark_block(self, rows: Any, landmark_index: np.ndarray) -> np.ndarray:
        """The (L, L) float64 distances between landmarks, on the host."""

    def triangulate(self, rows: Any, projection: np.ndarray, mean_sq_distance: np.ndarray) -> Any:
        """(N, c) coordinates of every point from its landmark distances."""

    def rows_result(self, rows: Any) -> Any:
        """What the fitted model keeps as ``landmark_geodesic``."""

    def transform(self, model: Any, neighbor_index: np.ndarray, neighbor_distance: np.ndarray) -> np.ndarray:
        """(M, c) coordinates of new points from their (M, k) training neighbours."""


def get_backend(device: str, n_jobs: int | None = None, memory_budget: int | None = None) -> Backend:
    """The in-process backend for a ``device`` argument ('auto', 'cpu' or 'cuda').

    Parameters
    ----------
    device : {'auto', 'cpu', 'cuda'}
        Resolved by :func:`isogan._backend.policy.resolve_device` for the landmark stage.
    n_jobs : int or None, default=None
        Host threads.
    memory_budget : int or None, default=None
        CPU: bytes of landmark rows kept in memory before they spill to disk (None: half the
        available host memory).

    Returns
    -------
    Backend
    """
    if resolve_device(device, "landmark") == "cuda":
        from isogan._backend.cuda_landmark import CudaBackend

        return CudaBackend(n_jobs)
    from isogan._backend.cpu import CpuBackend

    return CpuBackend(n_jobs, memory_budget)
