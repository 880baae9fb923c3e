"""Datasets for ``isogan embed`` and ``isogan bench scaling``: manifolds with known factors and user files.

:func:`make_shapes` draws a high-dimensional image manifold with known continuous factors (an
'L' at a given angle, scale and position, 28 x 28 = 784 pixels) at any N, in chunks, so that an
embedding of a million images can be scored against the true factors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Generated manifolds are drawn with this seed so that every run embeds the same points.
DATASET_SEED = 0

# Default number of points drawn from the generated manifolds.
DEFAULT_GENERATED_SAMPLES = 2000

NAMED_DATASETS = ("digits", "swiss-roll", "s-curve", "shapes")

# The factors of make_shapes, in the order of its columns, and their default ranges: angle in
# radians (half a turn: the 'L' has no symmetry, so every angle is a distinct image and the
# factor space has no loop), scale relative to the image half-width, centre offsets in units of
# the image half-width. The 'L' reaches 1.0 * scale from its centre, so 0.7 + 0.25 < 1 keeps it
# inside the frame.
SHAPE_FACTORS = ("angle", "scale", "x", "y")
SHAPE_FACTOR_RANGES = {"angle": (0.0, np.pi), "scale": (0.45, 0.7), "x": (-0.25, 0.25), "y": (-0.25, 0.25)}
# The 'L' as two boxes (centre u, centre v, half-width, half-height) in its own frame: the
# geometry of isogan.gan.datasets.render_shapes.
_SHAPE_BOXES = ((-0.35, 0.0, 0.2, 0.8), (0.025, 0.6, 0.575, 0.2))
# Images rendered at once: (chunk, size * size) float32 temporaries of ~25 MB at 28 x 28.
_SHAPES_CHUNK = 8192


@dataclass(frozen=True)
class Dataset:
    """Points to embed and what to colour them by.

    Attributes
    ----------
    name : str
        Dataset name, or the file path it was read from.
    X : ndarray of shape (n_samples, n_features)
        The points: float64, or float32 for 'shapes'.
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
        's-curve' (3-D manifolds, coloured by the true position along the manifold), 'shapes'
        (:func:`make_shapes`, 784 features, float32, coloured by the angle), or a path
        to a ``.npy`` file holding a 2-D numeric array or a ``.csv`` file of numbers, one point a
        row (comma separated, no header).
    n_samples : int, optional
        Number of points: drawn from the generated manifolds and shapes (default 2000), or the first
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
    if name == "shapes":
        X, factors = make_shapes(count, random_state=DATASET_SEED)
        return Dataset(name, X, factors[:, 0], "angle of the shape (radians)")
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


