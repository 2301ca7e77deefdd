"""ZeRO (optiplug_zero): two gloo processes on CPU train exactly as one unsharded optimizer does.

The scenarios (zero_workers.SCENARIOS) are a canonical SGD recipe with four groups and a
cosine lr, AdamW inside LARC with a scheduled weight decay and bucketed parameters, and a
VISSL config with ``use_zero: true``, LARC and a warmup + cosine lr. Both ranks see the same
batches, so the unsharded reference (computed here, in one process) must match bit for bit.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

import optiplug

HERE = Path(__file__).parent
WORLD = 2
DEADLINE = 55.0  # seconds for both processes together (the issue bounds it under 60); a run takes 10 to 15


@pytest.fixture(scope="module")
def workers():
    """The worker module, importable by plain name here and in the spawned processes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(HERE))
        yield importlib.import_module("zero_workers")


@pytest.fixture(scope="module")
def runs(workers, tmp_path_factory):
    """Every scenario trained on two processes: ``runs[scenario][rank]`` is what that rank saved."""
    out = tmp_path_factory.mktemp("zero")
    workers.spawn(workers.worker, WORLD, (str(out),), deadline=DEADLINE)
    return {
        name: [torch.load(out / f"{name}-{rank}.pt", weights_only=False) for rank in range(WORLD)]
        for name in workers.SCENARIOS
    }


@pytest.fixture(scope="module")
def references(workers):
    return {name: workers.reference(name) for name in workers.SCENARIOS}


SCENARIOS = ["sgd", "adamw_larc", "vissl"]


def equal_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_rank_ends_with_the_unsharded_parameters(runs, references, name):
    for rank in range(WORLD):
        assert equal_tensors(runs[name][rank]["params"], references[name]["params"]), rank


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_rank_holds_the_state_of_its_shard_only(runs, references, name):
    trained = set(references[name]["params"])
    local = [set(runs[name][rank]["state"]) for rank in range(WORLD)]
    for rank in range(WORLD):
        assert local[rank] == set(runs[name][rank]["assigned"])
        assert 0 < len(local[rank]) < len(trained)
    assert local[0].isdisjoint(local[1])
    assert local[0] | local[1] == trained


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_schedule_reaches_every_group_of_every_shard(runs, references, workers, name):
    """Before each step, each rank's shard optimizer holds every group's scheduled lr and weight decay."""
    expected = references[name]["options"][: workers.STEPS]
    assert len({tuple(row) for row in expected}) > 1, "the scenario's schedule should move"
    for rank in range(WORLD):
        assert runs[name][rank]["options"] == expected, rank


@pytest.mark.parametrize("name", SCENARIOS)
def test_consolidated_state_is_the_unsharded_state(runs, references, name):
    saved, reference = runs[name][0]["consolidated"], references[name]["state"]
    state, expected = saved["optimizer"]["state"], reference["optimizer"]["state"]
    assert state.keys() == expected.keys()
    for index in expected:
        assert equal_tensors(state[index], expected[index]), index

    def options(groups):
        return [{k: v for k, v in group.items() if k != "params"} for group in groups]

    assert options(saved["optimizer"]["param_groups"]) == options(reference["optimizer"]["param_groups"])
    assert saved["scheduler"]["step"] == reference["scheduler"]["step"]
    assert runs[name][1]["consolidated"] is None


@pytest.mark.parametrize("name", SCENARIOS)
def test_resuming_from_the_consolidated_state_continues_the_unsharded_run(runs, references, name):
    for rank in range(WORLD):
        assert equal_tensors(runs[name][rank]["resumed"], references[name]["resumed"]), rank


@pytest.mark.parametrize(("name", "local"), [("sgd", "SGD"), ("adamw_larc", "LARC"), ("vissl", "LARC")])
def test_zero_is_outermost_and_shards_the_built_optimizer(runs, name, local):
    """VISSL's order: ZeRO around LARC around the optimizer (each rank's LARC sees whole parameters)."""
    assert (runs[name][0]["type"], runs[name][0]["local"]) == ("ZeroRedundancyOptimizer", local)


# -- in one process ------------------------------------------------------------------------------------------------


@pytest.fixture
def one_rank(tmp_path):
    """A process group of one (a file store, gloo), destroyed afterwards."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def recipe(*wrappers: dict) -> dict:
    return {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "wrappers": list(wrappers)}


def test_without_a_process_group_the_optimizer_stays_whole(workers):
    with pytest.warns(optiplug.OptiplugWarning, match="torch.distributed is not initialized"):
        built = optiplug.build(recipe({"name": "zero"}), nn.Linear(2, 2))
    assert type(built.optimizer) is torch.optim.SGD


def test_larc_outside_zero_reaches_the_sharded_optimizer(one_rank):
    """[zero, larc]: LARC computes over ZeRO's groups; consolidate() finds ZeRO inside LARC."""
    from optiplug_zero import consolidate, sharded

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    reference = nn.Linear(3, 2)
    reference.load_state_dict(model.state_dict())
    larc = {"name": "larc", "trust_coefficient": 0.02}
    built = optiplug.build(recipe({"name": "zero"}, larc), model)
    plain = optiplug.build(recipe(larc), reference)
    assert type(built.optimizer).__name__ == "LARC" and sharded(built.optimizer) is not None
    x = torch.randn(4, 3)
    for _ in range(3):
        built.step(model(x).square().mean())
        plain.step(reference(x).square().mean())
    assert equal_tensors(model.state_dict(), reference.state_dict())
    consolidate(built.optimizer, to=0)
    assert built.state_dict()["optimizer"]["state"].keys() == plain.state_dict()["optimizer"]["state"].keys()


def test_state_dict_before_consolidation_says_what_to_do(one_rank):
    built = optiplug.build(recipe({"name": "zero"}), nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match=r"consolidate_state_dict\(to=0\)"):
        built.state_dict()


def test_consolidate_leaves_an_unsharded_optimizer_alone():
    from optiplug_zero import consolidate

    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    consolidate(optimizer)
    assert optimizer.state_dict()["state"] == {}


@pytest.mark.parametrize(
    ("wrappers", "path", "words"),
    [
        ([{"name": "zero"}, {"name": "zero"}], "zero", "sharded already"),
        ([{"name": "zero", "bucket_view": True}], "wrappers[0].bucket_view", "parameters_as_bucket_view"),
        ([{"name": "zero", "parameters_as_bucket_view": "yes"}], "wrappers[0].parameters_as_bucket_view", "'yes'"),
        ([{"name": "zeor"}], "wrappers[0].name", "did you mean 'zero'"),
    ],
)
def test_config_errors(one_rank, wrappers, path, words):
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(recipe(*wrappers), nn.Linear(2, 2))
    assert info.value.path == path
    assert words in str(info.value)


def test_a_used_optimizer_is_refused(one_rank):
    from optiplug_zero.sharding import wrap_zero

    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    with pytest.raises(optiplug.ConfigError, match="before its first step"):
        wrap_zero(optimizer, None)
