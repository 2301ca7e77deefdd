"""ClassyVision / VISSL optimizers by name: ``rmsprop_tf`` against its update written out here,
``adamw_mt`` as torch's multi-tensor AdamW, ``sgd_fsdp`` as SGD + LARC with distributed norms."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import optiplug
from optiplug_vissl.rmsprop_tf import RMSpropTF


def rmsprop_tf_reference(p0, grads, *, lr, alpha, eps, weight_decay=0.0, momentum=0.0, centered=False):
    """TensorFlow-style RMSProp in float64, element by element (ClassyVision's RMSpropTFOptimizer update)."""
    p = p0.double().clone()
    v, m, b = torch.zeros_like(p), torch.zeros_like(p), torch.zeros_like(p)
    for g in grads:
        g = g.double() + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            m = alpha * m + (1 - alpha) * g
            d = torch.sqrt(v - m * m + eps)
        else:
            d = torch.sqrt(v + eps)
        if momentum > 0:
            b = momentum * b + g / d
            p = p - lr * b
        else:
            p = p - lr * g / d
    return p


OPTIONS = [
    {"lr": 0.1, "alpha": 0.9, "eps": 1e-3},
    {"lr": 0.05, "alpha": 0.99, "eps": 1e-8, "momentum": 0.9},
    {"lr": 0.05, "alpha": 0.9, "eps": 1e-3, "momentum": 0.9, "centered": True, "weight_decay": 1e-2},
    {"lr": 0.01, "alpha": 0.95, "eps": 1e-6, "centered": True},
]


@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "momentum", "centered-momentum-decay", "centered"])
def test_rmsprop_tf_matches_the_written_out_update(options):
    torch.manual_seed(0)
    starts = [torch.randn(5, 3), torch.randn(7), torch.randn(2, 2, dtype=torch.float64)]
    grads = [[torch.randn_like(s) for s in starts] for _ in range(6)]
    params = [nn.Parameter(s.clone()) for s in starts]
    optimizer = RMSpropTF(params, **options)
    for step in grads:
        for p, g in zip(params, step, strict=True):
            p.grad = g.clone()
        optimizer.step()
    for i, p in enumerate(params):
        expected = rmsprop_tf_reference(starts[i], [step[i] for step in grads], **options)
        torch.testing.assert_close(p.detach().double(), expected, rtol=2e-6, atol=2e-6)


def test_rmsprop_tf_puts_eps_under_the_square_root():
    """One step by hand: p = 1 - 0.1 * 0.5 / sqrt(0.1 * 0.25 + 1e-3) (torch's RMSprop adds eps after the root)."""
    p = nn.Parameter(torch.tensor([1.0]))
    p.grad = torch.tensor([0.5])
    RMSpropTF([p], lr=0.1, alpha=0.9, eps=1e-3).step()
    assert p.item() == pytest.approx(1 - 0.1 * 0.5 / math.sqrt(0.1 * 0.25 + 1e-3), rel=1e-6)
    q = nn.Parameter(torch.tensor([1.0]))
    q.grad = torch.tensor([0.5])
    torch.optim.RMSprop([q], lr=0.1, alpha=0.9, eps=1e-3).step()
    assert q.item() == pytest.approx(1 - 0.1 * 0.5 / (math.sqrt(0.1 * 0.25) + 1e-3), rel=1e-6)
    assert abs(p.item() - q.item()) > 1e-4


def test_rmsprop_tf_momentum_may_start_later():
    """A momentum scheduled up from 0 gets its buffer when it first is > 0 (ClassyVision would raise KeyError)."""
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = RMSpropTF([p], lr=0.1, momentum=0.0)
    p.grad = torch.tensor([0.1, 0.2])
    optimizer.step()
    optimizer.param_groups[0]["momentum"] = 0.9
    optimizer.step()
    assert "momentum_buffer" in optimizer.state[p]


