"""Tiny end-to-end detector training: export -> train 1 epoch -> load -> predict, offline."""

import json
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest

from detect_fixtures import SPACING, disc_points, render, write_index
from lsdc import headline
from lsdc import params as params_mod

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    calls = []

    def guard(self, address, *a, **k):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            calls.append(address)
            raise OSError(f"network access attempted: {address}")
        return real_connect(self, address, *a, **k)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, address: guard(self, address))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(OSError(f"DNS lookup: {a[:1]}")))
    yield calls
    assert not calls, f"network used: {calls}"


def test_tiny_training_offline_produces_loadable_weights(tmp_path, monkeypatch, no_network):
    from lsdc.detect import export, infer, train

    root, index, folds = write_index(tmp_path, n_studies=6)
    p = params_mod.load(PARAMS, {
        "data.root": str(root), "runtime.workers": 0, "detect.export.imgsz": 64, "detect.train.epochs": 1,
        "detect.train.batch": 4, "detect.train.mosaic": 0.0, "detect.train.close_mosaic": 0, "detect.infer.conf": 0.001,
    })
    yolo_dir = tmp_path / "yolo" / "sag_t2"
    export.export_plane("sag_t2", p, index, folds, yolo_dir)
    exported = sorted((f.relative_to(yolo_dir), f.stat().st_mtime_ns) for f in yolo_dir.rglob("*"))
    monkeypatch.chdir(tmp_path)  # anything written relative to cwd lands in tmp_path
    metrics = train.train_plane(p, "sag_t2", yolo_dir, models_dir=tmp_path / "models",
                                metrics_dir=tmp_path / "metrics", scratch=tmp_path / "scratch",
                                config_dir=tmp_path / "ulcfg")
    weights = tmp_path / "models" / "sag_t2.pt"
    assert weights.stat().st_size > 10_000
    # no date, git state or path of this machine in the weights: the same bytes in any clone
    pickled = zipfile.ZipFile(weights).read("archive/data.pkl")
    assert str(tmp_path).encode() not in pickled and b"/" + tmp_path.name.encode() not in pickled
    import torch

    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    assert "date" not in ckpt and "git" not in ckpt and "time" not in ckpt["train_results"]
    assert ckpt["train_args"]["project"] == "scratch" and ckpt["model"].args["save_dir"] == "scratch/sag_t2"
    # training leaves the exported dataset (a DVC out) untouched: no ultralytics label caches
    assert sorted((f.relative_to(yolo_dir), f.stat().st_mtime_ns) for f in yolo_dir.rglob("*")) == exported
    assert not (tmp_path / "metrics" / "sag_t2.json").exists()  # measuring is evaluate_detector's job
    runtime = metrics.pop("_runtime")  # wall-clock: returned for MLflow, in no file
    assert metrics["n_params"] > 100_000 and runtime["train_seconds"] > 0
    lines = (tmp_path / "metrics" / "sag_t2_results.csv").read_text().splitlines()
    assert len(lines) == 2 and "metrics/mAP50(B)" in lines[0] and "time" not in lines[0].split(",")
    from lsdc.detect import evaluate

    saved = evaluate.evaluate_plane(weights, yolo_dir, tmp_path / "metrics" / "sag_t2_results.csv", "sag_t2",
                                    p.detect)
    assert saved["loc_points"] == 10 and 0.0 <= saved["mAP50"] <= 1.0 and saved["best_epoch"] == 1
    head, _ = headline.write("detectors", saved, tmp_path / "metrics" / "sag_t2.json")
    assert set(json.loads(head.read_text())) == {"mAP50", "loc_right_within", "loc_median_mm"}  # headline only
    assert headline.load(head) == json.loads(json.dumps(saved))
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()
    settings = json.loads((tmp_path / "ulcfg" / "Ultralytics" / "settings.json").read_text())
    assert settings["mlflow"] is False and settings["dvc"] is False and settings["sync"] is False

    model = infer.load_detector(weights)
    rng = np.random.default_rng(1)
    images = [(render(disc_points(rng), rng) // 16).astype(np.uint8) for _ in range(3)]
    pts = infer.predict_points(model, images, [SPACING] * 3, "sag_t2", p.detect)
    assert list(pts.columns) == list(infer.POINT_COLUMNS)
    assert pts["image"].between(0, 2).all() and pts["level"].dropna().isin(
        ["L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]).all()
    with pytest.raises(ValueError, match="do not match"):
        infer.predict_points(model, images, [SPACING] * 3, "ax_t2", p.detect)


def test_epoch_csv_blanks_the_epochs_the_fold_did_not_measure(tmp_path):
    """detect.train.val=false: ultralytics writes zeros for the unvalidated epochs; the copy
    leaves those cells empty, keeps the last row's, drops wall-clock and keeps train losses."""
    from lsdc.detect import evaluate, train

    src = tmp_path / "results.csv"
    src.write_text("epoch,time,train/box_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),"
                   "metrics/mAP50-95(B),val/box_loss\n"
                   "1,3.1,2.5,0,0,0,0,0\n2,6.2,2.1,0,0,0,0,0\n3,9.3,1.9,0.8,0.7,0.9,0.5,1.2\n")
    out = train.copy_epoch_csv(src, tmp_path / "a.csv", validated_every_epoch=False)
    assert out.read_text().splitlines() == [
        "epoch,train/box_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),"
        "val/box_loss", "1,2.5,,,,,", "2,2.1,,,,,", "3,1.9,0.8,0.7,0.9,0.5,1.2"]
    assert evaluate.best_epoch_metrics(out) == {"best_epoch": 3, "mAP50": 0.9, "mAP50-95": 0.5,
                                                "precision": 0.8, "recall": 0.7}
    kept = train.copy_epoch_csv(src, tmp_path / "b.csv").read_text().splitlines()
    assert kept[1] == "1,2.5,0,0,0,0,0"


def test_train_args_follow_params(tmp_path):
    from lsdc.detect import train

    p = params_mod.load(PARAMS, {"detect.train.val": True})
    args = train.train_args(p, tmp_path / "d.yaml", tmp_path / "run", "ax_t2")
    assert args["val"] is True and args["epochs"] == p.detect.train.epochs.ax_t2 and args["nbs"] == args["batch"]
    assert train.train_args(params_mod.load(PARAMS), tmp_path / "d.yaml", tmp_path / "run", "sag_t1")["val"] is False


def test_ultralytics_keeps_every_core_or_the_share_a_worker_chose(tmp_path):
    """ultralytics' select_device resets torch to min(8, cpu_count - 1) threads at every train
    and predict (one on a 2-core machine); after configure it keeps every core, and a worker's
    use_threads(1) survives a later configure (the lazy detector load in ROI extraction)."""
    import torch

    from lsdc.detect import ultralytics_env

    before, chosen = torch.get_num_threads(), list(ultralytics_env._THREADS)
    try:
        ultralytics_env._THREADS.clear()
        ultralytics_env.configure(tmp_path / "ulcfg")
        from ultralytics.utils.torch_utils import select_device

        select_device("cpu", verbose=False)
        assert torch.get_num_threads() == ultralytics_env.cores()
        ultralytics_env.use_threads(1)
        ultralytics_env.configure(tmp_path / "ulcfg")
        select_device("cpu", verbose=False)
        assert torch.get_num_threads() == 1
    finally:
        ultralytics_env._THREADS[:] = chosen
        ultralytics_env.use_threads(before)
        ultralytics_env._THREADS[:] = chosen
