"""Profiles switch params.yaml without touching code or dvc.yaml, keeping comments."""

import shutil
from pathlib import Path

import pytest
import yaml

from lsdc import params, profile

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "profiles").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_profile_key_exists_and_parses(path):
    overrides = profile.flat_overrides(yaml.safe_load(path.read_text()))
    flat = params.load(ROOT / "params.yaml").flat()
    unknown = [k for k in overrides if k not in flat]
    assert unknown == []
    loaded = params.load(ROOT / "params.yaml", overrides).flat()
    assert all(loaded[k] == (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items())


def test_apply_rewrites_values_and_keeps_comments(tmp_path):
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    before = target.read_text()
    changed = profile.apply({"data.root": "/data/rsna", "cv.n_folds": 5}, target)
    after = target.read_text()
    assert sorted(changed) == ["cv.n_folds", "data.root"]
    p = params.load(target)
    assert p.data.root == "/data/rsna" and p.cv.n_folds == 5
    assert after.count("#") == before.count("#")
    assert len(after.splitlines()) == len(before.splitlines())


def test_apply_refuses_unknown_keys(tmp_path):
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    with pytest.raises(ValueError, match="unknown key"):
        profile.apply({"train.epochz": 3}, target)
    assert target.read_text() == (ROOT / "params.yaml").read_text()
