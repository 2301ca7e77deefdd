"""An OmegaConf / Hydra ``DictConfig`` is a config like a mapping: interpolations resolved, errors with paths."""

from __future__ import annotations

import pytest

import optiplug
from optiplug.tooling.curves import compute_curves

omegaconf = pytest.importorskip("omegaconf", reason="OmegaConf is not installed (pip install optiplug[integrations])")
OmegaConf = omegaconf.OmegaConf

YAML = """\
base_lr: 0.1
optim:
  optimizer:
    name: sgd
    lr: ${base_lr}
    momentum: 0.9
  rules:
    - {kind: norm, set: {weight_decay: 0}}
  schedules:
    lr:
      name: cosine
      start_value: ${base_lr}
      end_value: 0.0
  run: {num_epochs: 2, steps_per_epoch: 5}
"""


def test_a_dictconfig_builds_like_the_plain_mapping(conv_bn_head):
    config = OmegaConf.create(YAML)
    built = optiplug.build(config.optim, conv_bn_head)  # a DictConfig node, as Hydra hands it over
    plain = optiplug.build(OmegaConf.to_container(config.optim, resolve=True), conv_bn_head)
    assert built.recipe == plain.recipe
    assert built.recipe.schedules["lr"].params.start_value == 0.1  # ${base_lr} resolved
    assert (compute_curves(built).values["lr"] == compute_curves(plain).values["lr"]).all()


def test_a_vissl_dictconfig_is_detected(conv_bn_head):
    config = OmegaConf.create({"OPTIMIZER": {"name": "sgd", "num_epochs": 2, "param_schedulers": {
        "lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}}}})  # fmt: skip
    built = optiplug.build(config, conv_bn_head, steps_per_epoch=3)
    assert built.optimizer.param_groups[0]["lr"] == 0.1


def test_errors_name_the_path_inside_the_dictconfig(conv_bn_head):
    config = OmegaConf.create({"optimizer": {"name": "sgd", "lr": 0.1}, "schedules": {"lr": {"name": "cosin"}}})
    with pytest.raises(optiplug.ConfigError, match=r"schedules\.lr\.name: unknown schedule 'cosin' \(did you mean"):
        optiplug.build(config, conv_bn_head, steps_per_epoch=2, num_epochs=1)


def test_a_missing_value_is_a_config_error(conv_bn_head):
    config = OmegaConf.create({"optimizer": {"name": "sgd", "lr": "???"}})
    with pytest.raises(optiplug.ConfigError, match=r"^optimizer\.lr: expected a number, got '\?\?\?'$"):
        optiplug.build(config, conv_bn_head)


def test_an_unresolvable_interpolation_is_a_config_error_naming_its_key(conv_bn_head):
    config = OmegaConf.create({"optimizer": {"name": "sgd", "lr": "${base_lr}"}})
    with pytest.raises(optiplug.ConfigError, match=r"optimizer\.lr"):
        optiplug.build(config, conv_bn_head)
