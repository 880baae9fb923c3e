"""Image datasets for ManifoldGAN; nothing is ever downloaded.

Every loader returns an :class:`ImageDataset`: images as ``(N, C, H, W)`` float32 in [-1, 1],
optional class labels and, for the procedural manifold, the true coordinates that generated
each image. This module needs NumPy only (no torch).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass

import numpy as np

DATASETS = ("digits", "shapes", "mnist", "folder")


@dataclass
class ImageDataset:
    """Images with optional labels and ground-truth manifold coordinates.

    Attributes
    ----------
    images : ndarray of shape (N, C, H, W), float32
        Pixel values scaled to [-1, 1].
    labels : ndarray of shape (N,), int64, or None
        Class labels when the dataset has them.
    true_coords : ndarray of shape (N, k), float64, or None
        The parameters that generated each image (procedural data only).
    name : str
        Which dataset this is.
    """

    images: np.ndarray
    labels: np.ndarray | None
    true_coords: np.ndarray | None
    name: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one image."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def flat(self) -> np.ndarray:
        """Return the images as ``(N, C*H*W)`` float64 rows (the input of Isomap)."""
        return self.images.reshape(len(self.images), -1).astype(np.float64)


def check_images(images: np.ndarray, what: str = "images") -> np.ndarray:
    """Validate a batch of images and return it as contiguous float32.

    Parameters
    ----------
    images : array-like of shape (N, C, H, W)
        Pixel values, expected in [-1, 1].
    what : str
        Name used in error messages.

    Returns
    -------
    ndarray of shape (N, C, H, W), float32

    Raises
    ------
    ValueError
        If the array is not 4-D, is empty, has more than 4 channels, images smaller than 4x4,
        or non-finite values.
    """
    array = np.asarray(images)
    if array.ndim != 4:
        raise ValueError(
            f"Expected {what} of shape (n_samples, channels, height, width), got an array of shape {array.shape}."
        )
    n_samples, channels, height, width = array.shape
    if n_samples < 2:
        raise ValueError(f"Expected at least 2 {what}, got {n_samples}.")
    if not 1 <= channels <= 4:
        raise ValueError(f"Expected 1 to 4 channels in {what}, got {channels} (shape {array.shape}).")
    if height < 4 or width < 4:
        raise ValueError(f"Expected {what} of at least 4x4 pixels, got {height}x{width}.")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"Input {what} contain NaN or infinity.")
    return array


def load_digits_dataset() -> ImageDataset:
    """Load scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes).

    Returns
    -------
    ImageDataset
        Images of shape (1797, 1, 8, 8) in [-1, 1] with their digit labels.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 8.0 - 1.0)[:, None]
    return ImageDataset(images, bunch.target.astype(np.int64), None, "digits")


def render_shapes(angles: np.ndarray, scales: np.ndarray, size: int = 32, supersample: int = 4) -> np.ndarray:
    """Render an asymmetric 'L' shape at given rotation angles and scales.

    The L has no rotational symmetry, so every (angle, scale) pair gives a distinct image:
    the images form a 2-D manifold whose true coordinates are known.

    Parameters
    ----------
    angles : ndarray of shape (N,)
        Rotation angles in radians.
    scales : ndarray of shape (N,)
        Size of the shape relative to the image half-width (about 0.3 to 1).
    size : int
        Image height and width in pixels.
    supersample : int
        Samples per pixel along each axis (anti-aliasing).

    Returns
    -------
    ndarray of shape (N, 1, size, size), float32
        Images in [-1, 1] (background -1).
    """
    angles = np.asarray(angles, dtype=np.float64).ravel()
    scales = np.asarray(scales, dtype=np.float64).ravel()
    if angles.shape != scales.shape:
        raise ValueError(f"angles and scales must have the same length, got {angles.size} and {scales.size}.")
    fine = size * supersample
    # pixel centres in [-1, 1]
    axis = (np.arange(fine) + 0.5) / fine * 2.0 - 1.0
    grid_y, grid_x = np.meshgrid(axis, axis, indexing="ij")
    images = np.empty((angles.size, 1, size, size), dtype=np.float32)
    for index, (angle, scale) in enumerate(zip(angles, scales)):
        cos_a, sin_a = np.cos(angle), np.sin(angle)
        # rotate the sampling grid back into the shape's own frame
        u = (cos_a * grid_x + sin_a * grid_y) / scale
        v = (-sin_a * grid_x + cos_a * grid_y) / scale
        vertical_bar = (np.abs(u + 0.35) <= 0.2) & (np.abs(v) <= 0.8)
        foot = (np.abs(v - 0.6) <= 0.2) & (u >= -0.55) & (u <= 0.6)
        inside = (vertical_bar | foot).astype(np.float32)
        coverage = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
        images[index, 0] = coverage * 2.0 - 1.0
    return images


