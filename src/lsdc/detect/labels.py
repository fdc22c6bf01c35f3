"""Detector classes per plane and the pixel <-> YOLO box conversion.

Class modes (params `detect.export.classes`):
- 'anatomy': one structure class per plane (foramen on sag_t1, disc/canal on sag_t2,
  subarticular zone on ax_t2); levels and sides are assigned afterwards by `anatomy`.
- 'anchored' (default): as 'anatomy', plus on the sagittal planes a second class for the
  lowest lumbar structure (the L5/S1 disc / foramen, with the sacrum below it): the anchor
  the level count starts from, since a one-class detector cannot tell L5/S1 from a
  thoracic disc or a sacral line; the other levels are still assigned by `anatomy`.
- 'levels': the classes of the seed notebook (the public Kaggle notebook
  this repository ports; lsdc/__init__.py): one per level on the sagittal planes, one
  per side (right, left) on axial slices.
"""

from __future__ import annotations

import numpy as np

from lsdc import schema

MODES = ("anchored", "anatomy", "levels")
ANCHOR_LEVEL = "L5/S1"  # the level of the sagittal anchor class ('anchored' mode)
SIDES = ("right", "left")
STRUCTURE = {"sag_t1": "foramen", "sag_t2": "disc", "ax_t2": "zone"}


def class_names(plane: str, mode: str) -> tuple[str, ...]:
    """The detector's class names for a plane and class mode."""
    if plane not in STRUCTURE:
        raise ValueError(f"unknown plane {plane!r}; expected one of {tuple(STRUCTURE)}")
    if mode == "anatomy" or (mode == "anchored" and plane == "ax_t2"):
        return (STRUCTURE[plane],)
    if mode == "anchored":
        return (STRUCTURE[plane], f"l5s1_{STRUCTURE[plane]}")
    if mode == "levels":
        return SIDES if plane == "ax_t2" else schema.LEVELS
    raise ValueError(f"unknown detect.export.classes {mode!r}; expected one of {MODES}")


def side_of_condition(condition: str) -> str | None:
    first = condition.split()[0].lower()
    return first if first in SIDES else None


def point_key(plane: str, condition: str, level: str) -> tuple[str | None, str | None]:
    """(level, side) a point of this plane is identified by: level on sagittal planes,
    side on sag_t1 and ax_t2 (an axial slice's level comes from geometry, not the detector)."""
    side = side_of_condition(condition)
    if plane == "ax_t2":
        return None, side
    if plane == "sag_t1":
        return level, side
    return level, None


def class_of_point(plane: str, mode: str, condition: str, level: str) -> int:
    names = class_names(plane, mode)
    if mode == "anatomy" or (mode == "anchored" and plane == "ax_t2"):
        return 0
    if mode == "anchored":
        return int(level == ANCHOR_LEVEL)
    if plane == "ax_t2":
        side = side_of_condition(condition)
        if side is None:
            raise ValueError(f"axial point without a side: {condition!r}")
        return names.index(side)
    return names.index(level)


def box_px(box_mm: float, spacing_row: np.ndarray, spacing_col: np.ndarray):
    """Box width and height in pixels for a square box of `box_mm` mm."""
    return box_mm / np.asarray(spacing_col, float), box_mm / np.asarray(spacing_row, float)


def to_yolo(x, y, w, h, cols, rows) -> np.ndarray:
    """Pixel centre + size -> YOLO (xc, yc, w, h) normalised to [0, 1].

    The box is clipped to the image; the centre of a box that does not cross the
    border is unchanged. Normalised coordinates do not change when the image is
    resized, so they hold for the resized export too.
    """
    x, y, w, h, cols, rows = (np.asarray(v, float) for v in (x, y, w, h, cols, rows))
    x0, x1 = np.clip(x - w / 2, 0, cols), np.clip(x + w / 2, 0, cols)
    y0, y1 = np.clip(y - h / 2, 0, rows), np.clip(y + h / 2, 0, rows)
    return np.stack([(x0 + x1) / 2 / cols, (y0 + y1) / 2 / rows, (x1 - x0) / cols, (y1 - y0) / rows], -1)


def from_yolo(yolo: np.ndarray, cols, rows) -> np.ndarray:
    """YOLO normalised (xc, yc, w, h) -> pixel (x, y, w, h) in an image of cols x rows."""
    yolo = np.asarray(yolo, float).reshape(-1, 4)
    scale = np.stack(np.broadcast_arrays(cols, rows, cols, rows), -1).astype(float)
    return yolo * scale


def format_label_lines(classes, yolo: np.ndarray) -> str:
    """YOLO label file text: one 'class xc yc w h' line per box."""
    return "".join(
        f"{int(c)} {b[0]:.6f} {b[1]:.6f} {b[2]:.6f} {b[3]:.6f}\n" for c, b in zip(classes, yolo)
    )
