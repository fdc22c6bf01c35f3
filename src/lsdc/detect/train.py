"""`train_detector@plane` stage: train one plane's YOLO detector.

Reads data/interim/yolo/<plane>/ (from yolo_export). Writes
  models/detectors/<plane>.pt             best weights (ultralytics checkpoint, normalised by
                                          detect/checkpoint.py: no date, git state or machine paths)
  metrics/detectors/<plane>_results.csv   per-epoch curves (ultralytics results.csv without `time`)
Measuring the detector is the separate `evaluate_detector@plane` stage (lsdc.detect.evaluate),
so an inference or anatomy threshold re-runs evaluation, never training.
Train times go to the MLflow run only, never to a file DVC tracks.
Ultralytics' run folder lives under .cache/ultralytics/runs/<plane> (scratch, untracked).
One MLflow run `train_detector@<plane>` gets the params, per-epoch metrics, times and the weights.
"""

from __future__ import annotations

import csv
import logging
import resource
import shutil
import time
from pathlib import Path

import yaml

from lsdc import paths, tracking
from lsdc.detect import checkpoint, ultralytics_env
from lsdc.detect import labels as lab
from lsdc.params import Params

log = logging.getLogger(__name__)

SCRATCH_DIR = ultralytics_env.CONFIG_DIR / "runs"


def resolved_dataset_yaml(yolo_dir: Path, out: Path) -> Path:
    """Copy dataset.yaml with `path` made absolute (relative = the yaml's own folder)."""
    src = yolo_dir / "dataset.yaml"
    if not src.exists():
        raise FileNotFoundError(f"{src}: YOLO dataset missing (run `lsdc yolo-export` first)")
    data = yaml.safe_load(src.read_text())
    base = Path(data.get("path") or ".")
    data["path"] = str(base if base.is_absolute() else (yolo_dir / base).resolve())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def model_yaml(cfg, nc: int, out: Path, plane: str) -> Path:
    """The architecture yaml scaled by the plane's detect.train.width_multiple and by
    depth_multiple, nc classes."""
    from ultralytics.nn.tasks import yaml_model_load

    d = yaml_model_load(cfg.train.model)
    d = {k: v for k, v in d.items() if k not in ("scales", "scale", "yaml_file")}
    d.update(nc=nc, depth_multiple=cfg.train.depth_multiple, width_multiple=getattr(cfg.train.width_multiple, plane))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(d, sort_keys=False))  # name without n/s/m/l/x: no scale guessed
    return out


def train_args(p: Params, data_yaml: Path, run_dir: Path, plane: str) -> dict:
    c = p.detect.train
    epochs = getattr(c.epochs, plane)
    return dict(
        data=str(data_yaml), epochs=epochs, imgsz=p.detect.export.imgsz, batch=c.batch, nbs=c.batch,
        optimizer=c.optimizer, lr0=c.lr0, lrf=c.lrf, warmup_epochs=c.warmup_epochs,
        weight_decay=c.weight_decay, mosaic=c.mosaic, close_mosaic=c.close_mosaic, fliplr=c.fliplr,
        degrees=c.degrees, scale=c.scale, val=c.val, workers=p.runtime.detect_workers, device=p.runtime.detect_device,
        seed=p.seed,
        deterministic=True, amp=False, project=str(run_dir.parent.resolve()), name=run_dir.name,
        exist_ok=True, patience=max(epochs, 1), plots=False, verbose=False, pretrained=False,
    )


# per-epoch columns of ultralytics' results.csv left out of the copy: wall-clock
# (`time`, seconds since the start) differs on every run and the CSV is a DVC plot
WALL_CLOCK_COLUMNS = ("time",)
# columns measured on the validation fold: only on validated epochs (detect.train.val)
VAL_PREFIXES = ("metrics/", "val/")


def copy_epoch_csv(src: Path, dst: Path, drop: tuple[str, ...] = WALL_CLOCK_COLUMNS,
                   validated_every_epoch: bool = True) -> Path:
    """Copy a per-epoch CSV without the wall-clock columns; the other cells keep their text.
    validated_every_epoch=False: the validation columns of every row but the last are left
    empty (ultralytics writes zeros for the epochs it did not validate)."""
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if rows:
        keep = [i for i, name in enumerate(rows[0]) if name.strip() not in drop]
        rows = [[row[i] for i in keep if i < len(row)] for row in rows]
        blank = [i for i, name in enumerate(rows[0]) if name.strip().startswith(VAL_PREFIXES)]
        for row in rows[1:-1] if not validated_every_epoch else ():
            for i in blank:
                row[i] = ""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return dst


