"""The fused CPU path (optiplug_larc.fused): LARC around SGD(fused=True) and LARS through torch's fused SGD kernel.

Each test checks the numbers against a per-tensor reference of the formula (apex's
LARC rules, MMSelfSup's LARS, norms in float64), checks that the fused kernel really
ran (or really did not, where the path must fall back), and the behaviour that
differs: the gradients. float32 over several steps: within 1e-5 relative, 1e-6 absolute.
"""

from __future__ import annotations

import copy

import pytest
import torch

import optiplug
from optiplug_larc import fused
from optiplug_larc.larc import LARC
from optiplug_larc.lars import LARS

SHAPES = [(64, 80), (8, 4), (8, 4), (8, 4), (16,), (16,), (3, 5, 7), (), (70, 90), (16,)]
ZERO_INIT, LATE_GRAD = 4, 5  # a zero-initialised bias; a parameter first stepped at step 1 (in a block)


CLOSE = {"rtol": 1e-5, "atol": 1e-6}


def make(dtype: torch.dtype = torch.float32) -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape, dtype=dtype)) for shape in SHAPES]
    with torch.no_grad():
        params[ZERO_INIT].zero_()
    return params


def set_grads(params: list[torch.nn.Parameter], step: int, late: bool = True) -> list[torch.Tensor | None]:
    """Fresh gradients (seeded per step); returns copies of them as set.

    ``late``: parameter ``LATE_GRAD`` has no gradient at step 0 (torch's own
    ``SGD(fused=True)`` then fails at step 1 with a None momentum buffer).
    """
    generator = torch.Generator().manual_seed(100 + step)
    grads: list[torch.Tensor | None] = []
    for i, p in enumerate(params):
        grad = torch.randn(p.shape, generator=generator, dtype=p.dtype) * (0.1 + i)
        if i == 1 and step == 1:
            grad.zero_()  # zero gradient: no scaling, no decay
        p.grad = None if late and i == LATE_GRAD and step == 0 else grad
        grads.append(None if p.grad is None else p.grad.clone())
    return grads


def apex_larc_step(optimizer: torch.optim.Optimizer, trust: float, clip: bool, eps: float = 1e-8) -> None:
    """apex LARC.step tensor by tensor, in float64 Python numbers, then the inner optimizer with weight decay 0."""
    decays = []
    with torch.no_grad():
        for group in optimizer.param_groups:
            weight_decay = group["weight_decay"]
            decays.append(weight_decay)
            for p in group["params"]:
                if p.grad is None:
                    continue
                param_norm, grad_norm = p.double().norm().item(), p.grad.double().norm().item()
                if param_norm != 0 and grad_norm != 0:
                    rate = trust * param_norm / (grad_norm + param_norm * weight_decay + eps)
                    if clip:
                        rate = min(rate / group["lr"], 1.0)
                    p.grad.add_(p, alpha=weight_decay).mul_(rate)
            group["weight_decay"] = 0.0
    optimizer.step()
    for group, weight_decay in zip(optimizer.param_groups, decays, strict=True):
        group["weight_decay"] = weight_decay


def groups(params: list[torch.nn.Parameter]) -> list[dict]:
    return [{"params": params[:6], "weight_decay": 1e-2}, {"params": params[6:], "weight_decay": 0.0, "lr": 0.05}]


