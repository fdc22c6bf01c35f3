"""`lsdc predict-study PATH`: grade one study folder (PATH/<series>/<instance>.dcm).

Each series is typed from `*_series_descriptions.csv` under `${data.root}` when the study
is listed there, else from its SeriesDescription tag (`--series-type FOLDER=PLANE`
overrides); series that cannot be typed are reported and left out (`--strict`: an error).
The study then goes through the same steps as the pipeline: the detectors
(<models-dir>/detectors/<plane>.pt) and lsdc.rois.study.extract_study choose slices and
crop, and the fold models (<models-dir>/classifier/fold_<k>.pt) grade it as the predict
stage does (lsdc.predict.ensemble). Prints a table of the 25 labels; writes
<out>/<study>.json (the same, plus series, crop counts and the DICOM files skipped as
unreadable, each with its problem kind and reason) and <out>/<study>.png (overlay).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lsdc import dicom, paths, schema
from lsdc.classify.engine import resolve_device
from lsdc.classify.layout import Channel, side_key
from lsdc.errors import UserError
from lsdc.ingest.csvs import parse_id, read_series_csv
from lsdc.ingest.problems import Problems
from lsdc.params import Params
from lsdc.predict import ensemble, overlay
from lsdc.rois.detectors import Detectors, YoloDetectors
from lsdc.rois.slots import study_slots
from lsdc.rois.store import rows_frame
from lsdc.rois.study import SeriesRef, StudyImages, extract_study, load_planes

log = logging.getLogger(__name__)

DETECTORS_SUBDIR = paths.DETECTORS_DIR.name  # models_dir/<this>/<plane>.pt
CLASSIFIER_SUBDIR = paths.CLASSIFIER_DIR.name  # models_dir/<this>/fold_<k>.pt
PLANE_NAMES = {**{p: p for p in schema.PLANES}, **schema.PLANE_OF_DESCRIPTION}


class StudyInputError(UserError):
    """The study folder, a series or a model cannot be used; the message says why."""


@dataclass(frozen=True)
class TypedSeries:
    folder: str
    series_id: int
    plane: str | None
    description: str | None
    typed_from: str  # 'csv' | 'tag' | 'option' | '' (untyped)
    files: tuple[str, ...]  # relative to the study folder
    reason: str = ""


def series_folders(study_dir: Path) -> dict[str, list[Path]]:
    """Series folder name -> its DICOM files; errors for a missing or empty study folder."""
    if not study_dir.is_dir():
        raise StudyInputError(f"{study_dir}: not a folder (expected a study folder of series folders)")
    found = {d.name: dicom.series_files(d) for d in sorted(study_dir.iterdir()) if d.is_dir()}
    found = {k: v for k, v in found.items() if v}
    if not found:
        direct = dicom.series_files(study_dir)
        hint = (" (it holds .dcm files itself: pass the study folder above this series folder)"
                if direct else "")
        raise StudyInputError(f"{study_dir}: no DICOM files (*.dcm) in any series folder{hint}")
    return found


def csv_planes(root: Path, study_id: int | None) -> dict[int, tuple[str | None, str]]:
    """series_id -> (plane, description) for the study from the data root's series CSVs."""
    out: dict[int, tuple[str | None, str]] = {}
    if study_id is None or not root.is_dir():
        return out
    for name, split in ((schema.TRAIN_SERIES_CSV, "train"), (schema.TEST_SERIES_CSV, "test")):
        if not (root / name).is_file():
            continue
        frame = read_series_csv(root, name, split, Problems())
        for r in frame[frame["study_id"] == study_id].itertuples():
            out[int(r.series_id)] = (r.plane, str(r.series_description))
    return out


def tag_description(files: list[Path]) -> tuple[str | None, str]:
    """(SeriesDescription of the first readable file, '' or why none could be read)."""
    last = ""
    for path in files:
        try:
            header = dicom.read_header(path)
        except dicom.DicomReadError as e:
            last = e.reason
            continue
        return header.series_description, ""
    return None, f"no readable DICOM header ({last})"


def plane_of(description: str | None) -> str | None:
    text = (description or "").strip()
    if text in schema.PLANE_OF_DESCRIPTION:
        return schema.PLANE_OF_DESCRIPTION[text]
    lowered = {d.lower(): p for d, p in schema.PLANE_OF_DESCRIPTION.items()}
    return lowered.get(text.lower())


