"""The ingest stage's work (`lsdc ingest`, entry lsdc.stages.ingest): one validated, tidy view of an RSNA-layout data root.

Reads the CSVs and every DICOM header (no pixels) under ``params.data.root`` and
writes ``data/interim/index/{studies,series,instances,labels,coords,quarantine}.parquet``
(schema: docs/data_formats.md), ``quarantine.csv`` beside them for people, and
``metrics/ingest.json``. Every problem becomes one quarantine row (kind + reason
naming the file); the run goes on. A root that is not an RSNA layout fails at once
(exit code 2).
"""

from __future__ import annotations

import logging
from pathlib import Path

from lsdc import paths
from lsdc.index import IndexTables
from lsdc.ingest.build import build_index, write_metrics
from lsdc.ingest.csvs import NotRsnaRootError, check_layout, parse_id
from lsdc.ingest.problems import KINDS

log = logging.getLogger(__name__)

QUARANTINE_CSV = "quarantine.csv"


def run(params, out_dir: Path = paths.INDEX_DIR, metrics_path: Path = paths.INGEST_METRICS,
        allow_test_only: bool = False) -> tuple[IndexTables, dict]:
    """Build the index from ``params.data.root`` and write tables, quarantine CSV and metrics."""
    index = build_index(Path(params.data.root), workers=params.runtime.workers,
                        near_origin_px=params.ingest.near_origin_px, allow_test_only=allow_test_only)
    index.write(out_dir)
    index.quarantine.to_csv(out_dir / QUARANTINE_CSV, index=False)
    metrics = write_metrics(index, metrics_path)
    return index, metrics


__all__ = ["IndexTables", "build_index", "NotRsnaRootError", "check_layout", "parse_id", "KINDS",
           "QUARANTINE_CSV", "run"]
