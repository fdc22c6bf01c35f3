"""Which level or side a detected box is: a deterministic step after detection.

Levels (sagittal slices): boxes are merged when closer than a disc spacing allows,
boxes off the spine axis fitted to the rest are rejected, the remaining boxes are
ordered along the spine (head at the top of the image), the lowest is L5/S1 and the
levels are counted up from it; a gap of about k disc spacings counts k - 1 missing
discs. Boxes above L1/L2 (thoracic discs) are dropped. Anything that makes the count
doubtful is reported as status 'ambiguous' with notes, not forced.

Sides (axial slices): the pair of boxes whose left-right distance is plausible; the
box with the larger column is patient left (patient left is on the image right).

All distances are in mm through the pixel spacing (row, col).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lsdc import schema

OK, AMBIGUOUS = "ok", "ambiguous"


@dataclass(frozen=True)
class Assignment:
    """Chosen box index per level (or side), plus what was doubtful."""

    chosen: dict[str, int]
    status: str = OK
    notes: tuple[str, ...] = ()
    rejected: tuple[int, ...] = field(default=())


def _to_mm(xy_px: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    row_sp, col_sp = spacing
    return np.asarray(xy_px, float).reshape(-1, 2) * np.array([col_sp, row_sp])


def _merge_close(mm: np.ndarray, conf: np.ndarray, idx: list[int], min_mm: float) -> list[int]:
    """Greedy by confidence: drop a box closer than min_mm to a more confident kept box."""
    kept: list[int] = []
    for i in sorted(idx, key=lambda i: -conf[i]):
        if all(np.linalg.norm(mm[i] - mm[k]) >= min_mm for k in kept):
            kept.append(i)
    return kept


def _residuals(mm: np.ndarray, fit_idx: list[int], deg: int) -> np.ndarray:
    """Distance (mm, along x) of every box from x = poly(y) fitted to the fit_idx boxes."""
    coef = np.polyfit(mm[fit_idx, 1], mm[fit_idx, 0], deg)
    return np.abs(np.polyval(coef, mm[:, 1]) - mm[:, 0])


def _reject_off_axis(
    mm: np.ndarray, conf: np.ndarray, idx: list[int], max_off: float
) -> tuple[list[int], list[int]]:
    """Consensus axis: the line through two boxes that most boxes lie near (ties: more
    confidence), refitted (quadratic from five boxes on) to its inliers; boxes farther
    than max_off mm from it are rejected."""
    if len(idx) < 3:
        return list(idx), []
    best, best_score = None, (-1, -np.inf)
    for a in range(len(idx)):
        for b in range(a + 1, len(idx)):
            i, j = idx[a], idx[b]
            if abs(mm[i, 1] - mm[j, 1]) < 1e-6:
                continue
            res = _residuals(mm, [i, j], 1)
            inl = [k for k in idx if res[k] <= max_off]
            score = (len(inl), float(conf[inl].sum()))
            if score > best_score:
                best, best_score = inl, score
    if best is None or len(best) < 2:
        return list(idx), []
    res = _residuals(mm, best, 2 if len(best) >= 5 else 1)
    kept = [k for k in idx if res[k] <= max_off]
    return kept, [k for k in idx if k not in kept]


def assign_levels(
    xy_px: np.ndarray,
    conf: np.ndarray,
    spacing: tuple[float, float],
    *,
    spacing_mm: tuple[float, float] = (18.0, 60.0),
    max_offaxis_mm: float = 12.0,
    levels: tuple[str, ...] = schema.LEVELS,
) -> Assignment:
    """Assign levels to boxes (centres in px) on one sagittal slice, counting up from L5/S1."""
    conf = np.asarray(conf, float).reshape(-1)
    mm = _to_mm(xy_px, spacing)
    if len(mm) == 0:
        return Assignment({}, AMBIGUOUS, ("no boxes",))
    lo, hi = spacing_mm
    notes: list[str] = []
    idx = _merge_close(mm, conf, list(range(len(mm))), lo / 2)
    idx, rejected = _reject_off_axis(mm, conf, idx, max_offaxis_mm)
    if rejected:
        notes.append(f"{len(rejected)} box(es) off the spine axis")
    idx.sort(key=lambda i: mm[i, 1])  # head (top) -> feet (bottom)
    # boxes closer than the smallest plausible spacing: keep the more confident one
    changed = True
    while changed and len(idx) > 1:
        changed = False
        for a, b in zip(idx, idx[1:]):
            if np.linalg.norm(mm[a] - mm[b]) < lo:
                drop = a if conf[a] < conf[b] else b
                idx.remove(drop)
                rejected.append(drop)
                notes.append("boxes closer than a disc spacing")
                changed = True
                break
    gaps = np.array([np.linalg.norm(mm[a] - mm[b]) for a, b in zip(idx, idx[1:])])
    plausible = gaps[(gaps >= lo) & (gaps <= hi)]
    step = float(np.median(plausible)) if len(plausible) else (lo + hi) / 2
    # walk up from the lowest box; a gap of k spacings = k levels up
    chosen: dict[str, int] = {}
    level_idx = len(levels) - 1
    chosen[levels[level_idx]] = idx[-1]
    for k in range(len(idx) - 1, 0, -1):
        gap = gaps[k - 1]
        if gap > 2 * hi:
            notes.append("box far above the rest ignored")
            rejected.extend(idx[:k])
            break
        steps = max(1, int(round(gap / step)))
        if steps > 1:
            notes.append(f"{steps - 1} missing level(s) between boxes")
        level_idx -= steps
        if level_idx < 0:
            break  # thoracic discs above L1/L2 are harmless: stop counting
        chosen[levels[level_idx]] = idx[k - 1]
    if len(gaps) >= 2 and gaps[-1] < 0.6 * step:
        notes.append("lowest spacing short: possible box below L5/S1")
    missing = [lv for lv in levels if lv not in chosen]
    if missing:
        notes.append(f"missing {', '.join(missing)}")
    status = AMBIGUOUS if (missing or any("possible" in n or "missing" in n for n in notes)) else OK
    return Assignment(chosen, status, tuple(dict.fromkeys(notes)), tuple(rejected))


def assign_sides(
    xy_px: np.ndarray,
    conf: np.ndarray,
    spacing: tuple[float, float],
    *,
    midline_x: float | None = None,
    sep_mm: tuple[float, float] = (6.0, 50.0),
) -> Assignment:
    """Assign 'left'/'right' on one axial slice; larger column = patient left.

    Takes the most confident pair whose left-right distance lies in sep_mm and whose
    vertical offset is under half the largest separation. With a single box, its side
    comes from `midline_x` (px; e.g. the canal centre or the image centre) and the
    status is ambiguous.
    """
    conf = np.asarray(conf, float).reshape(-1)
    mm = _to_mm(xy_px, spacing)
    if len(mm) == 0:
        return Assignment({}, AMBIGUOUS, ("no boxes",))
    lo, hi = sep_mm
    best, best_score = None, -np.inf
    for i in range(len(mm)):
        for j in range(i + 1, len(mm)):
            dx, dy = abs(mm[i, 0] - mm[j, 0]), abs(mm[i, 1] - mm[j, 1])
            if lo <= dx <= hi and dy <= hi / 2 and conf[i] + conf[j] > best_score:
                best, best_score = (i, j), conf[i] + conf[j]
    if best is not None:
        i, j = best
        left, right = (i, j) if mm[i, 0] > mm[j, 0] else (j, i)
        return Assignment({"left": int(left), "right": int(right)})
    top = int(np.argmax(conf))
    if midline_x is None:
        return Assignment({}, AMBIGUOUS, ("single box and no midline",))
    side = "left" if float(np.asarray(xy_px, float).reshape(-1, 2)[top, 0]) > midline_x else "right"
    return Assignment({side: top}, AMBIGUOUS, ("single box: side from the midline",))


def top_per_class(cls: np.ndarray, conf: np.ndarray, names: tuple[str, ...]) -> Assignment:
    """The notebook's post-processing: the most confident box of every class."""
    cls, conf = np.asarray(cls, int).reshape(-1), np.asarray(conf, float).reshape(-1)
    chosen: dict[str, int] = {}
    for c, name in enumerate(names):
        hits = np.flatnonzero(cls == c)
        if len(hits):
            chosen[name] = int(hits[np.argmax(conf[hits])])
    missing = [n for n in names if n not in chosen]
    notes = (f"missing {', '.join(missing)}",) if missing else ()
    return Assignment(chosen, AMBIGUOUS if missing else OK, notes)
