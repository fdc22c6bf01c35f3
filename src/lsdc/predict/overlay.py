"""The overlay PNG of `predict-study`: each chosen slice (slice offset 0 of every located
structure) with the structures drawn as boxes of the crop's physical size, coloured and
labelled with the predicted grade (dashed: the position was imputed, not detected)."""

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


def draw(loaded: dict, index: pd.DataFrame, probs: np.ndarray, evidence: np.ndarray, crop_mm: dict[str, float],
         path: Path, title: str) -> Path:
    """Write the overlay PNG. probs (25, 3) and evidence (25,) in schema.LABEL_COLUMNS order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    items = [(p, s, i, rows, _image(loaded, p, s, i)) for p, s, i, rows in panels(index)]
    items = [it for it in items if it[4] is not None]
    n = max(1, len(items))
    ncols = min(MAX_COLUMNS, n)
    nrows = int(np.ceil(n / ncols))
    max_lines = max((len(it[3]) for it in items), default=1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, (4.0 + 0.16 * max_lines) * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (plane, sid, inst, rows, (image, spacing)) in zip(axes.ravel(), items):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.axis("on")  # hidden ticks and frame; the blank x label reserves room for the grade list
        ax.set_xticks([]), ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel("\n" * max_lines, fontsize=7)
        ax.set_title(f"{schema.DESCRIPTION_OF_PLANE[plane]} · series {sid} · #{inst}", fontsize=8)
        w, h = crop_mm[plane] / spacing[1], crop_mm[plane] / spacing[0]
        for n, r in enumerate(rows.sort_values(["level", "side"]).itertuples()):
            lab = label_of_row(plane, r.level, r.side)
            j = schema.LABEL_INDEX[lab.column]
            k = int(np.argmax(probs[j]))
            colour = GRADE_COLOURS[k]
            ax.add_patch(Rectangle((r.cx - w / 2, r.cy - h / 2), w, h, fill=False, lw=0.8, alpha=0.8,
                                   ls="--" if r.source == IMPUTED else "-", ec=colour))
            ax.plot([r.cx], [r.cy], marker="+", ms=6, color=colour)
            side = r.side if isinstance(r.side, str) and r.side else ""
            tag = side[:1].upper() if plane == "ax_t2" else r.level
            ax.annotate(tag, (r.cx, r.cy), xytext=(4, 4), textcoords="offset points", color=colour,
                        fontsize=7, fontweight="bold")
            how = ("" if evidence[j] else ", prior") + (", imputed position" if r.source == IMPUTED else "")
            ax.annotate( f"{r.level} {side or 'canal'}: {SEVERITY_NAMES[k]} {probs[j, k]:.2f}{how}",
                        (0.0, 0.0), xycoords="axes fraction", xytext=(0, -4 - 9.5 * n), textcoords="offset points",
                        color=colour, fontsize=7, va="top")
    if not items:
        axes[0, 0].text(0.5, 0.5, "no located structure to draw", ha="center", va="center")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
