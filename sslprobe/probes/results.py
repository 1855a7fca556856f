"""Typed results of the probes: what `sslprobe.probe` returns, one field per measured quantity.

`SpectrumResult` is `spectrum_report` as a type, `KNNResult` the kNN monitor's score; the linear
read-out's are `LinearEvalScores`, the landscape's `LandscapeResult` and the theory probe's
`TheoryResult`. `ProbeResults` gathers one probing of one network.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from sslprobe.probes.landscape_report import LandscapeResult
from sslprobe.probes.linear_protocol import LinearEvalScores
from sslprobe.probes.theory import TheoryResult


@dataclass(frozen=True)
class SpectrumResult:
    """Spectra of one network on the probe images (`spectrum_report`, typed).

    The array names are those of ``probes/spectrum.npz``, the scalar names those logged as
    ``spectrum/<name>``. Weight fields are None without a projector (no last ``nn.Linear``).

    Attributes:
        feature_eigenvalues: (D_f,) centred covariance eigenvalues of the backbone features, descending.
        embedding_eigenvalues: (D_e,) the same for the projector's embeddings (= features without projector).
        weight_singular_values: (min(d_out, d_in),) singular values of the projector's last layer.
        features_effective_rank, embeddings_effective_rank, weight_effective_rank: RankMe.
        features_stable_rank, embeddings_stable_rank, weight_stable_rank: Σλ / λ_1.
        features_collapsed, embeddings_collapsed, weight_collapsed: directions below the
            collapse threshold × the largest eigenvalue.
    """

    feature_eigenvalues: np.ndarray
    embedding_eigenvalues: np.ndarray
    features_effective_rank: float
    embeddings_effective_rank: float
    features_stable_rank: float
    embeddings_stable_rank: float
    features_collapsed: int
    embeddings_collapsed: int
    weight_singular_values: np.ndarray | None = None
    weight_effective_rank: float | None = None
    weight_stable_rank: float | None = None
    weight_collapsed: int | None = None

    @classmethod
    def from_report(cls, report: dict) -> SpectrumResult:
        """From a `spectrum_report` dict (``features_eigenvalues`` -> ``feature_eigenvalues``, ...)."""
        renamed = {"features_eigenvalues": "feature_eigenvalues", "embeddings_eigenvalues": "embedding_eigenvalues"}
        names = {f.name for f in fields(cls)}
        values = {renamed.get(key, key): value for key, value in report.items()}
        return cls(**{key: value for key, value in values.items() if key in names})

    def scalars(self) -> dict[str, float]:
        """The scalar fields present, by name."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None and np.ndim(getattr(self, f.name)) == 0}


@dataclass(frozen=True)
class KNNResult:
    """Weighted-kNN top-1 (a fraction) of the backbone features on class-balanced sets.

    Attributes:
        top1: fraction of test images classified correctly.
        k, temperature: neighbours and vote temperature.
        num_train, num_test: sizes of the two sets.
    """

    top1: float
    k: int
    temperature: float
    num_train: int
    num_test: int


@dataclass
class ProbeResults:
    """One probing of one network, by probe; a probe not asked for is None.

    Attributes:
        spectrum: `SpectrumResult`.
        linear: the linear and kNN read-out (`LinearEvalScores`).
        linear_random_init: the same protocol on the re-initialised architecture (the baseline).
        knn: the kNN monitor's `KNNResult`.
        landscape: `LandscapeResult` (the arrays) and ``landscape_verdict`` (`landscape_report`).
        theory: `TheoryResult`.
        declined: probe name -> why it does not apply (no projector, no objective, ...).
        metrics: every logged scalar (``spectrum/features_effective_rank``, ``linear/top1``, ...).
        out: the folder holding ``probes/`` (None when nothing was kept).
    """

    spectrum: SpectrumResult | None = None
    linear: LinearEvalScores | None = None
    linear_random_init: LinearEvalScores | None = None
    knn: KNNResult | None = None
    landscape: LandscapeResult | None = None
    landscape_verdict: dict | None = None
    theory: TheoryResult | None = None
    declined: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    out: Path | None = None
