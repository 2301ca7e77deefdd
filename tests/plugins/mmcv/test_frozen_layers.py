"""MMSelfSup's ``frozen_layers_cfg`` as the recipe's ``freeze``, against the hook's semantics simulated by hand.

Reference: MMSelfSup 0.11 ``DistOptimizerHook.after_train_iter`` (mmselfsup/core/hooks/
optimizer_hook.py): on every update (``every_n_iters(update_interval)`` or the last
iteration), ``for layer, iters in frozen_layers_cfg.items(): if runner.iter < iters:`` the
gradient of every parameter whose name contains ``layer`` is set to None, then
``optimizer.step()``. The optimizer skips such a parameter: no momentum buffer, no weight
decay (an lr of 0 would still build the buffer and, for SGD, move nothing but differ later).
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import optiplug
from optiplug import ConfigError, OptiplugWarning

SWAV = (
    Path(__file__).parent
    / "configs"
    / "mmselfsup_swav"
    / "swav"
    / "swav_resnet50_8xb32-mcrop-2-6-coslr-200e_in1k-224-96.py"
)


class Tiny(nn.Module):
    """A backbone, a neck and SwAV's ``head.prototypes``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Linear(4, 3)
        self.head = nn.Module()
        self.head.prototypes = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.prototypes(torch.tanh(self.backbone(x)))


def batch(i: int) -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, 8).reshape(2, 4) * (1 + (i % 5) / 5)


def loss_of(model: nn.Module, i: int) -> torch.Tensor:
    return model(batch(i)).pow(2).sum()


def simulate_dist_optimizer_hook(model, optimizer, frozen, iterations, update_interval=1):
    """MMSelfSup's DistOptimizerHook, line for line (runner.iter is ``i``)."""
    divisible = iterations // update_interval * update_interval
    remainder = iterations - divisible
    for i in range(iterations):
        factor = update_interval if i < divisible else remainder
        (loss_of(model, i) / factor).backward()
        if (i + 1) % update_interval == 0 or i + 1 == iterations:
            for layer, iters in frozen.items():
                if i < iters:
                    for name, p in model.named_parameters():
                        if layer in name:
                            p.grad = None
            optimizer.step()
            optimizer.zero_grad()


def mmcv_config(frozen, update_interval=1, max_iters=11):
    return dict(
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=0.01),
        optimizer_config=dict(update_interval=update_interval, frozen_layers_cfg=frozen),
        lr_config=dict(policy="fixed"),
        runner=dict(type="IterBasedRunner", max_iters=max_iters),
    )


def run_built(built, model, iterations):
    for i in range(iterations):
        built.step(loss_of(model, i))


@pytest.mark.parametrize(
    ("update_interval", "frozen"), [(1, {"prototypes": 4}), (2, {"prototypes": 5}), (3, {"head": 11})]
)
def test_frozen_layers_equal_mmselfsups_hook(update_interval, frozen):
    model = Tiny()
    reference = copy.deepcopy(model)
    built = optiplug.build(mmcv_config(frozen, update_interval), model)
    run_built(built, model, 11)
    plain = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01, foreach=False)
    simulate_dist_optimizer_hook(reference, plain, frozen, 11, update_interval)
    for (name, got), want in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-7, msg=name)


def test_frozen_parameters_get_no_momentum_and_no_decay_while_frozen():
    model = Tiny()
    prototypes = model.head.prototypes.weight
    before = prototypes.detach().clone()
    built = optiplug.build(mmcv_config({"prototypes": 4}), model)
    run_built(built, model, 4)
    assert torch.equal(prototypes, before)  # weight decay 0.01 would have shrunk it
    assert "momentum_buffer" not in built.optimizer.state.get(prototypes, {})
    assert "momentum_buffer" in built.optimizer.state[model.backbone.weight]
    built.step(loss_of(model, 4))  # runner.iter 4: trains
    assert not torch.equal(prototypes, before)
    assert "momentum_buffer" in built.optimizer.state[prototypes]


def test_a_canonical_freeze_counts_updates_and_resumes_from_a_checkpoint():
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "foreach": False},
        "freeze": [{"match": {"kind": "regex", "pattern": r"^head\."}, "until": 3}],
        "accumulation": {"steps": 2},
        "run": {"num_epochs": 1, "steps_per_epoch": 12},
    }
    model = Tiny()
    reference = copy.deepcopy(model)
    built = optiplug.build(recipe, model)
    run_built(built, model, 4)
    state = copy.deepcopy(built.state_dict())
    resumed_model = copy.deepcopy(model)
    resumed = optiplug.build(recipe, resumed_model)
    resumed.load_state_dict(state)
    for i in range(4, 12):
        built.step(loss_of(model, i))
        resumed.step(loss_of(resumed_model, i))
    plain = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01, foreach=False)
    for update in range(6):  # two micro-batches per update; the first 3 updates leave head.* out
        for i in (2 * update, 2 * update + 1):
            (loss_of(reference, i) / 2).backward()
        if update < 3:
            for p in reference.head.parameters():
                p.grad = None
        plain.step()
        plain.zero_grad()
    for got, again, want in zip(model.parameters(), resumed_model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-7)
        assert torch.equal(got, again)


