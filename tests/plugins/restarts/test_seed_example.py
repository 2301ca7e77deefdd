"""The adamwr README's example loop, unchanged apart from the imports, with the drop-ins."""

from __future__ import annotations

import math

import pytest
import torch

from optiplug_adamw import AdamW
from optiplug_restarts import CyclicLRWithRestarts


@pytest.fixture(autouse=True)
def one_thread():
    """3200 tiny updates: torch's thread pool only adds overhead on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def resnet():
    """A small stand-in for the README's resnet()."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))


def test_readme_example_runs_and_restarts_at_5_6_8_10_12():
    torch.manual_seed(1)
    inputs = torch.randn(1024, 8)
    targets = inputs[:, :1] * 2 - inputs[:, 1:2]
    loader = list(zip(inputs.split(32), targets.split(32), strict=True))
    lrs, losses = [], []

    # --- the README's example ---
    batch_size = 32
    epoch_size = 1024
    model = resnet()
    optimizer = AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5)
    scheduler = CyclicLRWithRestarts(optimizer, batch_size, epoch_size, restart_period=5, t_mult=1.2, policy="cosine")
    for epoch in range(100):  # noqa: B007 - the README names it
        scheduler.step()
        for x, y in loader:  # train_for_every_batch(...)
            lrs.append(optimizer.param_groups[0]["lr"])
            loss = torch.nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.batch_step()
        losses.append(loss.item())  # validate(...)
    # ---

    assert len(lrs) == 100 * 32 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.05 * losses[0]
    starts = [0]
    for length in (5, 6, 8, 10, 12, 15, 18, 22):  # ceil(5 * 1.2) = 6, ceil(6 * 1.2) = 8, ...
        starts.append(starts[-1] + length)
    for start in starts:
        assert lrs[start * 32] == 1e-3, start  # every period starts at the peak
        if start:
            assert lrs[start * 32 - 1] < 1e-5  # and the one before ends near min_lr
