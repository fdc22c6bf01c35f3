"""2. ROI extraction, studies per second: the pipeline against the seed notebook's loop (lsdc/__init__.py)
(lsdc.bench.notebook, the labelled baseline) on the same studies with the same detectors.

Contenders, interleaved per repeat:
- notebook: its per-image loop in one process (batch 1, predict twice, PNG per crop);
- lsdc_1proc: lsdc.rois.study.extract_study per study in this process (decode once,
  batched detection, anatomy, crops in memory) - the same cores as the notebook;
- lsdc_<w>workers: the extraction stage's way, studies spread over `runtime.workers`
  worker processes (one torch thread each, detectors loaded once per worker), measured
  in steady state (workers started and warmed before timing, as in a long run).

Target (issue 9): >= 5x the notebook's studies/s.
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lsdc import schema
from lsdc.bench import notebook
from lsdc.bench.timing import interleaved, median
from lsdc.params import Params
from lsdc.rois.detectors import YoloDetectors
from lsdc.rois.study import StudyImages, extract_study

log = logging.getLogger(__name__)

TARGET = 5.0

_W: dict = {}


def _init_worker(detectors_dir: str, params: Params, root: str) -> None:
    """As lsdc.rois.extract's workers: one torch thread, the detectors loaded once."""
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    det = YoloDetectors(detectors_dir, params.detect, params.rois.batch,
                         params.runtime.detect_device)
    for plane in schema.PLANES:
        det.model(plane)
    _W.update(det=det, params=params, root=root)


def _extract(task: StudyImages) -> int:
    return len(extract_study(task, _W["root"], _W["det"], _W["params"]).rows)


def run(tasks: list[StudyImages], params: Params, detectors_dir: Path, repeats: int = 3) -> dict:
    if not tasks:
        raise ValueError("ROI benchmark: no studies")
    root = params.data.root
    det = YoloDetectors(detectors_dir, params.detect, params.rois.batch,
                         params.runtime.detect_device)
    models = {plane: det.model(plane) for plane in schema.PLANES}
    workers = max(1, params.runtime.workers)
    out = Path(tempfile.mkdtemp(prefix="lsdc_bench_notebook_"))
    crops = {"notebook": 0, "lsdc": 0}

    def run_notebook(todo: list[StudyImages] = tasks) -> None:
        shutil.rmtree(out, ignore_errors=True)
        crops["notebook"] = sum(notebook.notebook_study(t, root, models, params.detect, params.rois.roi_size, params.runtime.detect_device, out)
                                for t in todo)

    def run_ours(todo: list[StudyImages] = tasks) -> None:
        crops["lsdc"] = sum(len(extract_study(t, root, det, params).rows) for t in todo)

    ctx = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(str(detectors_dir), params, root)) as pool:
            def run_pool(todo: list[StudyImages] = tasks) -> None:
                list(pool.map(_extract, todo))

            for warm in (run_notebook, run_ours):  # one study each: lazy set-up, caches
                warm(tasks[:1])
            run_pool(tasks[:1] * workers)
            times = interleaved({"notebook": run_notebook, "lsdc_1proc": run_ours,
                                 f"lsdc_{workers}workers": run_pool}, repeats, warmup=False)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    rate = {k: len(tasks) / median(v) for k, v in times.items()}
    images = sum(len(r.files) for t in tasks for r in t.series)
    headline = rate[f"lsdc_{workers}workers"] / rate["notebook"]
    comparable = crops["notebook"] > 0
    if not comparable:
        log.error("ROI benchmark: the notebook loop wrote no PNG crop: its detectors found nothing, so "
                  "the comparison is void (train the detectors to the default run's settings)")
    return {
        "studies": len(tasks), "images": images, "repeats": repeats, "workers": workers,
        "studies_per_s": {k: round(v, 3) for k, v in rate.items()},
        "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "crops_written": {"notebook_png": crops["notebook"], "lsdc_rows": crops["lsdc"]},
        "ratio_lsdc_1proc_vs_notebook": round(rate["lsdc_1proc"] / rate["notebook"], 2),
        f"ratio_lsdc_{workers}workers_vs_notebook": round(headline, 2),
        "notebook_wrote_crops": bool(comparable),  # both loops cropped real detections
        "target": TARGET, "meets": bool(headline >= TARGET and comparable),
    }


def profile(task: StudyImages, params: Params, detectors_dir: Path) -> dict:
    """cProfile of extract_study on one study in this process (models loaded first)."""
    from lsdc.bench.profiling import top_entries

    det = YoloDetectors(detectors_dir, params.detect, params.rois.batch,
                         params.runtime.detect_device)
    extract_study(task, params.data.root, det, params)
    return top_entries(lambda: extract_study(task, params.data.root, det, params))
