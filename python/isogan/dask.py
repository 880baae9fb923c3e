"""Landmark Isomap on a Dask cluster: :class:`Isomap` fits a row-chunked ``dask.array``.

The algorithm is :mod:`isogan.landmark`'s, run by the Dask backend
(:mod:`isogan._backend.dask`, which says what runs where); this module validates the input and
the parameters as :class:`isogan.Isomap` does and orchestrates the stages. Needs the optional
dependencies ``pip install isogan[dask]``.
"""

from __future__ import annotations

import concurrent.futures
import math
import time
from numbers import Integral
from typing import Any

# First, so that a missing dask is reported with the extra to install (isogan[dask]).
from isogan._backend.dask import DaskBackend, active_client

import dask.array as da
import distributed
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted

from isogan import isomap as _isomap
from isogan._backend.cpu import float_dtype
from isogan._compat import Interval, fit_context
from isogan._ranges import check_point_range
from isogan.connect import connect_components
from isogan.landmark import check_n_landmarks, fit_landmark_model

__all__ = ["Isomap"]


def _effective_metric(p: float) -> tuple[str, dict[str, float]]:
    """The metric scikit-learn's NearestNeighbors names for Minkowski ``p`` (what joins components)."""
    named = {1.0: "manhattan", 2.0: "euclidean", math.inf: "chebyshev"}
    return (named[float(p)], {}) if float(p) in named else ("minkowski", {"p": float(p)})


