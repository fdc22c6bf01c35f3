"""`lsdc folds`: assign train studies to cross-validation folds (work: `lsdc.folds`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from lsdc import paths, tracking
from lsdc.folds import build_folds
from lsdc.params import Params

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-dir", type=Path, default=paths.INDEX_DIR, help="ingest index folder")
    parser.add_argument("--out", type=Path, default=paths.FOLDS_FILE, help="folds parquet to write")


def main(params: Params, args: argparse.Namespace) -> int:
    with tracking.stage_run("folds", params):
        folds = build_folds(args.index_dir, params.cv.n_folds, params.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        folds.to_parquet(args.out, index=False)
        sizes = folds["fold"].value_counts().sort_index().to_dict()
        tracking.log_metrics({"studies": len(folds), "fold_size": {str(k): v for k, v in sizes.items()}})
    log.info("wrote %s: %d studies, fold sizes %s", args.out, len(folds), sizes)
    print(f"folds: {len(folds)} studies in {params.cv.n_folds} folds {sizes} -> {args.out}")
    return 0
