"""The report's written summary: sentences built from the numbers, never canned text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.eda import stats


def _n(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


def label_findings(labels: pd.DataFrame, head: dict) -> list[str]:
    n = head["studies"]
    if n == 0:
        return ["No labelled training study is in the index, so there are no label statistics."]
    cells = head["label_cells"]
    graded = sum(cells[schema.slug(s)] for s in schema.SEVERITIES)
    out = [
        f"{n} labelled training studies hold {graded} graded label cells: "
        + ", ".join(f"{_pct(cells[schema.slug(s)], graded)} {s}" for s in schema.SEVERITIES) + "."
    ]
    if cells[stats.MISSING]:
        missing = stats.grade_counts(labels, ["condition", "level"])[stats.MISSING]
        top = missing.sort_values(ascending=False).head(2)
        where = " and ".join(f"{c} {lv} ({k})" for (c, lv), k in top.items() if k > 0)
        out.append(f"{_n(cells[stats.MISSING], 'label cell is', 'label cells are')} missing in "
                   f"{_n(head['studies_with_missing_label'], 'study', 'studies')}, most often "
                   f"{where}.")
    else:
        out.append("No label cell is missing.")
    shares = stats.grade_shares(stats.grade_counts(labels, ["condition", "level"]))["Severe"]
    if shares.notna().any():
        (c_hi, lv_hi), (c_lo, lv_lo) = shares.idxmax(), shares.idxmin()
        out.append(f"Severe is most frequent for {c_hi} at {lv_hi} ({100 * shares.max():.1f} % of "
                   f"its graded cells) and rarest for {c_lo} at {lv_lo} "
                   f"({100 * shares.min():.1f} %).")
    out.append(
        f"{head['studies_any_severe']} studies ({_pct(head['studies_any_severe'], n)}) have at "
        f"least one Severe grade, {head['studies_any_moderate']} "
        f"({_pct(head['studies_any_moderate'], n)}) at least one Moderate, "
        f"{head['studies_severe_and_moderate']} both; "
        f"{_pct(head['any_severe_spinal_prevalence'] or 0, 1)} of studies have a Severe spinal "
        "canal stenosis at some level (the any_severe_spinal target)."
    )
    wide = stats.label_wide(labels)
    agree, pairs = stats.left_right_agreement(wide)
    rho = stats.neighbour_level_correlation(wide)
    if pairs:
        out.append(f"Left and right grades at the same level agree in {100 * agree:.1f} % of "
                   f"{pairs} graded pairs (foraminal and subarticular).")
    if np.isfinite(rho):
        out.append(f"Grades at neighbouring levels of one condition correlate with a mean "
                   f"Spearman rho of {rho:.2f}.")
    return out


def coordinate_findings(coords: pd.DataFrame, head: dict) -> list[str]:
    n = head["studies"]
    out = [f"{head['coord_rows']} coordinate rows; {head['studies_coord_rows_not_25']} of {n} "
           f"labelled studies do not have exactly {stats.EXPECTED_COORDS_PER_STUDY} rows "
           f"({_n(head['studies_without_coords'], 'study has', 'studies have')} none)."]
    flags = [f"{head[k]} {text}" for k, text in (("coords_outside_image", "lie outside the image"),
                                                  ("coords_near_origin", "sit near (0, 0)"))
             if k in head]
    if flags:
        out.append("Of these, " + " and ".join(flags) + ".")
    larger, pairs = stats.left_right_subarticular_x(coords)
    if pairs:
        share = larger / pairs
        verdict = ("consistent with patient left on the image right" if share >= 0.9 else
                   "the reverse of the usual orientation" if share <= 0.1 else
                   "a mix of orientations: check the axial coordinates")
        out.append(f"The left subarticular point has the larger x in {larger} of {pairs} "
                   f"study-level pairs ({100 * share:.1f} %): {verdict}.")
    return out


def series_findings(series: pd.DataFrame, head: dict) -> list[str]:
    dist = {int(k): v for k, v in head["series_per_study"].items()}
    if not dist:
        return ["No training series is in the index."]
    mode = max(dist, key=dist.get)
    total = sum(dist.values())
    others = ", ".join(f"{k} in {_n(v, 'study', 'studies')}" for k, v in sorted(dist.items())
                       if k != mode)
    out = [f"{dist[mode]} of {total} training studies ({_pct(dist[mode], total)}) have {mode} "
           f"series" + (f"; other series counts: {others}." if others else ".")]
    desc = stats.description_counts(series)
    out.append("Series types: " + ", ".join(f"{d} {_pct(k, desc.sum())}"
                                            for d, k in desc.items()) + ".")
    return out


def image_findings(series: pd.DataFrame, has_images: bool) -> list[str]:
    if not has_images:
        return ["No DICOM header was read (a CSV-only root): image sizes and example slices "
                "are skipped."]
    sizes = stats.image_sizes(series)
    parts = []
    for desc, group in sizes.groupby("series_description", sort=False):
        top = group.iloc[0]
        parts.append(f"{desc} {top['size']} ({top['n_series']} of {group['n_series'].sum()} series,"
                     f" {_n(len(group), 'distinct size', 'distinct sizes')})")
    return ["Most common image size (rows x cols): " + "; ".join(parts) + "."] if parts else []


def summary(tables, head: dict) -> list[str]:
    """All findings in report order."""
    return (label_findings(tables.labels, head) + coordinate_findings(tables.coords, head)
            + series_findings(tables.series, head) + image_findings(tables.series, tables.has_images))
