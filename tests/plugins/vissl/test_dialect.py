"""Detection of VISSL configs, and whole VISSL config files (as VISSL's own YAML files are written)."""

from __future__ import annotations

import copy

import pytest
import yaml
from torch import nn

import optiplug
from optiplug_vissl import defaults
from optiplug_vissl.dialect import detect


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"OPTIMIZER": {"name": "sgd"}}, True),
        ({"OPTIMIZER": None}, True),
        ({"config": {"OPTIMIZER": {}, "DATA": {}}}, True),
        ({"config": "OPTIMIZER"}, False),
        ({"optimizer": {"name": "sgd", "lr": 0.1}}, False),
        ({"optimizer": {"type": "SGD", "lr": 0.1}}, False),
        ({}, False),
    ],
)
def test_detect(mapping, expected):
    assert detect(mapping) is expected


def test_registered_and_chosen_by_build():
    registry = optiplug.get_registry()
    assert "vissl" in registry.dialects
    assert {"vissl_groups", "vissl_head"} <= set(registry.rules.names())
    recipe = optiplug.to_recipe({"OPTIMIZER": {"num_epochs": 100}})
    assert recipe.optimizer.name == "SGD" and recipe.run.num_epochs == 100


def test_empty_optimizer_block_is_all_of_vissls_defaults():
    recipe = optiplug.to_recipe({"OPTIMIZER": None})
    assert recipe.optimizer.kwargs == {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0001, "nesterov": False}
    lr = recipe.schedules["lr"]
    assert (lr.name, lr.update_interval, lr.params.values, lr.params.milestones) == (
        "multistep",
        "epoch",
        [0.1, 0.01, 0.001],
        [30, 60],
    )


def test_a_full_dump_with_every_default_key_present():
    """VISSL prints the merged config: every default key is there (and ignored where it does not apply)."""
    block = copy.deepcopy(defaults.OPTIMIZER)
    block["param_schedulers"]["lr"] |= {"name": "cosine", "start_value": 0.3, "end_value": 0.0003}
    recipe = optiplug.to_recipe({"OPTIMIZER": block})
    assert (recipe.schedules["lr"].name, recipe.schedules["lr"].params.start_value) == ("cosine", 0.3)


SWAV = """
# @package _global_
config:
  VERBOSE: True
  DATA:
    NUM_DATALOADER_WORKERS: 5
    TRAIN:
      DATASET_NAMES: [imagenet1k_folder]
      BATCHSIZE_PER_REPLICA: 64
  MODEL:
    TRUNK:
      NAME: resnet
  DISTRIBUTED:
    NUM_NODES: 8
    NUM_PROC_PER_NODE: 8
  OPTIMIZER:
    name: sgd
    use_larc: True
    larc_config:
      clip: False
      trust_coefficient: 0.001
      eps: 0.00000001
    weight_decay: 0.000001
    momentum: 0.9
    nesterov: False
    num_epochs: 100
    regularize_bn: True
    regularize_bias: True
    param_schedulers:
      lr:
        auto_lr_scaling:
          auto_scale: true
          base_value: 0.3
          base_lr_batch_size: 256
        name: composite
        schedulers:
          - name: linear
            start_value: 0.6
            end_value: 4.8
          - name: cosine
            start_value: 4.8
            end_value: 0.0048
        update_interval: step
        interval_scaling: [rescaled, fixed]
        lengths: [0.1, 0.9]
"""


def test_a_whole_vissl_file(tmp_path):
    path = tmp_path / "swav_8node_resnet.yaml"
    path.write_text(SWAV)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    built = optiplug.build(path, model, steps_per_epoch=10)
    assert type(built.optimizer).__name__ == "LARC"
    assert built.recipe.run.world_size == 64 and built.recipe.run.batch_size_per_device == 64
    lr = built.recipe.schedules["lr"]
    assert [p.params.end_value for p in lr.params.schedulers] == pytest.approx([4.8, 0.0048])
    assert {g["weight_decay"] for g in built.optimizer.param_groups} == {1e-6}  # regularize_bn: one group
    assert len(built.optimizer.param_groups) == 1


def test_forced_dialect():
    config = yaml.safe_load("OPTIMIZER:\n  name: adamw\n")
    assert optiplug.to_recipe(config, dialect="vissl").optimizer.name == "AdamW"


def test_the_translation_is_a_plain_canonical_recipe():
    """What ``optiplug check`` prints for a VISSL config parses back to the same recipe."""
    from optiplug.engine.structuring import parse_recipe, unstructure_recipe

    schedulers = {
        "lr": {"name": "cosine"},
        "lr_head": {"name": "constant", "value": 0.3},
        "weight_decay_head": {"name": "linear", "start_value": 0.0, "end_value": 1.0},
    }
    block = {
        "num_epochs": 100,
        "use_larc": True,
        "head_optimizer_params": {"use_different_lr": True},
        "param_schedulers": schedulers,
    }
    recipe = optiplug.to_recipe({"OPTIMIZER": block})
    registry = optiplug.get_registry()
    assert parse_recipe(unstructure_recipe(recipe, registry), registry) == recipe
    assert [rule.kind for rule in recipe.rules] == ["vissl_groups", "vissl_head", "vissl_head"]
