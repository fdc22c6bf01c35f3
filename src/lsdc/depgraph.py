"""The project code each pipeline stage runs, from its entry module's imports.

`dvc repro` re-runs a stage when one of its deps changes, so a stage's code deps must
be exactly the project modules it executes: a missing one lets results go stale while
`dvc status` stays clean, an extra one re-runs the stage for nothing. This module
computes them by static analysis (`ast`, nothing is imported) as the import closure
of the stage's entry module within the `lsdc` package:

* `import lsdc.a.b` and `from lsdc.a import b`, at module level or inside functions;
  `b` counts as a module when `lsdc/a/b.py` or `lsdc/a/b/` exists, else it is a name
  defined in `lsdc/a/__init__.py`;
* relative imports (`from . import x`, `from ..a import b`);
* `importlib.import_module("lsdc.x")` (or `import_module`, `__import__`) with a literal
  name, and a literal `package=` for a relative one;
* every package `__init__.py` on the way: importing `lsdc.a.b` runs `lsdc/__init__.py`
  and `lsdc/a/__init__.py` first.

Imports under `if TYPE_CHECKING:` never run and are skipped. Imports guarded by
`try/except ImportError` are counted: the file is read whenever it exists.

A stage's roots are its entry module (`cli.COMMANDS`) and the dispatcher `lsdc.cli`,
which every `lsdc <command>` runs first (it loads params through `lsdc.params`).
Modules in `EXEMPT` are left out of the listing, each for the reason given there;
their own imports are still followed, so nothing they pull in is hidden.

    python -m lsdc.depgraph           # each dvc.yaml stage's code deps, + missing / - extra
    python -m lsdc.depgraph --check   # exit 1 when dvc.yaml differs from the code
    python -m lsdc.depgraph --write   # rewrite the code deps of dvc.yaml in place
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import logging
import shlex
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

PACKAGE = "lsdc"
SRC_DIR = "src"  # repo-relative folder holding the package; code deps start with it
DISPATCHER = "lsdc.cli"
DVC_FILE = "dvc.yaml"
PARAMS_FILE = "params.yaml"

# Modules not listed as stage deps, with the reason. Their imports are still followed.
EXEMPT: dict[str, str] = {
    "lsdc.tracking": (
        "logs params, metrics and artifacts to MLflow (mlflow.db, mlartifacts/), a side channel: "
        "no DVC out or metrics file of any stage is written by it"
    ),
    "lsdc.cli": (
        "the dispatcher every stage goes through: it parses arguments and --set overrides (no dvc.yaml "
        "cmd passes --set) and imports the entry module; what a stage computes is its entry module's code "
        "and its params. Its imports (lsdc.params) are followed and listed"
    ),
}


# ---------------------------------------------------------------- the analyser


def module_file(module: str, src: Path) -> Path | None:
    """The file that defines `module` under `src`: a package's `__init__.py` or `name.py`."""
    base = src.joinpath(*module.split("."))
    init = base / "__init__.py"
    if init.is_file():
        return init
    py = base.with_suffix(".py")
    return py if py.is_file() else None


def _is_module(module: str, src: Path) -> bool:
    """A module or package (namespace packages included) exists under `src`."""
    return module_file(module, src) is not None or src.joinpath(*module.split(".")).is_dir()


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _literal_str(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _ImportCollector(ast.NodeVisitor):
    """Collects the absolute names of every module an AST imports (any depth)."""

    def __init__(self, module: str, is_package: bool, src: Path) -> None:
        self.src = src
        # the package relative imports resolve against
        self.anchor = module if is_package else module.rpartition(".")[0]
        self.names: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):  # annotations only: the body never runs
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.anchor.split(".") if self.anchor else []
            if node.level - 1 > len(parts) - 1:
                log.warning("relative import beyond the top package in %s", self.anchor)
                return
            base_parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        self.names.add(base)
        for alias in node.names:
            if alias.name != "*" and _is_module(f"{base}.{alias.name}", self.src):
                self.names.add(f"{base}.{alias.name}")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and node.args:
            target = _literal_str(node.args[0])
            package = _literal_str(node.args[1]) if name == "import_module" and len(node.args) > 1 else None
            for kw in node.keywords:
                if kw.arg == "package":
                    package = _literal_str(kw.value)
            if target is not None:
                if target.startswith("."):
                    if package is None:
                        log.warning("relative import_module(%r) without a literal package", target)
                    else:
                        self.names.add(importlib.util.resolve_name(target, package))
                else:
                    self.names.add(target)
        self.generic_visit(node)


