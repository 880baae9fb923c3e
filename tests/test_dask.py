"""isogan.dask.Isomap on a distributed.LocalCluster: equal to the in-process landmark Isomap,
the kNN graph equal to isogan.knn_graph, a worker killed mid-fit, bad input and no client."""

import os
import warnings

import numpy as np
import pytest
from scipy import sparse

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import isogan
from isogan import knn, landmark
from isogan._backend.dask import ROWS_KEY_PREFIX, DaskBackend
from isogan._compat import InvalidParameterError
from isogan.dask import Isomap
from sklearn.datasets import make_swiss_roll

N_NEIGHBORS = 8


@pytest.fixture(scope="module")
def client():
    """Two in-process workers of one thread; not the default client, so tests opt in with ``as_current``."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            yield client


@pytest.fixture
def current(client):
    with client.as_current():
        yield client


def swiss_roll(n_samples, dtype=np.float64, seed=0):
    return make_swiss_roll(n_samples, random_state=seed)[0].astype(dtype)


def relative_error(actual, expected):
    return float(np.abs(np.asarray(actual) - expected).max() / np.abs(expected).max())


def in_memory(X, **params):
    return isogan.Isomap(n_neighbors=N_NEIGHBORS, device="cpu", **params).fit(X)


# ------------------------------------------------------------------------------ equality
@pytest.mark.parametrize("gather_bytes", [None, 0], ids=["gathered", "blocks"])
@pytest.mark.parametrize("landmark_method", ["random", "maxmin"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_embedding_and_transform_equal_in_memory(current, dtype, landmark_method, gather_bytes):
    X = swiss_roll(1300, dtype)
    X_new = (swiss_roll(300, dtype, seed=1) * 0.98).astype(dtype)
    params = {"n_landmarks": 40, "landmark_method": landmark_method, "random_state": 3}
    reference = in_memory(X, **params)
    # 1300 = 3 * 400 + 100: a ragged last block.
    model = Isomap(n_neighbors=N_NEIGHBORS, gather_bytes=gather_bytes, **params).fit(da.from_array(X, chunks=(400, 3)))
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_array_equal(model.landmark_index_, reference.landmark_index_)
    assert isinstance(model.embedding_, da.Array) and model.embedding_.chunks == ((400, 400, 400, 100), (2,))
    assert distributed.futures_of(model.embedding_)  # persisted on the workers
    embedding = model.embedding_.compute()
    assert embedding.dtype == dtype
    assert relative_error(embedding, reference.embedding_) <= tolerance

    transformed = model.transform(da.from_array(X_new, chunks=(120, 3)))
    assert transformed.chunks == ((120, 120, 60), (2,))
    result = transformed.compute()
    assert result.dtype == dtype
    assert relative_error(result, reference.transform(X_new)) <= tolerance


def test_backend_transform_from_neighbors_and_fit_transform(current):
    """The in-process transform_from_neighbors on the Dask backend, and fit_transform (NumPy input)."""
    X = swiss_roll(900)
    X_new = swiss_roll(200, seed=2) * 0.97
    reference = in_memory(X, n_landmarks=30, random_state=0)
    estimator = Isomap(n_neighbors=N_NEIGHBORS, n_landmarks=30, random_state=0)
    embedding = estimator.fit_transform(X)
    assert relative_error(embedding.compute(), reference.embedding_) <= 1e-10
    neighbors = knn.kneighbors(X, X_new, N_NEIGHBORS, device="cpu")
    transformed = landmark.transform_from_neighbors(estimator.landmark_model_, neighbors, backend=DaskBackend(current))
    assert relative_error(transformed, reference.transform(X_new)) <= 1e-10
    assert estimator.landmark_model_.landmark_geodesic.max() == reference.landmark_model_.landmark_geodesic.max()


@pytest.mark.parametrize("gather_bytes", [None, 0], ids=["gathered", "blocks"])
def test_knn_graph_equals_knn_graph(current, gather_bytes):
    """Duplicates, ties on a grid and blocks down to one row: the same graph as one search."""
    rng = np.random.default_rng(0)
    X = np.vstack([np.indices((8, 8, 4)).reshape(3, -1).T.astype(np.float64), rng.normal(size=(45, 3))])
    X[300] = X[3]  # a duplicate of a point in another block
    X[5] = X[6]  # a duplicate in the same block
    points = da.from_array(X, chunks=(100, 3))  # 301 rows: a last block of one row
    backend = DaskBackend(current, gather_bytes=gather_bytes)
    graph = backend.neighbor_graph(points, N_NEIGHBORS, metric="minkowski", p=2, algorithm="auto")
    expected = sparse.csr_matrix(isogan.knn_graph(X, n_neighbors=N_NEIGHBORS, device="cpu"))
    np.testing.assert_array_equal(graph.indptr, expected.indptr)
    np.testing.assert_array_equal(graph.indices, expected.indices)
    np.testing.assert_array_equal(graph.data, expected.data)


def test_precomputed_graph_geodesic_maxmin(current):
    """No coordinates: geodesic MaxMin (rows from a worker, then scattered) as on the CPU backend."""
    graph = sparse.csr_matrix(isogan.knn_graph(swiss_roll(600), n_neighbors=N_NEIGHBORS, device="cpu"))
    expected = landmark.fit_landmark_model(graph, 25, random_state=1, device="cpu")
    model = landmark.fit_landmark_model(graph, 25, random_state=1, backend=DaskBackend(current))
    np.testing.assert_array_equal(model.landmark_index, expected.landmark_index)
    assert relative_error(model.embedding.compute(), expected.embedding) <= 1e-10


def test_disconnected_graph_is_joined_like_in_memory(current):
    X = np.vstack([swiss_roll(400), swiss_roll(300, seed=1) + 100.0])
    with pytest.warns(UserWarning, match="connected components"):
        reference = in_memory(X, n_landmarks=30, random_state=0)
    with pytest.warns(UserWarning, match="connected components") as record:
        model = Isomap(n_neighbors=N_NEIGHBORS, n_landmarks=30, random_state=0).fit(da.from_array(X, chunks=(250, 3)))
    assert record[0].filename == __file__  # the warning points at the caller's fit
    assert relative_error(model.embedding_.compute(), reference.embedding_) <= 1e-10


def _sent_keys(dask_worker):
    return [str(key) for entry in dask_worker.transfer_outgoing_log for key in entry["keys"]]


def test_landmark_rows_stay_on_their_workers(current):
    """Fit and an unoptimised transform read every share where it was computed: no row crosses."""
    X = swiss_roll(4000)
    model = Isomap(n_neighbors=N_NEIGHBORS, n_landmarks=40, random_state=0).fit(da.from_array(X, chunks=(500, 3)))
    model.transform(da.from_array(X[:1000] * 0.99, chunks=(250, 3))).compute(optimize_graph=False)
    shares = model.landmark_model_.landmark_geodesic.futures
    assert len(shares) == 2  # one per worker thread below 64 landmarks per share
    share_keys = {share.key for share in shares}
    assert all(len(holders) == 1 for holders in current.who_has(shares).values())
    sent = [key for keys in current.run(_sent_keys).values() for key in keys]
    assert not share_keys & set(sent)


# ------------------------------------------------------------------------------ faults
class _KillAfterFirstShare(distributed.WorkerPlugin):
    """Ends its worker's process right after the first landmark-row share there is done (once per cluster)."""

    def __init__(self, marker):
        self.marker = marker

    def setup(self, worker):
        self.worker = worker

    def transition(self, key, start, finish, **kwargs):
        if finish == "memory" and str(key).startswith(ROWS_KEY_PREFIX) and not os.path.exists(self.marker):
            with open(self.marker, "w") as marker:
                marker.write(str(self.worker.address))
            os._exit(1)


