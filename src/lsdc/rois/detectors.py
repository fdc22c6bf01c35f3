"""Detectors behind one small interface, so the trained YOLO models or a stand-in
(tests) can drive the extraction.

`points(plane, images, spacings, sides, midlines)` returns one row per assigned point
(lsdc.detect.infer.POINT_COLUMNS: image, level, side, x, y, conf, ...), images
predicted in batches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from lsdc.params import Detect

log = logging.getLogger(__name__)


class Detectors(Protocol):
    def points(self, plane: str, images: Sequence[np.ndarray], spacings: Sequence[tuple[float, float]],
               sides: Sequence[str | None] | None = None,
               midlines: Sequence[float | None] | None = None) -> pd.DataFrame: ...


def empty_points() -> pd.DataFrame:
    from lsdc.detect.infer import POINT_COLUMNS

    return pd.DataFrame(columns=list(POINT_COLUMNS))


class YoloDetectors:
    """The three trained detectors `<models_dir>/<plane>.pt`, loaded once on first use."""

    def __init__(self, models_dir: str | Path, cfg: Detect, batch: int = 32, device: str = "cpu"):
        self.models_dir, self.cfg, self.batch, self.device = Path(models_dir), cfg, batch, device
        self._models: dict[str, object] = {}

    def weights(self, plane: str) -> Path:
        return self.models_dir / f"{plane}.pt"

    def model(self, plane: str):
        if plane not in self._models:
            from lsdc.detect import infer, labels

            model = infer.load_detector(self.weights(plane))
            names = tuple(model.names[k] for k in sorted(model.names))
            expected = labels.class_names(plane, self.cfg.export.classes)
            if names != expected:
                raise ValueError(f"{self.weights(plane)}: detector classes {names} do not match "
                                 f"detect.export.classes={self.cfg.export.classes!r} (expected {expected})")
            self._models[plane] = model
        return self._models[plane]

    def points(self, plane, images, spacings, sides=None, midlines=None) -> pd.DataFrame:
        if len(images) == 0:
            return empty_points()
        from lsdc.detect import infer

        boxes = infer.detect_boxes(self.model(plane), images, self.cfg, self.batch, self.device)
        if midlines is None:
            midlines = [np.shape(im)[1] / 2 for im in images]
        return infer.points_table(boxes, plane, self.cfg, spacings, sides, midlines)
