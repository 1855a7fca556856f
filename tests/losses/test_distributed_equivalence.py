"""2 ranks × DDP with ``gather_distributed=True`` == 1 process on the concatenated batch.

One spawn of 2 CPU processes (gloo on 127.0.0.1) runs every loss: each rank wraps the same
``nn.Linear(8, 6)`` in DistributedDataParallel, embeds its own, different slice of a fixed batch,
computes the loss with ``gather_distributed=True`` and backpropagates. The loss on each rank and
the parameter gradients after DDP's averaging must equal the loss and gradients of one process
computing the loss (``gather_distributed=False``) on the whole batch. Both an equal split (4 + 4)
and an unequal one (3 + 5, which the gather pads) are checked.

A negative control swaps the gather for the classic naive version (``dist.all_gather`` with the
local slice re-inserted, so gradients are not summed over ranks) and shows that the same
comparison then fails for every loss (gradients 1/W of the truth); a second control computes each
rank's loss on its own batch only (``gather_distributed=False``) and fails too.
"""

from __future__ import annotations

import datetime
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import sslprobe.losses.distributed as distributed_module
from sslprobe.losses import (
    barlow_twins_loss,
    info_nce_loss,
    nt_xent_loss,
    spectral_contrastive_loss,
    vicreg_loss,
)

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(120)]

WORLD_SIZE = 2
GLOBAL_BATCH = 8
IN_FEATURES, OUT_FEATURES = 8, 6
SPLITS = {"equal 4+4": (4, 4), "unequal 3+5": (3, 5)}
RTOL, ATOL = 1e-5, 1e-12

# name -> (loss function, keyword arguments)
CASES: dict[str, tuple] = {
    "nt_xent": (nt_xent_loss, {"temperature": 0.5}),
    "info_nce a=1 b=1": (info_nce_loss, {"temperature": 1.0, "alpha": 1.0, "beta": 1.0}),
    "info_nce a=0 b=1 norm": (
        info_nce_loss,
        {"temperature": 0.5, "alpha": 0.0, "beta": 1.0, "normalize": True},
    ),
    "info_nce a=.5 b=.7": (info_nce_loss, {"temperature": 2.0, "alpha": 0.5, "beta": 0.7}),
    "info_nce a=1 b=1 norm": (info_nce_loss, {"temperature": 0.2, "normalize": True}),
    "spectral_contrastive": (spectral_contrastive_loss, {"mu": 1.0}),
    "barlow_twins": (barlow_twins_loss, {"lambd": 0.05}),
    "vicreg": (vicreg_loss, {}),
}


def fixed_problem() -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Initial weights and two (GLOBAL_BATCH, IN_FEATURES) views; rows all different."""
    generator = torch.Generator().manual_seed(1234)
    model = nn.Linear(IN_FEATURES, OUT_FEATURES).double()
    with torch.no_grad():
        model.weight.copy_(
            torch.randn(OUT_FEATURES, IN_FEATURES, generator=generator, dtype=torch.float64) * 0.3
        )
        model.bias.copy_(torch.randn(OUT_FEATURES, generator=generator, dtype=torch.float64) * 0.1)
    x1 = torch.randn(GLOBAL_BATCH, IN_FEATURES, generator=generator, dtype=torch.float64)
    x2 = 0.8 * x1 + 0.6 * torch.randn(GLOBAL_BATCH, IN_FEATURES, generator=generator, dtype=torch.float64)
    return model.state_dict(), x1, x2


def embed(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass over both views (a single DDP forward per backward)."""
    z = model(torch.cat([x1, x2]))  # (2b, OUT_FEATURES)
    return z[: x1.shape[0]], z[x1.shape[0] :]


def loss_and_grads(model: nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    loss.backward()
    return {"loss": loss.detach().clone(), **{name: p.grad.clone() for name, p in model.named_parameters()}}


def naive_gather(x: torch.Tensor) -> torch.Tensor:
    """The usual silent bug: torch's all_gather (no autograd) with the local slice put back.

    Gradients reach only the rows a rank owns and are never summed over ranks, so after DDP's
    averaging the parameter gradient is 1/W of the true one.
    """
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts)


