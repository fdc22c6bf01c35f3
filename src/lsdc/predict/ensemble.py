"""Fold checkpoints -> one probability table per study; shared by `predict` and `predict-study`.

A study's probabilities are the mean over the fold models (models/classifier/fold_<k>.pt,
docs/data_formats.md "Classifier outputs") of each model's softmax over the study's crops,
assembled in that model's own channel layout. A label without evidence, i.e. whose
plane/level/side has no crop that is not 'missing' in the study's ROI rows (its series is
absent or unreadable, or no axial slice covers the level), gets the training prior instead.

The prior: the best constant prior (lsdc.metrics.best_constant_prior) of the train studies
in labels.parquet; without training labels (Kaggle inference) the mean of a `prior` entry
of the checkpoints when they carry one, else uniform (with a warning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lsdc import metrics, schema
from lsdc.classify import data, layout
from lsdc.classify.model import load_checkpoint, model_from_checkpoint, predict_probs

log = logging.getLogger(__name__)

CHECKPOINT_GLOB = "fold_*.pt"
CHUNK_STUDIES = 64  # studies whose crops are gathered at once (bounds memory on big test sets)


@dataclass(frozen=True)
class FoldModel:
    path: Path
    ckpt: dict[str, Any]
    module: Any = field(default=None, compare=False, repr=False)  # the built network (eval mode)

    @property
    def layout(self) -> list[str]:
        return list(self.ckpt["layout"])


@dataclass(frozen=True)
class Prior:
    probs: np.ndarray  # (25, 3)
    source: str  # 'labels' | 'checkpoints' | 'uniform'


def checkpoint_paths(classifier_dir: str | Path) -> list[Path]:
    classifier_dir = Path(classifier_dir)
    paths = sorted(classifier_dir.glob(CHECKPOINT_GLOB))
    if not paths:
        raise FileNotFoundError(f"{classifier_dir}: no classifier checkpoints ({CHECKPOINT_GLOB}); "
                                "run `lsdc train-classifier` or point --models-dir at trained models")
    return paths


def check_checkpoint(path: Path, ckpt: dict[str, Any], roi_size: int, channel_keys: set[str]) -> None:
    """Raise ValueError naming the file when the checkpoint cannot read these crops."""
    keys = list(ckpt["layout"])
    if int(ckpt["in_chans"]) != len(keys):
        raise ValueError(f"{path}: in_chans {ckpt['in_chans']} but its layout lists {len(keys)} channels; "
                         "the checkpoint is inconsistent")
    if int(ckpt["roi_size"]) != int(roi_size):
        raise ValueError(f"{path}: model trained on {ckpt['roi_size']}-px crops but the crops here are "
                         f"{roi_size} px (rois.roi_size); re-extract with rois.roi_size={ckpt['roi_size']} "
                         "or use models trained on these crops")
    try:
        for key in keys:
            layout.parse_key(key)
    except ValueError as e:
        raise ValueError(f"{path}: layout: {e}") from None
    absent = [k for k in keys if k not in channel_keys]
    if absent:
        raise ValueError(f"{path}: layout needs {len(absent)} channel(s) the crops do not have, e.g. "
                         f"{absent[:3]} (rois.slices differs from training: it was "
                         f"{_rois_slices(ckpt)})")


def _rois_slices(ckpt: dict[str, Any]) -> dict[str, Any]:
    p = ckpt.get("params", {})
    return {k: v for k, v in p.items() if k.startswith("rois.slices.")}


_LOADED: dict[tuple[str, int, int], dict[str, Any]] = {}  # (resolved path, size, mtime_ns) -> ckpt, module


def clear_cache() -> None:
    """Forget the checkpoints and networks load_models kept (rebuilt on the next call)."""
    _LOADED.clear()


def _cached(path: Path) -> dict[str, Any]:
    """The cache entry of this version of the file (a rewritten checkpoint gets a new one)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _LOADED:
        for stale in [k for k in _LOADED if k[0] == key[0]]:
            del _LOADED[stale]
        _LOADED[key] = {}
    return _LOADED[key]


def load_models(classifier_dir: str | Path, roi_size: int, channel_keys: set[str]) -> list[FoldModel]:
    """Every fold checkpoint of classifier_dir, checked against the crops it will read.

    Each checkpoint is read and its network built once per process (cached per file
    version) and handed to model_probs with it: predict-study on several studies and the
    benchmarks do not rebuild the fold models on every call."""
    models = []
    for path in checkpoint_paths(classifier_dir):
        entry = _cached(path)
        if "ckpt" not in entry:
            try:
                entry["ckpt"] = load_checkpoint(path)
            except ValueError:
                raise
            except Exception as e:  # torch raises many types on a file that is not a checkpoint
                raise ValueError(f"{path}: not a loadable classifier checkpoint ({type(e).__name__}: {e})") from None
        ckpt = entry["ckpt"]
        check_checkpoint(path, ckpt, roi_size, channel_keys)
        if "module" not in entry:
            try:
                entry["module"] = model_from_checkpoint(ckpt)
            except Exception as e:
                raise ValueError(f"{path}: weights do not fit model {ckpt['model_name']!r} with "
                                 f"{ckpt['in_chans']} channels ({type(e).__name__}: {str(e)[:300]})") from None
        models.append(FoldModel(path, ckpt, entry["module"]))
    names = {m.ckpt["model_name"] for m in models}
    log.info("%d fold model(s) from %s: %s, %d channels", len(models), classifier_dir,
             "/".join(sorted(names)), len(models[0].layout))
    return models


