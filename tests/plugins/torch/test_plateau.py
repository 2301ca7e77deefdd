"""``reduce_on_plateau``: value for value torch's ReduceLROnPlateau fed the same metrics, resumed, reported to.

The reference is torch's own scheduler on a plain SGD whose groups start at the lrs
optiplug's build gave; both are fed the same metric after every few updates.
"""

from __future__ import annotations

import io
import math
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

import optiplug
from optiplug import ConfigError, OptiplugWarning, StateError
from optiplug.tooling.curves import compute_curves

UPDATES_PER_REPORT = 3
REPORTS = 40


def recipe(**options: Any) -> dict[str, Any]:
    return {
        "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9},
        "rules": [{"kind": "bias", "set": {"lr_mult": 0.5}}],  # two groups: 0.1 and 0.05
        "schedules": {"lr": {"name": "reduce_on_plateau", **options}},
    }


def build(config: Any, **kw: Any) -> optiplug.Built:
    torch.manual_seed(0)
    kw = {"steps_per_epoch": UPDATES_PER_REPORT, "num_epochs": REPORTS, **kw}
    return optiplug.build(config, nn.Linear(3, 2), **kw)


def metrics(seed: int, mode: str = "min", count: int = REPORTS) -> list[float]:
    """A drifting metric: improvements large and tiny (inside the threshold), stalls and setbacks."""
    rng = random.Random(seed)
    value, out = 1.0, []
    for _ in range(count):
        change = rng.choice([1.0, 1.0, 0.99999, 0.9999, 0.97, 0.8, 1.05, 1.0001])
        value = value * change if mode == "min" else value / change
        out.append(value)
    stall = count * 2 // 3
    return out[:stall] + [out[stall - 1]] * (count - stall)  # then a stall longer than torch's default patience


def torch_trace(lrs: list[float], options: dict[str, Any], fed: list[float]) -> list[list[float]]:
    """Each group's lr before every update, torch's ReduceLROnPlateau stepped after every few updates."""
    params = [nn.Parameter(torch.zeros(1)) for _ in lrs]
    optimizer = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)])
    names = {"min_value": "min_lr"}
    scheduler = ReduceLROnPlateau(optimizer, **{names.get(k, k): v for k, v in options.items() if k != "monitor"})
    trace = []
    for metric in fed:
        for _ in range(UPDATES_PER_REPORT):
            trace.append([g["lr"] for g in optimizer.param_groups])
            optimizer.step()
        scheduler.step(metric)
    trace.append([g["lr"] for g in optimizer.param_groups])
    return trace


def optiplug_trace(built: optiplug.Built, fed: list[Any], report=None) -> list[list[float]]:
    report = report or built.report
    trace = []
    for metric in fed:
        for _ in range(UPDATES_PER_REPORT):
            trace.append([g["lr"] for g in built.optimizer.param_groups])
            built.optimizer.step()
            built.scheduler.step()
        report(metric)
    trace.append([g["lr"] for g in built.optimizer.param_groups])
    return trace


CASES = [
    {"patience": 2, "factor": 0.5},
    {"patience": 0, "factor": 0.3, "cooldown": 2},
    {"patience": 1, "threshold": 0.01, "threshold_mode": "abs", "min_value": 0.004},
    {"mode": "max", "patience": 1, "factor": 0.7, "threshold": 1e-3},
    {"mode": "max", "patience": 0, "threshold_mode": "abs", "threshold": 0.0, "cooldown": 1, "min_value": 0.01},
    {"patience": 0, "factor": 0.9, "eps": 0.004, "min_value": 0.02},  # reductions under eps are skipped per group
    {},  # torch's defaults: patience 10
]


