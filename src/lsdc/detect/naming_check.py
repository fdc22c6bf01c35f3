"""The level-naming step alone, measured with boxes at the true points (issue 12, 4a).

Every sagittal series' annotated disc points (the five canal points of a Sagittal
T2/STIR series, or one side's five foraminal points of a Sagittal T1 series) become one
box each, optionally with L5/S1 dropped or a box added below L5/S1 / above L1/L2, and go
through `lsdc.detect.anatomy.assign_levels`. Reported per scenario, by bend (the angle
between the L1/L2->L2/L3 and L4/L5->L5/S1 directions) and by field of view:

- right: share of series whose every present level got its true box;
- confirmed: share named right *and* with status 'ok';
- doubt: share flagged 'ambiguous';
- silent: number of series named wrong without a doubt flag (the target is 0).

    python -m lsdc.detect.naming_check --coords train_label_coordinates.csv \\
        --sizes instances.parquet --fov-mm 250 300 350 --out naming.json

`--coords`: CSV/parquet with series_id, condition, level, x, y (px). Pixel spacing per
series from pixel_spacing_row / pixel_spacing_col columns when present, else from the
image size (rows, cols columns, or the ingest instances table given as `--sizes`) and
each assumed field of view of `--fov-mm` (as the real CSVs carry no spacing).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.detect.anatomy import assign_levels

log = logging.getLogger(__name__)

SCENARIOS = ("true", "drop_l5s1", "extra_below", "extra_above")
BEND_BINS = ((-1.0, 15.0, "<15"), (15.0, 30.0, "15-30"), (30.0, 45.0, "30-45"), (45.0, 181.0, ">45"))
FOV_BINS = ((0.0, 260.0, "<260"), (260.0, 300.0, "260-300"), (300.0, 340.0, "300-340"), (340.0, 1e9, ">=340"))
SAGITTAL_CONDITIONS = ("Spinal Canal Stenosis", "Left Neural Foraminal Narrowing",
                       "Right Neural Foraminal Narrowing")


@dataclass(frozen=True)
class Chain:
    """One series' five true points in mm (image x right, y down), L1/L2 first."""

    key: str
    mm: np.ndarray  # (5, 2)
    fov_mm: float


def bend_deg(mm: np.ndarray) -> float:
    """Angle (deg) between the L1/L2->L2/L3 and the L4/L5->L5/S1 directions."""
    a, b = mm[1] - mm[0], mm[4] - mm[3]
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def max_offline_mm(mm: np.ndarray) -> float:
    """Largest distance of the points from their total-least-squares line."""
    c = mm - mm.mean(axis=0)
    _, _, vt = np.linalg.svd(c)
    return float(np.abs(c @ vt[1]).max())


def _bin(value: float, bins) -> str:
    return next(label for lo, hi, label in bins if lo <= value < hi)


