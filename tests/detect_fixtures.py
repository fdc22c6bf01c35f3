"""Hand-made sagittal DICOM series + ingest-like index tables for the detector tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import schema
from rsna_layout import write_slice

ROWS, COLS = 128, 96  # non-square
SPACING = (0.9, 0.7)  # mm (row, col): anisotropic
IOP = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # sagittal
MIRRORED_IOP = (0.0, -1.0, 0.0, 0.0, 0.0, -1.0)  # sagittal stored mirrored: anterior on the image right


def disc_points(rng: np.random.Generator) -> np.ndarray:
    """Five disc centres (x, y px), L1/L2 at the top, about 23 mm apart."""
    y = 14 + np.arange(5) * 26 + rng.uniform(-2, 2, 5)
    x = 48 + 6 * np.sin(np.linspace(0, np.pi, 5)) + rng.uniform(-2, 2)
    return np.stack([x, y], 1)


def render(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:ROWS, :COLS]
    img = 300 + 80 * rng.random((ROWS, COLS))
    for x, y in points:
        img += 2500 * np.exp(-(((xx - x) / 6) ** 2 + ((yy - y) / 2.5) ** 2))
    return np.clip(img, 0, 4095).astype(np.uint16)


def make_dataset(root: Path, n_studies: int = 6, n_slices: int = 3, seed: int = 0, mirrored: tuple[int, ...] = ()):
    """DICOMs under root/train_images and (instances, coords, folds) tables.

    Each study has one Sagittal T2/STIR series; the middle slice carries the five
    annotated canal points. Studies 0 and 1 are fold 0, the rest folds 1 and 2. Studies
    whose position is in `mirrored` are stored mirrored (row direction -y, pixels and
    annotated x flipped with it): the same anatomy at the same patient positions.
    """
    rng = np.random.default_rng(seed)
    inst_rows, coord_rows, fold_rows = [], [], []
    for s in range(n_studies):
        study, series = 2000 + s, 9000 + s
        pts = disc_points(rng)
        for k in range(n_slices):
            rel = f"{schema.TRAIN_IMAGES}/{study}/{series}/{k + 1}.dcm"
            ipp = (-3.0 + 3.0 * k, -30.0, 40.0)
            pixels = render(pts, rng)
            iop = IOP
            if s in mirrored:
                ipp, iop, pixels = (ipp[0], ipp[1] + (COLS - 1) * SPACING[1], ipp[2]), MIRRORED_IOP, pixels[:, ::-1]
            write_slice(root / rel, rows=pixels.shape[0], cols=pixels.shape[1], instance=k + 1, ipp=ipp, iop=iop,
                        spacing=SPACING, pixels=pixels, description="Sagittal T2/STIR", thickness=None)
            inst_rows.append(dict(study_id=study, series_id=series, split="train", instance_number=k + 1, path=rel,
                                  spatial_rank=k,
                                  rows=ROWS, cols=COLS, pixel_spacing_row=SPACING[0], pixel_spacing_col=SPACING[1],
                                  ipp_x=ipp[0], ipp_y=ipp[1], ipp_z=ipp[2], iop_rx=iop[0], iop_ry=iop[1],
                                  iop_rz=iop[2], iop_cx=iop[3], iop_cy=iop[4], iop_cz=iop[5]))
        for lv, (x, y) in zip(schema.LEVELS, pts):
            x = COLS - 1 - x if s in mirrored else x
            coord_rows.append(dict(study_id=study, series_id=series, instance_number=n_slices // 2 + 1,
                                   condition="Spinal Canal Stenosis", level=lv, x=x, y=y, plane="sag_t2",
                                   rows=ROWS, cols=COLS, pixel_spacing_row=SPACING[0],
                                   pixel_spacing_col=SPACING[1], in_image=True, near_origin=False, severity_code=0))
        fold_rows.append(dict(study_id=study, fold=0 if s < 2 else 1 + s % 2))
    return pd.DataFrame(inst_rows), pd.DataFrame(coord_rows), pd.DataFrame(fold_rows)


def write_index(tmp: Path, n_studies: int = 6, seed: int = 0, mirrored: tuple[int, ...] = ()
                ) -> tuple[Path, Path, Path]:
    """Write DICOMs + index parquet files + folds under tmp; return (data_root, index_dir, folds)."""
    root, index = tmp / "data", tmp / "index"
    instances, coords, folds = make_dataset(root, n_studies, seed=seed, mirrored=mirrored)
    index.mkdir(parents=True)
    instances.to_parquet(index / "instances.parquet")
    coords.to_parquet(index / "coords.parquet")
    folds.to_parquet(tmp / "folds.parquet")
    return root, index, tmp / "folds.parquet"
