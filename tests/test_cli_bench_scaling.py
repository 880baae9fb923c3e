"""``isogan bench scaling`` on tiny sizes: rows, files, skips with reasons, time limit, bad options."""

from __future__ import annotations

import csv
import json
import math
import signal
import sys

import numpy as np
import pytest

import isogan
from isogan.bench import scaling as scaling_benchmark
from isogan.bench import scaling_report
from isogan.cli import main
from isogan.bench.scaling import CSV_COLUMNS, ScalingConfig


def _read_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as csv_file:
        reader = csv.DictReader(csv_file)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        return list(reader)


def _by_key(rows: list[dict]) -> dict[tuple[str, str, int], dict]:
    return {(row["method"], row["device"], int(row["n_samples"])): row for row in rows}


def test_scaling_cpu_runs_and_writes_files(tmp_path, capsys):
    out = tmp_path / "scaling"
    argv = ["bench", "scaling", "--sizes", "1000", "600", "--n-landmarks", "50", "--n-neighbors", "6", "--device", "cpu"]
    argv += ["--sklearn-max-size", "600", "--exact-max-size", "600", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "landmark_scaling.csv" in captured.out and "landmark_scaling.png" in captured.out
    # Progress is printed per run.
    assert "isogan landmark    cpu  N=600" in captured.err and "isogan landmark    cpu  N=1000" in captured.err

    rows = _read_rows(out / "landmark_scaling.csv")
    by_key = _by_key(rows)
    assert [int(row["n_samples"]) for row in rows] == [600, 600, 600, 1000, 1000, 1000]
    measured = [("landmark", "cpu", 600), ("exact", "cpu", 600), ("sklearn", "cpu", 600), ("landmark", "cpu", 1000)]
    for key in measured:
        row = by_key[key]
        assert row["status"] == "ok" and row["reason"] == "", key
        assert row["dtype"] == "float32" and row["n_neighbors"] == "6"
        assert float(row["total_s"]) > 0
        assert float(row["peak_rss_mib"]) > float(row["peak_above_baseline_mib"]) >= 0
        assert math.isnan(float(row["peak_gpu_mib"]))
        assert float(row["predicted_mib"]) > 0
        assert 0 <= float(row["residual_variance"]) < 0.02, key
    for size in (600, 1000):
        landmark_row = by_key[("landmark", "cpu", size)]
        assert landmark_row["n_landmarks"] == "50"
        stage_seconds = [float(landmark_row[f"{stage}_s"]) for stage in scaling_benchmark.LANDMARK_STAGES]
        assert all(seconds >= 0 for seconds in stage_seconds) and float(landmark_row["paths_s"]) > 0
        assert sum(stage_seconds) <= float(landmark_row["total_s"]) * 1.01
    # Above their caps the references are skipped, with the reason.
    assert by_key[("exact", "cpu", 1000)]["status"] == "skipped"
    assert "--exact-max-size" in by_key[("exact", "cpu", 1000)]["reason"]
    assert "--sklearn-max-size" in by_key[("sklearn", "cpu", 1000)]["reason"]
    assert "--sklearn-max-size" in captured.out

    document = json.loads((out / "landmark_scaling.json").read_text())
    assert document["metadata"]["command"].startswith("isogan bench scaling --sizes 1000 600 --n-landmarks 50")
    assert document["metadata"]["config"]["sizes"] == [600, 1000]
    assert len(document["measurements"]) == len(measured)
    assert len(document["rows"]) == len(rows)
    assert (out / "landmark_scaling.md").read_text().startswith("| N | method |")
    assert (out / "landmark_scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(isogan.cuda_available(), reason="checks the report on a machine without a usable GPU")
def test_scaling_cuda_without_gpu_is_skipped_with_reason(tmp_path, capsys):
    out = tmp_path / "scaling"
    assert main(["bench", "scaling", "--sizes", "600", "--n-landmarks", "50", "--device", "cuda", "--methods", "landmark", "exact", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    rows = _read_rows(out / "landmark_scaling.csv")
    assert [(row["method"], row["device"], row["status"]) for row in rows] == [("landmark", "cuda", "skipped"), ("exact", "cuda", "skipped")]
    reason = rows[0]["reason"]
    assert reason.startswith("CUDA is not usable: ") and len(reason) > len("CUDA is not usable: ")
    assert reason in captured.out and reason in captured.err
    assert (out / "landmark_scaling.png").stat().st_size > 0


def test_scaling_time_limit_kills_the_run_and_skips_larger_sizes(tmp_path, capsys):
    out = tmp_path / "scaling"
    argv = ["bench", "scaling", "--sizes", "600", "1000", "--n-landmarks", "50", "--device", "cpu", "--methods", "landmark"]
    assert main([*argv, "--timeout-per-size", "0.05", "--out", str(out)]) == 1
    first, second = _read_rows(out / "landmark_scaling.csv")
    assert first["status"] == "timeout" and "0.05 s time limit" in first["reason"]
    assert second["status"] == "skipped" and second["reason"] == "not run: timed out at N = 600"
    assert "failed or timed out" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("worker_script", "reason"),
    [
        ("echo 'Traceback (most recent call last):' >&2; echo 'MemoryError: simulated' >&2; exit 1", "MemoryError: simulated"),
        ("kill -KILL $$", "killed by SIGKILL (the kernel's out-of-memory killer sends SIGKILL)"),
    ],
)
def test_scaling_failed_run_is_reported_and_larger_sizes_skipped(worker_script, reason, tmp_path, monkeypatch, capsys):
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!/bin/sh\n{worker_script}\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    out = tmp_path / "scaling"
    argv = ["bench", "scaling", "--sizes", "600", "1000", "--n-landmarks", "50", "--device", "cpu", "--methods", "landmark"]
    assert main([*argv, "--out", str(out)]) == 1
    first, second = _read_rows(out / "landmark_scaling.csv")
    assert (first["status"], first["reason"]) == ("failed", reason)
    assert (second["status"], second["reason"]) == ("skipped", "not run: failed at N = 600")
    assert f"FAILED: {reason}" in capsys.readouterr().err


def test_scaling_worker_that_cannot_start_is_a_failed_row(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    out = tmp_path / "scaling"
    argv = ["bench", "scaling", "--sizes", "600", "--n-landmarks", "50", "--device", "cpu", "--methods", "landmark"]
    assert main([*argv, "--out", str(out)]) == 1
    (row,) = _read_rows(out / "landmark_scaling.csv")
    assert row["status"] == "failed" and row["reason"].startswith("could not start the worker process")


def test_scaling_refuses_runs_predicted_not_to_fit(tmp_path):
    out = tmp_path / "scaling"
    argv = ["bench", "scaling", "--sizes", "600", "--n-landmarks", "50", "--device", "cpu", "--methods", "landmark", "sklearn"]
    assert main([*argv, "--memory-limit-gib", "0.000001", "--out", str(out)]) == 0
    for row in _read_rows(out / "landmark_scaling.csv"):
        assert row["status"] == "skipped"
        assert row["reason"].startswith("predicted memory ") and "host memory available" in row["reason"]


def test_predicted_memory_of_one_million_points():
    config = ScalingConfig(n_landmarks=1000, dtype="float32")
    landmark_rows = 1000 * 1_000_000 * 4
    predicted = scaling_benchmark.predicted_bytes("landmark", 1_000_000, config)
    assert landmark_rows < predicted < 1.6 * landmark_rows
    assert scaling_benchmark.predicted_bytes("exact", 16_000, config) > 16_000**2 * 4
    assert scaling_benchmark.predicted_bytes("sklearn", 16_000, config) > 16_000**2 * 12
    with pytest.raises(ValueError, match="Unknown method"):
        scaling_benchmark.predicted_bytes("dense", 10, config)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sizes", "0"], "expected a positive integer, got 0"),
        (["--sizes", "ten"], "expected a positive integer, got 'ten'"),
        (["--device", "tpu"], "invalid choice: 'tpu'"),
        (["--methods", "umap"], "invalid choice: 'umap'"),
        (["--timeout-per-size", "-1"], "expected a positive number, got -1"),
        (["--timeout-per-size", "nan"], "expected a positive number, got nan"),
        (["--memory-limit-gib", "0"], "expected a positive number, got 0"),
        (["--dtype", "float16"], "invalid choice: 'float16'"),
    ],
)
def test_scaling_bad_options_are_argparse_errors(options, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "scaling", *options])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("usage: isogan bench scaling") and message in error


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sizes", "300", "--n-landmarks", "500"], "Expected n_landmarks <= every size, but n_landmarks = 500 and the smallest size is 300"),
        (["--sizes", "300", "--n-landmarks", "2"], "Expected n_landmarks >= n_components + 1, but n_landmarks = 2, n_components = 2"),
        (["--sizes", "10", "--n-landmarks", "5"], "Expected every size > n_neighbors, but the smallest size is 10 and n_neighbors = 10"),
    ],
)
def test_scaling_contradictory_options(options, message, tmp_path, capsys):
    assert main(["bench", "scaling", *options, "--out", str(tmp_path / "scaling")]) == 2
    assert capsys.readouterr().err == f"isogan bench scaling: error: {message}\n"
    assert not (tmp_path / "scaling").exists()


