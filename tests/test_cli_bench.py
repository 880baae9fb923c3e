"""``isogan bench`` end to end on small sizes (needs the isogan stages and estimator)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import isogan
from isogan.bench import data, meter, report
from isogan.cli import main


def _isogan_pipelines_available() -> bool:
    """Whether the estimator and the three stage functions run (False until they reach this branch)."""
    if not hasattr(isogan.Isomap, "fit_transform"):
        return False
    points = data.swiss_roll(20, "float64")
    try:
        isogan.Isomap(n_neighbors=5, n_components=2).fit_transform(points)
        graph = isogan.knn_graph(points, n_neighbors=5)
        isogan.classical_mds(isogan.geodesic_distances(graph), n_components=2)
    except NotImplementedError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _isogan_pipelines_available(), reason="isogan stages/estimator not merged yet")


def _read_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as csv_file:
        reader = csv.DictReader(csv_file)
        assert tuple(reader.fieldnames) == report.CSV_COLUMNS
        return list(reader)


def test_bench_end_to_end_small(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--sizes", "300", "500", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "speedup" in printed and "results.csv" in printed
    rows = _read_rows(out / "results.csv")
    assert [(row["n_samples"], row["stage"]) for row in rows] == [("300", "end_to_end"), ("500", "end_to_end")]
    for row in rows:
        assert row["dtype"] == "float64"
        for column in ("isogan_time_s", "sklearn_time_s", "speedup", "isogan_peak_mib", "sklearn_peak_mib"):
            assert float(row[column]) > 0, column
        assert float(row["parity_error"]) <= 1e-6
    document = json.loads((out / "results.json").read_text())
    assert document["errors"] == []
    assert len(document["measurements"]) == 4
    assert document["metadata"]["config"]["sizes"] == [300, 500]
    assert document["metadata"]["command"].startswith("isogan bench --sizes 300 500")
    assert (out / "scaling.png").stat().st_size > 0
    assert (out / "results.md").read_text().startswith("| N | dtype |")


@pytest.mark.slow
def test_bench_stages_float32(tmp_path):
    out = tmp_path / "bench"
    assert main(["bench", "--sizes", "300", "--out", str(out), "--dtype", "float32", "--stages"]) == 0
    rows = {row["stage"]: row for row in _read_rows(out / "results.csv")}
    assert set(rows) == {"end_to_end", "knn", "paths", "mds", "total"}
    for stage, row in rows.items():
        assert row["dtype"] == "float32"
        assert float(row["isogan_time_s"]) > 0 and float(row["sklearn_time_s"]) > 0
        assert float(row["parity_error"]) <= 1e-3, stage
    assert float(rows["total"]["isogan_time_s"]) == pytest.approx(
        sum(float(rows[stage]["isogan_time_s"]) for stage in meter.STAGES)
    )


def test_bench_without_sklearn(tmp_path):
    out = tmp_path / "bench"
    assert main(["bench", "--sizes", "300", "--out", str(out), "--no-sklearn"]) == 0
    (row,) = _read_rows(out / "results.csv")
    assert float(row["isogan_time_s"]) > 0
    assert np.isnan(float(row["sklearn_time_s"])) and np.isnan(float(row["parity_error"]))