@pytest.fixture
def fused_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the tensors handed to ``torch._fused_sgd_`` (by anyone: the fused path, or torch's SGD)."""
    calls: list[int] = []
    original = torch._fused_sgd_

    def counting(params: list[torch.Tensor], *args: object, **kwargs: object) -> None:
        calls.append(len(params))
        original(params, *args, **kwargs)

    monkeypatch.setattr(torch, "_fused_sgd_", counting)
    return calls


def run_larc(inner_options: dict, *, clip: bool, trust: float, steps: int = 4, hook: bool = False):
    ours_params, ref_params = make(), make()
    inner = torch.optim.SGD(groups(ours_params), lr=0.1, fused=True, **inner_options)
    if hook:
        inner.register_step_pre_hook(lambda *_: None)
    ours = LARC(inner, trust_coefficient=trust, clip=clip)
    ref = torch.optim.SGD(groups(ref_params), lr=0.1, **inner_options)
    raw = []
    for step in range(steps):
        raw = set_grads(ours_params, step, late=not hook)
        set_grads(ref_params, step, late=not hook)
        ours.step()
        apex_larc_step(ref, trust, clip)
    return ours_params, ref_params, ours, ref, raw


@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize(
    "inner_options",
    [{"momentum": 0.9, "weight_decay": 1e-2}, {"momentum": 0.9, "dampening": 0.3}, {"momentum": 0.0}],
)
def test_larc_around_fused_sgd_matches_apex_and_keeps_the_gradients(fused_calls, clip, inner_options):
    ours, ref, larc, ref_optimizer, raw = run_larc(inner_options, clip=clip, trust=0.02 if clip else 0.001)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, **CLOSE)
    if inner_options["momentum"]:
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(
                larc.state[a]["momentum_buffer"], ref_optimizer.state[b]["momentum_buffer"], **CLOSE
            )
    assert not torch.equal(ours[ZERO_INIT], torch.zeros_like(ours[ZERO_INIT]))
    # the fused path never writes the scaled gradient: p.grad is still the raw gradient
    assert all(torch.equal(p.grad, g) for p, g in zip(ours, raw, strict=True))
    assert fused_calls  # the kernel ran, and the reference (foreach SGD) never calls it


def test_larc_with_inner_step_hooks_keeps_apex_behaviour(fused_calls):
    """A hook on the inner optimizer must fire: LARC then steps it, and rescales p.grad in place as apex does."""
    ours, ref, *_ = run_larc({"momentum": 0.9, "weight_decay": 1e-2}, clip=False, trust=0.001, hook=True)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, **CLOSE)
        torch.testing.assert_close(a.grad, b.grad, **CLOSE)  # the scaled gradients
    assert fused_calls == [6, 4] * 4  # torch's own fused SGD step: one call per group and step


def test_larc_float64_and_nesterov_keep_the_multi_tensor_path(fused_calls):
    params = make(torch.float64)
    larc = LARC(torch.optim.SGD(groups(params), lr=0.1, momentum=0.9, fused=True), trust_coefficient=0.001)
    set_grads(params, 0)
    larc.step()
    nesterov = make()
    set_grads(nesterov, 0)
    LARC(torch.optim.SGD(groups(nesterov), lr=0.1, momentum=0.9, nesterov=True, fused=True)).step()
    assert fused_calls == [5, 4, 5, 4]  # torch's own SGD step: one call per group, not one per tensor


def mmselfsup_step(groups: list[dict], state: dict, eps: float) -> None:
    """MMSelfSup LARS.step tensor by tensor, with Python-float norms."""
    with torch.no_grad():
        for group in groups:
            lr, weight_decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                local = 1.0
                if not group.get("lars_exclude", False):
                    weight, grad = p.double().norm().item(), p.grad.double().norm().item()
                    if weight != 0 and grad != 0:
                        local = group["eta"] * weight / (grad + weight_decay * weight + eps)
                step = p.grad.add(p, alpha=weight_decay).mul(local * lr)
                if momentum != 0:
                    if p not in state:
                        buffer = state[p] = step.clone()
                    else:
                        buffer = state[p].mul_(momentum).add_(step, alpha=1 - group["dampening"])
                    step = buffer
                p.add_(-step)


