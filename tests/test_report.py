"""README tables come from the metrics files; DVC metrics files hold headline figures only."""

import csv
import json
import shutil
from pathlib import Path

import mlflow
import pytest

from lsdc import cli, headline, params, report
from lsdc.stages import report as report_stage

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "metrics"
STAGE_FILES = {"synth": "synth.json", "ingest": "ingest.json", "eda": "eda.json", "rois": "rois.json",
               "classifier": "classifier.json", "cv": "cv.json", "test": "test.json",
               **{f"detectors/{p}": f"detectors/{p}.json" for p in report.PLANES}}
WALL_CLOCK = ("seconds", "time", "date", "hostname", "peak_rss")


def _args(readme=ROOT / "README.md", check=True):
    return cli.stage_args("report", "--readme", str(readme), "--metrics-dir", str(METRICS), *(["--check"] if check else []))


def _leaves(d, prefix=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], d


def test_committed_readme_matches_the_committed_metrics(capsys):
    assert report_stage.main(params.Params(), _args()) == 0, capsys.readouterr().out


def test_stale_readme_fails_the_check_with_a_diff(tmp_path, capsys):
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text()
    cv = headline.load(METRICS / "cv.json")
    shown = f"{cv['score']['total']:.3f} vs constant prior"
    assert shown in text  # the figure the table shows is the one in metrics/cv.json
    readme.write_text(text.replace(shown, "0.123 vs constant prior"))
    assert report_stage.main(params.Params(), _args(readme=readme)) == 1
    out = capsys.readouterr().out
    assert "-| classifier, out-of-fold" in out and f"+| classifier, out-of-fold competition score (lower is better) | {shown}" in out
    assert report_stage.main(params.Params(), _args(readme=readme, check=False)) == 0  # rewrite
    assert readme.read_text() == text


def test_every_row_is_backed_by_a_file(tmp_path):
    shutil.copy(METRICS / "cv.json", tmp_path / "cv.json")
    shutil.copy(METRICS / "cv.details.json", tmp_path / "cv.details.json")
    table = report.results_block(tmp_path)
    assert table.count("\n| ") == 1 and "out-of-fold" in table  # header rows + the one backed row
    assert "| what | figure |\n|---|---|\n| classifier" in table
    assert "notebook" not in report.results_block(METRICS) and "levels" not in report.results_block(METRICS)


def test_missing_marker_is_an_error():
    with pytest.raises(ValueError, match="no block 'results'"):
        report.render("# a README without markers\n", {"results": "x"})


def test_runtime_block_lists_stages_and_their_sum():
    runtime = {"stages": {"synth": 61.2, "train_detector@sag_t1": 1254.6}, "total_s": 1315.8,
               "git_commit": "0123456789abcdef"}
    block = report.runtime_block(runtime)
    assert "| `synth` | 1 min 01 s |" in block and "| `train_detector@sag_t1` | 20 min 55 s |" in block
    assert "| **total** | **21 min 56 s** |" in block and "0123456789" in block
    assert "No stage times" in report.runtime_block(None)


def test_pipeline_stages_expand_foreach_like_dvc():
    names = report.pipeline_stages(ROOT / "dvc.yaml", ROOT / "params.yaml")
    assert names[0] == "synth" and "predict" in names
    assert [n for n in names if n.startswith("train_detector@")] == [f"train_detector@{p}" for p in report.PLANES]


def test_timings_take_the_latest_finished_top_level_run_of_each_stage(tmp_path):
    uri = f"sqlite:///{tmp_path}/store.db"
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("lsdc")

    def run(stage, start, seconds, **tags):
        r = client.create_run(exp, start_time=start * 1000, tags={"stage": stage, "git_commit": "abc", **tags})
        client.set_terminated(r.info.run_id, end_time=(start + seconds) * 1000)
        return r

    run("synth", 100, 50)  # an older run of the same stage
    run("synth", 1000, 60)
    parent = run("train_classifier", 2000, 300)
    run("train_classifier", 2010, 90, **{"mlflow.parentRunId": parent.info.run_id})  # a fold
    run("train_classifier", 5000, 10, dvc_exp_name="exp-1")  # an experiment, not the default run
    got = report.timings(uri, ["synth", "train_classifier", "predict"], "lsdc")
    assert got["stages"] == {"synth": 60.0, "train_classifier": 300.0}
    assert got["total_s"] == 360.0 and got["missing"] == ["predict"] and got["git_commit"] == "abc"


def test_every_command_has_its_entry_module_in_stages():
    """One convention: `lsdc <command>` runs lsdc.stages.<command with underscores>.main."""
    import importlib

    for command, (module, _, _) in cli.COMMANDS.items():
        assert module == f"lsdc.stages.{command.replace('-', '_')}", command
        mod = importlib.import_module(module)
        assert callable(mod.main) and callable(mod.add_arguments), module


# ---------------------------------------------------------------- headline-only metrics

def test_split_and_merge_round_trip():
    full = {"score": {"total": 0.5, "spinal": 0.4}, "prior": {"total": 0.8}, "n_studies": 3,
            "per_fold": {"fold_0": {"n": 1}}}
    head, details = headline.split("cv", full)
    assert head == {"score": {"total": 0.5, "spinal": 0.4}, "prior": {"total": 0.8}}
    assert details == {"n_studies": 3, "per_fold": {"fold_0": {"n": 1}}}  # emptied parents go
    assert headline.merge(head, details) == full
    assert headline.split("test", {"n_studies": 2, "scored": False}) == ({"n_studies": 2}, {"scored": False})


