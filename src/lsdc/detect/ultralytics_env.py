"""Ultralytics without the network and without its own loggers.

Call `configure(config_dir)` before anything imports ultralytics. It sets
YOLO_OFFLINE=1 (no DNS probe, no version check), points YOLO_CONFIG_DIR at a folder
the project controls, puts a TTF there under the names ultralytics would download
(Arial.ttf: fetched at every train otherwise), and turns off analytics and the
MLflow / DVC / ClearML / Comet / Ray Tune callbacks (the project logs to MLflow itself).

`use_threads(n)` sets the CPU threads ultralytics gives torch. Its `select_device` resets
torch to min(8, cpu_count - 1) threads at every train and predict (its NUM_THREADS): one
thread on a 2-core machine, where the detectors then trained on one core of two.
(and it sets OMP_NUM_THREADS=1 at import, so torch imported after it defaults to one).
`configure` sets every core this process may use, or the share a worker process chose
with `use_threads` before (one in each ROI extraction worker).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from lsdc import paths

log = logging.getLogger(__name__)

CONFIG_DIR = paths.ULTRALYTICS_DIR
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
OFF = {"sync": False, "mlflow": False, "dvc": False, "clearml": False, "comet": False,
       "raytune": False, "tensorboard": False, "wandb": False, "hub": False}


def _install_font(user_dir: Path) -> None:
    from matplotlib import font_manager

    source = Path(font_manager.findfont("DejaVu Sans", fallback_to_default=True))
    user_dir.mkdir(parents=True, exist_ok=True)
    for name in FONT_NAMES:
        if not (user_dir / name).exists():
            shutil.copyfile(source, user_dir / name)


def configure(config_dir: str | Path = CONFIG_DIR):
    """Make ultralytics offline and quiet; return the imported `ultralytics` module."""
    config_dir = Path(config_dir).resolve()
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("MPLCONFIGDIR", str(config_dir / "matplotlib"))
    if "ultralytics" not in sys.modules:
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
        _install_font(config_dir / "Ultralytics")
    import ultralytics
    from ultralytics.utils import USER_CONFIG_DIR

    if Path(USER_CONFIG_DIR).resolve() != (config_dir / "Ultralytics"):
        log.debug("ultralytics already imported; its config dir stays %s", USER_CONFIG_DIR)
    _install_font(Path(USER_CONFIG_DIR))
    known = {k: v for k, v in OFF.items() if k in ultralytics.settings}
    ultralytics.settings.update(known)
    use_threads()
    return ultralytics


_THREADS: list[int] = []  # the count a process chose with use_threads(n)


def cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else max(1, os.cpu_count() or 1)


def use_threads(n: int | None = None) -> int:
    """Torch CPU threads for ultralytics' train and predict from now on: `n` (kept for later
    calls without one), else the count chosen before, else every core. Output bits depend
    on the count; one machine kind gives one count. Before `configure` only torch's count is
    set (importing ultralytics first would fix its config dir); `configure` applies it."""
    import torch

    if n:
        _THREADS[:] = [max(1, int(n))]
    n = _THREADS[0] if _THREADS else cores()
    torch.set_num_threads(n)
    if "ultralytics" in sys.modules:
        from ultralytics.utils import torch_utils

        torch_utils.NUM_THREADS = n  # what select_device passes to torch.set_num_threads
    return n