@pytest.mark.parametrize("options", [{"momentum": 0.9, "dampening": 0.2}, {"momentum": 0.0}])
@pytest.mark.parametrize("transposed", [False, True])
def test_lars_float32_through_the_fused_kernel_matches_mmselfsup(fused_calls, options, transposed):
    ours, ref = make(), make()
    if transposed:  # a non-contiguous parameter: its part falls back to the multi-tensor path
        for params in (ours, ref):
            params[0].data = params[0].data.t()
    parts = [
        {"params": ours[:6] + ours[8:]},
        {"params": ours[6:8], "lars_exclude": True},  # excluded, still decayed
    ]
    lars = LARS(parts, lr=0.5, weight_decay=1e-2, eta=0.02, eps=1e-6, fused=True, **options)
    ref_groups = [
        {"params": ref[:6] + ref[8:], "lr": 0.5, "weight_decay": 1e-2, "eta": 0.02, **options},
        {"params": ref[6:8], "lr": 0.5, "weight_decay": 1e-2, "eta": 0.02, "lars_exclude": True, **options},
    ]
    state: dict = {}
    for step, lr in enumerate([0.5, 0.2, 0.3]):
        for group in [*lars.param_groups, *ref_groups]:
            group["lr"] = lr
        raw = set_grads(ours, step)
        set_grads(ref, step)
        lars.step()
        mmselfsup_step(ref_groups, state, eps=1e-6)
        assert all(torch.equal(p.grad, g) for p, g in zip(ours, raw, strict=True) if g is not None)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, **CLOSE)
    if options["momentum"]:
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(lars.state[a]["momentum_buffer"], state[b], **CLOSE)
    assert fused_calls
    if transposed:
        assert 0 not in fused_calls and sum(fused_calls) < 3 * (len(SHAPES) - 1)  # only the excluded group


def test_without_the_fused_kernel_the_multi_tensor_path_gives_the_same_numbers(monkeypatch):
    def run() -> list[torch.Tensor]:
        params = make()
        larc = LARC(torch.optim.SGD(groups(params), lr=0.1, momentum=0.9, fused=False), trust_coefficient=0.001)
        lars = LARS(make(), lr=0.5, momentum=0.9, weight_decay=1e-2, fused=True)
        for step in range(3):
            set_grads(params, step)
            set_grads(lars.param_groups[0]["params"], step)
            larc.step()
            lars.step()
        return [p.detach().clone() for p in [*params, *lars.param_groups[0]["params"]]]

    expected = run()
    monkeypatch.setattr(fused, "_working", False)  # as on a torch without a CPU _fused_sgd_
    assert not fused.available()
    for a, b in zip(run(), expected, strict=True):
        torch.testing.assert_close(a, b, **CLOSE)


def test_probe_finds_the_kernel_on_this_torch():
    assert fused._probe() is True


def test_built_from_a_recipe_larc_around_fused_sgd_matches_apex(fused_calls):
    named = [(f"layer{i}.weight", p) for i, p in enumerate(make())]
    recipe = {
        "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-2, "fused": True},
        "wrappers": [{"name": "larc", "trust_coefficient": 0.001, "clip": False}],
    }
    built = optiplug.build(recipe, named)
    ref_params = make()
    ref = torch.optim.SGD(ref_params, lr=0.1, momentum=0.9, weight_decay=1e-2)
    for step in range(3):
        set_grads([p for _, p in named], step)
        set_grads(ref_params, step)
        built.optimizer.step()
        apex_larc_step(ref, 0.001, clip=False)
    for (_, a), b in zip(named, ref_params, strict=True):
        torch.testing.assert_close(a, b, **CLOSE)
    assert fused_calls


def test_lars_is_not_fused_unless_asked(fused_calls):
    params = make()
    lars = LARS(params, lr=0.5, momentum=0.9, weight_decay=1e-2)
    set_grads(params, 0)
    lars.step()
    assert fused_calls == []
    lars.param_groups[0]["fused"] = True
    set_grads(params, 1)
    lars.step()
    assert fused_calls


