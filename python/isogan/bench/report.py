"""Tables, CSV/JSON and the log-log plot of ``isogan bench`` results."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from isogan.bench.meter import IMPLEMENTATIONS, STAGES

if TYPE_CHECKING:
    from isogan.bench.harness import BenchmarkResult

# Columns of results.csv, in order.
CSV_COLUMNS = (
    "n_samples",
    "dtype",
    "stage",
    "isogan_time_s",
    "isogan_time_min_s",
    "sklearn_time_s",
    "sklearn_time_min_s",
    "speedup",
    "isogan_peak_mib",
    "sklearn_peak_mib",
    "memory_ratio",
    "parity_error",
    "load_1min",
)


TABLE_HEADER = ("N", "dtype", "stage", "isogan s", "sklearn s", "speedup", "isogan MiB", "sklearn MiB", "mem ratio", "parity", "load")


def _table_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """Return the formatted cells of one result row, in :data:`TABLE_HEADER` order."""
    return (
        str(row["n_samples"]),
        row["dtype"],
        row["stage"],
        format_number(row["isogan_time_s"], ".3f"),
        format_number(row["sklearn_time_s"], ".3f"),
        format_number(row["speedup"], ".1f", "x"),
        format_number(row["isogan_peak_mib"], ".1f"),
        format_number(row["sklearn_peak_mib"], ".1f"),
        format_number(row["memory_ratio"], ".2f"),
        format_number(row["parity_error"], ".1e"),
        format_number(row["load_1min"], ".2f"),
    )


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Format result rows as a fixed-width text table.

    Parameters
    ----------
    rows : sequence of dict
        Rows from :func:`summarize`.

    Returns
    -------
    str
    """
    return "\n".join(text_table_lines(TABLE_HEADER, [_table_cells(row) for row in rows]))


