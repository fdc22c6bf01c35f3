"""Channel layouts: which ROI-store rows become which input channels of a study.

A channel key is `plane/level/side/offset`, e.g. `sag_t1/l4_l5/left/-1` or
`sag_t2/l1_l2/mid/0` (level as its slug; `mid` where the store's side is null, i.e.
the canal on sag_t2). Both layouts are built from the rows the store actually holds,
so they follow `rois.slices` without reading it.

`anatomical` (default): every (plane, level, side, offset) row of the store once, in
the fixed order plane (schema.PLANES: sag_t1, sag_t2, ax_t2) > level (L1/L2 .. L5/S1)
> side (left, right; mid) > offset (ascending).

`notebook`: the 60 channels of the seed notebook (the public Kaggle notebook this
repository ports; lsdc/__init__.py), 5 slices per slot: sag_t1 x 5 levels
(25), sag_t2 x 5 levels (25), ax_t2 x 2 sides (10), in that order. The store has no
single sag_t1 crop per level nor an axial series without levels, so a slot's five
channels are picked from an ordered list of candidate rows:
- sag_t1, level L: that level's right-side rows (offset ascending), then its left-side
  rows (offset ascending), i.e. across the patient as the notebook's five sagittal
  slices were;
- sag_t2, level L: that level's canal rows, offset ascending;
- ax_t2, side s: that side's offset-0 rows, one per level L1/L2 .. L5/S1 (the notebook
  took five axial slices, one per disc).
Five positions are taken evenly along the candidate list, rounding towards the ends
(`pick_five`), so with 5 candidates each is used once, with 3 (offsets -1, 0, 1) the
channels are -1, -1, 0, 1, 1, with 6 (two sides x 3 offsets) R-1, R0, R+1, L0, L+1.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from lsdc import schema

LAYOUTS: tuple[str, ...] = ("crops", "anatomical", "notebook")
NOTEBOOK_SLICES = 5
MID = "mid"  # side key of rows whose side is null (the canal)
SIDE_ORDER = {"left": 0, "right": 1, MID: 2}
INDEX_COLUMNS = ("crop_index", "study_id", "plane", "level", "side", "slice_offset", "source")


class Channel(NamedTuple):
    plane: str
    level: str  # RSNA level string, e.g. 'L4/L5'
    side: str  # 'left', 'right' or 'mid'
    offset: int

    @property
    def key(self) -> str:
        return f"{self.plane}/{schema.slug(self.level)}/{self.side}/{self.offset}"


def parse_key(key: str) -> Channel:
    """Inverse of Channel.key; ValueError if malformed."""
    parts = key.split("/")
    if len(parts) != 4 or parts[1] not in schema.LEVEL_OF_SLUG or parts[2] not in SIDE_ORDER:
        raise ValueError(f"malformed channel key {key!r}: expected plane/level_slug/side/offset")
    return Channel(parts[0], schema.LEVEL_OF_SLUG[parts[1]], parts[2], int(parts[3]))


def side_key(value: object) -> str:
    return value if isinstance(value, str) and value else MID


def store_channels(index: pd.DataFrame, where: str = "ROI index") -> list[Channel]:
    """The distinct (plane, level, side, offset) rows of a store index, in anatomical order."""
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}")
    bad_plane = sorted(set(index["plane"]) - set(schema.PLANES))
    bad_level = sorted(set(index["level"]) - set(schema.LEVELS))
    if bad_plane or bad_level:
        raise ValueError(f"{where}: unknown plane(s) {bad_plane} / level(s) {bad_level}")
    combos = {
        Channel(p, lv, side_key(s), int(o))
        for p, lv, s, o in zip(index["plane"], index["level"], index["side"], index["slice_offset"])
    }
    return sorted(combos, key=_anatomical_order)


def _anatomical_order(ch: Channel) -> tuple[int, int, int, int]:
    return (schema.PLANES.index(ch.plane), schema.LEVELS.index(ch.level), SIDE_ORDER[ch.side], ch.offset)


def pick_five(n: int) -> list[int]:
    """Five indices evenly along 0..n-1, rounding towards the nearer end (symmetric)."""
    if n < 1:
        raise ValueError("pick_five: no candidates")
    pos = np.linspace(0, n - 1, NOTEBOOK_SLICES)
    first = [max(0, math.ceil(p - 0.5)) for p in pos[:2]]
    return first + [int((n - 1) // 2)] + [n - 1 - i for i in reversed(first)]


def anatomical_layout(channels: list[Channel]) -> list[str]:
    return [ch.key for ch in sorted(channels, key=_anatomical_order)]


def notebook_layout(channels: list[Channel]) -> list[str]:
    def rows(plane: str, level: str | None = None, side: str | None = None,
             offset: int | None = None) -> list[Channel]:
        return [ch for ch in channels if ch.plane == plane and level in (None, ch.level)
                and side in (None, ch.side) and offset in (None, ch.offset)]

    slots: list[tuple[str, list[Channel]]] = []
    for level in schema.LEVELS:
        right = sorted(rows("sag_t1", level, "right"), key=lambda c: c.offset)
        left = sorted(rows("sag_t1", level, "left"), key=lambda c: c.offset)
        slots.append((f"sag_t1 {level}", right + left))
    for level in schema.LEVELS:
        slots.append((f"sag_t2 {level}", sorted(rows("sag_t2", level), key=lambda c: c.offset)))
    for side in ("left", "right"):
        per_level = sorted(rows("ax_t2", side=side, offset=0), key=_anatomical_order)
        slots.append((f"ax_t2 {side}", per_level))
    keys: list[str] = []
    for name, candidates in slots:
        if not candidates:
            raise ValueError(f"notebook layout: the ROI store has no rows for slot {name!r}")
        keys += [candidates[i].key for i in pick_five(len(candidates))]
    return keys


def build_layout(name: str, channels: list[Channel]) -> list[str]:
    """Channel keys of a layout; 'crops' reads the anatomical order (its model regroups
    the channels into one stack per plane/level/side: lsdc.classify.crops)."""
    if name in ("anatomical", "crops"):
        return anatomical_layout(channels)
    if name == "notebook":
        return notebook_layout(channels)
    raise ValueError(f"train.layout: unknown layout {name!r}; expected one of {LAYOUTS}")


def mirror_permutation(keys: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """The left<->right mirror of a study as (source channel of each channel, flip (C,) bool);
    None when the layout is not closed under the mirror (the notebook layout).

    The mirror reflects the patient through the mid-sagittal plane: left and right crops
    trade places (labels too: `mirror_labels`), on the sagittal planes the slice order
    across the patient reverses (a (plane, level, side) group's i-th offset takes the
    mirrored group's (n-1-i)-th; slices run left-right there) while the image is kept (a
    sagittal image has no left-right axis), and on the axial plane each image is flipped
    horizontally (left-right is the image's horizontal axis; the offsets run cranio-caudal
    and keep their order).
    """
    channels = [parse_key(k) for k in keys]
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, ch in enumerate(channels):
        groups.setdefault((ch.plane, ch.level, ch.side), []).append(i)
    other = {"left": "right", "right": "left", MID: MID}
    source = np.empty(len(keys), dtype=np.int64)
    for (plane, level, side), idx in groups.items():
        twin = groups.get((plane, level, other[side]))
        if twin is None or len(twin) != len(idx):
            return None
        mine = sorted(idx, key=lambda i: (channels[i].offset, i))
        theirs = sorted(twin, key=lambda i: (channels[i].offset, i))
        if plane != "ax_t2":
            theirs = theirs[::-1]
        for a, b in zip(mine, theirs):
            source[a] = b
    flip = np.array([ch.plane == "ax_t2" for ch in channels])
    return source, flip


def mirror_labels() -> np.ndarray:
    """(25,) index of each label's left<->right twin (the spinal labels map to themselves)."""
    where = {(lab.family, lab.level, lab.side): j for j, lab in enumerate(schema.LABELS)}
    other = {"left": "right", "right": "left", None: None}
    return np.array([where[(lab.family, lab.level, other[lab.side])] for lab in schema.LABELS], dtype=np.int64)


