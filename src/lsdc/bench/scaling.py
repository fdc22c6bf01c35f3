"""5. Scaling: ROI extraction time and peak memory at three dataset sizes.

Each size runs the extraction stage (lsdc.rois.extract.run, `runtime.workers` worker
processes) on the first n studies, in a fresh child process, so that its memory is its
own; the parent samples the summed resident memory of the child and its workers.
Sizes are interleaved per repeat. Time should grow linearly (a fixed start-up cost
plus a constant cost per study) and peak memory should stay flat (results are written
as they arrive, with a bounded number of studies in flight).

    python -m lsdc.bench.scaling PARAMS_YAML INDEX_DIR OUT_DIR DETECTORS_DIR   (the child)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from lsdc.bench.timing import TreeMemory, median
from lsdc.bench.workspace import subset_index
from lsdc.params import Params

log = logging.getLogger(__name__)

LINEAR_TOLERANCE = 0.15  # largest |residual| of the straight-line fit, as a share of the fitted time
FLAT_TOLERANCE = 1.25  # peak memory at the largest size / at the smallest


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_params(params: Params, path: Path) -> Path:
    """The resolved params as a params.yaml the child loads with lsdc.params.load."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(_plain(dataclasses.asdict(params)), sort_keys=False))
    return path


def run_child(params_file: Path, index_dir: Path, out_dir: Path, detectors_dir: Path) -> dict:
    """Run one extraction in a child process; wall time, stage time, tree peak memory."""
    cmd = [sys.executable, "-m", "lsdc.bench.scaling", str(params_file), str(index_dir), str(out_dir),
           str(detectors_dir)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMemory(proc.pid, interval=0.1) as mem:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"extraction child for {index_dir} failed ({proc.returncode}): {stderr[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "stage_s": result["seconds"], "peak_tree_mb": mem.peak_mb,
            "peak_rss_mb": result["peak_rss_mb"]}


def linear_fit(n: list[int], seconds: list[float]) -> dict:
    """seconds = fixed + per_study * n by least squares, and how far the points stray from it."""
    n_arr, s_arr = np.asarray(n, float), np.asarray(seconds, float)
    per_study, fixed = np.polyfit(n_arr, s_arr, 1)
    fitted = fixed + per_study * n_arr
    worst = float(np.max(np.abs(s_arr - fitted) / fitted))
    return {"fixed_s": round(float(fixed), 2), "per_study_s": round(float(per_study), 3),
            "max_rel_residual": round(worst, 3), "linear": bool(worst <= LINEAR_TOLERANCE)}


def run(params: Params, index_dir: Path, detectors_dir: Path, scratch: Path, sizes: tuple[int, ...],
        repeats: int = 1) -> dict:
    sizes = tuple(sorted(set(sizes)))
    if len(sizes) < 2:
        raise ValueError(f"scaling needs at least two sizes, got {sizes}")
    params_file = write_params(params, Path(scratch) / "scaling" / "params.yaml")
    runs: dict[int, list[dict]] = {n: [] for n in sizes}
    for r in range(repeats):
        for n in (sizes if r % 2 == 0 else sizes[::-1]):
            sub = subset_index(index_dir, n, Path(scratch) / f"index_n{n}")
            log.info("bench scaling: %d studies (repeat %d)", n, r + 1)
            runs[n].append(run_child(params_file, sub, Path(scratch) / "scaling" / f"n{n}", detectors_dir))
    rows: dict[int, dict] = {}
    for n in sizes:
        rows[n] = {k: round(median([x[k] for x in runs[n]]), 2) for k in ("wall_s", "stage_s", "peak_tree_mb")}
        rows[n]["s_per_study"] = round(rows[n]["stage_s"] / n, 3)
        rows[n]["largest_worker_mb"] = round(median([x["peak_rss_mb"]["largest_worker"] for x in runs[n]]), 1)
    fit = linear_fit(list(sizes), [rows[n]["stage_s"] for n in sizes])
    mem_ratio = rows[sizes[-1]]["peak_tree_mb"] / rows[sizes[0]]["peak_tree_mb"]
    return {
        "sizes": list(sizes), "repeats": repeats, "workers": params.runtime.workers,
        "by_size": {str(n): rows[n] for n in sizes}, "time_fit": fit,
        "memory_ratio_largest_vs_smallest": round(mem_ratio, 3),
        "memory_flat": bool(mem_ratio <= FLAT_TOLERANCE),
        "meets": bool(fit["linear"] and mem_ratio <= FLAT_TOLERANCE),
    }


def _child(argv: list[str]) -> int:
    from lsdc import params as params_mod
    from lsdc.rois import extract as stage

    params_file, index_dir, out_dir, detectors_dir = (Path(a) for a in argv)
    logging.basicConfig(level=logging.WARNING)
    p = params_mod.load(params_file)
    metrics = stage.run(p, index_dir=index_dir, out_dir=out_dir / "store", metrics_path=out_dir / "rois.json",
                        sheets_dir=out_dir / "sheets", models_dir=detectors_dir)
    print(json.dumps(metrics["_runtime"]))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
