"""``isogan embed``: embed a dataset with Isomap, write embedding.npy and embedding.png."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from isogan.cli._checks import positive_int, prepare_output_dir, require_plotting
from isogan.cli._embed_dask import configure_dask
from isogan.datasets import Dataset, load_dataset

OUTPUT_FILES = ("embedding.npy", "embedding.png")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``embed`` options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    """
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--dataset",
        metavar="NAME|PATH",
        help="digits, swiss-roll, s-curve, shapes, or a .npy/.csv file of points (one a row)",
    )
    source.add_argument(
        "--input",
        type=Path,
        metavar="PATH",
        help="a float32/float64 .npy file read out of core in blocks of --chunk-rows rows (needs --n-landmarks); "
        "with --scheduler also a zarr array (.zarr) or .parquet file(s), read by the workers",
    )
    parser.add_argument(
        "--n-landmarks", type=positive_int, default=None, metavar="L", help="landmark Isomap with L landmarks (default exact)"
    )
    parser.add_argument(
        "--chunk-rows", type=positive_int, default=None, metavar="R", help="rows of --input held at a time (default 65536)"
    )
    parser.add_argument("--random-state", type=int, default=0, metavar="SEED", help="seed of the landmark choice")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--no-plot", action="store_true", help="write embedding.npy only (no matplotlib needed)")
    parser.add_argument("--n-neighbors", type=positive_int, default=10, metavar="K", help="neighbours per point (default 10)")
    parser.add_argument("--n-components", type=positive_int, default=2, metavar="C", help="embedding dimension (default 2)")
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the stages run (default auto)"
    )
    parser.add_argument(
        "--neighbors-algorithm",
        default="auto",
        choices=("auto", "brute", "kd_tree", "ball_tree", "approximate"),
        help="kNN search: exact (auto, brute, kd_tree, ball_tree; default auto) or approximate "
        '(HNSW, recall@10 >= 0.95 on swiss-roll and shapes; needs pip install "isogan[approx]")',
    )
    parser.add_argument(
        "--n-samples",
        type=positive_int,
        default=None,
        metavar="N",
        help="points to draw from swiss-roll/s-curve (default 2000), or first N rows of digits/files",
    )
    parser.add_argument(
        "--dtype", default=None, choices=("float32", "float64"),
        help="working precision (default float64; --input keeps the file's float32 or float64)",
    )
    configure_dask(parser)


def run(args: argparse.Namespace) -> int:
    """Embed the dataset, print the time of each stage, write the embedding and its picture.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of :func:`configure`.

    Returns
    -------
    int
        Exit status: 0 on success, 2 when the dataset cannot be read, 1 when Isomap refuses the
        input or an optional dependency is missing (the message goes to stderr).

    Raises
    ------
    isogan.cli._checks.CommandError
        Before any work, when ``--out`` cannot be written or the plot cannot be drawn.
    """
    from isogan.isomap import Isomap

    if args.scheduler is not None:
        from isogan.cli._embed_dask import run_on_dask

        return run_on_dask(args)
    if args.input is not None:
        return _run_out_of_core(args)
    prepare_outputs(args)
    start = time.perf_counter()
    try:
        dataset = load_dataset(args.dataset, n_samples=args.n_samples)
    except (ValueError, OSError) as error:
        print(f"isogan embed: error: {error}", file=sys.stderr)
        return 2
    X = dataset.X.astype(args.dtype or "float64", copy=False)
    load_seconds = time.perf_counter() - start
    print(f"dataset {dataset.name}: {X.shape[0]} points x {X.shape[1]} features ({X.dtype})")

    isomap = Isomap(
        n_neighbors=args.n_neighbors,
        n_components=args.n_components,
        device=args.device,
        n_landmarks=args.n_landmarks,
        random_state=args.random_state,
        neighbors_algorithm=args.neighbors_algorithm,
    )
    start = time.perf_counter()
    try:
        embedding = isomap.fit_transform(X)
    except (ValueError, MemoryError, RuntimeError, ImportError) as error:
        print(f"isogan embed: error: {error}", file=sys.stderr)
        return 1
    fit_seconds = time.perf_counter() - start
    _write_outputs(args, embedding, dataset, {"load": load_seconds, **isomap.timings_}, fit_seconds)
    return 0


