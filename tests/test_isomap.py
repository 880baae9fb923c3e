"""isogan.Isomap against scikit-learn's Isomap: parity, semantics, bad input, estimator API."""

from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import datasets
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.manifold import Isomap as SklearnIsomap
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors, kneighbors_graph
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import isogan
import isogan.knn
from isogan import Isomap
from isogan._backend import memory, policy

# Relative max error allowed against scikit-learn, per dtype (issue 3).
TOLERANCE = {np.float64: 1e-6, np.float32: 1e-3}

DISCONNECTED_WARNING = "The number of connected components of the neighbors graph is 2 > 1"


def relative_max_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected|."""
    return float(np.abs(np.asarray(actual, np.float64) - expected).max() / np.abs(expected).max())


def make_points(name: str, n_samples: int = 300) -> np.ndarray:
    """A small float64 dataset by name."""
    if name == "swiss-roll":
        return datasets.make_swiss_roll(n_samples, random_state=0)[0]
    if name == "s-curve":
        return datasets.make_s_curve(n_samples, random_state=1)[0]
    if name == "digits":
        # Digits' pixels are small integers, so many points have exactly tied k-th and (k+1)-th
        # neighbour distances; scikit-learn then keeps whichever its blocked GEMM rounding ranks
        # first, which no exact search reproduces. A 1e-3 jitter (pixels span 0..16) makes every
        # neighbour choice unique; exact ties are covered by test_tied_neighbors_on_integer_digits.
        jitter = np.random.default_rng(6).uniform(0.0, 1e-3, size=(n_samples, 64))
        return datasets.load_digits().data[:n_samples] + jitter
    if name == "blobs":
        return datasets.make_blobs(n_samples, n_features=5, centers=3, cluster_std=3.0, random_state=2)[0]
    raise KeyError(name)


def fit_both(X, **params):
    """Fit isogan's and scikit-learn's Isomap with the same parameters; return both.

    Both must warn alike (a disconnected neighbour graph warns).
    """
    with warnings.catch_warnings(record=True) as ours_warnings:
        warnings.simplefilter("always")
        ours = Isomap(**params).fit(X)
    with warnings.catch_warnings(record=True) as theirs_warnings:
        warnings.simplefilter("always")
        theirs = SklearnIsomap(**params).fit(X)
    assert [str(w.message) for w in ours_warnings] == [
        str(w.message) for w in theirs_warnings if w.category is not sp.SparseEfficiencyWarning
    ]
    return ours, theirs


# ------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "name, n_neighbors", [("swiss-roll", 10), ("s-curve", 8), ("digits", 10), ("blobs", 12)]
)
def test_embedding_matches_sklearn(name, n_neighbors, dtype):
    X = make_points(name).astype(dtype)
    ours, theirs = fit_both(X, n_neighbors=n_neighbors, n_components=3)
    assert ours.embedding_.dtype == dtype
    assert ours.dist_matrix_.dtype == dtype
    assert ours.embedding_.shape == theirs.embedding_.shape
    assert relative_max_error(ours.dist_matrix_, theirs.dist_matrix_) <= TOLERANCE[dtype]
    assert relative_max_error(ours.embedding_, theirs.embedding_) <= TOLERANCE[dtype]
    assert relative_max_error(ours.kernel_pca_.eigenvalues_, theirs.kernel_pca_.eigenvalues_) <= TOLERANCE[dtype]
    assert relative_max_error(ours.kernel_pca_.eigenvectors_, theirs.kernel_pca_.eigenvectors_) <= TOLERANCE[dtype] * 10
    assert ours.reconstruction_error() == pytest.approx(theirs.reconstruction_error(), rel=TOLERANCE[dtype] * 10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["swiss-roll", "digits"])
def test_transform_matches_sklearn(name, dtype):
    X = make_points(name, 360).astype(dtype)
    train, new = X[:300], X[300:]
    ours, theirs = fit_both(train, n_neighbors=10)
    out = ours.transform(new)
    assert out.dtype == dtype
    assert relative_max_error(out, theirs.transform(new)) <= TOLERANCE[dtype]
    # Transforming the training points themselves gives (nearly) the embedding.
    assert relative_max_error(ours.transform(train), theirs.transform(train)) <= TOLERANCE[dtype]


def test_tied_neighbors_on_integer_digits():
    # Exact ties at the k-th neighbour (integer pixels): isogan keeps the lowest index, scikit-learn
    # whichever its GEMM rounding ranks first. Both graphs hold the same distances per row, and
    # isogan's pipeline on its graph equals scipy + KernelPCA on that graph.
    from scipy.sparse.csgraph import shortest_path
    from sklearn.decomposition import KernelPCA

    X = datasets.load_digits().data[:300]
    ours = Isomap(n_neighbors=12).fit(X)
    our_graph = isogan.knn.knn_graph(X, n_neighbors=12)
    their_graph = kneighbors_graph(X, 12, mode="distance")
    np.testing.assert_allclose(
        np.sort(our_graph.data.reshape(300, 12), axis=1), np.sort(their_graph.data.reshape(300, 12), axis=1), rtol=1e-12
    )
    expected_dist = shortest_path(our_graph, directed=False)
    expected_embedding = KernelPCA(n_components=2, kernel="precomputed").fit_transform(-0.5 * expected_dist**2)
    assert relative_max_error(ours.dist_matrix_, expected_dist) <= 1e-12
    assert relative_max_error(ours.embedding_, expected_embedding) <= 1e-6


def test_fit_transform_equals_fit_then_embedding():
    X = make_points("s-curve", 200)
    isomap = Isomap(n_neighbors=8)
    embedding = isomap.fit_transform(X)
    assert embedding is isomap.embedding_
    # Threaded reductions may round differently from run to run: equal to the last few bits.
    assert relative_max_error(Isomap(n_neighbors=8).fit(X).embedding_, embedding) <= 1e-12


@pytest.mark.parametrize("eigen_solver", ["dense", "arpack"])
def test_eigen_solvers_match_sklearn(eigen_solver):
    X = make_points("swiss-roll", 250)
    ours, theirs = fit_both(X, n_neighbors=10, eigen_solver=eigen_solver)
    assert relative_max_error(ours.embedding_, theirs.embedding_) <= 1e-6


@pytest.mark.parametrize("path_method", ["D", "FW"])
def test_path_methods_match_sklearn(path_method):
    X = make_points("s-curve", 150)
    ours, theirs = fit_both(X, n_neighbors=6, path_method=path_method)
    assert relative_max_error(ours.dist_matrix_, theirs.dist_matrix_) <= 1e-12


@pytest.mark.parametrize("metric, p", [("minkowski", 1), ("minkowski", 3), ("chebyshev", 2), ("cosine", 2)])
def test_other_metrics_match_sklearn(metric, p):
    X = make_points("blobs", 200)
    ours, theirs = fit_both(X, n_neighbors=10, metric=metric, p=p)
    assert relative_max_error(ours.embedding_, theirs.embedding_) <= 1e-6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_radius_mode_matches_sklearn(dtype):
    X = make_points("swiss-roll", 300).astype(dtype)
    ours, theirs = fit_both(X, n_neighbors=None, radius=4.0)
    assert relative_max_error(ours.embedding_, theirs.embedding_) <= TOLERANCE[dtype]
    new = X[:40] + dtype(0.2)
    assert relative_max_error(ours.transform(new), theirs.transform(new)) <= TOLERANCE[dtype]


def test_radius_transform_without_neighbors_raises():
    X = make_points("swiss-roll", 200)
    isomap = Isomap(n_neighbors=None, radius=5.0).fit(X)
    far_away = X[:3] + 1000.0
    with pytest.raises(ValueError, match=r"3 sample\(s\) of X \(first at row 0\) have no training point within radius=5.0"):
        isomap.transform(far_away)


def test_precomputed_dense_matches_sklearn():
    X = make_points("s-curve", 260)
    train, new = X[:220], X[220:]
    distances = pairwise_distances(train)
    ours, theirs = fit_both(distances, n_neighbors=8, metric="precomputed")
    assert relative_max_error(ours.embedding_, theirs.embedding_) <= 1e-6
    new_distances = pairwise_distances(new, train)
    assert relative_max_error(ours.transform(new_distances), theirs.transform(new_distances)) <= 1e-6


def test_precomputed_sparse_matches_sklearn():
    X = make_points("swiss-roll", 290)
    train, new = X[:250], X[250:]
    graph = kneighbors_graph(train, 12, mode="distance")
    ours, theirs = fit_both(graph, n_neighbors=8, metric="precomputed")
    assert relative_max_error(ours.embedding_, theirs.embedding_) <= 1e-6
    new_graph = NearestNeighbors(n_neighbors=12).fit(train).kneighbors_graph(new, mode="distance")
    assert relative_max_error(ours.transform(new_graph), theirs.transform(new_graph)) <= 1e-6


def test_precomputed_sparse_disconnected_raises_like_sklearn():
    X = np.vstack([make_points("swiss-roll", 60), make_points("swiss-roll", 60) + 100.0])
    graph = kneighbors_graph(X, 6, mode="distance")
    expected = _raised(SklearnIsomap(n_neighbors=5, metric="precomputed"), graph)
    actual = _raised(Isomap(n_neighbors=5, metric="precomputed"), graph)
    assert actual == expected
    assert expected[0] is RuntimeError


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_disconnected_graph_warns_and_joins_like_sklearn(dtype):
    X = np.vstack([make_points("s-curve", 100), make_points("s-curve", 80) + 20.0]).astype(dtype)
    with pytest.warns(UserWarning, match=DISCONNECTED_WARNING) as ours_record:
        ours = Isomap(n_neighbors=5).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SklearnIsomap(n_neighbors=5).fit(X)
    assert [str(w.message) for w in ours_record] == [
        "The number of connected components of the neighbors graph is 2 > 1. Completing the graph to fit"
        " Isomap might be slow. Increase the number of neighbors to avoid this issue."
    ]
    assert np.isfinite(ours.dist_matrix_).all()
    assert relative_max_error(ours.dist_matrix_, theirs.dist_matrix_) <= TOLERANCE[dtype]
    assert relative_max_error(ours.embedding_, theirs.embedding_) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_input_matches_sklearn(dtype):
    rng = np.random.default_rng(3)
    dense = rng.random((200, 30)) * (rng.random((200, 30)) < 0.3)
    X = sp.csr_matrix(dense.astype(dtype))
    ours, theirs = fit_both(X, n_neighbors=10)
    assert ours.dist_matrix_.dtype == dtype
    assert relative_max_error(ours.embedding_, theirs.embedding_) <= TOLERANCE[dtype]
    assert relative_max_error(ours.transform(X[:20]), theirs.transform(X[:20])) <= TOLERANCE[dtype]


def test_integer_and_list_input_give_float64():
    rng = np.random.default_rng(4)
    X = rng.integers(0, 100, size=(120, 3))
    ours, theirs = fit_both(X, n_neighbors=8)
    assert ours.dist_matrix_.dtype == np.float64
    assert relative_max_error(ours.embedding_, theirs.embedding_) <= 1e-6
    from_list = Isomap(n_neighbors=8).fit(X.tolist())
    np.testing.assert_allclose(from_list.embedding_, ours.embedding_)


@pytest.mark.parametrize("container", ["BallTree", "KDTree", "NearestNeighbors"])
def test_tree_and_neighbors_input_like_array_input(container):
    # scikit-learn's Isomap documents these inputs but fails on them (no n_features_in_);
    # isogan fits them as the array they hold.
    from sklearn import neighbors

    X = make_points("swiss-roll", 200)
    wrapped = neighbors.NearestNeighbors().fit(X) if container == "NearestNeighbors" else getattr(neighbors, container)(X)
    theirs = SklearnIsomap(n_neighbors=8).fit(X)
    ours = Isomap(n_neighbors=8).fit(wrapped)
    assert ours.n_features_in_ == 3
    assert relative_max_error(ours.embedding_, theirs.embedding_) <= 1e-6
    assert relative_max_error(ours.transform(X[:10]), theirs.transform(X[:10])) <= 1e-6
    with pytest.raises(ValueError, match="X has 2 features, but NearestNeighbors is expecting 3 features"):
        ours.transform(X[:5, :2])


def test_reconstruction_error_matches_sklearn_in_radius_mode():
    X = make_points("s-curve", 200)
    ours, theirs = fit_both(X, n_neighbors=None, radius=0.8)
    assert ours.reconstruction_error() == pytest.approx(theirs.reconstruction_error(), rel=1e-6)


def test_mixed_dtypes_at_transform_follow_sklearn():
    X = make_points("swiss-roll", 220)
    ours64, theirs64 = fit_both(X, n_neighbors=10)
    ours32, theirs32 = fit_both(X.astype(np.float32), n_neighbors=10)
    assert ours64.transform(X[:5].astype(np.float32)).dtype == theirs64.transform(X[:5].astype(np.float32)).dtype
    assert ours32.transform(X[:5]).dtype == theirs32.transform(X[:5]).dtype


# ------------------------------------------------------------------------------ fitted API
def test_fitted_attributes_like_sklearn():
    X = make_points("swiss-roll", 150)
    ours, theirs = fit_both(X, n_neighbors=7, n_components=3)
    assert ours.n_features_in_ == theirs.n_features_in_ == 3
    assert ours.embedding_.shape == (150, 3)
    assert ours.kernel_pca_.n_components == 3
    assert ours.kernel_pca_.eigenvalues_.shape == (3,)
    assert ours.kernel_pca_.eigenvectors_.shape == (150, 3)
    assert isinstance(ours.nbrs_, type(theirs.nbrs_))
    assert ours.nbrs_.get_params() == theirs.nbrs_.get_params()
    np.testing.assert_array_equal(ours.nbrs_.kneighbors(X[:5])[1], theirs.nbrs_.kneighbors(X[:5])[1])
    assert list(ours.get_feature_names_out()) == ["isomap0", "isomap1", "isomap2"]
    assert set(ours.timings_) == {"validate", "knn", "connect", "paths", "mds"}
    assert all(seconds >= 0 for seconds in ours.timings_.values())


def test_clone_get_params_pickle_round_trip():
    isomap = Isomap(n_neighbors=7, n_components=3, eigen_solver="dense", device="cpu")
    params = isomap.get_params()
    assert params["device"] == "cpu"
    # isogan's own parameters: the device and landmark Isomap (exact by default).
    extensions = {"device", "n_landmarks", "landmark_method", "random_state", "memory_budget"}
    assert (params["n_landmarks"], params["landmark_method"], params["random_state"]) == (None, "maxmin", None)
    assert {k: v for k, v in params.items() if k not in extensions} == SklearnIsomap(
        n_neighbors=7, n_components=3, eigen_solver="dense"
    ).get_params()
    cloned = clone(isomap)
    assert cloned.get_params() == params
    X = make_points("s-curve", 150)
    isomap.fit(X)
    restored = pickle.loads(pickle.dumps(isomap))
    np.testing.assert_array_equal(restored.embedding_, isomap.embedding_)
    assert relative_max_error(restored.transform(X[:10]), isomap.transform(X[:10])) <= 1e-12
    assert restored.reconstruction_error() == isomap.reconstruction_error()


def test_set_output_pandas():
    pandas = pytest.importorskip("pandas")
    X = make_points("swiss-roll", 120)
    frame = Isomap(n_neighbors=8).set_output(transform="pandas").fit_transform(X)
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == ["isomap0", "isomap1"]


def test_not_fitted_raises_like_sklearn():
    X = make_points("swiss-roll", 20)
    with pytest.raises(NotFittedError, match="This Isomap instance is not fitted yet"):
        Isomap().transform(X)
    with pytest.raises(NotFittedError, match="This Isomap instance is not fitted yet"):
        Isomap().reconstruction_error()


def test_kernel_pca_transform_equals_sklearn_kernel_pca():
    X = make_points("digits", 200)
    ours, theirs = fit_both(X, n_neighbors=10)
    geodesic_rows = theirs.dist_matrix_[:30] + 0.5
    kernel_rows = -0.5 * geodesic_rows**2
    expected = theirs.kernel_pca_.transform(kernel_rows.copy())
    assert relative_max_error(ours.kernel_pca_.transform(kernel_rows.copy()), expected) <= 1e-6


# -------------------------------------------------------------------------------- bad input
def _sorted_sets(message: str) -> str:
    """Write every ``{'a', 'b'}`` in ``message`` with sorted items (set order varies by object)."""
    return re.sub(r"\{([^{}]*)\}", lambda match: "{" + ", ".join(sorted(match.group(1).split(", "))) + "}", message)


def _raised(estimator, X, method="fit"):
    """Return (type, message) of the exception ``estimator.method(X)`` raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            getattr(estimator, method)(X)
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        return type(error), _sorted_sets(str(error))
    pytest.fail(f"{type(estimator).__name__}.{method} did not raise")


