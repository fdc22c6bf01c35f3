"""Training of one fold: AdamW, cosine warm restarts, gradient clipping, AMP on CUDA,
validation with the competition metric each epoch, early stopping on it.

Under torchrun (a distributed `Context`) the model is wrapped in DistributedDataParallel:
each rank trains on its shard of every global batch, rank 0 alone validates, keeps the
best weights and decides early stopping (broadcast to the others)."""

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
from torch.utils.data import DataLoader, RandomSampler

from lsdc import metrics
from lsdc.classify import distributed
from lsdc.classify.data import StudyCrops
from lsdc.classify.distributed import Context, ShardedBatchSampler, resolve_device  # noqa: F401 (re-export)
from lsdc.classify.model import batch_loss, build, grade_logits, loss_terms
from lsdc.params import Model, Train

log = logging.getLogger(__name__)

PRIOR_PSEUDOCOUNT = 1.0  # CropNet's prior for labels whose crop is missing (as evaluate.prior_pseudocount)
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


def evaluate_fold(model: torch.nn.Module, loader: DataLoader, labels: np.ndarray,
                  class_weights: torch.Tensor, device: torch.device, amp: bool,
                  loss: str = "metric") -> tuple[np.ndarray, dict]:
    """(probs (n, 25, 3), {val_loss, accuracy, precision, recall, f1, score, score terms})."""
    model.eval()
    logits = []
    with torch.no_grad():
        for x, _ in loader:
            with torch.autocast(device.type, enabled=amp):
                logits.append(model(x.to(device)).float().cpu())
    all_logits = torch.cat(logits)
    val_loss = float(batch_loss(all_logits, torch.as_tensor(labels), class_weights.cpu(), loss))
    probs = torch.softmax(grade_logits(all_logits), dim=-1).numpy().astype(np.float64)
    overall = metrics.classification_report(labels, probs)["overall"]
    score = metrics.competition_score(labels, probs)
    return probs, {
        "val_loss": val_loss, "accuracy": overall["accuracy"], "precision": overall["precision_macro"],
        "recall": overall["recall_macro"], "f1": overall["f1_macro"], "score": score.total,
        **{f"score_{k}": v for k, v in score.as_dict().items() if k != "total"},
    }


def train_fold(fold: int, train_set: StudyCrops, val_set: StudyCrops, model_cfg: Model, cfg: Train,
               seed: int, on_epoch: Callable[[dict[str, Any]], None] | None = None,
               ctx: Context | None = None, loader_workers: int = 0,
               device: str = "auto") -> FoldResult | None:
    """Train one fold's model; returns the best epoch's model, validation probabilities, history.

    ctx: the DDP context (distributed.session); None = one process on `device` (runtime.train_device).
    loader_workers: DataLoader worker processes (runtime.loader_workers).
    Returns None on the ranks other than 0 of a distributed run.
    """
    start = time.perf_counter()
    ctx = ctx or Context(device=resolve_device(device))
    device = ctx.device
    if cfg.epochs < 1:
        raise ValueError("train.epochs must be at least 1")
    rank_batch = distributed.local_batch_size(cfg.batch_size, ctx)
    seed_everything(seed, device)
    amp = bool(cfg.amp and device.type == "cuda")
    keys = train_set.layout_keys()
    model = build(model_cfg.name, cfg.layout, keys, model_cfg.drop_rate, model_cfg.weights,
                  model_cfg.pretrained)
    prior = None
    if hasattr(model, "set_prior"):  # CropNet: the training folds' prior for labels whose crop is missing
        prior = metrics.best_constant_prior(np.asarray(train_set.labels), pseudocount=PRIOR_PSEUDOCOUNT)
        model.set_prior(prior)
    model = model.to(device)
    net = distributed.wrap(model, ctx)  # shares its parameters with `model` (net.module)
    model = getattr(net, "module", net)
    class_weights = torch.tensor(cfg.class_weights, dtype=torch.float32, device=device)
    gen = torch.Generator().manual_seed(seed)
    # the permutation of a DataLoader(shuffle=True, generator=gen), cut into global batches
    batches = ShardedBatchSampler(RandomSampler(train_set, generator=gen), cfg.batch_size,
                                  drop_last=len(train_set) > cfg.batch_size,
                                  rank=ctx.rank, world_size=ctx.world_size)
    workers = dict(num_workers=loader_workers, persistent_workers=False, pin_memory=device.type == "cuda")
    train_loader = DataLoader(train_set, batch_sampler=batches, generator=gen, **workers)
    val_loader = DataLoader(val_set, batch_size=cfg.batch_size * 4, shuffle=False, **workers)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=cfg.t_0, T_mult=cfg.t_mult, eta_min=cfg.min_lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    best: tuple[float, int, dict, np.ndarray] | None = None
    history: list[dict[str, float]] = []
    log.debug("fold %d: global batch %d = %d x %d ranks", fold, cfg.batch_size, rank_batch, ctx.world_size)
    for epoch in range(cfg.epochs):
        net.train()
        train_set.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        total, count, n_batches = 0.0, 0, len(train_loader)
        for i, (x, y) in enumerate(train_loader):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=amp):
                logits = net(x)
            loss, step_loss, batch_n = _batch_loss(logits, y, class_weights, ctx, cfg.loss)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step(epoch + (i + 1) / n_batches)
            total += step_loss * batch_n
            count += batch_n
        total = float(distributed.all_reduce_sum(torch.tensor([total], dtype=torch.float64, device=device), ctx))
        stop = False
        if ctx.is_main:
            probs, val = evaluate_fold(model, val_loader, val_set.labels, class_weights, device, amp, cfg.loss)
            row = {"epoch": epoch, "train_loss": total / max(count, 1), **val, "lr": lr}
            history.append(row)
            key = val["score"] if math.isfinite(val["score"]) else val["val_loss"]
            if best is None or key < best[0]:
                best = (key, epoch, copy.deepcopy(model.state_dict()), probs)
            log.info("fold %d epoch %d: train_loss %.4f val_loss %.4f score %.4f acc %.3f lr %.2e",
                     fold, epoch, row["train_loss"], val["val_loss"], val["score"], val["accuracy"], lr)
            if on_epoch is not None:
                on_epoch(row)
            stop = should_stop(epoch, best[1], cfg.patience, cfg.t_0, cfg.t_mult)
            if stop:
                log.info("fold %d: early stop after epoch %d (best %d)", fold, epoch, best[1])
        if distributed.broadcast_flag(stop, ctx):
            break
    if not ctx.is_main:
        return None
    assert best is not None  # epochs >= 1 and rank 0 validated every epoch
    if ctx.distributed:  # the plain architecture (no DDP wrapper, no synchronised BatchNorm)
        model = build(model_cfg.name, cfg.layout, keys, model_cfg.drop_rate)
    model.load_state_dict(best[2])
    return FoldResult(fold, best[1], float(best[0]), model.cpu().eval(), best[3], history,
                      time.perf_counter() - start)


