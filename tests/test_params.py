"""params.yaml loads into typed config; typos and missing keys fail with the key named."""

from pathlib import Path

import pytest
import yaml

from lsdc import cli, params

ROOT = Path(__file__).resolve().parents[1]


def test_repository_params_load():
    p = params.load(ROOT / "params.yaml")
    assert p.data.root == "data/synthetic"
    assert isinstance(p.synth.sag_slices, tuple)
    assert p.flat()["synth.n_train"] == p.synth.n_train


def test_every_key_has_a_comment():
    comments = cli._key_comments(ROOT / "params.yaml")
    flat = params.load(ROOT / "params.yaml").flat()
    uncommented = [k for k in flat if not comments.get(k)]
    assert uncommented == []


def _write(tmp_path, raw):
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(raw))
    return f


def test_unknown_and_missing_keys_are_named(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["synth"]["n_trian"] = 3
    with pytest.raises(ValueError, match=r"synth: unknown key\(s\) \['n_trian'\]"):
        params.load(_write(tmp_path, raw))
    raw["synth"].pop("n_trian")
    raw["cv"].pop("n_folds")
    with pytest.raises(ValueError, match=r"cv: missing key\(s\) \['n_folds'\]"):
        params.load(_write(tmp_path, raw))


def test_wrong_type_is_named(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["synth"]["n_train"] = "many"
    with pytest.raises(ValueError, match="synth.n_train: expected int"):
        params.load(_write(tmp_path, raw))


def test_overrides_apply_dotted_keys():
    p = params.load(ROOT / "params.yaml", overrides={"synth.n_train": 3, "data.root": "/x"})
    assert p.synth.n_train == 3 and p.data.root == "/x"


def test_numeric_value_for_a_string_key_becomes_a_string():
    p = params.load(ROOT / "params.yaml", overrides={"runtime.detect_device": 0})
    assert p.runtime.detect_device == "0"


def test_one_number_sets_the_epochs_of_every_plane(tmp_path):
    """`dvc exp run -S detect.train.epochs=30` writes one number where params.yaml has one
    per plane: every plane takes it; a mapping sets each; a wrong value is named."""
    p = params.load(ROOT / "params.yaml", overrides={"detect.train.epochs": 30})
    assert (p.detect.train.epochs.sag_t1, p.detect.train.epochs.sag_t2, p.detect.train.epochs.ax_t2) == (30, 30, 30)
    p = params.load(ROOT / "params.yaml", overrides={"detect.train.epochs.ax_t2": 4})
    assert p.detect.train.epochs.ax_t2 == 4 and p.detect.train.epochs.sag_t2 == 20
    with pytest.raises(ValueError, match="detect.train.epochs: expected int"):
        params.load(ROOT / "params.yaml", overrides={"detect.train.epochs": "many"})
    with pytest.raises(ValueError, match="detect.train.epochs: expected a mapping"):
        params.load(ROOT / "params.yaml", overrides={"detect.train.epochs": True})
