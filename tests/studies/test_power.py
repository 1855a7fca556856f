"""The power analysis of paired contrasts (sslprobe.studies.statistics), against published and hand values."""

from __future__ import annotations

import math

import pytest

from sslprobe.studies.statistics import (
    half_width,
    paired_difference,
    paired_t_power,
    power_analysis,
    seeds_for_half_width,
    seeds_for_power,
)

# Two-sided 95 % t critical values (NIST/SEMATECH e-Handbook 1.3.6.7.2): df 7, 8, 12, 13.
T_975 = {7: 2.365, 8: 2.306, 12: 2.179, 13: 2.160}


def test_power_of_the_one_sample_t_test_matches_the_published_tables():
    # Cohen's d = 1 with 10 pairs: power 0.803; d = 0.5 needs 34 pairs for 0.80 (0.808), 33 fall short
    # (G*Power's "one sample t test", alpha 0.05 two-sided; the same values as R's pwr.t.test).
    assert paired_t_power(1.0, 1.0, 10) == pytest.approx(0.803, abs=5e-4)
    assert paired_t_power(0.5, 1.0, 34) == pytest.approx(0.808, abs=5e-4)
    assert paired_t_power(0.5, 1.0, 33) < 0.8
    assert seeds_for_power(1.0, 1.0) == 10 and seeds_for_power(-0.5, 1.0) == 34  # the sign does not matter
    # Power scales with effect / sd only.
    assert paired_t_power(3.0, 3.0, 10) == pytest.approx(paired_t_power(1.0, 1.0, 10), abs=1e-9)


@pytest.mark.parametrize("n", [2, 3, 9, 40])
def test_with_no_effect_the_power_is_the_tests_level(n):
    assert paired_t_power(0.0, 2.0, n) == pytest.approx(0.05, abs=1e-6)


def test_seeds_for_a_half_width_by_hand():
    # The issue's paired sd of Δ SCL − Δ SimCLR with projector: 2.5 (medium) and 3.4 points (high).
    # 2.5: n = 8 gives 2.365 · 2.5 / √8 = 2.09 > 2, n = 9 gives 2.306 · 2.5 / 3 = 1.92 <= 2 -> 9.
    assert T_975[7] * 2.5 / math.sqrt(8) > 2 >= T_975[8] * 2.5 / 3
    assert seeds_for_half_width(2.5, 2.0) == 9
    # 3.4: n = 13 gives 2.179 · 3.4 / √13 = 2.05, n = 14 gives 2.160 · 3.4 / √14 = 1.96 -> 14.
    assert T_975[12] * 3.4 / math.sqrt(13) > 2 >= T_975[13] * 3.4 / math.sqrt(14)
    assert seeds_for_half_width(3.4, 2.0) == 14
    assert half_width(2.5, 9) == pytest.approx(T_975[8] * 2.5 / 3, abs=1e-3)
    assert seeds_for_half_width(0.0, 2.0) == 2


def test_power_analysis_of_the_issues_per_seed_differences():
    # Δ SCL − Δ SimCLR per seed at 'medium' with projector: −0.4, −4.9, −4.6 (points of Δ).
    # mean −3.3; deviations 2.9, −1.6, −1.3 -> sd √(12.66 / 2) = 2.516; half-width 4.303 · 2.516 / √3 = 6.25.
    summary = paired_difference({0: -0.4, 1: -4.9, 2: -4.6}, {0: 0.0, 1: 0.0, 2: 0.0})
    plan = power_analysis(summary, target=2.0)
    assert (plan.n, round(plan.sd, 3), round(plan.half_width, 2)) == (3, 2.516, 6.25)
    assert plan.seeds_for_target == 9
    assert plan.power == pytest.approx(paired_t_power(-3.3, plan.sd, 3), abs=1e-9)
    assert plan.seeds_for_power == seeds_for_power(-3.3, plan.sd)
    assert paired_t_power(-3.3, plan.sd, plan.seeds_for_power) >= 0.8 > paired_t_power(-3.3, plan.sd,
                                                                                         plan.seeds_for_power - 1)
    assert power_analysis(paired_difference({0: 1.0}, {0: 0.0}), target=2.0) is None  # one seed: no sd
    assert seeds_for_power(0.0, 1.0) is None  # no effect: no number of seeds detects it
