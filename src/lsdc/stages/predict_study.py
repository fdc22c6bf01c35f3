"""`lsdc predict-study PATH`: grade one study folder (work: `lsdc.predict.study`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lsdc import paths
from lsdc.params import Params
from lsdc.predict.study import CLASSIFIER_SUBDIR, DETECTORS_SUBDIR, format_table, parse_overrides, run_study
from lsdc.rois.detectors import Detectors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="study folder: <path>/<series>/<instance>.dcm")
    parser.add_argument("--models-dir", type=Path, default=paths.MODELS_DIR,
                        help=f"folder with {DETECTORS_SUBDIR}/<plane>.pt and {CLASSIFIER_SUBDIR}/fold_<k>.pt")
    parser.add_argument("--out", type=Path, default=paths.PREDICT_STUDY_DIR, help="folder for <study>.json and <study>.png")
    parser.add_argument("--labels", type=Path, default=paths.LABELS_FILE,
                        help="labels.parquet for the training prior (may be absent)")
    parser.add_argument("--series-type", action="append", default=[], metavar="FOLDER=PLANE",
                        help="type a series folder by hand (PLANE: sag_t1, sag_t2, ax_t2 or a description)")
    parser.add_argument("--strict", action="store_true", help="fail when a series cannot be typed")


def main(params: Params, args: argparse.Namespace, detectors: Detectors | None = None) -> int:
    """A user error (unreadable study, untyped series with --strict, missing models) ends
    as one line and rc 2 through lsdc.cli; `detectors` lets tests pass stand-in models."""
    report = run_study(args.path, params, models_dir=args.models_dir, out_dir=args.out, labels_path=args.labels,
                       overrides=parse_overrides(args.series_type), strict=args.strict, detectors=detectors)
    print(format_table(report))
    return 0