def format_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Format result rows as a Markdown table (for RESULTS.md and the README).

    Parameters
    ----------
    rows : sequence of dict
        Rows from :func:`summarize`.

    Returns
    -------
    str
    """
    return "\n".join(markdown_table_lines(TABLE_HEADER, [_table_cells(row) for row in rows]))


def text_table_lines(header: Sequence[str], cell_rows: Sequence[Sequence[str]]) -> list[str]:
    """Lay out a header and rows of cells as right-aligned fixed-width lines, a rule under the header.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    cell_rows : sequence of sequence of str
        Formatted cells, one sequence per row, in ``header`` order.

    Returns
    -------
    list of str
        One line per row, the header and its rule first.
    """
    lines = [header, *cell_rows]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    text = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return text


def markdown_table_lines(header: Sequence[str], cell_rows: Sequence[Sequence[str]]) -> list[str]:
    """Lay out a header and rows of cells as the lines of a Markdown table.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    cell_rows : sequence of sequence of str
        Formatted cells, one sequence per row, in ``header`` order.

    Returns
    -------
    list of str
        One line per row, the header and its separator first.
    """
    lines = ["| " + " | ".join(line) + " |" for line in (header, *cell_rows)]
    lines.insert(1, "|" + "---|" * len(header))
    return lines


def format_number(value: float, spec: str, suffix: str = "") -> str:
    """``value`` formatted with ``spec`` and ``suffix``, or '-' when it was not measured (None or NaN)."""
    return "-" if value is None or np.isnan(value) else f"{value:{spec}}{suffix}"


def write_results(result: BenchmarkResult, metadata: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``results.csv``, ``results.json``, ``results.md`` and ``scaling.png`` into ``out_dir``.

    Parameters
    ----------
    result : BenchmarkResult
        Rows go to the CSV, the Markdown table and the plot; rows, raw runs and errors to the JSON.
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
    paths = {"csv": out / "results.csv", "json": out / "results.json", "markdown": out / "results.md", "plot": out / "scaling.png"}
    raw = [{key: value for key, value in asdict(run).items() if key != "arrays_path"} for run in result.measurements]
    document = {"metadata": metadata, "rows": [nan_to_none(row) for row in result.rows], "measurements": raw, "errors": result.errors}
    write_csv_and_json(paths["csv"], CSV_COLUMNS, result.rows, paths["json"], document)
    paths["markdown"].write_text(format_markdown(result.rows) + "\n", encoding="utf-8")
    plot_scaling(result.rows, paths["plot"])
    return paths


def write_csv_and_json(
    csv_path: Path, csv_columns: Sequence[str], rows: Sequence[dict[str, Any]], json_path: Path, document: dict[str, Any]
) -> None:
    """Write result rows as CSV and a document as strict JSON (NaN is refused: use :func:`_nan_to_none`).

    Parameters
    ----------
    csv_path : pathlib.Path
        CSV file to write, one line per row under a header of ``csv_columns``.
    csv_columns : sequence of str
        Keys of the rows, in column order.
    rows : sequence of dict
        Result rows.
    json_path : pathlib.Path
        JSON file to write.
    document : dict
        What goes into the JSON file.
    """

    with open(csv_path, "w", newline="", encoding="utf-8") as csv_file:
        writer = csv.DictWriter(csv_file, fieldnames=csv_columns)
        writer.writeheader()
        writer.writerows(rows)
    with open(json_path, "w", encoding="utf-8") as json_file:
        json.dump(document, json_file, indent=2, allow_nan=False)


def nan_to_none(row: dict[str, Any]) -> dict[str, Any]:
    """Return ``row`` with NaN floats as None, so results.json is strict JSON (null = not measured)."""
    return {key: None if isinstance(value, float) and np.isnan(value) else value for key, value in row.items()}


def plot_scaling(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Draw log-log time and peak memory against N for isogan and scikit-learn.

    Parameters
    ----------
    rows : sequence of dict
        Summary rows; end-to-end rows give the solid (isogan) and dashed (scikit-learn) lines,
        per-stage rows of isogan give thin dotted lines.
    path : path-like
        PNG file to write.
    """
    from isogan._plotting import pyplot

    plt = pyplot()
    import matplotlib.ticker

    colors = {("isogan", "float64"): "tab:blue", ("isogan", "float32"): "tab:cyan", ("sklearn", "float64"): "tab:red", ("sklearn", "float32"): "tab:orange"}
    stage_markers = {"knn": "v", "paths": "^", "mds": "D"}
    figure, (time_axes, memory_axes) = plt.subplots(1, 2, figsize=(11, 4.5))
    for dtype in sorted({row["dtype"] for row in rows}, reverse=True):
        for stage in ("end_to_end", *STAGES):
            selected = sorted((row for row in rows if row["dtype"] == dtype and row["stage"] == stage), key=lambda row: row["n_samples"])
            for implementation in IMPLEMENTATIONS:
                if stage != "end_to_end" and implementation == "sklearn":
                    continue
                points = [(row["n_samples"], row[f"{implementation}_time_s"], row[f"{implementation}_peak_mib"]) for row in selected]
                points = [point for point in points if not np.isnan(point[1])]
                if not points:
                    continue
                sizes, times, peaks = zip(*points, strict=True)
                style = {
                    "color": colors.get((implementation, dtype), "tab:gray"),
                    "linestyle": ("-" if implementation == "isogan" else "--") if stage == "end_to_end" else ":",
                    "marker": ("o" if implementation == "isogan" else "s") if stage == "end_to_end" else stage_markers[stage],
                    "linewidth": 2 if stage == "end_to_end" else 1,
                }
                label = f"{implementation} {dtype}" + ("" if stage == "end_to_end" else f" ({stage} stage)")
                time_axes.plot(sizes, times, label=label, **style)
                if stage == "end_to_end":
                    memory_axes.plot(sizes, peaks, label=label, **style)
    all_sizes = sorted({row["n_samples"] for row in rows})
    for axes, ylabel in ((time_axes, "wall time (s)"), (memory_axes, "peak memory above baseline (MiB)")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(all_sizes, [str(size) for size in all_sizes])
        axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axes.set_xlabel("N (swiss roll points)")
        axes.set_ylabel(ylabel)
        axes.grid(True, which="major", alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
    time_axes.set_title("Isomap fit_transform time")
    memory_axes.set_title("Isomap fit_transform peak memory")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
