"""SimSiam: its loss against the paper's formula, the stop-gradient, and the method's objective."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from helpers import TINY_MODEL  # tests/helpers.py

from sslprobe.losses.simsiam import simsiam_loss
from sslprobe.methods import SimSiam


def paper_formula(p1, p2, z1, z2):
    """Chen & He (2021), Algorithm 1, one sample at a time: L = D(p1, z2)/2 + D(p2, z1)/2."""
    def D(p, z):  # noqa: N802 - the paper's name
        return -torch.stack([F.cosine_similarity(p[i], z[i].detach(), dim=0) for i in range(len(p))]).mean()
    return D(p1, z2) / 2 + D(p2, z1) / 2


def test_loss_is_the_papers_and_no_gradient_reaches_the_targets():
    generator = torch.Generator().manual_seed(0)
    p1, p2, z1, z2 = (torch.randn(6, 5, generator=generator, dtype=torch.float64, requires_grad=True)
                      for _ in range(4))
    loss = simsiam_loss(p1, p2, z1, z2)
    torch.testing.assert_close(loss, paper_formula(p1, p2, z1, z2))
    loss.backward()
    assert z1.grad is None and z2.grad is None  # stop-gradient
    # d/dp of −cos(p, z)/(2B): −(ẑ − cos · p̂) / (2B |p|)
    p_hat, z_hat = F.normalize(p1.detach(), dim=1), F.normalize(z2.detach(), dim=1)
    cos = (p_hat * z_hat).sum(1, keepdim=True)
    expected = -(z_hat - cos * p_hat) / (2 * 6 * p1.detach().norm(dim=1, keepdim=True))
    torch.testing.assert_close(p1.grad, expected)
    # Perfect predictions give the minimum, −1.
    torch.testing.assert_close(simsiam_loss(z2, z1, z1, z2), torch.tensor(-1.0, dtype=torch.float64))


def test_objective_runs_the_predictor_and_the_probes_that_apply():
    model = SimSiam(**TINY_MODEL, predictor_hidden_dim=12).eval()
    assert model.predictor[0].in_features == 8 and model.predictor[-1].out_features == 8
    z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
    with torch.no_grad():
        expected = paper_formula(model.predictor(z1), model.predictor(z2), z1, z2)
        torch.testing.assert_close(model.loss_fn(z1, z2), expected)
    # The landscape probe rescales the projector's last layer and evaluates this same objective.
    assert model.probe_unavailable("landscape") is None and model.probe_unavailable("spectrum") is None
    assert "origin Hessian" in model.probe_unavailable("theory")
    assert "predictor_hidden_dim" in model.architecture_keys
    # Trained by the optimizer: backbone, projector and predictor.
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=0.1)
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == sum(
        p.numel() for p in model.parameters())
