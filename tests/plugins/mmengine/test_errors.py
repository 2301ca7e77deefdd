"""What the MMEngine dialect refuses, and how it says it: ConfigErrors at the config's own keys."""

from __future__ import annotations

from typing import Any

import pytest
from torch import nn

import optiplug
from optiplug import ConfigError


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1, "weight_decay": 1e-4}},
        "param_scheduler": [{"type": "CosineAnnealingLR", "by_epoch": False}],
        "train_cfg": {"max_epochs": 3},
    }
    base.update(overrides)
    return base


def build(cfg: dict[str, Any], model: nn.Module | None = None, **kw: Any) -> optiplug.Built:
    return optiplug.build(cfg, model or nn.Linear(3, 2), **{"steps_per_epoch": 4, **kw})


@pytest.mark.parametrize(
    ("overrides", "path", "words"),
    [
        (
            {"param_scheduler": {"type": "ReduceOnPlateauLR", "monitor": "loss", "by_epoch": False}},
            "param_scheduler.by_epoch",
            "validation metrics",
        ),
        ({"param_scheduler": [{"type": "CosineAnealingLR"}]}, "param_scheduler[0].type", "CosineAnnealingLR"),
        ({"param_scheduler": [{"type": "StepLR"}]}, "param_scheduler[0]", "needs step_size"),
        ({"param_scheduler": [{"type": "StepLR", "step_size": 2, "gama": 0.1}]}, "param_scheduler[0].gama", "gamma"),
        ({"param_scheduler": [{"type": "LinearLR", "begin": 3, "end": 2}]}, "param_scheduler[0].end", "larger"),
        (
            {"param_scheduler": [{"type": "LinearLR", "by_epoch": False, "convert_to_iter_based": True}]},
            "param_scheduler[0].convert_to_iter_based",
            "epoch-based",
        ),
        (
            {
                "optim_wrapper": {"optimizer": {"type": "Adagrad", "lr": 0.1}},
                "param_scheduler": [{"type": "LinearMomentum"}],
            },
            "param_scheduler.momentum",
            "momentum",
        ),
        ({"param_scheduler": [{"type": "OneCycleLR"}]}, "param_scheduler[0].eta_max", "eta_max"),
        (
            {"param_scheduler": [{"type": "LinearParamScheduler"}]},
            "param_scheduler[0]",
            "param_name",
        ),
        (
            {"optim_wrapper": {"type": "OptimWraper", "optimizer": {"type": "SGD", "lr": 0.1}}},
            "optim_wrapper.type",
            "OptimWrapper",
        ),
        (
            {"optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1}, "clip_grads": {"max_norm": 1}}},
            "optim_wrapper.clip_grads",
            "clip_grad",
        ),
        (
            {"optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1}, "clip_grad": {"type": "value"}}},
            "optim_wrapper.clip_grad",
            "clip_value",
        ),
        (
            {"optim_wrapper": {"optimizer": {"type": "SDG", "lr": 0.1}}},
            "optim_wrapper.optimizer.type",
            "SGD",
        ),
        (
            {"optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1}, "paramwise_cfg": {"norm_decay_mult": 0.0}}},
            "optim_wrapper.paramwise_cfg.norm_decay_mult",
            "weight_decay",
        ),
        (
            {
                "optim_wrapper": {
                    "optimizer": {"type": "SGD", "lr": 0.1},
                    "constructor": "LearningRateDecayOptimWraperConstructor",
                }
            },
            "optim_wrapper.constructor",
            "LearningRateDecayOptimWrapperConstructor",
        ),
        (
            {"optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1}, "accumulative_counts": 0}},
            "optim_wrapper.accumulative_counts",
            ">= 1",
        ),
        ({"train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 10}}, "param_scheduler[0]", None),
        (
            {
                "train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 10},
                "param_scheduler": [{"type": "LinearLR", "end": 2}],
            },
            "param_scheduler[0].by_epoch",
            "by_epoch=False",
        ),
        ({"train_cfg": {"type": "IterBasedTrainLoop"}}, "train_cfg", "max_iters"),
        ({"train_cfg": {"type": "FancyLoop", "max_epochs": 2}}, "train_cfg.type", "EpochBasedTrainLoop"),
        ({"auto_scale_lr": {"base_batch_size": 16, "enable": True}}, "auto_scale_lr", "batch size"),
        (
            {"optim_wrapper": {"type": "AmpOptimWrapper", "optimizer": {"type": "SGD", "lr": 0.1}, "loss_scale": "x"}},
            "optim_wrapper.loss_scale",
            "dynamic",
        ),
    ],
)
def test_refused_with_the_config_path(overrides: dict[str, Any], path: str, words: str | None) -> None:
    if words is None:  # builds: an iteration-based scheduler in an IterBasedTrainLoop
        build(config(**overrides), steps_per_epoch=None)
        return
    with pytest.raises(ConfigError) as info:
        build(config(**overrides))
    assert info.value.path == path, str(info.value)
    assert words in str(info.value)


def test_epoch_based_loop_needs_the_epoch_length() -> None:
    with pytest.raises(ConfigError, match="steps_per_epoch") as info:
        optiplug.build(config(), nn.Linear(3, 2))
    assert info.value.path == "train_cfg"


def test_build_errors_name_the_dialects_keys() -> None:
    cfg = config(optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.1, "momentun": 0.9}})
    with pytest.raises(ConfigError) as info:
        build(cfg)
    assert info.value.path.startswith("optim_wrapper.optimizer"), str(info.value)


def test_unknown_paramwise_keys_warn_and_are_ignored_as_mmengine_ignores_them() -> None:
    # mmpretrain 1.2.0's twins configs write paramwise_cfg=dict(_delete=True, ...)
    paramwise = {"_delete": True, "bias_lr_mul": 2.0, "norm_decay_mult": 0.0}
    cfg = config(
        optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.1, "weight_decay": 1e-4}, "paramwise_cfg": paramwise}
    )
    with pytest.warns(optiplug.OptiplugWarning) as caught:
        built = build(cfg, model=nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2)))
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("optim_wrapper.paramwise_cfg._delete: not a paramwise_cfg key") for m in messages)
    assert any("paramwise_cfg.bias_lr_mul:" in m and "bias_lr_mult" in m for m in messages), messages
    assert sorted(g["weight_decay"] for g in built.optimizer.param_groups) == [0.0, 1e-4]
    assert {g["lr"] for g in built.optimizer.param_groups} == {0.1}


def test_scoped_type_names_are_read_as_mmengine_finds_them() -> None:
    """``type='mmdet.QuadraticWarmupLR'`` names a class in mmdet's registry scope (mmdet 3.x's YOLOX configs)."""
    scoped = config(
        optim_wrapper={"type": "mmengine.OptimWrapper", "optimizer": {"type": "torch.SGD", "lr": 0.1}},
        param_scheduler=[{"type": "mmdet.QuadraticWarmupLR", "by_epoch": False, "end": 4}],
    )
    plain = config(
        optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.1}},
        param_scheduler=[{"type": "QuadraticWarmupLR", "by_epoch": False, "end": 4}],
    )
    a, b = build(scoped), build(plain)
    for step in range(12):
        assert a.optimizer.param_groups[0]["lr"] == b.optimizer.param_groups[0]["lr"], step
        a.scheduler.set_step(step + 1)
        b.scheduler.set_step(step + 1)
    assert b.optimizer.param_groups[0]["lr"] == 0.1
