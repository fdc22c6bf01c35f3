"""Ultralytics checkpoints that are the same bytes for the same weights, wherever the repo lives.

An ultralytics checkpoint (`trainer.save_model` + `strip_optimizer`) is a dict that carries,
next to the weights, things that change from run to run although the weights do not:
  date                      the wall-clock time of saving
  git                       the checkout the library found: root path, branch, commit, message
  train_args, model.args    every training argument, `project` and `save_dir` as absolute paths
  train_results["time"]     seconds since training started, per epoch
A DVC out that embeds them changes on every run and in every clone, so `dvc repro` never
reproduces the committed dvc.lock. `normalise` removes the volatile fields and makes paths
relative to the repository root (or drops them to their name when they lie outside it);
`save_portable` writes the result. The weights, class names, architecture and the arguments
ultralytics reads back when loading stay as they were, so `YOLO(path)` predicts the same.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VOLATILE_KEYS = ("date", "git")  # wall clock; the library's view of the git checkout
VOLATILE_RESULT_COLUMNS = ("time",)  # ultralytics results.csv: elapsed seconds per epoch


def portable_path(value: str, root: Path) -> str:
    """An absolute path as it would be written in any clone: relative to `root` when it lies
    inside it, otherwise only its name (a machine's own directories say nothing portable)."""
    path = Path(value)
    if not path.is_absolute():
        return value
    root = root.resolve()
    for candidate in (path, path.resolve()):
        try:
            rel = candidate.relative_to(root)
        except ValueError:
            continue
        return rel.as_posix() or "."
    return path.name


def portable_args(args: dict[str, Any], root: Path) -> dict[str, Any]:
    """Training arguments with every absolute path made portable (`portable_path`)."""
    return {k: portable_path(v, root) if isinstance(v, str) and os.path.isabs(v) else v for k, v in args.items()}


def normalise(ckpt: dict[str, Any], root: Path) -> dict[str, Any]:
    """The checkpoint without dates, git state, per-epoch times or machine paths (in place)."""
    for key in VOLATILE_KEYS:
        ckpt.pop(key, None)
    if isinstance(ckpt.get("train_args"), dict):
        ckpt["train_args"] = portable_args(ckpt["train_args"], root)
    results = ckpt.get("train_results")
    if isinstance(results, dict):
        ckpt["train_results"] = {k: v for k, v in results.items() if k not in VOLATILE_RESULT_COLUMNS}
    for key in ("model", "ema"):
        model = ckpt.get(key)
        if model is None:
            continue
        if isinstance(getattr(model, "args", None), dict):
            model.args = portable_args(model.args, root)
        yaml_cfg = getattr(model, "yaml", None)
        if isinstance(yaml_cfg, dict) and isinstance(yaml_cfg.get("yaml_file"), str):
            yaml_cfg["yaml_file"] = portable_path(yaml_cfg["yaml_file"], root)
    return ckpt


def save_portable(src: str | Path, dst: str | Path, root: str | Path | None = None) -> Path:
    """Load the ultralytics checkpoint `src`, normalise it and write it to `dst`.

    It is serialised into a buffer first, so the archive's inner folder is named the same
    whatever the file is called (torch names it after the file otherwise)."""
    import torch

    root = Path.cwd() if root is None else Path(root)
    ckpt = torch.load(src, map_location="cpu", weights_only=False)  # ultralytics pickles its model classes
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{src}: not an ultralytics checkpoint (no 'model' entry)")
    buffer = io.BytesIO()
    torch.save(normalise(ckpt, root), buffer)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(buffer.getvalue())
    log.debug("wrote %s from %s without dates or machine paths", dst, src)
    return dst
