"""`lsdc train-detector --plane P`: train one plane's YOLO detector (work: `lsdc.detect.train`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lsdc import paths, schema, tracking
from lsdc.detect.train import train_plane
from lsdc.params import Params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plane", required=True, choices=schema.PLANES, help="plane to train")
    parser.add_argument("--yolo-dir", type=Path, default=paths.YOLO_DIR, help="exported datasets (one folder per plane)")
    parser.add_argument("--models-dir", type=Path, default=paths.DETECTORS_DIR, help="where <plane>.pt goes")
    parser.add_argument("--metrics-dir", type=Path, default=paths.DETECTOR_METRICS_DIR,
                        help="where the per-epoch <plane>_results.csv goes")


def main(params: Params, args: argparse.Namespace) -> int:
    plane = args.plane
    with tracking.stage_run(f"train_detector@{plane}", params):
        facts = train_plane(params, plane, args.yolo_dir / plane, args.models_dir, args.metrics_dir)
        runtime = facts.pop("_runtime")
        tracking.log_metrics({**facts, **runtime})
        tracking.log_artifact(args.models_dir / f"{plane}.pt")
        tracking.log_artifact(args.metrics_dir / f"{plane}_results.csv")
    print(json.dumps({"plane": plane, **facts, **runtime}))
    return 0
