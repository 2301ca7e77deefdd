"""Writing MMEngine configs (``optiplug convert --to mmengine``), checked against MMEngine itself.

* MMEngine config -> canonical -> MMEngine config: the written file, read by MMEngine's
  ``Config.fromfile`` and run by its OptimWrapper and param schedulers (reference.py), gives
  every parameter the same lr, momentum and weight decay at every iteration as the original,
  exactly; read by optiplug it builds the same values exactly.
* MMCV 1.x config -> MMEngine config: the written file run by MMEngine gives the values
  optiplug reads from the MMCV original (checked per policy against MMCV's formulas in
  tests/plugins/mmcv), to 1e-9 of the option's value (MMEngine chains factors where MMCV
  computes a closed form).
* What MMEngine cannot express is refused, naming the key and why.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path
from typing import Any

import pytest
import test_values
from reference import run_mmengine
from test_convert import CONFIG
from test_values import L, Net, mmengine_trace, optiplug_trace

import optiplug
from optiplug import ConfigError, Recipe
from optiplug.plugin import OptimizerConfig, RunConfig, WrapperConfig
from optiplug.tooling.conversion import converted_config, converted_recipe, differences, python_config, recipe_data

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
CONFIGS = Path(__file__).parent / "configs" / "shortened"
MMCV_CONFIGS = Path(__file__).parents[1] / "mmcv" / "configs"
TOLERANCE = 1e-9


def written_file(config: Any, tmp_path: Path, **figures: Any) -> Path:
    """``config`` written as an MMEngine .py file (steps_per_epoch L unless given)."""
    figures.setdefault("steps_per_epoch", L)
    path = tmp_path / "written.py"
    path.write_text(python_config(converted_config(config, to="mmengine", **figures), "written by the tests"))
    return path


def read_by_mmengine(path: Path) -> dict[str, Any]:
    """The config MMEngine's own reader gets from the written file."""
    from mmengine.config import Config

    return Config.fromfile(str(path)).to_dict()


def assert_same(a: list[dict[str, float]], b: list[dict[str, float]], rel: float = 0.0) -> None:
    """Two per-parameter traces, equal (rel=0) or within ``rel`` of the largest value of the run."""
    assert len(a) == len(b)
    scale = max((abs(v) for row in a for v in row.values()), default=0.0)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x.keys() == y.keys(), i
        for name in x:
            if rel == 0.0:
                assert x[name] == y[name], (i, name, x[name], y[name])
            else:
                assert abs(x[name] - y[name]) <= rel * scale, (i, name, x[name], y[name])


