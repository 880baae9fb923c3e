"""Checks every command runs before its work: output folder, option ranges, optional dependencies.

A command refuses what it could only fail on after a long fit or training run, with a one-line
message (:class:`CommandError`, printed by :func:`isogan.cli.main`), never a traceback.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

__all__ = ["CommandError", "positive_int", "prepare_output_dir", "require_plotting"]


class CommandError(Exception):
    """A refusal of the command line: the message is printed as ``isogan <command>: error: <message>``."""


def positive_int(text: str) -> int:
    """argparse ``type`` for counts that must be >= 1 (neighbours, landmarks, rows, components).

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    int

    Raises
    ------
    argparse.ArgumentTypeError
        When it is not an integer >= 1.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def prepare_output_dir(path: str | Path, files: tuple[str, ...] = ()) -> Path:
    """Create the output folder (with parents) and prove it writable, before any work.

    Parameters
    ----------
    path : str or Path
        The ``--out`` folder.
    files : tuple of str
        Names the command will write there; an existing folder in their place is refused.

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    CommandError
        When ``path`` is a file, cannot be created, or is not writable.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--out {folder} exists and is not a folder; pass a folder (created if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".isogan-write-check-"):
            pass
    except OSError as error:
        raise CommandError(f"--out {folder} cannot be written: {error.strerror or error}") from None
    for name in files:
        if (folder / name).is_dir():
            raise CommandError(f"--out {folder} holds a folder named {name}, which this command writes as a file")
    return folder


def require_plotting() -> None:
    """Refuse, before any work, a command that draws when matplotlib is missing.

    Raises
    ------
    CommandError
        Naming the extra to install.
    """
    from isogan._plotting import pyplot

    try:
        pyplot()
    except ImportError as error:
        raise CommandError(str(error)) from None
