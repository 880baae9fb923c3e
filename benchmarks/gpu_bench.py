"""GPU benchmarks of isogan's CUDA stages, each next to its baseline, one phase per call.

Run by ``benchmarks/gpu_suite.sh`` on an H100/H200 machine (needs the CUDA build and torch, which
times GPU work with ``torch.cuda.synchronize`` and provides device-resident inputs)::

    PYTHONPATH=python python3 benchmarks/gpu_bench.py PHASE --out results.jsonl

Phases (each appends JSON lines to ``--out``, one per measurement, with the device named):

``knn``        kNN (k=10) of N=100k points in D=784 on the GPU (torch input read in place): seconds,
               the brute-force rate 3 N^2 D / t (float64 accumulation) against the card's fp64 peak,
               exactness checked against a NumPy brute force on 256 queries.
``eigensolve`` classical MDS on an N=50k float32 distance matrix in GPU memory: one block product
               (one pass over D) with its HBM bandwidth against the card's peak, and the full solve.
``paths``      all-pairs shortest paths on swiss-roll kNN graphs, Floyd-Warshall vs batched
               Bellman-Ford on the GPU, with the cost model's predictions beside the measurements
               (the model's rates are estimates; these rows are what calibrates them).
``isomap``     end-to-end exact Isomap fit on a swiss roll (k=10): isogan on the GPU, isogan on the
               CPU and scikit-learn on the same machine (``--implementations``), N from ``--sizes``;
               each row carries the sum of |embedding| so that runs can be compared.
``isomap100k`` exact Isomap N=100k float32 on the GPU when the predicted memory fits (else the
               MemoryError message is recorded).
``landmark``   landmark Isomap (L=1000) of a swiss roll rotated into D dimensions (``--features``), on
               the GPU and on the CPU (``--implementations``), N from ``--sizes``; the residual variance
               against the roll's true coordinates in each row.
``ops``        the fused ``bias_act`` (lrelu) forward and forward+backward on a (32, 256, 64, 64) float32
               tensor against the eager three-kernel composition, timed with CUDA events (median), with
               the bytes each must move over the measured device-to-device copy bandwidth.

Peak rates are datasheet figures (SXM parts), named in each row, so that fractions can be recomputed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import isogan
from isogan import paths as paths_module
from isogan._backend import cuda_paths
from isogan.bench.data import residual_variance, swiss_roll, swiss_roll_with_coordinates

# Datasheet peaks: fp32 / fp64 non-tensor FLOP/s and HBM bytes/s.
_PEAKS = {
    "H200": {"fp32_flops": 67e12, "fp64_flops": 34e12, "hbm_bytes": 4.8e12},
    "H100": {"fp32_flops": 67e12, "fp64_flops": 34e12, "hbm_bytes": 3.35e12},
}


def _torch() -> Any:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("torch does not see a CUDA device")
    return torch


def _device_name() -> str:
    return str(_torch().cuda.get_device_name(0))


def _peaks() -> dict[str, float]:
    name = _device_name()
    for key, peaks in _PEAKS.items():
        if key in name:
            return peaks
    return {"fp32_flops": float("nan"), "fp64_flops": float("nan"), "hbm_bytes": float("nan")}


def _timed(function: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """Best wall-clock seconds of ``repeats`` calls, each ended by a device synchronisation."""
    torch = _torch()
    best, result = float("inf"), None
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        result = function()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


class _Recorder:
    """Appends one JSON line per measurement, tagged with the phase and the device."""

    def __init__(self, path: Path, phase: str) -> None:
        self.path = path
        self.phase = phase
        self.device = _device_name()

    def record(self, **fields: Any) -> None:
        row = {"phase": self.phase, "device": self.device, "host": platform.node(), **fields}
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def bench_knn(recorder: _Recorder, n_samples: int = 100_000, n_features: int = 784, n_neighbors: int = 10) -> None:
    torch = _torch()
    points = np.random.default_rng(0).normal(size=(n_samples, n_features)).astype(np.float32)
    device_points = torch.from_numpy(points).cuda()
    isogan.knn.kneighbors(device_points[:2048], None, n_neighbors)  # warm-up: context, module load
    seconds, (distances, indices) = _timed(lambda: isogan.knn.kneighbors(device_points, None, n_neighbors))
    # Exactness on 256 queries against a float64 brute force (expanded form: 256 x N, not 256 x N x D).
    check = np.random.default_rng(1).choice(n_samples, 256, replace=False)
    all_points = points.astype(np.float64)
    queries = all_points[check]
    squared = (queries * queries).sum(1)[:, None] + (all_points * all_points).sum(1)[None, :] - 2 * queries @ all_points.T
    squared[np.arange(check.size), check] = np.inf
    expected = np.sort(np.sqrt(np.maximum(np.partition(squared, n_neighbors, axis=1)[:, :n_neighbors], 0)), axis=1)
    error = float(np.max(np.abs(distances.cpu().numpy()[check] - expected) / expected))
    # The kernel accumulates (x - y)^2 in float64 (a subtract, a multiply and an add per feature,
    # unfused, to match the CPU bit for bit), so its roofline is the fp64 rate.
    flops = 3.0 * n_samples * n_samples * n_features
    recorder.record(stage="knn", n_samples=n_samples, n_features=n_features, n_neighbors=n_neighbors,
                    dtype="float32", seconds=seconds, fp64_tflops=flops / seconds / 1e12,
                    fraction_of_fp64_peak=flops / seconds / _peaks()["fp64_flops"],
                    max_relative_distance_error=error, indices_dtype=str(indices.dtype))


def bench_eigensolve(recorder: _Recorder, n_samples: int = 50_000) -> None:
    torch = _torch()
    from isogan._backend.cuda_mds import DeviceMatrix

    points = torch.randn(n_samples, 8, device="cuda", dtype=torch.float32)
    dist = torch.cdist(points, points)
    dist = 0.5 * (dist + dist.T)
    dist.fill_diagonal_(0)
    matrix = DeviceMatrix(dist)
    block = np.random.default_rng(0).uniform(-1, 1, (n_samples, 16))
    matrix.centered_matmul(block)  # warm-up
    seconds, _ = _timed(lambda: matrix.centered_matmul(block), 3)
    bytes_read = n_samples * n_samples * 4
    recorder.record(stage="eigensolve_pass", n_samples=n_samples, dtype="float32", vectors=16, seconds=seconds,
                    bytes_per_second=bytes_read / seconds,
                    fraction_of_hbm_peak=bytes_read / seconds / _peaks()["hbm_bytes"],
                    note="one block product K @ V (16 vectors), includes the (N, 16) host<->device copies")
    seconds, (embedding, eigenvalues, _) = _timed(
        lambda: isogan.classical_mds(dist, n_components=2, device="cuda", random_state=0))
    recorder.record(stage="eigensolve", n_samples=n_samples, dtype="float32", n_components=2, seconds=seconds,
                    eigenvalues=[float(v) for v in eigenvalues.cpu().numpy()])


def bench_paths(recorder: _Recorder, sizes: list[int], n_neighbors: int = 10) -> None:
    from scipy.sparse.csgraph import shortest_path
    from sklearn.neighbors import kneighbors_graph

    for n_samples in sizes:
        for dtype in (np.float32, np.float64):
            graph = kneighbors_graph(swiss_roll(n_samples, np.dtype(dtype).name), n_neighbors, mode="distance")
            graph = graph.astype(dtype)
            symmetric = paths_module.as_symmetric_csr(graph)
            hops = cuda_paths._hop_diameter(symmetric)
            model = cuda_paths.gpu_method_costs(n_samples, symmetric.n_edges, n_samples, hops, dtype)
            auto = cuda_paths.choose_gpu_method(n_samples, symmetric.n_edges, n_samples, True, "auto", hops, dtype)
            results = {}
            for method in ("FW", "D"):
                paths_module.geodesic_distances_device(graph[:64, :64], method)  # warm-up
                seconds, device_result = _timed(lambda: paths_module.geodesic_distances_device(graph, method))
                results[method] = device_result.to_host()
                work = float(n_samples) ** 3 if method == "FW" else None
                recorder.record(stage="paths", method=method, n_samples=n_samples, dtype=np.dtype(dtype).name,
                                n_edges=symmetric.n_edges, hop_diameter=hops, seconds=seconds,
                                model_seconds=model[method], auto_choice=auto,
                                min_plus_per_second=work / seconds if work else None)
            # Every 16th row is enough to compare the two algorithms and keeps the host work small.
            floyd, bellman_ford = results["FW"][::16], results["D"][::16]
            agreement = float(np.nanmax(np.abs(floyd - bellman_ford) / np.maximum(bellman_ford, 1e-30)))
            row = {"fw_vs_bf_max_relative_difference": agreement}
            if n_samples <= 5000:
                reference = shortest_path(graph, directed=False, indices=np.arange(0, n_samples, 50))
                row["bf_vs_scipy_max_relative_error"] = float(
                    np.max(np.abs(results["D"][::50] - reference) / np.maximum(reference, 1e-30)))
            recorder.record(stage="paths_parity", n_samples=n_samples, dtype=np.dtype(dtype).name, **row)


def bench_isomap(recorder: _Recorder, sizes: list[int], implementations: list[str], dtypes: list[str]) -> None:
    """Exact Isomap fits (swiss roll, k=10, 2 components), one row per (N, dtype, implementation)."""
    from sklearn.manifold import Isomap as SklearnIsomap

    fits = {
        "isogan-cuda": lambda X: isogan.Isomap(n_neighbors=10, device="cuda").fit(X),
        "isogan-cpu": lambda X: isogan.Isomap(n_neighbors=10, device="cpu").fit(X),
        "sklearn": lambda X: SklearnIsomap(n_neighbors=10).fit(X),
    }
    if "isogan-cuda" in implementations:
        fits["isogan-cuda"](swiss_roll(500, "float32"))  # warm-up: context, module load
    for n_samples in sizes:
        for dtype in dtypes:
            X = swiss_roll(n_samples, dtype)
            for implementation in implementations:
                seconds, model = _timed(lambda: fits[implementation](X))
                recorder.record(stage="isomap", implementation=implementation, n_samples=n_samples, dtype=dtype,
                                seconds=seconds, stage_seconds=getattr(model, "timings_", None),
                                embedding_checksum=float(np.abs(model.embedding_).sum()))


def bench_isomap_100k(recorder: _Recorder, n_samples: int = 100_000) -> None:
    X = swiss_roll(n_samples, "float32")
    try:
        seconds, model = _timed(lambda: isogan.Isomap(n_neighbors=10, device="cuda").fit(X))
    except MemoryError as error:
        recorder.record(stage="isomap", implementation="isogan-cuda", n_samples=n_samples, dtype="float32",
                        refused=str(error))
        return
    recorder.record(stage="isomap", implementation="isogan-cuda", n_samples=n_samples, dtype="float32",
                    seconds=seconds, stage_seconds=model.timings_)


def _rotated_swiss_roll(n_samples: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark swiss roll rotated into D dimensions (random orthonormal map), float32, and its truth."""
    points, truth = swiss_roll_with_coordinates(n_samples)
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(n_features, 3)))
    return np.ascontiguousarray((points @ rotation.T).astype(np.float32)), truth