def load_shapes_dataset(n_samples: int = 2000, size: int = 32, seed: int = 0) -> ImageDataset:
    """Procedural image manifold: an 'L' at random angle and scale with known coordinates.

    Parameters
    ----------
    n_samples : int
        Number of images.
    size : int
        Image height and width.
    seed : int
        Seed of the angle/scale draw.

    Returns
    -------
    ImageDataset
        Images (n_samples, 1, size, size); ``true_coords`` holds (angle in radians, scale);
        ``labels`` bins the angle into 8 sectors (used to train the metric classifier).
    """
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0.0, np.pi, n_samples)
    scales = rng.uniform(0.45, 0.95, n_samples)
    images = render_shapes(angles, scales, size=size)
    labels = np.minimum((angles / np.pi * 8).astype(np.int64), 7)
    return ImageDataset(images, labels, np.column_stack([angles, scales]), "shapes")


def _read_idx(path: str) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as stream:
        header = stream.read(4)
        if len(header) != 4 or header[0] != 0 or header[1] != 0 or header[2] != 0x08:
            raise ValueError(f"{path} is not an IDX file of unsigned bytes (bad magic number {header!r}).")
        n_dims = header[3]
        shape = struct.unpack(">" + "I" * n_dims, stream.read(4 * n_dims))
        data = np.frombuffer(stream.read(), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says shape {shape}, found {data.size} bytes of data.")
    return data.reshape(shape)


_MNIST_FORMAT = (
    "expected either an 'mnist.npz' file with arrays 'x_train' (N, 28, 28) uint8 and 'y_train' (N,), "
    "or a directory holding 'train-images-idx3-ubyte[.gz]' and 'train-labels-idx1-ubyte[.gz]'"
)


def load_mnist_dataset(path: str | os.PathLike, n_samples: int | None = None) -> ImageDataset:
    """Load MNIST from a local file or directory (never downloaded).

    Parameters
    ----------
    path : str or path-like
        An ``.npz`` file with ``x_train``/``y_train`` or a directory with the IDX training files
        (optionally gzipped).
    n_samples : int, optional
        Keep only the first ``n_samples`` images.

    Returns
    -------
    ImageDataset
        Images (N, 1, 28, 28) in [-1, 1] with labels.

    Raises
    ------
    FileNotFoundError
        If the path or the expected files are missing; the message names the expected format.
    ValueError
        If the files are malformed.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        found: dict[str, str] = {}
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
            for candidate in (stem, stem + ".gz"):
                if os.path.isfile(os.path.join(path, candidate)):
                    found[stem] = os.path.join(path, candidate)
        if len(found) != 2:
            raise FileNotFoundError(f"MNIST directory {path!r} lacks the training files: {_MNIST_FORMAT}.")
        pixels = _read_idx(found["train-images-idx3-ubyte"])
        labels = _read_idx(found["train-labels-idx1-ubyte"])
    elif os.path.isfile(path):
        try:
            with np.load(path, allow_pickle=False) as archive:
                pixels, labels = archive["x_train"], archive["y_train"]
        except (KeyError, ValueError, OSError) as error:
            raise ValueError(f"Could not read MNIST from {path!r} ({error}): {_MNIST_FORMAT}.") from error
    else:
        raise FileNotFoundError(f"MNIST path {path!r} does not exist: {_MNIST_FORMAT}.")
    if pixels.ndim != 3 or labels.ndim != 1 or len(pixels) != len(labels):
        raise ValueError(
            f"MNIST at {path!r} has images of shape {pixels.shape} and labels of shape {labels.shape}: {_MNIST_FORMAT}."
        )
    if n_samples is not None:
        pixels, labels = pixels[:n_samples], labels[:n_samples]
    images = (pixels.astype(np.float32) / 127.5 - 1.0)[:, None]
    return ImageDataset(check_images(images, "MNIST images"), labels.astype(np.int64), None, "mnist")


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def load_folder_dataset(path: str | os.PathLike, n_samples: int | None = None) -> ImageDataset:
    """Load every image of a local folder (all of the same size) as one dataset.

    Parameters
    ----------
    path : str or path-like
        Directory of ``.png`` (or, with Pillow installed, ``.jpg``/``.bmp``...) images, all of
        the same height, width and channel count. Files are read in sorted name order.
    n_samples : int, optional
        Keep only the first ``n_samples`` images.

    Returns
    -------
    ImageDataset
        Images (N, C, H, W) in [-1, 1], no labels.

    Raises
    ------
    FileNotFoundError
        If the directory is missing or holds no image files.
    ValueError
        If an image cannot be decoded or the images differ in shape.
    """
    import matplotlib.image

    path = os.fspath(path)
    expected = f"expected a directory of same-sized images with suffixes {', '.join(_IMAGE_SUFFIXES)}"
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Image folder {path!r} does not exist: {expected}.")
    names = sorted(name for name in os.listdir(path) if name.lower().endswith(_IMAGE_SUFFIXES))
    if not names:
        raise FileNotFoundError(f"Image folder {path!r} holds no image files: {expected}.")
    if n_samples is not None:
        names = names[:n_samples]
    arrays = []
    for name in names:
        file_path = os.path.join(path, name)
        try:
            pixels = np.asarray(matplotlib.image.imread(file_path))
        except Exception as error:  # decoders raise many types; all mean "not an image we can read"
            raise ValueError(f"Could not decode image {file_path!r}: {error}") from error
        if pixels.dtype == np.uint8:
            pixels = pixels.astype(np.float32) / 255.0
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if arrays and pixels.shape != arrays[0].shape:
            raise ValueError(
                f"Image {file_path!r} has shape {pixels.shape} but {names[0]!r} has {arrays[0].shape}: {expected}."
            )
        arrays.append(pixels.astype(np.float32))
    images = np.stack(arrays).transpose(0, 3, 1, 2) * 2.0 - 1.0
    return ImageDataset(check_images(images, f"images of {path!r}"), None, None, "folder")


def load_dataset(name: str, path: str | os.PathLike | None = None, n_samples: int | None = None) -> ImageDataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : {'digits', 'shapes', 'mnist', 'folder'}
        'digits' is scikit-learn's bundled 8x8 digits; 'shapes' the procedural manifold;
        'mnist' and 'folder' read ``path``.
    path : str or path-like, optional
        Required for 'mnist' and 'folder'.
    n_samples : int, optional
        Limit on the number of images ('shapes': how many to render, default 2000).

    Returns
    -------
    ImageDataset

    Raises
    ------
    ValueError
        If ``name`` is unknown or ``path`` is missing where needed.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {', '.join(DATASETS)}.")
    if name in ("mnist", "folder") and path is None:
        raise ValueError(f"Dataset {name!r} reads local files: pass --data-path (path=...).")
    if name == "digits":
        dataset = load_digits_dataset()
        if n_samples is not None:
            dataset = ImageDataset(dataset.images[:n_samples], dataset.labels[:n_samples], None, "digits")
        return dataset
    if name == "shapes":
        return load_shapes_dataset(n_samples=2000 if n_samples is None else n_samples)
    if name == "mnist":
        return load_mnist_dataset(path, n_samples)  # type: ignore[arg-type]
    return load_folder_dataset(path, n_samples)  # type: ignore[arg-type]
