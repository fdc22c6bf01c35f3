"""Headline figures vs details: what each stage declares as a DVC metric.

`dvc metrics show` and `dvc exp show` print one column per number in every declared
metrics file, so a stage's metrics file holds only its headline figures (scores, skill,
localisation, coverage, counts: about 40 columns for the whole pipeline). Everything
else a stage measures goes to a details file beside it, a plain DVC out
(`metrics/synth.json` -> `metrics/synth.details.json`), so no figure is lost and none
crowds the comparison tables. The details file holds the figures the headline does not
(one home for each number); `load` merges both back into the stage's full dict.

Wall-clock figures (seconds, CPU seconds, dates) belong in neither: they change on
every re-run and would change dvc.lock, so stages log them to MLflow only.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lsdc import jsonio

# stage -> dotted keys of its full metrics dict that are headline figures. The keys
# are the stage's metrics-file stem ("detectors" covers metrics/detectors/<plane>.json).
HEADLINE: dict[str, tuple[str, ...]] = {
    "synth": ("train.studies", "test.studies", "score_oracle.total", "score_constant_prior.total",
              "shape.bend_deg.p50.phantom", "shape.deviation_mm.p90.phantom"),
    "ingest": ("studies.train", "studies.test", "quarantine.total"),
    "eda": ("studies", "studies_with_missing_label", "any_severe_spinal_prevalence"),
    "detectors": ("mAP50", "loc_right_within", "loc_median_mm"),
    "naming": ("alone.min_bin_right", "detected.min_bin_right", "silent_shifts", "silent_shifts_pipeline",
               "pipeline.within", "sides.mirrored_row.side_right", "sides.mirrored_col.side_right"),
    "rois": ("studies.total", "crops.detected_share", "distance_mm.within_5mm", "distance_mm.median",
             "distance_mm.detector_val_fold.within_5mm"),
    "classifier": ("oof_score.total",),
    "cv": ("score.total", "score.spinal", "score.foraminal", "score.subarticular",
           "score.any_severe_spinal", "prior.total", "normalised_skill", "skill_ci95.low", "skill_ci95.high"),
    "test": ("n_studies", "model.total", "constant_prior.total", "oracle.total", "normalised_skill",
             "skill_ci95.low", "skill_ci95.high"),
}

DETAILS_SUFFIX = ".details.json"


def details_path(metrics_path: str | Path) -> Path:
    """The details file beside a metrics file: metrics/x.json -> metrics/x.details.json."""
    metrics_path = Path(metrics_path)
    return metrics_path.with_name(metrics_path.stem + DETAILS_SUFFIX)


def _get(d: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = d
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _pop(d: dict[str, Any], dotted: str) -> None:
    """Remove a dotted key, and parents left empty by the removal."""
    parts = dotted.split(".")
    chain = [d]
    for part in parts[:-1]:
        chain.append(chain[-1][part])
    del chain[-1][parts[-1]]
    for parent, part in zip(reversed(chain[:-1]), reversed(parts[:-1]), strict=True):
        if parent[part]:
            break
        del parent[part]


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        d = d.setdefault(part, {})
    d[parts[-1]] = value


def split(stage: str, full: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(headline, details) of a stage's full metrics dict; details = the rest, order kept.

    A headline key the dict lacks (e.g. test scores when the test split has no labels)
    is left out, never invented.
    """
    if stage not in HEADLINE:
        raise KeyError(f"no headline keys for stage {stage!r}; known: {sorted(HEADLINE)}")
    headline: dict[str, Any] = {}
    details = copy.deepcopy(dict(full))
    for key in HEADLINE[stage]:
        found, value = _get(full, key)
        if found and not isinstance(value, Mapping):
            _set(headline, key, value)
            _pop(details, key)
    return headline, details


def merge(headline: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of `split` (up to key order): details with the headline figures put back."""
    out = copy.deepcopy(dict(details))

    def walk(src: Mapping[str, Any], prefix: str) -> None:
        for k, v in src.items():
            if isinstance(v, Mapping):
                walk(v, f"{prefix}{k}.")
            else:
                _set(out, f"{prefix}{k}", v)

    walk(headline, "")
    return out


def write(stage: str, full: Mapping[str, Any], metrics_path: str | Path) -> tuple[Path, Path]:
    """Write the headline to metrics_path and the details beside it; return both paths."""
    headline, details = split(stage, full)
    return (jsonio.write_json(metrics_path, headline),
            jsonio.write_json(details_path(metrics_path), details))


def load(metrics_path: str | Path) -> dict[str, Any]:
    """A stage's full metrics dict from its metrics file and the details beside it (if any)."""
    import json

    metrics_path = Path(metrics_path)
    headline = json.loads(metrics_path.read_text(encoding="utf-8"))
    extra = details_path(metrics_path)
    details = json.loads(extra.read_text(encoding="utf-8")) if extra.is_file() else {}
    return merge(headline, details)
