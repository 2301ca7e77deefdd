"""One rank of the 2-process gloo tests (tests/reliability/test_distributed.py).

``run(rank, world, store, out)`` joins the group through a file store, then records:

* the batch ``build()`` resolves when neither the config nor the call gives the world
  size, with and without ``LOCAL_WORLD_SIZE`` (torchrun's devices per node);
* the lrs of VISSL configs auto-scaled from the global batch (a cosine, and the seed's
  linear warmup + cosine, whose warmup depends on the number of nodes);
* the parameters after DDP training of a small model with LARC, each rank on its half
  of every global batch.

Everything goes to ``out`` with ``torch.save``; the test compares it with one process.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

import optiplug
from optiplug.engine.dialects import to_recipe
from optiplug.engine.run_figures import resolve_batch
from optiplug.recipe.model import RunConfig

GLOBAL_BATCH, STEPS = 8, 4
SCALED = {"optimizer": {"name": "sgd", "lr": 0.1}, "lr_scaling": {"base_batch_size": 16}}
VISSL_COSINE = {
    "OPTIMIZER": {
        "num_epochs": 2,
        "param_schedulers": {
            "lr": {
                "name": "cosine",
                "start_value": 0.1,
                "end_value": 0.0,
                "auto_lr_scaling": {"auto_scale": True, "base_value": 0.1, "base_lr_batch_size": 16},
            }
        },
    }
}
VISSL_WARMUP = {
    "OPTIMIZER": {
        "num_epochs": 2,
        "param_schedulers": {
            "lr": {
                "name": "composite",
                "schedulers": [
                    {"name": "linear", "start_value": 0.05, "end_value": 0.1},
                    {"name": "cosine", "start_value": 0.1, "end_value": 0.0},
                ],
                "lengths": [0.25, 0.75],
                "interval_scaling": ["rescaled", "fixed"],
                "update_interval": "step",
                "auto_lr_scaling": {"auto_scale": True, "base_value": 0.1, "base_lr_batch_size": 16},
            }
        },
    }
}
DDP_RECIPE = {
    "optimizer": {"name": "sgd", "lr": 0.2, "momentum": 0.9, "weight_decay": 1e-3},
    "rules": [{"kind": "regex", "pattern": "^2\\.", "set": {"lr_mult": 2}}],
    "schedules": {"lr": {"name": "linear", "start_value": 0.2, "end_value": 0.05}},
    "lr_scaling": {"base_batch_size": GLOBAL_BATCH},
    "clip": {"max_norm": 1.0},
    "wrappers": [{"name": "larc", "clip": False, "trust_coefficient": 0.02}],
    "run": {"num_epochs": 1, "steps_per_epoch": STEPS},
}


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def global_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + step)
    return torch.randn(GLOBAL_BATCH, 4, generator=generator), torch.randn(GLOBAL_BATCH, 3, generator=generator)


def train(model: nn.Module, built: optiplug.Built, part: slice) -> list[float]:
    """STEPS updates on ``part`` of every global batch (mean squared error); the lrs before each."""
    lrs = []
    for step in range(STEPS):
        x, y = global_batch(step)
        lrs.append(built.optimizer.param_groups[0]["lr"])
        built.step((model(x[part]) - y[part]).square().mean())
    return lrs


def lrs_of(config: dict[str, Any], updates: int = 8, **kwargs: Any) -> list[float]:
    """The lr before each update of a VISSL config built for a Linear model (4 updates per epoch)."""
    built = optiplug.build(config, nn.Linear(2, 2), steps_per_epoch=4, **kwargs)
    values = []
    for _ in range(updates):
        values.append(built.optimizer.param_groups[0]["lr"])
        built.optimizer.step()
        built.scheduler.step()
    return values


def batches() -> dict[str, Any]:
    recipe = to_recipe(SCALED)
    batch = resolve_batch(recipe, RunConfig(batch_size_per_device=16))
    built = optiplug.build(SCALED, nn.Linear(2, 2), batch_size_per_device=16)
    return {
        "batch": (batch.per_device, batch.world_size, batch.devices_per_node),
        "lr": built.optimizer.param_groups[0]["lr"],
        "vissl_cosine": lrs_of(VISSL_COSINE, batch_size_per_device=16),
        "vissl_cosine_from_data": lrs_of({**VISSL_COSINE, "DATA": {"TRAIN": {"BATCHSIZE_PER_REPLICA": 16}}}),
        "vissl_warmup": lrs_of(VISSL_WARMUP, batch_size_per_device=16),
    }


def run(rank: int, world: int, store: str, out: str) -> None:
    """The rank's part of every check, saved to ``out``."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        os.environ.pop("LOCAL_WORLD_SIZE", None)
        results: dict[str, Any] = {"one_node": batches()}
        os.environ["LOCAL_WORLD_SIZE"] = "1"
        results["one_device_per_node"] = batches()
        del os.environ["LOCAL_WORLD_SIZE"]

        model = nn.parallel.DistributedDataParallel(small_model())
        built = optiplug.build(DDP_RECIPE, model, batch_size_per_device=GLOBAL_BATCH // world)
        share = GLOBAL_BATCH // world
        results["ddp_lrs"] = train(model, built, slice(rank * share, (rank + 1) * share))
        results["ddp_params"] = [p.detach().clone() for p in model.module.parameters()]
        results["ddp_groups"] = [list(g.names) for g in built.groups]
        torch.save(results, out)
    finally:
        dist.destroy_process_group()
