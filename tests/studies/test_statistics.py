"""Intervals and paired differences against hand-computed examples."""

from __future__ import annotations

import math

import pytest

from sslprobe.studies import (
    binomial_standard_error,
    format_points,
    paired_difference,
    relative_drop,
    summarize_seeds,
    t_quantile,
)

# Two-sided 95 % critical values t_{0.975, df}, from the NIST/SEMATECH e-Handbook of Statistical
# Methods, section 1.3.6.7.2 ("Critical values of the Student's t distribution"), printed to 3 decimals.
T_TABLE = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262, 29: 2.045}


@pytest.mark.parametrize("df", sorted(T_TABLE))
def test_t_quantile_matches_the_printed_table(df):
    assert t_quantile(0.975, df) == pytest.approx(T_TABLE[df], abs=6e-4)


def test_t_quantile_tends_to_the_normal_quantile():
    assert t_quantile(0.975, 10_000) == pytest.approx(1.95996, abs=1e-3)  # Φ⁻¹(0.975)


def test_mean_sd_and_t_interval_of_three_seeds():
    # 0.50, 0.60, 0.55: mean 0.55; deviations -0.05, 0.05, 0 -> sd = sqrt(0.005 / 2) = 0.05;
    # half width = t_{0.975, 2} * 0.05 / sqrt(3) = 4.303 * 0.028868 = 0.12421.
    summary = summarize_seeds([0.50, 0.60, 0.55])
    assert summary.n == 3 and summary.mean == pytest.approx(0.55)
    assert summary.sd == pytest.approx(0.05)
    assert summary.half_width == pytest.approx(4.303 * 0.05 / math.sqrt(3), abs=1e-4)
    assert summary.low == pytest.approx(0.55 - 0.12421, abs=1e-4)
    assert summary.excludes_zero is True


def test_one_seed_has_no_interval():
    summary = summarize_seeds([0.4, float("nan")])
    assert summary.n == 1 and summary.sd is None and summary.half_width is None
    assert summary.excludes_zero is None
    assert format_points(summary) == "40.0 (one seed: no interval)"
    assert "± 0.0" not in format_points(summary)
    assert summarize_seeds([]) is None and format_points(None) == "—"


def test_paired_difference_uses_shared_seeds_only():
    a = {0: 0.50, 1: 0.60, 2: 0.55}
    b = {0: 0.45, 1: 0.52, 2: 0.53, 3: 0.90}  # seed 3 has no partner
    # differences 0.05, 0.08, 0.02: mean 0.05, sd = sqrt((0 + 0.0009 + 0.0009) / 2) = 0.03,
    # half width 4.303 * 0.03 / sqrt(3) = 0.07453: the interval [-0.0245, 0.1245] contains 0.
    difference = paired_difference(a, b)
    assert difference.n == 3 and difference.mean == pytest.approx(0.05)
    assert difference.sd == pytest.approx(0.03)
    assert difference.half_width == pytest.approx(4.303 * 0.03 / math.sqrt(3), abs=1e-4)
    assert difference.excludes_zero is False
    # differences 0.05, 0.06, 0.04: sd 0.01, half width 0.02484: [0.0252, 0.0748] excludes 0.
    clear = paired_difference({0: 0.55, 1: 0.56, 2: 0.54}, {0: 0.50, 1: 0.50, 2: 0.50})
    assert clear.half_width == pytest.approx(4.303 * 0.01 / math.sqrt(3), abs=1e-4)
    assert clear.excludes_zero is True
    assert format_points(clear, signed=True) == "+5.0 ± 1.0 [+2.5, +7.5]"
    assert paired_difference({0: 1.0}, {1: 1.0}) is None


def test_relative_drop_and_binomial_error():
    assert relative_drop(0.55, 0.45) == pytest.approx(10 / 55)
    assert math.isnan(relative_drop(0.0, 0.3))
    # p = 0.4 on 2,000 images: sqrt(0.24 / 2000) = 0.010954
    assert binomial_standard_error(0.4, 2000) == pytest.approx(0.010954, abs=1e-6)
