"""Tiny end-to-end detector training: export -> train 1 epoch -> load -> predict, offline."""

import json
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest

from detect_fixtures import SPACING, disc_points, render, write_index
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
        "data.root": str(root), "data.workers": 0, "detect.imgsz": 64, "detect.epochs": 1,
        "detect.batch": 4, "detect.mosaic": 0.0, "detect.close_mosaic": 0, "detect.conf": 0.001,
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
    saved = json.loads((tmp_path / "metrics" / "sag_t2.json").read_text())
    assert saved["loc_points"] == 10 and 0.0 <= saved["mAP50"] <= 1.0 and saved == json.loads(json.dumps(metrics))
    lines = (tmp_path / "metrics" / "sag_t2_results.csv").read_text().splitlines()
    assert len(lines) == 2 and "metrics/mAP50(B)" in lines[0]
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