def test_rmsprop_tf_from_a_vissl_config(per_update):
    """VISSL's defaults (momentum 0.9, weight_decay 1e-4) and ClassyVision's (alpha 0.99, eps 1e-8)."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    config = {
        "OPTIMIZER": {
            "name": "rmsprop_tf",
            "eps": 1e-3,
            "num_epochs": 2,
            "param_schedulers": {"lr": {"name": "constant", "value": 0.02}},
        }
    }
    built = optiplug.build(config, model, steps_per_epoch=2)
    assert type(built.optimizer) is RMSpropTF
    group = built.optimizer.param_groups[0]
    assert {k: group[k] for k in ("alpha", "eps", "momentum", "centered")} == {
        "alpha": 0.99,
        "eps": 1e-3,
        "momentum": 0.9,
        "centered": False,
    }
    x = torch.randn(4, 3)
    grads: dict[str, list[torch.Tensor]] = {n: [] for n in start}
    for _ in range(4):
        loss = model(x).square().mean()
        for (n, _), g in zip(
            model.named_parameters(), torch.autograd.grad(loss, list(model.parameters())), strict=True
        ):
            grads[n].append(g)
            dict(model.named_parameters())[n].grad = g
        built.optimizer.step()
        built.optimizer.zero_grad()
    for n, p in model.named_parameters():
        # each step's gradient is taken at the parameters then current, so the reference replays those gradients
        expected = rmsprop_tf_reference(
            start[n], grads[n], lr=0.02, alpha=0.99, eps=1e-3, momentum=0.9, weight_decay=1e-4
        )
        torch.testing.assert_close(p.detach().double(), expected, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"eps": 0.0}, "eps: must be a finite number > 0"),
        ({"alpha": 1.0}, "alpha: must be in [0, 1)"),
        ({"momentum": -0.1}, "momentum: must be in [0, 1)"),
        ({"lr": -1.0}, "lr: must be finite and >= 0"),
        ({"centered": 1}, "centered: expected true or false"),
    ],
)
def test_rmsprop_tf_option_errors(options, words):
    with pytest.raises(optiplug.ConfigError, match=words.replace("[", r"\[").replace(")", r"\)")):
        RMSpropTF([nn.Parameter(torch.zeros(1))], **options)


def test_rmsprop_tf_in_a_canonical_recipe_names_the_group():
    recipe = {"optimizer": {"name": "rmsprop_tf", "lr": 0.1}, "rules": [{"kind": "bias", "set": {"alpha": 2.0}}]}
    with pytest.raises(optiplug.ConfigError, match=r"param_groups\[1\]\.alpha: must be in \[0, 1\)"):
        optiplug.build(recipe, nn.Linear(2, 2))


def test_vissl_rmsprop_tf_eps_error():
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build({"OPTIMIZER": {"name": "rmsprop_tf", "eps": -1}}, nn.Linear(2, 2), steps_per_epoch=2)
    assert info.value.path == "OPTIMIZER.eps"


# -- adamw_mt, sgd_fsdp ---------------------------------------------------------------------------------------------


def test_adamw_mt_is_torchs_multi_tensor_adamw():
    torch.manual_seed(0)
    model, twin = nn.Linear(4, 3), nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    config = {"name": "adamw_mt", "num_epochs": 2, "param_schedulers": {"lr": {"name": "constant", "value": 0.01}}}
    built = optiplug.build({"OPTIMIZER": config}, model, steps_per_epoch=2)
    assert type(built.optimizer) is torch.optim.AdamW
    assert all(group["foreach"] is True for group in built.optimizer.param_groups)
    single = torch.optim.AdamW(twin.parameters(), lr=0.01, weight_decay=1e-4, foreach=False)
    assert [g["weight_decay"] for g in built.optimizer.param_groups] == [1e-4]  # VISSL decays Linear biases
    x = torch.randn(5, 4)
    for _ in range(3):
        built.step(model(x).square().mean())
        twin(x).square().mean().backward()
        single.step()
        single.zero_grad()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_adamw_mt_does_not_take_foreach_from_the_block():
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build({"OPTIMIZER": {"name": "adamw_mt", "foreach": False}}, nn.Linear(2, 2), steps_per_epoch=2)
    assert info.value.path == "OPTIMIZER.foreach"


def apex_larc_sgd_step(p, g, *, lr, momentum, weight_decay, trust, eps):
    """Spec 4.1, scale mode (clip false), first step: d = a (g + wd p), a = trust |p| / (|g| + wd |p| + eps)."""
    a = trust * p.norm() / (g.norm() + weight_decay * p.norm() + eps)
    return p - lr * a * (g + weight_decay * p)  # the momentum buffer starts as d


@pytest.mark.parametrize("use_larc", [True, False])
def test_sgd_fsdp_is_sgd_with_larc_over_distributed_norms(use_larc):
    """VISSL's SGD_FSDP: LARC_FSDP(distributed_norm=True) only with use_larc; one process: local norms."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3, bias=False)
    start = model.weight.detach().clone()
    config = {
        "name": "sgd_fsdp",
        "use_larc": use_larc,
        "larc_config": {"clip": False, "trust_coefficient": 0.01},
        "num_epochs": 2,
        "param_schedulers": {"lr": {"name": "constant", "value": 0.5}},
    }
    built = optiplug.build({"OPTIMIZER": config}, model, steps_per_epoch=2)
    wrappers = [(w.name, w.params.distributed_norm) for w in built.recipe.wrappers]
    assert wrappers == ([("larc", True)] if use_larc else [])
    x = torch.randn(5, 4)
    loss = model(x).square().mean()
    (grad,) = torch.autograd.grad(loss, [model.weight])
    model.weight.grad = grad.clone()  # LARC rescales the gradient in place
    built.optimizer.step()
    if use_larc:
        expected = apex_larc_sgd_step(start, grad, lr=0.5, momentum=0.9, weight_decay=1e-4, trust=0.01, eps=1e-8)
    else:
        expected = start - 0.5 * (grad + 1e-4 * start)
    torch.testing.assert_close(model.weight.detach(), expected, rtol=1e-6, atol=1e-7)


def test_rmsprop_tf_state_dict_round_trip():
    """Two groups, momentum and centered state: a resumed optimizer continues exactly."""
    torch.manual_seed(0)
    model, twin = nn.Linear(3, 2), nn.Linear(3, 2)
    recipe = {
        "optimizer": {"name": "rmsprop_tf", "lr": 0.01, "momentum": 0.9, "centered": True},
        "rules": [{"kind": "bias", "set": {"weight_decay": 0.0, "lr_mult": 2}}],
    }
    built = optiplug.build(recipe, model)
    x = torch.randn(4, 3)
    for _ in range(2):
        built.step(model(x).square().mean())
    twin.load_state_dict(model.state_dict())
    resumed = optiplug.build(recipe, twin)
    resumed.load_state_dict(copy.deepcopy(built.state_dict()))  # as a checkpoint file would: no shared tensors
    for _ in range(2):
        built.step(model(x).square().mean())
        resumed.step(twin(x).square().mean())
    assert len(built.optimizer.param_groups) == 2
    assert set(built.optimizer.state[model.weight]) == {"square_avg", "grad_avg", "momentum_buffer"}
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)
