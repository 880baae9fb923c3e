"""Pictures of the main job: embedding, samples at requested coordinates, traversals."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def _figure():
    from isogan._plotting import pyplot

    plt = pyplot()

    return plt


def _mosaic(rows: list[np.ndarray], padding: int = 1) -> tuple[np.ndarray, str | None, int, int]:
    """Tile rows of (C, H, W) images in [-1, 1] into one display array (white padding).

    Returns the array for ``imshow`` (2-D grey or (h, w, 3) colour), its colormap, and the
    pitch in pixels between tile rows and tile columns.
    """
    channels, height, width = rows[0][0].shape
    n_columns = max(len(row) for row in rows)
    pitch_y, pitch_x = height + padding, width + padding
    colour = channels >= 3
    canvas = np.zeros((len(rows) * pitch_y + padding, n_columns * pitch_x + padding, 3 if colour else 1))
    for row_index, row in enumerate(rows):
        for column_index, image in enumerate(row):
            pixels = (np.clip(image, -1.0, 1.0) + 1.0) / 2.0
            tile = pixels[:3].transpose(1, 2, 0) if colour else pixels[:1].transpose(1, 2, 0)
            top, left = padding + row_index * pitch_y, padding + column_index * pitch_x
            canvas[top : top + height, left : left + width] = tile
    if colour:
        # padding white in colour images; grey images use gray_r, where 0 is white
        mask = np.ones(canvas.shape[:2], dtype=bool)
        for row_index, row in enumerate(rows):
            for column_index in range(len(row)):
                top, left = padding + row_index * pitch_y, padding + column_index * pitch_x
                mask[top : top + height, left : left + width] = False
        canvas[mask] = 1.0
        return canvas, None, pitch_y, pitch_x
    return canvas[:, :, 0], "gray_r", pitch_y, pitch_x


def _plot_rows(rows: list[np.ndarray], row_labels: list[str], path: str | os.PathLike, title: str) -> None:
    plt = _figure()
    canvas, cmap, pitch_y, _ = _mosaic(rows)
    scale = 0.9 / pitch_y  # inches per pixel: about 0.9 inch per tile
    figure, axes = plt.subplots(figsize=(canvas.shape[1] * scale + 1.8, canvas.shape[0] * scale + 0.7))
    axes.imshow(canvas, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([1 + pitch_y * (index + 0.5) for index in range(len(rows))])
    axes.set_yticklabels(row_labels, fontsize=8)
    axes.tick_params(axis="y", length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


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
        The samples, in [-1, 1].
    row_coords : ndarray of shape (rows, c)
        The coordinate each row was asked for (written at the row's left).
    path : str or path-like
        PNG file to write.
    title : str
        Figure title.
    """
    labels = ["(" + ", ".join(f"{value:.1f}" for value in coords) + ")" for coords in row_coords]
    _plot_rows(list(images), labels, path, title)


def plot_traversals(walks: list[np.ndarray], walk_labels: list[str], path: str | os.PathLike, title: str) -> None:
    """One row of images per walk through coordinate space.

    Parameters
    ----------
    walks : list of ndarray of shape (steps, C, H, W)
        Images along each walk, in [-1, 1].
    walk_labels : list of str
        Row labels (e.g. 'axis 1').
    path : str or path-like
        PNG file to write.
    title : str
        Figure title.
    """
    _plot_rows(walks, walk_labels, path, title)


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
