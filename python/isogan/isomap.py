"""Isomap embedding: a drop-in for :class:`sklearn.manifold.Isomap` on isogan's native stages.

The estimator orchestrates three pure stage functions — :func:`isogan.knn.knn_graph`,
:func:`isogan.paths.geodesic_distances` and :func:`isogan.mds.classical_mds` — and owns what
scikit-learn's Isomap owns: parameter and input validation (with scikit-learn's wording), the
joining of disconnected neighbour graphs, dtype policy (float32 stays float32), device choice,
and refusing up front an N x N geodesic matrix that cannot fit in memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted, validate_data

from isogan._backend import approx_knn, get_backend
from isogan._backend.arrays import as_c_contiguous_device, as_numpy, csr_to_host, is_device_array, to_host
from isogan._backend.cpu import float_dtype
from isogan._backend.memory import ensure_memory, exact_remedy, exact_fit_device_bytes, exact_fit_host_bytes
from isogan._backend.policy import progress_bar, relaxation_seconds, resolve_device, show_progress, threads
from isogan._compat import (
    VALID_METRICS,
    Interval,
    InvalidParameterError,
    StrOptions,
    check_precomputed,
    fit_context,
    neighbors_fit_data,
)
from isogan._ranges import check_edge_range, check_point_range
from isogan.connect import connect_components
from isogan.knn import kneighbors, knn_graph, radius_neighbors
from isogan.landmark import check_n_landmarks, fit_landmark_model, transform_from_neighbors
from isogan._kernel_pca import IsomapKernelPCA
from isogan.mds import classical_mds, mds_fit_state, mds_transform
from isogan.paths import geodesic_distances, geodesic_distances_device, geodesic_from_neighbors, min_plus_rows

# Rows of dist_matrix_ processed at a time by reconstruction_error, so that no extra N x N array
# is ever allocated.
_ROW_BLOCK = 512


class Isomap(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Isomap embedding, computed by isogan's native stages.

    Non-linear dimensionality reduction through Isometric Mapping: a drop-in replacement for
    :class:`sklearn.manifold.Isomap` that gives the same embedding (signs included) faster and
    in less memory. float32 input is kept float32 end to end.

    Parameters
    ----------
    n_neighbors : int or None, default=5
        Number of neighbors to consider for each point. If `n_neighbors` is an int,
        then `radius` must be `None`.
    radius : float or None, default=None
        Limiting distance of neighbors to return. If `radius` is a float,
        then `n_neighbors` must be set to `None`.
    n_components : int, default=2
        Number of coordinates for the manifold.
    eigen_solver : {'auto', 'arpack', 'dense'}, default='auto'
        'auto' picks the most efficient solver for the problem, 'arpack' an iterative solver for
        the top eigenpairs, 'dense' a full eigen-decomposition.
    tol : float, default=0
        Convergence tolerance of the iterative eigensolver; 0 means machine precision.
        Not used if eigen_solver == 'dense'.
    max_iter : int, default=None
        Maximum number of iterations of the iterative eigensolver.
        Not used if eigen_solver == 'dense'.
    path_method : {'auto', 'FW', 'D'}, default='auto'
        Shortest-path algorithm: 'FW' Floyd-Warshall, 'D' Dijkstra, 'auto' the best one.
    neighbors_algorithm : {'auto', 'brute', 'kd_tree', 'ball_tree', 'approximate'}, default='auto'
        Algorithm of the native CPU neighbour search (fit and transform) and of the
        :class:`~sklearn.neighbors.NearestNeighbors` instance kept in ``nbrs_``: 'brute' is exact
        blocked brute force, 'kd_tree' (and 'ball_tree') an exact kd-tree, 'auto' the kd-tree for
        few features (see :mod:`isogan.knn`). Every exact choice gives the same neighbour graph;
        GPU searches are brute force. 'approximate' (never picked by 'auto') searches an HNSW
        graph on the CPU (faiss-cpu: ``pip install "isogan[approx]"``; Euclidean distance,
        ``n_neighbors`` only, host arrays): ~11x faster than brute force on
        high-dimensional data (N=100k x 784: see ``benchmarks/RESULTS.md``), with recall@10
        >= 0.95 on the swiss roll and on :func:`isogan.datasets.make_shapes` images; every edge
        it returns has its exact length, but some true neighbours may be missing
        (:func:`isogan.knn.recall_at_k` measures how many). ``nbrs_`` is then an exact
        ``algorithm='auto'`` NearestNeighbors. ``transform`` builds the HNSW graph over the
        training points on its first call (the fit's kNN cost again) and keeps it for later calls.
    n_jobs : int or None, default=None
        Threads of the native kernels. As in scikit-learn's OpenMP-based estimators, ``None`` uses
        every core OpenMP offers, bounded by ``OMP_NUM_THREADS`` and
        ``threadpoolctl.threadpool_limits(limits=..., user_api='openmp')``; a positive int uses
        that many threads, ``-1`` all cores, ``-2`` all but one. The scikit-learn neighbour
        search kept in ``nbrs_`` (and used for metrics isogan does not run natively) takes it
        with joblib's meaning.
    metric : str, or callable, default="minkowski"
        The metric to use when calculating distance between instances in a feature array, one of
        the options allowed by :func:`sklearn.metrics.pairwise_distances`. If metric is
        "precomputed", X is assumed to be a distance matrix and must be square. X may be a sparse
        neighbours graph.
    p : float, default=2
        Parameter for the Minkowski metric: p = 1 is manhattan, p = 2 euclidean.
    metric_params : dict, default=None
        Additional keyword arguments for the metric function.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the stages run. 'auto' uses CUDA only for stages whose kernels have been verified on
        GPU hardware (all four stages, on an H200; ``isogan._backend.policy.VERIFIED_ON_HARDWARE``) and the CPU
        for the rest; 'cuda' runs the CUDA kernels, warning once per stage
        (``UnverifiedCudaWarning``) until they are verified, and raises RuntimeError when no
        device is usable. GPU input (torch CUDA tensors, CuPy arrays) runs on its GPU. On the GPU the exact fit runs the kNN search, the shortest paths and the
        eigensolver there, with the (N, N) geodesic matrix kept in GPU memory (an
        :class:`isogan.DeviceArray`; neither torch nor CuPy is needed) until the eigensolver has
        read it, then copied to the host once as ``dist_matrix_``. The joining of disconnected
        neighbour graphs runs on the host, as in scikit-learn.
    n_landmarks : int or None, default=None
        None: exact Isomap (N x N geodesic matrix). An int L: landmark Isomap (de Silva &
        Tenenbaum 2003), geodesics from L landmarks only (L x N), classical MDS on the L x L
        landmark block and triangulation of every point, in O(N * L) memory. Requires
        ``n_components + 1 <= L <= n_samples``; L = n_samples gives the exact embedding. On the
        GPU the kNN search (query blocks against the points kept on the device), MaxMin, the
        landmark shortest paths, triangulation and ``transform`` run there; device memory is
        checked up front (MemoryError naming the bytes and a remedy).
    landmark_method : {'maxmin', 'random'}, default='maxmin'
        How landmarks are chosen: 'maxmin' is farthest-point sampling (in input space, or in
        geodesic space for precomputed or sparse input), 'random' a uniform draw.
    random_state : int, RandomState instance or None, default=None
        Seeds the landmark choice (the first MaxMin landmark, or the random draw) and the start
        vectors of the iterative eigensolver, so that a seeded fit is reproducible bit for bit.
        None: scikit-learn's behaviour (the eigenvectors may differ run to run in the last bits).
    memory_budget : int or None, default=None
        Landmark Isomap on the CPU: bytes of (L, N) landmark rows kept in memory. Past it the rows
        are computed by blocks (a quarter of the budget, at most 1 GiB) into an unlinked temporary
        file in ``TMPDIR`` (freed with the model) and read back by blocks for the triangulation;
        ``landmark_model_.landmark_geodesic`` is then a read-only memory map. Spilling was chosen
        over recomputing the rows in a second pass: triangulation needs every row after the MDS of
        the (L, L) block, which needs every row, so recomputing runs the dominant shortest-path
        stage twice (``benchmarks/RESULTS.md``, "10 million points"). None: half the host memory
        available when the fit starts. The pre-fit check predicts the spilled footprint and checks
        the disk the rows need before any work (OSError naming the bytes).

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
        Stores the embedding vectors.
    kernel_pca_ : IsomapKernelPCA
        Eigen-decomposition of the centred kernel (``eigenvalues_``, ``eigenvectors_``), used to
        implement the embedding.
    nbrs_ : sklearn.neighbors.NearestNeighbors
        Fitted nearest neighbors instance with the same parameters.
    dist_matrix_ : ndarray of shape (n_samples, n_samples)
        Geodesic distance matrix of the training data, float32 for float32 input. Exact Isomap
        only (``n_landmarks=None``).
    landmark_model_ : isogan.landmark.LandmarkModel
        The fitted landmark model (landmark rows, projection, timings); landmark Isomap only.
    landmark_index_ : ndarray of shape (n_landmarks,)
        Indices of the landmarks among the training points; landmark Isomap only.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X` has feature names that
        are all strings.
    timings_ : dict of str to float
        Wall-clock seconds spent in each stage of the last fit ('validate', 'knn', 'connect',
        'paths', 'mds'; landmark Isomap adds 'landmarks'; an exact fit on 'cuda' adds 'download',
        the one device-to-host copy of ``dist_matrix_``).

    See Also
    --------
    sklearn.manifold.Isomap : The scikit-learn estimator this one replaces.
    isogan.knn_graph : The neighbour-graph stage.
    isogan.geodesic_distances : The shortest-path stage.
    isogan.classical_mds : The eigen-decomposition stage.

    References
    ----------
    .. [1] Tenenbaum, J.B.; De Silva, V.; & Langford, J.C. A global geometric framework for
           nonlinear dimensionality reduction. Science 290 (5500)

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from isogan import Isomap
    >>> X, _ = load_digits(return_X_y=True)
    >>> embedding = Isomap(n_components=2)
    >>> X_transformed = embedding.fit_transform(X[:100])
    >>> X_transformed.shape
    (100, 2)
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
        "radius": [Interval(Real, 0, None, closed="both"), None],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "eigen_solver": [StrOptions({"auto", "arpack", "dense"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "path_method": [StrOptions({"auto", "FW", "D"})],
        "neighbors_algorithm": [StrOptions({"auto", "brute", "kd_tree", "ball_tree", "approximate"})],
        "n_jobs": [Integral, None],
        "p": [Interval(Real, 1, None, closed="left")],
        "metric": [StrOptions(set(VALID_METRICS) | {"precomputed"}), callable],
        "metric_params": [dict, None],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "n_landmarks": [Interval(Integral, 1, None, closed="left"), None],
        "landmark_method": [StrOptions({"maxmin", "random"})],
        "random_state": ["random_state"],
        "memory_budget": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        *,
        n_neighbors: int | None = 5,
        radius: float | None = None,
        n_components: int = 2,
        eigen_solver: str = "auto",
        tol: float = 0,
        max_iter: int | None = None,
        path_method: str = "auto",
        neighbors_algorithm: str = "auto",
        n_jobs: int | None = None,
        metric: str | Any = "minkowski",
        p: float = 2,
        metric_params: dict | None = None,
        device: str = "auto",
        n_landmarks: int | None = None,
        landmark_method: str = "maxmin",
        random_state: Any = None,
        memory_budget: int | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.radius = radius
        self.n_components = n_components
        self.eigen_solver = eigen_solver
        self.tol = tol
        self.max_iter = max_iter
        self.path_method = path_method
        self.neighbors_algorithm = neighbors_algorithm
        self.n_jobs = n_jobs
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.device = device
        self.n_landmarks = n_landmarks
        self.landmark_method = landmark_method
        self.random_state = random_state
        self.memory_budget = memory_budget

    # ------------------------------------------------------------------------------------ fit
    def _check_neighbor_parameters(self) -> None:
        if self.n_neighbors is not None and self.radius is not None:
            raise ValueError(
                "Both n_neighbors and radius are provided. Use"
                f" Isomap(radius={self.radius}, n_neighbors=None) if intended to use"
                " radius-based neighbors"
            )
        if self.n_neighbors is None and self.radius is None:
            raise InvalidParameterError(
                "The 'radius' parameter of Isomap must be a float in the range [0.0, inf] when"
                " n_neighbors=None. Got None instead. Set n_neighbors (k-nearest-neighbour graph)"
                " or radius (radius graph)."
            )

    def _fit_neighbors(self, X: Any) -> tuple[Any, Any]:
        """Validate ``X`` exactly as scikit-learn's Isomap does (through ``nbrs_.fit``).

        Returns the validated host array (dense or CSR, or a precomputed distance matrix) and,
        for GPU input, the device array the stages read in place (else None).
        """
        X_device = as_c_contiguous_device(X) if is_device_array(X) else None
        X_host = to_host(X) if X_device is not None else X
        self.nbrs_ = NearestNeighbors(
            n_neighbors=self.n_neighbors,
            radius=self.radius,
            # scikit-learn has no approximate search; its exact one is what nbrs_ keeps.
            algorithm="auto" if self.neighbors_algorithm == "approximate" else self.neighbors_algorithm,
            metric=self.metric,
            p=self.p,
            metric_params=self.metric_params,
            n_jobs=self.n_jobs,
        )
        self.nbrs_.fit(X_host)
        X_fit = neighbors_fit_data(self.nbrs_)
        if not hasattr(self.nbrs_, "n_features_in_"):
            # A BallTree, KDTree or fitted NearestNeighbors was passed: its data is already
            # validated, but NearestNeighbors does not record the feature count (scikit-learn's
            # Isomap fails here with AttributeError); record it so that transform checks it.
            self.nbrs_.n_features_in_ = X_fit.shape[1]
        self.n_features_in_ = self.nbrs_.n_features_in_
        if hasattr(self.nbrs_, "feature_names_in_"):
            self.feature_names_in_ = self.nbrs_.feature_names_in_
        n_samples_fit = self.nbrs_.n_samples_fit_
        if self.n_neighbors is not None and self.n_neighbors >= n_samples_fit:
            raise ValueError(
                "Expected n_neighbors < n_samples_fit, but "
                f"n_neighbors = {self.n_neighbors}, n_samples_fit = {n_samples_fit}, "
                f"n_samples = {n_samples_fit}"
            )
        return X_fit, X_device

    def _fit_transform(self, X: Any) -> None:
        """validate -> check memory -> kNN graph -> connect -> (paths -> MDS | landmark pipeline)."""
        self._check_neighbor_parameters()
        timings: dict[str, float] = {}
        with _timed(timings, "validate"):
            X_fit, X_device = self._fit_neighbors(X)
        n_samples = self.nbrs_.n_samples_fit_
        dtype = float_dtype(X_fit.dtype)
        points = X_device if X_device is not None else X_fit.astype(dtype, copy=False)
        landmark_backend = None
        check_point_range(X_fit, n_samples if self.n_landmarks is None else self.n_landmarks,
                          self.nbrs_.effective_metric_, dtype)
        if self.n_landmarks is None:
            device = resolve_device(self.device, "paths")
            self._check_exact_fit_memory(n_samples, dtype, device)
        else:
            check_n_landmarks(self.n_landmarks, self.n_components, n_samples)
            landmark_backend = get_backend(self.device, self.n_jobs, self.memory_budget)
            landmark_backend.check_fit_memory(X_fit, self.n_neighbors, self.n_landmarks, self.n_components)
        n_edges = 2 * n_samples * (self.n_neighbors or 1)
        n_sources = n_samples * 0.25 if self.n_landmarks is None else self.n_landmarks
        show = show_progress(relaxation_seconds(n_sources, n_samples, n_edges, threads(self.n_jobs)))
        with progress_bar(3, "Isomap", show, unit="stage") as bar:
            bar.set_postfix_str("kNN graph", refresh=False)
            with _timed(timings, "knn"):
                graph = self._neighbor_graph(points, landmark_backend)
            with _timed(timings, "connect"):
                graph, component_labels = connect_components(
                    graph, X_fit, metric=self.nbrs_.effective_metric_,
                    metric_params=self.nbrs_.effective_metric_params_, stacklevel=5,
                )
                graph = graph.astype(dtype, copy=False)
            bar.update(1)
            bar.set_postfix_str("geodesic distances", refresh=False)
            self._clear_fitted_mode()
            if landmark_backend is None:
                self._fit_exact(graph, device, timings)
            else:
                self._fit_landmarks(graph, X_fit, dtype, component_labels, landmark_backend, timings)
            bar.update(2)
        self._n_features_out = self.embedding_.shape[1]
        self.timings_ = timings

    def _neighbor_options(self, device: str) -> dict[str, Any]:
        return dict(metric=self.metric, p=self.p, metric_params=self.metric_params, n_jobs=self.n_jobs,
                    device=device, algorithm=self.neighbors_algorithm)

    def _neighbor_graph(self, points: Any, landmark_backend: Any) -> Any:
        """The (N, N) CSR neighbour graph on the host."""
        if landmark_backend is not None and not is_device_array(points):
            # The backend may keep the points it searched (on the GPU) for MaxMin.
            return landmark_backend.neighbor_graph(
                points, self.n_neighbors, radius=self.radius, metric=self.metric, p=self.p,
                metric_params=self.metric_params, algorithm=self.neighbors_algorithm,
                chunk_rows=points.shape[0], n_landmarks=self.n_landmarks, n_components=self.n_components,
            )
        device = "cuda" if is_device_array(points) else resolve_device(self.device, "knn")
        graph = knn_graph(points, n_neighbors=self.n_neighbors, radius=self.radius, mode="distance",
                          **self._neighbor_options(device))
        return csr_to_host(graph)

    def _clear_fitted_mode(self) -> None:
        """Drop the fitted attributes of the other mode (exact vs landmark) left by an earlier fit."""
        for attribute in ("dist_matrix_", "landmark_model_", "landmark_index_", "_approximate_index"):
            if hasattr(self, attribute):
                delattr(self, attribute)

    def _fit_exact(self, graph: Any, device: str, timings: dict[str, float]) -> None:
        """All-pairs geodesic distances, then classical MDS on them (scikit-learn's Isomap).

        On the GPU the (N, N) geodesic matrix stays in device memory (a DeviceArray) until MDS has
        read it, and is copied to the host once as ``dist_matrix_``.
        """
        check_edge_range(graph.data, graph.shape[0], graph.dtype)
        with _timed(timings, "paths"):
            if device == "cuda":
                dist_matrix = geodesic_distances_device(graph, method=self.path_method)
            else:
                dist_matrix = geodesic_distances(graph, method=self.path_method, n_jobs=self.n_jobs, device="cpu")
        with _timed(timings, "mds"):
            embedding, eigenvalues, eigenvectors = classical_mds(
                dist_matrix, n_components=self.n_components, eigen_solver=self.eigen_solver, tol=self.tol,
                max_iter=self.max_iter, random_state=self.random_state, device=device, n_jobs=self.n_jobs,
            )
            fit_state = mds_fit_state(dist_matrix, eigenvalues, eigenvectors, n_jobs=self.n_jobs)
        if device == "cuda":
            with _timed(timings, "download"):
                n_samples = dist_matrix.shape[0]
                ensure_memory(
                    dist_matrix.nbytes,
                    f"the ({n_samples}, {n_samples}) {dist_matrix.dtype.name} geodesic distance matrix "
                    "(dist_matrix_) on the host", exact_remedy(dist_matrix.dtype), device="cpu",
                )
                dist_matrix = dist_matrix.to_host()
        self.dist_matrix_ = dist_matrix
        self.kernel_pca_ = IsomapKernelPCA(self.n_components, fit_state)
        self.embedding_ = as_numpy(embedding)

    def _fit_landmarks(self, graph: Any, X_fit: Any, dtype: np.dtype, component_labels: np.ndarray | None,
                       backend: Any, timings: dict[str, float]) -> None:
        """Landmark Isomap (de Silva & Tenenbaum 2003): L x N geodesics, MDS on L x L, triangulation."""
        # MaxMin runs in input space when there are coordinates, else in geodesic space.
        points = X_fit.astype(dtype, copy=False) if self.metric != "precomputed" and isinstance(X_fit, np.ndarray) else None
        model = fit_landmark_model(
            graph, self.n_landmarks, self.n_components, points=points, landmark_method=self.landmark_method,
            random_state=self.random_state, component_labels=component_labels, path_method=self.path_method,
            n_jobs=self.n_jobs, backend=backend, progress=False,
            maxmin_pool=None if points is None else backend.maxmin_pool(points, self.n_landmarks, None),
        )
        for stage, seconds in model.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        self.landmark_model_ = model
        self.landmark_index_ = model.landmark_index
        fit_state = mds_fit_state(model.landmark_block.astype(dtype), model.eigenvalues.astype(dtype),
                                  model.eigenvectors.astype(dtype), n_jobs=self.n_jobs)
        self.kernel_pca_ = IsomapKernelPCA(self.n_components, fit_state)
        self.embedding_ = model.embedding

    def _check_exact_fit_memory(self, n_samples: int, dtype: np.dtype, device: str) -> None:
        """Refuse up front a fit whose N x N geodesic matrix cannot fit in memory."""
        what = f"the ({n_samples}, {n_samples}) {dtype.name} geodesic distance matrix (dist_matrix_)"
        needed = exact_fit_host_bytes(n_samples, self.n_neighbors, dtype.itemsize, self.eigen_solver == "dense")
        ensure_memory(needed, what, exact_remedy(dtype), device="cpu")
        if device == "cuda":
            ensure_memory(
                exact_fit_device_bytes(n_samples, self.n_neighbors, self.n_components, dtype.itemsize,
                                       self.path_method),
                f"{what[:-16]} on the GPU, with the shortest-path scratch and the eigensolver's vectors",
                exact_remedy(dtype, "device='cpu'"), device="cuda",
            )

    # ------------------------------------------------------------------------- public methods
    def reconstruction_error(self) -> float:
        """Compute the reconstruction error for the embedding.

        Returns
        -------
        reconstruction_error : float
            Reconstruction error.

        Notes
        -----
        The cost function of an isomap embedding is

        ``E = frobenius_norm[K(D) - K(D_fit)] / n_samples``

        Where D is the matrix of distances for the input data X, D_fit is the matrix of distances
        for the output embedding X_fit, and K is the isomap kernel:

        ``K(D) = -0.5 * (I - 1/n_samples) * D^2 * (I - 1/n_samples)``

        It is computed over blocks of rows of ``dist_matrix_``, without another N x N array.
        """
        check_is_fitted(self)
        if hasattr(self, "landmark_model_"):
            return self._landmark_reconstruction_error()
        n_samples = self.dist_matrix_.shape[0]
        row_means = self.kernel_pca_.kernel_row_means_.astype(np.float64)
        grand_mean = self.kernel_pca_.kernel_mean_
        centred_square_sum = 0.0
        for start in range(0, n_samples, _ROW_BLOCK):
            block = self.dist_matrix_[start : start + _ROW_BLOCK].astype(np.float64)
            block *= block
            block *= -0.5
            block -= row_means[start : start + _ROW_BLOCK, None]
            block -= row_means[None, :]
            block += grand_mean
            centred_square_sum += float(np.einsum("ij,ij->", block, block))
        eigenvalues = self.kernel_pca_.eigenvalues_.astype(np.float64)
        return float(np.sqrt(centred_square_sum - np.sum(eigenvalues**2)) / n_samples)

    def _landmark_reconstruction_error(self) -> float:
        """The reconstruction error of the landmark block (L x L), the part MDS saw."""
        model = self.landmark_model_
        kernel = -0.5 * model.landmark_block**2
        kernel -= kernel.mean(axis=0, keepdims=True)
        kernel -= kernel.mean(axis=1, keepdims=True)
        residual = max(float(np.sum(kernel * kernel)) - float(np.sum(model.eigenvalues**2)), 0.0)
        return float(np.sqrt(residual) / kernel.shape[0])

    @fit_context(
        # Isomap.metric is not validated yet
        prefer_skip_nested_validation=False
    )
    def fit(self, X: Any, y: Any = None) -> "Isomap":
        """Compute the embedding vectors for data X.

        Parameters
        ----------
        X : {array-like, sparse matrix, BallTree, KDTree, NearestNeighbors}
            Sample data, shape = (n_samples, n_features), in the form of a numpy array, sparse
            matrix, precomputed tree, or NearestNeighbors object; or a torch CUDA tensor / CuPy
            array, read in place on the GPU.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Returns a fitted instance of self.
        """
        self._fit_transform(X)
        return self

    @fit_context(
        # Isomap.metric is not validated yet
        prefer_skip_nested_validation=False
    )
    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit the model from data in X and transform X.

        Parameters
        ----------
        X : {array-like, sparse matrix, BallTree, KDTree}
            Training vector, where `n_samples` is the number of samples and `n_features` is the
            number of features.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            X transformed in the new space.
        """
        self._fit_transform(X)
        return self.embedding_

    def transform(self, X: Any) -> np.ndarray:
        """Transform X.

        The points X are linked into the graph of geodesic distances of the training data: the
        neighbours of each point among the training points are found (its `n_neighbors` nearest,
        or those within `radius`), the shortest geodesic distance from each point to every
        training point is their min-plus product with ``dist_matrix_``, and the embedding is the
        projection of the resulting kernel onto the embedding vectors of the training set.

        Parameters
        ----------
        X : {array-like, sparse matrix}, shape (n_queries, n_features)
            If metric='precomputed', X is assumed to be a distance matrix or a sparse graph of
            shape (n_queries, n_samples_fit).

        Returns
        -------
        X_new : ndarray of shape (n_queries, n_components)
            X transformed in the new space.
        """
        check_is_fitted(self)
        X_host = to_host(X) if is_device_array(X) else X
        if self.metric == "precomputed":
            X_query = check_precomputed(X_host)
        else:
            X_query = validate_data(self.nbrs_, X_host, accept_sparse="csr", reset=False, order="C")
        landmark = hasattr(self, "landmark_model_")
        fit_dtype = self.landmark_model_.landmark_geodesic.dtype if landmark else self.dist_matrix_.dtype
        out_dtype = np.float32 if (X_query.dtype == np.float32 and fit_dtype == np.float32) else np.float64
        if landmark:
            neighbors = self._training_neighbors(X_query, resolve_device(self.device, "landmark"))
            embedding = transform_from_neighbors(self.landmark_model_, neighbors, n_jobs=self.n_jobs,
                                                 backend=get_backend(self.device, self.n_jobs, self.memory_budget))
            return embedding.astype(out_dtype, copy=False)
        n_queries = X_query.shape[0]
        n_samples_fit = self.nbrs_.n_samples_fit_
        ensure_memory(
            n_queries * n_samples_fit * fit_dtype.itemsize,
            f"the ({n_queries}, {n_samples_fit}) {fit_dtype.name} geodesic distances from X to the training points",
            "Transform X in smaller batches of rows.",
        )
        neighbors = self._training_neighbors(X_query, resolve_device(self.device, "knn"))
        if isinstance(neighbors, tuple):
            nearest = neighbors[0].min(axis=1, initial=np.inf)
        else:  # every row is non-empty (checked by _training_neighbors)
            nearest = np.minimum.reduceat(neighbors.data, neighbors.indptr[:-1]) if neighbors.nnz else neighbors.data
        # Every geodesic distance of a new point is at least its nearest neighbour's distance.
        check_edge_range(nearest, n_samples_fit, fit_dtype, "distances from X to its nearest training points")
        if isinstance(neighbors, tuple):
            geodesic = geodesic_from_neighbors(*neighbors, self.dist_matrix_, n_jobs=self.n_jobs)
        else:
            geodesic = min_plus_rows(neighbors, self.dist_matrix_, n_jobs=self.n_jobs)
        embedding = mds_transform(geodesic, self.kernel_pca_.fit_state, n_jobs=self.n_jobs)
        return as_numpy(embedding).astype(out_dtype, copy=False)

    def _training_neighbors(self, X_query: Any, device: str) -> Any:
        """The neighbours of new points among the training points: (distances, indices) or a CSR graph."""
        X_train = neighbors_fit_data(self.nbrs_)
        options = self._neighbor_options(device)
        if self.neighbors_algorithm == "approximate" and self.n_neighbors is not None:
            return self._approximate_training_neighbors(X_train, X_query)
        if self.n_neighbors is not None:
            distances, indices = kneighbors(X_train, X_query, self.n_neighbors, **options)
            return as_numpy(distances), as_numpy(indices)
        graph = csr_to_host(radius_neighbors(X_train, X_query, self.radius, **options))
        unreachable = np.flatnonzero(np.diff(graph.indptr) == 0)
        if unreachable.size:
            raise ValueError(
                f"{unreachable.size} sample(s) of X (first at row {unreachable[0]}) have no training"
                f" point within radius={self.radius}, so their geodesic distances are undefined."
                " Increase radius or use n_neighbors."
            )
        return graph

    def _approximate_training_neighbors(self, X_train: Any, X_query: Any) -> tuple[np.ndarray, np.ndarray]:
        """Approximate neighbours of new points: the HNSW graph over the training points, built once."""
        if not hasattr(self, "_approximate_index"):
            if sp.issparse(X_train):
                raise ValueError("neighbors_algorithm='approximate' needs dense points; got a sparse matrix.")
            fit = np.ascontiguousarray(X_train, dtype=float_dtype(X_train.dtype))
            self._approximate_index = approx_knn.HnswIndex(fit, threads(self.n_jobs))
        index = self._approximate_index
        if sp.issparse(X_query):
            raise ValueError("neighbors_algorithm='approximate' needs dense points; got a sparse matrix.")
        queries = np.ascontiguousarray(X_query, dtype=index.fit.dtype)
        return index.kneighbors(queries, self.n_neighbors, threads(self.n_jobs))

    def __sklearn_tags__(self):
        """Tags: preserves float32 and float64, accepts sparse input (as scikit-learn's Isomap)."""
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        return tags


# ---------------------------------------------------------------------------------- helpers
@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall-clock seconds of the ``with`` body to ``timings[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
