"""Isomap embedding: a drop-in for :class:`sklearn.manifold.Isomap` on isogan's native stages.

The estimator orchestrates three pure stage functions — :func:`isogan.knn.knn_graph`,
:func:`isogan.paths.geodesic_distances` and :func:`isogan.mds.classical_mds` — and owns what
scikit-learn's Isomap owns: parameter and input validation (with scikit-learn's wording), the
joining of disconnected neighbour graphs, dtype policy (float32 stays float32), device choice,
and refusing up front an N x N geodesic matrix that cannot fit in memory.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, issparse
from scipy.sparse.csgraph import connected_components
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.metrics.pairwise import _VALID_METRICS
from sklearn.neighbors import NearestNeighbors
from sklearn.neighbors._base import _check_precomputed
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.graph import _fix_connected_components
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm import tqdm

from isogan import _device
from isogan import knn as _knn
from isogan import landmark as _landmark
from isogan import mds as _mds
from isogan import paths as _paths
from isogan._arrays import is_device_array, to_host

# A fit whose geodesic stage handles more points than this is expected to run longer than about
# two seconds on a small CPU, so it gets a progress bar (decided up front from the sample count).
_PROGRESS_MIN_SAMPLES = 6000

# Rows of dist_matrix_ processed at a time by reconstruction_error, so that no extra N x N array
# is ever allocated.
_ROW_BLOCK = 512

# Width of the block of vectors the MDS eigensolver iterates on, for the memory estimate.
_MDS_BLOCK_VECTORS = 64


class IsomapKernelPCA:
    """The eigen-decomposition of the centred Isomap kernel, as fitted by :class:`Isomap`.

    It plays the role of the :class:`~sklearn.decomposition.KernelPCA` object that scikit-learn's
    Isomap keeps in ``kernel_pca_``, without holding a copy of the N x N kernel: the kernel
    ``K = -1/2 * J (D o D) J`` (``J = I - 11^T / N``) is described by its top eigenpairs and by the
    fit-time means needed to centre new kernel rows.

    Parameters
    ----------
    n_components : int
        Number of components requested at fit time.
    fit_state : isogan.mds.MdsFitState
        Eigenpairs and centring statistics from :func:`isogan.mds.mds_fit_state`.

    Attributes
    ----------
    n_components : int
        Number of components requested at fit time.
    eigenvalues_ : ndarray of shape (n_components,)
        Eigenvalues of the centred kernel in descending order, clipped like scikit-learn's
        ``_check_psd_eigenvalues``.
    eigenvectors_ : ndarray of shape (n_samples, n_components)
        Unit eigenvectors of the centred kernel, signs fixed like ``svd_flip``.
    kernel_row_means_ : ndarray of shape (n_samples,)
        Row means of the uncentred training kernel ``-1/2 * D o D`` (``KernelCenterer.K_fit_rows_``).
    kernel_mean_ : float
        Mean of the uncentred training kernel (``KernelCenterer.K_fit_all_``).
    fit_state : isogan.mds.MdsFitState
        What :func:`isogan.mds.mds_transform` needs to project new points.
    """

    def __init__(self, n_components: int, fit_state: _mds.MdsFitState) -> None:
        self.n_components = n_components
        self.fit_state = fit_state

    @property
    def eigenvalues_(self) -> np.ndarray:
        """Eigenvalues of the centred kernel, descending."""
        return self.fit_state.eigenvalues

    @property
    def eigenvectors_(self) -> np.ndarray:
        """Unit eigenvectors of the centred kernel."""
        return self.fit_state.eigenvectors

    @property
    def kernel_row_means_(self) -> np.ndarray:
        """Row means of the uncentred training kernel."""
        return self.fit_state.kernel_row_means

    @property
    def kernel_mean_(self) -> float:
        """Mean of the uncentred training kernel."""
        return self.fit_state.kernel_mean

    def transform(self, kernel_rows: np.ndarray) -> np.ndarray:
        """Project uncentred kernel rows of new points onto the fitted components.

        Same contract as ``KernelPCA(kernel='precomputed').transform``, which scikit-learn's
        Isomap calls with ``-1/2 * G**2``, ``G`` holding geodesic distances from new points to the
        training points. (:meth:`Isomap.transform` projects ``G`` directly with
        :func:`isogan.mds.mds_transform`, without forming these rows.)

        Parameters
        ----------
        kernel_rows : ndarray of shape (n_queries, n_samples)
            Uncentred kernel between new points and the training points.

        Returns
        -------
        ndarray of shape (n_queries, n_components)
        """
        centred = np.array(kernel_rows, dtype=np.result_type(kernel_rows, self.eigenvectors_), copy=True)
        centred -= self.kernel_row_means_
        centred -= centred.mean(axis=1, keepdims=True)
        centred += self.kernel_mean_
        scaled = np.zeros_like(self.eigenvectors_)
        nonzero = np.flatnonzero(self.eigenvalues_)
        scaled[:, nonzero] = self.eigenvectors_[:, nonzero] / np.sqrt(self.eigenvalues_[nonzero])
        return centred @ scaled


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
    neighbors_algorithm : {'auto', 'brute', 'kd_tree', 'ball_tree'}, default='auto'
        Algorithm of the native CPU neighbour search (fit and transform) and of the
        :class:`~sklearn.neighbors.NearestNeighbors` instance kept in ``nbrs_``: 'brute' is exact
        blocked brute force, 'kd_tree' (and 'ball_tree') an exact kd-tree, 'auto' the kd-tree for
        few features (see :mod:`isogan.knn`). Every choice gives the same neighbour graph; GPU
        searches are brute force.
    n_jobs : int or None, default=None
        The number of parallel jobs to run. ``None`` means 1 unless in a
        :obj:`joblib.parallel_backend` context. ``-1`` means using all processors.
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
        Where the stages run. 'auto' uses a CUDA device when one is usable and the CPU otherwise
        (a debug-level log line on the 'isogan' logger says why); 'cuda' raises RuntimeError when
        none is usable. On the GPU the exact fit runs the kNN search, the shortest paths and the
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
        Seeds the landmark choice (the first MaxMin landmark, or the random draw).

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
        "neighbors_algorithm": [StrOptions({"auto", "brute", "kd_tree", "ball_tree"})],
        "n_jobs": [Integral, None],
        "p": [Interval(Real, 1, None, closed="left")],
        "metric": [StrOptions(set(_VALID_METRICS) | {"precomputed"}), callable],
        "metric_params": [dict, None],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "n_landmarks": [Interval(Integral, 1, None, closed="left"), None],
        "landmark_method": [StrOptions({"maxmin", "random"})],
        "random_state": ["random_state"],
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
        X_device = X if is_device_array(X) else None
        X_host = _host_copy(X) if X_device is not None else X
        self.nbrs_ = NearestNeighbors(
            n_neighbors=self.n_neighbors,
            radius=self.radius,
            algorithm=self.neighbors_algorithm,
            metric=self.metric,
            p=self.p,
            metric_params=self.metric_params,
            n_jobs=self.n_jobs,
        )
        self.nbrs_.fit(X_host)
        if not hasattr(self.nbrs_, "n_features_in_"):
            # A BallTree, KDTree or fitted NearestNeighbors was passed: its data is already
            # validated, but NearestNeighbors does not record the feature count (scikit-learn's
            # Isomap fails here with AttributeError); record it so that transform checks it.
            self.nbrs_.n_features_in_ = np.asarray(self.nbrs_._fit_X).shape[1]
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
        return _training_points(self.nbrs_), X_device

    def _fit_transform(self, X: Any) -> None:
        self._check_neighbor_parameters()
        device = _device.resolve_device(self.device)
        timings: dict[str, float] = {}
        with _timed(timings, "validate"):
            X_fit, X_device = self._fit_neighbors(X)
        n_samples = self.nbrs_.n_samples_fit_
        dtype = np.dtype(np.float32) if X_fit.dtype == np.float32 else np.dtype(np.float64)
        if self.n_landmarks is None:
            self._check_fit_memory(n_samples, dtype, device)
        else:
            _landmark.check_n_landmarks(self.n_landmarks, self.n_components, n_samples)
        X_stage = X_device if X_device is not None else _as_dtype(X_fit, dtype)
        stages = ("kNN graph", "geodesic distances", "eigen-decomposition")
        with _StageProgress(n_samples, stages) as progress:
            resident = None
            if self.n_landmarks is not None and device == "cuda":
                graph, resident = self._landmark_neighbor_graph_cuda(X_stage, X_fit, dtype, timings)
            else:
                graph = self._neighbor_graph(X_stage, X_fit, dtype, device, timings)
            progress.advance()
            if self.n_landmarks is None:
                for landmark_attribute in ("landmark_model_", "landmark_index_", "_component_labels"):
                    self.__dict__.pop(landmark_attribute, None)
                self._fit_exact(graph, device, progress, timings)
            else:
                self.__dict__.pop("dist_matrix_", None)
                self._fit_landmarks(graph, X_fit, dtype, device, progress, timings, resident)
        self._n_features_out = self.embedding_.shape[1]
        self.timings_ = timings

    def _neighbor_graph(
        self, X_stage: Any, X_fit: Any, dtype: np.dtype, device: str, timings: dict[str, float]
    ) -> Any:
        """The symmetric-ready (N, N) CSR neighbour graph, with its components joined."""
        with _timed(timings, "knn"):
            graph = _knn.knn_graph(
                X_stage,
                n_neighbors=self.n_neighbors,
                radius=self.radius,
                metric=self.metric,
                p=self.p,
                metric_params=self.metric_params,
                mode="distance",
                n_jobs=self.n_jobs,
                device=device,
                algorithm=self.neighbors_algorithm,
            )
        with _timed(timings, "connect"):
            return self._connect_components(_csr_to_host(graph), X_fit, dtype)

    def _fit_exact(self, graph: Any, device: str, progress: "_StageProgress", timings: dict[str, float]) -> None:
        """All-pairs geodesic distances, then classical MDS on them (scikit-learn's Isomap)."""
        if device == "cuda":
            self._fit_exact_on_device(graph, progress, timings)
            return
        with _timed(timings, "paths"):
            dist_matrix = _paths.geodesic_distances(graph, method=self.path_method, n_jobs=self.n_jobs, device=device)
        progress.advance()
        with _timed(timings, "mds"):
            embedding, eigenvalues, eigenvectors = _mds.classical_mds(
                dist_matrix,
                n_components=self.n_components,
                eigen_solver=self.eigen_solver,
                tol=self.tol,
                max_iter=self.max_iter,
                device=device,
                n_jobs=self.n_jobs,
            )
            fit_state = _mds.mds_fit_state(dist_matrix, eigenvalues, eigenvectors, n_jobs=self.n_jobs)
        self.dist_matrix_ = _to_numpy(dist_matrix)
        self.kernel_pca_ = IsomapKernelPCA(self.n_components, fit_state)
        self.embedding_ = _to_numpy(embedding)
        progress.advance()

    def _fit_exact_on_device(self, graph: Any, progress: "_StageProgress", timings: dict[str, float]) -> None:
        """The exact fit on the GPU: the (N, N) geodesic matrix stays in device memory until MDS has read it.

        Shortest paths write it into a DeviceArray (no torch or CuPy involved), the eigensolver
        reads that array in place, and only then is it copied once to the host as ``dist_matrix_``.
        """
        with _timed(timings, "paths"):
            geodesic = _paths.geodesic_distances_device(graph, method=self.path_method)
        progress.advance()
        with _timed(timings, "mds"):
            embedding, eigenvalues, eigenvectors = _mds.classical_mds(
                geodesic,
                n_components=self.n_components,
                eigen_solver=self.eigen_solver,
                tol=self.tol,
                max_iter=self.max_iter,
                device="cuda",
            )
            fit_state = _mds.mds_fit_state(geodesic, eigenvalues, eigenvectors)
        with _timed(timings, "download"):
            n_samples = geodesic.shape[0]
            _device.ensure_memory(
                geodesic.nbytes,
                f"the ({n_samples}, {n_samples}) {geodesic.dtype.name} geodesic distance matrix (dist_matrix_) on the host",
                "Pass float32 input to halve it, fit fewer points, or use landmark Isomap (n_landmarks=...).",
                device="cpu",
            )
            dist_matrix = geodesic.to_host()
        self.dist_matrix_ = dist_matrix
        self.kernel_pca_ = IsomapKernelPCA(self.n_components, fit_state)
        self.embedding_ = _to_numpy(embedding)
        progress.advance()

    def _landmark_neighbor_graph_cuda(
        self, X_stage: Any, X_fit: Any, dtype: np.dtype, timings: dict[str, float]
    ) -> tuple[Any, Any]:
        """GPU kNN graph for landmark Isomap: query blocks against points kept on the device.

        Returns the joined graph and the resident points (for MaxMin), or None for them when the
        neighbour search is one the blocked device search does not serve (radius graphs,
        precomputed or sparse input, metrics only scikit-learn has): those run as for exact Isomap.
        """
        from isogan import _landmark_cuda

        native_metric = _knn._native_metric(self.metric, self.p, self.metric_params)
        blocked = (
            self.n_neighbors is not None
            and native_metric is not None
            and native_metric[0] != _knn._PRECOMPUTED
            and isinstance(X_fit, np.ndarray)
        )
        if not blocked:
            return self._neighbor_graph(X_stage, X_fit, dtype, "cuda", timings), None
        with _timed(timings, "knn"):
            graph, resident = _landmark_cuda.knn_graph_cuda(
                X_fit,
                self.n_neighbors,
                native_metric[0],
                native_metric[1],
                dtype,
                n_landmarks=self.n_landmarks,
                n_components=self.n_components,
                chunk_rows=_landmark._DEFAULT_CHUNK_ROWS,
            )
        with _timed(timings, "connect"):
            return self._connect_components(graph, X_fit, dtype), resident

    def _fit_landmarks(
        self,
        graph: Any,
        X_fit: Any,
        dtype: np.dtype,
        device: str,
        progress: "_StageProgress",
        timings: dict[str, float],
        resident: Any = None,
    ) -> None:
        """Landmark Isomap (de Silva & Tenenbaum 2003): L x N geodesics, MDS on L x L, triangulation.

        On the GPU, ``resident`` holds the points the kNN stage left on the device for MaxMin.
        """
        dense_points = self.metric != "precomputed" and isinstance(X_fit, np.ndarray)
        options = dict(
            # MaxMin runs in input space when there are coordinates, else in geodesic space.
            points=_as_dtype(X_fit, dtype) if dense_points else None,
            landmark_method=self.landmark_method,
            random_state=self.random_state,
            component_labels=self.__dict__.pop("_component_labels", None),
            path_method=self.path_method,
            n_jobs=self.n_jobs,
            progress=False,
        )
        if device == "cuda":
            from isogan import _landmark_cuda

            model = _landmark_cuda.fit_landmark_model_cuda(
                graph, self.n_landmarks, self.n_components, resident=resident, **options
            )
        else:
            model = _landmark.fit_landmark_model(graph, self.n_landmarks, self.n_components, device=device, **options)
        progress.advance()
        for stage, seconds in model.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        self.landmark_model_ = model
        self.landmark_index_ = model.landmark_index
        block = model.landmark_geodesic[:, model.landmark_index]
        fit_state = _mds.mds_fit_state(
            np.ascontiguousarray(0.5 * (block + block.T)).astype(dtype),
            model.eigenvalues.astype(dtype),
            model.eigenvectors.astype(dtype),
            n_jobs=self.n_jobs,
        )
        self.kernel_pca_ = IsomapKernelPCA(self.n_components, fit_state)
        self.embedding_ = model.embedding
        progress.advance()

    def _check_fit_memory(self, n_samples: int, dtype: np.dtype, device: str) -> None:
        """Refuse up front a fit whose N x N geodesic matrix cannot fit in memory."""
        square_bytes = n_samples * n_samples * dtype.itemsize
        # Symmetrised neighbour graph (values + int64 column indices) and the MDS block vectors;
        # a radius graph's size is unknown before it is built, so it is not counted.
        graph_entries = 2 * n_samples * (self.n_neighbors or 0)
        working_bytes = graph_entries * (dtype.itemsize + 8) + n_samples * _MDS_BLOCK_VECTORS * 8
        if self.eigen_solver == "dense":
            # LAPACK needs the centred kernel written out as a second N x N array.
            working_bytes += square_bytes
        what = f"the ({n_samples}, {n_samples}) {dtype.name} geodesic distance matrix (dist_matrix_)"
        remedy = "Pass float32 input to halve it, or fit fewer points."
        if dtype == np.float32:
            remedy = "Fit fewer points."
        _device.ensure_memory(square_bytes + working_bytes, what, remedy, device="cpu")
        if device == "cuda":
            _device.ensure_memory(
                self._device_fit_bytes(n_samples, dtype),
                f"the ({n_samples}, {n_samples}) {dtype.name} geodesic distance matrix on the GPU, with the "
                "shortest-path scratch and the eigensolver's vectors",
                "Pass float32 input to halve it, use landmark Isomap (n_landmarks=...), or device='cpu'.",
                device="cuda",
            )

    def _device_fit_bytes(self, n_samples: int, dtype: np.dtype) -> int:
        """Peak GPU bytes of an exact fit on 'cuda', predicted before anything is allocated.

        The larger of the shortest-path stage (the (N, N) output, the uploaded graph and, unless
        ``path_method='FW'``, the batched Bellman-Ford scratch) and the eigensolver stage (the
        (N, N) matrix plus one block product's vectors). A radius graph's size is unknown up
        front; it is counted as one neighbour per point and checked again before the upload.
        """
        n_edges = 2 * n_samples * (self.n_neighbors or 1)
        method = "FW" if self.path_method == "FW" else "D"
        paths_bytes = _paths.predict_device_bytes(n_samples, n_edges, n_samples, dtype.itemsize, method)
        mds_bytes = n_samples * n_samples * dtype.itemsize + _mds.device_product_bytes(n_samples, self.n_components)
        return max(paths_bytes, mds_bytes)

    def _connect_components(self, graph: Any, X_fit: Any, dtype: np.dtype) -> Any:
        """Join the components of a disconnected neighbour graph like scikit-learn's Isomap."""
        n_connected_components, labels = connected_components(graph)
        # The landmark path adds a landmark to every component the joined graph hid.
        self._component_labels = labels if n_connected_components > 1 else None
        if n_connected_components == 1:
            return graph
        if self.metric == "precomputed" and issparse(X_fit):
            raise RuntimeError(
                "The number of connected components of the neighbors graph"
                f" is {n_connected_components} > 1. The graph cannot be "
                "completed with metric='precomputed', and Isomap cannot be"
                "fitted. Increase the number of neighbors to avoid this "
                "issue, or precompute the full distance matrix instead "
                "of passing a sparse neighbors graph."
            )
        warnings.warn(
            (
                "The number of connected components of the neighbors graph "
                f"is {n_connected_components} > 1. Completing the graph to fit"
                " Isomap might be slow. Increase the number of neighbors to "
                "avoid this issue."
            ),
            stacklevel=4,
        )
        # scikit-learn's own joining (nearest pair between every two components); a LIL copy
        # takes the new edges without a change-of-sparsity warning.
        joined = _fix_connected_components(
            X=X_fit,
            graph=graph.tolil(),
            n_connected_components=n_connected_components,
            component_labels=labels,
            mode="distance",
            metric=self.nbrs_.effective_metric_,
            **self.nbrs_.effective_metric_params_,
        )
        return joined.tocsr().astype(dtype, copy=False)

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
        block = model.landmark_geodesic[:, model.landmark_index].astype(np.float64)
        kernel = -0.5 * (0.5 * (block + block.T)) ** 2
        kernel -= kernel.mean(axis=0, keepdims=True)
        kernel -= kernel.mean(axis=1, keepdims=True)
        residual = max(float(np.sum(kernel * kernel)) - float(np.sum(model.eigenvalues**2)), 0.0)
        return float(np.sqrt(residual) / block.shape[0])

    @_fit_context(
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

    @_fit_context(
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
        if self.metric == "precomputed":
            X_query = _check_precomputed(_host_copy(X) if is_device_array(X) else X)
        else:
            X_query = validate_data(
                self.nbrs_,
                _host_copy(X) if is_device_array(X) else X,
                accept_sparse="csr",
                reset=False,
                order="C",
            )
        if hasattr(self, "landmark_model_"):
            return self._transform_landmarks(X_query)
        fit_dtype = self.dist_matrix_.dtype
        out_dtype = np.float32 if (X_query.dtype == np.float32 and fit_dtype == np.float32) else np.float64
        n_queries = X_query.shape[0]
        n_samples_fit = self.nbrs_.n_samples_fit_
        _device.ensure_memory(
            n_queries * n_samples_fit * fit_dtype.itemsize,
            f"the ({n_queries}, {n_samples_fit}) {fit_dtype.name} geodesic distances from X to the training points",
            "Transform X in smaller batches of rows.",
        )
        geodesic = self._geodesic_to_training(X_query)
        embedding = _mds.mds_transform(geodesic, self.kernel_pca_.fit_state, n_jobs=self.n_jobs)
        return _to_numpy(embedding).astype(out_dtype, copy=False)

    def _transform_landmarks(self, X_query: Any) -> np.ndarray:
        """Landmark transform: neighbours -> min-plus to the landmark rows -> triangulation."""
        model = self.landmark_model_
        fit_dtype = model.landmark_geodesic.dtype
        out_dtype = np.float32 if (X_query.dtype == np.float32 and fit_dtype == np.float32) else np.float64
        device = _device.resolve_device(self.device)
        neighbor_options = dict(
            metric=self.metric, p=self.p, metric_params=self.metric_params, n_jobs=self.n_jobs, device=device,
            algorithm=self.neighbors_algorithm,
        )
        X_train = _training_points(self.nbrs_)
        if self.n_neighbors is not None:
            distances, indices = _knn.kneighbors(X_train, X_query, self.n_neighbors, **neighbor_options)
            neighbors: Any = (_to_numpy(distances), _to_numpy(indices))
        else:
            neighbors = _csr_to_host(_knn.radius_neighbors(X_train, X_query, self.radius, **neighbor_options))
            unreachable = np.flatnonzero(np.diff(neighbors.indptr) == 0)
            if unreachable.size:
                raise ValueError(
                    f"{unreachable.size} sample(s) of X (first at row {unreachable[0]}) have no training"
                    f" point within radius={self.radius}, so their geodesic distances are undefined."
                    " Increase radius or use n_neighbors."
                )
        embedding = _landmark.transform_from_neighbors(model, neighbors, n_jobs=self.n_jobs, device=device)
        return embedding.astype(out_dtype, copy=False)

    def _geodesic_to_training(self, X_query: Any) -> np.ndarray:
        """Geodesic distances (n_queries, n_samples_fit) from new points through their neighbours."""
        device = _device.resolve_device(self.device)
        neighbor_options = dict(
            metric=self.metric, p=self.p, metric_params=self.metric_params, n_jobs=self.n_jobs, device=device,
            algorithm=self.neighbors_algorithm,
        )
        X_train = _training_points(self.nbrs_)
        if self.n_neighbors is not None:
            distances, indices = _knn.kneighbors(X_train, X_query, self.n_neighbors, **neighbor_options)
            return _paths.geodesic_from_neighbors(
                _to_numpy(distances), _to_numpy(indices), self.dist_matrix_, n_jobs=self.n_jobs
            )
        neighbor_graph = _csr_to_host(_knn.radius_neighbors(X_train, X_query, self.radius, **neighbor_options))
        unreachable = np.flatnonzero(np.diff(neighbor_graph.indptr) == 0)
        if unreachable.size:
            raise ValueError(
                f"{unreachable.size} sample(s) of X (first at row {unreachable[0]}) have no training"
                f" point within radius={self.radius}, so their geodesic distances are undefined."
                " Increase radius or use n_neighbors."
            )
        return _paths.min_plus_rows(neighbor_graph, self.dist_matrix_, n_jobs=self.n_jobs)

    def __sklearn_tags__(self):
        """Tags: preserves float32 and float64, accepts sparse input (as scikit-learn's Isomap)."""
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        return tags


# ---------------------------------------------------------------------------------- helpers
def _host_copy(X: Any) -> np.ndarray:
    """Copy a torch CUDA tensor, CuPy array or DeviceArray to a host numpy array (for ``nbrs_``)."""
    return to_host(X)


def _csr_to_host(graph: Any) -> Any:
    """A neighbour graph as a scipy CSR matrix (the kNN stage gives GPU input a GPU CSR)."""
    if issparse(graph):
        return graph
    if hasattr(graph, "crow_indices"):
        # torch sparse CSR tensor
        return csr_matrix(
            (
                graph.values().detach().cpu().numpy(),
                graph.col_indices().cpu().numpy(),
                graph.crow_indices().cpu().numpy(),
            ),
            shape=tuple(graph.shape),
        )
    # cupyx.scipy.sparse.csr_matrix
    return graph.get()


def _training_points(nbrs: NearestNeighbors) -> Any:
    """The validated training data of a fitted NearestNeighbors (a tree's memory view as numpy)."""
    fit_X = nbrs._fit_X
    return fit_X if issparse(fit_X) else np.asarray(fit_X)


def _to_numpy(array: Any) -> np.ndarray:
    """Return a stage result as a numpy array (fitted attributes are numpy, like scikit-learn)."""
    if is_device_array(array):
        return _host_copy(array)
    return np.asarray(array)


def _as_dtype(X: Any, dtype: np.dtype) -> Any:
    """Return ``X`` (dense or sparse) in ``dtype`` without copying when it already is."""
    return X.astype(dtype, copy=False)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall-clock seconds of the ``with`` body to ``timings[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


class _StageProgress:
    """A tqdm bar over the fit stages, shown only for fits expected to take more than ~2 s."""

    def __init__(self, n_samples: int, stages: tuple[str, ...]) -> None:
        self._stages = stages
        self._done = 0
        self._bar = tqdm(
            total=len(stages),
            desc="Isomap",
            unit="stage",
            file=sys.stderr,
            disable=n_samples < _PROGRESS_MIN_SAMPLES,
            leave=False,
        )
        self._bar.set_postfix_str(stages[0], refresh=False)

    def __enter__(self) -> "_StageProgress":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.close()

    def advance(self) -> None:
        """Mark the current stage finished and name the next one."""
        self._done += 1
        if self._done < len(self._stages):
            self._bar.set_postfix_str(self._stages[self._done], refresh=False)
        self._bar.update(1)
