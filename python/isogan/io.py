"""Out-of-core point readers: rows of a file read block by block, never loaded whole.

The landmark pipeline reads its input through these: :class:`NpyRows` reads rows of a ``.npy``
file with plain ``os.pread`` calls (no memory map, so only the blocks in use count towards the
process's memory); :func:`open_points` opens a path as such rows (a Fortran-ordered file is
memory-mapped instead). :func:`dask_points` opens a ``.npy`` file, a zarr array or parquet
files as a lazy row-chunked ``dask.array`` for :class:`isogan.dask.Isomap`, each row block read
by the worker that needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NpyRows", "dask_points", "is_out_of_core", "open_points"]

_PARQUET_SUFFIXES = (".parquet", ".pq")
# Files that mark a folder as a zarr array or group (format 3, then format 2).
_ZARR_METADATA = ("zarr.json", ".zarray", ".zgroup")


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


def _dask_modules() -> tuple[Any, Any]:
    """(dask, dask.array), or an ImportError naming the extra."""
    try:
        import dask
        import dask.array as da
    except ImportError as error:
        raise ImportError("Reading points as a dask array needs dask: pip install \"isogan[dask]\".") from error
    return dask, da


def _stacked_blocks(read_block: Any, arguments: list[tuple[Any, ...]], row_counts: list[int], n_features: int,
                    dtype: np.dtype) -> Any:
    """A (sum(row_counts), n_features) dask array of one lazy ``read_block(*arguments[i])`` block per entry."""
    dask, da = _dask_modules()
    blocks = [da.from_delayed(dask.delayed(read_block, pure=True)(*block_arguments), (n_rows, n_features),
                              dtype=dtype)
              for block_arguments, n_rows in zip(arguments, row_counts)]
    return da.concatenate(blocks, axis=0)


def _read_npy_rows(path: str, start: int, stop: int) -> np.ndarray:
    return np.ascontiguousarray(open_points(path)[start:stop])


def _checked_shape(path: Path, shape: tuple[int, ...], dtype: np.dtype, what: str) -> None:
    if len(shape) != 2 or 0 in shape or dtype.kind not in "biuf":
        raise ValueError(f"Could not read {str(path)!r} as points: expected a 2-D numeric {what} (one point a "
                         f"row); found shape {tuple(shape)} and dtype {dtype}.")


def _npy_points(path: Path, chunk_rows: int) -> Any:
    shape, _, dtype, _ = _npy_header(str(path))
    _checked_shape(path, shape, np.dtype(dtype), "array saved with numpy.save")
    starts = range(0, shape[0], chunk_rows)
    return _stacked_blocks(_read_npy_rows, [(str(path), start, min(start + chunk_rows, shape[0])) for start in starts],
                           [min(chunk_rows, shape[0] - start) for start in starts], shape[1], np.dtype(dtype))


def _zarr_points(path: Path, chunk_rows: int | None) -> Any:
    _, da = _dask_modules()
    try:
        import zarr
    except ImportError as error:
        raise ImportError("Reading a zarr store needs zarr: pip install zarr.") from error
    stored = zarr.open(str(path), mode="r")
    if not isinstance(stored, zarr.Array):
        raise ValueError(f"{str(path)!r} is a zarr group, not an array: pass the path of the array in it "
                         f"(its members: {sorted(stored.keys())}).")
    _checked_shape(path, stored.shape, np.dtype(stored.dtype), "zarr array")
    points = da.from_zarr(stored)
    return points.rechunk({0: chunk_rows or points.chunks[0][0], 1: -1})


def _parquet_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(file for file in path.iterdir() if file.suffix.lower() in _PARQUET_SUFFIXES)
        if not files:
            raise ValueError(f"{str(path)!r} is a folder without zarr metadata or .parquet files.")
        return files
    return [path]


def _read_parquet_rows(path: str, row_group: int, columns: list[str], dtype: np.dtype) -> np.ndarray:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path).read_row_group(row_group, columns=columns)
    # A null becomes NaN, which the fit then reports with the block holding it.
    return np.column_stack([table.column(name).to_numpy(zero_copy_only=False).astype(dtype) for name in columns])


def _parquet_points(path: Path, chunk_rows: int | None, columns: list[str] | None) -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ImportError("Reading parquet files needs pyarrow: pip install pyarrow.") from error
    files = _parquet_files(path)
    schema = pq.read_schema(files[0])
    numeric = [field.name for field in schema
               if pa.types.is_integer(field.type) or pa.types.is_floating(field.type)]
    chosen = numeric if columns is None else list(columns)
    for name in chosen:
        if name not in numeric:
            kind = f"of type {schema.field(name).type}" if name in schema.names else "missing"
            raise ValueError(f"Column {name!r} of {str(files[0])!r} is {kind}; the point columns must be numeric "
                             f"(the numeric ones: {numeric}).")
    if not chosen:
        raise ValueError(f"{str(files[0])!r} has no numeric column to read as point coordinates "
                         f"(its columns: {schema.names}).")
    all_float32 = all(schema.field(name).type == pa.float32() for name in chosen)
    dtype = np.dtype(np.float32 if all_float32 else np.float64)
    arguments, row_counts = [], []
    for file in files:
        if pq.read_schema(file).names != schema.names:
            raise ValueError(f"{str(file)!r} has other columns than {str(files[0])!r}; one data set, one schema.")
        metadata = pq.ParquetFile(file).metadata
        for row_group in range(metadata.num_row_groups):
            if metadata.row_group(row_group).num_rows:
                arguments.append((str(file), row_group, chosen, dtype))
                row_counts.append(metadata.row_group(row_group).num_rows)
    if not row_counts:
        raise ValueError(f"{str(path)!r} holds no rows.")
    points = _stacked_blocks(_read_parquet_rows, arguments, row_counts, len(chosen), dtype)
    return points if chunk_rows is None else points.rechunk({0: chunk_rows})



def dask_points(path: str | os.PathLike, chunk_rows: int | None = None, *, columns: list[str] | None = None) -> Any:
    """Points stored in a file, as a lazy row-chunked ``dask.array`` of shape (N, D).

    Nothing is read but metadata until the array is computed; each row block is then read by
    the task that needs it, so the points need not fit the client (nor one worker). The
    workers must see the same path (a shared file system).

    Parameters
    ----------
    path : str or os.PathLike
        One of

        - a ``.npy`` file of a 2-D numeric array: blocks of ``chunk_rows`` rows, each read with
          :func:`open_points` (plain reads of the rows, no memory map held);
        - a zarr array (a folder ending in ``.zarr`` or holding zarr metadata; needs ``pip
          install zarr``): its storage chunks, merged to whole rows;
        - a ``.parquet`` file or a folder of them (needs ``pip install pyarrow``): each row a
          point, one block per row group, the numeric columns (or ``columns``) as coordinates,
          in file-name then row order; a null becomes NaN.
    chunk_rows : int or None, default=None
        Rows per block. None: 65536 for ``.npy``, the storage's own row chunks (zarr chunks,
        parquet row groups) otherwise.
    columns : list of str or None, default=None
        Parquet only: the coordinate columns, in order (None: every integer or floating column).

    Returns
    -------
    points : dask.array.Array of shape (n_samples, n_features)
        One column chunk, known row chunks; the stored dtype (float32 stays float32; parquet:
        float32 when every chosen column is, else float64).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        An unknown format, or contents that are not a 2-D numeric array of points.
    ImportError
        Naming what to install when dask, zarr or pyarrow is missing.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from isogan.io import dask_points
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "points.npy"), np.arange(30.0).reshape(10, 3))
    >>> points = dask_points(os.path.join(folder, "points.npy"), chunk_rows=4)
    >>> points.chunks
    ((4, 4, 2), (3,))
    >>> float(points.sum().compute())
    435.0
    """
    path = Path(path)
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or int(chunk_rows) != chunk_rows or chunk_rows < 1):
        raise ValueError(f"chunk_rows must be a positive integer or None, got {chunk_rows!r}.")
    if columns is not None and path.suffix.lower() not in _PARQUET_SUFFIXES and not path.is_dir():
        raise ValueError("columns selects parquet columns; it does not apply to a .npy or zarr input.")
    if not path.exists():
        raise FileNotFoundError(f"Input {str(path)!r} does not exist.")
    _dask_modules()
    is_zarr = path.suffix.lower() == ".zarr" or any((path / name).exists() for name in _ZARR_METADATA)
    if is_zarr:
        return _zarr_points(path, chunk_rows)
    if path.suffix.lower() == ".npy" and path.is_file():
        from isogan.landmark import DEFAULT_CHUNK_ROWS

        return _npy_points(path, chunk_rows or DEFAULT_CHUNK_ROWS)
    if path.suffix.lower() in _PARQUET_SUFFIXES or path.is_dir():
        return _parquet_points(path, chunk_rows, columns)
    raise ValueError(f"Unknown input format of {str(path)!r}: expected a .npy file, a zarr array (.zarr) or "
                     ".parquet file(s).")

