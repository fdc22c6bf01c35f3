"""The timm classifier, its loss, its checkpoint, and inference from a checkpoint.

Outputs: 75 logits per study, read as (25 labels in schema.LABEL_COLUMNS order, 3
grades); label j's grades are logits 3j, 3j+1, 3j+2.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lsdc import schema
from lsdc.classify import augment
from lsdc.errors import UserError

log = logging.getLogger(__name__)

N_LABELS = len(schema.LABEL_COLUMNS)
N_GRADES = len(schema.SEVERITIES)
CHECKPOINT_KEYS = ("state_dict", "model_name", "in_chans", "layout", "label_columns", "roi_size", "params")


def create_model(name: str, in_chans: int, drop_rate: float = 0.0,
                 weights: str | Path | None = None, pretrained: bool = False) -> nn.Module:
    """A stacked-layout model: timm model `name` with in_chans inputs and 75 logits.

    `weights`: a local timm state_dict file to start from; its first convolution is
    adapted to in_chans (timm.models.adapt_input_conv) and a head of another size is
    dropped. `pretrained`: timm's own ImageNet weights (model.pretrained; downloads).
    """
    return timm_model(name, in_chans, N_LABELS * N_GRADES, drop_rate, weights, pretrained)


def build(name: str, layout_name: str, keys: list[str], drop_rate: float = 0.0,
          weights: str | Path | None = None, pretrained: bool = False) -> nn.Module:
    """The model of a layout: CropNet for 'crops', else a stacked model over len(keys) channels."""
    if layout_name == "crops":
        from lsdc.classify import crops

        return crops.create(name, keys, drop_rate, weights, pretrained)
    return create_model(name, len(keys), drop_rate, weights, pretrained)


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TIMM_OFFLINE", "LSDC_OFFLINE"))


def check_pretrained(name: str, pretrained: bool, weights: str | Path | None) -> None:
    """Fail before any work when model.pretrained cannot be honoured (both set, or offline)."""
    if pretrained and weights:
        raise ValueError("model.pretrained: true and model.weights are both set; pick one "
                         "(pretrained downloads timm's ImageNet weights, weights reads a local file)")
    if pretrained and _offline():
        raise UserError(f"model.pretrained: true needs timm's ImageNet weights for {name!r}, but "
                           "HF_HUB_OFFLINE is set (no downloads). Set model.pretrained: false, or put a "
                           "local timm state_dict in model.weights")


def timm_model(name: str, in_chans: int, num_classes: int, drop_rate: float = 0.0,
               weights: str | Path | None = None, pretrained: bool = False) -> nn.Module:
    """timm.create_model; weights are downloaded only with pretrained=True (model.pretrained).

    With HF_HUB_OFFLINE=1 (or a failed download) a pretrained request stops at once with
    a message naming model.pretrained and the local-file alternative model.weights.
    """
    import timm

    check_pretrained(name, pretrained, weights)
    try:
        model = timm.create_model(name, pretrained=pretrained, in_chans=in_chans,
                                  num_classes=num_classes, drop_rate=drop_rate)
    except Exception as e:
        if not pretrained:
            raise
        raise UserError(f"model.pretrained: true: could not get timm's ImageNet weights for {name!r} "
                           f"({type(e).__name__}: {str(e)[:200]}). Without internet set model.pretrained: "
                           "false and put a local timm state_dict in model.weights") from None
    if weights:
        _load_weights(model, Path(weights), in_chans)
    return model


def _load_weights(model: nn.Module, path: Path, in_chans: int) -> None:
    from timm.models import adapt_input_conv, load_state_dict

    if not path.exists():
        raise FileNotFoundError(f"{path}: model.weights file not found (weights are never downloaded)")
    state = load_state_dict(str(path))
    own = model.state_dict()
    first_conv = model.pretrained_cfg.get("first_conv")
    key = f"{first_conv}.weight" if first_conv else None
    if key in state and state[key].shape[1] != in_chans:
        state[key] = adapt_input_conv(in_chans, state[key], base_chans=state[key].shape[1])
    kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state) - set(kept))
    model.load_state_dict(kept, strict=False)
    log.info("loaded %d tensors from %s; skipped %d (shape or name mismatch, e.g. %s)",
             len(kept), path, len(skipped), skipped[:3])


def grade_logits(logits: torch.Tensor) -> torch.Tensor:
    """(B, 75) -> (B, 25, 3)."""
    return logits.reshape(logits.shape[0], N_LABELS, N_GRADES)


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy over all graded cells; IGNORE_INDEX cells contribute nothing.

    Mean over cells weighted by the true grade's weight (the metric's normalisation).
    Returns 0 (with a graph) when no cell is graded.
    """
    flat = grade_logits(logits).reshape(-1, N_GRADES).float()
    target = labels.reshape(-1)
    if not (target != schema.IGNORE_INDEX).any():
        return flat.sum() * 0.0
    return F.cross_entropy(flat, target, weight=class_weights.to(flat.device),
                           ignore_index=schema.IGNORE_INDEX)


