"""3. One study end to end on the CPU: a DICOM study folder -> 25 label probabilities
with lsdc.predict.study.run_study (what `lsdc predict-study` runs), broken down into its
steps and set against the time of the model forward passes inside it.

The steps are timed by wrapping, for the duration of the benchmark only, the functions
run_study calls (series typing, model loading, DICOM decode, detection, classification,
overlay); the forward passes by hooks on the detector networks and by timing
lsdc.classify.model.probs_of (the classifier's forward + softmax). `core` is the
inference path proper: decode (once; the overlay reuses it), detection, slice choice and
crops, classification; set-up (cached fold models), the overlay PNG and the JSON are not.

Target (issue 15): everything in the core that is not a forward pass adds <= 50 % to the forward
passes, i.e. (core - forward) / forward <= 0.5.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from lsdc import index, schema
from lsdc.bench.timing import median
from lsdc.params import Params
from lsdc.rois.detectors import YoloDetectors

log = logging.getLogger(__name__)

TARGET = 0.5


class TimedDetectors:
    """Detectors that add their time (YOLO pre/post-processing, forward, anatomy) to a bucket."""

    def __init__(self, inner: YoloDetectors, buckets: dict[str, float]):
        self.inner, self.buckets = inner, buckets

    def points(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.inner.points(*args, **kwargs)
        finally:
            self.buckets["detection"] += time.perf_counter() - start


@contextlib.contextmanager
def timed(obj, name: str, bucket: str, buckets: dict[str, float]) -> Iterator[None]:
    """Replace obj.name by a wrapper adding its run time to buckets[bucket]; restore after."""
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            buckets[bucket] += time.perf_counter() - start

    setattr(obj, name, wrapper)
    try:
        yield
    finally:
        setattr(obj, name, original)


def forward_hooks(module, bucket: str, buckets: dict[str, float]) -> list:
    """Pre/post forward hooks on a torch module adding its forward time to a bucket."""
    starts: list[float] = []
    pre = module.register_forward_pre_hook(lambda *_: starts.append(time.perf_counter()))

    def post(*_):
        buckets[bucket] += time.perf_counter() - starts.pop()

    return [pre, module.register_forward_hook(post)]


@contextlib.contextmanager
def instrumented(buckets: dict[str, float]) -> Iterator[None]:
    from lsdc.classify import model
    from lsdc.predict import ensemble, overlay
    from lsdc.predict import study as predict_study
    from lsdc.rois import study as rois_study

    patches = [
        (predict_study, "type_series", "setup_type_series"),
        (ensemble, "load_models", "setup_load_classifier"),
        (ensemble, "load_prior", "setup_prior"),
        (predict_study, "load_planes", "decode"),  # run_study decodes once, before extraction
        (rois_study, "load_planes", "decode_in_extract"),  # when extract_study decodes by itself
        (predict_study, "extract_study", "extract"),
        (ensemble, "study_probs", "classification"),
        (model, "probs_of", "classifier_forward"),
        (overlay, "draw", "overlay_draw"),
    ]
    with contextlib.ExitStack() as stack:
        for obj, name, bucket in patches:
            stack.enter_context(timed(obj, name, bucket, buckets))
        yield


def first_test_study(index_dir: Path, data_root: Path) -> Path:
    studies = index.read_table(index_dir, "studies")
    test = sorted(studies.loc[studies["split"] == "test", "study_id"])
    if not test:
        raise ValueError(f"{index_dir}: no test study for the end-to-end benchmark")
    return Path(data_root) / schema.TEST_IMAGES / str(int(test[0]))


def breakdown(b: dict[str, float], total: float) -> dict[str, float]:
    """Seconds per step of one call. `core` = decode + extraction + classification, the
    path from DICOM files to the 25 probabilities; set-up (typing series, the cached
    fold models, the prior) and the overlay and report are outside it."""
    forward = b["detector_forward"] + b["classifier_forward"]
    decode = b["decode"] + b["decode_in_extract"]
    extract = b["extract"] - b["decode_in_extract"]
    core = decode + extract + b["classification"]
    setup = b["setup_type_series"] + b["setup_load_classifier"] + b["setup_prior"]
    return {
        "total": total,
        "setup (type series, load classifier, prior)": setup,
        "decode (DICOM -> windowed uint8)": decode,
        "detection excl. forward (letterbox, NMS, anatomy)": b["detection"] - b["detector_forward"],
        "detector forward": b["detector_forward"],
        "slice choice + imputation + crops": extract - b["detection"],
        "classification excl. forward (assemble, normalise)": b["classification"] - b["classifier_forward"],
        "classifier forward": b["classifier_forward"],
        "overlay (PNG)": b["overlay_draw"],
        "report (JSON) and the rest": total - core - setup - b["overlay_draw"],
        "core": core,
        "forward": forward,
    }


def run(study_dir: Path, params: Params, detectors_dir: Path, models_root: Path, labels_path: Path,
        repeats: int = 3, profile: bool = True) -> dict:
    from lsdc.predict.study import run_study

    buckets: dict[str, float] = defaultdict(float)
    yolo = YoloDetectors(detectors_dir, params.detect, params.rois.batch,
                         params.runtime.detect_device)
    start = time.perf_counter()
    for plane in schema.PLANES:
        yolo.model(plane)
    load_detectors = time.perf_counter() - start
    det = TimedDetectors(yolo, buckets)
    out = Path(tempfile.mkdtemp(prefix="lsdc_bench_study_"))

    def call() -> dict:
        return run_study(study_dir, params, models_dir=models_root, out_dir=out, labels_path=labels_path,
                         detectors=det)

    report = call()  # warm-up: lazy set-up of the predictors
    hooks = []
    for plane in schema.PLANES:
        predictor = getattr(yolo.model(plane), "predictor", None)
        if predictor is not None:
            hooks += forward_hooks(predictor.model, "detector_forward", buckets)
    rows = []
    try:
        with instrumented(buckets):
            for _ in range(repeats):
                buckets.clear()
                start = time.perf_counter()
                call()
                rows.append(breakdown(buckets, time.perf_counter() - start))
        profile_top = None
        core = median([r["core"] for r in rows])
        forward = median([r["forward"] for r in rows])
        overhead = (core - forward) / forward
        if profile and overhead > TARGET:
            from lsdc.bench.profiling import top_entries

            profile_top = top_entries(call)
    finally:
        for h in hooks:
            h.remove()
        shutil.rmtree(out, ignore_errors=True)
    med = {k: round(median([r[k] for r in rows]), 4) for k in rows[0]}
    total = med["total"]
    return {
        "study": study_dir.name, "repeats": repeats,
        "series": len(report["series"]), "crops": report["crops"], "models": len(report["models"]),
        "device": "cpu", "load_detectors_s": round(load_detectors, 3),
        "seconds": med,
        "overhead_core_vs_forward": round(overhead, 3),
        "overhead_total_vs_forward": round((total - forward) / forward, 3),
        "target": TARGET, "meets": bool(overhead <= TARGET),
        "profile": profile_top,
    }