def test_the_real_swav_config_freezes_the_prototypes_for_5005_iterations():
    """SwAV (MMSelfSup 0.11): LARS lr 0.6, frozen_layers_cfg=dict(prototypes=5005), cosine by epoch.

    The run is taken up at iteration 5000, as a resumed run is (the step count is all the
    freeze reads), and compared over the iterations around 5005 with MMSelfSup's LARS.
    """
    model = Tiny()
    reference = copy.deepcopy(model)
    built = optiplug.build(SWAV, model, steps_per_epoch=6000)  # these iterations stay in epoch 0
    assert [(f.match.kind, f.match.params.contains, f.until) for f in built.recipe.freeze] == [
        ("name", "prototypes", 5005)
    ]
    built.micro_steps = 5000
    built.scheduler.set_step(5000)
    lr = 6e-4 + (0.6 - 6e-4) / 2 * (math.cos(0.0) + 1)  # MMCV's annealing_cos at epoch 0
    state: dict = {}
    prototypes = model.head.prototypes.weight
    before = prototypes.detach().clone()
    for i in range(5000, 5008):
        built.step(loss_of(model, i))
        loss_of(reference, i).backward()
        if i < 5005:
            for name, p in reference.named_parameters():
                if "prototypes" in name:
                    p.grad = None
        mmselfsup_lars_step(reference, state, lr)
        if i == 5004:
            assert torch.equal(prototypes, before)
            assert not built.optimizer.state.get(prototypes)
            assert built.optimizer.state.get(model.backbone.weight)
    assert not torch.equal(prototypes, before)
    for (name, got), want in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7, msg=name)


def mmselfsup_lars_step(model, state, lr, momentum=0.9, weight_decay=1e-6, eta=1e-3, eps=1e-8):
    """MMSelfSup's LARS.step for one group without lars_exclude, tensor by tensor, then zero_grad."""
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is None:
                continue
            weight, grad = torch.norm(p).item(), torch.norm(p.grad).item()
            local = eta * weight / (grad + weight_decay * weight + eps) if weight != 0 and grad != 0 else 1.0
            step = p.grad.add(p, alpha=weight_decay).mul(local * lr)
            buffer = state[p] = step.clone() if p not in state else state[p].mul_(momentum).add_(step)
            p.add_(-buffer)
            p.grad = None


def test_a_layer_matching_nothing_warns_in_mmcvs_terms_and_freezes_nothing():
    model, reference = Tiny(), Tiny()
    with pytest.warns(OptiplugWarning, match=r"optimizer_config\.frozen_layers_cfg.*'protoypes' matches no trainable"):
        built = optiplug.build(mmcv_config({"protoypes": 4}), model)
    run_built(built, model, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = optiplug.build(mmcv_config({}), reference)
    run_built(plain, reference, 3)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters(), strict=True))


def test_a_canonical_freeze_matching_nothing_warns_as_a_rule_matching_nothing_does():
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "freeze": [{"match": {"kind": "name", "contains": "x"}, "until": 2}],
    }
    with pytest.warns(
        OptiplugWarning, match=r"freeze\[0\]\.match: name\(contains='x'\) matches no trainable parameter"
    ):
        built = optiplug.build(recipe, Tiny(), steps_per_epoch=2, num_epochs=1)
    assert built.freezes.frozen_at(0) == []


@pytest.mark.parametrize(
    ("entry", "path", "words"),
    [
        ({"match": {"kind": "name", "contains": "head"}, "until": 0}, r"freeze\[0\]\.until", "must be > 0"),
        (
            {"match": {"kind": "nam", "contains": "head"}, "until": 2},
            r"freeze\[0\]\.match\.kind",
            "did you mean 'name'",
        ),
        (
            {"match": {"kind": "name", "contains": "head", "set": {"lr": 0}}, "until": 2},
            r"freeze\[0\]\.match\.set",
            "selects parameters only",
        ),
        (
            {"match": {"kind": "regex", "pattern": "("}, "until": 2},
            r"freeze\[0\]\.match\.pattern",
            "invalid regular expression",
        ),
    ],
)
def test_bad_freeze_entries_name_their_path(entry, path, words):
    recipe = {"optimizer": {"name": "sgd", "lr": 0.1}, "freeze": [entry]}
    with pytest.raises(ConfigError, match=path) as info:
        optiplug.build(recipe, Tiny(), steps_per_epoch=2, num_epochs=1)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("frozen", "path", "words"),
    [
        ([("prototypes", 5)], r"optimizer_config\.frozen_layers_cfg", "expected a dict"),
        ({"prototypes": 2.5}, r"optimizer_config\.frozen_layers_cfg\.prototypes", "whole number"),
        ({"prototypes": -1}, r"optimizer_config\.frozen_layers_cfg\.prototypes", "whole number"),
    ],
)
def test_bad_frozen_layers_cfg_is_refused_at_its_key(frozen, path, words):
    with pytest.raises(ConfigError, match=path) as info:
        optiplug.build(mmcv_config(frozen), Tiny())
    assert words in str(info.value)


def test_zero_iterations_freeze_nothing_as_in_mmselfsup():
    recipe = optiplug.to_recipe(mmcv_config({"prototypes": 0}))
    assert recipe.freeze == []
