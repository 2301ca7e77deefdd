"""auto_lr_scaling: spec 2.4's verified vectors (under decision D3), the batch's sources (D4),
lr_head, and what VISSL does when a composite collapses to one part."""

from __future__ import annotations

import math
import warnings

import pytest

import optiplug
from optiplug import OptiplugWarning
from optiplug.engine.structuring import converter_for
from optiplug.plugin import Clock, evaluate

WARMUP_COSINE = {
    "name": "composite",
    "schedulers": [
        {"name": "linear", "start_value": 0.6, "end_value": 4.8},
        {"name": "cosine", "start_value": 4.8, "end_value": 0.0048},
    ],
    "interval_scaling": ["rescaled", "fixed"],
    "lengths": [0.1, 0.9],
    "update_interval": "step",
}


def vissl_config(lr, nodes=None, gpus=None, per_gpu=None, *, base=0.3, scaling="linear", **optimizer):
    lr = dict(lr) | {
        "auto_lr_scaling": {"auto_scale": True, "base_value": base, "base_lr_batch_size": 256, "scaling_type": scaling}
    }
    config = {"OPTIMIZER": {"param_schedulers": {"lr": lr}, **optimizer}}
    if per_gpu is not None:
        config["DATA"] = {"TRAIN": {"BATCHSIZE_PER_REPLICA": per_gpu}}
    if nodes is not None:
        config["DISTRIBUTED"] = {"NUM_NODES": nodes, "NUM_PROC_PER_NODE": gpus}
    return config


def lr_of(config, **build_args):
    recipe = optiplug.to_recipe(config, **build_args)
    return converter_for(optiplug.get_registry()).unstructure(recipe.schedules["lr"])


def cosine(start, end, interval="step"):
    out = {"name": "cosine", "start_value": pytest.approx(start, rel=1e-12), "end_value": pytest.approx(end, rel=1e-12)}
    return out if interval == "step" else out | {"update_interval": interval}


def warmup_cosine(start, peak, end):
    return {
        "name": "composite",
        "schedulers": [
            {
                "name": "linear",
                "start_value": pytest.approx(start, rel=1e-12),
                "end_value": pytest.approx(peak, rel=1e-12),
            },
            cosine(peak, end),
        ],
        "lengths": [0.1, 0.9],
        "interval_scaling": ["rescaled", "fixed"],
    }


SPEC_2_4 = [
    ((1, 8, 32, "linear"), cosine(0.3, 0.0003)),
    ((1, 8, 64, "linear"), cosine(0.6, 0.0006)),
    ((1, 1, 32, "linear"), cosine(0.0375, 3.75e-05)),
    ((2, 8, 32, "linear"), warmup_cosine(0.3, 0.6, 0.0006)),
    ((1, 8, 16, "sqrt"), cosine(0.3 * math.sqrt(0.5), 0.3 * math.sqrt(0.5) * 0.001)),
    # VISSL keeps a falling ramp 0.6 -> 0.424264 here; D3 removes it.
    ((1, 8, 64, "sqrt"), cosine(0.3 * math.sqrt(2), 0.3 * math.sqrt(2) * 0.001)),
    ((4, 8, 64, "sqrt"), warmup_cosine(0.6, 0.3 * math.sqrt(8), 0.3 * math.sqrt(8) * 0.001)),
]


@pytest.mark.parametrize(("setup", "expected"), SPEC_2_4, ids=[f"{n}x{g}x{b}-{s}" for (n, g, b, s), _ in SPEC_2_4])
def test_spec_vectors_from_the_vissl_config(setup, expected):
    nodes, gpus, per_gpu, scaling = setup
    assert lr_of(vissl_config(WARMUP_COSINE, nodes, gpus, per_gpu, scaling=scaling)) == expected


def test_build_arguments_win_over_the_config():
    config = vissl_config(WARMUP_COSINE, 1, 8, 32)  # B = 256 in the config
    assert lr_of(config, batch_size_per_device=64) == cosine(0.6, 0.0006)
    # 16 devices of which NUM_PROC_PER_NODE (8) per node: two nodes keep the warmup.
    assert lr_of(config, world_size=16) == warmup_cosine(0.3, 0.6, 0.0006)


