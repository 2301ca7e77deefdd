"""optiplug.build end to end: the core issue's done-when, optimizer arguments, step(), user registration."""

from __future__ import annotations

import attrs
import pytest
import torch
from fvcore.common import param_scheduler as fv
from torch import nn

import optiplug
from tests_helpers import resnet_like

RECIPE_YAML = """
optimizer: {name: SGD, lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4}
rules:
  - {kind: norm, set: {weight_decay: 0}}
  - {kind: bias, set: {weight_decay: 0}}
schedules:
  lr:
    name: composite
    schedulers:
      - {name: linear, start_value: 0.01, end_value: 0.1}
      - {name: cosine, start_value: 0.1, end_value: 0.0}
    lengths: [0.1, 0.9]
    interval_scaling: [rescaled, fixed]
run: {num_epochs: 6}
"""


def test_done_when_resnet_warmup_cosine_from_yaml(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE_YAML)
    model = resnet_like()
    built = optiplug.build(path, model, steps_per_epoch=7)
    assert len(built.optimizer.param_groups) <= 3
    reference = fv.CompositeParamScheduler(
        [fv.LinearParamScheduler(0.01, 0.1), fv.CosineParamScheduler(0.1, 0.0)], [0.1, 0.9], ["rescaled", "fixed"]
    )
    total = 42
    x = torch.randn(2, 3, 8, 8)
    for k in range(total):
        for group in built.optimizer.param_groups:
            assert group["lr"] == pytest.approx(reference(k / total), rel=1e-12, abs=1e-15)
        built.step(model(x).square().mean())


def test_optimizer_names_are_case_insensitive_and_arguments_checked(conv_bn_head):
    built = optiplug.build({"optimizer": {"name": "AdamW", "lr": 1e-3, "eps": "1e-08"}}, conv_bn_head)
    assert isinstance(built.optimizer, torch.optim.AdamW)
    assert built.optimizer.defaults["eps"] == 1e-08
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build({"optimizer": {"name": "sgd", "lr": 0.1, "momentun": 0.9}}, conv_bn_head)
    assert "optimizer.momentun: unknown argument (did you mean 'momentum'?); accepted: lr, momentum" in str(info.value)
    with pytest.raises(optiplug.ConfigError, match="optimizer.name: unknown optimizer 'sgdd' \\(did you mean 'SGD'"):
        optiplug.build({"optimizer": {"name": "sgdd"}}, conv_bn_head)
    with pytest.raises(optiplug.ConfigError, match="optimizer: SGD refused the arguments: Invalid learning rate"):
        optiplug.build({"optimizer": {"name": "sgd", "lr": -1}}, conv_bn_head)


def test_every_torch_optimizer_builds_and_steps():
    registry = optiplug.get_registry()
    names = [p.record.name for p in registry.optimizers if p.plugin == "torch"]
    assert {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad"} <= set(names)
    for name in names:
        model = nn.Linear(3, 2, bias=name != "Muon")  # Muon takes 2-D parameters only
        config = {
            "optimizer": {"name": name.lower()},
            "schedules": {"lr": {"name": "cosine", "start_value": 0.01, "end_value": 0.0}},
        }
        if name in ("LBFGS", "SparseAdam"):
            continue  # LBFGS needs a closure; SparseAdam needs sparse gradients
        built = optiplug.build(config, model, steps_per_epoch=2, num_epochs=1)
        assert built.step(model(torch.ones(4, 3)).square().mean()), name


def test_the_run_comes_from_the_recipe_or_the_arguments(conv_bn_head):
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {"lr": {"name": "linear", "start_value": 0, "end_value": 1}},
    }
    with pytest.raises(optiplug.ConfigError, match="pass steps_per_epoch and num_epochs to build"):
        optiplug.build(config, conv_bn_head)
    built = optiplug.build(dict(config, run={"num_epochs": 2, "steps_per_epoch": 5}), conv_bn_head)
    assert built.clock.total_steps == 10
    built = optiplug.build(dict(config, run={"num_epochs": 2, "steps_per_epoch": 5}), conv_bn_head, num_epochs=3)
    assert built.clock.total_steps == 15
    with pytest.raises(optiplug.ConfigError, match="steps_per_epoch must be a whole number > 0, got 0"):
        optiplug.build(config, conv_bn_head, steps_per_epoch=0, num_epochs=1)


def test_accumulation_divides_the_loss_and_updates_every_n(conv_bn_head):
    config = {"optimizer": {"name": "sgd", "lr": 0.1}, "accumulation": {"steps": 3}}
    built = optiplug.build(config, conv_bn_head, steps_per_epoch=3, num_epochs=1)
    x = torch.randn(2, 3, 6, 6)
    assert [built.step(conv_bn_head(x).mean()) for _ in range(6)] == [False, False, True, False, False, True]
    assert built.scheduler.last_epoch == 2


