"""FSDP2 (``fully_shard``, DTensor parameters) on two gloo processes equals one process on the whole batch.

Norms of DTensors are the norms of the whole tensors: LARC (VISSL's ``sgd_fsdp`` with
``use_larc``), MMSelfSup's LARS, VISSL's LARS, gradient clipping in ``Built.step``, and
layer decay with bias rules (names and shapes seen through the sharding) give, on each
rank's shards, the update one process computes on the whole batch. The ranks are
spawned as in tests/reliability/test_distributed.py (file store, at most two minutes).
ZeRO does not apply here: FSDP2 already shards the optimizer state with the parameters.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

import optiplug
from gloo_ranks import run_ranks

fsdp = pytest.importorskip("torch.distributed.fsdp", reason="torch without FSDP2")
if not hasattr(fsdp, "fully_shard"):
    pytest.skip("torch without fully_shard (FSDP2)", allow_module_level=True)

WORLD = 2
TIMEOUT = 120
UPDATES = 3
SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-2}

CASES: dict[str, dict[str, Any]] = {
    "vissl_sgd_fsdp_larc": {
        "OPTIMIZER": {
            "name": "sgd_fsdp",
            "momentum": 0.9,
            "weight_decay": 1e-2,
            "use_larc": True,
            "larc_config": {"clip": False, "trust_coefficient": 0.02, "eps": 1e-8},
            "num_epochs": 1,
            "param_schedulers": {"lr": {"name": "constant", "value": 0.1}},
        }
    },
    "lars": {"optimizer": {"name": "lars", **SGD}},
    "vissl_lars": {"optimizer": {"name": "vissl_lars", **SGD, "exclude_bias_and_norm": True}},
    "clip": {"optimizer": {"name": "sgd", **SGD}, "clip": {"max_norm": 0.05}},
    "layer_decay_larc": {
        "optimizer": {"name": "sgd", **SGD},
        "wrappers": [{"name": "larc", "clip": False, "trust_coefficient": 0.02}],
        "rules": [
            {"kind": "layer_decay", "preset": "timm_vit", "decay": 0.5},
            {"kind": "bias", "set": {"weight_decay": 0}},
        ],
    },
}


class Blocks(nn.Module):
    """Two blocks and a head, named as timm's ViT names them (for layer decay)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.blocks = nn.Sequential(nn.Linear(5, 7), nn.Linear(7, 6))
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.blocks[1](torch.relu(self.blocks[0](x)))))


def batches() -> list[torch.Tensor]:
    return [torch.randn(8, 5, generator=torch.Generator().manual_seed(i)) for i in range(UPDATES)]


def train(case: str, model: nn.Module, rows: slice) -> optiplug.Built:
    built = optiplug.build(CASES[case], model, steps_per_epoch=UPDATES, num_epochs=1)
    for x in batches():
        assert built.step(model(x[rows]).square().mean())
    return built


def full_params(model: nn.Module) -> list[torch.Tensor]:
    return [(p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone() for p in model.parameters()]


def run_rank(rank: int, world: int, store: str, out: str) -> None:
    """One rank: every case on a fully sharded model, this rank's rows of each batch."""
    from torch.distributed.fsdp import fully_shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        saved: dict[str, Any] = {}
        for case in CASES:
            model = Blocks()
            for layer in (*model.blocks, model.head):
                fully_shard(layer)
            fully_shard(model)
            kinds = {type(p).__name__ for p in model.parameters()}
            built = train(case, model, slice(rank, None, world))
            saved[case] = {
                "params": full_params(model),
                "kinds": sorted(kinds),
                "groups": len(built.optimizer.param_groups),
            }
        torch.save(saved, out)
    finally:
        dist.destroy_process_group()


def _entry(rank: int, world: int, store: str, outs: list[str]) -> None:
    run_rank(rank, world, store, outs[rank])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("fsdp2")
    return run_ranks(_entry, WORLD, directory, TIMEOUT)


@pytest.mark.parametrize("case", CASES)
def test_fully_sharded_training_equals_one_process_on_the_whole_batch(ranks, case):
    assert ranks[0][case]["kinds"] == ["DTensor"]  # the ranks really trained sharded parameters
    model = Blocks()
    start = [p.detach().clone() for p in model.parameters()]
    built = train(case, model, slice(None))
    assert ranks[0][case]["groups"] == len(built.optimizer.param_groups)
    for a, b, expected, initial in zip(
        ranks[0][case]["params"], ranks[1][case]["params"], model.parameters(), start, strict=True
    ):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, expected.detach(), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(a, initial)


def test_local_norms_would_differ():
    """The check above can fail: shard-local norms give another LARC update than whole-tensor norms."""
    from optiplug_larc.larc import LARC

    pairs = [(torch.randn(6, 4, generator=torch.Generator().manual_seed(i)), torch.randn(6, 4)) for i in range(2)]

    def step(rows: slice) -> list[torch.Tensor]:
        params = [nn.Parameter(w[rows].clone()) for w, _ in pairs]
        for p, (_, g) in zip(params, pairs, strict=True):
            p.grad = g[rows].clone()
        LARC(torch.optim.SGD(params, lr=0.5, weight_decay=1e-2), trust_coefficient=0.01, clip=False).step()
        return [p.detach() for p in params]

    whole, shard = step(slice(None)), step(slice(0, 3))
    assert not any(torch.allclose(w[:3], s) for w, s in zip(whole, shard, strict=True))
