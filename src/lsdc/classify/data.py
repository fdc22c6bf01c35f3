"""Inputs of the classifier: the ROI store, labels and folds as arrays, and the Dataset.

Formats: docs/data_formats.md (`data/processed/rois/`, `labels.parquet`, `folds.parquet`).
Labels are grade codes 0/1/2 with schema.IGNORE_INDEX for a missing grade, in
schema.LABEL_COLUMNS order.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from lsdc import index as ingest_index
from lsdc import schema
from lsdc.classify import augment, layout
from lsdc.rois import CROPS_FILE, INDEX_FILE

log = logging.getLogger(__name__)



class RoiStore(NamedTuple):
    crops: np.ndarray  # uint8 (N, S, S), memory-mapped
    index: pd.DataFrame  # one row per crop

    @property
    def roi_size(self) -> int:
        return int(self.crops.shape[-1])


def load_store(rois_dir: str | Path) -> RoiStore:
    """Open crops.npy (memory-mapped) and index.parquet and check that they agree."""
    rois_dir = Path(rois_dir)
    crops_path, index_path = rois_dir / CROPS_FILE, rois_dir / INDEX_FILE
    for path in (crops_path, index_path):
        if not path.exists():
            raise FileNotFoundError(f"{path}: ROI store file not found (run extract_rois first)")
    crops = np.load(crops_path, mmap_mode="r")
    if crops.dtype != np.uint8 or crops.ndim != 3 or crops.shape[1] != crops.shape[2]:
        raise ValueError(f"{crops_path}: expected a uint8 (N, S, S) array, got {crops.dtype} {crops.shape}")
    index = pd.read_parquet(index_path)
    layout.store_channels(index, where=str(index_path))  # column and vocabulary checks
    if len(index) != len(crops) or not np.array_equal(index["crop_index"].to_numpy(), np.arange(len(crops))):
        raise ValueError(f"{index_path}: crop_index must be 0..{len(crops) - 1} in order "
                         f"(one row per crop of {crops_path}); got {len(index)} rows")
    return RoiStore(crops, index)


def load_labels(path: str | Path) -> pd.DataFrame:
    """labels.parquet (long) -> wide frame indexed by study_id, LABEL_COLUMNS, int64 codes."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: labels table not found (run ingest first)")
    long = ingest_index.check_columns("labels", pd.read_parquet(path), path)
    unknown = sorted(set(long["column"]) - set(schema.LABEL_COLUMNS))
    if unknown:
        raise ValueError(f"{path}: unknown label column(s) {unknown[:5]}")
    codes = long["severity_code"].astype("int64")
    bad = ~codes.isin([0, 1, 2, schema.IGNORE_INDEX])
    if bad.any():
        raise ValueError(f"{path}: severity_code must be 0/1/2 or {schema.IGNORE_INDEX}; "
                         f"found {sorted(set(codes[bad]))[:5]}")
    if long.duplicated(["study_id", "column"]).any():
        raise ValueError(f"{path}: duplicate (study_id, column) rows")
    wide = (long.assign(severity_code=codes)
            .pivot(index="study_id", columns="column", values="severity_code")
            .reindex(columns=list(schema.LABEL_COLUMNS)))
    return wide.fillna(schema.IGNORE_INDEX).astype("int64")


def load_folds(path: str | Path) -> pd.DataFrame:
    """folds.parquet -> frame (study_id, fold), sorted by study_id."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: folds table not found (run the folds stage first)")
    folds = pd.read_parquet(path)
    missing = [c for c in ("study_id", "fold") if c not in folds.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    if folds["study_id"].duplicated().any():
        raise ValueError(f"{path}: a study appears in more than one row")
    folds = folds[["study_id", "fold"]].astype("int64")
    return folds.sort_values("study_id", ignore_index=True)


def label_array(labels: pd.DataFrame, study_ids: np.ndarray, where: str = "labels") -> np.ndarray:
    """(n, 25) int64 codes of the given studies; raises if a study has no labels."""
    absent = [int(s) for s in study_ids if s not in labels.index]
    if absent:
        raise ValueError(f"{where}: no labels for {len(absent)} fold studies, e.g. {absent[:3]}")
    return labels.loc[np.asarray(study_ids)].to_numpy(np.int64)


class StudyCrops(Dataset):
    """One item per study: (float32 (C, S, S) normalised input, int64 (25,) labels).

    The transform is reseeded per item from (seed, epoch, index): the augmentation of a
    sample depends on nothing else (not on loader workers, DDP ranks or visiting order).
    `keys`: the channel keys of the layout (the model of the crops layout needs them).
    `swap_p`: probability of the left<->right mirror of a training study (crops and
    labels; layout.mirror_permutation), applied only with a transform and only where the
    layout is closed under the mirror (not the notebook's).
    """

    def __init__(self, crops: np.ndarray, rows: np.ndarray, present: np.ndarray,
                 labels: np.ndarray | None = None, transform=None, seed: int = 0,
                 keys: list[str] | None = None, swap_p: float = 0.0):
        self.crops, self.rows, self.present = crops, rows, present
        self.labels = labels
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self.keys = list(keys) if keys is not None else None
        self.swap_p = float(swap_p)
        self.mirror = None
        if self.swap_p > 0 and transform is not None and labels is not None:
            if self.keys is None:
                raise ValueError("StudyCrops: swap_p > 0 needs the layout's channel keys")
            self.mirror = layout.mirror_permutation(self.keys)
            if self.mirror is None:
                log.info("left-right swap off: the layout is not closed under the mirror")
        self.label_mirror = layout.mirror_labels()

    def layout_keys(self) -> list[str]:
        """The channel keys; without them, placeholders (enough for the stacked models)."""
        return self.keys if self.keys is not None else [f"channel_{i}" for i in range(self.rows.shape[1])]

    def set_epoch(self, epoch: int) -> None:
        """Call before each epoch's loader iteration (workers copy the dataset when it starts)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rows)

    def stack(self, i: int) -> np.ndarray:
        """The raw uint8 (C, S, S) crops of study i in layout order."""
        return np.asarray(self.crops[self.rows[i]])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        stack, present = self.stack(i), self.present[i]
        y = self.labels[i] if self.labels is not None else np.full(len(schema.LABEL_COLUMNS), schema.IGNORE_INDEX)
        if self.mirror is not None:
            rng = np.random.default_rng([self.seed, self.epoch, i, 1])
            if rng.random() < self.swap_p:
                source, flip = self.mirror
                stack, present, y = stack[source], present[source], np.asarray(y)[self.label_mirror]
                stack[flip] = stack[flip][..., ::-1]
        if self.transform is not None:
            augment.reseed(self.transform, (self.seed, self.epoch, i))
        stack = augment.apply(self.transform, np.ascontiguousarray(stack))
        x = torch.from_numpy(augment.normalise(stack, present))
        return x, torch.from_numpy(np.asarray(y, dtype=np.int64))
