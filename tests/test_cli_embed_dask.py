"""``isogan embed --scheduler``: on a local cluster and on a scheduler given by address, the
embedding equal to in-process landmark Isomap; the errors before any work, without traceback."""

import sys
import time

import numpy as np
import pytest
from sklearn.datasets import make_swiss_roll

distributed = pytest.importorskip("distributed")

import isogan
from isogan import cli

PARAMS = {"n_neighbors": 10, "n_landmarks": 30, "random_state": 0}


def swiss_roll(n_samples=1200, dtype=np.float64):
    return make_swiss_roll(n_samples, random_state=0)[0].astype(dtype)


def reference(X):
    return isogan.Isomap(device="cpu", **PARAMS).fit(X).embedding_


def relative_error(actual, expected):
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def arguments(input_path, out, scheduler, *extra):
    return ["embed", "--input", str(input_path), "--n-landmarks", "30", "--n-neighbors", "10", "--random-state", "0",
            "--scheduler", scheduler, "--out", str(out), *extra]


def test_local_cluster_writes_embedding_and_plot(tmp_path, capsys):
    X = swiss_roll(dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    assert cli.main(arguments(tmp_path / "X.npy", tmp_path / "out", "local:2")) == 0
    embedding = np.load(tmp_path / "out" / "embedding.npy")
    assert embedding.dtype == np.float32  # the file's dtype is kept
    assert relative_error(embedding, reference(X)) <= 1e-4
    assert (tmp_path / "out" / "embedding.png").read_bytes().startswith(b"\x89PNG")
    printed = capsys.readouterr().out
    assert "2 worker(s), 2 thread(s); dashboard at http" in printed
    assert "1200 points x 3 features (float32), 8 row blocks" in printed  # 4 blocks per worker thread
    for stage in ("load", "knn", "paths", "mds", "total fit"):
        assert stage in printed


def test_scheduler_address_parquet_input_and_zarr_output(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    zarr = pytest.importorskip("zarr")
    X = swiss_roll()
    pq.write_table(pa.table({"x": X[:, 0], "y": X[:, 1], "z": X[:, 2]}), tmp_path / "X.parquet", row_group_size=300)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        status = cli.main(arguments(tmp_path / "X.parquet", tmp_path / "out", cluster.scheduler_address,
                                    "--embedding-format", "zarr", "--no-plot"))
    assert status == 0
    assert not (tmp_path / "out" / "embedding.png").exists()
    embedding = zarr.open_array(str(tmp_path / "out" / "embedding.zarr"), mode="r")
    assert embedding.shape == (1200, 2) and embedding.chunks == (300, 2)  # the row groups
    assert relative_error(embedding[:], reference(X)) <= 1e-10


def test_dataset_on_a_local_cluster_with_explicit_dtype(tmp_path):
    status = cli.main(["embed", "--dataset", "swiss-roll", "--n-samples", "800", "--n-landmarks", "30",
                       "--n-neighbors", "10", "--dtype", "float32", "--scheduler", "local:1", "--chunk-rows", "300",
                       "--out", str(tmp_path), "--no-plot"])
    assert status == 0
    embedding = np.load(tmp_path / "embedding.npy")
    expected = reference(make_swiss_roll(800, random_state=0)[0].astype(np.float32))
    assert embedding.dtype == np.float32 and relative_error(embedding, expected) <= 1e-4


def test_unreachable_scheduler_is_named_without_traceback(tmp_path, capsys):
    np.save(tmp_path / "X.npy", swiss_roll(100))
    start = time.perf_counter()
    status = cli.main(arguments(tmp_path / "X.npy", tmp_path / "out", "tcp://127.0.0.1:9", "--connect-timeout", "1"))
    assert time.perf_counter() - start < 15
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("isogan embed: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s")
    assert "Traceback" not in err and err.count("\n") == 1


def test_refusals_before_any_work(tmp_path, capsys):
    np.save(tmp_path / "X.npy", swiss_roll(100))
    (tmp_path / "file").write_text("")
    # --out is checked before the (unreachable) scheduler is tried.
    assert cli.main(arguments(tmp_path / "X.npy", tmp_path / "file", "tcp://127.0.0.1:9")) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    status = cli.main(["embed", "--input", str(tmp_path / "X.npy"), "--scheduler", "local:1", "--out", str(tmp_path)])
    assert status == 2 and "--scheduler needs --n-landmarks" in capsys.readouterr().err
    assert cli.main(arguments(tmp_path / "missing.npy", tmp_path / "out", "local:1")) == 2
    assert "missing.npy' does not exist" in capsys.readouterr().err
    (tmp_path / "out" / "embedding.zarr").write_text("")
    assert cli.main(arguments(tmp_path / "X.npy", tmp_path / "out", "local:1", "--embedding-format", "zarr")) == 2
    assert "holds a file named embedding.zarr" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(arguments(tmp_path / "X.npy", tmp_path / "out", "local:0"))
    assert info.value.code == 2
    assert "argument --scheduler: expected a positive integer, got 0" in capsys.readouterr().err


def test_fit_refusal_exits_1(tmp_path, capsys):
    np.save(tmp_path / "X.npy", swiss_roll(20))
    assert cli.main(arguments(tmp_path / "X.npy", tmp_path / "out", "local:1")) == 1  # 30 landmarks > 20 points
    assert "n_landmarks" in capsys.readouterr().err


def test_scheduler_without_dask_names_the_extra(tmp_path, capsys, monkeypatch):
    for name in ("isogan.dask", "isogan._backend.dask"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "distributed", None)
    np.save(tmp_path / "X.npy", swiss_roll(100))
    assert cli.main(arguments(tmp_path / "X.npy", tmp_path / "out", "local:1")) == 2
    err = capsys.readouterr().err
    assert "pip install isogan[dask]" in err and "Traceback" not in err