def weighted_loss_sum(logits: torch.Tensor, labels: torch.Tensor,
                      class_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the graded cells' weighted cross-entropies, sum of their weights).

    weighted_loss = the first / the second; under DDP each rank divides its sum by the
    weight sum of the global batch, so the ranks' losses add up to the one-process loss.
    """
    flat = grade_logits(logits).reshape(-1, N_GRADES).float()
    target = labels.reshape(-1)
    weights = class_weights.to(flat.device)
    graded = target != schema.IGNORE_INDEX
    total = F.cross_entropy(flat, target, weight=weights, ignore_index=schema.IGNORE_INDEX, reduction="sum")
    return total, weights[target[graded]].sum()


LOSSES: tuple[str, ...] = ("metric", "cells")
FAMILY_MASKS = {fam: torch.tensor([lab.family == fam for lab in schema.LABELS]) for fam in ("spinal", "foraminal",
                                                                                           "subarticular")}
SEVERE_CLAMP = 1e-6  # p(any severe) kept in [this, 1 - this] inside the BCE


def loss_terms(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor,
               kind: str = "metric") -> tuple[torch.Tensor, torch.Tensor]:
    """(per-term weighted loss sums, per-term weight sums) of a batch; the loss is
    sum_t sums[t] / weights[t] over the terms with weight, divided by their number
    (`combine`), so under DDP each term is normalised by its global weight sum.

    kind 'metric' (train.loss): the competition metric's four terms, each its own
    weighted mean so each weighs the same whatever its number of cells: cross-entropy
    over the spinal, foraminal and subarticular cells with the grade weights
    (class_weights, the metric's 1/2/4), and the auxiliary any_severe_spinal BCE (p = the
    largest spinal Severe probability, label = any graded spinal level Severe, weight by
    the worst spinal grade). kind 'cells': one term, every graded cell alike (the
    stacked model's original loss; = weighted_loss).
    """
    g = grade_logits(logits).float()
    target = labels.reshape(g.shape[0], N_LABELS)
    weights = class_weights.to(g.device).float()
    if kind == "cells":
        return tuple(t.reshape(1) for t in weighted_loss_sum(logits, labels, class_weights))
    if kind != "metric":
        raise ValueError(f"train.loss: unknown loss {kind!r}; expected one of {LOSSES}")
    sums, wsums = [], []
    for mask in FAMILY_MASKS.values():
        cols = mask.to(g.device)
        y = target[:, cols].reshape(-1)
        flat = g[:, cols].reshape(-1, N_GRADES)
        graded = y != schema.IGNORE_INDEX
        sums.append(F.cross_entropy(flat, y, weight=weights, ignore_index=schema.IGNORE_INDEX, reduction="sum"))
        wsums.append(weights[y[graded]].sum())
    spinal = FAMILY_MASKS["spinal"].to(g.device)
    y_sp = target[:, spinal]
    scored = (y_sp != schema.IGNORE_INDEX).any(dim=1)
    log_severe = torch.log_softmax(g[:, spinal], dim=-1)[..., 2].amax(dim=1)  # log of the largest P(Severe)
    p = log_severe.exp().clamp(SEVERE_CLAMP, 1 - SEVERE_CLAMP)
    worst = y_sp.amax(dim=1).clamp(min=0)
    is_severe = (worst == 2).float()
    bce = -(is_severe * torch.log(p) + (1 - is_severe) * torch.log1p(-p))
    w = weights[worst] * scored.float()
    sums.append((w * bce).sum())
    wsums.append(w.sum())
    return torch.stack(sums), torch.stack(wsums)


def combine(sums: torch.Tensor, weight_sums: torch.Tensor) -> torch.Tensor:
    """Mean over the terms with weight of sum / weight; 0 (with a graph) when none has any."""
    has = weight_sums > 0
    if not bool(has.any()):
        return sums.sum() * 0.0
    return (sums[has] / weight_sums[has]).sum() / has.sum()


def batch_loss(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor,
               kind: str = "metric") -> torch.Tensor:
    """The training loss of one batch on one process (see loss_terms)."""
    return combine(*loss_terms(logits, labels, class_weights, kind))


def make_checkpoint(model: nn.Module, model_name: str, layout: list[str], roi_size: int,
                    params_flat: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The checkpoint dict of docs/data_formats.md (plain values only: weights_only loadable).

    Nothing volatile goes in (no date, no path of this machine, no runtime-only setting), so
    the same seed gives a byte-identical file in any clone."""
    ckpt = {
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "model_name": model_name,
        "in_chans": len(layout),
        "layout": list(layout),
        "label_columns": list(schema.LABEL_COLUMNS),
        "roi_size": int(roi_size),
        # runtime.* change only speed, not the weights: left out so the same training gives the
        # same bytes whatever loader threads or device string a machine uses
        "params": {k: _plain(v) for k, v in params_flat.items() if not k.startswith("runtime.")},
    }
    ckpt.update({k: _plain(v) for k, v in extra.items()})
    return ckpt


def _plain(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: classifier checkpoint not found")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: not a classifier checkpoint, missing key(s) {missing}")
    if list(ckpt["label_columns"]) != list(schema.LABEL_COLUMNS):
        raise ValueError(f"{path}: label order differs from lsdc.schema.LABEL_COLUMNS")
    return ckpt


def model_from_checkpoint(ckpt: Mapping[str, Any]) -> nn.Module:
    """The checkpoint's architecture (its own layout name and channel keys) with its weights."""
    model = build(ckpt["model_name"], str(ckpt.get("layout_name", "anatomical")), list(ckpt["layout"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


@torch.no_grad()
def probs_of(model: nn.Module, inputs: torch.Tensor | np.ndarray, batch_size: int = 32,
             device: str | torch.device = "cpu") -> np.ndarray:
    """Softmax probabilities (n, 25, 3) of normalised float inputs (n, C, S, S)."""
    model.eval()
    out = []
    for start in range(0, len(inputs), batch_size):
        x = torch.as_tensor(inputs[start:start + batch_size]).to(device)
        out.append(torch.softmax(grade_logits(model(x)).float(), dim=-1).cpu().numpy())
    if not out:
        return np.zeros((0, N_LABELS, N_GRADES))
    return np.concatenate(out).astype(np.float64)


def predict_probs(checkpoint: str | Path | Mapping[str, Any], crops_for_studies: np.ndarray,
                  present: np.ndarray | None = None, batch_size: int = 32,
                  device: str | torch.device = "cpu", model: nn.Module | None = None) -> np.ndarray:
    """Probabilities (n, 25, 3) from one checkpoint (path or loaded dict).

    crops_for_studies: uint8 (n, C, S, S) crops already in the checkpoint's `layout`
    order (lsdc.classify.layout.assemble + the store's crops give them); `present`
    (n, C) bool marks real crops; None = a channel counts as present unless all zero.
    `model`: the checkpoint's network already built (model_from_checkpoint), so that a
    caller predicting many times (predict-study) builds it once.
    """
    ckpt = load_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    crops = np.asarray(crops_for_studies)
    want = (int(ckpt["in_chans"]), int(ckpt["roi_size"]), int(ckpt["roi_size"]))
    if crops.ndim != 4 or crops.shape[1:] != want or crops.dtype != np.uint8:
        raise ValueError(f"predict_probs: expected uint8 crops (n, {want[0]}, {want[1]}, {want[2]}) "
                         f"in the checkpoint's layout, got {crops.dtype} {crops.shape}")
    if present is None:
        present = crops.reshape(*crops.shape[:2], -1).any(axis=-1)
    model = (model if model is not None else model_from_checkpoint(ckpt)).to(device)
    out = []
    for start in range(0, len(crops), batch_size):
        x = augment.normalise(crops[start:start + batch_size], present[start:start + batch_size])
        out.append(probs_of(model, x, batch_size, device))
    return np.concatenate(out) if out else np.zeros((0, N_LABELS, N_GRADES))
