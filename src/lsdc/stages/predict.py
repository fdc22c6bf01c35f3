"""`lsdc predict`: the Kaggle-format submission for the test studies (work: `lsdc.predict.batch`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lsdc import headline, jsonio, paths
from lsdc.params import Params
from lsdc.predict.batch import CLASSIFIER_SUBDIR, STAGE, Paths, run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rois-dir", type=Path, default=paths.ROIS_DIR, help="ROI store folder (with the test studies)")
    parser.add_argument("--models-dir", type=Path, default=paths.MODELS_DIR,
                        help=f"folder holding {CLASSIFIER_SUBDIR}/fold_<k>.pt")
    parser.add_argument("--labels", type=Path, default=paths.LABELS_FILE,
                        help="labels.parquet for the training prior (may be absent)")
    parser.add_argument("--out", type=Path, default=paths.SUBMISSION_FILE, help="submission CSV to write")
    parser.add_argument("--notes", type=Path, default=paths.SUBMISSION_NOTES_FILE, help="notes CSV to write")
    parser.add_argument("--metrics", type=Path, default=paths.TEST_METRICS, help="metrics JSON to write")
    parser.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")


def main(params: Params, args: argparse.Namespace) -> int:
    files = Paths(rois_dir=args.rois_dir, models_dir=args.models_dir, labels=args.labels,
                  submission=args.out, notes=args.notes, metrics=args.metrics)
    if args.no_tracking:
        result = run(params, files)
    else:
        from lsdc import tracking

        with tracking.stage_run(STAGE, params):
            result = run(params, files)
            tracking.set_tags({"prior_source": result["prior_source"]})
            tracking.log_metrics({k: v for k, v in result.items() if k not in ("prior_source", "_seconds")})
            tracking.log_metrics({"seconds": result["_seconds"]})
            for path in (files.submission, files.notes, files.metrics, headline.details_path(files.metrics)):
                tracking.log_artifact(path)
    summary = {k: result.get(k) for k in ("n_studies", "studies_with_notes", "labels_from_prior")}
    if result.get("scored"):
        summary.update(model=result["model"]["total"], constant_prior=result["constant_prior"]["total"],
                       oracle=result.get("oracle", {}).get("total"), normalised_skill=result.get("normalised_skill"),
                       skill_ci95=result.get("skill_ci95"))
    print(json.dumps(jsonio.finite(summary)))
    return 0
