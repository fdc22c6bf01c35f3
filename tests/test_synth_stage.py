"""The `lsdc synth` stage: --help documents the knobs; main writes the dataset and metrics."""

from __future__ import annotations

import contextlib
import json

import pytest

from lsdc import cli, headline, params, schema
from lsdc.stages import synth as stage
from synth_fixtures import tiny


def test_help_lists_synth_knobs(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["synth", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for text in ("--out", "--workers", "synth.n_train", "synth.image_scale", "synth.reader_noise"):
        assert text in out


def test_main_writes_dataset_and_metrics(tmp_path, monkeypatch):
    logged = {}
    monkeypatch.setattr(stage.tracking, "stage_run", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(stage.tracking, "log_metrics", lambda m, **k: logged.update(m))
    monkeypatch.setattr(stage.tracking, "log_artifact", lambda *a, **k: None)
    p = params.Params(synth=tiny(n_train=2, n_test=1, image_scale=0.25, sag_slices=(13, 13), axial_per_level=(2, 2)))
    args = cli.stage_args("synth", "--out", str(tmp_path / "data"), "--metrics", str(tmp_path / "m" / "synth.json"),
                          "--workers", "1", "--no-progress")
    assert stage.main(p, args) == 0
    head = json.loads((tmp_path / "m" / "synth.json").read_text())
    assert set(head) == {"train", "test", "score_oracle", "score_constant_prior", "shape"}  # headline only
    assert set(head["shape"]) == {"bend_deg", "deviation_mm"}  # two phantom figures; the table in details
    assert "seconds" not in (tmp_path / "m" / "synth.details.json").read_text()  # wall-clock: MLflow only
    summary = headline.load(tmp_path / "m" / "synth.json")
    assert summary["train"]["studies"] == 2 and summary["test"]["studies"] == 1
    assert summary["train"]["files"] > 0 and "files" not in head["train"]
    assert summary["score_oracle"]["total"] < summary["score_uniform"]["total"]
    assert summary["shape"]["bend_deg"]["p50"]["real"] == 28.0 and summary["shape"]["series"] >= 1
    assert summary["quirks"]["axial_series"] >= 2
    assert (tmp_path / "data" / schema.TRAIN_CSV).exists() and "studies_per_s" in logged
    n_files = sum(1 for _ in (tmp_path / "data").rglob("*.dcm"))
    assert n_files == summary["train"]["files"] + summary["test"]["files"]
