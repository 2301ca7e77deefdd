"""Every bad VISSL config is a ConfigError naming the VISSL path, the bad value and what is
accepted; the seed page's composite examples, as printed, are invalid YAML with a fix hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

import optiplug

COSINE = {"name": "cosine", "start_value": 0.1, "end_value": 0.0}


def lr(**schedule):
    return {"OPTIMIZER": {"param_schedulers": {"lr": schedule}}}


def composite(*parts, **options):
    return lr(name="composite", schedulers=list(parts), **options)


CASES = [
    (lr(name="cosine", strat_value=0.1), "OPTIMIZER.param_schedulers.lr.strat_value", "did you mean 'start_value'"),
    ({"OPTIMIZER": {"wieght_decay": 0.1}}, "OPTIMIZER.wieght_decay", "did you mean 'weight_decay'"),
    (
        composite(COSINE, COSINE, lengths=[0.5, 0.5], interval_scaling=["fixed"]),
        "OPTIMIZER.param_schedulers.lr.interval_scaling",
        "one entry per schedule (2), got 1",
    ),
    (composite(COSINE, COSINE), "OPTIMIZER.param_schedulers.lr.lengths", "one length per schedule (2), got 0"),
    (composite(COSINE, COSINE, lengths=[0.5, 0.6]), "OPTIMIZER.param_schedulers.lr.lengths", "sum to 1"),
    (composite({"start_value": 1}, lengths=[1.0]), "OPTIMIZER.param_schedulers.lr.schedulers[0]", "needs a name"),
    (
        composite(COSINE, {"name": "cosine", "start_value": 1, "end_valu": 0}, lengths=[0.5, 0.5]),
        "OPTIMIZER.param_schedulers.lr.schedulers[1].end_valu",
        "did you mean 'end_value'",
    ),
    (
        composite(COSINE, COSINE | {"auto_lr_scaling": {}}, lengths=[0.5, 0.5]),
        "OPTIMIZER.param_schedulers.lr.schedulers[1].auto_lr_scaling",
        "belongs to param_schedulers.lr and lr_head",
    ),
    (lr(name="cosin"), "OPTIMIZER.param_schedulers.lr.name", "did you mean 'cosine'"),
    (
        lr(name="cosine", update_interval="iteration"),
        "OPTIMIZER.param_schedulers.lr.update_interval",
        "'step', 'epoch'",
    ),
    (lr(name="multistep", num_updates=10), "OPTIMIZER.param_schedulers.lr.num_updates", "OPTIMIZER.num_epochs"),
    (lr(name="cosine", num_epochs=3), "OPTIMIZER.param_schedulers.lr.num_epochs", "set it there"),
    (
        {"OPTIMIZER": {"param_schedulers": {"weight_decay": {"name": "cosine", "start_value": 0.1}}}},
        "OPTIMIZER.param_schedulers.weight_decay.end_value",
        "required key missing",
    ),
    (
        {"OPTIMIZER": {"param_schedulers": {"momentum": COSINE}}},
        "OPTIMIZER.param_schedulers.momentum",
        "never apply it",
    ),
    (
        {"OPTIMIZER": {"param_schedulers": {"weight_decy": COSINE}}},
        "OPTIMIZER.param_schedulers.weight_decy",
        "did you mean 'weight_decay'",
    ),
    (
        lr(auto_lr_scaling={"scaling_type": "sqr"}),
        "OPTIMIZER.param_schedulers.lr.auto_lr_scaling.scaling_type",
        "did you mean 'sqrt'",
    ),
    (
        lr(auto_lr_scaling={"base_lr": 0.1}),
        "OPTIMIZER.param_schedulers.lr.auto_lr_scaling.base_lr",
        "did you mean 'base_value'",
    ),
    (lr(auto_lr_scaling={"auto_scale": True}), "DATA.TRAIN.BATCHSIZE_PER_REPLICA", "batch_size_per_device"),
    (
        {"OPTIMIZER": {"num_epochs": 2, "param_schedulers": {"lr": {"values": [1, 0.1, 0.01], "milestones": None}}}},
        "OPTIMIZER.param_schedulers.lr.values",
        "3 values need at least as many epochs",
    ),
    ({"OPTIMIZER": {"momentum": 1.0}}, "OPTIMIZER.momentum", "in [0.0, 1.0), got 1.0"),
    ({"OPTIMIZER": {"nesterov": "yes"}}, "OPTIMIZER.nesterov", "true or false, got 'yes'"),
    ({"OPTIMIZER": {"nesterov": True, "momentum": 0.0}}, "OPTIMIZER.nesterov", "momentum > 0"),
    ({"OPTIMIZER": {"name": "adamx"}}, "OPTIMIZER.name", "did you mean 'adamax'"),
    ({"OPTIMIZER": {"name": "zero"}}, "OPTIMIZER.name", "use_zero: true"),
    ({"OPTIMIZER": {"name": "adam", "use_larc": True}}, "OPTIMIZER.use_larc", "only to sgd"),
    (
        {"OPTIMIZER": {"use_larc": True, "larc_config": {"trust": 0.1}}},
        "OPTIMIZER.larc_config.trust",
        "trust_coefficient",
    ),
    (
        {"OPTIMIZER": {"use_larc": True, "larc_config": {"trust_coefficient": -1}}},
        "OPTIMIZER.larc_config.trust_coefficient",
        "> 0",
    ),
    ({"OPTIMIZER": {"lr": 0.1}}, "OPTIMIZER.lr", "param_schedulers.lr"),
    ({"OPTIMIZER": {"eps": 1e-8}}, "OPTIMIZER.eps", "read only by adam"),
    ({"OPTIMIZER": {"name": "adam", "betas": [0.9]}}, "OPTIMIZER.betas", "two numbers"),
    ({"OPTIMIZER": {"weight_decay": -1}}, "OPTIMIZER.weight_decay", ">= 0.0, got -1"),
    ({"OPTIMIZER": {"num_epochs": 0}}, "OPTIMIZER.num_epochs", ">= 1, got 0"),
    ({"OPTIMIZER": {"regularize_bn": 1}}, "OPTIMIZER.regularize_bn", "true or false, got 1"),
    (
        {"OPTIMIZER": {"non_regularized_parameters": "class_token"}},
        "OPTIMIZER.non_regularized_parameters",
        "list of strings",
    ),
    (
        {"OPTIMIZER": {"head_optimizer_params": {"use_different_wd": True, "weight_decay": -0.1}}},
        "OPTIMIZER.head_optimizer_params.weight_decay",
        ">= 0.0",
    ),
    (
        {"OPTIMIZER": {"head_optimizer_params": {"use_different_values": True}}},
        "OPTIMIZER.head_optimizer_params.use_different_values",
        "use_different_lr",
    ),
    (
        {"OPTIMIZER": {"param_group_constructor": "dfault"}},
        "OPTIMIZER.param_group_constructor",
        "did you mean 'default'",
    ),
    ({"OPTIMIZER": {}, "DATA": {"TRAIN": {"TRAIN_PHASES_PER_EPOCH": 2}}}, "DATA.TRAIN.TRAIN_PHASES_PER_EPOCH", "got 2"),
    ({"OPTIMIZER": [1]}, "OPTIMIZER", "expected a mapping"),
    ({"config": {"OPTIMIZER": {"nam": "sgd"}}}, "config.OPTIMIZER.nam", "did you mean 'name'"),
]


@pytest.mark.parametrize(
    ("config", "path", "words"), CASES, ids=[c[1].split(".", 1)[-1] + f"-{i}" for i, c in enumerate(CASES)]
)
def test_config_errors_name_the_vissl_path(config, path, words):
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(config, nn.Linear(2, 2), steps_per_epoch=2)
    assert info.value.path == path
    assert words in str(info.value)


@pytest.mark.parametrize("epochs", [10, 60])
def test_default_milestones_need_more_than_60_epochs(epochs):
    """VISSL crashes in fvcore here ("Milestone must be smaller than total number of updates")."""
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build({"OPTIMIZER": {"num_epochs": epochs}}, nn.Linear(2, 2), steps_per_epoch=2)
    assert info.value.path == "OPTIMIZER.param_schedulers.lr.milestones"
    assert "[30, 60] are VISSL's default milestones" in str(info.value)
    assert optiplug.build({"OPTIMIZER": {"num_epochs": 61}}, nn.Linear(2, 2), steps_per_epoch=2)


def test_build_num_epochs_counts_for_the_default_milestones():
    with pytest.raises(optiplug.ConfigError, match="< num_epochs \\(50\\)"):
        optiplug.build({"OPTIMIZER": {}}, nn.Linear(2, 2), steps_per_epoch=2, num_epochs=50)


def test_no_steps_per_epoch():
    with pytest.raises(optiplug.ConfigError, match="steps_per_epoch"):
        optiplug.build({"OPTIMIZER": {}}, nn.Linear(2, 2))


# -- the seed page's composite examples, exactly as printed --------------------------------------------------------

PRINTED = Path(__file__).parent / "printed"  # the seed page's text, byte for byte


@pytest.mark.parametrize(
    ("name", "item_line"),
    [
        ("linear_warmup_cosine.yaml", 6),
        ("linear_warmup_cosine_warm_restart.yaml", 6),
        ("multiple_linear_warmups_cosine.yaml", 5),
    ],
)
def test_printed_composites_are_invalid_yaml_with_a_fix(name, item_line):
    path = PRINTED / name
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(path, nn.Linear(2, 2), steps_per_epoch=2)
    message = str(info.value)
    assert f"at line {item_line + 1}, column 24" in message  # the first key under the item
    assert (
        f"the keys under the list item on line {item_line} must be indented to column 11, the same as 'name'" in message
    )


@pytest.mark.parametrize("name", sorted(p.name for p in PRINTED.glob("*.yaml")))
def test_printed_composites_work_once_indented_as_the_hint_says(tmp_path, name):
    fixed = (PRINTED / name).read_text().replace("            ", "          ")
    path = tmp_path / "fixed.yaml"
    path.write_text(fixed)
    assert optiplug.build(path, nn.Linear(2, 2), steps_per_epoch=2).recipe.schedules["lr"].name == "composite"
