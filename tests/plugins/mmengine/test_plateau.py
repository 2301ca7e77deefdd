"""MMEngine's ReduceOnPlateau schedulers, value for value MMEngine's own fed the same validation metrics.

The reference builds MMEngine's schedulers with its registry on its OptimWrapper and
steps them as its ParamSchedulerHook does: after each iteration the iteration-based ones,
at an epoch's end the epoch-based ones (the plateau only counts the epoch then), then,
after the validation, the plateau with the metrics (``after_val_epoch``). optiplug gets
the same metrics through ``built.report(metrics)`` after the same iterations.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
import torch
from torch import nn

import optiplug
from optiplug import ConfigError, StateError

mmengine_optim = pytest.importorskip("mmengine.optim", reason="mmengine is not installed (pip install mmengine)")

EPOCH = 4

# the reference steps the raw optimizer, not the OptimWrapper whose steps MMEngine's schedulers count: they warn
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `scheduler.step\\(\\)` before:UserWarning")


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def config(schedulers: list[dict[str, Any]], epochs: int = 12, **wrapper: Any) -> dict[str, Any]:
    optimizer = {"type": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
    return {
        "optim_wrapper": {"optimizer": optimizer, **wrapper},
        "param_scheduler": schedulers,
        "train_cfg": {"max_epochs": epochs},
    }


def per_parameter(net: nn.Module, optimizer: torch.optim.Optimizer, option: str) -> list[float]:
    """The option of each of ``net``'s parameters, in the model's order (MMEngine's groups are not optiplug's)."""
    value = {id(p): g[option] for g in optimizer.param_groups for p in g["params"]}
    return [value[id(p)] for p in net.parameters()]


def fed_metrics(seed: int, count: int, key: str = "loss", rising: bool = False) -> list[dict[str, float]]:
    rng = random.Random(seed)
    value, out = 1.0, []
    for _ in range(count):
        change = rng.choice([1.0, 1.0, 0.9, 1.1, 0.99999])
        value = value / change if rising else value * change
        out.append({key: value, "other": -value})
    return out


def mmengine_trace(
    cfg: dict[str, Any],
    fed: list[dict[str, float]],
    option: str = "lr",
    val_every: int = EPOCH,
    iter_based: bool = False,
) -> list[list[float]]:
    """Each group's option before every iteration, MMEngine's runner stepping its schedulers and validating."""
    from mmengine.registry import PARAM_SCHEDULERS

    net = model()
    wrapper = mmengine_optim.build_optim_wrapper(net, copy.deepcopy(cfg["optim_wrapper"]))
    train = cfg["train_cfg"]
    epochs = 1 if iter_based else train["max_epochs"]
    iterations = train["max_iters"] if iter_based else epochs * EPOCH
    schedulers = []
    for item in copy.deepcopy(cfg["param_scheduler"]):
        item.setdefault("end", epochs if item.get("by_epoch", True) else iterations)
        schedulers.append(PARAM_SCHEDULERS.build(item, default_args={"optimizer": wrapper, "epoch_length": EPOCH}))
    trace, reports = [], iter(fed)
    for i in range(iterations):
        trace.append(per_parameter(net, wrapper.optimizer, option))
        wrapper.optimizer.step()
        for s in schedulers:
            if not s.by_epoch:
                s.step()
        if not iter_based and (i + 1) % EPOCH == 0:
            for s in schedulers:
                if s.by_epoch:
                    s.step()
        if (i + 1) % val_every == 0:
            metrics = next(reports)
            for s in schedulers:
                if s.by_epoch and getattr(s, "need_val_args", False):
                    s.step(metrics)
    return trace


def optiplug_run(
    built: optiplug.Built,
    net: nn.Module,
    fed: list[dict[str, float]],
    iterations: int,
    option: str = "lr",
    val_every: int = EPOCH,
) -> list[list[float]]:
    trace, reports = [], iter(fed)
    for i in range(iterations):
        trace.append(per_parameter(net, built.optimizer, option))
        built.optimizer.step()
        built.scheduler.step()
        if (i + 1) % val_every == 0:
            built.report(next(reports))
    return trace


def optiplug_trace(
    cfg: dict[str, Any], fed: list[dict[str, float]], option: str = "lr", **kw: Any
) -> list[list[float]]:
    net = model()
    built = optiplug.build(copy.deepcopy(cfg), net, steps_per_epoch=EPOCH)
    return optiplug_run(built, net, fed, cfg["train_cfg"]["max_epochs"] * EPOCH, option, **kw)


PLATEAU = {"type": "ReduceOnPlateauLR", "monitor": "loss", "patience": 1, "factor": 0.5}

CASES = {
    "alone": [PLATEAU],
    "cooldown, abs, min_value": [
        {**PLATEAU, "cooldown": 1, "threshold_rule": "abs", "threshold": 0.01, "min_value": 0.02}
    ],
    "greater": [{**PLATEAU, "monitor": "acc", "rule": "greater", "patience": 0, "factor": 0.3}],
    "eps skips small reductions": [{**PLATEAU, "patience": 0, "factor": 0.9, "eps": 0.005, "min_value": 0.03}],
    "begin and end, in epochs": [{**PLATEAU, "patience": 0, "begin": 3, "end": 8}],
    # a warmup by iteration that the reductions fall in: the chain multiplies, each from the value the other left
    "inside a warmup": [
        {"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "begin": 0, "end": 30},
        {**PLATEAU, "patience": 0},
    ],
    "with a cosine by epoch": [
        {"type": "CosineAnnealingLR", "eta_min": 0.001, "by_epoch": True, "begin": 2},
        {**PLATEAU, "patience": 0, "factor": 0.7},
    ],
    "two plateaus": [{**PLATEAU, "patience": 0}, {**PLATEAU, "monitor": "acc", "rule": "greater", "patience": 2}],
}


@pytest.mark.parametrize("schedulers", CASES.values(), ids=list(CASES))
def test_every_iteration_matches_mmengine_fed_the_same_metrics(schedulers):
    rising = any(s.get("rule") == "greater" for s in schedulers)
    cfg = config(schedulers, paramwise_cfg={"bias_lr_mult": 2.0})
    fed = [m | {"acc": 1.0 / m["loss"]} for m in fed_metrics(3, 12, rising=rising)]
    expected = mmengine_trace(cfg, fed)
    assert optiplug_trace(cfg, fed) == expected
    assert len({tuple(row) for row in expected}) > 2, "no reduction happened: the case tests nothing"


def test_momentum_and_a_param_scheduler_of_weight_decay():
    cfg = config(
        [
            {"type": "ReduceOnPlateauMomentum", "monitor": "loss", "patience": 0, "factor": 0.9},
            {"type": "ReduceOnPlateauParamScheduler", "param_name": "weight_decay", "patience": 1, "factor": 0.5},
        ]
    )
    fed = fed_metrics(4, 12)
    for option in ("momentum", "weight_decay"):
        expected = mmengine_trace(cfg, fed, option)
        assert optiplug_trace(cfg, fed, option) == expected
        assert len({tuple(row) for row in expected}) > 1


def test_an_iter_based_loop_validating_every_few_iterations():
    """No epoch ends in an IterBasedTrainLoop: MMEngine's plateau sees epoch 0 (its end defaults to max_epochs, 1)."""
    cfg = {
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1}},
        "param_scheduler": [
            {"type": "LinearLR", "start_factor": 0.2, "by_epoch": False, "end": 10},
            {"type": "ReduceOnPlateauLR", "monitor": "loss", "patience": 0, "factor": 0.5},
        ],
        "train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 40, "val_interval": 5},
    }
    fed = fed_metrics(5, 8)
    expected = mmengine_trace(cfg, fed, val_every=5, iter_based=True)
    net = model()
    built = optiplug.build(copy.deepcopy(cfg), net, steps_per_epoch=EPOCH)
    assert optiplug_run(built, net, fed, 40, val_every=5) == expected
    assert len({tuple(row) for row in expected}) > 12


