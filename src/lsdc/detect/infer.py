"""Run a trained detector on uint8 slices and return per-level / per-side points.

    model = load_detector("models/detectors/sag_t2.pt")
    points = predict_points(model, images, spacings, "sag_t2", params.detect)

`images` are 2-D uint8 slices of any size (e.g. `dicom.normalise_uint8` output);
`spacings` their (row, col) pixel spacing in mm. The result has one row per assigned
point: image (index into `images`), level, side, x, y (px of that image), conf,
status ('ok' / 'ambiguous') and notes; level is None on axial slices, side is None
on sag_t2 and, on sag_t1, the side the caller passed for the slice.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lsdc.detect import anatomy, ultralytics_env
from lsdc.detect import labels as lab
from lsdc.params import Detect

log = logging.getLogger(__name__)

POINT_COLUMNS = ("image", "level", "side", "x", "y", "conf", "status", "notes")
# The foramina of one side lie at different lateral positions (L5/S1 the most lateral), so a
# parasagittal slice often shows T12/L1..L4/L5 as five clear foramina and L5/S1 not at all: its
# own count is never anchored. Its series (all slices of the side) and sag_t2 name it.
PARASAGITTAL = "one parasagittal slice does not anchor the foramen count"


@dataclass(frozen=True)
class Boxes:
    """Raw detections of one image: centres (n, 2) px, confidences, class ids."""

    xy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray


def load_detector(weights: str | Path):
    """Load a trained detector (.pt) with ultralytics configured offline."""
    weights = Path(weights)
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: detector weights not found (run `lsdc train-detector` first)")
    ultralytics_env.configure()
    from ultralytics import YOLO

    return YOLO(str(weights), task="detect")


def detect_boxes(model, images: Sequence[np.ndarray], cfg: Detect, batch: int = 32,
                 device: str = "cpu") -> list[Boxes]:
    """Raw boxes above `cfg.infer.conf` for every image, predicted in batches on `device`."""
    out: list[Boxes] = []
    for start in range(0, len(images), batch):
        chunk = [np.repeat(np.asarray(im, np.uint8)[..., None], 3, axis=2) if np.ndim(im) == 2 else im
                 for im in images[start:start + batch]]
        results = model.predict(chunk, imgsz=cfg.export.imgsz, conf=cfg.infer.conf, iou=cfg.infer.iou,
                                max_det=cfg.infer.max_det, device=device, verbose=False,
                                agnostic_nms=cfg.export.classes == "anatomy")  # 'anchored': both classes kept
        for r in results:
            b = r.boxes
            out.append(Boxes(b.xywh[:, :2].cpu().numpy().astype(float), b.conf.cpu().numpy().astype(float),
                             b.cls.cpu().numpy().astype(int)))
    return out


def assign(boxes: Boxes, plane: str, cfg: Detect, spacing: tuple[float, float],
           midline_x: float | None = None) -> anatomy.Assignment:
    """Level / side of each box of one image, by anatomy or (levels mode) top box per class."""
    if cfg.export.classes == "levels":
        return anatomy.top_per_class(boxes.cls, boxes.conf, lab.class_names(plane, "levels"))
    if plane == "ax_t2":
        return anatomy.assign_sides(boxes.xy, boxes.conf, spacing, midline_x=midline_x,
                                    sep_mm=cfg.anatomy.side_sep_mm)
    a = cfg.anatomy
    anchor = None
    if cfg.export.classes == "anchored":  # the most confident L5/S1-class box, if confident enough
        is_anchor = (boxes.cls == 1) & (boxes.conf >= a.anchor_conf)
        if is_anchor.any():
            anchor = boxes.xy[np.flatnonzero(is_anchor)[np.argmax(boxes.conf[is_anchor])]]
    out = anatomy.assign_levels(boxes.xy, boxes.conf, spacing, spacing_mm=a.disc_spacing_mm,
                                max_turn_deg=a.max_turn_deg, max_ratio=a.max_ratio,
                                max_tilt_deg=a.max_tilt_deg, weak_ratio=a.weak_ratio,
                                trim_ratio=a.trim_ratio, anchor_px=anchor)
    if plane == "sag_t1" and anchor is None and out.ok:
        return dataclasses.replace(out, status=anatomy.AMBIGUOUS, notes=out.notes + (PARASAGITTAL,))
    return out


def points_table(all_boxes: Sequence[Boxes], plane: str, cfg: Detect,
                 spacings: Sequence[tuple[float, float]], sides: Sequence[str | None] | None = None,
                 midlines: Sequence[float | None] | None = None) -> pd.DataFrame:
    """Assign every image's boxes and flatten to one row per level/side point."""
    rows = []
    for i, boxes in enumerate(all_boxes):
        a = assign(boxes, plane, cfg, tuple(spacings[i]), midlines[i] if midlines is not None else None)
        for name, k in a.chosen.items():
            level, side = (None, name) if plane == "ax_t2" else (name, sides[i] if sides is not None else None)
            rows.append((i, level, side, float(boxes.xy[k, 0]), float(boxes.xy[k, 1]), float(boxes.conf[k]),
                         a.status, "; ".join(a.notes)))
        if not a.chosen:
            log.debug("image %d: nothing assigned (%s)", i, "; ".join(a.notes))
    return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def predict_points(model, images: Sequence[np.ndarray], spacings: Sequence[tuple[float, float]],
                   plane: str, cfg: Detect, sides: Sequence[str | None] | None = None,
                   batch: int = 32, device: str = "cpu") -> pd.DataFrame:
    """Detect and assign: one row per found level (sagittal) or side (axial) per image.

    `sides` (sag_t1 only): the side of the spine each slice shows ('left'/'right'), e.g.
    from its patient-x position; axial sides come from box positions (larger column =
    patient left), with the image centre as the midline when only one box is found.
    """
    expected = lab.class_names(plane, cfg.export.classes)
    names = tuple(model.names[k] for k in sorted(model.names))
    if names != expected:
        raise ValueError(f"detector classes {names} do not match detect.export.classes={cfg.export.classes!r} "
                         f"for {plane} (expected {expected})")
    boxes = detect_boxes(model, images, cfg, batch, device)
    midlines = [np.shape(im)[1] / 2 for im in images]
    return points_table(boxes, plane, cfg, spacings, sides, midlines)
