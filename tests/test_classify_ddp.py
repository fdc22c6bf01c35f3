"""The classifier under torchrun: DDP with 2 CPU processes follows the one-process optimisation.

Fast tests check the pieces (batch shards, loss normalisation, per-sample augmentation
seeds, synchronised BatchNorm gradients); the slow one runs the real stage once in one
process and once under `torchrun --nproc_per_node=2` and compares the OOF tables.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as torch_mp
from torch.utils.data import RandomSampler

from classify_fakes import write_fake_inputs
from lsdc import headline, params, schema
from lsdc.classify import augment, data, distributed, engine, model, train
from lsdc.classify import oof as oof_table

ROOT = Path(__file__).resolve().parents[1]
# same global batch in both runs; tiny so that the whole stage runs in seconds per process
TINY = {"model.name": "resnet10t", "train.epochs": 2, "train.batch_size": 4, "runtime.train_device": "cpu"}
N_FOLDS = 2
# OOF probabilities of 2 processes vs 1: measured max |difference| 1.6e-05 (2 folds x 2 epochs,
# one global batch of 4 each). Gradients agree to float32 rounding (the 2-process test below:
# rtol 1e-5); the rest is summation order (conv over 2 vs 4 samples, DDP's all-reduce, float64 BatchNorm statistics)
# amplified by AdamW, whose first updates are ~lr * sign(gradient) even for near-zero entries.
OOF_ATOL = 1e-4


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("n", [12, 7])
def test_rank_shards_together_are_the_single_process_batches(world, n):
    batch = 6 if n == 12 else 12  # 12 studies: 2 full batches; 7 studies: one partial batch, kept
    drop_last = n > batch

    def batches(rank, size):
        gen = torch.Generator().manual_seed(3)
        return list(distributed.ShardedBatchSampler(RandomSampler(range(n), generator=gen), batch,
                                                    drop_last, rank, size))

    single = batches(0, 1)
    shards = [batches(r, world) for r in range(world)]
    assert all(len(s) == len(single) == len(distributed.ShardedBatchSampler(range(n), batch, drop_last))
               for s in shards)
    for j, whole in enumerate(single):
        assert sorted(i for s in shards for i in s[j]) == sorted(whole)
        assert sum(len(s[j]) for s in shards) == len(whole)


def test_global_batch_must_split_evenly():
    ctx = distributed.Context(device=torch.device("cpu"), rank=0, world_size=3, distributed=True)
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        distributed.local_batch_size(8, ctx)
    assert distributed.local_batch_size(9, ctx) == 3
    with pytest.raises(ValueError, match="cannot be split over 3"):
        list(distributed.ShardedBatchSampler(range(2), 4, False, 0, 3))


def test_no_torchrun_environment_means_one_process(monkeypatch):
    for var in distributed.ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    with distributed.session("cpu") as ctx:
        assert not ctx.distributed and ctx.is_main and ctx.world_size == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="missing"):
        distributed.launch_env()


def test_loss_sum_over_weight_sum_is_the_weighted_mean():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 75, generator=g)
    labels = torch.randint(0, 3, (6, 25), generator=g)
    labels[0, :5] = schema.IGNORE_INDEX
    w = torch.tensor([1.0, 2.0, 4.0])
    total, weight = model.weighted_loss_sum(logits, labels, w)
    assert float(weight) == pytest.approx(float(w[labels[labels >= 0]].sum()))
    assert float(total / weight) == pytest.approx(float(model.weighted_loss(logits, labels, w)), rel=1e-6)


def test_augmentation_depends_on_seed_epoch_and_index_only(tmp_path):
    inputs = write_fake_inputs(tmp_path, n_studies=4, roi_size=16, n_folds=2)
    store = data.load_store(inputs["rois"])
    rows = np.arange(len(store.crops)).reshape(4, -1)
    aug = params.load(ROOT / "params.yaml").train.aug
    ds = data.StudyCrops(store.crops, rows, np.ones(rows.shape, bool), transform=augment.build_augment(aug, 0),
                         seed=5)
    forward = [ds[i][0] for i in range(4)]
    backward = [ds[i][0] for i in reversed(range(4))][::-1]
    for a, b in zip(forward, backward):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    ds.set_epoch(1)
    assert any(not torch.equal(a, ds[i][0]) for i, a in enumerate(forward))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 75))


def _batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, 8, 8, generator=g)
    y = torch.randint(0, 3, (6, 25), generator=g)
    y[1, 3:9] = schema.IGNORE_INDEX  # uneven weight sums on the two ranks
    return x, y


def _ddp_step(rank: int, world: int, port: int, out: str, kind: str = "metric") -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                         world_size=world)
    try:
        ctx = distributed.Context(device=torch.device("cpu"), rank=rank, world_size=world, distributed=True)
        net = distributed.wrap(_tiny_net(), ctx)
        x, y = _batch()
        shard = list(range(6))[rank::world]
        loss, mean_share, n = engine._batch_loss(net(x[shard]), y[shard], torch.tensor([1.0, 2.0, 4.0]), ctx,
                                                 kind)
        loss.backward()
        if rank == 0:
            state = net.module.state_dict()
            torch.save({"grads": [p.grad for p in net.module.parameters()], "n": n, "mean_share": mean_share,
                        "running_var": state["1.running_var"], "running_mean": state["1.running_mean"]}, out)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("kind", model.LOSSES)
def test_ddp_gradient_with_synced_batchnorm_equals_the_full_batch_gradient(tmp_path, kind):
    """Both losses (train.loss): each term normalised by its global weight sum under DDP."""
    out = tmp_path / "rank0.pt"
    # fork: the children start with this process's imports (a spawn re-imports for ~10 s each)
    torch_mp.start_processes(_ddp_step, args=(2, _free_port(), str(out), kind), nprocs=2, join=True,
                             start_method="fork")
    got = torch.load(out, weights_only=True)
    net = _tiny_net()
    x, y = _batch()
    loss = model.batch_loss(net(x), y, torch.tensor([1.0, 2.0, 4.0]), kind)
    loss.backward()
    assert got["n"] == 6
    for mine, want in zip(got["grads"], [p.grad for p in net.parameters()]):
        torch.testing.assert_close(mine, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got["running_mean"], net[1].running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got["running_var"], net[1].running_var, rtol=1e-5, atol=1e-6)


def _stage(cwd: Path, rois: Path, launcher: list[str]) -> subprocess.CompletedProcess:
    """Run `lsdc train-classifier` in cwd (its own outputs and MLflow file store)."""
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_ALLOW_FILE_STORE": "true",
           "LSDC_TRACKING_URI": (cwd / "mlruns").as_uri()}
    for var in distributed.ENV_VARS:
        env.pop(var, None)
    cmd = [*launcher, "-m", "lsdc.cli", "train-classifier", "--params", str(ROOT / "params.yaml"),
           "--rois-dir", str(rois), *sets]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_cpu_processes_match_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    inputs = write_fake_inputs(tmp_path / "in", n_studies=12, roi_size=16, n_folds=N_FOLDS)
    runs = {}
    launchers = {"single": [sys.executable],
                 "ddp": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]}
    for name, launcher in launchers.items():
        cwd = tmp_path / name
        for src, dst in ((inputs["labels"], train.Paths().labels), (inputs["folds"], train.Paths().folds)):
            (cwd / dst).parent.mkdir(parents=True, exist_ok=True)
            (cwd / dst).write_bytes(src.read_bytes())
        proc = _stage(cwd, inputs["rois"], launcher)
        assert proc.returncode == 0, f"{name}: {proc.stderr[-3000:]}"
        runs[name] = (cwd, proc)
    (one, _one_proc), (two, two_proc) = runs["single"], runs["ddp"]
    # one report line: only rank 0 prints
    assert len([ln for ln in two_proc.stdout.splitlines() if ln.startswith('{"oof_score"')]) == 1
    oof1, oof2 = (pd.read_parquet(d / train.Paths().oof) for d in (one, two))
    assert oof1[["study_id", "fold"]].equals(oof2[["study_id", "fold"]])
    p1, p2 = oof_table.probs_of(oof1), oof_table.probs_of(oof2)
    diff = float(np.abs(p1 - p2).max())
    print(f"max |OOF prob difference| 1 vs 2 processes: {diff:.2e}")
    np.testing.assert_allclose(p2, p1, rtol=0, atol=OOF_ATOL)
    for k in range(N_FOLDS):  # the per-epoch training loss (global batch, weighted) agrees too
        c1, c2 = (pd.read_csv(d / train.Paths().curves / f"fold_{k}.csv") for d in (one, two))
        assert c2["epoch"].tolist() == list(range(TINY["train.epochs"]))  # one writer, no duplicate rows
        np.testing.assert_allclose(c2["train_loss"], c1["train_loss"], rtol=1e-4)
    # one set of outputs
    assert sorted(p.name for p in (two / train.Paths().checkpoints).iterdir()) == ["fold_0.pt", "fold_1.pt"]
    summary = headline.load(two / train.Paths().summary)
    assert summary["processes"] == 2 and sorted(summary["folds"]) == ["fold_0", "fold_1"]
    # one MLflow parent run with its fold runs
    mlflow.set_tracking_uri((two / "mlruns").as_uri())
    found = mlflow.search_runs(search_all_experiments=True)
    parents = found[found["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1 and parents["tags.processes"].iloc[0] == "2"
    children = found[found["tags.mlflow.parentRunId"] == parents["run_id"].iloc[0]]
    assert sorted(children["tags.mlflow.runName"]) == ["fold_0", "fold_1"]
    assert len(found) == 1 + N_FOLDS
