"""Exact resume: a run checkpointed anywhere and resumed in fresh objects equals the uninterrupted run, bit for bit.

For every dialect and the adamwr drop-in, checkpoints are taken inside a warmup, on an
epoch boundary, inside an accumulation window and on the update just before a restart.
Each checkpoint goes through ``torch.save`` / ``torch.load(weights_only=True)``, as a real
one does; the resumed run starts from a model initialised with another seed, so every
value it has comes from the checkpoint. The lrs, momenta and weight decays before every
micro-batch, the parameters and the optimizer state must then be identical (``==`` on
floats, ``torch.equal`` on tensors).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import optiplug
from optiplug_adamw import AdamW
from optiplug_restarts import CyclicLRWithRestarts
from reliability.states import assert_same_state


class Net(nn.Module):
    """A conv trunk with a norm and a head, with the parameter kinds the dialects' rules tell apart."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential()
        self.trunk.add_module("conv1", nn.Conv2d(3, 4, 3))
        self.trunk.add_module("bn1", nn.BatchNorm2d(4))
        self.heads = nn.ModuleList([nn.Linear(4, 2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads[0](torch.relu(self.trunk(x)).mean(dim=(2, 3)))


def loss_at(model: nn.Module, i: int) -> torch.Tensor:
    """The loss of micro-batch ``i``: the same data whichever process computes it."""
    generator = torch.Generator().manual_seed(1000 + i)
    x = torch.randn(4, 3, 6, 6, generator=generator)
    y = torch.randn(4, 2, generator=generator)
    return (model(x) - y).square().mean()


def hyper_parameters(optimizer: torch.optim.Optimizer) -> list[tuple[float, ...]]:
    """Each group's lr, momentum (Adam's beta1) and weight decay."""
    rows = []
    for group in optimizer.param_groups:
        momentum = group["betas"][0] if "betas" in group else group.get("momentum", 0.0)
        rows.append((group["lr"], momentum, group["weight_decay"]))
    return rows


def through_disk(state: Any) -> Any:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


class Training:
    """A model and its Built, trained one micro-batch at a time, recording the values before each."""

    def __init__(self, build: Callable[[nn.Module], optiplug.Built], seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = Net()
        self.built = build(self.model)
        self.values: list[list[tuple[float, ...]]] = []

    def train(self, start: int, stop: int) -> None:
        for i in range(start, stop):
            self.values.append(hyper_parameters(self.built.optimizer))
            self.built.step(loss_at(self.model, i))

    def checkpoint(self) -> dict[str, Any]:
        return through_disk({"built": self.built.state_dict(), "model": self.model.state_dict()})

    def resume(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.built.load_state_dict(state["built"])


def assert_resumes_exactly(build: Callable[[nn.Module], optiplug.Built], total: int, stops: list[int]) -> None:
    reference = Training(build)
    reference.train(0, total)
    for stop in stops:
        first = Training(build)
        first.train(0, stop)
        state = first.checkpoint()
        resumed = Training(build, seed=1 + stop)
        resumed.resume(state)
        resumed.train(stop, total)
        assert first.values + resumed.values == reference.values, f"values differ after resuming at {stop}"
        for a, b in zip(resumed.model.state_dict().values(), reference.model.state_dict().values(), strict=True):
            assert torch.equal(a, b), f"parameters differ after resuming at {stop}"
        assert_same_state(resumed.built.optimizer.state_dict(), reference.built.optimizer.state_dict())


def first_rise(values: list[list[tuple[float, ...]]], after: int) -> int:
    """The first micro-batch after ``after`` whose lr is above the previous one's: a restart."""
    lrs = [row[0][0] for row in values]
    return next(i for i in range(after + 1, len(lrs)) if lrs[i] > lrs[i - 1])


# -- canonical ---------------------------------------------------------------------------------------------------

CANONICAL = {
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": True},
    "rules": [
        {"kind": "norm", "set": {"weight_decay": 0}},
        {"kind": "regex", "pattern": "^heads", "set": {"lr_mult": 3}},
    ],
    "schedules": {
        "lr": {
            "name": "composite",
            "schedulers": [
                {"name": "linear", "start_value": 0.01, "end_value": 0.1},
                {"name": "restarts", "period_epochs": 1, "t_mult": 2, "min_value": 0.001, "max_value": 0.1},
            ],
            "lengths": [0.25, 0.75],
            "interval_scaling": ["rescaled", "fixed"],
        },
        "momentum": {"name": "linear", "start_value": 0.85, "end_value": 0.95},
        "weight_decay": {"name": "cosine", "start_value": 1e-4, "end_value": 1e-5, "update_interval": "epoch"},
    },
    "clip": {"max_norm": 1.0},
    "accumulation": {"steps": 2},
    "run": {"num_epochs": 4, "steps_per_epoch": 6},
}


def canonical(model: nn.Module) -> optiplug.Built:
    return optiplug.build(CANONICAL, model)


def test_canonical_recipe_resumes_exactly():
    # 12 updates of 2 micro-batches; the warmup is updates 0-2 (micro-batches 0-5); epochs of 6 micro-batches.
    reference = Training(canonical)
    reference.train(0, 24)
    before_restart = first_rise(reference.values, after=8) - 1
    stops = [1, 3, 6, 7, 12, before_restart, before_restart - 1, 23]
    assert any(stop % 2 for stop in stops) and 12 % 6 == 0
    assert_resumes_exactly(canonical, 24, stops)


ADAM_LARC = {
    "optimizer": {"name": "adamw", "lr": 0.01, "betas": [0.9, 0.99], "weight_decay": 0.05},
    "rules": [{"kind": "ndim", "max": 1, "set": {"weight_decay": 0}}],
    "schedules": {
        "lr": {"name": "restarts", "period_epochs": 1, "warmup_epochs": 1, "min_value": 0.0},
        "momentum": {"name": "cosine", "start_value": 0.85, "end_value": 0.95},
    },
    "accumulation": {"steps": 3},
    "wrappers": [{"name": "larc", "clip": True, "trust_coefficient": 0.02}],
    "run": {"num_epochs": 3, "steps_per_epoch": 6},
}


def test_larc_wrapped_adam_with_restarts_resumes_exactly():
    def build(model):
        return optiplug.build(ADAM_LARC, model)

    reference = Training(build)
    reference.train(0, 18)
    before_restart = first_rise(reference.values, after=6) - 1
    assert_resumes_exactly(build, 18, [1, 2, 4, 6, before_restart, 16])


# -- VISSL -------------------------------------------------------------------------------------------------------

VISSL = {
    "OPTIMIZER": {
        "name": "sgd",
        "use_larc": True,
        "larc_config": {"clip": False, "trust_coefficient": 0.001},
        "num_epochs": 4,
        "regularize_bn": False,
        "head_optimizer_params": {"use_different_lr": True, "use_different_wd": True, "weight_decay": 0.001},
        "param_schedulers": {
            "lr": {
                "name": "composite",
                "schedulers": [
                    {"name": "linear", "start_value": 0.01, "end_value": 0.1},
                    {
                        "name": "cosine_warm_restart",
                        "start_value": 0.1,
                        "end_value": 0.001,
                        "restart_interval_length": 0.5,
                        "wave_type": "full",
                    },
                ],
                "lengths": [0.25, 0.75],
                "interval_scaling": ["rescaled", "rescaled"],
                "update_interval": "step",
            },
            "lr_head": {"name": "multistep", "values": [0.2, 0.02], "milestones": [2], "update_interval": "epoch"},
        },
    }
}


def vissl(model: nn.Module) -> optiplug.Built:
    return optiplug.build(VISSL, model, steps_per_epoch=4)


def test_vissl_config_resumes_exactly():
    # 16 updates; the warmup is updates 0-3; epochs of 4.
    reference = Training(vissl)
    reference.train(0, 16)
    before_restart = first_rise(reference.values, after=4) - 1
    assert_resumes_exactly(vissl, 16, [2, 4, 8, before_restart, 15])


# -- MMCV --------------------------------------------------------------------------------------------------------

MMCV = {
    "optimizer": {
        "type": "SGD",
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "paramwise_options": {"bn": {"weight_decay": 0.0}, "heads": {"lr_mult": 2}},
    },
    "optimizer_config": {
        "type": "GradientCumulativeOptimizerHook",
        "cumulative_iters": 3,
        "grad_clip": {"max_norm": 5.0},
    },
    "lr_config": {
        "policy": "CosineRestart",
        "periods": [8, 12],
        "restart_weights": [1, 0.5],
        "min_lr": 1e-4,
        "by_epoch": False,
        "warmup": "linear",
        "warmup_iters": 1,
        "warmup_ratio": 0.1,
        "warmup_by_epoch": True,
    },
    "momentum_config": {"policy": "CosineAnnealing", "min_momentum_ratio": 0.9, "by_epoch": True},
    "runner": {"type": "EpochBasedRunner", "max_epochs": 4},
}


def mmcv(model: nn.Module) -> optiplug.Built:
    return optiplug.build(MMCV, model, steps_per_epoch=5)


def test_mmcv_config_resumes_exactly():
    # 20 iterations, an update every 3 (windows cross epochs; the last window is 2 long);
    # the warmup is iterations 0-4, the restart at iteration 8.
    assert_resumes_exactly(mmcv, 20, [2, 4, 5, 7, 10, 11, 19])


# -- the adamwr drop-in ------------------------------------------------------------------------------------------

BATCH, EPOCH_SIZE = 4, 12  # 3 batches per epoch


class AdamwrTraining:
    """adamwr's loop: scheduler.step() at each epoch start, batch_step() after each optimizer.step()."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = Net()
        self.optimizer = AdamW(self.model.parameters(), lr=1e-2, weight_decay=1e-4)
        self.scheduler = CyclicLRWithRestarts(
            self.optimizer, BATCH, EPOCH_SIZE, restart_period=2, t_mult=1.5, policy="cosine"
        )
        self.values: list[list[tuple[float, ...]]] = []

    def train(self, start: int, stop: int) -> None:
        for i in range(start, stop):
            if i % 3 == 0:
                self.scheduler.step()
            self.values.append(hyper_parameters(self.optimizer))
            self.optimizer.zero_grad()
            loss_at(self.model, i).backward()
            self.optimizer.step()
            self.scheduler.batch_step()

    def checkpoint(self) -> dict[str, Any]:
        state = {"optimizer": self.optimizer, "scheduler": self.scheduler, "model": self.model}
        return through_disk({key: value.state_dict() for key, value in state.items()})

    def resume(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def test_adamwr_drop_in_resumes_exactly():
    # Periods of 2 and 3 epochs: restarts at batches 6 and 15.
    total = 24
    reference = AdamwrTraining()
    reference.train(0, total)
    assert first_rise(reference.values, after=1) == 6
    for stop in (1, 3, 5, 6, 14, 20):
        first = AdamwrTraining()
        first.train(0, stop)
        resumed = AdamwrTraining(seed=1 + stop)
        resumed.resume(first.checkpoint())
        resumed.train(stop, total)
        assert first.values + resumed.values == reference.values, f"values differ after resuming at {stop}"
        for a, b in zip(resumed.model.parameters(), reference.model.parameters(), strict=True):
            assert torch.equal(a, b)
        assert_same_state(resumed.optimizer.state_dict(), reference.optimizer.state_dict())


# -- the accumulated gradients -----------------------------------------------------------------------------------


def test_the_state_carries_the_gradients_of_an_open_window_only():
    training = Training(canonical)
    training.train(0, 1)
    state = training.built.state_dict()
    grads = state["accumulated_grads"]
    params = [p for g in training.built.optimizer.param_groups for p in g["params"]]
    assert len(grads) == len(params)
    assert all(torch.equal(g, p.grad) and g is not p.grad for g, p in zip(grads, params, strict=True))
    training.train(1, 2)
    assert training.built.state_dict()["accumulated_grads"] is None


def test_loading_a_boundary_state_clears_stray_gradients():
    source = Training(canonical)
    source.train(0, 2)
    target = Training(canonical, seed=5)
    loss_at(target.model, 0).backward()
    target.resume(source.checkpoint())
    assert all(p.grad is None for p in target.model.parameters())


# -- refused states ----------------------------------------------------------------------------------------------


def test_a_state_from_another_recipe_is_refused_and_changes_nothing():
    training = Training(canonical)
    training.train(0, 4)
    other = dict(CANONICAL, clip={"max_norm": 2.0})
    foreign = Training(lambda model: optiplug.build(other, model))
    foreign.train(0, 6)
    before = hyper_parameters(training.built.optimizer), training.built.scheduler.last_epoch
    with pytest.raises(optiplug.StateError, match="saved from a different recipe"):
        training.built.load_state_dict(foreign.built.state_dict())
    assert (hyper_parameters(training.built.optimizer), training.built.scheduler.last_epoch) == before


def test_a_state_from_a_run_with_another_length_is_refused():
    training = Training(vissl)
    shorter = Training(lambda model: optiplug.build(VISSL, model, steps_per_epoch=3))
    with pytest.raises(optiplug.StateError, match="saved from a run of another length: run.steps_per_epoch: 3 -> 4;"):
        training.built.load_state_dict(shorter.built.state_dict())
    longer = Training(lambda model: optiplug.build(VISSL, model, steps_per_epoch=4, num_epochs=5))
    with pytest.raises(optiplug.StateError, match="different recipe"):  # VISSL's schedules hold num_epochs
        training.built.load_state_dict(longer.built.state_dict())

    unsized = {key: value for key, value in CANONICAL.items() if key != "run"}
    four = Training(lambda model: optiplug.build(unsized, model, steps_per_epoch=6, num_epochs=4))
    five = Training(lambda model: optiplug.build(unsized, model, steps_per_epoch=6, num_epochs=5))
    with pytest.raises(optiplug.StateError, match="saved from a run of another length: run.num_epochs: 5 -> 4;"):
        four.built.load_state_dict(five.built.state_dict())


def test_a_state_from_another_model_is_refused_without_moving_the_schedule():
    training = Training(canonical)
    training.train(0, 3)
    two_heads = Net()
    two_heads.heads.append(nn.Linear(4, 2))
    other = canonical(two_heads)
    with pytest.raises(optiplug.StateError, match="does not fit this model's parameters"):
        other.load_state_dict(training.built.state_dict() | {"accumulated_grads": None})
    assert other.scheduler.last_epoch == 0
    with pytest.raises(optiplug.StateError, match="gradients of 6 parameters, this optimizer has 8"):
        other.load_state_dict(training.built.state_dict())
    with pytest.raises(optiplug.StateError, match=r"accumulated gradient of parameter 0 has shape \(4,\)"):
        other.load_state_dict(other.state_dict() | {"accumulated_grads": [torch.zeros(4)] + [None] * 7})
    with pytest.raises(optiplug.StateError, match="not an optiplug Built state"):
        other.load_state_dict(training.built.scheduler.state_dict())
