"""optimizer_config: accumulation and clipping trajectories through Built.step (MMCV's and MMEngine's arithmetic)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import optiplug
from optiplug import ConfigError


class Probe(nn.Module):
    """One vector parameter whose gradient is exactly the coefficient of the loss."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))

    def loss(self, c: torch.Tensor) -> torch.Tensor:
        return (c * self.w).sum()


def coefficients(count: int) -> list[torch.Tensor]:
    return [torch.tensor([0.5 + i, 1.5 - 0.25 * i], dtype=torch.float64) for i in range(count)]


def mmcv_trajectory(w0, cs, n, lr_of, max_norm=None):
    """MMCV's GradientCumulativeOptimizerHook with plain SGD: w after each iteration."""
    T = len(cs)
    rem = T - (T // n) * n
    w, acc, out = w0.clone(), torch.zeros_like(w0), []
    for i, c in enumerate(cs):
        factor = n if i < T - rem else rem
        acc = acc + c / factor
        if (i + 1) % n == 0 or i + 1 == T:
            if max_norm is not None:
                norm = torch.linalg.vector_norm(acc)
                acc = acc * torch.clamp(max_norm / (norm + 1e-6), max=1.0)
            w = w - lr_of(i) * acc
            acc = torch.zeros_like(w0)
        out.append(w.clone())
    return out


def run(config, cs, **build_args):
    model = Probe()
    built = optiplug.build(config, model, **build_args)
    trajectory, factors = [], []
    for c in cs:
        factors.append(built.loss_factor())
        built.step(model.loss(c))
        trajectory.append(model.w.detach().clone())
    return trajectory, factors


@pytest.mark.parametrize(
    "optimizer_config",
    [
        dict(type="GradientCumulativeOptimizerHook", cumulative_iters=3),
        dict(type="DistOptimizerHook", update_interval=3),
        dict(update_interval=3),
    ],
    ids=["mmcv-cumulative", "mmselfsup-dist", "no-type"],
)
def test_accumulation_factors_and_updates(optimizer_config):
    cs = coefficients(8)
    config = dict(
        optimizer=dict(type="SGD", lr=0.1),
        optimizer_config=optimizer_config,
        runner=dict(type="IterBasedRunner", max_iters=8),
    )
    trajectory, factors = run(config, cs)
    assert factors == [3] * 6 + [2, 2]  # mmcv's test_gradient_cumulative_optimizer_hook
    expected = mmcv_trajectory(Probe().w.detach(), cs, 3, lambda i: 0.1)
    for got, want in zip(trajectory, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    moved = [i for i in range(8) if not torch.equal(trajectory[i], trajectory[i - 1] if i else Probe().w.detach())]
    assert moved == [2, 5, 7]


def test_windows_cross_epochs_and_updates_use_the_lr_of_their_iteration():
    # L=5, n=4 -> updates after global iterations 3, 7 and 9; the lr moves every iteration.
    cs = coefficients(10)
    config = dict(
        optimizer=dict(type="SGD", lr=0.1),
        optimizer_config=dict(type="DistOptimizerHook", update_interval=4),
        lr_config=dict(policy="Step", step=3, gamma=0.5, by_epoch=False),
        runner=dict(type="EpochBasedRunner", max_epochs=2),
    )
    trajectory, factors = run(config, cs, steps_per_epoch=5)
    assert factors == [4] * 8 + [2, 2]
    expected = mmcv_trajectory(Probe().w.detach(), cs, 4, lambda i: 0.1 * 0.5 ** (i // 3))
    for got, want in zip(trajectory, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_clipping_once_per_update():
    cs = coefficients(7)
    config = dict(
        optimizer=dict(type="SGD", lr=0.1),
        optimizer_config=dict(
            type="GradientCumulativeOptimizerHook", cumulative_iters=2, grad_clip=dict(max_norm=1.0, norm_type=2)
        ),
        runner=dict(type="IterBasedRunner", max_iters=7),
    )
    trajectory, _ = run(config, cs)
    expected = mmcv_trajectory(Probe().w.detach(), cs, 2, lambda i: 0.1, max_norm=1.0)
    unclipped = mmcv_trajectory(Probe().w.detach(), cs, 2, lambda i: 0.1)
    assert not torch.allclose(expected[-1], unclipped[-1])
    for got, want in zip(trajectory, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_resume_at_a_window_boundary_continues_the_global_count():
    cs = coefficients(8)
    config = dict(
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
        optimizer_config=dict(update_interval=3),
        lr_config=dict(policy="CosineAnnealing", min_lr=0.0, by_epoch=False),
        runner=dict(type="IterBasedRunner", max_iters=8),
    )
    whole, _ = run(config, cs)
    model = Probe()
    first = optiplug.build(config, model)
    for c in cs[:6]:
        first.step(model.loss(c))
    state, resumed_model = copy.deepcopy(first.state_dict()), copy.deepcopy(model)
    second = optiplug.build(config, resumed_model)
    second.load_state_dict(state)
    factors = []
    for c in cs[6:]:
        factors.append(second.loss_factor())
        second.step(resumed_model.loss(c))
    assert factors == [2, 2]
    torch.testing.assert_close(resumed_model.w.detach(), whole[-1], rtol=1e-12, atol=1e-12)


def test_update_interval_4_at_64_equals_256_per_gpu():
    """The seed: data=dict(samples_per_gpu=64) with update_interval=4 trains like samples_per_gpu=256."""
    torch.manual_seed(0)
    template = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))  # no batch norm
    x, y = torch.randn(512, 8), torch.randn(512, 1)
    optimizer = dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=1e-4)
    lr_config = dict(policy="Step", step=[1])  # per epoch: epoch 1 runs at a tenth

    def train(samples_per_gpu, optimizer_config):
        model = copy.deepcopy(template)
        per_epoch = 256 // samples_per_gpu
        config = dict(
            optimizer=optimizer, optimizer_config=optimizer_config, lr_config=lr_config, runner=dict(max_epochs=2)
        )
        built = optiplug.build(config, model, steps_per_epoch=per_epoch)
        for batch in range(512 // samples_per_gpu):
            rows = slice(batch * samples_per_gpu, (batch + 1) * samples_per_gpu)
            built.step(nn.functional.mse_loss(model(x[rows]), y[rows]))
        return model

    small = train(64, dict(type="DistOptimizerHook", update_interval=4))
    large = train(256, dict(type="OptimizerHook"))
    for a, b in zip(small.parameters(), large.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(small[0].weight, template[0].weight)


def test_norm_type_inf_is_accepted():
    config = dict(
        optimizer=dict(type="SGD", lr=0.1), optimizer_config=dict(grad_clip=dict(max_norm=0.5, norm_type="inf"))
    )
    built = optiplug.build(config, Probe())
    assert built.recipe.clip.norm_type == float("inf")


@pytest.mark.parametrize(
    ("optimizer_config", "path", "words"),
    [
        (dict(type="Fp16OptimizerHook", loss_scale=512), "optimizer_config.loss_scale", "MMCV refuses an int"),
        (dict(type="OptimizerHok"), "optimizer_config.type", "did you mean 'OptimizerHook'"),
        (dict(type="OptimizerHook", update_interval=4), "optimizer_config.update_interval", "OptimizerHook takes no"),
        (
            dict(type="DistOptimizerHook", cumulative_iters=4),
            "optimizer_config.cumulative_iters",
            "did you mean 'update_interval'",
        ),
        (dict(update_interval=0), "optimizer_config.update_interval", "whole number > 0"),
        (dict(frozen_layers_cfg=dict(prototypes=0.5)), "optimizer_config.frozen_layers_cfg.prototypes", "whole number"),
        (dict(grad_clip=dict(norm_type=2)), "optimizer_config.grad_clip", "needs max_norm"),
        (
            dict(grad_clip=dict(max_norm=35, max_value=3)),
            "optimizer_config.grad_clip.max_value",
            "accepted: max_norm, norm_type",
        ),
        (dict(grad_clip=dict(max_norm=-1)), "optimizer_config.grad_clip.max_norm", "> 0"),
        (dict(grad_clip=35), "optimizer_config.grad_clip", "dict(max_norm="),
    ],
)
def test_optimizer_config_errors_name_the_path(optimizer_config, path, words):
    with pytest.raises(ConfigError) as caught:
        optiplug.build(dict(optimizer=dict(type="SGD", lr=0.1), optimizer_config=optimizer_config), Probe())
    assert caught.value.path == path, str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize(("max_iters", "n"), [(8, 3), (10, 3), (9, 3), (5, 1), (2, 4), (7, 7)])
def test_loss_factor_lists(max_iters, n):
    """MMEngine's OptimWrapper arithmetic: n while i < T - T % n, then T % n; update at i % n == 0 or T."""
    rem = max_iters % n
    expected_factors = [n if i < max_iters - rem else rem for i in range(max_iters)]
    expected_updates = [i for i in range(max_iters) if (i + 1) % n == 0 or i + 1 == max_iters]
    config = dict(
        optimizer=dict(type="SGD", lr=0.1),
        optimizer_config=dict(type="GradientCumulativeOptimizerHook", cumulative_iters=n),
        runner=dict(type="IterBasedRunner", max_iters=max_iters),
    )
    factors, updates = drive(config, max_iters)
    assert factors == expected_factors
    assert updates == expected_updates


def test_without_a_run_length_every_loss_is_divided_by_n():
    config = dict(optimizer=dict(type="SGD", lr=0.1), optimizer_config=dict(update_interval=3))
    factors, updates = drive(config, 7)
    assert factors == [3] * 7
    assert updates == [2, 5]


def drive(config, iterations):
    """The loss divisor of each iteration, and the iterations that updated."""
    model = Probe()
    built = optiplug.build(config, model)
    factors, updates = [], []
    for i, c in enumerate(coefficients(iterations)):
        factors.append(built.loss_factor())
        if built.step(model.loss(c)):
            updates.append(i)
    return factors, updates
