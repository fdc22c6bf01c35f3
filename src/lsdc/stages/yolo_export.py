"""`lsdc yolo-export --plane P`: one plane's YOLO dataset (work: `lsdc.detect.export`)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from lsdc import paths, schema, tracking
from lsdc.detect.export import export_plane
from lsdc.params import Params

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plane", required=True, choices=schema.PLANES, help="plane to export")
    parser.add_argument("--index-dir", type=Path, default=paths.INDEX_DIR, help="ingest index folder")
    parser.add_argument("--folds", type=Path, default=paths.FOLDS_FILE, help="folds parquet")
    parser.add_argument("--yolo-dir", type=Path, default=paths.YOLO_DIR, help="exported datasets (one folder per plane)")


def main(params: Params, args: argparse.Namespace) -> int:
    out = args.yolo_dir / args.plane
    with tracking.stage_run(f"yolo_export@{args.plane}", params):
        counts = export_plane(args.plane, params, args.index_dir, args.folds, out)
        tracking.log_metrics({k: v for k, v in counts.items() if isinstance(v, dict)})
        tracking.log_artifact(out / "export.json")
    log.info("exported %s to %s: %s", args.plane, out, counts)
    print(json.dumps(counts))
    return 0
