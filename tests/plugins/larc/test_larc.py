"""LARC against a plain per-tensor implementation of apex's rules (spec vissl.md 4.1)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from optiplug_larc.larc import LARC


def reference_step(optimizer: torch.optim.Optimizer, trust: float, clip: bool, eps: float) -> None:
    """apex LARC.step written tensor by tensor from the spec (Python branches, host syncs and all)."""
    decays = []
    with torch.no_grad():
        for group in optimizer.param_groups:
            weight_decay = group.get("weight_decay", 0)
            decays.append(weight_decay)
            for p in group["params"]:
                if p.grad is None:
                    continue
                param_norm, grad_norm = torch.norm(p), torch.norm(p.grad)
                if param_norm != 0 and grad_norm != 0:
                    rate = trust * param_norm / (grad_norm + param_norm * weight_decay + eps)
                    if clip:
                        rate = min(rate / group["lr"], 1)
                    p.grad += weight_decay * p
                    p.grad *= rate
            group["weight_decay"] = 0
    optimizer.step()
    for group, weight_decay in zip(optimizer.param_groups, decays, strict=True):
        group["weight_decay"] = weight_decay


def two_groups(params: list[torch.nn.Parameter], **options: float) -> list[dict]:
    return [
        {"params": params[:5], "weight_decay": 1e-2},
        {"params": params[5:], "weight_decay": 0.0, "lr": 0.05},
    ]


def run_pair(case, make_inner, *, clip: bool, trust: float, eps: float = 1e-8, steps: int = 4, dtype=torch.float64):
    ours_params, ref_params = case.make(dtype), case.make(dtype)
    ours = LARC(make_inner(two_groups(ours_params)), trust_coefficient=trust, clip=clip, eps=eps)
    ref = make_inner(two_groups(ref_params))
    for step in range(steps):
        case.set_grads(ours_params, step)
        case.set_grads(ref_params, step)
        ours.step()
        reference_step(ref, trust, clip, eps)
    return ours_params, ref_params, ours


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("nesterov", [True, False])
def test_larc_sgd_matches_per_tensor_reference(case, dtype, clip, nesterov):
    def sgd(groups):
        return torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=nesterov)

    # trust 0.02 with clip: some tensors are clipped at lr, some not (both branches of the min)
    ours, ref, _ = run_pair(case, sgd, clip=clip, trust=0.02 if clip else 0.001, dtype=dtype)
    case.assert_equal(ours, ref, dtype)
    assert not torch.equal(ours[case.zero_init], torch.zeros_like(ours[case.zero_init]))


def test_clip_mode_takes_both_sides_of_the_min(case):
    params = case.make(torch.float64)
    case.set_grads(params, 0)
    rates = []
    for p in params:
        if p.grad is not None and torch.norm(p) != 0:
            rates.append(float(0.02 * torch.norm(p.detach()) / (torch.norm(p.grad) + 1e-8) / 0.1))
    assert min(rates) < 1 < max(rates)


class PlainDescent(torch.optim.Optimizer):
    """p <- p - lr g, with no weight_decay option at all."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])


def test_larc_around_an_optimizer_without_weight_decay(case):
    def plain(groups):
        for group in groups:
            group.pop("weight_decay")
        return PlainDescent(groups, lr=0.1)

    ours, ref, larc = run_pair(case, plain, clip=False, trust=0.01)
    case.assert_equal(ours, ref, torch.float64)
    assert all("weight_decay" not in group for group in larc.param_groups)


def test_larc_around_adam(case):
    def adam(groups):
        return torch.optim.Adam(groups, lr=1e-2)

    ours, ref, larc = run_pair(case, adam, clip=True, trust=0.02)
    case.assert_equal(ours, ref, torch.float64)
    assert [g["weight_decay"] for g in larc.param_groups] == [1e-2, 0.0]


def test_zero_norm_parameter_gets_no_decay_and_no_scaling():
    p = torch.nn.Parameter(torch.zeros(5))
    q = torch.nn.Parameter(torch.ones(5))
    larc = LARC(torch.optim.SGD([p, q], lr=0.1, weight_decay=0.5), trust_coefficient=0.02, clip=False)
    p.grad = torch.full((5,), 2.0)
    q.grad = torch.zeros(5)
    larc.step()
    torch.testing.assert_close(p.detach(), torch.full((5,), -0.2))  # plain SGD step, no decay, no scaling
    torch.testing.assert_close(q.detach(), torch.ones(5))  # zero grad: no decay either
    assert larc.param_groups[0]["weight_decay"] == 0.5


def test_no_nan_from_zero_norms_in_any_mode():
    params = [torch.nn.Parameter(torch.zeros(4)) for _ in range(3)] + [torch.nn.Parameter(torch.zeros(50, 90))]
    for clip in (True, False):
        larc = LARC(torch.optim.SGD(params, lr=0.0, momentum=0.9, weight_decay=1e-4), clip=clip)
        for p in params:
            p.grad = torch.zeros_like(p)
        larc.step()
        assert all(torch.isfinite(p).all() for p in params)
        assert all(torch.isfinite(p.grad).all() for p in params)


def test_clip_with_zero_lr_leaves_the_ratio_at_one():
    p = torch.nn.Parameter(torch.ones(3))
    larc = LARC(torch.optim.SGD([p], lr=0.0), clip=True)
    p.grad = torch.ones(3)
    larc.step()
    torch.testing.assert_close(p.grad, torch.ones(3))


