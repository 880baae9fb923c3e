"""Device, thread and progress policy: one place decides where a stage runs, on how many
threads, and whether it shows a progress bar.

Device
------
``device='cpu'`` runs on the CPU. ``device='cuda'`` runs a stage's CUDA kernels when a device is
usable (a RuntimeError naming the reason otherwise) and, until those kernels have been verified on
GPU hardware, warns once per stage with :class:`UnverifiedCudaWarning`. ``device='auto'`` picks
CUDA only for the stages listed in :data:`VERIFIED_ON_HARDWARE` (all four since an H200 run passed
them; benchmarks/RESULTS.md, section GPU) and not in :data:`AUTO_PREFERS_CPU` (the exact fit, which
measured faster on a 16-core CPU), and the CPU for the rest. A hardware run that passes a stage
turns on its entry here.

Threads
-------
Native kernels use OpenMP. Like scikit-learn's own OpenMP code, ``n_jobs=None`` uses every core
the OpenMP runtime offers, which ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits``
bound; an explicit ``n_jobs`` is honoured (joblib convention: -1 all cores, -2 all but one).

Progress
--------
A stage shows a tqdm bar when it is predicted to take more than :data:`PROGRESS_AFTER_SECONDS`
(or when the caller asks), from one cost model: seconds per edge relaxation of a shortest-path
thread.
"""

from __future__ import annotations

import logging
import sys
import warnings
from numbers import Integral
from typing import Any

from tqdm import tqdm

from isogan import _core

logger = logging.getLogger("isogan")

_DEVICES = ("auto", "cpu", "cuda")

#: Stages whose CUDA kernels have passed on GPU hardware; ``device='auto'`` uses CUDA only for them.
#: All four passed their GPU tests (against the CPU kernels and scipy) and compute-sanitizer's
#: memcheck and racecheck on an NVIDIA H200 on 2026-12-04 (benchmarks/RESULTS.md, section GPU).
VERIFIED_ON_HARDWARE: dict[str, bool] = {"knn": True, "paths": True, "mds": True, "landmark": True}

#: Verified stages that ``device='auto'`` still runs on the CPU, with the measurement that says why
#: (``device='cuda'`` runs them on the GPU without a warning). 'paths' decides the exact fit, whose
#: shortest paths and eigensolve then stay on the CPU too.
AUTO_PREFERS_CPU: dict[str, str] = {
    "paths": "the exact fit measured faster on the CPU: swiss roll N=20k float32 1.18 s on 16 cores "
             "against 2.30 s on an H200 (Floyd-Warshall's N^3 against Dijkstra's N E log N)",
}

#: A stage predicted to run longer than this shows a progress bar.
PROGRESS_AFTER_SECONDS = 2.0

# Seconds per edge relaxation of one shortest-path thread on a current x86 core: the cost model
# behind every progress decision (kNN and MDS are a small fraction of an Isomap fit).
SECONDS_PER_RELAXATION = 1e-8

_warned_stages: set[str] = set()


class UnverifiedCudaWarning(UserWarning):
    """A stage runs CUDA kernels that have not yet been verified on GPU hardware."""


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


def check_device(device: Any) -> str:
    """Validate a ``device`` argument without deciding anything.

    Raises
    ------
    ValueError
        If ``device`` is not 'auto', 'cpu' or 'cuda'.
    """
    if not isinstance(device, str) or device not in _DEVICES:
        raise ValueError(f"The 'device' parameter must be a str among {set(_DEVICES)}. Got {device!r} instead.")
    return device


def resolve_device(device: str, stage: str = "landmark") -> str:
    """Map a user ``device`` argument to where ``stage`` runs.

    Parameters
    ----------
    device : {'auto', 'cpu', 'cuda'}
        'auto' picks CUDA when usable and verified on hardware for ``stage``, else the CPU.
    stage : {'knn', 'paths', 'mds', 'landmark'}, default='landmark'
        The stage asking.

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

    Warns
    -----
    UnverifiedCudaWarning
        Once per stage, when ``device='cuda'`` runs kernels not yet verified on hardware.
    """
    check_device(device)
    if device == "cpu":
        return "cpu"
    status = _core.cuda_status()
    if not status["available"]:
        if device == "cuda":
            raise RuntimeError(
                f"device='cuda' was requested but CUDA is not usable: {status['reason']}. Use device='cpu'."
            )
        logger.debug("device='auto' falls back to the CPU: %s", status["reason"])
        return "cpu"
    if device == "auto" and not VERIFIED_ON_HARDWARE.get(stage, False):
        logger.debug("device='auto' falls back to the CPU: the CUDA kernels of the %s stage are not yet verified "
                     "on GPU hardware", stage)
        return "cpu"
    if device == "auto" and stage in AUTO_PREFERS_CPU:
        logger.debug("device='auto' runs the %s stage on the CPU: %s", stage, AUTO_PREFERS_CPU[stage])
        return "cpu"
    if not VERIFIED_ON_HARDWARE.get(stage, False) and stage not in _warned_stages:
        _warned_stages.add(stage)
        warnings.warn(
            f"isogan's CUDA kernels for the {stage} stage have not yet been verified on GPU hardware; "
            "check results against device='cpu'.",
            UnverifiedCudaWarning,
            stacklevel=3,
        )
    return "cuda"


def threads(n_jobs: Any) -> int:
    """Threads a native kernel runs on for a user ``n_jobs``.

    Parameters
    ----------
    n_jobs : int or None
        None: every core OpenMP offers (bounded by ``OMP_NUM_THREADS`` and
        ``threadpoolctl.threadpool_limits``); a positive int: that many; -1 all cores, -2 all but
        one, and so on.

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    ValueError
        If ``n_jobs`` is not an int or None, or is 0.
    """
    if n_jobs is None:
        return int(_core.resolve_threads(0))
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral):
        raise ValueError(f"The 'n_jobs' parameter must be an int or None. Got {n_jobs!r} instead.")
    if n_jobs == 0:
        raise ValueError("The 'n_jobs' parameter must not be 0 (None uses all cores, -1 too).")
    return int(_core.resolve_threads(int(n_jobs)))


def show_progress(expected_seconds: float, progress: bool | None = None) -> bool:
    """Whether a stage shows a progress bar.

    Parameters
    ----------
    expected_seconds : float
        The stage's predicted wall-clock time (see :func:`relaxation_seconds`).
    progress : bool or None, default=None
        The caller's choice; None decides from ``expected_seconds``.
    """
    return expected_seconds > PROGRESS_AFTER_SECONDS if progress is None else bool(progress)


def relaxation_seconds(n_sources: float, n_nodes: int, n_edges: int, n_threads: int) -> float:
    """Predicted seconds of ``n_sources`` shortest-path searches over a graph, on ``n_threads``."""
    return float(n_sources) * (n_edges + n_nodes) * SECONDS_PER_RELAXATION / max(1, n_threads)


def progress_bar(total: int, desc: str, show: bool, unit: str = "it") -> tqdm:
    """The one progress-bar style of isogan: tqdm on stderr, cleared when done."""
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not show, leave=False)