def _as_points(X: Any) -> da.Array:
    """A 2-D float dask array with one column chunk and known row chunks (float32 stays float32)."""
    if not isinstance(X, da.Array):
        X = da.from_array(np.asarray(X), chunks=("auto", -1))
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array of points (n_samples, n_features), got shape {X.shape}.")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}.")
    if any(math.isnan(rows) for rows in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.numblocks[1] > 1:
        # Every task needs whole rows (distances): one column chunk, the row chunks kept.
        X = X.rechunk({1: -1})
    dtype = float_dtype(X.dtype)
    return X if X.dtype == dtype else X.astype(dtype)


class Isomap(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Landmark Isomap on the workers of the active ``distributed.Client``.

    The same embedding as ``isogan.Isomap(n_landmarks=L)`` with the same data and
    ``random_state`` (to rounding in the triangulation sums: 1e-12 relative in float64), computed
    where the data live: the points stay row-chunked on the workers, the neighbour graph is
    searched by row blocks there, the landmark geodesic rows are computed and kept in shares on
    the workers, and only the (L, L) landmark block and (N, k) neighbour lists come to the
    client. Each task runs single-threaded (``n_jobs``): the parallelism is Dask's.

    A disconnected neighbour graph is joined as :class:`isogan.Isomap` joins it (an edge between
    the nearest pair of every two components, with a warning); that rare search reads pairs of
    row blocks on the client. The graph must fit every worker (about 1.6 GB at N = 10M, k = 10).

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours of each point in the kNN graph.
    n_components : int, default=2
        Number of coordinates for the manifold.
    n_landmarks : int
        Number of landmarks L, ``n_components + 1 <= L <= n_samples`` (required: on a cluster
        only landmark Isomap runs).
    landmark_method : {'maxmin', 'random'}, default='maxmin'
        'maxmin' is farthest-point sampling in input space from a first landmark drawn by
        ``random_state``, 'random' a uniform draw; the same landmarks as :class:`isogan.Isomap`.
    random_state : int, RandomState instance or None, default=None
        Seeds the landmark choice.
    p : float, default=2
        Minkowski power of the neighbour distances (p >= 1; 2 is Euclidean).
    neighbors_algorithm : {'auto', 'brute', 'kd_tree', 'ball_tree'}, default='auto'
        The native search each task runs (the graph is the same whichever).
    path_method : {'auto', 'FW', 'D'}, default='auto'
        As in :class:`isogan.Isomap`; landmark rows always run Dijkstra from their sources.
    n_jobs : int or None, default=None
        Threads of each task's native kernel; None: 1 (one task per worker thread). Negative
        values count the client's cores, as in :class:`isogan.Isomap`.
    gather_bytes : int or None, default=None
        Most bytes of points gathered on one worker: when all points fit, every row block is
        searched against all of them at once and MaxMin runs in one native task; past it the kNN
        search runs block against block with a top-k merge and MaxMin in rounds over per-thread
        groups of blocks (one round trip per landmark). None: a quarter of the smallest worker's
        memory limit. The result is the same either way.
    progress : bool or None, default=None
        True: a progress bar over the tasks of each stage (kNN graph, landmark shortest paths,
        triangulation), after the Dask dashboard's address; None: only for the landmark shortest
        paths, when they are predicted to take over ~2 s; False: none.

    Attributes
    ----------
    embedding_ : dask.array.Array of shape (n_samples, n_components)
        The embedding, persisted on the workers, chunked by rows like X.
    landmark_model_ : isogan.landmark.LandmarkModel
        The fitted landmark model; its ``landmark_geodesic`` is a
        :class:`isogan._backend.dask.DaskRows` whose shares stay on the workers.
    landmark_index_ : ndarray of shape (n_landmarks,)
        Indices of the landmarks among the training points.
    X_fit_ : dask.array.Array of shape (n_samples, n_features)
        The training points, persisted on the workers (``transform`` searches them).
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    timings_ : dict of str to float
        Wall-clock seconds per stage ('validate', 'knn', 'connect', 'landmarks', 'paths', 'mds').

    See Also
    --------
    isogan.Isomap : The in-process estimator (exact or landmark).

    Examples
    --------
    >>> import dask.array as da
    >>> from distributed import Client, LocalCluster
    >>> from sklearn.datasets import make_swiss_roll
    >>> from isogan.dask import Isomap
    >>> cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
    >>> client = Client(cluster)
    >>> X = da.from_array(make_swiss_roll(2000, random_state=0)[0], chunks=(500, 3))
    >>> Isomap(n_neighbors=10, n_landmarks=100, random_state=0).fit(X).embedding_.chunks
    ((500, 500, 500, 500), (2,))
    >>> client.close(); cluster.close()
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        **{name: _isomap.Isomap._parameter_constraints[name]
           for name in ("n_components", "n_landmarks", "landmark_method", "random_state", "p", "neighbors_algorithm",
                        "path_method", "n_jobs")},
        "gather_bytes": [Interval(Integral, 0, None, closed="left"), None],
        "progress": ["boolean", None],
    }

    def __init__(
        self,
        *,
        n_neighbors: int = 5,
        n_components: int = 2,
        n_landmarks: int | None = None,
        landmark_method: str = "maxmin",
        random_state: Any = None,
        p: float = 2,
        neighbors_algorithm: str = "auto",
        path_method: str = "auto",
        n_jobs: int | None = None,
        gather_bytes: int | None = None,
        progress: bool | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.n_landmarks = n_landmarks
        self.landmark_method = landmark_method
        self.random_state = random_state
        self.p = p
        self.neighbors_algorithm = neighbors_algorithm
        self.path_method = path_method
        self.n_jobs = n_jobs
        self.gather_bytes = gather_bytes
        self.progress = progress

    def _backend(self) -> DaskBackend:
        return DaskBackend(active_client(), self.n_jobs, self.gather_bytes, bool(self.progress))

    def _neighbor_options(self) -> dict[str, Any]:
        return {"metric": "minkowski", "p": self.p, "algorithm": self.neighbors_algorithm}

    def _fit(self, X: Any) -> None:
        """The fit, with a task whose workers all died (most often past their memory limit) named."""
        try:
            self._fit_stages(X)
        except distributed.KilledWorker as error:
            raise RuntimeError(
                f"The Dask workers died running task {error.task!r} ({error.allowed_failures + 1} tries, the last "
                f"on {error.last_worker.address}); most often a worker went past its memory limit and its nanny "
                "ended it. Give the workers more memory (memory_limit), add workers or use fewer landmarks; the "
                "worker logs say why."
            ) from error
        except concurrent.futures.CancelledError as error:
            # Dask cancels every pending future at once when the scheduler connection is lost.
            reasons = " ".join(str(error).split())  # Dask's message spans lines
            raise RuntimeError(f"The fit's Dask tasks were cancelled, so it stopped: {reasons}") from error

    def _fit_stages(self, X: Any) -> None:
        """validate -> persist -> kNN graph -> connect -> landmark pipeline on the Dask backend."""
        if self.n_landmarks is None:
            raise ValueError("isogan.dask.Isomap runs landmark Isomap only: pass n_landmarks=L "
                             "(n_components + 1 <= L <= n_samples).")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        backend = self._backend()
        points = _as_points(X)
        n_samples, n_features = points.shape
        if self.n_neighbors >= n_samples:
            raise ValueError(
                "Expected n_neighbors < n_samples_fit, but "
                f"n_neighbors = {self.n_neighbors}, n_samples_fit = {n_samples}, n_samples = {n_samples}"
            )
        check_n_landmarks(self.n_landmarks, self.n_components, n_samples)
        backend.check_fit_memory(points, self.n_neighbors, self.n_landmarks, self.n_components)
        points, extremes = backend.persist_points(points)
        metric, metric_params = _effective_metric(self.p)
        # The per-feature extremes of all points bound their distances as the points themselves do.
        check_point_range(extremes, self.n_landmarks, metric, points.dtype)
        timings["validate"] = time.perf_counter() - start

        start = time.perf_counter()
        graph = backend.neighbor_graph(points, self.n_neighbors, **self._neighbor_options())
        timings["knn"] = time.perf_counter() - start
        start = time.perf_counter()
        graph, component_labels = connect_components(graph, points, metric=metric, metric_params=metric_params,
                                                     chunk_rows=max(points.chunks[0]), stacklevel=6)
        graph = graph.astype(points.dtype, copy=False)
        timings["connect"] = time.perf_counter() - start
        model = fit_landmark_model(
            graph, self.n_landmarks, self.n_components, points=points, landmark_method=self.landmark_method,
            random_state=self.random_state, component_labels=component_labels, path_method=self.path_method,
            n_jobs=self.n_jobs, backend=backend, maxmin_pool=backend.maxmin_pool(points, self.n_landmarks, None),
            progress=self.progress,
        )
        self.landmark_model_ = model
        self.landmark_index_ = model.landmark_index
        self.embedding_ = model.embedding
        self.X_fit_ = points
        self.n_features_in_ = n_features
        self._n_features_out = self.n_components
        self.timings_ = {**timings, **model.timings}

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> Isomap:
        """Compute the embedding of the points X on the cluster.

        Parameters
        ----------
        X : dask.array.Array of shape (n_samples, n_features)
            The points, chunked by rows (column chunks are merged into one); a NumPy array is
            chunked automatically. Integer input becomes float64, float32 stays float32.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        RuntimeError
            When no ``distributed.Client`` is active, or its scheduler is gone (also when it goes
            during the fit: Dask cancels the tasks); when every worker that ran one task died (most
            often past its memory limit: Dask's ``KilledWorker``).
        ValueError
            Bad parameters or input (with :class:`isogan.Isomap`'s wording); NaN or infinity in a
            block of X (naming the block and its rows).
        MemoryError
            When the graph and landmark rows cannot fit the workers (or the graph the client).
        """
        self._fit(X)
        return self

    @fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X: Any, y: Any = None) -> da.Array:
        """Fit on X and return its embedding (``embedding_``).

        Parameters
        ----------
        X : dask.array.Array of shape (n_samples, n_features)
            As in :meth:`fit`.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        X_new : dask.array.Array of shape (n_samples, n_components)
            Persisted on the workers, chunked by rows like X.
        """
        self._fit(X)
        return self.embedding_

    def transform(self, X: Any) -> da.Array:
        """Embed new points, lazily, one row block at a time.

        Each block's neighbours among the training points are searched on the workers, their
        geodesic distances to the landmarks are the min-plus products with the landmark rows
        (where those rows live), and they are triangulated like training points: the same
        coordinates as :meth:`isogan.Isomap.transform` on the in-process model.

        The tasks that read a share of landmark rows are annotated with the worker holding it;
        Dask's graph optimisation drops annotations, so compute the result with
        ``optimize_graph=False`` (``client.compute(X_new, optimize_graph=False)``) to keep every
        share where it is. Optimised, the scheduler still sends them there unless moving a share
        looks cheaper than waiting for its worker (small shares on a busy worker).

        Parameters
        ----------
        X : dask.array.Array of shape (n_queries, n_features)
            New points, chunked by rows (a NumPy array is chunked automatically).

        Returns
        -------
        X_new : dask.array.Array of shape (n_queries, n_components)
            Lazy, chunked by rows like X; float32 when X and the training points are float32.
        """
        check_is_fitted(self)
        queries = _as_points(X)
        if queries.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {queries.shape[1]} features, but Isomap is expecting "
                             f"{self.n_features_in_} features as input.")
        out_dtype = np.float32 if queries.dtype == np.float32 and self.X_fit_.dtype == np.float32 else np.float64
        embedding = self._backend().transform_lazily(self.landmark_model_, self.X_fit_,
                                                     queries.astype(self.X_fit_.dtype), self.n_neighbors,
                                                     **self._neighbor_options())
        return embedding.astype(out_dtype)
