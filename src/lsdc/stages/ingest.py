"""`lsdc ingest`: validate a data root into the index tables (work: `lsdc.ingest`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lsdc import paths, tracking
from lsdc.ingest import QUARANTINE_CSV, check_layout, run
from lsdc.params import Params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", type=Path, default=paths.INDEX_DIR, help="index folder to write")
    parser.add_argument("--metrics", type=Path, default=paths.INGEST_METRICS, help="metrics JSON to write")
    parser.add_argument("--allow-test-only", action="store_true",
                        help="accept a root without train.csv (Kaggle inference: test images only)")
    parser.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")


def main(params: Params, args: argparse.Namespace) -> int:
    check_layout(Path(params.data.root), args.allow_test_only)  # fail (rc 2) before opening a run
    if args.no_tracking:
        _, metrics = run(params, args.out_dir, args.metrics, args.allow_test_only)
    else:
        with tracking.stage_run("ingest", params):
            _, metrics = run(params, args.out_dir, args.metrics, args.allow_test_only)
            tracking.log_metrics(metrics)
            tracking.log_artifact(args.out_dir / QUARANTINE_CSV)
            tracking.log_artifact(args.metrics)
    q = metrics["quarantine"]
    print(f"ingest: {sum(metrics['studies'].values())} studies, "
          f"{sum(metrics['instances'].values())} instances, {metrics['coords']} coords, "
          f"{q['total']} quarantine rows" + "".join(f"; {k}={v}" for k, v in q.items()
                                                   if k != "total" and v))
    return 0
