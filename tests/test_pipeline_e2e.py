"""The real DVC pipeline on the tiny profile: every stage runs, logs, and re-runs only when it should."""

from __future__ import annotations

import json

import mlflow
import pytest
import yaml

from tests import e2e

pytestmark = pytest.mark.slow


def _stage_names(repo):
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    p = yaml.safe_load((repo / "params.yaml").read_text())
    names = []
    for name, st in dvc["stages"].items():
        if "foreach" in st:
            items = st["foreach"]
            if isinstance(items, str):
                node = p
                for part in items.strip("${} ").split("."):
                    node = node[part]
                items = node
            names += [f"{name}@{i}" for i in items]
        else:
            names.append(name)
    return names


def test_first_repro_runs_every_stage(tiny_repo):
    repo, ran = tiny_repo
    assert sorted(ran) == sorted(_stage_names(repo))
    assert (repo / "dvc.lock").exists()


def test_second_repro_runs_nothing(tiny_repo):
    repo, _ = tiny_repo
    assert e2e.repro(repo) == []
    status = e2e.run(repo, "dvc", "status").stdout
    assert "up to date" in status


def test_every_stage_logged_an_mlflow_run(tiny_repo):
    repo, ran = tiny_repo
    mlflow.set_tracking_uri(f"sqlite:///{repo}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["lsdc"], output_format="list")
    stages = {r.data.tags.get("stage") for r in runs}
    expected = {name.replace("@", "@") for name in ran}
    assert expected <= stages, f"missing MLflow runs for {expected - stages}"
    ingest = [r for r in runs if r.data.tags.get("stage") == "ingest"][0]
    assert ingest.data.params["data.root"] == "data/synthetic"
    assert ingest.data.metrics, "ingest logged no metrics"
    assert all(r.data.tags.get("git_commit") for r in runs)


def test_metrics_show_lists_stage_metrics(tiny_repo):
    repo, _ = tiny_repo
    out = json.loads(e2e.run(repo, "dvc", "metrics", "show", "--json").stdout)
    files = set()
    for rev in out.values():
        for fname in rev.get("data", {}):
            files.add(fname)
    for name in ("metrics/synth.json", "metrics/ingest.json", "metrics/eda.json"):
        assert name in files


def test_eda_param_change_reruns_only_eda(tiny_repo):
    repo, _ = tiny_repo
    p = repo / "params.yaml"
    text = p.read_text()
    p.write_text(text.replace("max_scatter_points: 20000", "max_scatter_points: 19999"))
    try:
        assert e2e.repro(repo) == ["eda"]
    finally:
        p.write_text(text)
        e2e.repro(repo)
