"""Generate the synthetic dataset in the Kaggle RSNA 2024 layout, studies in parallel.

Everything is derived from ``synth.seed``: study and series ids, the label draw of each
split (lsdc.synth.labels), and each study's plan and pixel noise (seeded by seed, split and
study index), so the output is byte-identical whatever the number of workers.
"""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from lsdc import metrics, schema
from lsdc.params import Synth
from lsdc.synth import labels, plan, render, shape
from lsdc.synth.dicom_writer import SliceMeta, write_slice
from lsdc.synth.labels import LabelDraw

log = logging.getLogger(__name__)

SPLITS = {"train": 0, "test": 1}
IMAGES_DIR = {"train": schema.TRAIN_IMAGES, "test": schema.TEST_IMAGES}
SERIES_CSV = {"train": schema.TRAIN_SERIES_CSV, "test": schema.TEST_SERIES_CSV}
SERIES_SLOTS = 8  # series ids reserved per study
OUTPUTS = (schema.TRAIN_IMAGES, schema.TEST_IMAGES, schema.TRAIN_CSV, schema.COORDS_CSV, schema.TRAIN_SERIES_CSV,
           schema.TEST_SERIES_CSV, schema.SAMPLE_SUBMISSION_CSV, schema.TEST_LABELS_CSV, schema.TEST_ORACLE_CSV,
           schema.TRAIN_ORACLE_CSV)
CONSTANT_PRIOR_PSEUDOCOUNT = 0.5  # keeps grades unseen in a small train split from probability 0


@dataclass(frozen=True)
class StudyJob:
    """Everything a worker needs to plan, render and write one synthetic study."""

    split: str
    index: int
    study_id: int
    series_ids: tuple[int, ...]
    seed: int
    synth: Synth
    narrowing: np.ndarray  # (25,)
    grades: np.ndarray  # (25,)
    has_coord: np.ndarray
    misplaced: np.ndarray
    missing_series: str | None
    out_dir: Path | None  # None: render without writing


@dataclass(frozen=True)
class WrittenStudy:
    """What rendering one synthetic study produced, for the CSVs: series, coordinates, file count."""

    study_id: int
    series: list[tuple[int, str]]  # (series_id, description)
    coords: list[plan.Coordinate]
    n_files: int
    spacing: dict[int, tuple[float, float]]  # series id -> PixelSpacing (row, column) of its first slice
    quirks: dict[str, int]  # hard cases in this study (see quirk_counts)


