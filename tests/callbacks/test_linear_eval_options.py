"""`LinearEvaluation`'s config keys build one `LinearEvalOptions`; the random-init cache key stays the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sslprobe.callbacks import LinearEvaluation
from sslprobe.probes import LinearEvalOptions

REPO = Path(__file__).resolve().parents[2]
KNN = '"knn_k": 200, "knn_temperature": 0.1'
# The protocol part of the random-init cache key (serialised as the cache digest serialises it) that
# caches written before `LinearEvalOptions` existed were keyed on: a cache on disk stays valid.
SGD_KEY = ('{"batch_size": 512, "epochs": 100, "final_lr": 0.0001, ' + KNN
           + ', "lr": 0.1, "momentum": 0.9, "seed": 0, "solver": "sgd"}')
PAPER_KEY = ('{"batch_size": 512, "epochs": 100, "final_lr": 0.01, "knn_k": 20, "knn_temperature": 0.1, '
             '"lr": 10.0, "momentum": 0.9, "seed": 3, "solver": "sgd"}')
LBFGS_KEY = '{' + KNN + ', "l2": 0.0001, "seed": 0, "solver": "lbfgs"}'


def cache_key(probe: LinearEvaluation) -> str:
    return json.dumps(probe.options.protocol(), sort_keys=True, default=str)


def test_the_shipped_config_and_the_defaults_key_the_cache_as_before():
    section = yaml.safe_load((REPO / "callbacks" / "linear_eval.yaml").read_text())["probes"]["linear_eval"]
    assert cache_key(LinearEvaluation(**section)) == SGD_KEY
    assert cache_key(LinearEvaluation()) == SGD_KEY
    assert LinearEvaluation(**section).options == LinearEvalOptions()


@pytest.mark.parametrize(("arguments", "key"), [
    ({"protocol": "paper", "knn_k": 20, "seed": 3, "lr": 0.5, "epochs": 7}, PAPER_KEY),  # the protocol wins
    ({"lr": 10.0, "final_lr": 0.01, "knn_k": 20, "seed": 3}, PAPER_KEY),
    ({"protocol": "lbfgs", "epochs": 7}, LBFGS_KEY),
    ({"solver": "lbfgs", "lr": 3.0}, LBFGS_KEY),
])
def test_named_protocols_and_flat_settings_key_the_cache_as_before(arguments, key):
    assert cache_key(LinearEvaluation(**arguments)) == key


def test_a_changed_setting_changes_the_key():
    assert cache_key(LinearEvaluation(epochs=99)) != SGD_KEY
    assert cache_key(LinearEvaluation(knn_temperature=0.2)) != SGD_KEY
    weight_decay = json.loads(json.dumps(LinearEvalOptions(weight_decay=0.01).protocol()))
    assert weight_decay == {**json.loads(SGD_KEY), "weight_decay": 0.01}


@pytest.mark.parametrize("arguments", [{"solver": "adam"}, {"l2": -1.0}, {"epochs": 0}, {"lr": 0.0},
                                       {"knn_temperature": 0.0}, {"protocol": "fast"}])
def test_invalid_settings_are_refused_by_name(arguments):
    with pytest.raises(ValueError, match="LinearEvaluation"):
        LinearEvaluation(**arguments)
