"""A tiny hand-made spine phantom for the ROI tests: DICOM series whose geometry is known
exactly, a ground-truth position per structure, and a blob-finding stand-in detector.

Structures are bright gaussian balls in patient mm (LPS): the canal at each disc (drawn
on sag_t2), the foramina 15 mm either side (sag_t1), the subarticular zones 8 mm either
side (ax_t2). Sagittal series have IOP (0,1,0 / 0,0,-1), whose normal points to patient
right; axial series have one angled block of slices per disc, optionally split over two
series, instance numbers running against space.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from lsdc import schema
from lsdc.detect import infer
from lsdc.dicom import SliceGeometry
from lsdc.params import Detect
from rsna_layout import write_slice

LEVEL_Z = np.array([60.0, 30.0, 0.0, -30.0, -60.0])
LEVEL_Y = np.array([-2.0, 2.0, 5.0, 6.0, 4.0])
TILT_DEG = np.array([-15.0, -5.0, 5.0, 15.0, 25.0])
SAG_IOP = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CONDITION_OF = {("sag_t2", None): "Spinal Canal Stenosis",
                ("sag_t1", "left"): "Left Neural Foraminal Narrowing",
                ("sag_t1", "right"): "Right Neural Foraminal Narrowing",
                ("ax_t2", "left"): "Left Subarticular Stenosis",
                ("ax_t2", "right"): "Right Subarticular Stenosis"}
SERIES_SHAPE = {"sag_t2": ((90, 75), (2.0, 1.6)), "sag_t1": ((100, 67), (1.8, 1.8)),
                "ax_t2": ((70, 64), (1.0, 1.25))}


def structures(x0: float = 0.0) -> dict[tuple[str, str, str | None], np.ndarray]:
    """Ground-truth patient position of every structure."""
    out = {}
    for i, lv in enumerate(schema.LEVELS):
        y, z = LEVEL_Y[i], LEVEL_Z[i]
        out[("sag_t2", lv, None)] = np.array([x0, y + 3, z])
        for side, sign in (("left", 1.0), ("right", -1.0)):
            out[("sag_t1", lv, side)] = np.array([x0 + 15 * sign, y + 8, z + 2])
            out[("ax_t2", lv, side)] = np.array([x0 + 8 * sign, y + 6, z])
    return out


def sagittal_slices(plane: str, x0: float, n: int = 13, step: float = 3.5) -> list[SliceGeometry]:
    (rows, cols), spacing = SERIES_SHAPE[plane]
    xs = x0 + (np.arange(n) - (n - 1) / 2) * step
    return [SliceGeometry.from_tags((x, -50.0, 90.0), SAG_IOP, spacing, rows, cols) for x in xs]


def axial_slices(x0: float, per_level: int = 3, step: float = 4.0, levels: Sequence[int] = range(5)
                 ) -> list[SliceGeometry]:
    """One block of `per_level` slices per disc, tilted by TILT_DEG about patient x."""
    (rows, cols), spacing = SERIES_SHAPE["ax_t2"]
    out = []
    for i in levels:
        t = np.deg2rad(TILT_DEG[i])
        r, c = np.array([1.0, 0.0, 0.0]), np.array([0.0, np.cos(t), -np.sin(t)])
        normal = np.cross(r, c)
        centre = np.array([x0, LEVEL_Y[i] + 3, LEVEL_Z[i]])
        for k in np.arange(per_level) - (per_level - 1) / 2:
            mid = centre + k * step * normal
            ipp = mid - (cols - 1) / 2 * spacing[1] * r - (rows - 1) / 2 * spacing[0] * c
            out.append(SliceGeometry.from_tags(ipp, (*r, *c), spacing, rows, cols))
    return out


def render(geom: SliceGeometry, balls: Sequence[np.ndarray], rng: np.random.Generator,
           sigma: float = 2.5) -> np.ndarray:
    yy, xx = np.mgrid[: geom.rows, : geom.cols]
    pts = geom.to_patient(xx, yy)
    img = 200 + 40 * rng.random((geom.rows, geom.cols))
    img[:4] = 3000  # a bright band on every slice keeps the series window (99th percentile) high
    for b in balls:
        img += 3000 * np.exp(-np.sum((pts - b) ** 2, axis=-1) / (2 * sigma**2))
    return np.clip(img, 0, 4095).astype(np.uint16)


def write_series(folder: Path, plane: str, geoms: list[SliceGeometry], balls, rng, reverse: bool = False,
                 first_instance: int = 1) -> list[int]:
    """Write the slices; returns the instance number of each geometry."""
    n = len(geoms)
    instances = [first_instance + (n - 1 - k if reverse else k) for k in range(n)]
    for g, inst in zip(geoms, instances):
        write_slice(folder / f"{inst}.dcm", rows=g.rows, cols=g.cols, instance=inst, ipp=g.ipp,
                    iop=(*g.row_dir, *g.col_dir), spacing=(g.row_spacing, g.col_spacing),
                    pixels=render(g, balls, rng), description=schema.DESCRIPTION_OF_PLANE[plane])
    return instances


def write_study(root: Path, split: str, study: int, x0: float = 0.0, planes=schema.PLANES,
                axial_series: int = 1, seed: int = 0) -> dict:
    """One study's DICOMs; returns {'series': [(series_id, description)], 'coords': [...],
    'truth': structures}."""
    rng = np.random.default_rng(seed)
    truth = structures(x0)
    images = schema.TRAIN_IMAGES if split == "train" else schema.TEST_IMAGES
    series, coords = [], []
    for k, plane in enumerate(planes):
        balls = [v for key, v in truth.items() if key[0] == plane]
        if plane == "ax_t2":
            parts = [range(5)] if axial_series == 1 else [range(0, 3), range(3, 5)]
            groups = [(study * 10 + k + 5 * j, axial_slices(x0, levels=lv)) for j, lv in enumerate(parts)]
        else:
            groups = [(study * 10 + k, sagittal_slices(plane, x0))]
        placed = []
        for j, (sid, geoms) in enumerate(groups):
            folder = root / images / str(study) / str(sid)
            inst = write_series(folder, plane, geoms, balls, rng, reverse=plane == "ax_t2" and j == 0,
                                first_instance=1 if j == 0 else 5031)
            series.append((sid, schema.DESCRIPTION_OF_PLANE[plane]))
            placed += [(sid, g, n) for g, n in zip(geoms, inst)]
        for (pl, lv, side), point in truth.items():
            if pl != plane:
                continue
            dists = [abs(float(g.to_pixel(point)[2])) for _, g, _ in placed]
            sid, g, inst = placed[int(np.argmin(dists))]
            x, y, _ = g.to_pixel(point)
            coords.append((study, sid, inst, CONDITION_OF[(pl, side)], lv, float(x), float(y)))
    return {"series": series, "coords": coords, "truth": truth}


def make_root(root: Path, studies: Sequence[dict]) -> dict[int, dict]:
    """Write studies (dicts: split, study, and write_study keywords) plus the CSVs."""
    out, series_rows, coords, labels = {}, [], [], []
    for spec in studies:
        spec = dict(spec)
        split, study = spec.pop("split"), spec.pop("study")
        info = write_study(root, split, study, **spec)
        out[study] = info
        series_rows += [(split, study, sid, desc) for sid, desc in info["series"]]
        if split == "train":
            coords += info["coords"]
            labels.append([study] + [schema.SEVERITIES[0]] * len(schema.LABEL_COLUMNS))
    pd.DataFrame(labels, columns=list(schema.TRAIN_COLUMNS)).to_csv(root / schema.TRAIN_CSV, index=False)
    pd.DataFrame(coords, columns=list(schema.COORDS_COLUMNS)).to_csv(root / schema.COORDS_CSV, index=False)
    for split, name in (("train", schema.TRAIN_SERIES_CSV), ("test", schema.TEST_SERIES_CSV)):
        rows = [r[1:] for r in series_rows if r[0] == split]
        pd.DataFrame(rows, columns=list(schema.SERIES_COLUMNS)).to_csv(root / name, index=False)
    return out


class BlobDetectors:
    """Stand-in detector: bright connected blobs of a windowed slice, assigned to levels /
    sides by the project's own anatomy step. `miss` drops every k-th blob found (0 = none)
    to exercise imputation."""

    def __init__(self, cfg: Detect | None = None, threshold: int = 110, miss: int = 0):
        self.cfg, self.threshold, self.miss = cfg or Detect(), threshold, miss
        self.calls: list[tuple[str, int]] = []

    def boxes(self, image: np.ndarray, counter: list[int]) -> infer.Boxes:
        lab, n = ndimage.label(image > self.threshold)
        if n == 0:
            return infer.Boxes(np.zeros((0, 2)), np.zeros(0), np.zeros(0, int))
        idx = np.arange(1, n + 1)
        border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        mass = np.asarray(ndimage.sum(image.astype(float), lab, idx))
        yx = np.asarray(ndimage.center_of_mass(image.astype(float), lab, idx), float).reshape(-1, 2)
        keep = (mass > 255 * 3) & ~np.isin(idx, border)
        if self.miss:
            for k in np.flatnonzero(keep):
                counter[0] += 1
                if counter[0] % self.miss == 0:
                    keep[k] = False
        conf = 1 - np.exp(-mass[keep] / (255 * 20))
        return infer.Boxes(yx[keep][:, ::-1].copy(), conf, np.zeros(int(keep.sum()), int))

    def points(self, plane, images, spacings, sides=None, midlines=None) -> pd.DataFrame:
        self.calls.append((plane, len(images)))
        counter = [0]
        boxes = [self.boxes(np.asarray(im), counter) for im in images]
        if midlines is None:
            midlines = [np.shape(im)[1] / 2 for im in images]
        return infer.points_table(boxes, plane, self.cfg, spacings, sides, midlines)
