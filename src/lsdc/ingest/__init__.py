"""`lsdc ingest`: one validated, tidy view of an RSNA-layout data root.

Reads the CSVs and every DICOM header (no pixels) under ``params.data.root`` and
writes ``data/interim/index/{studies,series,instances,labels,coords,quarantine}.parquet``
(schema: docs/data_formats.md), ``quarantine.csv`` beside them for people, and
``metrics/ingest.json``. Every problem becomes one quarantine row (kind + reason
naming the file); the run goes on. A root that is not an RSNA layout fails at once
(exit code 2).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lsdc.index import IndexTables
from lsdc.ingest.build import build_index, write_metrics
from lsdc.ingest.csvs import NotRsnaRootError, check_layout, parse_id
from lsdc.ingest.problems import KINDS

log = logging.getLogger(__name__)

try:  # path constants live in lsdc.params once the lead adds them
    from lsdc.params import INDEX_DIR, METRICS_DIR
except ImportError:  # pragma: no cover
    INDEX_DIR, METRICS_DIR = Path("data/interim/index"), Path("metrics")

METRICS_FILE = METRICS_DIR / "ingest.json"
QUARANTINE_CSV = "quarantine.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", type=Path, default=INDEX_DIR, help="index folder to write")
    parser.add_argument("--metrics", type=Path, default=METRICS_FILE, help="metrics JSON to write")
    parser.add_argument("--allow-test-only", action="store_true",
                        help="accept a root without train.csv (Kaggle inference: test images only)")
    parser.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")


def run(params, out_dir: Path = INDEX_DIR, metrics_path: Path = METRICS_FILE,
        allow_test_only: bool = False) -> tuple[IndexTables, dict]:
    """Build the index from ``params.data.root`` and write tables, quarantine CSV and metrics."""
    index = build_index(Path(params.data.root), workers=params.runtime.workers,
                        near_origin_px=params.ingest.near_origin_px, allow_test_only=allow_test_only)
    index.write(out_dir)
    index.quarantine.to_csv(out_dir / QUARANTINE_CSV, index=False)
    metrics = write_metrics(index, metrics_path)
    return index, metrics


def main(params, args: argparse.Namespace) -> int:
    out_dir = getattr(args, "out_dir", INDEX_DIR)
    metrics_path = getattr(args, "metrics", METRICS_FILE)
    allow_test_only = getattr(args, "allow_test_only", False)
    try:
        check_layout(Path(params.data.root), allow_test_only)  # fail before opening a run
        if getattr(args, "no_tracking", False):
            _, metrics = run(params, out_dir, metrics_path, allow_test_only)
        else:
            from lsdc import tracking

            with tracking.stage_run("ingest", params):
                _, metrics = run(params, out_dir, metrics_path, allow_test_only)
                tracking.log_metrics(metrics)
                tracking.log_artifact(out_dir / QUARANTINE_CSV)
                tracking.log_artifact(metrics_path)
    except NotRsnaRootError as e:
        print(f"lsdc ingest: {e}", file=sys.stderr)
        return 2
    q = metrics["quarantine"]
    print(f"ingest: {sum(metrics['studies'].values())} studies, "
          f"{sum(metrics['instances'].values())} instances, {metrics['coords']} coords, "
          f"{q['total']} quarantine rows" + "".join(f"; {k}={v}" for k, v in q.items()
                                                   if k != "total" and v))
    return 0


__all__ = ["IndexTables", "build_index", "NotRsnaRootError", "check_layout", "parse_id", "KINDS",
           "add_arguments", "main", "run"]
