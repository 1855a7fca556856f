"""Fig. 1 and Fig. 7 of Ziyin et al. (2023): measured loss landscapes with the theory's overlaid."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from matplotlib.figure import Figure

from sslprobe.losses import info_nce_loss
from sslprobe.theory import (
    expected_linear_loss,
    expected_mlp_loss,
    feature_covariances,
    gaussian_dataset,
    isotropic_noise_factors,
    landscape,
    local_minimum_rank,
    origin_hessian,
    pair_covariance,
    paper_n_from_batch,
    quartic_weight,
    stationary_gram,
    train_mlp_models,
)


def figure1(cfg: dict, out: Path) -> dict:
    """Fig. 1: expected β-InfoNCE (β = 0.5) over W = diag(r1, r2) for three augmentation covariances C.

    Colour: the Monte-Carlo average of `info_nce_loss` on the grid; lines: Eq. 3 with the derived
    origin Hessian; stars: Thm. 1's stationary point; x: the measured minimum.

    Args:
        cfg: one of `SETTINGS` (``quick`` or ``full``).
        out: folder the figure is written to (``fig1.png``).

    Returns:
        The figure's record in ``results.json``: setup, per case the predicted and measured rank and minimum,
        ``agrees``, ``note``.
    """
    beta, n_samples = 0.5, cfg["fig1_n"]
    data = gaussian_dataset(n_samples, torch.eye(2, dtype=torch.float64), torch.Generator().manual_seed(1),
                            exact_covariance=True)
    a0 = pair_covariance(data)
    n = paper_n_from_batch(n_samples)
    q = quartic_weight("beta_info_nce", beta)
    cases = {"no collapse": (0.2, 0.2), "dimensional collapse": (2.0, 0.2), "complete collapse": (2.0, 2.0)}
    loss = functools.partial(info_nce_loss, beta=beta)
    axis = torch.linspace(-1.5, 1.5, cfg["grid"])
    r1, r2 = torch.meshgrid(axis, axis, indexing="ij")
    weights = torch.zeros(r1.numel(), 2, 2)
    weights[:, 0, 0], weights[:, 1, 1] = r1.flatten(), r2.flatten()
    fig = Figure(figsize=(13, 4))
    axes = fig.subplots(1, 3)
    records = {}
    for ax, (name, (c1, c2)) in zip(axes, cases.items()):
        noise_cov = torch.diag(torch.tensor([c1, c2], dtype=torch.float64))
        hessian = origin_hessian("beta_info_nce", a0, noise_cov, n=n, beta=beta)
        sigma = a0 + noise_cov
        gram = stationary_gram(hessian, sigma, quartic=q)
        predicted_r = gram.diagonal().sqrt()
        predicted_rank = local_minimum_rank(hessian, 2)
        measured = expected_linear_loss(weights, data, noise_cov.sqrt(), loss, samples=cfg["landscape_samples"])
        measured = measured - expected_linear_loss(torch.zeros(1, 2, 2), data, noise_cov.sqrt(), loss, samples=1)
        best = int(measured.argmin())
        measured_r = torch.tensor([r1.flatten()[best].abs(), r2.flatten()[best].abs()], dtype=torch.float64)
        spacing = float(axis[1] - axis[0])
        measured_rank = int((measured_r > spacing / 2).sum())
        theory = landscape(weights.double(), hessian, sigma, q)
        ax.contourf(r1, r2, measured.reshape(r1.shape), levels=20, cmap="coolwarm")
        ax.contour(r1, r2, theory.reshape(r1.shape), levels=12, colors="k", linewidths=0.6)
        for s1 in (-1, 1):
            for s2 in (-1, 1):
                ax.plot(s1 * predicted_r[0], s2 * predicted_r[1], "*", color="gold", ms=12, mec="k")
        ax.plot(r1.flatten()[best], r2.flatten()[best], "x", color="k", ms=9)
        ax.set(title=f"{name}\nC = diag({c1}, {c2})", xlabel="r1", ylabel="r2")
        records[name] = {
            "noise_covariance_diagonal": [c1, c2],
            "predicted_rank": predicted_rank,
            "measured_rank": measured_rank,
            "predicted_minimum_abs_r": predicted_r.tolist(),
            "measured_minimum_abs_r": measured_r.tolist(),
            "grid_spacing": spacing,
            "max_abs_disagreement_r": float((predicted_r - measured_r).abs().max()),
        }
    fig.suptitle("Fig. 1: E[β-InfoNCE] (β=0.5) over W = diag(r1, r2): colour measured, "
                 "black lines Eq. 3, stars Thm. 1, x measured minimum")
    fig.tight_layout()
    fig.savefig(out / "fig1.png", dpi=110)
    agree = all(r["predicted_rank"] == r["measured_rank"] for r in records.values())
    return {
        "setup": {"loss": "beta_info_nce", "beta": beta, "batch": n_samples, "paper_n": n, "A0": "I (exact)",
                  "quartic_weight": q, "monte_carlo_samples": cfg["landscape_samples"]},
        "cases": records,
        "agrees": agree,
        "note": "measured = Monte-Carlo average of the actual info_nce_loss on the grid; minimum located to "
        "within one grid spacing. Magnitudes can differ from Thm. 1 because |W| ~ 0.6 is not small.",
    }


def figure7(cfg: dict, out: Path) -> dict:
    """Fig. 7: loss landscapes of three-layer tanh and ReLU networks along their last layer's rows.

    The prediction is Section 4.1's B computed from each trained network's penultimate features,
    projected on the plane of the last layer's rows.

    Args:
        cfg: one of `SETTINGS` (``quick`` or ``full``).
        out: folder the figure is written to (``fig7.png``).

    Returns:
        The figure's record in ``results.json``: setup, per network the predicted and measured rank,
        ``agrees``, ``note``, ``convergence``.
    """
    beta, dim, hidden, n_samples = 0.5, 4, 16, cfg["mlp_n"]
    data = gaussian_dataset(n_samples, torch.eye(dim, dtype=torch.float64), torch.Generator().manual_seed(13),
                            exact_covariance=True)
    n = paper_n_from_batch(n_samples)
    q = quartic_weight("beta_info_nce", beta)
    strengths = {"weak": 0.2, "intermediate": 1.0, "strong": 3.0}
    loss = functools.partial(info_nce_loss, beta=beta)
    sigmas = torch.tensor(list(strengths.values()))
    axis = torch.linspace(-2.0, 2.0, cfg["grid"])
    r1, r2 = torch.meshgrid(axis, axis, indexing="ij")
    fig = Figure(figsize=(13, 12))
    axes = fig.subplots(3, 3)
    records, summaries = {}, {}
    for row, activation in enumerate(("tanh", "relu")):
        trained = train_mlp_models(data, isotropic_noise_factors(sigmas, dim), loss, hidden_dim=hidden, output_dim=2,
                                   activation=activation, steps=cfg["mlp_steps"], seed=13 + row)
        summaries[activation] = trained.convergence.summary()
        nets = trained.networks
        for column, (name, sigma) in enumerate(strengths.items()):
            factor = sigma * torch.eye(dim)
            a0, noise_cov = feature_covariances(nets, column, data, factor, samples=cfg["landscape_samples"])
            hessian = origin_hessian("beta_info_nce", a0, noise_cov, n=n, beta=beta)
            sigma_phi = a0 + noise_cov + 1e-9 * torch.eye(hidden, dtype=torch.float64)
            last = nets.last[column]  # (2, h)
            local_b = last.double() @ hessian @ last.double().T  # (2, 2) curvature in the plane of W_last's rows
            predicted_rank = local_minimum_rank(local_b, 2)
            singular = torch.linalg.svdvals(last.double())
            scaled = torch.stack([r1.flatten(), r2.flatten()], 1)[:, :, None] * last[None]  # (G, 2, h)
            measured = expected_mlp_loss(nets, column, scaled, data, factor, loss, samples=cfg["landscape_samples"])
            origin = expected_mlp_loss(nets, column, torch.zeros(1, 2, hidden), data, factor, loss, samples=1)
            measured = measured - origin
            theory = landscape(scaled.double(), hessian, sigma_phi, q)
            ax = axes[1 + row, column]
            ax.contourf(r1, r2, measured.reshape(r1.shape), levels=20, cmap="coolwarm")
            ax.contour(r1, r2, theory.reshape(r1.shape), levels=10, colors="k", linewidths=0.6)
            best = int(measured.argmin())
            spacing = float(axis[1] - axis[0])
            measured_rank = int((torch.stack([r1.flatten()[best], r2.flatten()[best]]).abs() > spacing / 2).sum())
            ax.plot(r1.flatten()[best], r2.flatten()[best], "x", color="k", ms=9)
            ax.set(title=f"{activation}, {name} (σ={sigma}): rank pred {predicted_rank} / meas {measured_rank}",
                   xlabel="r1", ylabel="r2")
            line = torch.linspace(-2.0, 2.0, 41)
            along = expected_mlp_loss(nets, column, line[:, None, None] * last[None], data, factor, loss,
                                      samples=cfg["landscape_samples"]) - origin
            axes[0, row].plot(line, along, label=f"{name} σ={sigma}")
            records[f"{activation}/{name}"] = {
                "sigma": sigma,
                "origin_hessian_in_last_layer_plane": torch.linalg.eigvalsh(local_b).tolist(),
                "predicted_rank": predicted_rank,
                "measured_rank": measured_rank,
                "last_layer_singular_values": singular.tolist(),
                "measured_landscape_minimum": [float(r1.flatten()[best]), float(r2.flatten()[best])],
                "negative_feature_noise_eigenvalues": int((torch.linalg.eigvalsh(noise_cov) < 0).sum()),
            }
        axes[0, row].set(title=f"{activation}: loss along W_last → a W_last", xlabel="a", ylabel="L(a) − L(0)")
        axes[0, row].legend(fontsize=8)
    axes[0, 2].axis("off")
    fig.suptitle("Fig. 7: three-layer networks, β-InfoNCE β=0.5. Colour: measured loss; black: Eq. 3 with the "
                 "features' A0, C (Section 4.1)")
    fig.tight_layout()
    fig.savefig(out / "fig7.png", dpi=100)
    agree = sum(r["predicted_rank"] == r["measured_rank"] for r in records.values())
    return {
        "setup": {"loss": "beta_info_nce", "beta": beta, "input_dim": dim, "hidden": hidden, "output_dim": 2,
                  "batch": n_samples, "steps": cfg["mlp_steps"], "optimizer": "Adam, cosine decay"},
        "networks": records,
        "rank_agreement_fraction": agree / len(records),
        "agrees": agree == len(records),
        "note": "measured rank: number of nonzero coordinates of the measured landscape's minimum in the "
        "(r1, r2) plane (a nonlinear net can collapse through its features while W_last stays nonzero). "
        "Prediction: B of Section 4.1 computed from the trained network's penultimate features "
        "(A0 and C of phi, which need not be Gaussian, so Prop. 1 is approximate), projected on the plane of "
        "W_last's rows; rank = number of positive eigenvalues there.",
        "convergence": summaries,
    }
