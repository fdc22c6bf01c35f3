"""dvc.yaml's code deps are exactly the project modules each stage runs (lsdc.depgraph)."""

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from lsdc import cli, depgraph

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
STAGES = [(name, body) for name, _, body in depgraph.expanded_stages(DVC, PARAMS)]


@pytest.mark.parametrize("name,body", STAGES, ids=[n for n, _ in STAGES])
def test_stage_code_deps_equal_import_closure(name, body):
    command = depgraph.stage_command(body)
    assert command is not None, f"{name}: cmd {body.get('cmd')!r} does not run `lsdc <command>`"
    wanted = set(depgraph.stage_deps(command, ROOT))
    listed = depgraph.expand_code_deps(body.get("deps") or [], ROOT)
    missing, extra = sorted(wanted - listed), sorted(listed - wanted)
    assert not missing and not extra, (
        f"{name} (lsdc {command}): dvc.yaml misses {missing} and lists {extra} it never imports; "
        "run `python -m lsdc.depgraph --write`"
    )


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_command_closure_holds_its_entry_and_params(command):
    deps = depgraph.stage_deps(command, ROOT)
    entry = depgraph.module_file(cli.COMMANDS[command][0], ROOT / "src")
    assert entry is not None, f"{command}: entry module {cli.COMMANDS[command][0]} not found"
    assert entry.relative_to(ROOT).as_posix() in deps
    assert {"src/lsdc/__init__.py", "src/lsdc/params.py"} <= set(deps)  # via the dispatcher
    assert not {"src/lsdc/tracking.py", "src/lsdc/cli.py"} & set(deps)  # exempt
    assert deps == sorted(deps)


def test_exempt_modules_exist_and_give_a_reason():
    for module, reason in depgraph.EXEMPT.items():
        assert depgraph.module_file(module, ROOT / "src") is not None, module
        assert len(reason) > 40, f"{module}: say why it is exempt"


# ---------------------------------------------------------------- the analyser on a tiny package


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "src" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


TINY = {
    "pkg/__init__.py": "NAME = 1\n",
    "pkg/entry.py": """
        import os
        from typing import TYPE_CHECKING

        from pkg import NAME, sub
        from .rel import thing

        if TYPE_CHECKING:
            import pkg.typing_only

        def run():
            import importlib

            import pkg.lazy.deep
            importlib.import_module("pkg.plugin")
            return os, NAME, sub, thing, pkg
        """,
    "pkg/sub.py": "from . import sibling\n",
    "pkg/sibling.py": "",
    "pkg/rel.py": "thing = 1\n",
    "pkg/lazy/__init__.py": "LAZY = 2\n",
    "pkg/lazy/deep.py": "from .. import sibling\nfrom pkg.lazy import LAZY\n",
    "pkg/lazy/other.py": "",
    "pkg/plugin.py": "",
    "pkg/typing_only.py": "",
    "pkg/unused.py": "",
}


def test_closure_follows_every_import_form(tmp_path):
    repo = _package(tmp_path, TINY)
    files = depgraph.closure_files(["pkg.entry"], repo, package="pkg")
    assert files == [
        "src/pkg/__init__.py",
        "src/pkg/entry.py",
        "src/pkg/lazy/__init__.py",  # parent package of a function-level import
        "src/pkg/lazy/deep.py",  # function-level `import pkg.lazy.deep`
        "src/pkg/plugin.py",  # importlib.import_module literal
        "src/pkg/rel.py",  # from .rel import thing
        "src/pkg/sibling.py",  # `from . import sibling` in sub and `from .. import sibling` in lazy/deep
        "src/pkg/sub.py",  # from pkg import sub (a submodule, next to NAME, a name)
    ]


