"""Every collective that a loss uses lives here.

Under DDP each loss in `sslprobe.losses` is *defined* as the loss of the global batch (the
concatenation of every rank's batch, in rank order). With ``gather_distributed=True`` a loss
gathers its inputs with `gather_with_grad`, computes that global loss identically on every
rank, and backpropagates. The gather's backward sums the gradient that every rank computed for
each slice and hands a rank the rows it contributed; DDP then averages parameter gradients over
the W ranks. Together: rank r's slice receives ``W * dL/dz_r`` and the average over ranks gives
exactly ``dL/dθ`` of the global loss (tests/losses/test_distributed_equivalence.py proves it).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


class DistributedUnavailableError(RuntimeError):
    """Raised when a loss is asked to gather across ranks but no process group exists."""


def require_process_group() -> None:
    if not (dist.is_available() and dist.is_initialized()):
        raise DistributedUnavailableError(
            "gather_distributed=True needs an initialised torch.distributed process group "
            "(run under DDP, or pass gather_distributed=False)"
        )


def world_size() -> int:
    """Number of ranks, 1 when no process group is initialised."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _AllGatherWithGrad(torch.autograd.Function):
    """Concatenate every rank's rows; backward sums gradients over ranks, returns own rows."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        rank = dist.get_rank()
        ctx.start = sum(sizes[:rank])
        ctx.stop = ctx.start + sizes[rank]
        longest = max(sizes)
        padded = x.new_zeros((longest, *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([part[:n] for part, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop], None


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All-gather ``x`` (B_r, ...) from every rank into (sum_r B_r, ...), differentiably.

    Ranks may hold different numbers of rows. Raises `DistributedUnavailableError` without a
    process group.
    """
    require_process_group()
    if dist.get_world_size() == 1:
        return x
    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return _AllGatherWithGrad.apply(x, [int(s.item()) for s in sizes])


def gather_views(
    z1: torch.Tensor, z2: torch.Tensor, gather_distributed: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both views of the global batch when ``gather_distributed``, else the inputs unchanged."""
    if not gather_distributed:
        return z1, z2
    return gather_with_grad(z1), gather_with_grad(z2)


def all_gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` over ranks without autograd (for probes); identity without DDP."""
    if world_size() == 1:
        return x
    with torch.no_grad():
        return gather_with_grad(x.detach())