def trainer_class():
    """Ultralytics' DetectionTrainer with the model and its batches in channels-last memory
    (convolutions ~10 % faster on CPU, `lsdc bench --only detector`), and without
    the second validation of the same weights after training when `val` is off (ultralytics
    validates the last epoch, which is then also the best: with `val` off no other epoch has
    a fitness)."""
    import torch
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.torch_utils import strip_optimizer

    class ChannelsLastTrainer(DetectionTrainer):
        def get_model(self, cfg=None, weights=None, verbose=True):
            return super().get_model(cfg, weights, verbose).to(memory_format=torch.channels_last)

        def preprocess_batch(self, batch: dict) -> dict:
            batch = super().preprocess_batch(batch)
            batch["img"] = batch["img"].contiguous(memory_format=torch.channels_last)
            return batch

        def final_eval(self):
            if self.args.val:
                return super().final_eval()
            for weights in (self.last, self.best):
                if weights.exists():
                    strip_optimizer(weights)

    return ChannelsLastTrainer


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process: comparable across loaded machines."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _epoch_logger(trainer) -> None:
    import mlflow

    if mlflow.active_run() is None:  # e.g. a test without a run: never start one implicitly
        return
    metrics = dict(trainer.label_loss_items(trainer.tloss, prefix="train"))
    if trainer.args.val or trainer.epoch + 1 >= trainer.epochs:  # else the fold was not measured
        metrics.update(trainer.metrics or {})
    tracking.log_metrics(metrics, step=int(trainer.epoch))


def train_plane(p: Params, plane: str, yolo_dir: Path, models_dir: Path = paths.DETECTORS_DIR,
                metrics_dir: Path = paths.DETECTOR_METRICS_DIR, scratch: Path = SCRATCH_DIR,
                config_dir: Path = ultralytics_env.CONFIG_DIR) -> dict:
    """Train, copy the best weights and curves out of the run folder; return run facts for MLflow."""
    if p.detect.export.classes not in lab.MODES:
        raise ValueError(f"detect.export.classes={p.detect.export.classes!r}; expected one of {lab.MODES}")
    if p.detect.train.fliplr > 0:
        log.warning("detect.train.fliplr=%s swaps left and right; sides read from position become wrong", p.detect.train.fliplr)
    ultralytics_env.configure(config_dir)
    from ultralytics import YOLO

    run_dir = scratch / plane
    if run_dir.exists():
        shutil.rmtree(run_dir)
    # ultralytics writes labels/*.cache next to the labels: train on a scratch copy so the
    # yolo_export output (a DVC out and this stage's dep) stays exactly as exported
    data_copy = scratch / f"{plane}_data"
    if data_copy.exists():
        shutil.rmtree(data_copy)
    shutil.copytree(yolo_dir, data_copy, ignore=shutil.ignore_patterns("*.cache"))
    data_yaml = resolved_dataset_yaml(data_copy, scratch / f"{plane}_dataset.yaml")
    names = lab.class_names(plane, p.detect.export.classes)
    if p.detect.train.weights:
        if not Path(p.detect.train.weights).exists():
            raise FileNotFoundError(f"{p.detect.train.weights}: detect.train.weights not found (weights are never downloaded)")
        model = YOLO(p.detect.train.weights, task="detect")
    else:
        model = YOLO(str(model_yaml(p.detect, len(names), scratch / f"lsdc_{plane}_arch.yaml", plane)), task="detect")
    model.add_callback("on_fit_epoch_end", _epoch_logger)
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    model.train(trainer=trainer_class(), **train_args(p, data_yaml, run_dir, plane))
    trainer = model.trainer
    train_s, train_cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    best = Path(trainer.best) if Path(trainer.best).exists() else Path(trainer.last)
    models_dir.mkdir(parents=True, exist_ok=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    weights = models_dir / f"{plane}.pt"
    checkpoint.save_portable(best, weights)  # no date, git state or absolute paths: same bytes in any clone
    copy_epoch_csv(Path(trainer.save_dir) / "results.csv", metrics_dir / f"{plane}_results.csv",
                   validated_every_epoch=p.detect.train.val)
    n_params = int(sum(x.numel() for x in model.model.parameters()))
    # wall-clock and CPU time go to MLflow only (main): in a DVC out they would change dvc.lock
    return {"n_params": n_params, "_runtime": {"train_seconds": round(train_s, 1),
                                               "train_cpu_seconds": round(train_cpu, 1),
                                               "torch_threads": ultralytics_env.use_threads()}}
