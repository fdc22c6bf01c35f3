"""Contact sheets: a study's crops in a grid, one row per plane and level, columns
side x slice offset, each titled with side / offset / source (green detected, orange
imputed, red missing)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.rois import DETECTED, IMPUTED, MISSING

log = logging.getLogger(__name__)

COLOURS = {DETECTED: "tab:green", IMPUTED: "tab:orange", MISSING: "tab:red"}


def pick_studies(index: pd.DataFrame, n: int) -> list[int]:
    """n studies to draw: train studies first, the last slot for the first test study."""
    if n <= 0:
        return []
    order = index.drop_duplicates("study_id")
    train = order.loc[order["split"] == "train", "study_id"].tolist()
    test = order.loc[order["split"] == "test", "study_id"].tolist()
    picked = train[: n - 1 if test else n] + test[:1]
    return [int(s) for s in picked[:n]]


def draw_study(crops: np.ndarray, index: pd.DataFrame, study_id: int, path: Path) -> Path:
    """Write one study's contact sheet PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = index[index["study_id"] == study_id]
    if rows.empty:
        raise ValueError(f"study {study_id} has no rows in the ROI index")
    grid_rows = [(p, lv) for p in schema.PLANES for lv in schema.LEVELS]
    columns = rows.groupby(["plane", "level"]).size().max()
    fig, axes = plt.subplots(len(grid_rows), columns, figsize=(1.1 * columns, 1.2 * len(grid_rows)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (plane, level) in enumerate(grid_rows):
        cells = rows[(rows["plane"] == plane) & (rows["level"] == level)]
        for c, row in enumerate(cells.itertuples()):
            ax = axes[r, c]
            ax.imshow(crops[row.crop_index], cmap="gray", vmin=0, vmax=255)
            side = row.side if isinstance(row.side, str) else "mid"
            ax.set_title(f"{side} {row.slice_offset:+d} {row.source[:3]}", fontsize=6,
                         color=COLOURS.get(row.source, "black"))
        axes[r, 0].text(-0.08, 0.5, f"{plane}\n{level}", transform=axes[r, 0].transAxes, fontsize=6,
                        ha="right", va="center")
    split = rows["split"].iloc[0]
    fig.suptitle(f"study {study_id} ({split})", fontsize=8)
    fig.tight_layout(rect=(0.05, 0, 1, 0.98))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def draw_sheets(crops: np.ndarray, index: pd.DataFrame, out_dir: Path, n: int) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()
    return [draw_study(crops, index, sid, out_dir / f"{sid}.png") for sid in pick_studies(index, n)]