_RNG = np.random.default_rng(5)
_GOOD = _RNG.random((20, 3))
_WITH_NAN = _GOOD.copy()
_WITH_NAN[3, 1] = np.nan
_WITH_INF = _GOOD.copy()
_WITH_INF[0, 0] = np.inf

BAD_FIT_CASES = {
    "nan": ({}, _WITH_NAN),
    "inf": ({}, _WITH_INF),
    "empty": ({}, np.empty((0, 3))),
    "no features": ({}, np.empty((5, 0))),
    "1-D": ({}, np.arange(5.0)),
    "3-D": ({}, np.zeros((4, 3, 2))),
    "strings": ({}, np.array([["a", "b"], ["c", "d"], ["e", "f"]])),
    "object strings": ({}, np.array([[1, "a"], [2, "b"]], dtype=object)),
    "complex": ({}, _GOOD + 1j),
    "single sample": ({}, _GOOD[:1]),
    "n_neighbors == n_samples": ({}, _GOOD[:5]),
    "n_neighbors > n_samples": ({"n_neighbors": 30}, _GOOD),
    "n_neighbors 0": ({"n_neighbors": 0}, _GOOD),
    "n_neighbors float": ({"n_neighbors": 2.5}, _GOOD),
    "both n_neighbors and radius": ({"radius": 1.0}, _GOOD),
    "negative radius": ({"n_neighbors": None, "radius": -1.0}, _GOOD),
    "n_components 0": ({"n_components": 0}, _GOOD),
    "path_method": ({"path_method": "BF"}, _GOOD),
    "eigen_solver": ({"eigen_solver": "lobpcg"}, _GOOD),
    "neighbors_algorithm": ({"neighbors_algorithm": "lsh"}, _GOOD),
    "metric": ({"metric": "nope"}, _GOOD),
    "p < 1": ({"p": 0.5}, _GOOD),
    "negative tol": ({"tol": -1.0}, _GOOD),
    "max_iter 0": ({"max_iter": 0}, _GOOD),
    "precomputed not square": ({"metric": "precomputed"}, _GOOD),
    "precomputed negative": ({"metric": "precomputed"}, -pairwise_distances(_GOOD)),
    "kd_tree with cosine": ({"neighbors_algorithm": "kd_tree", "metric": "cosine"}, _GOOD),
}


