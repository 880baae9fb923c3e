"""Landmark rows past the memory budget spill to disk and give the identical embedding."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from sklearn.datasets import make_swiss_roll

import isogan
from isogan._backend import memory, spill


@pytest.fixture(scope="module")
def swiss_roll():
    X, _ = make_swiss_roll(3000, random_state=0)
    return X


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("landmark_method", ["maxmin", "random"])
def test_spilled_fit_and_transform_equal_in_memory(swiss_roll, dtype, landmark_method):
    X = swiss_roll.astype(dtype)
    options = dict(n_neighbors=10, n_landmarks=70, landmark_method=landmark_method, random_state=0)
    in_memory = isogan.Isomap(**options).fit(X)
    # 20 KB: blocks of a few rows (a row is 12-24 KB), a block count that does not divide L.
    spilled = isogan.Isomap(**options, memory_budget=20_000).fit(X)
    assert isinstance(spilled.landmark_model_.landmark_geodesic, np.memmap)
    assert not isinstance(in_memory.landmark_model_.landmark_geodesic, np.memmap)
    np.testing.assert_array_equal(spilled.embedding_, in_memory.embedding_)
    np.testing.assert_array_equal(spilled.landmark_model_.landmark_geodesic, in_memory.landmark_model_.landmark_geodesic)
    np.testing.assert_array_equal(spilled.transform(X[:40] + 0.01), in_memory.transform(X[:40] + 0.01))


def test_spill_reads_stay_within_one_block(swiss_roll, monkeypatch):
    reads = collections.Counter()
    original = spill.SpilledRows.columns

    def counting_columns(self, start, stop):
        block = original(self, start, stop)
        reads["max"] = max(reads["max"], block.nbytes)
        return block

    monkeypatch.setattr(spill.SpilledRows, "columns", counting_columns)
    isogan.Isomap(n_neighbors=10, n_landmarks=50, random_state=0, memory_budget=100_000).fit(swiss_roll)
    assert 0 < reads["max"] <= 25_000 + 50 * 8  # a quarter of the budget, rounded to whole columns


def test_spill_disk_is_checked_before_the_fit(swiss_roll, monkeypatch):
    from isogan._backend import cpu

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(spill.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    searches = []
    monkeypatch.setattr(cpu.CpuBackend, "neighbor_graph", lambda *args, **kwargs: searches.append("knn"))
    # 50 rows x 3000 points x 8 bytes: all of them on disk.
    with pytest.raises(OSError, match="needs 1,200,000 bytes .* of disk .* only 1,000 bytes are free"):
        isogan.Isomap(n_neighbors=10, n_landmarks=50, memory_budget=10_000).fit(swiss_roll)
    assert searches == []


def test_prediction_counts_one_block_in_memory_and_all_rows_on_disk():
    from isogan._backend.cpu import CpuBackend

    points = np.empty((1_000_000, 3), dtype=np.float32)
    rows = 500 * 1_000_000 * 4
    in_memory = CpuBackend(memory_budget=rows).predict_fit_bytes(points, 10, 500, 2)
    spilled = CpuBackend(memory_budget=rows - 1).predict_fit_bytes(points, 10, 500, 2)
    assert in_memory.disk == 0 and spilled.disk == rows
    # A quarter of the budget in memory instead of all the rows; the rest of the footprint is the same.
    assert in_memory.memory - spilled.memory == rows - (rows - 1) // 4
    assert spilled.memory == memory.landmark_fit_host_bytes(1_000_000, 500, 10, 2, 4, rows_in_memory=(rows - 1) // 4)


def test_functional_landmark_isomap_spills_out_of_core_input(swiss_roll, tmp_path):
    path = tmp_path / "points.npy"
    np.save(path, swiss_roll)
    # Read from disk in blocks of 1000 rows both times (MaxMin then runs on a pool of 1000 points).
    options = dict(n_landmarks=60, n_neighbors=10, random_state=0, chunk_rows=1000)
    in_memory = isogan.landmark.landmark_isomap(str(path), **options)
    spilled = isogan.landmark.landmark_isomap(str(path), **options, memory_budget=30_000)
    assert isinstance(spilled.landmark_geodesic, np.memmap)
    np.testing.assert_array_equal(spilled.landmark_geodesic, in_memory.landmark_geodesic)
    np.testing.assert_array_equal(spilled.embedding, in_memory.embedding)


def test_memory_check_predicts_the_spilled_footprint(monkeypatch):
    # Rows of 1M x 1000 float32 (4 GB) do not fit 2 GB, but one spill block and the graph do.
    monkeypatch.setattr(memory, "available_host_bytes", lambda: 2 * 2**30)
    from isogan._backend.cpu import CpuBackend

    points = np.empty((1_000_000, 3), dtype=np.float32)
    CpuBackend(memory_budget=2**30).check_fit_memory(points, 10, 1000, 2)
    with pytest.raises(MemoryError, match="landmark geodesic rows"):
        CpuBackend(memory_budget=2**33).check_fit_memory(points, 10, 1000, 2)


def test_spill_decision_is_the_one_checked_before_the_fit(swiss_roll, monkeypatch):
    # Plenty of memory when the fit is checked, almost none once the graph is built: the rows the
    # check placed in memory must stay there (a late spill would skip the disk check).
    from isogan._backend import cpu

    readings = iter([2**40])
    monkeypatch.setattr(cpu, "available_host_bytes", lambda: next(readings, 1000))
    backend = cpu.CpuBackend()
    points = np.ascontiguousarray(swiss_roll)
    backend.check_fit_memory(points, 10, 50, 2)
    graph = backend.neighbor_graph(points, 10, chunk_rows=points.shape[0])
    rows = backend.landmark_rows(graph, np.arange(50), path_method="auto", show=False)
    assert isinstance(rows, np.ndarray)
    np.testing.assert_array_equal(rows, isogan.geodesic_distances(graph, indices=np.arange(50), device="cpu"))


@pytest.mark.parametrize("special", [None, np.inf, np.nan])
def test_spilled_rows_track_largest_and_kept_columns(special):
    from isogan._backend.cpu import CpuBackend

    rows = np.random.default_rng(0).random((7, 50)).astype(np.float32)
    if special is not None:
        rows[4, 13] = special
    kept_columns = np.array([31, 2, 49, 13, 0, 7, 20])
    backend = CpuBackend()
    for kept in (kept_columns, None):
        spilled = spill.SpilledRows(rows.shape, rows.dtype, block_bytes=7 * 4 * 9, kept_columns=kept)
        for start in range(0, 7, 3):
            spilled.write_rows(start, rows[start : start + 3])
        np.testing.assert_array_equal(backend.rows_largest(spilled), rows.max())
        np.testing.assert_array_equal(backend.landmark_block(spilled, kept_columns),
                                      rows[:, kept_columns].astype(np.float64))
        # Columns other than the kept ones are read back from the file.
        np.testing.assert_array_equal(backend.landmark_block(spilled, kept_columns[::-1]),
                                      rows[:, kept_columns[::-1]].astype(np.float64))
        spilled.close()


def test_spilled_fit_maps_the_file_only_for_the_model(swiss_roll, monkeypatch):
    # Gathering the landmark block through a memory map would fault in most of the file.
    mapped = []
    original = spill.SpilledRows.as_array

    def counting_as_array(self):
        mapped.append(self.shape)
        return original(self)

    monkeypatch.setattr(spill.SpilledRows, "as_array", counting_as_array)
    isogan.Isomap(n_neighbors=10, n_landmarks=50, random_state=0, memory_budget=100_000).fit(swiss_roll)
    assert mapped == [(50, swiss_roll.shape[0])]
