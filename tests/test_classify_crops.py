"""The per-crop model (train.layout: crops), the metric-balanced loss and the left-right mirror."""

import numpy as np
import pytest
import torch

from lsdc import metrics, schema
from lsdc.classify import crops, data, layout, model
from lsdc.errors import UserError

SIDES = {"sag_t1": ("left", "right"), "sag_t2": ("mid",), "ax_t2": ("left", "right")}


def keys_for(slices: dict[str, int]) -> list[str]:
    out = []
    for plane, sides in SIDES.items():
        half = slices[plane] // 2
        for lv in schema.LEVELS:
            for side in sides:
                out += [f"{plane}/{schema.slug(lv)}/{side}/{o}" for o in range(-half, slices[plane] - half)]
    return layout.anatomical_layout([layout.parse_key(k) for k in out])


def test_crop_groups_align_offset_zero_and_pad_the_thinner_planes():
    keys = keys_for({"sag_t1": 3, "sag_t2": 5, "ax_t2": 1})
    names, slots = crops.crop_groups(keys)
    assert len(names) == 25 and slots.shape == (25, 5)
    at = {n: s for n, s in zip(names, slots)}
    ax = at[("ax_t2", "L4/L5", "left")]
    assert keys[ax[2]] == "ax_t2/l4_l5/left/0" and list(ax[[0, 1, 3, 4]]) == [-1] * 4
    sag = at[("sag_t1", "L1/L2", "right")]
    assert [keys[i] for i in sag[1:4]] == [f"sag_t1/l1_l2/right/{o}" for o in (-1, 0, 1)] and sag[0] == -1
    label_crop = crops.label_crops(names)
    for j, lab in enumerate(schema.LABELS):
        plane, level, side = names[label_crop[j]]
        assert plane == schema.PLANE_OF_CONDITION[lab.condition] and level == lab.level
        assert side == layout.side_key(lab.side)


def test_a_missing_crop_gets_the_prior_and_only_its_own_label_changes():
    keys = keys_for({"sag_t1": 3, "sag_t2": 3, "ax_t2": 3})
    torch.manual_seed(0)
    net = model.build("resnet10t", "crops", keys).eval()
    prior = np.tile([0.7, 0.2, 0.1], (25, 1))
    net.set_prior(prior)
    x = torch.randn(2, len(keys), 16, 16)
    gone = [i for i, k in enumerate(keys) if k.startswith("ax_t2/l3_l4/right/")]
    x2 = x.clone()
    x2[1, gone] = 0.0
    with torch.no_grad():
        a, b = model.grade_logits(net(x)), model.grade_logits(net(x2))
    j = schema.LABEL_INDEX["right_subarticular_stenosis_l3_l4"]
    np.testing.assert_allclose(torch.softmax(b[1, j], -1).numpy(), prior[j], rtol=1e-5)
    changed = (a - b).abs().amax(-1) > 0
    assert changed.nonzero().tolist() == [[1, j]]
    # the level and side embeddings make two crops with equal pixels give different logits
    same = torch.randn(1, 3, 16, 16)
    x3 = torch.zeros(1, len(keys), 16, 16)
    for lv in ("l1_l2", "l5_s1"):
        for side in ("left", "right"):
            x3[0, [keys.index(f"sag_t1/{lv}/{side}/{o}") for o in (-1, 0, 1)]] = same
    with torch.no_grad():
        g = model.grade_logits(net(x3))[0]
    cols = [schema.LABEL_INDEX[c] for c in ("left_neural_foraminal_narrowing_l1_l2",
                                            "left_neural_foraminal_narrowing_l5_s1",
                                            "right_neural_foraminal_narrowing_l1_l2")]
    assert not torch.allclose(g[cols[0]], g[cols[1]]) and not torch.allclose(g[cols[0]], g[cols[2]])


