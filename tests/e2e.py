"""Helpers for end-to-end tests: a temp copy of the repository running the real DVC stages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env(repo: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e["LSDC_TRACKING_URI"] = f"sqlite:///{repo}/mlflow.db"
    e["LSDC_CACHE_DIR"] = str(repo / ".cache")
    e.setdefault("GIT_AUTHOR_NAME", "lsdc test")
    e.setdefault("GIT_AUTHOR_EMAIL", "test@lsdc.invalid")
    e.setdefault("GIT_COMMITTER_NAME", "lsdc test")
    e.setdefault("GIT_COMMITTER_EMAIL", "test@lsdc.invalid")
    return e


def run(repo: Path, *cmd: str, check: bool = True, timeout: int = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=repo, env=env(repo), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def copy_repo(dest: Path, profile: str | None = "tiny") -> Path:
    """Copy the tracked (and untracked, not ignored) files of the repo into a fresh git repo."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    run(dest, "git", "init", "-q")
    # the copy gets its own remote so tests never touch the user's default one
    run(dest, "dvc", "remote", "modify", "--local", "local", "url", str(dest.parent / f"{dest.name}-remote"))
    if profile:
        run(dest, sys.executable, "-m", "lsdc.cli", "profile", profile)
    run(dest, "git", "add", "-A")
    run(dest, "git", "commit", "-qm", "test copy")
    return dest


def repro(repo: Path, *args: str) -> list[str]:
    """Run `dvc repro` and return the stages DVC reports it ran."""
    out = run(repo, "dvc", "repro", *args).stdout
    return [
        line.split("'")[1]
        for line in out.splitlines()
        if line.startswith("Running stage '")
    ]


def metrics(repo: Path, name: str) -> dict:
    """A stage's full metrics: the DVC metrics file merged with the details beside it."""
    from lsdc import headline

    return headline.load(repo / "metrics" / name)
