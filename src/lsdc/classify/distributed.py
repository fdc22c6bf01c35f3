"""Data-parallel training under `torchrun`: process group, device per rank, batch sharding.

`torchrun --nproc_per_node=N -m lsdc.cli train-classifier` sets WORLD_SIZE, RANK and
LOCAL_RANK; `session` then joins the process group (gloo on CPU, NCCL on CUDA, each
rank on cuda:LOCAL_RANK). Without those variables it is a no-op single-process context.

Equivalence with one process: `train.batch_size` is the global batch. Every rank draws
the same seeded permutation and takes a rank-strided shard of each global batch
(`ShardedBatchSampler`), so the ranks' shards together are exactly the single-process
batch; the loss is normalised by the global weight sum (`engine`), and BatchNorm is
synchronised across ranks (`syncbn`), so the averaged gradient is the one-process gradient.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

log = logging.getLogger(__name__)

ENV_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
# rank 0 validates alone while the others wait at the next collective: allow long validations
TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class Context:
    """Where this process stands: rank, world size, device; `distributed` once the group is joined."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"runtime.train_device={name!r} but CUDA is not available")
    return device


def launch_env() -> tuple[int, int, int] | None:
    """(rank, world_size, local_rank) from torchrun's environment; None when not launched by it."""
    present = [v for v in ENV_VARS if v in os.environ]
    if not present:
        return None
    if len(present) != len(ENV_VARS):
        missing = sorted(set(ENV_VARS) - set(present))
        raise ValueError(f"distributed launch: {present} set but {missing} missing (launch with torchrun)")
    try:
        rank, world, local = (int(os.environ[v]) for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError as e:
        raise ValueError(f"distributed launch: RANK/WORLD_SIZE/LOCAL_RANK must be integers ({e})") from e
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"distributed launch: RANK={rank} WORLD_SIZE={world} LOCAL_RANK={local} inconsistent")
    return rank, world, local


def rank_device(name: str, local_rank: int) -> torch.device:
    """The device of one rank: runtime.train_device's type, CUDA index = LOCAL_RANK."""
    device = resolve_device(name)
    if device.type != "cuda":
        return device
    if local_rank >= torch.cuda.device_count():
        raise ValueError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s)")
    if device.index not in (None, local_rank):
        log.warning("runtime.train_device=%s ignored under torchrun: rank uses cuda:%d", name, local_rank)
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def session(device_name: str) -> Iterator[Context]:
    """Join torchrun's process group for the duration (then destroy it); single process otherwise."""
    env = launch_env()
    if env is None:
        yield Context(device=resolve_device(device_name))
        return
    rank, world, local = env
    device = rank_device(device_name, local)
    owns_group = not dist.is_initialized()
    if owns_group:
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", timeout=TIMEOUT, device_id=device)
        else:
            dist.init_process_group("gloo", timeout=TIMEOUT)
    root = logging.getLogger()
    level = root.level
    if rank != 0:
        root.setLevel(logging.WARNING)  # one copy of the progress log, from rank 0
    log.info("DDP: %d processes, backend %s, rank 0 on %s", world, dist.get_backend(), device)
    try:
        yield Context(device=device, rank=rank, world_size=world, local_rank=local, distributed=True)
    finally:
        root.setLevel(level)
        if owns_group:
            dist.destroy_process_group()


def local_batch_size(global_batch: int, ctx: Context) -> int:
    if global_batch < 1:
        raise ValueError(f"train.batch_size={global_batch} must be at least 1")
    if global_batch % ctx.world_size:
        raise ValueError(f"train.batch_size={global_batch} (the global batch) is not divisible by "
                         f"the {ctx.world_size} processes of the launch")
    return global_batch // ctx.world_size


class ShardedBatchSampler(Sampler[list[int]]):
    """Global batches of `batch_size` from `sampler`; this rank gets batch[rank::world_size].

    With world_size 1 it is torch's BatchSampler: the same batches as a DataLoader with
    the same sampler. Raises if a (last, partial) batch leaves a rank without a sample.
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool,
                 rank: int = 0, world_size: int = 1):
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last
        self.rank, self.world_size = rank, world_size

    def _shard(self, batch: list[int]) -> list[int]:
        if len(batch) < self.world_size:
            raise ValueError(f"a batch of {len(batch)} studies cannot be split over {self.world_size} "
                             "processes (training set smaller than the number of processes)")
        return batch[self.rank::self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield self._shard(batch)
                batch = []
        if batch and not self.drop_last:
            yield self._shard(batch)

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def all_reduce_sum(values: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Sum over ranks (a new tensor; the input when not distributed)."""
    if not ctx.distributed:
        return values
    out = values.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def broadcast_flag(flag: bool, ctx: Context) -> bool:
    """Rank 0's decision, on every rank."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int64, device=ctx.device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def wrap(model: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """DistributedDataParallel over the model with synchronised BatchNorm; the model itself otherwise."""
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    from lsdc.classify import syncbn

    model = syncbn.convert(model, ctx.device)
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
