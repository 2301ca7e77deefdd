"""Two-process ZeRO runs: the scenarios, the training loop, and the spawn with a deadline.

Importable by plain name in spawned processes (the test puts this folder on sys.path):
pytest's importlib mode gives test modules names a child process cannot import.
"""

from __future__ import annotations

import copy
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import optiplug

STEPS, RESUMED_STEPS = 6, 3


class Net(nn.Module):
    """A trunk with norms and biases, and a head: several param groups of unequal sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(6, 16), nn.LayerNorm(16), nn.Linear(16, 16), nn.LayerNorm(16))
        self.extra = nn.Parameter(torch.zeros(16))
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.trunk(x)) + self.extra)


def make_model() -> Net:
    torch.manual_seed(0)
    return Net()


def batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The same batches on every rank (and in the unsharded reference)."""
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 6, generator=generator), torch.randn(8, 4, generator=generator)) for _ in range(count)]


def sgd_recipe(zero: bool) -> dict[str, Any]:
    return {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2},
        "rules": [
            {"kind": "bias", "set": {"weight_decay": 0}},
            {"kind": "regex", "pattern": "^head", "set": {"lr_mult": 2}},
        ],
        "schedules": {"lr": {"name": "cosine", "start_value": 0.05, "end_value": 0.001}},
        "wrappers": [{"name": "zero"}] if zero else [],
    }


def adamw_larc_recipe(zero: bool) -> dict[str, Any]:
    return {
        "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.05},
        "rules": [{"kind": "norm", "set": {"weight_decay": 0}}],
        "schedules": {"weight_decay": {"name": "linear", "start_value": 0.05, "end_value": 0.2}},
        "wrappers": [{"name": "larc", "clip": False, "trust_coefficient": 0.02}]
        + ([{"name": "zero", "parameters_as_bucket_view": True}] if zero else []),
    }


def vissl_config(zero: bool) -> dict[str, Any]:
    warmup_cosine = {
        "name": "composite",
        "schedulers": [
            {"name": "linear", "start_value": 0.01, "end_value": 0.2},
            {"name": "cosine", "start_value": 0.2, "end_value": 0.002},
        ],
        "lengths": [0.34, 0.66],
        "interval_scaling": ["rescaled", "fixed"],
        "update_interval": "step",
    }
    return {
        "OPTIMIZER": {
            "name": "sgd",
            "use_zero": zero,
            "use_larc": True,
            "larc_config": {"clip": True, "trust_coefficient": 0.02},
            "weight_decay": 1e-3,
            "num_epochs": 3,
            "head_optimizer_params": {"use_different_lr": True},
            "param_schedulers": {"lr": warmup_cosine, "lr_head": {"name": "constant", "value": 0.05}},
        }
    }


SCENARIOS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "sgd": sgd_recipe,
    "adamw_larc": adamw_larc_recipe,
    "vissl": vissl_config,
}


def build(name: str, model: nn.Module, zero: bool) -> optiplug.Built:
    return optiplug.build(SCENARIOS[name](zero), model, steps_per_epoch=3, num_epochs=3)


def record_options(optimizer: torch.optim.Optimizer, rows: list[list[tuple[float, float]]]) -> None:
    """Before each step of ``optimizer``: every group's (lr, weight_decay) as it is stepped."""

    def hook(opt: Any, _args: Any, _kwargs: Any) -> None:
        rows.append([(float(g["lr"]), float(g["weight_decay"])) for g in opt.param_groups])

    optimizer.register_step_pre_hook(hook)


def train(built: optiplug.Built, model: nn.Module, data: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    for x, y in data:
        built.step(nn.functional.mse_loss(model(x), y))


def reference(name: str) -> dict[str, Any]:
    """Unsharded training: options stepped, parameters and state after STEPS, parameters after the resumed steps."""
    model = make_model()
    built = build(name, model, zero=False)
    rows: list[list[tuple[float, float]]] = []
    record_options(built.optimizer, rows)
    data = batches(STEPS + RESUMED_STEPS)
    train(built, model, data[:STEPS])
    out = {"options": rows, "params": copy.deepcopy(model.state_dict()), "state": copy.deepcopy(built.state_dict())}
    train(built, model, data[STEPS:])
    out["resumed"] = copy.deepcopy(model.state_dict())
    return out


def sharded_run(name: str, rank: int) -> dict[str, Any]:
    """What one rank sees when the scenario is trained with zero, checkpointed and resumed."""
    model = make_model()
    built = build(name, model, zero=True)
    zero = built.optimizer
    names = {id(p): n for n, p in model.named_parameters()}
    rows: list[list[tuple[float, float]]] = []
    record_options(zero.optim, rows)
    data = batches(STEPS + RESUMED_STEPS)
    train(built, model, data[:STEPS])
    out: dict[str, Any] = {
        "type": type(zero).__name__,
        "local": type(zero.optim).__name__,
        "options": rows,
        "params": copy.deepcopy(model.state_dict()),
        "assigned": sorted(names[id(p)] for g in zero._partition_parameters()[rank] for p in g["params"]),
        "state": sorted(names[id(p)] for p, s in zero.optim.state.items() if s),
    }
    from optiplug_zero import consolidate

    consolidate(built.optimizer, to=0)
    saved = [copy.deepcopy(built.state_dict()) if rank == 0 else None]
    out["consolidated"] = saved[0]
    dist.broadcast_object_list(saved, src=0)
    resumed = make_model()
    resumed.load_state_dict(out["params"])
    again = build(name, resumed, zero=True)
    again.load_state_dict(copy.deepcopy(saved[0]))  # ZeRO's load_state_dict clears the other ranks' entries
    train(again, resumed, data[STEPS:])
    out["resumed"] = copy.deepcopy(resumed.state_dict())
    return out


def worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """One rank: every scenario, each result saved as ``<scenario>-<rank>.pt``."""
    warnings.simplefilter("error")
    torch.set_num_threads(1)  # as the tests' process: the same reduction order, so bit-equal results
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for name in SCENARIOS:
            torch.save(sharded_run(name, rank), Path(out_dir) / f"{name}-{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(fn: Callable[..., None], world: int, args: tuple[Any, ...], deadline: float) -> None:
    """Run ``fn(rank, world, port, *args)`` in ``world`` spawned processes (``port`` free on 127.0.0.1);
    kill them all after ``deadline`` seconds."""
    context = mp.start_processes(fn, args=(world, free_port(), *args), nprocs=world, join=False, start_method="spawn")
    end = time.monotonic() + deadline
    while not context.join(timeout=max(0.1, end - time.monotonic())):
        if time.monotonic() >= end:
            for process in context.processes:
                process.kill()
            raise TimeoutError(f"the {world} processes did not finish within {deadline} s")
