"""EDA counts and tables as pure functions of the ingest index (no I/O, no plotting)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lsdc import schema

MISSING = "missing"
GRADES: tuple[str, ...] = (*schema.SEVERITIES, MISSING)  # column order of every count table
UNKNOWN_DESCRIPTION = "unknown"
EXPECTED_COORDS_PER_STUDY = len(schema.LABELS)
SPINAL_COLUMNS: tuple[str, ...] = tuple(
    lab.column for lab in schema.LABELS if lab.family == "spinal"
)


def grade_name(codes: pd.Series) -> pd.Series:
    """Severity codes (0/1/2, IGNORE_INDEX or null) -> 'Normal/Mild'/'Moderate'/'Severe'/'missing'."""
    names = {i: s for i, s in enumerate(schema.SEVERITIES)}
    numeric = pd.to_numeric(codes, errors="coerce")
    return numeric.map(names).fillna(MISSING).astype(str)


def labelled_study_ids(labels: pd.DataFrame) -> np.ndarray:
    """Sorted ids of the studies with a train.csv row (the labelled training studies)."""
    return np.sort(labels["study_id"].dropna().unique().astype("int64"))


def grade_counts(labels: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Label cells per grade (columns GRADES, 'missing' included) for each group of `by`."""
    frame = labels.assign(grade=grade_name(labels["severity_code"]))
    counts = frame.groupby(by + ["grade"], observed=True).size().unstack("grade")
    counts = counts.reindex(columns=list(GRADES)).fillna(0).astype("int64")
    order = {"condition": list(schema.CONDITIONS), "level": list(schema.LEVELS)}
    if len(by) == 1:
        wanted = order.get(by[0])
        if wanted is not None:
            counts = counts.reindex(wanted).fillna(0).astype("int64")
    else:
        full = pd.MultiIndex.from_product([order.get(b, sorted(labels[b].unique())) for b in by],
                                          names=by)
        counts = counts.reindex(full).fillna(0).astype("int64")
    counts.columns.name = None
    return counts


def grade_shares(counts: pd.DataFrame) -> pd.DataFrame:
    """Shares of each grade among the graded cells of each row (missing excluded)."""
    graded = counts[list(schema.SEVERITIES)]
    total = graded.sum(axis=1).replace(0, np.nan)
    return graded.div(total, axis=0)


def label_wide(labels: pd.DataFrame) -> pd.DataFrame:
    """Study x 25 label columns of severity codes as floats, NaN where missing."""
    codes = pd.to_numeric(labels["severity_code"], errors="coerce").astype("float64")
    codes = codes.where(codes >= 0)
    wide = (
        labels.assign(code=codes)
        .pivot_table(index="study_id", columns="column", values="code", aggfunc="first",
                     dropna=False)
        .reindex(index=labelled_study_ids(labels), columns=list(schema.LABEL_COLUMNS))
    )
    wide.columns.name = None
    wide.index.name = "study_id"
    return wide


def missing_matrix(labels: pd.DataFrame) -> pd.DataFrame:
    """Missing label cells as a condition x level table of counts."""
    counts = grade_counts(labels, ["condition", "level"])[MISSING]
    return counts.unstack("level").reindex(index=list(schema.CONDITIONS),
                                           columns=list(schema.LEVELS))


def per_study_grades(labels: pd.DataFrame) -> pd.DataFrame:
    """Per labelled study: number of cells of each grade (columns GRADES)."""
    if labels.empty:
        return pd.DataFrame(columns=list(GRADES), dtype="int64")
    counts = grade_counts(labels, ["study_id"])
    return counts.reindex(labelled_study_ids(labels)).fillna(0).astype("int64")


