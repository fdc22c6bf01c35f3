"""The one JSON writer for metrics and reports: NaN/inf -> null, numpy scalars -> Python,
stable key order as given, two-space indent, trailing newline.

Every metrics file (DVC `metrics:`) and every detail JSON beside it goes through
`write_json`, so a NaN never reaches a file as the invalid token `NaN` and two runs
with the same values write the same bytes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def finite(obj: Any) -> Any:
    """A copy of obj with NaN/inf floats as None and numpy scalars/arrays as Python values."""
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy scalar or array
        return finite(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any) -> str:
    """The text write_json writes."""
    return json.dumps(finite(obj), indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, obj: Any) -> Path:
    """Write obj as JSON to path (parents created); NaN-safe, byte-stable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(obj), encoding="utf-8")
    return path
