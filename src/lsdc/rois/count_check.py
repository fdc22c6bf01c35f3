"""Axial evidence against a sagittal level count that is off by one.

The axial T2 stack is prescribed through the lumbar discs. When the sagittal series are
named one level off (L5/S1 missed on every slice and a thoracic disc counted as L1/L2, or
a line below L5/S1 counted as L5/S1), the chain of five named discs is regular and
nothing in the sagittal boxes shows the shift; but an axial slice then lies about one disc
spacing beyond the named L5/S1 or L1/L2, where no named level is. `beyond_ends` finds
such slices in a block of their own (a block that also reaches the named end level is a
continuous stack, which proves nothing); `lsdc.rois.study` then puts every level of the
study in doubt (crops imputed). Where such blocks lie beyond one end only, `level_step`
says which way the names were off, and the study's sagittal crops move one level that way
(still imputed): a block below the named L5/S1 means the named L5/S1 was L4/L5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lsdc.dicom import SliceGeometry

# (end level, its neighbour inside the chain, where the slice lies)
ENDS = (("L5/S1", "L4/L5", "below L5/S1"), ("L1/L2", "L2/L3", "above L1/L2"))
NEAR = 0.4   # the slice's plane lies within this share of a disc spacing of the next disc's place
CLEAR = 0.6  # ... and at least this share of a spacing from the named end level
LIMIT = 4  # slices kept per end (the nearest)


@dataclass(frozen=True)
class Beyond:
    where: str   # 'below L5/S1' or 'above L1/L2'
    series: int  # index of the axial series
    index: int   # slice index in it
    end: str     # the named end level it lies beyond


def beyond_ends(ref: Mapping[str, np.ndarray], series_geoms: Sequence[Sequence[SliceGeometry | None]],
                series_blocks: Sequence[np.ndarray], limit: int = LIMIT) -> list[Beyond]:
    """Axial slices about one disc spacing beyond the named L5/S1 or L1/L2: the chain's
    last link (end minus its neighbour, patient mm) extended once more; kept are the
    slices (over every series, each with its own orientation) on which that point falls
    inside the image, whose plane lies within NEAR spacings of it, in a block (series_blocks:
    a block label per slice) none of whose slices lies within CLEAR spacings of the end
    level; the `limit` nearest per end."""
    out = []
    for end, inner, where in ENDS:
        if end not in ref or inner not in ref:
            continue
        at = np.asarray(ref[end], float)
        step = at - np.asarray(ref[inner], float)
        spacing = float(np.linalg.norm(step))
        if not np.isfinite(spacing) or spacing <= 0:
            continue
        found = []
        for s, geoms in enumerate(series_geoms):
            blocks = np.asarray(series_blocks[s])
            near_end = {blocks[i] for i, g in enumerate(geoms)
                        if g is not None and abs(float(g.to_pixel(at)[2])) < CLEAR * spacing}
            for i, g in enumerate(geoms):
                if g is None or blocks[i] in near_end:
                    continue
                x, y, d = (float(v) for v in g.to_pixel(at + step))
                if 0 <= x <= g.cols - 1 and 0 <= y <= g.rows - 1 and abs(d) <= NEAR * spacing:
                    found.append((abs(d), s, i))
        out += [Beyond(where, s, i, end) for _, s, i in sorted(found)[:limit]]
    return out


def level_step(wheres: set[str]) -> int:
    """Level-index shift that puts the sagittal names right, from the ends the axial blocks
    lie beyond: -1 (every name one level up: named L5/S1 -> L4/L5) for blocks below L5/S1 only,
    +1 for blocks above L1/L2 only, 0 for both ends or none (the count is in doubt, its
    direction unknown)."""
    below, above = ENDS[0][2] in wheres, ENDS[1][2] in wheres
    return -1 if below and not above else 1 if above and not below else 0
