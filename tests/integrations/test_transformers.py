"""Hugging Face Transformers' Trainer takes ``optimizers=(built.optimizer, built.scheduler)`` unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optiplug
from optiplug.integrations import transformers_arguments, transformers_optimizers

transformers = pytest.importorskip(
    "transformers", reason="Hugging Face Transformers is not installed (pip install optiplug[integrations])"
)

UPDATES = 4


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Nothing here needs the Hub; make sure nothing asks it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


RECIPE = {
    "optimizer": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.01},
    "rules": [{"kind": "bias", "set": {"weight_decay": 0}}],
    "schedules": {"lr": {"name": "linear", "start_value": 1e-2, "end_value": 0.0}},
    "clip": {"max_norm": 0.5},
}


class TinyRegressor(nn.Module):
    """A model the Trainer can drive: keyword inputs in, a dict with the loss out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Linear(3, 4)
        self.head = nn.Linear(4, 1)
        self.seen: list[float] = []

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        prediction = self.head(torch.relu(self.body(inputs)))
        return {"loss": nn.functional.mse_loss(prediction, labels), "logits": prediction}


class Pairs(torch.utils.data.Dataset):
    """Eight examples of y = sum(x), made in memory (no download)."""

    def __init__(self) -> None:
        torch.manual_seed(1)
        self.inputs = torch.randn(8, 3)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        x = self.inputs[index]
        return {"inputs": x, "labels": x.sum(dim=0, keepdim=True)}


class RecordLr(transformers.TrainerCallback):
    """The first group's lr before each update (on_step_begin runs before the step's forward)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.lrs: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.lrs.append(self.optimizer.param_groups[0]["lr"])


def training_arguments(tmp_path, **arguments):
    return transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        **arguments,
    )


def test_the_trainer_steps_the_scheduler_once_per_update(tmp_path):
    model = TinyRegressor()
    built = optiplug.build(RECIPE, model, steps_per_epoch=UPDATES, num_epochs=1)
    arguments = transformers_arguments(built)
    assert arguments == {"gradient_accumulation_steps": 1, "max_grad_norm": 0.5, "max_steps": UPDATES}
    before = [p.detach().clone() for p in model.parameters()]
    record = RecordLr(built.optimizer)
    trainer = transformers.Trainer(
        model=model,
        args=training_arguments(tmp_path, **(arguments | {"max_steps": 2})),
        train_dataset=Pairs(),
        optimizers=transformers_optimizers(built),
        callbacks=[record],
    )
    trainer.train()

    assert trainer.lr_scheduler is built.scheduler  # unchanged (the optimizer gets accelerate's wrapper)
    assert built.scheduler.last_epoch == 2
    w = [k / UPDATES for k in range(3)]  # fvcore's linear: end * w + start * (1 - w)
    assert record.lrs == pytest.approx([1e-2 * (1 - v) for v in w[:2]], rel=1e-12)
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * (1 - w[2]), rel=1e-12)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_accumulation_steps_the_schedule_per_update(tmp_path):
    model = TinyRegressor()
    recipe = RECIPE | {"accumulation": {"steps": 2}}
    built = optiplug.build(recipe, model, steps_per_epoch=UPDATES, num_epochs=1)
    arguments = transformers_arguments(built) | {"max_steps": 2}  # 2 updates of 2 micro-batches: 8 examples
    assert arguments["gradient_accumulation_steps"] == 2
    trainer = transformers.Trainer(
        model=model,
        args=training_arguments(tmp_path, **arguments),
        train_dataset=Pairs(),
        optimizers=transformers_optimizers(built),
    )
    trainer.train()
    assert built.scheduler.last_epoch == 2


def test_without_clipping_the_trainer_is_told_not_to_clip():
    built = optiplug.build({k: v for k, v in RECIPE.items() if k != "clip"}, TinyRegressor(), 4, 1)
    assert transformers_arguments(built)["max_grad_norm"] == 0.0  # the Trainer's default would clip at 1.0


def test_with_accumulation_len_loader_gives_the_updates_of_the_epochs_asked_for():
    # issue 15: steps_per_epoch is len(train_dataloader); with 2 batches per update, 3 epochs of 8 batches are
    # 12 updates, the Trainer's own count (ceil(8 / 2) per epoch), and the schedule spans exactly those.
    recipe = RECIPE | {"accumulation": {"steps": 2}}
    built = optiplug.build(recipe, TinyRegressor(), steps_per_epoch=8, num_epochs=3)
    arguments = transformers_arguments(built)
    assert (arguments["gradient_accumulation_steps"], arguments["max_steps"]) == (2, 12)
    assert built.clock.total_steps == 12 and built.clock.steps_per_epoch == 4
