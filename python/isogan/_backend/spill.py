"""Landmark rows on disk: the (L, N) geodesic rows of a fit too large for its memory budget.

The rows are written once, block of landmarks by block, into an unlinked temporary file (the
disk is given back when the last reader closes, even if the process dies) and read back by
blocks of columns with plain ``pread`` calls, so the process's memory holds one block at a time.
Spilling was chosen over recomputing the rows in a second pass: the shortest paths are the
fit's dominant cost (minutes at 10M points), while writing and re-reading the rows once costs
seconds per 10 GB on a local disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator

import numpy as np

__all__ = ["SpilledRows", "check_spill_disk"]


def check_spill_disk(n_bytes: int, directory: str | None = None) -> None:
    """Refuse up front a spill that the temporary directory cannot hold.

    Raises
    ------
    OSError
        Naming the bytes needed, the bytes free and where (set ``TMPDIR`` to another disk).
    """
    directory = directory or tempfile.gettempdir()
    free = shutil.disk_usage(directory).free
    if n_bytes > free:
        raise OSError(
            f"Spilling the landmark geodesic rows needs {n_bytes:,} bytes ({n_bytes / 2**30:.2f} GiB) of disk in "
            f"{directory} but only {free:,} bytes are free. Set TMPDIR to a larger disk, use fewer landmarks, "
            "float32 input, or a larger memory budget."
        )


class SpilledRows:
    """An (L, N) row-major array in an unlinked temporary file.

    Parameters
    ----------
    shape : tuple (n_landmarks, n_samples)
        Extents.
    dtype : numpy.dtype
        float32 or float64.
    block_bytes : int
        Bytes of rows held in memory at a time when they are read back (:meth:`column_blocks`).
    directory : str, optional
        Where the file lives (default: ``tempfile.gettempdir()``, i.e. ``TMPDIR``).
    kept_columns : ndarray of int, optional
        Columns copied into memory as the rows are written (:attr:`kept`), e.g. the landmarks'
        own columns: gathering them afterwards from the file would touch a page of every row
        for each column, i.e. most of the file (the process's resident memory grows by it, as
        mapped file pages count in RSS).

    Attributes
    ----------
    largest : numpy scalar or None
        Largest value written so far (NaN when one is NaN), None before the first row.
    rows_written : int
        Rows written so far (all rows once ``rows_written == shape[0]``, when each row is written once).
    kept : ndarray of shape (n_rows, len(kept_columns)) or None
        The kept columns of the rows written so far.
    """

    def __init__(self, shape: tuple[int, int], dtype: np.dtype, block_bytes: int, directory: str | None = None,
                 kept_columns: np.ndarray | None = None) -> None:
        self.block_bytes = int(block_bytes)
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.nbytes = self.shape[0] * self.shape[1] * self.dtype.itemsize
        self.largest: np.generic | None = None
        self.rows_written = 0
        self.kept_columns = None if kept_columns is None else np.asarray(kept_columns, dtype=np.int64)
        self.kept = None if kept_columns is None else np.empty((self.shape[0], self.kept_columns.size), self.dtype)
        check_spill_disk(self.nbytes, directory)
        descriptor, path = tempfile.mkstemp(prefix="isogan-landmark-rows-", suffix=".bin", dir=directory)
        os.unlink(path)
        self._file = os.fdopen(descriptor, "w+b", buffering=0)
        os.ftruncate(self._file.fileno(), self.nbytes)
        # Closed when the rows are done with, or when this object goes, whichever comes first.
        self._close = weakref.finalize(self, self._file.close)

    def close(self) -> None:
        """Close the file; memory maps taken with :meth:`as_array` stay valid."""
        self._close()

    def write_rows(self, start: int, rows: np.ndarray) -> None:
        """Write rows ``start ... start + len(rows)`` (C-contiguous, this dtype)."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.size:
            # np.maximum propagates NaN, as max() over the whole array would.
            block_largest = rows.max()
            self.largest = block_largest if self.largest is None else np.maximum(self.largest, block_largest)
        self.rows_written += rows.shape[0]
        if self.kept is not None:
            self.kept[start : start + rows.shape[0]] = rows[:, self.kept_columns]
        view = memoryview(rows).cast("B")
        offset = start * self.shape[1] * self.dtype.itemsize
        done = 0
        while done < view.nbytes:
            done += os.pwrite(self._file.fileno(), view[done:], offset + done)

    def columns(self, start: int, stop: int) -> np.ndarray:
        """Read the (L, stop - start) block of columns into a new array."""
        width = stop - start
        out = np.empty((self.shape[0], width), dtype=self.dtype)
        row_bytes = self.shape[1] * self.dtype.itemsize
        for row in range(self.shape[0]):
            view = memoryview(out[row]).cast("B")
            offset = row * row_bytes + start * self.dtype.itemsize
            done = 0
            while done < view.nbytes:
                n_read = os.preadv(self._file.fileno(), [view[done:]], offset + done)
                if n_read <= 0:
                    raise OSError(f"unexpected end of the spilled landmark rows at byte {offset + done}")
                done += n_read
        return out

    def column_blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, columns)`` blocks of about ``block_bytes`` each, left to right."""
        width = max(1, self.block_bytes // (self.shape[0] * self.dtype.itemsize))
        for start in range(0, self.shape[1], width):
            yield start, self.columns(start, min(self.shape[1], start + width))

    def as_array(self) -> np.memmap:
        """A read-only memory map of the rows (what the fitted model keeps for ``transform``)."""
        return np.memmap(self._file, dtype=self.dtype, mode="r", shape=self.shape)
