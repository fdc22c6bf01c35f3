"""evaluate stage: cv.json equals lsdc.metrics on the OOF file; every plot is written."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from classify_fakes import labels_long
from lsdc import evaluate, headline, metrics, params, schema
from lsdc.classify import oof as oof_table
from lsdc.classify import plots
from lsdc.classify.engine import CSV_COLUMNS
from lsdc.predict import submission

ROOT = Path(__file__).resolve().parents[1]


def write_oof_inputs(root: Path, n: int = 15, seed: int = 0) -> tuple[evaluate.Paths, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.arange(100, 100 + n)
    y = rng.choice(3, size=(n, 25), p=[0.6, 0.25, 0.15])
    y[0, 3] = y[4, 20] = schema.IGNORE_INDEX
    folds = np.arange(n) % 3
    probs = rng.dirichlet([2, 1, 1], size=(n, 25))
    paths = evaluate.Paths(oof=root / "oof.parquet", labels=root / "labels.parquet", curves=root / "curves",
                           cv=root / "metrics" / "cv.json", plots=root / "plots",
                           train_oracle=root / "train_oracle.csv")
    oracle = np.full((n, 25, 3), 0.05)  # an oracle that knows the grades (nearly)
    np.put_along_axis(oracle, np.clip(y, 0, 2)[..., None], 0.9, axis=-1)
    submission.build_frame(ids, oracle).to_csv(paths.train_oracle, index=False)
    labels_long(ids, y).to_parquet(paths.labels, index=False)
    oof_table.to_frame(ids, folds, probs).sample(frac=1, random_state=0).to_parquet(paths.oof, index=False)
    paths.curves.mkdir()
    for k in range(3):
        curve = pd.DataFrame({c: np.linspace(1, 0.5, 4) for c in CSV_COLUMNS})
        curve["epoch"] = range(4)
        curve.to_csv(paths.curves / f"fold_{k}.csv", index=False)
    return paths, y, probs, folds


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        mp.setenv("LSDC_TRACKING_URI", (root / "mlruns").as_uri())
        paths, y, probs, folds = write_oof_inputs(root)
        result = evaluate.run(params.load(ROOT / "params.yaml"), paths)
    return root, paths, y, probs, folds, result


def test_cv_json_equals_the_metric_on_the_oof_file(evaluated):
    _, paths, y, probs, folds, _ = evaluated
    cv = headline.load(paths.cv)
    want = metrics.competition_score(y, probs)
    assert cv["n_studies"] == 15
    assert cv["score"] == pytest.approx(want.as_dict(), rel=1e-12)
    for k in range(3):
        rows = folds == k
        assert cv["per_fold"][f"fold_{k}"]["score"]["total"] == pytest.approx(
            metrics.competition_score(y[rows], probs[rows]).total, rel=1e-12)
    report = metrics.classification_report(y, probs)
    assert cv["classification"]["spinal_canal_stenosis"]["f1_macro"] == pytest.approx(
        report["spinal_canal_stenosis"]["f1_macro"])
    assert cv["classification"]["overall"]["accuracy"] == pytest.approx(report["overall"]["accuracy"])


def test_skill_against_the_train_oracle_with_a_bootstrap_interval(evaluated):
    root, paths, y, probs, folds, _ = evaluated
    cv = headline.load(paths.cv)
    oracle = metrics.probs_from_submission(pd.read_csv(paths.train_oracle), np.arange(100, 115))
    prior = evaluate.oof_prior(y, folds, params.load(ROOT / "params.yaml").evaluate.prior_pseudocount)
    want = metrics.normalised_skill(y, probs, prior, oracle)
    assert cv["normalised_skill"] == pytest.approx(want, rel=1e-12)
    assert cv["oracle"]["total"] == pytest.approx(metrics.competition_score(y, oracle).total)
    low, high = cv["skill_ci95"]["low"], cv["skill_ci95"]["high"]
    assert low < want < high and cv["skill_bootstrap"]["se"] > 0
    head = json.loads(paths.cv.read_text())
    assert set(head) == {"score", "prior", "normalised_skill", "skill_ci95"}  # 3 skill figures in the headline


def test_accuracy_heatmap_row_labels_fit_in_the_figure():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, (20, 25))
    fig = plots.accuracy_heatmap_figure(y, rng.dirichlet([1, 1, 1], size=(20, 25)))
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [plots.SHORT_CONDITION[c] for c in schema.CONDITIONS]
    renderer = fig.canvas.get_renderer()
    for t in ax.get_yticklabels():
        assert t.get_window_extent(renderer).x0 >= 0  # not cut off at the left edge
    plots.plt.close(fig)


def test_prior_is_fitted_out_of_fold_on_the_same_rows(evaluated):
    _, paths, y, _, folds, _ = evaluated
    cv = headline.load(paths.cv)
    pc = params.load(ROOT / "params.yaml").evaluate.prior_pseudocount
    prior = np.empty((len(y), 25, 3))
    for k in range(3):
        rows = folds == k
        prior[rows] = metrics.best_constant_prior(y[~rows], pseudocount=pc)
    assert cv["prior"]["total"] == pytest.approx(metrics.competition_score(y, prior).total, rel=1e-12)
    rows = folds == 2
    assert cv["per_fold"]["fold_2"]["prior"]["total"] == pytest.approx(
        metrics.competition_score(y[rows], prior[rows]).total, rel=1e-12)


def test_every_plot_is_written_and_logged(evaluated):
    root, paths, *_ = evaluated
    for name in evaluate.PLOT_FILES:
        path = paths.plots / name
        assert path.exists() and path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000
    mlflow.set_tracking_uri((root / "mlruns").as_uri())
    runs = mlflow.search_runs(experiment_names=["lsdc"])
    assert runs["tags.stage"].tolist() == ["evaluate"]
    assert runs["metrics.score/total"].iloc[0] == pytest.approx(evaluated[-1]["score"]["total"])
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(runs["run_id"].iloc[0], "plots")]
    assert sorted(Path(a).name for a in artifacts) == sorted(evaluate.PLOT_FILES)


def test_accuracy_grid_and_confusion_by_hand():
    y = np.zeros((2, 25), dtype=np.int64)
    y[1, 0] = 2
    y[0, 1] = schema.IGNORE_INDEX
    probs = np.zeros((2, 25, 3))
    probs[..., 0] = 1.0
    grid = plots.accuracy_grid(y, probs)
    assert grid[0, 0] == 0.5 and grid[0, 2] == 1.0 and grid[0, 1] == 1.0
    mat = plots.confusion(y, probs, schema.CONDITIONS[0])
    assert mat[0, 0] == 10 - 1 - 1 and mat[2, 0] == 1 and mat.sum() == 9


def test_oof_with_nan_is_rejected_naming_the_file(tmp_path):
    paths, *_ = write_oof_inputs(tmp_path, n=6)
    frame = pd.read_parquet(paths.oof)
    frame.iloc[2, 5] = np.nan
    frame.to_parquet(paths.oof)
    with pytest.raises(ValueError, match="oof.parquet: 1 studies without finite"):
        evaluate.run(params.load(ROOT / "params.yaml"), paths)
