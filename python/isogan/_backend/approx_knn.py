"""Approximate k nearest neighbours: an HNSW graph (faiss-cpu, the optional ``isogan[approx]``).

:func:`isogan.knn.knn_graph` and :func:`isogan.knn.kneighbors` come here with
``algorithm='approximate'``, after validating their input. The search is approximate, the
distances are not: faiss finds candidate neighbours in float32 through a hierarchical navigable
small-world graph (Malkov & Yashunin 2018), then the exact Euclidean distance of every returned
pair is recomputed from the caller's points by the exact search's own code
(``_core.knn_kneighbors_among``: float64, feature by feature in order, ``csrc/knn/knn_distance.h``),
so a pair found by both searches has the same distance bit for bit; each row is then ordered by
(distance, index), ties to the smaller index, as the exact search orders it.

Why faiss: no JIT compilation (pynndescent pays ~30 s of numba compilation in every new process),
build and search parameters apart, and an index that is kept and searched again (``transform``).
From ``PROJECT_FROM_FEATURES`` features on, the graph is built over the points' first 64
principal components and 2k+1 candidates are re-ranked exactly in the full space. At N=100k x 784
(``isogan.datasets.make_shapes``, k=10, two cores) this path took 6.0 s at recall@10 0.9994
against 164 s for the exact brute force (27x); pynndescent, warm, took 2.5 s at recall 0.9998
(``benchmarks/bench_knn_approx.py``, ``benchmarks/RESULTS.md``).

Recall alone is not enough for Isomap: HNSW strands a few queries (10 of 100k images) whose
"neighbours" are 3-4x farther than the true ones, in another part of the manifold; their edges are
geodesic shortcuts (landmark residual variance 0.436 against 0.270 exact). :func:`stranded_rows`
finds them from the graph alone and :func:`research_stranded` searches them again exactly (0.4 s
for 11 rows at 100k, residual variance back to 0.270). Every search of the fit points then
estimates its recall on 100 rows searched exactly and warns below 0.95. The defaults hold
recall@10 >= 0.95 on the swiss roll (0.98 at N=100k) and on the shapes images, measured in
``tests/test_knn_approx.py`` at N=4000. Measure your data with :func:`isogan.knn.recall_at_k`
before lowering them.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

import numpy as np

from isogan import _core
from isogan._backend.memory import ensure_memory
from isogan._backend.policy import progress_bar

__all__ = ["APPROX_EXTRA_HINT", "DEFAULT_EF_CONSTRUCTION", "DEFAULT_EF_SEARCH", "DEFAULT_N_LINKS",
           "DEFAULT_STRANDED_RATIO", "HnswIndex", "approximate_kneighbors", "faiss_module", "research_stranded",
           "stranded_rows"]

APPROX_EXTRA_HINT = 'pip install "isogan[approx]"'
# Links per point in the HNSW graph (faiss's M); the base layer keeps twice as many.
DEFAULT_N_LINKS = 16
# Candidates kept while inserting a point (faiss's efConstruction) and while searching (efSearch,
# at least n_neighbors + 1). 40 alone left a few images per 10k stranded (their "neighbours" 2-3x
# farther than the true ones: geodesic shortcuts), and so did 100 at N=100k (10 rows, residual
# variance 0.436 vs 0.270 exact); the stranded-row repair (research_stranded) removes them, so the
# build can stay cheap: 40 / 24 over 64 projected features took 5.7 s against 7.6 s for 100 / 32 at
# N=100k images, recall@10 0.9991 vs 0.9993 (RESULTS.md, "Approximate kNN (issue 15)").
DEFAULT_EF_CONSTRUCTION = 40
DEFAULT_EF_SEARCH = 24
# A row of the graph over the fit points whose k-th distance exceeds this multiple of the median
# k-th distance of its own neighbours is searched again exactly. make_shapes(100k), k=10: the exact
# graph's largest such ratio was 1.52 (1 row above 1.5), the 10 rows HNSW had stranded (neighbours
# 3.1-3.6x too far) 3.2-3.8; weaker HNSW settings at N=4000 strand rows only 1.5-2x too far, where
# the ratio tracks the excess closely (RESULTS.md, "Approximate kNN (issue 15)").
DEFAULT_STRANDED_RATIO = 1.5
# Input features from which the HNSW graph is built over the points' principal components
# ("auto"), and how many: distances in 784-D cost ~12x those in 64-D, and the exact re-ranking in
# the full space repairs the order. make_shapes, N=20k: 64 components (92% of the variance) with
# 2k+1 candidates kept recall@10 at 0.9999 and halved the time (RESULTS.md).
PROJECT_FROM_FEATURES = 256
DEFAULT_PROJECTED_FEATURES = 64
# Candidates re-ranked exactly per neighbour asked, when the graph is built over projections.
_PROJECTED_CANDIDATES_PER_NEIGHBOR = 2
# Rows drawn to fit the projection, and to estimate the recall of a search of the fit points.
_PROJECTION_SAMPLE_ROWS = 10_000
_RECALL_SAMPLE_ROWS = 100
# Below this estimated recall@k a search of the fit points warns (the documented floor).
RECALL_FLOOR = 0.95
# Points added or searched per faiss call: bounds the temporaries and lets Ctrl-C through between calls.
_BLOCK_ROWS = 16384
# The native metric code of the Euclidean distance (csrc/knn/knn.h, enum Metric).
_EUCLIDEAN_CODE = 0


def faiss_module() -> ModuleType:
    """Return the ``faiss`` module, or say which extra installs it.

    Raises
    ------
    ImportError
        Naming ``isogan[approx]`` when faiss-cpu is missing.
    """
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            f"algorithm='approximate' needs faiss-cpu, an optional dependency: {APPROX_EXTRA_HINT} "
            "(or pip install faiss-cpu)."
        ) from error
    return faiss


class _FaissThreads:
    """Run faiss on ``n_threads`` OpenMP threads, restoring its setting afterwards (it is process-wide)."""

    def __init__(self, faiss: ModuleType, n_threads: int) -> None:
        self._faiss = faiss
        self._n_threads = n_threads
        self._previous = n_threads

    def __enter__(self) -> None:
        self._previous = self._faiss.omp_get_max_threads()
        self._faiss.omp_set_num_threads(self._n_threads)

    def __exit__(self, *exc_info: object) -> None:
        self._faiss.omp_set_num_threads(self._previous)


class HnswIndex:
    """An HNSW graph over fit points, searched for the approximate k nearest of queries.

    Build once, search many times (``Isomap.transform`` searches the training points again).
    Pickles through :func:`faiss.serialize_index`.

    Parameters
    ----------
    fit : ndarray of shape (n_samples_fit, n_features), float32 or float64, C-contiguous
        The points searched; kept by reference for the exact distances (the graph holds a
        float32 copy: ``n_samples_fit * (4 * n_features + 8 * n_links)`` bytes and more).
    n_threads : int
        OpenMP threads of the build.
    n_links : int, default=DEFAULT_N_LINKS
        Links per point (faiss's ``M``).
    ef_construction : int, default=DEFAULT_EF_CONSTRUCTION
        Candidates kept while inserting a point.
    ef_search : int, default=DEFAULT_EF_SEARCH
        Candidates kept while searching (raised to ``n_neighbors + 1`` when smaller).
    stranded_ratio : float or None, default=DEFAULT_STRANDED_RATIO
        When the fit points search themselves, rows found by :func:`stranded_rows` with this ratio
        are searched again exactly among all fit points; None keeps HNSW's rows as they are.
    projected_features : int, None or 'auto', default='auto'
        Build and search the graph over the projections of the points on their first principal
        components (fitted on at most 10,000 rows), keeping ``2 * n_neighbors + 1`` candidates
        for the exact re-ranking in the full space; None searches the points themselves. 'auto':
        ``DEFAULT_PROJECTED_FEATURES`` components from ``PROJECT_FROM_FEATURES`` features on.
    show : bool, default=False
        Progress bar over the insertion.

    Attributes
    ----------
    n_researched_ : int
        Rows the last search of the fit points searched again exactly (0 after a search of other queries).
    recall_estimate_ : float or None
        Recall@k of the last search of the fit points on 100 random rows (fixed seed) searched
        exactly (those rows are then exact in the result); None after a search of other queries.
        Below 0.95 the search warns.

    Raises
    ------
    ImportError
        faiss-cpu is not installed.
    MemoryError
        The graph cannot fit in the available memory.
    """

    def __init__(self, fit: np.ndarray, n_threads: int, *, n_links: int = DEFAULT_N_LINKS,
                 ef_construction: int = DEFAULT_EF_CONSTRUCTION, ef_search: int = DEFAULT_EF_SEARCH,
                 stranded_ratio: float | None = DEFAULT_STRANDED_RATIO, projected_features: int | str | None = "auto",
                 show: bool = False) -> None:
        faiss = faiss_module()
        n_samples, n_features = fit.shape
        if projected_features == "auto":
            projected_features = DEFAULT_PROJECTED_FEATURES if n_features >= PROJECT_FROM_FEATURES else None
        if projected_features is not None and not 1 <= int(projected_features) < n_features:
            raise ValueError(f"projected_features must be None, 'auto' or an int in [1, n_features = {n_features}), "
                             f"got {projected_features!r}.")
        graph_features = n_features if projected_features is None else int(projected_features)
        # float32 vectors, 2 * n_links int32 base-layer links, the upper layers (at most as many) and offsets.
        graph_bytes = n_samples * (4 * graph_features + 16 * n_links + 16)
        ensure_memory(graph_bytes, f"the approximate-search (HNSW) graph over {n_samples} x {graph_features} points",
                      "Use fewer points, or algorithm='brute'.")
        self.fit = fit
        self.ef_search = int(ef_search)
        self.stranded_ratio = stranded_ratio
        self.n_researched_ = 0
        self.recall_estimate_: float | None = None
        self._projection = None if projected_features is None else _principal_axes(fit, graph_features)
        self._index = faiss.IndexHNSWFlat(graph_features, int(n_links))
        self._index.hnsw.efConstruction = int(ef_construction)
        with _FaissThreads(faiss, n_threads), progress_bar(n_samples, "kNN (HNSW build)", show, unit="pt") as bar:
            for start in range(0, n_samples, _BLOCK_ROWS):
                block = fit[start : start + _BLOCK_ROWS]
                self._index.add(self._graph_points(block))
                bar.update(block.shape[0])

    def _graph_points(self, block: np.ndarray) -> np.ndarray:
        """The float32 vectors the graph holds for ``block``: the points, or their projections."""
        if self._projection is None:
            return np.ascontiguousarray(block, dtype=np.float32)
        mean, axes = self._projection
        return np.ascontiguousarray((block.astype(np.float32, copy=False) - mean) @ axes, dtype=np.float32)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_index"] = faiss_module().serialize_index(self._index)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["_index"] = faiss_module().deserialize_index(state["_index"])
        self.__dict__.update(state)

    def kneighbors(self, queries: np.ndarray | None, n_neighbors: int, n_threads: int,
                   show: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Approximate k nearest fit points of each query, with exact distances.

        Parameters
        ----------
        queries : ndarray of shape (n_queries, n_features) or None
            The fit points' dtype, C-contiguous. None queries the fit points themselves, each
            excluding itself by index (its duplicates stay neighbours at distance 0), as the exact
            search does; then the stranded rows (``stranded_ratio``) are searched again exactly.
        n_neighbors : int
            k, at most ``n_samples_fit`` (``n_samples_fit - 1`` with ``queries=None``).
        n_threads : int
            OpenMP threads of the search.
        show : bool, default=False
            Progress bar over the queries.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors), the fit points' dtype
            Exact Euclidean distances, increasing along each row (ties by increasing index).
        indices : ndarray of shape (n_queries, n_neighbors), int64
        """
        faiss = faiss_module()
        exclude_self = queries is None
        queries = self.fit if queries is None else queries
        n_queries = queries.shape[0]
        # One more candidate than k for the fit points: the query itself is usually among them.
        # Over projections, more candidates: their order in the projection is only approximate.
        if self._projection is None:
            width = n_neighbors + exclude_self
        else:
            width = min(_PROJECTED_CANDIDATES_PER_NEIGHBOR * n_neighbors + 1, self.fit.shape[0])
        ensure_memory(n_queries * width * 8, f"the ({n_queries}, {width}) approximate-search candidates",
                      "Query fewer points at a time.")
        candidates = np.empty((n_queries, width), dtype=np.int64)
        parameters = faiss.SearchParametersHNSW()
        parameters.efSearch = max(self.ef_search, width)
        with _FaissThreads(faiss, n_threads), progress_bar(n_queries, "kNN (HNSW search)", show, unit="pt") as bar:
            for start in range(0, n_queries, _BLOCK_ROWS):
                block = queries[start : start + _BLOCK_ROWS]
                _, found = self._index.search(self._graph_points(block), width, params=parameters)
                candidates[start : start + block.shape[0]] = self._complete(block, found, width, n_threads)
                bar.update(block.shape[0])
        # Exact distances of the candidates, ranked by (distance, index) by the exact search's own code
        # (csrc/knn/knn_distance.h), so a pair both searches find has the same distance bit for bit.
        distances, indices = _core.knn_kneighbors_among(queries, self.fit, candidates, n_neighbors, _EUCLIDEAN_CODE,
                                                        2.0, exclude_self, n_threads)
        self.n_researched_ = 0
        self.recall_estimate_ = None
        if exclude_self:
            if self.stranded_ratio is not None:
                self.n_researched_ = research_stranded(self.fit, distances, indices, self.stranded_ratio, n_threads)
            self.recall_estimate_ = _estimate_recall(self.fit, distances, indices, n_threads)
        return distances, indices

    def _complete(self, block: np.ndarray, found: np.ndarray, width: int, n_threads: int) -> np.ndarray:
        """Replace the rows where faiss found fewer than ``width`` points (label -1) by an exact search."""
        short = np.flatnonzero((found < 0).any(axis=1))
        if short.size:
            from isogan.knn import kneighbors

            found = found.copy()
            found[short] = kneighbors(self.fit, block[short], width, n_jobs=n_threads, device="cpu", algorithm="brute")[1]
        return found


def stranded_rows(distances: np.ndarray, indices: np.ndarray, ratio: float = DEFAULT_STRANDED_RATIO) -> np.ndarray:
    """Rows of a points' own kNN graph whose k-th distance is far above their neighbours' k-th distances.

    On a manifold sampled densely enough for Isomap, a point's k-th neighbour distance is close to
    its neighbours' (their neighbourhoods overlap); an approximate search that stranded a query
    in another part of the manifold returns neighbours several times farther than the true ones.
    Cheap (``O(n_samples * k)``, no distance computed) and conservative: an outlier of the data
    may be flagged too, which costs one exact search, never a wrong row.

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k)
        Each point's neighbour distances, increasing along rows (``HnswIndex.kneighbors(None, ...)``).
    indices : ndarray of shape (n_samples, k), int
        The neighbours, indices into the same points.
    ratio : float, default=DEFAULT_STRANDED_RATIO
        A row is stranded when its k-th distance exceeds ``ratio`` times the median k-th distance
        of its neighbours.

    Returns
    -------
    ndarray of int64
        The stranded rows, increasing.

    Examples
    --------
    >>> import numpy as np
    >>> distances = np.array([[1.0], [1.0], [1.0], [9.0]])
    >>> indices = np.array([[1], [0], [1], [0]])
    >>> stranded_rows(distances, indices)
    array([3])
    """
    kth = distances[:, -1]
    neighbour_kth = np.median(kth[indices], axis=1)
    return np.flatnonzero(kth > ratio * neighbour_kth).astype(np.int64)


def _principal_axes(points: np.ndarray, n_axes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and first ``n_axes`` principal axes (D, n_axes), float32, of a fixed-seed row sample."""
    n_samples = points.shape[0]
    rows = np.sort(np.random.default_rng(0).choice(n_samples, min(n_samples, _PROJECTION_SAMPLE_ROWS), replace=False))
    sample = points[rows].astype(np.float64)
    mean = sample.mean(axis=0)
    sample -= mean
    _, eigenvectors = np.linalg.eigh(sample.T @ sample)
    axes = eigenvectors[:, ::-1][:, :n_axes]
    return mean.astype(np.float32), np.ascontiguousarray(axes, dtype=np.float32)


def _estimate_recall(points: np.ndarray, distances: np.ndarray, indices: np.ndarray, n_threads: int) -> float:
    """Recall@k of the fit points' own graph on a fixed-seed row sample searched exactly, which it then holds.

    Warns below ``RECALL_FLOOR``: a search is never silently worse than documented.
    """
    n_samples, n_neighbors = indices.shape
    rows = np.sort(np.random.default_rng(0).choice(n_samples, min(n_samples, _RECALL_SAMPLE_ROWS), replace=False))
    exact_distances, exact_indices = _exact_other_neighbors(points, rows, n_neighbors, n_threads)
    from isogan.knn import recall_at_k

    recall = recall_at_k(indices[rows], exact_indices)
    distances[rows], indices[rows] = exact_distances, exact_indices
    if recall < RECALL_FLOOR:
        warnings.warn(
            f"algorithm='approximate' found only {recall:.3f} of the exact {n_neighbors} nearest neighbours on "
            f"{rows.size} sampled points (the documented floor is {RECALL_FLOOR}). Use an exact algorithm, or "
            "search with stronger parameters (isogan._backend.approx_knn.HnswIndex).",
            stacklevel=4,
        )
    return recall


def research_stranded(points: np.ndarray, distances: np.ndarray, indices: np.ndarray, ratio: float,
                      n_threads: int) -> int:
    """Replace, in place, the :func:`stranded_rows` of the points' own kNN graph by exact searches.

    A stranded row's found neighbours lie in another part of the manifold: its edges are geodesic
    shortcuts although recall@k barely notices them. Each flagged row is searched exactly among all
    points (native brute force, about ``n_samples * n_features`` flops a row). A repaired row
    shortens its own k-th distance, which can expose rows that took it as a neighbour, hence the
    repeat; each row is searched at most once.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous
    distances : ndarray of shape (n_samples, k), the points' dtype
        Each point's neighbour distances, increasing along rows; updated in place.
    indices : ndarray of shape (n_samples, k), int64
        The neighbours (never the point itself); updated in place.
    ratio : float
        As in :func:`stranded_rows`.
    n_threads : int
        OpenMP threads of the exact searches.

    Returns
    -------
    int
        Rows searched again.
    """
    researched = np.zeros(distances.shape[0], dtype=bool)
    while True:
        rows = stranded_rows(distances, indices, ratio)
        rows = rows[~researched[rows]]
        if rows.size == 0:
            return int(researched.sum())
        researched[rows] = True
        distances[rows], indices[rows] = _exact_other_neighbors(points, rows, distances.shape[1], n_threads)


def _exact_other_neighbors(points: np.ndarray, rows: np.ndarray, n_neighbors: int,
                           n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact k nearest other points of ``points[rows]`` (native brute force over all points).

    Searching k + 1 and dropping the point itself by index leaves the k nearest others in
    (distance, index) order, as the exact search of all points with ``exclude_self`` ranks them: a
    row that does not find itself (more than k duplicates of smaller index) keeps its first k.
    """
    queries = np.ascontiguousarray(points[rows])
    distance, index = _core.knn_kneighbors(queries, points, n_neighbors + 1, _EUCLIDEAN_CODE, 2.0, False, n_threads)
    is_other = index != rows[:, None]
    order = np.argsort(~is_other, axis=1, kind="stable")[:, :n_neighbors]
    return np.take_along_axis(distance, order, axis=1), np.take_along_axis(index, order, axis=1)


def approximate_kneighbors(fit: np.ndarray, queries: np.ndarray | None, n_neighbors: int, n_threads: int,
                           show: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Build an :class:`HnswIndex` over ``fit`` with the default parameters and search it once.

    Parameters
    ----------
    fit : ndarray of shape (n_samples_fit, n_features), float32 or float64, C-contiguous
    queries : ndarray of shape (n_queries, n_features) or None
        None: the fit points, each excluding itself.
    n_neighbors : int
    n_threads : int
        OpenMP threads.
    show : bool, default=False
        Progress bars.

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors), the fit points' dtype
    indices : ndarray of shape (n_queries, n_neighbors), int64
        As :meth:`HnswIndex.kneighbors`.
    """
    return HnswIndex(fit, n_threads, show=show).kneighbors(queries, n_neighbors, n_threads, show=show)
