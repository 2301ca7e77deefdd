"""run.compile (optiplug_compile): scheduled options as 0-dim tensors, so a compiled step compiles once.

The compile counts come from a torch.compile backend that counts the graphs it is given
(backend "eager" underneath: the same ops, no code generation, so the tests stay fast);
the values are checked against the schedules' formulas and against plain torch optimizers
stepped with Python floats (the eager float path), bit for bit where the kernels are the same.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import pytest
import torch
from torch import nn

import optiplug
from optiplug import ConfigError
from optiplug.plugin_system.host import PluginHost, use_host
from optiplug_compile.tensors import TENSOR_OPTIONS

pytestmark = pytest.mark.filterwarnings(
    # torch.compile's tracer imports torch.jit internals that warn of their own deprecation (torch 2.13)
    "ignore:.*torch.jit.*is deprecated:DeprecationWarning",
)

UPDATES = 1000
LR = 0.01


class CountingBackend:
    """A torch.compile backend that counts the graphs it compiles and runs them as they are."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, graph: torch.fx.GraphModule, _inputs: Any) -> Any:
        self.graphs += 1
        return graph.forward


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))


def recipe(name: str = "AdamW", **run: Any) -> dict[str, Any]:
    schedules: dict[str, Any] = {"lr": {"name": "cosine", "start_value": LR, "end_value": 0.0}}
    if name in ("Adam", "AdamW"):
        schedules["beta1"] = {"name": "linear", "start_value": 0.9, "end_value": 0.8}
    return {
        "optimizer": {"name": name, "lr": LR},
        "rules": [{"kind": "bias", "set": {"lr_mult": 0.5}}],
        "schedules": schedules,
        "run": run,
    }


def cosine(k: int, total: int = UPDATES, peak: float = LR) -> float:
    """The cosine schedule's formula (fvcore's CosineParamScheduler)."""
    return 0.5 * peak * (1 + math.cos(math.pi * k / total))


def gradients(net: nn.Module, k: int) -> None:
    generator = torch.Generator().manual_seed(k)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=generator)


def options(built: optiplug.Built) -> list[tuple[float, float]]:
    """Each group's (lr, beta1) as Python floats."""
    out = []
    for group in built.optimizer.param_groups:
        lr, beta1 = group["lr"], group["betas"][0]
        out.append((float(lr), float(beta1)))
    return out


def test_a_compiled_step_runs_1000_scheduled_updates_with_at_most_one_recompile():
    net = model()
    built = optiplug.build(recipe(compile=True), net, steps_per_epoch=UPDATES, num_epochs=1)
    backend = CountingBackend()
    step = torch.compile(built.optimizer.step, backend=backend)
    group = built.optimizer.param_groups[0]
    lr, beta1 = group["lr"], group["betas"][0]
    for k in range(UPDATES):
        assert float(group["lr"]) == pytest.approx(cosine(k), rel=1e-12, abs=1e-18)
        gradients(net, k)
        step()
        built.scheduler.step()
    assert backend.graphs <= 2, f"{backend.graphs} compiles over {UPDATES} updates"
    assert group["lr"] is lr and group["betas"][0] is beta1, "the tensors were replaced, not written in place"
    assert float(group["lr"]) == cosine(UPDATES) == 0.0


def float_and_tensor_graphs(updates: int) -> tuple[int, int]:
    """Graphs compiled over ``updates`` updates of the same loop step: float options, then run.compile's tensors."""
    counts = []
    for compile_ in (False, True):
        torch._dynamo.reset()
        net = model()
        config = recipe(compile=compile_)
        config["optimizer"]["foreach"] = False  # the per-tensor loop, which torch.compile traces, on both sides
        built = optiplug.build(config, net, steps_per_epoch=UPDATES, num_epochs=1)
        backend = CountingBackend()
        step = torch.compile(built.optimizer.step, backend=backend)
        for k in range(updates):
            gradients(net, k)
            step()
            built.scheduler.step()
        counts.append(backend.graphs)
    return counts[0], counts[1]


def test_float_options_cost_a_recompile_that_tensor_options_do_not():
    # torch 2.13 specializes a float it has seen once, fails that guard at the next value and then
    # passes the float as an input: one extra graph. The tensors of run.compile never fail a guard.
    floats, tensors = float_and_tensor_graphs(6)
    assert floats >= 2
    assert tensors == 1


