"""Compute each EDA analysis, draw its figure(s) into the report folder and describe it."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from lsdc import schema
from lsdc.eda import examples, plots, stats
from lsdc.eda.report import Section
from lsdc.index import IndexTables

log = logging.getLogger(__name__)

SKIPPED_NO_IMAGES = ("Skipped: no DICOM header was read (a CSV-only root, images not "
                     "downloaded yet), so there are no image sizes or pixels to show.")


def label_sections(t: IndexTables, out: Path) -> list[Section]:
    by_condition = stats.grade_counts(t.labels, ["condition"])
    by_cl = stats.grade_counts(t.labels, ["condition", "level"])
    by_level = stats.grade_counts(t.labels, ["level"])
    plots.grade_distribution(by_condition, out / "labels_by_condition.png", "Grades per condition")
    plots.grade_distribution(by_level, out / "labels_by_level.png", "Grades per level")
    plots.grades_by_level(by_cl, out / "labels_by_condition_level.png")
    shares_cl = stats.grade_shares(by_cl)
    plots.grade_share_heatmaps(shares_cl, out / "label_shares.png")
    share_table = (100 * stats.grade_shares(by_condition)).round(1).add_suffix(" %")
    distribution = Section(
        "Label distribution", "labels",
        text=[f"Counts of label cells per grade ({', '.join(stats.GRADES)}); shares are among "
              "graded cells, so missing cells do not dilute them."],
        figures=[("labels_by_condition.png", "Grades per condition: counts and shares"),
                 ("labels_by_level.png", "Grades per level (all conditions): counts and shares"),
                 ("labels_by_condition_level.png", "Grade counts per level, one panel per "
                  "condition"),
                 ("label_shares.png", "Share of each grade per condition and level")],
        tables=[("Label cells per condition", pd.concat([by_condition, share_table], axis=1)),
                ("Label cells per level", by_level)],
    )
    wide = stats.label_wide(t.labels)
    matrix = stats.missing_matrix(t.labels)
    plots.missing_labels(matrix, wide, out / "missing_labels.png")
    n_missing = int(matrix.to_numpy().sum())
    missing = Section(
        "Missing labels", "missing",
        text=[f"{n_missing} missing label cells in {int(wide.isna().any(axis=1).sum())} of "
              f"{len(wide)} studies."],
        figures=[("missing_labels.png", "Missing cells per label and the studies that miss them")],
    )
    corrs = {c: stats.label_correlation(wide, stats.condition_columns(c)) for c in schema.CONDITIONS}
    plots.correlation_all(stats.label_correlation(wide), out / "correlation_all.png")
    plots.correlation_per_condition(corrs, out / "correlation_per_condition.png")
    agree, pairs = stats.left_right_agreement(wide)
    correlation = Section(
        "Correlation between labels", "correlation",
        text=["Spearman correlation of severity codes (0 Normal/Mild, 1 Moderate, 2 Severe), "
              "pairwise over studies where both labels are graded."]
        + ([f"Left and right agree in {100 * agree:.1f} % of {pairs} same-level pairs."]
           if pairs else []),
        figures=[("correlation_all.png", "All 25 labels"),
                 ("correlation_per_condition.png", "Levels within each condition")],
    )
    per_study = stats.per_study_grades(t.labels)
    plots.integer_histograms(
        {"Severe labels per study": per_study["Severe"],
         "Moderate labels per study": per_study["Moderate"]},
        out / "grades_per_study.png", "labels with this grade in one study")
    severe_moderate = Section(
        "Severe and Moderate labels per study", "per-study",
        text=[f"Median {per_study['Severe'].median() if len(per_study) else 0:g} Severe and "
              f"{per_study['Moderate'].median() if len(per_study) else 0:g} Moderate labels per "
              "study."],
        figures=[("grades_per_study.png", "How many of a study's 25 labels are Severe / Moderate")],
    )
    return [distribution, missing, correlation, severe_moderate]


def series_sections(t: IndexTables, out: Path) -> list[Section]:
    splits = sorted(t.studies["split"].unique(), key=lambda s: (s != "train", s))
    panels = {f"{split} studies": stats.series_per_study(t.studies, t.series, split)
              for split in splits}
    plots.integer_histograms(panels, out / "series_per_study.png", "series in the study")
    counts = pd.DataFrame({split: stats.description_counts(t.series, split)
                           for split in splits if (t.series["split"] == split).any()}
                          ).fillna(0).astype(int)
    plots.description_shares(counts, out / "series_descriptions.png")
    return [
        Section("Series per study", "series",
                figures=[("series_per_study.png", "Number of series per study, per split")]),
        Section("Series descriptions", "descriptions",
                figures=[("series_descriptions.png", "Series per description, with shares per "
                          "split")],
                tables=[("Series per description", counts)]),
    ]


def coordinate_sections(t: IndexTables, out: Path, max_points: int, seed: int) -> list[Section]:
    ids = stats.labelled_study_ids(t.labels)
    n_images = stats.annotated_instances_per_study(t.coords, ids)
    n_rows = stats.coord_rows_per_study(t.coords, ids)
    plots.integer_histograms(
        {"Annotated images per study": n_images, "Coordinate rows per study": n_rows},
        out / "annotations_per_study.png", "count in one study")
    norm = stats.normalised_coords(t.coords)
    plots.coords_scatter(norm, out / "coords_by_level.png", "level", max_points, seed)
    plots.coords_scatter(norm, out / "coords_by_severity.png", "grade", max_points, seed)
    plots.coords_density(norm, out / "coords_density.png")
    notes = [] if norm["nx"].notna().any() or norm.empty else [
        "Image sizes are unknown (no DICOM headers), so coordinates are shown in raw pixels "
        "instead of x / cols, y / rows."]
    shown = min(len(norm), max_points)
    return [
        Section("Annotated instances per study", "annotations",
                text=[f"Median {n_images.median() if len(n_images) else 0:g} annotated images and "
                      f"{n_rows.median() if len(n_rows) else 0:g} coordinate rows per labelled "
                      "study."],
                figures=[("annotations_per_study.png", "Distinct annotated (series, instance) "
                          "images and coordinate rows per study")]),
        Section("Coordinates", "coords", notes=notes,
                text=[f"{len(norm)} coordinate rows ({shown} drawn in the scatter plots), in image "
                      "orientation (origin top left)."],
                figures=[("coords_by_level.png", "Coordinates per condition, coloured by level"),
                         ("coords_by_severity.png", "Coordinates per condition, coloured by grade"),
                         ("coords_density.png", "Density per condition and level")]),
    ]


def image_sections(t: IndexTables, out: Path, data_root: Path, example_study: int | None,
                   ) -> list[Section]:
    sizes = stats.image_sizes(t.series)
    size_section = Section("Image sizes per series type", "sizes")
    example_section = Section("Example slices", "examples")
    if not t.has_images or sizes.empty:
        size_section.notes.append(SKIPPED_NO_IMAGES)
        example_section.notes.append(SKIPPED_NO_IMAGES)
        return [size_section, example_section]
    plots.image_sizes(sizes, out / "image_sizes.png")
    size_section.figures.append(("image_sizes.png", "Most common image sizes per series type"))
    size_section.tables.append(("Series per size", sizes.set_index(["series_description", "size"])))
    study = examples.choose_study(t.instances, t.coords, example_study)
    if study is None:
        example_section.notes.append("Skipped: no study with images.")
    else:
        examples.example_slices(t.instances, t.coords, t.series, data_root, study,
                                out / "example_slices.png")
        example_section.text.append(
            f"Study {study}: for each series the most annotated slices (or the middle slice), "
            "with each annotated point circled in the colour of its grade.")
        example_section.figures.append(("example_slices.png", f"Study {study}, all series"))
    return [size_section, example_section]


def build_all(t: IndexTables, out: Path, data_root: Path, example_study: int | None,
              max_points: int, seed: int) -> list[Section]:
    """Every section of the report, in order; figures are written into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    sections = label_sections(t, out) + series_sections(t, out)
    sections += coordinate_sections(t, out, max_points, seed)
    sections += image_sections(t, out, data_root, example_study)
    return sections
