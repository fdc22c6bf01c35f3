"""lsdc: grading degenerative lumbar spine MRI (RSNA 2024 LSDC layout), reproducibly.

"The seed notebook" in comments is the public Kaggle notebook for this competition whose
approach this repository ports: YOLO detectors finding the disc levels on each plane, ROI
crops around each level and side, and a timm classifier over a 60-channel stack of those
crops per study. The repository keeps its choices as options (`detect.classes=levels`,
`rois.selection=notebook`, `train.layout=notebook`) so they can be compared.

Importing the package switches off every library's network access and points their
caches at a folder we control (`_OFFLINE_ENV` below): nothing here phones home.
"""

from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"

CACHE_DIR = Path(os.environ.get("LSDC_CACHE_DIR", Path.home() / ".cache" / "lsdc"))

_OFFLINE_ENV = {
    "YOLO_OFFLINE": "1",  # ultralytics: no DNS probe, no PyPI version check
    "YOLO_CONFIG_DIR": str(CACHE_DIR / "ultralytics"),  # its settings.json and fonts
    "NO_ALBUMENTATIONS_UPDATE": "1",  # albumentations: no PyPI check on import
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",  # timm: fail fast instead of retrying the hub
    "DVC_NO_ANALYTICS": "1",
    "MPLCONFIGDIR": str(CACHE_DIR / "matplotlib"),
    "MPLBACKEND": "Agg",
}
for _key, _value in _OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)