def test_worker_killed_during_landmark_paths_gives_identical_embedding(tmp_path):
    X = swiss_roll(1200)
    params = {"n_landmarks": 40, "random_state": 5}
    reference = in_memory(X, **params)
    marker = tmp_path / "killed"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster, set_as_default=False) as client, client.as_current():
            client.register_plugin(_KillAfterFirstShare(str(marker)))
            model = Isomap(n_neighbors=N_NEIGHBORS, **params).fit(da.from_array(X, chunks=(300, 3)))
            embedding = model.embedding_.compute()
    assert marker.exists()  # a worker died holding finished landmark rows
    np.testing.assert_array_equal(model.landmark_index_, reference.landmark_index_)
    assert relative_error(embedding, reference.embedding_) <= 1e-10


# ------------------------------------------------------------------------------ bad input
def test_column_chunked_input_is_rechunked(current):
    X = swiss_roll(700)
    by_rows = Isomap(n_neighbors=N_NEIGHBORS, n_landmarks=20, random_state=0).fit(da.from_array(X, chunks=(200, 3)))
    by_columns = Isomap(n_neighbors=N_NEIGHBORS, n_landmarks=20, random_state=0).fit(da.from_array(X, chunks=(200, 1)))
    assert by_columns.embedding_.chunks == by_rows.embedding_.chunks
    np.testing.assert_array_equal(by_columns.embedding_.compute(), by_rows.embedding_.compute())


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_block_is_named(current, bad, word):
    X = swiss_roll(1000)
    X[850, 1] = bad
    with pytest.raises(ValueError, match=rf"Input X contains {word}.* in block 2 of X \(rows 800 to 999\)"):
        Isomap(n_landmarks=20).fit(da.from_array(X, chunks=(400, 3)))


