"""Approximate kNN (issue 15): faiss HNSW (isogan's algorithm='approximate') vs pynndescent vs isogan's exact brute force.

Run: ``PYTHONPATH=python python benchmarks/bench_knn_approx.py [--n-samples 100000] [--exact-queries 5000]
[--variant M/EFC/EFS/PROJECTED ...] [--no-pynndescent] [--output-name NAME]`` (writes ``benchmarks/results/knn-approx/knn_approx.json``
and prints one table).

Data: :func:`isogan.datasets.make_shapes` images (784 features, float32), k=10, every point's
neighbours among the others, all cores. One run, all three searches side by side, with the load
average (``os.getloadavg``) before each.

- ``isogan approximate``: ``isogan.knn.kneighbors(X, None, 10, algorithm='approximate')``, the
  whole path: HNSW build, search, exact re-ranking.
- ``isogan HNSW M/EFC/EFS/PROJECTED`` (``--variant``, any number): :class:`isogan._backend.approx_knn.HnswIndex`
  with those ``n_links`` / ``ef_construction`` / ``ef_search`` / ``projected_features`` (``none``:
  the points themselves), build and search (exact re-ranking, stranded-row repair, recall
  estimate) timed apart.
- ``pynndescent``: ``NNDescent(X, n_neighbors=11)`` with its defaults, then ``neighbor_graph``
  (each point's own index dropped). Its numba JIT is compiled first on 2,000 points and reported
  apart, so the timed row is a warm run (a first call in a fresh process pays the JIT too).
- ``isogan exact brute``: ``algorithm='brute'``. With ``--exact-queries Q < N`` only Q random
  queries are searched against all N points and the time is scaled by N / Q (brute force costs
  the same per query); recall of both approximate searches is measured on those Q queries.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from isogan._backend.approx_knn import HnswIndex
from isogan.datasets import make_shapes
from isogan.knn import kneighbors, recall_at_k

N_NEIGHBORS = 10


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _drop_own(indices: np.ndarray, own: np.ndarray) -> np.ndarray:
    """(Q, k+1) neighbour lists without each query's own index (the last entry where it is absent)."""
    mask = indices == own[:, None]
    mask[~mask.any(axis=1), -1] = True
    return indices[~mask].reshape(indices.shape[0], indices.shape[1] - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--exact-queries", type=int, default=5_000, help="queries of the exact search (N: all)")
    parser.add_argument("--variant", action="append", default=[], metavar="M/EFC/EFS/PROJECTED",
                        help="an HnswIndex setting also measured, e.g. 16/100/32/none")
    parser.add_argument("--output-name", default="knn_approx.json", help="file name of the json under --out")
    parser.add_argument("--no-pynndescent", action="store_true", help="skip the pynndescent row")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "knn-approx")
    args = parser.parse_args()

    rows: list[dict] = []
    X, _ = make_shapes(args.n_samples, random_state=0)
    n_samples = X.shape[0]
    queries = np.sort(np.random.default_rng(1).choice(n_samples, min(args.exact_queries, n_samples), replace=False))
    print(f"make_shapes N={n_samples} D={X.shape[1]} {X.dtype}, k={N_NEIGHBORS}, cpu count {os.cpu_count()}")

    load = _load()
    start = time.perf_counter()
    exact_distances, exact_indices = kneighbors(X, X[queries], N_NEIGHBORS + 1, algorithm="brute")
    exact_seconds = time.perf_counter() - start
    exact = _drop_own(exact_indices, queries)
    scale = n_samples / queries.size
    rows.append({"search": "isogan exact brute", "seconds": exact_seconds * scale, "measured_seconds": exact_seconds,
                 "measured_queries": int(queries.size), "recall_at_10": 1.0, "load_before": load})

    load = _load()
    start = time.perf_counter()
    approx_distances, approx_indices = kneighbors(X, None, N_NEIGHBORS, algorithm="approximate")
    seconds = time.perf_counter() - start
    found = approx_indices[queries]
    # Found pairs carry the exact search's distances bit for bit.
    same = all(
        exact_distances[row, list(exact_indices[row]).index(j)] == approx_distances[q, col]
        for row, q in enumerate(queries) for col, j in enumerate(found[row]) if j in exact_indices[row]
    )
    rows.append({"search": "isogan approximate (faiss HNSW)", "seconds": seconds,
                 "recall_at_10": recall_at_k(found, exact), "found_distances_bit_identical": same,
                 "load_before": load})

    for variant in args.variant:
        n_links, ef_construction, ef_search, projected = variant.split("/")
        load = _load()
        start = time.perf_counter()
        index = HnswIndex(X, os.cpu_count(), n_links=int(n_links), ef_construction=int(ef_construction),
                          ef_search=int(ef_search), projected_features=None if projected == "none" else int(projected))
        build_seconds = time.perf_counter() - start
        _, variant_indices = index.kneighbors(None, N_NEIGHBORS, os.cpu_count())
        seconds = time.perf_counter() - start
        rows.append({"search": f"isogan HNSW {variant}", "seconds": seconds, "build_seconds": build_seconds,
                     "search_seconds": seconds - build_seconds, "researched_rows": index.n_researched_,
                     "recall_estimate": index.recall_estimate_,
                     "recall_at_10": recall_at_k(variant_indices[queries], exact), "load_before": load})

    try:
        from pynndescent import NNDescent
    except ImportError:
        print("pynndescent not installed: its row is skipped")
        NNDescent = None
    if NNDescent is not None and not args.no_pynndescent:
        start = time.perf_counter()
        _ = NNDescent(X[:2000], n_neighbors=N_NEIGHBORS + 1, random_state=0).neighbor_graph
        jit_seconds = time.perf_counter() - start
        load = _load()
        start = time.perf_counter()
        graph_indices, _ = NNDescent(X, n_neighbors=N_NEIGHBORS + 1, random_state=0).neighbor_graph
        seconds = time.perf_counter() - start
        nnd = _drop_own(graph_indices[queries].astype(np.int64), queries)
        rows.append({"search": "pynndescent 0.7 (NN-descent)", "seconds": seconds, "jit_warmup_seconds": jit_seconds,
                     "recall_at_10": recall_at_k(nnd, exact), "load_before": load})

    exact_time = rows[0]["seconds"]
    print(f"{'search':<34}{'seconds':>10}{'recall@10':>11}{'speed-up':>10}  load before")
    for row in rows:
        print(f"{row['search']:<34}{row['seconds']:>10.1f}{row['recall_at_10']:>11.4f}"
              f"{exact_time / row['seconds']:>9.1f}x  {row['load_before']}")
    print(f"exact: {queries.size} queries measured in {exact_seconds:.1f} s, scaled by {scale:.0f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / args.output_name).write_text(json.dumps({"n_samples": n_samples, "n_features": int(X.shape[1]),
                                                          "k": N_NEIGHBORS, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
