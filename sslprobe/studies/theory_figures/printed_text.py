"""Numbers behind two corrections of the printed text: the Σ⁻² slip of the stationary loss and Section 4.3."""

from __future__ import annotations

import torch

from sslprobe.theory import (
    landscape,
    normalized_surviving_mask,
    quartic_weight,
    stationary_gram,
    stationary_loss,
    weights_from_gram,
)


def printed_slips() -> dict:
    """Numbers for the Σ² vs Σ⁻² slip (loss at stationary points) on a commuting example."""
    b = torch.diag(torch.tensor([2.0, 1.0, -0.5], dtype=torch.float64))
    sigma = torch.diag(torch.tensor([3.0, 0.5, 1.0], dtype=torch.float64))
    gram = stationary_gram(b, sigma)
    weights = weights_from_gram(gram, 3)
    direct = float(landscape(weights, b, sigma))
    b_masked = torch.diag(torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64))
    inverse = float(-0.25 * torch.trace(torch.linalg.matrix_power(sigma, -2) @ b_masked @ b))
    printed = float(-0.25 * torch.trace(sigma @ sigma @ b_masked @ b))
    return {
        "example": "B = diag(2, 1, -0.5), Sigma = diag(3, 0.5, 1), all positive directions kept",
        "eq3_at_stationary_point": direct,
        "minus_quarter_tr_sigma_inv2_bm_b": inverse,
        "minus_quarter_tr_sigma2_bm_b_as_printed": printed,
        "closed_form_stationary_loss": float(stationary_loss(b, sigma)),
    }


def imbalance_on_the_sphere() -> dict:
    """Section 4.3 with the derived B: what separates SCL from InfoNCE under a norm constraint.

    Class-mean features along orthonormal directions with the class proportions p_k of the
    paper's presets (A0 = diag(p_k), Appendix C counts), isotropic augmentation C = σ² I, Σ = A0 + C.
    Derived: SCL ``B = 2A0`` (mu = 1, q = 1), InfoNCE ``B = A0`` (K → ∞, q = ¾); paper: SCL ``B = 2C``.
    Under the constraint Tr[WΣWᵀ] = c (Thm. 2, κ → ∞), Eq. 11 and Eq. 13 depend on the whitened
    eigenvalues only through λ_i − λ̄, so B and B − kΣ give the same stationary points: on the
    sphere SCL's ``2A0`` is ``−2C`` (its attraction −2Tr[WA0Wᵀ] = 2Tr[WCWᵀ] − 2c). Counts are of
    the class directions that survive (`normalized_surviving_mask`) at c = 1.
    """
    presets = {
        "none": [2000] * 10,
        "medium": [4268, 4296, 1741, 420, 945, 161, 4633, 1015, 131, 2386],
        "high": [4890, 87, 5000, 0, 74, 0, 0, 212, 4788, 4947],
    }
    rows = []
    for name, counts in presets.items():
        p = torch.tensor(counts, dtype=torch.float64) / sum(counts)
        a0 = torch.diag(p)
        for noise in (0.01, 0.05, 0.2):
            c = noise * torch.eye(10, dtype=torch.float64)
            sigma = a0 + c
            row = {"preset": name, "noise_variance": noise}
            for label, b, q in (("scl_derived", 2 * a0, 1.0), ("scl_derived_as_minus_2C", -2 * c, 1.0),
                                ("info_nce_derived", a0, quartic_weight("info_nce")),
                                ("scl_printed_2C", 2 * c, 1.0)):
                values, vectors = torch.linalg.eigh(torch.diag(sigma.diagonal().rsqrt()) @ b
                                                    @ torch.diag(sigma.diagonal().rsqrt()))
                mask = normalized_surviving_mask(b, sigma, norm=1.0, quartic=q)
                kept = vectors[:, mask].abs().argmax(0)  # whitened eigenvectors are class directions here
                row[label] = {"kept": int(mask.sum()), "kept_classes": sorted(int(k) for k in kept),
                              "kept_class_counts": sorted(counts[int(k)] for k in kept)}
                del values
            rows.append(row)
    same = all(r["scl_derived"]["kept_classes"] == r["scl_derived_as_minus_2C"]["kept_classes"] for r in rows)
    return {
        "setting": "A0 = diag(class proportions), C = noise * I, c = 1 (Thm. 2, kappa -> inf)",
        "rows": rows,
        "scl_2A0_equals_minus_2C_on_the_sphere": same,
        "note": "With the derived B both SCL and InfoNCE keep the classes of largest p_k / (p_k + noise); they "
                "differ only in the scale of the whitened eigenvalues (2 for SCL, 4/3 for InfoNCE) against 2c/d_M. "
                "The printed SCL B = 2C would keep directions independently of the class proportions.",
    }
