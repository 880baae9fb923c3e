"""``isogan demo``: the main job on scikit-learn's bundled digits.

Embeds the digits with :class:`isogan.Isomap`, trains :class:`~isogan.gan.ManifoldGAN` on the
Isomap coordinates, scores it and writes ``embedding.png``, ``samples.png``, ``traversal.png``,
``metrics.json`` and ``checkpoint.pt`` under ``--out``. Tuned to finish within 300 s on a
2-core CPU. torch is imported only inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from isogan.cli._checks import prepare_output_dir, require_plotting

DEMO_STEPS = 4000


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command parser.
    """
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole run (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="GAN device")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: fastest for these small networks and reproducible)",
    )
    # reduced-step runs for tests and quick looks; not part of the advertised interface
    parser.add_argument("--steps", type=int, default=DEMO_STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the demo.

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

    if args.steps < 1:
        raise SystemExit(f"isogan demo: --steps must be >= 1, got {args.steps}")
    started = time.perf_counter()
    config = PipelineConfig(
        out=args.out, dataset="digits", seed=args.seed, device=args.device, n_steps=args.steps,
        threads=args.threads, progress=not args.quiet,
    )
    try:
        results = run_pipeline(config)
    except (FileNotFoundError, ValueError, RuntimeError, FloatingPointError) as error:
        raise SystemExit(f"isogan demo: {error}") from error
    summary = {key: round(results[key], 4) for key in
               ("fd", "fd_real", "kid", "precision", "recall", "coord_error", "coord_error_shuffled")}
    print(json.dumps(summary))
    print(f"wrote embedding.png, samples.png, traversal.png, metrics.json and checkpoint.pt to "
          f"{os.path.abspath(args.out)} in {time.perf_counter() - started:.1f} s")
    return 0
