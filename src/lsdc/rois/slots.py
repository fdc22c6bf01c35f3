"""The fixed set of (plane, level, side, slice_offset) rows every study gets, in store order."""

from __future__ import annotations

from typing import NamedTuple

from lsdc import schema
from lsdc.params import Rois

SIDES = ("left", "right")


class Slot(NamedTuple):
    plane: str
    level: str
    side: str | None  # None for the canal on sag_t2
    offset: int


def offsets(n: int) -> list[int]:
    """Slice offsets for n slices: 3 -> [-1, 0, 1], 5 -> [-2..2], 2 -> [0, 1], 1 -> [0]."""
    if n < 1:
        raise ValueError(f"rois.slices: need at least 1 slice per plane, got {n}")
    first = -((n - 1) // 2)
    return list(range(first, first + n))


def plane_sides(plane: str) -> tuple[str | None, ...]:
    return (None,) if plane == "sag_t2" else SIDES


def study_slots(cfg: Rois) -> list[Slot]:
    """All rows of one study: plane (schema.PLANES order) > level > side (left, right) > offset."""
    return [
        Slot(plane, level, side, off)
        for plane in schema.PLANES
        for level in schema.LEVELS
        for side in plane_sides(plane)
        for off in offsets(getattr(cfg.slices, plane))
    ]