def test_a_resumed_run_takes_the_same_decisions(tmp_path):
    cfg = config(CASES["inside a warmup"])
    fed = fed_metrics(6, 12)
    whole = optiplug_trace(cfg, fed)
    net = model()
    first = optiplug.build(copy.deepcopy(cfg), net, steps_per_epoch=EPOCH)
    head = optiplug_run(first, net, fed[:5], 5 * EPOCH)
    path = tmp_path / "state.pt"
    torch.save(first.state_dict(), path)
    net = model()
    second = optiplug.build(copy.deepcopy(cfg), net, steps_per_epoch=EPOCH)
    second.load_state_dict(torch.load(path, weights_only=False))
    (state,) = second.scheduler.state_dict()["metric_states"]
    assert state == first.scheduler.state_dict()["metric_states"][0] and state["reductions"]
    assert head + optiplug_run(second, net, fed[5:], 7 * EPOCH) == whole


def test_a_state_of_another_chain_is_refused():
    cfg = config([PLATEAU])
    state = optiplug.build(copy.deepcopy(cfg), model(), steps_per_epoch=EPOCH).scheduler.state_dict()
    state["metric_states"][0]["plateaus"] = []
    with pytest.raises(StateError, match="ReduceOnPlateau at schedules.lr"):
        optiplug.build(copy.deepcopy(cfg), model(), steps_per_epoch=EPOCH).scheduler.load_state_dict(state)


