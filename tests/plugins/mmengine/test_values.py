"""optiplug.build on MMEngine configs gives MMEngine's numbers, per iteration and per parameter.

The reference is MMEngine: its ``build_optim_wrapper`` (DefaultOptimWrapperConstructor) and
its param schedulers built by its registry, stepping a real torch optimizer (reference.py).
Groups differ in number (MMEngine makes one per parameter, optiplug merges equal ones), so
values are compared parameter by parameter.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import pytest
import torch
from reference import cpu_optim_wrapper, run_mmengine
from torch import nn

import optiplug

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
L = 5


class Net(nn.Module):
    """Convs, a norm layer, a depthwise conv, a head, a frozen parameter and a 1-d non-bias parameter."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, groups=4))
        self.pos_embed = nn.Parameter(torch.zeros(4))
        self.frozen = nn.Linear(2, 2)
        self.frozen.weight.requires_grad_(False)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.backbone(x).mean((2, 3)) + self.pos_embed
        return self.head(y)


def per_param(model: nn.Module, groups: list[dict[str, Any]], option: str) -> dict[str, float]:
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for g in groups:
        value = g["betas"][0] if option == "betas" else g[option]
        for p in g["params"]:
            if id(p) in names:
                out[names[id(p)]] = value
    return out


def mmengine_trace(config: dict[str, Any], model: nn.Module, option: str, **kw: Any) -> list[dict[str, float]]:
    """MMEngine's value of ``option`` for each trainable parameter at each iteration."""
    from mmengine.optim import build_optim_wrapper

    wrapper = build_optim_wrapper(model, cpu_optim_wrapper(config["optim_wrapper"]))
    order = [[p for p in g["params"]] for g in wrapper.optimizer.param_groups]
    trace = run_mmengine(config, model, L, option=option, **kw)
    # Without paramwise_cfg MMEngine hands the optimizer every parameter, frozen ones included (they never
    # get a gradient); optiplug leaves them out, as MMEngine does with a paramwise_cfg.
    names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    return [{names[id(p)]: v for ps, v in zip(order, row, strict=True) for p in ps if id(p) in names} for row in trace]


def optiplug_trace(config: dict[str, Any], model: nn.Module, option: str, iterations: int, **kw: Any):
    built = optiplug.build(copy.deepcopy(config), model, **{"steps_per_epoch": L, **kw})
    trace = []
    for i in range(iterations):
        trace.append(per_param(model, built.optimizer.param_groups, option))
        built.scheduler.set_step(i + 1)
    return trace, built


def assert_same_traces(config: dict[str, Any], option: str = "lr", model: nn.Module | None = None, **kw: Any) -> None:
    model = model or Net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = mmengine_trace(config, model, option, batch_size=kw.get("batch_size"))
    build_kw = {k: v for k, v in kw.items() if k != "batch_size"}
    ours, _ = optiplug_trace(config, model, option, len(ref), **build_kw)
    assert len(ours) == len(ref)
    for i, (a, b) in enumerate(zip(ref, ours, strict=True)):
        assert a.keys() == b.keys(), i
        for name in a:
            assert b[name] == pytest.approx(a[name], rel=1e-12, abs=1e-15), (option, i, name, a[name], b[name])