def test_with_floats_specialized_only_the_tensor_options_compile_once():
    # torch.compile's specialize_float (a default in older torch, an option in 2.13) makes every new
    # float lr a new graph until the recompile limit; run.compile's step is unaffected
    with torch._dynamo.config.patch(specialize_float=True, recompile_limit=64):
        floats, tensors = float_and_tensor_graphs(6)
    assert floats == 6
    assert tensors == 1


def test_scheduled_values_are_the_eager_float_paths_bit_for_bit():
    eager = optiplug.build(recipe(), model(), steps_per_epoch=50, num_epochs=1)
    compiled = optiplug.build(recipe(compile=True), model(), steps_per_epoch=50, num_epochs=1)
    for k in range(51):
        assert options(compiled) == options(eager), f"update {k}"
        assert compiled.scheduler.get_last_lr() == eager.scheduler.get_last_lr()
        assert all(type(v) is float for v in compiled.scheduler.get_last_lr())
        assert compiled.optimizer.param_groups[1]["lr"].item() == pytest.approx(0.5 * cosine(k, 50), rel=1e-12)
        for built in (eager, compiled):
            built.optimizer.step()
            built.scheduler.step()


def float_reference(name: str, net: nn.Module, steps: int, *, betas: bool = True, **kernel: Any) -> None:
    """torch's optimizer stepped with the schedules' formulas, written as Python floats (no optiplug)."""
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    weights = [p for n, p in net.named_parameters() if not n.endswith("bias")]
    cls = getattr(torch.optim, name)
    opt = cls([{"params": weights, "lr": LR}, {"params": biases, "lr": LR * 0.5}], lr=LR, **kernel)
    for k in range(steps):
        for group, mult in zip(opt.param_groups, (1.0, 0.5), strict=True):
            group["lr"] = mult * cosine(k, steps)
            if betas and name in ("Adam", "AdamW"):
                group["betas"] = (0.9 + (0.8 - 0.9) * k / steps, group["betas"][1])
        gradients(net, k)
        opt.step()


@pytest.mark.parametrize("name", sorted(cls.__name__ for cls in TENSOR_OPTIONS))
def test_every_supported_optimizer_compiles_once_and_trains_as_torch_does_with_floats(name):
    steps = 6
    net, reference = model(), model()
    built = optiplug.build(recipe(name, compile=True), net, steps_per_epoch=steps, num_epochs=1)
    assert isinstance(built.optimizer.param_groups[0]["lr"], torch.Tensor)
    backend = CountingBackend()
    step = torch.compile(built.optimizer.step, backend=backend)
    for k in range(steps):
        gradients(net, k)
        step()
        built.scheduler.step()
    assert backend.graphs <= 2, f"{name}: {backend.graphs} compiles over {steps} updates"
    float_reference(name, reference, steps)
    for mine, theirs in zip(net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)  # other kernels, other rounding


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_a_tensor_lr_trains_bit_for_bit_as_the_same_kernel_with_float_lrs(compiled):
    """AdamW's per-tensor loop (what run.compile picks on the CPU): a float64 lr tensor gives the float's bits.

    Only the lr is scheduled, so the betas stay Python numbers (a tensor beta moves torch's
    arithmetic by an ulp: the test above allows for it). Compiled, torch traces the same
    formula into its own graph, which rounds differently: close, not equal.
    """
    steps = 20
    net, reference = model(), model()
    config = recipe(compile=True)
    del config["schedules"]["beta1"]
    built = optiplug.build(config, net, steps_per_epoch=steps, num_epochs=1)
    assert isinstance(built.optimizer.param_groups[0]["lr"], torch.Tensor)
    assert type(built.optimizer.param_groups[0]["betas"][0]) is float
    step = torch.compile(built.optimizer.step, backend="eager") if compiled else built.optimizer.step
    for k in range(steps):
        gradients(net, k)
        step()
        built.scheduler.step()
    float_reference("AdamW", reference, steps, betas=False, foreach=False)
    for mine, theirs in zip(net.parameters(), reference.parameters(), strict=True):
        if compiled:
            torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)
        else:
            assert torch.equal(mine, theirs)


