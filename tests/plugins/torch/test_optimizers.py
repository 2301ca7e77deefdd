"""optiplug_torch optimizers: torch.optim by name, with the fused CPU kernel by default where torch has one."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

import optiplug

FUSED_ON_CPU = ("SGD", "Adam", "AdamW", "Adagrad")


def build(model, **optimizer):
    return optiplug.build({"optimizer": {"lr": 0.1, **optimizer}}, model)


def kernels(optimizer):
    return [(group.get("foreach"), group.get("fused")) for group in optimizer.param_groups]


@pytest.mark.parametrize("name", FUSED_ON_CPU)
def test_fused_is_the_default_on_cpu(conv_bn_head, name):
    optimizer = build(conv_bn_head, name=name).optimizer
    assert type(optimizer) is getattr(torch.optim, name)
    assert kernels(optimizer) == [(None, True)]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"foreach": False}, (False, None)),
        ({"foreach": True}, (True, None)),
        ({"fused": False}, (None, False)),
        ({"foreach": None}, (None, None)),  # an explicit null asks for torch's own default
        ({"differentiable": True}, (None, None)),
    ],
)
def test_the_configs_own_choice_wins(conv_bn_head, options, expected):
    optimizer = build(conv_bn_head, name="AdamW", **options).optimizer
    assert kernels(optimizer) == [expected]


def test_other_optimizers_keep_torchs_default(conv_bn_head):
    assert kernels(build(conv_bn_head, name="RMSprop").optimizer) == [(None, None)]
    assert build(conv_bn_head, name="RMSprop").optimizer.defaults["foreach"] is None


@pytest.mark.parametrize(
    "params",
    [
        [nn.Parameter(torch.ones(2, dtype=torch.complex64))],
        [nn.Parameter(torch.ones(2, device="meta"))],
    ],
    ids=["complex", "not on the cpu"],
)
def test_tensors_the_fused_kernel_cannot_take_keep_torchs_default(params):
    assert kernels(build(params, name="Adam").optimizer) == [(None, None)]


def test_the_factory_has_the_classs_signature_and_names_it():
    factory = optiplug.get_registry().optimizers.get("adamw").factory
    assert inspect.signature(factory) == inspect.signature(torch.optim.AdamW)
    assert factory.optimizer_class is torch.optim.AdamW


def reference_adamw(p, grads, lr, betas, eps, weight_decay):
    """AdamW (Loshchilov & Hutter; torch's documented algorithm), one element at a time in float64."""
    values = p.double().tolist()
    m = [0.0] * len(values)
    v = [0.0] * len(values)
    b1, b2 = betas
    for t, g in enumerate(grads, start=1):
        for i, gi in enumerate(g.double().tolist()):
            values[i] *= 1 - lr * weight_decay
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            values[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return torch.tensor(values, dtype=torch.float64)


def test_default_adamw_follows_the_adamw_formula():
    torch.manual_seed(0)
    start = torch.randn(50)
    grads = [torch.randn(50) for _ in range(6)]
    p = nn.Parameter(start.clone())
    optimizer = build([("w", p)], name="AdamW", lr=0.01, weight_decay=0.1).optimizer
    assert kernels(optimizer) == [(None, True)]
    for g in grads:
        p.grad = g.clone()
        optimizer.step()
    expected = reference_adamw(start, grads, 0.01, (0.9, 0.999), 1e-8, 0.1)
    torch.testing.assert_close(p.detach().double(), expected, rtol=1e-5, atol=1e-6)


def test_default_sgd_follows_the_nesterov_formula():
    torch.manual_seed(0)
    start = torch.randn(50)
    grads = [torch.randn(50) for _ in range(6)]
    p = nn.Parameter(start.clone())
    optimizer = build([("w", p)], name="SGD", momentum=0.9, weight_decay=1e-2, nesterov=True).optimizer
    assert kernels(optimizer) == [(None, True)]
    value, buffer = start.double(), None
    for g in grads:
        p.grad = g.clone()
        optimizer.step()
        d = g.double() + 1e-2 * value
        buffer = d if buffer is None else 0.9 * buffer + d
        value = value - 0.1 * (d + 0.9 * buffer)
    torch.testing.assert_close(p.detach().double(), value, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled")  # torch's, from Adagrad
@pytest.mark.parametrize("name", ["SGD", "Adagrad"])
def test_sparse_gradients_switch_sgd_and_adagrad_to_the_loop(name):
    torch.manual_seed(0)
    ours, theirs = nn.Embedding(10, 3, sparse=True), nn.Embedding(10, 3, sparse=True)
    theirs.load_state_dict(ours.state_dict())
    optimizer = build(ours, name=name).optimizer
    reference = getattr(torch.optim, name)(theirs.parameters(), lr=0.1)
    assert kernels(optimizer) == [(None, True)]
    for rows in ([1, 2], [2, 5, 5]):
        for model, opt in ((ours, optimizer), (theirs, reference)):
            opt.zero_grad()
            model(torch.tensor(rows)).pow(2).sum().backward()
            opt.step()
    assert kernels(optimizer) == [(None, False)]
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=0)


def test_a_non_finite_step_under_grad_scaler_is_skipped_with_its_schedule(conv_bn_head, batch):
    recipe = {
        "optimizer": {"name": "AdamW", "lr": 0.1},
        "schedules": {"lr": {"name": "linear", "start_value": 0.1, "end_value": 0.0}},
    }
    built = optiplug.build(recipe, conv_bn_head, steps_per_epoch=10, num_epochs=1)
    assert kernels(built.optimizer) == [(None, True)]
    scaler = torch.amp.GradScaler("cpu")
    before = [p.detach().clone() for p in conv_bn_head.parameters()]
    assert not built.step(conv_bn_head(batch).sum() * math.inf, scaler=scaler)
    assert built.scheduler.last_epoch == 0
    assert all(torch.equal(a, b) for a, b in zip(before, conv_bn_head.parameters(), strict=True))
    assert built.step(conv_bn_head(batch).sum(), scaler=scaler)
    assert built.scheduler.last_epoch == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"foreach": "yes"}, r"optimizer\.foreach: expected true, false or null, got 'yes'"),
        ({"fused": 1}, r"optimizer\.fused: expected true, false or null, got 1"),
        ({"foreach": True, "fused": True}, r"optimizer\.fused: foreach and fused cannot both be true"),
    ],
)
def test_bad_kernel_choices_are_config_errors(conv_bn_head, options, message):
    with pytest.raises(optiplug.ConfigError, match=message):
        build(conv_bn_head, name="SGD", **options)