def test_plain_bench_options_still_parse_without_a_mode():
    import argparse

    from isogan.cli import bench

    parser = argparse.ArgumentParser(prog="isogan bench")
    bench.configure(parser)
    args = parser.parse_args(["--sizes", "300", "500", "--out", "x"])
    assert args.bench_mode is None and args.sizes == [300, 500] and args.dtype == ["float64"]
    args = parser.parse_args(["scaling", "--sizes", "300", "--device", "cpu"])
    assert args.bench_mode == "scaling" and args.sizes == [300] and args.device == ["cpu"] and args.dtype == "float32"


def test_failure_reason_names_the_signal_or_the_last_error_line():
    assert "SIGKILL" in scaling_benchmark._failure_reason(-signal.SIGKILL, "")
    assert "out-of-memory" in scaling_benchmark._failure_reason(-signal.SIGKILL, "")
    assert scaling_benchmark._failure_reason(1, "Traceback ...\nMemoryError: too big\n\n") == "MemoryError: too big"
    assert scaling_benchmark._failure_reason(3, "") == "exit status 3"


def _row(method: str, device: str, n_samples: int, total_s: float, peak_mib: float, gpu_mib: float = float("nan")) -> dict:
    config = ScalingConfig(n_landmarks=100)
    row = scaling_benchmark._row(method, device, n_samples, config, "ok", "", 1)
    row.update(total_s=total_s, peak_above_baseline_mib=peak_mib, peak_rss_mib=peak_mib + 150, peak_gpu_mib=gpu_mib, residual_variance=1e-4)
    return row


