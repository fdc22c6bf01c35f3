"""Channel layouts: a study's crops land in the documented order."""

import numpy as np
import pandas as pd
import pytest

from classify_fakes import store_rows, write_store
from lsdc import schema
from lsdc.classify import data, layout

SLICES = {"sag_t1": 3, "sag_t2": 3, "ax_t2": 3}
PLANE_CODE = {"sag_t1": 1, "sag_t2": 2, "ax_t2": 3}
SIDE_CODE = {"left": 1, "right": 2, None: 3}


def encoded_store(tmp_path, study_ids):
    """Each crop's pixels encode (study, plane, level, side, offset) in its first row."""
    rows = store_rows(SLICES)
    crops = np.zeros((len(study_ids) * len(rows), 8, 8), dtype=np.uint8)
    i = 0
    for s in range(len(study_ids)):
        for plane, level, side, offset in rows:
            crops[i, 0, :5] = (s + 1, PLANE_CODE[plane], schema.LEVELS.index(level) + 1,
                               SIDE_CODE[side], offset + 10)
            i += 1
    write_store(tmp_path / "rois", study_ids, crops, rows)
    return data.load_store(tmp_path / "rois")


def decode(crop):
    s, p, lv, sd, off = (int(v) for v in crop[0, :5])
    plane = {v: k for k, v in PLANE_CODE.items()}[p]
    side = {v: k for k, v in SIDE_CODE.items()}[sd] or layout.MID
    return s - 1, layout.Channel(plane, schema.LEVELS[lv - 1], side, off - 10).key


@pytest.mark.parametrize("name", layout.LAYOUTS)
def test_every_channel_holds_the_crop_its_key_names(tmp_path, name):
    study_ids = np.array([30, 10, 20])
    store = encoded_store(tmp_path, study_ids)
    keys = layout.build_layout(name, layout.store_channels(store.index))
    wanted = np.array([20, 30])  # a subset, in another order than the store
    rows, present = layout.assemble(store.index, wanted, keys)
    ds = data.StudyCrops(store.crops, rows, present)
    assert present.all()
    for i, sid in enumerate(wanted):
        stack = ds.stack(i)
        assert stack.shape == (len(keys), 8, 8)
        for c, key in enumerate(keys):
            s, got = decode(stack[c])
            assert study_ids[s] == sid and got == key, (i, c)


def test_anatomical_order_is_plane_level_side_offset(tmp_path):
    store = encoded_store(tmp_path, np.array([1]))
    keys = layout.build_layout("anatomical", layout.store_channels(store.index))
    assert len(keys) == 5 * 2 * 3 + 5 * 3 + 5 * 2 * 3
    assert keys[:7] == [
        "sag_t1/l1_l2/left/-1", "sag_t1/l1_l2/left/0", "sag_t1/l1_l2/left/1",
        "sag_t1/l1_l2/right/-1", "sag_t1/l1_l2/right/0", "sag_t1/l1_l2/right/1", "sag_t1/l2_l3/left/-1",
    ]
    assert keys[30:33] == ["sag_t2/l1_l2/mid/-1", "sag_t2/l1_l2/mid/0", "sag_t2/l1_l2/mid/1"]
    assert keys[-1] == "ax_t2/l5_s1/right/1"


def test_notebook_layout_is_the_notebooks_60_channels(tmp_path):
    store = encoded_store(tmp_path, np.array([1]))
    keys = layout.build_layout("notebook", layout.store_channels(store.index))
    assert len(keys) == 60
    assert keys[:5] == ["sag_t1/l1_l2/right/-1", "sag_t1/l1_l2/right/0", "sag_t1/l1_l2/right/1",
                        "sag_t1/l1_l2/left/0", "sag_t1/l1_l2/left/1"]
    assert keys[25:30] == ["sag_t2/l1_l2/mid/-1", "sag_t2/l1_l2/mid/-1", "sag_t2/l1_l2/mid/0",
                           "sag_t2/l1_l2/mid/1", "sag_t2/l1_l2/mid/1"]
    assert keys[50:55] == [f"ax_t2/{lv}/left/0" for lv in schema.LEVEL_SLUGS]
    assert keys[55:] == [f"ax_t2/{lv}/right/0" for lv in schema.LEVEL_SLUGS]


@pytest.mark.parametrize("n,expected", [(1, [0] * 5), (2, [0, 0, 0, 1, 1]), (3, [0, 0, 1, 2, 2]),
                                        (5, [0, 1, 2, 3, 4]), (6, [0, 1, 2, 4, 5])])
def test_pick_five_is_symmetric_and_spread(n, expected):
    assert layout.pick_five(n) == expected


def test_missing_crops_are_flagged_and_absent_rows_named(tmp_path):
    store = encoded_store(tmp_path, np.array([5, 6]))
    index = store.index.copy()
    index.loc[3, "source"] = "missing"
    keys = layout.build_layout("anatomical", layout.store_channels(index))
    rows, present = layout.assemble(index, np.array([5, 6]), keys)
    assert (~present).sum() == 1 and rows[~present][0] == 3
    with pytest.raises(ValueError, match="study 7"):
        layout.assemble(index, np.array([7]), keys)
    with pytest.raises(ValueError, match="unknown layout"):
        layout.build_layout("diagonal", layout.store_channels(index))


def test_store_with_wrong_crop_index_is_rejected(tmp_path):
    encoded_store(tmp_path, np.array([1]))
    path = tmp_path / "rois" / "index.parquet"
    index = pd.read_parquet(path)
    index["crop_index"] = index["crop_index"][::-1].to_numpy()
    index.to_parquet(path)
    with pytest.raises(ValueError, match="index.parquet: crop_index"):
        data.load_store(tmp_path / "rois")
