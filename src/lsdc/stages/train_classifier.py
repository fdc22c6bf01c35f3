"""`lsdc train-classifier`: the cross-validated classifier (work: `lsdc.classify.train`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lsdc import paths
from lsdc.classify.train import Paths, run
from lsdc.params import Params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rois-dir", type=Path, default=paths.ROIS_DIR, help="ROI store directory")


def main(params: Params, args: argparse.Namespace) -> int:
    summary = run(params, Paths(rois_dir=args.rois_dir))
    if not summary:  # a DDP rank other than 0: rank 0 reports
        return 0
    print(json.dumps({"oof_score": summary["oof_score"]["total"], "seconds": summary["_seconds"]}))
    return 0
