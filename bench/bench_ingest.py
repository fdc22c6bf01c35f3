"""Benchmark (not a test): DICOM header reads per second of `lsdc ingest` against a plain
`pydicom.dcmread(stop_before_pixels=True)` loop over the same files, in one process and
with 2 worker processes (medians over repeats).

    .venv/bin/python bench/bench_ingest.py [--root data/synthetic] [--repeats 3] [--studies 12]

Uses data/synthetic when it holds images, else writes a temporary RSNA-layout dataset
(RLE Lossless, 16/12 bits, 256-384 px, one slice per file) and removes it afterwards.
The page cache is warmed first, so the figures measure parsing, not the disk.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, RLELossless, generate_uid

from lsdc import dicom, schema
from lsdc.ingest import build_index


def _write_slice(path: Path, rng: np.random.Generator, size: int, instance: int, plane: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = MRImageStorage, meta.MediaStorageSOPInstanceUID, "MR"
    ds.SeriesDescription = schema.DESCRIPTION_OF_PLANE[plane]
    ds.InstanceNumber = instance
    axial = plane == "ax_t2"
    ds.ImagePositionPatient = [-80.0, -80.0, 4.0 * instance] if axial else [4.0 * instance, -80.0, 80.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0] if axial else [0, 1, 0, 0, 0, -1]
    ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 4.0
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = rng.integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
    ds.compress(RLELossless)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def make_dataset(root: Path, n_studies: int = 12, slices: int = 15, seed: int = 0) -> Path:
    """A small RSNA-layout root: n_studies x 3 series x ``slices`` RLE files."""
    rng = np.random.default_rng(seed)
    series_rows = []
    for s in range(n_studies):
        study = 10_000 + s
        for k, plane in enumerate(schema.PLANES):
            series = study * 10 + k
            series_rows.append((study, series, schema.DESCRIPTION_OF_PLANE[plane]))
            size = int(rng.choice([256, 320, 384]))
            for i in range(1, slices + 1):
                _write_slice(root / schema.TRAIN_IMAGES / str(study) / str(series) / f"{i}.dcm",
                             rng, size, i, plane)
    pd.DataFrame(series_rows, columns=list(schema.SERIES_COLUMNS)).to_csv(root / schema.TRAIN_SERIES_CSV, index=False)
    labels = [[10_000 + s] + ["Normal/Mild"] * len(schema.LABEL_COLUMNS) for s in range(n_studies)]
    pd.DataFrame(labels, columns=list(schema.TRAIN_COLUMNS)).to_csv(root / schema.TRAIN_CSV, index=False)
    pd.DataFrame(columns=list(schema.COORDS_COLUMNS)).to_csv(root / schema.COORDS_CSV, index=False)
    return root


def _plain_chunk(paths: list[str]) -> int:
    for p in paths:
        pydicom.dcmread(p, stop_before_pixels=True)
    return len(paths)


def _ours_chunk(paths: list[str]) -> int:
    for p in paths:
        dicom.read_header(p)
    return len(paths)


def _parallel(fn: Callable[[list[str]], int], paths: list[str], workers: int) -> Callable[[], int]:
    def go() -> int:
        chunks = [paths[i::workers * 4] for i in range(workers * 4)]
        with ProcessPoolExecutor(workers) as pool:
            return sum(pool.map(fn, chunks))
    return go


def median_rate(fn: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("data/synthetic"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--studies", type=int, default=12, help="studies in a generated dataset")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if not any(root.glob(f"{schema.TRAIN_IMAGES}/*/*/*.dcm")):
            print(f"{root} holds no images: writing a temporary dataset")
            root = make_dataset(Path(tmp) / "rsna", n_studies=args.studies)
        paths = sorted(str(p) for p in root.glob("*_images/*/*/*.dcm"))
        _plain_chunk(paths)  # warm the page cache
        n = len(paths)

        def ingest(workers: int) -> Callable[[], int]:
            return lambda: len(build_index(root, workers=workers).instances)

        rows = [
            ("plain dcmread(stop_before_pixels) loop", 1, median_rate(lambda: _plain_chunk(paths), args.repeats)),
            ("lsdc.dicom.read_header loop", 1, median_rate(lambda: _ours_chunk(paths), args.repeats)),
            ("lsdc ingest build_index (whole stage)", 1, median_rate(ingest(0), args.repeats)),
            ("plain dcmread(stop_before_pixels) loop", args.workers,
             median_rate(_parallel(_plain_chunk, paths, args.workers), args.repeats)),
            ("lsdc.dicom.read_header loop", args.workers,
             median_rate(_parallel(_ours_chunk, paths, args.workers), args.repeats)),
            ("lsdc ingest build_index (whole stage)", args.workers, median_rate(ingest(args.workers), args.repeats)),
        ]
    print(f"\n{n} files under {args.root if root == args.root else 'a temporary dataset'}; "
          f"median of {args.repeats} repeats\n")
    print(f"{'method':42s} {'procs':>5s} {'files/s':>9s}")
    for name, procs, rate in rows:
        print(f"{name:42s} {procs:5d} {rate:9.0f}")


if __name__ == "__main__":
    main()