def _message(call):
    with pytest.raises((ValueError, InvalidParameterError)) as error:
        call()
    return str(error.value)


@pytest.mark.parametrize(
    "params",
    [{"n_landmarks": 101}, {"n_landmarks": 2}, {"n_landmarks": 2.5}, {"n_neighbors": 100, "n_landmarks": 10},
     {"n_landmarks": 10, "landmark_method": "farthest"}, {"n_landmarks": 10, "n_components": 0}],
)
def test_bad_parameters_raise_like_isogan_isomap(current, params):
    X = swiss_roll(100)
    expected = _message(lambda: isogan.Isomap(**params).fit(X))
    assert _message(lambda: Isomap(**params).fit(da.from_array(X, chunks=(40, 3)))) == expected


def test_missing_landmarks_and_feature_mismatch_raise(current):
    X = da.from_array(swiss_roll(200), chunks=(100, 3))
    with pytest.raises(ValueError, match="pass n_landmarks=L"):
        Isomap().fit(X)
    model = Isomap(n_landmarks=10).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but Isomap is expecting 3 features"):
        model.transform(da.zeros((5, 2), chunks=(5, 2)))


def test_workers_without_memory_for_the_rows_are_refused(current):
    X = da.zeros((1_000_000, 3), chunks=(100_000, 3))  # never computed: refused before any work
    with pytest.raises(MemoryError, match=r"per worker .* the smallest worker has"):
        Isomap(n_landmarks=5_000).fit(X)


def test_no_client_or_a_closed_one_raises(client):
    X = da.from_array(swiss_roll(100), chunks=(50, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match=r"no distributed.Client is active; start one with `from distributed"):
            Isomap(n_landmarks=10).fit(X)
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        closed = distributed.Client(cluster, set_as_default=False)
    with closed.as_current(), pytest.raises(RuntimeError, match="scheduler .* cannot be reached"):
        Isomap(n_landmarks=10).fit(X)
    closed.close()


def test_progress_shows_dashboard_and_stage_bars(current, capsys):
    X = da.from_array(swiss_roll(400), chunks=(200, 3))
    Isomap(n_landmarks=10, progress=True).fit(X)
    err = capsys.readouterr().err
    assert f"Dask dashboard at {current.dashboard_link}" in err
    for stage in ("kNN graph (dask)", "landmark shortest paths (dask)", "triangulation (dask)"):
        assert stage in err


@pytest.mark.parametrize("p", [1, 3])
def test_minkowski_power_equals_in_memory(current, p):
    X = swiss_roll(600)
    reference = in_memory(X, n_landmarks=20, random_state=0, p=p)
    model = Isomap(n_neighbors=N_NEIGHBORS, n_landmarks=20, random_state=0, p=p).fit(da.from_array(X, chunks=(250, 3)))
    assert relative_error(model.embedding_.compute(), reference.embedding_) <= 1e-10


@pytest.mark.parametrize("scale, dtype", [(1e160, np.float64), (1e-170, np.float64), (1e19, np.float32)])
def test_points_out_of_range_raise_like_isogan_isomap(current, scale, dtype):
    X = (swiss_roll(300) * scale).astype(dtype)
    expected = _message(lambda: isogan.Isomap(n_landmarks=20).fit(X))
    assert "outside what" in expected
    assert _message(lambda: Isomap(n_landmarks=20).fit(da.from_array(X, chunks=(100, 3)))) == expected


def test_transform_of_points_too_far_raises(current):
    X = swiss_roll(300)
    model = Isomap(n_landmarks=20, random_state=0).fit(da.from_array(X, chunks=(100, 3)))
    far = da.from_array(np.full((4, 3), 1e160), chunks=(2, 3))
    with pytest.raises(ValueError, match="distances from X to its nearest training points overflow float64"):
        model.transform(far).compute()
