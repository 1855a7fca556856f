import json
import math

import numpy as np
import pytest
import torch

from sslprobe.losses import barlow_twins_loss, info_nce_loss, nt_xent_loss, spectral_contrastive_loss
from sslprobe.probes import (
    LandscapeOptions,
    LandscapeResult,
    grid_local_minima,
    landscape_report,
    loss_landscape,
    reference_loss,
    rescale_landscape_1d,
    rescale_singular_halves,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tensors here are tiny: extra intra-op threads only add synchronisation."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


SCALES = np.linspace(0.0, 2.0, 9)
SMALL_GRID = np.linspace(0.0, 2.0, 5)


def two_views(n=32, d_in=6, d_out=5, noise=0.2, weight_scale=1.0, seed=0):
    """Inputs of a linear layer for two correlated views, plus the layer's weight and bias."""
    generator = torch.Generator().manual_seed(seed)
    h1 = torch.randn(n, d_in, generator=generator)
    h2 = h1 + noise * torch.randn(n, d_in, generator=generator)
    weight = weight_scale * torch.randn(d_out, d_in, generator=generator) / math.sqrt(d_in)
    bias = 0.3 * torch.randn(d_out, generator=generator)
    return h1, h2, weight, bias


def direct_loss(loss_fn, h1, h2, weight, bias=None):
    """The loss recomputed from scratch for one explicit weight matrix."""
    weight = torch.as_tensor(weight, dtype=torch.float32)
    z1, z2 = h1 @ weight.T, h2 @ weight.T
    if bias is not None:
        z1, z2 = z1 + bias, z2 + bias
    return float(loss_fn(z1, z2))


def halves_rescaled(weight, r1, r2):
    """W with its ceil(k/2) largest singular values times r1, the others times r2 (numpy SVD)."""
    u, s, vt = np.linalg.svd(weight.double().numpy(), full_matrices=False)
    n_large = math.ceil(len(s) / 2)
    factors = np.r_[np.full(n_large, r1), np.full(len(s) - n_large, r2)]
    return (u * (s * factors)) @ vt


def test_1d_landscape_of_gaussian_info_nce_matches_direct_evaluation():
    h1, h2, weight, bias = two_views()
    a, loss = rescale_landscape_1d(h1, h2, weight, bias, info_nce_loss, scales=SCALES)
    np.testing.assert_array_equal(a, SCALES)
    for i in (0, 3, 6, 8):
        expected = direct_loss(info_nce_loss, h1, h2, a[i] * weight, bias)
        assert loss[i] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    _, scaled = rescale_landscape_1d(
        h1, h2, weight, bias, info_nce_loss, scales=SCALES, options=LandscapeOptions(scale_bias=True)
    )
    expected = direct_loss(info_nce_loss, h1, h2, a[3] * weight, a[3] * bias)
    assert scaled[3] == pytest.approx(expected, rel=1e-5)


def test_2d_landscape_of_gaussian_info_nce_matches_direct_evaluation_with_odd_rank():
    h1, h2, weight, bias = two_views(d_out=5)  # 5 singular values: 3 in the larger half
    r1, r2, loss = rescale_singular_halves(h1, h2, weight, bias, info_nce_loss, r1=SMALL_GRID, r2=SCALES)
    assert loss.shape == (5, 9)
    for i, j in [(0, 0), (1, 7), (4, 2), (2, 4), (3, 8)]:
        expected = direct_loss(info_nce_loss, h1, h2, halves_rescaled(weight, r1[i], r2[j]), bias)
        assert loss[i, j] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    _, _, diagonal = rescale_singular_halves(h1, h2, weight, bias, info_nce_loss, r1=SCALES, r2=SCALES)
    _, line = rescale_landscape_1d(h1, h2, weight, bias, info_nce_loss, scales=SCALES)
    np.testing.assert_allclose(np.diag(diagonal), line, rtol=1e-5)


def test_weight_decay_adds_half_gamma_times_squared_norm():
    h1, h2, weight, bias = two_views()
    gamma = 0.3
    _, plain = rescale_landscape_1d(h1, h2, weight, bias, info_nce_loss, scales=SCALES)
    _, decayed = rescale_landscape_1d(h1, h2, weight, bias, info_nce_loss, scales=SCALES,
                                     options=LandscapeOptions(weight_decay=gamma))
    squared_norm = float(weight.double().pow(2).sum())
    np.testing.assert_allclose(decayed - plain, gamma / 2 * SCALES**2 * squared_norm, rtol=1e-6)
    _, _, plain_2d = rescale_singular_halves(h1, h2, weight, bias, info_nce_loss, r1=SMALL_GRID, r2=SCALES)
    _, _, decayed_2d = rescale_singular_halves(
        h1, h2, weight, bias, info_nce_loss, r1=SMALL_GRID, r2=SCALES, options=LandscapeOptions(weight_decay=gamma)
    )
    norms = np.array([[np.sum(halves_rescaled(weight, x, y) ** 2) for y in SCALES] for x in SMALL_GRID])
    np.testing.assert_allclose(decayed_2d - plain_2d, gamma / 2 * norms, rtol=1e-6)


def test_batches_head_and_loop_fallback_agree_with_direct_evaluation():
    h1, h2, weight, bias = two_views(n=40)

    def head(y):
        return torch.tanh(y)

    def not_vmappable(z1, z2):  # .item() cannot run under vmap: the probe must fall back
        scale = 1.0 if z1.abs().max().item() >= 0 else 0.0
        return scale * info_nce_loss(head(z1), head(z2))

    def expected(a):  # batches of 16 rows: rows 0-15, 16-31; the last 8 rows are dropped
        z1, z2 = h1 @ (a * weight).T + bias, h2 @ (a * weight).T + bias
        return np.mean([float(info_nce_loss(head(z1[s : s + 16]), head(z2[s : s + 16]))) for s in (0, 16)])

    _, mapped = rescale_landscape_1d(
        h1, h2, weight, bias, info_nce_loss, head=head, scales=SCALES,
        options=LandscapeOptions(batch_size=16, chunk_size=4),
    )
    _, looped = rescale_landscape_1d(h1, h2, weight, bias, not_vmappable, scales=SCALES,
                                  options=LandscapeOptions(batch_size=16))
    for i in (1, 4, 8):
        assert mapped[i] == pytest.approx(expected(SCALES[i]), rel=1e-5)
    np.testing.assert_allclose(looped, mapped, rtol=1e-5)


def test_reference_loss_is_the_unmodified_layer_and_result_round_trips(tmp_path):
    h1, h2, weight, bias = two_views()
    result = loss_landscape(
        h1, h2, weight, bias, info_nce_loss, scales=SCALES, r1=SCALES, r2=SMALL_GRID,
        options=LandscapeOptions(weight_decay=0.1),
    )
    reference = direct_loss(info_nce_loss, h1, h2, weight, bias) + 0.05 * float(weight.double().pow(2).sum())
    assert result.reference_loss == pytest.approx(reference, rel=1e-6)
    decayed = LandscapeOptions(weight_decay=0.1)
    assert reference_loss(h1, h2, weight, bias, info_nce_loss, options=decayed) == pytest.approx(reference)
    assert result.loss_1d[4] == pytest.approx(reference, rel=1e-5)  # a = 1
    assert result.loss_2d[4, 2] == pytest.approx(reference, rel=1e-5)  # r1 = r2 = 1
    result.save(tmp_path / "landscape.npz")
    with np.load(tmp_path / "landscape.npz") as data:
        assert set(data.files) >= {"a", "loss_1d", "r1", "r2", "loss_2d", "reference_loss"}
    loaded = LandscapeResult.load(tmp_path / "landscape.npz")
    np.testing.assert_array_equal(loaded.loss_2d, result.loss_2d)
    assert loaded.reference_loss == result.reference_loss


# weight scales: SCL clips embeddings to norm sqrt(mu) = 1, which would make it scale-invariant
# too once every embedding is clipped, so its embeddings are kept short; Barlow Twins adds
# eps = 1e-5 to the batch variance, which breaks exact invariance when the variance is tiny,
# so its embeddings are kept long.
LOSSES = {
    "nt_xent": (nt_xent_loss, 1.0, True),
    "barlow_twins": (barlow_twins_loss, 4.0, True),
    "spectral_contrastive": (spectral_contrastive_loss, 0.25, False),
    "info_nce": (info_nce_loss, 1.0, False),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_scale_invariance_is_detected_only_for_normalised_losses(name):
    loss_fn, weight_scale, invariant = LOSSES[name]
    h1, h2, weight, _ = two_views(n=48, d_in=8, d_out=6, weight_scale=weight_scale)
    result = loss_landscape(h1, h2, weight, None, loss_fn, scales=np.linspace(0, 2, 17), r1=SCALES, r2=SCALES)
    report = landscape_report(result)
    assert report["scale_invariant"] is invariant, report
    if invariant:
        assert "only the 2-D" in report["message"]
        assert report["relative_range_2d"] > 1e-3  # the 2-D probe still sees the loss change
        # a curve flat by construction says nothing about the origin: null, not "maximum"/true
        assert report["origin"] is None and report["origin_is_local_max"] is None
        assert json.loads(json.dumps(report))["origin_is_local_max"] is None
    else:
        assert report["relative_range_1d"] > 1e-3
        assert report["origin"] in ("maximum", "minimum", "flat")
        assert report["origin_is_local_max"] is (report["origin"] == "maximum")


def test_scale_invariance_is_judged_on_the_loss_without_weight_decay():
    h1, h2, weight, _ = two_views(n=48, d_in=8, d_out=6)
    result = loss_landscape(
        h1, h2, weight, None, nt_xent_loss, scales=SCALES, r1=SMALL_GRID, r2=SMALL_GRID,
        options=LandscapeOptions(weight_decay=0.1),
    )
    assert np.ptp(result.loss_1d[2:]) > 1e-2  # the decay term alone bends the curve
    np.testing.assert_allclose(result.decay_1d, 0.05 * SCALES**2 * float(weight.double().pow(2).sum()))
    assert landscape_report(result)["scale_invariant"]


def test_two_dimensional_probe_is_not_flat_for_nt_xent():
    h1, h2, weight, _ = two_views(n=48, d_in=8, d_out=6)
    _, _, loss = rescale_singular_halves(h1, h2, weight, None, nt_xent_loss, r1=SCALES, r2=SCALES)
    inner = loss[2:, 2:]  # r1, r2 >= 0.5
    assert (inner.max() - inner.min()) / np.abs(inner).max() > 1e-2
    # constant along rays r2 / r1 = const, as scale invariance demands
    assert loss[2, 4] == pytest.approx(loss[4, 8], rel=1e-5)


def test_origin_is_a_maximum_without_decay_and_a_minimum_with_strong_decay():
    # correlated views: the Hessian at the origin (B = A0 for InfoNCE, Eq. 4-6) is positive
    h1, h2, weight, _ = two_views(n=48, noise=0.1)
    result = loss_landscape(h1, h2, weight, None, info_nce_loss, scales=SCALES, r1=SMALL_GRID, r2=SMALL_GRID)
    report = landscape_report(result)
    assert report["origin"] == "maximum" and report["origin_is_local_max"]
    assert not report["scale_invariant"]
    # weight decay gamma shifts B to B - gamma I (Section 3.1): large gamma makes W = 0 a minimum
    decayed = loss_landscape(
        h1, h2, weight, None, info_nce_loss, scales=SCALES, r1=SMALL_GRID, r2=SMALL_GRID,
        options=LandscapeOptions(weight_decay=50.0),
    )
    report = landscape_report(decayed)
    assert report["origin"] == "minimum" and not report["origin_is_local_max"]
    assert report["min_1d_a"] == 0.0


def test_grid_local_minima_finds_both_wells_best_first():
    x = np.linspace(-2, 2, 21)
    y = np.linspace(-1, 1, 11)
    values = (x[:, None] ** 2 - 1) ** 2 + y[None, :] ** 2 + 0.1 * x[:, None]
    minima = grid_local_minima(values)
    assert [tuple(x_y) for x_y in minima] == [(5, 5), (15, 5)]  # x = -1 (lower), then x = +1
    assert len(grid_local_minima(np.zeros((3, 3)))) == 9
