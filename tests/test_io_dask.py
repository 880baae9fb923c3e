"""isogan.io.dask_points: .npy, zarr and parquet files as lazy row-chunked dask arrays, against
the arrays written (NumPy as the oracle), and the files' bad contents refused with their names."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

from isogan.io import dask_points


def points(n_samples=200, n_features=3, dtype=np.float64):
    return np.random.default_rng(0).normal(size=(n_samples, n_features)).astype(dtype)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_npy_blocks_equal_the_file(tmp_path, dtype, order):
    X = np.asarray(points(dtype=np.float64) * 10, dtype=dtype, order=order)
    np.save(tmp_path / "X.npy", X)
    read = dask_points(tmp_path / "X.npy", chunk_rows=64)
    assert read.chunks == ((64, 64, 64, 8), (3,))
    assert read.dtype == dtype
    np.testing.assert_array_equal(read.compute(scheduler="sync"), X)
    # Lazy: the graph holds the path and row ranges, not the data.
    assert all(not isinstance(value, np.ndarray) for value in dict(read.__dask_graph__()).values())


def test_npy_default_blocks_and_bad_files(tmp_path):
    np.save(tmp_path / "X.npy", points(100))
    assert dask_points(str(tmp_path / "X.npy")).chunks == ((100,), (3,))
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    with pytest.raises(ValueError, match=r"flat.npy' as points: expected a 2-D numeric .* found shape \(5,\)"):
        dask_points(tmp_path / "flat.npy")
    np.save(tmp_path / "text.npy", np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="dtype <U1"):
        dask_points(tmp_path / "text.npy")
    with pytest.raises(FileNotFoundError, match="missing.npy' does not exist"):
        dask_points(tmp_path / "missing.npy")
    (tmp_path / "X.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="Unknown input format .* expected a .npy file, a zarr array"):
        dask_points(tmp_path / "X.csv")
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer"):
        dask_points(tmp_path / "X.npy", chunk_rows=0)
    with pytest.raises(ValueError, match="columns selects parquet columns"):
        dask_points(tmp_path / "X.npy", columns=["a"])


def test_zarr_chunks_merged_to_whole_rows(tmp_path):
    zarr = pytest.importorskip("zarr")
    X = points(250, 4, np.float32)
    stored = zarr.create_array(str(tmp_path / "X.zarr"), shape=X.shape, chunks=(60, 2), dtype=X.dtype)
    stored[:] = X
    read = dask_points(tmp_path / "X.zarr")
    assert read.chunks == ((60, 60, 60, 60, 10), (4,)) and read.dtype == np.float32
    np.testing.assert_array_equal(read.compute(scheduler="sync"), X)
    assert dask_points(tmp_path / "X.zarr", chunk_rows=100).chunks == ((100, 100, 50), (4,))
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("coordinates", shape=(4, 2), dtype="f8")
    with pytest.raises(ValueError, match=r"is a zarr group, not an array.*\['coordinates'\]"):
        dask_points(tmp_path / "group.zarr")


def test_parquet_row_groups_numeric_columns_and_nulls(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X = points(230, 3, np.float32)
    table = pa.table({"x": X[:, 0], "name": [f"p{i}" for i in range(230)], "y": X[:, 1], "z": X[:, 2]})
    pq.write_table(table, tmp_path / "X.parquet", row_group_size=100)
    read = dask_points(tmp_path / "X.parquet")
    assert read.chunks == ((100, 100, 30), (3,)) and read.dtype == np.float32
    np.testing.assert_array_equal(read.compute(scheduler="sync"), X)
    reordered = dask_points(tmp_path / "X.parquet", chunk_rows=115, columns=["z", "x"])
    assert reordered.chunks == ((115, 115), (2,))
    np.testing.assert_array_equal(reordered.compute(scheduler="sync"), X[:, [2, 0]])
    with pytest.raises(ValueError, match=r"Column 'name' .* is of type string; .* numeric ones: \['x', 'y', 'z'\]"):
        dask_points(tmp_path / "X.parquet", columns=["name", "x"])
    with pytest.raises(ValueError, match="Column 'w' .* is missing"):
        dask_points(tmp_path / "X.parquet", columns=["w"])

    # A folder of files, read in name order; an integer column with a null makes float64 with NaN.
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"a": pa.array([3, None], pa.int64()), "b": [0.5, 1.5]}), folder / "part-1.parquet")
    pq.write_table(pa.table({"a": pa.array([1, 2], pa.int64()), "b": [2.5, 3.5]}), folder / "part-0.parquet")
    read = dask_points(folder)
    assert read.dtype == np.float64 and read.chunks == ((2, 2), (2,))
    np.testing.assert_array_equal(read.compute(scheduler="sync"), [[1, 2.5], [2, 3.5], [3, 0.5], [np.nan, 1.5]])
    pq.write_table(pa.table({"label": ["a"]}), tmp_path / "text.parquet")
    with pytest.raises(ValueError, match=r"no numeric column .* \(its columns: \['label'\]"):
        dask_points(tmp_path / "text.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="folder without zarr metadata or .parquet files"):
        dask_points(tmp_path / "empty")
