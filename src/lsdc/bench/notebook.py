"""BASELINE, not pipeline code: the ROI loop of the seed notebook, re-created for
benchmark 2 (the seed notebook: the public Kaggle notebook this repository ports; see lsdc/__init__.py).

What the notebook did per study, per series, per DICOM file, in one process:
read the file with `pydicom.dcmread(...).pixel_array`, min-max scale that one image to
uint8, run the plane's YOLO detector on it alone (batch 1) and then a second time on the
same image (the notebook called `predict` twice per image), take the most confident
boxes (5 per sagittal image, one per level; 2 per axial image, one per side), crop a
fixed pixel window around each, resize it to the crop size and write it as a PNG.

Here it runs with the same detector objects (same weights, image size, thresholds) as
the pipeline, on the same studies, so the comparison measures the loop, not the models.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom

from lsdc.rois.study import StudyImages

BOXES_PER_IMAGE = {"sag_t1": 5, "sag_t2": 5, "ax_t2": 2}  # the notebook: one per level / per side
CROP_PX = 64  # the notebook's fixed crop window in source pixels (before resizing)


def _uint8(pixels: np.ndarray) -> np.ndarray:
    pixels = pixels.astype(np.float32)
    lo, hi = float(pixels.min()), float(pixels.max())
    return ((pixels - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)


def _crop(image: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    half = CROP_PX // 2
    padded = np.pad(image, half)
    x0, y0 = int(round(x)), int(round(y))
    window = padded[y0:y0 + CROP_PX, x0:x0 + CROP_PX]
    return cv2.resize(window, (size, size), interpolation=cv2.INTER_LINEAR)


def notebook_study(task: StudyImages, root: str | Path, models: dict, detect_cfg, roi_size: int, device: str,
                   out_dir: str | Path) -> int:
    """Run the notebook loop over one study; returns the number of PNG crops written."""
    out_dir = Path(out_dir) / str(task.study_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs = dict(imgsz=detect_cfg.export.imgsz, conf=detect_cfg.infer.conf, iou=detect_cfg.infer.iou,
                  max_det=detect_cfg.infer.max_det, device=device, verbose=False)
    written = 0
    for ref in task.series:
        model = models[ref.plane]
        for k, rel in enumerate(ref.files):
            image = _uint8(pydicom.dcmread(Path(root) / rel).pixel_array)
            rgb = np.repeat(image[..., None], 3, axis=2)
            model.predict(rgb, **kwargs)  # first call (the notebook ran predict twice per image)
            result = model.predict(rgb, **kwargs)[0]
            boxes = result.boxes
            order = np.argsort(-boxes.conf.cpu().numpy())[:BOXES_PER_IMAGE[ref.plane]]
            centres = boxes.xywh[:, :2].cpu().numpy()
            for j, b in enumerate(order):
                crop = _crop(image, *centres[b], roi_size)
                cv2.imwrite(str(out_dir / f"{ref.series_id}_{k}_{j}.png"), crop)
                written += 1
    return written
