"""Landmark Isomap on make_shapes images with the approximate kNN (issue 15): time per stage, peak memory, recall, accuracy.

Run (one configuration per process, so that the peak RSS is its own):
``PYTHONPATH=python python benchmarks/bench_landmark_approx.py --n-samples 1000000 [--neighbors-algorithm approximate]``

``Isomap(n_neighbors=10, n_landmarks=1000, n_components=4, random_state=0, neighbors_algorithm=...)``
on :func:`isogan.datasets.make_shapes` (784 features, float32), all cores. Prints one JSON line
(and writes it under ``benchmarks/results/knn-approx/``): seconds per stage (``timings_``), end to end
fit seconds, peak RSS of the process (``ru_maxrss``, data generation included), residual variance of
the embedding against the four true factors (angle, scale, x, y; :func:`isogan.bench.data.residual_variance`),
and recall@10 of the fit's kNN graph on ``--recall-queries`` random points against isogan's exact
brute force (the graph is captured by wrapping ``isogan.knn.knn_graph`` for the run; the exact search
of those queries runs after the fit and is not in its time).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import isogan.knn as knn_module
import numpy as np
from isogan import Isomap
from isogan.bench.data import residual_variance
from isogan.datasets import make_shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument("--n-landmarks", type=int, default=1000)
    parser.add_argument("--neighbors-algorithm", default="approximate")
    parser.add_argument("--recall-queries", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "knn-approx")
    args = parser.parse_args()

    start = time.perf_counter()
    X, factors = make_shapes(args.n_samples, random_state=0)
    data_seconds = time.perf_counter() - start

    captured = {}
    original = knn_module.knn_graph

    def capturing_knn_graph(*call_args, **kwargs):
        captured["graph"] = original(*call_args, **kwargs)
        return captured["graph"]

    knn_module.knn_graph = capturing_knn_graph
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    isomap = Isomap(n_neighbors=10, n_landmarks=args.n_landmarks, n_components=4, random_state=0,
                    neighbors_algorithm=args.neighbors_algorithm)
    start = time.perf_counter()
    embedding = isomap.fit_transform(X)
    fit_seconds = time.perf_counter() - start
    knn_module.knn_graph = original
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    row = {"n_samples": args.n_samples, "n_landmarks": args.n_landmarks, "neighbors_algorithm": args.neighbors_algorithm,
           "fit_seconds": fit_seconds, "timings": isomap.timings_, "peak_rss_gib": peak_gib,
           "data_seconds": data_seconds, "residual_variance": residual_variance(embedding, factors),
           "load_before": load}
    graph = captured.get("graph")
    if graph is not None and args.recall_queries:
        queries = np.sort(np.random.default_rng(1).choice(args.n_samples, args.recall_queries, replace=False))
        _, exact = knn_module.kneighbors(X, X[queries], 11, algorithm="brute")
        own = exact == queries[:, None]
        own[~own.any(axis=1), -1] = True
        exact = exact[~own].reshape(queries.size, 10)
        found = graph.indices.reshape(args.n_samples, 10)[queries]
        row["recall_at_10"] = knn_module.recall_at_k(found, exact)
    print(json.dumps(row))
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"landmark_{args.neighbors_algorithm}_{args.n_samples}.json"
    (args.out / name).write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
