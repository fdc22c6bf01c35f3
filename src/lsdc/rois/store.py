"""Streamed writing of the ROI store: crops.npy (uint8 (N, S, S)) + index.parquet.

N is known up front (every study has the same rows), so crops.npy is created at full
size with np.lib.format.open_memmap and each study's crops are written at their place
through a plain file handle; index rows go to parquet in chunks. Memory stays flat
whatever the number of studies. Files are written under temporary names and renamed
when complete, so a failed run never leaves a store that looks whole.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lsdc.rois import CROPS_FILE, INDEX_FILE
from lsdc.rois.study import ROW_FIELDS

log = logging.getLogger(__name__)

INDEX_COLUMNS = ("crop_index", *ROW_FIELDS)
_INT = ("crop_index", "study_id", "slice_offset")
_NULLABLE_INT = ("series_id", "instance_number")
_FLOAT = ("cx", "cy", "px", "py", "pz", "confidence")
_STR = ("split", "plane", "level", "side", "source")


def rows_frame(rows: list[tuple], first_index: int) -> pd.DataFrame:
    """Index rows (ROW_FIELDS tuples) -> a typed frame with crop_index from first_index."""
    df = pd.DataFrame(rows, columns=list(ROW_FIELDS))
    df.insert(0, "crop_index", np.arange(first_index, first_index + len(df), dtype=np.int64))
    for c in _INT:
        df[c] = df[c].astype("int64")
    for c in _NULLABLE_INT:
        df[c] = pd.array([None if pd.isna(v) else int(v) for v in df[c]], dtype="Int64")
    for c in _FLOAT:
        df[c] = df[c].astype("float64")
    for c in _STR:
        df[c] = pd.array([None if pd.isna(v) else str(v) for v in df[c]], dtype="string")
    df["geometry_ok"] = df["geometry_ok"].astype(bool)
    return df[list(INDEX_COLUMNS)]


class StoreWriter:
    """Write n_rows crops of size x size plus their index rows, in order."""

    def __init__(self, out_dir: str | Path, n_rows: int, size: int, chunk_rows: int = 4096):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.crops_path, self.index_path = self.out_dir / CROPS_FILE, self.out_dir / INDEX_FILE
        self._tmp_crops = self.crops_path.with_name(CROPS_FILE + ".partial")
        self._tmp_index = self.index_path.with_name(INDEX_FILE + ".partial")
        for path in (self.crops_path, self.index_path, self._tmp_crops, self._tmp_index):
            path.unlink(missing_ok=True)
        self.n_rows, self.size, self.chunk_rows = n_rows, size, chunk_rows
        mm = np.lib.format.open_memmap(self._tmp_crops, mode="w+", dtype=np.uint8, shape=(n_rows, size, size))
        self._offset = int(mm.offset)
        del mm  # sized on disk (zeros); rows are written through a file handle below
        self._fh = open(self._tmp_crops, "r+b")  # noqa: SIM115 -- held open across appends, closed in close()
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[tuple] = []
        self._pending_start = 0
        self.written = 0

    def write(self, crops: np.ndarray, rows: list[tuple]) -> None:
        if len(crops) != len(rows):
            raise ValueError(f"{len(crops)} crops but {len(rows)} index rows")
        if crops.shape[1:] != (self.size, self.size) or crops.dtype != np.uint8:
            raise ValueError(f"crops must be uint8 (n, {self.size}, {self.size}), got {crops.dtype} {crops.shape}")
        if self.written + len(rows) > self.n_rows:
            raise ValueError(f"more rows than the {self.n_rows} the store was sized for")
        self._fh.seek(self._offset + self.written * self.size * self.size)
        self._fh.write(np.ascontiguousarray(crops).tobytes())
        self._pending.extend(rows)
        self.written += len(rows)
        if len(self._pending) >= self.chunk_rows:
            self._flush_rows()

    def _flush_rows(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_pandas(rows_frame(self._pending, self._pending_start), preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp_index, table.schema)
        self._writer.write_table(table.cast(self._writer.schema))
        self._pending_start += len(self._pending)
        self._pending = []

    def close(self) -> tuple[Path, Path]:
        """Finish both files (fails if fewer rows were written than sized for)."""
        self._flush_rows()
        self._fh.close()
        if self._writer is None:  # no rows at all: still a valid empty index
            pq.write_table(pa.Table.from_pandas(rows_frame([], 0), preserve_index=False), self._tmp_index)
        else:
            self._writer.close()
        if self.written != self.n_rows:
            raise RuntimeError(f"{self.crops_path}: {self.written} of {self.n_rows} rows written; store incomplete")
        os.replace(self._tmp_crops, self.crops_path)
        os.replace(self._tmp_index, self.index_path)
        return self.crops_path, self.index_path

    def abort(self) -> None:
        self._fh.close()
        if self._writer is not None:
            self._writer.close()
        for path in (self._tmp_crops, self._tmp_index):
            path.unlink(missing_ok=True)
