"""Which level or side a detected box is: a deterministic step after detection.

Levels (sagittal slices), `assign_levels`: boxes closer than half a disc spacing are
merged; the remaining boxes are linked into the longest chain that climbs from the feet
towards the head with a plausible disc spacing and with continuity of direction and
spacing from one link to the next (a real lumbar spine bends up to ~50 degrees between
its L1/L2->L2/L3 and L4/L5->L5/S1 directions and lies up to ~16 mm off a straight line,
so no global line or curve is imposed: each link is judged against its neighbour). A
link of about two spacings counts one missing disc. Levels are counted up from the
chain's lowest box, taken as L5/S1.

The count is anchored only when the chain spans exactly the five lumbar levels without a
gap (or the caller vouches for its lowest box, `lowest_is_l5s1`), or when a longer chain
has end boxes much weaker than the rest (a thoracic disc or a sacral line the detector
was taught to ignore). Anything else - fewer than five levels, a gap, more boxes than
lumbar levels of equal strength, a weak box at an end of the chain, a box below the
chain left out of it, a short lowest spacing - returns status 'ambiguous' with notes:
the names are then the best guess from the bottom and callers must not use them as if
known (lsdc.rois resolves them from the other plane or marks their crops imputed).

Sides (axial slices), `assign_sides`: the pair of boxes whose left-right distance is
plausible; which one is patient left comes from the slice's ImageOrientationPatient
(`left_on_larger_col`: the row direction's x component is positive, i.e. the image
column increases towards patient left, +x in LPS) - a mirrored series flips it.

All distances are in mm through the pixel spacing (row, col).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lsdc import schema

OK, AMBIGUOUS = "ok", "ambiguous"
FAINT_L5S1 = "L5/S1 may be faint"  # in the notes when weak boxes below the chain were left out


@dataclass(frozen=True)
class Assignment:
    """Chosen box index per level (or side), plus what was doubtful."""

    chosen: dict[str, int]
    status: str = OK
    notes: tuple[str, ...] = ()
    rejected: tuple[int, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.status == OK


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


@dataclass(frozen=True)
class ChainRules:
    """What one link of the disc chain may look like (see assign_levels)."""

    spacing_mm: tuple[float, float] = (14.0, 60.0)  # one disc spacing
    max_turn_deg: float = 45.0  # direction change between consecutive links (per disc step)
    max_ratio: float = 1.6  # ratio of consecutive per-step spacings
    max_tilt_deg: float = 70.0  # angle of a link from the image's head direction


def _chain(mm: np.ndarray, conf: np.ndarray, idx: list[int], head: np.ndarray, r: ChainRules
           ) -> tuple[list[int], list[int]]:
    """Longest chain feet -> head: (box indices bottom first, disc steps of each link 1/2).

    Dynamic programme over states (previous box, last box, steps of the last link); a
    transition is allowed when the new link keeps the spacing ratio and the turn within
    the rules. Ranking: more boxes net of the missed discs the chain claims (a link read as two
    spacings must pay for itself: otherwise stray boxes beside a regular spine win a chain of
    double links that names every level above L5/S1 wrong), then fewer gaps, then more
    confidence minus turning."""
    lo, hi = r.spacing_mm
    order = sorted(idx, key=lambda i: float(mm[i] @ head))
    cos_tilt = np.cos(np.deg2rad(r.max_tilt_deg))
    links: dict[int, list[tuple[int, int, float, np.ndarray]]] = {i: [] for i in order}
    for a, i in enumerate(order):
        for j in order[a + 1:]:
            d = mm[j] - mm[i]
            length = float(np.linalg.norm(d))
            if length < 1e-9 or (d / length) @ head < cos_tilt:
                continue
            for k in (1, 2):
                if k * lo <= length <= k * hi:
                    links[i].append((j, k, length / k, d / length))
    # best[(i, j, k)] = (rank tuple, chain list, steps list)
    best: dict[tuple[int, int, int], tuple[tuple, list[int], list[int]]] = {}
    for i in order:  # feet first: every state's predecessors are final before it extends
        for j, k, _, _ in links[i]:
            key = (i, j, k)
            if key not in best:
                best[key] = ((2 - (k - 1), -(k - 1), conf[i] + conf[j]), [i, j], [k])
        for (p, q, kq), (rank, chain, steps) in list(best.items()):
            if q != i:
                continue
            dq = mm[q] - mm[p]
            sq = float(np.linalg.norm(dq)) / kq
            dq = dq / np.linalg.norm(dq)
            for j, k, step, dj in links[i]:
                ratio = step / sq
                turn = np.degrees(np.arccos(np.clip(dq @ dj, -1.0, 1.0)))
                if not (1 / r.max_ratio <= ratio <= r.max_ratio) or turn > r.max_turn_deg * (1.5 if max(k, kq) > 1 else 1.0):
                    continue
                new = (rank[0] + 1 - (k - 1), rank[1] - (k - 1), rank[2] + conf[j] - turn / 180.0)
                key = (i, j, k)
                if key not in best or new > best[key][0]:
                    best[key] = (new, chain + [j], steps + [k])
    if not best:
        top = max(idx, key=lambda i: conf[i])
        return [top], []
    _, chain, steps = max(best.values(), key=lambda v: v[0])
    return chain, steps


def assign_levels(
    xy_px: np.ndarray,
    conf: np.ndarray,
    spacing: tuple[float, float],
    *,
    spacing_mm: tuple[float, float] = (14.0, 60.0),
    max_turn_deg: float = 45.0,
    max_ratio: float = 1.6,
    max_tilt_deg: float = 70.0,
    weak_ratio: float = 0.5,
    trim_ratio: float = 0.25,
    head: tuple[float, float] = (0.0, -1.0),
    lowest_is_l5s1: bool = False,
    anchor_px: np.ndarray | None = None,
    levels: tuple[str, ...] = schema.LEVELS,
    max_offaxis_mm: float | None = None,
) -> Assignment:
    """Name the boxes (centres in px) of one sagittal slice L1/L2..L5/S1 (see module doc).

    `head`: the image direction (column, row) towards the patient's head; (0, -1) = up,
    as in a sagittal slice whose column direction points to the feet (IOP C_z < 0).
    `weak_ratio`: an end box of the chain is 'weak' when its confidence is below this
    share of the median of the others. `lowest_is_l5s1`: the caller has evidence (e.g.
    another plane, a sacrum detection) that the chain's lowest box is L5/S1.
    `trim_ratio`: boxes at the bottom of the chain under this share of the median confidence
    of the boxes above are left out of the count (a sacral line; the count stays in doubt).
    `anchor_px`: the centre (px) of a box the detector classed as L5/S1 itself: boxes below
    it are left out and the count starts there (doubt if it does not start the chain).
    `max_offaxis_mm` is accepted for compatibility and unused (no global axis any more).
    Returns the chosen box per level; status 'ambiguous' whenever the count is not anchored.
    """
    del max_offaxis_mm
    conf = np.asarray(conf, float).reshape(-1)
    mm = _to_mm(xy_px, spacing)
    if len(mm) == 0:
        return Assignment({}, AMBIGUOUS, ("no boxes",))
    h = np.asarray(head, float) * np.array([spacing[1], spacing[0]])
    h = h / np.linalg.norm(h)
    rules = ChainRules(tuple(spacing_mm), max_turn_deg, max_ratio, max_tilt_deg)
    lo, hi = rules.spacing_mm
    notes: list[str] = []
    idx = _merge_close(mm, conf, list(range(len(mm))), lo / 2)
    merged = [i for i in range(len(mm)) if i not in idx]
    anchor = None
    if anchor_px is not None:  # the surviving box at the anchor; nothing below it is lumbar
        a_mm = _to_mm(np.asarray(anchor_px, float).reshape(1, 2), spacing)[0]
        anchor = min(idx, key=lambda i: float(np.linalg.norm(mm[i] - a_mm)))
        if float(np.linalg.norm(mm[anchor] - a_mm)) > lo / 2:
            anchor = None
    below = [i for i in idx if anchor is not None and float((mm[i] - mm[anchor]) @ h) < -lo / 2]
    chain, steps = _chain(mm, conf, [i for i in idx if i not in below], h, rules)
    if anchor is not None:
        if chain and chain[0] == anchor:
            lowest_is_l5s1 = True
            notes.append("count anchored at the box classed L5/S1")
        else:
            notes.append("the box classed L5/S1 does not start the disc chain")
    # weak boxes at the bottom of the chain (a sacral line, soft tissue below L5/S1) are
    # mostly not discs: the count starts at the lowest box about as confident as the discs
    # above it. A faint true L5/S1 looks the same, so the count stays in doubt.
    trimmed = 0
    while not lowest_is_l5s1 and len(chain) > 2 and conf[chain[0]] < trim_ratio * float(np.median(conf[chain[1:]])):
        chain, steps = chain[1:], steps[1:]
        trimmed += 1
    off = [i for i in idx if i not in chain and i not in below]
    if off:
        notes.append(f"{len(off)} box(es) off the disc chain")
    n_levels = len(levels)
    slots = 1 + sum(steps)
    gaps = sum(k - 1 for k in steps)
    doubt = False
    if anchor is not None and not lowest_is_l5s1:
        doubt = True
    if trimmed:
        notes.append(f"{trimmed} weak box(es) below the lowest confident disc left out: {FAINT_L5S1}")
        doubt = True
    if gaps:
        notes.append(f"{gaps} missing level(s) between boxes")
        doubt = True
    lowest = chain[0]
    if len(steps):
        step_mm = float(np.median([np.linalg.norm(mm[b] - mm[a]) / k for a, b, k in zip(chain, chain[1:], steps)]))
        floor = weak_ratio * float(np.median(conf[chain]))
        near = [i for i in off if conf[i] >= floor
                and min(np.linalg.norm(mm[i] - mm[c]) for c in chain) <= 1.5 * step_mm]
        if near:
            notes.append(f"{len(near)} confident box(es) near the chain left out of it: the count may be off")
            doubt = True
    start = 0  # chain position (in slots from the bottom) named L5/S1
    if slots > n_levels and not lowest_is_l5s1:
        others = conf[chain]
        med = float(np.median(others))
        bottom_weak = conf[lowest] < weak_ratio * med
        top_weak = conf[chain[-1]] < weak_ratio * med
        if bottom_weak and not top_weak and slots == n_levels + 1 and steps[0] == 1:
            start = 1
            notes.append("weak box below L5/S1 ignored")
        elif not bottom_weak:
            extra_top = [i for i in chain[1:] if conf[i] < weak_ratio * med]
            positions = np.cumsum([0] + list(steps))
            lumbar_top = [i for i, pos in zip(chain, positions) if pos >= n_levels]
            if not (lumbar_top and set(lumbar_top) <= set(extra_top)):
                notes.append(f"{slots} levels in the chain, more than the {n_levels} lumbar ones: "
                             "the lowest box may lie below L5/S1")
                doubt = True
        else:
            notes.append("weak lowest box in a chain longer than the lumbar spine: L5/S1 uncertain")
            doubt = True
    elif slots < n_levels and not lowest_is_l5s1:
        notes.append("fewer levels than lumbar ones and nothing shows the lowest box is L5/S1")
        doubt = True
    elif slots == n_levels and not lowest_is_l5s1 and len(chain) >= 3:
        med = float(np.median(conf[chain[1:-1]]))
        if conf[chain[0]] < weak_ratio * med or conf[chain[-1]] < weak_ratio * med:
            notes.append("a weak box at an end of the chain: the count may be off by one")
            doubt = True
    if len(steps) >= 2 and start == 0 and not lowest_is_l5s1:
        per_step = [float(np.linalg.norm(mm[b] - mm[a])) / k for a, b, k in zip(chain, chain[1:], steps)]
        if per_step[0] < 0.6 * float(np.median(per_step[1:])):
            notes.append("lowest spacing short: possible box below L5/S1")
            doubt = True
    chosen: dict[str, int] = {}
    pos = 0
    for n, i in enumerate(chain):
        if n:
            pos += steps[n - 1]
        level = n_levels - 1 - (pos - start)
        if pos < start:
            continue
        if level < 0:
            break  # discs above L1/L2 are not lumbar: stop counting
        chosen[levels[level]] = i
    missing = [lv for lv in levels if lv not in chosen]
    if missing:
        notes.append(f"missing {', '.join(missing)}")
    rejected = tuple(merged + below + off + [i for i in chain if i not in chosen.values()])
    return Assignment(chosen, AMBIGUOUS if doubt else OK, tuple(dict.fromkeys(notes)), rejected)


def assign_sides(
    xy_px: np.ndarray,
    conf: np.ndarray,
    spacing: tuple[float, float],
    *,
    midline_x: float | None = None,
    sep_mm: tuple[float, float] = (6.0, 50.0),
    left_on_larger_col: bool = True,
) -> Assignment:
    """Assign 'left'/'right' on one axial slice.

    `left_on_larger_col`: whether the larger image column is patient left, from the
    slice's ImageOrientationPatient (`lsdc.dicom.larger_column_is_left`: the row
    direction's x component > 0); True for the usual axial orientation, False for a
    mirrored series.

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
        left, right = (i, j) if (mm[i, 0] > mm[j, 0]) == left_on_larger_col else (j, i)
        return Assignment({"left": int(left), "right": int(right)})
    top = int(np.argmax(conf))
    if midline_x is None:
        return Assignment({}, AMBIGUOUS, ("single box and no midline",))
    larger = float(np.asarray(xy_px, float).reshape(-1, 2)[top, 0]) > midline_x
    side = "left" if larger == left_on_larger_col else "right"
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
