"""MMSelfSup's LARS (spec mmcv.md 2.2) and VISSL's lars (spec vissl.md 4.3) against per-tensor references."""

from __future__ import annotations

import copy

import pytest
import torch

from optiplug import ConfigError
from optiplug_larc.lars import LARS
from optiplug_larc.vissl_lars import VisslLARS


def mmselfsup_reference_step(groups: list[dict], state: dict, eps: float) -> None:
    """MMSelfSup LARS.step, tensor by tensor, with Python-float norms (as its code does)."""
    with torch.no_grad():
        for group in groups:
            lr, weight_decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                local = 1.0
                if not group.get("lars_exclude", False):
                    weight, grad = torch.norm(p).item(), torch.norm(p.grad).item()
                    if weight != 0 and grad != 0:
                        local = group["eta"] * weight / (grad + weight_decay * weight + eps)
                step = p.grad.add(p, alpha=weight_decay).mul(local * lr)
                if momentum != 0:
                    if p not in state:
                        buffer = state[p] = step.clone()
                    else:
                        buffer = state[p].mul_(momentum).add_(step, alpha=1 - group["dampening"])
                    step = step.add(buffer, alpha=momentum) if group["nesterov"] else buffer
                p.add_(-step)


def vissl_reference_step(groups: list[dict], state: dict) -> None:
    """VISSL / Barlow Twins LARS.step, tensor by tensor."""
    with torch.no_grad():
        for group in groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad.add(p, alpha=group["weight_decay"])
                if not (group["exclude_bias_and_norm"] and p.ndim == 1):
                    param_norm, update_norm = torch.norm(p), torch.norm(update)
                    one = torch.ones_like(param_norm)
                    ratio = torch.where(
                        param_norm > 0, torch.where(update_norm > 0, group["eta"] * param_norm / update_norm, one), one
                    )
                    update = update.mul(ratio)
                mu = state.setdefault(p, torch.zeros_like(p))
                mu.mul_(group["momentum"]).add_(update)
                p.add_(mu, alpha=-group["lr"])


def mmselfsup_groups(params: list[torch.nn.Parameter]) -> list[dict]:
    return [
        {"params": params[:3] + params[7:]},
        {"params": params[3:5], "weight_decay": 0.0, "lars_exclude": True},
        {"params": params[5:7], "weight_decay": 0.05, "lars_exclude": True},  # excluded but still decayed
    ]


def fill(groups: list[dict], defaults: dict) -> list[dict]:
    return [defaults | group for group in groups]


LRS = [0.5, 0.2, 0.3, 0.1]  # lr changes between steps: lr sits inside the momentum buffer


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "options",
    [
        {"momentum": 0.9, "dampening": 0.1, "nesterov": False},
        {"momentum": 0.9, "dampening": 0.0, "nesterov": True},
        {"momentum": 0.0, "dampening": 0.0, "nesterov": False},
    ],
)
def test_mmselfsup_lars_matches_reference(case, dtype, options):
    defaults = {"lr": LRS[0], "weight_decay": 1e-2, "eta": 0.02, **options}
    ours_params, ref_params = case.make(dtype), case.make(dtype)
    ours = LARS(mmselfsup_groups(ours_params), eps=1e-6, **defaults)
    ref_groups, ref_state = fill(mmselfsup_groups(ref_params), defaults), {}
    for step, lr in enumerate(LRS):
        for group in [*ours.param_groups, *ref_groups]:
            group["lr"] = lr
        case.set_grads(ours_params, step)
        case.set_grads(ref_params, step)
        ours.step()
        mmselfsup_reference_step(ref_groups, ref_state, eps=1e-6)
    case.assert_equal(ours_params, ref_params, dtype)
    assert not torch.equal(ours_params[case.zero_init], torch.zeros_like(ours_params[case.zero_init]))
    if options["momentum"]:
        buffers = [ours.state[p]["momentum_buffer"] for p in ours_params]
        case.assert_equal(buffers, [ref_state[p] for p in ref_params], dtype)


