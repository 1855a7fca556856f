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


# --- Power analysis: how many seeds a paired contrast needs ---------------------------------------
#
# A paired contrast (e.g. Δ SCL − Δ SimCLR at equal seed) with paired sd s over n seeds has a 95 %
# half-width t_{0.975, n−1} · s / √n: the smallest n that brings it to h is `seeds_for_half_width`.
# The power of the two-sided paired t-test against a true mean δ is P(|T'| > t_crit) with T' the
# noncentral t of n − 1 degrees of freedom and noncentrality √n · δ / s. Writing T' = (Z + λ) / S
# with S = √(V / df), V ~ χ²_df, that probability is the expectation over S of two normal tails,
# a one-dimensional integral (`paired_t_power`, Simpson's rule over S); `seeds_for_power` is the
# smallest n whose power reaches the target. Both searches bisect, since each quantity is monotone in n.

MAX_SEEDS = 10_000  # searches stop here: "more than MAX_SEEDS" is reported as None


def _normal_upper(x: float) -> float:
    """P(Z > x) for a standard normal Z."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _scale_density(s: float, df: int) -> float:
    """Density of S = √(V / df), V ~ χ²_df, at s >= 0."""
    if s <= 0.0:
        return math.sqrt(2.0 / math.pi) if df == 1 else 0.0
    v = df * s * s
    log_chi2 = (df / 2 - 1) * math.log(v) - v / 2 - (df / 2) * math.log(2.0) - math.lgamma(df / 2)
    return 2.0 * df * s * math.exp(log_chi2)


def paired_t_power(effect: float, sd: float, n: int, confidence: float = 0.95, intervals: int = 4000) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs against a true mean difference ``effect``.

    Args:
        effect: the true mean of the paired differences (any sign; its size matters).
        sd: the standard deviation of one paired difference (> 0).
        n: number of pairs (seeds), >= 2.
        confidence: 1 − the test's level (0.95: a difference counts when its 95 % interval excludes 0).
        intervals: Simpson intervals of the integral over S (error well below 1e-6 at the default).

    Returns:
        P(the 95 % t-interval of the mean difference excludes 0), under the normal model.
    """
    if n < 2 or sd <= 0:
        raise ValueError(f"paired_t_power needs n >= 2 and sd > 0, got n={n}, sd={sd}")
    df = n - 1
    critical = t_quantile((1 + confidence) / 2, df)
    shift = math.sqrt(n) * abs(effect) / sd
    top = 1.0 + 12.0 / math.sqrt(2.0 * df) + (8.0 if df < 3 else 0.0)  # S concentrates around 1
    h = top / intervals

    def tails(s: float) -> float:
        return (_normal_upper(critical * s - shift) + _normal_upper(critical * s + shift)) * _scale_density(s, df)

    total = tails(0.0) + tails(top)
    total += sum((4 if i % 2 else 2) * tails(i * h) for i in range(1, intervals))
    return min(1.0, total * h / 3)


def _smallest(condition, low: int = 2, high: int = MAX_SEEDS) -> int | None:
    """The smallest n in [low, high] with ``condition(n)`` true (monotone in n); None if none is."""
    if not condition(high):
        return None
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if condition(middle) else (middle + 1, high)
    return low


def half_width(sd: float, n: int, confidence: float = 0.95) -> float:
    """The t-interval half-width t_{(1+confidence)/2, n−1} · sd / √n of a mean of n paired differences."""
    return t_quantile((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)


def seeds_for_half_width(sd: float, target: float, confidence: float = 0.95) -> int | None:
    """Fewest seeds (>= 2) whose interval half-width is at most ``target`` at paired sd ``sd``."""
    return _smallest(lambda n: half_width(sd, n, confidence) <= target)


def seeds_for_power(effect: float, sd: float, power: float = 0.8, confidence: float = 0.95) -> int | None:
    """Fewest seeds (>= 2) at which the paired t-test detects ``effect`` with probability ``power``.

    None when the effect is 0 (no number of seeds detects it) or more than `MAX_SEEDS` are needed.
    """
    if sd <= 0:
        return 2
    if effect == 0:
        return None
    return _smallest(lambda n: paired_t_power(effect, sd, n, confidence) >= power)


@dataclass(frozen=True)
class PowerAnalysis:
    """What a paired contrast's seeds can resolve, and how many it would need.

    ``half_width`` is the 95 % half-width at the current ``n``; ``seeds_for_target`` the seeds for a
    half-width of ``target``; ``power`` the current power against an effect of the observed size and
    ``seeds_for_power`` the seeds for 80 % power against it (None: no seed count reaches it).
    """

    n: int
    sd: float
    half_width: float
    target: float
    seeds_for_target: int | None
    observed: float
    power: float | None
    seeds_for_power: int | None


def power_analysis(summary: SeedSummary, target: float, power: float = 0.8) -> PowerAnalysis | None:
    """`PowerAnalysis` of a paired contrast's `SeedSummary` (None with fewer than two seeds)."""
    if summary is None or summary.sd is None:
        return None
    sd = summary.sd
    current = paired_t_power(summary.mean, sd, summary.n, summary.confidence) if sd > 0 else None
    return PowerAnalysis(
        n=summary.n, sd=sd, half_width=summary.half_width, target=target,
        seeds_for_target=seeds_for_half_width(sd, target, summary.confidence),
        observed=summary.mean, power=current,
        seeds_for_power=seeds_for_power(summary.mean, sd, power, summary.confidence),
    )
