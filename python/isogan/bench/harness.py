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
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isogan.bench.data import path_check_rows, relative_max_error, sorted_neighbor_distances, swiss_roll
from isogan.bench.meter import IMPLEMENTATIONS, MIB, MODES, STAGES, StageMeter

# Points of the warm-up run done in each worker before it measures (> 200, so KernelPCA takes its
# ARPACK path, as at the measured sizes).
WARMUP_SAMPLES = 256




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


def child_environment() -> dict[str, str]:
    """Return the environment of a worker: ours, with this isogan first on PYTHONPATH."""
    package_parent = str(Path(__file__).resolve().parents[2])  # the folder holding isogan/
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
    completed = subprocess.run(command, capture_output=True, text=True, env=child_environment(), timeout=timeout_s, check=False)
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