def bench_landmark(recorder: _Recorder, sizes: list[int], n_features: int, implementations: list[str],
                   n_landmarks: int = 1000) -> None:
    """Landmark Isomap fits, one row per (N, implementation), with stage timings and accuracy."""
    from isogan.landmark import landmark_isomap

    devices = {"isogan-cuda": "cuda", "isogan-cpu": "cpu"}
    if "isogan-cuda" in implementations:  # warm-up: context, module load
        landmark_isomap(_rotated_swiss_roll(5000, n_features)[0], 100, n_neighbors=10, device="cuda")
    for n_samples in sizes:
        X, truth = _rotated_swiss_roll(n_samples, n_features)
        for implementation in implementations:
            seconds, model = _timed(lambda: landmark_isomap(X, n_landmarks, n_neighbors=10,
                                                                   device=devices[implementation], random_state=0))
            embedding = np.asarray(model.embedding)
            recorder.record(stage="landmark", implementation=implementation, n_samples=n_samples,
                            n_features=n_features, n_landmarks=n_landmarks, dtype="float32", seconds=seconds,
                            stage_seconds=getattr(model, "timings", None),
                            residual_variance=float(residual_variance(embedding, truth)),
                            finite=bool(np.isfinite(embedding).all()))


def _event_median_seconds(function: Callable[[], Any], repeats: int = 20) -> float:
    """Median seconds of ``repeats`` calls, each timed with CUDA events after three warm-ups."""
    torch = _torch()
    for _ in range(3):
        function()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return float(np.median(times))


