"""`lsdc eda`: the EDA HTML report and headline counts (work: `lsdc.eda.build`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lsdc import headline, index, paths
from lsdc.eda.build import REPORT_FILE, check_inputs, run
from lsdc.params import Params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-dir", type=Path, default=paths.INDEX_DIR, help="ingest index tables")
    parser.add_argument("--out-dir", type=Path, default=paths.EDA_DIR, help="report folder")
    parser.add_argument("--metrics", type=Path, default=paths.EDA_METRICS, help="headline counts JSON")
    parser.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")


def main(params: Params, args: argparse.Namespace) -> int:
    tables = index.load(args.index_dir)
    check_inputs(tables, params.eda.example_study)  # before a tracking run is opened
    options = (params.eda.example_study, params.eda.max_scatter_points, params.seed)
    if args.no_tracking:
        head = run(tables, Path(params.data.root), args.out_dir, args.metrics, *options)
    else:
        from lsdc import tracking

        with tracking.stage_run("eda", params):
            head = run(tables, Path(params.data.root), args.out_dir, args.metrics, *options)
            tracking.log_metrics(head)
            tracking.log_artifact(args.out_dir)
            tracking.log_artifact(args.metrics)
            tracking.log_artifact(headline.details_path(args.metrics))
    print(f"EDA report: {args.out_dir / REPORT_FILE}")
    print(json.dumps({k: head[k] for k in ("studies", "label_cells", "coord_rows")}))
    return 0