@pytest.mark.parametrize("params, X", BAD_FIT_CASES.values(), ids=BAD_FIT_CASES.keys())
def test_bad_fit_input_raises_like_sklearn(params, X):
    expected = _raised(SklearnIsomap(**params), X)
    if params.get("neighbors_algorithm") == "lsh":
        # isogan offers one option scikit-learn has not: the same message, one more name in the set.
        expected = (expected[0], expected[1].replace("{'auto',", "{'approximate', 'auto',"))
    assert _raised(Isomap(**params), X) == expected
    assert _raised(Isomap(**params), X, "fit_transform") == expected


EDGE_CASES = {
    "radius, one sample": ({"n_neighbors": None, "radius": 10.0}, _GOOD[:1]),
    "radius, three samples": ({"n_neighbors": None, "radius": 10.0}, _GOOD[:3]),
    "radius 0 (all isolated, joined)": ({"n_neighbors": None, "radius": 0.0}, _GOOD[:6]),
    "one neighbour, two samples": ({"n_neighbors": 1}, _GOOD[:2]),
    "all points equal": ({"n_neighbors": 5, "n_components": 1}, np.zeros((6, 3))),
    "n_components > n_samples": ({"n_neighbors": 3, "n_components": 10}, _GOOD[:6]),
}


@pytest.mark.parametrize("params, X", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_edge_cases_like_sklearn(params, X):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = SklearnIsomap(**params).fit(X).embedding_
    except ValueError:
        assert _raised(Isomap(**params), X) == _raised(SklearnIsomap(**params), X)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        actual = Isomap(**params).fit(X).embedding_
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= 1e-6 * max(np.abs(expected).max(), 1.0)


def test_neither_n_neighbors_nor_radius_raises():
    assert _raised(SklearnIsomap(n_neighbors=None), _GOOD)[0] is InvalidParameterError
    with pytest.raises(InvalidParameterError, match=r"Set n_neighbors .* or radius"):
        Isomap(n_neighbors=None).fit(_GOOD)


BAD_TRANSFORM_CASES = {
    "wrong feature count": _RNG.random((4, 5)),
    "1-D": _RNG.random(3),
    "nan": np.full((2, 3), np.nan),
    "empty": np.empty((0, 3)),
    "strings": np.array([["a", "b", "c"]]),
    "complex": _GOOD[:2] + 1j,
}


@pytest.mark.parametrize("X", BAD_TRANSFORM_CASES.values(), ids=BAD_TRANSFORM_CASES.keys())
def test_bad_transform_input_raises_like_sklearn(X):
    ours, theirs = fit_both(_GOOD)
    assert _raised(ours, X, "transform") == _raised(theirs, X, "transform")


@pytest.mark.parametrize("device", ["gpu", "CUDA", None, 0])
def test_unknown_device_raises_value_error(device):
    with pytest.raises(ValueError, match="The 'device' parameter of Isomap must be a str among"):
        Isomap(device=device).fit(_GOOD)


@pytest.mark.skipif(isogan.cuda_available(), reason="needs a machine without a usable CUDA device")
def test_cuda_device_without_gpu_raises_runtime_error():
    with pytest.raises(RuntimeError, match="device='cuda' was requested but CUDA is not usable"):
        Isomap(device="cuda").fit(_GOOD)


def test_auto_device_without_gpu_falls_back_to_cpu():
    ours, theirs = fit_both(make_points("swiss-roll", 100), n_neighbors=8)
    auto = Isomap(n_neighbors=8, device="auto").fit(make_points("swiss-roll", 100))
    assert relative_max_error(auto.embedding_, ours.embedding_) <= 1e-12
    assert relative_max_error(auto.embedding_, theirs.embedding_) <= 1e-6


def test_matrix_too_large_for_memory_is_refused_up_front(monkeypatch):
    monkeypatch.setattr(memory, "available_host_bytes", lambda: 10_000)
    X = make_points("swiss-roll", 200)
    with pytest.raises(MemoryError) as error:
        Isomap(n_neighbors=8).fit(X)
    message = str(error.value)
    assert "the (200, 200) float64 geodesic distance matrix (dist_matrix_) needs" in message
    assert "only 10,000 bytes" in message
    assert "Pass float32 input" in message
    with pytest.raises(MemoryError, match=r"the \(200, 200\) float32 geodesic distance matrix .*n_landmarks.* fit fewer points") as error:
        Isomap(n_neighbors=8).fit(X.astype(np.float32))
    assert "float32 input" not in str(error.value)
    # eigen_solver='dense' writes the centred kernel out: twice the bytes.
    square_bytes = 200 * 200 * 8
    monkeypatch.setattr(memory, "available_host_bytes", lambda: int(1.5 * square_bytes))
    with pytest.raises(MemoryError, match="float64 geodesic distance matrix"):
        Isomap(n_neighbors=8, eigen_solver="dense").fit(X)
    assert Isomap(n_neighbors=8, eigen_solver="arpack").fit(X).embedding_.shape == (200, 2)
    monkeypatch.undo()
    assert Isomap(n_neighbors=8).fit(X).embedding_.shape == (200, 2)


def test_progress_bar_only_for_long_fits():
    quick = policy.relaxation_seconds(1000, 1000, 20_000, 2)
    slow = policy.relaxation_seconds(1000, 10**6, 2 * 10**7, 2)
    with policy.progress_bar(2, "a", policy.show_progress(quick)) as quiet:
        assert quiet.disable
    with policy.progress_bar(2, "a", policy.show_progress(slow)) as shown:
        assert not shown.disable
        shown.update(1)
        assert shown.n == 1


# -------------------------------------------------------------------- scikit-learn's checks
@pytest.mark.filterwarnings(f"ignore:{DISCONNECTED_WARNING}:UserWarning")
@parametrize_with_checks([Isomap()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------------------------- properties
@st.composite
def point_clouds(draw):
    """Small point clouds, often on an integer grid (duplicates and tied distances)."""
    n_samples = draw(st.integers(4, 40))
    n_features = draw(st.integers(1, 4))
    on_grid = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if on_grid:
        X = rng.integers(0, 4, size=(n_samples, n_features)).astype(dtype)
    else:
        X = rng.normal(size=(n_samples, n_features)).astype(dtype)
    n_neighbors = draw(st.integers(1, min(n_samples - 1, 6)))
    n_components = draw(st.integers(1, 2))
    return X, n_neighbors, n_components


def _neighbor_choice_is_unique(X: np.ndarray, n_neighbors: int) -> bool:
    """Whether every point's k nearest others are unambiguous (no tie at the k-th distance)."""
    distances = pairwise_distances(X.astype(np.float64))
    np.fill_diagonal(distances, np.inf)
    ordered = np.sort(distances, axis=1)
    if n_neighbors >= X.shape[0] - 1:
        return True
    kth, next_one = ordered[:, n_neighbors - 1], ordered[:, n_neighbors]
    return bool(np.all(next_one - kth > 1e-6 * np.maximum(kth, 1.0)))


def _well_separated_columns(dist_matrix: np.ndarray, n_components: int, relative_gap: float) -> list[int]:
    """Components whose eigenvalue is apart from its neighbours' (so its eigenvector is unique)."""
    n_samples = dist_matrix.shape[0]
    centring = np.eye(n_samples) - 1.0 / n_samples
    kernel = centring @ (-0.5 * dist_matrix.astype(np.float64) ** 2) @ centring
    eigenvalues = np.sort(np.linalg.eigvalsh(kernel))[::-1]
    scale = max(abs(eigenvalues[0]), 1e-300)
    columns = []
    for j in range(min(n_components, n_samples)):
        above = eigenvalues[j - 1] - eigenvalues[j] if j > 0 else np.inf
        below = eigenvalues[j] - eigenvalues[j + 1] if j + 1 < n_samples else np.inf
        if min(above, below) > relative_gap * scale and eigenvalues[j] > relative_gap * scale:
            columns.append(j)
    return columns


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(point_clouds())
def test_property_no_crash_and_parity(case):
    X, n_neighbors, n_components = case
    params = {"n_neighbors": n_neighbors, "n_components": n_components}
    with warnings.catch_warnings(record=True) as theirs_warnings:
        warnings.simplefilter("always")
        try:
            theirs = SklearnIsomap(**params).fit(X)
        except ValueError as error:
            theirs, their_error = None, error
    with warnings.catch_warnings(record=True) as ours_warnings:
        warnings.simplefilter("always")
        if theirs is None:
            with pytest.raises(type(their_error), match=re.escape(str(their_error)[:40])):
                Isomap(**params).fit(X)
            return
        ours = Isomap(**params).fit(X)
    dtype = X.dtype.type
    assert ours.embedding_.dtype == dtype and ours.dist_matrix_.dtype == dtype
    assert ours.embedding_.shape == theirs.embedding_.shape
    assert np.isfinite(ours.embedding_).all() and np.isfinite(ours.dist_matrix_).all()
    if not _neighbor_choice_is_unique(X, n_neighbors):
        # Tied neighbours: both graphs are valid kNN graphs but may differ (and so may their
        # number of components); only the invariants above are comparable.
        return
    assert [str(w.message) for w in ours_warnings if w.category is UserWarning] == [
        str(w.message) for w in theirs_warnings if w.category is UserWarning
    ]
    scale = max(np.abs(theirs.dist_matrix_).max(), 1e-12)
    assert np.abs(ours.dist_matrix_ - theirs.dist_matrix_).max() <= TOLERANCE[dtype] * scale
    gap = 1e-4 if dtype is np.float64 else 1e-2
    for column in _well_separated_columns(theirs.dist_matrix_, n_components, gap):
        expected = theirs.embedding_[:, column].astype(np.float64)
        actual = ours.embedding_[:, column].astype(np.float64)
        column_scale = np.abs(expected).max()
        difference = np.abs(actual - expected).max()
        magnitudes = np.sort(np.abs(expected))
        if magnitudes[-1] - magnitudes[-2] <= 10 * TOLERANCE[dtype] * column_scale:
            # The sign rule (largest-magnitude entry positive) is decided by rounding when two
            # entries tie in magnitude (symmetric point sets): compare up to sign.
            difference = min(difference, np.abs(actual + expected).max())
        assert difference <= 10 * TOLERANCE[dtype] * column_scale


# ----------------------------------------------------------------------------------- GPU input
@pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")
def test_torch_cuda_input_matches_numpy_input():
    torch = pytest.importorskip("torch")
    X = make_points("swiss-roll", 300)
    from_numpy = Isomap(n_neighbors=10, device="cuda").fit(X)
    from_tensor = Isomap(n_neighbors=10, device="cuda").fit(torch.from_numpy(X).cuda())
    assert isinstance(from_tensor.embedding_, np.ndarray)
    assert isinstance(from_tensor.dist_matrix_, np.ndarray)
    assert relative_max_error(from_tensor.embedding_, from_numpy.embedding_) <= 1e-6
    new = torch.from_numpy(X[:20] + 0.1).cuda()
    assert relative_max_error(from_tensor.transform(new), from_numpy.transform(X[:20] + 0.1)) <= 1e-6


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state:UserWarning")
def test_gpu_library_csr_graph_converts_to_scipy():
    # The kNN stage returns a torch sparse CSR tensor for torch GPU input; the conversion to scipy
    # does not depend on the tensor's device, so a CPU tensor exercises it here.
    torch = pytest.importorskip("torch")
    from isogan._backend.arrays import csr_to_host as _csr_to_host

    expected = sp.csr_matrix(np.array([[0.0, 1.5, 0.0], [1.5, 0.0, 2.0], [0.0, 2.0, 0.0]], dtype=np.float32))
    tensor = torch.sparse_csr_tensor(
        torch.from_numpy(expected.indptr.astype(np.int64)),
        torch.from_numpy(expected.indices.astype(np.int64)),
        torch.from_numpy(expected.data),
        size=expected.shape,
        check_invariants=True,
    )
    converted = _csr_to_host(tensor)
    assert sp.issparse(converted) and converted.dtype == np.float32
    np.testing.assert_array_equal(converted.toarray(), expected.toarray())
    assert _csr_to_host(expected) is expected


@pytest.mark.parametrize("n_landmarks", [None, 300])
def test_seeded_fit_is_reproducible_bit_for_bit(n_landmarks):
    # 600 points exact / 300 landmarks: both past the dense solver, so the iterative eigensolver's
    # start vectors come from random_state.
    X, _ = datasets.make_swiss_roll(600 if n_landmarks is None else 2000, random_state=3)
    fits = [Isomap(n_neighbors=10, n_landmarks=n_landmarks, random_state=7, device="cpu").fit_transform(X)
            for _ in range(3)]
    for again in fits[1:]:
        np.testing.assert_array_equal(fits[0], again)