def test_lars_fused_from_a_recipe_and_its_error(fused_calls):
    named = [(f"layer{i}.weight", p) for i, p in enumerate(make())]
    built = optiplug.build({"optimizer": {"name": "LARS", "lr": 0.1, "momentum": 0.9, "fused": True}}, named)
    set_grads([p for _, p in named], 0)
    built.optimizer.step()
    assert fused_calls
    with pytest.raises(optiplug.ConfigError) as error:
        optiplug.build({"optimizer": {"name": "LARS", "lr": 0.1, "fused": "yes"}}, named)
    assert "fused" in str(error.value) and "true or false" in str(error.value)
    with pytest.raises(optiplug.ConfigError, match=r"param_groups\[1\]\.fused"):
        LARS(make()[:1], lr=0.1).add_param_group({"params": make()[1:2], "fused": 1})


def test_fused_path_follows_a_loaded_or_cleared_state():
    """The per-part cache of state dicts must notice load_state_dict and a cleared state."""

    def larc(params: list[torch.nn.Parameter]) -> LARC:
        return LARC(torch.optim.SGD(groups(params), lr=0.1, momentum=0.9, fused=True), trust_coefficient=0.001)

    first, second = make(), make()
    a, b = larc(first), larc(second)
    for step in range(2):
        set_grads(first, step)
        a.step()
    with torch.no_grad():
        for p, q in zip(first, second, strict=True):
            q.copy_(p)
    set_grads(second, 0)
    b.step()  # b's cache now holds its own (different) buffers
    with torch.no_grad():
        for p, q in zip(first, second, strict=True):
            q.copy_(p)
    b.load_state_dict(copy.deepcopy(a.state_dict()))  # load_state_dict keeps the very tensors it is given
    set_grads(first, 2)
    set_grads(second, 2)
    a.step()
    b.step()
    for p, q in zip(first, second, strict=True):
        torch.testing.assert_close(q, p, rtol=0, atol=0)
        torch.testing.assert_close(b.state[q]["momentum_buffer"], a.state[p]["momentum_buffer"], rtol=0, atol=0)
    # a cleared state restarts momentum: the same as a new optimizer's first step
    fresh = make()
    with torch.no_grad():
        for p, q in zip(first, fresh, strict=True):
            q.copy_(p)
    a.optimizer.state.clear()
    c = larc(fresh)
    set_grads(first, 3)
    set_grads(fresh, 3)
    a.step()
    c.step()
    for p, q in zip(first, fresh, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_a_parameter_made_non_contiguous_between_steps_leaves_the_fused_path(fused_calls):
    """``p.data = p.data.t()`` of a square matrix keeps storage and shape (and the layout): checked at every step."""

    def square_and_small() -> list[torch.nn.Parameter]:
        torch.manual_seed(1)
        return [torch.nn.Parameter(torch.randn(shape)) for shape in [(70, 70), (8, 4), (8, 4), (16,)]]

    ours, ref = square_and_small(), square_and_small()
    lars = LARS(ours, lr=0.5, momentum=0.9, weight_decay=1e-2, fused=True)
    ref_groups = [{"params": ref, "lr": 0.5, "momentum": 0.9, "dampening": 0.0, "weight_decay": 1e-2, "eta": 0.001}]
    state: dict = {}
    for step in range(3):
        if step == 1:
            for params in (ours, ref):
                params[0].data = params[0].data.t()
            fused_calls.clear()
        set_grads(ours, step, late=False)
        set_grads(ref, step, late=False)
        lars.step()
        mmselfsup_step(ref_groups, state, eps=1e-8)
    assert not ours[0].is_contiguous() and fused_calls == []  # the whole part left the fused path
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, **CLOSE)


def test_an_excluded_group_with_non_contiguous_small_gradients(fused_calls):
    """Without norms the stacked members' own gradients go to the kernel: made contiguous first."""

    def run(fused: bool) -> list[torch.nn.Parameter]:
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(8, 4)) for _ in range(3)]
        lars = LARS([{"params": params, "lars_exclude": True}], lr=0.5, momentum=0.9, weight_decay=1e-2, fused=fused)
        for _ in range(3):
            for p in params:
                p.grad = torch.randn(4, 8).t()  # non-contiguous
            lars.step()
        return params

    for a, b in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(a, b, **CLOSE)
    assert fused_calls
