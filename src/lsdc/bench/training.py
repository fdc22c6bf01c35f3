"""4. Classifier training throughput: studies per second per epoch of
lsdc.classify.engine.train_fold (the real training loop: augmentation, timm model,
AdamW, clipping, validation) and whether the data loader keeps up, i.e. the share of
the training pass spent waiting for the next batch.

The wait is measured by swapping, for the benchmark only, the DataLoader class that
engine uses for a subclass whose iterator times each `next()`; with num_workers = 0
that is the whole data preparation (read crops, augment, normalise, collate), with
workers it is the time the loop stalls because they are behind. The fold's training
rows are repeated until an epoch holds at least `min_studies` studies (throughput
does not depend on which studies they are). Loader settings are interleaved per repeat.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lsdc.bench.timing import median
from lsdc.params import Params

log = logging.getLogger(__name__)


class _TimedIterator:
    def __init__(self, inner, record: dict):
        self.inner, self.record = inner, record

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        try:
            item = next(self.inner)
        except StopIteration:
            self.record["end"] = time.perf_counter()
            raise
        finally:
            self.record["wait"] += time.perf_counter() - start
        self.record["batches"] += 1
        return item


@contextlib.contextmanager
def timed_loaders(records: list[dict], train_dataset) -> Iterator[None]:
    """Every DataLoader engine creates meanwhile appends one record per pass:
    kind ('train' when it iterates `train_dataset`, else 'val'), start, end, wait (s),
    batches, studies."""
    from lsdc.classify import engine

    original = engine.DataLoader

    class TimedDataLoader(original):
        def __iter__(self):
            record = {"kind": "train" if self.dataset is train_dataset else "val",
                      "start": time.perf_counter(), "end": float("nan"), "wait": 0.0, "batches": 0,
                      "studies": len(self.dataset)}
            records.append(record)
            return _TimedIterator(super().__iter__(), record)

    engine.DataLoader = TimedDataLoader
    try:
        yield
    finally:
        engine.DataLoader = original


def fold_sets(rois_dir: Path, labels_path: Path, folds_path: Path, params: Params, min_studies: int):
    """(train set with repeated rows, val set) of fold 0, augmentation as in training."""
    from lsdc.classify import augment, data, layout

    store = data.load_store(rois_dir)
    labels = data.load_labels(labels_path)
    folds = data.load_folds(folds_path)
    folds = folds[folds["study_id"].isin(store.index["study_id"].unique())]
    if folds.empty:
        raise ValueError(f"{rois_dir}: no studies of {folds_path} in the ROI store")
    ids, fold_of = folds["study_id"].to_numpy(), folds["fold"].to_numpy()
    y = data.label_array(labels, ids)
    keys = layout.build_layout(params.train.layout, layout.store_channels(store.index))
    rows, present = layout.assemble(store.index, ids, keys)
    val = fold_of == fold_of.min()
    reps = max(1, -(-min_studies // int((~val).sum())))
    tile = lambda a: np.concatenate([a[~val]] * reps)  # noqa: E731
    transform = augment.build_augment(params.train.aug, seed=params.seed)
    return (data.StudyCrops(store.crops, tile(rows), tile(present), tile(y), transform, keys=keys,
                            swap_p=params.train.aug.swap_p),
            data.StudyCrops(store.crops, rows[val], present[val], y[val], keys=keys), len(keys))


def run(rois_dir: Path, labels_path: Path, folds_path: Path, params: Params, repeats: int = 3,
        loader_workers: tuple[int, ...] = (0, 2), min_studies: int = 48) -> dict:
    from lsdc.classify.engine import train_fold

    train_set, val_set, channels = fold_sets(rois_dir, labels_path, folds_path, params, min_studies)
    configs = list(dict.fromkeys(loader_workers))
    passes: dict[int, list[dict]] = {w: [] for w in configs}
    for r in range(repeats):
        for w in (configs if r % 2 == 0 else configs[::-1]):
            cfg = dataclasses.replace(params.train, epochs=1)
            records: list[dict] = []
            with timed_loaders(records, train_set):
                train_fold(0, train_set, val_set, params.model, cfg, seed=params.seed + r,
                           loader_workers=w, device="cpu")
            passes[w] += [rec for rec in records if rec["kind"] == "train"]
            passes[w][-1]["val_s"] = sum(rec["end"] - rec["start"] for rec in records if rec["kind"] == "val")
    out = {}
    for w, recs in passes.items():
        secs = [rec["end"] - rec["start"] for rec in recs]
        waits = [rec["wait"] / (rec["end"] - rec["start"]) for rec in recs]
        out[f"num_workers_{w}"] = {
            "studies_per_s": round(median([rec["studies"] / s for rec, s in zip(recs, secs)]), 2),
            "train_pass_s": round(median(secs), 3),
            "data_wait_share": round(median(waits), 3),
            "val_pass_s": round(median([rec["val_s"] for rec in recs]), 3),
        }
    best = max(out, key=lambda k: out[k]["studies_per_s"])
    return {
        "model": params.model.name, "channels": channels, "roi_size": int(train_set.crops.shape[-1]),
        "batch_size": params.train.batch_size, "train_studies_per_epoch": len(train_set),
        "val_studies": len(val_set), "repeats": repeats, "device": "cpu", "loaders": out,
        "params_num_workers": params.runtime.loader_workers, "fastest": best,
        "loader_keeps_up": bool(out[best]["data_wait_share"] <= 0.1),
    }
