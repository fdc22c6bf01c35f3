"""Ultralytics without the network and without its own loggers.

Call `configure(config_dir)` before anything imports ultralytics. It sets
YOLO_OFFLINE=1 (no DNS probe, no version check), points YOLO_CONFIG_DIR at a folder
the project controls, puts a TTF there under the names ultralytics would download
(Arial.ttf: fetched at every train otherwise), and turns off analytics and the
MLflow / DVC / ClearML / Comet / Ray Tune callbacks (the project logs to MLflow itself).
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
    return ultralytics
