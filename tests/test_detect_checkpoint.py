"""Detector checkpoints are the same bytes for the same weights, in any clone and at any time."""

import hashlib
from pathlib import Path

import pytest
import torch
from torch import nn

from lsdc.detect import checkpoint


class FakeDetectionModel(nn.Module):
    """What matters of ultralytics' DetectionModel here: weights, `args` and `yaml` dicts."""

    def __init__(self, root: Path):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.args = {"project": str(root / ".cache/ultralytics/runs"), "save_dir": str(root / ".cache/ultralytics/runs/x"),
                     "data": ".cache/ultralytics/runs/x_dataset.yaml", "epochs": 1, "device": "cpu"}
        self.yaml = {"nc": 2, "yaml_file": str(root / ".cache/arch.yaml")}


def _ultralytics_like(root: Path, date: str) -> dict:
    model = FakeDetectionModel(root)
    return {
        "date": date, "version": "8.x", "epoch": -1, "model": model, "ema": None,
        "train_args": dict(model.args),
        "train_results": {"epoch": [1, 2], "time": [0.31, 0.72], "metrics/mAP50(B)": [0.1, 0.2]},
        "git": {"root": str(root), "branch": "main", "commit": "abc", "message": "m", "origin": None},
    }


@pytest.mark.parametrize("value,expected", [
    ("/clone/a/.cache/runs", ".cache/runs"),
    ("/clone/a", "."),
    ("relative/path.yaml", "relative/path.yaml"),
    ("/home/someone/weights/yolov8n.pt", "yolov8n.pt"),
])
def test_portable_path(value, expected):
    assert checkpoint.portable_path(value, Path("/clone/a")) == expected


def test_same_weights_in_two_clones_give_the_same_bytes(tmp_path):
    outs = []
    for name, date in (("clone_a", "2024-01-01T00:00:00"), ("elsewhere/clone_b", "2025-06-30T12:34:56")):
        root = tmp_path / name
        root.mkdir(parents=True)
        src = root / "best.pt"
        torch.save(_ultralytics_like(root, date), src)
        outs.append(checkpoint.save_portable(src, root / "models" / "plane.pt", root=root))
    a, b = (hashlib.md5(p.read_bytes()).hexdigest() for p in outs)
    assert a == b
    ckpt = torch.load(outs[0], map_location="cpu", weights_only=False)
    assert "date" not in ckpt and "git" not in ckpt
    assert ckpt["train_args"]["project"] == ".cache/ultralytics/runs"
    assert ckpt["model"].args["save_dir"] == ".cache/ultralytics/runs/x"
    assert ckpt["model"].yaml["yaml_file"] == ".cache/arch.yaml"
    assert ckpt["train_results"] == {"epoch": [1, 2], "metrics/mAP50(B)": [0.1, 0.2]}
    assert torch.equal(ckpt["model"].conv.weight, FakeDetectionModel(tmp_path).conv.weight)
    # normalising twice changes nothing
    again = checkpoint.save_portable(outs[0], tmp_path / "again.pt", root=tmp_path / "clone_a")
    assert hashlib.md5(again.read_bytes()).hexdigest() == a


def test_rejects_a_file_that_is_not_an_ultralytics_checkpoint(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="not an ultralytics checkpoint"):
        checkpoint.save_portable(tmp_path / "c.pt", tmp_path / "out.pt")