@pytest.mark.parametrize("options", CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_update_matches_torchs_reduce_lr_on_plateau(options, seed):
    built = build(recipe(**options))
    lrs = [g["lr"] for g in built.optimizer.param_groups]
    assert lrs == [0.1, 0.05]
    fed = metrics(seed, options.get("mode", "min"))
    expected = torch_trace(lrs, options, fed)
    assert optiplug_trace(built, fed) == expected
    assert len({tuple(row) for row in expected}) > 1, "the metrics never made torch reduce: the case tests nothing"


def test_a_reduction_applies_from_the_next_update_and_is_recorded_with_its_update():
    built = build(recipe(patience=0, factor=0.5))
    for _ in range(5):
        built.optimizer.step()
        built.scheduler.step()
    assert built.report(1.0) is False  # the first metric is the best so far
    assert built.report(1.0) is True
    assert [g["lr"] for g in built.optimizer.param_groups] == [0.05, 0.025]
    states = built.scheduler.state_dict()["metric_states"]  # one per group base (0.1, 0.05): the same decisions
    assert len(states) == 2 and states[0] | {"name": ""} == states[1] | {"name": ""}
    assert states[0]["reductions"] == [5] and states[0]["best"] == 1.0 and states[0]["reports"] == 2
    values = built.scheduler.bindings[0].table.schedule.values(torch.arange(8, dtype=torch.float64))
    assert values.tolist() == [0.1] * 5 + [0.05] * 3


def test_from_a_recipe_file_with_a_monitor_and_a_mapping_of_metrics(tmp_path):
    path = tmp_path / "plateau.yaml"
    path.write_text(
        "optimizer: {name: SGD, lr: 0.1}\n"
        "schedules:\n"
        "  lr: {name: reduce_on_plateau, mode: max, patience: 1, factor: 0.5, monitor: val/acc}\n"
    )
    built = optiplug.build(str(path), nn.Linear(3, 2), steps_per_epoch=UPDATES_PER_REPORT, num_epochs=10)
    fed = [0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7]
    trace = optiplug_trace(built, [{"val/acc": m, "val/loss": 1.0 - m} for m in fed])
    assert [row[0] for row in trace] == [
        row[0] for row in torch_trace([0.1], {"mode": "max", "patience": 1, "factor": 0.5}, fed)
    ]
    assert trace[-1] == [0.025]


def test_lightning_s_step_with_the_metric_reports_without_advancing():
    """Lightning calls ``scheduler.step(metric)`` for an lr_scheduler entry with ``monitor``."""
    built = build(recipe(patience=1, factor=0.5))
    fed = metrics(3)
    expected = torch_trace([0.1, 0.05], {"patience": 1, "factor": 0.5}, fed)
    assert optiplug_trace(built, [torch.tensor(m) for m in fed], report=built.scheduler.step) == expected
    assert built.scheduler.last_epoch == REPORTS * UPDATES_PER_REPORT


def test_resume_carries_every_decision(tmp_path):
    options = {"patience": 1, "factor": 0.5, "cooldown": 1}
    fed = metrics(5)
    whole = optiplug_trace(build(recipe(**options)), fed)
    first = build(recipe(**options))
    half = optiplug_trace(first, fed[:17])[:-1]
    saved = io.BytesIO()
    torch.save(first.state_dict(), saved)
    saved.seek(0)
    second = build(recipe(**options))
    second.load_state_dict(torch.load(saved, weights_only=False))
    assert second.scheduler.state_dict()["metric_states"] == first.scheduler.state_dict()["metric_states"]
    assert half + optiplug_trace(second, fed[17:]) == whole


def test_a_state_without_the_decisions_is_refused():
    built = build(recipe(patience=0))
    state = built.scheduler.state_dict()
    del state["metric_states"]
    with pytest.raises(StateError, match="reduce_on_plateau at schedules.lr"):
        build(recipe(patience=0)).scheduler.load_state_dict(state)


def test_a_metric_may_be_a_zero_dim_tensor_a_one_element_tensor_or_a_numpy_number():
    built = build(recipe(patience=0, factor=0.5))
    for metric in (torch.tensor(1.0), torch.tensor([1.0]), np.float32(1.0), np.array(1.0), 1):
        built.report(metric)
    assert built.scheduler.state_dict()["metric_states"][0]["reports"] == 5


@pytest.mark.parametrize(
    ("metric", "error", "words"),
    [
        (float("nan"), ValueError, "is nan"),
        (torch.tensor(float("inf")), ValueError, "is inf"),
        (torch.tensor([0.5, 0.4]), TypeError, "tensor of shape (2,)"),
        (True, TypeError, "must be a number"),
        ("0.5", TypeError, "must be a number"),
        ([0.5], TypeError, "must be a number or a one-element tensor"),
        ({"val_loss": 0.5}, ValueError, "has no monitor"),
    ],
)
def test_a_metric_that_is_not_one_finite_number_is_refused(metric, error, words):
    built = build(recipe(patience=0))
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        built.report(metric)
    assert built.scheduler.state_dict()["metric_states"][0]["reports"] == 0


def test_a_missing_monitor_key_names_the_keys_reported():
    built = build(recipe(monitor="val_loss"))
    with pytest.raises(ValueError, match="reads the metric 'val_loss'.*it holds: loss, acc"):
        built.report({"loss": 0.3, "acc": 0.9})


def test_a_metric_reported_to_a_recipe_without_a_metric_driven_schedule_is_ignored_with_one_warning():
    config = {
        "optimizer": {"name": "SGD", "lr": 0.1},
        "schedules": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0}},
    }
    built = build(config)
    with pytest.warns(OptiplugWarning, match="no schedule of this recipe reads metrics"):
        assert built.report(0.5) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        built.report(0.4)  # said once
    with pytest.raises(TypeError, match="takes no epoch"):
        built.scheduler.step(3)  # without a metric-driven schedule, an argument is an epoch, as before
    with pytest.raises(ValueError, match="is nan"):
        built.report(math.nan)  # still checked


