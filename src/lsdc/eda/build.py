"""`lsdc eda`: the EDA report (reports/eda/index.html + PNGs) and metrics/eda.json from the index."""

from __future__ import annotations

import logging
from pathlib import Path

from lsdc import headline
from lsdc.eda import examples, findings, sections, stats
from lsdc.eda import report as report_mod
from lsdc.index import IndexTables

log = logging.getLogger(__name__)

REPORT_FILE = "index.html"


def _clear(out_dir: Path) -> None:
    """Remove the previous report's files (only what this stage writes)."""
    if out_dir.is_dir():
        for old in [*out_dir.glob("*.png"), out_dir / REPORT_FILE]:
            old.unlink(missing_ok=True)


def check_inputs(tables: IndexTables, example_study: int | None) -> None:
    """ValueError naming the problem when the report cannot be drawn from these inputs."""
    if example_study is not None and tables.has_images:
        examples.choose_study(tables.instances, tables.coords, example_study)


def run(tables: IndexTables, data_root: Path, out_dir: Path, metrics_path: Path,
        example_study: int | None = None, max_scatter_points: int = 20000,
        seed: int = 0) -> dict:
    """Write the report and the metrics JSON; return the headline counts."""
    check_inputs(tables, example_study)  # fail before drawing
    _clear(out_dir)
    head = stats.headline(tables.studies, tables.series, tables.labels, tables.coords)
    summary = findings.summary(tables, head)
    parts = sections.build_all(tables, out_dir, Path(data_root), example_study,
                               max_scatter_points, seed)
    meta = (f"Data root {data_root}; {len(tables.studies)} studies, {len(tables.series)} series, "
            f"{len(tables.instances)} DICOM files, {len(tables.quarantine)} quarantine rows "
            "(see the ingest stage's quarantine table).")
    page = report_mod.write(out_dir / REPORT_FILE, "Lumbar spine MRI: exploratory data analysis",
                            meta, summary, parts)
    headline.write("eda", head, metrics_path)
    log.info("wrote %s (%d sections) and %s", page, len(parts), metrics_path)
    return head
