"""Two gloo processes on CPU: the world comes from torch.distributed, and DDP training equals one process.

Both ranks run ``reliability.distributed_worker.run`` once (torch.multiprocessing spawn,
rendezvous through a file store in tmp_path: no port to race for, at most two minutes);
the tests below compare what they saved with the same builds in this process, where
torch.distributed is not initialised and the world is given explicitly.

LARC's ``distributed_norm`` over parameters sharded across ranks is shown by
tests/plugins/larc/test_distributed.py (the same rendezvous).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import optiplug
from gloo_ranks import run_ranks
from reliability import distributed_worker as worker

WORLD = 2
TIMEOUT = 120


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, Any]]:
    """What each rank saved."""
    directory = tmp_path_factory.mktemp("gloo")
    return run_ranks(_entry, WORLD, directory, TIMEOUT)


def _entry(rank: int, world: int, store: str, outs: list[str]) -> None:
    worker.run(rank, world, store, outs[rank])


def test_world_size_and_devices_per_node_come_from_torch_distributed(ranks):
    for saved in ranks:
        assert saved["one_node"]["batch"] == (16, WORLD, WORLD)
        assert saved["one_device_per_node"]["batch"] == (16, WORLD, 1)
    explicit = optiplug.build(worker.SCALED, torch.nn.Linear(2, 2), batch_size_per_device=16, world_size=WORLD)
    assert ranks[0]["one_node"]["lr"] == explicit.optimizer.param_groups[0]["lr"] == pytest.approx(0.2)
    single = optiplug.build(worker.SCALED, torch.nn.Linear(2, 2), batch_size_per_device=16)
    assert single.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_vissl_auto_scaling_uses_the_global_batch(ranks):
    explicit = worker.lrs_of(worker.VISSL_COSINE, batch_size_per_device=16, world_size=WORLD)
    for saved in ranks:
        for case in ("one_node", "one_device_per_node"):
            assert saved[case]["vissl_cosine"] == explicit
            assert saved[case]["vissl_cosine_from_data"] == explicit
    assert explicit[0] == pytest.approx(0.1 * 32 / 16)


def test_vissl_warmup_depends_on_the_nodes_torch_distributed_reports(ranks):
    """D3: one node drops the warmup; two start it at base_value * batch_per_node / base_lr_batch_size."""
    one_node = ranks[0]["one_node"]["vissl_warmup"]
    two_nodes = ranks[0]["one_device_per_node"]["vissl_warmup"]
    cosine = [0.1 * (1 + math.cos(math.pi * k / 8)) for k in range(8)]  # from the scaled 0.2, over the run
    assert one_node == pytest.approx(cosine, rel=1e-12)
    assert two_nodes[:2] == pytest.approx([0.1 * 16 / 16, 0.15], rel=1e-12)  # rising to 0.2 over 2 updates
    assert two_nodes[2:] == pytest.approx(cosine[2:], rel=1e-12)
    nodes = {"DISTRIBUTED": {"NUM_NODES": 2, "NUM_PROC_PER_NODE": 1}}
    assert two_nodes == worker.lrs_of({**worker.VISSL_WARMUP, **nodes}, batch_size_per_device=16)
    assert one_node == worker.lrs_of(worker.VISSL_WARMUP, batch_size_per_device=16, world_size=WORLD)


def test_ddp_training_with_larc_equals_one_process_on_the_whole_batch(ranks):
    assert ranks[0]["ddp_groups"] == [["0.weight", "0.bias"], ["2.weight", "2.bias"]]  # DDP's "module." looked through
    for a, b in zip(ranks[0]["ddp_params"], ranks[1]["ddp_params"], strict=True):
        assert torch.equal(a, b)
    model = worker.small_model()
    built = optiplug.build(worker.DDP_RECIPE, model, batch_size_per_device=worker.GLOBAL_BATCH)
    lrs = worker.train(model, built, slice(None))
    assert ranks[0]["ddp_lrs"] == ranks[1]["ddp_lrs"] == lrs
    start = worker.small_model()
    for got, expected, initial in zip(ranks[0]["ddp_params"], model.parameters(), start.parameters(), strict=True):
        torch.testing.assert_close(got, expected.detach(), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(got, initial)