def study_ids(synth: Synth) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique numeric ids (train, test), random above synth.first_study_id."""
    n = synth.n_train + synth.n_test
    rng = np.random.default_rng([synth.seed, 101])
    span = max(10**9 - synth.first_study_id, 100 * max(n, 1))
    ids = synth.first_study_id + rng.choice(span, size=n, replace=False)
    return np.sort(ids[: synth.n_train]), np.sort(ids[synth.n_train :])


def series_ids(synth: Synth, n_studies: int) -> np.ndarray:
    """(n_studies, SERIES_SLOTS) unique series ids across the dataset."""
    rng = np.random.default_rng([synth.seed, 102])
    ids = 10_000_000 + rng.choice(4_000_000_000, size=n_studies * SERIES_SLOTS, replace=False)
    return ids.reshape(n_studies, SERIES_SLOTS)


def draw_split_labels(synth: Synth, split: str) -> LabelDraw:
    n = synth.n_train if split == "train" else synth.n_test
    return labels.draw_labels(np.random.default_rng([synth.seed, 103, SPLITS[split]]), n, synth.reader_noise)


def seed_material(seed: int, split: str, index: int) -> list[int]:
    return [seed, 104, SPLITS[split], index]


def missing_series_of(synth: Synth, split: str, index: int) -> str | None:
    """A few train studies lack one sagittal series (deterministic, at least one of each kind)."""
    if split != "train" or synth.n_train < 8:
        return None
    if index == int(0.37 * synth.n_train):
        return plan.MISSING_SAG_T1
    if index == int(0.71 * synth.n_train):
        return plan.MISSING_SAG_T2
    return None


def axial_levels(grades: np.ndarray, has_coord: np.ndarray) -> list[int]:
    """Graded levels covered by the axial series: all, except L1/L2 (then L2/L3) at the top or
    L5/S1 at the bottom when neither subarticular label there has a grade or a coordinate, as
    when the real axial coverage stops short."""
    cols = [[schema.LABEL_INDEX[f"{schema.slug(c)}_{lv}"] for c in schema.CONDITIONS[3:]] for lv in schema.LEVEL_SLUGS]
    unseen = [all(grades[j] == schema.IGNORE_INDEX and not has_coord[j] for j in c) for c in cols]
    levels = list(range(len(schema.LEVELS)))
    while len(levels) > 1 and unseen[levels[0]] and levels[0] < 2:
        levels.pop(0)
    if len(levels) > 1 and unseen[levels[-1]]:
        levels.pop()
    return levels


def make_plan(job: StudyJob) -> plan.StudyPlan:
    return plan.plan_study(seed_material(job.seed, job.split, job.index), job.study_id, list(job.series_ids),
                           job.synth, job.missing_series, axial_levels(job.grades, job.has_coord))


def render_study(study: plan.StudyPlan, narrowing: np.ndarray, seed: int, split: str, index: int):
    """Yield (series, instance number, slice geometry, uint16 pixels) of every slice of a study
    rendered with an explicit (25,) narrowing vector; the noise does not depend on it."""
    spine = study.spine.with_narrowing(narrowing)
    for series in study.series:
        for j, (geom, number) in enumerate(zip(series.slices, series.instance_numbers)):
            rng = np.random.default_rng([*seed_material(seed, split, index), series.series_number, j])
            yield series, number, geom, render.render_slice(spine, geom, series.style, rng)


def run_study(job: StudyJob) -> WrittenStudy:
    study = make_plan(job)
    spine = study.spine
    n_files = 0
    for series, number, geom, pixels in render_study(study, job.narrowing, job.seed, job.split, job.index):
        if job.out_dir is None:
            continue
        row = spine.vectors_to_patient(geom.row_dir)
        col = spine.vectors_to_patient(geom.col_dir)
        meta = SliceMeta(
            study_id=job.study_id, series_id=series.series_id, series_number=series.series_number,
            series_description=series.description, instance_number=number,
            ipp=tuple(spine.to_patient(geom.ipp)), iop=(*row, *col),
            pixel_spacing=(geom.row_spacing, geom.col_spacing),
            slice_thickness=None if number in series.tagless else series.slice_thickness,
            spacing_between_slices=None if series.slice_thickness is None or number in series.tagless
            else series.spacing,
        )
        path = job.out_dir / IMAGES_DIR[job.split] / str(job.study_id) / str(series.series_id) / f"{number}.dcm"
        write_slice(path, pixels, meta)
        n_files += 1
    coords = []
    if job.split == "train":
        rng = np.random.default_rng([*seed_material(job.seed, job.split, job.index), 999])
        coords = plan.coordinates(study, job.has_coord, job.misplaced, rng)
    spacing = {s.series_id: (s.slices[0].row_spacing, s.slices[0].col_spacing) for s in study.series}
    return WrittenStudy(job.study_id, [(s.series_id, s.description) for s in study.series], coords, n_files,
                        spacing, quirk_counts(study))


def quirk_counts(study: plan.StudyPlan) -> dict[str, int]:
    """Hard cases of one study's plan: edge anatomy, scoliosis, and per series the acquisition quirks."""
    axial = study.of_plane("ax_t2")
    spine = study.spine
    counts = {f"edge_{e}": int(study.edge == e) for e in plan.EDGE_CASES}
    counts["spondylolisthesis"] = int(bool(np.any(spine.slip_v != 0)))
    counts["scoliosis_over_5mm"] = int(float(np.abs(spine.lateral_x).max()) > 5.0)
    counts["mirrored_series"] = sum(s.mirrored is not None for s in study.series)
    counts["axial_series"] = len(axial)
    counts["axial_multi_block_tilt_over_10deg"] = sum(
        1 for s in axial if _tilt_spread(s) > 10.0)
    counts["axial_out_of_order"] = sum(s.order not in ("spatial", "reversed") for s in axial)
    counts["axial_with_localiser"] = sum(bool(s.localisers) for s in axial)
    counts["series_without_thickness"] = sum(s.slice_thickness is None for s in study.series)
    counts["series_with_tagless_files"] = sum(bool(s.tagless) for s in study.series)
    return counts


