"""Numerical guards: no NaN or inf from zero norms, and a non-finite update skipped as if it never came.

* LARC (both modes), MMSelfSup's LARS and VISSL's LARS keep parameters and state finite
  when a parameter's or a gradient's norm is zero or underflows (subnormal values).
* ``Built.step`` with a non-finite loss or gradient skips the update: parameters,
  optimizer state (momentum buffers, Adam's moments and step counts) and the schedule
  are left exactly as they were, one warning per skipped update gives the count, and
  the run continues exactly as if the bad batch had never been seen. With a GradScaler
  the same holds (the scaler's own skip, counted without a warning).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import optiplug
from optiplug.errors import OptiplugWarning
from optiplug_larc import LARC, LARS, VisslLARS
from reliability.states import assert_same_state, cloned

# -- zero and underflowing norms -------------------------------------------------------------------------------

TINY = 1e-40  # subnormal in float32: its square underflows to 0
OPTIMIZERS: dict[str, Callable[[list[nn.Parameter], float], torch.optim.Optimizer]] = {
    "larc_scale": lambda ps, wd: LARC(torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=wd), clip=False),
    "larc_clip": lambda ps, wd: LARC(torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=wd), clip=True),
    "larc_adam": lambda ps, wd: LARC(torch.optim.Adam(ps, lr=0.1, weight_decay=wd), clip=False),
    "lars": lambda ps, wd: LARS(ps, lr=0.1, momentum=0.9, weight_decay=wd),
    "lars_excluded": lambda ps, wd: LARS([{"params": ps, "lars_exclude": True}], lr=0.1, momentum=0.9, weight_decay=wd),
    "vissl_lars": lambda ps, wd: VisslLARS(ps, lr=0.1, momentum=0.9, weight_decay=wd),
    "vissl_lars_excluded": lambda ps, wd: VisslLARS(
        ps, lr=0.1, momentum=0.9, weight_decay=wd, exclude_bias_and_norm=True
    ),
}
NORM_CASES = [(0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (1.0, TINY), (TINY, 1.0), (TINY, TINY), (0.0, TINY), (TINY, 0.0)]


def finite(tensors: Any) -> bool:
    if isinstance(tensors, torch.Tensor):
        return bool(torch.isfinite(tensors).all())
    if isinstance(tensors, dict):
        return all(finite(v) for v in tensors.values())
    return True


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize(("weight", "grad"), NORM_CASES)
@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_zero_and_subnormal_norms_stay_finite(name, weight, grad, weight_decay):
    odd = nn.Parameter(torch.full((6,), weight))
    matrix = nn.Parameter(torch.full((3, 4), weight))
    normal = nn.Parameter(torch.linspace(-1, 1, 5))
    optimizer = OPTIMIZERS[name]([odd, matrix, normal], weight_decay)
    for _ in range(3):
        odd.grad, matrix.grad = torch.full((6,), grad), torch.full((3, 4), grad)
        normal.grad = torch.ones(5)
        optimizer.step()
        assert all(finite(p.detach()) for p in (odd, matrix, normal)), [odd, matrix]
        assert all(finite(state) for state in optimizer.state.values())
    if weight == 0.0 and grad == 0.0:
        assert torch.equal(odd.detach(), torch.zeros(6))


def test_zero_initialised_layers_train_under_larc_through_build():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    nn.init.zeros_(model[2].weight)  # a zero-initialised last layer (its grad is not zero)
    nn.init.zeros_(model[0].bias)
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
        "wrappers": [{"name": "larc", "clip": False}],
    }
    built = optiplug.build(config, model)
    x = torch.randn(8, 3)
    for _ in range(3):
        built.step(model(x).square().mean())
    assert all(finite(p.detach()) for p in model.parameters())
    assert all(finite(state) for state in built.optimizer.state.values())
    assert model[2].weight.abs().sum() > 0


# -- non-finite updates are skipped ------------------------------------------------------------------------------

CONFIGS = {
    "sgd": {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}},
    "sgd_larc": {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
        "wrappers": [{"name": "larc", "clip": True}],
    },
    "adam": {"optimizer": {"name": "adam", "lr": 0.01, "betas": [0.9, 0.99]}},
    "adamw_larc": {
        "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.05},
        "wrappers": [{"name": "larc", "clip": False, "trust_coefficient": 0.02}],
    },
    "lars": {"optimizer": {"name": "lars", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-6}},
    "vissl_lars": {"optimizer": {"name": "vissl_lars", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-6}},
}
SCHEDULES = {
    "lr": {"name": "linear", "start_value": 1.0, "end_value": 0.5},
    "weight_decay": {"name": "cosine", "start_value": 1e-4, "end_value": 0.0},
}


def model_and_data() -> tuple[nn.Module, list[torch.Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    batches = [torch.randn(6, 3, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    return model, batches


def bad_loss(model: nn.Module, x: torch.Tensor, kind: str) -> torch.Tensor:
    """A loss that is NaN or inf, or finite with a non-finite gradient (sqrt at 0)."""
    loss = model(x).square().mean()
    if kind == "nan_loss":
        return loss * float("nan")
    if kind == "inf_loss":
        return loss * float("inf")
    bias = model[2].bias
    return loss + torch.sqrt(bias.sum() - bias.sum().detach())


def build(name: str, model: nn.Module, **recipe: Any) -> optiplug.Built:
    config = {**CONFIGS[name], "schedules": SCHEDULES, **recipe}
    return optiplug.build(config, model, steps_per_epoch=4, num_epochs=2)


def snapshot(built: optiplug.Built, model: nn.Module) -> dict[str, Any]:
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "optimizer": cloned(built.optimizer.state_dict()),
        "step": built.scheduler.last_epoch,
    }


def skip_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, OptiplugWarning)]


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("kind", ["nan_loss", "inf_loss", "inf_grad"])
def test_a_non_finite_update_is_skipped_as_if_never_seen(name, kind):
    model, batches = model_and_data()
    built = build(name, model)
    built.step(model(batches[0]).square().mean())
    before = snapshot(built, model)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert not built.step(bad_loss(model, batches[1], kind))
    assert skip_warnings(record) == [
        "skipped update 1: gradients are not finite (1 skipped so far); parameters, momenta and schedule are unchanged"
    ]
    assert_same_state(snapshot(built, model), before)
    assert all(p.grad is None for p in model.parameters())
    for x in batches[2:]:
        built.step(model(x).square().mean())
    with pytest.warns(OptiplugWarning, match=r"skipped update 3: .* \(2 skipped so far\)"):
        built.step(bad_loss(model, batches[0], kind))
    assert built.skipped_updates == 2

    reference_model, _ = model_and_data()
    reference = build(name, reference_model)
    for x in (batches[0], *batches[2:]):
        reference.step(reference_model(x).square().mean())
    assert_same_state(snapshot(built, model), snapshot(reference, reference_model))


@pytest.mark.parametrize("name", ["sgd_larc", "adam", "vissl_lars"])
def test_with_a_grad_scaler_the_skipped_step_moves_nothing(name):
    model, batches = model_and_data()
    built = build(name, model)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    built.step(model(batches[0]).square().mean(), scaler=scaler)
    before = snapshot(built, model)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert not built.step(bad_loss(model, batches[1], "inf_loss"), scaler=scaler)
    assert skip_warnings(record) == []  # a scaler's skip is routine while it calibrates: counted only
    assert built.skipped_updates == 1
    assert scaler.get_scale() == 2.0**15
    assert_same_state(snapshot(built, model), before)
    for x in batches[2:]:
        assert built.step(model(x).square().mean(), scaler=scaler)

    reference_model, _ = model_and_data()
    reference = build(name, reference_model)
    reference_scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    for x in (batches[0], *batches[2:]):
        reference.step(reference_model(x).square().mean(), scaler=reference_scaler)
    assert_same_state(snapshot(built, model), snapshot(reference, reference_model))


def test_a_bad_micro_batch_skips_its_whole_accumulation_window():
    model, batches = model_and_data()
    built = build("adamw_larc", model, accumulation={"steps": 2})
    built.step(model(batches[0]).square().mean())
    built.step(model(batches[1]).square().mean())
    before = snapshot(built, model)
    built.step(model(batches[2]).square().mean())
    with pytest.warns(OptiplugWarning, match=r"skipped update 1: .* \(1 skipped so far\)"):
        assert not built.step(bad_loss(model, batches[3], "nan_loss"))
    assert_same_state(snapshot(built, model), before)
    assert built.micro_steps == 4 and built.state_dict()["accumulated_grads"] is None
    built.step(model(batches[0]).square().mean())
    assert built.step(model(batches[1]).square().mean())
    assert built.scheduler.last_epoch == 2


def test_an_iteration_clock_keeps_counting_iterations_over_a_skipped_update():
    """MMCV's schedules follow the iteration (the data read), also when its update is skipped, as in MMCV."""
    model, batches = model_and_data()
    config = {
        "optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9},
        "lr_config": {"policy": "Poly", "power": 1.0, "min_lr": 0.0, "by_epoch": False},
        "runner": {"type": "IterBasedRunner", "max_iters": 8},
    }
    built = optiplug.build(config, model, steps_per_epoch=4)
    built.step(model(batches[0]).square().mean())
    params = [p.detach().clone() for p in model.parameters()]
    with pytest.warns(OptiplugWarning, match=r"\(1 skipped so far\)"):
        built.step(bad_loss(model, batches[1], "inf_grad"))
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters(), strict=True))
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * (1 - 2 / 8))


