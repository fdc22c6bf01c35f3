"""`evaluate_naming`: the level-naming and side table of issue 12 on a stress dataset.

Generates `naming.studies` stress-profile studies (seed `naming.seed`) under
.cache/naming/ (scratch, rebuilt every run), and measures the naming step alone (boxes at
the true points), the trained detectors' levels (models/detectors/<plane>.pt) by bend and
field-of-view bin, silent level shifts, and axial sides on mirrored series (work:
`lsdc.detect.naming_eval`). Writes metrics/naming.json (headline) and
metrics/naming.details.json; `lsdc report` puts the table in the README.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lsdc import headline, paths, tracking
from lsdc.detect import naming_eval
from lsdc.params import Params, flatten


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", type=Path, default=paths.DETECTORS_DIR, help="trained detectors <plane>.pt")
    parser.add_argument("--scratch", type=Path, default=paths.NAMING_SCRATCH,
                        help="folder for the generated stress set (replaced)")
    parser.add_argument("--metrics", type=Path, default=paths.NAMING_METRICS, help="metrics JSON to write")


def main(params: Params, args: argparse.Namespace) -> int:
    with tracking.stage_run("evaluate_naming", params):
        metrics = naming_eval.measure(params, args.scratch, workers=params.runtime.workers,
                                      device=params.runtime.detect_device, models_dir=args.models_dir)
        headline.write("naming", metrics, args.metrics)
        tracking.log_metrics(metrics)
        tracking.log_artifact(args.metrics)
        tracking.log_artifact(headline.details_path(args.metrics))
    head = flatten(headline.split("naming", metrics)[0])
    print("evaluate_naming: " + ", ".join(f"{k} {v}" for k, v in head.items()) + f" -> {args.metrics}")
    return 0