def test_lrs_are_read_as_python_floats_and_initial_lr_is_never_aliased():
    net = model()
    built = optiplug.build(recipe(compile=True), net, steps_per_epoch=10, num_epochs=1)
    scheduler = built.scheduler
    assert scheduler.base_lrs == [LR, LR * 0.5] and all(type(v) is float for v in scheduler.base_lrs)
    extra = nn.Parameter(torch.zeros(3))
    built.optimizer.add_param_group({"params": [extra], "lr": torch.tensor(LR * 2, dtype=torch.float64)})
    for k in range(3):
        gradients(net, k)
        built.optimizer.step()
        scheduler.step()
    added = built.optimizer.param_groups[2]
    assert added["initial_lr"] == LR * 2 and not isinstance(added["initial_lr"], torch.Tensor)
    assert float(added["lr"]) == pytest.approx(2 * cosine(3, 10))
    assert all(type(v) is float for v in scheduler.get_last_lr() + scheduler.get_lr() + scheduler.base_lrs)
    assert scheduler.get_last_lr() == [float(g["lr"]) for g in built.optimizer.param_groups]


def test_a_checkpoint_resumes_into_a_fresh_compiled_build_identically():
    steps = 10
    net = model()
    built = optiplug.build(recipe(compile=True), net, steps_per_epoch=steps, num_epochs=1)
    for k in range(4):
        gradients(net, k)
        built.optimizer.step()
        built.scheduler.step()
    state = copy.deepcopy({"optimizer": built.optimizer.state_dict(), "scheduler": built.scheduler.state_dict()})
    twin = model()
    twin.load_state_dict(net.state_dict())
    resumed = optiplug.build(recipe(compile=True), twin, steps_per_epoch=steps, num_epochs=1)
    resumed.optimizer.load_state_dict(state["optimizer"])
    resumed.scheduler.load_state_dict(state["scheduler"])
    assert options(resumed) == options(built)
    backend = CountingBackend()
    step = torch.compile(resumed.optimizer.step, backend=backend)
    for k in range(4, steps):
        gradients(net, k)
        gradients(twin, k)
        built.optimizer.step()
        step()
        built.scheduler.step()
        resumed.scheduler.step()
        assert options(resumed) == options(built)
    assert backend.graphs <= 2
    for a, b in zip(net.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)


def test_build_compile_argument_wins_over_the_recipe():
    on = optiplug.build(recipe(compile=False), model(), steps_per_epoch=10, num_epochs=1, compile=True)
    off = optiplug.build(recipe(compile=True), model(), steps_per_epoch=10, num_epochs=1, compile=False)
    assert isinstance(on.optimizer.param_groups[0]["lr"], torch.Tensor)
    assert type(off.optimizer.param_groups[0]["lr"]) is float


def test_the_compile_wrapper_converts_every_option_torch_takes_as_a_tensor():
    config = {**recipe(), "wrappers": [{"name": "compile"}]}
    built = optiplug.build(config, model(), steps_per_epoch=10, num_epochs=1)
    group = built.optimizer.param_groups[0]
    assert isinstance(group["lr"], torch.Tensor) and all(isinstance(b, torch.Tensor) for b in group["betas"])
    assert group["foreach"] is False and group["fused"] is False  # the per-tensor loop: on the CPU it takes tensors


def test_a_config_that_chose_fused_keeps_its_kernel():
    config = recipe(compile=True)
    config["optimizer"] = {**config["optimizer"], "fused": True}
    built = optiplug.build(config, model(), steps_per_epoch=10, num_epochs=1)
    assert built.optimizer.param_groups[0]["fused"] is True
    assert isinstance(built.optimizer.param_groups[0]["lr"], torch.Tensor)
    built.optimizer.step()  # torch's fused kernel takes the tensor lr


def test_sgd_momentum_schedule_is_refused_in_the_users_terms():
    config = {
        "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9},
        "schedules": {"momentum": {"name": "cosine", "start_value": 0.9, "end_value": 0.8}},
        "run": {"compile": True},
    }
    with pytest.raises(ConfigError, match=r"run\.compile: SGD takes momentum only as a Python number") as info:
        optiplug.build(config, model(), steps_per_epoch=10, num_epochs=1)
    assert "recompile at every update" in str(info.value)


def test_a_wrapped_optimizer_is_refused_naming_the_wrapper():
    config = {
        "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9},
        "schedules": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}},
        "wrappers": [{"name": "larc"}],
        "run": {"compile": True},
    }
    with pytest.raises(ConfigError, match=r"run\.compile: LARC \(a wrapper around SGD\) cannot take its options"):
        optiplug.build(config, model(), steps_per_epoch=10, num_epochs=1)


