"""`lsdc <stage>`: one subcommand per pipeline stage; each dvc.yaml cmd calls one.

A stage module defines `main(params, args) -> int` and, optionally,
`add_arguments(parser)`. Modules are imported only when their command runs, so a
broken or slow import of one stage never affects another. `--help` of a stage lists
the params.yaml keys it reads, with their current values and comments. An error in
the user's input (lsdc.errors.UserError, FileNotFoundError, ValueError) ends the command
with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from lsdc import params as params_mod
from lsdc.errors import UserError

log = logging.getLogger(__name__)

# command -> (module, params.yaml sections it reads, one-line help)
COMMANDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "synth": ("lsdc.stages.synth", ("synth",), "write the built-in synthetic RSNA-layout dataset"),
    "ingest": ("lsdc.stages.ingest", ("data", "ingest"), "validate a data root into tidy index tables"),
    "eda": ("lsdc.stages.eda", ("data", "eda"), "write the EDA HTML report and metrics"),
    "folds": ("lsdc.stages.folds", ("cv",), "assign train studies to cross-validation folds"),
    "yolo-export": ("lsdc.stages.yolo_export", ("data", "detect"), "export one plane's YOLO dataset"),
    "train-detector": ("lsdc.stages.train_detector", ("detect",), "train one plane's YOLO detector"),
    "evaluate-detector": ("lsdc.stages.evaluate_detector", ("detect",), "measure one plane's detector (mAP, localisation in mm)"),
    "evaluate-naming": ("lsdc.stages.evaluate_naming", ("synth", "detect", "naming"), "level naming and sides on a generated stress set (issue 12 table)"),
    "extract-rois": ("lsdc.stages.extract_rois", ("data", "detect", "rois"), "crop every level and side of every study"),
    "train-classifier": ("lsdc.stages.train_classifier", ("model", "train"), "cross-validated timm classifier"),
    "evaluate": ("lsdc.stages.evaluate", ("evaluate",), "competition metric and plots on out-of-fold predictions"),
    "predict": ("lsdc.stages.predict", ("data", "rois", "predict"), "Kaggle-format submission for the test studies"),
    "predict-study": ("lsdc.stages.predict_study", ("data", "detect", "rois", "predict"), "grade one study folder; table, JSON and overlay PNG"),
    "bench": ("lsdc.stages.bench", ("data", "synth", "detect", "rois", "model", "train", "predict"), "benchmarks: speed and memory against baselines"),
    "profile": ("lsdc.stages.profile", (), "switch params.yaml to a named profile (e.g. real-gpu)"),
    "report": ("lsdc.stages.report", (), "write the README's result, stage-time and benchmark tables from metrics/"),
    "compare": ("lsdc.stages.compare", ("tracking",), "the classifier designs side by side from their dvc exp metrics"),
}


def _key_comments(path: Path) -> dict[str, str]:
    """Dotted key -> the comment on its line in params.yaml (two-space indented sections)."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in path.read_text().splitlines():
        m = re.match(r"^(\s*)([A-Za-z_][\w]*):\s*([^#]*?)\s*(?:#\s*(.*))?$", line)
        if not m:
            continue
        indent = len(m.group(1))
        stack = [(i, k) for i, k in stack if i < indent]
        key = ".".join([k for _, k in stack] + [m.group(2)])
        if m.group(3) == "":
            stack.append((indent, m.group(2)))
        if m.group(4):
            comments[key] = m.group(4)
    return comments


def _knobs_epilog(sections: tuple[str, ...], params_file: Path) -> str:
    if not params_file.exists():
        return f"(params file {params_file} not found: run from the repository root)"
    try:
        flat = params_mod.load(params_file).flat()
    except ValueError as e:
        return f"(params file invalid: {e})"
    comments = _key_comments(params_file)
    lines = [f"params read from {params_file} (change there, or: dvc exp run -S key=value):"]
    for key, value in flat.items():
        if key.split(".")[0] in sections or key == "seed":
            lines.append(f"  {key} = {value!r}  # {comments.get(key, '')}".rstrip(" #"))
    return "\n".join(lines)


def _parse_set(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def build_parser(
    argv: list[str], params_file: Path = Path(params_mod.PARAMS_FILE)
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lsdc", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wants_help = "-h" in argv or "--help" in argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, sections, help_text) in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_knobs_epilog(sections, params_file) if wants_help and name == chosen else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--params", type=Path, default=params_file, help="params file")
        p.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE",
            help="override a params key for this run only (e.g. --set synth.n_train=8)",
        )
        p.set_defaults(_module=module)
        if name == chosen:
            mod = importlib.import_module(module)
            if hasattr(mod, "add_arguments"):
                mod.add_arguments(p)
    return parser


def stage_args(command: str, *argv: str) -> argparse.Namespace:
    """The arguments `lsdc <command> argv...` gives its stage, argparse defaults included
    (for tests and notebooks calling a stage's main directly)."""
    return build_parser([command, *argv]).parse_args([command, *argv])


def run_stage(command: str, params: params_mod.Params, args: argparse.Namespace, **kwargs: Any) -> int:
    """Run one stage's main; an error in the user's input ends as one line on stderr and rc 2."""
    mod = importlib.import_module(COMMANDS[command][0])
    try:
        return int(mod.main(params, args, **kwargs) or 0)
    except (UserError, FileNotFoundError, ValueError) as e:  # the user's input: one line, rc 2
        log.debug("lsdc %s failed", command, exc_info=True)
        message = " ".join(str(e).split())
        print(f"lsdc {command}: {message}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        params = params_mod.load(args.params, overrides=_parse_set(args.set))
    except (ValueError, FileNotFoundError) as e:
        print(f"lsdc {args.command}: {e}", file=sys.stderr)
        return 2
    return run_stage(args.command, params, args)

if __name__ == "__main__":
    sys.exit(main())
