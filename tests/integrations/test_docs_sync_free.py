"""The ``built.sync_free`` section of docs/recipe.md: its example runs, and what the text says it changes holds.

The example is read from the page (the one ``python`` block of the section) and run as
it is written; the claims beside it (the schedule moves over a skipped update, ``step``
returns True, no warning until the count is read) are checked against the same loop with
``sync_free`` off, the default the page compares with.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch

import optiplug

PAGE = Path(__file__).resolve().parents[2] / "docs" / "recipe.md"
HEADING = "### A step without host synchronisation: `built.sync_free`"


def section_example() -> str:
    text = PAGE.read_text()
    assert HEADING in text, f"{PAGE} lost the section {HEADING!r}"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section has one python example"
    return blocks[0]


def test_the_documented_example_runs_and_prints_what_the_text_says(capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(section_example(), str(PAGE), "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.splitlines() == [
        "epoch 0: 1 skipped so far, schedule at update 10",
        "epoch 1: 1 skipped so far, schedule at update 20",
    ]
    messages = [str(w.message) for w in caught]
    assert messages == ["epoch 0: 1 update(s) skipped (gradients not finite)"]  # the loop's own, at the epoch's end


def run(sync_free: bool) -> tuple[optiplug.Built, list[bool], list[tuple[int, str]], torch.nn.Module]:
    """The page's loop, the update (or not) of each step, and the warnings with the step that gave them."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    recipe = {
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05, "fused": True},
        "schedules": {"lr": {"name": "cosine", "start_value": 1e-3, "end_value": 0.0}},
        "clip": {"max_norm": 1.0},
    }
    built = optiplug.build(recipe, model, steps_per_epoch=10, num_epochs=2)
    built.sync_free = sync_free
    returned, warned = [], []
    data = torch.Generator().manual_seed(1)
    for step in range(20):
        inputs = torch.randn(4, 8, generator=data)
        if step == 5:
            inputs[0, 0] = float("nan")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            returned.append(built.step(model(inputs).square().mean()))
        warned += [(step, str(w.message)) for w in caught]
    return built, returned, warned, model


def test_what_sync_free_changes_against_the_default():
    default, returned, warned, default_model = run(sync_free=False)
    assert returned == [i != 5 for i in range(20)]
    assert warned == [
        (5, "skipped update 5: gradients are not finite (1 skipped so far); parameters, momenta and schedule are "
            "unchanged")
    ]  # fmt: skip
    assert (default.skipped_updates, default.scheduler.last_epoch) == (1, 19)

    free, returned, warned, free_model = run(sync_free=True)
    assert returned == [True] * 20 and warned == []
    assert (free.skipped_updates, free.scheduler.last_epoch) == (1, 20)
    # the skipped update changed no parameter and no state: the optimizer took 19 steps in both runs
    assert free.optimizer.state[next(free_model.parameters())]["step"].item() == 19
    assert default.optimizer.state[next(default_model.parameters())]["step"].item() == 19


@pytest.mark.parametrize("sync_free", [False, True])
def test_the_first_update_is_checked_on_the_host_either_way(sync_free):
    model = torch.nn.Linear(3, 1)
    built = optiplug.build({"optimizer": {"name": "sgd", "lr": 0.1}}, model)
    built.sync_free = sync_free
    with pytest.warns(optiplug.OptiplugWarning, match="skipped update 0"):
        assert built.step(model(torch.full((2, 3), float("nan"))).sum()) is False
    assert built.skipped_updates == 1
