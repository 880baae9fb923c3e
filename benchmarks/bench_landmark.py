"""Landmark Isomap benchmarks: the issue-8 target and accuracy against the number of landmarks.

Two ways to run it:

* ``pytest benchmarks/bench_landmark.py --benchmark-enable``: small sizes, isogan landmark Isomap
  next to scikit-learn's exact Isomap (the only Isomap scikit-learn has) at the same N.
* ``python benchmarks/bench_landmark.py --n-samples 100000 --landmarks 1000``: the target run
  (swiss roll, float32, k = 10). Each configuration runs in a fresh subprocess so that its peak
  resident memory (``ru_maxrss``, native allocations included) is its own; ``--landmarks 250 500
  1000 2000 4000`` gives the accuracy-vs-L table. Residual variance is
  ``1 - corr(pairwise distances of the embedding, pairwise distances of the true (arc length,
  height) coordinates)^2`` on 2000 random points.
* GPU (issue 8's H200 targets, needs a usable CUDA device): ``python benchmarks/bench_landmark.py
  --device cuda --n-samples 1000000 --n-features 784 --landmarks 1000`` and ``--n-samples 10000000
  --n-features 64``. With ``--n-features D > 3`` the swiss roll is rotated into D dimensions by a
  random orthonormal map; the data is generated block by block straight into its float32 array,
  so 10M x 64 needs its own 2.4 GiB and no float64 temporary. The row also records the device
  name and the free GPU memory before the fit.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pytest
from sklearn.datasets import make_swiss_roll

import isogan
from isogan.bench.data import residual_variance, swiss_roll_with_coordinates


def swiss_roll(n_samples: int, dtype=np.float32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Swiss roll points and their true 2-D coordinates (arc length along the roll, height)."""
    return swiss_roll_with_coordinates(n_samples, dtype, random_state=seed)


