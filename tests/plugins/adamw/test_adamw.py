"""AdamW (``adamwr``) against the update rule of the paper / adamwr written out here, in float64."""

from __future__ import annotations

import math

import pytest
import torch

import optiplug
from optiplug_adamw import AdamW


def reference(params, grads_per_step, *, lr, betas, eps, weight_decay, amsgrad, convention="paper"):
    """Loshchilov & Hutter's AdamW in adamwr's arithmetic: eps on sqrt(v), bias correction in the step size."""
    b1, b2 = betas
    params = [p.clone() for p in params]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    v_max = [torch.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            v_max[i] = torch.maximum(v_max[i], v[i])
            second = v_max[i] if amsgrad else v[i]
            step_size = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            decay = weight_decay if convention == "paper" else lr * weight_decay
            params[i] = params[i] * (1 - decay) - step_size * m[i] / (second.sqrt() + eps)
    return params


def random_problem(steps=15, dtype=torch.float64):
    torch.manual_seed(3)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    params = [torch.randn(s, dtype=dtype) for s in shapes]
    grads = [[torch.randn(s, dtype=dtype) for s in shapes] for _ in range(steps)]
    return params, grads


def run_ours(params, grads_per_step, **options):
    tensors = [torch.nn.Parameter(p.clone()) for p in params]
    optimizer = AdamW(tensors, **options)
    for grads in grads_per_step:
        for p, g in zip(tensors, grads, strict=True):
            p.grad = None if g is None else g.clone()
        optimizer.step()
    return [p.detach() for p in tensors], optimizer


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("convention", ["paper", "torch"])
def test_update_rule_matches_the_reference(amsgrad, foreach, convention):
    params, grads = random_problem()
    options = {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.02, "amsgrad": amsgrad}
    ours, _ = run_ours(params, grads, foreach=foreach, decay_convention=convention, **options)
    want = reference(params, grads, convention=convention, **options)
    for got, expected in zip(ours, want, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_foreach_equals_the_loop_bit_for_bit(amsgrad):
    params, grads = random_problem(dtype=torch.float32)
    options = {"lr": 1e-2, "weight_decay": 1e-3, "amsgrad": amsgrad}
    loop, _ = run_ours(params, grads, foreach=False, **options)
    multi, _ = run_ours(params, grads, foreach=True, **options)
    assert all(torch.equal(a, b) for a, b in zip(loop, multi, strict=True))


def test_paper_convention_decay_does_not_depend_on_lr():
    # lr 0.1, weight_decay 0.01, a zero gradient: 1.0 -> 0.99 in one step (adamwr's verified example)
    p = torch.nn.Parameter(torch.ones(3))
    optimizer = AdamW([p], lr=0.1, weight_decay=0.01)
    p.grad = torch.zeros(3)
    optimizer.step()
    assert p.detach().tolist() == pytest.approx([0.99] * 3)
    q = torch.nn.Parameter(torch.ones(3))
    torch_style = AdamW([q], lr=0.1, weight_decay=0.01, decay_convention="torch")
    q.grad = torch.zeros(3)
    torch_style.step()
    assert q.detach().tolist() == pytest.approx([0.999] * 3)


def test_torch_convention_agrees_with_torch_adamw_up_to_eps_placement():
    params, grads = random_problem()
    options = {"lr": 0.01, "betas": (0.9, 0.999), "weight_decay": 0.1}
    ours, _ = run_ours(params, grads, eps=0.0, decay_convention="torch", **options)
    tensors = [torch.nn.Parameter(p.clone()) for p in params]
    theirs = torch.optim.AdamW(tensors, eps=0.0, foreach=False, **options)
    for step_grads in grads:
        for p, g in zip(tensors, step_grads, strict=True):
            p.grad = g.clone()
        theirs.step()
    for got, expected in zip(ours, tensors, strict=True):
        torch.testing.assert_close(got, expected.detach(), rtol=1e-12, atol=1e-14)


def test_parameters_with_different_step_counts():
    params, grads = random_problem(steps=6)
    for step in grads[:3]:
        step[1] = None  # the second parameter has no gradient in the first three steps
    loop, loop_opt = run_ours(params, [[g for g in s] for s in grads], foreach=False, lr=0.01)
    multi, _ = run_ours(params, [[g for g in s] for s in grads], foreach=True, lr=0.01)
    assert [loop_opt.state[p]["step"] for p in loop_opt.param_groups[0]["params"]] == [6, 3, 6]
    assert all(torch.equal(a, b) for a, b in zip(loop, multi, strict=True))
    alone = reference(
        [params[1]], [[s[1]] for s in grads[3:]], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False
    )
    torch.testing.assert_close(loop[1], alone[0], rtol=1e-13, atol=1e-15)


def test_state_dict_resume_continues_identically():
    params, grads = random_problem(steps=10)
    whole, _ = run_ours(params, grads, lr=0.01, weight_decay=0.01, amsgrad=True)
    head, optimizer = run_ours(params, grads[:4], lr=0.01, weight_decay=0.01, amsgrad=True)
    tensors = [torch.nn.Parameter(p.clone()) for p in head]
    resumed = AdamW(tensors, lr=0.01, weight_decay=0.01, amsgrad=True)
    resumed.load_state_dict(optimizer.state_dict())
    for step in grads[4:]:
        for p, g in zip(tensors, step, strict=True):
            p.grad = g.clone()
        resumed.step()
    assert all(torch.equal(a.detach(), b) for a, b in zip(tensors, whole, strict=True))


def test_registered_as_adamwr_beside_torchs_adamw():
    registry = optiplug.get_registry()
    assert registry.optimizers.get("adamwr").factory is AdamW
    assert registry.optimizers.get("AdamWR").factory is AdamW
    assert registry.optimizers.get("adamw").factory.optimizer_class is torch.optim.AdamW


def test_built_from_a_config():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    config = {
        "optimizer": {"name": "adamwr", "lr": 1e-3, "weight_decay": 0.01, "betas": [0.9, 0.99], "foreach": True},
        "rules": [{"kind": "norm", "set": {"weight_decay": 0}}],
    }
    built = optiplug.build(config, model, steps_per_epoch=2, num_epochs=1)
    assert isinstance(built.optimizer, AdamW)
    assert sorted(g["weight_decay"] for g in built.optimizer.param_groups) == [0, 0.01]
    assert all(g["decay_convention"] == "paper" for g in built.optimizer.param_groups)
    built.step(model(torch.randn(5, 3)).pow(2).mean())
    assert all(s["step"] == 1 for s in built.optimizer.state.values())


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"decay_convention": "paperr"}, "did you mean 'paper'"),
        ({"betas": [0.9, 1.0]}, "betas"),
        ({"lr": -0.1}, "-0.1"),
        ({"weight_decay": -1}, "weight_decay"),
        ({"momentum": 0.9}, "momentum"),
    ],
)
def test_config_errors_name_the_option(options, words):
    config = {"optimizer": {"name": "adamwr", **options}}
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(config, torch.nn.Linear(2, 2))
    assert info.value.path.startswith("optimizer")
    assert words in str(info.value)


def test_direct_construction_errors_are_value_errors_naming_the_option():
    with pytest.raises(ValueError, match="eps: must be >= 0, got -1") as info:
        AdamW(torch.nn.Linear(2, 2).parameters(), eps=-1)
    assert isinstance(info.value, optiplug.ConfigError) and info.value.path == "eps"


def test_sparse_gradients_are_refused():
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        AdamW([p]).step()
