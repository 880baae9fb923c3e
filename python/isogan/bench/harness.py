"""Measure isogan against scikit-learn: wall time, peak memory and parity, one fresh process per run.

This module is shared by ``isogan bench`` and the pytest-benchmark files in ``benchmarks/``.

How a run is measured
---------------------
Every measured run (one implementation, one mode, one size) happens in a fresh Python process started
with ``python -m isogan.bench.harness``, so allocator state, caches and memory held by an earlier run
never leak into the next one. Inside that process:

1. the same pipeline runs once on a small swiss roll (:data:`WARMUP_SAMPLES` points), so lazy imports,
   OpenMP/BLAS thread pools and first-call initialisation are paid before measuring, for both
   implementations alike; then the measured swiss roll is generated;
2. garbage is collected, glibc's ``malloc_trim(0)`` hands freed heap memory back to the OS, and the
   resident set size (``VmRSS``) is recorded as the *baseline* (interpreter, libraries, input array);
3. for each stage, the kernel's peak-RSS counter of the process is reset to the current RSS by writing
   ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0), the stage runs under :func:`time.perf_counter`,
   and ``VmHWM`` (peak resident set size) is read from ``/proc/self/status``.

The reported peak memory of a stage is ``VmHWM`` during that stage minus the baseline. It counts every
byte the pipeline touched and still held at its peak, native (C++, BLAS) allocations included, and
nothing of the libraries' own import footprint. Where ``clear_refs`` cannot be written, ``VmHWM`` is not reset and
the peak is the process's lifetime peak minus the baseline (an upper bound); the method used is recorded
with every result (``peak_method``).

Parity is the relative max error ``max|A - B| / max|B|`` with scikit-learn's result as ``B``: of the
embeddings (end to end and after the mds stage), of each row's sorted k neighbour distances (knn
stage), and of :data:`PATH_CHECK_ROWS` evenly spaced rows of the geodesic distance matrix (paths
stage; the full N x N matrix is not written to disk).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

IMPLEMENTATIONS = ("isogan", "sklearn")
MODES = ("end_to_end", "stages")
STAGES = ("knn", "paths", "mds")
# Points of the warm-up run done in each worker before it measures (> 200, so KernelPCA takes its
# ARPACK path, as at the measured sizes).
WARMUP_SAMPLES = 256
# Rows of the geodesic distance matrix kept for the paths-stage parity check.
PATH_CHECK_ROWS = 16
MIB = 1024.0 * 1024.0

# Columns of results.csv, in order.
CSV_COLUMNS = (
    "n_samples",
    "dtype",
    "stage",
    "isogan_time_s",
    "isogan_time_min_s",
    "sklearn_time_s",
    "sklearn_time_min_s",
    "speedup",
    "isogan_peak_mib",
    "sklearn_peak_mib",
    "memory_ratio",
    "parity_error",
    "load_1min",
)


def swiss_roll_with_coordinates(
    n_samples: int, dtype: str | np.dtype = "float64", random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Return the benchmark swiss roll and its true 2-D coordinates.

    Parameters
    ----------
    n_samples : int
        Number of points.
    dtype : str or numpy.dtype, default='float64'
        dtype of the returned points.
    random_state : int, default=0
        Seed of :func:`sklearn.datasets.make_swiss_roll` (no noise).

    Returns
    -------
    points : numpy.ndarray of shape (n_samples, 3)
        C-contiguous points.
    coordinates : numpy.ndarray of shape (n_samples, 2), float64
        Where each point lies on the unrolled sheet: arc length along the spiral
        (``t -> (t cos t, t sin t)``), and height.
    """
    from sklearn.datasets import make_swiss_roll

    points, spiral_angle = make_swiss_roll(n_samples=n_samples, noise=0.0, random_state=random_state)
    # Arc length of the spiral (t cos t, t sin t) from 0 to t.
    arc_length = 0.5 * (spiral_angle * np.sqrt(1.0 + spiral_angle * spiral_angle) + np.arcsinh(spiral_angle))
    coordinates = np.column_stack([arc_length, points[:, 1]])
    return np.ascontiguousarray(points, dtype=dtype), coordinates