def imports_of(module: str, src: Path) -> set[str]:
    """Absolute names of the modules `module`'s source imports (any package, unfiltered)."""
    path = module_file(module, src)
    if path is None:
        return set()
    collector = _ImportCollector(module, path.name == "__init__.py", src)
    collector.visit(ast.parse(path.read_text(), filename=str(path)))
    return collector.names


def _with_parents(module: str) -> Iterator[str]:
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def closure(roots: Iterable[str], src: Path, package: str = PACKAGE) -> set[str]:
    """Every module of `package` that importing `roots` runs, parent packages included."""
    seen: set[str] = set()
    todo = [m for root in roots for m in _with_parents(root)]
    while todo:
        module = todo.pop()
        if module in seen or not _within(module, package):
            continue
        if not _is_module(module, src):
            log.warning("%s is imported but not found under %s", module, src)
            continue
        seen.add(module)
        for name in imports_of(module, src):
            todo.extend(m for m in _with_parents(name) if m not in seen)
    return seen


def closure_files(
    roots: Iterable[str], repo: Path, package: str = PACKAGE, exempt: Iterable[str] = ()
) -> list[str]:
    """Sorted repo-relative files (`src/<package>/...py`) of `closure(roots)`, minus `exempt`."""
    src = repo / SRC_DIR
    skip = set(exempt)
    files = {module_file(m, src) for m in closure(roots, src, package) if m not in skip}
    return sorted(p.relative_to(repo).as_posix() for p in files if p is not None)


def stage_deps(command: str, repo: Path = Path(".")) -> list[str]:
    """The code deps of `lsdc <command>`: the closure of its entry module and the dispatcher."""
    from lsdc.cli import COMMANDS

    if command not in COMMANDS:
        raise KeyError(f"unknown lsdc command {command!r}; known: {', '.join(COMMANDS)}")
    return closure_files([COMMANDS[command][0], DISPATCHER], repo, exempt=EXEMPT)


# ---------------------------------------------------------------- dvc.yaml


def is_code_dep(dep: Any) -> bool:
    return isinstance(dep, str) and (dep == SRC_DIR or dep.startswith(SRC_DIR + "/"))


def expand_code_deps(deps: Iterable[Any], repo: Path) -> set[str]:
    """The code entries of a deps list as files: a directory becomes every .py file under it."""
    out: set[str] = set()
    for dep in deps:
        if not is_code_dep(dep):
            continue
        path = repo / dep.rstrip("/")
        if path.is_dir():
            out.update(p.relative_to(repo).as_posix() for p in path.rglob("*.py"))
        else:
            out.add(dep)
    return out


def stage_command(body: dict) -> str | None:
    """`<command>` of a stage whose cmd is `lsdc <command> ...`, else None."""
    cmd = body.get("cmd")
    if not isinstance(cmd, str):
        return None
    words = shlex.split(cmd)
    if len(words) < 2 or words[0] != "lsdc":
        return None
    if "${" in words[1]:
        raise ValueError(f"cmd {cmd!r}: the command itself must not be templated")
    return words[1]


def _lookup(params: dict, ref: str) -> Any:
    value: Any = params
    for key in ref.strip("${} ").split("."):
        value = value[key]
    return value


def expanded_stages(dvc: dict, params: dict) -> Iterator[tuple[str, str, dict]]:
    """(name as DVC shows it, stage key in dvc.yaml, body) with `foreach` expanded to its items.

    The body is the unexpanded template: the command and code deps do not vary with ${item}.
    """
    for key, stage in dvc.get("stages", {}).items():
        if "foreach" not in stage:
            yield key, key, stage
            continue
        items = stage["foreach"]
        if isinstance(items, str):
            try:
                items = _lookup(params, items)
            except (KeyError, TypeError):
                yield f"{key}@{items}", key, stage["do"]
                continue
        for item in items:  # a dict iterates over its keys, as DVC names them
            yield f"{key}@{item}", key, stage["do"]


