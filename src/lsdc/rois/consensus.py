"""Levels of a whole sagittal series at once: the same disc chain as one slice's
(lsdc.detect.anatomy.assign_levels), run on the structures of all its slices together.

Naming each slice on its own lets one slice that missed a faint L5/S1 count every level one
too high and say 'ok', while its neighbours, which saw the faint disc, say 'ambiguous'.
Here every named point of every slice (whatever level its slice gave it) is pooled in
patient coordinates (y, z: the sagittal plane); points closer than half a disc spacing are one
structure, scored by its summed confidence over the slices divided by the number of slices
with detections, so a disc seen faintly on many slices keeps its weight against a thoracic
disc seen clearly on a few. The chain of those structures names the levels of the series,
with doubt as for one slice.

When no series is anchored, `vote` picks the guess that most of the study's chains (the
sag_t2 canal, the sag_t1 foramina of each side) share in patient coordinates: the three
fail mostly apart (a canal chain that lost a faint L5/S1 beside foramen chains that kept it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lsdc.detect import anatomy
from lsdc.params import DetectAnatomy


@dataclass(frozen=True)
class SeriesLevels:
    """Patient position (mm) per level of one series, and whether the count is anchored."""

    reference: dict[str, np.ndarray]
    status: str
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == anatomy.OK


def pool(points_mm: np.ndarray, conf: np.ndarray, radius_mm: float) -> list[list[int]]:
    """Greedy by confidence: each point joins the first structure whose mean (y, z) lies within
    radius_mm, else starts one. Returns row indices per structure."""
    groups: list[list[int]] = []
    centres: list[np.ndarray] = []
    for i in np.argsort(-np.asarray(conf, float), kind="stable"):
        p = points_mm[i, 1:]
        near = [k for k, c in enumerate(centres) if np.linalg.norm(c - p) <= radius_mm]
        if near:
            k = near[0]
            groups[k].append(int(i))
            centres[k] = points_mm[groups[k], 1:].mean(axis=0)
        else:
            groups.append([int(i)])
            centres.append(p.copy())
    return groups


def series_levels(points_mm: np.ndarray, images: np.ndarray, conf: np.ndarray, rules: DetectAnatomy) -> SeriesLevels:
    """Name the pooled structures of one sagittal series. points_mm (n, 3) patient LPS of every
    named point (rows with NaN are ignored), images (n,) their slice, conf (n,)."""
    finite = np.isfinite(points_mm).all(axis=1)
    points_mm, images, conf = points_mm[finite], np.asarray(images)[finite], np.asarray(conf, float)[finite]
    if not len(points_mm):
        return SeriesLevels({}, anatomy.AMBIGUOUS, ("no located detections",))
    groups = pool(points_mm, conf, rules.disc_spacing_mm[0] / 2)
    n_slices = len(np.unique(images))
    centre = np.array([points_mm[g].mean(axis=0) for g in groups])
    score = np.array([conf[g].sum() for g in groups]) / n_slices
    # the sagittal plane as an image: column = patient y (posterior), row = -z (feet down), 1 mm pixels
    xy = np.stack([centre[:, 1], -centre[:, 2]], axis=1)
    a = anatomy.assign_levels(xy, score, (1.0, 1.0), spacing_mm=rules.disc_spacing_mm,
                              max_turn_deg=rules.max_turn_deg, max_ratio=rules.max_ratio,
                              max_tilt_deg=rules.max_tilt_deg, weak_ratio=rules.weak_ratio,
                              trim_ratio=rules.trim_ratio)
    return SeriesLevels({lv: centre[k] for lv, k in a.chosen.items()}, a.status, a.notes)


def rename(det: pd.DataFrame, points_mm: np.ndarray, levels: SeriesLevels, source: str,
           max_frac: float = 0.5) -> pd.DataFrame:
    """Every row named by the nearest level of `levels` (in patient y, z) when it lies within
    max_frac of that level's distance to its nearest neighbour level: status 'ok' when the
    series' count is anchored, 'ambiguous' otherwise; rows matching no level are dropped, rows
    without a patient position (no geometry) keep their slice's naming."""
    if not len(det):
        return det
    names = list(levels.reference)
    if len(names) < 2:
        located = np.isfinite(points_mm).all(axis=1)
        return det.assign(status=np.where(located, anatomy.AMBIGUOUS, det["status"]))
    refs = np.array([levels.reference[lv] for lv in names])[:, 1:]
    gap = np.array([min(np.linalg.norm(refs[k] - refs[m]) for m in range(len(refs)) if m != k)
                    for k in range(len(refs))])
    pts = np.asarray(points_mm, float)[:, 1:]
    located = np.isfinite(pts).all(axis=1)
    d = np.linalg.norm(np.where(located[:, None], pts, 0.0)[:, None, :] - refs[None], axis=2)
    k = np.argmin(d, axis=1)
    match = located & (d[np.arange(len(d)), k] <= max_frac * gap[k])
    keep = match | ~located  # a slice without geometry keeps its own naming
    status = anatomy.OK if levels.ok else anatomy.AMBIGUOUS
    note = f"level from {source}" + ("" if levels.ok else f" (in doubt: {'; '.join(levels.notes)})")
    out = det.assign(level=np.where(located, np.array(names, dtype=object)[k], det["level"].to_numpy(object)),
                     status=np.where(located, status, det["status"].to_numpy(object)),
                     notes=np.where(located, note, det["notes"].to_numpy(object)))
    return out[keep]

def agree(references: list[dict[str, np.ndarray]], tol_mm: float) -> bool:
    """Whether several series' (or sides') level positions name the same structures: every
    level two of them share lies within tol_mm in the sagittal plane (patient y, z), and
    no level of one lies nearer another level of the other."""
    for a in range(len(references)):
        for b in range(a + 1, len(references)):
            ra, rb = references[a], references[b]
            for lv, p in ra.items():
                if not rb:
                    continue
                d = {o: float(np.linalg.norm(q[1:] - p[1:])) for o, q in rb.items()}
                nearest = min(d, key=d.get)
                if (lv in rb and d[lv] > tol_mm) or nearest != lv and d[nearest] < d.get(lv, np.inf):
                    return False
    return True


def same_anchor(a: dict[str, np.ndarray], b: dict[str, np.ndarray], tol_mm: float, anchor: str = "L5/S1") -> bool:
    """Whether two guesses count from the same structure: each one's `anchor` is the other's
    level nearest to it (patient y, z), within tol_mm. Levels above may differ (a gap, a
    thoracic disc), the count from the bottom does not."""
    if anchor not in a or anchor not in b:
        return False
    for x, y in ((a, b), (b, a)):
        d = {lv: float(np.linalg.norm(q[1:] - x[anchor][1:])) for lv, q in y.items()}
        if min(d, key=d.get) != anchor or d[anchor] > tol_mm:
            return False
    return True


def vote(guesses: dict[str, dict[str, np.ndarray]], tol_mm: float) -> tuple[str, list[str]]:
    """The guess (name -> level positions) that counts from the same L5/S1 (`same_anchor`)
    as most others, ties to the earlier name, and every name sharing it (itself included)."""
    names = [n for n in guesses if len(guesses[n]) >= 2]
    if not names:
        return "", []
    support = {n: [m for m in names if m == n or same_anchor(guesses[n], guesses[m], tol_mm)] for n in names}
    best = max(names, key=lambda n: len(support[n]))  # max keeps the first of equals
    return best, support[best]