@pytest.mark.parametrize(
    ("options", "path", "words"),
    [
        ({"mode": "minimum"}, "schedules.lr.mode", "'min'"),
        ({"factor": 1.0}, "schedules.lr.factor", r"\[0.0, 1.0\)"),
        ({"patience": -1}, "schedules.lr.patience", ">= 0"),
        ({"threshold_mode": "relative"}, "schedules.lr.threshold_mode", "'rel'"),
        ({"min_lr": 0.01}, "schedules.lr.min_lr", "min_value"),
        ({"update_interval": "epoch"}, "schedules.lr.update_interval", "only when a metric is reported"),
    ],
)
def test_config_errors_name_the_path(options, path, words):
    with pytest.raises(ConfigError, match=words) as caught:
        build(recipe(**options))
    assert caught.value.path == path


def test_a_composite_refuses_a_metric_driven_part():
    config = recipe()
    config["schedules"]["lr"] = {
        "name": "composite",
        "schedulers": [{"name": "linear", "start_value": 0.01, "end_value": 0.1}, {"name": "reduce_on_plateau"}],
        "lengths": [0.1, 0.9],
    }
    with pytest.raises(ConfigError, match="driven by reported metrics.*cannot be a part of a composite") as caught:
        build(config)
    assert caught.value.path == "schedules.lr.schedulers[1].name"


def test_curves_say_they_hold_only_the_reductions_reported_so_far():
    built = build(recipe(patience=0, factor=0.5))
    with pytest.warns(OptiplugWarning, match="lr .reduce_on_plateau at schedules.lr. is driven by reported metrics"):
        fresh = compute_curves(built)
    assert fresh.metric_driven == {"lr"} and set(fresh.values["lr"][0].tolist()) == {0.1}
    for _ in range(4):
        built.optimizer.step()
        built.scheduler.step()
    built.report(1.0)
    built.report(1.0)
    with pytest.warns(OptiplugWarning):
        later = compute_curves(built)
    assert later.values["lr"][0, :6].tolist() == [0.1] * 4 + [0.05] * 2


