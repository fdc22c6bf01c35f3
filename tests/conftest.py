"""Shared fixtures. `tiny_repo` runs the whole real pipeline once per session on the tiny profile."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# test helper modules (rsna_layout, detect_fixtures, ...) import each other by bare name
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests import e2e


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory):
    """A temp copy of the repo after one full `dvc repro` on the tiny profile: (path, stages run)."""
    repo = e2e.copy_repo(tmp_path_factory.mktemp("pipeline") / "repo")
    ran = e2e.repro(repo)
    return repo, ran