def _load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def drift(repo: Path = Path(".")) -> list[tuple[str, list[str], set[str], set[str]]]:
    """Per expanded lsdc stage: (name, wanted deps, missing from dvc.yaml, extra in dvc.yaml)."""
    dvc = _load_yaml(repo / DVC_FILE)
    params = _load_yaml(repo / PARAMS_FILE)
    rows = []
    for name, _, body in expanded_stages(dvc, params):
        command = stage_command(body)
        if command is None:
            log.info("%s: not an `lsdc <command>` stage, skipped", name)
            continue
        wanted = stage_deps(command, repo)
        listed = expand_code_deps(body.get("deps") or [], repo)
        rows.append((name, wanted, set(wanted) - listed, listed - set(wanted)))
    return rows


def _replace_code_deps(seq: Any, wanted: list[str]) -> bool:
    """Replace the code entries of a ruamel deps sequence by `wanted`, keeping the rest and comments."""
    old = list(seq)
    code_at = [i for i, d in enumerate(old) if is_code_dep(d)]
    if [old[i] for i in code_at] == wanted:
        return False
    first = code_at[0] if code_at else len(old)
    kept = [(i, d) for i, d in enumerate(old) if not is_code_dep(d)]
    before = [(i, d) for i, d in kept if i < first]
    after = [(i, d) for i, d in kept if i >= first]
    new_items = [d for _, d in before] + list(wanted) + [d for _, d in after]
    old_ca = dict(seq.ca.items)
    new_ca: dict[int, Any] = {}
    for new_i, (old_i, _) in enumerate(before):
        if old_i in old_ca:
            new_ca[new_i] = old_ca[old_i]
    for k, (old_i, _) in enumerate(after):
        if old_i in old_ca:
            new_ca[len(before) + len(wanted) + k] = old_ca[old_i]
    last_old = len(old) - 1
    if old and is_code_dep(old[last_old]) and last_old in old_ca and new_items:
        new_ca[len(new_items) - 1] = old_ca[last_old]  # what follows the list (blank line, comment)
    list.clear(seq)
    list.extend(seq, new_items)
    seq.ca.items.clear()
    seq.ca.items.update(new_ca)
    return True


def write(repo: Path = Path(".")) -> list[str]:
    """Rewrite the code deps of every lsdc stage in dvc.yaml; returns the stage keys changed."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedSeq

    rt = YAML()
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.preserve_quotes = True
    rt.width = 4096
    path = repo / DVC_FILE
    doc = rt.load(path.read_text())
    changed = []
    for key, stage in doc["stages"].items():
        body = stage["do"] if "foreach" in stage else stage
        command = stage_command(body)
        if command is None:
            continue
        wanted = stage_deps(command, repo)
        if body.get("deps") is None:
            body["deps"] = CommentedSeq()
        if _replace_code_deps(body["deps"], wanted):
            changed.append(key)
    if changed:
        with path.open("w") as f:
            rt.dump(doc, f)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lsdc.depgraph", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository root (holds dvc.yaml, src/)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the code deps of dvc.yaml in place")
    mode.add_argument("--check", action="store_true", help="exit 1 when dvc.yaml differs from the code")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.write:
        changed = write(args.repo)
        log.info("%s: code deps rewritten for %s", DVC_FILE, ", ".join(changed) or "no stage (already current)")
        return 0
    rows = drift(args.repo)
    lines = []
    for name, wanted, missing, extra in rows:
        lines.append(f"{name}:")
        lines += [f"  {'+' if dep in missing else ' '} {dep}" for dep in wanted]
        lines += [f"  - {dep}" for dep in sorted(extra)]
    lines.append("(+ missing from dvc.yaml, - listed but not imported; exempt: "
                 + ", ".join(f"{m}: {why}" for m, why in EXEMPT.items()) + ")")
    sys.stdout.write("\n".join(lines) + "\n")
    return 1 if args.check and any(missing or extra for _, _, missing, extra in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