# -- schedules checked over the whole run at the build ---------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "update"),
    [
        (  # 1.01 ** 9136 > 3e38: fine for the first 9,135 iterations
            {
                "optimizer": {"type": "SGD", "lr": 0.1},
                "lr_config": {"policy": "Exp", "gamma": 1.01, "by_epoch": False},
                "runner": {"type": "IterBasedRunner", "max_iters": 100_000},
            },
            9136,
        ),
        (  # a linear ramp to 2e38 is fine, but the head's lr_mult of 2 takes it past float32's range
            {
                "optimizer": {"name": "sgd", "lr": 0.1},
                "rules": [{"kind": "bias", "set": {"lr_mult": 2}}],
                "schedules": {"lr": {"name": "linear", "start_value": 0.1, "end_value": 2e38}},
                "run": {"total_steps": 100_000, "steps_per_epoch": 100},
            },
            75001,
        ),
    ],
    ids=["mmcv_exp", "scaled_linear"],
)
def test_a_schedule_that_overflows_late_in_the_run_fails_at_the_build(config, update):
    with pytest.raises(optiplug.ConfigError, match=f"at update {update}; values must be finite and below 3e38"):
        optiplug.build(config, nn.Linear(2, 1), steps_per_epoch=100)


@pytest.mark.parametrize(
    ("schedules", "message"),
    [
        ({"lr": {"name": "linear", "start_value": 0.1, "end_value": -0.1}}, "at update 50001; lr must be >= 0"),
        (
            {"momentum": {"name": "restarts", "period_epochs": 100, "min_value": -1e-7}},
            r"-2.06\d*e-09 at update 99979; momentum must be >= 0",
        ),
    ],
)
def test_a_schedule_going_negative_late_in_the_run_fails_at_the_build(schedules, message):
    """torch refuses a negative lr, momentum or weight decay as an argument; SGD would silently ascend."""
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "schedules": schedules,
        "run": {"total_steps": 100_000, "steps_per_epoch": 1000},
    }
    with pytest.raises(optiplug.ConfigError, match=message):
        optiplug.build(config, nn.Linear(2, 1))
