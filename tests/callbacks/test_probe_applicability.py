"""A probe that does not apply to a method says why, in its file and its log, and measures nothing."""

from __future__ import annotations

import json

import pytest
from helpers import TINY_MODEL  # tests/helpers.py

from sslprobe.callbacks import LandscapeProbe, ProjectorSpectrum, TheoryProbe
from sslprobe.methods import BYOL, SimSiam, Supervised


@pytest.mark.parametrize(("method", "probe", "phrase"), [
    (BYOL, LandscapeProbe, "target network"), (BYOL, TheoryProbe, "target network"),
    (Supervised, LandscapeProbe, "labels"), (SimSiam, TheoryProbe, "origin Hessian"),
])
def test_declined_probe_writes_the_reason(method, probe, phrase, tmp_path):
    # No datamodule at all: a declined probe must not reach for data.
    scalars = probe().measure_or_explain(method(**TINY_MODEL), None, tmp_path, epoch=3)
    assert scalars == {f"{probe.name}/applicable": 0.0}
    record = json.loads((tmp_path / "probes" / f"{probe.name}_epoch3.json").read_text())
    assert record["applicable"] is False and phrase in record["reason"] and record["epoch"] == 3


def test_a_probe_that_applies_is_measured(tmp_path):
    with pytest.raises(AttributeError):  # it does reach for the (absent) datamodule
        ProjectorSpectrum().measure_or_explain(BYOL(**TINY_MODEL), None, tmp_path, epoch=1)
    assert not (tmp_path / "probes" / "spectrum_epoch1.json").exists()