def swiss_roll(n_samples: int, dtype: str | np.dtype = "float64", random_state: int = 0) -> np.ndarray:
    """Return the swiss roll used by every benchmark.

    Parameters
    ----------
    n_samples : int
        Number of points.
    dtype : str or numpy.dtype, default='float64'
        dtype of the returned array.
    random_state : int, default=0
        Seed of :func:`sklearn.datasets.make_swiss_roll` (no noise).

    Returns
    -------
    numpy.ndarray of shape (n_samples, 3)
        C-contiguous points.
    """
    return swiss_roll_with_coordinates(n_samples, dtype, random_state)[0]


def residual_variance(embedding: np.ndarray, coordinates: np.ndarray, n_points: int = 2000) -> float:
    """Return ``1 - r**2`` between pairwise distances of an embedding and of the true coordinates.

    The usual Isomap quality measure (Tenenbaum et al. 2000): ``r`` is the correlation of the
    pairwise Euclidean distances of the embedding with those of the true coordinates, on at most
    ``n_points`` points drawn with a fixed seed (so every N costs the same).

    Parameters
    ----------
    embedding : numpy.ndarray of shape (n_samples, n_components)
        Embedded points.
    coordinates : numpy.ndarray of shape (n_samples, n_true)
        True coordinates (e.g. from :func:`swiss_roll_with_coordinates`).
    n_points : int, default=2000
        Points used (all when there are fewer).

    Returns
    -------
    float
        0 for an embedding isometric to the truth up to scale; 1 for one unrelated to it.

    Examples
    --------
    >>> coordinates = np.random.default_rng(0).normal(size=(50, 2))
    >>> round(residual_variance(3.0 * coordinates + 1.0, coordinates), 12)
    0.0
    """
    from scipy.spatial.distance import pdist

    sample = np.random.default_rng(0).choice(len(embedding), min(n_points, len(embedding)), replace=False)
    correlation = np.corrcoef(
        pdist(np.asarray(embedding[sample], dtype=np.float64)), pdist(np.asarray(coordinates[sample], dtype=np.float64))
    )[0, 1]
    return float(1.0 - correlation * correlation)


