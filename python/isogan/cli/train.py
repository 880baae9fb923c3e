"""``isogan train``: train ManifoldGAN on any dataset, with ``--resume`` for long runs.

torch is imported only inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import os

from isogan.cli._checks import positive_int, prepare_output_dir, require_plotting
from isogan.gan.datasets import DATASETS


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the training options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command parser.
    """
    parser.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)} (default digits)")
    parser.add_argument("--data-path", default=None, help="local file or directory for 'mnist' and 'folder'")
    parser.add_argument("--n-samples", type=positive_int, default=None, help="use at most this many images")
    parser.add_argument("--out", required=True, help="output directory (checkpoint.pt, metrics, pictures)")
    parser.add_argument("--epochs", type=float, default=200.0, help="passes over the training images (default 200)")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="images per step (default 128)")
    parser.add_argument("--n-neighbors", type=positive_int, default=10, help="Isomap neighbours (default 10)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole run (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="GAN device")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Train and evaluate.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options from :func:`configure`.

    Returns
    -------
    int
        Exit status (0 on success).
    """
    from isogan.gan.pipeline import PipelineConfig, run_pipeline

    prepare_output_dir(args.out, ("checkpoint.pt", "metrics.json"))
    require_plotting()

    if args.dataset not in DATASETS:
        raise SystemExit(f"isogan train: unknown dataset {args.dataset!r}; expected one of {', '.join(DATASETS)}")
    if args.epochs <= 0 or args.batch_size < 1:
        raise SystemExit("isogan train: --epochs must be > 0 and --batch-size >= 1")
    config = PipelineConfig(
        out=args.out, dataset=args.dataset, data_path=args.data_path, n_samples=args.n_samples,
        seed=args.seed, device=args.device, n_neighbors=args.n_neighbors, threads=args.threads,
        resume=args.resume, progress=not args.quiet, n_epochs=args.epochs,
        gan_params={"batch_size": args.batch_size},
    )
    try:
        results = run_pipeline(config)
    except (FileNotFoundError, ValueError, RuntimeError, FloatingPointError) as error:
        raise SystemExit(f"isogan train: {error}") from error
    print(json.dumps({key: value for key, value in results.items() if not isinstance(value, dict)}))
    print(f"outputs in {os.path.abspath(args.out)}")
    return 0
