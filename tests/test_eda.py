"""EDA stage: counts equal independent counts from the CSVs; report links resolve; CSV-only works."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lsdc import headline, schema
from lsdc import index as lsdc_index
from lsdc.eda import build as stage
from lsdc.eda import stats
from lsdc.ingest.build import build_index
from rsna_layout import AX_IOP, SAG_IOP, write_slice

SIZES = {"Sagittal T1": (40, 32), "Sagittal T2/STIR": (36, 36), "Axial T2": (32, 48)}
SLICES = 3


# ---------- hand-written CSV frames (the RSNA files) ----------

def make_csvs() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    ids = [101, 102, 103, 104]
    grades = rng.choice(schema.SEVERITIES, p=[0.6, 0.25, 0.15], size=(len(ids), 25)).astype(object)
    train = pd.DataFrame(grades, columns=list(schema.LABEL_COLUMNS))
    train.insert(0, "study_id", ids)
    train.loc[1, ["left_subarticular_stenosis_l1_l2", "right_subarticular_stenosis_l1_l2"]] = None
    train.loc[3, list(schema.LABEL_COLUMNS)] = "Normal/Mild"  # a study without any finding
    train.loc[2, "spinal_canal_stenosis_l4_l5"] = "Severe"
    desc = list(SIZES)
    series = pd.DataFrame(
        [(101, 11, desc[0]), (101, 12, desc[1]), (101, 13, desc[2]),
         (102, 21, desc[0]), (102, 22, desc[1]), (102, 23, desc[2]), (102, 24, desc[2]),
         (103, 31, desc[0]), (103, 32, desc[1]), (103, 33, desc[2]),
         (104, 41, desc[1]), (104, 42, desc[2])],
        columns=list(schema.SERIES_COLUMNS))
    test_series = pd.DataFrame([(201, 91 + i, d) for i, d in enumerate(desc)],
                               columns=list(schema.SERIES_COLUMNS))
    rows = []
    series_of = {(s, schema.PLANE_OF_DESCRIPTION[d]): sid for s, sid, d in series.itertuples(index=False)}
    # 101 complete, 102 misses 5, 103 has no coordinates, 104 (no Sagittal T1) has 15
    for study, n in ((101, 25), (102, 20), (104, 25)):
        for lab in schema.LABELS[:n]:
            plane = schema.PLANE_OF_CONDITION[lab.condition]
            if (study, plane) not in series_of:
                continue
            sid = series_of[(study, plane)]
            inst = 1 + schema.LEVELS.index(lab.level) % SLICES if plane == "ax_t2" else 2
            h, w = SIZES[schema.DESCRIPTION_OF_PLANE[plane]]
            rows.append((study, sid, inst, lab.condition, lab.level,
                         float(rng.uniform(2, w - 2)), float(rng.uniform(2, h - 2))))
    coords = pd.DataFrame(rows, columns=list(schema.COORDS_COLUMNS))
    return {"train": train, "coords": coords, "series": series, "test_series": test_series}


# ---------- the same data as index tables built by hand (edge cases; docs/data_formats.md) ----------

def index_from_csvs(csv: dict[str, pd.DataFrame], images: bool) -> lsdc_index.IndexTables:
    labels = csv["train"].melt(id_vars="study_id", var_name="column", value_name="severity")
    labels["condition"] = [schema.label_of_column(c).condition for c in labels["column"]]
    labels["level"] = [schema.label_of_column(c).level for c in labels["column"]]
    labels["severity_code"] = labels["severity"].map(schema.severity_code).astype("int8")
    series = pd.concat([csv["series"].assign(split="train"),
                        csv["test_series"].assign(split="test")], ignore_index=True)
    series["plane"] = series["series_description"].map(schema.PLANE_OF_DESCRIPTION)
    shape = series["series_description"].map(SIZES)
    series["rows"] = [s[0] if images else np.nan for s in shape]
    series["cols"] = [s[1] if images else np.nan for s in shape]
    series["n_instances"] = SLICES if images else 0
    studies = series.groupby(["study_id", "split"]).size().rename("n_series").reset_index()
    instances = pd.DataFrame(columns=list(lsdc_index.REQUIRED_COLUMNS["instances"]))
    if images:
        instances = pd.DataFrame([
            (s.study_id, s.series_id, s.split, k + 1,
             f"{s.split}_images/{s.study_id}/{s.series_id}/{k + 1}.dcm", s.rows, s.cols, k)
            for s in series.itertuples() for k in range(SLICES)],
            columns=list(lsdc_index.REQUIRED_COLUMNS["instances"]))
    coords = csv["coords"].merge(series[["study_id", "series_id", "plane", "rows", "cols"]],
                                 on=["study_id", "series_id"], how="left")
    codes = labels.set_index(["study_id", "condition", "level"])["severity_code"]
    coords["severity_code"] = [codes.get((s, c, lv), schema.IGNORE_INDEX) for s, c, lv in
                               coords[["study_id", "condition", "level"]].itertuples(index=False)]
    coords["in_image"] = (coords["x"] < coords["cols"]) if images else pd.NA
    coords["near_origin"] = (coords["x"] ** 2 + coords["y"] ** 2) < 100
    return lsdc_index.from_frames(studies=studies, series=series, instances=instances, labels=labels,
                              coords=coords)


def write_dicom(path: Path, number: int, description: str, rows: int, cols: int,
                rng: np.random.Generator) -> None:
    """One tiny uncompressed MR slice with RSNA-like geometry."""
    sagittal = description.startswith("Sagittal")
    write_slice(path, rows=rows, cols=cols, instance=number, description=description,
                iop=SAG_IOP if sagittal else AX_IOP,
                ipp=(4.0 * number, -10, 20) if sagittal else (-10, -10, -4.0 * number),
                pixels=rng.integers(0, 4096, (rows, cols), dtype=np.uint16))


def write_root(root: Path, csv: dict[str, pd.DataFrame], images: bool) -> Path:
    """An RSNA-layout root: the CSVs, and (if images) SLICES DICOM files per series."""
    root.mkdir(parents=True)
    csv["train"].to_csv(root / schema.TRAIN_CSV, index=False)
    csv["coords"].to_csv(root / schema.COORDS_CSV, index=False)
    csv["series"].to_csv(root / schema.TRAIN_SERIES_CSV, index=False)
    csv["test_series"].to_csv(root / schema.TEST_SERIES_CSV, index=False)
    if images:
        rng = np.random.default_rng(0)
        for folder, frame in ((schema.TRAIN_IMAGES, csv["series"]),
                              (schema.TEST_IMAGES, csv["test_series"])):
            for study, series, desc in frame.itertuples(index=False):
                for k in range(1, SLICES + 1):
                    write_dicom(root / folder / str(study) / str(series) / f"{k}.dcm", k, desc,
                                *SIZES[desc], rng)
    return root


def ingest_index(root: Path) -> lsdc_index.IndexTables:
    """The index as the ingest stage builds it, round-tripped through its parquet files."""
    build_index(root).write(root.parent / "index")
    return lsdc_index.load(root.parent / "index")


# ---------- fixtures: one report with images, one CSV-only ----------

@pytest.fixture(scope="module")
def csvs():
    return make_csvs()


@pytest.fixture(scope="module")
def full_report(csvs, tmp_path_factory):
    base = tmp_path_factory.mktemp("eda_full")
    root = write_root(base / "root", csvs, images=True)
    index = ingest_index(root)
    head = stage.run(index, root, base / "report", base / "metrics" / "eda.json",
                     max_scatter_points=50, seed=1)
    return base, head, index


@pytest.fixture(scope="module")
def csv_only_report(csvs, tmp_path_factory):
    base = tmp_path_factory.mktemp("eda_csv_only")
    root = write_root(base / "root", csvs, images=False)
    index = ingest_index(root)
    head = stage.run(index, root, base / "report", base / "eda.json")
    return base, head, index


# ---------- counts: EDA vs independent pandas on the CSVs ----------

def test_headline_equals_counts_from_csvs(csvs, full_report):
    _, head, index = full_report
    assert index.has_images and set(index.quarantine["kind"]) <= {"coord_near_origin"}
    train, coords, series = csvs["train"], csvs["coords"], csvs["series"]
    grades = train[list(schema.LABEL_COLUMNS)]
    per_grade = grades.stack().value_counts()
    assert head["studies"] == len(train) == 4
    assert head["label_cells"] == {
        "normal_mild": per_grade["Normal/Mild"], "moderate": per_grade["Moderate"],
        "severe": per_grade["Severe"], "missing": int(grades.isna().sum().sum())}
    assert head["label_cells"]["missing"] == 2
    assert head["studies_with_missing_label"] == int(grades.isna().any(axis=1).sum()) == 1
    assert head["coord_rows"] == len(coords) == 60
    per_study = coords.groupby("study_id").size().reindex(train["study_id"], fill_value=0)
    assert head["studies_coord_rows_not_25"] == int((per_study != 25).sum()) == 3
    assert head["studies_without_coords"] == 1
    severe, moderate = (grades == "Severe").any(axis=1), (grades == "Moderate").any(axis=1)
    assert head["studies_any_severe"] == int(severe.sum())
    assert head["studies_any_moderate"] == int(moderate.sum())
    assert head["studies_severe_and_moderate"] == int((severe & moderate).sum())
    spinal = train.filter(regex="^spinal_canal") == "Severe"
    assert head["any_severe_spinal_prevalence"] == pytest.approx(spinal.any(axis=1).mean())
    assert head["series_per_study"] == {
        str(k): int(v) for k, v in series.groupby("study_id").size().value_counts().items()}
    assert head["series_per_study"] == {"2": 1, "3": 2, "4": 1}
    shares = series["series_description"].value_counts(normalize=True)
    assert head["series_description_share"] == {
        schema.slug(d): pytest.approx(v) for d, v in shares.items()}
    assert head["studies_by_split"] == {"test": 1, "train": 4}
    near = np.hypot(coords["x"], coords["y"]) < 10  # ingest.near_origin_px default
    assert head["coords_near_origin"] == int(near.sum()) == 2
    assert head["coords_outside_image"] == 0


def test_grade_counts_per_condition_and_level_equal_csv(csvs, full_report):
    index = full_report[2]
    long = csvs["train"].melt(id_vars="study_id", var_name="column", value_name="grade")
    long["grade"] = long["grade"].fillna(stats.MISSING)
    long["level"] = long["column"].str[-5:].map(schema.LEVEL_OF_SLUG)
    expected = long.groupby(["level", "grade"]).size()
    got = stats.grade_counts(index.labels, ["level"])
    for (level, grade), n in expected.items():
        assert got.loc[level, grade] == n
    assert got.to_numpy().sum() == len(long) == 100
    by_cond = stats.grade_counts(index.labels, ["condition"])
    assert by_cond.loc["Left Subarticular Stenosis", stats.MISSING] == 1
    assert list(by_cond.index) == list(schema.CONDITIONS)


def test_metrics_json_matches_headline(full_report):
    base, head, _ = full_report
    written = json.loads((base / "metrics" / "eda.json").read_text())
    assert set(written) == {"studies", "studies_with_missing_label", "any_severe_spinal_prevalence"}
    assert headline.load(base / "metrics" / "eda.json") == json.loads(json.dumps(head))


def test_left_right_agreement_and_correlation():
    wide = pd.DataFrame(np.nan, index=[1, 2, 3], columns=list(schema.LABEL_COLUMNS))
    wide["left_neural_foraminal_narrowing_l1_l2"] = [0, 1, 2]
    wide["right_neural_foraminal_narrowing_l1_l2"] = [0, 1, 0]
    wide["left_subarticular_stenosis_l5_s1"] = [2, np.nan, 1]
    wide["right_subarticular_stenosis_l5_s1"] = [2, 0, 1]
    share, pairs = stats.left_right_agreement(wide)
    assert pairs == 5 and share == pytest.approx(4 / 5)
    wide["spinal_canal_stenosis_l1_l2"] = [0, 1, 2]
    wide["spinal_canal_stenosis_l2_l3"] = [0, 1, 2]
    corr = stats.label_correlation(wide, stats.condition_columns("Spinal Canal Stenosis"))
    assert corr.loc["spinal_canal_stenosis_l1_l2", "spinal_canal_stenosis_l2_l3"] == pytest.approx(1)


# ---------- the report ----------

ANALYSES = {  # analysis -> the PNGs that show it
    "labels": ["labels_by_condition.png", "labels_by_level.png", "label_shares.png"],
    "missing": ["missing_labels.png"],
    "correlation": ["correlation_all.png", "correlation_per_condition.png"],
    "per-study": ["grades_per_study.png"],
    "series": ["series_per_study.png"],
    "descriptions": ["series_descriptions.png"],
    "annotations": ["annotations_per_study.png"],
    "coords": ["coords_by_level.png", "coords_by_severity.png", "coords_density.png"],
    "sizes": ["image_sizes.png"],
    "examples": ["example_slices.png"],
}


def linked_files(html: str) -> set[str]:
    return set(re.findall(r'(?:src|href)="([^"#][^"]*)"', html))


def test_report_links_only_existing_files_and_every_analysis_has_a_png(full_report):
    base, _, _ = full_report
    html = (base / "report" / "index.html").read_text()
    links = linked_files(html)
    assert links, "the report links no figure"
    for name in links:
        assert not name.startswith(("/", "http")), f"non-relative link {name}"
        assert (base / "report" / name).is_file(), f"{name} linked but missing"
    for anchor, pngs in ANALYSES.items():
        assert f'id="{anchor}"' in html
        for png in pngs:
            assert png in links and (base / "report" / png).stat().st_size > 5000, png
    assert "Skipped" not in html
    assert "Study 101" in html  # first annotated train study is the default example


def test_summary_sentences_carry_the_data(csvs, full_report):
    base, head, _ = full_report
    html = (base / "report" / "index.html").read_text()
    assert f"{head['coord_rows']} coordinate rows" in html
    assert f"{head['studies_coord_rows_not_25']} of 4 labelled studies" in html
    assert "2 label cells are missing in 1 study," in html


def test_csv_only_root_reports_and_skips_image_sections(csv_only_report):
    base, head, index = csv_only_report
    assert not index.has_images
    report = base / "report"
    html = (report / "index.html").read_text()
    for name in linked_files(html):
        assert (report / name).is_file(), name
    assert not (report / "image_sizes.png").exists()
    assert not (report / "example_slices.png").exists()
    for anchor in ("sizes", "examples"):
        section = html.split(f'id="{anchor}"')[1].split("</section>")[0]
        assert "Skipped" in section and "CSV-only" in section
    assert "raw pixels" in html
    assert head["coords_outside_image"] == 0 and head["studies"] == 4


def test_label_free_and_coordinate_free_index_still_reports(tmp_path):
    empty_csvs = make_csvs()
    empty_csvs["train"] = empty_csvs["train"].iloc[:0]
    empty_csvs["coords"] = empty_csvs["coords"].iloc[:0]
    index = index_from_csvs(empty_csvs, images=False)
    head = stage.run(index, tmp_path, tmp_path / "r", tmp_path / "m.json")
    assert head["studies"] == 0 and head["coord_rows"] == 0
    assert head["any_severe_spinal_prevalence"] is None
    html = (tmp_path / "r" / "index.html").read_text()
    assert "No labelled training study" in html
    assert all((tmp_path / "r" / n).is_file() for n in linked_files(html))


# ---------- bad input ----------

def test_load_index_names_missing_file_and_column(tmp_path, csvs):
    with pytest.raises(FileNotFoundError, match="index folder not found"):
        lsdc_index.load(tmp_path / "nope")
    index = index_from_csvs(csvs, images=False)
    for name in lsdc_index.REQUIRED_COLUMNS:
        getattr(index, name).to_parquet(tmp_path / f"{name}.parquet")
    assert lsdc_index.load(tmp_path).labels.shape == index.labels.shape
    index.coords.drop(columns=["level"]).to_parquet(tmp_path / "coords.parquet")
    with pytest.raises(ValueError, match=r"coords\.parquet.*\['level'\]"):
        lsdc_index.load(tmp_path)
    (tmp_path / "labels.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"labels\.parquet"):
        lsdc_index.load(tmp_path)


def test_example_study_without_images_is_a_clear_error(csvs, tmp_path):
    index = index_from_csvs(csvs, images=True)
    with pytest.raises(ValueError, match="eda.example_study=999"):
        stage.run(index, tmp_path, tmp_path / "r", tmp_path / "m.json", example_study=999)


def _cli(argv, capsys) -> tuple[int, str]:
    from lsdc import cli

    rc = cli.main(argv)
    return rc, capsys.readouterr().err


def test_cli_eda_user_errors_are_one_line_rc_2_and_open_no_mlflow_run(full_report, tmp_path, monkeypatch,
                                                                        capsys):
    """Issue 16.4: a bad example study or a missing index folder end with one line and rc 2,
    and the MLflow store is not touched (inputs are checked before a run is opened)."""
    base, _, _ = full_report
    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("LSDC_TRACKING_URI", f"sqlite:///{db}")
    common = ["--set", f"data.root={base / 'root'}", "--out-dir", str(tmp_path / "report"),
              "--metrics", str(tmp_path / "eda.json")]
    rc, err = _cli(["eda", *common, "--set", "eda.example_study=999", "--index-dir", str(base / "index")], capsys)
    assert rc == 2 and err.startswith("lsdc eda: ") and "eda.example_study=999" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    rc, err = _cli(["eda", *common, "--index-dir", str(tmp_path / "no_index")], capsys)
    assert rc == 2 and err.strip() == f"lsdc eda: {tmp_path / 'no_index'}: index folder not found; run `lsdc ingest` first"
    assert not db.exists() and not (tmp_path / "eda.json").exists() and not (tmp_path / "report").exists()


def test_cli_eda_no_tracking_writes_the_report_without_mlflow(full_report, tmp_path, monkeypatch, capsys):
    base, head, _ = full_report
    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("LSDC_TRACKING_URI", f"sqlite:///{db}")
    rc, _ = _cli(["eda", "--no-tracking", "--set", f"data.root={base / 'root'}", "--set",
                  "eda.max_scatter_points=40", "--index-dir", str(base / "index"), "--out-dir",
                  str(tmp_path / "report"), "--metrics", str(tmp_path / "eda.json")], capsys)
    assert rc == 0 and not db.exists() and (tmp_path / "report" / stage.REPORT_FILE).is_file()
    assert json.loads((tmp_path / "eda.json").read_text())["studies"] == head["studies"]


# ---------- the CLI entry point with MLflow ----------

@pytest.mark.slow
def test_cli_eda_logs_an_mlflow_run(full_report, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from lsdc import cli

    base, head, _ = full_report
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("LSDC_TRACKING_URI", store)
    rc = cli.main(["eda", "--set", f"data.root={base / 'root'}", "--set", "eda.max_scatter_points=40",
                   "--index-dir", str(base / "index"), "--out-dir", str(tmp_path / "report"),
                   "--metrics", str(tmp_path / "eda.json")])
    assert rc == 0
    assert json.loads((tmp_path / "eda.json").read_text())["studies"] == head["studies"]
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.stage = 'eda'")
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["metrics.studies"] == 4
    assert run["metrics.label_cells/missing"] == 2
    assert run["params.eda.max_scatter_points"] == "40"
