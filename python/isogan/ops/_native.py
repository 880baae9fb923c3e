"""Bridge from torch tensors to the pointer-taking kernels of :mod:`isogan._core`.

The native kernels know nothing about torch: they take raw addresses, sizes, the tensors'
``torch.dtype`` and, on CUDA, the device index and the caller's stream handle. This module turns tensors into those
arguments and says which (device, dtype) pairs have a native kernel.
"""

from __future__ import annotations

import torch

from isogan import _core

_CPU_DTYPES = (torch.float32, torch.float64)
_CUDA_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def native_built() -> bool:
    """Return whether this build of ``isogan._core`` contains the fused-op kernels."""
    return hasattr(_core, "ops_bias_act_cpu")


def native_supports(device: torch.device, dtype: torch.dtype) -> bool:
    """Return whether a native kernel exists for tensors of ``dtype`` on ``device``."""
    if not native_built():
        return False
    if device.type == "cpu":
        return dtype in _CPU_DTYPES
    if device.type == "cuda":
        return bool(_core.cuda_built()) and dtype in _CUDA_DTYPES
    return False


def supported_dtypes(device: torch.device) -> tuple[torch.dtype, ...]:
    """Return the floating dtypes the fused ops accept on ``device``."""
    return _CUDA_DTYPES if device.type == "cuda" else _CPU_DTYPES


def address(tensor: torch.Tensor | None) -> int:
    """Return the address of ``tensor``'s first element (0 for None)."""
    return 0 if tensor is None else int(tensor.data_ptr())


def cuda_stream(device: torch.device) -> int:
    """Return the handle of torch's current CUDA stream on ``device``."""
    return int(torch.cuda.current_stream(device).cuda_stream)


_PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)


def plain_eager(*tensors: torch.Tensor | None) -> bool:
    """Return whether a call may bypass the custom-op dispatcher.

    True only outside ``torch.compile`` tracing and when every tensor is a plain tensor or
    parameter (no fake, functional or other subclass), so that the kernel sees real memory.
    """
    if torch.compiler.is_compiling():
        return False
    return all(t is None or type(t) in _PLAIN_TENSOR_TYPES for t in tensors)


def needs_autograd(*tensors: torch.Tensor | None) -> bool:
    """Return whether autograd records an op on ``tensors``."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
