"""`lsdc extract-rois`: crops around every level and side of every study, train and test.

Reads data/interim/index/{studies,series,instances}.parquet and the detectors
models/detectors/<plane>.pt; writes data/processed/rois/{crops.npy,index.parquet},
data/processed/named_boxes.parquet (every box with the level and side the pipeline gave
it; docs/data_formats.md), metrics/rois.json and reports/rois/<study>.png contact sheets,
and logs one MLflow run. coords.parquet (and data/interim/folds.parquet, to report the
detectors' validation studies apart) is read only for the distance metrics and the check
of the named boxes (lsdc.rois.named_check), after every crop is written. Studies are processed in `runtime.workers` processes, each
decoding its studies' DICOMs once and running the detectors in batches; results are
written in study order as they arrive, with a bounded number in flight, so memory
does not grow with the number of studies.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import headline, index, paths, schema
from lsdc.folds import load_folds
from lsdc.params import Params
from lsdc.rois import named_check, report, select, sheet
from lsdc.rois.detectors import Detectors, YoloDetectors
from lsdc.rois.slots import study_slots
from lsdc.rois.store import StoreWriter
from lsdc.rois.study import NAMED_COLUMNS, ExtractedRois, SeriesRef, StudyImages, extract_study

log = logging.getLogger(__name__)

STAGE = "extract_rois"
SPLIT_ORDER = {"train": 0, "test": 1}
# files skipped (unreadable, a slice of another orientation) and geometry decisions (frames of
# reference, levels named from the other plane), one row each: <rois>/problems.csv
PROBLEMS_FILE = "problems.csv"
PROBLEM_COLUMNS = ("study_id", "kind", "file", "reason")
# beside the ROI store folder: every detector box of every study with the level and side the
# pipeline gave it (study.NAMED_COLUMNS); a DVC out of its own, so the classifier does not depend on it
NAMED_FILE = "named_boxes.parquet"


def build_tasks(index_dir: str | Path) -> list[StudyImages]:
    """One task per study of studies.parquet (train then test, by id), with its series'
    files (instances.parquet) per plane. Studies without series still get a task."""
    tables = index.read(index_dir, ("studies", "series", "instances"))
    studies, series, instances = tables["studies"], tables["series"], tables["instances"]
    files = (instances.sort_values(["series_id", "instance_number"])
             .groupby("series_id")["path"].apply(tuple).to_dict())
    refs: dict[int, list[SeriesRef]] = {}
    for r in series[series["plane"].isin(schema.PLANES)].sort_values(["study_id", "series_id"]).itertuples():
        paths = files.get(int(r.series_id), ())
        if paths:
            refs.setdefault(int(r.study_id), []).append(SeriesRef(int(r.series_id), str(r.plane), paths))
    studies = studies.assign(_order=studies["split"].map(SPLIT_ORDER).fillna(2)).sort_values(["_order", "study_id"])
    return [StudyImages(int(s.study_id), str(s.split), tuple(refs.get(int(s.study_id), ())))
            for s in studies.itertuples()]


# ----------------------------------------------------------------------------- workers

_WORKER: dict = {}


def _init_worker(detectors: Detectors, root: str, params: Params) -> None:
    from lsdc.detect import ultralytics_env

    ultralytics_env.use_threads(1)  # one core per worker process (ultralytics would reset it)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _WORKER.update(detectors=detectors, root=root, params=params)


def _run_task(task: StudyImages) -> ExtractedRois:
    return extract_study(task, _WORKER["root"], _WORKER["detectors"], _WORKER["params"])


def iterate_results(tasks: list[StudyImages], detectors: Detectors, params: Params,
                    workers: int) -> Iterator[ExtractedRois]:
    """Results in task order; with workers > 0, at most 2 x workers studies in flight."""
    root = params.data.root
    if workers <= 0 or len(tasks) <= 1:
        for task in tasks:
            yield extract_study(task, root, detectors, params)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork after torch threads started
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(detectors, root, params)) as pool:
        pending: deque = deque()
        it = iter(tasks)
        for task in it:
            pending.append(pool.submit(_run_task, task))
            if len(pending) >= 2 * workers:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_run_task, nxt))
            yield result


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc="extract_rois", unit="study", file=sys.stderr,
                disable=None if sys.stderr.isatty() else False, mininterval=5.0)


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory (MB) of this process and of its largest child."""
    scale = 1024.0 if sys.platform != "darwin" else 1024.0 * 1024.0
    return {"main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale,
            "largest_worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale}


# ----------------------------------------------------------------------------- stage

def run(params: Params, index_dir: Path = paths.INDEX_DIR, out_dir: Path = paths.ROIS_DIR,
        metrics_path: Path = paths.ROIS_METRICS, sheets_dir: Path = paths.ROI_SHEETS_DIR,
        detectors: Detectors | None = None, models_dir: Path = paths.DETECTORS_DIR,
        folds_path: Path = paths.FOLDS_FILE, named_path: Path | None = None) -> dict:
    """Write the ROI store, the named boxes (default: NAMED_FILE beside `out_dir`), metrics and
    contact sheets; return the metrics."""
    named_path = Path(out_dir).parent / NAMED_FILE if named_path is None else Path(named_path)
    select.check_policy(params.rois.selection)
    if detectors is None:
        yolo = YoloDetectors(models_dir, params.detect, params.rois.batch,
                         params.runtime.detect_device)
        for plane in schema.PLANES:
            if not yolo.weights(plane).exists():
                raise FileNotFoundError(f"{yolo.weights(plane)}: detector weights not found "
                                        f"(run `lsdc train-detector --plane {plane}` first)")
        detectors = yolo
    tasks = build_tasks(index_dir)
    n_slots = len(study_slots(params.rois))
    start = time.perf_counter()
    writer = StoreWriter(out_dir, len(tasks) * n_slots, params.rois.roi_size)
    unreadable, notes = 0, 0
    problems: list[dict] = []  # every file skipped and every geometry decision, per study
    named: list[pd.DataFrame] = []
    try:
        with _progress(len(tasks)) as bar:
            for result in iterate_results(tasks, detectors, params, params.runtime.workers):
                if len(result.rows) != n_slots:
                    raise RuntimeError(f"study {result.study_id}: {len(result.rows)} rows, expected {n_slots}")
                writer.write(result.crops, result.rows)
                unreadable += result.unreadable
                notes += len(result.notes)
                problems += [{"study_id": result.study_id, "kind": d["kind"], "file": d["file"], "reason": d["reason"]}
                             for d in result.skipped]
                problems += [{"study_id": result.study_id, "kind": "geometry", "file": "", "reason": w}
                             for w in result.warnings]
                if result.named is not None and len(result.named):
                    named.append(result.named)
                bar.update(1)
        crops_path, index_path = writer.close()
    except BaseException:
        writer.abort()
        raise
    seconds = time.perf_counter() - start
    problem_table = pd.DataFrame(problems, columns=list(PROBLEM_COLUMNS))
    problem_table.to_csv(Path(out_dir) / PROBLEMS_FILE, index=False)
    named_table = pd.concat(named, ignore_index=True) if named else pd.DataFrame(columns=list(NAMED_COLUMNS))
    named_path.parent.mkdir(parents=True, exist_ok=True)
    named_table.to_parquet(named_path, index=False)
    store_index = pd.read_parquet(index_path)
    val = None
    if Path(folds_path).is_file():  # the detectors' validation studies: their distances apart too
        folds = load_folds(Path(folds_path))
        val = set(folds.loc[folds["fold"] == params.detect.export.val_fold, "study_id"].astype(int))
    extra = {
        "rows_per_study": n_slots, "selection": params.rois.selection,
        "unreadable_slices": unreadable, "studies_lacking_a_plane": notes,
        "problems": {k: int(v) for k, v in problem_table["kind"].value_counts().sort_index().items()},
    }
    coords_path = index.table_path(index_dir, "coords")
    if Path(coords_path).exists():  # figure (b) with the pipeline's names (lsdc.rois.named_check)
        train = set(store_index.loc[store_index["split"] == "train", "study_id"].astype(int))
        coords = index.read_table(Path(coords_path).parent, "coords")
        extra["named_points"] = named_check.metrics(named_table, coords, train, val)
    metrics = report.build_metrics(store_index, coords_path, extra, detector_val=val)
    headline.write("rois", metrics, metrics_path)
    crops = np.load(crops_path, mmap_mode="r")
    sheet.draw_sheets(crops, store_index, Path(sheets_dir), params.rois.contact_sheet_studies)
    memory = peak_rss_mb()
    log.info("extract_rois: %d studies, %d crops in %.1f s (%.2f s/study); peak RSS main %.0f MB, worker %.0f MB",
             len(tasks), len(store_index), seconds, seconds / max(1, len(tasks)), memory["main"], memory["largest_worker"])
    metrics["_runtime"] = {"seconds": round(seconds, 2), "peak_rss_mb": memory}
    return metrics
