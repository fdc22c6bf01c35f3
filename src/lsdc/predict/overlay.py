"""The overlay PNG of `predict-study`: each chosen slice (slice offset 0 of every located
structure) with the structures drawn as boxes of the crop's physical size, coloured and
labelled with the predicted grade (dashed: the position was imputed, not detected).
Drawn with PIL, not a figure library: one image array written as a PNG."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.rois import IMPUTED, MISSING

log = logging.getLogger(__name__)

GRADE_COLOURS = ("#2ca02c", "#ff7f0e", "#d62728")  # Normal/Mild, Moderate, Severe
SEVERITY_NAMES = schema.SEVERITIES
CONDITION_OF = {("sag_t2", None): "Spinal Canal Stenosis",
                ("sag_t1", "left"): "Left Neural Foraminal Narrowing",
                ("sag_t1", "right"): "Right Neural Foraminal Narrowing",
                ("ax_t2", "left"): "Left Subarticular Stenosis",
                ("ax_t2", "right"): "Right Subarticular Stenosis"}
MAX_COLUMNS = 4


def label_of_row(plane: str, level: str, side: object) -> schema.Label:
    side = side if isinstance(side, str) and side else None
    return schema.Label(CONDITION_OF[(plane, side)], level)


def panels(index: pd.DataFrame) -> list[tuple[str, int, int, pd.DataFrame]]:
    """(plane, series_id, instance_number, rows) per chosen slice, sagittal T2, T1, then axial."""
    rows = index[(index["slice_offset"] == 0) & (index["source"].astype(str) != MISSING)]
    rows = rows[rows["instance_number"].notna()]
    out = []
    for plane in ("sag_t2", "sag_t1", "ax_t2"):
        own = rows[rows["plane"] == plane]
        order = own.assign(_lv=own["level"].map(schema.LEVELS.index)).sort_values(["_lv"])
        seen: list[tuple[int, int]] = []
        for r in order.itertuples():
            key = (int(r.series_id), int(r.instance_number))
            if key not in seen:
                seen.append(key)
        for sid, inst in seen:
            out.append((plane, sid, inst, own[(own["series_id"] == sid) & (own["instance_number"] == inst)]))
    return out


def _image(loaded: dict, plane: str, series_id: int, instance: int) -> tuple[np.ndarray, tuple[float, float]] | None:
    for s in loaded.get(plane, []):
        if s.series_id == series_id and instance in s.instances:
            j = s.instances.index(instance)
            return s.images[j], s.spacings[j]
    return None


PANEL_PX = 320  # longest side of a drawn slice (px); slices are scaled to it
LINE_PX = 13  # height of one text line (px)
PAD = 8  # gap between panels (px)
BACKGROUND = (255, 255, 255)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def _dashed_rect(draw, box: tuple[float, float, float, float], colour, dash: float = 5.0) -> None:
    x0, y0, x1, y1 = box
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = float(np.hypot(bx - ax, by - ay))
        for t in np.arange(0.0, length, 2 * dash):
            u, v = t / length, min(t + dash, length) / length
            draw.line([(ax + (bx - ax) * u, ay + (by - ay) * u), (ax + (bx - ax) * v, ay + (by - ay) * v)],
                      fill=colour, width=1)


def _panel(image: np.ndarray, spacing: tuple[float, float], plane: str, sid: int, inst: int, rows: pd.DataFrame,
           probs: np.ndarray, evidence: np.ndarray, crop_mm: dict[str, float], n_lines: int, width: int):
    """One slice with its boxes, title above and grade list below, as an RGB PIL image."""
    from PIL import Image, ImageDraw

    small, font = _font(10), _font(11)
    h, w = image.shape
    scale = PANEL_PX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    title_h = LINE_PX + 4
    panel = Image.new("RGB", (width, title_h + size[1] + 4 + LINE_PX * n_lines), BACKGROUND)
    panel.paste(Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).resize(size, Image.BILINEAR).convert("RGB"),
                (0, title_h))
    draw = ImageDraw.Draw(panel)
    draw.text((0, 1), f"{schema.DESCRIPTION_OF_PLANE[plane]} · series {sid} · #{inst}", fill=(0, 0, 0), font=font)
    bw, bh = crop_mm[plane] / spacing[1] * scale, crop_mm[plane] / spacing[0] * scale
    for n, r in enumerate(rows.sort_values(["level", "side"]).itertuples()):
        lab = label_of_row(plane, r.level, r.side)
        j = schema.LABEL_INDEX[lab.column]
        k = int(np.argmax(probs[j]))
        colour = _rgb(GRADE_COLOURS[k])
        cx, cy = r.cx * scale, r.cy * scale + title_h
        box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
        if r.source == IMPUTED:
            _dashed_rect(draw, box, colour)
        else:
            draw.rectangle(box, outline=colour, width=1)
        draw.line([(cx - 4, cy), (cx + 4, cy)], fill=colour, width=1)
        draw.line([(cx, cy - 4), (cx, cy + 4)], fill=colour, width=1)
        side = r.side if isinstance(r.side, str) and r.side else ""
        draw.text((cx + 5, cy - 14), side[:1].upper() if plane == "ax_t2" else r.level, fill=colour, font=small)
        how = ("" if evidence[j] else ", prior") + (", imputed position" if r.source == IMPUTED else "")
        draw.text((0, title_h + size[1] + 4 + LINE_PX * n),
                  f"{r.level} {side or 'canal'}: {SEVERITY_NAMES[k]} {probs[j, k]:.2f}{how}", fill=colour, font=small)
    return panel


def draw(loaded: dict, index: pd.DataFrame, probs: np.ndarray, evidence: np.ndarray, crop_mm: dict[str, float],
         path: Path, title: str) -> Path:
    """Write the overlay PNG. probs (25, 3) and evidence (25,) in schema.LABEL_COLUMNS order.

    Drawn with PIL straight into one RGB image (a figure library took ~2 s per PNG, most
    of a predict-study call): a grid of at most MAX_COLUMNS panels, each a chosen slice
    scaled to PANEL_PX with its structures' boxes (crop size in mm, dashed where the
    position was imputed) and the grade list under it."""
    from PIL import Image, ImageDraw

    items = [(p, s, i, rows, _image(loaded, p, s, i)) for p, s, i, rows in panels(index)]
    items = [it for it in items if it[4] is not None]
    ncols = min(MAX_COLUMNS, max(1, len(items)))
    n_lines = max((len(it[3]) for it in items), default=1)
    width = PANEL_PX + 40  # room for the longest grade line
    drawn = [_panel(image, spacing, plane, sid, inst, rows, probs, evidence, crop_mm, n_lines, width)
             for plane, sid, inst, rows, (image, spacing) in items]
    title_lines = title.split("\n")
    head = LINE_PX * len(title_lines) + PAD
    cell_h = max((p.height for p in drawn), default=LINE_PX * 2)
    nrows = max(1, -(-len(drawn) // ncols))
    canvas = Image.new("RGB", (PAD + ncols * (width + PAD), head + nrows * (cell_h + PAD)), BACKGROUND)
    pen = ImageDraw.Draw(canvas)
    for n, line in enumerate(title_lines):
        pen.text((PAD, 2 + LINE_PX * n), line, fill=(0, 0, 0), font=_font(12))
    for n, panel in enumerate(drawn):
        canvas.paste(panel, (PAD + (n % ncols) * (width + PAD), head + (n // ncols) * (cell_h + PAD)))
    if not drawn:
        pen.text((PAD, head + LINE_PX // 2), "no located structure to draw", fill=(0, 0, 0), font=_font(12))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, format="PNG", compress_level=3)
    return path