def test_torch_distributed_when_neither_build_nor_config_says(monkeypatch):
    monkeypatch.setattr("optiplug_vissl.scaling.distributed_world", lambda: (16, 8))
    with pytest.warns(
        OptiplugWarning, match=r"DISTRIBUTED: not given, so VISSL would scale .* 8 devices; optiplug .* 16"
    ):
        assert lr_of(vissl_config(WARMUP_COSINE, per_gpu=32)) == warmup_cosine(0.3, 0.6, 0.0006)
    monkeypatch.setattr("optiplug_vissl.scaling.distributed_world", lambda: (None, None))
    with pytest.warns(OptiplugWarning, match="optiplug scales for 1"):
        assert lr_of(vissl_config(WARMUP_COSINE, per_gpu=32)) == cosine(0.0375, 3.75e-05)  # one device


def test_no_default_world_warning_when_distributed_or_world_size_is_given(monkeypatch):
    monkeypatch.setattr("optiplug_vissl.scaling.distributed_world", lambda: (None, None))
    config = vissl_config(WARMUP_COSINE, per_gpu=32)
    config["DISTRIBUTED"] = {"NUM_NODES": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lr_of(config)
        optiplug.to_recipe(vissl_config(WARMUP_COSINE, per_gpu=32), world_size=4)


def test_missing_partner_key_takes_vissls_default():
    config = vissl_config(WARMUP_COSINE, per_gpu=32)
    config["DISTRIBUTED"] = {"NUM_NODES": 2}  # NUM_PROC_PER_NODE defaults to 8 in VISSL
    assert lr_of(config) == warmup_cosine(0.3, 0.6, 0.0006)


def test_config_under_a_config_root():
    """VISSL's YAML files hold everything under ``config:``."""
    assert lr_of({"config": vissl_config(WARMUP_COSINE, 1, 8, 64)}) == cosine(0.6, 0.0006)


def test_swav_8_nodes_values_at_the_verified_points():
    lr = dict(WARMUP_COSINE) | {"lengths": [0.025, 0.975]}
    recipe = optiplug.to_recipe(vissl_config(lr, 8, 8, 64))
    values = evaluate(
        recipe.schedules["lr"], Clock(100, 10000.0), optiplug.get_registry(), [0, 125, 249, 250, 5000, 9990]
    )
    assert values.tolist() == pytest.approx([0.6, 2.7, 4.7832, 4.792609, 2.4024, 0.004812], abs=1e-6)


@pytest.mark.parametrize(("scaling", "end"), [("linear", 0.3 * 0.125), ("sqrt", 0.3 * math.sqrt(0.125))])
def test_vissls_own_scaling_type_test(scaling, end):
    """tests/test_configs.py TestScalingTypeConfig: a plain linear keeps its start, ends at the scaled lr."""
    linear = {"name": "linear", "start_value": 0.6, "end_value": 0.3}
    got = lr_of(vissl_config(linear, 1, 1, 32, scaling=scaling))
    assert got == {
        "name": "linear",
        "start_value": 0.6,
        "end_value": pytest.approx(end, rel=1e-12),
        "update_interval": "epoch",
    }


def test_multistep_becomes_geometric_and_rounded():
    five = {"name": "multistep", "values": [0.1, 0.01, 0.001, 0.0001, 0.00001], "milestones": [10, 20, 30, 40]}
    got = lr_of(vissl_config(five, 4, 8, 32, base=0.1, num_epochs=50))
    assert got["values"] == [0.4, 0.04, 0.004, 0.0004, 4e-05]
    uneven = {"name": "multistep", "values": [0.1, 0.01, 0.005, 1e-9], "milestones": [10, 20, 30]}
    assert lr_of(vissl_config(uneven, 1, 8, 32, base=0.3, num_epochs=50))["values"] == [0.3, 0.03, 0.003, 0.0003]


def test_cosine_warm_restart_keeps_its_ratio():
    restart = {
        "name": "cosine_warm_restart",
        "start_value": 0.15,
        "end_value": 0.00015,
        "restart_interval_length": 0.5,
        "wave_type": "half",
    }
    got = lr_of(vissl_config(restart, 8, 8, 64, base=0.15))
    assert (got["start_value"], got["end_value"]) == pytest.approx((2.4, 0.0024), rel=1e-12)


def test_polynomial_rescales_base_value():
    """VISSL cannot scale a polynomial (RuntimeError); optiplug moves its base_value (documented difference)."""
    got = lr_of(vissl_config({"name": "polynomial", "base_value": 0.1, "power": 2.0}, 1, 8, 64))
    assert got["base_value"] == pytest.approx(0.6)


def test_four_part_composite_on_one_node_gives_the_removed_length_to_the_next_part():
    """The seed's "multiple warmups" schedule: VISSL fails here; D3 hands the warmup's length on."""
    lr = {
        "schedulers": [
            {"name": "linear", "start_value": 0.6, "end_value": 4.8},
            {"name": "cosine", "start_value": 4.8, "end_value": 0.0048},
            {"name": "linear", "start_value": 0.0048, "end_value": 2.114},
            {"name": "cosine", "start_value": 2.114, "end_value": 0.0048},
        ],
        "update_interval": "step",
        "interval_scaling": ["rescaled"] * 4,
        "lengths": [0.0256, 0.48722, 0.0256, 0.46166],
    }
    parts = lr_of(vissl_config(lr, 1, 8, 32))
    assert parts["lengths"] == pytest.approx([0.0256, 0.48722, 0.0256 + 0.46166])
    assert [p["name"] for p in parts["schedulers"]] == ["linear", "cosine", "cosine"]
    first, _, last = parts["schedulers"]
    assert (first["start_value"], first["end_value"]) == pytest.approx((0.3, 0.3))  # the first warmup is flat
    assert (last["start_value"], last["end_value"]) == pytest.approx((0.3, 0.3 * 0.0048 / 2.114))


def test_collapsed_part_takes_missing_options_from_the_composite_and_its_own_interval():
    """VISSL copies the surviving part's keys onto the lr mapping: milestones come from the defaults."""
    lr = {
        "name": "composite",
        "schedulers": [
            {"name": "linear", "start_value": 0.01, "end_value": 0.1},
            {"name": "multistep", "values": [0.1, 0.01, 0.001], "update_interval": "epoch"},
        ],
        "lengths": [0.1, 0.9],
        "interval_scaling": ["rescaled", "rescaled"],
        "update_interval": "step",
    }
    got = lr_of(vissl_config(lr, 1, 8, 32, base=0.1))
    assert got == {
        "name": "multistep",
        "values": [0.1, 0.01, 0.001],
        "milestones": [30, 60],
        "num_updates": 90,
        "update_interval": "epoch",
    }


def test_without_auto_scale_nothing_moves():
    lr = dict(WARMUP_COSINE) | {"auto_lr_scaling": {"auto_scale": False}}
    got = lr_of({"OPTIMIZER": {"param_schedulers": {"lr": lr}}})
    assert got["schedulers"][0] == {"name": "linear", "start_value": 0.6, "end_value": 4.8}


def test_lr_head_has_its_own_scaling_block_with_use_different_lr(trunk_head):
    """tests/test_finetuning.py: base 0.01 for the trunk, 0.1 for the head, base batch 2."""

    def constant(base):
        return {
            "name": "constant",
            "value": 1.0,
            "auto_lr_scaling": {"auto_scale": True, "base_value": base, "base_lr_batch_size": 2},
        }

    config = {
        "OPTIMIZER": {
            "head_optimizer_params": {"use_different_lr": True},
            "param_schedulers": {"lr": constant(0.01), "lr_head": constant(0.1)},
        },
        "DATA": {"TRAIN": {"BATCHSIZE_PER_REPLICA": 4}},
        "DISTRIBUTED": {"NUM_NODES": 1, "NUM_PROC_PER_NODE": 1},
    }
    built = optiplug.build(config, trunk_head, steps_per_epoch=3)
    fc = trunk_head.heads[0].fc.weight
    lrs = sorted({g["lr"] for g in built.optimizer.param_groups})
    assert lrs == pytest.approx([0.02, 0.2])
    assert next(g["lr"] for g in built.optimizer.param_groups if any(p is fc for p in g["params"])) == pytest.approx(
        0.2
    )


def test_lr_head_is_a_copy_of_the_scaled_lr_without_use_different_lr(trunk_head):
    lr = {
        "name": "constant",
        "value": 5.0,
        "auto_lr_scaling": {"auto_scale": True, "base_value": 0.1, "base_lr_batch_size": 256},
    }
    head = {"name": "constant", "value": 7.0}  # ignored, as in VISSL
    config = {"OPTIMIZER": {"param_schedulers": {"lr": lr, "lr_head": head}}}
    built = optiplug.build(config, trunk_head, steps_per_epoch=3, batch_size_per_device=64, world_size=8)
    assert {g["lr"] for g in built.optimizer.param_groups} == {0.2}