def type_series(study_dir: Path, root: Path, overrides: dict[str, str]) -> tuple[int | None, list[TypedSeries]]:
    """(study id from the folder name or None, every series folder typed or with a reason)."""
    study_id = parse_id(study_dir.name)
    folders = series_folders(study_dir)
    listed = csv_planes(root, study_id)
    out, used_ids = [], {parse_id(name) for name in folders} - {None}
    fallback_id = max(used_ids, default=0)
    for name, files in folders.items():
        sid = parse_id(name)
        if sid is None:
            fallback_id += 1
            sid = fallback_id
        rel = tuple(f"{name}/{f.name}" for f in files)
        if name in overrides:
            out.append(TypedSeries(name, sid, overrides[name], None, "option", rel))
        elif parse_id(name) in listed and listed[parse_id(name)][0] is not None:
            plane, desc = listed[parse_id(name)]
            out.append(TypedSeries(name, sid, plane, desc, "csv", rel))
        else:
            desc, why = tag_description(files)
            plane = plane_of(desc)
            reason = why or ("" if plane else f"SeriesDescription {desc!r} is not one of "
                             f"{list(schema.PLANE_OF_DESCRIPTION)}")
            out.append(TypedSeries(name, sid, plane, desc, "tag" if plane else "", rel, reason))
    return study_id, out


def parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        folder, sep, plane = item.partition("=")
        if not sep or plane.strip() not in PLANE_NAMES:
            raise StudyInputError(f"--series-type {item!r}: expected FOLDER=PLANE with PLANE one of "
                                  f"{sorted(PLANE_NAMES)}")
        out[folder.strip()] = PLANE_NAMES[plane.strip()]
    return out


def slot_keys(params: Params) -> set[str]:
    """Channel keys of the crops extraction gives every study under these params."""
    return {Channel(s.plane, s.level, side_key(s.side), s.offset).key for s in study_slots(params.rois)}


# (folder, settings) -> (detectors, {plane: (size, mtime_ns) of the weights loaded}): the
# detectors of one call are reused by the next in this process (a rewritten file is reloaded)
_DETECTORS: dict[tuple, tuple[YoloDetectors, dict[str, tuple[int, int]]]] = {}


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def yolo_detectors(models_dir: Path, params: Params, planes: set[str]) -> Detectors:
    """The trained detectors of the planes present, loaded now so a bad file fails here;
    kept for the next call in this process with the same folder and settings."""
    folder = models_dir / DETECTORS_SUBDIR
    key = (str(folder.resolve()), params.detect, params.rois.batch, params.runtime.detect_device)
    yolo, stamps = _DETECTORS.get(key, (None, {}))
    for plane in sorted(planes):
        path = folder / f"{plane}.pt"
        if not path.exists():
            raise StudyInputError(f"{path}: detector weights not found (train them, or point --models-dir "
                                  "at a folder with detectors/ and classifier/)")
        if yolo is None or (plane in stamps and stamps[plane] != _stamp(path)):  # rewritten since
            yolo, stamps = YoloDetectors(folder, params.detect, params.rois.batch,
                                         params.runtime.detect_device), {}
    for plane in sorted(planes):
        path = yolo.weights(plane)
        try:
            yolo.model(plane)
        except ValueError as e:
            raise StudyInputError(str(e)) from None
        except Exception as e:  # ultralytics raises many types on a foreign file
            raise StudyInputError(f"{path}: not a loadable detector ({type(e).__name__}: {e})") from None
        stamps[plane] = _stamp(path)
    _DETECTORS[key] = (yolo, stamps)
    return yolo


