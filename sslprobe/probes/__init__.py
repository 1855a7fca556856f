"""Measurements on plain tensors: spectra, rescaling loss landscapes, linear / kNN read-out; and `probe`,
the one entry point that runs them on any network (`sslprobe.probes.api`)."""

from sslprobe.probes.api import PROBE_NAMES, ProbedModel, probe
from sslprobe.probes.landscape import (
    LandscapeOptions,
    LandscapeResult,
    grid_local_minima,
    landscape_report,
    loss_landscape,
    reference_loss,
    rescale_landscape_1d,
    rescale_singular_halves,
    singular_halves,
)
from sslprobe.probes.linear import (
    classification_metrics,
    knn_predict,
    linear_evaluation,
    per_class_accuracy,
    rare_classes,
    shot_group_accuracy,
    shot_groups,
    standardize_features,
    train_linear_classifier,
)
from sslprobe.probes.linear_protocol import LINEAR_PROTOCOLS, LinearEvalOptions, LinearEvalScores, ShotThresholds
from sslprobe.probes.results import KNNResult, ProbeResults, SpectrumResult
from sslprobe.probes.spectrum import (
    collapsed_directions,
    covariance_eigenvalues,
    effective_rank,
    singular_values,
    spectrum_report,
    stable_rank,
)
from sslprobe.probes.theory import TheoryLoss, principal_angles, theory_probe, view_covariances

__all__ = [
    "LINEAR_PROTOCOLS",
    "PROBE_NAMES",
    "KNNResult",
    "ProbeResults",
    "ProbedModel",
    "SpectrumResult",
    "LandscapeOptions",
    "LandscapeResult",
    "LinearEvalOptions",
    "LinearEvalScores",
    "ShotThresholds",
    "TheoryLoss",
    "classification_metrics",
    "collapsed_directions",
    "covariance_eigenvalues",
    "effective_rank",
    "grid_local_minima",
    "knn_predict",
    "landscape_report",
    "linear_evaluation",
    "loss_landscape",
    "per_class_accuracy",
    "principal_angles",
    "probe",
    "rare_classes",
    "reference_loss",
    "rescale_landscape_1d",
    "rescale_singular_halves",
    "shot_group_accuracy",
    "shot_groups",
    "singular_halves",
    "singular_values",
    "spectrum_report",
    "stable_rank",
    "standardize_features",
    "theory_probe",
    "train_linear_classifier",
    "view_covariances",
]
