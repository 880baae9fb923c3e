"""GPU neighbour search: the CUDA calls of :mod:`isogan.knn` (host arrays or GPU arrays in place)."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from isogan import _core
from isogan._backend.arrays import device_array_view, device_empty
from isogan._backend.memory import ensure_memory

PRECOMPUTED = 4  # csrc/knn/knn.h, enum Metric (isogan.knn.PRECOMPUTED)


def host_kneighbors(queries: np.ndarray, points: np.ndarray, k: int, code: int, p: float,
                    exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """k nearest of host queries among host points, searched on the GPU (host results)."""
    itemsize = queries.dtype.itemsize
    # Inputs, the (M, k) distances and int64 indices, and the kernel's (M, k) float64 heap keys.
    need = (queries.size + (0 if code == PRECOMPUTED else points.size)) * itemsize + queries.shape[0] * k * (16 + itemsize)
    ensure_memory(need, "the kNN search", "Use float32 data, fewer points or device='cpu'.", device="cuda")
    return _core.knn_kneighbors_cuda_host(queries, points, k, code, p, exclude_self)


def host_radius(queries: np.ndarray, points: np.ndarray, radius: float, code: int, p: float,
                exclude_self: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radius neighbours of host queries among host points, searched on the GPU (host CSR parts)."""
    return _core.knn_radius_cuda_host(queries, points, radius, code, p, exclude_self)


def device_module(x: Any) -> Any:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch
    import cupy

    return cupy


def check_device_array(x: Any, name: str, precomputed: bool) -> Any:
    """Validate a GPU array in place: 2-D, float32/float64, C-contiguous, finite (non-negative if precomputed)."""
    view = device_array_view(x)
    if view.dtype not in (np.float32, np.float64):
        raise TypeError(f"GPU input {name} must be float32 or float64, got {view.dtype}.")
    if len(view.shape) != 2:
        raise ValueError(f"Expected 2D array, got {len(view.shape)}D array instead for {name}.")
    if view.shape[0] < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={view.shape}) while a minimum of 1 is required.")
    xp = device_module(x)
    if not bool(xp.isfinite(x).all()):
        raise ValueError(f"Input {name} contains NaN or infinity.")
    if precomputed and bool((x < 0).any()):
        raise ValueError(f"Negative values in data passed to {name}.")
    return view


def device_kneighbors(fit: Any, queries: Any | None, k: int, code: int, p: float) -> tuple[Any, Any]:
    exclude_self = queries is None
    queries = fit if queries is None else queries
    q_view = device_array_view(queries)
    f_view = q_view if code == PRECOMPUTED else device_array_view(fit)
    n_points = q_view.shape[1] if code == PRECOMPUTED else f_view.shape[0]
    m = q_view.shape[0]
    # The (M, k) distances and int64 indices, and the kernel's (M, k) float64 heap keys.
    ensure_memory(m * k * (16 + q_view.dtype.itemsize), "the kNN result", "Use fewer query points or device='cpu'.",
                  device="cuda")
    distances = device_empty(queries, (m, k), q_view.dtype)
    indices = device_empty(queries, (m, k), np.dtype(np.int64))
    _core.knn_kneighbors_cuda(
        q_view.pointer, f_view.pointer, m, n_points, q_view.shape[1], k, code, p, exclude_self,
        device_array_view(distances).pointer, device_array_view(indices).pointer, q_view.dtype, q_view.stream)
    return distances, indices


def device_radius(fit: Any, queries: Any | None, radius: float, code: int, p: float) -> tuple[Any, Any, Any, int]:
    exclude_self = queries is None
    queries = fit if queries is None else queries
    q_view = device_array_view(queries)
    f_view = q_view if code == PRECOMPUTED else device_array_view(fit)
    n_points = q_view.shape[1] if code == PRECOMPUTED else f_view.shape[0]
    m = q_view.shape[0]
    indptr = device_empty(queries, (m + 1,), np.dtype(np.int64))
    args = (q_view.pointer, f_view.pointer, m, n_points, q_view.shape[1], radius, code, p, exclude_self,
            device_array_view(indptr).pointer)
    nnz = int(_core.knn_radius_count_cuda(*args, q_view.dtype, q_view.stream))
    ensure_memory(nnz * (8 + q_view.dtype.itemsize), "the radius-neighbour graph",
                  "Use a smaller radius, fewer points or device='cpu'.", device="cuda")
    indices = device_empty(queries, (nnz,), np.dtype(np.int64))
    distances = device_empty(queries, (nnz,), q_view.dtype)
    if nnz > 0:
        _core.knn_radius_fill_cuda(*args, device_array_view(indices).pointer, device_array_view(distances).pointer,
                                   q_view.dtype, q_view.stream)
    return indptr, indices, distances, n_points


def device_csr(like: Any, indptr: Any, indices: Any, data: Any, shape: tuple[int, int]) -> Any:
    """A sparse CSR matrix on ``like``'s device, built by ``like``'s library."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(like, torch.Tensor):
        with warnings.catch_warnings():
            # torch flags its whole sparse CSR layout as beta; the tensor is a plain container here.
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)
            # torch >= 2.11 also nags unless invariant checking is chosen globally; the kernel
            # wrote a valid CSR (sorted rows, in-range columns), so the checks are skipped.
            warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled",
                                    category=UserWarning)
            return torch.sparse_csr_tensor(indptr, indices, data, size=shape, check_invariants=False)
    import cupyx.scipy.sparse

    return cupyx.scipy.sparse.csr_matrix((data, indices, indptr), shape=shape)