def run_study(study_dir: Path, params: Params, models_dir: Path = paths.MODELS_DIR, out_dir: Path = paths.PREDICT_STUDY_DIR,
              labels_path: Path = paths.LABELS_FILE, overrides: dict[str, str] | None = None,
              strict: bool = False, detectors: Detectors | None = None) -> dict[str, Any]:
    """Grade one study; write <out_dir>/<name>.json and .png; return the report dict."""
    study_dir = Path(study_dir)
    study_id, typed = type_series(study_dir, Path(params.data.root), overrides or {})
    untyped = [t for t in typed if t.plane is None]
    for t in untyped:
        log.warning("%s/%s: series left out: %s", study_dir, t.folder, t.reason)
    if untyped and strict:
        raise StudyInputError("; ".join(f"{study_dir / t.folder}: cannot type the series: {t.reason} "
                                        "(use --series-type FOLDER=PLANE)" for t in untyped))
    usable = [t for t in typed if t.plane is not None]
    if not usable:
        raise StudyInputError(f"{study_dir}: no series could be typed as one of {list(schema.PLANE_OF_DESCRIPTION)}")
    models = ensemble.load_models(Path(models_dir) / CLASSIFIER_SUBDIR, params.rois.roi_size,
                                  slot_keys(params))
    prior = ensemble.load_prior(labels_path, params.predict.prior_pseudocount, models)
    if detectors is None:
        detectors = yolo_detectors(Path(models_dir), params, {t.plane for t in usable})
    task = StudyImages(study_id or 0, "test", tuple(SeriesRef(t.series_id, t.plane, t.files) for t in usable))
    # the core: decode (once: the overlay below draws the same decoded slices) -> probabilities
    loaded = load_planes(task, str(study_dir))
    result = extract_study(task, str(study_dir), detectors, params, loaded=loaded)
    index = rows_frame(result.rows, 0)
    device = str(resolve_device(params.runtime.predict_device))
    probs, ev = ensemble.study_probs(models, result.crops, index, [task.study_id], prior, device,
                                     params.predict.batch_size)
    probs, ev = probs[0], ev[0]
    name = study_dir.resolve().name
    out_dir = Path(out_dir)
    png = out_dir / f"{name}.png"
    crop_mm = {p: float(getattr(params.rois.crop_mm, p)) for p in schema.PLANES}
    title = f"study {name}: predicted grades" + "".join(f"\n{n}: its grades come from the prior" for n in result.notes)
    overlay.draw(loaded[0], index, probs, ev, crop_mm, png, title)
    report = build_report(study_dir, study_id, typed, result.notes, index, models, prior, probs, ev, png,
                          skipped=result.skipped)
    json_path = out_dir / f"{name}.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    report["json"] = str(json_path)
    return report


def build_report(study_dir, study_id, typed, notes, index, models, prior, probs, ev, png,
                 skipped: list[dict] | tuple = ()) -> dict[str, Any]:
    sources = index["source"].astype(str).value_counts()
    placed = index["source"].astype(str) != "missing"
    no_geometry = int((placed & ~index["geometry_ok"].astype(bool)).sum()) if "geometry_ok" in index else 0
    return {
        "study_id": study_id,
        "study_dir": str(study_dir),
        "series": [{"folder": t.folder, "series_id": t.series_id, "plane": t.plane, "description": t.description,
                    "typed_from": t.typed_from, "files": len(t.files)} for t in typed if t.plane],
        "untyped_series": [{"folder": t.folder, "description": t.description, "reason": t.reason}
                           for t in typed if not t.plane],
        "notes": list(notes),
        "skipped_slices": [{"file": d["file"], "kind": d["kind"], "reason": d["reason"]} for d in skipped],
        "crops": {s: int(sources.get(s, 0)) for s in ("detected", "imputed", "missing")},
        "crops_without_geometry": no_geometry,
        "models": [str(m.path) for m in models],
        "prior_source": prior.source,
        "labels": [{"column": lab.column, "condition": lab.condition, "level": lab.level,
                    "grade": schema.SEVERITIES[int(np.argmax(probs[j]))],
                    **{c: float(probs[j, k]) for k, c in enumerate(schema.PROB_COLUMNS)},
                    "from_prior": bool(not ev[j])}
                   for j, lab in enumerate(schema.LABELS)],
        "overlay": str(png),
    }


def format_table(report: dict[str, Any]) -> str:
    """The 25 labels as a fixed-width table (train.csv column order)."""
    width = max(len(r["column"]) for r in report["labels"])
    head = f"{'label':<{width}}  {'grade':<11}  " + "  ".join(f"{c:>11}" for c in schema.PROB_COLUMNS)
    lines = [f"study {report['study_id'] if report['study_id'] is not None else report['study_dir']}: "
             + ", ".join(f"{s['plane']} ({s['folder']}, {s['typed_from']})" for s in report["series"]),
             head, "-" * len(head)]
    for r in report["labels"]:
        probs = "  ".join(f"{r[c]:>11.3f}" for c in schema.PROB_COLUMNS)
        lines.append(f"{r['column']:<{width}}  {r['grade']:<11}  {probs}" + ("  (prior)" if r["from_prior"] else ""))
    for u in report["untyped_series"]:
        lines.append(f"series {u['folder']} left out: {u['reason']}")
    for note in report["notes"]:
        lines.append(f"note: {note}")
    for d in report.get("skipped_slices", []):
        lines.append(f"slice skipped: {d['file']} ({d['kind']})")
    if report.get("crops_without_geometry"):
        lines.append(f"note: {report['crops_without_geometry']} crop(s) on slices without geometry "
                     "(no patient position)")
    lines.append(f"JSON: {report.get('json', '')}  overlay: {report['overlay']}")
    return "\n".join(lines)
