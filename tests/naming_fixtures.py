"""Stand-in box sources for the level-naming table (lsdc.detect.naming_eval): boxes at
the annotated points each slice's series carries, optionally without some levels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lsdc.detect import infer


class TruthBoxes:
    """One box per annotated point of the slice's series and side (sagittal) or of the
    slice itself (axial), at confidence 0.9; `drop` levels are left out (a detector that
    never finds them)."""

    def __init__(self, drop: Sequence[str] = ()):
        self.drop = set(drop)
        self.calls: list[str] = []

    def boxes(self, plane: str, arrays, truth: pd.DataFrame) -> list[infer.Boxes]:
        self.calls.append(plane)
        keep = truth[~truth["level"].isin(self.drop)]
        by_image = dict(tuple(keep.groupby("image")))
        out = []
        for i in range(len(arrays)):
            t = by_image.get(i)
            xy = t[["x", "y"]].to_numpy(float) if t is not None else np.zeros((0, 2))
            out.append(infer.Boxes(xy, np.full(len(xy), 0.9), np.zeros(len(xy), int)))
        return out