SGD = {"type": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
PARAMWISE = [
    {},
    {"bias_lr_mult": 2.0, "bias_decay_mult": 0.0},
    {"norm_decay_mult": 0.0, "bias_decay_mult": 0.5, "dwconv_decay_mult": 0.2, "flat_decay_mult": 0.3},
    {"flat_decay_mult": 0.0, "bias_lr_mult": 3.0},
    {
        "custom_keys": {
            "backbone": {"lr_mult": 0.1},
            "backbone.1": {"lr_mult": 0.5, "decay_mult": 0.0},
            "pos_embed": {"decay_mult": 0.0},
            "head": {"lr_mult": 10.0, "momentum": 0.5},
        },
        "bias_lr_mult": 2.0,
        "norm_decay_mult": 0.3,
    },
    # ties between equally long keys: alphabetical order wins
    {"custom_keys": {"head.b": {"lr_mult": 2.0}, "ead.bi": {"lr_mult": 3.0}}, "bypass_duplicate": True},
]


@pytest.mark.parametrize("paramwise", PARAMWISE)
@pytest.mark.parametrize("option", ["lr", "weight_decay", "momentum"])
def test_paramwise_cfg_matches_mmengine(paramwise: dict[str, Any], option: str) -> None:
    config = {
        "optim_wrapper": {"optimizer": dict(SGD), "paramwise_cfg": paramwise},
        "param_scheduler": [{"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "end": 4}],
        "train_cfg": {"max_epochs": 2},
    }
    assert_same_traces(config, option)


def test_no_weight_decay_means_no_flat_decay_multiplier() -> None:
    config = {
        "optim_wrapper": {
            "optimizer": {"type": "SGD", "lr": 0.1},
            "paramwise_cfg": {"flat_decay_mult": 0.0, "custom_keys": {"head": {"lr_mult": 2.0}}},
        },
        "train_cfg": {"max_epochs": 1},
    }
    assert_same_traces(config, "lr")
    assert_same_traces(config, "weight_decay")


SCHEDULES = {
    "warmup_then_epoch_cosine": [
        {"type": "LinearLR", "start_factor": 0.001, "by_epoch": False, "begin": 0, "end": 12},
        {"type": "CosineAnnealingLR", "eta_min": 1e-5, "by_epoch": True, "begin": 0},
    ],
    "converted_warmup_and_cosine": [
        {"type": "LinearLR", "start_factor": 0.1, "by_epoch": True, "end": 2, "convert_to_iter_based": True},
        {
            "type": "CosineAnnealingLR",
            "eta_min_ratio": 0.01,
            "begin": 2,
            "by_epoch": True,
            "convert_to_iter_based": True,
        },
    ],
    "one_dict": {"type": "MultiStepLR", "milestones": [3, 5, 5], "gamma": 0.5},
    "constant_and_step": [
        {"type": "ConstantLR", "factor": 0.5, "begin": 1, "end": 3},
        {"type": "StepLR", "step_size": 2, "gamma": 0.3},
    ],
    "poly_and_exponential": [
        {"type": "PolyLR", "eta_min": 1e-4, "power": 0.9, "by_epoch": False},
        {"type": "ExponentialLR", "gamma": 0.97, "by_epoch": False, "begin": 5, "end": 20},
    ],
    "cosine_restart": {
        "type": "CosineRestartLR",
        "periods": [10, 20],
        "restart_weights": [1.0, 0.5],
        "eta_min": 0.001,
        "by_epoch": False,
    },
    "one_cycle": {"type": "OneCycleLR", "eta_max": 0.5, "by_epoch": False, "pct_start": 0.25, "three_phase": True},
    "one_cycle_linear": {"type": "OneCycleLR", "eta_max": 0.5, "total_steps": 6, "anneal_strategy": "linear"},
    "short_cosine_period": {"type": "CosineAnnealingLR", "T_max": 3, "by_epoch": False},
    "param_form": {"type": "CosineAnnealingParamScheduler", "param_name": "lr", "eta_min": 0.0},
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_lr_schedulers_match_mmengine(name: str) -> None:
    config = {
        "optim_wrapper": {"optimizer": dict(SGD), "paramwise_cfg": {"bias_lr_mult": 2.0, "norm_decay_mult": 0.0}},
        "param_scheduler": SCHEDULES[name],
        "train_cfg": {"by_epoch": True, "max_epochs": 6},
    }
    assert_same_traces(config, "lr")


@pytest.mark.parametrize(
    ("optimizer", "option"),
    [(dict(SGD), "momentum"), ({"type": "AdamW", "lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.05}, "betas")],
)
def test_momentum_schedulers_match_mmengine_beta1_for_adam(optimizer: dict[str, Any], option: str) -> None:
    config = {
        "optim_wrapper": {"optimizer": optimizer},
        "param_scheduler": [
            {"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "end": 6},
            {"type": "CosineAnnealingMomentum", "eta_min": 0.85, "by_epoch": False, "begin": 2},
            {"type": "StepMomentum", "step_size": 2, "gamma": 0.99},
        ],
        "train_cfg": {"max_epochs": 4},
    }
    assert_same_traces(config, option)
    assert_same_traces(config, "lr")


def test_weight_decay_param_scheduler_matches_mmengine() -> None:
    config = {
        "optim_wrapper": {"optimizer": dict(SGD), "paramwise_cfg": {"norm_decay_mult": 0.5}},
        "param_scheduler": [
            {"type": "CosineAnnealingLR", "by_epoch": False},
            {"type": "LinearParamScheduler", "param_name": "weight_decay", "start_factor": 0.2, "by_epoch": False},
        ],
        "train_cfg": {"max_epochs": 3},
    }
    assert_same_traces(config, "weight_decay")
    assert_same_traces(config, "lr")


def test_iter_based_train_loop_matches_mmengine() -> None:
    config = {
        "optim_wrapper": {"optimizer": dict(SGD)},
        "param_scheduler": [
            {"type": "LinearLR", "start_factor": 0.01, "by_epoch": False, "end": 5},
            {"type": "PolyLR", "power": 1.0, "eta_min": 1e-4, "by_epoch": False, "begin": 5},
        ],
        "train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 23},
    }
    assert_same_traces(config, "lr")
    built = optiplug.build(config, Net())
    assert built.clock.total_steps == 23 if hasattr(built, "clock") else True


@pytest.mark.parametrize("world_size", [1, 4])
def test_auto_scale_lr_against_the_real_global_batch(world_size: int) -> None:
    config = {
        "optim_wrapper": {"optimizer": dict(SGD), "paramwise_cfg": {"custom_keys": {"head": {"lr_mult": 0.1}}}},
        "param_scheduler": {"type": "CosineAnnealingLR", "eta_min": 1e-4, "by_epoch": False},
        "train_cfg": {"max_epochs": 2},
        "train_dataloader": {"batch_size": 32},
        "auto_scale_lr": {"base_batch_size": 256, "enable": True},
    }
    assert_same_traces(config, "lr", batch_size=32 * world_size, world_size=world_size)
    disabled = {**config, "auto_scale_lr": {"base_batch_size": 256, "enable": False}}
    built = optiplug.build(disabled, Net(), steps_per_epoch=L)
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def _train_mmengine(config: dict[str, Any], model: nn.Module, iterations: int) -> None:
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS

    wrapper = build_optim_wrapper(model, copy.deepcopy(config["optim_wrapper"]))
    wrapper.initialize_count_status(model, 0, iterations)
    item = dict(config["param_scheduler"], end=iterations)
    scheduler = PARAM_SCHEDULERS.build(item, default_args={"optimizer": wrapper})
    for i in range(iterations):
        wrapper.update_params(_loss(model, i))
        scheduler.step()


def _loss(model: nn.Module, i: int) -> torch.Tensor:
    torch.manual_seed(100 + i)
    return (model(torch.randn(2, 3, 6, 6)) ** 2).mean()


@pytest.mark.parametrize("clip_grad", [None, {"max_norm": 0.5, "norm_type": 2}, {"type": "value", "clip_value": 0.01}])
def test_training_with_accumulation_and_clipping_matches_mmengine(clip_grad: dict[str, Any] | None) -> None:
    """Weights after 11 iterations (accumulating 3, the last window of 2 divided by 2), as MMEngine trains them."""
    config = {
        "optim_wrapper": {
            "optimizer": dict(SGD),
            "accumulative_counts": 3,
            "clip_grad": clip_grad,
            "paramwise_cfg": {"bias_lr_mult": 2.0},
        },
        "param_scheduler": {"type": "LinearLR", "start_factor": 0.2, "by_epoch": False},
        "train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 11},
    }
    reference, ours = Net(), Net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _train_mmengine(config, reference, 11)
    built = optiplug.build(config, ours)
    for i in range(11):
        built.step(_loss(ours, i))
    for (name, a), b in zip(reference.named_parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=name)


def test_cosine_annealing_weight_decay_is_mmengines_cosine_and_keeps_zero_decay_at_zero() -> None:
    """mmpretrain's CosineAnnealingWeightDecay: MMEngine's cosine on weight_decay, groups without decay left at 0."""
    ours = {
        "optim_wrapper": {"optimizer": dict(SGD), "paramwise_cfg": {"norm_decay_mult": 0.0, "bias_decay_mult": 0.5}},
        "param_scheduler": {"type": "CosineAnnealingWeightDecay", "eta_min": 1e-5, "by_epoch": False},
        "train_cfg": {"max_epochs": 3},
    }
    reference = {**ours, "param_scheduler": {**ours["param_scheduler"], "type": "CosineAnnealingParamScheduler"}}
    reference["param_scheduler"]["param_name"] = "weight_decay"
    model = Net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = mmengine_trace(reference, model, "weight_decay")
    got, _ = optiplug_trace(ours, model, "weight_decay", len(ref))
    for a, b in zip(ref, got, strict=True):
        for name, value in a.items():
            # MMEngine's cosine moves a zero decay to eta_min; mmpretrain's keeps it at 0
            assert b[name] == (0.0 if name.startswith("backbone.1.") else pytest.approx(value, rel=1e-12))


def test_amp_optim_wrapper_loss_scale_through_built_step() -> None:
    """AmpOptimWrapper: its loss scale is the recipe's (autocast is the loop's: warned); grad_scaler still works."""
    from optiplug_mmengine import grad_scaler
    from optiplug_mmengine.amp import StaticGradScaler

    wrapper = {"type": "AmpOptimWrapper", "optimizer": dict(SGD), "loss_scale": 512.0}
    config = {"optim_wrapper": wrapper, "train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 4}}
    model = nn.Linear(3, 1)
    with pytest.warns(optiplug.OptiplugWarning, match="autocast.*recipe's loss_scale"):
        built = optiplug.build(config, model)
    assert built.recipe.loss_scale == optiplug.LossScaleConfig(dynamic=False, init_scale=512.0)
    scaler = grad_scaler(wrapper, device="cpu")
    assert isinstance(scaler, StaticGradScaler)
    before = model.weight.detach().clone()
    assert built.step(model(torch.ones(1, 3)).sum() * float("inf"), scaler=scaler) is False  # skipped update
    assert torch.equal(model.weight, before)
    assert scaler.get_scale() == 512.0  # a static scale does not back off
    assert built.step(model(torch.ones(1, 3)).sum(), scaler=scaler) is True
    assert not torch.equal(model.weight, before)
    assert type(grad_scaler({**wrapper, "loss_scale": "dynamic"}, device="cpu")) is torch.amp.GradScaler
    assert grad_scaler({**wrapper, "loss_scale": {"init_scale": 4.0}}, device="cpu").get_scale() == 4.0
    assert grad_scaler({"type": "OptimWrapper"}) is None


class LayeredNet(Net):
    """A Net with mmpretrain's ``get_layer_depth`` (as its VisionTransformer counts: embeddings 0, layer i i+1)."""

    def get_layer_depth(self, param_name: str) -> tuple[int, int]:
        num_layers = 3 + 2
        if param_name == "pos_embed":
            return 0, num_layers
        if param_name.startswith("backbone."):
            return int(param_name.split(".")[1]) + 1, num_layers
        return num_layers - 1, num_layers


def mmpretrain_layer_decay(model: nn.Module, optimizer: dict[str, Any], paramwise: dict[str, Any]) -> dict[str, Any]:
    """Each parameter's lr and weight decay as mmpretrain 1.2.0's LearningRateDecayOptimWrapperConstructor.add_params
    sets them (written from its source: mmpretrain/engine/optimizers/layer_decay_optim_wrapper_constructor.py)."""
    norms = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm)
    custom = paramwise.get("custom_keys", {})
    keys = sorted(sorted(custom), key=len, reverse=True)
    base_lr, base_wd = optimizer["lr"], optimizer.get("weight_decay")
    out = {}
    for prefix, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            param_name = f"{prefix}.{name}" if prefix else name
            if not param.requires_grad:
                continue
            group: dict[str, Any] = {}
            if base_wd is not None:
                key = next(filter(lambda k: k in param_name, keys), None)
                if key is not None:
                    cfg = dict(custom[key])
                    group["weight_decay"] = base_wd * cfg.pop("decay_mult", 1.0)
                    group.update(cfg)
                elif isinstance(module, norms) and paramwise.get("norm_decay_mult") is not None:
                    group["weight_decay"] = base_wd * paramwise["norm_decay_mult"]
                elif name == "bias" and paramwise.get("bias_decay_mult") is not None:
                    group["weight_decay"] = base_wd * paramwise["bias_decay_mult"]
                elif param.ndim == 1 and paramwise.get("flat_decay_mult") is not None:
                    group["weight_decay"] = base_wd * paramwise["flat_decay_mult"]
                else:
                    group["weight_decay"] = base_wd
            layer_id, max_id = model.get_layer_depth(param_name)  # type: ignore[operator]
            group["lr"] = base_lr * paramwise.get("layer_decay_rate", 1.0) ** (max_id - layer_id - 1)
            out[param_name] = group
    return out


def test_layer_decay_constructor_matches_mmpretrain() -> None:
    optimizer = {"type": "AdamW", "lr": 4e-3, "weight_decay": 0.05}
    paramwise = {
        "layer_decay_rate": 0.75,
        "norm_decay_mult": 0.0,
        "bias_decay_mult": 0.5,
        "flat_decay_mult": 0.0,
        "custom_keys": {"pos_embed": {"decay_mult": 0.0, "lr_mult": 10.0}, "head.bias": {"decay_mult": 2.0}},
    }
    config = {
        "optim_wrapper": {
            "optimizer": optimizer,
            "constructor": "LearningRateDecayOptimWrapperConstructor",
            "paramwise_cfg": paramwise,
        },
        "param_scheduler": {"type": "CosineAnnealingLR", "eta_min": 1e-6, "by_epoch": False},
        "train_cfg": {"max_epochs": 2},
    }
    model = LayeredNet()
    expected = mmpretrain_layer_decay(model, optimizer, paramwise)
    assert len({round(g["lr"], 12) for g in expected.values()}) == 5  # five depths: the test can fail
    trace, _ = optiplug_trace(config, model, "lr", 2 * L)
    decay, _ = optiplug_trace(config, model, "weight_decay", 1)
    for name, group in expected.items():
        assert trace[0][name] == pytest.approx(group["lr"], rel=1e-12), name
        assert decay[0][name] == pytest.approx(group["weight_decay"], rel=1e-12), name
    # the schedule moves each layer's lr from its own start (MMEngine's initial_lr per group)
    cosine = [(1 + math.cos(math.pi * i / (2 * L))) / 2 for i in range(2 * L)]
    for i, factor in enumerate(cosine):
        for name, group in expected.items():
            assert trace[i][name] == pytest.approx(1e-6 + (group["lr"] - 1e-6) * factor, rel=1e-9), (i, name)


def test_layer_decay_constructor_needs_get_layer_depth() -> None:
    config = {
        "optim_wrapper": {
            "optimizer": {"type": "AdamW", "lr": 4e-3},
            "constructor": "LearningRateDecayOptimWrapperConstructor",
            "paramwise_cfg": {"layer_decay_rate": 0.5},
        },
        "train_cfg": {"max_epochs": 2},
    }
    with pytest.raises(optiplug.ConfigError, match="get_layer_depth") as info:
        optiplug.build(config, Net(), steps_per_epoch=L)
    assert "constructor" in info.value.path


def test_mmdet_quadratic_warmup_then_cosine() -> None:
    """mmdet's QuadraticWarmupLR (YOLOX): lr * (t + 1)**2 / T**2 over T iterations (its steps summed), then a cosine."""
    warmup = 7
    config = {
        "optim_wrapper": {"optimizer": dict(SGD), "paramwise_cfg": {"bias_lr_mult": 2.0}},
        "param_scheduler": [
            {"type": "QuadraticWarmupLR", "by_epoch": True, "begin": 0, "end": 1, "convert_to_iter_based": True},
            {"type": "CosineAnnealingLR", "eta_min": 0.0, "by_epoch": False, "begin": warmup, "end": 30},
        ],
        "train_cfg": {"max_epochs": 6},
    }
    trace, _ = optiplug_trace(config, Net(), "lr", 30, steps_per_epoch=warmup)
    for t in range(30):
        for name, base in (("head.weight", 0.1), ("head.bias", 0.2)):
            if t < warmup:
                expected = base * (t + 1) ** 2 / warmup**2
            else:
                expected = base * (1 + math.cos(math.pi * (t - warmup) / (30 - warmup))) / 2
            assert trace[t][name] == pytest.approx(expected, rel=1e-12, abs=1e-15), (t, name)


def test_converted_scheduler_in_an_iter_based_loop_ends_after_one_epoch_as_in_mmengine() -> None:
    """MMEngine's runner sets a missing end to max_epochs, which an IterBasedTrainLoop says is 1."""
    config = {
        "optim_wrapper": {"optimizer": dict(SGD)},
        "param_scheduler": [
            {"type": "LinearLR", "start_factor": 0.1, "by_epoch": True, "convert_to_iter_based": True},
            {"type": "ExponentialLR", "gamma": 0.9, "by_epoch": False, "begin": 2 * L},
        ],
        "train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 4 * L},
    }
    assert_same_traces(config, "lr", steps_per_epoch=L)
    with pytest.raises(optiplug.ConfigError, match="steps_per_epoch") as info:
        optiplug.build(config, Net())
    assert info.value.path == "param_scheduler[0].convert_to_iter_based"
