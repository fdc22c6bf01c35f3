"""params.yaml -> typed, frozen config objects: the one module that knows the keys.

Each section of params.yaml is a frozen dataclass below. Loading checks that every
key in the file is known and every field has a value, so a typo fails at once with
the section and key named.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = "params.yaml"



@dataclass(frozen=True)
class Data:
    root: str = "data/synthetic"


@dataclass(frozen=True)
class Runtime:
    """Speed-only settings: listed by no stage, so changing them re-runs nothing."""

    workers: int = 2
    detect_device: str = "cpu"
    detect_workers: int = 0
    train_device: str = "auto"
    loader_workers: int = 0
    predict_device: str = "auto"


@dataclass(frozen=True)
class Tracking:
    uri: str = "mlflow.db"
    experiment: str = "lsdc"


@dataclass(frozen=True)
class Synth:
    seed: int = 7
    n_train: int = 160
    n_test: int = 200
    first_study_id: int = 1_000_000
    image_scale: float = 0.5
    sag_slices: tuple[int, int] = (13, 17)
    axial_per_level: tuple[int, int] = (3, 4)
    reader_noise: float = 0.35
    fov_mm: tuple[float, float] = (220.0, 400.0)
    stress: bool = False


@dataclass(frozen=True)
class Ingest:
    near_origin_px: float = 10.0


@dataclass(frozen=True)
class Eda:
    example_study: int | None = None
    max_scatter_points: int = 20000


@dataclass(frozen=True)
class CV:
    n_folds: int = 3


@dataclass(frozen=True)
class BoxMm:
    sag_t1: float = 10.0
    sag_t2: float = 12.0
    ax_t2: float = 12.0


@dataclass(frozen=True)
class WidthMultiple:
    sag_t1: float = 0.125
    sag_t2: float = 0.125
    ax_t2: float = 0.125


@dataclass(frozen=True)
class PlaneEpochs:
    """Detector training epochs per plane; a single number in params.yaml or `-S` sets all
    three (`dvc exp run -S detect.train.epochs=30`)."""
    sag_t1: int = 12
    sag_t2: int = 20
    ax_t2: int = 8


@dataclass(frozen=True)
class DetectExport:
    classes: str = "anatomy"
    val_fold: int = 0
    imgsz: int = 256
    box_mm: BoxMm = field(default_factory=BoxMm)
    complete_slices: int = 1


@dataclass(frozen=True)
class DetectTrain:
    model: str = "yolov8.yaml"
    width_multiple: WidthMultiple = field(default_factory=WidthMultiple)
    depth_multiple: float = 0.33
    weights: str | None = None
    epochs: PlaneEpochs = field(default_factory=PlaneEpochs)
    batch: int = 8
    optimizer: str = "AdamW"
    lr0: float = 0.002
    lrf: float = 0.1
    warmup_epochs: float = 1.0
    weight_decay: float = 0.0005
    mosaic: float = 1.0
    close_mosaic: int = 5
    fliplr: float = 0.0
    degrees: float = 5.0
    scale: float = 0.2
    val: bool = False


@dataclass(frozen=True)
class DetectInfer:
    conf: float = 0.05
    iou: float = 0.5
    max_det: int = 20


@dataclass(frozen=True)
class DetectAnatomy:
    disc_spacing_mm: tuple[float, float] = (14.0, 60.0)
    max_turn_deg: float = 45.0
    max_ratio: float = 1.6
    max_tilt_deg: float = 70.0
    anchor_conf: float = 0.25
    weak_ratio: float = 0.5
    trim_ratio: float = 0.25
    side_sep_mm: tuple[float, float] = (6.0, 50.0)


@dataclass(frozen=True)
class DetectEvaluate:
    within_mm: float = 5.0


@dataclass(frozen=True)
class Detect:
    planes: tuple[str, ...] = ("sag_t1", "sag_t2", "ax_t2")
    export: DetectExport = field(default_factory=DetectExport)
    train: DetectTrain = field(default_factory=DetectTrain)
    infer: DetectInfer = field(default_factory=DetectInfer)
    anatomy: DetectAnatomy = field(default_factory=DetectAnatomy)
    evaluate: DetectEvaluate = field(default_factory=DetectEvaluate)


@dataclass(frozen=True)
class Naming:
    studies: int = 30
    seed: int = 11


@dataclass(frozen=True)
class PlaneInts:
    sag_t1: int = 3
    sag_t2: int = 3
    ax_t2: int = 3


@dataclass(frozen=True)
class CropMm:
    sag_t1: float = 32.0
    sag_t2: float = 40.0
    ax_t2: float = 32.0


@dataclass(frozen=True)
class Rois:
    roi_size: int = 64
    slices: PlaneInts = field(default_factory=PlaneInts)
    crop_mm: CropMm = field(default_factory=CropMm)
    selection: str = "anatomy"
    batch: int = 32
    canal_window_mm: float = 12.0
    foramen_window_mm: tuple[float, float] = (6.0, 40.0)
    neighbour_slices: int = 2
    axial_max_mm: float = 8.0
    level_spacing_mm: float = 32.0
    zone_offset_mm: float = 10.0
    contact_sheet_studies: int = 4


@dataclass(frozen=True)
class Model:
    name: str = "mobilenetv3_small_050"
    pretrained: bool = False
    weights: str | None = None
    drop_rate: float = 0.0


@dataclass(frozen=True)
class Augment:
    brightness: float = 0.2
    contrast: float = 0.2
    color_p: float = 0.75
    blur_limit: int = 5
    blur_p: float = 0.75
    shift: float = 0.1
    scale: float = 0.1
    rotate: float = 15.0
    affine_p: float = 0.75
    swap_p: float = 0.5


@dataclass(frozen=True)
class Train:
    layout: str = "crops"
    loss: str = "metric"
    epochs: int = 5
    batch_size: int = 8
    lr: float = 0.002
    min_lr: float = 0.00001
    weight_decay: float = 0.01
    t_0: int = 5
    t_mult: int = 1
    grad_clip: float = 1.0
    patience: int = 4
    class_weights: tuple[float, float, float] = (1.0, 2.0, 4.0)
    aug: Augment = field(default_factory=Augment)
    amp: bool = True


@dataclass(frozen=True)
class Evaluate:
    prior_pseudocount: float = 1.0
    reliability_bins: int = 10


@dataclass(frozen=True)
class Predict:
    prior_pseudocount: float = 0.5
    batch_size: int = 16


@dataclass(frozen=True)
class Params:
    seed: int = 42
    data: Data = field(default_factory=Data)
    runtime: Runtime = field(default_factory=Runtime)
    tracking: Tracking = field(default_factory=Tracking)
    synth: Synth = field(default_factory=Synth)
    ingest: Ingest = field(default_factory=Ingest)
    eda: Eda = field(default_factory=Eda)
    cv: CV = field(default_factory=CV)
    detect: Detect = field(default_factory=Detect)
    naming: Naming = field(default_factory=Naming)
    rois: Rois = field(default_factory=Rois)
    model: Model = field(default_factory=Model)
    train: Train = field(default_factory=Train)
    evaluate: Evaluate = field(default_factory=Evaluate)
    predict: Predict = field(default_factory=Predict)

    def flat(self) -> dict[str, Any]:
        """Dotted keys -> values, e.g. {'synth.n_train': 160}; for logging to MLflow."""
        return flatten(dataclasses.asdict(self))

    def section(self, name: str) -> dict[str, Any]:
        """One section as a flat dict with dotted keys (plus the global seed)."""
        return {k: v for k, v in self.flat().items() if k.startswith(name + ".") or k == "seed"}


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> dotted keys, e.g. {'synth': {'seed': 7}} -> {'synth.seed': 7}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        return tuple(_coerce(v, args[0], where) for v in value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None:
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)][0]
        return _coerce(value, inner, where)
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. `--set detect.device=0` (YAML reads 0 as an int)
    if annotation is int and isinstance(value, bool):
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if annotation in (int, str, bool) and not isinstance(value, annotation):
        raise ValueError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


BROADCAST = (PlaneEpochs,)  # per-plane sections that also take one value for all planes


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    missing = sorted(known - set(raw))
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")
    kwargs = {}
    for name, value in raw.items():
        hint = hints[name]
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hint) and hint in BROADCAST and not isinstance(value, (dict, bool)):
            kwargs[name] = hint(**{f.name: _coerce(value, typing.get_type_hints(hint)[f.name], key)
                                   for f in fields(hint)})  # one value for every plane
        elif dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, key)
        else:
            kwargs[name] = _coerce(value, hint, key)
    return cls(**kwargs)


def load(path: str | Path = PARAMS_FILE, overrides: dict[str, Any] | None = None) -> Params:
    """Read params.yaml (optionally with dotted-key overrides) into a frozen Params."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: params file not found (run from the repository root)")
    raw = yaml.safe_load(path.read_text()) or {}
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    try:
        return _build(Params, raw, "")
    except ValueError as e:
        raise ValueError(f"{path}: {e}".replace(": .", ": ")) from None
