"""``isogan embed --scheduler``: landmark Isomap on a Dask cluster (:class:`isogan.dask.Isomap`).

``--scheduler ADDRESS`` connects to a running scheduler; ``--scheduler local:W`` starts a local
cluster of W workers (threads of this process, ``--threads-per-worker`` each: the native kernels
release the GIL, and the graph and landmark rows are then shared, not copied per worker). The input
is read lazily by the workers (:func:`isogan.io.dask_points`), so it must be at a path they see.
The embedding is written by the client as ``embedding.npy``, one row block at a time, or by the
workers as an ``embedding.zarr`` store (``--embedding-format``; by default from
:data:`ZARR_FROM_SAMPLES` points on). The plot draws at most :data:`PLOT_POINTS` evenly spaced points.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from isogan.cli._checks import CommandError, positive_int

__all__ = ["PLOT_POINTS", "ZARR_FROM_SAMPLES", "configure_dask", "run_on_dask", "scheduler_address"]

LOCAL_PREFIX = "local:"
#: ``--embedding-format auto`` writes a zarr store (in parallel, by the workers) from this many points on.
ZARR_FROM_SAMPLES = 10_000_000
#: Most points drawn in ``embedding.png`` (an evenly spaced sample beyond it).
PLOT_POINTS = 200_000
# Row blocks per worker thread when --chunk-rows is not given: enough to balance the kNN and
# triangulation tasks, few enough that per-task overhead stays small.
_BLOCKS_PER_THREAD = 4


def scheduler_address(text: str) -> str:
    """argparse ``type`` of ``--scheduler``: an address, or ``local:W`` with W >= 1.

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    str
        ``text`` unchanged.

    Raises
    ------
    argparse.ArgumentTypeError
        When ``local:`` is not followed by a positive integer, or the text is empty.
    """
    if text.startswith(LOCAL_PREFIX):
        positive_int(text[len(LOCAL_PREFIX):])
    elif not text.strip():
        raise argparse.ArgumentTypeError("expected a scheduler address (tcp://host:8786) or local:W")
    return text


def configure_dask(parser: argparse.ArgumentParser) -> None:
    """Add the Dask options of ``isogan embed``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``embed`` parser.
    """
    group = parser.add_argument_group("Dask cluster (pip install \"isogan[dask]\")")
    group.add_argument(
        "--scheduler", type=scheduler_address, default=None, metavar="ADDRESS|local:W",
        help="fit on a Dask cluster: the scheduler's address (tcp://host:8786), or local:W to start W local "
        "workers (needs --n-landmarks)",
    )
    group.add_argument("--threads-per-worker", type=positive_int, default=1, metavar="T",
                       help="threads of each local:W worker (default 1)")
    group.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="give up reaching --scheduler ADDRESS after this long (default 10)")
    group.add_argument("--embedding-format", default="auto", choices=("auto", "npy", "zarr"),
                       help=f"embedding.npy (written by the client) or embedding.zarr (by the workers); auto: zarr "
                       f"from {ZARR_FROM_SAMPLES:,} points on")


def _fail(message: str, status: int) -> int:
    print(f"isogan embed: error: {message}", file=sys.stderr)
    return status


def _open_points(args: argparse.Namespace, chunk_rows: int | None) -> tuple[Any, str, Any]:
    """The input as a row-chunked dask array (lazy for --input), its name, and the Dataset of --dataset (else None)."""
    import dask.array as da

    from isogan.datasets import load_dataset
    from isogan.io import dask_points

    dataset = None
    if args.input is not None:
        points, name = dask_points(args.input, chunk_rows), args.input.name
        if args.n_samples is not None:
            points = points[: args.n_samples]
    else:
        dataset = load_dataset(args.dataset, n_samples=args.n_samples)
        points, name = da.from_array(dataset.X, chunks=(chunk_rows or dataset.X.shape[0], -1)), args.dataset
    return (points if args.dtype is None else points.astype(args.dtype)), name, dataset


def _embedding_format(args: argparse.Namespace, n_samples: int) -> str:
    """npy or zarr, checked before the fit (zarr importable, no file in the store's place)."""
    chosen = args.embedding_format
    if chosen == "auto":
        chosen = "zarr" if n_samples >= ZARR_FROM_SAMPLES else "npy"
    if chosen == "zarr":
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise CommandError("--embedding-format zarr needs zarr: pip install zarr") from None
        if (args.out / "embedding.zarr").is_file():
            raise CommandError(f"--out {args.out} holds a file named embedding.zarr, where the zarr store goes")
    return chosen


@contextlib.contextmanager
def _connected_client(scheduler: str, threads_per_worker: int, timeout: float) -> Any:
    """A ``distributed.Client`` of the scheduler at ``scheduler``, or of a local cluster for ``local:W``."""
    import distributed

    with contextlib.ExitStack() as stack:
        if scheduler.startswith(LOCAL_PREFIX):
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=int(scheduler[len(LOCAL_PREFIX):]), threads_per_worker=threads_per_worker,
                processes=False, dashboard_address=":0"))
            client = stack.enter_context(distributed.Client(cluster, set_as_default=False))
        else:
            try:
                client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
            except (OSError, ValueError, TypeError) as error:
                raise CommandError(
                    f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s ({error}); start one with "
                    "`dask scheduler` and workers with `dask worker ADDRESS`, or pass --scheduler local:W"
                ) from None
            stack.enter_context(client)
        yield client


