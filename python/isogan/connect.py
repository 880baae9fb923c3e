"""Connect: join the components of a disconnected neighbour graph, as scikit-learn's Isomap does.

The step between the kNN graph and the geodesic distances, shared by exact and landmark Isomap.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import pairwise_distances

__all__ = ["connect_components"]


def connect_components(
    graph: sp.spmatrix,
    points: Any,
    *,
    metric: Any = "euclidean",
    metric_params: dict | None = None,
    chunk_rows: int | None = None,
    stacklevel: int = 2,
) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """Join the components of a neighbour graph through their nearest pairs (scikit-learn's rule).

    For every two components the nearest pair of points between them gets an edge of that length
    (in both directions), as ``sklearn.utils.graph._fix_connected_components`` does for
    scikit-learn's Isomap, with a warning. The nearest pairs are searched block by block, so no
    more than ``chunk_rows`` x ``chunk_rows`` distances exist at once and ``points`` may live on disk.

    Parameters
    ----------
    graph : sparse matrix of shape (n_samples, n_samples)
        Neighbour graph of edge lengths.
    points : ndarray, numpy.memmap or isogan.io.NpyRows
        The points (``metric='precomputed'``: the dense (n_samples, n_samples) distances).
    metric : str or callable, default='euclidean'
        Distance between points, as :func:`sklearn.metrics.pairwise_distances` takes it; pass the
        kNN search's effective metric (``NearestNeighbors.effective_metric_``).
    metric_params : dict, optional
        Its extra arguments.
    chunk_rows : int, optional
        Rows per block (default: all rows of a component at once).
    stacklevel : int, default=2
        Of the warning.

    Returns
    -------
    graph : scipy.sparse.csr_matrix
        The joined graph, in the input's dtype (the input itself when already connected).
    component_labels : ndarray of shape (n_samples,) or None
        The components before joining; None when there was one.

    Raises
    ------
    RuntimeError
        If the graph is disconnected and ``points`` is a sparse precomputed graph (no distances
        between components are known), with scikit-learn's wording.
    """
    n_components, labels = connected_components(graph, directed=False)
    if n_components == 1:
        return sp.csr_matrix(graph), None
    if metric == "precomputed" and sp.issparse(points):
        raise RuntimeError(
            "The number of connected components of the neighbors graph"
            f" is {n_components} > 1. The graph cannot be "
            "completed with metric='precomputed', and Isomap cannot be"
            "fitted. Increase the number of neighbors to avoid this "
            "issue, or precompute the full distance matrix instead "
            "of passing a sparse neighbors graph."
        )
    warnings.warn(
        "The number of connected components of the neighbors graph "
        f"is {n_components} > 1. Completing the graph to fit"
        " Isomap might be slow. Increase the number of neighbors to "
        "avoid this issue.",
        stacklevel=stacklevel,
    )
    members = [np.flatnonzero(labels == label) for label in range(n_components)]
    step = chunk_rows or max(member.size for member in members)
    rows, cols, values = [], [], []
    for a in range(n_components):
        for b in range(a + 1, n_components):
            best = (np.inf, -1, -1)
            for a_start in range(0, members[a].size, step):
                a_index = members[a][a_start : a_start + step]
                a_points = None if metric == "precomputed" else np.asarray(points[a_index])
                for b_start in range(0, members[b].size, step):
                    b_index = members[b][b_start : b_start + step]
                    if metric == "precomputed":
                        block = np.asarray(points[a_index][:, b_index])
                    else:
                        block = pairwise_distances(a_points, np.asarray(points[b_index]), metric=metric,
                                                   **(metric_params or {}))
                    i, j = divmod(int(np.argmin(block)), block.shape[1])
                    if block[i, j] < best[0]:
                        best = (float(block[i, j]), int(a_index[i]), int(b_index[j]))
            # A zero-length edge would vanish from a sparse graph; keep it as the smallest positive.
            length = max(best[0], np.finfo(graph.dtype).tiny)
            rows += [best[1], best[2]]
            cols += [best[2], best[1]]
            values += [length, length]
    return _with_edges(sp.csr_matrix(graph), np.array(rows), np.array(cols), np.array(values, dtype=graph.dtype)), labels


def _with_edges(graph: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
    """``graph`` with extra entries, every stored entry kept as it is (explicit zeros, duplicates).

    Sparse addition would drop the explicit zeros that join duplicate points, and converting
    from COO would sum duplicates; this only interleaves the new entries into their rows.
    """
    graph_rows = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))
    all_rows = np.concatenate([graph_rows, rows])
    order = np.argsort(all_rows, kind="stable")
    indices = np.concatenate([graph.indices, cols]).astype(graph.indices.dtype)[order]
    data = np.concatenate([graph.data, values])[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(all_rows, minlength=graph.shape[0]))])
    return sp.csr_matrix((data, indices, indptr), shape=graph.shape)
