"""The example-slices figure: one study's series with the annotated points and grades drawn."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import patheffects

from lsdc import dicom, schema
from lsdc.eda import plots, stats

log = logging.getLogger(__name__)

PLANE_ORDER = {p: i for i, p in enumerate(schema.PLANES)}


def choose_study(instances: pd.DataFrame, coords: pd.DataFrame, wanted: int | None) -> int | None:
    """`wanted` if it has images; else the first train study with images and coordinates."""
    on_disk = set(instances["study_id"].astype("int64"))
    if wanted is not None:
        if int(wanted) not in on_disk:
            raise ValueError(f"eda.example_study={wanted}: no DICOM file of this study is in the "
                             "index (not on disk or not a study id); set it to null or another id")
        return int(wanted)
    train = instances.loc[instances["split"] == "train", "study_id"].astype("int64")
    annotated = sorted(set(train) & set(coords["study_id"].astype("int64")))
    candidates = annotated or sorted(set(train)) or sorted(on_disk)
    return candidates[0] if candidates else None


def pick_slices(series_instances: pd.DataFrame, series_coords: pd.DataFrame,
                max_panels: int) -> list[int]:
    """Instance numbers to show: the most annotated ones (in spatial order), else the middle slice."""
    ordered = series_instances.sort_values("spatial_rank")
    present = set(ordered["instance_number"].astype("int64"))
    hits = series_coords["instance_number"].astype("int64").value_counts()
    hits = hits[hits.index.isin(present)]
    if hits.empty:
        return [int(ordered["instance_number"].iloc[len(ordered) // 2])]
    chosen = set(hits.sort_values(ascending=False, kind="stable").index[:max_panels])
    return [int(n) for n in ordered["instance_number"] if int(n) in chosen]


def read_slice(path: Path) -> np.ndarray:
    """Pixels of one DICOM file (middle frame if multi-frame), scaled to 0..1 by the 1st and
    99.5th percentiles; MONOCHROME1 is inverted by lsdc.dicom."""
    _, pixels = dicom.read_pixels(path)
    if pixels.ndim == 3:
        pixels = pixels[len(pixels) // 2]
    lo, hi = np.percentile(pixels, [1, 99.5])
    return np.clip((pixels - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def point_label(condition: str, level: str) -> str:
    side = schema.Label(condition, level).side
    return f"{level}{' ' + side[0].upper() if side else ''}"


def _draw_panel(ax, image: np.ndarray | None, points: pd.DataFrame, title: str,
                error: str | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    if image is None:
        plots.no_data(ax, error or "no image")
        return
    ax.imshow(image, cmap="gray", interpolation="nearest")
    for _, p in points.iterrows():
        color = plots.GRADE_COLORS[p["grade"]]
        ax.scatter([p["x"]], [p["y"]], s=40, facecolors="none", edgecolors=color, linewidths=1.5)
        left_half = p["x"] < image.shape[1] / 2  # label away from the image centre
        ax.annotate(point_label(p["condition"], p["level"]), (p["x"], p["y"]),
                    xytext=(-6 if left_half else 6, -3), ha="right" if left_half else "left",
                    textcoords="offset points", color=color, fontsize=7, fontweight="bold",
                    path_effects=[patheffects.withStroke(linewidth=2, foreground="black")])


def example_slices(instances: pd.DataFrame, coords: pd.DataFrame, series: pd.DataFrame,
                   data_root: Path, study_id: int, path: Path, max_panels: int = 5) -> Path:
    """One row per series of `study_id`, up to `max_panels` slices each, points coloured by grade."""
    import matplotlib.pyplot as plt

    inst = instances[instances["study_id"] == study_id]
    pts = stats.normalised_coords(coords[coords["study_id"] == study_id])
    desc = series.set_index(["study_id", "series_id"])["series_description"]
    plane = series.set_index(["study_id", "series_id"])["plane"]
    series_ids = sorted(inst["series_id"].unique(),
                        key=lambda s: (PLANE_ORDER.get(plane.get((study_id, s)), 9), s))
    fig, axes = plots.subplots(len(series_ids), max_panels, squeeze=False,
                             figsize=(3.3 * max_panels, 3.5 * len(series_ids)))
    for row, series_id in zip(axes, series_ids):
        s_inst = inst[inst["series_id"] == series_id]
        s_pts = pts[pts["series_id"] == series_id]
        chosen = pick_slices(s_inst, s_pts, max_panels)
        name = desc.get((study_id, series_id))
        for ax, number in zip(row, chosen):
            file = s_inst[s_inst["instance_number"] == number].iloc[0]
            image, error = None, None
            try:
                image = read_slice(data_root / str(file["path"]))
            except Exception as e:  # a broken file shows as a note in its panel, not a crash
                error = f"cannot decode {file['path']}: {type(e).__name__}"
                log.warning("%s: %s", file["path"], e)
            title = (f"{name if isinstance(name, str) else 'unknown description'} "
                     f"· series {series_id}\ninstance {number} "
                     f"(slice {int(file['spatial_rank']) + 1} of {len(s_inst)})")
            _draw_panel(ax, image, s_pts[s_pts["instance_number"] == number], title, error)
        for ax in row[len(chosen):]:
            ax.axis("off")
    handles = [plt.Line2D([], [], marker="o", ls="", markerfacecolor="none", color=c, label=k)
               for k, c in plots.GRADE_COLORS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False)
    fig.suptitle(f"Study {study_id}: annotated slices (L/R = side)")
    return plots.save(fig, path)
