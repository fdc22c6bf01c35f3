"""Benchmark (not a test): DICOM header reads per second of `lsdc ingest` against a plain
`pydicom.dcmread(stop_before_pixels=True)` loop over the same files, in one process and
with 2 worker processes (medians over repeats).

    .venv/bin/python bench/bench_ingest.py [--root data/synthetic] [--repeats 3] [--studies 12]

Uses data/synthetic when it holds images, else generates a temporary synthetic dataset
(lsdc.synth: RLE Lossless, 16/12 bits, one slice per file) and removes it afterwards.
The page cache is warmed first, so the figures measure parsing, not the disk.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pydicom

from lsdc import dicom, schema
from lsdc.ingest import build_index


def make_dataset(root: Path, n_studies: int = 12, seed: int = 0) -> Path:
    """A synthetic RSNA-layout root from the built-in generator (real-world-like files)."""
    from lsdc.params import Synth
    from lsdc.synth import generate

    n_test = max(1, n_studies // 6)
    synth = Synth(seed=seed, n_train=n_studies - n_test, n_test=n_test, workers=2)
    generate.generate(synth, root, progress=False)
    return root


def _plain_chunk(paths: list[str]) -> int:
    for p in paths:
        pydicom.dcmread(p, stop_before_pixels=True)
    return len(paths)


def _ours_chunk(paths: list[str]) -> int:
    for p in paths:
        dicom.read_header(p)
    return len(paths)


def _parallel(fn: Callable[[list[str]], int], paths: list[str], workers: int) -> Callable[[], int]:
    def go() -> int:
        chunks = [paths[i::workers * 4] for i in range(workers * 4)]
        with ProcessPoolExecutor(workers) as pool:
            return sum(pool.map(fn, chunks))
    return go


def median_rate(fn: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("data/synthetic"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--studies", type=int, default=12, help="studies in a generated dataset")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if not any(root.glob(f"{schema.TRAIN_IMAGES}/*/*/*.dcm")):
            print(f"{root} holds no images: writing a temporary dataset")
            root = make_dataset(Path(tmp) / "rsna", n_studies=args.studies)
        paths = sorted(str(p) for p in root.glob("*_images/*/*/*.dcm"))
        _plain_chunk(paths)  # warm the page cache
        n = len(paths)

        def ingest(workers: int) -> Callable[[], int]:
            return lambda: len(build_index(root, workers=workers).instances)

        rows = [
            ("plain dcmread(stop_before_pixels) loop", 1, median_rate(lambda: _plain_chunk(paths), args.repeats)),
            ("lsdc.dicom.read_header loop", 1, median_rate(lambda: _ours_chunk(paths), args.repeats)),
            ("lsdc ingest build_index (whole stage)", 1, median_rate(ingest(0), args.repeats)),
            ("plain dcmread(stop_before_pixels) loop", args.workers,
             median_rate(_parallel(_plain_chunk, paths, args.workers), args.repeats)),
            ("lsdc.dicom.read_header loop", args.workers,
             median_rate(_parallel(_ours_chunk, paths, args.workers), args.repeats)),
            ("lsdc ingest build_index (whole stage)", args.workers, median_rate(ingest(args.workers), args.repeats)),
        ]
    print(f"\n{n} files under {args.root if root == args.root else 'a temporary dataset'}; "
          f"median of {args.repeats} repeats\n")
    print(f"{'method':42s} {'procs':>5s} {'files/s':>9s}")
    for name, procs, rate in rows:
        print(f"{name:42s} {procs:5d} {rate:9.0f}")


if __name__ == "__main__":
    main()
