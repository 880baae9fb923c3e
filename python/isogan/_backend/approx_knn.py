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
At N=100k x 784 (``isogan.datasets.make_shapes``, k=10, two cores) this path took 16.4 s at
recall@10 1.0000 against ~188 s for the exact brute force (11.5x); pynndescent, warm, took
3.3-9.1 s at recall 0.9998, so the choice is open (``benchmarks/bench_knn_approx.py``,
``benchmarks/RESULTS.md``).

What recall costs: building the graph is about half the time (``ef_construction`` candidates per
insertion, ``n_links`` links per point), the search most of the rest (each query visits about
``ef_search`` candidates), the exact re-ranking ~5%. The defaults hold recall@10 >= 0.95 on the
swiss roll and on the shapes images (1.0000 at N=100k), measured in ``tests/test_knn_approx.py``
at N=4000. Recall alone is not enough for Isomap: a few stranded queries whose candidates are 2-3x
farther than their true neighbours add geodesic shortcuts (see ``DEFAULT_EF_CONSTRUCTION``).
Cheaper settings keep the images' recall but not the swiss roll's: ``ef_construction=20`` took
~35% off the images' time and the swiss roll's recall to 0.80. Measure your data with
:func:`isogan.knn.recall_at_k` before lowering them.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from isogan import _core
from isogan._backend.memory import ensure_memory
from isogan._backend.policy import progress_bar

__all__ = ["APPROX_EXTRA_HINT", "DEFAULT_EF_CONSTRUCTION", "DEFAULT_EF_SEARCH", "DEFAULT_N_LINKS", "HnswIndex",
           "approximate_kneighbors", "faiss_module"]

APPROX_EXTRA_HINT = 'pip install "isogan[approx]"'
# Links per point in the HNSW graph (faiss's M); the base layer keeps twice as many.
DEFAULT_N_LINKS = 16
# Candidates kept while inserting a point (faiss's efConstruction). 40 left a few images per 10k
# stranded (their "neighbours" 2-3x farther than the true ones: geodesic shortcuts that took the
# landmark residual variance at N=30k from 0.28 to 0.49); 100 removes them (RESULTS.md).
DEFAULT_EF_CONSTRUCTION = 100
# Candidates kept while searching (faiss's efSearch), at least n_neighbors + 1.
DEFAULT_EF_SEARCH = 32
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
    show : bool, default=False
        Progress bar over the insertion.

    Raises
    ------
    ImportError
        faiss-cpu is not installed.
    MemoryError
        The graph cannot fit in the available memory.
    """

    def __init__(self, fit: np.ndarray, n_threads: int, *, n_links: int = DEFAULT_N_LINKS,
                 ef_construction: int = DEFAULT_EF_CONSTRUCTION, ef_search: int = DEFAULT_EF_SEARCH,
                 show: bool = False) -> None:
        faiss = faiss_module()
        n_samples, n_features = fit.shape
        # float32 vectors, 2 * n_links int32 base-layer links, the upper layers (at most as many) and offsets.
        graph_bytes = n_samples * (4 * n_features + 16 * n_links + 16)
        ensure_memory(graph_bytes, f"the approximate-search (HNSW) graph over {n_samples} x {n_features} points",
                      "Use fewer points, or algorithm='brute'.")
        self.fit = fit
        self.ef_search = int(ef_search)
        self._index = faiss.IndexHNSWFlat(n_features, int(n_links))
        self._index.hnsw.efConstruction = int(ef_construction)
        with _FaissThreads(faiss, n_threads), progress_bar(n_samples, "kNN (HNSW build)", show, unit="pt") as bar:
            for start in range(0, n_samples, _BLOCK_ROWS):
                block = fit[start : start + _BLOCK_ROWS]
                self._index.add(np.ascontiguousarray(block, dtype=np.float32))
                bar.update(block.shape[0])

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
            search does.
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
        width = n_neighbors + exclude_self
        ensure_memory(n_queries * width * 8, f"the ({n_queries}, {width}) approximate-search candidates",
                      "Query fewer points at a time.")
        candidates = np.empty((n_queries, width), dtype=np.int64)
        parameters = faiss.SearchParametersHNSW()
        parameters.efSearch = max(self.ef_search, width)
        with _FaissThreads(faiss, n_threads), progress_bar(n_queries, "kNN (HNSW search)", show, unit="pt") as bar:
            for start in range(0, n_queries, _BLOCK_ROWS):
                block = queries[start : start + _BLOCK_ROWS]
                _, found = self._index.search(np.ascontiguousarray(block, dtype=np.float32), width, params=parameters)
                candidates[start : start + block.shape[0]] = self._complete(block, found, width, n_threads)
                bar.update(block.shape[0])
        # Exact distances of the candidates, ranked by (distance, index) by the exact search's own code
        # (csrc/knn/knn_distance.h), so a pair both searches find has the same distance bit for bit.
        return _core.knn_kneighbors_among(queries, self.fit, candidates, n_neighbors, _EUCLIDEAN_CODE, 2.0,
                                          exclude_self, n_threads)

    def _complete(self, block: np.ndarray, found: np.ndarray, width: int, n_threads: int) -> np.ndarray:
        """Replace the rows where faiss found fewer than ``width`` points (label -1) by an exact search."""
        short = np.flatnonzero((found < 0).any(axis=1))
        if short.size:
            from isogan.knn import kneighbors

            found = found.copy()
            found[short] = kneighbors(self.fit, block[short], width, n_jobs=n_threads, device="cpu", algorithm="brute")[1]
        return found


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
