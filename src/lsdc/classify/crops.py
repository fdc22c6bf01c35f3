"""The per-crop model (`train.layout: crops`): one shared backbone over every crop stack.

Input and output are those of the stacked models, so the engine, the OOF table, the
checkpoint and predict need nothing of their own: a study is a (B, C, S, S) tensor whose
C channels are the ROI-store rows in anatomical order (layout.anatomical_layout), and
the output is (B, 75) logits (25 labels x 3 grades, schema.LABEL_COLUMNS order).

Inside, the C channels are regrouped into one crop stack per (plane, level, side): its
`rois.slices.<plane>` slices become the channels of a 2.5-D image (slot = offset + the
largest negative offset, so offset 0 is the same channel for every plane; planes with
fewer slices are padded with zero channels). Every stack goes through ONE timm backbone
(pooled features), a learned level embedding and side embedding (left / right / mid) are
added to the features, and the head of the crop's condition family (sag_t2 -> spinal,
sag_t1 -> foraminal, ax_t2 -> subarticular; 3 logits each) gives the grade logits of the
label at that plane, level and side.

A missing crop (every slice of the stack 0 after normalisation, which a real uint8 crop
never is: (v/255 - 0.5)/0.5 = 0 has no integer v) gets the log of the training prior as
its logits (buffer `prior_logits`, set by the engine from the training folds' labels
and saved in the state_dict), so the model neither learns from nor invents evidence that
is not there; predict already puts the training prior on labels without any crop.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lsdc import metrics, schema
from lsdc.classify import layout

log = logging.getLogger(__name__)

FAMILY_OF_PLANE = {"sag_t2": "spinal", "sag_t1": "foraminal", "ax_t2": "subarticular"}
FAMILIES = ("spinal", "foraminal", "subarticular")
SIDES = ("left", "right", layout.MID)


def crop_groups(keys: list[str]) -> tuple[list[tuple[str, str, str]], np.ndarray]:
    """(crops as (plane, level, side), slot (n_crops, K) channel index or -1 for padding)."""
    channels = [layout.parse_key(k) for k in keys]
    below = max(-min(ch.offset for ch in channels), 0)
    above = max(max(ch.offset for ch in channels), 0)
    k_slots = below + above + 1
    crops: dict[tuple[str, str, str], list[int]] = {}
    for i, ch in enumerate(channels):
        crops.setdefault((ch.plane, ch.level, ch.side), [-1] * k_slots)
        slot = crops[(ch.plane, ch.level, ch.side)]
        if slot[ch.offset + below] != -1:
            raise ValueError(f"crops layout: channel {ch.key} appears twice")
        slot[ch.offset + below] = i
    names = list(crops)
    return names, np.asarray([crops[n] for n in names], dtype=np.int64).reshape(len(names), k_slots)


def label_crops(names: list[tuple[str, str, str]]) -> np.ndarray:
    """(25,) index of each label's crop in `names`, -1 where the layout has none."""
    where = {n: i for i, n in enumerate(names)}
    out = np.full(len(schema.LABELS), -1, dtype=np.int64)
    for j, lab in enumerate(schema.LABELS):
        key = (schema.PLANE_OF_CONDITION[lab.condition], lab.level, layout.side_key(lab.side))
        out[j] = where.get(key, -1)
    return out


