"""The Dask backend of the landmark pipeline: its stages as tasks on a ``distributed`` cluster.

The algorithm stays in :mod:`isogan.landmark`; this backend runs its stages where the data live.
Every task calls the CPU stage functions (:mod:`isogan.knn`, :mod:`isogan.paths`, :class:`~isogan._backend.cpu.CpuBackend`),
single-threaded unless ``n_jobs`` says otherwise: on Dask the parallelism comes from the tasks.

What runs where, and what crosses the network:

- **points**: a row-chunked dask array persisted on the workers; the client never holds them.
- **kNN graph**: one search per row block. When all points fit ``gather_bytes`` they are
  gathered on one worker and every block is searched against them at once (a kd-tree for low
  D); otherwise every block is searched against every other block and the lists are merged
  (:func:`isogan.knn.merge_nearest`), so no task holds more than two blocks. Both give the graph
  of :func:`isogan.knn_graph` exactly. The (N, k) lists come to the client, which builds the CSR
  graph and joins its components.
- **MaxMin**: the native kernel in one task on all points when they fit ``gather_bytes``; else
  in rounds over one group of blocks per worker thread (one update and one farthest-point task
  per group and landmark, the same arithmetic as the kernel), the same landmarks either way.
- **landmark rows**: the graph is scattered once to every worker
  (``client.scatter(broadcast=True)``, so a dead worker does not take it along); the landmarks are
  split into shares, each share's (L_i, N) rows computed by the multi-source Dijkstra in one task
  and kept on its worker as a future (:class:`DaskRows`). A lost share is recomputed by Dask.
- **MDS**: each share sends its (L_i, L) landmark columns to the client, which solves the
  (L, L) eigenproblem.
- **triangulation** is linear in the squared distances, so every (share, row block) task
  computes its float64 contribution where the share lives and each row block sums them: the
  embedding is a dask array chunked like the points, and nothing O(N * L) moves.
- **transform**: neighbours of each new block as above, then per share the min-plus product and
  its contribution, summed per block (lazy).

Limits: the neighbour graph must fit on every worker (about 1.6 GB at N = 10M, k = 10); a graph
larger than one worker needs a distributed shortest-path engine, which isogan does not provide.
"""

from __future__ import annotations

import concurrent.futures
import operator
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import assert_all_finite

from isogan import _core
from isogan._backend.cpu import CpuBackend
from isogan._backend.memory import (
    available_host_bytes,
    ensure_memory,
    landmark_fit_host_bytes,
    landmark_remedy,
)
from isogan._backend.policy import progress_bar, threads
from isogan._ranges import check_edge_range
from isogan.knn import kneighbors, merge_nearest, neighbors_to_csr
from isogan.paths import geodesic_distances

try:
    import dask
    import dask.array as da
    import distributed
except ImportError as error:  # pragma: no cover - the tests skip without dask
    raise ImportError(
        "isogan.dask needs dask and distributed; install them with `pip install isogan[dask]`."
    ) from error

__all__ = ["ROWS_KEY_PREFIX", "DaskBackend", "DaskRows", "active_client"]

#: Key prefix of the landmark-row tasks (one per share), as the scheduler and dashboard show them.
ROWS_KEY_PREFIX = "isogan-landmark-rows"
# Shares of landmarks per worker thread: two keep every thread busy when shares take unequal
# times, and a lost worker costs the recomputation of smaller shares...
_SHARES_PER_THREAD = 2
# ...as long as a share keeps this many landmarks: each task symmetrises the graph again, and
# from 64 sources on a large graph (50k nodes) isogan.paths relabels it for cache locality, which
# halves the search time at 1M nodes (benchmarks/RESULTS.md, "Locality reordering").
_MIN_SHARE_LANDMARKS = 64
# A running MaxMin distance marked as a chosen landmark (csrc/mds/landmark_cpu.cpp, kPicked).
_PICKED = -1.0
# Gathered points need about this many times their bytes on the worker (the fetched blocks, their
# concatenation, the kd-tree or the MaxMin distances).
_GATHER_OVERHEAD = 4