def test_plot_scaling_curve_with_every_method_and_device(tmp_path):
    rows = []
    for size in (10_000, 100_000, 1_000_000):
        rows.append(_row("landmark", "cpu", size, size / 1e4, size / 1e3))
        rows.append(_row("landmark", "cuda", size, size / 1e6, size / 1e3, gpu_mib=size / 500))
    rows.append(_row("exact", "cpu", 10_000, 3.0, 400.0))
    rows.append(_row("exact", "cuda", 10_000, 0.5, 400.0, gpu_mib=500.0))
    rows.append(_row("sklearn", "cpu", 10_000, 30.0, 1200.0))
    skipped = scaling_benchmark._row("sklearn", "cpu", 100_000, ScalingConfig(), "skipped", "cap", 1)
    path = tmp_path / "curve.png"
    scaling_report.plot_scaling_curve([*rows, skipped], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = scaling_report.format_scaling_table([*rows, skipped], markdown=True)
    assert table.count("\n| ") == len(rows) + 1 and table.endswith("- N=100000 scikit-learn exact cpu: skipped: cap")
    empty = tmp_path / "empty.png"
    scaling_report.plot_scaling_curve([skipped], empty)
    assert empty.stat().st_size > 0


@pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")
def test_device_memory_sampler_runs_beside_a_cuda_kernel():
    points = np.random.default_rng(0).random((20000, 3), dtype=np.float32)
    with scaling_benchmark.DeviceMemorySampler(interval_s=0.001) as sampler:
        isogan.knn_graph(points, n_neighbors=10, device="cuda")
    assert sampler.peak_bytes >= 0


def test_scaling_on_shape_images_with_approximate_search(tmp_path, capsys):
    out = tmp_path / "scaling"
    argv = ["bench", "scaling", "--dataset", "shapes", "--neighbors-algorithm", "approximate", "--sizes", "1500"]
    argv += ["--n-landmarks", "60", "--n-components", "4", "--device", "cpu", "--methods", "landmark", "exact"]
    argv += ["--out", str(out)]
    assert main(argv) == 0
    assert "approx. kNN" in capsys.readouterr().out
    by_key = _by_key(_read_rows(out / "landmark_scaling.csv"))
    landmark_row, exact_row = by_key[("landmark", "cpu", 1500)], by_key[("exact", "cpu", 1500)]
    assert landmark_row["status"] == exact_row["status"] == "ok"
    assert landmark_row["dataset"] == exact_row["dataset"] == "shapes"
    assert (landmark_row["neighbors_algorithm"], exact_row["neighbors_algorithm"]) == ("approximate", "exact")
    # Scored against the four true factors: landmark Isomap on the approximate graph within 0.1 of
    # exact Isomap on the exact one.
    exact_variance = float(exact_row["residual_variance"])
    assert 0 <= exact_variance < 0.6
    assert abs(float(landmark_row["residual_variance"]) - exact_variance) < 0.1
    document = json.loads((out / "landmark_scaling.json").read_text())
    assert "--dataset shapes --neighbors-algorithm approximate" in document["metadata"]["command"]


def test_scaling_approximate_search_without_faiss_is_refused_up_front(tmp_path, monkeypatch, capsys):
    def missing_faiss():
        raise ImportError("algorithm='approximate' needs faiss: pip install 'isogan[approx]'")

    monkeypatch.setattr("isogan.cli.bench_scaling.faiss_module", missing_faiss)
    argv = ["bench", "scaling", "--neighbors-algorithm", "approximate", "--sizes", "600", "--n-landmarks", "50"]
    assert main([*argv, "--out", str(tmp_path / "scaling")]) == 2
    assert "isogan[approx]" in capsys.readouterr().err
    assert not (tmp_path / "scaling").exists()


def test_predicted_memory_counts_the_approximate_index():
    exact_search = ScalingConfig(dataset="shapes", n_landmarks=1000)
    approximate = ScalingConfig(dataset="shapes", n_landmarks=1000, neighbors_algorithm="approximate")
    extra = scaling_benchmark.predicted_bytes("landmark", 1_000_000, approximate) - scaling_benchmark.predicted_bytes(
        "landmark", 1_000_000, exact_search
    )
    assert 1_000_000 * 784 * 4 < extra < 1.6 * 1_000_000 * 784 * 4
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
        ScalingConfig(dataset="mnist").check()
