"""The benchmark results as a printed table and as metrics/bench.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Row = tuple[str, str, str, str]  # (benchmark, measure, value, target and verdict)


def _ok(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def _decode(r: dict) -> list[Row]:
    w, fps = r["workers"], r["files_per_s"]
    return [
        ("1 decode", f"plain dcmread().pixel_array loop, 1 proc ({r['files']} RLE files)", f"{fps['plain_1']:.0f} files/s", ""),
        ("", "lsdc.dicom.read_series, 1 proc", f"{fps['lsdc_1']:.0f} files/s = {r['ratio_lsdc_vs_plain_1proc']:.2f}x",
         f">= {r['target_1proc']}x {_ok(r['meets_1proc'])}"),
        ("", "  CPU per file, plain / lsdc (1 proc)", " / ".join(f"{v:.2f} ms" for v in
                                                          r["cpu_ms_per_file_1proc"].values()), ""),
        ("", f"plain loop, {w} procs", f"{fps[f'plain_{w}']:.0f} files/s = {r[f'ratio_plain_{w}proc_vs_plain_1proc']:.2f}x", ""),
        ("", f"lsdc.dicom.read_series, {w} procs", f"{fps[f'lsdc_{w}']:.0f} files/s = "
         f"{r[f'ratio_lsdc_{w}proc_vs_plain_1proc']:.2f}x", f">= {r['target_2proc']}x {_ok(r['meets_2proc'])}"),
    ]


def _rois(r: dict) -> list[Row]:
    w, sps = r["workers"], r["studies_per_s"]
    return [
        ("2 ROI extraction", f"notebook loop, 1 proc ({r['studies']} studies, {r['images']} images)",
         f"{sps['notebook']:.3f} studies/s", ""),
        ("", "lsdc extract_study, 1 proc", f"{sps['lsdc_1proc']:.3f} studies/s = {r['ratio_lsdc_1proc_vs_notebook']:.1f}x", ""),
        ("", f"lsdc extraction stage, {w} workers", f"{sps[f'lsdc_{w}workers']:.3f} studies/s = "
         f"{r[f'ratio_lsdc_{w}workers_vs_notebook']:.1f}x", f">= {r['target']:g}x {_ok(r['meets'])}"),
        ("", "crops: notebook PNGs / lsdc rows (last repeat)",
         f"{r['crops_written']['notebook_png']} / {r['crops_written']['lsdc_rows']}",
         f"PNGs > 0 {_ok(r['crops_written']['notebook_png'] > 0)}"),
        *_models(r),
    ]


def _models(r: dict) -> list[Row]:
    setup = r.get("setup") or {}
    if not setup.get("detectors_source"):
        return []
    text = f"detectors: {setup['detectors_source']}"
    if setup.get("classifier_source"):
        text += f"; classifier: {setup['classifier_source']}"
    return [("", "models", text, "")]


def _study(r: dict) -> list[Row]:
    s = r["seconds"]
    rows: list[Row] = [("3 one study (CPU)", f"predict-study call, study {r['study']}", f"{s['total']:.2f} s", "")]
    for key, value in s.items():
        if key not in ("total", "core", "forward"):
            rows.append(("", f"  {key}", f"{value:.3f} s", ""))
    rows += [
        ("", "core (decode -> probabilities)", f"{s['core']:.2f} s", ""),
        ("", "forward passes alone (detectors + classifier)", f"{s['forward']:.2f} s", ""),
        ("", "core overhead over forward passes", f"+{100 * r['overhead_core_vs_forward']:.0f} %",
         f"<= +{100 * r['target']:.0f} % {_ok(r['meets'])}"),
        ("", "whole-call overhead over forward passes", f"+{100 * r['overhead_total_vs_forward']:.0f} %", ""),
        *_models(r),
    ]
    return rows


def _training(r: dict) -> list[Row]:
    rows: list[Row] = []
    for i, (name, v) in enumerate(r["loaders"].items()):
        rows.append(("4 training" if i == 0 else "",
                     f"{r['model']} {r['channels']}ch, batch {r['batch_size']}, {name.replace('_', ' ')}",
                     f"{v['studies_per_s']:.1f} studies/s, data wait {100 * v['data_wait_share']:.0f} %", ""))
    return rows


def _scaling(r: dict) -> list[Row]:
    rows: list[Row] = []
    for i, (n, v) in enumerate(r["by_size"].items()):
        rows.append(("5 scaling" if i == 0 else "", f"extraction of {n} studies ({r['workers']} workers)",
                     f"{v['stage_s']:.1f} s ({v['s_per_study']:.2f} s/study), peak {v['peak_tree_mb']:.0f} MB", ""))
    fit = r["time_fit"]
    rows += [
        ("", "time = fixed + per study x n", f"{fit['fixed_s']:.1f} s + {fit['per_study_s']:.2f} s x n, "
         f"worst residual {100 * fit['max_rel_residual']:.0f} %", f"linear {_ok(fit['linear'])}"),
        ("", "peak memory largest / smallest", f"{r['memory_ratio_largest_vs_smallest']:.2f}x",
         f"flat {_ok(r['memory_flat'])}"),
    ]
    return rows


def _detector(r: dict) -> list[Row]:
    rows: list[Row] = []
    for i, (plane, v) in enumerate(r["by_plane"].items()):
        ms = v["ms_per_step"]
        rows.append(("6 detector step" if i == 0 else "",
                     f"{plane} width {v['width_multiple']:g}, batch {r['batch']} at {r['imgsz']} px, NCHW / channels-last",
                     f"{ms['nchw']:.0f} / {ms['channels_last']:.0f} ms = {v['ratio_channels_last_vs_nchw']:.2f}x", ""))
    return rows


SECTIONS = {"decode": _decode, "rois": _rois, "study": _study, "training": _training, "scaling": _scaling,
            "detector": _detector}


HEADER: Row = ("benchmark", "measure", "value (median)", "target")


def rows(results: dict[str, Any]) -> list[Row]:
    """The table rows of the benchmarks present in results (printed here, markdown in lsdc.report)."""
    out: list[Row] = []
    for name, fn in SECTIONS.items():
        if name in results:
            out += fn(results[name])
    return out


def table(results: dict[str, Any]) -> str:
    rows_: list[Row] = [HEADER, *rows(results)]
    widths = [max(len(r[i]) for r in rows_) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows_]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def read(path: Path) -> dict[str, Any]:
    """The results in path, {} when there are none (or they cannot be read)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """old with the benchmarks run now replaced: `lsdc bench --only decode` updates the
    decode figures of metrics/bench.json and keeps the others (each benchmark carries
    the set-up, machine and models it was measured with)."""
    merged = {k: v for k, v in old.items() if k in SECTIONS}
    for name in SECTIONS:
        if name in new:
            merged[name] = {**new[name], "machine": new.get("machine"), "setup": new.get("setup")}
    return {**{k: v for k, v in new.items() if k not in SECTIONS}, **merged}


def write(results: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path
