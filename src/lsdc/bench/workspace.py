"""The benchmarks' own data and models, kept in a scratch folder (default scratch/bench,
git-ignored) and reused between runs.

- a synthetic RSNA-layout dataset written by lsdc.synth (RLE DICOM, like the real data)
  at a small image scale, ingested into its own index, with folds;
- detectors: models/detectors/<plane>.pt when the pipeline has trained them, else
  trained here with the project's own export/training code and the default run's
  detect.train settings, so that they detect what the pipeline's detectors detect (the
  ROI comparison needs both loops to crop real detections);
- a ROI store of the first `store_studies` studies (lsdc.rois.extract.run);
- classifier folds: models/classifier/fold_<k>.pt when present and readable with these
  crops, else one epoch per fold trained here with lsdc.classify.engine.train_fold.

Each step writes a small JSON marker with its settings and is skipped next time when the
marker matches. Nothing here is timed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lsdc import index, paths, schema
from lsdc.params import Params, PlaneEpochs

log = logging.getLogger(__name__)

SCRATCH_DIR = paths.BENCH_DIR
MARKER = "bench_marker.json"
INDEX_TABLES = ("studies", "series", "instances", "labels", "coords")
SPLIT_ORDER = {"train": 0, "test": 1}


@dataclass(frozen=True)
class Workspace:
    dir: Path
    params: Params  # params.yaml with data.root (and cv.n_folds) pointing at the bench data
    data_root: Path
    index_dir: Path
    folds_path: Path
    detectors_dir: Path  # <plane>.pt
    detectors_source: str  # 'project' | 'bench'
    classifier_root: Path | None = None  # folder holding classifier/fold_<k>.pt
    classifier_source: str | None = None
    rois_dir: Path | None = None
    rois_index_dir: Path | None = None

    @property
    def n_studies(self) -> int:
        return len(index.read_table(self.index_dir, "studies"))


def _marker_ok(folder: Path, settings: dict[str, Any]) -> bool:
    path = folder / MARKER
    try:
        return json.loads(path.read_text()) == json.loads(json.dumps(settings))
    except (OSError, ValueError):
        return False


def _write_marker(folder: Path, settings: dict[str, Any]) -> None:
    (folder / MARKER).write_text(json.dumps(settings, indent=2) + "\n")


def with_root(params: Params, root: Path) -> Params:
    return dataclasses.replace(params, data=dataclasses.replace(params.data, root=str(root)))


def prepare_data(params: Params, scratch: Path, n_studies: int, image_scale: float) -> Workspace:
    """Dataset of n_studies (about 1 in 10 of them test studies) + index + folds."""
    from lsdc import folds, ingest
    from lsdc.synth import generate

    if n_studies < 4:
        raise ValueError(f"benchmark dataset needs at least 4 studies, got {n_studies}")
    name = f"data_n{n_studies}_s{image_scale:g}"
    folder = Path(scratch) / name
    root, index_dir = folder / "rsna", folder / "index"
    n_test = max(1, n_studies // 10)
    synth = dataclasses.replace(params.synth, n_train=n_studies - n_test, n_test=n_test,
                                image_scale=float(image_scale))
    settings = {"synth": dataclasses.asdict(synth), "n_folds": params.cv.n_folds, "seed": params.seed,
                "near_origin_px": params.ingest.near_origin_px}
    p = with_root(params, root)
    if not _marker_ok(folder, settings):
        folder.mkdir(parents=True, exist_ok=True)
        log.info("bench: writing %d synthetic studies (image_scale %g) to %s", n_studies, image_scale, root)
        generate.generate(synth, root, workers=max(1, params.runtime.workers), progress=False)
        ingest.run(p, out_dir=index_dir, metrics_path=folder / "ingest.json")
        table = folds.build_folds(index_dir, params.cv.n_folds, params.seed)
        table.to_parquet(folder / paths.FOLDS_FILE.name, index=False)
        _write_marker(folder, settings)
    return Workspace(folder, p, root, index_dir, folder / paths.FOLDS_FILE.name,
                     detectors_dir=Path(), detectors_source="")


def study_order(index_dir: Path) -> list[int]:
    """Study ids in the extraction stage's order: train then test, by id."""
    studies = index.read_table(index_dir, "studies")
    studies = studies.assign(_o=studies["split"].map(SPLIT_ORDER).fillna(2)).sort_values(["_o", "study_id"])
    return [int(s) for s in studies["study_id"]]


