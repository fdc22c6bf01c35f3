"""1. DICOM decode: the project's series reader (lsdc.dicom.read_series: one read per file,
the fastest installed RLE decoder, float32 out, spatial sort) against a plain
`pydicom.dcmread(path).pixel_array` loop over the same RLE files, in one process and
in worker processes (one series per task, as the pipeline spreads studies).

Targets (issue 15): read_series >= 1.0x the plain loop in one process, >= 1.7x the
one-process plain loop with 2 workers. Files are read once before timing (page cache
warm), so the figures are parsing + decoding, not the disk.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pydicom

from lsdc import dicom
from lsdc.bench.timing import interleaved, median

log = logging.getLogger(__name__)

TARGET_ONE = 1.0
TARGET_TWO = 1.7


def series_paths(index_dir: Path, data_root: Path, n_studies: int) -> list[list[str]]:
    """Absolute file paths of every series of the first n studies (by id), one list per series."""
    inst = pd.read_parquet(Path(index_dir) / "instances.parquet")
    keep = sorted(inst["study_id"].unique())[:n_studies]
    inst = inst[inst["study_id"].isin(keep)].sort_values(["series_id", "instance_number"])
    return [[str(Path(data_root) / p) for p in g["path"]] for _, g in inst.groupby("series_id")]


def plain_series(paths: list[str]) -> int:
    for p in paths:
        pydicom.dcmread(p).pixel_array  # noqa: B018 - decoding is the point
    return len(paths)


def ours_series(paths: list[str]) -> int:
    return len(dicom.read_series(paths).slices)


def _in_process(fn, series: list[list[str]]):
    return lambda: sum(fn(s) for s in series)


def _in_pool(pool: ProcessPoolExecutor, fn, series: list[list[str]]):
    order = sorted(series, key=len, reverse=True)  # longest first: even load on the workers
    return lambda: sum(pool.map(fn, order))


def run(index_dir: Path, data_root: Path, n_studies: int = 20, repeats: int = 3, workers: int = 2) -> dict:
    series = series_paths(index_dir, data_root, n_studies)
    n_files = sum(len(s) for s in series)
    if n_files == 0:
        raise ValueError(f"{index_dir}: no DICOM files for the decode benchmark")
    syntaxes = {str(dicom.read_header(s[0]).transfer_syntax) for s in series}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        list(pool.map(plain_series, [s[:1] for s in series[:workers * 2]]))  # start the workers
        cpu: dict[str, list[float]] = {}
        times = interleaved({
            "plain_1": _in_process(plain_series, series),
            "lsdc_1": _in_process(ours_series, series),
            f"plain_{workers}": _in_pool(pool, plain_series, series),
            f"lsdc_{workers}": _in_pool(pool, ours_series, series),
        }, repeats, cpu=cpu)
    rate = {k: n_files / median(v) for k, v in times.items()}
    one = rate["lsdc_1"] / rate["plain_1"]
    two = rate[f"lsdc_{workers}"] / rate["plain_1"]
    return {
        "files": n_files, "series": len(series), "studies": n_studies, "repeats": repeats,
        "workers": workers, "transfer_syntaxes": sorted(syntaxes),
        "files_per_s": {k: round(v, 1) for k, v in rate.items()},
        "seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "ratio_lsdc_vs_plain_1proc": round(one, 3),
        "cpu_ms_per_file_1proc": {k: round(1000 * median(cpu[k]) / n_files, 3) for k in ("plain_1", "lsdc_1")},
        f"ratio_lsdc_{workers}proc_vs_plain_1proc": round(two, 3),
        f"ratio_plain_{workers}proc_vs_plain_1proc": round(rate[f"plain_{workers}"] / rate["plain_1"], 3),
        "target_1proc": TARGET_ONE, "target_2proc": TARGET_TWO,
        "meets_1proc": bool(one >= TARGET_ONE), "meets_2proc": bool(two >= TARGET_TWO),
    }


def profile(index_dir: Path, data_root: Path, n_studies: int = 3) -> dict:
    """cProfile of read_series over the series of the first n studies (in this process)."""
    from lsdc.bench.profiling import top_entries

    series = series_paths(index_dir, data_root, n_studies)
    return top_entries(lambda: [ours_series(s) for s in series])