def swiss_roll_in_dimensions(n_samples: int, n_features: int, seed: int = 0,
                             block_rows: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """A float32 swiss roll rotated into ``n_features`` dimensions, generated block by block.

    Each block is an independent draw of the roll (``make_swiss_roll`` with its own seed), mapped
    by one fixed random orthonormal (3, n_features) matrix, so pairwise distances are those of the
    3-D roll. Memory: the (n_samples, n_features) float32 result, the (n_samples, 2) true
    coordinates and one block of temporaries.
    """
    if n_features < 3:
        raise ValueError(f"n_features must be >= 3, got {n_features}")
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(rng.normal(size=(n_features, 3)))[0].T if n_features > 3 else np.eye(3)
    X = np.empty((n_samples, n_features), dtype=np.float32)
    truth = np.empty((n_samples, 2))
    for block, start in enumerate(range(0, n_samples, block_rows)):
        count = min(block_rows, n_samples - start)
        roll, t = make_swiss_roll(count, random_state=seed + block)
        X[start : start + count] = roll @ rotation
        truth[start : start + count, 0] = 0.5 * (t * np.sqrt(1 + t * t) + np.arcsinh(t))
        truth[start : start + count, 1] = roll[:, 1]
    return X, truth


def run_one(n_samples: int, n_landmarks: int, n_neighbors: int, n_jobs: int | None, device: str = "cpu",
            n_features: int = 3) -> dict:
    """Fit once in this process; report seconds per stage, peak RSS and residual variance."""
    from isogan import _device
    from isogan.landmark import landmark_isomap

    if device == "cpu" and n_features == 3:
        X, truth = swiss_roll(n_samples)
    else:
        X, truth = swiss_roll_in_dimensions(n_samples, n_features)
    row = {"device": device, "n_samples": n_samples, "n_features": n_features}
    if device == "cuda":
        from isogan import _core

        _device.resolve_device("cuda")  # RuntimeError with the reason when no GPU is usable
        row["gpu_free_bytes_before"] = _device.available_device_bytes()
        row["gpu_total_bytes"] = int(_core.cuda_memory_info()[1])
    start = time.perf_counter()
    model = landmark_isomap(X, n_landmarks, n_neighbors=n_neighbors, random_state=0, n_jobs=n_jobs, device=device,
                            progress=False)
    seconds = time.perf_counter() - start
    return {
        **row,
        "n_landmarks": n_landmarks,
        "n_neighbors": n_neighbors,
        "seconds": seconds,
        "stage_seconds": {k: round(v, 3) for k, v in model.timings.items()},
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "residual_variance": residual_variance(model.embedding, truth),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the target configuration(s), one subprocess each, and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--landmarks", type=int, nargs="+", default=[1000])
    parser.add_argument("--n-neighbors", type=int, default=10)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--n-features", type=int, default=3, help="swiss roll rotated into this many dimensions")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not isogan.cuda_available():
        parser.error(f"--device cuda needs a usable GPU: {isogan._device.cuda_unavailable_reason()}")
    if args.single:
        print(json.dumps(run_one(args.n_samples, args.landmarks[0], args.n_neighbors, args.n_jobs, args.device,
                                 args.n_features)))
        return 0
    rows = []
    for n_landmarks in args.landmarks:
        command = [sys.executable, __file__, "--single", "--n-samples", str(args.n_samples), "--landmarks",
                   str(n_landmarks), "--n-neighbors", str(args.n_neighbors), "--device", args.device,
                   "--n-features", str(args.n_features)]
        if args.n_jobs is not None:
            command += ["--n-jobs", str(args.n_jobs)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        row = rows[-1]
        print(f"L={n_landmarks}: {row['seconds']:.1f} s, peak RSS {row['peak_rss_bytes'] / 2**30:.2f} GiB, "
              f"residual variance {row['residual_variance']:.5f}, stages {row['stage_seconds']}", flush=True)
    print("\n| device | N | D | L | k | seconds | peak RSS (GiB) | residual variance | stages (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        stages = ", ".join(f"{k} {v}" for k, v in row["stage_seconds"].items())
        print(f"| {row['device']} | {row['n_samples']} | {row['n_features']} | {row['n_landmarks']} | "
              f"{row['n_neighbors']} | {row['seconds']:.1f} | {row['peak_rss_bytes'] / 2**30:.2f} | "
              f"{row['residual_variance']:.5f} | {stages} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)
    return 0


# ----------------------------------------------------------------------------- pytest-benchmark
@pytest.mark.parametrize("n_samples", [3000])
def test_bench_landmark_isogan(benchmark, n_samples):
    """isogan landmark Isomap, L = 200."""
    from isogan.landmark import landmark_isomap

    X, truth = swiss_roll(n_samples)
    benchmark.group = f"landmark swiss roll N={n_samples}"
    model = benchmark(landmark_isomap, X, 200, n_neighbors=10, random_state=0, device="cpu")
    benchmark.extra_info["residual_variance"] = residual_variance(model.embedding, truth)


@pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")
@pytest.mark.parametrize("n_samples", [3000, 100_000])
def test_bench_landmark_isogan_cuda(benchmark, n_samples):
    """isogan landmark Isomap on the GPU, L = 200 (the GPU section: runs only with a GPU)."""
    from isogan.landmark import landmark_isomap

    X, truth = swiss_roll(n_samples)
    benchmark.group = f"landmark swiss roll N={n_samples}"
    model = benchmark(landmark_isomap, X, 200, n_neighbors=10, random_state=0, device="cuda")
    benchmark.extra_info["residual_variance"] = residual_variance(model.embedding, truth)


@pytest.mark.parametrize("n_samples", [3000])
def test_bench_landmark_sklearn_exact(benchmark, n_samples):
    """Baseline: scikit-learn's exact Isomap (it has no landmark variant)."""
    from sklearn.manifold import Isomap

    X, truth = swiss_roll(n_samples)
    benchmark.group = f"landmark swiss roll N={n_samples}"
    embedding = benchmark(Isomap(n_neighbors=10).fit_transform, X)
    benchmark.extra_info["residual_variance"] = residual_variance(embedding, truth)


if __name__ == "__main__":
    sys.exit(main())