def make_shapes(
    n_samples: int,
    *,
    size: int = 28,
    factor_ranges: dict[str, tuple[float, float]] | None = None,
    random_state: int | np.random.Generator | None = None,
    chunk_size: int = _SHAPES_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw images of an 'L' from four known continuous factors: angle, scale and position.

    The images form a 4-D manifold in ``size * size`` dimensions whose true coordinates are the
    factors, so an embedding can be scored against them
    (:func:`isogan.bench.harness.residual_variance`). Factors are drawn uniformly in their
    ranges; each image is rendered anti-aliased from the exact signed distance to the shape (a
    pixel's value is its covered fraction when an edge crosses it), so pixels vary continuously
    with the factors. Images are rendered ``chunk_size`` at a time into the output: 1M images
    at 28 x 28 take the 3.1 GB of the result plus ~100 MB.

    Parameters
    ----------
    n_samples : int
        Number of images, at least 1.
    size : int, default=28
        Image height and width in pixels (784 features at 28), at least 4.
    factor_ranges : dict of str to (float, float), optional
        ``(low, high)`` per factor name of :data:`SHAPE_FACTORS`, overriding
        :data:`SHAPE_FACTOR_RANGES`; ``low == high`` fixes a factor. Scale must stay positive, and
        ``scale + |x|`` and ``scale + |y|`` at most 1 keeps the shape inside the frame.
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the factor draw; the same seed gives the same images whatever ``chunk_size``, and
        the first n images of a larger draw are those of ``n_samples=n``.
    chunk_size : int, default=8192
        Images rendered at once (bounds the temporaries, not the result).

    Returns
    -------
    X : ndarray of shape (n_samples, size * size), float32
        Row-major pixels in [-1, 1] (background -1, inside the shape 1).
    factors : ndarray of shape (n_samples, 4), float64
        Columns angle (radians), scale, x, y (:data:`SHAPE_FACTORS`), x rightwards and y
        downwards in units of the image half-width.

    Raises
    ------
    ValueError
        A non-positive ``n_samples``, ``chunk_size`` or scale, ``size < 4``, an unknown factor
        name or a range with ``low > high``.

    Examples
    --------
    >>> from isogan.datasets import make_shapes
    >>> X, factors = make_shapes(3, random_state=0)
    >>> X.shape, X.dtype, factors.shape
    ((3, 784), dtype('float32'), (3, 4))
    """
    for name, value, low in (("n_samples", n_samples, 1), ("size", size, 4), ("chunk_size", chunk_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    ranges = dict(SHAPE_FACTOR_RANGES)
    unknown = sorted(set(factor_ranges or {}) - set(SHAPE_FACTORS))
    if unknown:
        raise ValueError(f"Unknown shape factor(s) {unknown}; expected names among {SHAPE_FACTORS}.")
    ranges.update(factor_ranges or {})
    for name, (low, high) in ranges.items():
        if not low <= high:
            raise ValueError(f"The range of factor {name!r} must have low <= high, got ({low}, {high}).")
    if ranges["scale"][0] <= 0:
        raise ValueError(f"The scale must be positive, got the range {ranges['scale']}.")
    rng = np.random.default_rng(random_state)
    # One row of four uniforms per image, so the first n images are the same for every n_samples.
    low, high = (np.array([ranges[name][side] for name in SHAPE_FACTORS]) for side in (0, 1))
    factors = low + (high - low) * rng.random((n_samples, len(SHAPE_FACTORS)))
    # Trigonometry once for all images, so that a chunk's pixels do not depend on its length.
    cos_angle = np.cos(factors[:, 0]).astype(np.float32)
    sin_angle = np.sin(factors[:, 0]).astype(np.float32)
    axis = ((np.arange(size) + 0.5) / size * 2.0 - 1.0).astype(np.float32)
    grid_y, grid_x = (grid.ravel() for grid in np.meshgrid(axis, axis, indexing="ij"))
    half_pixel = np.float32(1.0 / size)
    X = np.empty((n_samples, size * size), dtype=np.float32)
    for start in range(0, n_samples, chunk_size):
        rows = slice(start, min(start + chunk_size, n_samples))
        scale = factors[rows, 1:2].astype(np.float32)
        dx = grid_x[None, :] - factors[rows, 2:3].astype(np.float32)
        dy = grid_y[None, :] - factors[rows, 3:4].astype(np.float32)
        cos_a, sin_a = cos_angle[rows, None], sin_angle[rows, None]
        # The pixel centres in the shape's own frame (rotated back, unscaled).
        u = (cos_a * dx + sin_a * dy) / scale
        v = (cos_a * dy - sin_a * dx) / scale
        distance = np.minimum(*(_box_distance(u, v, box) for box in _SHAPE_BOXES)) * scale
        # Coverage of a pixel (2 * half_pixel wide) by the edge crossing it, in [0, 1], then [-1, 1].
        coverage = np.clip(0.5 - distance / (2 * half_pixel), 0.0, 1.0)
        X[rows] = coverage * 2.0 - 1.0
    return X, factors


def _box_distance(u: np.ndarray, v: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Signed distance from points (u, v) to an axis-aligned box (negative inside)."""
    centre_u, centre_v, half_u, half_v = (np.float32(value) for value in box)
    outside_u = np.abs(u - centre_u) - half_u
    outside_v = np.abs(v - centre_v) - half_v
    positive_u = np.maximum(outside_u, 0.0)
    positive_v = np.maximum(outside_v, 0.0)
    return np.sqrt(positive_u * positive_u + positive_v * positive_v) + np.minimum(np.maximum(outside_u, outside_v), 0.0)
