"""Augmentation and normalisation of a study's crop stack.

The C crops of a study are one (H, W, C) image for albumentations, so every
transform, the geometric one included, acts identically on all channels. The
notebook's pipeline: brightness/contrast, one of motion/median/Gaussian blur, and
shift-scale-rotate (here `A.Affine`, its albumentations 2 successor, zero border),
then Normalize(mean 0.5, std 0.5). No flips: a flip would swap left and right.
Missing crops are set to 0 after normalisation (the mid-grey value the model sees
for "no information"), so neither augmentation nor normalisation turns them into
a spurious image.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A  # noqa: E402

from lsdc.params import Augment  # noqa: E402

MEAN = 0.5  # Normalize(mean=0.5, std=0.5) on pixels scaled to [0, 1], as the seed notebook (lsdc/__init__.py)
STD = 0.5


def build_augment(aug: Augment, seed: int) -> A.Compose:
    """The training transform; deterministic given the seed (albumentations' own RNG)."""
    return A.Compose(
        [
            A.RandomBrightnessContrast(
                brightness_limit=aug.brightness, contrast_limit=aug.contrast, p=aug.color_p
            ),
            A.OneOf(
                [
                    A.MotionBlur(blur_limit=aug.blur_limit),
                    A.MedianBlur(blur_limit=aug.blur_limit),
                    A.GaussianBlur(blur_limit=aug.blur_limit),
                ],
                p=aug.blur_p,
            ),
            A.Affine(
                translate_percent=(-aug.shift, aug.shift),
                scale=(1 - aug.scale, 1 + aug.scale),
                rotate=(-aug.rotate, aug.rotate),
                border_mode=0,
                fill=0,
                p=aug.affine_p,
            ),
        ],
        seed=seed,
    )


def reseed(transform: A.Compose, entropy: tuple[int, ...]) -> None:
    """Seed every node of the transform tree from `entropy`, each with its own stream.

    The classifier seeds each sample with (seed, epoch, sample index), so a sample's
    augmentation is the same whatever the number of DDP ranks or loader workers.
    (A Compose seed alone gives all children the same stream, coupling their draws.)
    """
    _reseed(transform, np.random.SeedSequence([int(e) % 2**64 for e in entropy]))


def _reseed(node, seq: np.random.SeedSequence) -> None:
    node.set_random_seed(int(seq.generate_state(1)[0]))
    children = getattr(node, "transforms", None) or []
    for child, child_seq in zip(children, seq.spawn(len(children))):
        _reseed(child, child_seq)


def normalise(stack: np.ndarray, present: np.ndarray) -> np.ndarray:
    """uint8 (..., C, H, W) + present (..., C) -> float32, (x/255 - MEAN)/STD, absent -> 0."""
    x = (stack.astype(np.float32) / 255.0 - MEAN) / STD
    x[~present.astype(bool)] = 0.0
    return x


def apply(transform: A.Compose | None, stack: np.ndarray) -> np.ndarray:
    """Apply a transform to a uint8 (C, H, W) stack as one multi-channel image."""
    if transform is None:
        return stack
    image = np.ascontiguousarray(stack.transpose(1, 2, 0))
    out = transform(image=image)["image"]
    if out.ndim == 2:  # a single channel may come back squeezed
        out = out[:, :, None]
    return np.ascontiguousarray(out.transpose(2, 0, 1))
