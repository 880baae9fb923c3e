"""The ``isogan`` command line: ``embed``, ``bench``, ``demo`` and ``train``.

Each sub-command lives in its own module, which exposes ``configure(parser)`` and ``run(args)``;
modules are imported only when their command runs, so ``isogan embed`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from isogan.cli._checks import CommandError

# command name -> (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "embed": ("isogan.cli.embed", "embed a dataset with Isomap; writes embedding.npy and embedding.png"),
    "bench": ("isogan.cli.bench", "benchmark isogan against scikit-learn ('bench scaling': landmark Isomap, 10k to 1M points); writes CSV/JSON/plot"),
    "demo": ("isogan.cli.demo", "the main job: embed digits, train ManifoldGAN, evaluate, write pictures"),
    "train": ("isogan.cli.train", "train ManifoldGAN on a dataset (longer runs, --resume)"),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one sub-parser per command.

    Returns
    -------
    argparse.ArgumentParser
        The parser; each sub-parser stores its module's ``run`` in ``args.run``.
    """
    parser = argparse.ArgumentParser(prog="isogan", description="Fast Isomap and ManifoldGAN.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(module_name=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``isogan`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        Process exit status: 0 on success, 2 for a refused option or output folder (checked
        before any work, one line on stderr), 130 after Ctrl-C.
    """
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    known, _ = parser.parse_known_args(argv[:1]) if argv and argv[0] in COMMANDS else (None, None)
    if known is None:
        parser.parse_args(argv)
        return 2
    module = importlib.import_module(known.module_name)
    sub = argparse.ArgumentParser(prog=f"isogan {argv[0]}", description=COMMANDS[argv[0]][1])
    module.configure(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except CommandError as error:
        print(f"isogan {argv[0]}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # The shell's convention for a command stopped by SIGINT: 128 + 2, one line, no traceback.
        print(f"isogan {argv[0]}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