def subset_index(index_dir: Path, n: int, out_dir: Path) -> Path:
    """The index tables restricted to the first n studies (study_order); cached."""
    out_dir = Path(out_dir)
    ids = study_order(index_dir)[:n]
    if len(ids) < n:
        raise ValueError(f"{index_dir}: asked for {n} studies, the index has {len(ids)}")
    settings = {"source": str(index_dir), "studies": ids}
    if _marker_ok(out_dir, settings):
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in index.read(index_dir, INDEX_TABLES).items():
        table[table["study_id"].isin(ids)].to_parquet(index.table_path(out_dir, name), index=False)
    _write_marker(out_dir, settings)
    return out_dir


# ----------------------------------------------------------------------------- detectors

def project_detectors(models_dir: Path = paths.MODELS_DIR / "detectors") -> Path | None:
    return models_dir if all((models_dir / f"{p}.pt").exists() for p in schema.PLANES) else None


def ensure_detectors(ws: Workspace, epochs: int | None = None, use_project: bool = True) -> Workspace:
    """The project's detectors when trained, else detectors trained here on the bench data
    with the default run's settings (params' detect.train: its epochs, warm-up and mosaic
    schedule), so that they find the structures the pipeline's would and both loops of
    the ROI benchmark crop real detections. `epochs` overrides detect.train.epochs (a
    quick look only: undertrained detectors find nothing and the comparison is void)."""
    found = project_detectors() if use_project else None
    if found is not None:
        log.info("bench: using the pipeline's detectors %s", found)
        return dataclasses.replace(ws, detectors_dir=found, detectors_source="project")
    from lsdc.detect.export import export_plane
    from lsdc.detect.train import train_plane

    p = ws.params
    train = p.detect.train
    if epochs is not None and train.epochs != PlaneEpochs(int(epochs), int(epochs), int(epochs)):
        train = dataclasses.replace(train, epochs=PlaneEpochs(int(epochs), int(epochs), int(epochs)),
                                    close_mosaic=min(train.close_mosaic, int(epochs) // 3))
    p = dataclasses.replace(p, detect=dataclasses.replace(p.detect, train=train))
    folder = ws.dir / ("detectors" if train == ws.params.detect.train else f"detectors_e{train.epochs.sag_t2}")
    settings = {"detect": dataclasses.asdict(p.detect), "data": str(ws.data_root)}
    if not _marker_ok(folder, settings):
        folder.mkdir(parents=True, exist_ok=True)
        for plane in schema.PLANES:
            log.info("bench: training the %s detector, %d epochs (no pipeline detectors found)", plane,
                     getattr(train.epochs, plane))
            yolo_dir = ws.dir / "yolo" / plane
            export_plane(plane, p, ws.index_dir, ws.folds_path, yolo_dir)
            train_plane(p, plane, yolo_dir, models_dir=folder, metrics_dir=ws.dir / "detector_metrics",
                        scratch=ws.dir / "ultralytics_runs")
        _write_marker(folder, settings)
    how = "the default run's settings" if train == ws.params.detect.train else "detect.train.epochs overridden"
    return dataclasses.replace(ws, detectors_dir=folder,
                               detectors_source=f"bench ({train.epochs.sag_t2} epochs, {how})")


def _detectors_stamp(folder: Path) -> dict[str, float]:
    return {p: (folder / f"{p}.pt").stat().st_mtime for p in schema.PLANES}


# ----------------------------------------------------------------------------- ROI store

def ensure_rois(ws: Workspace, n: int) -> Workspace:
    """ROI store of the first n studies, written by the extraction stage itself."""
    from lsdc.rois import extract as stage

    folder = ws.dir / f"rois_n{n}"
    index_dir = subset_index(ws.index_dir, n, ws.dir / f"index_n{n}")
    settings = {"rois": dataclasses.asdict(ws.params.rois), "detect": dataclasses.asdict(ws.params.detect),
                "detectors": str(ws.detectors_dir), "stamp": _detectors_stamp(ws.detectors_dir),
                "index": str(index_dir), "n": n}
    if not _marker_ok(folder, settings):
        log.info("bench: extracting the ROI store of %d studies into %s", n, folder)
        stage.run(ws.params, index_dir=index_dir, out_dir=folder / "store", metrics_path=folder / "rois.json",
                  sheets_dir=folder / "sheets", models_dir=ws.detectors_dir)
        _write_marker(folder, settings)
    return dataclasses.replace(ws, rois_dir=folder / "store", rois_index_dir=index_dir)


# ----------------------------------------------------------------------------- classifier

def project_classifier(ws: Workspace) -> Path | None:
    """models/ when its fold checkpoints can read this store's crops, else None."""
    from lsdc.classify import data
    from lsdc.predict import ensemble

    folder = paths.MODELS_DIR / "classifier"
    if not list(folder.glob(ensemble.CHECKPOINT_GLOB)) or ws.rois_dir is None:
        return None
    store = data.load_store(ws.rois_dir)
    try:
        ensemble.load_models(folder, store.roi_size, ensemble.channel_keys(store.index))
    except (ValueError, FileNotFoundError) as e:
        log.warning("bench: the pipeline's classifier cannot be used here (%s); training small ones", e)
        return None
    return paths.MODELS_DIR


def ensure_classifier(ws: Workspace, use_project: bool = True) -> Workspace:
    """Fold checkpoints in <root>/classifier/: the pipeline's, or one epoch per fold here."""
    if ws.rois_dir is None:
        raise ValueError("ensure_classifier needs the ROI store (ensure_rois first)")
    found = project_classifier(ws) if use_project else None
    if found is not None:
        log.info("bench: using the pipeline's classifier checkpoints under %s", found)
        return dataclasses.replace(ws, classifier_root=found, classifier_source="project")
    root = ws.dir / "models"
    folder = root / "classifier"
    settings = {"model": dataclasses.asdict(ws.params.model), "train": dataclasses.asdict(ws.params.train),
                "store": json.loads((ws.rois_dir.parent / MARKER).read_text())}
    if not _marker_ok(folder, settings):
        folder.mkdir(parents=True, exist_ok=True)
        train_small_classifier(ws, folder)
        _write_marker(folder, settings)
    return dataclasses.replace(ws, classifier_root=root, classifier_source="bench (1 epoch per fold)")


def train_small_classifier(ws: Workspace, out: Path) -> list[Path]:
    import torch

    from lsdc.classify import data, layout
    from lsdc.classify.engine import train_fold
    from lsdc.classify.model import make_checkpoint

    p = ws.params
    store = data.load_store(ws.rois_dir)
    labels = data.load_labels(index.table_path(ws.rois_index_dir, "labels"))
    folds = data.load_folds(ws.folds_path)
    folds = folds[folds["study_id"].isin(store.index["study_id"].unique())]
    ids, fold_of = folds["study_id"].to_numpy(), folds["fold"].to_numpy()
    y = data.label_array(labels, ids)
    keys = layout.build_layout(p.train.layout, layout.store_channels(store.index))
    rows, present = layout.assemble(store.index, ids, keys)
    cfg = dataclasses.replace(p.train, epochs=1)
    paths = []
    for k in sorted(np.unique(fold_of)):
        val = fold_of == k
        result = train_fold(int(k), data.StudyCrops(store.crops, rows[~val], present[~val], y[~val], keys=keys),
                            data.StudyCrops(store.crops, rows[val], present[val], y[val], keys=keys),
                            p.model, cfg, seed=p.seed + int(k), device="cpu")
        path = out / f"fold_{int(k)}.pt"
        torch.save(make_checkpoint(result.model, p.model.name, keys, store.roi_size, p.flat(),
                                   layout_name=p.train.layout, fold=int(k)), path)
        paths.append(path)
    return paths
