"""Landmark Isomap scaling benchmark: time, peak memory and accuracy from 10k to 1M points.

This module is behind ``isogan bench scaling``. For every size N it measures landmark Isomap
(:func:`isogan.landmark.landmark_isomap`: swiss roll or shape images, MaxMin landmarks with ``random_state=0``) on
each requested device and, where they fit, two references: isogan's exact ``Isomap`` and
scikit-learn's ``Isomap`` (whose N x N matrices cap them at small N).

How a run is measured
---------------------
Every run (one method, device and size) happens in a fresh worker process, ``python -m
isogan.bench.scaling``, killed after ``timeout_s`` seconds. The worker first fits the same
method on :data:`isogan.bench.harness.WARMUP_SAMPLES` points (lazy imports, thread pools, the CUDA
context), generates the data set and its true coordinates, then measures the fit with
:class:`isogan.bench.harness.StageMeter`: wall time with :func:`time.perf_counter`, and peak
resident memory (``VmHWM`` after resetting it through ``/proc/self/clear_refs``) both absolute
(``peak_rss_mib``: the whole process, interpreter and input included) and above the RSS before the
fit (``peak_above_baseline_mib``). Landmark runs also report the seconds of each stage
(``LandmarkModel.timings``: knn, connect, landmarks, paths, mds). On CUDA, the device memory in use
(total minus free, from ``cudaMemGetInfo``) is sampled every :data:`isogan.bench.meter.GPU_SAMPLE_INTERVAL_S` seconds
during the fit; ``peak_gpu_mib`` is its maximum above the level before the fit (other processes on
the same GPU would count too). Accuracy is
:func:`isogan.bench.harness.residual_variance` against the true coordinates: (arc length, height)
on the swiss roll, the four factors (angle, scale, x, y) on the shape images.

Nothing is skipped silently: a device that is not usable, a method above its size cap, a size whose
predicted memory (:func:`predicted_bytes`) exceeds what is available, a run that failed or timed
out, and the larger sizes of a method that already failed or timed out, each get a row with
``status`` 'skipped', 'failed' or 'timeout' and the reason.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np

from isogan.bench import harness
from isogan.bench.data import BENCH_DATASETS, DATASET_FEATURES, manifold_with_coordinates, residual_variance
from isogan.bench.harness import PipelineOutput, RunParams
from isogan.bench.meter import MIB, DeviceMemorySampler, StageMeter

METHODS = ("landmark", "exact", "sklearn")
DEVICES = ("cpu", "cuda")
# Stages of landmark Isomap, as keys of LandmarkModel.timings.
LANDMARK_STAGES = ("knn", "connect", "landmarks", "paths", "mds")
# Landmarks of the warm-up fit (it runs on WARMUP_SAMPLES points).
WARMUP_LANDMARKS = 32
# Fraction of the available memory a run may be predicted to need before it is refused.
MEMORY_HEADROOM = 0.9

# Columns of landmark_scaling.csv, in order.
CSV_COLUMNS = (
    "dataset",
    "neighbors_algorithm",
    "method",
    "device",
    "n_samples",
    "n_landmarks",
    "n_neighbors",
    "dtype",
    "status",
    "reason",
    "total_s",
    *(f"{stage}_s" for stage in LANDMARK_STAGES),
    "peak_rss_mib",
    "peak_above_baseline_mib",
    "peak_gpu_mib",
    "predicted_mib",
    "residual_variance",
    "load_1min",
)

METHOD_LABELS = {"landmark": "isogan landmark", "exact": "isogan exact", "sklearn": "scikit-learn exact"}


@dataclass
class ScalingConfig:
    """What ``isogan bench scaling`` measures.

    Attributes
    ----------
    sizes : sequence of int
        Sizes N, measured in increasing order.
    n_landmarks : int
        Landmarks of landmark Isomap.
    n_neighbors : int
        k of the neighbour graph (all methods).
    n_components : int
        Embedding dimension.
    dtype : {'float32', 'float64'}
        dtype of the input points.
    devices : sequence of {'cpu', 'cuda'}
        Devices of the isogan methods; scikit-learn always runs on the CPU.
    methods : sequence of {'landmark', 'exact', 'sklearn'}
        Methods to measure.
    sklearn_max_size : int
        Largest N at which scikit-learn runs.
    exact_max_size : int
        Largest N at which isogan's exact Isomap runs.
    timeout_s : float
        Seconds after which a run is killed.
    memory_limit_bytes : int or None
        Memory a run may use; None means what the machine has available when the run starts.
    dataset : {'swiss-roll', 'shapes'}
        The manifold (:func:`isogan.bench.data.manifold_with_coordinates`).
    neighbors_algorithm : str
        Neighbour search of landmark Isomap (``Isomap``'s ``neighbors_algorithm``, e.g. 'auto'
        or 'approximate'); the exact references always search exactly.
    """

    sizes: Sequence[int] = (10_000, 30_000, 100_000, 300_000, 1_000_000)
    n_landmarks: int = 1000
    n_neighbors: int = 10
    n_components: int = 2
    dtype: str = "float32"
    devices: Sequence[str] = DEVICES
    methods: Sequence[str] = METHODS
    sklearn_max_size: int = 16_000
    exact_max_size: int = 32_000
    timeout_s: float = 3600.0
    memory_limit_bytes: int | None = None
    dataset: str = "swiss-roll"
    neighbors_algorithm: str = "auto"

    def check(self) -> None:
        """Raise ValueError if the settings cannot be measured.

        Raises
        ------
        ValueError
            If a method or device is unknown, or a size is not above ``n_neighbors`` or below
            ``n_landmarks`` when landmark Isomap is measured, or ``n_landmarks`` is below
            ``n_components + 1``.
        """
        if self.dataset not in BENCH_DATASETS:
            raise ValueError(f"Unknown dataset {self.dataset!r}; expected one of {BENCH_DATASETS}")
        unknown = sorted(set(self.methods) - set(METHODS)) + sorted(set(self.devices) - set(DEVICES))
        if unknown:
            raise ValueError(f"Unknown method or device {unknown}; expected methods in {METHODS} and devices in {DEVICES}")
        if not self.sizes:
            raise ValueError("Expected at least one size")
        smallest = min(self.sizes)
        if smallest <= self.n_neighbors:
            raise ValueError(f"Expected every size > n_neighbors, but the smallest size is {smallest} and n_neighbors = {self.n_neighbors}")
        if "landmark" in self.methods:
            if self.n_landmarks < self.n_components + 1:
                raise ValueError(
                    f"Expected n_landmarks >= n_components + 1, but n_landmarks = {self.n_landmarks}, n_components = {self.n_components}"
                )
            if smallest < self.n_landmarks:
                raise ValueError(
                    f"Expected n_landmarks <= every size, but n_landmarks = {self.n_landmarks} and the smallest size is {smallest}"
                )


def predicted_bytes(method: str, n_samples: int, config: ScalingConfig) -> int:
    """Predict the peak memory of one run above its baseline (host memory; device memory on CUDA).

    Landmark Isomap holds the (L, N) landmark distances in the input dtype (the term that dominates:
    4 GB at N = 1M, L = 1000, float32), the approximate search index when it is used, the neighbour graph (several CSR copies of N * k edges while it
    is symmetrised) and O(N) outputs. Exact isogan holds the (N, N) geodesic matrix in the input dtype;
    scikit-learn holds it in float64 plus its centred kernel (about 12 bytes per entry for float32
    input, 24 for float64, as measured in ``benchmarks/RESULTS.md``). The factors carry a margin of
    about 25 % over those measurements (N = 10k-100k on the CPU).

    Parameters
    ----------
    method : {'landmark', 'exact', 'sklearn'}
    n_samples : int
    config : ScalingConfig

    Returns
    -------
    int
        Predicted bytes.
    """
    itemsize = np.dtype(config.dtype).itemsize
    edges = n_samples * config.n_neighbors
    # The approximate search keeps its own float32 copy of the points in its index (784 features
    # for the shape images), plus about 64 link bytes per point.
    index_bytes = n_samples * (4 * DATASET_FEATURES[config.dataset] + 64)
    graph_bytes = 4 * edges * (itemsize + 8)
    # Embedding, eigenvector and triangulation outputs, plus thread scratch and allocator slack
    # (measured: about 60 MiB above the terms here at N = 10k).
    outputs_bytes = 4 * n_samples * config.n_components * 8 + 64 * 2**20
    if method == "landmark":
        search_bytes = int(1.25 * index_bytes) if config.neighbors_algorithm == "approximate" else 0
        return int(1.25 * config.n_landmarks * n_samples * itemsize) + graph_bytes + outputs_bytes + search_bytes
    if method == "exact":
        return int(1.25 * n_samples * n_samples * itemsize) + graph_bytes + outputs_bytes
    if method == "sklearn":
        per_entry = 12 if itemsize == 4 else 24
        return int(1.25 * n_samples * n_samples * per_entry) + graph_bytes + outputs_bytes
    raise ValueError(f"Unknown method {method!r}; expected one of {METHODS}")


def device_unusable_reason(device: str) -> str:
    """Return why ``device`` cannot run isogan now, or '' when it can.

    Parameters
    ----------
    device : {'cpu', 'cuda'}

    Returns
    -------
    str
    """
    from isogan._backend import policy

    if device == "cuda" and not policy.cuda_available():
        return f"CUDA is not usable: {policy.cuda_unavailable_reason()}"
    return ""


def _available_bytes(device: str) -> int:
    """Bytes a new run may use on ``device`` (host memory for the CPU)."""
    from isogan._backend import memory

    return memory.available_device_bytes() if device == "cuda" else memory.available_host_bytes()


# ------------------------------------------------------------------------------ worker process
def landmark_end_to_end(points: np.ndarray, params: RunParams, meter: StageMeter, n_landmarks: int,
                        neighbors_algorithm: str = "auto") -> PipelineOutput:
    """Run :func:`isogan.landmark.landmark_isomap` as one measured stage 'end_to_end'.

    Parameters
    ----------
    points : numpy.ndarray of shape (N, D)
        Input points.
    params : RunParams
        Neighbours, components and device.
    meter : StageMeter
        Records the time and peak memory of the fit.
    n_landmarks : int
        Landmarks (MaxMin, ``random_state=0``).
    neighbors_algorithm : str, default='auto'
        Neighbour search (``Isomap``'s ``neighbors_algorithm``).

    Returns
    -------
    PipelineOutput
        The embedding; the fit's stage timings are stored in ``meter.times_s`` under their stage
        names.
    """
    from isogan.landmark import landmark_isomap

    with meter.stage("end_to_end"):
        model = landmark_isomap(
            points,
            n_landmarks,
            params.n_components,
            n_neighbors=params.n_neighbors,
            random_state=0,
            device=params.device,
            progress=False,
            neighbors_algorithm=neighbors_algorithm,
        )
    meter.times_s.update(model.timings)
    return PipelineOutput(embedding=np.asarray(model.embedding))


def _pipeline(method: str, n_landmarks: int,
              neighbors_algorithm: str) -> Callable[[np.ndarray, RunParams, StageMeter], PipelineOutput]:
    """The measured function of ``method`` (the exact ones are those of ``isogan bench``)."""
    if method == "landmark":
        return partial(landmark_end_to_end, n_landmarks=n_landmarks, neighbors_algorithm=neighbors_algorithm)
    implementation = "isogan" if method == "exact" else "sklearn"
    return harness.PIPELINES[(implementation, "end_to_end")]


@dataclass
class ScalingMeasurement:
    """One measured run, as the worker reports it.

    Attributes
    ----------
    times_s : dict of str to float
        'end_to_end' and, for landmark Isomap, each stage.
    baseline_bytes : int
        RSS before the fit (interpreter, libraries, input points and true coordinates).
    peak_above_baseline_bytes : int
        Peak RSS during the fit minus ``baseline_bytes``.
    peak_gpu_bytes : int or None
        Peak device memory in use above its level before the fit (CUDA runs only).
    peak_method : str
        See :class:`isogan.bench.harness.StageMeter`.
    residual_variance : float
        Against the true coordinates of the data set.
    load_1min : float
        1-minute load average when the worker started.
    """

    times_s: dict[str, float]
    baseline_bytes: int
    peak_above_baseline_bytes: int
    peak_gpu_bytes: int | None
    peak_method: str
    residual_variance: float
    load_1min: float


def run_scaling_worker(method: str, device: str, n_samples: int, config: ScalingConfig) -> ScalingMeasurement:
    """Measure one run in this process (the body of a worker process).

    Parameters
    ----------
    method : {'landmark', 'exact', 'sklearn'}
    device : {'cpu', 'cuda'}
    n_samples : int
    config : ScalingConfig

    Returns
    -------
    ScalingMeasurement
    """
    load_1min = os.getloadavg()[0]
    params = RunParams(n_neighbors=config.n_neighbors, n_components=config.n_components, device=device)
    warmup_samples = harness.WARMUP_SAMPLES
    _pipeline(method, min(config.n_landmarks, WARMUP_LANDMARKS), config.neighbors_algorithm)(
        manifold_with_coordinates(config.dataset, warmup_samples, config.dtype, random_state=1)[0], params, StageMeter()
    )
    points, coordinates = manifold_with_coordinates(config.dataset, n_samples, config.dtype)
    pipeline = _pipeline(method, config.n_landmarks, config.neighbors_algorithm)
    meter = StageMeter()
    meter.start()
    peak_gpu_bytes = None
    if device == "cuda":
        with DeviceMemorySampler() as sampler:
            output = pipeline(points, params, meter)
        peak_gpu_bytes = sampler.peak_bytes
    else:
        output = pipeline(points, params, meter)
    return ScalingMeasurement(
        times_s=dict(meter.times_s),
        baseline_bytes=meter.baseline_bytes,
        peak_above_baseline_bytes=meter.peak_bytes["end_to_end"],
        peak_gpu_bytes=peak_gpu_bytes,
        peak_method=meter.peak_method,
        residual_variance=residual_variance(output.embedding, coordinates),
        load_1min=load_1min,
    )


def _worker_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of a worker process: measure one run, write its ScalingMeasurement as JSON."""
    parser = argparse.ArgumentParser(prog="python -m isogan.bench.scaling", description="Measure one scaling run (internal).")
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--device", choices=DEVICES, required=True)
    parser.add_argument("--n-samples", type=int, required=True)
    parser.add_argument("--config", required=True, help="ScalingConfig as JSON")
    parser.add_argument("--result", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    config = ScalingConfig(**json.loads(args.config))
    measurement = run_scaling_worker(args.method, args.device, args.n_samples, config)
    with open(args.result, "w", encoding="utf-8") as result_file:
        json.dump(asdict(measurement), result_file)
    return 0


class RunTimeout(RuntimeError):
    """A worker process ran past its time limit and was killed."""


def measure_scaling_run(
    method: str, device: str, n_samples: int, config: ScalingConfig, workdir: str | os.PathLike[str]
) -> ScalingMeasurement:
    """Measure one run in a fresh worker process.

    Parameters
    ----------
    method : {'landmark', 'exact', 'sklearn'}
    device : {'cpu', 'cuda'}
    n_samples : int
    config : ScalingConfig
    workdir : path-like
        Directory for the worker's result file.

    Returns
    -------
    ScalingMeasurement

    Raises
    ------
    RunTimeout
        If the worker ran longer than ``config.timeout_s`` (it is killed).
    RuntimeError
        If the worker failed; the message ends with the last line of its stderr.
    """
    handle, result_path = tempfile.mkstemp(prefix=f"{method}-{device}-{n_samples}-", suffix=".json", dir=workdir)
    os.close(handle)
    command = [
        sys.executable, "-m", "isogan.bench.scaling",
        "--method", method,
        "--device", device,
        "--n-samples", str(n_samples),
        "--config", json.dumps(asdict(config)),
        "--result", result_path,
    ]  # fmt: skip
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, env=harness.child_environment(), timeout=config.timeout_s, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise RunTimeout(f"killed after the {config.timeout_s:g} s time limit (--timeout-per-size)") from error
    except OSError as error:
        raise RuntimeError(f"could not start the worker process {sys.executable!r}: {error}") from error
    if completed.returncode != 0:
        raise RuntimeError(_failure_reason(completed.returncode, completed.stderr))
    with open(result_path, encoding="utf-8") as result_file:
        return ScalingMeasurement(**json.load(result_file))


def _failure_reason(returncode: int, stderr: str) -> str:
    """One line saying why a worker failed: its last stderr line, or the signal that killed it."""
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (the kernel's out-of-memory killer sends SIGKILL)" if -returncode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {returncode}"


# ------------------------------------------------------------------------------ the benchmark
@dataclass
class ScalingResult:
    """Everything one scaling benchmark produced.

    Attributes
    ----------
    rows : list of dict
        One row per method, device and size, with the keys of :data:`CSV_COLUMNS`.
    measurements : list of dict
        Raw worker measurements, with their method, device and size.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Rows whose run failed or timed out."""
        return [row for row in self.rows if row["status"] in ("failed", "timeout")]


def _row(method: str, device: str, n_samples: int, config: ScalingConfig, status: str, reason: str, predicted: int) -> dict[str, Any]:
    """A result row with every measured column NaN."""
    row: dict[str, Any] = {column: float("nan") for column in CSV_COLUMNS}
    row.update(
        dataset=config.dataset,
        neighbors_algorithm=config.neighbors_algorithm if method == "landmark" else "exact",
        method=method,
        device=device,
        n_samples=n_samples,
        n_landmarks=config.n_landmarks if method == "landmark" else 0,
        n_neighbors=config.n_neighbors,
        dtype=config.dtype,
        status=status,
        reason=reason,
        predicted_mib=predicted / MIB,
    )
    return row


def _fill_row(row: dict[str, Any], measurement: ScalingMeasurement) -> None:
    row["total_s"] = measurement.times_s["end_to_end"]
    for stage in LANDMARK_STAGES:
        row[f"{stage}_s"] = measurement.times_s.get(stage, float("nan"))
    row["peak_above_baseline_mib"] = measurement.peak_above_baseline_bytes / MIB
    row["peak_rss_mib"] = (measurement.baseline_bytes + measurement.peak_above_baseline_bytes) / MIB
    if measurement.peak_gpu_bytes is not None:
        row["peak_gpu_mib"] = measurement.peak_gpu_bytes / MIB
    row["residual_variance"] = measurement.residual_variance
    row["load_1min"] = measurement.load_1min


def _skip_reason(method: str, device: str, n_samples: int, config: ScalingConfig, predicted: int, stopped: dict[tuple[str, str], str]) -> str:
    """Why the run of ``method`` on ``device`` at ``n_samples`` is not started ('' to start it)."""
    if (method, device) in stopped:
        return stopped[(method, device)]
    unusable = device_unusable_reason(device)
    if unusable:
        return unusable
    if method == "sklearn" and n_samples > config.sklearn_max_size:
        return f"N = {n_samples} > the scikit-learn size cap {config.sklearn_max_size} (--sklearn-max-size)"
    if method == "exact" and n_samples > config.exact_max_size:
        return f"N = {n_samples} > the exact-Isomap size cap {config.exact_max_size} (--exact-max-size)"
    devices_to_check = ("cpu", "cuda") if device == "cuda" else ("cpu",)
    for where in devices_to_check:
        available = _available_bytes(where)
        if config.memory_limit_bytes is not None and where == "cpu":
            available = min(available, config.memory_limit_bytes)
        budget = int(MEMORY_HEADROOM * available)
        if predicted > budget:
            memory = "GPU memory" if where == "cuda" else "host memory"
            remedy = "fewer landmarks (--n-landmarks) or a larger machine" if method == "landmark" else "landmark Isomap at this size"
            return (
                f"predicted memory {_size_text(predicted)} > {MEMORY_HEADROOM:.0%} of the {_size_text(available)} "
                f"of {memory} available; use {remedy}"
            )
    return ""


def _plan(config: ScalingConfig) -> list[tuple[str, str]]:
    """(method, device) pairs in measuring order; scikit-learn runs once, on the CPU."""
    pairs = [(method, device) for method in METHODS if method in config.methods and method != "sklearn" for device in DEVICES if device in config.devices]
    if "sklearn" in config.methods:
        pairs.append(("sklearn", "cpu"))
    return pairs


def run_scaling(
    config: ScalingConfig, workdir: str | os.PathLike[str], progress: Callable[[str], None] | None = None
) -> ScalingResult:
    """Measure every method and device of ``config`` at every size, smallest size first.

    Parameters
    ----------
    config : ScalingConfig
    workdir : path-like
        Directory for the workers' files.
    progress : callable, optional
        Called with one line before and after each run, and for each skipped run.

    Returns
    -------
    ScalingResult
        A row for every method, device and size: measured, skipped, failed or timed out.

    Raises
    ------
    ValueError
        If ``config`` is not valid (see :meth:`ScalingConfig.check`).
    """
    config.check()
    report = progress if progress is not None else (lambda message: None)
    result = ScalingResult()
    stopped: dict[tuple[str, str], str] = {}
    pairs = _plan(config)
    for n_samples in sorted(config.sizes):
        for method, device in pairs:
            tag = f"{METHOD_LABELS[method]:18s} {device:4s} N={n_samples:<8d}"
            predicted = predicted_bytes(method, n_samples, config)
            reason = _skip_reason(method, device, n_samples, config, predicted, stopped)
            if reason:
                result.rows.append(_row(method, device, n_samples, config, "skipped", reason, predicted))
                report(f"{tag} skipped: {reason}")
                continue
            report(f"{tag} running (predicted peak {_size_text(predicted)}, time limit {config.timeout_s:g} s)")
            row = _row(method, device, n_samples, config, "ok", "", predicted)
            try:
                measurement = measure_scaling_run(method, device, n_samples, config, workdir)
            except RunTimeout as error:
                row.update(status="timeout", reason=str(error))
                stopped[(method, device)] = f"not run: timed out at N = {n_samples}"
            except RuntimeError as error:
                row.update(status="failed", reason=str(error))
                stopped[(method, device)] = f"not run: failed at N = {n_samples}"
            else:
                _fill_row(row, measurement)
                result.measurements.append({"method": method, "device": device, "n_samples": n_samples, **asdict(measurement)})
            result.rows.append(row)
            report(f"{tag} {_outcome(row)}")
    return result


def _size_text(n_bytes: float) -> str:
    """``n_bytes`` in GiB, or in MiB below 1 GiB."""
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / MIB:.1f} MiB"


def _outcome(row: dict[str, Any]) -> str:
    """One line summarising a finished run."""
    if row["status"] != "ok":
        return f"{row['status'].upper()}: {row['reason']}"
    text = f"{row['total_s']:.2f} s, peak RSS {_size_text(row['peak_rss_mib'] * MIB)}"
    if not math.isnan(row["peak_gpu_mib"]):
        text += f", peak GPU {_size_text(row['peak_gpu_mib'] * MIB)}"
    return text + f", residual variance {row['residual_variance']:.2e}"


if __name__ == "__main__":
    sys.exit(_worker_main())
