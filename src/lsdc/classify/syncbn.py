"""BatchNorm with statistics over the global batch of all DDP ranks.

On CUDA: torch's SyncBatchNorm (timm's converter, which also handles timm's BatchNormAct).
On CPU, where torch's SyncBatchNorm refuses to run, `AllReduceBatchNorm`: mean and
variance from sums all-reduced across ranks (float64, two passes), autograd through a
differentiable all_reduce, so forward, backward and running statistics are those of one
BatchNorm over the whole global batch. The state_dict keys are BatchNorm's, so
checkpoints load into the plain model.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

log = logging.getLogger(__name__)

PLAIN_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; its gradient is the sum over ranks of the incoming gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def all_reduce(tensor: torch.Tensor, group=None) -> torch.Tensor:
    return _AllReduceSum.apply(tensor, group)


class AllReduceBatchNorm(_BatchNorm):
    """BatchNorm over all ranks' samples in training mode; plain BatchNorm in eval mode."""

    process_group = None  # a separate gloo group, so its collectives never interleave with DDP's

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"AllReduceBatchNorm expects (N, C, ...) input, got {x.dim()}-D")

    def _synced(self) -> bool:
        return (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size(self.process_group) > 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._synced():
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float64, device=x.device)
        sums = all_reduce(torch.cat([x.sum(dims, dtype=torch.float64), count]), group=self.process_group)
        n = sums[-1].detach()
        if n < 2:
            raise ValueError(f"BatchNorm over {int(n)} value(s) per channel: increase train.batch_size")
        mean = sums[:-1] / n
        centred = x - mean.to(x.dtype).view(shape)
        var = all_reduce((centred * centred).sum(dims, dtype=torch.float64), group=self.process_group) / n
        y = centred * torch.rsqrt(var + self.eps).to(x.dtype).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach() * n / (n - 1))
        return y

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased_var.to(self.running_var.dtype), alpha=factor)


def _replace_cpu(module: nn.Module, group) -> nn.Module:
    if type(module) in PLAIN_BN:
        new = AllReduceBatchNorm(module.num_features, module.eps, module.momentum,
                                 module.affine, module.track_running_stats)
        new.process_group = group
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    if isinstance(module, _BatchNorm) and not isinstance(module, AllReduceBatchNorm):
        log.warning("%s keeps per-rank BatchNorm statistics (no CPU sync for this type)",
                    type(module).__name__)
    for name, child in module.named_children():
        module.add_module(name, _replace_cpu(child, group))
    return module


def convert(model: nn.Module, device: torch.device) -> nn.Module:
    """The model with every BatchNorm synchronised across the process group's ranks."""
    if device.type == "cuda":
        try:
            from timm.layers import convert_sync_batchnorm
        except ImportError:
            convert_sync_batchnorm = nn.SyncBatchNorm.convert_sync_batchnorm
        return convert_sync_batchnorm(model)
    group = dist.new_group(backend="gloo")  # collective: every rank converts in the same order
    return _replace_cpu(model, group)
