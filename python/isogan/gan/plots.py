"""Pictures of the main job: embedding, samples at requested coordinates, traversals."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _to_display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) in [-1, 1] -> array for imshow and the colormap to use."""
    pixels = (np.clip(image, -1.0, 1.0) + 1.0) / 2.0
    if pixels.shape[0] == 1:
        return pixels[0], "gray_r"
    return pixels.transpose(1, 2, 0)[:, :, :3], None


def plot_embedding(embedding: np.ndarray, labels: np.ndarray | None, path: str | os.PathLike, title: str) -> None:
    """Scatter the 2-D embedding coloured by label and save it.

    Parameters
    ----------
    embedding : ndarray of shape (N, c), c >= 2
        The first two columns are plotted.
    labels : ndarray of shape (N,) or None
        Colours; plain points when None.
    path : str or path-like
        PNG file to write.
    title : str
        Figure title.
    """
    plt = _figure()
    figure, axes = plt.subplots(figsize=(6, 5.5))
    if labels is None:
        axes.scatter(embedding[:, 0], embedding[:, 1], s=4, alpha=0.6)
    else:
        scatter = axes.scatter(embedding[:, 0], embedding[:, 1], c=labels, cmap="tab10", s=4, alpha=0.8)
        figure.colorbar(scatter, ax=axes, label="label")
    axes.set_xlabel("Isomap coordinate 1")
    axes.set_ylabel("Isomap coordinate 2")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_sample_grid(images: np.ndarray, row_coords: np.ndarray, path: str | os.PathLike, title: str) -> None:
    """Grid of samples: each row was generated at one coordinate, columns differ in z.

    Parameters
    ----------
    images : ndarray of shape (rows, cols, C, H, W)
        The samples.
    row_coords : ndarray of shape (rows, c)
        The coordinate each row was asked for (written at the row's left).
    path : str or path-like
        PNG file to write.
    title : str
        Figure title.
    """
    plt = _figure()
    rows, cols = images.shape[:2]
    figure, axes = plt.subplots(rows, cols, figsize=(cols * 0.9 + 1.6, rows * 0.9 + 0.6), squeeze=False)
    for row in range(rows):
        for col in range(cols):
            pixels, cmap = _to_display(images[row, col])
            axes[row, col].imshow(pixels, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
        label = "(" + ", ".join(f"{value:.1f}" for value in row_coords[row]) + ")"
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_traversals(
    walks: list[np.ndarray], walk_labels: list[str], path: str | os.PathLike, title: str
) -> None:
    """One row of images per walk through coordinate space.

    Parameters
    ----------
    walks : list of ndarray of shape (steps, C, H, W)
        Images along each walk.
    walk_labels : list of str
        Row labels (e.g. 'axis 1').
    path : str or path-like
        PNG file to write.
    title : str
        Figure title.
    """
    plt = _figure()
    rows, cols = len(walks), max(len(walk) for walk in walks)
    figure, axes = plt.subplots(rows, cols, figsize=(cols * 0.9 + 1.2, rows * 0.95 + 0.6), squeeze=False)
    for row, walk in enumerate(walks):
        for col in range(cols):
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if col < len(walk):
                pixels, cmap = _to_display(walk[col])
                axes[row, col].imshow(pixels, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        axes[row, 0].set_ylabel(walk_labels[row], rotation=0, ha="right", va="center", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def grid_coordinates(embedding: np.ndarray, n_rows: int, quantile: float = 0.1) -> np.ndarray:
    """Pick ``n_rows`` well-spread coordinates from the data (farthest-point sampling).

    Parameters
    ----------
    embedding : ndarray of shape (N, c)
        Training coordinates.
    n_rows : int
        How many to pick.
    quantile : float
        Unused points farther than this quantile from the median are skipped (outliers).

    Returns
    -------
    ndarray of shape (n_rows, c)
        Coordinates of actual training points (on the manifold).
    """
    centre = np.median(embedding, axis=0)
    radius = np.linalg.norm(embedding - centre, axis=1)
    candidates = embedding[radius <= np.quantile(radius, 1.0 - quantile)]
    chosen = [int(np.argmax(np.linalg.norm(candidates - centre, axis=1)))]
    distances = np.linalg.norm(candidates - candidates[chosen[0]], axis=1)
    while len(chosen) < n_rows:
        chosen.append(int(np.argmax(distances)))
        distances = np.minimum(distances, np.linalg.norm(candidates - candidates[chosen[-1]], axis=1))
    picked = candidates[chosen]
    return picked[np.lexsort(picked.T[::-1])]


def axis_walks(embedding: np.ndarray, quantile: float = 0.05) -> list[tuple[Any, Any, str]]:
    """Start/end points of walks along each embedding axis through the median.

    Parameters
    ----------
    embedding : ndarray of shape (N, c)
        Training coordinates.
    quantile : float
        The walk spans the [quantile, 1 - quantile] range of each axis.

    Returns
    -------
    list of (start, end, label)
    """
    centre = np.median(embedding, axis=0)
    walks = []
    for axis in range(embedding.shape[1]):
        low, high = np.quantile(embedding[:, axis], [quantile, 1.0 - quantile])
        start, end = centre.copy(), centre.copy()
        start[axis], end[axis] = low, high
        walks.append((start, end, f"axis {axis + 1}\n{low:.0f} -> {high:.0f}"))
    return walks
