"""`lsdc bench`: speed and memory against baselines (work: `lsdc.bench.suite`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lsdc import paths
from lsdc.bench import report, workspace
from lsdc.bench.suite import BENCHMARKS, run
from lsdc.params import Params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS), help="benchmarks to run")
    parser.add_argument("--out", type=Path, default=paths.BENCH_METRICS, help="results JSON")
    parser.add_argument("--scratch", type=Path, default=workspace.SCRATCH_DIR, help="cached data and models")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 90], help="scaling sizes (studies)")
    parser.add_argument("--image-scale", type=float, default=0.3, help="synth.image_scale of the bench data")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each timed comparison")
    parser.add_argument("--scaling-repeats", type=int, default=1, help="repeats of each scaling size")
    parser.add_argument("--decode-studies", type=int, default=20, help="studies whose files the decode bench reads")
    parser.add_argument("--rois-studies", type=int, default=3, help="studies of the notebook comparison")
    parser.add_argument("--store-studies", type=int, default=30,
                        help="studies in the ROI store used for training (and the small classifier)")
    parser.add_argument("--detect-epochs", type=int, default=None,
                        help="override detect.train.epochs of the detectors trained when the pipeline has "
                             "none (default: the default run's settings; fewer epochs find nothing)")
    parser.add_argument("--bench-models", action="store_true",
                        help="ignore models/ and use (train) the small bench models")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile of missed targets")


def main(params: Params, args: argparse.Namespace) -> int:
    results = run(params, args)
    merged = report.merge(report.read(args.out), results)
    out = report.write(merged, args.out)
    print(report.table({k: v for k, v in merged.items() if k not in report.SECTIONS or k in results}))
    print(f"\n{results['setup']['studies']} synthetic studies, detectors: {results['setup']['detectors_source']}; "
          f"machine: {results['machine']['cpus']} CPUs, {results['machine']['memory_gib']} GiB, "
          f"GPU {results['machine']['gpu'] or 'none'}; {results['seconds']:.0f} s in all -> {out} "
          "(`lsdc report` puts its table into README.md)")
    return 0