def test_step_hooks_fire_on_the_wrapper():
    p = torch.nn.Parameter(torch.ones(3))
    larc = LARC(torch.optim.SGD([p], lr=0.1))
    calls = []
    larc.register_step_pre_hook(lambda opt, args, kwargs: calls.append(("pre", opt)))
    larc.register_step_post_hook(lambda opt, args, kwargs: calls.append(("post", opt)))
    p.grad = torch.ones(3)
    larc.step()
    larc.step()
    assert calls == [("pre", larc), ("post", larc)] * 2


def test_torch_lr_scheduler_drives_the_inner_groups_without_warnings():
    p = torch.nn.Parameter(torch.ones(3))
    larc = LARC(torch.optim.SGD([p], lr=1.0), clip=False)
    scheduler = torch.optim.lr_scheduler.StepLR(larc, step_size=1, gamma=0.5)
    for _ in range(2):
        p.grad = torch.ones(3)
        larc.step()
        scheduler.step()
    assert larc.optimizer.param_groups[0]["lr"] == 0.25


def test_closure_is_evaluated_before_the_gradients_are_read():
    p = torch.nn.Parameter(torch.ones(3))
    larc = LARC(torch.optim.SGD([p], lr=0.1), trust_coefficient=0.5, clip=False)

    def closure():
        larc.zero_grad()
        loss = (p * 2).sum()
        loss.backward()
        return loss.detach()

    loss = larc.step(closure)
    assert loss.item() == 6.0
    rate = 0.5 * 3**0.5 / (2 * 3**0.5 + 1e-8)
    torch.testing.assert_close(p.detach(), torch.full((3,), 1 - 0.1 * 2 * rate))


def test_delegation_and_state_dict_round_trip(case):
    params = case.make(torch.float32)
    larc = LARC(torch.optim.SGD(two_groups(params), lr=0.1, momentum=0.9), trust_coefficient=0.001, clip=False)
    assert larc.param_groups is larc.optimizer.param_groups
    assert larc.state is larc.optimizer.state
    assert larc.defaults is larc.optimizer.defaults
    case.set_grads(params, 0)
    larc.step()
    saved = copy.deepcopy(larc.state_dict())
    assert saved.keys() == {"state", "param_groups"}

    others = case.make(torch.float32)
    plain = torch.optim.SGD(two_groups(others), lr=0.1, momentum=0.9)
    plain.load_state_dict(saved)  # a LARC state is a plain optimizer state
    restored = LARC(torch.optim.SGD(two_groups(case.make(torch.float32)), lr=0.1, momentum=0.9), 0.001, False)
    restored.load_state_dict(saved)
    assert restored.param_groups is restored.optimizer.param_groups
    for a, b in zip(restored.optimizer.param_groups, larc.optimizer.param_groups, strict=True):
        assert {k: v for k, v in a.items() if k != "params"} == {k: v for k, v in b.items() if k != "params"}
    first = restored.param_groups[0]["params"][0]
    torch.testing.assert_close(restored.state[first]["momentum_buffer"], larc.state[params[0]]["momentum_buffer"])


def test_zero_grad_and_add_param_group_are_delegated():
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    larc = LARC(torch.optim.SGD([p], lr=0.1))
    larc.add_param_group({"params": [q], "lr": 0.2})
    assert len(larc.optimizer.param_groups) == 2
    p.grad = torch.ones(2)
    larc.zero_grad()
    assert p.grad is None


def test_pickle_and_deepcopy_keep_the_options_and_hooks_machinery(case):
    params = case.make(torch.float32)
    larc = LARC(torch.optim.SGD(params, lr=0.1, momentum=0.9), trust_coefficient=0.003, clip=False, eps=1e-6)
    for clone in (pickle.loads(pickle.dumps(larc)), copy.deepcopy(larc)):
        assert (clone.trust_coefficient, clone.clip, clone.eps) == (0.003, False, 1e-6)
        calls: list[int] = []
        clone.register_step_post_hook(lambda *_, seen=calls: seen.append(1))
        case.set_grads(clone.param_groups[0]["params"], 0)
        clone.step()
        assert calls == [1]


def test_parameters_that_change_shape_rebuild_the_layout():
    params = [torch.nn.Parameter(torch.ones(4)) for _ in range(3)]
    larc = LARC(torch.optim.SGD(params, lr=0.1), clip=False)
    for p in params:
        p.grad = torch.ones_like(p)
    larc.step()
    with torch.no_grad():
        params[1].data = torch.ones(6)
    for p in params:
        p.grad = torch.ones_like(p)
    larc.step()
    rate = 0.02 * 6**0.5 / (6**0.5 + 1e-8)
    torch.testing.assert_close(params[1].detach(), torch.full((6,), 1 - 0.1 * rate))


@pytest.mark.parametrize(
    ("options", "path"),
    [
        ({"trust_coefficient": -1.0}, "trust_coefficient"),
        ({"trust_coefficient": 0}, "trust_coefficient"),
        ({"eps": -1e-8}, "eps"),
        ({"eps": float("nan")}, "eps"),
    ],
)
def test_bad_options_are_config_errors(options, path):
    from optiplug import ConfigError

    with pytest.raises(ConfigError) as info:
        LARC(torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1), **options)
    assert info.value.path == path
    assert repr(next(iter(options.values()))) in str(info.value)


def test_wraps_only_optimizers():
    with pytest.raises(TypeError, match="wraps a torch.optim.Optimizer"):
        LARC([torch.nn.Parameter(torch.ones(1))])  # type: ignore[arg-type]
