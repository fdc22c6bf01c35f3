"""The README's reproducibility promises, proven on the tiny pipeline: only what changed re-runs,
same seed -> same outputs, experiments and queues log to one MLflow store, push/pull round trip."""

from __future__ import annotations

import json
import shutil
import subprocess

import mlflow
import pytest
import yaml

from tests import e2e

pytestmark = pytest.mark.slow

PLANES = ("sag_t1", "sag_t2", "ax_t2")
TRAINED = {f"train_detector@{p}" for p in PLANES}
EVALUATED = {f"evaluate_detector@{p}" for p in PLANES}
AFTER_DETECTORS = {"extract_rois", "train_classifier", "evaluate", "predict"}
NAMING = {"evaluate_naming"}  # the stress-set table: reads the detectors and detect.infer/anatomy/evaluate

# params.yaml edit -> the stages DVC must re-run (that stage and its descendants, nothing else)
CHANGES = {
    "synth": ("synth.reader_noise", 0.3, None),  # None = every stage
    "eda": ("eda.max_scatter_points", 12345, {"eda"}),
    "detect": ("detect.train.epochs", 2, TRAINED | EVALUATED | AFTER_DETECTORS | NAMING),
    # an inference threshold re-measures the detectors and re-crops, but never retrains them
    "infer": ("detect.infer.conf", 0.1, EVALUATED | AFTER_DETECTORS | NAMING),
    "evaluate_detector": ("detect.evaluate.within_mm", 4.0, EVALUATED | NAMING),
    "naming": ("naming.studies", 2, NAMING),
    "rois": ("rois.crop_mm.sag_t2", 44.0, AFTER_DETECTORS),
    "train": ("train.lr", 0.003, {"train_classifier", "evaluate", "predict"}),  # != the default 0.002
    # speed-only settings re-run nothing
    "runtime_workers": ("runtime.workers", 1, set()),
    "runtime_device": ("runtime.train_device", "cpu", set()),
}


def _set_param(repo, dotted, value):
    path = repo / "params.yaml"
    text = path.read_text()
    e2e.run(repo, "python", "-m", "lsdc.cli", "profile", _write_profile(repo, {dotted: value}))
    return path, text


def _write_profile(repo, overrides):
    raw: dict = {}
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    f = repo.parent / "scratch_profile.yaml"
    f.write_text(yaml.safe_dump(raw))
    return str(f)


def _dry(repo) -> set[str]:
    """Stages DVC would run: the changed ones plus everything downstream of them (a dry run
    executes nothing, so without --force-downstream it could not know outputs will change)."""
    return set(e2e.repro(repo, "--dry", "--force-downstream"))


@pytest.mark.parametrize("group", sorted(CHANGES))
def test_param_change_reruns_exactly_its_stage_and_descendants(tiny_repo, group):
    repo, ran_first = tiny_repo
    dotted, value, expected = CHANGES[group]
    path, text = _set_param(repo, dotted, value)
    try:
        assert _dry(repo) == (set(ran_first) if expected is None else expected)
        if expected == set():
            status = e2e.run(repo, "dvc", "status").stdout
            assert "up to date" in status, status
    finally:
        path.write_text(text)
    assert _dry(repo) == set()


def test_predict_param_change_reruns_only_predict(tiny_repo):
    repo, _ = tiny_repo
    p = yaml.safe_load((repo / "params.yaml").read_text())
    key = next(iter(p["predict"]))
    value = p["predict"][key]
    new = (value + 0.5) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if new == value:
        pytest.fail(f"predict.{key} is not numeric; extend this test")
    path, text = _set_param(repo, f"predict.{key}", new)
    try:
        assert _dry(repo) == {"predict"}
    finally:
        path.write_text(text)


@pytest.mark.parametrize(
    "module,stage",
    [("src/lsdc/eda/report.py", {"eda"}), ("src/lsdc/classify/model.py", {"train_classifier", "evaluate", "predict"})],
)
def test_editing_a_module_reruns_its_stage(tiny_repo, module, stage):
    repo, _ = tiny_repo
    path = repo / module
    text = path.read_text()
    path.write_text(text + "\n# touched by a test\n")
    try:
        assert stage <= _dry(repo)
    finally:
        path.write_text(text)
    assert _dry(repo) == set()


def _lock_outs(repo) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {
        f"{name}:{o['path']}": o.get("md5", "")
        for name, st in lock["stages"].items()
        for o in st.get("outs", [])
    }


def test_same_seed_gives_byte_identical_outs_in_another_directory(tiny_repo, tmp_path):
    """A second clone at another path, another depth, re-runs the pipeline: every out (models,
    ROI store, reports, metrics) has the same md5, so dvc.lock comes out identical."""
    repo, _ = tiny_repo
    again = e2e.copy_repo(tmp_path / "somewhere" / "else" / "clone")
    assert e2e.repro(again)
    a, b = _lock_outs(repo), _lock_outs(again)
    assert len(a) > 20 and a.keys() == b.keys()
    differ = sorted(k for k in a if a[k] != b[k])
    assert not differ, f"outs that differ between two runs of the same seed: {differ}"
    assert yaml.safe_load((repo / "dvc.lock").read_text()) == yaml.safe_load((again / "dvc.lock").read_text())


def test_experiments_and_queue_land_in_one_mlflow_store(tiny_repo):
    repo, _ = tiny_repo
    e2e.run(repo, "dvc", "exp", "run", "-n", "ep2", "-S", "train.epochs=2")
    e2e.run(repo, "dvc", "exp", "run", "--queue", "-S", "train.lr=0.003,0.0005")
    e2e.run(repo, "dvc", "queue", "start", "-j", "1")
    _wait_queue(repo)
    shown = json.loads(e2e.run(repo, "dvc", "exp", "show", "--json").stdout)
    names = _exp_names(shown)
    assert "ep2" in names and len(names) >= 3
    mlflow.set_tracking_uri(f"sqlite:///{repo}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["lsdc"], output_format="list")
    tagged = {r.data.tags.get("dvc_exp_name") for r in runs if r.data.tags.get("stage") == "train_classifier"}
    assert set(names) <= tagged


def _wait_queue(repo, timeout=1800):
    import time

    start = time.time()
    while time.time() - start < timeout:
        out = e2e.run(repo, "dvc", "queue", "status").stdout
        if "Queued" not in out and "Running" not in out:
            assert "Failed" not in out, out
            return
        if "Running" not in out and "0 active" in out:  # the worker left with tasks queued
            e2e.run(repo, "dvc", "queue", "start", "-j", "1")
        time.sleep(5)
    raise AssertionError("dvc queue did not finish")


def _exp_names(shown) -> list[str]:
    names = []
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            if exp.get("name"):
                names.append(exp["name"])
    return names


def test_push_clone_pull_round_trip(tiny_repo, tmp_path):
    repo, _ = tiny_repo
    remote = tmp_path / "remote"
    e2e.run(repo, "dvc", "remote", "modify", "--local", "local", "url", str(remote))
    e2e.run(repo, "dvc", "push")
    e2e.run(repo, "git", "add", "-A")
    e2e.run(repo, "git", "commit", "-qm", "pipeline outputs", check=False)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    e2e.run(clone, "dvc", "remote", "modify", "--local", "local", "url", str(remote))
    e2e.run(clone, "dvc", "pull")
    assert "up to date" in e2e.run(clone, "dvc", "status").stdout
    assert _lock_outs(clone) == _lock_outs(repo)
    a = (repo / "data/processed/submission.csv").read_bytes()
    assert (clone / "data/processed/submission.csv").read_bytes() == a
    shutil.rmtree(clone)
