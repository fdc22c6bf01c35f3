"""The synthetic anatomy and renderer: frames, severity signal where labelled, nothing elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from lsdc import schema
from lsdc.synth import anatomy, generate, render
from synth_fixtures import tiny

SYNTH = tiny(image_scale=0.4)


@pytest.fixture(scope="module")
def study():
    jobs, _, _ = generate.jobs_for(SYNTH, None)
    job = jobs[0]
    return generate.make_plan(job), job


def _column(condition: int, level: int) -> int:
    return schema.LABEL_INDEX[f"{schema.CONDITION_SLUGS[condition]}_{schema.LEVEL_SLUGS[level]}"]


def _slice_nearest(study_plan, plane: str, point: np.ndarray):
    series = study_plan.of_plane(plane)[0]
    geom = min(series.slices, key=lambda g: abs(float(g.to_pixel(point)[2])))
    return series, geom


def _render(study_plan, series, geom, narrowing):
    spine = study_plan.spine.with_narrowing(narrowing)
    return render.render_slice(spine, geom, series.style, np.random.default_rng(5)).astype(np.float64)


def _window_mean(img, point_px, half=2):
    c, r = int(round(point_px[0])), int(round(point_px[1]))
    return img[max(r - half, 0): r + half + 1, max(c - half, 0): c + half + 1].mean()


def test_straighten_inverts_point():
    spine = anatomy.build_spine(np.random.default_rng(3))
    for u, v, w in [(-20.0, 5.0, 3.0), (40.0, 20.0, -10.0), (150.0, -8.0, 15.0), (260.0, 30.0, 0.0)]:
        p = spine.point(u, v, w)
        back = spine.straighten(*(np.array([c]) for c in p))
        assert np.allclose([b[0] for b in back], [u, v, w], atol=1e-6)
    p = np.array([[1.0, 2.0, 3.0]])
    assert np.allclose(spine.to_spine(spine.to_patient(p)), p)
    assert np.all(np.diff(spine.disc_u) < 0) and np.all(np.diff(spine.body_u) < 0)  # top-down


def test_canal_signal_falls_with_narrowing(study):
    """Mean T2 signal across the dural sac at the disc (CSF run) on the mid-sagittal slice."""
    plan, _ = study
    level = 2
    point = plan.spine.canal_point(level)
    series, geom = _slice_nearest(plan, "sag_t2", point)
    col, row, _ = (float(v) for v in geom.to_pixel(point))
    sa, _ = plan.spine.sac_axes(plan.spine.disc_u[anatomy.GRADED_DISCS[level]])
    half = max(1, int(sa / geom.col_spacing))
    means = []
    for n in (0.0, 0.4, 0.7, 1.0):
        narrowing = np.full(len(schema.LABELS), 0.2)
        narrowing[_column(0, level)] = n
        img = _render(plan, series, geom, narrowing)
        r, c = int(round(row)), int(round(col))
        means.append(img[r - 1: r + 2, c - half: c + half + 1].mean())
    assert all(a > b for a, b in zip(means, means[1:])), means
    assert means[-1] < 0.6 * means[0]


def test_canal_diameter_from_tissue_map_falls_with_narrowing(study):
    """CSF run length (pixels) through the canal point, noise-free tissue map, CSF = 1."""
    plan, _ = study
    level = 3
    point = plan.spine.canal_point(level)
    series, geom = _slice_nearest(plan, "sag_t2", point)
    col, row, _ = (float(v) for v in geom.to_pixel(point))
    lut = {name: 0.0 for name in render.TISSUES}
    lut["csf"] = 1.0
    runs = []
    for n in (0.0, 0.3, 0.6, 0.9):
        narrowing = np.zeros(len(schema.LABELS))
        narrowing[_column(0, level)] = n
        spine = plan.spine.with_narrowing(narrowing)
        x, y, z = geom.pixel_grid()
        u, v, w = spine.straighten(x, y, z)
        csf = render.tissue_map(spine, u, v, w, spine.torso_v(y, z), lut)[int(round(row))]
        runs.append(int(csf.sum()))
    assert all(a > b for a, b in zip(runs, runs[1:])), runs


@pytest.mark.parametrize("condition, plane, where", [
    (1, "sag_t1", "foramen"), (2, "sag_t1", "foramen"), (3, "ax_t2", "recess"), (4, "ax_t2", "recess"),
])
def test_side_signal_falls_with_narrowing(study, condition, plane, where):
    plan, _ = study
    level = 3
    side = anatomy.LEFT if condition in (1, 3) else anatomy.RIGHT
    point = getattr(plan.spine, f"{where}_point")(level, side)
    series, geom = _slice_nearest(plan, plane, point)
    col, row, _ = (float(v) for v in geom.to_pixel(point))
    means = []
    for n in (0.0, 0.5, 1.0):
        narrowing = np.full(len(schema.LABELS), 0.1)
        narrowing[_column(condition, level)] = n
        means.append(_window_mean(_render(plan, series, geom, narrowing), (col, row), half=1))
    assert means[0] > means[1] > means[2], means


@pytest.mark.parametrize("condition", [0, 1, 4])
def test_label_changes_pixels_only_at_its_place(study, condition):
    """Render the whole study twice with one label's narrowing changed: every changed pixel
    lies near that label's structure, on its side; some pixels do change."""
    plan, job = study
    level = 3
    spine = plan.spine
    side = anatomy.LEFT if condition in (1, 3) else anatomy.RIGHT
    target = {0: spine.canal_point(level), 1: spine.foramen_point(level, side),
              4: spine.recess_point(level, side)}[condition]
    base = np.full(len(schema.LABELS), 0.3)
    changed = base.copy()
    changed[_column(condition, level)] = 1.0
    a = generate.render_study(plan, base, job.seed, job.split, job.index)
    b = generate.render_study(plan, changed, job.seed, job.split, job.index)
    n_changed = 0
    for (series, number, geom, pa), (_, _, _, pb) in zip(a, b):
        rows, cols = np.nonzero(pa != pb)
        if not rows.size:
            continue
        n_changed += rows.size
        pos = (geom.ipp + np.outer(cols * geom.col_spacing, geom.row_dir)
               + np.outer(rows * geom.row_spacing, geom.col_dir))
        dist = np.linalg.norm(pos - target, axis=1)
        assert dist.max() < 25.0, (series.description, number, dist.max())
        if condition != 0:  # on its own side of the (scoliotic, rotated) spine
            w = spine.straighten(pos[:, 0], pos[:, 1], pos[:, 2])[2]
            assert np.all(np.sign(w) == anatomy.SIDE_SIGN[side])
    assert n_changed > 20
