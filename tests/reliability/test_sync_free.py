"""``Built.step`` with ``sync_free = True``: no tensor read on the host per update, skips kept on the device.

A host read is any conversion of a tensor to a Python value (``item``, ``bool``,
``float``, ``int``, ``tolist``, ...): on a GPU each is a device synchronisation. The
test counts them while ``step`` runs. A non-finite update is still skipped on the
device: parameters and optimizer state are left exactly as they were, and the count
is read when asked.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from torch import nn

import optiplug

CONVERSIONS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "__complex__")

CONFIGS: dict[str, dict[str, Any]] = {
    "sgd": {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}},
    "sgd_fused": {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "fused": True}},
    "sgd_larc_clip": {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
        "wrappers": [{"name": "larc", "clip": True}],
        "clip": {"max_norm": 1.0},
    },
    "adamw_fused": {"optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.05, "fused": True}},
    "lars": {"optimizer": {"name": "lars", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-6}},
    "vissl_lars": {"optimizer": {"name": "vissl_lars", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-6}},
}
SCHEDULES = {"lr": {"name": "cosine", "start_value": 1.0, "end_value": 0.1}}
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@contextmanager
def counting_host_reads() -> Iterator[list[str]]:
    """Every tensor-to-Python conversion made inside the block, by name."""
    seen: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in CONVERSIONS}

    def counted(name: str) -> Any:
        original = originals[name]

        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            seen.append(name)
            return original(self, *args, **kwargs)

        return wrapper

    try:
        for name in CONVERSIONS:
            setattr(torch.Tensor, name, counted(name))
        yield seen
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def model_and_data(device: str = "cpu") -> tuple[nn.Module, list[torch.Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).to(device)
    batches = [torch.randn(6, 3, generator=torch.Generator().manual_seed(i)).to(device) for i in range(5)]
    return model, batches


def build(name: str, model: nn.Module) -> optiplug.Built:
    built = optiplug.build({**CONFIGS[name], "schedules": SCHEDULES}, model, steps_per_epoch=5, num_epochs=2)
    built.sync_free = True
    return built


def state_of(built: optiplug.Built, model: nn.Module) -> dict[str, Any]:
    return {"params": [p.detach().clone() for p in model.parameters()], "state": copy.deepcopy(built.optimizer.state)}


def assert_same(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), (a, b)
    elif isinstance(a, dict):  # optimizer state is keyed by parameter: compare in order
        assert len(a) == len(b)
        for (key_a, value_a), (key_b, value_b) in zip(a.items(), b.items(), strict=True):
            assert_same(key_a, key_b)
            assert_same(value_a, value_b)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b


def test_the_check_is_off_by_default_and_reads_the_host():
    model, batches = model_and_data()
    built = optiplug.build(CONFIGS["sgd"], model)
    assert built.sync_free is False
    built.step(model(batches[0]).square().mean())
    with counting_host_reads() as seen:
        built.step(model(batches[1]).square().mean())
    assert seen == ["__bool__"]  # the finiteness check, the one read sync_free removes


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", CONFIGS)
def test_an_update_reads_nothing_on_the_host(name, device):
    model, batches = model_and_data(device)
    built = build(name, model)
    built.step(model(batches[0]).square().mean())  # the first update makes the state, checked on the host
    with counting_host_reads() as seen:
        for x in batches[1:4]:
            assert built.step(model(x).square().mean())
    assert seen == []
    assert built.skipped_updates == 0


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_a_non_finite_update_is_skipped_on_the_device(name, kind):
    model, batches = model_and_data()
    built = build(name, model)
    reference_model, _ = model_and_data()
    reference = build(name, reference_model)
    for b in (built, reference):
        m = model if b is built else reference_model
        b.step(m(batches[0]).square().mean())
        b.step(m(batches[1]).square().mean())
    before = state_of(built, model)
    bad = model(batches[2]).square().mean() * float(kind)
    with counting_host_reads() as seen:
        assert built.step(bad)  # True: submitted; whether it was skipped is known on the device
    assert seen == []
    assert_same(state_of(built, model), before)
    assert all(p.grad is None for p in model.parameters())
    assert built.skipped_updates == 1
    # Later updates go on as in a run that never saw the bad batch (the schedule aside: it advanced).
    reference.scheduler.set_step(built.scheduler.last_epoch)
    for x in batches[3:]:
        built.step(model(x).square().mean())
        reference.step(reference_model(x).square().mean())
    assert_same(state_of(built, model), state_of(reference, reference_model))
    assert built.skipped_updates == 1


def test_the_count_survives_a_checkpoint():
    model, batches = model_and_data()
    built = build("sgd", model)
    built.step(model(batches[0]).square().mean())
    built.step(model(batches[1]).square().mean() * float("nan"))
    state = built.state_dict()
    assert state["skipped_updates"] == 1
    again = build("sgd", model)
    again.load_state_dict(state)
    assert again.skipped_updates == 1


@pytest.mark.device
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (sync debug mode)")
@pytest.mark.parametrize("name", CONFIGS)
def test_no_device_sync_under_cuda_sync_debug_mode(name):
    model, batches = model_and_data("cuda")
    built = build(name, model)
    built.step(model(batches[0]).square().mean())
    loss = model(batches[1]).square().mean()
    torch.cuda.set_sync_debug_mode("error")
    try:
        built.step(loss)
        built.step(model(batches[3]).square().mean() * float("nan"))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert built.skipped_updates == 1
