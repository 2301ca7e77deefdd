"""One rank of the distributed-norm test: LARC(distributed_norm=True) on this rank's shard.

Run as ``python distributed_worker.py RANK WORLD STORE OUT`` (STORE: a file both ranks
rendezvous through, so no port can be taken by someone else); the shards are the rows
``RANK::WORLD`` of the tensors ``shared_tensors()`` makes, and the updated shards are
saved to OUT.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist


def shared_tensors() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, grad) pairs: two small ones (stacked in a block) and a big one (a foreach single)."""
    generator = torch.Generator().manual_seed(7)
    shapes = [(6, 5), (6, 5), (90, 60)]
    return [(torch.randn(s, generator=generator), torch.randn(s, generator=generator)) for s in shapes]


def larc_step(pairs: list[tuple[torch.Tensor, torch.Tensor]], distributed_norm: bool) -> list[torch.Tensor]:
    from optiplug_larc.larc import LARC

    params = [torch.nn.Parameter(w.clone()) for w, _ in pairs]
    for p, (_, g) in zip(params, pairs, strict=True):
        p.grad = g.clone()
    sgd = torch.optim.SGD(params, lr=0.5, momentum=0.9, weight_decay=1e-2)
    LARC(sgd, trust_coefficient=0.01, clip=False, distributed_norm=distributed_norm).step()
    return [p.detach() for p in params]


def main() -> None:
    rank, world, store, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        shards = [(w[rank::world].contiguous(), g[rank::world].contiguous()) for w, g in shared_tensors()]
        torch.save(larc_step(shards, distributed_norm=True), out)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
