"""Tests of the measuring library behind ``isogan bench`` (scikit-learn side and result files)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from isogan.bench import data, meter, report
from isogan.bench import harness as benchmarking
from isogan.bench.data import relative_max_error
from isogan.bench.harness import BenchmarkResult, RunParams
from isogan.bench.meter import StageMeter


def test_relative_max_error_values():
    reference = np.array([[1.0, -4.0], [2.0, 0.0]])
    assert relative_max_error(reference, reference) == 0.0
    assert relative_max_error(reference + 0.4, reference) == pytest.approx(0.1)
    assert relative_max_error(reference.astype(np.float32), reference) == 0.0


def test_relative_max_error_mismatches_are_infinite():
    reference = np.ones((3, 2))
    assert relative_max_error(np.ones((2, 3)), reference) == np.inf
    assert relative_max_error(np.array([np.nan, 1.0]), np.array([1.0, 1.0])) == np.inf
    assert relative_max_error(np.array([1.0]), np.array([0.0])) == np.inf
    assert relative_max_error(np.array([np.inf, 1.0]), np.array([np.inf, 2.0])) == 0.5


def test_sorted_neighbor_distances_pads_short_rows():
    import scipy.sparse

    graph = scipy.sparse.csr_matrix(np.array([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    rows = data.sorted_neighbor_distances(graph, 2)
    np.testing.assert_array_equal(rows, [[1.0, 3.0], [2.0, np.inf], [np.inf, np.inf]])


def test_path_check_rows_are_in_range():
    assert data.path_check_rows(1).tolist() == [0]
    rows = data.path_check_rows(10_000)
    assert rows[0] == 0 and rows[-1] == 9_999 and rows.size == data.PATH_CHECK_ROWS


def test_stage_meter_sees_a_known_allocation():
    meter = StageMeter()
    meter.start()
    n_bytes = 64 * 1024 * 1024
    with meter.stage("alloc"):
        block = np.ones(n_bytes // 8)
    del block
    with meter.stage("nothing"):
        pass
    assert meter.peak_method == "clear_refs"
    assert n_bytes <= meter.peak_bytes["alloc"] < n_bytes + 16 * 1024 * 1024
    # clear_refs reset the peak, so the second stage does not inherit the first one's.
    assert meter.peak_bytes["nothing"] < 16 * 1024 * 1024
    assert meter.times_s["alloc"] > 0


def test_measure_sklearn_stages_in_a_worker(tmp_path):
    run = benchmarking.measure("sklearn", "stages", 400, "float32", RunParams(), tmp_path)
    assert set(run.times_s) == {"knn", "paths", "mds", "total"}
    assert all(seconds > 0 for seconds in run.times_s.values())
    assert run.times_s["total"] == pytest.approx(sum(run.times_s[stage] for stage in meter.STAGES))
    # The float32 geodesic matrix (400 x 400) is resident during the mds stage.
    assert run.peak_bytes["mds"] >= 400 * 400 * 4
    assert run.peak_bytes["total"] == max(run.peak_bytes[stage] for stage in meter.STAGES)
    with np.load(run.arrays_path) as arrays:
        assert arrays["embedding"].shape == (400, 2)
        assert arrays["knn_distances"].shape == (400, 10)
        assert arrays["path_rows"].shape == (data.PATH_CHECK_ROWS, 400)


def test_measure_rejects_unknown_pipeline(tmp_path):
    with pytest.raises(ValueError, match="Unknown implementation"):
        benchmarking.measure("numpy", "end_to_end", 100, "float64", RunParams(), tmp_path)


def test_failed_worker_is_recorded_not_fatal(tmp_path):
    # n_neighbors > n_samples fails in both workers; the benchmark records that and goes on.
    config = benchmarking.BenchmarkConfig(sizes=[5], params=RunParams(n_neighbors=10))
    messages = []
    result = benchmarking.run_benchmark(config, tmp_path, progress=messages.append)
    assert [error["implementation"] for error in result.errors] == ["isogan", "sklearn"]
    assert all("N=5 float64 failed" in error["error"] for error in result.errors)
    assert result.rows == [] and result.measurements == []
    assert sum(message.startswith("FAILED") for message in messages) == 2


def _rows() -> list[dict]:
    rows = []
    for n_samples, isogan_time, sklearn_time in ((1000, 0.1, 0.5), (2000, 0.3, 2.0)):
        for stage in ("end_to_end", "knn", "paths", "mds", "total"):
            rows.append(
                {
                    "n_samples": n_samples,
                    "dtype": "float64",
                    "stage": stage,
                    "isogan_time_s": isogan_time,
                    "isogan_time_min_s": isogan_time,
                    "sklearn_time_s": sklearn_time,
                    "sklearn_time_min_s": sklearn_time,
                    "speedup": sklearn_time / isogan_time,
                    "isogan_peak_mib": 10.0,
                    "sklearn_peak_mib": 30.0,
                    "memory_ratio": 1 / 3,
                    "parity_error": 1e-9,
                    "load_1min": 0.5,
                }
            )
    return rows


def test_write_results_files(tmp_path):
    rows = _rows()
    rows[0] = {**rows[0], "sklearn_time_s": float("nan")}
    paths = report.write_results(BenchmarkResult(rows=rows), {"command": "isogan bench"}, tmp_path / "out")
    with open(paths["csv"], newline="", encoding="utf-8") as csv_file:
        reader = csv.DictReader(csv_file)
        assert tuple(reader.fieldnames) == report.CSV_COLUMNS
        assert len(list(reader)) == 10
    document = json.loads(paths["json"].read_text())
    assert document["metadata"]["command"] == "isogan bench"
    assert document["errors"] == [] and len(document["rows"]) == 10
    # Strict JSON: what was not measured is null, not NaN.
    assert document["rows"][0]["sklearn_time_s"] is None
    assert "NaN" not in paths["json"].read_text()
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = paths["markdown"].read_text().splitlines()
    assert len(markdown) == 12 and markdown[0].startswith("| N | dtype | stage |")


def test_format_table_shows_missing_values_as_dash():
    rows = _rows()[:1]
    rows[0] = {**rows[0], "sklearn_time_s": float("nan"), "speedup": float("nan")}
    table = report.format_table(rows)
    header, rule, line = table.splitlines()
    assert "speedup" in header and set(rule) <= {"-", " "}
    assert " - " in line and "0.100" in line
