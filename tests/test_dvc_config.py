"""dvc.yaml and params.yaml agree: every stage's params exist, its code is a dep, its command exists."""

from pathlib import Path

import pytest
import yaml

from lsdc import cli, params

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
FLAT = params.load(ROOT / "params.yaml").flat()


def _expanded_stages():
    """(name, stage) with foreach/matrix expanded over the values DVC would use."""
    for name, stage in DVC["stages"].items():
        if "foreach" in stage:
            items = stage["foreach"]
            if isinstance(items, str):  # ${detect.planes}
                key = items.strip("${} ")
                items = FLAT[key]
            for item in items:
                yield f"{name}@{item}", yaml.safe_load(
                    yaml.safe_dump(stage["do"]).replace("${item}", str(item))
                )
        else:
            yield name, stage


STAGES = list(_expanded_stages())


def _param_keys(stage):
    for entry in stage.get("params", []):
        if isinstance(entry, dict):  # {file: [keys]}
            for keys in entry.values():
                yield from keys
        else:
            yield entry


@pytest.mark.parametrize("name,stage", STAGES, ids=[n for n, _ in STAGES])
def test_stage_params_exist(name, stage):
    for key in _param_keys(stage):
        is_section = any(k.startswith(key + ".") for k in FLAT)
        assert key in FLAT or is_section, f"{name}: params key {key!r} not in params.yaml"


@pytest.mark.parametrize("name,stage", STAGES, ids=[n for n, _ in STAGES])
def test_no_stage_lists_a_runtime_setting(name, stage):
    """Workers and devices change speed, not results: listing one would re-run the stage."""
    runtime = [k for k in _param_keys(stage) if k == "runtime" or k.startswith("runtime.")]
    assert not runtime, f"{name}: lists speed-only settings {runtime}"


@pytest.mark.parametrize("name,stage", STAGES, ids=[n for n, _ in STAGES])
def test_stage_command_and_code_are_declared(name, stage):
    words = stage["cmd"].split()
    assert words[0] == "lsdc", f"{name}: every stage runs one lsdc subcommand"
    command = words[1]
    assert command in cli.COMMANDS, f"{name}: unknown command {command!r}"
    module = cli.COMMANDS[command][0]
    rel = Path("src", *module.split("."))
    code = rel.with_suffix(".py") if (ROOT / rel.with_suffix(".py")).exists() else rel
    assert (ROOT / code).exists(), f"{name}: module {module} missing"
    deps = [str(d) for d in stage.get("deps", [])]
    assert any(str(code).startswith(d) or d.startswith(str(code)) for d in deps), (
        f"{name}: its code {code} is not among its deps {deps}"
    )


@pytest.mark.parametrize("name,stage", STAGES, ids=[n for n, _ in STAGES])
def test_stage_reads_every_section_it_is_documented_to(name, stage):
    command = stage["cmd"].split()[1]
    declared = set(_param_keys(stage))
    for section in cli.COMMANDS[command][1]:
        assert any(k == section or k.startswith(section + ".") for k in declared), (
            f"{name}: cli says it reads {section!r} but dvc.yaml lists no {section} params"
        )