def test_details_path_is_beside_the_metrics_file():
    assert headline.details_path(Path("metrics/detectors/ax_t2.json")) == Path("metrics/detectors/ax_t2.details.json")


def test_committed_metrics_are_headlines_of_about_40_columns():
    columns = 0
    for stage, name in STAGE_FILES.items():
        head = json.loads((METRICS / name).read_text())
        keys = [k for k, _ in _leaves(head)]
        assert set(keys) <= set(headline.HEADLINE[stage.split("/")[0]]), name
        assert (METRICS / name).with_name(Path(name).stem + ".details.json").is_file(), name
        columns += len(keys)
    assert 25 <= columns <= 45


def test_no_wall_clock_in_dvc_tracked_metrics():
    for path in sorted(METRICS.rglob("*")):
        if path.name in ("bench.json", "runtime.json") or path.is_dir():  # not DVC outs
            continue
        if path.suffix == ".json":
            keys = [k for k, _ in _leaves(json.loads(path.read_text()))]
        else:
            with open(path, newline="") as f:
                keys = next(csv.reader(f))
        for key in keys:
            assert not any(w in key.lower().split(".")[-1] for w in WALL_CLOCK), f"{path}: {key}"


def test_dvc_yaml_declares_headlines_as_metrics_and_details_as_plain_outs():
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, spec in stages.items():
        spec = spec.get("do", spec)
        metrics = [next(iter(m)) for m in spec.get("metrics", [])]
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in spec.get("outs", [])]
        for m in metrics:
            detail = m[: -len(".json")] + headline.DETAILS_SUFFIX
            assert detail in outs, f"{name}: {detail} is not an out"
            entry = next(o for o in spec["outs"] if isinstance(o, dict) and detail in o)
            assert entry[detail] == {"cache": False}


def test_phantom_block_renders_real_vs_phantom_from_synth_details(tmp_path):
    shape = {"series": 7, "gap_mm": {"p1": {"real": 20.7, "phantom": 21.04}, "p50": {"real": 33.4, "phantom": 33.0}},
             "deviation_mm": {"p50": {"real": 6.0, "phantom": 5.66}},
             "bend_deg": {"p95": {"real": 51.2, "phantom": 52.71}}}
    headline.write("synth", {"train": {"studies": 3}, "test": {"studies": 1}, "score_oracle": {"total": 0.4},
                             "score_constant_prior": {"total": 0.9}, "shape": shape}, tmp_path / "synth.json")
    block = report.phantom_block(tmp_path)
    assert "7 Sagittal T2/STIR series" in block
    assert "| neighbouring canal points, mm | p1 / p50 | 20.7 / 33.4 | 21.0 / 33.0 |" in block
    assert "| bend L1/L2→L2/L3 vs L4/L5→L5/S1, degrees | p95 | 51.2 | 52.7 |" in block
    assert "No shape figures" in report.phantom_block(tmp_path / "empty")


def test_runtime_block_names_the_applied_experiment():
    runtime = {"stages": {"synth": 96.0, "train_classifier": 400.0}, "total_s": 496.0, "git_commit": None,
               "from_experiment": {"crops-e20": ["train_classifier"]}}
    block = report.runtime_block(runtime)
    assert "| `train_classifier` | 6 min 40 s |" in block
    assert "`train_classifier`: the run of `dvc exp` `crops-e20`" in block


def test_naming_block_states_figure_b_with_the_pipelines_names_against_its_target(tmp_path):
    cell = {"points": 10, "wrong_level": 0, "silent": 0}
    named = {"points": 30, "right_within": 0.98, "wrong_level": 1, "silent": 0,
             "by_plane": {"sag_t1": {**cell, "right_within": 0.99}, "sag_t2": {**cell, "right_within": 0.96},
                          "ax_t2": {**cell, "right_within": 1.0}}}
    headline.write("rois", {"studies": {"total": 3}, "crops": {"detected_share": 0.9},
                            "named_points": {**named, "detector_val_fold": named}}, tmp_path / "rois.json")
    block = report.naming_block(tmp_path)
    line = next(x for x in block.splitlines() if x.startswith("- **(b)**"))
    assert "sag_t1 99.0 % (meets 97 %), sag_t2 96.0 % (**misses** 97 %), ax_t2 100.0 % (meets 97 %)" in line
    assert "30 points" in line and "**0 silent**" in line


def test_runtime_block_names_the_stages_left_out_of_the_total():
    runtime = {"stages": {"synth": 60.0, "train_classifier": 120.0}, "total_s": 180.0, "git_commit": "abc",
               "missing": ["evaluate_naming", "evaluate_detector@ax_t2"]}
    block = report.runtime_block(runtime)
    assert "**3 min 00 s**" in block
    assert "`evaluate_naming`, `evaluate_detector@ax_t2`: no run in this record, left out of the total" in block
    assert "no run in this record" not in report.runtime_block({**runtime, "missing": []})
