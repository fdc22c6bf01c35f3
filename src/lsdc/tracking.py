"""MLflow glue, in one place: every stage logs one run to the project's store.

The store is `tracking.uri` from params.yaml: a sqlite file path (resolved against
the project root, so runs of queued `dvc exp run` workspaces under `.dvc/tmp/exps/`
land in the same store) or any MLflow URI. `LSDC_TRACKING_URI` overrides it (tests).
Runs are tagged with the stage, the git commit and `DVC_EXP_NAME` when DVC sets it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lsdc.params import Params

log = logging.getLogger(__name__)

ARTIFACTS_DIRNAME = "mlartifacts"
_EXPS_MARKER = os.sep + os.path.join(".dvc", "tmp", "exps") + os.sep


def project_root(cwd: Path | None = None) -> Path:
    """The repository root: cwd, or the repo owning a DVC queue workspace under .dvc/tmp/exps/."""
    here = str((cwd or Path.cwd()).resolve())
    if _EXPS_MARKER in here + os.sep:
        return Path((here + os.sep).split(_EXPS_MARKER)[0])
    return Path(here)


def resolve_uri(uri: str, root: Path | None = None) -> str:
    """A plain path (e.g. 'mlflow.db') becomes an absolute sqlite URI under the project root."""
    uri = os.environ.get("LSDC_TRACKING_URI", uri)
    if "://" in uri or uri.startswith(("databricks", "file:")):
        return uri
    path = Path(uri)
    if not path.is_absolute():
        path = (root or project_root()) / path
    return f"sqlite:///{path}"


def _artifact_root(uri: str) -> str:
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / ARTIFACTS_DIRNAME).as_uri()
    return ""


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _mlflow():
    import mlflow

    return mlflow


# MLflow 3's UI opens an experiment on its GenAI overview unless the experiment tag
# `mlflow.experimentKind` says otherwise; "custom_model_development" opens it on the
# training runs (the values are the UI's ExperimentKind enum, mlflow/server/js).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def _mark_model_training(mlflow, exp) -> None:
    if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)


def _experiment_id(mlflow, name: str, uri: str) -> str:
    """The experiment's id, created if needed and marked as model training (see above)."""
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        location = _artifact_root(uri) or None
        try:
            exp_id = mlflow.create_experiment(name, artifact_location=location,
                                              tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except Exception:  # a concurrent stage created it first: use that one
            if mlflow.get_experiment_by_name(name) is None:
                raise
        else:
            return exp_id
        exp = mlflow.get_experiment_by_name(name)
    _mark_model_training(mlflow, exp)  # stores made before this tag existed
    return exp.experiment_id


@contextlib.contextmanager
def stage_run(
    stage: str,
    params: Params,
    *,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """Open an MLflow run for one stage (or a nested run inside it) and log all params."""
    mlflow = _mlflow()
    if not nested:
        uri = resolve_uri(params.tracking.uri)
        mlflow.set_tracking_uri(uri)
        exp_id = _experiment_id(mlflow, params.tracking.experiment, uri)
    else:  # a nested run lives in its parent's experiment
        parent = mlflow.active_run()
        if parent is None:
            raise RuntimeError(f"nested MLflow run {run_name or stage!r} opened outside a parent run")
        exp_id = parent.info.experiment_id
    all_tags = {"stage": stage, "lsdc.version": _version()}
    commit = git_commit()
    if commit:
        all_tags["git_commit"] = commit
        all_tags["mlflow.source.git.commit"] = commit
    if os.environ.get("DVC_EXP_NAME"):
        all_tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    if os.environ.get("DVC_EXP_BASELINE_REV"):
        all_tags["dvc_exp_baseline_rev"] = os.environ["DVC_EXP_BASELINE_REV"]
    all_tags.update(tags or {})
    with mlflow.start_run(
        experiment_id=exp_id, run_name=run_name or stage, nested=nested, tags=all_tags
    ) as run:
        if not nested:
            mlflow.log_params({k: _param_value(v) for k, v in params.flat().items()})
        log.info("MLflow run %s (%s) in %s", run.info.run_id, stage, mlflow.get_tracking_uri())
        yield run


def _version() -> str:
    from lsdc import __version__

    return __version__


def _param_value(v: Any) -> str:
    text = str(v)
    return text if len(text) <= 6000 else text[:5997] + "..."


_KEY_OK = re.compile(r"[^0-9A-Za-z_\-. /]")


def clean_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested dicts to 'a/b' keys and keep finite numbers only (bools become 0/1)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = _KEY_OK.sub("_", f"{prefix}{key}")
        if isinstance(value, Mapping):
            out.update(clean_metrics(value, prefix=name + "/"))
        elif isinstance(value, (bool, int, float)) and not isinstance(value, str):
            f = float(value)
            if math.isfinite(f):
                out[name] = f
        elif hasattr(value, "item"):  # numpy scalar
            try:
                f = float(value.item())
            except (TypeError, ValueError):
                continue
            if math.isfinite(f):
                out[name] = f
    return out


def log_metrics(metrics: Mapping[str, Any], step: int | None = None, prefix: str = "") -> None:
    """Log the finite numbers of a (nested) metrics dict to the active run."""
    values = clean_metrics(metrics, prefix)
    if values:
        _mlflow().log_metrics(values, step=step)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    path = Path(path)
    if path.is_dir():
        _mlflow().log_artifacts(str(path), artifact_path=artifact_path or path.name)
    elif path.exists():
        _mlflow().log_artifact(str(path), artifact_path=artifact_path)
    else:
        log.warning("not logging missing artifact %s", path)


log_artifacts = log_artifact


def set_tags(tags: Mapping[str, Any]) -> None:
    _mlflow().set_tags({k: str(v) for k, v in tags.items()})