def relative_max_error(result: np.ndarray, reference: np.ndarray) -> float:
    """Return ``max|result - reference| / max|reference|`` computed in float64.

    Parameters
    ----------
    result : numpy.ndarray
        Values to check.
    reference : numpy.ndarray
        Reference values, same shape as ``result``.

    Returns
    -------
    float
        The relative max error; ``inf`` when the shapes differ, when ``result`` has non-finite values
        where ``reference`` is finite, or when ``reference`` is all zero and ``result`` is not.

    Examples
    --------
    >>> relative_max_error(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    0.2
    """
    result = np.asarray(result, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if result.shape != reference.shape:
        return float("inf")
    if not np.array_equal(np.isfinite(result), np.isfinite(reference)):
        return float("inf")
    finite = np.isfinite(reference)
    if not finite.any():
        return 0.0
    scale = float(np.max(np.abs(reference[finite])))
    diff = float(np.max(np.abs(result[finite] - reference[finite])))
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale


def sorted_neighbor_distances(graph: Any, n_neighbors: int) -> np.ndarray:
    """Return each row's ``n_neighbors`` smallest stored distances, sorted (a tie-proof knn check).

    Parameters
    ----------
    graph : scipy.sparse matrix of shape (N, N)
        Neighbour graph with distances as stored values.
    n_neighbors : int
        Distances kept per row; rows with fewer stored values are padded with ``inf``.

    Returns
    -------
    numpy.ndarray of shape (N, n_neighbors), float64
    """
    import scipy.sparse

    csr = scipy.sparse.csr_matrix(graph)
    csr.sort_indices()
    rows = np.full((csr.shape[0], n_neighbors), np.inf)
    for row in range(csr.shape[0]):
        values = np.sort(np.asarray(csr.data[csr.indptr[row] : csr.indptr[row + 1]], dtype=np.float64))
        rows[row, : min(n_neighbors, values.size)] = values[:n_neighbors]
    return rows


def path_check_rows(n_samples: int) -> np.ndarray:
    """Return the indices of the geodesic-matrix rows kept for the paths parity check.

    Parameters
    ----------
    n_samples : int
        Number of points.

    Returns
    -------
    numpy.ndarray of int64
        At most :data:`PATH_CHECK_ROWS` evenly spaced row indices.
    """
    return np.unique(np.linspace(0, n_samples - 1, num=min(PATH_CHECK_ROWS, n_samples)).astype(np.int64))


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


@dataclass
class PipelineOutput:
    """What a measured pipeline leaves for the parity checks (extracted after measuring).

    Attributes
    ----------
    embedding : numpy.ndarray of shape (N, n_components)
    graph : scipy.sparse matrix or None
        The neighbour graph (stages mode only).
    dist_matrix : numpy.ndarray of shape (N, N) or None
        The geodesic distances (stages mode only).
    """

    embedding: np.ndarray
    graph: Any = None
    dist_matrix: np.ndarray | None = None


@dataclass
class RunParams:
    """Parameters shared by every pipeline run.

    Attributes
    ----------
    n_neighbors : int
    n_components : int
    device : str
        isogan's ``device`` argument; scikit-learn always runs on the CPU.
    """

    n_neighbors: int = 10
    n_components: int = 2
    device: str = "auto"


def isogan_end_to_end(points: np.ndarray, params: RunParams, meter: StageMeter) -> PipelineOutput:
    """Run ``isogan.Isomap(...).fit_transform`` as one measured stage 'end_to_end'.

    Parameters
    ----------
    points : numpy.ndarray of shape (N, D)
        Input points.
    params : RunParams
        Neighbours, components and device.
    meter : StageMeter
        Records the time and peak memory of each stage.

    Returns
    -------
    PipelineOutput
        The embedding.
    """
    import isogan

    estimator = isogan.Isomap(n_neighbors=params.n_neighbors, n_components=params.n_components, device=params.device)
    with meter.stage("end_to_end"):
        embedding = estimator.fit_transform(points)
    return PipelineOutput(embedding=np.asarray(embedding))


def sklearn_end_to_end(points: np.ndarray, params: RunParams, meter: StageMeter) -> PipelineOutput:
    """Run ``sklearn.manifold.Isomap(...).fit_transform`` as one measured stage 'end_to_end'.

    Parameters
    ----------
    points : numpy.ndarray of shape (N, D)
        Input points.
    params : RunParams
        Neighbours, components and device.
    meter : StageMeter
        Records the time and peak memory of each stage.

    Returns
    -------
    PipelineOutput
        The embedding.
    """
    from sklearn.manifold import Isomap

    estimator = Isomap(n_neighbors=params.n_neighbors, n_components=params.n_components)
    with meter.stage("end_to_end"):
        embedding = estimator.fit_transform(points)
    return PipelineOutput(embedding=np.asarray(embedding))


def isogan_stages(points: np.ndarray, params: RunParams, meter: StageMeter) -> PipelineOutput:
    """Run isogan's public stage functions one after the other, each a measured stage.

    Parameters
    ----------
    points : numpy.ndarray of shape (N, D)
        Input points.
    params : RunParams
        Neighbours, components and device.
    meter : StageMeter
        Records the time and peak memory of each stage.

    Returns
    -------
    PipelineOutput
        The embedding, the neighbour graph and the geodesic distances.
    """
    import isogan

    with meter.stage("knn"):
        graph = isogan.knn_graph(points, n_neighbors=params.n_neighbors, device=params.device)
    with meter.stage("paths"):
        dist_matrix = isogan.geodesic_distances(graph, device=params.device)
    with meter.stage("mds"):
        embedding, _, _ = isogan.classical_mds(dist_matrix, n_components=params.n_components, device=params.device)
    return PipelineOutput(embedding=np.asarray(embedding), graph=graph, dist_matrix=np.asarray(dist_matrix))


def sklearn_stages(points: np.ndarray, params: RunParams, meter: StageMeter) -> PipelineOutput:
    """Run the pieces ``sklearn.manifold.Isomap`` is made of, as its ``_fit_transform`` calls them.

    knn: ``NearestNeighbors.fit`` + ``kneighbors_graph(mode='distance')``; paths:
    ``scipy.sparse.csgraph.shortest_path(method='auto', directed=False)`` (cast back to float32 for
    float32 input, as Isomap does); mds: ``G = -0.5 * D**2`` and ``KernelPCA(kernel='precomputed')``.
    The connected-components fix is not run: the swiss roll's k=10 graph is connected.

    Parameters
    ----------
    points : numpy.ndarray of shape (N, D)
        Input points.
    params : RunParams
        Neighbours, components and device.
    meter : StageMeter
        Records the time and peak memory of each stage.

    Returns
    -------
    PipelineOutput
        The embedding, the neighbour graph and the geodesic distances.
    """
    from scipy.sparse.csgraph import shortest_path
    from sklearn.decomposition import KernelPCA
    from sklearn.neighbors import NearestNeighbors, kneighbors_graph

    with meter.stage("knn"):
        neighbors = NearestNeighbors(n_neighbors=params.n_neighbors).fit(points)
        graph = kneighbors_graph(neighbors, params.n_neighbors, mode="distance")
    with meter.stage("paths"):
        dist_matrix = shortest_path(graph, method="auto", directed=False)
        if points.dtype == np.float32:
            dist_matrix = dist_matrix.astype(np.float32, copy=False)
    with meter.stage("mds"):
        kernel = dist_matrix**2
        kernel *= -0.5
        embedding = KernelPCA(n_components=params.n_components, kernel="precomputed").fit_transform(kernel)
    return PipelineOutput(embedding=np.asarray(embedding), graph=graph, dist_matrix=dist_matrix)


PIPELINES: dict[tuple[str, str], Callable[[np.ndarray, RunParams, StageMeter], PipelineOutput]] = {
    ("isogan", "end_to_end"): isogan_end_to_end,
    ("isogan", "stages"): isogan_stages,
    ("sklearn", "end_to_end"): sklearn_end_to_end,
    ("sklearn", "stages"): sklearn_stages,
}


@dataclass
class Measurement:
    """One measured run (one implementation, mode, size and dtype) in one fresh process.

    Attributes
    ----------
    implementation : str
        'isogan' or 'sklearn'.
    mode : str
        'end_to_end' or 'stages'.
    n_samples : int
    dtype : str
    times_s : dict of str to float
        Wall time per stage ('end_to_end', or 'knn', 'paths', 'mds' and their sum 'total').
    peak_bytes : dict of str to int
        Peak RSS above baseline per stage ('total' is the maximum over stages).
    baseline_bytes : int
        RSS of the worker before measuring.
    peak_method : str
        See :class:`StageMeter`.
    load_1min : float
        1-minute load average when the worker started.
    arrays_path : str
        ``.npz`` with the parity-check arrays ('embedding', and in stages mode 'knn_distances',
        'path_rows').
    """

    implementation: str
    mode: str
    n_samples: int
    dtype: str
    times_s: dict[str, float]
    peak_bytes: dict[str, int]
    baseline_bytes: int
    peak_method: str
    load_1min: float
    arrays_path: str


def run_worker(
    implementation: str,
    mode: str,
    n_samples: int,
    dtype: str,
    params: RunParams,
    output_prefix: str | os.PathLike[str],
) -> Measurement:
    """Measure one pipeline in this process (the body of a worker process).

    Parameters
    ----------
    implementation : {'isogan', 'sklearn'}
    mode : {'end_to_end', 'stages'}
    n_samples : int
        Size of the swiss roll.
    dtype : {'float64', 'float32'}
    params : RunParams
    output_prefix : path-like
        The parity arrays are written to ``output_prefix + '.npz'``.

    Returns
    -------
    Measurement
    """
    pipeline = PIPELINES[(implementation, mode)]
    load_1min = os.getloadavg()[0]
    pipeline(swiss_roll(WARMUP_SAMPLES, dtype, random_state=1), params, StageMeter())
    points = swiss_roll(n_samples, dtype)
    meter = StageMeter()
    meter.start()
    output = pipeline(points, params, meter)
    times_s = dict(meter.times_s)
    peak_bytes = dict(meter.peak_bytes)
    if mode == "stages":
        times_s["total"] = sum(times_s[stage] for stage in STAGES)
        peak_bytes["total"] = max(peak_bytes[stage] for stage in STAGES)
    arrays = {"embedding": output.embedding}
    if output.graph is not None:
        arrays["knn_distances"] = sorted_neighbor_distances(output.graph, params.n_neighbors)
    if output.dist_matrix is not None:
        arrays["path_rows"] = np.asarray(output.dist_matrix[path_check_rows(n_samples)], dtype=np.float64)
    arrays_path = f"{os.fspath(output_prefix)}.npz"
    np.savez(arrays_path, **arrays)
    return Measurement(
        implementation=implementation,
        mode=mode,
        n_samples=n_samples,
        dtype=str(np.dtype(dtype)),
        times_s=times_s,
        peak_bytes=peak_bytes,
        baseline_bytes=meter.baseline_bytes,
        peak_method=meter.peak_method,
        load_1min=load_1min,
        arrays_path=arrays_path,
    )


def _child_environment() -> dict[str, str]:
    """Return the environment of a worker: ours, with this isogan first on PYTHONPATH."""
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    inherited = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = package_parent + (os.pathsep + inherited if inherited else "")
    return env


def measure(
    implementation: str,
    mode: str,
    n_samples: int,
    dtype: str,
    params: RunParams,
    workdir: str | os.PathLike[str],
    timeout_s: float | None = None,
) -> Measurement:
    """Measure one pipeline in a fresh worker process and return its measurement.

    Parameters
    ----------
    implementation : {'isogan', 'sklearn'}
    mode : {'end_to_end', 'stages'}
    n_samples : int
    dtype : {'float64', 'float32'}
    params : RunParams
    workdir : path-like
        Directory for the worker's result files.
    timeout_s : float, optional
        Kill the worker after this many seconds.

    Returns
    -------
    Measurement

    Raises
    ------
    ValueError
        If ``implementation`` or ``mode`` is unknown.
    RuntimeError
        If the worker fails; the message ends with its stderr.
    """
    if (implementation, mode) not in PIPELINES:
        raise ValueError(f"Unknown implementation/mode {implementation!r}/{mode!r}; expected one of {sorted(PIPELINES)}")
    handle, result_path = tempfile.mkstemp(prefix=f"{implementation}-{mode}-{n_samples}-{dtype}-", suffix=".json", dir=workdir)
    os.close(handle)
    command = [
        sys.executable,
        "-m",
        "isogan.bench.harness",
        "--implementation", implementation,
        "--mode", mode,
        "--n-samples", str(n_samples),
        "--dtype", str(dtype),
        "--n-neighbors", str(params.n_neighbors),
        "--n-components", str(params.n_components),
        "--device", params.device,
        "--result", result_path,
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, env=_child_environment(), timeout=timeout_s, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{implementation} {mode} N={n_samples} {dtype} failed (exit status {completed.returncode}):\n"
            + completed.stderr[-4000:]
        )
    with open(result_path, encoding="utf-8") as result_file:
        return Measurement(**json.load(result_file))


@dataclass
class BenchmarkConfig:
    """What ``isogan bench`` measures.

    Attributes
    ----------
    sizes : sequence of int
    dtypes : sequence of str
    params : RunParams
    stages : bool
        Also measure per stage (a second pair of worker runs per size).
    sklearn : bool
        Measure scikit-learn at all.
    sklearn_max_size : int or None
        Skip scikit-learn above this size.
    repeat : int
        Worker runs per implementation and mode (interleaved isogan/sklearn); times are medians.
    """

    sizes: Sequence[int] = (2000, 4000, 8000, 16000)
    dtypes: Sequence[str] = ("float64",)
    params: RunParams = field(default_factory=RunParams)
    stages: bool = False
    sklearn: bool = True
    sklearn_max_size: int | None = None
    repeat: int = 1


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _ratio(numerator: float, denominator: float) -> float:
    if np.isnan(numerator) or np.isnan(denominator) or denominator <= 0:
        return float("nan")
    return numerator / denominator


def _parity(isogan_runs: list[Measurement], sklearn_runs: list[Measurement], stage: str) -> float:
    """Parity error of ``stage`` between the first isogan and first sklearn run (NaN if either is missing)."""
    if not isogan_runs or not sklearn_runs:
        return float("nan")
    key = {"knn": "knn_distances", "paths": "path_rows"}.get(stage, "embedding")
    with np.load(isogan_runs[0].arrays_path) as ours, np.load(sklearn_runs[0].arrays_path) as theirs:
        return relative_max_error(ours[key], theirs[key])


def summarize(n_samples: int, dtype: str, mode: str, isogan_runs: list[Measurement], sklearn_runs: list[Measurement]) -> list[dict[str, Any]]:
    """Turn the runs of one size, dtype and mode into result rows (one per stage).

    Parameters
    ----------
    n_samples : int
    dtype : str
    mode : {'end_to_end', 'stages'}
    isogan_runs, sklearn_runs : list of Measurement
        Repeats of each implementation; ``sklearn_runs`` may be empty.

    Returns
    -------
    list of dict
        Rows with the keys of :data:`CSV_COLUMNS`.
    """
    stage_names = ("end_to_end",) if mode == "end_to_end" else (*STAGES, "total")
    loads = [run.load_1min for run in (*isogan_runs, *sklearn_runs)]
    rows = []
    for stage in stage_names:
        isogan_times = [run.times_s[stage] for run in isogan_runs]
        sklearn_times = [run.times_s[stage] for run in sklearn_runs]
        isogan_peak = _median([run.peak_bytes[stage] / MIB for run in isogan_runs])
        sklearn_peak = _median([run.peak_bytes[stage] / MIB for run in sklearn_runs])
        isogan_time = _median(isogan_times)
        sklearn_time = _median(sklearn_times)
        rows.append(
            {
                "n_samples": n_samples,
                "dtype": dtype,
                "stage": stage,
                "isogan_time_s": isogan_time,
                "isogan_time_min_s": min(isogan_times, default=float("nan")),
                "sklearn_time_s": sklearn_time,
                "sklearn_time_min_s": min(sklearn_times, default=float("nan")),
                "speedup": _ratio(sklearn_time, isogan_time),
                "isogan_peak_mib": isogan_peak,
                "sklearn_peak_mib": sklearn_peak,
                "memory_ratio": _ratio(isogan_peak, sklearn_peak),
                "parity_error": _parity(isogan_runs, sklearn_runs, stage),
                "load_1min": _median(loads),
            }
        )
    return rows


@dataclass
class BenchmarkResult:
    """Everything one benchmark produced.

    Attributes
    ----------
    rows : list of dict
        Summary rows (see :func:`summarize`).
    measurements : list of Measurement
        Every successful worker run.
    errors : list of dict
        Failed worker runs: implementation, mode, n_samples, dtype and the error message.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def run_benchmark(
    config: BenchmarkConfig,
    workdir: str | os.PathLike[str],
    progress: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Measure every size, dtype and mode of ``config``.

    A worker that fails (for example out of memory at a large N) is recorded in
    :attr:`BenchmarkResult.errors` and its cells of the table stay empty; the benchmark goes on.

    Parameters
    ----------
    config : BenchmarkConfig
    workdir : path-like
        Directory for the workers' files.
    progress : callable, optional
        Called with a one-line message before each worker run and after each failure.

    Returns
    -------
    BenchmarkResult
    """
    modes = ("end_to_end", "stages") if config.stages else ("end_to_end",)
    result = BenchmarkResult()
    for dtype in config.dtypes:
        for n_samples in config.sizes:
            with_sklearn = config.sklearn and (config.sklearn_max_size is None or n_samples <= config.sklearn_max_size)
            implementations = IMPLEMENTATIONS if with_sklearn else ("isogan",)
            for mode in modes:
                runs: dict[str, list[Measurement]] = {name: [] for name in IMPLEMENTATIONS}
                for repeat_index in range(config.repeat):
                    for implementation in implementations:
                        if progress is not None:
                            progress(f"{implementation:7s} {mode:10s} N={n_samples:<7d} {dtype} run {repeat_index + 1}/{config.repeat}")
                        try:
                            run = measure(implementation, mode, n_samples, dtype, config.params, workdir)
                        except RuntimeError as error:
                            result.errors.append(
                                {"implementation": implementation, "mode": mode, "n_samples": n_samples, "dtype": dtype, "error": str(error)}
                            )
                            if progress is not None:
                                progress(f"FAILED: {str(error).strip().splitlines()[-1]}")
                            continue
                        runs[implementation].append(run)
                        result.measurements.append(run)
                if runs["isogan"] or runs["sklearn"]:
                    result.rows.extend(summarize(n_samples, dtype, mode, runs["isogan"], runs["sklearn"]))
    return result


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


TABLE_HEADER = ("N", "dtype", "stage", "isogan s", "sklearn s", "speedup", "isogan MiB", "sklearn MiB", "mem ratio", "parity", "load")


def _table_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """Return the formatted cells of one result row, in :data:`TABLE_HEADER` order."""
    return (
        str(row["n_samples"]),
        row["dtype"],
        row["stage"],
        _fmt(row["isogan_time_s"], ".3f"),
        _fmt(row["sklearn_time_s"], ".3f"),
        _fmt(row["speedup"], ".1f", "x"),
        _fmt(row["isogan_peak_mib"], ".1f"),
        _fmt(row["sklearn_peak_mib"], ".1f"),
        _fmt(row["memory_ratio"], ".2f"),
        _fmt(row["parity_error"], ".1e"),
        _fmt(row["load_1min"], ".2f"),
    )


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Format result rows as a fixed-width text table.

    Parameters
    ----------
    rows : sequence of dict
        Rows from :func:`summarize`.

    Returns
    -------
    str
    """
    return "\n".join(text_table_lines(TABLE_HEADER, [_table_cells(row) for row in rows]))


def format_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Format result rows as a Markdown table (for RESULTS.md and the README).

    Parameters
    ----------
    rows : sequence of dict
        Rows from :func:`summarize`.

    Returns
    -------
    str
    """
    return "\n".join(markdown_table_lines(TABLE_HEADER, [_table_cells(row) for row in rows]))


def text_table_lines(header: Sequence[str], cell_rows: Sequence[Sequence[str]]) -> list[str]:
    """Lay out a header and rows of cells as right-aligned fixed-width lines, a rule under the header.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    cell_rows : sequence of sequence of str
        Formatted cells, one sequence per row, in ``header`` order.

    Returns
    -------
    list of str
        One line per row, the header and its rule first.
    """
    lines = [header, *cell_rows]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    text = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return text


def markdown_table_lines(header: Sequence[str], cell_rows: Sequence[Sequence[str]]) -> list[str]:
    """Lay out a header and rows of cells as the lines of a Markdown table.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    cell_rows : sequence of sequence of str
        Formatted cells, one sequence per row, in ``header`` order.

    Returns
    -------
    list of str
        One line per row, the header and its separator first.
    """
    lines = ["| " + " | ".join(line) + " |" for line in (header, *cell_rows)]
    lines.insert(1, "|" + "---|" * len(header))
    return lines


def _fmt(value: float, spec: str, suffix: str = "") -> str:
    return "-" if value is None or np.isnan(value) else f"{value:{spec}}{suffix}"


def write_results(result: BenchmarkResult, metadata: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``results.csv``, ``results.json``, ``results.md`` and ``scaling.png`` into ``out_dir``.

    Parameters
    ----------
    result : BenchmarkResult
        Rows go to the CSV, the Markdown table and the plot; rows, raw runs and errors to the JSON.
    metadata : dict
        Machine, command and configuration (kept in the JSON).
    out_dir : path-like
        Created if missing.

    Returns
    -------
    dict of str to pathlib.Path
        Paths written, keyed 'csv', 'json', 'markdown', 'plot'.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "results.csv", "json": out / "results.json", "markdown": out / "results.md", "plot": out / "scaling.png"}
    raw = [{key: value for key, value in asdict(run).items() if key != "arrays_path"} for run in result.measurements]
    document = {"metadata": metadata, "rows": [_nan_to_none(row) for row in result.rows], "measurements": raw, "errors": result.errors}
    write_csv_and_json(paths["csv"], CSV_COLUMNS, result.rows, paths["json"], document)
    paths["markdown"].write_text(format_markdown(result.rows) + "\n", encoding="utf-8")
    plot_scaling(result.rows, paths["plot"])
    return paths


def write_csv_and_json(
    csv_path: Path, csv_columns: Sequence[str], rows: Sequence[dict[str, Any]], json_path: Path, document: dict[str, Any]
) -> None:
    """Write result rows as CSV and a document as strict JSON (NaN is refused: use :func:`_nan_to_none`).

    Parameters
    ----------
    csv_path : pathlib.Path
        CSV file to write, one line per row under a header of ``csv_columns``.
    csv_columns : sequence of str
        Keys of the rows, in column order.
    rows : sequence of dict
        Result rows.
    json_path : pathlib.Path
        JSON file to write.
    document : dict
        What goes into the JSON file.
    """
    import csv

    with open(csv_path, "w", newline="", encoding="utf-8") as csv_file:
        writer = csv.DictWriter(csv_file, fieldnames=csv_columns)
        writer.writeheader()
        writer.writerows(rows)
    with open(json_path, "w", encoding="utf-8") as json_file:
        json.dump(document, json_file, indent=2, allow_nan=False)


def _nan_to_none(row: dict[str, Any]) -> dict[str, Any]:
    """Return ``row`` with NaN floats as None, so results.json is strict JSON (null = not measured)."""
    return {key: None if isinstance(value, float) and np.isnan(value) else value for key, value in row.items()}


def plot_scaling(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Draw log-log time and peak memory against N for isogan and scikit-learn.

    Parameters
    ----------
    rows : sequence of dict
        Summary rows; end-to-end rows give the solid (isogan) and dashed (scikit-learn) lines,
        per-stage rows of isogan give thin dotted lines.
    path : path-like
        PNG file to write.
    """
    from isogan._plotting import pyplot

    plt = pyplot()
    import matplotlib.ticker

    colors = {("isogan", "float64"): "tab:blue", ("isogan", "float32"): "tab:cyan", ("sklearn", "float64"): "tab:red", ("sklearn", "float32"): "tab:orange"}
    stage_markers = {"knn": "v", "paths": "^", "mds": "D"}
    figure, (time_axes, memory_axes) = plt.subplots(1, 2, figsize=(11, 4.5))
    for dtype in sorted({row["dtype"] for row in rows}, reverse=True):
        for stage in ("end_to_end", *STAGES):
            selected = sorted((row for row in rows if row["dtype"] == dtype and row["stage"] == stage), key=lambda row: row["n_samples"])
            for implementation in IMPLEMENTATIONS:
                if stage != "end_to_end" and implementation == "sklearn":
                    continue
                points = [(row["n_samples"], row[f"{implementation}_time_s"], row[f"{implementation}_peak_mib"]) for row in selected]
                points = [point for point in points if not np.isnan(point[1])]
                if not points:
                    continue
                sizes, times, peaks = zip(*points, strict=True)
                style = {
                    "color": colors.get((implementation, dtype), "tab:gray"),
                    "linestyle": ("-" if implementation == "isogan" else "--") if stage == "end_to_end" else ":",
                    "marker": ("o" if implementation == "isogan" else "s") if stage == "end_to_end" else stage_markers[stage],
                    "linewidth": 2 if stage == "end_to_end" else 1,
                }
                label = f"{implementation} {dtype}" + ("" if stage == "end_to_end" else f" ({stage} stage)")
                time_axes.plot(sizes, times, label=label, **style)
                if stage == "end_to_end":
                    memory_axes.plot(sizes, peaks, label=label, **style)
    all_sizes = sorted({row["n_samples"] for row in rows})
    for axes, ylabel in ((time_axes, "wall time (s)"), (memory_axes, "peak memory above baseline (MiB)")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(all_sizes, [str(size) for size in all_sizes])
        axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axes.set_xlabel("N (swiss roll points)")
        axes.set_ylabel(ylabel)
        axes.grid(True, which="major", alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
    time_axes.set_title("Isomap fit_transform time")
    memory_axes.set_title("Isomap fit_transform peak memory")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _worker_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of a worker process: measure one run, write its Measurement as JSON."""
    parser = argparse.ArgumentParser(prog="python -m isogan.bench.harness", description="Measure one benchmark run (internal).")
    parser.add_argument("--implementation", choices=IMPLEMENTATIONS, required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--n-samples", type=int, required=True)
    parser.add_argument("--dtype", choices=("float64", "float32"), required=True)
    parser.add_argument("--n-neighbors", type=int, default=10)
    parser.add_argument("--n-components", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--result", required=True, help="JSON file to write; arrays go next to it (.npz)")
    args = parser.parse_args(argv)
    params = RunParams(n_neighbors=args.n_neighbors, n_components=args.n_components, device=args.device)
    prefix = os.path.splitext(args.result)[0]
    measurement = run_worker(args.implementation, args.mode, args.n_samples, args.dtype, params, prefix)
    with open(args.result, "w", encoding="utf-8") as result_file:
        json.dump(asdict(measurement), result_file)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main())