def active_client() -> distributed.Client:
    """The ``distributed.Client`` the fit runs on: the current one, connected.

    Raises
    ------
    RuntimeError
        When no client is active, or its scheduler is gone (the message says how to start one).
    """
    try:
        client = distributed.get_client()
    except ValueError:
        raise RuntimeError(
            "isogan.dask.Isomap runs on a Dask cluster, but no distributed.Client is active; start one "
            "with `from distributed import Client; client = Client()` (a local cluster) or "
            "`Client('tcp://scheduler-address:8786')`."
        ) from None
    address = getattr(client.scheduler, "address", None)
    gone = (f"its scheduler ({address}) cannot be reached. Start the scheduler again, or start a new client "
            "with `from distributed import Client; client = Client()`.")
    if client.status != "running":
        raise RuntimeError(f"The active distributed.Client is {client.status!r}: {gone}")
    # The client notices a dead scheduler only when it next talks to it: ask, within the connect timeout.
    timeout = dask.utils.parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s")
    try:
        client.sync(client.scheduler.identity, callback_timeout=timeout)
    except (OSError, TimeoutError) as error:
        raise RuntimeError(f"The active distributed.Client got no answer within {timeout:g} s ({error}): {gone}") from None
    return client


@dataclass
class DaskRows:
    """The (L, N) landmark geodesic rows, held in shares on the workers.

    Attributes
    ----------
    bounds : list of tuple (start, stop)
        Landmark positions of each share, in landmark order.
    futures : list of distributed.Future
        Each share's (stop - start, N) rows.
    shape : tuple (n_landmarks, n_samples)
        Extents of all rows.
    dtype : numpy.dtype
        float32 or float64.
    """

    bounds: list[tuple[int, int]]
    futures: list[Any]
    shape: tuple[int, int]
    dtype: np.dtype

    def max(self) -> np.generic:
        """The largest distance, as ``ndarray.max`` gives it (read by callers that treat the rows as an array)."""
        client = self.futures[0].client
        return np.max(client.gather([client.submit(np.max, share) for share in self.futures]))


# ------------------------------------------------------------------------------ tasks
def _block_summary(block: np.ndarray) -> tuple[str | None, np.ndarray | None]:
    """scikit-learn's message when the block holds NaN or infinity (else None), and its (2, D)
    per-feature minimum and maximum (None for an empty or non-finite block)."""
    try:
        assert_all_finite(block, input_name="X")
    except ValueError as error:
        return str(error), None
    if block.shape[0] == 0:
        return None, None
    return None, np.vstack([block.min(axis=0), block.max(axis=0)])


def _checked_neighbors(neighbors: tuple[np.ndarray, np.ndarray], n_landmarks: int) -> tuple[np.ndarray, np.ndarray]:
    """The neighbours of new points, refused when their squared distances overflow (as in-process)."""
    distance = neighbors[0]
    # Every geodesic distance of a new point is at least its nearest neighbour's distance.
    check_edge_range(distance.min(axis=1) if distance.shape[0] else distance, n_landmarks, distance.dtype,
                     "distances from X to its nearest training points")
    return neighbors


