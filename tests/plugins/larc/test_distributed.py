"""``distributed_norm``: a parameter sharded over 2 gloo ranks gets the unsharded update."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("distributed_worker.py")


def load_worker():
    spec = importlib.util.spec_from_file_location("larc_distributed_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_sharded_norms_give_the_unsharded_update(tmp_path):
    worker = load_worker()
    # gloo over loopback; the ranks meet through a file store, so no port race with other jobs
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1", OMP_NUM_THREADS="1")
    outs = [tmp_path / f"rank{rank}.pt" for rank in range(2)]
    store = tmp_path / "store"
    ranks = [
        subprocess.Popen([sys.executable, str(WORKER), str(rank), "2", str(store), str(out)], env=env)
        for rank, out in enumerate(outs)
    ]
    try:
        codes = [rank.wait(timeout=120) for rank in ranks]
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
                rank.wait()
    assert codes == [0, 0]

    whole = worker.larc_step(worker.shared_tensors(), distributed_norm=False)
    local = worker.larc_step([(w[0::2].contiguous(), g[0::2].contiguous()) for w, g in worker.shared_tensors()], False)
    shards = [torch.load(out) for out in outs]
    for i, expected in enumerate(whole):
        merged = torch.empty_like(expected)
        merged[0::2], merged[1::2] = shards[0][i], shards[1][i]
        torch.testing.assert_close(merged, expected, rtol=1e-6, atol=1e-7)
        assert not torch.allclose(shards[0][i], local[i], rtol=1e-6, atol=1e-7)  # local norms would differ


def test_without_a_process_group_the_norms_stay_local():
    worker = load_worker()
    pairs = worker.shared_tensors()
    for a, b in zip(worker.larc_step(pairs, True), worker.larc_step(pairs, False), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_all_reduce_of_squares_with_a_stand_in_collective(monkeypatch):
    """One process plays rank 0; the stand-in all-reduce adds rank 1's squared norms."""
    import torch.distributed as dist

    import optiplug_larc.distributed as larc_distributed

    worker = load_worker()
    pairs = worker.shared_tensors()
    other = [n**2 for w, g in pairs for n in (w[1::2].norm(), g[1::2].norm())]
    calls = []

    def all_reduce(tensor, op):
        assert op == dist.ReduceOp.SUM
        calls.append(tensor.numel())
        # the layout's unit order: the two (3, 5) shards form a block, the (45, 60) shard is a single
        params, grads = other[0::2], other[1::2]
        tensor += torch.stack([params[0], params[1], params[2], grads[0], grads[1], grads[2]])

    monkeypatch.setattr(larc_distributed, "distributed_ready", lambda: True)
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    shard = worker.larc_step([(w[0::2].contiguous(), g[0::2].contiguous()) for w, g in pairs], True)
    assert calls == [6]  # one collective for every norm of the step
    whole = worker.larc_step(pairs, False)
    for got, expected in zip(shard, whole, strict=True):
        torch.testing.assert_close(got, expected[0::2], rtol=1e-6, atol=1e-7)


def test_units_summed_in_key_order_and_only_where_sharded(monkeypatch):
    """Units are matched across ranks by key, not by position; unsharded units (over ``()``) are not summed."""
    import torch.distributed as dist

    import optiplug_larc.distributed as larc_distributed

    seen = []

    def all_reduce(tensor, op):
        assert op == dist.ReduceOp.SUM
        seen.append(tensor.clone())
        tensor += 1.0  # the other rank's squares: 1 for every unit

    monkeypatch.setattr(larc_distributed, "distributed_ready", lambda: True)
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    a, b = torch.tensor([3.0, 2.0]), torch.tensor([5.0])
    default = larc_distributed.DEFAULT_GROUP
    out = larc_distributed.global_norms([a, b], over=[[default, ()], [default]], keys=[[2, 0], [1]])
    assert len(seen) == 1  # one collective for the step
    torch.testing.assert_close(seen[0], torch.tensor([0.0, 25.0, 9.0]))  # key order; the unsharded unit masked out
    torch.testing.assert_close(out[0], torch.tensor([10.0**0.5, 2.0]))
    torch.testing.assert_close(out[1], torch.tensor([26.0**0.5]))
