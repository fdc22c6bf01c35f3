"""`lsdc report`: the README's generated tables from metrics/ (work: `lsdc.report`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lsdc import jsonio, paths
from lsdc.params import Params
from lsdc.report import BENCH_FILE, RUNTIME_FILE, blocks, diff, pipeline_stages, render, timings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="exit 1 with a diff when README.md differs from what the files say")
    parser.add_argument("--timings", action="store_true",
                        help="first write metrics/runtime.json from the MLflow store (tracking.uri)")
    parser.add_argument("--applied-exp", default=None, metavar="NAME",
                        help="with --timings: the `dvc exp apply`-ed experiment whose stage runs made the outputs")
    parser.add_argument("--readme", type=Path, default=paths.README, help="README to rewrite or check")
    parser.add_argument("--metrics-dir", type=Path, default=paths.METRICS_DIR, help="metrics folder")


def main(params: Params, args: argparse.Namespace) -> int:
    metrics_dir = args.metrics_dir
    runtime_file = metrics_dir / RUNTIME_FILE.name
    if args.timings:
        from lsdc import tracking

        found = timings(tracking.resolve_uri(params.tracking.uri), pipeline_stages(),
                        params.tracking.experiment, args.applied_exp)
        jsonio.write_json(runtime_file, found)
        print(f"wrote {runtime_file}: {len(found['stages'])} stages, {found['total_s']:.0f} s in all")
    old = args.readme.read_text(encoding="utf-8")
    new = render(old, blocks(metrics_dir, runtime_file, metrics_dir / BENCH_FILE.name))
    if args.check:
        if new != old:
            sys.stdout.write(diff(old, new, str(args.readme)))
            print(f"{args.readme} is stale: run `lsdc report`", file=sys.stderr)
            return 1
        print(f"{args.readme} matches {metrics_dir}/")
        return 0
    if new != old:
        args.readme.write_text(new, encoding="utf-8")
        print(f"rewrote the generated blocks of {args.readme}")
    else:
        print(f"{args.readme} already up to date")
    return 0
