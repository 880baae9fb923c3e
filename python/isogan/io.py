"""Out-of-core point readers: rows of a ``.npy`` file read block by block.

The landmark pipeline reads its input through these, so a data set larger than memory is never
loaded whole: :class:`NpyRows` reads rows with plain ``os.pread`` calls (no memory map, so only
the blocks in use count towards the process's memory); :func:`open_points` opens a path as such
rows (a Fortran-ordered file is memory-mapped instead).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["NpyRows", "is_out_of_core", "open_points"]


class NpyRows:
    """Rows of a C-ordered ``.npy`` file, read on demand with ``os.pread`` (no memory map).

    Reading through a memory map would leave every touched page resident in the process; plain
    reads keep only the blocks asked for.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file holding a 2-D C-ordered array.

    Attributes
    ----------
    shape : tuple of int
        Shape of the stored array.
    dtype : numpy.dtype
        Element type of the stored array.
    ndim : int
        Number of dimensions of the stored array.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        shape, fortran_order, dtype, self._offset = _npy_header(self.path)
        if fortran_order:
            raise ValueError(f"{self.path} holds a Fortran-ordered array; save it C-ordered (np.ascontiguousarray).")
        self.shape = tuple(int(extent) for extent in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        """Read a slice of rows (step 1) or the rows at the given indices."""
        row_shape = self.shape[1:]
        with open(self.path, "rb", buffering=0) as handle:
            descriptor = handle.fileno()
            if isinstance(rows, slice):
                start, stop, step = rows.indices(self.shape[0])
                if step != 1:
                    raise ValueError("NpyRows reads contiguous slices only")
                count = max(stop - start, 0)
                out = np.empty((count, *row_shape), dtype=self.dtype)
                _read_exact(descriptor, out, self._offset + start * self._row_bytes)
                return out
            index = np.asarray(rows, dtype=np.int64)
            out = np.empty((index.size, *row_shape), dtype=self.dtype)
            for position, row in enumerate(index):
                _read_exact(descriptor, out[position], self._offset + int(row) * self._row_bytes)
            return out


def _npy_header(path: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, byte offset of the data) of a ``.npy`` file."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        # Format 3.0 only changes the header's text encoding, not its layout, from 2.0.
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(handle)
        return shape, fortran_order, dtype, handle.tell()


def open_points(path: str | os.PathLike) -> NpyRows | np.ndarray:
    """Rows of a C-ordered ``.npy`` file, or a memory map of a Fortran-ordered one."""
    if _npy_header(os.fspath(path))[1]:
        return np.load(os.fspath(path), mmap_mode="r")
    return NpyRows(path)


def _read_exact(descriptor: int, out: np.ndarray, offset: int) -> None:
    view = memoryview(out).cast("B")
    done = 0
    while done < view.nbytes:
        n_read = os.preadv(descriptor, [view[done:]], offset + done)
        if n_read <= 0:
            raise OSError(f"unexpected end of file at byte {offset + done}")
        done += n_read


def is_out_of_core(points: object, chunk_rows: int) -> bool:
    """Whether ``points`` live on disk (a memmap or :class:`NpyRows`) and span more than one block."""
    return isinstance(points, (np.memmap, NpyRows)) and points.shape[0] > chunk_rows