def test_an_optimizer_outside_the_table_is_refused_with_the_supported_list():
    config = {**recipe(), "optimizer": {"name": "Lamb", "lr": LR}, "schedules": {}, "run": {"compile": True}}
    with pytest.raises(ConfigError, match=r"run\.compile: Lamb cannot take its options as tensors.*Adam, AdamW"):
        optiplug.build(config, model(), steps_per_epoch=10, num_epochs=1)


def test_bad_compile_values_are_config_errors_where_they_were_given():
    with pytest.raises(ConfigError, match=r"run\.compile: expected true or false, got 'yes'"):
        optiplug.build(recipe(compile="yes"), model(), steps_per_epoch=10, num_epochs=1)
    with pytest.raises(ConfigError, match=r"build\(compile=\.\.\.\): expected True, False or None, got 1"):
        optiplug.build(recipe(), model(), steps_per_epoch=10, num_epochs=1, compile=1)


def test_without_the_plugin_run_compile_says_what_is_missing():
    with use_host(PluginHost(blocked=["compile"])), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError, match=r"run\.compile: needs the optiplug_compile plugin"):
            optiplug.build(recipe(compile=True), model(), steps_per_epoch=10, num_epochs=1)


def test_an_eager_runs_checkpoint_resumes_compiled_with_tensor_options_and_no_recompiles():
    """Switching compile on is not a new recipe; the eager state's floats and kernel are turned back into tensors."""
    steps = 12
    net = model()
    eager = optiplug.build(recipe(), net, steps_per_epoch=steps, num_epochs=1)
    for k in range(4):
        eager.step(net(torch.full((1, 4), float(k))).sum())
    state = copy.deepcopy(eager.state_dict())
    twin = model()
    twin.load_state_dict(net.state_dict())
    resumed = optiplug.build(recipe(compile=True), twin, steps_per_epoch=steps, num_epochs=1)
    resumed.load_state_dict(state)
    group = resumed.optimizer.param_groups[0]
    assert isinstance(group["lr"], torch.Tensor) and isinstance(group["betas"][0], torch.Tensor)
    assert group["foreach"] is False and group["fused"] is False  # not the eager run's fused kernel
    assert options(resumed) == options(eager)
    backend = CountingBackend()
    step = torch.compile(resumed.optimizer.step, backend=backend)
    for k in range(4, steps):
        gradients(net, k)
        gradients(twin, k)
        eager.optimizer.step()
        step()
        eager.scheduler.step()
        resumed.scheduler.step()
        assert options(resumed) == options(eager)
    assert backend.graphs <= 2
    for a, b in zip(net.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)  # fused eager vs the compiled loop


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
def test_on_each_device_the_compiled_step_compiles_once_and_matches_the_float_path(device):
    """On CUDA: capturable foreach kernels and float32 tensors on the device (bench/gpu_check.py runs this)."""
    steps = 30
    net, reference = model().to(device), model().to(device)
    built = optiplug.build(recipe(compile=True), net, steps_per_epoch=steps, num_epochs=1)
    group = built.optimizer.param_groups[0]
    assert group["lr"].device.type == device and group["betas"][0].device.type == device
    assert group["lr"].dtype == (torch.float64 if device == "cpu" else torch.float32)
    assert group.get("capturable") is (device == "cuda")
    backend = CountingBackend()
    step = torch.compile(built.optimizer.step, backend=backend)
    for k in range(steps):
        gradients(net, k)
        step()
        built.scheduler.step()
    assert backend.graphs <= 2
    float_reference("AdamW", reference, steps)
    for mine, theirs in zip(net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)


def test_a_loaded_state_gets_tensors_and_step_counts_on_the_parameters_device():
    """The load post-hook under capturable: options and torch's CPU-kept step counts moved to the parameters' device.

    The parameters are on the meta device here (no GPU needed): what the hook does is the same.
    """
    from optiplug_compile.tensors import Retensor

    p = torch.nn.Parameter(torch.zeros(2, device="meta"))
    optimizer = torch.optim.AdamW([p], lr=0.1)
    optimizer.state[p] = {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2, device="meta")}
    Retensor(("lr", "betas"), {"capturable": True, "fused": False})(optimizer)
    group = optimizer.param_groups[0]
    assert group["capturable"] is True and group["lr"].device.type == "meta"
    assert all(b.device.type == "meta" for b in group["betas"])
    assert optimizer.state[p]["step"].device.type == "meta" and optimizer.state[p]["step"].dtype == torch.float32
