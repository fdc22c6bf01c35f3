"""Small ROI stores, labels and folds tables in the formats of docs/data_formats.md,
for the classifier and evaluate tests (and for timing the stage before extract_rois exists).

`write_fake_inputs` plants a learnable signal: the crops at a label's own plane, level
and side get a bright centre square whose brightness grows with the label's grade.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import schema

SIDES_OF_PLANE = {"sag_t1": ("left", "right"), "sag_t2": (None,), "ax_t2": ("left", "right")}


def store_rows(slices: dict[str, int]) -> list[tuple[str, str, str | None, int]]:
    """(plane, level, side, offset) of one study, in the order the fake store writes them."""
    out = []
    for plane in ("sag_t2", "sag_t1", "ax_t2"):  # not the anatomical order, on purpose
        half = slices[plane] // 2
        for level in schema.LEVELS:
            for side in SIDES_OF_PLANE[plane]:
                for offset in range(-half, slices[plane] - half):
                    out.append((plane, level, side, offset))
    return out


def write_store(rois_dir: Path, study_ids, crops: np.ndarray, rows, source=None) -> None:
    """crops: (n_studies * len(rows), S, S) uint8 in study-major, row-minor order."""
    rois_dir.mkdir(parents=True, exist_ok=True)
    np.save(rois_dir / "crops.npy", crops)
    recs = []
    for sid in study_ids:
        for plane, level, side, offset in rows:
            recs.append(dict(study_id=int(sid), split="train", plane=plane, series_id=1, instance_number=1,
                             slice_offset=offset, level=level, side=side, cx=0.0, cy=0.0,
                             px=0.0, py=0.0, pz=0.0, confidence=float("nan"), source="detected"))
    index = pd.DataFrame(recs)
    index.insert(0, "crop_index", np.arange(len(index), dtype=np.int64))
    if source is not None:
        index["source"] = source
    index.to_parquet(rois_dir / "index.parquet", index=False)


def labels_long(study_ids, codes: np.ndarray) -> pd.DataFrame:
    recs = []
    for sid, row in zip(study_ids, codes):
        for lab, code in zip(schema.LABELS, row):
            recs.append(dict(study_id=int(sid), column=lab.column, condition=lab.condition, level=lab.level,
                             severity=None if code < 0 else schema.SEVERITIES[code], severity_code=int(code)))
    frame = pd.DataFrame(recs)
    frame["severity_code"] = frame["severity_code"].astype("int8")
    return frame


def write_fake_inputs(root: Path, n_studies: int = 24, roi_size: int = 16, n_folds: int = 3,
                      slices: dict[str, int] | None = None, seed: int = 0,
                      missing_label_rate: float = 0.03, missing_crop_rate: float = 0.02) -> dict[str, Path]:
    """A tiny ROI store + labels.parquet + folds.parquet under root; returns their paths."""
    rng = np.random.default_rng(seed)
    slices = slices or {"sag_t1": 1, "sag_t2": 1, "ax_t2": 1}
    rows = store_rows(slices)
    study_ids = np.sort(rng.choice(np.arange(1_000_000, 9_000_000), n_studies, replace=False))
    codes = rng.choice(3, size=(n_studies, len(schema.LABELS)), p=[0.7, 0.2, 0.1])
    codes[rng.random(codes.shape) < missing_label_rate] = schema.IGNORE_INDEX
    crops = rng.normal(60, 20, size=(n_studies, len(rows), roi_size, roi_size))
    lo, hi = roi_size // 4, roi_size - roi_size // 4
    for j, lab in enumerate(schema.LABELS):
        plane = schema.PLANE_OF_CONDITION[lab.condition]
        for r, (p, level, side, offset) in enumerate(rows):
            if p == plane and level == lab.level and side == lab.side:
                grade = np.clip(codes[:, j], 0, 2)  # a missing grade still has pixels (grade 0 here)
                crops[:, r, lo:hi, lo:hi] += (70.0 * grade - 10 * abs(offset))[:, None, None]
    crops = np.clip(crops, 0, 255).astype(np.uint8).reshape(-1, roi_size, roi_size)
    source = np.where(rng.random(len(crops)) < missing_crop_rate, "missing", "detected")
    crops[source == "missing"] = 0
    paths = {"rois": root / "rois", "labels": root / "index" / "labels.parquet",
             "folds": root / "folds.parquet"}
    write_store(paths["rois"], study_ids, crops, rows, source)
    paths["labels"].parent.mkdir(parents=True, exist_ok=True)
    labels_long(study_ids, codes).to_parquet(paths["labels"], index=False)
    folds = pd.DataFrame({"study_id": study_ids, "fold": np.arange(n_studies) % n_folds})
    folds.to_parquet(paths["folds"], index=False)
    return paths