def test_accumulated_micro_batches_equal_one_big_batch():
    torch.manual_seed(0)
    small, big = nn.Linear(4, 2), nn.Linear(4, 2)
    big.load_state_dict(small.state_dict())
    data = torch.randn(8, 4)
    config = {"optimizer": {"name": "sgd", "lr": 0.5, "momentum": 0.9}}
    micro = optiplug.build(dict(config, accumulation={"steps": 4}), small, steps_per_epoch=4, num_epochs=1)
    whole = optiplug.build(config, big, steps_per_epoch=1, num_epochs=1)
    for chunk in data.split(2):
        micro.step(small(chunk).square().mean())
    whole.step(big(data).square().mean())
    for a, b in zip(small.parameters(), big.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_loss_factor_takes_the_remainder_at_the_end():
    model = nn.Linear(2, 1)
    config = {"optimizer": {"name": "sgd", "lr": 0.1}, "accumulation": {"steps": 3, "schedule_clock": "iterations"}}
    built = optiplug.build(config, model, steps_per_epoch=8, num_epochs=1)
    factors, updates = [], []
    for _ in range(8):
        factors.append(built.loss_factor())
        updates.append(built.step(model(torch.ones(1, 2)).sum()))
    assert factors == [3] * 6 + [2, 2]
    assert updates == [False, False, True, False, False, True, False, True]


def test_clipping_bounds_the_update(conv_bn_head):
    config = {"optimizer": {"name": "sgd", "lr": 1.0}, "clip": {"max_norm": 0.01}}
    built = optiplug.build(config, conv_bn_head, steps_per_epoch=1, num_epochs=1)
    before = torch.cat([p.detach().flatten().clone() for p in conv_bn_head.parameters()])
    built.step(conv_bn_head(torch.randn(2, 3, 6, 6)).sum() * 1000)
    after = torch.cat([p.detach().flatten() for p in conv_bn_head.parameters()])
    assert torch.linalg.vector_norm(after - before) == pytest.approx(0.01, rel=1e-4)


def test_non_finite_gradients_skip_the_update_and_keep_momentum(conv_bn_head, batch):
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "schedules": {"lr": {"name": "linear", "start_value": 0.1, "end_value": 0.0}},
    }
    built = optiplug.build(config, conv_bn_head, steps_per_epoch=5, num_epochs=1)
    built.step(conv_bn_head(batch).mean())
    params = [p.detach().clone() for p in conv_bn_head.parameters()]
    buffers = [built.optimizer.state[p]["momentum_buffer"].clone() for p in conv_bn_head.parameters()]
    with pytest.warns(optiplug.OptiplugWarning, match=r"gradients are not finite \(1 skipped so far\)"):
        assert not built.step(conv_bn_head(batch).mean() * float("nan"))
    assert built.scheduler.last_epoch == 1
    assert all(torch.equal(a, b) for a, b in zip(params, conv_bn_head.parameters(), strict=True))
    assert all(
        torch.equal(built.optimizer.state[p]["momentum_buffer"], b)
        for p, b in zip(conv_bn_head.parameters(), buffers, strict=True)
    )
    assert all(p.grad is None for p in conv_bn_head.parameters())


def test_register_optimizer_from_user_code(conv_bn_head):
    @optiplug.register_optimizer()
    class CustomizedOptim(torch.optim.SGD):
        """An SGD under another name."""

    built = optiplug.build({"optimizer": {"name": "CustomizedOptim", "lr": 0.3}}, conv_bn_head)
    assert type(built.optimizer) is CustomizedOptim
    assert optiplug.get_registry().optimizers.provided("customizedoptim").distribution == "(your code)"


def test_register_schedule_from_user_code(conv_bn_head):
    @optiplug.register_schedule("half_life")
    @attrs.frozen
    class HalfLife:
        """start_value halved every half_life updates."""

        start_value: float
        half_life: float

        def values(self, steps):
            return self.start_value * 0.5 ** (steps / self.half_life)

    config = {
        "optimizer": {"name": "sgd", "lr": 1.0},
        "schedules": {"lr": {"name": "half_life", "start_value": 0.8, "half_life": 2}},
    }
    built = optiplug.build(config, conv_bn_head, steps_per_epoch=4, num_epochs=1)
    lrs = []
    for _ in range(3):
        lrs.append(built.optimizer.param_groups[0]["lr"])
        built.step(conv_bn_head(torch.randn(1, 3, 6, 6)).mean())
    assert lrs == pytest.approx([0.8, 0.8 * 2**-0.5, 0.4])
    with pytest.raises(TypeError, match="needs an attrs class"):
        optiplug.register_schedule("plain")(type("Plain", (), {}))


def test_a_recipe_instance_is_accepted(conv_bn_head):
    recipe = optiplug.to_recipe({"optimizer": {"name": "sgd", "lr": 0.2}})
    assert isinstance(recipe, optiplug.Recipe)
    assert optiplug.build(recipe, conv_bn_head).optimizer.param_groups[0]["lr"] == 0.2