def _tilt_spread(series: plan.SeriesPlan) -> float:
    """Largest angle (degrees) between the normals of a series' slices (localisers left out)."""
    normals = np.array([np.cross(g.row_dir, g.col_dir) for i, g in enumerate(series.slices)
                        if i not in series.localisers])
    cos = np.clip(np.abs(normals @ normals.T), 0.0, 1.0)
    return float(np.degrees(np.arccos(cos.min())))


def jobs_for(synth: Synth, out_dir: Path | None) -> tuple[list[StudyJob], dict[str, LabelDraw], dict[str, np.ndarray]]:
    train_ids, test_ids = study_ids(synth)
    ids = {"train": train_ids, "test": test_ids}
    draws = {split: draw_split_labels(synth, split) for split in SPLITS}
    slots = series_ids(synth, synth.n_train + synth.n_test)
    jobs = []
    for split in SPLITS:
        d = draws[split]
        for i, sid in enumerate(ids[split]):
            slot = i if split == "train" else synth.n_train + i
            jobs.append(StudyJob(
                split=split, index=i, study_id=int(sid), series_ids=tuple(int(s) for s in slots[slot]),
                seed=synth.seed, synth=synth, narrowing=d.narrowing[i], grades=d.grades[i],
                has_coord=d.has_coord[i], misplaced=d.misplaced[i],
                missing_series=missing_series_of(synth, split, i), out_dir=out_dir,
            ))
    return jobs, draws, ids


def _run_all(jobs: list[StudyJob], workers: int, progress: bool) -> list[WrittenStudy]:
    bar = tqdm(total=len(jobs), desc="synth studies", unit="study", disable=not progress)
    results = []
    if workers <= 1:
        for job in jobs:
            results.append(run_study(job))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(run_study, jobs, chunksize=1):
                results.append(result)
                bar.update()
    bar.close()
    return results


def grade_frame(study_ids_: np.ndarray, grades: np.ndarray) -> pd.DataFrame:
    """train.csv-format frame: study_id + 25 columns of severity strings (missing: empty)."""
    frame = pd.DataFrame({"study_id": np.asarray(study_ids_, dtype=np.int64)})
    for j, col in enumerate(schema.LABEL_COLUMNS):
        frame[col] = [schema.SEVERITIES[g] if g != schema.IGNORE_INDEX else None for g in grades[:, j]]
    return frame


