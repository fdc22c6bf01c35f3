"""Smoke tests of the benchmark helpers (lsdc.bench): they return sane figures on tiny
inputs in seconds. The benchmarks themselves are not timed tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from lsdc.bench import decode, report, scaling, timing, training
from lsdc.ingest import build_index
from synth_fixtures import tiny


def test_interleaved_alternates_and_counts():
    calls: list[str] = []
    times = timing.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then A B / B A / A B
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    with pytest.raises(ValueError, match="repeats"):
        timing.interleaved({"a": lambda: None}, repeats=0)


def test_tree_memory_sees_a_child_process():
    code = "import time; x = bytearray(300 * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.5)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    with timing.TreeMemory(interval=0.05) as mem:
        proc.wait()
    assert proc.returncode == 0
    assert mem.peak_mb > 300  # this process + the child holding 300 MB
    assert mem.samples >= 3


def test_linear_fit_recovers_a_line_and_flags_a_bend():
    fit = scaling.linear_fit([10, 30, 90], [12.0, 16.0, 28.0])
    assert fit["fixed_s"] == pytest.approx(10.0) and fit["per_study_s"] == pytest.approx(0.2)
    assert fit["linear"] and fit["max_rel_residual"] < 1e-6
    assert not scaling.linear_fit([10, 30, 90], [10.0, 12.0, 90.0])["linear"]


def test_timed_loaders_measure_wait_and_passes():
    from lsdc.classify import engine

    class Slow(TensorDataset):
        def __getitem__(self, i):
            time.sleep(0.01)
            return super().__getitem__(i)

    data = Slow(torch.zeros(8, 2))
    records: list[dict] = []
    with training.timed_loaders(records, data):
        for _ in engine.DataLoader(data, batch_size=4, shuffle=True):
            time.sleep(0.02)
        list(engine.DataLoader(TensorDataset(torch.zeros(3, 2)), batch_size=4))
    assert engine.DataLoader is torch.utils.data.DataLoader  # restored
    train, val = records
    assert (train["kind"], train["batches"], train["studies"]) == ("train", 2, 8)
    assert val["kind"] == "val" and val["batches"] == 1
    assert 0.07 <= train["wait"] < train["end"] - train["start"]  # 8 x 10 ms loading, 2 x 20 ms compute


def test_decode_benchmark_on_tiny_rle_data(tmp_path):
    from lsdc.synth import generate

    root = tmp_path / "rsna"
    generate.generate(tiny(n_train=2, n_test=1, image_scale=0.2, sag_slices=(5, 6), axial_per_level=(1, 1)),
                      root, workers=1, progress=False)
    index = build_index(root, workers=0)
    index.write(tmp_path / "index")
    r = decode.run(tmp_path / "index", root, n_studies=2, repeats=1, workers=2)
    assert r["files"] == int(index.instances["study_id"].isin(sorted(index.instances["study_id"].unique())[:2]).sum())
    assert r["transfer_syntaxes"] == ["1.2.840.10008.1.2.5"]  # RLE Lossless, as the real data
    assert set(r["files_per_s"]) == {"plain_1", "lsdc_1", "plain_2", "lsdc_2"}
    assert all(np.isfinite(v) and v > 0 for v in r["files_per_s"].values())
    assert r["ratio_lsdc_vs_plain_1proc"] == pytest.approx(r["files_per_s"]["lsdc_1"] / r["files_per_s"]["plain_1"],
                                                           rel=0.01)


def test_report_table_marks_missed_targets(tmp_path):
    results = {"scaling": {"sizes": [1, 2], "workers": 2, "by_size": {
        "1": {"stage_s": 3.0, "s_per_study": 3.0, "peak_tree_mb": 100.0},
        "2": {"stage_s": 4.0, "s_per_study": 2.0, "peak_tree_mb": 200.0}},
        "time_fit": {"fixed_s": 2.0, "per_study_s": 1.0, "max_rel_residual": 0.0, "linear": True},
        "memory_ratio_largest_vs_smallest": 2.0, "memory_flat": False}}
    text = report.table(results)
    assert "flat MISSED" in text and "linear met" in text and "2.00x" in text
    assert report.write(results, tmp_path / "b.json").read_text().startswith("{")


def test_bench_json_keeps_the_benchmarks_not_rerun(tmp_path):
    old = {"machine": {"cpus": 2}, "setup": {"detectors_source": "bench"}, "decode": {"files": 10},
           "rois": {"studies": 3}, "seconds": 100.0}
    new = {"machine": {"cpus": 16}, "setup": {"detectors_source": "project"}, "decode": {"files": 20}, "seconds": 5.0}
    merged = report.merge(old, new)
    assert merged["decode"]["files"] == 20 and merged["decode"]["machine"] == {"cpus": 16}
    assert merged["decode"]["setup"] == {"detectors_source": "project"}
    assert merged["rois"] == {"studies": 3}  # not re-run: kept as measured
    assert merged["machine"] == {"cpus": 16} and merged["seconds"] == 5.0
    path = report.write(merged, tmp_path / "bench.json")
    assert report.read(path) == merged and report.read(tmp_path / "absent.json") == {}


def test_detector_step_benchmark_times_both_memory_formats():
    """In a child process, as `lsdc bench` runs it: importing ultralytics here would fix its
    config folder for the tests after this one."""
    code = ("import json; from lsdc.bench import detector; from lsdc.params import load; "
            "p = load(overrides={'detect.export.imgsz': 64, 'detect.train.batch': 2, 'detect.planes': ['sag_t1']}); "
            "print(json.dumps(detector.run(p, repeats=1)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert set(r["by_plane"]) == {"sag_t1"} and r["imgsz"] == 64 and r["batch"] == 2
    for v in r["by_plane"].values():
        assert all(ms > 0 for ms in v["ms_per_step"].values())
        assert v["ratio_channels_last_vs_nchw"] == pytest.approx(v["ms_per_step"]["channels_last"] / v["ms_per_step"]["nchw"], abs=2e-3)
    text = report.table({"detector": r})
    assert "6 detector step" in text and f"sag_t1 width {r['by_plane']['sag_t1']['width_multiple']:g}," in text
