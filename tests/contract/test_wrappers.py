"""Contract of every registered optimizer wrapper.

A wrapper wraps the built optimizer and trains; the options the scheduler writes into the
wrapper's ``param_groups`` are the ones the update uses (the wrapper shares or syncs the
inner optimizer's groups); its state round-trips into a fresh build that continues
identically. Wrappers that shard across ranks run under a one-rank gloo process group
(without one, ``zero`` returns the optimizer unwrapped, with a warning). A new wrapper runs
with its defaults unless ``CASES`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
import torch
import torch.distributed as dist

import optiplug
from contract.support import (
    NUM_EPOCHS,
    STEPS_PER_EPOCH,
    assert_same,
    entry_point_names,
    group_options,
    loss_at,
    make_model,
    through_torch_save,
    train,
)
from optiplug.plugin import structure_config


def consolidate_zero(optimizer: torch.optim.Optimizer) -> None:
    import optiplug_zero

    optiplug_zero.consolidate(optimizer, to=0)


@attrs.frozen
class Case:
    """A wrapper's options, whether it needs a process group, and what a checkpoint needs first."""

    fields: dict[str, Any] = attrs.field(factory=dict)
    distributed: bool = False
    before_checkpoint: Callable[[torch.optim.Optimizer], None] | None = None
    in_place: bool = False  # the wrapper changes the optimizer itself (its options), not its class


CASES: dict[str, Case] = {
    "larc": Case({"trust_coefficient": 0.001, "clip": False}),
    # ZeRO shards over the default process group; state_dict() needs the shards gathered first
    "zero": Case(distributed=True, before_checkpoint=consolidate_zero),
    # run.compile's wrapper: the optimizer keeps its class, its options become 0-dim tensors
    "compile": Case(in_place=True),
}

WRAPPERS = entry_point_names("wrappers")
OPTIMIZER = {"name": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
RULE = {"kind": "bias", "set": {"lr_mult": 0.5, "weight_decay": 0.0}}


def case_of(name: str) -> Case:
    return CASES.get(name, Case())


@pytest.fixture
def wrapper(request, tmp_path):
    """The wrapper's name, under a one-rank gloo process group where it needs one."""
    name = request.param
    if not case_of(name).distributed:
        yield name
        return
    assert not dist.is_initialized(), "a process group is already initialized"
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield name
    finally:
        dist.destroy_process_group()


def recipe(name: str) -> dict[str, Any]:
    return {
        "optimizer": OPTIMIZER,
        "rules": [RULE],
        "schedules": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}},
        "wrappers": [{"name": name, **case_of(name).fields}],
    }


def build(name: str | None, seed: int = 0) -> tuple[torch.nn.Module, optiplug.Built]:
    model = make_model(seed=seed)
    config = recipe(name) if name else {**recipe("larc"), "wrappers": []}
    return model, optiplug.build(config, model, steps_per_epoch=STEPS_PER_EPOCH, num_epochs=NUM_EPOCHS)


def test_the_table_names_registered_wrappers_only():
    stale = sorted(set(CASES) - set(WRAPPERS))
    assert not stale, f"CASES names wrappers nobody registers: {stale}"


@pytest.mark.parametrize("name", WRAPPERS)
def test_the_config_class_is_attrs_with_help_on_every_field(name):
    spec = optiplug.get_registry().wrappers.get(name)
    assert attrs.has(spec.config_class), f"{spec.config_class!r} is not an attrs class"
    silent = [f.name for f in attrs.fields(spec.config_class) if not f.metadata.get("help")]
    assert not silent, f"fields without help text (optiplug schema and the docs show it): {silent}"


@pytest.mark.parametrize("wrapper", WRAPPERS, indirect=True)
def test_wraps_the_optimizer_and_trains_with_the_scheduled_values(wrapper):
    model, built = build(wrapper)
    _, plain = build(None)
    assert isinstance(built.optimizer, torch.optim.Optimizer)
    if case_of(wrapper).in_place:
        assert isinstance(built.optimizer.param_groups[0]["lr"], torch.Tensor), f"{wrapper} changed nothing"
    else:
        assert type(built.optimizer) is not type(plain.optimizer), f"{wrapper} did not wrap {type(plain.optimizer)}"
    assert len(built.optimizer.param_groups) == 2
    grouped = [p for group in built.optimizer.param_groups for p in group["params"]]
    assert sorted(map(id, grouped)) == sorted(id(p) for p in model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    for step in range(4):
        assert [g["lr"] for g in built.optimizer.param_groups] == [g["lr"] for g in plain.optimizer.param_groups]
        assert built.step(loss_at(model, step))
        plain.optimizer.step()
        plain.scheduler.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def wrapped_sgd(name: str, lrs: tuple[float, float], seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = make_model(seed=seed)
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    others = [p for n, p in model.named_parameters() if not n.endswith("bias")]
    inner = torch.optim.SGD([{"params": others, "lr": lrs[0]}, {"params": biases, "lr": lrs[1]}], momentum=0.9)
    registry = optiplug.get_registry()
    spec = registry.wrappers.get(name)
    config = structure_config(case_of(name).fields, spec.config_class, registry, "wrappers[0]")
    return model, spec.wrap(inner, config)


@pytest.mark.parametrize("wrapper", WRAPPERS, indirect=True)
def test_options_written_into_the_wrappers_groups_are_the_ones_the_update_uses(wrapper):
    model, optimizer = wrapped_sgd(wrapper, (0.1, 0.1))
    reference_model, reference = wrapped_sgd(wrapper, (0.03, 0.007))
    for step in range(2):
        for group, lr in zip(optimizer.param_groups, (0.03, 0.007), strict=True):
            group["lr"] = lr  # as the scheduler writes them
        for m, opt in ((model, optimizer), (reference_model, reference)):
            opt.zero_grad()
            loss_at(m, step).backward()
            opt.step()
    assert_same(dict(model.state_dict()), dict(reference_model.state_dict()), "parameters")


@pytest.mark.parametrize("wrapper", WRAPPERS, indirect=True)
def test_state_dict_round_trips_into_a_fresh_build_that_continues_identically(wrapper):
    prepare = case_of(wrapper).before_checkpoint or (lambda _optimizer: None)
    model, built = build(wrapper)
    train(built, model, range(3))
    prepare(built.optimizer)
    checkpoint = through_torch_save({"model": model.state_dict(), "built": built.state_dict()})

    fresh_model, fresh = build(wrapper, seed=1)
    fresh_model.load_state_dict(checkpoint["model"])
    fresh.load_state_dict(checkpoint["built"])
    assert group_options(fresh.optimizer) == group_options(built.optimizer)

    train(built, model, range(3, 7))
    train(fresh, fresh_model, range(3, 7))
    assert_same(dict(fresh_model.state_dict()), dict(model.state_dict()), "model")
    prepare(built.optimizer)
    prepare(fresh.optimizer)
    assert_same(fresh.optimizer.state_dict(), built.optimizer.state_dict(), "optimizer")
