"""Loss, augmentation, normalisation and checkpoints of the classifier."""

import numpy as np
import pytest
import torch

from lsdc import params, schema
from lsdc.classify import augment, model
from lsdc.params import Augment

WEIGHTS = torch.tensor([1.0, 2.0, 4.0])


def test_missing_labels_contribute_no_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 75, requires_grad=True)
    labels = torch.randint(0, 3, (2, 25))
    labels[0, 3] = labels[1, 20] = schema.IGNORE_INDEX
    loss = model.weighted_loss(logits, labels, WEIGHTS)
    # by hand: weighted mean of -log softmax over the graded cells only
    logp = torch.log_softmax(logits.detach().reshape(2, 25, 3), dim=-1)
    num = den = 0.0
    for i in range(2):
        for j in range(25):
            k = int(labels[i, j])
            if k != schema.IGNORE_INDEX:
                num += float(WEIGHTS[k] * -logp[i, j, k])
                den += float(WEIGHTS[k])
    assert float(loss.detach()) == pytest.approx(num / den, rel=1e-6)
    loss.backward()
    grads = logits.grad.reshape(2, 25, 3)
    assert torch.all(grads[0, 3] == 0) and torch.all(grads[1, 20] == 0)
    assert grads[0, 4].abs().sum() > 0


def test_all_missing_gives_zero_loss_with_a_graph():
    logits = torch.randn(1, 75, requires_grad=True)
    loss = model.weighted_loss(logits, torch.full((1, 25), schema.IGNORE_INDEX), WEIGHTS)
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(logits.grad.abs().sum()) == 0.0


def test_augmentation_moves_all_channels_alike():
    aug = Augment(brightness=0.2, contrast=0.2, color_p=0.0, blur_limit=3, blur_p=0.0,
                  shift=0.2, scale=0.2, rotate=30.0, affine_p=1.0)
    transform = augment.build_augment(aug, seed=1)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (24, 24), dtype=np.uint8)
    stack = np.stack([base] * 7)
    moved = 0
    for _ in range(5):
        out = augment.apply(transform, stack)
        assert out.shape == stack.shape
        assert all(np.array_equal(out[0], out[c]) for c in range(1, 7))
        moved += not np.array_equal(out[0], base)
    assert moved == 5  # a geometric transform did happen


def test_full_augmentation_keeps_channels_consistent_and_is_seeded():
    aug = params.load().train.aug
    stack = np.stack([np.arange(24 * 24, dtype=np.uint8).reshape(24, 24)] * 5)
    a = [augment.apply(augment.build_augment(aug, seed=3), stack) for _ in range(2)]
    assert np.array_equal(a[0], a[1])
    assert all(np.array_equal(a[0][0], a[0][c]) for c in range(5))


def test_normalise_maps_missing_crops_to_zero():
    stack = np.full((3, 4, 4), 255, dtype=np.uint8)
    x = augment.normalise(stack, np.array([True, False, True]))
    assert x.dtype == np.float32
    assert np.all(x[0] == 1.0) and np.all(x[1] == 0.0) and np.all(x[2] == 1.0)


def test_checkpoint_reloads_with_weights_only_and_predicts(tmp_path):
    torch.manual_seed(0)
    net = model.create_model("resnet10t", in_chans=4)
    keys = [f"sag_t2/{lv}/mid/0" for lv in schema.LEVEL_SLUGS[:4]]
    ckpt = model.make_checkpoint(net, "resnet10t", keys, 16, {"train.class_weights": (1.0, 2.0, 4.0)}, fold=0)
    torch.save(ckpt, tmp_path / "fold_0.pt")
    loaded = model.load_checkpoint(tmp_path / "fold_0.pt")
    assert loaded["layout"] == keys and loaded["in_chans"] == 4 and loaded["roi_size"] == 16
    assert loaded["label_columns"] == list(schema.LABEL_COLUMNS)
    crops = np.random.default_rng(1).integers(0, 255, (3, 4, 16, 16), dtype=np.uint8)
    p = model.predict_probs(tmp_path / "fold_0.pt", crops)
    assert p.shape == (3, 25, 3)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    expected = model.probs_of(net.eval(), augment.normalise(crops, np.ones((3, 4), bool)))
    np.testing.assert_allclose(p, expected, atol=1e-6)
    with pytest.raises(ValueError, match="expected uint8 crops"):
        model.predict_probs(loaded, crops[:, :3])


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        model.create_model("resnet10t", in_chans=3, weights=tmp_path / "nope.pt")


def test_local_weights_are_adapted_to_in_chans(tmp_path):
    src = model.create_model("resnet10t", in_chans=3)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    net = model.create_model("resnet10t", in_chans=6, weights=tmp_path / "w.pt")
    assert net.conv1[0].weight.shape[1] == 6
    name, p = next((n, p) for n, p in net.named_parameters() if n.startswith("layer1"))
    assert torch.equal(p, dict(src.named_parameters())[name])


@pytest.mark.parametrize("name", ["resnet10t", "resnet50"])
def test_model_by_name_takes_the_layout_channels_and_gives_75_logits(name):
    net = model.create_model(name, in_chans=60).eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 60, 32, 32))
    assert out.shape == (2, 75)
    assert model.grade_logits(out).shape == (2, 25, 3)