def cycle_ends(epoch: int, t_0: int, t_mult: int) -> bool:
    """Whether `epoch` (0-based) is the last epoch of a cosine warm-restart cycle
    (CosineAnnealingWarmRestarts with T_0 = t_0, T_mult = t_mult): where the learning rate
    is lowest and the model is at its best for that cycle."""
    end, length = t_0, t_0
    while end <= epoch + 1:
        if end == epoch + 1:
            return True
        length *= max(t_mult, 1)
        end += length
    return False


def should_stop(epoch: int, best_epoch: int, patience: int, t_0: int, t_mult: int) -> bool:
    """Early stopping under warm restarts: judged only at the end of a cosine cycle, when the
    best epoch lies at least `patience` epochs back. A restart raises the learning rate and
    the validation loss for a few epochs; judged at every epoch, patience shorter than a
    cycle stopped a fold one epoch after the restart (fold 0: best 2, stopped at 7 of 15)."""
    return cycle_ends(epoch, t_0, t_mult) and epoch - best_epoch >= patience


def _batch_loss(logits: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor,
                ctx: Context, kind: str = "metric") -> tuple[torch.Tensor, float, int]:
    """(loss to backpropagate, the global batch's mean loss, the global batch's size).

    One process: model.batch_loss (the mean over the loss terms of each term's weighted
    mean). DDP: each term's local weighted sum x world_size / the term's global weight sum,
    so DDP's gradient average equals the one-process gradient.
    """
    sums, weights = loss_terms(logits, y, class_weights, kind)
    if not ctx.distributed:
        loss = _combine_global(sums, weights, 1)
        return loss, float(loss.detach()), len(y)
    stats = torch.cat([weights.detach().double(),
                       torch.tensor([float(len(y))], dtype=torch.float64, device=weights.device)])
    stats = distributed.all_reduce_sum(stats, ctx)
    loss = _combine_global(sums, stats[:-1].to(sums.dtype), ctx.world_size)
    # the global mean, summed over ranks at the epoch's end: this rank's share
    return loss, float(loss.detach()) / ctx.world_size, int(stats[-1].item())


def _combine_global(sums: torch.Tensor, global_weights: torch.Tensor, world_size: int) -> torch.Tensor:
    has = global_weights > 0
    if not bool(has.any()):
        return sums.sum() * 0.0
    return (sums[has] * world_size / global_weights[has]).sum() / has.sum()
