"""Facts about the real RSNA 2024 series that the synthetic layout reproduces.

Source: the public training data of the RSNA 2024 Lumbar Spine Degenerative Classification
competition on Kaggle (https://www.kaggle.com/competitions/rsna-2024-lumbar-spine-degenerative-classification):
series per study from train_series_descriptions.csv, image shapes, instance order and spacings
from the DICOM headers of train_images/, tabulated once and kept here as constants. Indexed by
plane name (schema.PLANES) so that no RSNA string is written here.
"""

from __future__ import annotations

# Series per study: (Axial T2, Sagittal T1, Sagittal T2/STIR series, studies in the real data).
SERIES_COMPOSITION: tuple[tuple[int, int, int, int], ...] = (
    (1, 1, 1, 1632),
    (2, 1, 1, 304),
    (3, 1, 1, 28),
    (1, 2, 1, 5),
    (1, 0, 1, 2),
    (2, 2, 1, 2),
    (1, 1, 0, 1),
    (4, 1, 1, 1),
)

# Image shapes (rows, cols): series count, per plane (the twelve most common of each).
IMAGE_SHAPES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "sag_t1": (
        (512, 512, 817), (384, 384, 348), (320, 320, 311), (256, 256, 112), (760, 640, 89),
        (448, 448, 80), (852, 768, 29), (540, 384, 26), (528, 512, 26), (544, 512, 16),
        (768, 768, 16), (640, 576, 14),
    ),
    "sag_t2": (
        (512, 512, 496), (320, 320, 421), (448, 448, 284), (384, 384, 227), (576, 576, 69),
        (836, 704, 58), (640, 640, 51), (768, 768, 51), (256, 256, 44), (462, 448, 42),
        (456, 384, 32), (476, 448, 23),
    ),
    "ax_t2": (
        (320, 320, 689), (512, 512, 556), (640, 640, 429), (384, 384, 213), (256, 256, 128),
        (448, 448, 96), (272, 272, 43), (608, 608, 32), (360, 384, 21), (288, 288, 20),
        (576, 576, 18), (480, 480, 17),
    ),
}

# Axial series instance order: head-to-feet, feet-to-head, neither (2006 / 283 / 9 series).
AXIAL_ORDER_SHARES = (2006 / 2298, 283 / 2298, 9 / 2298)
MIXED_SHAPE_AXIAL_SHARE = 27 / 2340  # axial series mixing two slice sizes
ODD_INSTANCE_OFFSET_SHARE = 1 / 600  # series numbered like 5031.. instead of 1..

# Hard cases of the real data, as shares (default, stress). The default keeps them rare, as in
# the real data; the stress profile (synth.stress) draws them on purpose.
# Real axial series: patient left on the image right in 8769 of 8770 left/right pairs.
MIRRORED_SHARE = (0.004, 0.25)  # series written with a flipped row or column direction
LOCALISER_SHARE = (0.03, 0.2)  # axial series holding one slice of another orientation
TAGLESS_FILES_SHARE = (0.02, 0.15)  # series where some files lack SliceThickness / SpacingBetweenSlices
TAGLESS_SERIES_SHARE = (0.03, 0.1)  # series where every file lacks them
STACK_SHARE = (0.4, 0.15)  # axial series covering every level as one straight stack (else one block per disc)
AXIAL_ORDER_STRESS = (0.35, 0.25, 0.4)  # head-to-feet, feet-to-head, neither (interleaved)
EDGE_STUDY_SHARE = (0.02, 0.08)  # per edge case: faint L5/S1, a disc below L5/S1, L1/L2 at the top edge
MAX_AXIAL_TILT_DEG = 25.0  # an axial block is angled along its disc up to this far from the scanner's axial