def test_the_monitored_key_must_be_in_the_report():
    built = optiplug.build(config([{**PLATEAU, "monitor": "coco/bbox_mAP"}]), model(), steps_per_epoch=EPOCH)
    with pytest.raises(ValueError, match="reads the metric 'coco/bbox_mAP'.*it holds: loss"):
        built.report({"loss": 0.5})
    built.report(0.5)  # one number: read as the monitored metric


@pytest.mark.parametrize(
    ("entry", "path", "words"),
    [
        ({"rule": "lesser"}, "param_scheduler[0].rule", "'less' or 'greater'"),
        ({"threshold_rule": "relative"}, "param_scheduler[0].threshold_rule", "'rel' or 'abs'"),
        ({"factor": 1.0}, "param_scheduler[0].factor", "< 1.0"),
        ({"patience": 1.5}, "param_scheduler[0].patience", "whole number"),
        ({"min_value": [0.0, 0.1]}, "param_scheduler[0].min_value", "one number"),
        ({"monitor": 3}, "param_scheduler[0].monitor", "name of a metric"),
        ({"convert_to_iter_based": True}, "param_scheduler[0].convert_to_iter_based", "by epoch"),
        ({"mode": "min"}, "param_scheduler[0].mode", "rule"),
    ],
)
def test_arguments_mmengine_refuses_are_refused_at_their_key(entry, path, words):
    with pytest.raises(ConfigError, match=words) as caught:
        optiplug.build(config([{**PLATEAU, **entry}]), model(), steps_per_epoch=EPOCH)
    assert caught.value.path == path


def test_rescaled_onto_a_shorter_run_the_chain_keeps_every_reduction_taken():
    net = model()
    long = optiplug.build(config([{**PLATEAU, "patience": 0}], epochs=12), net, steps_per_epoch=EPOCH)
    optiplug_run(long, net, [{"loss": 1.0}] * 8, 8 * EPOCH)  # reductions after epochs 2 to 8
    reduced = per_parameter(net, long.optimizer, "lr")
    assert reduced[0] == 0.1 * 0.5**7
    short = optiplug.build(config([{**PLATEAU, "patience": 0}], epochs=6), net, steps_per_epoch=EPOCH)
    with pytest.warns(optiplug.OptiplugWarning):
        short.load_state_dict(long.state_dict(), resume="rescale")  # iteration 32 of 48 is 16 of 24
    assert short.scheduler.last_epoch == 16
    assert per_parameter(net, short.optimizer, "lr") == reduced
    (state,) = short.scheduler.state_dict()["metric_states"]
    assert [at for at, _ in state["reductions"]] == [8, 12, 16, 16, 16, 16, 16]
