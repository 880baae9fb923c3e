"""Datasets for the ``isogan embed`` command: scikit-learn's manifolds and user files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Generated manifolds are drawn with this seed so that every run embeds the same points.
DATASET_SEED = 0

# Default number of points drawn from the generated manifolds.
DEFAULT_GENERATED_SAMPLES = 2000

NAMED_DATASETS = ("digits", "swiss-roll", "s-curve")


@dataclass(frozen=True)
class Dataset:
    """Points to embed and what to colour them by.

    Attributes
    ----------
    name : str
        Dataset name, or the file path it was read from.
    X : ndarray of shape (n_samples, n_features)
        The points, float64.
    colour : ndarray of shape (n_samples,) or None
        Class label or true manifold coordinate of each point; None for files, which carry none.
    colour_label : str
        What ``colour`` holds, for the plot's colour bar.
    """

    name: str
    X: np.ndarray
    colour: np.ndarray | None
    colour_label: str


def load_dataset(name_or_path: str, n_samples: int | None = None) -> Dataset:
    """Load a named dataset or a ``.npy`` / ``.csv`` file of points.

    Parameters
    ----------
    name_or_path : str
        'digits' (scikit-learn's 8x8 digits, 1797 x 64, coloured by label), 'swiss-roll' or
        's-curve' (3-D manifolds, coloured by the true position along the manifold), or a path
        to a ``.npy`` file holding a 2-D numeric array or a ``.csv`` file of numbers, one point a
        row (comma separated, no header).
    n_samples : int, optional
        Number of points: drawn from the generated manifolds (default 2000), or the first
        ``n_samples`` rows of digits and of files (default all).

    Returns
    -------
    Dataset

    Raises
    ------
    FileNotFoundError
        If a path is given that does not exist.
    ValueError
        If the name is unknown, the file extension is not ``.npy``/``.csv``, the file is not a
        2-D numeric array, or ``n_samples`` is below 1.
    """
    if n_samples is not None and n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
    if name_or_path in NAMED_DATASETS:
        return _load_named(name_or_path, n_samples)
    path = Path(name_or_path)
    if path.suffix.lower() not in (".npy", ".csv"):
        raise ValueError(
            f"Unknown dataset {name_or_path!r}: expected one of {', '.join(NAMED_DATASETS)} or a path to a"
            " .npy file (2-D numeric array) or .csv file (numbers, comma separated, one point a row)."
        )
    if not path.is_file():
        raise FileNotFoundError(f"Dataset file {str(path)!r} does not exist.")
    X = _read_points(path)
    if n_samples is not None:
        X = X[:n_samples]
    return Dataset(str(path), X, None, "")


def _load_named(name: str, n_samples: int | None) -> Dataset:
    from sklearn import datasets

    if name == "digits":
        X, labels = datasets.load_digits(return_X_y=True)
        if n_samples is not None:
            X, labels = X[:n_samples], labels[:n_samples]
        return Dataset(name, X.astype(np.float64), labels, "digit")
    count = DEFAULT_GENERATED_SAMPLES if n_samples is None else n_samples
    generate = datasets.make_swiss_roll if name == "swiss-roll" else datasets.make_s_curve
    X, position = generate(n_samples=count, random_state=DATASET_SEED)
    return Dataset(name, X, position, "position along the manifold")


def _read_points(path: Path) -> np.ndarray:
    expected = (
        "a 2-D numeric array saved with numpy.save"
        if path.suffix.lower() == ".npy"
        else "numbers separated by commas, one point a row, no header"
    )
    try:
        if path.suffix.lower() == ".npy":
            X = np.load(path, allow_pickle=False)
        else:
            X = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except (ValueError, OSError) as error:
        raise ValueError(f"Could not read {str(path)!r}: expected {expected}. ({error})") from error
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0 or not np.issubdtype(X.dtype, np.number):
        raise ValueError(
            f"Could not read {str(path)!r}: expected {expected}; found an array of shape {X.shape} and dtype {X.dtype}."
        )
    if np.iscomplexobj(X):
        raise ValueError(f"Could not read {str(path)!r}: expected {expected}; found complex numbers.")
    return X.astype(np.float64, copy=False) if X.dtype != np.float32 else X
