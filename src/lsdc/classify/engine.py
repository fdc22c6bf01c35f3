"""Training of one fold: AdamW, cosine warm restarts, gradient clipping, AMP on CUDA,
validation with the competition metric each epoch, early stopping on it."""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from lsdc import metrics
from lsdc.classify.data import StudyCrops
from lsdc.classify.model import create_model, grade_logits, weighted_loss
from lsdc.params import Model, Train

log = logging.getLogger(__name__)

CSV_COLUMNS = ("epoch", "train_loss", "val_loss", "accuracy", "precision", "recall", "f1", "score", "lr")


@dataclass
class FoldResult:
    fold: int
    best_epoch: int
    best_score: float
    model: torch.nn.Module  # holding the best epoch's weights, on the CPU
    val_probs: np.ndarray  # (n_val, 25, 3) of the best epoch
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={name!r} but CUDA is not available")
    return device


def seed_everything(seed: int, device: torch.device) -> None:
    """Seed Python, NumPy and torch; deterministic kernels (strict on CPU, best effort on CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.use_deterministic_algorithms(True)


def _reseed_worker(_: int) -> None:
    info = torch.utils.data.get_worker_info()
    transform = getattr(info.dataset, "transform", None)
    if transform is not None:  # each worker its own augmentation stream, derived from the loader's seed
        transform.set_random_seed(torch.initial_seed() % 2**32)


def evaluate_fold(model: torch.nn.Module, loader: DataLoader, labels: np.ndarray,
                  class_weights: torch.Tensor, device: torch.device, amp: bool) -> tuple[np.ndarray, dict]:
    """(probs (n, 25, 3), {val_loss, accuracy, precision, recall, f1, score, score terms})."""
    model.eval()
    logits = []
    with torch.no_grad():
        for x, _ in loader:
            with torch.autocast(device.type, enabled=amp):
                logits.append(model(x.to(device)).float().cpu())
    all_logits = torch.cat(logits)
    val_loss = float(weighted_loss(all_logits, torch.as_tensor(labels), class_weights))
    probs = torch.softmax(grade_logits(all_logits), dim=-1).numpy().astype(np.float64)
    overall = metrics.classification_report(labels, probs)["overall"]
    score = metrics.competition_score(labels, probs)
    return probs, {
        "val_loss": val_loss, "accuracy": overall["accuracy"], "precision": overall["precision_macro"],
        "recall": overall["recall_macro"], "f1": overall["f1_macro"], "score": score.total,
        **{f"score_{k}": v for k, v in score.as_dict().items() if k != "total"},
    }


def train_fold(fold: int, train_set: StudyCrops, val_set: StudyCrops, model_cfg: Model, cfg: Train,
               seed: int, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> FoldResult:
    """Train one fold's model; returns the best epoch's model, validation probabilities, history."""
    start = time.perf_counter()
    device = resolve_device(cfg.device)
    seed_everything(seed, device)
    amp = bool(cfg.amp and device.type == "cuda")
    in_chans = int(train_set.rows.shape[1])
    model = create_model(model_cfg.name, in_chans, model_cfg.drop_rate, model_cfg.weights).to(device)
    class_weights = torch.tensor(cfg.class_weights, dtype=torch.float32, device=device)
    gen = torch.Generator().manual_seed(seed)
    workers = dict(num_workers=cfg.num_workers, worker_init_fn=_reseed_worker if cfg.num_workers else None,
                   persistent_workers=False, pin_memory=device.type == "cuda")
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=len(train_set) > cfg.batch_size,
                              generator=gen, **workers)
    val_loader = DataLoader(val_set, batch_size=cfg.batch_size * 4, shuffle=False, **workers)
    val_labels = val_set.labels
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=cfg.t_0, T_mult=cfg.t_mult, eta_min=cfg.min_lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    best: tuple[float, int, dict, np.ndarray] | None = None
    history: list[dict[str, float]] = []
    for epoch in range(cfg.epochs):
        model.train()
        lr = optimizer.param_groups[0]["lr"]
        total, count, n_batches = 0.0, 0, len(train_loader)
        for i, (x, y) in enumerate(train_loader):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=amp):
                loss = weighted_loss(model(x), y, class_weights)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step(epoch + (i + 1) / n_batches)
            total += float(loss.detach()) * len(x)
            count += len(x)
        probs, val = evaluate_fold(model, val_loader, val_labels, class_weights, device, amp)
        row = {"epoch": epoch, "train_loss": total / max(count, 1), **val, "lr": lr}
        history.append(row)
        key = val["score"] if math.isfinite(val["score"]) else val["val_loss"]
        if best is None or key < best[0]:
            best = (key, epoch, copy.deepcopy(model.state_dict()), probs)
        log.info("fold %d epoch %d: train_loss %.4f val_loss %.4f score %.4f acc %.3f lr %.2e",
                 fold, epoch, row["train_loss"], val["val_loss"], val["score"], val["accuracy"], lr)
        if on_epoch is not None:
            on_epoch(row)
        if epoch - best[1] >= cfg.patience:
            log.info("fold %d: early stop after epoch %d (best %d)", fold, epoch, best[1])
            break
    if best is None:
        raise ValueError("train.epochs must be at least 1")
    model.load_state_dict(best[2])
    return FoldResult(fold, best[1], float(best[0]), model.cpu().eval(), best[3], history,
                      time.perf_counter() - start)