def test_metric_loss_is_the_competition_score_of_the_softmax():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(7, 75, generator=g) * 2
    labels = torch.randint(0, 3, (7, 25), generator=g)
    labels[0, :5] = schema.IGNORE_INDEX  # a study without spinal grades: out of the any-severe term
    labels[2, 7:12] = schema.IGNORE_INDEX
    probs = torch.softmax(model.grade_logits(logits), -1).double().numpy()
    want = metrics.competition_score(labels.numpy(), probs)
    sums, weights = model.loss_terms(logits, labels, torch.tensor([1.0, 2.0, 4.0]), "metric")
    terms = (sums / weights).tolist()
    assert terms == pytest.approx([want.spinal, want.foraminal, want.subarticular, want.any_severe_spinal], rel=1e-5)
    assert float(model.batch_loss(logits, labels, torch.tensor([1.0, 2.0, 4.0]))) == pytest.approx(want.total,
                                                                                                 rel=1e-5)
    cells = model.batch_loss(logits, labels, torch.tensor([1.0, 2.0, 4.0]), "cells")
    assert float(cells) == pytest.approx(float(model.weighted_loss(logits, labels, torch.tensor([1.0, 2.0, 4.0]))))
    with pytest.raises(ValueError, match="train.loss"):
        model.loss_terms(logits, labels, torch.tensor([1.0, 2.0, 4.0]), "focal")


def test_mirror_swaps_sides_reverses_sagittal_slices_and_flips_axial_images():
    keys = keys_for({"sag_t1": 3, "sag_t2": 3, "ax_t2": 3})
    source, flip = layout.mirror_permutation(keys)
    assert keys[source[keys.index("sag_t1/l2_l3/left/-1")]] == "sag_t1/l2_l3/right/1"
    assert keys[source[keys.index("sag_t2/l2_l3/mid/1")]] == "sag_t2/l2_l3/mid/-1"
    assert keys[source[keys.index("ax_t2/l5_s1/right/-1")]] == "ax_t2/l5_s1/left/-1"
    assert flip.tolist() == [k.startswith("ax_t2") for k in keys]
    assert sorted(source.tolist()) == list(range(len(keys)))
    lab = layout.mirror_labels()
    cols = schema.LABEL_COLUMNS
    assert cols[lab[schema.LABEL_INDEX["left_subarticular_stenosis_l1_l2"]]] == "right_subarticular_stenosis_l1_l2"
    assert cols[lab[schema.LABEL_INDEX["spinal_canal_stenosis_l4_l5"]]] == "spinal_canal_stenosis_l4_l5"
    nb = layout.notebook_layout([layout.parse_key(k) for k in keys])
    assert layout.mirror_permutation(nb) is None


def test_dataset_swap_moves_crops_and_labels_together():
    keys = keys_for({"sag_t1": 1, "sag_t2": 1, "ax_t2": 1})
    rng = np.random.default_rng(0)
    crops_arr = rng.integers(0, 256, (25, 8, 8), dtype=np.uint8)
    rows = np.arange(25)[None]
    y = rng.integers(0, 3, (1, 25))
    ds = data.StudyCrops(crops_arr, rows, np.ones((1, 25), bool), y, None, seed=1, keys=keys, swap_p=1.0)
    ds.transform, ds.mirror = None, layout.mirror_permutation(keys)  # mirror on, no other augmentation
    x, yy = ds[0]
    i = keys.index("ax_t2/l3_l4/left/0")
    j = keys.index("ax_t2/l3_l4/right/0")
    np.testing.assert_allclose(x[i].numpy(), (crops_arr[j][:, ::-1] / 255.0 - 0.5) / 0.5, atol=1e-6)
    k = keys.index("sag_t1/l3_l4/left/0")
    np.testing.assert_allclose(x[k].numpy(), (crops_arr[keys.index("sag_t1/l3_l4/right/0")] / 255.0 - 0.5) / 0.5,
                               atol=1e-6)
    left = schema.LABEL_INDEX["left_neural_foraminal_narrowing_l3_l4"]
    right = schema.LABEL_INDEX["right_neural_foraminal_narrowing_l3_l4"]
    assert int(yy[left]) == int(y[0, right]) and int(yy[right]) == int(y[0, left])


def test_pretrained_offline_stops_at_once_naming_the_setting(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"model\.pretrained.*model\.weights"):
        model.build("resnet10t", "crops", keys_for({"sag_t1": 1, "sag_t2": 1, "ax_t2": 1}), pretrained=True)


def test_the_stage_stops_before_any_work_when_pretrained_is_offline(tmp_path, monkeypatch, capsys):
    """The real-gpu profile's model.pretrained under HF_HUB_OFFLINE=1: one line naming the setting."""
    from pathlib import Path

    from lsdc import cli

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    params_file = Path(__file__).resolve().parents[1] / "params.yaml"
    rc = cli.main(["train-classifier", "--params", str(params_file), "--set", "model.pretrained=true"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "model.pretrained" in err and "model.weights" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "models").exists() and not (tmp_path / "mlflow.db").exists()