def quiet_mmengine_trace(config: dict[str, Any], option: str, **kw: Any) -> list[dict[str, float]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mmengine_trace(config, Net(), option, **kw)


# ----------------------------------------------------------------------------- MMEngine -> MMEngine

ROUND_TRIPS: dict[str, dict[str, Any]] = {
    f"schedule_{name}": {
        "optim_wrapper": {
            "optimizer": dict(test_values.SGD),
            "paramwise_cfg": {"bias_lr_mult": 2.0, "norm_decay_mult": 0.0},
        },
        "param_scheduler": schedule,
        "train_cfg": {"by_epoch": True, "max_epochs": 6},
    }
    for name, schedule in test_values.SCHEDULES.items()
}
ROUND_TRIPS.update(
    {
        f"paramwise_{index}": {
            "optim_wrapper": {"optimizer": dict(test_values.SGD), "paramwise_cfg": paramwise},
            "param_scheduler": [{"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "end": 4}],
            "train_cfg": {"max_epochs": 2},
        }
        for index, paramwise in enumerate(test_values.PARAMWISE)
    }
)
ROUND_TRIPS["momentum_and_weight_decay"] = {
    "optim_wrapper": {
        "optimizer": {"type": "AdamW", "lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.05},
        "clip_grad": {"max_norm": 1.0, "norm_type": 2},
        "accumulative_counts": 2,
    },
    "param_scheduler": [
        {"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "end": 6},
        {"type": "CosineAnnealingMomentum", "eta_min": 0.85, "by_epoch": False, "begin": 2},
        {"type": "LinearParamScheduler", "param_name": "weight_decay", "start_factor": 0.2, "by_epoch": False},
    ],
    "train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 23},
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_mmengine_round_trip_gives_mmengine_the_same_values(name: str, tmp_path: Path) -> None:
    original = ROUND_TRIPS[name]
    path = written_file(copy.deepcopy(original), tmp_path)
    written = read_by_mmengine(path)
    options = ("lr", "momentum", "weight_decay") if name.startswith(("paramwise_0", "momentum")) else ("lr",)
    for option in options:
        if option == "momentum" and "betas" in original["optim_wrapper"]["optimizer"]:
            option = "betas"
        assert_same(quiet_mmengine_trace(written, option), quiet_mmengine_trace(original, option))
    # and optiplug reads the written file as the original, exactly
    assert (
        differences(optiplug.build(original, Net(), steps_per_epoch=L), optiplug.build(path, Net(), steps_per_epoch=L))
        == []
    )


def test_auto_scale_lr_is_written_into_the_lr(tmp_path: Path) -> None:
    path = written_file(CONFIG, tmp_path, world_size=2)
    original = optiplug.build(CONFIG, Net(), steps_per_epoch=L, world_size=2)
    assert differences(original, optiplug.build(path, Net(), steps_per_epoch=L)) == []
    # MMEngine alone has no CosineAnnealingWeightDecay (mmpretrain registers it): checked without it
    config = {**CONFIG, "param_scheduler": CONFIG["param_scheduler"][:3]}
    written = read_by_mmengine(written_file(config, tmp_path, world_size=2))
    assert "auto_scale_lr" not in written
    assert written["optim_wrapper"]["optimizer"]["lr"] == 1e-3 * 128 / 256
    for option in ("lr", "betas", "weight_decay"):
        ours = quiet_mmengine_trace(config, option, batch_size=128)
        assert_same(quiet_mmengine_trace(written, option), ours)


@pytest.mark.parametrize("name", ["swin_adamw.py", "resnet_coslr_warmup.py"])
def test_real_mmpretrain_schedules_round_trip(name: str, tmp_path: Path) -> None:
    """Two mmpretrain 1.2.0 schedules (_base_/schedules), their runs shortened, through the written file."""
    source = CONFIGS / name
    path = written_file(source, tmp_path, batch_size_per_device=32, world_size=8)
    from mmengine.config import Config

    original = Config.fromfile(str(source)).to_dict()
    written = read_by_mmengine(path)
    for option in ("lr", "betas" if "AdamW" in source.read_text() else "momentum", "weight_decay"):
        assert_same(quiet_mmengine_trace(written, option), quiet_mmengine_trace(original, option, batch_size=256))
    built = optiplug.build(source, Net(), steps_per_epoch=L, batch_size_per_device=32, world_size=8)
    assert differences(built, optiplug.build(path, Net(), steps_per_epoch=L)) == []


@pytest.mark.parametrize(
    "name",
    ["mmdet/convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py", "mmdet/detr/detr_r50_8xb2-150e_coco.py"],
)
def test_real_mmdet_configs_with_their_bases_round_trip(name: str, tmp_path: Path) -> None:
    """Two of test_real_configs.py's files (mmdet's layer-decay constructor, DETR's custom_keys), written back.

    MMEngine runs the written file and gives optiplug's values of the original, and the
    original's run by MMEngine gives optiplug's values of the written file.
    """
    from mmdet_layer_decay_reference import LearningRateDecayOptimizerConstructor
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
    from test_config_trees import first_difference, mmengine_config

    OPTIM_WRAPPER_CONSTRUCTORS.register_module(module=LearningRateDecayOptimizerConstructor, force=True)
    source = Path(__file__).parent / "configs" / name
    assert "LearningRateDecayOptimizerConstructor" in source.read_text() or "detr" in name
    path = written_file(source, tmp_path, steps_per_epoch=2)
    assert first_difference(source, mmengine_config(path), epoch_length=2) is None
    assert first_difference(path, mmengine_config(source), epoch_length=2) is None


def test_the_python_text_reads_back_the_same_in_mmengine_and_optiplug(tmp_path: Path) -> None:
    """Infinity, keys that are no identifiers and nested lists survive MMEngine's reader and optiplug's."""
    config = {
        "optim_wrapper": {
            "optimizer": dict(test_values.SGD),
            "clip_grad": {"max_norm": 2.0, "norm_type": "inf"},
            "paramwise_cfg": {"custom_keys": {"backbone.0": {"lr_mult": 0.5}, "class": {"decay_mult": 0.0}}},
        },
        "param_scheduler": [{"type": "MultiStepLR", "milestones": [1, 2], "gamma": 0.5}],
        "train_cfg": {"max_epochs": 3},
    }
    path = written_file(config, tmp_path)
    text = path.read_text()
    assert "norm_type=float('inf')" in text and "{'backbone.0': dict(lr_mult=0.5), 'class': " in text
    written = read_by_mmengine(path)
    assert written["optim_wrapper"]["clip_grad"] == {"max_norm": 2.0, "norm_type": float("inf")}
    assert written["optim_wrapper"]["paramwise_cfg"]["custom_keys"]["class"] == {"decay_mult": 0.0}
    assert optiplug.to_recipe(path, steps_per_epoch=L).clip.norm_type == float("inf")
    assert (
        differences(optiplug.build(config, Net(), steps_per_epoch=L), optiplug.build(path, Net(), steps_per_epoch=L))
        == []
    )


# ----------------------------------------------------------------------------- MMCV 1.x -> MMEngine

SGD = {"type": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
MMCV: dict[str, dict[str, Any]] = {
    "step_linear_warmup": {"lr_config": {"policy": "step", "step": [2, 4], "warmup": "linear", "warmup_iters": 7}},
    "step_every_epoch_constant_warmup": {
        "lr_config": {"policy": "Step", "step": 2, "gamma": 0.5, "warmup": "constant", "warmup_iters": 3}
    },
    "step_by_iteration": {"lr_config": {"policy": "step", "step": 9, "by_epoch": False}},
    "exp": {"lr_config": {"policy": "Exp", "gamma": 0.9, "by_epoch": False}},
    "poly_iterations_floor": {"lr_config": {"policy": "poly", "power": 0.9, "min_lr": 1e-4, "by_epoch": False}},
    "poly_epochs_warmup": {
        "lr_config": {"policy": "poly", "power": 2.0, "min_lr": 0.0, "warmup": "linear", "warmup_iters": 12}
    },
    "cosine_ratio_warmup_epochs": {
        "lr_config": {
            "policy": "CosineAnnealing",
            "min_lr_ratio": 0.01,
            "warmup": "linear",
            "warmup_iters": 1,
            "warmup_ratio": 0.001,
            "warmup_by_epoch": True,
        }
    },
    "cosine_floor_by_iteration": {"lr_config": {"policy": "CosineAnnealing", "min_lr": 1e-3, "by_epoch": False}},
    "cosine_zero_floor_long_warmup": {
        "lr_config": {"policy": "CosineAnnealing", "min_lr": 0, "warmup": "linear", "warmup_iters": 13}
    },
    "linear_annealing": {"lr_config": {"policy": "LinearAnnealing", "min_lr_ratio": 0.1, "by_epoch": False}},
    "flat_cosine": {"lr_config": {"policy": "FlatCosineAnnealing", "min_lr": 1e-3, "start_percent": 0.5}},
    "cosine_restart": {
        "lr_config": {"policy": "CosineRestart", "periods": [10, 20], "restart_weights": [1, 0.5], "min_lr": 0}
        | {"by_epoch": False}
    },
    "fixed": {"lr_config": {"policy": "Fixed"}},
    "flat_cosine_never_reached": {"lr_config": {"policy": "FlatCosineAnnealing", "min_lr": 0, "start_percent": 1.0}},
    "fixed_warmup": {"lr_config": {"policy": "Fixed", "warmup": "linear", "warmup_iters": 4, "warmup_ratio": 0.2}},
    "momentum_cosine": {
        "lr_config": {"policy": "CosineAnnealing", "min_lr": 0, "by_epoch": False},
        "momentum_config": {"policy": "CosineAnnealing", "min_momentum_ratio": 0.85 / 0.9, "by_epoch": False},
    },
    "momentum_step": {
        "lr_config": {"policy": "step", "step": [3]},
        "momentum_config": {"policy": "step", "step": [2, 4], "gamma": 0.9},
    },
    "mmcls_paramwise": {
        "lr_config": {"policy": "step", "step": [3]},
        "paramwise_cfg": {"norm_decay_mult": 0.0, "bias_decay_mult": 0.0, "dwconv_decay_mult": 0.0},
    },
    "mmdet_paramwise": {
        "lr_config": {"policy": "step", "step": [3]},
        "paramwise_cfg": {"bias_lr_mult": 2.0, "custom_keys": {"head": {"lr_mult": 10.0, "decay_mult": 0.5}}},
    },
    "dwconv_only": {"lr_config": {"policy": "step", "step": [3]}, "paramwise_cfg": {"dwconv_decay_mult": 0.5}},
}


def mmcv_config(name: str) -> dict[str, Any]:
    case = copy.deepcopy(MMCV[name])
    optimizer = {**SGD, **({"paramwise_cfg": case.pop("paramwise_cfg")} if "paramwise_cfg" in case else {})}
    return {"optimizer": optimizer, "runner": {"type": "EpochBasedRunner", "max_epochs": 6}, **case}


@pytest.mark.parametrize("name", sorted(MMCV))
def test_mmcv_config_written_for_mmengine_gives_the_same_values(name: str, tmp_path: Path) -> None:
    config = mmcv_config(name)
    path = written_file(config, tmp_path)
    written = read_by_mmengine(path)
    for option in ("lr", "momentum", "weight_decay"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours, _ = optiplug_trace(config, Net(), option, 6 * L, steps_per_epoch=L)
        assert_same(quiet_mmengine_trace(written, option), ours, rel=TOLERANCE)
    original = optiplug.build(config, Net(), steps_per_epoch=L)
    assert differences(original, optiplug.build(path, Net(), steps_per_epoch=L), tolerance=TOLERANCE) == []


@pytest.mark.parametrize("name", ["mmselfsup_fp16_accum.py", "mmseg_total_iters.py", "mmcls_fp16_static.py"])
def test_real_mmcv_configs_written_for_mmengine(name: str, tmp_path: Path) -> None:
    source = MMCV_CONFIGS / name
    path = written_file(source, tmp_path)
    written = read_by_mmengine(path)
    original = optiplug.build(source, Net(), steps_per_epoch=L)
    total = int(original.clock.total_steps)
    for option in ("lr", "momentum", "weight_decay"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours, _ = optiplug_trace(str(source), Net(), option, total, steps_per_epoch=L)
        assert_same(quiet_mmengine_trace(written, option), ours, rel=TOLERANCE)


# ----------------------------------------------------------------------------- refusals

REFUSED = {
    "cyclic": (
        {"lr_config": {"policy": "cyclic", "target_ratio": (10, 1e-4), "by_epoch": False}},
        "lr_config.policy",
        "Cyclic policy has no MMEngine scheduler",
    ),
    "exp_warmup": (
        {"lr_config": {"policy": "step", "step": [3], "warmup": "exp", "warmup_iters": 4}},
        "lr_config.warmup",
        "exp warmup",
    ),
    "floor_inside_warmup": (
        {
            "lr_config": {"policy": "CosineAnnealing", "min_lr": 1e-3, "by_epoch": False, "warmup": "linear"}
            | {"warmup_iters": 5}
        },
        "lr_config.warmup",
        "nonzero floor",
    ),
    "step_floor": (
        {"lr_config": {"policy": "step", "step": [2, 4], "min_lr": 1e-3}},
        "lr_config.min_lr",
        "no floor",
    ),
    "inv": ({"lr_config": {"policy": "Inv", "gamma": 0.1, "by_epoch": False}}, "lr_config.policy", "Inv policy"),
    "momentum_warmup": (
        {"momentum_config": {"policy": "step", "step": [2], "warmup": "linear", "warmup_iters": 3}},
        "momentum_config.warmup",
        "divides",
    ),
    "absolute_linear_floor": (
        {"lr_config": {"policy": "LinearAnnealing", "min_lr": 1e-3}},
        "lr_config.min_lr",
        "give min_lr_ratio",
    ),
    "biased_dwconv": (
        {"paramwise_cfg": {"bias_decay_mult": 0.0}},
        "optimizer.paramwise_cfg.bias_decay_mult",
        "depthwise conv's bias",
    ),
    "regex_rules": (
        {"paramwise_options": {"(bn|gn)(\\d+)?.(weight|bias)": {"weight_decay": 0.0}}},
        "rules[0].kind",
        "no MMEngine equivalent",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_mmengine_cannot_express_is_refused(name: str) -> None:
    case, path, words = REFUSED[name]
    config = {"optimizer": dict(SGD), "runner": {"type": "EpochBasedRunner", "max_epochs": 6}}
    for key in ("paramwise_cfg", "paramwise_options"):
        if key in case:
            config["optimizer"][key] = case[key]
    config.update({k: v for k, v in case.items() if k not in ("paramwise_cfg", "paramwise_options")})
    with pytest.raises(ConfigError, match=words) as caught:
        converted_config(config, to="mmengine", steps_per_epoch=L)
    assert caught.value.path == path


def test_the_writer_checks_its_schedulers_value_for_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """A translation giving other values (here Exp written as a StepLR) is refused, not written."""
    from optiplug_mmengine import writer

    def wrong(policy: Any) -> list[dict[str, Any]]:
        return [policy.entry("Step", step_size=2, gamma=float(policy.params["gamma"]), begin=0, end=policy.length)]

    monkeypatch.setitem(writer.MMCV_POLICIES, "mmcv_exp", wrong)
    with pytest.raises(
        ConfigError, match="no MMEngine scheduler chain gives this schedule's values: at iteration 1"
    ) as caught:
        converted_config(mmcv_config("exp"), to="mmengine", steps_per_epoch=L)
    assert caught.value.path == "lr_config"


def test_a_wrapper_or_an_unknown_optimizer_is_refused() -> None:
    larc = Recipe(optimizer=OptimizerConfig("SGD", {"lr": 0.1}), wrappers=[WrapperConfig("larc")])
    with pytest.raises(ConfigError, match="no optimizer wrappers such as larc") as caught:
        converted_config(larc, to="mmengine")
    assert caught.value.path == "wrappers[0]"
    adamwr = Recipe(optimizer=OptimizerConfig("adamwr", {"lr": 0.1}), run=RunConfig(num_epochs=2))
    with pytest.raises(ConfigError, match="no name in OpenMMLab's registries") as caught:
        converted_config(adamwr, to="mmengine")
    assert caught.value.path == "optimizer.name"


@pytest.mark.parametrize(
    ("loss_scale", "written"),
    [
        ({"dynamic": False, "init_scale": 512.0}, 512.0),
        ({}, "dynamic"),
        ({"init_scale": 1024.0, "growth_interval": 100}, {"init_scale": 1024.0, "growth_interval": 100}),
    ],
)
def test_the_loss_scale_is_written_as_an_amp_optim_wrapper(loss_scale: dict[str, Any], written: Any) -> None:
    recipe = {"optimizer": {"name": "sgd", "lr": 0.1}, "loss_scale": loss_scale}
    wrapper = converted_config(recipe, to="mmengine")["optim_wrapper"]
    assert wrapper["type"] == "AmpOptimWrapper"
    assert wrapper["loss_scale"] == written
    back = recipe_data(converted_recipe({"optim_wrapper": wrapper}))
    assert back["loss_scale"] == loss_scale


def test_a_disabled_loss_scale_is_a_plain_optim_wrapper() -> None:
    recipe = {"optimizer": {"name": "sgd", "lr": 0.1}, "loss_scale": {"enabled": False}}
    assert converted_config(recipe, to="mmengine")["optim_wrapper"]["type"] == "OptimWrapper"


def test_frozen_parameters_are_refused() -> None:
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "freeze": [{"match": {"kind": "name", "contains": "head"}, "until": 10}],
    }
    with pytest.raises(ConfigError, match="no frozen_layers_cfg") as caught:
        converted_config(recipe, to="mmengine")
    assert caught.value.path == "freeze[0]"


def test_a_canonical_schedule_without_an_mmengine_scheduler_is_refused() -> None:
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}},
        "run": {"num_epochs": 2, "steps_per_epoch": 5},
    }
    with pytest.raises(ConfigError, match="'cosine' has no MMEngine scheduler") as caught:
        converted_config(recipe, to="mmengine")
    assert caught.value.path == "schedules.lr.name"


def test_a_read_only_dialect_is_refused() -> None:
    with pytest.raises(ConfigError, match="the mmcv dialect is read only: optiplug writes canonical, mmengine"):
        converted_config(mmcv_config("exp"), to="mmcv", steps_per_epoch=L)


# ----------------------------------------------------------------------------- the command


@dataclasses.dataclass
class Result:
    returncode: int
    stderr: str


def run_command(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """``optiplug convert ARGS`` in this process (the command's main, as ``python -m optiplug`` runs it)."""
    from optiplug.cli.main import main

    capsys.readouterr()
    code = main(["convert", *args])
    return Result(code, capsys.readouterr().err)


def test_the_convert_command_writes_an_mmengine_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "mmcv_config.py"
    source.write_text(
        "optimizer = dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4,\n"
        "                 paramwise_cfg=dict(norm_decay_mult=0.0))\n"
        "lr_config = dict(policy='step', step=[2, 3], warmup='linear', warmup_iters=4, warmup_ratio=0.01)\n"
        "runner = dict(type='EpochBasedRunner', max_epochs=4)\n"
    )
    out = tmp_path / "mmengine_config.py"
    result = run_command(capsys, str(source), "--to", "mmengine", "-o", str(out), "--steps-per-epoch", "6")
    assert result.returncode == 0, result.stderr
    assert "checked: read back as an mmengine config" in result.stderr
    written = read_by_mmengine(out)
    assert written["param_scheduler"][1] == {
        "type": "MultiStepLR",
        "milestones": [2, 3],
        "gamma": 0.1,
        "begin": 0,
        "end": 4,
        "by_epoch": True,
    }
    assert written["train_cfg"] == {"type": "EpochBasedTrainLoop", "max_epochs": 4}
    trace = run_mmengine(written, Net(), 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = optiplug.build(source, Net(), steps_per_epoch=6)
    assert differences(built, optiplug.build(out, Net(), steps_per_epoch=6), tolerance=TOLERANCE) == []
    assert trace[0][0] == pytest.approx(0.1 * 0.01, rel=1e-12)


def test_the_convert_command_refuses_in_the_configs_terms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "cyclic.py"
    source.write_text(
        "optimizer = dict(type='SGD', lr=0.1, momentum=0.9)\n"
        "lr_config = dict(policy='cyclic', target_ratio=(10, 1e-4), by_epoch=False)\n"
        "runner = dict(type='EpochBasedRunner', max_epochs=4)\n"
    )
    result = run_command(capsys, str(source), "--to", "mmengine", "--steps-per-epoch", "6")
    assert result.returncode != 0
    assert "lr_config.policy: MMCV's Cyclic policy has no MMEngine scheduler" in result.stderr
    result = run_command(capsys, str(source), "--to", "mmengine", "-o", str(tmp_path / "x.yaml"))
    assert result.returncode != 0
    assert "an mmengine config is a .py file" in result.stderr
    result = run_command(capsys, str(source), "--to", "vissl")
    assert result.returncode == 2  # a usage error, as argparse reports an unknown choice
    assert "argument --to: optiplug writes canonical, mmengine, not 'vissl'" in result.stderr


def test_several_mmcv_rules_are_refused_naming_the_configs_keys() -> None:
    config = {
        "optimizer": {**SGD, "paramwise_options": {"bias": {"weight_decay": 0.0}, "bn": {"weight_decay": 0.0}}},
        "runner": {"type": "EpochBasedRunner", "max_epochs": 2},
    }
    with pytest.raises(ConfigError, match=r"paramwise_options\['bias'\], paramwise_options\['bn'\]"):
        converted_config(config, to="mmengine", steps_per_epoch=L)
