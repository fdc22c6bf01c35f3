"""Benchmark (not a test): synthetic studies per second at the default size (params.yaml synth).

Usage: python bench/bench_synth.py [--studies N] [--workers W]
Generates N studies (default: the params.yaml n_train + n_test) into a temporary folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

from lsdc import params
from lsdc.synth import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=None, help="train studies (test: 1/8 of it)")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    synth = params.load().synth
    if args.studies:
        synth = dataclasses.replace(synth, n_train=args.studies, n_test=max(1, args.studies // 8))
    workers = params.load().runtime.workers if args.workers is None else args.workers
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = generate.generate(synth, out, workers=workers, progress=False)
        seconds = time.perf_counter() - start
    n = summary["train"]["studies"] + summary["test"]["studies"]
    files = summary["train"]["files"] + summary["test"]["files"]
    print(f"{n} studies, {files} files, image_scale {synth.image_scale}, {workers} worker(s): "
          f"{seconds:.1f} s = {n / seconds:.2f} studies/s ({files / seconds:.0f} files/s)")


if __name__ == "__main__":
    main()
