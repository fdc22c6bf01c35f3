"""`lsdc bench`: run the benchmarks, print a table, write metrics/bench.json.

    lsdc bench                       # all five, default sizes (~10-15 min on 2 cores)
    lsdc bench --only decode rois    # a subset
    lsdc bench --sizes 20 80 320     # the scaling sizes (the dataset grows to the largest)

Data and models live in --scratch (default scratch/bench) and are reused between runs
(lsdc.bench.workspace): the pipeline's models/detectors and models/classifier when it
has trained them, else small ones trained there first.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from lsdc.bench import report, workspace
from lsdc.bench.timing import machine
from lsdc.params import METRICS_DIR, Params

log = logging.getLogger(__name__)

BENCHMARKS = ("decode", "rois", "study", "training", "scaling")
OUT_FILE = METRICS_DIR / "bench.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS), help="benchmarks to run")
    parser.add_argument("--out", type=Path, default=OUT_FILE, help="results JSON")
    parser.add_argument("--scratch", type=Path, default=workspace.SCRATCH_DIR, help="cached data and models")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 90], help="scaling sizes (studies)")
    parser.add_argument("--image-scale", type=float, default=0.3, help="synth.image_scale of the bench data")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each timed comparison")
    parser.add_argument("--scaling-repeats", type=int, default=1, help="repeats of each scaling size")
    parser.add_argument("--decode-studies", type=int, default=20, help="studies whose files the decode bench reads")
    parser.add_argument("--rois-studies", type=int, default=3, help="studies of the notebook comparison")
    parser.add_argument("--store-studies", type=int, default=30,
                        help="studies in the ROI store used for training (and the small classifier)")
    parser.add_argument("--detect-epochs", type=int, default=2,
                        help="epochs of the small detectors trained when the pipeline has none")
    parser.add_argument("--bench-models", action="store_true",
                        help="ignore models/ and use (train) the small bench models")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile of missed targets")


def _opt(args: argparse.Namespace, name: str, default):
    value = getattr(args, name, None)
    return default if value is None else value


def run(params: Params, args: argparse.Namespace) -> dict:
    only = set(_opt(args, "only", BENCHMARKS))
    scratch = Path(_opt(args, "scratch", workspace.SCRATCH_DIR))
    sizes = sorted(set(_opt(args, "sizes", [10, 30, 90])))
    repeats = int(_opt(args, "repeats", 3))
    use_project = not getattr(args, "bench_models", False)
    profile = not getattr(args, "no_profile", False)
    store_n = int(_opt(args, "store_studies", 30))
    n_data = max([*sizes, store_n, _opt(args, "decode_studies", 20), 10])
    started = time.perf_counter()
    results: dict = {"machine": machine()}

    ws = workspace.prepare_data(params, scratch, n_data, float(_opt(args, "image_scale", 0.3)))
    ws = workspace.ensure_detectors(ws, int(_opt(args, "detect_epochs", 2)), use_project)
    p = ws.params
    results["setup"] = {"data": str(ws.data_root), "studies": ws.n_studies, "image_scale": _opt(args, "image_scale", 0.3),
                        "detectors": str(ws.detectors_dir), "detectors_source": ws.detectors_source,
                        "detect_imgsz": p.detect.export.imgsz, "roi_size": p.rois.roi_size, "workers": p.runtime.workers}

    if "decode" in only:
        from lsdc.bench import decode

        log.info("bench 1/5: DICOM decode")
        results["decode"] = decode.run(ws.index_dir, ws.data_root, int(_opt(args, "decode_studies", 20)),
                                       repeats, max(2, p.runtime.workers))
        if profile and not (results["decode"]["meets_1proc"] and results["decode"]["meets_2proc"]):
            results["decode"]["profile"] = decode.profile(ws.index_dir, ws.data_root)
    if "rois" in only:
        from lsdc.bench import rois
        from lsdc.rois.stage import build_tasks

        log.info("bench 2/5: ROI extraction vs the notebook loop")
        k = int(_opt(args, "rois_studies", 3))
        tasks = build_tasks(workspace.subset_index(ws.index_dir, k, ws.dir / f"index_n{k}"))
        results["rois"] = rois.run(tasks, p, ws.detectors_dir, repeats)
        if profile and not results["rois"]["meets"]:
            results["rois"]["profile"] = rois.profile(tasks[0], p, ws.detectors_dir)
    if "scaling" in only:
        from lsdc.bench import scaling

        log.info("bench 5/5: scaling %s", sizes)
        results["scaling"] = scaling.run(p, ws.index_dir, ws.detectors_dir, ws.dir, tuple(sizes),
                                         int(_opt(args, "scaling_repeats", 1)))
    if only & {"training", "study"}:
        ws = workspace.ensure_rois(ws, store_n)
    if "training" in only:
        from lsdc.bench import training

        log.info("bench 4/5: classifier training throughput")
        workers = tuple(dict.fromkeys((p.runtime.loader_workers, 0, 2)))
        results["training"] = training.run(ws.rois_dir, ws.rois_index_dir / "labels.parquet", ws.folds_path, p,
                                           repeats, workers)
    if "study" in only:
        from lsdc.bench import study

        ws = workspace.ensure_classifier(ws, use_project)
        results["setup"].update(classifier=str(ws.classifier_root), classifier_source=ws.classifier_source)
        log.info("bench 3/5: one study end to end")
        study_dir = study.first_test_study(ws.index_dir, ws.data_root)
        results["study"] = study.run(study_dir, p, ws.detectors_dir, ws.classifier_root,
                                     ws.index_dir / "labels.parquet", repeats, profile)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(params: Params, args: argparse.Namespace) -> int:
    results = run(params, args)
    out = report.write(results, Path(_opt(args, "out", OUT_FILE)))
    print(report.table(results))
    print(f"\n{results['setup']['studies']} synthetic studies, detectors: {results['setup']['detectors_source']}; "
          f"machine: {results['machine']['cpus']} CPUs, {results['machine']['memory_gib']} GiB, "
          f"GPU {results['machine']['gpu'] or 'none'}; {results['seconds']:.0f} s in all -> {out}")
    return 0


__all__ = ["add_arguments", "main", "run", "BENCHMARKS"]
