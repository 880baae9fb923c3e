"""``isogan bench scaling``: landmark Isomap time, peak memory and accuracy from 10k to 1M points.

Each run (one method, device and size) happens in a fresh worker process; see
:mod:`isogan.bench.scaling` for how it is measured. The command prints progress per run and a
table, and writes ``landmark_scaling.csv``, ``landmark_scaling.json`` (rows, raw runs, machine and
command), ``landmark_scaling.md`` and ``landmark_scaling.png`` (log-log time and peak memory against
N) into ``--out``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile

from isogan._backend.approx_knn import faiss_module
from isogan.bench.data import BENCH_DATASETS
from isogan.bench.meter import machine_info
from isogan.cli._checks import positive_int, prepare_output_dir, require_plotting
from isogan.bench.scaling import DEVICES, METHODS, ScalingConfig, run_scaling
from isogan.bench.scaling_report import format_scaling_table, write_scaling_results

DESCRIPTION = (
    "Time, peak memory and residual variance of landmark Isomap on the swiss roll or shape images, from 10k to 1M points "
    "(one fresh process per method, device and size), with isogan's exact Isomap and scikit-learn's "
    "Isomap as references at the sizes where they fit. Writes landmark_scaling.csv/.json/.md and a "
    "log-log plot landmark_scaling.png into --out."
)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``isogan bench scaling`` options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The mode's parser.
    """
    defaults = ScalingConfig()
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=list(defaults.sizes), help="sizes N (default: 10000 30000 100000 300000 1000000)")
    parser.add_argument("--dataset", choices=BENCH_DATASETS, default=defaults.dataset, help="swiss-roll: 3-D swiss roll; shapes: 28 x 28 images of an L from four known factors (isogan.datasets.make_shapes) (default: swiss-roll)")
    parser.add_argument("--neighbors-algorithm", choices=("auto", "brute", "kd_tree", "approximate"), default=defaults.neighbors_algorithm, help="neighbour search of landmark Isomap; approximate needs isogan[approx] (default: auto)")
    parser.add_argument("--n-landmarks", type=positive_int, default=defaults.n_landmarks, help=f"landmarks L, MaxMin (default: {defaults.n_landmarks})")
    parser.add_argument("--n-neighbors", type=positive_int, default=defaults.n_neighbors, help=f"k of the neighbour graph (default: {defaults.n_neighbors})")
    parser.add_argument("--n-components", type=positive_int, default=defaults.n_components, help=f"embedding dimension (default: {defaults.n_components})")
    parser.add_argument("--dtype", choices=("float32", "float64"), default=defaults.dtype, help=f"input dtype (default: {defaults.dtype})")
    parser.add_argument("--device", nargs="+", choices=DEVICES, default=list(defaults.devices), help="devices of the isogan runs; one that is not usable is reported as skipped (default: cpu cuda)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(defaults.methods), help="landmark: isogan landmark Isomap; exact: isogan Isomap; sklearn: scikit-learn Isomap, CPU only (default: all three)")
    parser.add_argument("--sklearn-max-size", type=positive_int, default=defaults.sklearn_max_size, help=f"largest N for scikit-learn (default: {defaults.sklearn_max_size})")
    parser.add_argument("--exact-max-size", type=positive_int, default=defaults.exact_max_size, help=f"largest N for isogan's exact Isomap (default: {defaults.exact_max_size})")
    parser.add_argument("--timeout-per-size", type=_positive_float, default=defaults.timeout_s, metavar="SECONDS", help=f"kill a run (one method, device and size) after this many seconds; larger sizes of that method are then skipped (default: {defaults.timeout_s:g})")
    parser.add_argument("--memory-limit-gib", type=_positive_float, default=None, metavar="GIB", help="refuse runs predicted to need more host memory than this (default: the memory available when each run starts)")
    parser.add_argument("--out", default="bench-scaling", help="output directory (default: bench-scaling)")


def _config(args: argparse.Namespace) -> ScalingConfig:
    return ScalingConfig(
        sizes=sorted(set(args.sizes)),
        n_landmarks=args.n_landmarks,
        n_neighbors=args.n_neighbors,
        n_components=args.n_components,
        dtype=args.dtype,
        devices=list(dict.fromkeys(args.device)),
        methods=list(dict.fromkeys(args.methods)),
        sklearn_max_size=args.sklearn_max_size,
        exact_max_size=args.exact_max_size,
        timeout_s=args.timeout_per_size,
        memory_limit_bytes=None if args.memory_limit_gib is None else int(args.memory_limit_gib * 2**30),
        dataset=args.dataset,
        neighbors_algorithm=args.neighbors_algorithm,
    )


def _command_line(args: argparse.Namespace) -> str:
    """Return an ``isogan bench scaling`` command line equivalent to ``args`` (recorded with the results)."""
    words = ["isogan", "bench", "scaling", "--sizes", *map(str, args.sizes), "--n-landmarks", str(args.n_landmarks)]
    words += ["--n-neighbors", str(args.n_neighbors), "--n-components", str(args.n_components), "--dtype", args.dtype]
    words += ["--device", *args.device, "--methods", *args.methods]
    words += ["--sklearn-max-size", str(args.sklearn_max_size), "--exact-max-size", str(args.exact_max_size)]
    words += ["--timeout-per-size", f"{args.timeout_per_size:g}"]
    words += ["--memory-limit-gib", f"{args.memory_limit_gib:g}"] if args.memory_limit_gib is not None else []
    words += ["--dataset", args.dataset, "--neighbors-algorithm", args.neighbors_algorithm, "--out", args.out]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    """Run the scaling benchmark described by ``args``; print the table and write the result files.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see :func:`configure`).

    Returns
    -------
    int
        0 when every run was measured or skipped for a stated reason, 1 when some run failed or
        timed out (the others are still reported), 2 when the options contradict each other.
    """
    config = _config(args)
    try:
        config.check()
        if config.neighbors_algorithm == "approximate" and "landmark" in config.methods:
            faiss_module()
    except (ValueError, ImportError) as error:
        print(f"isogan bench scaling: error: {error}", file=sys.stderr)
        return 2
    prepare_output_dir(args.out)
    require_plotting()
    metadata = {"command": _command_line(args), "machine_before": machine_info(), "config": {**vars(config), "sizes": list(config.sizes)}}
    with tempfile.TemporaryDirectory(prefix="isogan-scaling-") as workdir:
        result = run_scaling(config, workdir, progress=lambda message: print(message, file=sys.stderr, flush=True))
    metadata["machine_after"] = machine_info()
    paths = write_scaling_results(result, metadata, args.out)
    print(format_scaling_table(result.rows))
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    if result.failures:
        print(f"{len(result.failures)} run(s) failed or timed out; see 'status' and 'reason' in {paths['csv']}", file=sys.stderr)
        return 1
    return 0
