import numpy as np
import pytest

from lsdc import schema
from lsdc.detect.labels import box_px, class_names, class_of_point, format_label_lines, from_yolo, to_yolo


def test_pixel_yolo_pixel_round_trip_non_square_anisotropic():
    cols, rows = 320, 448  # non-square
    spacing_row, spacing_col = 0.4, 0.6  # anisotropic
    x, y = np.array([100.5, 250.0]), np.array([30.0, 400.25])
    w, h = box_px(12.0, spacing_row, spacing_col)
    assert w == pytest.approx(20.0) and h == pytest.approx(30.0)
    yolo = to_yolo(x, y, w, h, cols, rows)
    assert yolo[0] == pytest.approx([100.5 / 320, 30 / 448, 20 / 320, 30 / 448])
    back = from_yolo(yolo, cols, rows)
    np.testing.assert_allclose(back[:, :2], np.stack([x, y], 1))
    # resizing the image (longest side 256) keeps normalised coords: pixel = yolo * new size
    s = 256 / rows
    resized = from_yolo(yolo, cols * s, rows * s)
    np.testing.assert_allclose(resized[:, :2], np.stack([x, y], 1) * s)
    np.testing.assert_allclose(resized[:, 2:] / s, [[w, h], [w, h]])


def test_box_clipped_at_border():
    yolo = to_yolo([2.0], [50.0], [10.0], [10.0], 100, 100)
    assert yolo[0] == pytest.approx([3.5 / 100, 0.5, 0.07, 0.1])


def test_classes_per_mode():
    assert class_names("sag_t2", "anatomy") == ("disc",)
    assert class_names("sag_t2", "levels") == schema.LEVELS
    assert class_of_point("ax_t2", "levels", "Left Subarticular Stenosis", "L1/L2") == 1
    assert class_of_point("sag_t1", "levels", "Right Neural Foraminal Narrowing", "L4/L5") == 3
    assert class_of_point("sag_t1", "anatomy", "Right Neural Foraminal Narrowing", "L4/L5") == 0
    with pytest.raises(ValueError, match="detect.export.classes"):
        class_names("sag_t1", "bogus")


def test_label_lines():
    text = format_label_lines([0, 2], np.array([[0.5, 0.25, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]]))
    assert text == "0 0.500000 0.250000 0.100000 0.100000\n2 0.100000 0.200000 0.300000 0.400000\n"
