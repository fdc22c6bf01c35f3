"""`lsdc bench`: run the benchmarks, print a table, write metrics/bench.json.

    lsdc bench                       # all six, default sizes (~10-15 min on 2 cores)
    lsdc bench --only decode rois    # a subset
    lsdc bench --sizes 20 80 320     # the scaling sizes (the dataset grows to the largest)

Data and models live in --scratch (default scratch/bench) and are reused between runs
(lsdc.bench.workspace): the pipeline's models/detectors and models/classifier when it
has trained them, else detectors trained there with the default run's settings first.
The figures go to metrics/bench.json (the benchmarks run replace theirs, the others
stay); `lsdc report` renders the README's performance table from it.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from lsdc.bench import workspace
from lsdc.bench.timing import machine
from lsdc.params import Params

log = logging.getLogger(__name__)

BENCHMARKS = ("decode", "rois", "study", "training", "scaling", "detector")


def run(params: Params, args: argparse.Namespace) -> dict:
    only = set(args.only)
    scratch = Path(args.scratch)
    sizes = sorted(set(args.sizes))
    repeats = int(args.repeats)
    use_project = not args.bench_models
    profile = not args.no_profile
    store_n = int(args.store_studies)
    n_data = max([*(sizes if "scaling" in only else []), *([store_n] if only & {"training", "study"} else []),
                  *([args.rois_studies] if "rois" in only else []), args.decode_studies, 10])
    started = time.perf_counter()
    results: dict = {"machine": machine()}

    ws = workspace.prepare_data(params, scratch, n_data, float(args.image_scale))
    if only & {"rois", "scaling", "training", "study"}:  # decode needs no model
        ws = workspace.ensure_detectors(ws, args.detect_epochs, use_project)
    p = ws.params
    results["setup"] = {"data": str(ws.data_root), "studies": ws.n_studies, "image_scale": args.image_scale,
                        "detectors": str(ws.detectors_dir) if ws.detectors_source else None,
                        "detectors_source": ws.detectors_source or None,
                        "detect_imgsz": p.detect.export.imgsz, "roi_size": p.rois.roi_size, "workers": p.runtime.workers}

    if "decode" in only:
        from lsdc.bench import decode

        log.info("bench 1/6: DICOM decode")
        results["decode"] = decode.run(ws.index_dir, ws.data_root, int(args.decode_studies),
                                       repeats, max(2, p.runtime.workers))
        if profile and not (results["decode"]["meets_1proc"] and results["decode"]["meets_2proc"]):
            results["decode"]["profile"] = decode.profile(ws.index_dir, ws.data_root)
    if "rois" in only:
        from lsdc.bench import rois
        from lsdc.rois.extract import build_tasks

        log.info("bench 2/6: ROI extraction vs the notebook loop")
        k = int(args.rois_studies)
        tasks = build_tasks(workspace.subset_index(ws.index_dir, k, ws.dir / f"index_n{k}"))
        results["rois"] = rois.run(tasks, p, ws.detectors_dir, repeats)
        if profile and not results["rois"]["meets"]:
            results["rois"]["profile"] = rois.profile(tasks[0], p, ws.detectors_dir)
    if "scaling" in only:
        from lsdc.bench import scaling

        log.info("bench 5/6: scaling %s", sizes)
        results["scaling"] = scaling.run(p, ws.index_dir, ws.detectors_dir, ws.dir, tuple(sizes),
                                         int(args.scaling_repeats))
    if "detector" in only:
        from lsdc.bench import detector

        log.info("bench 6/6: detector training step, NCHW vs channels-last")
        results["detector"] = detector.run(p, repeats)
    if only & {"training", "study"}:
        ws = workspace.ensure_rois(ws, store_n)
    if "training" in only:
        from lsdc.bench import training

        log.info("bench 4/6: classifier training throughput")
        workers = tuple(dict.fromkeys((p.runtime.loader_workers, 0, 2)))
        results["training"] = training.run(ws.rois_dir, ws.rois_index_dir / "labels.parquet", ws.folds_path, p,
                                           repeats, workers)
    if "study" in only:
        from lsdc.bench import study

        ws = workspace.ensure_classifier(ws, use_project)
        results["setup"].update(classifier=str(ws.classifier_root), classifier_source=ws.classifier_source)
        log.info("bench 3/6: one study end to end")
        study_dir = study.first_test_study(ws.index_dir, ws.data_root)
        results["study"] = study.run(study_dir, p, ws.detectors_dir, ws.classifier_root,
                                     ws.index_dir / "labels.parquet", repeats, profile)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


__all__ = ["run", "BENCHMARKS"]