def load_prior(labels_path: str | Path, pseudocount: float, models: list[FoldModel]) -> Prior:
    """The training prior (25, 3); see the module doc for the order of sources."""
    labels_path = Path(labels_path)
    if labels_path.exists():
        wide = data.load_labels(labels_path)
        if len(wide):
            prior = metrics.best_constant_prior(wide.to_numpy(np.int64), pseudocount=pseudocount)
            log.info("prior from %d train studies of %s (pseudocount %g)", len(wide), labels_path, pseudocount)
            return Prior(prior, "labels")
    stored = [np.asarray(m.ckpt["prior"], dtype=np.float64) for m in models if "prior" in m.ckpt]
    if stored and all(p.shape == (len(schema.LABEL_COLUMNS), 3) for p in stored):
        prior = np.mean(stored, axis=0)
        return Prior(prior / prior.sum(-1, keepdims=True), "checkpoints")
    log.warning("%s: no training labels and no prior in the checkpoints; labels without evidence "
                "get uniform probabilities", labels_path)
    return Prior(np.full((len(schema.LABEL_COLUMNS), 3), 1 / 3), "uniform")


def evidence(index: pd.DataFrame, study_ids: np.ndarray) -> np.ndarray:
    """(n, 25) bool: the study has at least one non-missing crop at the label's plane,
    level and side. Studies without rows in the index have no evidence at all."""
    side = index["side"].astype(object).where(index["side"].notna(), None)
    frame = pd.DataFrame({"study_id": index["study_id"].to_numpy(np.int64), "plane": index["plane"].astype(str),
                          "level": index["level"].astype(str), "side": side.map(layout.side_key),
                          "present": (index["source"].astype(str) != "missing").to_numpy()})
    have = frame.groupby(["study_id", "plane", "level", "side"])["present"].any()
    have = have[have]
    keys = set(have.index)
    out = np.zeros((len(study_ids), len(schema.LABELS)), dtype=bool)
    for j, lab in enumerate(schema.LABELS):
        plane = schema.PLANE_OF_CONDITION[lab.condition]
        side = layout.side_key(lab.side)
        out[:, j] = [(int(s), plane, lab.level, side) in keys for s in study_ids]
    return out


def model_probs(models: list[FoldModel], crops: np.ndarray, index: pd.DataFrame, study_ids: np.ndarray,
                device: str = "cpu", batch_size: int = 16) -> np.ndarray:
    """(n, 25, 3) mean over the fold models; every study must have rows in the index."""
    study_ids = np.asarray(study_ids, dtype=np.int64)
    total = np.zeros((len(study_ids), len(schema.LABEL_COLUMNS), 3))
    assembled: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # fold models share one layout
    for m in models:
        for start in range(0, len(study_ids), CHUNK_STUDIES):
            chunk = study_ids[start:start + CHUNK_STUDIES]
            key = (start, tuple(m.layout))
            if key not in assembled:
                assembled[key] = layout.assemble(index, chunk, m.layout)
            rows, present = assembled[key]
            stack = np.asarray(crops[rows.ravel()]).reshape(*rows.shape, *crops.shape[1:])
            total[start:start + len(chunk)] += predict_probs(m.ckpt, stack, present, batch_size, device,
                                                             model=m.module)
    return total / len(models)


def study_probs(models: list[FoldModel], crops: np.ndarray, index: pd.DataFrame, study_ids, prior: Prior,
                device: str = "cpu", batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(probs (n, 25, 3), evidence (n, 25)): the ensemble where a label has evidence, else the prior."""
    study_ids = np.asarray(study_ids, dtype=np.int64)
    ev = evidence(index, study_ids)
    probs = np.broadcast_to(prior.probs, (len(study_ids), *prior.probs.shape)).copy()
    scored = ev.any(axis=1)
    if scored.any():
        ens = model_probs(models, crops, index, study_ids[scored], device, batch_size)
        probs[scored] = np.where(ev[scored][..., None], ens, probs[scored])
    return probs, ev


def channel_keys(index: pd.DataFrame) -> set[str]:
    return {ch.key for ch in layout.store_channels(index)}
