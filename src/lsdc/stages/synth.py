"""`lsdc synth`: write the built-in synthetic RSNA-layout dataset and metrics/synth.json.

The dataset (train_images/, test_images/, the Kaggle CSVs, test_labels.csv, test_oracle.csv)
goes to --out (default data/synthetic/); metrics/synth.json holds the headline counts and
the competition score on the test labels of the oracle (the ceiling) and of the best
constant prior fitted on train (the floor); metrics/synth.details.json the rest (lsdc.headline).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from lsdc import headline, paths, tracking
from lsdc.params import Params
from lsdc.synth import generate

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=paths.SYNTH_DIR, help="dataset folder")
    parser.add_argument("--metrics", type=Path, default=paths.SYNTH_METRICS, help="metrics JSON")
    parser.add_argument("--workers", type=int, default=None,
                        help="override runtime.workers for this run (does not change the output)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def main(params: Params, args: argparse.Namespace) -> int:
    out, metrics_path = args.out, args.metrics
    workers = params.runtime.workers if args.workers is None else args.workers
    with tracking.stage_run("synth", params):
        start = time.perf_counter()
        summary = generate.generate(params.synth, out, workers=workers,
                                    progress=not args.no_progress)
        seconds = time.perf_counter() - start
        headline.write("synth", summary, metrics_path)
        n = summary["train"]["studies"] + summary["test"]["studies"]
        tracking.log_metrics(summary)
        tracking.log_metrics({"seconds": seconds, "studies_per_s": n / seconds})
        tracking.log_artifact(metrics_path)
        tracking.log_artifact(headline.details_path(metrics_path))
    print(f"synth: {n} studies ({summary['train']['files'] + summary['test']['files']} files) in {seconds:.1f} s "
          f"-> {out}; oracle {summary['score_oracle']['total']:.3f}, "
          f"constant prior {summary['score_constant_prior']['total']:.3f}")
    return 0
