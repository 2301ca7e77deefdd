"""Running a function on several gloo processes within a deadline (importable as ``gloo_ranks``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp


def run_ranks(entry: Callable[..., None], world: int, directory: Path, timeout: float) -> list[dict[str, Any]]:
    """Spawn ``entry(rank, world, store, outs)`` on ``world`` processes; return what each rank saved to its out file.

    The processes rendezvous through a file store in ``directory`` on the loopback interface;
    ranks still alive after ``timeout`` seconds are killed and the run is a TimeoutError.
    """
    outs = [str(directory / f"rank{rank}.pt") for rank in range(world)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLOO_SOCKET_IFNAME", "lo")
        patch.setenv("OMP_NUM_THREADS", "1")
        patch.delenv("LOCAL_WORLD_SIZE", raising=False)
        context = mp.start_processes(
            entry, args=(world, str(directory / "store"), outs), nprocs=world, join=False, start_method="spawn"
        )
    deadline = time.monotonic() + timeout
    try:
        while not context.join(timeout=1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {world} gloo ranks did not finish in {timeout} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
                process.join()
    return [torch.load(out, weights_only=True) for out in outs]