def bench_ops(recorder: _Recorder, shape: tuple[int, ...] = (32, 256, 64, 64)) -> None:
    """Fused bias_act against eager PyTorch, forward and forward+backward, with bandwidth fractions."""
    import math

    torch = _torch()
    from isogan.ops import bias_act

    x = torch.randn(shape, device="cuda")
    b = torch.randn(shape[1], device="cuda")
    grad_y = torch.randn(shape, device="cuda")
    copy_target = torch.empty_like(x)
    copy_seconds = _event_median_seconds(lambda: copy_target.copy_(x))
    element_bytes = x.numel() * x.element_size()
    copy_bandwidth = 2 * element_bytes / copy_seconds

    def eager(x_in, b_in):
        return torch.nn.functional.leaky_relu(x_in + b_in.reshape(1, -1, 1, 1), 0.2) * math.sqrt(2)

    variants = {"fused": lambda x_in, b_in: bias_act(x_in, b_in, dim=1, act="lrelu"), "eager": eager}
    expected = eager(x.double(), b.double())
    error = float((variants["fused"](x, b).double() - expected).norm() / expected.norm())
    x_grad, b_grad = x.clone().requires_grad_(), b.clone().requires_grad_()
    # Fewest bytes: forward reads x, writes y; backward reads grad_y and x, writes grad_x.
    for pass_, min_bytes in (("forward", 2 * element_bytes), ("forward_backward", 5 * element_bytes)):
        seconds = {}
        for name, fn in variants.items():
            if pass_ == "forward":
                seconds[name] = _event_median_seconds(lambda fn=fn: fn(x, b))
            else:
                seconds[name] = _event_median_seconds(
                    lambda fn=fn: torch.autograd.grad(fn(x_grad, b_grad), (x_grad, b_grad), grad_y))
        recorder.record(stage="bias_act", pass_=pass_, shape=list(shape), dtype="float32",
                        fused_seconds=seconds["fused"], eager_seconds=seconds["eager"],
                        speedup_over_eager=seconds["eager"] / seconds["fused"],
                        fused_bytes_per_second=min_bytes / seconds["fused"],
                        copy_bytes_per_second=copy_bandwidth,
                        fraction_of_copy_bandwidth=min_bytes / seconds["fused"] / copy_bandwidth,
                        forward_relative_error=error)


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark phase; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["knn", "eigensolve", "paths", "isomap", "isomap100k", "landmark", "ops"])
    parser.add_argument("--out", type=Path, required=True, help="JSON-lines file to append to")
    parser.add_argument("--sizes", default="", help="comma-separated N for 'paths' and 'isomap'")
    parser.add_argument("--implementations", default="isogan-cuda,isogan-cpu,sklearn",
                        help="'isomap': comma-separated among isogan-cuda, isogan-cpu, sklearn")
    parser.add_argument("--dtypes", default="float32,float64", help="'isomap': comma-separated dtypes")
    parser.add_argument("--features", type=int, default=784, help="'landmark': dimensions of the rotated roll")
    args = parser.parse_args(argv)
    if not isogan.cuda_available():
        print(f"CUDA is not usable: {isogan._device.cuda_unavailable_reason()}", file=sys.stderr)
        return 2
    sizes = [int(size) for size in args.sizes.split(",") if size]
    recorder = _Recorder(args.out, args.phase)
    if args.phase == "knn":
        bench_knn(recorder)
    elif args.phase == "eigensolve":
        bench_eigensolve(recorder)
    elif args.phase == "paths":
        bench_paths(recorder, sizes or [5000, 10000, 20000])
    elif args.phase == "isomap":
        bench_isomap(recorder, sizes or [10000, 20000], args.implementations.split(","), args.dtypes.split(","))
    elif args.phase == "landmark":
        implementations = [name for name in args.implementations.split(",") if name != "sklearn"]
        bench_landmark(recorder, sizes or [100_000], args.features, implementations)
    elif args.phase == "ops":
        bench_ops(recorder)
    else:
        bench_isomap_100k(recorder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
