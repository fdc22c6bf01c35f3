"""`train_classifier` stage: one timm model per fold, out-of-fold probabilities.

Reads the ROI store, labels.parquet and folds.parquet; fold k trains on the other
folds and validates (early stopping, OOF probabilities) on fold k. Writes
models/classifier/fold_<k>.pt, data/processed/oof.parquet,
metrics/classifier/fold_<k>.csv (one row per epoch), metrics/classifier.json (headline)
and metrics/classifier.details.json (per fold). Times go to MLflow only.
MLflow: one parent run, one nested run per fold with per-epoch metrics and its checkpoint.

`torchrun --nproc_per_node=N -m lsdc.cli train-classifier` trains each fold with
DistributedDataParallel (lsdc.classify.distributed); train.batch_size stays the global batch.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lsdc import headline, metrics, schema, tracking
from lsdc import paths as lsdc_paths
from lsdc.classify import augment, data, distributed, layout
from lsdc.classify import oof as oof_table
from lsdc.classify.engine import CSV_COLUMNS, train_fold
from lsdc.classify.model import check_pretrained, make_checkpoint
from lsdc.params import Params
from lsdc.rois import INDEX_FILE

log = logging.getLogger(__name__)

STAGE = "train_classifier"


@dataclass(frozen=True)
class Paths:
    rois_dir: Path = lsdc_paths.ROIS_DIR
    labels: Path = lsdc_paths.LABELS_FILE
    folds: Path = lsdc_paths.FOLDS_FILE
    checkpoints: Path = lsdc_paths.CLASSIFIER_DIR
    oof: Path = lsdc_paths.OOF_FILE
    curves: Path = lsdc_paths.CLASSIFIER_CURVES_DIR
    summary: Path = lsdc_paths.CLASSIFIER_METRICS


def run(params: Params, paths: Paths = Paths()) -> dict[str, Any]:
    """Train every fold; write checkpoints, OOF table, curves and summary; return the summary.

    Under torchrun every rank trains (DistributedDataParallel); rank 0 alone writes the
    outputs and logs MLflow, and the other ranks return an empty dict.
    """
    with distributed.session(params.runtime.train_device) as ctx:
        return _run(params, paths, ctx)


@contextlib.contextmanager
def _no_run(*_: Any, **__: Any) -> Iterator[None]:
    yield None


def _run(params: Params, paths: Paths, ctx: distributed.Context) -> dict[str, Any]:
    start = time.perf_counter()
    main = ctx.is_main
    check_pretrained(params.model.name, params.model.pretrained, params.model.weights)  # before any work
    store = data.load_store(paths.rois_dir)
    labels = data.load_labels(paths.labels)
    folds = data.load_folds(paths.folds)
    study_ids = folds["study_id"].to_numpy()
    fold_of = folds["fold"].to_numpy()
    y = data.label_array(labels, study_ids, where=str(paths.labels))
    channels = layout.store_channels(store.index, where=str(paths.rois_dir / INDEX_FILE))
    keys = layout.build_layout(params.train.layout, channels)
    rows, present = layout.assemble(store.index, study_ids, keys, where=str(paths.rois_dir / INDEX_FILE))
    distributed.local_batch_size(params.train.batch_size, ctx)  # fail before any output is touched
    log.info("%d studies, %d folds, layout %s: %d channels of %d px",
             len(study_ids), len(np.unique(fold_of)), params.train.layout, len(keys), store.roi_size)
    if main:
        for p in (paths.checkpoints, paths.curves, paths.oof.parent, paths.summary.parent):
            p.mkdir(parents=True, exist_ok=True)
        for old in list(paths.checkpoints.glob("fold_*.pt")) + list(paths.curves.glob("fold_*.csv")):
            old.unlink()  # a stage rewrites its outs completely
    stage_run = tracking.stage_run if main else _no_run  # one MLflow parent run, from rank 0
    oof_probs = np.full((len(study_ids), len(schema.LABEL_COLUMNS), 3), np.nan)
    summary: dict[str, Any] = {"layout": params.train.layout, "in_chans": len(keys),
                               "model": params.model.name, "folds": {}}
    if ctx.distributed:
        summary["processes"] = ctx.world_size
    with stage_run(STAGE, params) as parent:
        if main:
            tracking.set_tags({"layout": params.train.layout, "in_chans": len(keys),
                               "processes": ctx.world_size})
        for k in sorted(np.unique(fold_of)):
            k = int(k)
            is_val = fold_of == k
            transform = augment.build_augment(params.train.aug, seed=params.seed + k)
            train_set = data.StudyCrops(store.crops, rows[~is_val], present[~is_val], y[~is_val], transform,
                                        seed=params.seed + k, keys=keys, swap_p=params.train.aug.swap_p)
            val_set = data.StudyCrops(store.crops, rows[is_val], present[is_val], y[is_val], keys=keys)
            with stage_run(STAGE, params, run_name=f"fold_{k}", nested=True, tags={"fold": str(k)}):
                curve_path = paths.curves / f"fold_{k}.csv"

                def on_epoch(row: dict[str, Any], path: Path = curve_path) -> None:
                    tracking.log_metrics(row, step=int(row["epoch"]))
                    frame = pd.DataFrame([row])[list(CSV_COLUMNS)]
                    frame.to_csv(path, mode="a", header=not path.exists(), index=False)

                result = train_fold(k, train_set, val_set, params.model, params.train,
                                    seed=params.seed + k, on_epoch=on_epoch, ctx=ctx,
                                    loader_workers=params.runtime.loader_workers)
                if result is None:  # a rank other than 0
                    continue
                oof_probs[is_val] = result.val_probs
                ckpt_path = paths.checkpoints / f"fold_{k}.pt"
                torch.save(make_checkpoint(result.model, params.model.name, keys, store.roi_size,
                                           params.flat(), layout_name=params.train.layout, fold=k,
                                           best_epoch=result.best_epoch), ckpt_path)
                fold_score = metrics.competition_score(y[is_val], result.val_probs)
                fold_summary = {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
                                "score": fold_score.total, "n_val": int(is_val.sum())}
                summary["folds"][f"fold_{k}"] = fold_summary
                tracking.log_metrics({"best_" + k2: v for k2, v in fold_summary.items()})
                tracking.log_metrics({"seconds": round(result.seconds, 1)})  # MLflow only, never a DVC out
                tracking.log_artifact(ckpt_path)
                tracking.log_artifact(curve_path)
            if main:
                tracking.log_metrics({f"fold_{k}": fold_summary})
        if not main:
            return {}
        oof_table.write(paths.oof, study_ids, fold_of, oof_probs)
        summary["oof_score"] = metrics.competition_score(y, oof_probs).as_dict()
        headline.write("classifier", summary, paths.summary)
        # wall-clock time: MLflow and the returned dict only; in the DVC out it would change dvc.lock
        seconds = round(time.perf_counter() - start, 1)
        tracking.log_metrics({"oof_score": summary["oof_score"], "seconds": seconds})
        tracking.log_artifact(paths.summary)
        tracking.log_artifact(headline.details_path(paths.summary))
        log.info("OOF competition score %.4f in %.0f s (run %s)", summary["oof_score"]["total"],
                 seconds, parent.info.run_id)
    return {**summary, "_seconds": seconds}
