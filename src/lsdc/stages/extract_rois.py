"""`lsdc extract-rois`: crops around every level and side of every study (work: `lsdc.rois.extract`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lsdc import headline, paths
from lsdc.params import Params
from lsdc.rois.extract import STAGE, run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-dir", type=Path, default=paths.INDEX_DIR, help="ingest index folder")
    parser.add_argument("--models-dir", type=Path, default=paths.DETECTORS_DIR, help="folder of <plane>.pt detectors")
    parser.add_argument("--out", type=Path, default=paths.ROIS_DIR, help="ROI store folder to write")
    parser.add_argument("--metrics", type=Path, default=paths.ROIS_METRICS, help="metrics JSON to write")
    parser.add_argument("--sheets", type=Path, default=paths.ROI_SHEETS_DIR, help="contact sheet folder")
    parser.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")


def main(params: Params, args: argparse.Namespace) -> int:
    kwargs = dict(index_dir=args.index_dir, out_dir=args.out, metrics_path=args.metrics,
                  sheets_dir=args.sheets, models_dir=args.models_dir)
    if args.no_tracking:
        metrics = run(params, **kwargs)
    else:
        from lsdc import tracking

        with tracking.stage_run(STAGE, params):
            metrics = run(params, **kwargs)
            tracking.log_metrics({k: v for k, v in metrics.items() if k != "selection"})
            tracking.log_artifact(args.metrics)
            tracking.log_artifact(headline.details_path(args.metrics))
            tracking.log_metrics(metrics["_runtime"], prefix="runtime/")
            tracking.log_artifact(args.sheets, artifact_path="contact_sheets")
    runtime = metrics.pop("_runtime")
    print(json.dumps({"studies": metrics["studies"], "crops": metrics["crops"],
                      "distance_mm": {k: v for k, v in metrics.get("distance_mm", {}).items()
                                      if not isinstance(v, dict)}, "runtime": runtime}))
    return 0
