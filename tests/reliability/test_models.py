"""Models out of the ordinary: nothing to train, tied, frozen, mixed-precision parameters, and groups added later.

What docs/recipe.md and docs/guarantees.md promise: a model with nothing to train is a
ConfigError; a tied parameter is trained once, under the name ``named_parameters()``
gives it first; frozen parameters are left out (and a parameter frozen after the build
is not moved); a group added with ``add_param_group`` follows the schedules, scaled by
its values relative to the optimizer's, also after a resume in either loading order.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import optiplug
from optiplug.errors import OptiplugWarning

SGD = {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-2}}
LINEAR_LR = {"lr": {"name": "linear", "start_value": 0.1, "end_value": 0.0}}


def trained(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


# -- nothing to train --------------------------------------------------------------------------------------------


def frozen_linear() -> nn.Module:
    model = nn.Linear(2, 2)
    model.requires_grad_(False)
    return model


@pytest.mark.parametrize("model", [nn.ReLU(), frozen_linear(), [], iter(())], ids=["no_params", "frozen", "[]", "iter"])
@pytest.mark.parametrize(
    "config",
    [SGD, {"OPTIMIZER": {"name": "sgd"}}, {"optimizer": {"type": "SGD", "lr": 0.1}}],
    ids=["canonical", "vissl", "mmcv"],
)
def test_a_model_with_nothing_to_train_is_refused(model, config):
    with pytest.raises(optiplug.ConfigError, match="the model has no trainable parameters"):
        optiplug.build(config, model, steps_per_epoch=2)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (torch.zeros(3, requires_grad=True), "got a single tensor; wrap it in a list"),
        ([{"params": [nn.Parameter(torch.zeros(2))]}], "param-group dicts are built by optiplug from rules"),
        ([nn.Parameter(torch.zeros(2)), 3.0], "item 1 of the parameters is a float, not a tensor"),
        (42, "expected an nn.Module or an iterable of parameters, got int"),
    ],
)
def test_what_is_not_a_model_is_refused_clearly(model, message):
    with pytest.raises(optiplug.ConfigError, match=message):
        optiplug.build(SGD, model)


# -- tied parameters ---------------------------------------------------------------------------------------------


class TiedLM(nn.Module):
    """An embedding tied to the output projection (weight tying), as language models do."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.norm = nn.LayerNorm(4)
        self.decoder = nn.Linear(4, 7, bias=False)
        self.decoder.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.embed(tokens)))


def test_a_tied_parameter_is_trained_once_under_its_first_name():
    torch.manual_seed(0)
    model = TiedLM()
    config = {
        **SGD,
        "rules": [
            {"kind": "regex", "pattern": "^embed", "set": {"lr_mult": 2}},
            {"kind": "regex", "pattern": "^decoder", "set": {"lr_mult": 5}},
        ],
    }
    with pytest.warns(OptiplugWarning, match=r"rules\[1\] .* matches no trainable parameter"):
        built = optiplug.build(config, model)
    params = trained(built.optimizer)
    assert len(params) == len({id(p) for p in params}) == 3
    tied = next(g for g in built.groups if "embed.weight" in g.names)
    assert tied.options["lr"] == pytest.approx(0.2) and "decoder.weight" not in tied.names
    before = model.embed.weight.detach().clone()
    built.step(model(torch.tensor([[1, 2, 3]])).square().mean())
    assert torch.equal(model.embed.weight, model.decoder.weight)
    assert not torch.equal(model.embed.weight, before)


def test_a_parameter_given_twice_in_an_iterable_counts_once():
    model = nn.Linear(3, 2)
    pairs = [("w", model.weight), ("b", model.bias), ("w_again", model.weight)]
    for given in (pairs, [*model.parameters(), model.weight]):
        built = optiplug.build(SGD, given)
        assert len(trained(built.optimizer)) == 2


def test_a_tied_parameter_in_mmcv_paramwise_cfg_goes_in_once():
    torch.manual_seed(0)
    config = {
        "optimizer": {
            "type": "SGD",
            "lr": 0.1,
            "weight_decay": 1e-4,
            "paramwise_cfg": {
                "norm_decay_mult": 0.0,
                "custom_keys": {"decoder": {"lr_mult": 5}},
                "bypass_duplicate": True,
            },
        }
    }
    built = optiplug.build(config, TiedLM())
    assert len(trained(built.optimizer)) == 3


# -- frozen parameters -------------------------------------------------------------------------------------------


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.trunk(x))))


def test_frozen_parameters_are_left_out_and_never_move():
    torch.manual_seed(0)
    model = Backbone()
    model.trunk.requires_grad_(False)
    config = {**SGD, "rules": [{"kind": "regex", "pattern": "^trunk", "set": {"lr_mult": 0.1}}]}
    with pytest.warns(OptiplugWarning, match="matches no trainable parameter"):
        built = optiplug.build(config, model)
    names = {name for group in built.groups for name in group.names}
    assert names == {"bn.weight", "bn.bias", "head.weight", "head.bias"}
    frozen = [p.detach().clone() for p in model.trunk.parameters()]
    for _ in range(2):
        built.step(model(torch.randn(4, 3)).square().mean())
    assert all(torch.equal(a, b) for a, b in zip(frozen, model.trunk.parameters(), strict=True))


@pytest.mark.parametrize("wrappers", [[], [{"name": "larc"}]])
def test_a_parameter_frozen_after_the_build_keeps_its_value_and_momentum(wrappers):
    torch.manual_seed(0)
    model = Backbone()
    built = optiplug.build({**SGD, "wrappers": wrappers}, model)
    x = torch.randn(4, 3)
    built.step(model(x).square().mean())
    model.head.requires_grad_(False)
    head = [p.detach().clone() for p in model.head.parameters()]
    momentum = [built.optimizer.state[p]["momentum_buffer"].clone() for p in model.head.parameters()]
    built.step(model(x).square().mean())
    assert all(torch.equal(a, b) for a, b in zip(head, model.head.parameters(), strict=True))
    for p, buffer in zip(model.head.parameters(), momentum, strict=True):
        assert torch.equal(built.optimizer.state[p]["momentum_buffer"], buffer)