@pytest.mark.parametrize(
    "source,expected",
    [
        ("from pkg import sub\n", {"pkg", "pkg.sub"}),
        ("from pkg import NAME\n", {"pkg"}),
        ("def f():\n    import pkg.lazy.deep\n", {"pkg.lazy.deep"}),
        ("from .lazy import deep\n", {"pkg.lazy", "pkg.lazy.deep"}),
        ("from .lazy import LAZY\n", {"pkg.lazy"}),
        ("import importlib\nimportlib.import_module('pkg.plugin')\n", {"importlib", "pkg.plugin"}),
        ("from importlib import import_module\nimport_module('.plugin', package='pkg')\n",
         {"importlib", "pkg.plugin"}),
        ("import importlib\nname = 'pkg.plugin'\nimportlib.import_module(name)\n", {"importlib"}),
        ("import typing\nif typing.TYPE_CHECKING:\n    import pkg.typing_only\n", {"typing"}),
    ],
)
def test_imports_of_each_form(tmp_path, source, expected):
    repo = _package(tmp_path, {**TINY, "pkg/probe.py": source})
    assert depgraph.imports_of("pkg.probe", repo / "src") == expected


def test_relative_import_inside_a_package_init(tmp_path):
    # in lsdc/a/__init__.py, `from . import b` means lsdc.a.b, not lsdc.b
    repo = _package(tmp_path, {**TINY, "pkg/lazy/__init__.py": "from . import other\n"})
    assert depgraph.imports_of("pkg.lazy", repo / "src") == {"pkg.lazy", "pkg.lazy.other"}


def test_exempt_module_is_not_listed_but_its_imports_are(tmp_path):
    repo = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/entry.py": "from pkg import side\n",
        "pkg/side.py": "import pkg.helper\n",
        "pkg/helper.py": "",
    })
    files = depgraph.closure_files(["pkg.entry"], repo, package="pkg", exempt={"pkg.side"})
    assert files == ["src/pkg/__init__.py", "src/pkg/entry.py", "src/pkg/helper.py"]


def test_expand_code_deps_turns_directories_into_py_files(tmp_path):
    repo = _package(tmp_path, TINY)
    got = depgraph.expand_code_deps(["${data.root}", "data/x", "src/pkg/lazy", "src/pkg/plugin.py"], repo)
    assert got == {"src/pkg/lazy/__init__.py", "src/pkg/lazy/deep.py", "src/pkg/lazy/other.py",
                   "src/pkg/plugin.py"}


# ---------------------------------------------------------------- --write


def test_write_rewrites_only_code_deps_and_keeps_comments(tmp_path):
    (tmp_path / "src").symlink_to(ROOT / "src")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    text = (ROOT / "dvc.yaml").read_text()
    # a stale tree: one stage lists a whole package dir and a module it never imports
    stale = text.replace("      - src/lsdc/folds.py\n", "      - src/lsdc/folds.py  # the stage\n"
                         "      - src/lsdc/classify\n", 1)
    assert stale != text
    (tmp_path / "dvc.yaml").write_text(stale)

    changed = depgraph.write(tmp_path)
    assert "folds" in changed
    new_text = (tmp_path / "dvc.yaml").read_text()
    assert new_text.splitlines()[:2] == text.splitlines()[:2]  # header comment kept
    assert all(not missing and not extra for _, _, missing, extra in depgraph.drift(tmp_path))

    old_doc, new_doc = DVC, yaml.safe_load(new_text)
    assert list(new_doc["stages"]) == list(old_doc["stages"])
    for key, stage in old_doc["stages"].items():
        old_body, new_body = stage.get("do", stage), new_doc["stages"][key].get("do", new_doc["stages"][key])
        keep = [d for d in old_body.get("deps", []) if not depgraph.is_code_dep(d)]
        assert [d for d in new_body.get("deps", []) if not depgraph.is_code_dep(d)] == keep, key
        assert {k: v for k, v in new_body.items() if k != "deps"} == {
            k: v for k, v in old_body.items() if k != "deps"}, key

    assert depgraph.write(tmp_path) == []  # idempotent
    assert (tmp_path / "dvc.yaml").read_text() == new_text