def run_rank(rank: int, port: int, state: dict, x1: torch.Tensor, x2: torch.Tensor, out_dir: str) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        results: dict = {"gathered": {}, "naive": {}, "local": {}}

        def run_case(loss_fn, kwargs, sizes, gather=True):
            start = sum(sizes[:rank])
            stop = start + sizes[rank]
            model = nn.Linear(IN_FEATURES, OUT_FEATURES).double()
            model.load_state_dict(state)
            ddp = DistributedDataParallel(model)
            z1, z2 = embed(ddp, x1[start:stop], x2[start:stop])
            return loss_and_grads(model, loss_fn(z1, z2, gather_distributed=gather, **kwargs))

        for split, sizes in SPLITS.items():
            for name, (loss_fn, kwargs) in CASES.items():
                results["gathered"][(name, split)] = run_case(loss_fn, kwargs, sizes)

        # Negative controls. Per-rank losses without the gather:
        for name, (loss_fn, kwargs) in CASES.items():
            results["local"][name] = run_case(loss_fn, kwargs, SPLITS["unequal 3+5"], gather=False)
        # The same comparison with the naive gather patched in (equal split only:
        # torch's all_gather needs equal sizes).
        proper = distributed_module.gather_with_grad
        distributed_module.gather_with_grad = naive_gather
        try:
            for name, (loss_fn, kwargs) in CASES.items():
                results["naive"][name] = run_case(loss_fn, kwargs, SPLITS["equal 4+4"])
        finally:
            distributed_module.gather_with_grad = proper
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def relative_difference(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> float:
    """The larger of |Δloss| / |loss| and max|Δgrad| / max|grad| over all parameters together.

    (Parameters are pooled: several losses are shift-invariant, so their bias gradient is 0.)
    """
    grads = [k for k in expected if k != "loss"]
    loss_error = ((actual["loss"] - expected["loss"]).abs() / expected["loss"].abs()).item()
    grad_error = max((actual[k] - expected[k]).abs().max().item() for k in grads)
    grad_scale = max(expected[k].abs().max().item() for k in grads)
    return max(loss_error, grad_error / grad_scale)


def matches(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> bool:
    return all(torch.allclose(actual[k], expected[k], rtol=RTOL, atol=ATOL) for k in expected)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    state, x1, x2 = fixed_problem()
    out_dir = tmp_path_factory.mktemp("ddp")
    mp.spawn(run_rank, args=(free_port(), state, x1, x2, str(out_dir)), nprocs=WORLD_SIZE, join=True)
    per_rank = [torch.load(out_dir / f"rank{r}.pt") for r in range(WORLD_SIZE)]

    references = {}
    for name, (loss_fn, kwargs) in CASES.items():
        model = nn.Linear(IN_FEATURES, OUT_FEATURES).double()
        model.load_state_dict(state)
        z1, z2 = embed(model, x1, x2)
        references[name] = loss_and_grads(model, loss_fn(z1, z2, gather_distributed=False, **kwargs))

    differences = {
        name: max(
            relative_difference(per_rank[r]["gathered"][(name, split)], references[name])
            for r in range(WORLD_SIZE)
            for split in SPLITS
        )
        for name in CASES
    }
    naive_differences = {
        name: max(
            relative_difference(per_rank[r]["naive"][name], references[name]) for r in range(WORLD_SIZE)
        )
        for name in CASES
    }
    local_differences = {
        name: max(
            relative_difference(per_rank[r]["local"][name], references[name]) for r in range(WORLD_SIZE)
        )
        for name in CASES
    }
    print(f"\n{'loss':<24} {'gather (max rel diff)':>22} {'control: naive':>16} {'control: local':>16}")
    for name in CASES:
        print(
            f"{name:<24} {differences[name]:>22.2e} {naive_differences[name]:>16.2e}"
            f" {local_differences[name]:>16.2e}"
        )
    return {"per_rank": per_rank, "references": references}


def test_spectral_contrastive_case_exercises_norm_clipping():
    # The SCL comparison must cover both clipped and unclipped rows to test the clip's gradient.
    state, x1, x2 = fixed_problem()
    model = nn.Linear(IN_FEATURES, OUT_FEATURES).double()
    model.load_state_dict(state)
    with torch.no_grad():
        norms = model(torch.cat([x1, x2])).norm(dim=1)
    mu = CASES["spectral_contrastive"][1]["mu"]
    assert (norms > mu**0.5).any() and (norms < mu**0.5).any()


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize("name", list(CASES))
def test_two_ranks_match_one_process(outcome, name, split):
    expected = outcome["references"][name]
    for rank, results in enumerate(outcome["per_rank"]):
        actual = results["gathered"][(name, split)]
        for key in expected:
            assert torch.allclose(actual[key], expected[key], rtol=RTOL, atol=ATOL), (
                f"{name} ({split}), rank {rank}: {key} differs from the 1-process global-batch value; "
                f"max rel diff {relative_difference(actual, expected):.2e}"
            )


@pytest.mark.parametrize("name", list(CASES))
def test_naive_gather_fails_the_same_comparison(outcome, name):
    expected = outcome["references"][name]
    for rank, results in enumerate(outcome["per_rank"]):
        actual = results["naive"][name]
        # The forward value is right (the naive gather concatenates correctly) ...
        assert torch.allclose(actual["loss"], expected["loss"], rtol=RTOL, atol=ATOL), name
        # ... but the gradients are 1/W of the truth, and the comparison catches it.
        assert not matches(actual, expected), f"{name}, rank {rank}: the naive gather was not caught"
        for key in ("weight", "bias"):
            assert torch.allclose(actual[key] * WORLD_SIZE, expected[key], rtol=RTOL, atol=ATOL), name


@pytest.mark.parametrize("name", list(CASES))
def test_local_negatives_fail_the_same_comparison(outcome, name):
    # gather_distributed=False under DDP: each rank's loss sees only its own batch.
    expected = outcome["references"][name]
    for rank, results in enumerate(outcome["per_rank"]):
        assert not matches(results["local"][name], expected), f"{name}, rank {rank}: local loss not caught"
