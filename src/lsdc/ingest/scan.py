"""Walk the image folders of a data root and read every DICOM header, one study per task.

Only headers are read (lsdc.dicom.read_header: no pixel decode). Per-series checks
(mixed shapes, missing geometry, duplicate positions) and the spatial order are
computed in the worker that read the series, so a study is one self-contained task.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lsdc import dicom
from lsdc.ingest import problems as pk
from lsdc.ingest.csvs import parse_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyFolder:
    """One study folder to scan: ``root / images_dir / name``."""

    root: str
    images_dir: str  # "train_images" or "test_images"
    split: str
    study_id: int
    name: str  # the folder name as on disk


@dataclass
class StudyScan:
    """What a worker found in one study folder (plain rows: cheap to pickle)."""

    study_id: int
    instances: list[dict] = field(default_factory=list)
    series: list[dict] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)


def _problem(kind: str, reason: str, path: str | None, study: int | None, series: int | None = None) -> dict:
    return {"path": path, "study_id": study, "series_id": series, "kind": kind, "reason": reason}


def _inside(path: Path, root_resolved: Path) -> bool:
    """True when ``path`` (after resolving links) stays under the data root."""
    return path.resolve().is_relative_to(root_resolved)


def list_studies(root: Path, images_dir: str, split: str) -> tuple[list[StudyFolder], list[dict]]:
    """The study folders under ``root/images_dir`` with a numeric name inside the root.

    Anything else (non-numeric or path-like names, links out of the root, stray
    files) becomes a problem row and is skipped."""
    base = root / images_dir
    tasks: list[StudyFolder] = []
    problems: list[dict] = []
    if not base.is_dir():
        return tasks, problems
    root_resolved = root.resolve()
    if not _inside(base, root_resolved):
        problems.append(_problem(pk.PATH_ESCAPE, f"{images_dir}: links outside the data root "
                                 f"(to {base.resolve()}); not read", images_dir, None))
        return tasks, problems
    for entry in sorted(os.scandir(base), key=lambda e: e.name):
        rel = f"{images_dir}/{entry.name}"
        study_id = parse_id(entry.name)
        if not entry.is_dir():
            problems.append(_problem(pk.STRAY_FILE, f"{rel}: a file where only study folders belong; "
                                     "ignored", rel, study_id))
        elif study_id is None:
            problems.append(_problem(pk.BAD_ID, f"{rel}: study folder name {entry.name!r} is not a "
                                     "numeric id; not read", rel, None))
        elif not _inside(Path(entry.path), root_resolved):
            problems.append(_problem(pk.PATH_ESCAPE, f"{rel}: links outside the data root (to "
                                     f"{Path(entry.path).resolve()}); not read", rel, study_id))
        else:
            tasks.append(StudyFolder(str(root), images_dir, split, study_id, entry.name))
    return tasks, problems


def scan_study(task: StudyFolder) -> StudyScan:
    """Read the headers of every series folder of one study (runs in a worker process)."""
    root = Path(task.root)
    root_resolved = root.resolve()
    study_rel = f"{task.images_dir}/{task.name}"
    out = StudyScan(task.study_id)
    for entry in sorted(os.scandir(root / study_rel), key=lambda e: e.name):
        rel = f"{study_rel}/{entry.name}"
        series_id = parse_id(entry.name)
        if not entry.is_dir():
            out.problems.append(_problem(pk.STRAY_FILE, f"{rel}: a file where only series folders "
                                         "belong; ignored", rel, task.study_id))
        elif series_id is None:
            out.problems.append(_problem(pk.BAD_ID, f"{rel}: series folder name {entry.name!r} is "
                                         "not a numeric id; not read", rel, task.study_id))
        elif not _inside(Path(entry.path), root_resolved):
            out.problems.append(_problem(pk.PATH_ESCAPE, f"{rel}: links outside the data root; "
                                         "not read", rel, task.study_id, series_id))
        else:
            _scan_series(root, root_resolved, rel, task, series_id, out)
    return out


def _scan_series(root: Path, root_resolved: Path, rel: str, task: StudyFolder, series_id: int,
                 out: StudyScan) -> None:
    study_id = task.study_id
    headers: list[dicom.SliceHeader] = []
    numbers: list[int] = []
    for entry in sorted(os.scandir(root / rel), key=lambda e: (len(e.name), e.name)):
        frel = f"{rel}/{entry.name}"
        if not entry.name.lower().endswith(".dcm") or not entry.is_file():
            out.problems.append(_problem(pk.STRAY_FILE, f"{frel}: not a *.dcm file; ignored", frel,
                                         study_id, series_id))
            continue
        if entry.is_symlink() and not _inside(Path(entry.path), root_resolved):
            out.problems.append(_problem(pk.PATH_ESCAPE, f"{frel}: links outside the data root; "
                                         "not read", frel, study_id, series_id))
            continue
        try:
            header = dicom.read_header(entry.path)
        except dicom.DicomReadError as e:
            out.problems.append(_problem(e.kind, e.reason.replace(str(entry.path), frel), frel,
                                         study_id, series_id))
            continue
        number = _instance_number(frel, entry.name, header, study_id, series_id, out)
        if number is None:
            continue
        if header.n_frames > 1:
            out.problems.append(_problem(pk.MULTI_FRAME, f"{frel}: holds {header.n_frames} frames; "
                                         "the RSNA layout has one slice per file (indexed as one "
                                         "instance)", frel, study_id, series_id))
        headers.append(header)
        numbers.append(number)
    if not headers:
        out.problems.append(_problem(pk.EMPTY_SERIES, f"{rel}: series folder holds no readable "
                                     "*.dcm file", rel, study_id, series_id))
        out.series.append({"study_id": study_id, "series_id": series_id, "n_instances": 0})
        return
    out.instances.extend(_instance_rows(rel, task, series_id, headers, numbers, out))
    shapes = Counter((h.rows, h.cols) for h in headers)
    (rows, cols), _ = shapes.most_common(1)[0]
    spacings = np.array([h.pixel_spacing for h in headers if h.pixel_spacing is not None], dtype=float)
    if len(shapes) > 1:
        listed = ", ".join(f"{r}x{c} ({n} files)" for (r, c), n in shapes.most_common())
        out.problems.append(_problem(pk.MIXED_SHAPES, f"{rel}: slices differ in size: {listed}",
                                     rel, study_id, series_id))
    out.series.append({
        "study_id": study_id, "series_id": series_id, "n_instances": len(headers),
        "rows": rows, "cols": cols, "mixed_shapes": len(shapes) > 1,
        "pixel_spacing_row": float(np.median(spacings[:, 0])) if len(spacings) else np.nan,
        "pixel_spacing_col": float(np.median(spacings[:, 1])) if len(spacings) else np.nan,
    })


def _instance_number(frel: str, file_name: str, header: dicom.SliceHeader, study_id: int,
                     series_id: int, out: StudyScan) -> int | None:
    """The file name's number (what coordinates refer to), else the header's InstanceNumber."""
    from_name = parse_id(file_name[: -len(".dcm")])
    if from_name is not None:
        if header.instance_number is not None and header.instance_number != from_name:
            out.problems.append(_problem(pk.INSTANCE_MISMATCH, f"{frel}: file name says instance "
                                         f"{from_name}, header InstanceNumber {header.instance_number}; "
                                         "using the file name", frel, study_id, series_id))
        return from_name
    if header.instance_number is not None:
        out.problems.append(_problem(pk.BAD_ID, f"{frel}: file name is not a numeric instance id; "
                                     f"using InstanceNumber {header.instance_number}", frel,
                                     study_id, series_id))
        return header.instance_number
    out.problems.append(_problem(pk.BAD_ID, f"{frel}: neither the file name nor the header gives "
                                 "a numeric instance number; not indexed", frel, study_id, series_id))
    return None


def _instance_rows(rel: str, task: StudyFolder, series_id: int, headers: list[dicom.SliceHeader],
                   numbers: list[int], out: StudyScan) -> Iterator[dict]:
    study_id = task.study_id
    positions, has_geometry = dicom.slice_positions(headers, numbers)
    lacking = [h for h in headers if h.geometry is None]
    if lacking:
        tags = sorted({t for h in lacking for t, v in (("ImagePositionPatient", h.ipp),
                       ("ImageOrientationPatient", h.iop), ("PixelSpacing", h.pixel_spacing)) if v is None}
                      ) or ["a valid orientation"]
        files = _name_files([Path(h.path).name for h in lacking])
        placed = ("placed by instance number between the files that have it; the others keep "
                  "their geometry" if has_geometry.any() else "slices ordered by instance number")
        out.problems.append(_problem(pk.MISSING_GEOMETRY, f"{rel}: {len(lacking)} of {len(headers)} "
                                     f"files lack {', '.join(tags)} ({files}); {placed}",
                                     rel, study_id, series_id))
    geometric = np.flatnonzero(has_geometry)
    groups = dicom.duplicate_groups(positions[geometric])
    if groups:
        listed = "; ".join(" = ".join(Path(headers[geometric[i]].path).name for i in g) for g in groups)
        n_dup = sum(len(g) - 1 for g in groups)
        out.problems.append(_problem(pk.DUPLICATE_POSITION, f"{rel}: {n_dup} slice(s) share a "
                                     f"position along the slice normal with another slice ({listed})",
                                     rel, study_id, series_id))
    ranks = dicom.spatial_ranks(positions, numbers)
    for h, number, pos, rank, ok in zip(headers, numbers, positions, ranks, has_geometry):
        ipp = h.ipp or (np.nan,) * 3
        iop = h.iop or (np.nan,) * 6
        spacing = h.pixel_spacing or (np.nan, np.nan)
        yield {
            "study_id": study_id, "series_id": series_id, "split": task.split,
            "instance_number": number, "path": f"{rel}/{Path(h.path).name}",
            "rows": h.rows, "cols": h.cols,
            "pixel_spacing_row": spacing[0], "pixel_spacing_col": spacing[1],
            "ipp_x": ipp[0], "ipp_y": ipp[1], "ipp_z": ipp[2],
            "iop_rx": iop[0], "iop_ry": iop[1], "iop_rz": iop[2],
            "iop_cx": iop[3], "iop_cy": iop[4], "iop_cz": iop[5],
            "transfer_syntax": h.transfer_syntax, "bits_stored": h.bits_stored,
            "photometric": h.photometric, "slice_thickness": h.slice_thickness,
            "spacing_between_slices": h.spacing_between_slices,
            "normal_pos": float(pos), "spatial_rank": int(rank), "geometry_ok": bool(ok),
            "frame_of_reference_uid": h.frame_of_reference,
        }


def _name_files(names: list[str], limit: int = 5) -> str:
    """'a.dcm, b.dcm' (the first ``limit``, then how many more)."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def scan_all(tasks: list[StudyFolder], workers: int) -> list[StudyScan]:
    """Scan studies in ``workers`` processes (0: in this process), with a progress bar."""
    bar = dict(total=len(tasks), desc="ingest: reading DICOM headers", unit="study",
               disable=None, mininterval=1.0)
    if workers <= 0 or len(tasks) <= 1:
        return [scan_study(t) for t in tqdm(tasks, **bar)]
    chunk = max(1, min(16, len(tasks) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(scan_study, tasks, chunksize=chunk), **bar))