def test_mixed_precision_parameters_train_and_clip():
    torch.manual_seed(0)
    model = Backbone()
    model.head.double()
    config = {**SGD, "clip": {"max_norm": 0.5}, "wrappers": [{"name": "larc"}]}
    built = optiplug.build(config, model)
    x = torch.randn(4, 3)
    for _ in range(2):
        assert built.step(model.head(torch.relu(model.bn(model.trunk(x))).double()).square().mean())
    assert model.head.weight.dtype == torch.float64
    assert all(torch.isfinite(p).all() for p in model.parameters())


# -- groups added after the build --------------------------------------------------------------------------------


def add_head(built: optiplug.Built, model: Backbone, **options: float) -> None:
    model.head.requires_grad_(True)
    built.optimizer.add_param_group({"params": list(model.head.parameters()), **options})


def staged(config: dict, **options: float) -> tuple[Backbone, optiplug.Built]:
    """A backbone whose head is frozen at the build and added (unfrozen) after the first update."""
    torch.manual_seed(0)
    model = Backbone()
    model.head.requires_grad_(False)
    built = optiplug.build(config, model, steps_per_epoch=5, num_epochs=2)
    built.step(model(torch.randn(4, 3)).square().mean())
    add_head(built, model, **options)
    return model, built


def test_an_added_group_follows_an_absolute_schedule_times_its_ratio():
    model, built = staged({**SGD, "schedules": LINEAR_LR}, lr=0.05)
    x = torch.randn(4, 3)
    for step in range(2, 6):
        built.step(model(x).square().mean())
        trunk, head = (g["lr"] for g in built.optimizer.param_groups)
        assert trunk == pytest.approx(0.1 * (1 - step / 10))
        assert head == pytest.approx(trunk / 2)


def test_an_added_group_follows_a_relative_schedule_from_its_own_value():
    config = {
        "optimizer": {"name": "adam", "lr": 0.01, "betas": [0.9, 0.99]},
        "schedules": {
            "lr": {"name": "mmcv_poly", "power": 1.0, "min_lr": 0.0, "by_epoch": False},
            "momentum": {"name": "linear", "start_value": 0.8, "end_value": 0.9},
        },
    }
    model, built = staged(config, lr=0.004, betas=(0.85, 0.999))
    built.step(model(torch.randn(4, 3)).square().mean())
    trunk, head = built.optimizer.param_groups
    assert head["lr"] == pytest.approx(0.004 * (1 - 2 / 10))
    assert trunk["lr"] == pytest.approx(0.01 * (1 - 2 / 10))
    assert head["betas"] == pytest.approx((0.85 / 0.9 * 0.82, 0.999))
    assert trunk["betas"] == pytest.approx((0.82, 0.99))


def test_an_added_group_is_bound_through_a_larc_wrapper():
    model, built = staged({**SGD, "schedules": LINEAR_LR, "wrappers": [{"name": "larc"}]}, lr=0.02)
    built.step(model(torch.randn(4, 3)).square().mean())
    assert [g["lr"] for g in built.optimizer.param_groups] == pytest.approx([0.08, 0.016])


def test_adding_a_parameter_already_trained_is_refused_by_torch():
    torch.manual_seed(0)
    model = Backbone()
    built = optiplug.build({**SGD, "schedules": LINEAR_LR}, model, steps_per_epoch=5, num_epochs=2)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        built.optimizer.add_param_group({"params": [model.head.weight]})


@pytest.mark.parametrize("order", ["built", "optimizer_then_scheduler", "scheduler_then_optimizer"])
def test_a_resumed_run_binds_an_added_group_with_the_same_multiplier(order):
    config = {**SGD, "schedules": LINEAR_LR}
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(3))
    model, built = staged(config, lr=0.05)
    for _ in range(3):
        built.step(model(x).square().mean())
    state = copy.deepcopy({"built": built.state_dict(), "model": model.state_dict()})
    expected = []
    for _ in range(3):
        expected.append([g["lr"] for g in built.optimizer.param_groups])
        built.step(model(x).square().mean())

    torch.manual_seed(1)
    resumed_model = Backbone()
    resumed_model.load_state_dict(state["model"])
    resumed_model.head.requires_grad_(False)
    resumed = optiplug.build(config, resumed_model, steps_per_epoch=5, num_epochs=2)
    add_head(resumed, resumed_model, lr=0.05)
    if order == "built":
        resumed.load_state_dict(state["built"])
    elif order == "optimizer_then_scheduler":
        resumed.optimizer.load_state_dict(state["built"]["optimizer"])
        resumed.scheduler.load_state_dict(state["built"]["scheduler"])
        resumed.micro_steps = state["built"]["micro_steps"]
    else:
        resumed.scheduler.load_state_dict(state["built"]["scheduler"])
        resumed.optimizer.load_state_dict(state["built"]["optimizer"])
        resumed.scheduler.set_step(resumed.scheduler.last_epoch)
        resumed.micro_steps = state["built"]["micro_steps"]
    seen = []
    for _ in range(3):
        seen.append([g["lr"] for g in resumed.optimizer.param_groups])
        resumed.step(resumed_model(x).square().mean())
    assert seen == expected
    assert all(torch.equal(a, b) for a, b in zip(resumed_model.parameters(), model.parameters(), strict=True))
