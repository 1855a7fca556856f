"""`wilson_interval` against values computed independently (Wilson 1927; Agresti & Coull 1998, Table 1)."""

import math

import pytest

from sslprobe.studies import wilson_interval


def test_wilson_interval_matches_the_closed_form_and_known_values():
    # 0 of 10: (0, z²/(n + z²)) exactly
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and math.isclose(high, 1.959964**2 / (10 + 1.959964**2), rel_tol=1e-9)
    # 8 of 10: 0.4902 to 0.9433 (the textbook value)
    low, high = wilson_interval(8, 10)
    assert math.isclose(low, 0.4902, abs_tol=1e-4) and math.isclose(high, 0.9433, abs_tol=1e-4)
    # symmetric under successes <-> failures
    low, high = wilson_interval(3, 7)
    mirror = wilson_interval(4, 7)
    assert math.isclose(low, 1 - mirror[1], rel_tol=1e-12) and math.isclose(high, 1 - mirror[0], rel_tol=1e-12)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 4)