@pytest.mark.parametrize("exclude", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_vissl_lars_matches_reference(case, dtype, exclude):
    defaults = {"lr": 0.2, "momentum": 0.9, "eta": 0.001, "exclude_bias_and_norm": exclude}
    ours_params, ref_params = case.make(dtype), case.make(dtype)

    def groups(params):
        return [{"params": params[:6], "weight_decay": 1e-2}, {"params": params[6:], "weight_decay": 0.0}]

    ours = VisslLARS(groups(ours_params), **defaults)
    ref_groups, ref_state = fill(groups(ref_params), defaults), {}
    for step in range(4):
        case.set_grads(ours_params, step)
        case.set_grads(ref_params, step)
        ours.step()
        vissl_reference_step(ref_groups, ref_state)
    case.assert_equal(ours_params, ref_params, dtype)
    case.assert_equal([ours.state[p]["mu"] for p in ours_params], [ref_state[p] for p in ref_params], dtype)


def test_vissl_lars_decays_a_zero_weight_and_mmselfsup_adds_decay_for_excluded():
    p = torch.nn.Parameter(torch.zeros(3))
    vissl = VisslLARS([p], lr=1.0, momentum=0.0, weight_decay=0.5)
    p.grad = torch.ones(3)
    vissl.step()  # ‖p‖ = 0: ratio 1, update = g + 0.5 * 0
    torch.testing.assert_close(p.detach(), torch.full((3,), -1.0))
    vissl.step()  # now ‖p‖ > 0: the ratio applies to g + 0.5 p
    update = torch.full((3,), 0.5)
    expected = -1.0 - 0.001 * 3**0.5 / update.norm() * 0.5
    torch.testing.assert_close(p.detach(), torch.full((3,), float(expected)))

    q = torch.nn.Parameter(torch.ones(2))
    lars = LARS([{"params": [q], "lars_exclude": True}], lr=0.1, weight_decay=0.5)
    q.grad = torch.ones(2)
    lars.step()
    torch.testing.assert_close(q.detach(), torch.full((2,), 1 - 0.1 * 1.5))


@pytest.mark.parametrize("optimizer", [LARS, VisslLARS])
def test_zero_norms_never_give_nan(optimizer):
    params = [torch.nn.Parameter(torch.zeros(4)) for _ in range(3)] + [torch.nn.Parameter(torch.zeros(60, 80))]
    opt = optimizer(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
    for _ in range(2):
        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()
    assert all(torch.equal(p, torch.zeros_like(p)) for p in params)


def test_lars_state_dict_round_trip_continues_identically(case):
    first, second = case.make(torch.float32), case.make(torch.float32)
    a = LARS(first, lr=0.1, momentum=0.9, weight_decay=1e-4, eps=1e-5)
    case.set_grads(first, 0)
    a.step()
    b = LARS(second, lr=0.1, momentum=0.9, weight_decay=1e-4, eps=1e-5)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    with torch.no_grad():
        for p, q in zip(first, second, strict=True):
            q.copy_(p)
    for opt, params in ((a, first), (b, second)):
        case.set_grads(params, 1)
        opt.step()
    case.assert_equal(first, second, torch.float32)


def test_lars_pickles_with_its_eps():
    import pickle

    p = torch.nn.Parameter(torch.ones(2))
    clone = pickle.loads(pickle.dumps(LARS([p], lr=0.1, eps=1e-3)))
    assert clone.eps == 1e-3
    clone.param_groups[0]["params"][0].grad = torch.ones(2)
    clone.step()


@pytest.mark.parametrize(
    ("kwargs", "path", "bad"),
    [
        ({"lr": -0.1}, "lr", "-0.1"),
        ({"lr": 0.1, "eta": -1e-3}, "eta", "-0.001"),
        ({"lr": 0.1, "momentum": -0.9}, "momentum", "-0.9"),
        ({"lr": 0.1, "weight_decay": -1.0}, "weight_decay", "-1.0"),
        ({"lr": 0.1, "eps": -1.0}, "eps", "-1.0"),
        ({"lr": 0.1, "nesterov": True}, "nesterov", "momentum=0.0"),
        ({"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "nesterov", "dampening=0.1"),
    ],
)
def test_mmselfsup_lars_refuses_bad_options(kwargs, path, bad):
    with pytest.raises(ConfigError) as info:
        LARS([torch.nn.Parameter(torch.ones(1))], **kwargs)
    assert info.value.path == path
    assert bad in str(info.value)


def test_bad_group_options_name_the_group():
    params = [torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))]
    with pytest.raises(ConfigError) as info:
        LARS([{"params": params[:1]}, {"params": params[1:], "eta": -2.0}], lr=0.1)
    assert info.value.path == "param_groups[1].eta"
    with pytest.raises(ConfigError) as info:
        VisslLARS([{"params": params, "exclude_bias_and_norm": "yes"}])
    assert info.value.path == "param_groups[0].exclude_bias_and_norm"