def _write_npy(embedding: Any, path: Path) -> None:
    """embedding.npy written on the client one row block at a time (never the whole embedding in memory)."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=embedding.dtype, shape=embedding.shape)
    start = 0
    for block in embedding.blocks:
        rows = block.compute()
        out[start:start + rows.shape[0]] = rows
        start += rows.shape[0]
    out.flush()
    del out


def run_on_dask(args: argparse.Namespace) -> int:
    """``isogan embed ... --scheduler``: fit on the cluster, write the embedding and its plot.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of :func:`isogan.cli.embed.configure`.

    Returns
    -------
    int
        0 on success, 2 when the input cannot be read, 1 when the fit is refused or fails (the
        message goes to stderr).

    Raises
    ------
    isogan.cli._checks.CommandError
        Before any work: dask missing (naming ``pip install "isogan[dask]"``), ``--out`` not
        writable, the plot or the zarr store impossible, the scheduler unreachable.
    """
    from isogan.cli.embed import plot, prepare_outputs, report
    from isogan.datasets import Dataset

    try:
        from isogan.dask import Isomap
    except ImportError as error:
        raise CommandError(str(error)) from None
    if args.n_landmarks is None:
        return _fail("--scheduler needs --n-landmarks (on a cluster only landmark Isomap runs)", 2)
    if args.device == "cuda":
        return _fail("--scheduler runs on the workers' CPUs; drop --device cuda", 2)
    prepare_outputs(args)
    start = time.perf_counter()
    try:
        points, name, dataset = _open_points(args, args.chunk_rows)
    except (ValueError, OSError, ImportError) as error:
        return _fail(str(error), 2)
    output_format = _embedding_format(args, points.shape[0])
    with _connected_client(args.scheduler, args.threads_per_worker, args.connect_timeout) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        n_threads = sum(int(worker["nthreads"]) for worker in workers)
        print(f"Dask scheduler {client.scheduler.address}: {len(workers)} worker(s), {n_threads} thread(s); "
              f"dashboard at {client.dashboard_link}")
        if args.chunk_rows is None and n_threads:
            # zarr and parquet keep their storage chunks; a .npy file and a dataset get blocks for every thread.
            rows = max(1, math.ceil(points.shape[0] / (_BLOCKS_PER_THREAD * n_threads)))
            if args.input is None:
                points = points.rechunk({0: rows})
            elif args.input.suffix.lower() == ".npy":
                points, name, dataset = _open_points(args, rows)
        print(f"input {name}: {points.shape[0]} points x {points.shape[1]} features ({points.dtype}), "
              f"{points.numblocks[0]} row blocks")
        load_seconds = time.perf_counter() - start
        isomap = Isomap(n_neighbors=args.n_neighbors, n_components=args.n_components, n_landmarks=args.n_landmarks,
                        random_state=args.random_state, neighbors_algorithm=args.neighbors_algorithm, progress=True)
        start = time.perf_counter()
        try:
            with client.as_current():
                embedding = isomap.fit_transform(points)
        except (ValueError, MemoryError, RuntimeError, ImportError, OSError) as error:
            return _fail(str(error), 1)
        fit_seconds = time.perf_counter() - start
        embedding_path = args.out / f"embedding.{output_format}"
        with client.as_current():
            if output_format == "zarr":
                embedding.to_zarr(str(embedding_path), overwrite=True)
            else:
                _write_npy(embedding, embedding_path)
            written = [str(embedding_path)]
            if not args.no_plot:
                step = max(1, math.ceil(embedding.shape[0] / PLOT_POINTS))
                picture_path = args.out / "embedding.png"
                colour, label = ((None, "") if dataset is None or dataset.colour is None
                                 else (dataset.colour[::step], dataset.colour_label))
                plot(embedding[::step].compute(), Dataset(name, None, colour, label), picture_path,
                     n_points=embedding.shape[0])
                written.append(str(picture_path))
    report({"load": load_seconds, **isomap.timings_}, fit_seconds, written)
    return 0
