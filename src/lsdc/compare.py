"""`lsdc compare`: the classifier designs side by side, from the metrics files of `dvc exp` runs.

Each design is one DVC experiment (e.g. `dvc exp run -n design-crops -S train.layout=crops`).
An experiment is a git commit under refs/exps whose tree holds the metrics files DVC
tracks in git (`cache: false`: metrics/cv.json, metrics/test.json and their details), so
every figure is read from the committed files of that experiment, never typed:

  out-of-fold   metrics/cv.json (+ details): score, normalised skill and its 95 % interval,
                the four terms, per-condition accuracy
  test          metrics/test.json (+ details): score, normalised skill and its interval
  training time MLflow (wall-clock must stay out of DVC-tracked files): the finished
                top-level `train_classifier` run tagged with the experiment's name
                (DVC sets DVC_EXP_NAME; lsdc.tracking tags it as dvc_exp_name)

Writes metrics/designs.json (committed, no DVC out: it holds times) and
docs/figures/designs.png (skill with intervals, score terms and per-condition accuracy of every
design); `lsdc report` renders the README's design table from metrics/designs.json.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lsdc import headline, jsonio, schema
from lsdc import paths as lsdc_paths
from lsdc.errors import UserError

log = logging.getLogger(__name__)

STAGE = "train_classifier"
TERMS = ("spinal", "foraminal", "subarticular", "any_severe_spinal", "total")
CV_FILE, TEST_FILE = "metrics/cv.json", "metrics/test.json"
DESIGNS_FILE = lsdc_paths.METRICS_DIR / "designs.json"
FIGURE = Path("docs") / "figures" / "designs.png"  # committed beside the README (reports/ is DVC-only)
PARAM_KEYS = ("train.layout", "model.name", "train.loss", "train.epochs", "train.lr", "train.batch_size")


def _git(args: Sequence[str], repo: Path) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def experiment_revs(repo: Path = Path(".")) -> dict[str, str]:
    """{experiment name: commit} of every DVC experiment in the repository (refs/exps)."""
    refs = _git(["for-each-ref", "--format=%(refname) %(objectname)", "refs/exps"], repo)
    out = {}
    for line in refs.splitlines():
        ref, sha = line.split()
        out[ref.rsplit("/", 1)[-1]] = sha
    return out


def _show_json(repo: Path, rev: str | None, path: str) -> dict[str, Any] | None:
    """A metrics file merged with its details, at a commit (None = the working tree)."""
    if rev is None:
        return headline.load(repo / path) if (repo / path).is_file() else None
    try:
        head = json.loads(_git(["show", f"{rev}:{path}"], repo))
    except RuntimeError:
        return None
    try:
        details = json.loads(_git(["show", f"{rev}:{headline.details_path(path).as_posix()}"], repo))
    except RuntimeError:
        details = {}
    return headline.merge(head, details)


def _params(repo: Path, rev: str | None) -> dict[str, Any]:
    text = (repo / "params.yaml").read_text() if rev is None else _git(["show", f"{rev}:params.yaml"], repo)
    raw = yaml.safe_load(text)
    out = {}
    for key in PARAM_KEYS:
        node: Any = raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        out[key] = node
    return out


def training_seconds(tracking_uri: str | None, experiment: str, exp_names: Sequence[str]) -> dict[str, float]:
    """{dvc experiment name: seconds of its latest finished train_classifier parent run}."""
    if not tracking_uri:
        return {}
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        log.warning("no MLflow experiment %r in %s: training times left out", experiment, tracking_uri)
        return {}
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.stage = '{STAGE}' and "
                              "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"],
                              max_results=5000)
    out: dict[str, float] = {}
    for run in runs:
        tags = run.data.tags
        name = tags.get("dvc_exp_name")
        if name in exp_names and name not in out and "mlflow.parentRunId" not in tags and run.info.end_time:
            out[name] = round((run.info.end_time - run.info.start_time) / 1000, 1)
    return out


def design_row(name: str, params: Mapping[str, Any], cv: Mapping[str, Any] | None,
               test: Mapping[str, Any] | None, seconds: float | None) -> dict[str, Any]:
    """One design's figures, as they stand in its metrics files (None where absent)."""
    cv, test = cv or {}, test or {}
    acc = {c: cv.get("classification", {}).get(c, {}).get("accuracy") for c in schema.CONDITION_SLUGS}
    return {
        "experiment": name, "params": dict(params),
        "oof": {"score": cv.get("score", {}).get("total"), "terms": {t: cv.get("score", {}).get(t) for t in TERMS},
                "prior": cv.get("prior", {}).get("total"), "skill": cv.get("normalised_skill"),
                "skill_ci95": cv.get("skill_ci95"), "accuracy": acc},
        "test": {"score": test.get("model", {}).get("total"), "skill": test.get("normalised_skill"),
                 "skill_ci95": test.get("skill_ci95"), "n_studies": test.get("n_studies")},
        "train_seconds": seconds,
    }