def _run_out_of_core(args: argparse.Namespace) -> int:
    """Landmark Isomap of a .npy file that need not fit in memory: kNN over blocks of rows.

    Memory is bounded by the landmark rows (L x N), the kNN graph (N x k, twice) and two blocks
    of ``--chunk-rows`` input rows, independent of the number of features.
    """
    from isogan.landmark import landmark_isomap

    if args.n_landmarks is None:
        print("isogan embed: error: --input needs --n-landmarks (exact Isomap needs an N x N matrix)", file=sys.stderr)
        return 2
    if not args.input.is_file():
        print(f"isogan embed: error: no such file: {args.input}", file=sys.stderr)
        return 2
    prepare_outputs(args)
    start = time.perf_counter()
    try:
        model = landmark_isomap(
            args.input,
            args.n_landmarks,
            args.n_components,
            n_neighbors=args.n_neighbors,
            random_state=args.random_state,
            chunk_rows=args.chunk_rows,
            device=args.device,
            neighbors_algorithm=args.neighbors_algorithm,
        )
    except (ValueError, MemoryError, RuntimeError, OSError, ImportError) as error:
        print(f"isogan embed: error: {error}", file=sys.stderr)
        return 1
    fit_seconds = time.perf_counter() - start
    dataset = Dataset(name=args.input.name, X=model.embedding, colour=None, colour_label="")
    _write_outputs(args, model.embedding, dataset, model.timings, fit_seconds)
    return 0


def prepare_outputs(args: argparse.Namespace) -> None:
    """Before the fit: the output folder exists and is writable, and the plot can be drawn.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (``out``, ``no_plot``).

    Raises
    ------
    isogan.cli._checks.CommandError
        As :func:`isogan.cli._checks.prepare_output_dir` and :func:`isogan.cli._checks.require_plotting`.
    """
    prepare_output_dir(args.out, OUTPUT_FILES)
    if not args.no_plot:
        require_plotting()


def _write_outputs(args: argparse.Namespace, embedding: np.ndarray, dataset: Dataset, timings: dict[str, float],
                   fit_seconds: float) -> None:
    """Write embedding.npy (and embedding.png unless --no-plot), then print the time of each stage."""
    embedding_path = args.out / "embedding.npy"
    np.save(embedding_path, embedding)
    written = [str(embedding_path)]
    if not args.no_plot:
        picture_path = args.out / "embedding.png"
        plot(embedding, dataset, picture_path)
        written.append(str(picture_path))
    report(timings, fit_seconds, written)


def report(timings: dict[str, float], fit_seconds: float, written: list[str]) -> None:
    """Print the time of each stage, the whole fit's and the files written.

    Parameters
    ----------
    timings : dict of str to float
        Seconds per stage, in the order to print.
    fit_seconds : float
        Seconds of the whole fit.
    written : list of str
        Paths of the files written.
    """
    print(f"{'stage':<12}{'seconds':>10}")
    for stage, seconds in timings.items():
        print(f"{stage:<12}{seconds:>10.3f}")
    print(f"{'total fit':<12}{fit_seconds:>10.3f}")
    print(f"wrote {' and '.join(written)}")
    sys.stdout.flush()


def plot(embedding: np.ndarray, dataset: Dataset, path: Path, n_points: int | None = None) -> None:
    """Scatter the first two coordinates (or the only one against the point index).

    Parameters
    ----------
    embedding : ndarray of shape (n_shown, n_components)
        The coordinates to draw.
    dataset : isogan.datasets.Dataset
        Its name titles the plot; its colour (if any) colours the points.
    path : Path
        The picture written.
    n_points : int or None, default=None
        Points of the whole embedding when ``embedding`` is an evenly spaced sample of it.
    """
    from isogan._plotting import pyplot

    plt = pyplot()

    if embedding.shape[1] >= 2:
        x, y = embedding[:, 0], embedding[:, 1]
        x_label, y_label = "isomap0", "isomap1"
    else:
        x, y = np.arange(embedding.shape[0]), embedding[:, 0]
        x_label, y_label = "point index", "isomap0"
    figure, axes = plt.subplots(figsize=(6, 5), dpi=120)
    if dataset.colour is None:
        axes.scatter(x, y, s=4)
    else:
        # Class labels get a qualitative palette, continuous coordinates a diverging one.
        labels = np.issubdtype(dataset.colour.dtype, np.integer)
        scatter = axes.scatter(x, y, c=dataset.colour, s=4, cmap="tab10" if labels else "Spectral")
        figure.colorbar(scatter, ax=axes, label=dataset.colour_label)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    shown = "" if n_points is None or n_points == embedding.shape[0] else f", {embedding.shape[0]} shown"
    axes.set_title(f"Isomap of {dataset.name} ({n_points or embedding.shape[0]} points{shown})")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
