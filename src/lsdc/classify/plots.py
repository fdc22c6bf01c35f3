"""Figures of the `evaluate` stage, from out-of-fold labels (n, 25) and probabilities (n, 25, 3).

Conditions pool their five levels; the probability of grade k for label column j is
probs[:, j, k] (the seed notebook, lsdc/__init__.py, indexed the flat 75-vector wrongly for its ROC curves).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MPLBACKEND", "Agg")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from lsdc import schema  # noqa: E402

CONDITION_COLUMNS = {
    cond: [j for j, lab in enumerate(schema.LABELS) if lab.condition == cond] for cond in schema.CONDITIONS
}


# short row / panel labels: the full RSNA condition names do not fit beside a heatmap
SHORT_CONDITION = {
    "Spinal Canal Stenosis": "Spinal canal",
    "Left Neural Foraminal Narrowing": "Left foraminal",
    "Right Neural Foraminal Narrowing": "Right foraminal",
    "Left Subarticular Stenosis": "Left subarticular",
    "Right Subarticular Stenosis": "Right subarticular",
}


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # nothing cut off, whatever the label lengths
    plt.close(fig)
    return path


def accuracy_grid(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(5 conditions, 5 levels) accuracy over graded studies; NaN where nothing is graded."""
    pred = probs.argmax(axis=-1)
    grid = np.full((len(schema.CONDITIONS), len(schema.LEVELS)), np.nan)
    for j, lab in enumerate(schema.LABELS):
        keep = labels[:, j] != schema.IGNORE_INDEX
        if keep.any():
            grid[schema.CONDITIONS.index(lab.condition), schema.LEVELS.index(lab.level)] = (
                pred[keep, j] == labels[keep, j]).mean()
    return grid


def confusion(labels: np.ndarray, probs: np.ndarray, condition: str) -> np.ndarray:
    """3 x 3 counts (rows true grade, columns predicted grade) of one condition, levels pooled."""
    cols = CONDITION_COLUMNS[condition]
    y, pred = labels[:, cols].ravel(), probs[:, cols].argmax(axis=-1).ravel()
    keep = y != schema.IGNORE_INDEX
    out = np.zeros((3, 3), dtype=np.int64)
    np.add.at(out, (y[keep], pred[keep]), 1)
    return out


def reliability(labels: np.ndarray, probs: np.ndarray, grade: int, bins: int) -> pd.DataFrame:
    """Per probability bin of grade `grade` (all labels pooled): mean predicted, observed rate, count."""
    keep = labels != schema.IGNORE_INDEX
    p, hit = probs[..., grade][keep], (labels[keep] == grade).astype(float)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "p": p, "hit": hit})
    return frame.groupby("bin").agg(predicted=("p", "mean"), observed=("hit", "mean"), count=("p", "size"))


def plot_training_curves(curves: dict[int, pd.DataFrame], path: Path, prior_score: float | None = None) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for k, frame in sorted(curves.items()):
        color = f"C{k % 10}"
        axes[0].plot(frame["epoch"], frame["train_loss"], color=color, ls="--", label=f"fold {k} train")
        axes[0].plot(frame["epoch"], frame["val_loss"], color=color, label=f"fold {k} val")
        axes[1].plot(frame["epoch"], frame["score"], color=color, label=f"fold {k}")
        axes[2].plot(frame["epoch"], frame["accuracy"], color=color, label=f"fold {k} accuracy")
        axes[2].plot(frame["epoch"], frame["f1"], color=color, ls=":", label=f"fold {k} macro F1")
    if prior_score is not None and np.isfinite(prior_score):
        axes[1].axhline(prior_score, color="grey", ls="--", label="constant prior (OOF)")
    for ax, title in zip(axes, ("weighted CE loss", "validation competition score (lower is better)",
                                "validation accuracy / macro F1")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_accuracy_heatmap(labels: np.ndarray, probs: np.ndarray, path: Path) -> Path:
    return _save(accuracy_heatmap_figure(labels, probs), path)


def accuracy_heatmap_figure(labels: np.ndarray, probs: np.ndarray):
    grid = accuracy_grid(labels, probs)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(schema.LEVELS)), schema.LEVELS)
    ax.set_yticks(range(len(schema.CONDITIONS)), [SHORT_CONDITION[c] for c in schema.CONDITIONS])
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            text = "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", color="w" if grid[i, j] < 0.6 else "k")
    fig.colorbar(im, ax=ax, label="accuracy")
    ax.set_title("Out-of-fold accuracy per condition and level")
    fig.tight_layout()
    return fig


def plot_roc(labels: np.ndarray, probs: np.ndarray, path: Path) -> Path:
    fig, axes = plt.subplots(1, len(schema.CONDITIONS), figsize=(4 * len(schema.CONDITIONS), 4))
    for ax, cond in zip(axes, schema.CONDITIONS):
        cols = CONDITION_COLUMNS[cond]
        y, p = labels[:, cols].ravel(), probs[:, cols, :].reshape(-1, 3)
        keep = y != schema.IGNORE_INDEX
        for k, grade in enumerate(schema.SEVERITIES):
            positive = y[keep] == k
            if 0 < positive.sum() < keep.sum():
                fpr, tpr, _ = roc_curve(positive, p[keep, k])
                auc = roc_auc_score(positive, p[keep, k])
                ax.plot(fpr, tpr, label=f"{grade} (AUC {auc:.2f})")
        ax.plot([0, 1], [0, 1], color="grey", ls=":")
        ax.set_title(SHORT_CONDITION[cond], fontsize=9)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_confusion(labels: np.ndarray, probs: np.ndarray, path: Path) -> Path:
    fig, axes = plt.subplots(1, len(schema.CONDITIONS), figsize=(4 * len(schema.CONDITIONS), 4))
    short = ["N/M", "Mod", "Sev"]
    for ax, cond in zip(axes, schema.CONDITIONS):
        mat = confusion(labels, probs, cond)
        ax.imshow(mat, cmap="Blues")
        for i in range(3):
            for j in range(3):
                ax.text(j, i, str(mat[i, j]), ha="center", va="center")
        ax.set_xticks(range(3), short)
        ax.set_yticks(range(3), short)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(SHORT_CONDITION[cond], fontsize=9)
    return _save(fig, path)


def plot_reliability(labels: np.ndarray, probs: np.ndarray, path: Path, bins: int) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for k, (ax, grade) in enumerate(zip(axes, schema.SEVERITIES)):
        table = reliability(labels, probs, k, bins)
        ax.plot([0, 1], [0, 1], color="grey", ls=":")
        ax.plot(table["predicted"], table["observed"], marker="o")
        for _, row in table.iterrows():
            ax.annotate(str(int(row["count"])), (row["predicted"], row["observed"]), fontsize=6)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{grade}: predicted vs observed")
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed frequency")
    return _save(fig, path)