def assemble(index: pd.DataFrame, study_ids: np.ndarray, layout: list[str],
             where: str = "ROI index") -> tuple[np.ndarray, np.ndarray]:
    """(rows (n, C) int64 into crops.npy, present (n, C) bool) for studies x channel keys.

    A crop counts as absent when its `source` is 'missing'. Raises naming the study and
    channel when the store lacks a row the layout needs.
    """
    keys = [
        Channel(p, lv, side_key(s), int(o)).key
        for p, lv, s, o in zip(index["plane"], index["level"], index["side"], index["slice_offset"])
    ]
    table = pd.DataFrame({
        "study_id": index["study_id"].to_numpy(np.int64), "key": keys,
        "crop_index": index["crop_index"].to_numpy(np.int64),
        "present": (index["source"].astype(str) != "missing").to_numpy(),
    })
    dups = table.duplicated(["study_id", "key"])
    if dups.any():
        first = table[dups].iloc[0]
        raise ValueError(f"{where}: duplicate crop rows, e.g. study {first.study_id} {first.key}")
    wide = table.set_index(["study_id", "key"])
    want = pd.MultiIndex.from_product([np.asarray(study_ids, dtype=np.int64), layout], names=["study_id", "key"])
    got = wide.reindex(want)
    absent = got["crop_index"].isna().to_numpy()
    if absent.any():
        sid, key = want[int(np.flatnonzero(absent)[0])]
        raise ValueError(f"{where}: no crop row for study {sid} channel {key} "
                         f"({absent.sum()} missing rows; is the study in the store?)")
    n, c = len(study_ids), len(layout)
    rows = got["crop_index"].to_numpy(np.int64).reshape(n, c)
    present = got["present"].to_numpy(bool).reshape(n, c)
    return rows, present
