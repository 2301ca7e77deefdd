"""optiplug_lamb's Lamb against a float64 reference written from the LAMB formula (timm / mmcls semantics)."""

from __future__ import annotations

import math

import pytest
import torch

import optiplug
from optiplug_lamb import Lamb

DEFAULTS = {
    "lr": 1e-3,
    "bias_correction": True,
    "betas": (0.9, 0.999),
    "eps": 1e-6,
    "weight_decay": 0.01,
    "grad_averaging": True,
    "max_grad_norm": 1.0,
    "trust_clip": False,
    "always_adapt": False,
}


def reference(groups, grads_per_step, max_grad_norm):
    """Per-tensor float64 LAMB. ``groups``: [(params, options)]; grads: per step, group, param (or None)."""
    params = [[p.detach().double().clone() for p in ps] for ps, _ in groups]
    m = [[torch.zeros_like(p) for p in ps] for ps in params]
    v = [[torch.zeros_like(p) for p in ps] for ps in params]
    steps = [0 for _ in groups]
    for grads in grads_per_step:
        present = [g.double() for gs in grads for g in gs if g is not None]
        total = math.sqrt(sum(float((g * g).sum()) for g in present))
        clip = total / max_grad_norm if max_grad_norm is not None and total > max_grad_norm else 1.0
        for k, (_, opt) in enumerate(groups):
            steps[k] += 1
            t = steps[k]
            b1, b2 = opt["betas"]
            b3 = 1 - b1 if opt["grad_averaging"] else 1.0
            bc1, bc2 = (1 - b1**t, 1 - b2**t) if opt["bias_correction"] else (1.0, 1.0)
            for i, g in enumerate(grads[k]):
                if g is None:
                    continue
                g = g.double() / clip
                p = params[k][i]
                m[k][i] = b1 * m[k][i] + b3 * g
                v[k][i] = b2 * v[k][i] + (1 - b2) * g * g
                u = (m[k][i] / bc1) / (v[k][i].sqrt() / math.sqrt(bc2) + opt["eps"])
                wd = opt["weight_decay"]
                if wd != 0:
                    u = u + wd * p
                if wd != 0 or opt["always_adapt"]:
                    wn, un = float(p.norm()), float(u.norm())
                    r = wn / un if wn > 0 and un > 0 else 1.0
                    if opt["trust_clip"]:
                        r = min(r, 1.0)
                    u = r * u
                params[k][i] = p - opt["lr"] * u
    return params