def test_lightning_steps_the_same_scheduler_per_update_and_reports_the_monitored_metric(tmp_path):
    lightning = pytest.importorskip("lightning", reason="Lightning is not installed")
    fed = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8]

    class Module(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Linear(3, 1)
            self.built = optiplug.build(recipe(patience=1, factor=0.5), self, steps_per_epoch=2, num_epochs=6)
            self.seen: list[float] = []

        def training_step(self, batch, _index):
            return nn.functional.mse_loss(self.net(batch[0]), batch[1])

        def validation_step(self, batch, _index):
            self.log("val_loss", fed[self.current_epoch])

        def on_before_optimizer_step(self, optimizer):
            self.seen.append(optimizer.param_groups[0]["lr"])

        def configure_optimizers(self):
            scheduler = self.built.scheduler  # the same scheduler twice: stepped per update, and given the metric
            return [self.built.optimizer], [
                {"scheduler": scheduler, "interval": "step"},
                {"scheduler": scheduler, "interval": "epoch", "monitor": "val_loss", "reduce_on_plateau": True},
            ]

    inputs = torch.randn(4, 3)
    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(inputs, inputs.sum(1, keepdim=True)), batch_size=2
    )
    module = Module()
    trainer = lightning.Trainer(
        accelerator="cpu",
        max_epochs=6,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on workers and logging intervals
        trainer.fit(module, data, data)
    torch_lrs = [row[0] for row in torch_trace([0.1], {"patience": 1, "factor": 0.5}, fed)]
    per_epoch = [torch_lrs[epoch * UPDATES_PER_REPORT] for epoch in range(6)]  # torch's lr through each epoch
    assert len(set(per_epoch)) > 1
    assert module.seen == [lr for lr in per_epoch for _ in range(2)]
    assert module.built.scheduler.state_dict()["metric_states"][0]["reports"] == 6


ROOT = Path(__file__).resolve().parents[3]


def guide_block(after: str) -> str:
    """The first python block of docs/recipe.md after the words ``after``."""
    text = (ROOT / "docs" / "recipe.md").read_text(encoding="utf-8")
    start = text.index("```python\n", text.index(after)) + len("```python\n")
    return text[start : text.index("```", start)]


def torch_final_lr(lr: float, options: dict[str, Any], fed: list[float]) -> float:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = ReduceLROnPlateau(optimizer, **options)
    for metric in fed:
        scheduler.step(metric)
    return float(optimizer.param_groups[0]["lr"])


def test_the_guides_plain_loop_runs_as_written(monkeypatch):
    monkeypatch.chdir(ROOT)
    torch.manual_seed(0)
    inputs = torch.randn(20, 3)
    reported: list[float] = []

    def evaluate(_model: nn.Module) -> float:
        reported.append([1.0, 0.9, 0.9, 0.95, 0.9, 0.9, 0.8][len(reported) % 7])
        return reported[-1]

    names = {
        "optiplug": optiplug,
        "model": nn.Linear(3, 1),
        "train_loader": [(0.1 * x[None], torch.zeros(1, 1)) for x in inputs],  # 20 batches: the recipe's epoch
        "loss_fn": nn.functional.mse_loss,
        "evaluate": evaluate,
    }
    exec(guide_block("A plain loop:"), names)
    built = names["built"]
    assert len(reported) == 30 and built.scheduler.last_epoch == 600
    expected = torch_final_lr(0.1, {"mode": "min", "factor": 0.5, "patience": 3}, reported)
    assert expected < 0.1 and built.optimizer.param_groups[0]["lr"] == expected


def test_the_guides_hugging_face_callback_reports_the_evaluation(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers", reason="Hugging Face Transformers is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    names: dict[str, Any] = {}
    exec(guide_block("give it the evaluation metrics with a callback").split("trainer = Trainer")[0], names)

    class Regressor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Linear(3, 1)

        def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
            prediction = self.net(inputs)
            return {"loss": nn.functional.mse_loss(prediction, labels), "logits": prediction}

    torch.manual_seed(1)
    data = [{"inputs": x, "labels": x.sum(dim=0, keepdim=True)} for x in torch.randn(8, 3)]
    losses: list[float] = []

    class Record(transformers.TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            losses.append(metrics["eval_loss"])

    model = Regressor()
    options = {"mode": "max", "patience": 0, "factor": 0.5}  # the loss falls: every report after the first reduces
    built = optiplug.build(recipe(**options), model, steps_per_epoch=4, num_epochs=3)
    arguments = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        num_train_epochs=3,
        eval_strategy="epoch",
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        max_grad_norm=0.0,
    )
    trainer = transformers.Trainer(
        model=model,
        args=arguments,
        train_dataset=data,
        eval_dataset=data,
        optimizers=(built.optimizer, built.scheduler),
        callbacks=[names["ReportMetric"](built), Record()],
    )
    trainer.train()
    assert len(losses) == 3 and built.scheduler.last_epoch == 12
    state = built.scheduler.state_dict()["metric_states"][0]
    assert state["reports"] == 3 and state["reductions"]
    assert built.optimizer.param_groups[0]["lr"] == torch_final_lr(0.1, options, losses)


def test_explain_and_the_plot_command_say_the_end_value_holds_no_later_reduction(tmp_path, capsys):
    from optiplug.cli import main

    net = nn.Linear(3, 2)
    text = str(optiplug.build(recipe(patience=0), net, steps_per_epoch=3, num_epochs=2).explain(net))
    assert "lr (reduce_on_plateau at schedules.lr): driven by reported metrics" in text
    plain = optiplug.build(recipe() | {"schedules": {}}, net, steps_per_epoch=3, num_epochs=2)
    assert "driven by reported metrics" not in str(plain.explain(net))
    path = tmp_path / "plateau.yaml"
    path.write_text(
        "optimizer: {name: SGD, lr: 0.1}\nschedules:\n  lr: {name: reduce_on_plateau}\n"
        "run: {num_epochs: 2, steps_per_epoch: 3}\n"
    )
    assert main(["plot", str(path), "-o", str(tmp_path / "plateau.png")]) == 0
    err = capsys.readouterr().err
    assert "optiplug: warning: lr (reduce_on_plateau at schedules.lr) is driven by reported metrics" in err


def test_rescaled_onto_a_shorter_run_the_reductions_taken_so_far_still_apply():
    def run(epochs: int) -> dict[str, Any]:
        return recipe(patience=0, factor=0.5) | {"run": {"num_epochs": epochs, "steps_per_epoch": UPDATES_PER_REPORT}}

    long = optiplug.build(run(20), nn.Linear(3, 2))
    optiplug_trace(long, [1.0, 1.0, 1.0, 1.0])  # reductions after updates 6, 9 and 12 of 60
    assert long.optimizer.param_groups[0]["lr"] == 0.0125
    short = optiplug.build(run(10), nn.Linear(3, 2))
    with pytest.warns(OptiplugWarning):
        short.load_state_dict(long.state_dict(), resume="rescale")  # update 12 of 60 is update 6 of 30
    assert short.scheduler.last_epoch == 6
    assert [g["lr"] for g in short.optimizer.param_groups] == [0.0125, 0.00625]
    assert short.scheduler.state_dict()["metric_states"][0]["reductions"] == [6, 6, 6]


def test_a_group_added_later_follows_the_reductions_taken_so_far():
    built = build(recipe(patience=0, factor=0.5))
    optiplug_trace(built, [1.0, 1.0])  # one reduction, after update 6
    built.optimizer.add_param_group({"params": [nn.Parameter(torch.zeros(2))], "lr": 0.2})
    built.optimizer.step()
    built.scheduler.step()
    assert [g["lr"] for g in built.optimizer.param_groups] == [0.05, 0.025, 0.1]  # as the others: halved once
    built.report(1.0)
    assert [g["lr"] for g in built.optimizer.param_groups] == [0.025, 0.0125, 0.05]
    states = built.scheduler.state_dict()["metric_states"]
    assert len(states) == 3 and all(s["reductions"] == [6, 7] for s in states)