class CropNet(nn.Module):
    """Shared-backbone per-crop classifier; forward (B, C, S, S) -> (B, 75) logits."""

    def __init__(self, backbone: nn.Module, keys: list[str], drop_rate: float = 0.0):
        super().__init__()
        names, slots = crop_groups(keys)
        self.n_channels = len(keys)
        self.backbone = backbone
        # pooled feature width (after a conv head where the model has one, e.g. lcnet, mobilenetv3)
        feat = int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)
        self.level_embed = nn.Embedding(len(schema.LEVELS), feat)
        self.side_embed = nn.Embedding(len(SIDES), feat)
        nn.init.normal_(self.level_embed.weight, std=0.02)
        nn.init.normal_(self.side_embed.weight, std=0.02)
        self.drop = nn.Dropout(drop_rate)
        self.heads = nn.ModuleDict({f: nn.Linear(feat, len(schema.SEVERITIES)) for f in FAMILIES})
        self.register_buffer("slots", torch.as_tensor(slots), persistent=False)
        self.register_buffer("level_idx", torch.tensor([schema.LEVELS.index(n[1]) for n in names]),
                             persistent=False)
        self.register_buffer("side_idx", torch.tensor([SIDES.index(n[2]) for n in names]), persistent=False)
        self.family_crops = {f: [i for i, n in enumerate(names) if FAMILY_OF_PLANE[n[0]] == f] for f in FAMILIES}
        self.register_buffer("label_crop", torch.as_tensor(label_crops(names)), persistent=False)
        # log of the training prior (uniform until set_prior): the logits of a label without its crop
        self.register_buffer("prior_logits", torch.full((len(schema.LABELS), 3), -float(np.log(3.0))))
        missing = [schema.LABEL_COLUMNS[j] for j in np.flatnonzero(label_crops(names) < 0)]
        if missing:
            log.warning("crops layout: no crop for %d label(s), e.g. %s; they get the prior", len(missing),
                        missing[:3])

    def set_prior(self, prior: np.ndarray) -> None:
        """prior (25, 3) probabilities -> the logits used for labels whose crop is missing."""
        p = metrics.normalise(np.asarray(prior, dtype=np.float64)[None])[0]
        self.prior_logits.copy_(torch.as_tensor(np.log(p), dtype=self.prior_logits.dtype))

    def crop_stacks(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) -> (B, n_crops, K, S, S), padding slots filled with 0."""
        if x.shape[1] != self.n_channels:
            raise ValueError(f"CropNet: expected {self.n_channels} channels, got {x.shape[1]}")
        padded = torch.cat([x, x.new_zeros(x.shape[0], 1, *x.shape[2:])], dim=1)
        index = torch.where(self.slots < 0, self.n_channels, self.slots)
        return padded[:, index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        stacks = self.crop_stacks(x)
        n_crops, k = stacks.shape[1], stacks.shape[2]
        present = stacks.flatten(2).abs().amax(dim=2) > 0  # (B, n_crops)
        flat = stacks.reshape(b * n_crops, k, *stacks.shape[3:]).contiguous(memory_format=torch.channels_last)
        feats = self.backbone(flat).reshape(b, n_crops, -1)
        feats = feats + self.level_embed(self.level_idx) + self.side_embed(self.side_idx)
        feats = self.drop(feats)
        crop_logits = feats.new_zeros(b, n_crops, len(schema.SEVERITIES))
        for family, idx in self.family_crops.items():
            if idx:
                crop_logits[:, idx] = self.heads[family](feats[:, idx]).to(crop_logits.dtype)
        has = self.label_crop >= 0
        safe = self.label_crop.clamp(min=0)
        label_logits = crop_logits[:, safe]  # (B, 25, 3)
        usable = present[:, safe] & has  # (B, 25)
        prior = self.prior_logits.to(label_logits.dtype).expand_as(label_logits)
        out = torch.where(usable[..., None], label_logits, prior)
        return out.reshape(b, -1)


def in_chans(keys: list[str]) -> int:
    """Channels of each crop stack: the slice slots of the widest plane."""
    return int(crop_groups(keys)[1].shape[1])


def create(name: str, keys: list[str], drop_rate: float = 0.0, weights: str | Path | None = None,
           pretrained: bool = False) -> CropNet:
    """CropNet on a timm backbone `name` (pooled features, no classifier)."""
    from lsdc.classify import model as model_mod

    backbone = model_mod.timm_model(name, in_chans(keys), num_classes=0, weights=weights, pretrained=pretrained)
    # channels-last: the backbone's convolutions ~8 % faster per training step on CPU (the crops
    # arrive channels-last too, see CropNet.forward); the parameters keep their values
    return CropNet(backbone.to(memory_format=torch.channels_last), keys, drop_rate)
