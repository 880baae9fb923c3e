"""Device policy: which backend runs a call, and whether its memory fits."""

from __future__ import annotations

import logging
import os

from isogan import _core

logger = logging.getLogger("isogan")

_DEVICES = ("auto", "cpu", "cuda")


def cuda_built() -> bool:
    """Return whether this build of isogan contains the CUDA kernels.

    Returns
    -------
    bool
        True when nvcc was found when the package was built.
    """
    return bool(_core.cuda_built())


def cuda_available() -> bool:
    """Return whether a CUDA device is usable by isogan right now.

    Returns
    -------
    bool
        True when CUDA kernels are built, a driver new enough for them is loaded and at least
        one device is visible.
    """
    return bool(_core.cuda_status()["available"])


def cuda_unavailable_reason() -> str:
    """Return why CUDA is not usable ('' when it is)."""
    return str(_core.cuda_status()["reason"])


def resolve_device(device: str) -> str:
    """Map a user ``device`` argument to the backend that runs the call.

    Parameters
    ----------
    device : {'auto', 'cpu', 'cuda'}
        'auto' picks CUDA when usable and otherwise the CPU.

    Returns
    -------
    str
        'cpu' or 'cuda'.

    Raises
    ------
    ValueError
        If ``device`` is not one of the accepted strings.
    RuntimeError
        If ``device='cuda'`` and no CUDA device is usable; the message gives the reason.
    """
    if not isinstance(device, str) or device not in _DEVICES:
        raise ValueError(f"The 'device' parameter must be a str among {set(_DEVICES)}. Got {device!r} instead.")
    if device == "cpu":
        return "cpu"
    status = _core.cuda_status()
    if status["available"]:
        return "cuda"
    if device == "cuda":
        raise RuntimeError(f"device='cuda' was requested but CUDA is not usable: {status['reason']}. Use device='cpu'.")
    logger.debug("device='auto' falls back to the CPU: %s", status["reason"])
    return "cpu"


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
