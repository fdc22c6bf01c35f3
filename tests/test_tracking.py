"""MLflow glue: runs land in the project's store with params, metrics and tags."""

from pathlib import Path

import mlflow
import pytest

from lsdc import params, tracking

ROOT = Path(__file__).resolve().parents[1]


def test_project_root_of_a_queued_experiment_workspace(tmp_path):
    ws = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc123"
    ws.mkdir(parents=True)
    assert tracking.project_root(ws) == (tmp_path / "repo").resolve()
    assert tracking.project_root(tmp_path) == tmp_path.resolve()


def test_relative_store_resolves_to_absolute_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("LSDC_TRACKING_URI", raising=False)
    assert tracking.resolve_uri("mlflow.db", root=tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking.resolve_uri("http://host:5000") == "http://host:5000"


def test_clean_metrics_flattens_and_drops_non_finite():
    out = tracking.clean_metrics({"a": 1, "b": {"c": 2.5, "d": float("nan")}, "e": "x", "f": True})
    assert out == {"a": 1.0, "b/c": 2.5, "f": 1.0}


def test_stage_run_logs_params_metrics_and_tags(tmp_path, monkeypatch):
    monkeypatch.setenv("LSDC_TRACKING_URI", f"sqlite:///{tmp_path}/store.db")
    monkeypatch.setenv("DVC_EXP_NAME", "exp-test")
    p = params.load(ROOT / "params.yaml")
    with tracking.stage_run("unit", p) as run:
        tracking.log_metrics({"score": 0.5, "nested": {"n": 3}})
        tracking.log_metrics({"loss": 1.0}, step=1)
        with tracking.stage_run("unit", p, run_name="fold_0", nested=True) as child:
            tracking.log_metrics({"fold_score": 0.25})
    got = mlflow.get_run(run.info.run_id)
    assert got.data.metrics["score"] == 0.5 and got.data.metrics["nested/n"] == 3
    assert got.data.params["synth.n_train"] == str(p.synth.n_train)
    assert got.data.tags["stage"] == "unit" and got.data.tags["dvc_exp_name"] == "exp-test"
    kid = mlflow.get_run(child.info.run_id)
    assert kid.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert kid.data.metrics["fold_score"] == pytest.approx(0.25)
    exp = mlflow.get_experiment(got.info.experiment_id)
    assert exp.name == p.tracking.experiment
    assert exp.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"  # mlflow ui opens on runs


def test_existing_experiment_is_marked_as_model_training_on_first_use(tmp_path, monkeypatch):
    """A store made before the tag existed (or by plain mlflow) gets it when a stage uses it."""
    uri = f"sqlite:///{tmp_path}/store.db"
    monkeypatch.setenv("LSDC_TRACKING_URI", uri)
    p = params.load(ROOT / "params.yaml")
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment(p.tracking.experiment)
    assert tracking.EXPERIMENT_KIND_TAG not in client.get_experiment(exp_id).tags
    with tracking.stage_run("unit", p) as run:
        pass
    assert run.info.experiment_id == exp_id
    assert client.get_experiment(exp_id).tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
