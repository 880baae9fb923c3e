"""``isogan bench``: time, peak memory and parity of isogan against scikit-learn on the swiss roll.

Each measured run happens in a fresh worker process (see :mod:`isogan.bench.harness` for how time
and peak memory are measured). The command prints a table and writes ``results.csv``,
``results.json`` (rows, every raw run, machine and command), ``results.md`` (the table in Markdown) and
``scaling.png`` into ``--out``.

``isogan bench scaling ...`` is the landmark-Isomap scaling benchmark (10k to 1M points) of
:mod:`isogan.cli.bench_scaling`; its options go after the word ``scaling``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile

from isogan.cli._checks import positive_int, prepare_output_dir, require_plotting
from isogan.bench.harness import BenchmarkConfig, RunParams, run_benchmark
from isogan.bench.meter import machine_info
from isogan.bench.report import format_table, write_results
from isogan.cli import bench_scaling


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``isogan bench`` options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    """
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[2000, 4000, 8000, 16000], help="swiss roll sizes N (default: 2000 4000 8000 16000)")
    parser.add_argument("--out", default="bench-results", help="output directory (default: bench-results)")
    parser.add_argument("--dtype", nargs="+", choices=("float64", "float32"), default=["float64"], help="input dtype(s) (default: float64)")
    parser.add_argument("--n-neighbors", type=positive_int, default=10, help="k of the neighbour graph (default: 10)")
    parser.add_argument("--n-components", type=positive_int, default=2, help="embedding dimension (default: 2)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="isogan's device (default: auto)")
    parser.add_argument("--stages", action="store_true", help="also time each stage (knn, paths, mds) separately")
    parser.add_argument("--no-sklearn", action="store_true", help="measure isogan only")
    parser.add_argument("--sklearn-max-size", type=positive_int, default=None, help="skip scikit-learn above this N")
    parser.add_argument("--repeat", type=positive_int, default=1, help="runs per implementation (median time reported; default: 1)")
    modes = parser.add_subparsers(
        dest="bench_mode",
        metavar="MODE",
        title="modes",
        description="without a mode: exact Isomap against scikit-learn with the options above",
    )
    scaling = modes.add_parser(
        "scaling",
        help="landmark Isomap from 10k to 1M points: time, memory, accuracy, log-log plot (options after 'scaling')",
        description=bench_scaling.DESCRIPTION,
    )
    bench_scaling.configure(scaling)


def _command_line(args: argparse.Namespace) -> str:
    """Return an ``isogan bench`` command line equivalent to ``args`` (recorded with the results)."""
    words = ["isogan", "bench", "--sizes", *map(str, args.sizes), "--out", args.out, "--dtype", *args.dtype]
    words += ["--n-neighbors", str(args.n_neighbors), "--n-components", str(args.n_components), "--device", args.device]
    words += ["--stages"] if args.stages else []
    words += ["--no-sklearn"] if args.no_sklearn else []
    words += ["--sklearn-max-size", str(args.sklearn_max_size)] if args.sklearn_max_size is not None else []
    words += ["--repeat", str(args.repeat)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args``; print the table and write the result files.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see :func:`configure`).

    Returns
    -------
    int
        0 when every run succeeded, 1 when some failed (the others are still reported); for the
        ``scaling`` mode see :func:`isogan.cli.bench_scaling.run`.
    """
    if args.bench_mode == "scaling":
        return bench_scaling.run(args)
    prepare_output_dir(args.out)
    require_plotting()
    config = BenchmarkConfig(
        sizes=args.sizes,
        dtypes=args.dtype,
        params=RunParams(n_neighbors=args.n_neighbors, n_components=args.n_components, device=args.device),
        stages=args.stages,
        sklearn=not args.no_sklearn,
        sklearn_max_size=args.sklearn_max_size,
        repeat=args.repeat,
    )
    metadata = {
        "command": _command_line(args),
        "machine_before": machine_info(),
        "config": {
            "sizes": list(config.sizes),
            "dtypes": list(config.dtypes),
            "n_neighbors": config.params.n_neighbors,
            "n_components": config.params.n_components,
            "device": config.params.device,
            "stages": config.stages,
            "sklearn": config.sklearn,
            "sklearn_max_size": config.sklearn_max_size,
            "repeat": config.repeat,
        },
    }
    with tempfile.TemporaryDirectory(prefix="isogan-bench-") as workdir:
        result = run_benchmark(config, workdir, progress=lambda message: print(message, file=sys.stderr, flush=True))
        metadata["machine_after"] = machine_info()
        paths = write_results(result, metadata, args.out)
    print(format_table(result.rows))
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    if result.errors:
        print(f"{len(result.errors)} run(s) failed; see 'errors' in {paths['json']}", file=sys.stderr)
        return 1
    return 0