def submission_frame(study_ids_: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """sample_submission-format frame, 25 rows per study sorted by row_id, studies by id."""
    rows = []
    for sid, p in zip(study_ids_, probs):
        by_id = {schema.row_id(sid, col): p[j] for j, col in enumerate(schema.LABEL_COLUMNS)}
        rows += [(rid, *by_id[rid]) for rid in schema.study_row_ids(sid)]
    return pd.DataFrame(rows, columns=list(schema.SUBMISSION_COLUMNS))


def _coords_frame(results: list[WrittenStudy]) -> pd.DataFrame:
    rows = [(r.study_id, c.series_id, c.instance_number, c.condition, c.level, c.x, c.y)
            for r in results for c in r.coords]
    frame = pd.DataFrame(rows, columns=list(schema.COORDS_COLUMNS))
    frame["_cond"] = frame["condition"].map(schema.CONDITIONS.index)
    frame["_level"] = frame["level"].map(schema.LEVELS.index)
    keys = ["study_id", "series_id", "instance_number", "_cond", "_level"]
    return frame.sort_values(keys, kind="stable").drop(columns=["_cond", "_level"]).reset_index(drop=True)


def _series_frame(results: list[WrittenStudy]) -> pd.DataFrame:
    rows = [(r.study_id, sid, desc) for r in results for sid, desc in r.series]
    frame = pd.DataFrame(rows, columns=list(schema.SERIES_COLUMNS))
    return frame.sort_values(["study_id", "series_id"], kind="stable").reset_index(drop=True)


def clear_outputs(out_dir: Path) -> None:
    """Remove what a previous run wrote (only the dataset's own files and folders)."""
    for name in OUTPUTS:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def generate(synth: Synth, out_dir: str | Path, workers: int = 0, progress: bool = True) -> dict:
    """Write the dataset under out_dir; return its summary (counts and reference scores)."""
    out_dir = Path(out_dir)
    if synth.n_train < 1 or synth.n_test < 1:
        raise ValueError(f"synth.n_train and synth.n_test must be >= 1, got {synth.n_train}, {synth.n_test}")
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_outputs(out_dir)
    jobs, draws, ids = jobs_for(synth, out_dir)
    log.info("generating %d train + %d test studies with %d worker(s) into %s",
             synth.n_train, synth.n_test, workers, out_dir)
    results = _run_all(jobs, workers, progress)
    by_split = {s: [r for r, j in zip(results, jobs) if j.split == s] for s in SPLITS}

    grade_frame(ids["train"], draws["train"].grades).to_csv(out_dir / schema.TRAIN_CSV, index=False)
    grade_frame(ids["test"], draws["test"].grades).to_csv(out_dir / schema.TEST_LABELS_CSV, index=False)
    coords = _coords_frame(by_split["train"])
    coords.to_csv(out_dir / schema.COORDS_CSV, index=False)
    for split in SPLITS:
        _series_frame(by_split[split]).to_csv(out_dir / SERIES_CSV[split], index=False)
    n_test = len(ids["test"])
    uniform = np.full((n_test, len(schema.LABEL_COLUMNS), 3), 1 / 3)
    submission_frame(ids["test"], uniform).to_csv(out_dir / schema.SAMPLE_SUBMISSION_CSV, index=False,
                                                  float_format="%.6f")
    oracle = labels.oracle_probs(draws["test"].latent, synth.reader_noise)
    submission_frame(ids["test"], oracle).to_csv(out_dir / schema.TEST_ORACLE_CSV, index=False)
    # the train split's oracle: the ceiling of the out-of-fold score (evaluate's normalised skill)
    train_oracle = labels.oracle_probs(draws["train"].latent, synth.reader_noise)
    submission_frame(ids["train"], train_oracle).to_csv(out_dir / schema.TRAIN_ORACLE_CSV, index=False)

    prior = metrics.best_constant_prior(draws["train"].grades, pseudocount=CONSTANT_PRIOR_PSEUDOCOUNT)
    test_grades = draws["test"].grades
    summary = {
        split: {
            "studies": len(by_split[split]),
            "series": sum(len(r.series) for r in by_split[split]),
            "files": sum(r.n_files for r in by_split[split]),
            "graded_labels": int((draws[split].grades != schema.IGNORE_INDEX).sum()),
            "missing_labels": int((draws[split].grades == schema.IGNORE_INDEX).sum()),
        }
        for split in SPLITS
    }
    summary["train"]["coordinate_rows"] = len(coords)
    summary["score_oracle"] = metrics.competition_score(test_grades, oracle).as_dict()
    summary["score_oracle_train"] = metrics.competition_score(draws["train"].grades, train_oracle).as_dict()
    summary["score_constant_prior"] = metrics.competition_score(
        test_grades, metrics.prior_probs(prior, n_test)).as_dict()
    summary["score_uniform"] = metrics.competition_score(test_grades, uniform).as_dict()
    summary["constant_prior_pseudocount"] = CONSTANT_PRIOR_PSEUDOCOUNT
    summary["shape"] = shape_report(by_split["train"], coords)
    summary["quirks"] = {k: int(sum(r.quirks[k] for r in results)) for k in results[0].quirks}
    return summary


def shape_report(results: list[WrittenStudy], coords: pd.DataFrame) -> dict:
    """Real vs phantom spine-shape percentiles (lsdc.synth.shape) on the written train
    coordinates, converted to mm with each series' PixelSpacing."""
    spacing = {sid: sp for r in results for sid, sp in r.spacing.items()}
    descriptions = {sid: desc for r in results for sid, desc in r.series}
    near_origin = (coords["x"] < shape.NEAR_ORIGIN_PX) & (coords["y"] < shape.NEAR_ORIGIN_PX)
    points = shape.canal_points(coords[~near_origin], spacing, descriptions)
    return shape.comparison(shape.table(points))
