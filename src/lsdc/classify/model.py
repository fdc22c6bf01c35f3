"""The timm classifier, its loss, its checkpoint, and inference from a checkpoint.

Outputs: 75 logits per study, read as (25 labels in schema.LABEL_COLUMNS order, 3
grades); label j's grades are logits 3j, 3j+1, 3j+2.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lsdc import schema
from lsdc.classify import augment

log = logging.getLogger(__name__)

N_LABELS = len(schema.LABEL_COLUMNS)
N_GRADES = len(schema.SEVERITIES)
CHECKPOINT_KEYS = ("state_dict", "model_name", "in_chans", "layout", "label_columns", "roi_size", "params")


def create_model(name: str, in_chans: int, drop_rate: float = 0.0,
                 weights: str | Path | None = None) -> nn.Module:
    """timm model `name` with in_chans inputs and 75 logits; never downloads weights.

    `weights`: a local timm state_dict file to start from; its first convolution is
    adapted to in_chans (timm.models.adapt_input_conv) and a head of another size is
    dropped.
    """
    import timm

    model = timm.create_model(name, pretrained=False, in_chans=in_chans,
                              num_classes=N_LABELS * N_GRADES, drop_rate=drop_rate)
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
    model = create_model(ckpt["model_name"], int(ckpt["in_chans"]))
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
