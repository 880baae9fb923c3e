"""Output of the scaling benchmark (``isogan bench scaling``): tables, result files and the plot.

The rows come from :func:`isogan.bench.scaling.run_scaling`; the shared table layouts, number
formats and CSV/JSON writer from :mod:`isogan.bench.report`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from isogan.bench import report
from isogan.bench.scaling import CSV_COLUMNS, METHOD_LABELS, ScalingResult

TABLE_HEADER = ("N", "method", "device", "status", "total s", "knn s", "landmarks s", "paths s", "mds s", "peak RSS MiB", "above base MiB", "GPU MiB", "resid. var.", "load")


def _table_cells(row: dict[str, Any]) -> tuple[str, ...]:
    fmt = report.format_number
    return (
        str(row["n_samples"]),
        METHOD_LABELS[row["method"]] + (f" L={row['n_landmarks']}" if row["method"] == "landmark" else "")
        + (" approx. kNN" if row.get("neighbors_algorithm") == "approximate" else ""),
        row["device"],
        row["status"],
        fmt(row["total_s"], ".2f"),
        fmt(row["knn_s"], ".2f"),
        fmt(row["landmarks_s"], ".2f"),
        fmt(row["paths_s"], ".2f"),
        fmt(row["mds_s"], ".2f"),
        fmt(row["peak_rss_mib"], ".0f"),
        fmt(row["peak_above_baseline_mib"], ".0f"),
        fmt(row["peak_gpu_mib"], ".0f"),
        fmt(row["residual_variance"], ".1e"),
        fmt(row["load_1min"], ".1f"),
    )


def format_scaling_table(rows: Sequence[dict[str, Any]], markdown: bool = False) -> str:
    """Format result rows as a text (or Markdown) table, followed by the reasons of unmeasured rows.

    Parameters
    ----------
    rows : sequence of dict
        Rows from :func:`run_scaling`.
    markdown : bool, default=False
        Markdown table instead of fixed-width text.

    Returns
    -------
    str
    """
    layout = report.markdown_table_lines if markdown else report.text_table_lines
    lines = layout(TABLE_HEADER, [_table_cells(row) for row in rows])
    notes = [f"- N={row['n_samples']} {METHOD_LABELS[row['method']]} {row['device']}: {row['status']}: {row['reason']}" for row in rows if row["status"] != "ok"]
    return "\n".join(lines + ([""] + notes if notes else []))


def write_scaling_results(result: ScalingResult, metadata: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``landmark_scaling.{csv,json,md,png}`` into ``out_dir``.

    Parameters
    ----------
    result : ScalingResult
    metadata : dict
        Machine, command and configuration (kept in the JSON).
    out_dir : path-like
        Created if missing.

    Returns
    -------
    dict of str to pathlib.Path
        Paths written, keyed 'csv', 'json', 'markdown', 'plot'.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"landmark_scaling.{suffix}" for name, suffix in (("csv", "csv"), ("json", "json"), ("markdown", "md"), ("plot", "png"))}
    document = {
        "metadata": metadata,
        "rows": [report.nan_to_none(row) for row in result.rows],
        "measurements": [report.nan_to_none(measurement) for measurement in result.measurements],
    }
    report.write_csv_and_json(paths["csv"], CSV_COLUMNS, result.rows, paths["json"], document)
    paths["markdown"].write_text(format_scaling_table(result.rows, markdown=True) + "\n", encoding="utf-8")
    plot_scaling_curve(result.rows, paths["plot"])
    return paths


def _count_text(count: int) -> str:
    """A point count as a short tick label: 300, 10k, 1M, 2.5M."""
    for divisor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= divisor:
            return f"{count / divisor:g}{suffix}"
    return str(count)


def plot_scaling_curve(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Draw log-log time and peak memory against N, one line per method and device.

    The time panel carries O(N) and O(N log N) guide lines through the first measured landmark
    point (or the first measured point when no landmark run succeeded); the memory panel an O(N)
    guide. Peak memory is RSS above the worker's baseline (solid) and, for CUDA runs, device memory
    (dotted).

    Parameters
    ----------
    rows : sequence of dict
        Rows from :func:`run_scaling`; only rows with status 'ok' are drawn.
    path : path-like
        PNG file to write.
    """
    from isogan._plotting import pyplot

    plt = pyplot()
    import matplotlib.ticker

    colors = {("landmark", "cpu"): "tab:blue", ("landmark", "cuda"): "tab:green", ("exact", "cpu"): "tab:purple", ("exact", "cuda"): "tab:olive", ("sklearn", "cpu"): "tab:red"}
    measured = [row for row in rows if row["status"] == "ok"]
    figure, (time_axes, memory_axes) = plt.subplots(1, 2, figsize=(12, 4.8))
    for method, device in dict.fromkeys((row["method"], row["device"]) for row in measured):
        series = sorted((row for row in measured if row["method"] == method and row["device"] == device), key=lambda row: row["n_samples"])
        sizes = [row["n_samples"] for row in series]
        label = f"{METHOD_LABELS[method]}" + (f" L={series[0]['n_landmarks']}" if method == "landmark" else "") + f" ({device})"
        style = {"color": colors[(method, device)], "marker": "o" if method == "landmark" else "s", "linestyle": "-" if method == "landmark" else "--"}
        time_axes.plot(sizes, [row["total_s"] for row in series], label=label, **style)
        memory_axes.plot(sizes, [max(row["peak_above_baseline_mib"], 1e-3) for row in series], label=label + " RSS", **style)
        if device == "cuda":
            memory_axes.plot(sizes, [row["peak_gpu_mib"] for row in series], label=label + " GPU", color=style["color"], marker="^", linestyle=":")
    anchors = [row for row in measured if row["method"] == "landmark"] or measured
    if anchors:
        anchor = min(anchors, key=lambda row: (row["n_samples"], row["device"]))
        all_sizes = sorted({row["n_samples"] for row in rows})
        guide_sizes = np.geomspace(min(all_sizes), max(all_sizes), 32)
        scale = guide_sizes / anchor["n_samples"]
        log_scale = np.log(guide_sizes) / np.log(anchor["n_samples"])
        time_axes.plot(guide_sizes, anchor["total_s"] * scale, color="gray", linestyle=":", linewidth=1, label="O(N) guide")
        time_axes.plot(guide_sizes, anchor["total_s"] * scale * log_scale, color="gray", linestyle="-.", linewidth=1, label="O(N log N) guide")
        memory_axes.plot(guide_sizes, max(anchor["peak_above_baseline_mib"], 1e-3) * scale, color="gray", linestyle=":", linewidth=1, label="O(N) guide")
    dataset = rows[0]["dataset"] if rows else "swiss-roll"
    setting = f"{dataset} {rows[0]['dtype']}, k = {rows[0]['n_neighbors']}" if rows else dataset
    tick_sizes = sorted({row["n_samples"] for row in rows})
    for axes, ylabel, title in (
        (time_axes, "wall time (s)", f"Isomap fit time ({setting})"),
        (memory_axes, "peak memory above baseline (MiB)", f"Isomap fit peak memory ({setting})"),
    ):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(tick_sizes, [_count_text(size) for size in tick_sizes])
        axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axes.set_xlabel(f"N ({dataset} points)")
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.grid(True, which="major", alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

