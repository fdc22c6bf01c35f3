"""Crops at a fixed physical size: `crop_mm` of patient space resampled to `size` pixels.

The crop's centre pixel ((size - 1) / 2, (size - 1) / 2) lies on the requested image point
(x = column, y = row, pixel centres at integer positions, as in DICOM and the CSVs),
and each crop pixel covers crop_mm / size mm whatever the slice's pixel spacing, so two
series with different spacings show the same anatomy at the same scale. Outside the
image the crop is 0.
"""

from __future__ import annotations

import cv2
import numpy as np


def crop_physical(image: np.ndarray, spacing: tuple[float, float], x: float, y: float,
                  crop_mm: float, size: int) -> np.ndarray:
    """uint8 (size, size) crop of `image` centred on (x, y) px covering crop_mm x crop_mm.

    `spacing` is the slice's PixelSpacing (row spacing, column spacing) in mm. When a crop
    pixel spans more than 1.5 source pixels the image is smoothed first (anti-aliasing).
    """
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ValueError(f"crop centre must be finite, got ({x}, {y})")
    row_sp, col_sp = float(spacing[0]), float(spacing[1])
    if row_sp <= 0 or col_sp <= 0 or crop_mm <= 0 or size < 1:
        raise ValueError(f"bad crop request: spacing={spacing}, crop_mm={crop_mm}, size={size}")
    step = crop_mm / size  # mm per crop pixel
    sx, sy = step / col_sp, step / row_sp  # source pixels per crop pixel
    src = np.ascontiguousarray(image, dtype=np.uint8)
    if max(sx, sy) > 1.5:
        src = cv2.GaussianBlur(src, (0, 0), sigmaX=max(0.5, (sx - 1) / 2), sigmaY=max(0.5, (sy - 1) / 2))
    half = (size - 1) / 2
    # maps crop (u, v) -> source (x, y); WARP_INVERSE_MAP uses it as given
    m = np.array([[sx, 0.0, x - sx * half], [0.0, sy, y - sy * half]], dtype=np.float64)
    return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
