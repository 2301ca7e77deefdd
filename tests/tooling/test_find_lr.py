"""``optiplug.find_lr``: the LR range test on a noisy quadratic whose divergence lr is known (2/L)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import optiplug
from optiplug.tooling.find_lr import RECIPES, analyse, running_median, smooth


class NoisyQuadratic(nn.Module):
    """loss = L/2 ||w - xi||^2 for a batch xi ~ N(0, sigma^2): plain SGD converges iff lr < 2/L."""

    def __init__(self, curvature: float, dim: int = 16) -> None:
        super().__init__()
        self.curvature = curvature
        self.w = nn.Parameter(torch.full((dim,), 3.0))
        self.register_buffer("seen", torch.zeros(()))

    def forward(self, xi: torch.Tensor) -> torch.Tensor:
        self.seen += 1
        return 0.5 * self.curvature * ((self.w - xi) ** 2).sum()


class TwoGroups(nn.Module):
    """The quadratic split in a trunk and a head (the head at 10x in the recipe)."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Parameter(torch.full((8,), 3.0))
        self.head = nn.Parameter(torch.full((8,), 3.0))

    def forward(self, xi: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((self.trunk - xi[:8]) ** 2).sum() + 0.5 * ((self.head - xi[8:]) ** 2).sum()


def noise(count: int = 50, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(16, generator=generator) * 0.3 for _ in range(count)]


def identity(loss: torch.Tensor) -> torch.Tensor:
    return loss


SGD = {"optimizer": {"name": "SGD", "lr": 0.1}}


@pytest.mark.parametrize("curvature", [0.5, 4.0, 50.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_bounds_of_a_quadratic_sit_below_its_divergence_lr(curvature, seed):
    edge = 2 / curvature
    model = NoisyQuadratic(curvature)
    result = optiplug.find_lr(SGD, model, noise(seed=seed), identity, start_lr=1e-4, end_lr=1e3, num_steps=150)
    assert result.diverged
    assert edge < result.lrs[-1] < 4 * edge  # the stop: past the edge, soon after
    assert edge / 20 < result.max_lr < edge  # the suggestion: a lr that converges, near the edge
    assert result.min_lr <= result.max_lr / 4


def test_the_suggested_max_converges_and_the_stop_lr_diverges():
    """Independent of the finder: plain gradient descent on the quadratic at each suggested lr."""
    curvature = 4.0
    result = optiplug.find_lr(SGD, NoisyQuadratic(curvature), noise(), identity, start_lr=1e-4, end_lr=1e3)
    for lr, converges in ((result.max_lr, True), (result.min_lr, True), (result.lrs[-1], False)):
        w = 3.0
        for _ in range(200):
            w -= lr * curvature * w
        assert (abs(w) < 1e-3) is converges, (lr, w)


def test_the_lr_grows_geometrically_or_linearly_from_start_to_end():
    model = NoisyQuadratic(1e-6)  # never diverges: the sweep runs to the end
    result = optiplug.find_lr(SGD, model, noise(), identity, start_lr=1e-3, end_lr=1e1, num_steps=5)
    assert result.lrs == pytest.approx([1e-3, 1e-2, 1e-1, 1.0, 10.0])
    assert not result.diverged
    result = optiplug.find_lr(SGD, model, noise(), identity, start_lr=1.0, end_lr=3.0, num_steps=3, mode="linear")
    assert result.lrs == pytest.approx([1.0, 2.0, 3.0])


def test_group_ratios_are_kept_and_everything_is_restored():
    model = TwoGroups()
    config = {
        "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9},
        "rules": [{"kind": "regex", "pattern": "head", "set": {"lr_mult": 10}}],
        "schedules": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}},
        "run": {"num_epochs": 1, "steps_per_epoch": 10},
    }
    built = optiplug.build(config, model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups_before = [{k: v for k, v in g.items() if k != "params"} for g in built.optimizer.param_groups]
    seen: list[tuple[float, float]] = []

    def loss_fn(loss: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(g["lr"] for g in built.optimizer.param_groups))
        return loss

    result = optiplug.find_lr(built, model, noise(), loss_fn, start_lr=1e-4, end_lr=1.0, num_steps=20)
    assert result.ratios == (1.0, 10.0)
    assert all(head == pytest.approx(10 * trunk) for trunk, head in seen)
    assert [trunk for trunk, _ in seen] == pytest.approx(result.lrs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [{k: v for k, v in g.items() if k != "params"} for g in built.optimizer.param_groups] == groups_before
    assert built.optimizer.state_dict()["state"] == {}  # no momentum buffer left behind
    assert built.scheduler.last_epoch == 0


def test_smoothing_is_fastais_bias_corrected_average():
    losses = [4.0, 2.0, 3.0]
    beta = 0.98
    a1 = (1 - beta) * 4.0
    a2 = beta * a1 + (1 - beta) * 2.0
    a3 = beta * a2 + (1 - beta) * 3.0
    expected = [a1 / (1 - beta), a2 / (1 - beta**2), a3 / (1 - beta**3)]
    assert smooth(losses) == pytest.approx(expected)
    assert running_median([5.0, 1.0, 9.0, 2.0, 7.0, 100.0], span=0.0) == [5.0, 3.5, 5.0, 7.0, 8.0, 7.0]


def test_analyse_reads_the_bounds_off_a_known_curve():
    lrs = [10 ** (k / 10 - 4) for k in range(60)]
    # falling between 1e-3 and 1e-2 (steepest near 3e-3), lowest near 1e-1, then up
    losses = [2.0 - math.tanh((math.log10(lr) + 2.5) * 3) + 0.2 * (math.log10(lr) + 1) ** 2 for lr in lrs]
    result = analyse(lrs, losses, (1.0,))
    assert result.max_lr == pytest.approx(0.1, rel=0.3)
    assert result.min_lr == pytest.approx(10**-2.5, rel=0.3)


def test_recipe_snippets_build_and_carry_the_bounds():
    result = optiplug.find_lr(SGD, NoisyQuadratic(4.0), noise(), identity, start_lr=1e-4, end_lr=1e3)
    import yaml

    for kind in RECIPES:
        snippet = yaml.safe_load(result.recipe(kind))
        config = {
            "optimizer": {"name": "SGD", "lr": result.max_lr},
            **snippet,
            "run": {"num_epochs": 8, "steps_per_epoch": 10},
        }
        built = optiplug.build(config, NoisyQuadratic(4.0))
        from optiplug.tooling.curves import compute_curves

        lr = compute_curves(built).values["lr"][0]
        assert float(lr.max()) == pytest.approx(result.max_lr, rel=1e-2), kind
        if kind != "one_cycle":
            assert float(lr[0]) == pytest.approx(result.min_lr, rel=1e-2), kind


def test_a_figure_with_the_bounds(tmp_path):
    from optiplug.tooling.find_lr import save_figure

    result = optiplug.find_lr(SGD, NoisyQuadratic(4.0), noise(), identity, start_lr=1e-4, end_lr=1e3)
    figure = result.figure()
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert any(label.startswith("suggested max_lr") for label in labels)
    assert figure.axes[0].get_xscale() == "log"
    assert save_figure(result, tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, "0 < start_lr < end_lr"),
        ({"num_steps": 1}, "num_steps >= 2"),
        ({"mode": "cosine"}, "mode must be 'exp' or 'linear'"),
        ({"diverge": 1.0}, "diverge must be > 1"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs, message):
    with pytest.raises(optiplug.ConfigError, match=message):
        optiplug.find_lr(SGD, NoisyQuadratic(1.0), noise(), identity, **kwargs)


def test_no_batches_and_an_unknown_recipe_kind():
    with pytest.raises(optiplug.ConfigError, match="no batches"):
        optiplug.find_lr(SGD, NoisyQuadratic(1.0), [], identity)
    result = optiplug.find_lr(SGD, NoisyQuadratic(4.0), noise(), identity, start_lr=1e-4, end_lr=1e3)
    with pytest.raises(optiplug.ConfigError, match="unknown recipe kind 'cyclic'; known: triangular"):
        result.recipe("cyclic")


def test_a_config_error_in_the_config_names_its_path():
    with pytest.raises(optiplug.ConfigError, match="optimizer.name"):
        optiplug.find_lr({"optimizer": {"name": "sgdd", "lr": 0.1}}, NoisyQuadratic(1.0), noise(), identity)


def test_a_sweep_that_ends_with_the_loss_still_falling_says_so():
    lrs = [10 ** (k / 10 - 4) for k in range(40)]
    result = analyse(lrs, [10.0 - 0.2 * k for k in range(40)], (1.0,))
    assert not result.diverged and result.max_lr == lrs[-1]
    assert "with the loss still falling (raise end_lr for a bound)" in result.summary()