def _neighbors_among_all(points: np.ndarray, query: np.ndarray, start: int, n_neighbors: int, exclude_self: bool,
                         options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest of ``points`` for each query row; with ``exclude_self`` query i is point start + i.

    Searching k + 1 and dropping the point itself by index leaves exactly the k nearest others in
    (distance, index) order: a row that does not find itself (more than k duplicates of smaller
    index) keeps its first k.
    """
    if not exclude_self:
        return kneighbors(points, query, n_neighbors, **options)
    distance, index = kneighbors(points, query, n_neighbors + 1, **options)
    is_other = index != (start + np.arange(query.shape[0], dtype=np.int64))[:, None]
    order = np.argsort(~is_other, axis=1, kind="stable")[:, :n_neighbors]
    return np.take_along_axis(distance, order, axis=1), np.take_along_axis(index, order, axis=1)


def _neighbors_in_block(candidates: np.ndarray, candidate_start: int, query: np.ndarray, n_neighbors: int,
                        same_block: bool, options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The nearest (at most k) of one candidate block for each query row, with global indices."""
    if same_block:
        # Y=None excludes each point by index, so its duplicates stay neighbours.
        width = min(n_neighbors, query.shape[0] - 1)
        if width == 0:
            return np.empty((query.shape[0], 0), dtype=query.dtype), np.empty((query.shape[0], 0), dtype=np.int64)
        distance, index = kneighbors(query, None, width, **options)
    else:
        distance, index = kneighbors(candidates, query, min(n_neighbors, candidates.shape[0]), **options)
    return distance, index + candidate_start


def _merge_neighbors(n_neighbors: int, *found: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Merge the candidate blocks' nearest lists (in increasing block order) into the k nearest."""
    n_query = found[0][0].shape[0]
    dtype = found[0][0].dtype
    best_distance = np.full((n_query, n_neighbors), np.inf, dtype=dtype)
    best_index = np.full((n_query, n_neighbors), -1, dtype=np.int64)
    for distance, index in found:
        best_distance, best_index = merge_nearest(best_distance, best_index, distance, index, n_neighbors)
    return best_distance, best_index


def _maxmin_all(points: np.ndarray, n_landmarks: int, first: int, n_jobs: int) -> np.ndarray:
    return CpuBackend(n_jobs).maxmin(points, n_landmarks, first)


def _maxmin_update(points: np.ndarray, min_sq: np.ndarray | None, center: np.ndarray, picked: int,
                   n_jobs: int) -> np.ndarray:
    """One MaxMin round on a group of points: mark ``picked`` (local, or -1) and lower by ``center``."""
    min_sq = np.full(points.shape[0], np.inf) if min_sq is None else min_sq.copy()
    if picked >= 0:
        min_sq[picked] = _PICKED
    # MaxMin with one landmark, the centre put first, returns the squared distances to it in the
    # kernel's own arithmetic, so the rounds choose what one kernel run over all points chooses.
    _, squared = _core.landmark_maxmin(np.vstack([center[None, :], points]), 1, 0, threads(n_jobs))
    still_open = min_sq != _PICKED
    min_sq[still_open] = np.minimum(min_sq[still_open], squared[1:][still_open])
    return min_sq


def _maxmin_farthest(points: np.ndarray, min_sq: np.ndarray) -> tuple[float, int, np.ndarray | None]:
    """(distance, local index, coordinates) of the group's farthest open point; ties to the smallest index."""
    local = int(np.argmax(min_sq))
    if min_sq[local] == _PICKED:
        return -2.0, -1, None
    return float(min_sq[local]), local, points[local].copy()


def _share_rows(graph: Any, sources: np.ndarray, path_method: str, n_jobs: int) -> np.ndarray:
    """The multi-source Dijkstra rows of one share (no progress bar on the worker: the client shows one)."""
    return np.ascontiguousarray(geodesic_distances(graph, method=path_method, indices=sources, n_jobs=n_jobs,
                                                   device="cpu", progress=False))


def _triangulate_share(rows: np.ndarray, start: int, stop: int, projection: np.ndarray, mean_sq_distance: np.ndarray,
                       n_jobs: int) -> np.ndarray:
    """A share's float64 contribution to the coordinates of points ``start:stop``."""
    columns = np.ascontiguousarray(rows[:, start:stop], dtype=np.float64)
    return CpuBackend(n_jobs).triangulate(columns, projection, mean_sq_distance)


def _transform_share(rows: np.ndarray, neighbors: tuple[np.ndarray, np.ndarray], projection: np.ndarray,
                     mean_sq_distance: np.ndarray, n_jobs: int) -> np.ndarray:
    """A share's float64 contribution to new points' coordinates, from their (distances, indices) neighbours."""
    distance = np.ascontiguousarray(neighbors[0], dtype=rows.dtype)
    index = np.ascontiguousarray(neighbors[1], dtype=np.int64)
    query_rows = _core.landmark_min_plus(rows, index, distance, threads(n_jobs))
    return CpuBackend(n_jobs).triangulate(query_rows.astype(np.float64), projection, mean_sq_distance)


def _sum_partials(dtype: np.dtype, *partials: np.ndarray) -> np.ndarray:
    """Sum the shares' contributions in share order, then round once to the output dtype."""
    total = partials[0].copy()
    for partial in partials[1:]:
        total += partial
    return total.astype(dtype, copy=False)


# ------------------------------------------------------------------------------ backend
def _wait_or_raise(futures: list[Any]) -> None:
    """Wait for ``futures``; raise the first failure (a task's own exception, or Dask's ``KilledWorker``)."""
    distributed.wait(futures)
    for future in futures:
        if future.status == "error":
            future.result()


def _row_starts(chunks: tuple[int, ...]) -> list[int]:
    return [int(start) for start in np.concatenate([[0], np.cumsum(chunks)[:-1]])]


class DaskBackend:
    """Landmark stages as tasks on the workers of a ``distributed.Client``.

    Parameters
    ----------
    client : distributed.Client
        Where the tasks run (see :func:`active_client`).
    n_jobs : int or None, default=None
        Threads per task (None: 1, Dask's model of one task per worker thread).
    gather_bytes : int or None, default=None
        Most bytes of points gathered on one worker for the kNN search against all points and the
        one-task MaxMin; past it both run over blocks. None: a quarter of the smallest worker's
        memory limit.
    show : bool, default=False
        A progress bar over each stage's tasks, after the Dask dashboard's address.
    """

    name = "dask"

    def __init__(self, client: distributed.Client, n_jobs: int | None = None, gather_bytes: int | None = None,
                 show: bool = False) -> None:
        self.client = client
        self.task_threads = 1 if n_jobs is None else threads(n_jobs)
        self.show = show
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        if not workers:
            raise RuntimeError("The distributed.Client's cluster has no workers; start some (e.g. Client(n_workers=2)).")
        self.n_workers = len(workers)
        self.n_threads = sum(int(worker["nthreads"]) for worker in workers)
        limits = [int(worker["memory_limit"]) for worker in workers if worker["memory_limit"]]
        self.worker_memory = min(limits) if limits else available_host_bytes()
        self.gather_bytes = self.worker_memory // _GATHER_OVERHEAD if gather_bytes is None else int(gather_bytes)
        self._cpu = CpuBackend(self.task_threads)
        # Row chunks of the points the graph was built from: the embedding's chunks.
        self.row_chunks: tuple[int, ...] | None = None
        self._all_points: Any = None
        self._graph: tuple[Any, Any] | None = None
        self._dashboard_shown = False

    # -------------------------------------------------------------------------- helpers
    def _progress(self, futures: list[Any], stage: str) -> None:
        """isogan's progress bar over ``futures`` until they are done (the dashboard address first, once)."""
        link = getattr(self.client, "dashboard_link", None)
        if link and not self._dashboard_shown:
            self._dashboard_shown = True
            print(f"isogan.dask: Dask dashboard at {link}", file=sys.stderr)
        with progress_bar(len(futures), f"{stage} (dask)", True, unit="task") as bar:
            for _ in distributed.as_completed(futures):
                bar.update(1)

    def _holders(self, rows: DaskRows) -> list[list[str] | None]:
        """The workers holding each share, once computed: where the tasks that read a share are sent.

        The restriction is loose: when a holder dies, Dask recomputes the share and runs the tasks
        anywhere. Graph optimisation drops it (Dask annotations do not survive it), so the fit
        persists its share tasks unoptimised.
        """
        distributed.wait(rows.futures)
        who_has = self.client.who_has(rows.futures)
        return [list(who_has.get(future.key, ())) or None for future in rows.futures]

    def _on_shares(self, function: Any, rows: DaskRows, *arguments: Any) -> list[Any]:
        """``function(share, *arguments)`` for every share, run where the share lives; the results gathered."""
        return self.client.gather([self.client.submit(function, share, *arguments, workers=workers,
                                                      allow_other_workers=workers is not None)
                                   for share, workers in zip(rows.futures, self._holders(rows))])

    def _fits_one_worker(self, points: Any) -> bool:
        return points.size * points.dtype.itemsize <= self.gather_bytes

    def _all_points_delayed(self, points: Any) -> Any:
        return dask.delayed(np.concatenate)(list(points.to_delayed().ravel()))

    def _graph_future(self, graph: Any) -> Any:
        """The graph on every worker, scattered once per graph."""
        if self._graph is None or self._graph[0] is not graph:
            self._graph = (graph, self.client.scatter(graph, broadcast=True, hash=False))
        return self._graph[1]

    def neighbor_lists(self, queries: Any, points: Any, n_neighbors: int, *, exclude_self: bool,
                       **options: Any) -> list[Any]:
        """Delayed (distances, indices) of the k nearest ``points`` of each row block of ``queries``.

        ``exclude_self``: the queries are the points, each excluding itself by index (the kNN
        graph); else new points (``transform``). The lists equal :func:`isogan.knn.kneighbors`.
        """
        options = {**options, "n_jobs": self.task_threads, "device": "cpu"}
        query_blocks = list(queries.to_delayed().ravel())
        query_starts = _row_starts(queries.chunks[0])
        if self._fits_one_worker(points):
            everything = self._all_points_delayed(points) if self._all_points is None else self._all_points
            return [dask.delayed(_neighbors_among_all)(everything, block, start, n_neighbors, exclude_self, options)
                    for block, start in zip(query_blocks, query_starts)]
        candidate_blocks = list(points.to_delayed().ravel())
        candidate_starts = _row_starts(points.chunks[0])
        merged = []
        for query_number, query in enumerate(query_blocks):
            found = [dask.delayed(_neighbors_in_block)(candidates, start, query, n_neighbors,
                                                       exclude_self and number == query_number, options)
                     for number, (candidates, start) in enumerate(zip(candidate_blocks, candidate_starts))]
            merged.append(dask.delayed(_merge_neighbors)(n_neighbors, *found))
        return merged

    def persist_points(self, points: Any) -> tuple[Any, np.ndarray]:
        """The points persisted on the workers, each block checked for NaN and infinity.

        Returns
        -------
        points : dask.array.Array
            Persisted.
        extremes : ndarray of shape (2, n_features)
            Per-feature minimum and maximum over all points (what the range checks of
            :mod:`isogan._ranges` read), without gathering the points.

        Raises
        ------
        ValueError
            Naming the first block (and its rows) that holds NaN or infinity.
        """
        points = self.client.persist(points)
        summaries = self.client.gather(self.client.compute(
            [dask.delayed(_block_summary)(block) for block in points.to_delayed().ravel()]))
        for number, ((problem, _), start) in enumerate(zip(summaries, _row_starts(points.chunks[0]))):
            if problem is not None:
                stop = start + points.chunks[0][number]
                raise ValueError(f"{problem.rstrip('.')} in block {number} of X (rows {start} to {stop - 1}). "
                                 "Remove or impute those rows before fitting.")
        bounds = np.vstack([extremes for _, extremes in summaries if extremes is not None])
        return points, np.vstack([bounds.min(axis=0), bounds.max(axis=0)])

    # -------------------------------------------------------------------------- Backend protocol
    def check_fit_memory(self, points: Any, n_neighbors: int | None, n_landmarks: int, n_components: int) -> None:
        """Refuse up front a fit whose graph and landmark rows cannot fit the workers, or whose graph the client.

        Each worker holds the scattered graph plus one symmetrised copy per running task, its
        share of the points and of the (L, N) rows; the client holds the kNN lists and the graph.
        """
        n_samples, n_features = points.shape
        itemsize = points.dtype.itemsize
        remedy = landmark_remedy(points.dtype, "more workers or more memory per worker")
        graph_bytes = landmark_fit_host_bytes(n_samples, 0, n_neighbors, 0, itemsize)
        ensure_memory(graph_bytes + 3 * n_landmarks * n_landmarks * 8,
                      f"The neighbour graph of {n_samples} points on the client", remedy)
        rows_per_worker = -(-n_landmarks // self.n_workers) * n_samples * itemsize
        threads_per_worker = -(-self.n_threads // self.n_workers)
        needed = (graph_bytes * (1 + threads_per_worker) + rows_per_worker
                  + -(-n_samples // self.n_workers) * n_features * itemsize)
        if needed > self.worker_memory:
            raise MemoryError(
                f"Landmark Isomap of {n_samples} points with {n_landmarks} landmarks on {self.n_workers} Dask "
                f"worker(s) needs {needed:,} bytes ({needed / 2**30:.2f} GiB) per worker (the neighbour graph, "
                f"its share of the ({n_landmarks}, {n_samples}) landmark rows and of the points) but the "
                f"smallest worker has {self.worker_memory:,} bytes ({self.worker_memory / 2**30:.2f} GiB). {remedy}"
            )

    def neighbor_graph(self, points: Any, n_neighbors: int | None, **options: Any) -> Any:
        """The (N, N) CSR kNN graph of the persisted points, searched on the workers."""
        self.row_chunks = tuple(int(rows) for rows in points.chunks[0])
        if self._fits_one_worker(points):
            self._all_points = self.client.compute(self._all_points_delayed(points))
        futures = self.client.compute(self.neighbor_lists(points, points, n_neighbors, exclude_self=True, **options))
        if self.show:
            self._progress(futures, "kNN graph")
        lists = self.client.gather(futures)
        distances = np.concatenate([distance for distance, _ in lists])
        indices = np.concatenate([index for _, index in lists])
        return neighbors_to_csr(distances, indices, points.shape[0])

    def maxmin_pool(self, points: Any, n_landmarks: int, chunk_rows: int | None) -> int | None:
        """MaxMin always runs over all points (in rounds when they do not fit one worker)."""
        return None

    def maxmin(self, points: Any, n_landmarks: int, first: int) -> np.ndarray:
        """Farthest-point landmarks from ``first``: one native task, or rounds over groups of blocks."""
        if self._fits_one_worker(points):
            everything = self._all_points
            if everything is None:
                everything = self.client.compute(self._all_points_delayed(points))
            return self.client.submit(_maxmin_all, everything, n_landmarks, first, self.task_threads).result()
        blocks = list(points.to_delayed().ravel())
        groups = np.array_split(np.arange(len(blocks)), min(len(blocks), self.n_threads))
        group_points = self.client.compute([dask.delayed(np.concatenate)([blocks[b] for b in group])
                                            for group in groups])
        group_starts = np.array([_row_starts(points.chunks[0])[group[0]] for group in groups])
        group = int(np.searchsorted(group_starts, first, side="right") - 1)
        local = first - int(group_starts[group])
        center = self.client.submit(operator.getitem, group_points[group], local).result()
        landmark_index = np.empty(n_landmarks, dtype=np.int64)
        landmark_index[0] = first
        states: list[Any] = [None] * len(groups)
        for position in range(1, n_landmarks):
            states = [self.client.submit(_maxmin_update, rows, state, center, local if number == group else -1,
                                         self.task_threads)
                      for number, (rows, state) in enumerate(zip(group_points, states))]
            farthest = self.client.gather([self.client.submit(_maxmin_farthest, rows, state)
                                           for rows, state in zip(group_points, states)])
            best = -3.0
            for number, (value, at, coordinates) in enumerate(farthest):
                if value > best:  # groups come in index order: ties go to the smallest index
                    best, group, local, center = value, number, at, coordinates
            landmark_index[position] = group_starts[group] + local
        return landmark_index

    def release_points(self) -> None:
        """Drop the gathered copy of all points."""
        self._all_points = None

    def geodesic_rows(self, graph: Any, sources: np.ndarray, path_method: str) -> np.ndarray:
        """Host (len(sources), N) rows, computed on a worker from the scattered graph."""
        return self.client.submit(_share_rows, self._graph_future(graph), np.asarray(sources, dtype=np.int64),
                                  path_method, self.task_threads).result()

    def _submit_shares(self, graph_future: Any, landmark_index: np.ndarray, bounds: list[tuple[int, int]],
                       path_method: str, token: str) -> list[Any]:
        """One multi-source Dijkstra task per share ``(start, stop)`` of the landmarks, keyed by ``token``."""
        return [self.client.submit(_share_rows, graph_future, landmark_index[start:stop], path_method,
                                   self.task_threads, key=f"{ROWS_KEY_PREFIX}-{number}-{token}")
                for number, (start, stop) in enumerate(bounds)]

    def landmark_rows(self, graph: Any, landmark_index: np.ndarray, *, path_method: str, show: bool) -> DaskRows:
        """Scatter the graph to every worker, then one multi-source Dijkstra task per share of landmarks."""
        graph_future = self._graph_future(graph)
        per_thread = max(1, min(_SHARES_PER_THREAD, landmark_index.size // (_MIN_SHARE_LANDMARKS * self.n_threads)))
        n_shares = min(landmark_index.size, per_thread * self.n_threads)
        bounds = [(int(share[0]), int(share[-1]) + 1)
                  for share in np.array_split(np.arange(landmark_index.size), n_shares)]
        token = dask.base.tokenize(graph_future.key, landmark_index, path_method)
        futures = self._submit_shares(graph_future, landmark_index, bounds, path_method, token)
        if show:
            self._progress(futures, "landmark shortest paths")
        try:
            _wait_or_raise(futures)
        except concurrent.futures.CancelledError:
            # A worker lost early in the shares can take the scattered graph with it before its
            # replication finished; Dask then cancels the shares ("already forgotten", seen in CI
            # with process workers). While the scheduler answers, the graph is scattered again and
            # the shares are submitted once more under new keys.
            if self.client.status != "running":
                raise
            self._graph = None
            futures = self._submit_shares(self._graph_future(graph), landmark_index, bounds, path_method,
                                          f"{token}-again")
            _wait_or_raise(futures)
        return DaskRows(bounds, futures, (int(landmark_index.size), int(graph.shape[0])), np.dtype(graph.dtype))

    def rows_from_host(self, host_rows: np.ndarray) -> DaskRows:
        """Host rows split into one share per worker thread and scattered."""
        n_shares = min(host_rows.shape[0], self.n_threads)
        bounds = [(int(share[0]), int(share[-1]) + 1)
                  for share in np.array_split(np.arange(host_rows.shape[0]), n_shares)]
        futures = self.client.scatter([np.ascontiguousarray(host_rows[start:stop]) for start, stop in bounds])
        return DaskRows(bounds, futures, host_rows.shape, host_rows.dtype)

    def rows_largest(self, rows: DaskRows) -> np.generic:
        """The largest of every share's own largest distance (inf or NaN when one is)."""
        return np.max(self._on_shares(self._cpu.rows_largest, rows))

    def landmark_block(self, rows: DaskRows, landmark_index: np.ndarray) -> np.ndarray:
        """Each share's (L_i, L) landmark columns, stacked on the client."""
        return np.vstack(self._on_shares(self._cpu.landmark_block, rows, landmark_index))

    def contributions(self, rows: DaskRows, projection: np.ndarray, mean_sq_distance: np.ndarray,
                      share_task: Any, dtype: np.dtype, per_block: list[tuple[int, list[Any]]]) -> Any:
        """A dask array of coordinates, one row block per entry of ``per_block``, summed over the shares.

        ``per_block`` holds each block's row count and the arguments that ``share_task(rows_share,
        *arguments, projection_share, mean_share, n_jobs)`` takes for it.
        """
        holders = self._holders(rows)
        blocks = []
        for n_rows, arguments in per_block:
            partials = []
            for share, (start, stop), workers in zip(rows.futures, rows.bounds, holders):
                with dask.annotate(workers=workers, allow_other_workers=True):
                    partials.append(dask.delayed(share_task)(share, *arguments, projection[:, start:stop],
                                                             mean_sq_distance[start:stop], self.task_threads))
            blocks.append(da.from_delayed(dask.delayed(_sum_partials)(dtype, *partials),
                                          (n_rows, projection.shape[0]), dtype=dtype))
        return da.concatenate(blocks, axis=0)

    def triangulate(self, rows: DaskRows, projection: np.ndarray, mean_sq_distance: np.ndarray) -> Any:
        """The (N, c) embedding persisted on the workers, chunked like the points (one chunk for an outside graph)."""
        chunks = self.row_chunks or (rows.shape[1],)
        per_block = [(n_rows, [start, start + n_rows]) for n_rows, start in zip(chunks, _row_starts(chunks))]
        # Unoptimised, so that each share task keeps its annotation (graph optimisation drops them).
        embedding = self.client.persist(
            self.contributions(rows, projection, mean_sq_distance, _triangulate_share, rows.dtype, per_block),
            optimize_graph=False)
        if self.show:
            self._progress(distributed.futures_of(embedding), "triangulation")
        _wait_or_raise(distributed.futures_of(embedding))
        return embedding

    def rows_result(self, rows: DaskRows) -> DaskRows:
        """The shares stay on the workers (``transform`` reads them there)."""
        return rows

    def transform(self, model: Any, neighbor_index: np.ndarray, neighbor_distance: np.ndarray) -> np.ndarray:
        """(M, c) coordinates of new points from their (M, k) training neighbours, on the client."""
        [neighbors] = self.client.scatter([(neighbor_distance, neighbor_index)], hash=False)
        embedding = self.contributions(model.landmark_geodesic, model.projection, model.mean_sq_distance,
                                       _transform_share, model.landmark_geodesic.dtype,
                                       [(neighbor_index.shape[0], [neighbors])])
        return self.client.compute(embedding, optimize_graph=False).result()

    def transform_lazily(self, model: Any, points: Any, queries: Any, n_neighbors: int, **options: Any) -> Any:
        """Lazy (M, c) coordinates of the row blocks of ``queries`` (a dask array), chunked like them."""
        neighbor_lists = self.neighbor_lists(queries, points, n_neighbors, exclude_self=False, **options)
        n_landmarks = model.landmark_index.size
        per_block = [(n_rows, [dask.delayed(_checked_neighbors)(neighbors, n_landmarks)])
                     for n_rows, neighbors in zip(queries.chunks[0], neighbor_lists)]
        return self.contributions(model.landmark_geodesic, model.projection, model.mean_sq_distance,
                                  _transform_share, model.landmark_geodesic.dtype, per_block)
