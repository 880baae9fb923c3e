"""Neighbour lists combined and scored: top-k merges of block searches, CSR graphs, recall@k.

Pure NumPy/SciPy helpers of :mod:`isogan.knn` (re-exported there), also used by the Dask and
GPU landmark backends.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp


def merge_nearest(
    best_distance: np.ndarray, best_index: np.ndarray, found_distance: np.ndarray, found_index: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge running nearest lists with the nearest of one more candidate block.

    Blocks must come in increasing index order: the stable sort then sends ties to the smaller
    index, as one search over all candidates does.

    Parameters
    ----------
    best_distance, best_index : ndarrays of shape (n_queries, w0)
        The running lists (``inf`` / -1 where not filled yet).
    found_distance, found_index : ndarrays of shape (n_queries, w1)
        The block's nearest, indices already offset to global ones.
    width : int
        Entries kept per query.

    Returns
    -------
    distance, index : ndarrays of shape (n_queries, min(width, w0 + w1))
    """
    merged_distance = np.concatenate([best_distance, found_distance], axis=1)
    merged_index = np.concatenate([best_index, found_index], axis=1)
    order = np.argsort(merged_distance, axis=1, kind="stable")[:, :width]
    return np.take_along_axis(merged_distance, order, axis=1), np.take_along_axis(merged_index, order, axis=1)


def neighbors_to_csr(distances: np.ndarray, indices: np.ndarray, n_samples: int) -> sp.csr_matrix:
    """The (n_samples, n_samples) distance graph of k neighbours per point (``mode='distance'``)."""
    n_neighbors = indices.shape[1]
    indptr = np.arange(0, n_samples * n_neighbors + 1, n_neighbors, dtype=np.int64)
    return sp.csr_matrix((distances.ravel(), indices.ravel(), indptr), shape=(n_samples, n_samples))


def recall_at_k(approx_indices: Any, exact_indices: Any) -> float:
    """Fraction of the exact k nearest neighbours that an approximate search found.

    Recall@k = mean over queries of ``|approx_i & exact_i| / k``, comparing neighbour indices.
    Among neighbours tied at the k-th distance the exact search keeps the smaller indices, so an
    approximate search that kept another tied point counts as a miss: on data with many
    duplicates the recall understates the graph's quality.

    Parameters
    ----------
    approx_indices : array-like of int, shape (n_queries, k)
        Indices from the approximate search (e.g. ``kneighbors(..., algorithm='approximate')[1]``).
    exact_indices : array-like of int, shape (n_queries, k)
        Indices from an exact search of the same queries, each row without repeats.

    Returns
    -------
    float
        In [0, 1]; 1 when every row holds the same set of indices.

    Raises
    ------
    ValueError
        If the two arrays are not 2-D of the same shape, or have no entry.

    Examples
    --------
    >>> import numpy as np
    >>> from isogan.knn import recall_at_k
    >>> recall_at_k(np.array([[1, 2], [0, 3]]), np.array([[2, 1], [0, 2]]))
    0.75
    """
    approx_indices = np.asarray(approx_indices)
    exact_indices = np.asarray(exact_indices)
    if approx_indices.ndim != 2 or approx_indices.shape != exact_indices.shape or approx_indices.size == 0:
        raise ValueError(
            "approx_indices and exact_indices must be non-empty 2-D arrays of the same shape (n_queries, k); "
            f"got {approx_indices.shape} and {exact_indices.shape}."
        )
    n_queries, n_neighbors = exact_indices.shape
    found = 0
    # Blocks of rows bound the (rows, k, k) comparison to about a million entries.
    block_rows = max(1, 2**20 // (n_neighbors * n_neighbors))
    for start in range(0, n_queries, block_rows):
        rows = slice(start, start + block_rows)
        found += int(np.count_nonzero((approx_indices[rows, :, None] == exact_indices[rows, None, :]).any(axis=2)))
    return found / (n_queries * n_neighbors)
