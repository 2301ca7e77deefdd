"""Contract of every registered optimizer: built from its defaults with two param groups, it
trains on a real loss, and its state round-trips into a fresh build that continues identically.

An optimizer that cannot run this way is listed in ``SKIPPED`` with the precise reason; one
that needs other inputs (a model, an argument without default) has a ``CASES`` entry. An
optimizer in neither table simply runs the contract, so a new plugin is covered and fails
loudly if it cannot.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
import torch

import optiplug
from contract.support import (
    NUM_EPOCHS,
    STEPS_PER_EPOCH,
    ContractNet,
    MatrixNet,
    SparseNet,
    assert_same,
    entry_point_names,
    group_options,
    loss_at,
    make_model,
    through_torch_save,
    train,
)

BIAS_RULE = {"kind": "bias", "set": {"lr_mult": 0.5}}


@attrs.frozen
class Case:
    """How one optimizer is exercised: extra options (beyond its defaults), the model, the rule making group two."""

    options: dict[str, Any] = attrs.field(factory=dict)
    model: type = ContractNet
    rule: dict[str, Any] = attrs.field(factory=lambda: BIAS_RULE)
    xfail: str | None = None
    raises: type[BaseException] | None = None


CASES: dict[str, Case] = {
    # MMSelfSup's LARS has no default lr (a required argument of its constructor)
    "LARS": Case(options={"lr": 0.1}),
    # torch.optim.Muon takes only 2-D parameters: no biases, convs, norms or embeddings
    "Muon": Case(model=MatrixNet, rule={"kind": "module_path", "prefix": "out", "set": {"lr_mult": 0.5}}),
    # SparseAdam takes only sparse gradients
    "SparseAdam": Case(
        model=SparseNet,
        rule={"kind": "module_path", "prefix": "bias", "set": {"lr_mult": 0.5}},
    ),
}

SCHEDULE_FREE = (
    "Built.state_dict() leaves a schedule-free optimizer in eval mode (its checkpoint is the average x) and "
    "Built.step refuses eval mode until built.train(model); this contract steps right after state_dict(). "
    "tests/plugins/schedulefree runs the same round trip with built.train(model), bit for bit against the package"
)

SKIPPED: dict[str, str] = {
    "schedulefree_adamw": SCHEDULE_FREE,
    "schedulefree_sgd": SCHEDULE_FREE,
    "schedulefree_radam": SCHEDULE_FREE,
    "multi": (
        "the router of optiplug_multi is built by optiplug when rules set `optimizer: <name>`, with the "
        "algorithms to route to; a recipe does not name it. tests/plugins/multi routes every registered optimizer"
    ),
    "LBFGS": (
        "torch.optim.LBFGS refuses more than one param group ('LBFGS doesn't support per-parameter options') "
        "and its step() needs a closure that re-evaluates the loss, which Built.step does not pass"
    ),
}

OPTIMIZERS = entry_point_names("optimizers")


def case_of(name: str) -> Case:
    return CASES.get(name, Case())


def params_of(name: str) -> list[Any]:
    marks: list[Any] = []
    if name in SKIPPED:
        marks.append(pytest.mark.skip(reason=SKIPPED[name]))
    elif case_of(name).xfail:
        marks.append(pytest.mark.xfail(reason=case_of(name).xfail, raises=case_of(name).raises, strict=True))
    return [pytest.param(name, marks=marks, id=name)]


PARAMS = [p for name in OPTIMIZERS for p in params_of(name)]


def recipe(name: str) -> dict[str, Any]:
    case = case_of(name)
    return {"optimizer": {"name": name, **case.options}, "rules": [case.rule]}


def build(name: str, seed: int = 0) -> tuple[torch.nn.Module, optiplug.Built]:
    model = make_model(case_of(name).model, seed)
    built = optiplug.build(recipe(name), model, steps_per_epoch=STEPS_PER_EPOCH, num_epochs=NUM_EPOCHS)
    return model, built


def test_the_tables_name_registered_optimizers_only():
    registered = set(OPTIMIZERS)
    assert not set(CASES) - registered, f"CASES names unknown optimizers: {sorted(set(CASES) - registered)}"
    assert not set(SKIPPED) - registered, f"SKIPPED names unknown optimizers: {sorted(set(SKIPPED) - registered)}"
    assert not set(CASES) & set(SKIPPED), "an optimizer is either run (CASES) or skipped (SKIPPED), not both"


def test_every_registered_optimizer_is_under_contract():
    """The parametrization is the registry's: none is left out, however the tests were collected."""
    assert set(optiplug.get_registry().optimizers.names()) >= set(OPTIMIZERS)
    assert {p.id for p in PARAMS} == set(OPTIMIZERS)
    assert len(OPTIMIZERS) >= 15


@pytest.mark.parametrize("name", PARAMS)
def test_builds_from_defaults_with_two_groups_and_trains(name):
    model, built = build(name)
    optimizer = built.optimizer
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert len(optimizer.param_groups) == 2, built
    grouped = [p for group in optimizer.param_groups for p in group["params"]]
    assert sorted(map(id, grouped)) == sorted(id(p) for p in model.parameters()), "every parameter exactly once"
    before = [p.detach().clone() for p in model.parameters()]
    train(built, model, range(6))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    unmoved = [n for (n, p), b in zip(model.named_parameters(), before, strict=True) if torch.equal(p, b)]
    assert not unmoved, f"parameters that did not move: {unmoved}"
    with torch.no_grad():
        assert math.isfinite(float(loss_at(model, 0)))
    assert built.scheduler.last_epoch == 6


@pytest.mark.parametrize("name", PARAMS)
def test_state_dict_round_trips_into_a_fresh_build_that_continues_identically(name):
    model, built = build(name)
    train(built, model, range(3))
    checkpoint = through_torch_save({"model": model.state_dict(), "built": built.state_dict()})

    fresh_model, fresh = build(name, seed=1)  # other initial weights: everything must come from the checkpoint
    fresh_model.load_state_dict(checkpoint["model"])
    fresh.load_state_dict(checkpoint["built"])
    assert_same(fresh.optimizer.state_dict(), built.optimizer.state_dict(), "optimizer state after loading")

    train(built, model, range(3, 7))
    train(fresh, fresh_model, range(3, 7))
    assert_same(dict(fresh_model.state_dict()), dict(model.state_dict()), "model")
    assert_same(fresh.optimizer.state_dict(), built.optimizer.state_dict(), "optimizer")
    assert group_options(fresh.optimizer) == group_options(built.optimizer)