def label_correlation(wide: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Spearman correlation of severity codes between label columns (pairwise complete)."""
    sub = wide[columns] if columns is not None else wide
    return sub.corr(method="spearman", min_periods=3)


def condition_columns(condition: str) -> list[str]:
    return [lab.column for lab in schema.LABELS if lab.condition == condition]


def left_right_agreement(wide: pd.DataFrame) -> tuple[float, int]:
    """Share of (study, level) pairs whose left and right grades are equal, and the pair count."""
    equal, total = 0, 0
    for lab in schema.LABELS:
        if lab.side != "left":
            continue
        right = schema.Label(lab.condition.replace("Left", "Right", 1), lab.level).column
        pair = wide[[lab.column, right]].dropna()
        equal += int((pair[lab.column] == pair[right]).sum())
        total += len(pair)
    return (equal / total if total else float("nan")), total


def neighbour_level_correlation(wide: pd.DataFrame) -> float:
    """Mean Spearman correlation between adjacent levels of the same condition."""
    values = []
    for condition in schema.CONDITIONS:
        cols = condition_columns(condition)
        corr = label_correlation(wide, cols)
        values += [corr.iloc[i, i + 1] for i in range(len(cols) - 1)]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def split_study_ids(studies: pd.DataFrame, split: str) -> np.ndarray:
    return np.sort(studies.loc[studies["split"] == split, "study_id"].unique().astype("int64"))


def series_per_study(studies: pd.DataFrame, series: pd.DataFrame, split: str = "train") -> pd.Series:
    """Number of series of each study of `split` (0 for a study without any series)."""
    ids = split_study_ids(studies, split)
    n = series.loc[series["split"] == split].groupby("study_id").size()
    return n.reindex(ids, fill_value=0).astype("int64").rename("n_series")


def series_per_study_distribution(n_series: pd.Series) -> dict[int, int]:
    """{number of series: number of studies}, ascending."""
    return {int(k): int(v) for k, v in n_series.value_counts().sort_index().items()}


def description_counts(series: pd.DataFrame, split: str | None = "train") -> pd.Series:
    """Series per series description (unknown/absent descriptions as 'unknown'), RSNA order first."""
    sub = series if split is None else series.loc[series["split"] == split]
    desc = sub["series_description"].astype("object").where(sub["series_description"].notna(),
                                                             UNKNOWN_DESCRIPTION)
    counts = desc.value_counts()
    known = [d for d in schema.PLANE_OF_DESCRIPTION if d in counts.index]
    other = sorted(d for d in counts.index if d not in schema.PLANE_OF_DESCRIPTION)
    return counts.reindex(known + other).astype("int64")


def coord_rows_per_study(coords: pd.DataFrame, study_ids: np.ndarray) -> pd.Series:
    """Coordinate rows of each given study (0 when it has none)."""
    return coords.groupby("study_id").size().reindex(study_ids, fill_value=0).astype("int64")


def annotated_instances_per_study(coords: pd.DataFrame, study_ids: np.ndarray) -> pd.Series:
    """Distinct annotated (series, instance) images of each given study."""
    images = coords.drop_duplicates(["study_id", "series_id", "instance_number"])
    return images.groupby("study_id").size().reindex(study_ids, fill_value=0).astype("int64")


def normalised_coords(coords: pd.DataFrame) -> pd.DataFrame:
    """Coordinates with nx = x / cols, ny = y / rows (NaN when the image size is unknown) and grade."""
    rows = pd.to_numeric(coords["rows"], errors="coerce").astype("float64")
    cols = pd.to_numeric(coords["cols"], errors="coerce").astype("float64")
    x = pd.to_numeric(coords["x"], errors="coerce").astype("float64")
    y = pd.to_numeric(coords["y"], errors="coerce").astype("float64")
    return coords.assign(
        nx=x / cols.where(cols > 0), ny=y / rows.where(rows > 0),
        grade=grade_name(coords["severity_code"]),
    )


def image_sizes(series: pd.DataFrame) -> pd.DataFrame:
    """Series per (description, 'rows x cols') for series with a known size, most common first."""
    known = series.dropna(subset=["rows", "cols"])
    if known.empty:
        return pd.DataFrame(columns=["series_description", "size", "n_series"])
    desc = known["series_description"].astype("object").where(
        known["series_description"].notna(), UNKNOWN_DESCRIPTION)
    size = known["rows"].astype("int64").astype(str) + "x" + known["cols"].astype("int64").astype(str)
    table = (pd.DataFrame({"series_description": desc, "size": size})
             .groupby(["series_description", "size"]).size().rename("n_series").reset_index())
    order = {d: i for i, d in enumerate(schema.PLANE_OF_DESCRIPTION)}  # RSNA order, then others
    rank = table["series_description"].map(lambda d: (order.get(d, len(order)), d))
    table = table.assign(_rank=rank).sort_values(["_rank", "n_series"], ascending=[True, False],
                                                 kind="stable", ignore_index=True)
    return table.drop(columns="_rank")


def left_right_subarticular_x(coords: pd.DataFrame) -> tuple[int, int]:
    """(pairs where the left subarticular x exceeds the right one, pairs) on the same study and level."""
    left, right = (coords.loc[coords["condition"] == f"{s} Subarticular Stenosis",
                              ["study_id", "level", "x"]].drop_duplicates(["study_id", "level"])
                   for s in ("Left", "Right"))
    pairs = left.merge(right, on=["study_id", "level"], suffixes=("_l", "_r"))
    return int((pairs["x_l"] > pairs["x_r"]).sum()), len(pairs)


def _share(n: int, total: int) -> float | None:
    return round(n / total, 6) if total else None


def headline(studies: pd.DataFrame, series: pd.DataFrame, labels: pd.DataFrame,
             coords: pd.DataFrame) -> dict:
    """The headline counts written to metrics/eda.json (nested dicts; None where undefined)."""
    ids = labelled_study_ids(labels)
    cells = grade_counts(labels, ["condition"]).sum() if len(labels) else pd.Series(0, GRADES)
    per_study = per_study_grades(labels)
    any_severe = per_study["Severe"] > 0
    any_moderate = per_study["Moderate"] > 0
    wide = label_wide(labels)
    spinal_severe = (wide[list(SPINAL_COLUMNS)] == schema.SEVERITY_CODE["Severe"]).any(axis=1)
    n_coords = coord_rows_per_study(coords, ids)
    n_series = series_per_study(studies, series)
    desc = description_counts(series)
    head = {
        "studies": len(ids),
        "studies_by_split": {str(k): int(v) for k, v in
                             studies.groupby("split").size().sort_index().items()},
        "label_cells": {schema.slug(g): int(cells[g])
                        for g in GRADES},
        "studies_with_missing_label": int((per_study[MISSING] > 0).sum()),
        "coord_rows": len(coords),
        "studies_coord_rows_not_25": int((n_coords != EXPECTED_COORDS_PER_STUDY).sum()),
        "studies_without_coords": int((n_coords == 0).sum()),
        "studies_any_severe": int(any_severe.sum()),
        "studies_any_moderate": int(any_moderate.sum()),
        "studies_severe_and_moderate": int((any_severe & any_moderate).sum()),
        "any_severe_spinal_prevalence": _share(int(spinal_severe.sum()), len(ids)),
        "series_per_study": {str(k): v for k, v in
                             series_per_study_distribution(n_series).items()},
        "series_description_share": {schema.slug(str(d)): _share(int(n), int(desc.sum()))
                                     for d, n in desc.items()},
    }
    sized = (pd.to_numeric(coords["rows"], errors="coerce") > 0) & \
        (pd.to_numeric(coords["cols"], errors="coerce") > 0)
    if "in_image" in coords.columns:  # only where the image size is known
        head["coords_outside_image"] = int((sized & ~coords["in_image"].astype("boolean")
                                            .fillna(True)).sum())
    if "near_origin" in coords.columns:
        head["coords_near_origin"] = int(coords["near_origin"].astype("boolean").fillna(False).sum())
    return head
