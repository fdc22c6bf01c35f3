"""Three figures of a lumbar spine's shape from its five canal points, and their percentiles.

Measured on the five ``Spinal Canal Stenosis`` points (L1/L2 .. L5/S1) of a Sagittal T2/STIR
series, in mm (pixel coordinates times PixelSpacing):

- ``gap_mm``: distance between neighbouring points (four per series);
- ``deviation_mm``: largest distance of the five points from their straight line (the
  least-squares line through them, orthogonal distances);
- ``bend_deg``: angle between the L1/L2->L2/L3 and the L4/L5->L5/S1 directions.

The same code measures the real ``train_label_coordinates.csv`` (given a pixel spacing per
series) and the synthetic data, so the phantom can be held to the real distributions
(``targets.SPINE_SHAPE``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.synth import anatomy, targets

FIGURES: tuple[str, ...] = ("gap_mm", "deviation_mm", "bend_deg")
CANAL = schema.CONDITIONS[0]
SAG_T2 = schema.DESCRIPTION_OF_PLANE["sag_t2"]
NEAR_ORIGIN_PX = 12.0  # synthetic misplaced clicks (near (5, 5)) are left out of the phantom's figures


def figures(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(four gaps, deviation, bend in degrees) of five points (5, 2 or 3) in mm, ordered
    L1/L2 .. L5/S1."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape[0] != 5 or p.ndim != 2:
        raise ValueError(f"need five points (5, d), got shape {p.shape}")
    steps = np.diff(p, axis=0)
    gaps = np.linalg.norm(steps, axis=1)
    centred = p - p.mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    off_line = centred - np.outer(centred @ direction, direction)
    deviation = float(np.linalg.norm(off_line, axis=1).max())
    a, b = steps[0], steps[3]
    cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    bend = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return gaps, deviation, bend


def canal_points(coords: pd.DataFrame, spacing: Mapping[int, tuple[float, float]] | Callable[[int], tuple[float, float]],
                 descriptions: Mapping[int, str] | None = None) -> dict[int, np.ndarray]:
    """Series id -> (5, 2) canal points in mm, for every series with exactly one canal row per
    level (columns of train_label_coordinates.csv). spacing: series id -> (row, column) mm,
    a mapping or a function (for the real CSV, e.g. an assumed field of view over the
    image size); series without a spacing are skipped. descriptions: series id -> series
    description; when given, only Sagittal T2/STIR series count."""
    get = spacing if callable(spacing) else spacing.get
    canal = coords[coords["condition"] == CANAL]
    out: dict[int, np.ndarray] = {}
    for series_id, rows in canal.groupby("series_id", sort=True):
        if descriptions is not None and descriptions.get(series_id) != SAG_T2:
            continue
        if len(rows) != 5 or set(rows["level"]) != set(schema.LEVELS):
            continue
        sp = get(series_id)
        if sp is None:
            continue
        rows = rows.assign(_lv=rows["level"].map(schema.LEVELS.index)).sort_values("_lv")
        out[int(series_id)] = np.column_stack([rows["x"].to_numpy(float) * float(sp[1]),
                                               rows["y"].to_numpy(float) * float(sp[0])])
    return out


def table(points: Mapping[int, np.ndarray] | list[np.ndarray]) -> pd.DataFrame:
    """One row per series: gap_1 .. gap_4 (top-down), deviation_mm, bend_deg."""
    items = points.items() if isinstance(points, Mapping) else enumerate(points)
    rows = []
    for key, p in items:
        gaps, deviation, bend = figures(p)
        rows.append((key, *gaps, deviation, bend))
    return pd.DataFrame(rows, columns=["series", "gap_1", "gap_2", "gap_3", "gap_4", "deviation_mm", "bend_deg"])


def percentiles(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{figure: {"p<q>": value}} at the percentiles of targets.SPINE_SHAPE (None when empty)."""
    values = {
        "gap_mm": frame[["gap_1", "gap_2", "gap_3", "gap_4"]].to_numpy().ravel(),
        "deviation_mm": frame["deviation_mm"].to_numpy(),
        "bend_deg": frame["bend_deg"].to_numpy(),
    }
    out = {}
    for name, qs in targets.SPINE_SHAPE.items():
        v = values[name]
        out[name] = {f"p{q:g}": (round(float(np.percentile(v, q)), 2) if len(v) else None) for q in qs}
    return out


def comparison(frame: pd.DataFrame) -> dict:
    """Real vs phantom percentiles, for metrics: {figure: {"p<q>": {"real", "phantom"}}} and
    the number of series measured."""
    measured = percentiles(frame)
    out: dict = {"series": len(frame)}
    for name, qs in targets.SPINE_SHAPE.items():
        out[name] = {f"p{q:g}": {"real": real, "phantom": measured[name][f"p{q:g}"]} for q, real in qs.items()}
    return out


def phantom_points(rng: np.random.Generator, n: int, stress: bool = False) -> list[np.ndarray]:
    """Canal points (5, 2) in mm of n freshly drawn phantom spines, projected on the spine's
    own sagittal plane (no rendering: the figures of the spine shape alone)."""
    out = []
    for _ in range(n):
        spine = anatomy.build_spine(rng, stress=stress)
        out.append(np.array([spine.canal_point(level)[1:] for level in range(len(schema.LEVELS))]))
    return out
