"""lsdc compare: design rows read from each dvc experiment's committed metrics files, MLflow times,
the README table and the figure."""

import json
import subprocess
from pathlib import Path

import mlflow
import pytest
import yaml

from lsdc import compare, headline, report
from lsdc.errors import UserError

DESIGNS = {"crops": (0.40, 0.85, 0.80), "anatomical": (0.60, 0.42, 0.20), "notebook": (0.65, 0.35, 0.15)}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def exp_commit(repo: Path, layout: str, oof: float, oof_skill: float, test_skill: float) -> None:
    """A commit under refs/exps as `dvc exp run` leaves it: params.yaml and the git-tracked metrics."""
    (repo / "params.yaml").write_text(yaml.safe_dump({"model": {"name": "m"}, "train": {"layout": layout}}))
    cv = {"score": {"total": oof, "spinal": oof - 0.1, "foraminal": oof, "subarticular": oof + 0.1,
                    "any_severe_spinal": oof}, "prior": {"total": 0.8}, "normalised_skill": oof_skill,
          "skill_ci95": {"low": oof_skill - 0.05, "high": oof_skill + 0.05}, "n_studies": 160,
          "classification": {"spinal_canal_stenosis": {"accuracy": 0.7}}}
    test = {"n_studies": 200, "model": {"total": oof + 0.05}, "normalised_skill": test_skill,
            "skill_ci95": {"low": test_skill - 0.04, "high": test_skill + 0.04}}
    headline.write("cv", cv, repo / "metrics" / "cv.json")
    headline.write("test", test, repo / "metrics" / "test.json")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", layout)
    git(repo, "update-ref", f"refs/exps/ab/cdef/design-{layout}", git(repo, "rev-parse", "HEAD"))


@pytest.fixture
def repo(tmp_path, monkeypatch):
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@t")
    git(tmp_path, "config", "user.name", "t")
    for layout, figs in DESIGNS.items():
        exp_commit(tmp_path, layout, *figs)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("lsdc")
    for i, layout in enumerate(DESIGNS):
        with mlflow.start_run(tags={"stage": "train_classifier", "dvc_exp_name": f"design-{layout}"}) as run:
            pass
        mlflow.MlflowClient(uri).set_terminated(run.info.run_id, end_time=run.info.start_time + 1000 * (60 + i))
    tags = {"stage": "train_classifier", "dvc_exp_name": "design-crops"}
    # a newer parent that fails and its nested fold run: neither is the design's time
    with mlflow.start_run(tags=tags), mlflow.start_run(nested=True, tags=tags):
        pass
    mlflow.MlflowClient(uri).set_terminated(mlflow.last_active_run().info.run_id, status="FAILED")
    return tmp_path, uri


def test_rows_come_from_each_experiments_files_and_mlflow(repo):
    root, uri = repo
    names = [f"design-{d}" for d in DESIGNS]
    rows = compare.run(names, root, uri, "lsdc", out=root / "designs.json", figure=root / "designs.png")
    assert [r["params"]["train.layout"] for r in rows] == list(DESIGNS)
    for r, (oof, oof_skill, test_skill) in zip(rows, DESIGNS.values()):
        assert r["oof"]["score"] == oof and r["oof"]["skill"] == oof_skill
        assert r["oof"]["skill_ci95"] == {"low": pytest.approx(oof_skill - 0.05), "high": pytest.approx(oof_skill + 0.05)}
        assert r["test"]["skill"] == test_skill and r["test"]["n_studies"] == 200
        assert r["oof"]["accuracy"]["spinal_canal_stenosis"] == 0.7  # from cv.details.json
    assert [r["train_seconds"] for r in rows] == [60.0, 61.0, 62.0]
    assert (root / "designs.png").stat().st_size > 10_000
    md = report.designs_block(json.loads((root / "designs.json").read_text()))
    assert "| crops | `design-crops` | m | 0.400 | 0.85 [0.80, 0.90] | 0.450 | 0.80 [0.76, 0.84] | 1 min 00 s |" in md


def test_unknown_experiment_is_a_user_error(repo):
    with pytest.raises(UserError, match="no DVC experiment named"):
        compare.collect(["nope"], repo[0])


def test_no_designs_yet_says_how_to_make_them():
    assert "lsdc compare" in report.designs_block(None)