def make_problem(dtype, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    shapes = [[(4, 3), (4,), (3,)], [(2, 5), (5,)]]
    params = [[torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in group] for group in shapes]
    params[0][2].zero_()  # ||p|| = 0: trust ratio 1
    grads = []
    for step in range(5):
        per = [[scale * torch.randn(s, generator=gen, dtype=torch.float64) for s in group] for group in shapes]
        per[1][0].zero_()  # a zero update where there is no decay: trust ratio 1
        if step == 2:
            per[1][1] = None  # a parameter without a gradient this step
        grads.append(per)
    return params, grads


def run(params, grads, constructor, group_options, dtype):
    tensors = [[torch.nn.Parameter(p.clone()) for p in ps] for ps in params]
    opt = Lamb([{"params": ps, **o} for ps, o in zip(tensors, group_options, strict=True)], **constructor)
    for per in grads:
        for ps, gs in zip(tensors, per, strict=True):
            for p, g in zip(ps, gs, strict=True):
                p.grad = None if g is None else g.to(dtype)
        opt.step()
    return tensors, opt


CASES = {
    "defaults": ({}, [{}, {"lr": 5e-3, "weight_decay": 0.0}], 1.0),
    "no_decay_always_adapt": ({"weight_decay": 0.0, "always_adapt": True}, [{}, {"lr": 0.02}], 1.0),
    "trust_clip": ({"trust_clip": True, "lr": 0.05, "weight_decay": 0.1}, [{}, {"trust_clip": False}], 1.0),
    "clipping_off": ({"max_grad_norm": None, "weight_decay": 0.05}, [{}, {"betas": (0.8, 0.95)}], 1.0),
    "no_bias_correction_no_averaging": (
        {"bias_correction": False, "grad_averaging": False, "eps": 1e-4},
        [{"weight_decay": 0.3}, {"always_adapt": True, "weight_decay": 0.0}],
        1.0,
    ),
    "small_grads_unclipped": ({"max_grad_norm": 1.0}, [{}, {"weight_decay": 0.2}], 1e-3),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_the_float64_reference(case, dtype):
    constructor, overrides, scale = CASES[case]
    params, grads = make_problem(dtype, scale=scale)
    options = [{**DEFAULTS, **constructor, **o} for o in overrides]
    expected = reference(list(zip(params, options, strict=True)), grads, options[0]["max_grad_norm"])
    got, opt = run(params, grads, constructor, overrides, dtype)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    for gp, ep in zip((p for ps in got for p in ps), (p for ps in expected for p in ps), strict=True):
        torch.testing.assert_close(gp.detach().double(), ep, **tol)
    assert [g["step"] for g in opt.param_groups] == [5, 5]


def test_the_global_clipping_and_the_trust_clip_change_the_numbers():
    """The reference's branches are exercised: grads above max_grad_norm, trust ratios above 1."""
    params, grads = make_problem(torch.float64)
    total = math.sqrt(sum(float((g * g).sum()) for g in grads[0][0] + grads[0][1]))
    assert total > 1.0
    base = {"lr": 0.05, "weight_decay": 0.1}
    clipped, _ = run(params, grads, base, [{}, {}], torch.float64)
    unclipped, _ = run(params, grads, {**base, "max_grad_norm": None}, [{}, {}], torch.float64)
    trust, _ = run(params, grads, {**base, "trust_clip": True}, [{}, {}], torch.float64)
    assert not torch.allclose(clipped[0][0], unclipped[0][0])
    assert not torch.allclose(clipped[0][0], trust[0][0])


def test_gradients_are_left_unchanged():
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 10.0)
    Lamb([p]).step()
    assert torch.equal(p.grad, torch.full((3,), 10.0))


def test_registered_case_insensitively():
    registry = optiplug.get_registry()
    assert registry.optimizers.get("Lamb").factory is Lamb
    assert registry.optimizers.get("lamb").factory is Lamb
    assert registry.optimizers.get("LAMB").factory is Lamb


def test_built_from_a_canonical_recipe_with_groups():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    config = {
        "optimizer": {"name": "Lamb", "lr": 2e-3, "weight_decay": 0.05, "betas": [0.9, 0.99], "trust_clip": True},
        "rules": [{"kind": "norm", "set": {"weight_decay": 0}}],
    }
    built = optiplug.build(config, model, steps_per_epoch=2, num_epochs=1)
    assert isinstance(built.optimizer, Lamb)
    assert sorted(g["weight_decay"] for g in built.optimizer.param_groups) == [0, 0.05]
    assert all(g["betas"] == (0.9, 0.99) and g["trust_clip"] for g in built.optimizer.param_groups)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x = torch.randn(5, 3)
    names = [n for n, _ in model.named_parameters()]
    grads = dict(zip(names, torch.autograd.grad(model(x).pow(2).mean(), list(model.parameters())), strict=True))
    built.step(model(x).pow(2).mean())
    groups = []
    for group in built.optimizer.param_groups:
        names = [n for n, p in model.named_parameters() if any(p is q for q in group["params"])]
        options = {k: group[k] for k in DEFAULTS}
        groups.append((names, options))
    all_grads = [[grads[n] for n in names] for names, _ in groups]
    expected = reference(
        [([before[n] for n in names], opts) for names, opts in groups],
        [all_grads],
        built.optimizer.defaults["max_grad_norm"],
    )
    params = dict(model.named_parameters())
    for (names, _), values in zip(groups, expected, strict=True):
        for n, e in zip(names, values, strict=True):
            torch.testing.assert_close(params[n].detach().double(), e, rtol=1e-5, atol=1e-6)


def test_built_from_an_mmcv_py_config(tmp_path):
    path = tmp_path / "lamb_config.py"
    path.write_text(
        "optimizer = dict(type='Lamb', lr=0.005, weight_decay=0.02, max_grad_norm=0.5)\n"
        "optimizer_config = dict(grad_clip=None)\n"
    )
    torch.manual_seed(1)
    model = torch.nn.Linear(3, 2)
    built = optiplug.build(str(path), model)
    assert isinstance(built.optimizer, Lamb)
    group = built.optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["eps"]) == (0.005, 0.02, 1e-6)
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(6, 3)
    grads = list(torch.autograd.grad(model(x).pow(2).sum(), list(model.parameters())))
    assert math.sqrt(sum(float(g.pow(2).sum()) for g in grads)) > 0.5  # the clipping applies
    built.step(model(x).pow(2).sum())
    options = {**DEFAULTS, "lr": 0.005, "weight_decay": 0.02, "max_grad_norm": 0.5}
    expected = reference([(before, options)], [[grads]], 0.5)[0]
    for p, e in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.detach().double(), e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "path", "words"),
    [
        ({"betas": [0.9, 1.0]}, "optimizer.betas", "each in [0, 1)"),
        ({"betas": [0.9]}, "optimizer.betas", "2 numbers"),
        ({"lr": -0.1}, "optimizer.lr", "-0.1"),
        ({"eps": -1}, "optimizer.eps", ">= 0"),
        ({"weight_decay": -1}, "optimizer.weight_decay", ">= 0"),
        ({"max_grad_norm": 0}, "optimizer.max_grad_norm", "> 0"),
        ({"trust_clip": "yes"}, "optimizer.trust_clip", "true or false"),
        ({"momentum": 0.9}, "optimizer.momentum", "momentum"),
    ],
)
def test_config_errors_name_the_option(options, path, words):
    config = {"optimizer": {"name": "Lamb", **options}}
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(config, torch.nn.Linear(2, 2))
    assert info.value.path == path
    assert words in str(info.value)


def test_mmcv_config_error_names_optimizer_betas(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("optimizer = dict(type='Lamb', lr=0.005, betas=(0.9, 1.5))\n")
    with pytest.raises(optiplug.ConfigError, match=r"optimizer\.betas: must be two numbers") as info:
        optiplug.build(str(path), torch.nn.Linear(2, 2))
    assert info.value.path == "optimizer.betas"


def test_a_rule_setting_a_bad_group_option_is_refused():
    model = torch.nn.Linear(2, 2)
    config = {"optimizer": {"name": "Lamb"}, "rules": [{"kind": "bias", "set": {"betas": [0.9, 2.0]}}]}
    with pytest.raises(optiplug.ConfigError, match="betas"):
        optiplug.build(config, model)


def test_sparse_gradients_are_refused():
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        Lamb([p]).step()
