"""Statistics over seeds: mean, standard deviation, t-intervals and paired differences.

A study runs every cell with a few seeds. Seed-to-seed spread is the noise a difference must
beat: with n seeds, the 95 % interval of a mean is ``mean ± t_{0.975, n-1} · sd / √n``
(Student's t, since sd is itself estimated from n values). Differences between two methods are
taken *paired*, at equal seed (and equal imbalance), because both runs of a pair share the
seed's training subset and data order; the interval of the mean paired difference is then the
t-interval of the n differences. With one seed there is no spread and therefore no interval:
no difference is a finding then.

The test-set sampling error of an accuracy p measured on n test images is the binomial
standard error ``√(p (1 − p) / n)``: the part of the seed-to-seed spread that more test images
would remove, and the floor of the noise when there is only one seed.

No scipy: `t_quantile` inverts Student's t distribution by integrating its density.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def _t_density(x: float, df: int) -> float:
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1) / 2 * math.log1p(x * x / df))


def _t_cdf(x: float, df: int, intervals: int = 2000) -> float:
    """P(T <= x) for x >= 0, by Simpson's rule on the density over [0, x] (error < 1e-10)."""
    h = x / intervals
    total = _t_density(0.0, df) + _t_density(x, df)
    total += sum((4 if i % 2 else 2) * _t_density(i * h, df) for i in range(1, intervals))
    return 0.5 + total * h / 3


@functools.lru_cache(maxsize=256)
def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile of Student's t distribution with ``df`` degrees of freedom.

    Args:
        probability: in (0.5, 1), e.g. 0.975 for a two-sided 95 % interval.
        df: degrees of freedom (>= 1).

    Returns:
        x with P(T <= x) = probability, to about 1e-7 (bisection on the integrated density).
    """
    if not 0.5 < probability < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 < probability < 1 and df >= 1, got {probability}, {df}")
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < probability:
        low, high = high, 2 * high
    for _ in range(60):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if _t_cdf(middle, df) < probability else (low, middle)
        if high - low < 1e-8:
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample standard deviation and t-interval of values over seeds.

    ``sd``, ``half_width``, ``low`` and ``high`` are None with fewer than two values (one seed:
    no interval).
    """

    n: int
    mean: float
    sd: float | None
    half_width: float | None
    confidence: float = 0.95

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width

    @property
    def excludes_zero(self) -> bool | None:
        """Whether the interval lies entirely above or below 0 (None without an interval)."""
        if self.half_width is None:
            return None
        return self.low > 0 or self.high < 0


def summarize_seeds(values: Iterable[float], confidence: float = 0.95) -> SeedSummary | None:
    """Mean, sd (n − 1 denominator) and the two-sided t-interval of ``values`` (NaNs dropped).

    ``half_width = t_{(1+confidence)/2, n-1} · sd / √n``. None when no value is left.
    """
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not kept:
        return None
    n = len(kept)
    mean = sum(kept) / n
    if n < 2:
        return SeedSummary(n, mean, None, None, confidence)
    sd = math.sqrt(sum((v - mean) ** 2 for v in kept) / (n - 1))
    half_width = t_quantile((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    return SeedSummary(n, mean, sd, half_width, confidence)


def paired_difference(
    a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95
) -> SeedSummary | None:
    """The mean of ``a[s] − b[s]`` over the seeds s present in both, with its t-interval.

    Args:
        a, b: value per seed (e.g. top-1 of SCL and of SimCLR at one imbalance).
        confidence: of the interval.

    Returns:
        `summarize_seeds` of the differences; None when no seed is shared.
    """
    shared = sorted(set(a) & set(b))
    return summarize_seeds([a[s] - b[s] for s in shared], confidence)


def relative_drop(reference: float, value: float) -> float:
    """Robustness Δ = (A_reference − A_value) / A_reference (Liu et al. 2021); NaN if A_reference is 0."""
    return (reference - value) / reference if reference else float("nan")


def binomial_standard_error(accuracy: float, num_test: int) -> float:
    """Standard error √(p (1 − p) / n) of an accuracy p measured on n independent test images."""
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / num_test)


def format_points(summary: SeedSummary | None, scale: float = 100.0, signed: bool = False, unit: str = "") -> str:
    """``mean ± sd [low, high]`` in ``scale`` units, or ``mean (one seed: no interval)``; ``—`` for None."""
    if summary is None:
        return "—"
    number = "{:+.1f}" if signed else "{:.1f}"
    mean = number.format(scale * summary.mean) + unit
    if summary.half_width is None:
        return f"{mean} (one seed: no interval)"
    low, high = number.format(scale * summary.low), number.format(scale * summary.high)
    return f"{mean} ± {scale * summary.sd:.1f} [{low}, {high}]"


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% for the default z).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n successes,
    which matters for a handful of seeds.

    Returns:
        ``(low, high)``; ``(0, 1)`` for no trials.
    """
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
