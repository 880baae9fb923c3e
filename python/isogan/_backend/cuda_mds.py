"""GPU classical MDS: the CUDA block products over a device-resident distance matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from isogan import _core
from isogan._backend.arrays import current_stream, device_array_view
from isogan._backend.memory import ensure_memory


class DeviceMatrix:
    """A validated GPU distance matrix and the CUDA products over it.

    Either a GPU array read in place, or (``from_host``) a device copy of a host array that this
    object owns.
    """

    def __init__(self, array: Any) -> None:
        view = device_array_view(array)
        if view.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dist_matrix must be float32 or float64 on the GPU, got {view.dtype}.")
        self.owner = array
        self.pointer = view.pointer
        self.shape = view.shape
        self.dtype = view.dtype
        self.stream = current_stream(array)

    @classmethod
    def from_host(cls, host: np.ndarray) -> "DeviceMatrix":
        ensure_memory(host.nbytes, f"a GPU copy of the {host.shape} {host.dtype} dist_matrix",
                      "Use float32 input or device='cpu'.", device="cuda")
        matrix = cls.__new__(cls)
        matrix.owner = _core.MdsDeviceMatrixCopy(host)
        matrix.pointer = matrix.owner.pointer
        matrix.shape = host.shape
        matrix.dtype = host.dtype
        matrix.stream = 0
        return matrix

    def centered_matmul(self, block: np.ndarray) -> np.ndarray:
        return _core.mds_centered_kernel_matmul_cuda(self.pointer, self.shape[0], self.dtype,
                                                      np.ascontiguousarray(block, dtype=np.float64), self.stream)

    def squared_matmul(self, block: np.ndarray) -> np.ndarray:
        return _core.mds_squared_matmul_cuda(self.pointer, self.shape[0], self.shape[1], self.dtype,
                                             np.ascontiguousarray(block, dtype=np.float64), self.stream)

    def row_means(self) -> np.ndarray:
        return _core.mds_squared_row_means_cuda(self.pointer, self.shape[0], self.shape[1], self.dtype,
                                                self.stream)

    def symmetry(self) -> tuple[float, float]:
        return _core.mds_symmetry_report_cuda(self.pointer, self.shape[0], self.dtype, self.stream)
