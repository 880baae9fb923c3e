"""Peak memory and time of a stage inside a worker process (Linux /proc), and the machine a run is on."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IMPLEMENTATIONS = ("isogan", "sklearn")
MODES = ("end_to_end", "stages")
STAGES = ("knn", "paths", "mds")
MIB = 1024.0 * 1024.0
# Seconds between two samples of the device memory in use during a CUDA fit.
GPU_SAMPLE_INTERVAL_S = 0.01


def _status_bytes(field_name: str) -> int:
    """Return a ``kB`` field of ``/proc/self/status`` (e.g. VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field_name} field; peak memory needs Linux")


def _trim_heap() -> None:
    """Give memory that malloc keeps after ``free`` back to the OS (glibc ``malloc_trim``), if available.

    Without this, heap memory freed by the warm-up run stays resident, is counted in the baseline,
    and is then reused uncounted by the measured run.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS; return whether the kernel allowed it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


@dataclass
class StageMeter:
    """Time and peak-memory recorder used inside a worker process.

    Attributes
    ----------
    baseline_bytes : int
        RSS before the first stage.
    peak_method : str
        'clear_refs' when VmHWM is reset per stage, 'lifetime_hwm' when it could not be.
    times_s : dict of str to float
        Wall time of each stage.
    peak_bytes : dict of str to int
        VmHWM during each stage minus ``baseline_bytes``.
    """

    baseline_bytes: int = 0
    peak_method: str = "clear_refs"
    times_s: dict[str, float] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        """Collect garbage, return free heap memory to the OS and record the baseline RSS."""
        gc.collect()
        _trim_heap()
        self.baseline_bytes = _status_bytes("VmRSS")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Measure the enclosed block as stage ``name``.

        Parameters
        ----------
        name : str
            Stage name recorded in ``times_s`` and ``peak_bytes``.
        """
        if not _reset_peak_rss():
            self.peak_method = "lifetime_hwm"
        start = time.perf_counter()
        yield
        self.times_s[name] = time.perf_counter() - start
        self.peak_bytes[name] = _status_bytes("VmHWM") - self.baseline_bytes


def machine_info() -> dict[str, Any]:
    """Describe the machine and software a benchmark ran on.

    Returns
    -------
    dict
        CPU model, logical CPUs usable by this process, RAM, load averages, thread-count
        environment variables and library versions.
    """
    import scipy
    import sklearn

    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "cpu_model": cpu_model,
        "cpus": len(os.sched_getaffinity(0)),
        "ram_gib": round(ram_bytes / 1024**3, 1),
        "load_average": list(os.getloadavg()),
        "thread_env": {name: os.environ[name] for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if name in os.environ},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "kernel": platform.release(),
    }


class DeviceMemorySampler:
    """Sample the CUDA device memory in use from a background thread while a block runs.

    Attributes
    ----------
    peak_bytes : int
        Largest device memory in use during the block minus the amount in use when it began.
    """

    def __init__(self, interval_s: float = GPU_SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._start_bytes = 0
        self._highest_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="isogan-gpu-memory", daemon=True)

    @staticmethod
    def _in_use_bytes() -> int:
        from isogan import _core

        free_bytes, total_bytes = _core.cuda_memory_info()
        return int(total_bytes) - int(free_bytes)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._highest_bytes = max(self._highest_bytes, self._in_use_bytes())

    def __enter__(self) -> DeviceMemorySampler:
        self._start_bytes = self._highest_bytes = self._in_use_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._highest_bytes = max(self._highest_bytes, self._in_use_bytes())
        self.peak_bytes = self._highest_bytes - self._start_bytes
