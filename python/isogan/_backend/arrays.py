"""GPU array interop: read torch CUDA tensors, CuPy arrays and isogan DeviceArrays in place.

Native CUDA entry points take raw device pointers (``int``) and a CUDA stream handle; this module
turns a GPU array into those without a host round trip (``__cuda_array_interface__``, which torch,
CuPy and :class:`isogan.DeviceArray` implement) and allocates outputs with the input's own library,
so a torch tensor in gives a torch tensor out on the same device and stream. isogan's own
:class:`~isogan.DeviceArray` needs neither torch nor CuPy.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, issparse

from isogan import _core

DeviceArray = _core.DeviceArray


@dataclass(frozen=True)
class DeviceArrayView:
    """A borrowed view of a C-contiguous GPU array.

    Attributes
    ----------
    pointer : int
        Device address of the first element.
    shape : tuple of int
        Extents.
    dtype : numpy.dtype
        Element type.
    stream : int
        CUDA stream handle the producing library uses now (0 = legacy default stream).
    """

    pointer: int
    shape: tuple[int, ...]
    dtype: np.dtype
    stream: int


def _is_torch_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_device_array(x: Any) -> bool:
    """Return whether ``x`` lives on a CUDA device (torch CUDA tensor, CuPy array, ...)."""
    if _is_torch_tensor(x):
        return bool(x.is_cuda)
    return hasattr(x, "__cuda_array_interface__")


def as_c_contiguous_device(x: Any) -> Any:
    """Return a GPU array as a C-contiguous array of its own library (a device copy only if it is not).

    The estimators accept any strides, as scikit-learn's ``check_array`` does on the host; the
    native entry points (:func:`device_array_view`) never copy and refuse other layouts.

    Parameters
    ----------
    x : torch.Tensor or cupy.ndarray
        A CUDA array.

    Returns
    -------
    torch.Tensor or cupy.ndarray
        ``x`` itself when already C-contiguous, else a C-contiguous copy on the same device.
    """
    if _is_torch_tensor(x):
        return x.contiguous()
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy.ascontiguousarray(x)
    return x


def device_array_view(x: Any) -> DeviceArrayView:
    """Describe a GPU array for a native call, requiring C-contiguity (never copying silently).

    Parameters
    ----------
    x : torch.Tensor or cupy.ndarray
        A CUDA array.

    Returns
    -------
    DeviceArrayView

    Raises
    ------
    ValueError
        If ``x`` is not C-contiguous; call ``.contiguous()`` / ``cupy.ascontiguousarray`` first.
    """
    interface = x.__cuda_array_interface__
    shape = tuple(int(s) for s in interface["shape"])
    dtype = np.dtype(interface["typestr"])
    strides = interface.get("strides")
    if strides is not None:
        expected = []
        step = dtype.itemsize
        for extent in reversed(shape):
            expected.append(step)
            step *= extent
        if tuple(strides) != tuple(reversed(expected)) and int(np.prod(shape)) > 1:
            raise ValueError("GPU input must be C-contiguous; call .contiguous() (torch) or cupy.ascontiguousarray first.")
    return DeviceArrayView(int(interface["data"][0]), shape, dtype, current_stream(x))


def current_stream(like: Any) -> int:
    """Return the CUDA stream handle that ``like``'s library is using on ``like``'s device."""
    if isinstance(like, DeviceArray):
        return int(like.stream)
    if _is_torch_tensor(like):
        import torch

        return int(torch.cuda.current_stream(like.device).cuda_stream)
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(like, cupy.ndarray):
        # CuPy's current stream is per device: ask on the array's device, which the kernels run on.
        with cupy.cuda.Device(like.device.id):
            return int(cupy.cuda.get_current_stream().ptr)
    if cupy is not None:
        return int(cupy.cuda.get_current_stream().ptr)
    return 0


def device_empty(like: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """Allocate an uninitialised C-contiguous array with ``like``'s library, on ``like``'s device.

    Parameters
    ----------
    like : torch.Tensor, cupy.ndarray or DeviceArray
        A GPU array whose library and device the result shares.
    shape : tuple of int
        Extents of the result.
    dtype : numpy.dtype
        Element type of the result.

    Returns
    -------
    torch.Tensor, cupy.ndarray or DeviceArray
    """
    if isinstance(like, DeviceArray):
        return DeviceArray(shape, np.dtype(dtype), like.stream)
    if _is_torch_tensor(like):
        import torch

        torch_dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
                       np.dtype(np.int64): torch.int64, np.dtype(np.int32): torch.int32}[np.dtype(dtype)]
        return torch.empty(shape, dtype=torch_dtype, device=like.device)
    import cupy

    with cupy.cuda.Device(like.device.id):
        return cupy.empty(shape, dtype=dtype)


def to_host(x: Any) -> np.ndarray:
    """Copy a GPU array (torch, CuPy or DeviceArray) into a new numpy array.

    Parameters
    ----------
    x : torch.Tensor, cupy.ndarray or DeviceArray
        A CUDA array.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype.
    """
    if isinstance(x, DeviceArray):
        return x.to_host()
    if _is_torch_tensor(x):
        return x.detach().cpu().numpy()
    return x.get()


def from_host_like(host: np.ndarray, like: Any) -> Any:
    """Copy a host array onto ``like``'s device with ``like``'s library (torch, CuPy or DeviceArray).

    Parameters
    ----------
    host : numpy.ndarray
        Data to copy.
    like : torch.Tensor, cupy.ndarray or DeviceArray
        A GPU array whose library, device (and, for a DeviceArray, stream) the copy shares.

    Returns
    -------
    torch.Tensor, cupy.ndarray or DeviceArray
    """
    host = np.ascontiguousarray(host)
    if isinstance(like, DeviceArray):
        return DeviceArray.from_host(host, like.stream)
    if _is_torch_tensor(like):
        import torch

        return torch.from_numpy(host).to(like.device)
    import cupy

    with cupy.cuda.Device(like.device.id):
        return cupy.asarray(host)


def csr_to_host(graph: Any) -> Any:
    """A neighbour graph as a scipy CSR matrix (the kNN stage gives GPU input a GPU CSR)."""
    if issparse(graph):
        return graph
    if hasattr(graph, "crow_indices"):
        # torch sparse CSR tensor
        return csr_matrix(
            (
                graph.values().detach().cpu().numpy(),
                graph.col_indices().cpu().numpy(),
                graph.crow_indices().cpu().numpy(),
            ),
            shape=tuple(graph.shape),
        )
    # cupyx.scipy.sparse.csr_matrix
    return graph.get()


def as_numpy(array: Any) -> np.ndarray:
    """Return a stage result as a numpy array (fitted attributes are numpy, like scikit-learn)."""
    return to_host(array) if is_device_array(array) else np.asarray(array)
