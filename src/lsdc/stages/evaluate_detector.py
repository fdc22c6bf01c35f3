"""`evaluate_detector@plane`: measure one trained detector on its validation studies.

Reads models/detectors/<plane>.pt, data/interim/yolo/<plane>/ and the per-epoch curves;
writes metrics/detectors/<plane>.json (headline: mAP50 of the best epoch, localisation in mm
after the anatomy step) and <plane>.details.json beside it (everything else). Reads detect.export, detect.infer, detect.anatomy and detect.evaluate, so a
threshold change re-runs this stage and never training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lsdc import headline, paths, schema, tracking
from lsdc.detect import evaluate
from lsdc.params import Params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plane", required=True, choices=schema.PLANES, help="plane to evaluate")
    parser.add_argument("--yolo-dir", type=Path, default=paths.YOLO_DIR, help="exported datasets (one folder per plane)")
    parser.add_argument("--models-dir", type=Path, default=paths.DETECTORS_DIR, help="trained detectors <plane>.pt")
    parser.add_argument("--metrics-dir", type=Path, default=paths.DETECTOR_METRICS_DIR, help="curves in, metrics JSON out")


def main(params: Params, args: argparse.Namespace) -> int:
    plane = args.plane
    out = args.metrics_dir / f"{plane}.json"
    with tracking.stage_run(f"evaluate_detector@{plane}", params):
        metrics = evaluate.evaluate_plane(args.models_dir / f"{plane}.pt", args.yolo_dir / plane,
                                          args.metrics_dir / f"{plane}_results.csv", plane, params.detect,
                                          params.runtime.detect_device)
        headline.write("detectors", metrics, out)
        tracking.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        tracking.log_artifact(out)
        tracking.log_artifact(headline.details_path(out))
    print(f"evaluate_detector@{plane}: mAP50 {metrics['mAP50']:.3f}, right within "
          f"{params.detect.evaluate.within_mm:g} mm {metrics['loc_right_within']:.3f}, "
          f"median {metrics['loc_median_mm']:.2f} mm -> {out}")
    return 0