def collect(names: Sequence[str], repo: Path = Path("."), tracking_uri: str | None = None,
            experiment: str = "lsdc", workspace: bool = False) -> list[dict[str, Any]]:
    """Rows of the named experiments (and the working tree's files when `workspace`)."""
    revs = experiment_revs(repo)
    unknown = [n for n in names if n not in revs]
    if unknown:
        raise UserError(f"no DVC experiment named {unknown}; known: {sorted(revs)} (`dvc exp list`)")
    seconds = training_seconds(tracking_uri, experiment, list(names))
    rows = [design_row(n, _params(repo, revs[n]), _show_json(repo, revs[n], CV_FILE),
                       _show_json(repo, revs[n], TEST_FILE), seconds.get(n)) for n in names]
    if workspace:
        rows.append(design_row("workspace", _params(repo, None), _show_json(repo, None, CV_FILE),
                               _show_json(repo, None, TEST_FILE), None))
    missing = [r["experiment"] for r in rows if r["oof"]["score"] is None]
    if missing:
        log.warning("no metrics/cv.json in %s: their rows are empty", missing)
    return rows


# ---------------------------------------------------------------- table and figure

def _num(x: Any, fmt: str = ".3f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _skill(s: Any, ci: Any) -> str:
    if s is None:
        return "n/a"
    if not ci or ci.get("low") is None:
        return f"{s:.2f}"
    return f"{s:.2f} [{ci['low']:.2f}, {ci['high']:.2f}]"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: one row per design (lower scores are better; skill 0 = prior, 1 = oracle)."""
    if not rows:
        return ("No design comparison recorded yet: run the three `dvc exp` designs, then "
                "`lsdc compare <names>` writes `metrics/designs.json`.")
    lines = ["| design (train.layout) | experiment | backbone | out-of-fold score | out-of-fold skill [95 % CI] "
             "| test score | test skill [95 % CI] | training time |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['params'].get('train.layout')} | `{r['experiment']}` | {r['params'].get('model.name')} "
                     f"| {_num(r['oof']['score'])} | {_skill(r['oof']['skill'], r['oof']['skill_ci95'])} "
                     f"| {_num(r['test']['score'])} | {_skill(r['test']['skill'], r['test']['skill_ci95'])} "
                     f"| {_duration(r['train_seconds'])} |")
    return "\n".join(lines)


def plot(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Three panels, one colour per design: normalised skill (OOF and test) with 95 % intervals,
    the OOF score's four terms and total, and OOF accuracy per condition."""
    from lsdc.classify import plots

    plt = plots.plt
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    n = max(len(rows), 1)
    width = 0.8 / n
    for i, r in enumerate(rows):
        label = f"{r['params'].get('train.layout')} ({r['experiment']})"
        off = (i - (n - 1) / 2) * width
        color = f"C{i % 10}"
        for x, part in enumerate(("oof", "test")):
            s, ci = r[part]["skill"], r[part]["skill_ci95"]
            if s is None:
                continue
            err = None if not ci or ci.get("low") is None else [[s - ci["low"]], [ci["high"] - s]]
            axes[0].bar(x + off, s, width, yerr=err, capsize=4, color=color, label=label if x == 0 else None)
        terms = [r["oof"]["terms"].get(t) for t in TERMS]
        axes[1].bar(np.arange(len(TERMS)) + off, [np.nan if v is None else v for v in terms], width, color=color,
                    label=label)
        acc = [r["oof"]["accuracy"].get(c) for c in schema.CONDITION_SLUGS]
        axes[2].bar(np.arange(len(acc)) + off, [np.nan if v is None else v for v in acc], width, color=color,
                    label=label)
    axes[0].set_xticks([0, 1], ["out-of-fold", "test"])
    axes[0].set_ylabel("normalised skill (0 = constant prior, 1 = oracle)")
    axes[0].set_title("Skill with bootstrap 95 % interval")
    axes[1].set_xticks(range(len(TERMS)), ["spinal", "foraminal", "subarticular", "any severe", "total"])
    axes[1].set_title("Out-of-fold competition score (lower is better)")
    axes[2].set_xticks(range(len(schema.CONDITIONS)), [plots.SHORT_CONDITION[c] for c in schema.CONDITIONS],
                       rotation=20, ha="right")
    axes[2].set_ylim(0, 1)
    axes[2].set_title("Out-of-fold accuracy per condition")
    for ax in axes:
        ax.legend(fontsize=7)
    return plots._save(fig, path)


def run(names: Sequence[str], repo: Path = Path("."), tracking_uri: str | None = None, experiment: str = "lsdc",
        workspace: bool = False, out: Path = DESIGNS_FILE, figure: Path = FIGURE) -> list[dict[str, Any]]:
    rows = collect(names, repo, tracking_uri, experiment, workspace)
    jsonio.write_json(out, jsonio.finite({"designs": rows}))
    plot(rows, figure)
    log.info("%d design(s) -> %s, %s", len(rows), out, figure)
    return rows
