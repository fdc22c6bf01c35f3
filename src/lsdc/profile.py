"""`lsdc profile NAME`: switch params.yaml to a named profile (e.g. real data on a GPU).

A profile is a partial params file under `profiles/` (same keys as params.yaml). Applying
it rewrites only those values in params.yaml, keeping every comment, so `git diff` shows
the switch and `dvc repro` re-runs exactly what it affects. Unknown keys are an error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from lsdc import params as params_mod
from lsdc import paths

log = logging.getLogger(__name__)

PROFILES_DIR = paths.PROFILES_DIR


def flat_overrides(raw: dict[str, Any]) -> dict[str, Any]:
    """Nested profile mapping -> dotted keys; lists and scalars are leaves."""
    return params_mod.flatten(raw)


def profile_path(name: str | Path) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"{path}: no such profile; known profiles: {known}")
    return path


def load_profile(name: str | Path) -> dict[str, Any]:
    path = profile_path(name)
    raw = yaml.safe_load(path.read_text()) or {}
    return flat_overrides(raw)


def apply(overrides: dict[str, Any], params_file: Path) -> list[str]:
    """Write dotted-key values into params_file (comments kept); returns the changed keys."""
    params_mod.load(params_file, overrides)  # validates keys and types first
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    doc = rt.load(params_file.read_text())
    changed = []
    for dotted, value in overrides.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        if node.get(leaf) != value:
            node[leaf] = value
            changed.append(dotted)
    with params_file.open("w") as f:
        rt.dump(doc, f)
    return changed
