"""Landmark Isomap at the size where its landmark rows no longer fit in memory (issue 13).

``flock /tmp/isogan-bigrun.lock python benchmarks/bench_10m.py --n-samples 10000000`` fits
``isogan.Isomap(n_neighbors=10, n_landmarks=500)`` on a float32 swiss roll in this one process and
prints one JSON row: wall time per stage (the estimator's ``timings_``), the resident memory
(``VmRSS``) sampled every 0.2 s and attributed to the stage running at that moment, the process's
peak resident memory (``VmHWM``, exact), the disk taken by the spilled landmark rows (blocks
allocated to the unlinked temporary file, read from ``/proc/self/fd``) and the residual variance of
the embedding against the true swiss-roll coordinates (:func:`isogan.bench.data.residual_variance`).
The 1-minute load average is recorded before and after the fit.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

import isogan
from isogan.bench.data import residual_variance, swiss_roll_with_coordinates
from isogan.bench.meter import _reset_peak_rss, _status_bytes

# Order in which the estimator's stages run (``Isomap.timings_`` keys, landmark mode).
STAGE_ORDER = ("validate", "knn", "connect", "landmarks", "paths", "mds")
SPILL_PREFIX = "isogan-landmark-rows-"
GIB = 2.0**30


def spill_disk_bytes() -> int:
    """Bytes of disk allocated to this process's open spill files (0 when there is none)."""
    total = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
            if SPILL_PREFIX in target:
                total += os.stat(f"/proc/self/fd/{name}").st_blocks * 512
        except OSError:
            continue
    return total


@dataclass
class Sampler:
    """Samples VmRSS and the spill file's disk blocks on a background thread."""

    interval_s: float = 0.2
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), _status_bytes("VmRSS"), spill_disk_bytes()))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "Sampler":
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def stage_peaks(samples: list[tuple[float, int, int]], fit_start: float, timings: dict[str, float]) -> dict[str, float | None]:
    """Largest sampled RSS (GiB) in each stage's time window, stages laid end to end from ``fit_start``."""
    peaks: dict[str, float | None] = {}
    start = fit_start
    for stage in STAGE_ORDER:
        stop = start + timings.get(stage, 0.0)
        inside = [rss for moment, rss, _ in samples if start <= moment < stop]
        peaks[stage] = round(max(inside) / GIB, 3) if inside else None
        start = stop
    return peaks


def main() -> None:
    """Run one fit and print its JSON row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=10_000_000)
    parser.add_argument("--n-landmarks", type=int, default=500)
    parser.add_argument("--n-neighbors", type=int, default=10)
    parser.add_argument("--memory-budget", type=int, default=None, help="bytes (default: the estimator's)")
    parser.add_argument("--output", default=None, help="also write the row to this JSON file")
    args = parser.parse_args()

    X, coordinates = swiss_roll_with_coordinates(args.n_samples, np.float32, random_state=0)
    estimator = isogan.Isomap(n_neighbors=args.n_neighbors, n_landmarks=args.n_landmarks, random_state=0,
                              memory_budget=args.memory_budget)
    peak_before_fit = _status_bytes("VmHWM")
    # The fit's own peak: VmHWM restarts from the current RSS (data generation is not counted).
    peak_reset = _reset_peak_rss()
    baseline = _status_bytes("VmRSS")
    load_before = os.getloadavg()
    with Sampler() as sampler:
        fit_start = time.perf_counter()
        estimator.fit(X)
        fit_seconds = time.perf_counter() - fit_start
    load_after = os.getloadavg()
    geodesic = estimator.landmark_model_.landmark_geodesic
    row = {
        "n_samples": args.n_samples,
        "n_landmarks": args.n_landmarks,
        "n_neighbors": args.n_neighbors,
        "dtype": "float32",
        "memory_budget": args.memory_budget,
        "spilled": isinstance(geodesic, np.memmap),
        "landmark_rows_gib": round(geodesic.nbytes / GIB, 3),
        "fit_s": round(fit_seconds, 1),
        "stage_s": {stage: round(seconds, 1) for stage, seconds in estimator.timings_.items()},
        "baseline_rss_gib": round(baseline / GIB, 3),
        "peak_rss_gib": round(_status_bytes("VmHWM") / GIB, 3),
        "peak_rss_counts_fit_only": peak_reset,
        "peak_rss_before_fit_gib": round(peak_before_fit / GIB, 3),
        "stage_peak_rss_gib": stage_peaks(sampler.samples, fit_start, estimator.timings_),
        "spill_disk_gib": round(max((disk for _, _, disk in sampler.samples), default=0) / GIB, 3),
        "residual_variance": residual_variance(estimator.embedding_, coordinates),
        "load_before": [round(value, 2) for value in load_before],
        "load_after": [round(value, 2) for value in load_after],
    }
    text = json.dumps(row)
    print(text, flush=True)
    if args.output:
        with open(args.output, "w", encoding="ascii") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
