"""6. Detector training step: one forward and backward pass of a batch through each plane's
YOLO architecture (its width multiple, detect.train.batch images at detect.export.imgsz),
with the model and batch in torch's default (NCHW) memory format and in channels-last,
the format lsdc.detect.train trains in. The two alternate within each repeat.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from lsdc.bench.timing import interleaved, median
from lsdc.params import Params

log = logging.getLogger(__name__)


def _step(model, x):
    def run():
        out = model(x)
        loss = sum(v.float().sum() for v in out.values() if hasattr(v, "float")) if isinstance(out, dict) \
            else sum(o.float().sum() for o in out)
        loss.backward()
        model.zero_grad(set_to_none=True)
    return run


def run(p: Params, repeats: int) -> dict:
    import torch

    from lsdc.detect import labels as lab
    from lsdc.detect import train as detect_train
    from lsdc.detect import ultralytics_env

    ultralytics_env.configure()
    from ultralytics.nn.tasks import DetectionModel

    c, size = p.detect.train, p.detect.export.imgsz
    out: dict = {"imgsz": size, "batch": c.batch, "threads": torch.get_num_threads(), "by_plane": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for plane in p.detect.planes:
            nc = len(lab.class_names(plane, p.detect.export.classes))
            arch = detect_train.model_yaml(p.detect, nc, Path(tmp) / f"{plane}.yaml", plane)
            torch.manual_seed(p.seed)
            plain = DetectionModel(str(arch), nc=nc, verbose=False).train()
            last = DetectionModel(str(arch), nc=nc, verbose=False).train().to(memory_format=torch.channels_last)
            x = torch.rand(c.batch, 3, size, size)
            times = interleaved({"nchw": _step(plain, x),
                                 "channels_last": _step(last, x.contiguous(memory_format=torch.channels_last))},
                                repeats)
            ms = {k: round(1000 * median(v), 1) for k, v in times.items()}
            out["by_plane"][plane] = {"width_multiple": getattr(c.width_multiple, plane), "ms_per_step": ms,
                                      "ratio_channels_last_vs_nchw": round(ms["channels_last"] / ms["nchw"], 3)}
            log.info("detector %s: %s", plane, out["by_plane"][plane])
    return out
