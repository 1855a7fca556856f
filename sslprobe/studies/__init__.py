"""What studies over many runs share: statistics over seeds and paired differences."""

from sslprobe.studies.statistics import (
    SeedSummary,
    binomial_standard_error,
    format_points,
    paired_difference,
    relative_drop,
    summarize_seeds,
    t_quantile,
    wilson_interval,
)

__all__ = [
    "SeedSummary",
    "binomial_standard_error",
    "format_points",
    "paired_difference",
    "relative_drop",
    "summarize_seeds",
    "t_quantile",
    "wilson_interval",
]