def _rotate(v: np.ndarray, deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ v


def scenario_boxes(mm: np.ndarray, scenario: str, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Boxes (mm), confidences and the true level of each box (None: not a lumbar disc).

    extra_below: a disc-like box below L5/S1, continuing the last link turned further in
    the spine's own sense of curvature by 10-35 degrees, 0.6-1.0 of its length, as
    confident as the discs. extra_above: a thoracic disc above L1/L2 (the first link
    continued with a small turn), with a third of the discs' confidence."""
    levels = list(schema.LEVELS)
    pts, conf = [p for p in mm], [0.9] * 5
    last, first = mm[4] - mm[3], mm[0] - mm[1]
    a, b = mm[1] - mm[0], mm[4] - mm[3]
    sense = 1.0 if a[0] * b[1] - a[1] * b[0] >= 0 else -1.0
    if scenario == "drop_l5s1":
        pts, conf, levels = pts[:4], conf[:4], levels[:4]
    elif scenario == "extra_below":
        d = _rotate(last, sense * rng.uniform(10, 35)) * rng.uniform(0.6, 1.0)
        pts, conf, levels = pts + [mm[4] + d], conf + [0.9], levels + [None]
    elif scenario == "extra_above":
        d = _rotate(first, rng.uniform(-10, 10)) * rng.uniform(0.8, 1.05)
        pts, conf, levels = [mm[0] + d] + pts, [0.3] + conf, [None] + levels
    elif scenario != "true":
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
    return np.array(pts), np.array(conf), levels


def check_chain(mm: np.ndarray, scenario: str, rng: np.random.Generator, **kwargs) -> dict:
    """Run assign_levels on one chain under one scenario; right / ok / silent."""
    boxes, conf, truth = scenario_boxes(mm, scenario, rng)
    order = rng.permutation(len(boxes))  # the detector's box order carries no information
    a = assign_levels(boxes[order], conf[order], (1.0, 1.0), **kwargs)
    named = {lv: truth[int(order[i])] for lv, i in a.chosen.items()}
    want = {lv for lv in truth if lv is not None}
    right = set(named) == want and all(named[lv] == lv for lv in named)
    return {"right": right, "ok": a.ok, "silent": (not right) and a.ok}


def _summary(rows: pd.DataFrame) -> dict:
    return {"n": int(len(rows)), "right": round(float(rows["right"].mean()), 4) if len(rows) else None,
            "confirmed": round(float((rows["right"] & rows["ok"]).mean()), 4) if len(rows) else None,
            "doubt": round(float((~rows["ok"]).mean()), 4) if len(rows) else None,
            "silent": int(rows["silent"].sum())}


def evaluate(chains: Iterable[Chain], scenarios: Sequence[str] = SCENARIOS, seed: int = 0, **kwargs) -> dict:
    """Per scenario: overall, by bend bin and by field-of-view bin (see module doc)."""
    rng = np.random.default_rng(seed)
    records = []
    for ch in chains:
        bend = bend_deg(ch.mm)
        for sc in scenarios:
            r = check_chain(ch.mm, sc, rng, **kwargs)
            records.append({"scenario": sc, "bend": _bin(bend, BEND_BINS), "fov": _bin(ch.fov_mm, FOV_BINS), **r})
    df = pd.DataFrame(records, columns=["scenario", "bend", "fov", "right", "ok", "silent"])
    out = {}
    for sc in scenarios:
        own = df[df["scenario"] == sc]
        out[sc] = {"all": _summary(own),
                   "bend": {label: _summary(own[own["bend"] == label]) for *_, label in BEND_BINS},
                   "fov": {label: _summary(own[own["fov"] == label]) for *_, label in FOV_BINS}}
    return out


def chains_from_table(coords: pd.DataFrame, fovs_mm: Sequence[float] = (300.0,)) -> list[Chain]:
    """One Chain per (series, condition, assumed field of view) with all five levels.

    Spacing: pixel_spacing_row / _col columns when present (fov = spacing x size when the
    size is known, else 300); otherwise each of `fovs_mm` over max(rows, cols)."""
    need = {"series_id", "condition", "level", "x", "y"}
    if missing := need - set(coords.columns):
        raise ValueError(f"coordinates table lacks {sorted(missing)}")
    coords = coords[coords["condition"].isin(SAGITTAL_CONDITIONS)]
    has_spacing = {"pixel_spacing_row", "pixel_spacing_col"} <= set(coords.columns)
    if not has_spacing and not {"rows", "cols"} <= set(coords.columns):
        raise ValueError("coordinates table needs pixel_spacing_row/_col or rows/cols (see --sizes)")
    out = []
    for (series, cond), g in coords.groupby(["series_id", "condition"], sort=True):
        g = g.drop_duplicates("level").set_index("level")
        if not set(schema.LEVELS) <= set(g.index):
            continue
        g = g.loc[list(schema.LEVELS)]
        px = g[["x", "y"]].to_numpy(float)
        size = float(max(g["rows"].iloc[0], g["cols"].iloc[0])) if {"rows", "cols"} <= set(g.columns) else np.nan
        if has_spacing and np.isfinite(g[["pixel_spacing_row", "pixel_spacing_col"]].to_numpy(float)).all():
            sp = g[["pixel_spacing_col", "pixel_spacing_row"]].iloc[0].to_numpy(float)
            fov = float(sp.max() * size) if np.isfinite(size) else 300.0
            out.append(Chain(f"{series}/{cond}", px * sp, fov))
        elif np.isfinite(size):
            for fov in fovs_mm:
                out.append(Chain(f"{series}/{cond}/{fov:g}", px * (fov / size), float(fov)))
    return out


def _read(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--coords", required=True, help="train_label_coordinates-like CSV/parquet")
    ap.add_argument("--sizes", help="table with series_id, rows, cols (e.g. the ingest instances table)")
    ap.add_argument("--fov-mm", type=float, nargs="+", default=[300.0],
                    help="assumed fields of view when no pixel spacing is given (mm)")
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the JSON report here (default: stdout)")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lsdc.detect.naming_check", description=__doc__.split("\n")[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    coords = _read(args.coords)
    if args.sizes:
        sizes = _read(args.sizes)[["series_id", "rows", "cols"]].groupby("series_id").max().reset_index()
        coords = coords.drop(columns=[c for c in ("rows", "cols") if c in coords.columns]).merge(
            sizes, on="series_id", how="left")
    chains = chains_from_table(coords, args.fov_mm)
    log.info("%d chains of five sagittal points", len(chains))
    report = evaluate(chains, args.scenarios, args.seed)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
        log.info("wrote %s", args.out)
    else:
        print(text)  # noqa: T201 - the command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
