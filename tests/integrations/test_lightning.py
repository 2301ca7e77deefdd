"""Lightning's Trainer takes ``built.optimizer`` and ``built.scheduler`` unchanged and steps them per update."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import optiplug
from optiplug.integrations import lightning_optimizers, lightning_trainer_arguments

lightning = pytest.importorskip("lightning", reason="Lightning is not installed (pip install optiplug[integrations])")

pytestmark = pytest.mark.filterwarnings(
    # a four-batch CPU run: Lightning's advice on data-loader workers and logging intervals does not apply
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*smaller than the logging interval:UserWarning",
    # Lightning 2.6 builds torch's deprecated pytree LeafSpec (torch 2.13 warns); nothing of optiplug's
    "ignore:.*LeafSpec.*is deprecated:FutureWarning",
)

RECIPE = {
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "rules": [{"kind": "regex", "pattern": r"^net\.2\.", "set": {"lr_mult": 10}, "label": "head"}],
    "schedules": {
        "lr": {"name": "linear", "start_value": 0.1, "end_value": 0.0},
        "momentum": {"name": "cosine", "start_value": 0.9, "end_value": 0.5},
    },
}
UPDATES = 4  # the run the schedules span; Lightning stops after 2 of them


class Regressor(lightning.LightningModule):
    """A two-layer net whose configure_optimizers hands optiplug's build to Lightning."""

    def __init__(self, recipe, steps_per_epoch: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
        self.recipe = recipe
        self.steps_per_epoch = steps_per_epoch
        self.built: optiplug.Built | None = None
        self.seen: list[list[tuple[float, float]]] = []  # (lr, momentum) of each group before each update

    def training_step(self, batch, _index):
        inputs, targets = batch
        return nn.functional.mse_loss(self.net(inputs), targets)

    def on_before_optimizer_step(self, optimizer):
        self.seen.append([(g["lr"], g["momentum"]) for g in optimizer.param_groups])

    def configure_optimizers(self):
        self.built = optiplug.build(self.recipe, self, steps_per_epoch=self.steps_per_epoch, num_epochs=1)
        return lightning_optimizers(self.built)


class BuiltEarly(Regressor):
    """The documented form: built in __init__, so the Trainer's arguments come from the same Built."""

    def __init__(self, recipe, steps_per_epoch: int) -> None:
        super().__init__(recipe, steps_per_epoch)
        self.built = optiplug.build(recipe, self, steps_per_epoch=steps_per_epoch, num_epochs=1)

    def configure_optimizers(self):
        return lightning_optimizers(self.built)


def loader(batches: int):
    torch.manual_seed(1)
    inputs = torch.randn(batches * 2, 3)
    dataset = torch.utils.data.TensorDataset(inputs, inputs.sum(dim=1, keepdim=True))
    return torch.utils.data.DataLoader(dataset, batch_size=2)


def trainer(tmp_path, **arguments):
    return lightning.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **arguments,
    )


def expected_values(update: int, head: bool) -> tuple[float, float]:
    """The recipe's formulas (fvcore's linear and cosine, w = update / UPDATES), written out."""
    w = update / UPDATES
    lr = 0.0 * w + 0.1 * (1 - w)
    momentum = 0.5 + 0.5 * (0.9 - 0.5) * (1 + math.cos(math.pi * w))
    return (10 * lr if head else lr), momentum


def test_the_trainer_steps_the_scheduler_once_per_update(tmp_path):
    model = Regressor(RECIPE, steps_per_epoch=UPDATES)
    before = [p.detach().clone() for p in model.parameters()]
    trainer(tmp_path, max_steps=2).fit(model, loader(UPDATES))

    built = model.built
    assert built is not None
    assert built.scheduler.last_epoch == 2
    heads = [("head" in g.rules) for g in built.groups]
    assert heads == [False, True]
    for update, groups in enumerate(model.seen):
        for (lr, momentum), head in zip(groups, heads, strict=True):
            assert (lr, momentum) == pytest.approx(expected_values(update, head), rel=1e-12)
    assert len(model.seen) == 2
    for group, head in zip(built.optimizer.param_groups, heads, strict=True):  # ready for update 2
        assert (group["lr"], group["momentum"]) == pytest.approx(expected_values(2, head), rel=1e-12)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_the_scheduler_reaches_lightning_unchanged(tmp_path):
    model = Regressor(RECIPE, steps_per_epoch=UPDATES)
    fitted = trainer(tmp_path, max_steps=1)
    fitted.fit(model, loader(UPDATES))
    config = fitted.lr_scheduler_configs[0]
    assert config.scheduler is model.built.scheduler
    assert (config.interval, config.frequency, config.name) == ("step", 1, "optiplug")
    assert fitted.optimizers[0] is model.built.optimizer


def test_accumulation_and_clipping_become_trainer_arguments(tmp_path):
    recipe = RECIPE | {"accumulation": {"steps": 2}, "clip": {"max_norm": 0.5}}
    model = BuiltEarly(recipe, steps_per_epoch=2 * UPDATES)  # len(loader): two batches per update
    arguments = lightning_trainer_arguments(model.built)
    assert arguments == {
        "accumulate_grad_batches": 2,
        "max_steps": UPDATES,
        "gradient_clip_val": 0.5,
        "gradient_clip_algorithm": "norm",
    }
    built = model.built
    fitted = trainer(tmp_path, **(arguments | {"max_steps": 2}))
    fitted.fit(model, loader(2 * 2))  # four micro-batches: two updates
    assert model.built is built and fitted.optimizers[0] is built.optimizer
    assert built.scheduler.last_epoch == 2
    assert len(model.seen) == 2
    for update, groups in enumerate(model.seen):
        assert groups[0][0] == pytest.approx(expected_values(update, head=False)[0], rel=1e-12)


def test_with_accumulation_len_loader_gives_the_epochs_asked_for(tmp_path):
    # issue 15: steps_per_epoch=len(loader) with accumulation 2 made the helper ask for twice the epochs
    # (max_steps counted batches as updates); one epoch of 8 batches is 4 updates, the whole run.
    recipe = RECIPE | {"accumulation": {"steps": 2}}
    model = BuiltEarly(recipe, steps_per_epoch=2 * UPDATES)
    arguments = lightning_trainer_arguments(model.built)
    assert arguments["max_steps"] == UPDATES
    fitted = trainer(tmp_path, max_epochs=1, **arguments)
    fitted.fit(model, loader(2 * UPDATES))
    assert fitted.current_epoch == 1 and fitted.global_step == UPDATES  # one epoch, every update of the run
    assert model.built.scheduler.last_epoch == UPDATES
    lr, _ = expected_values(UPDATES, head=False)
    assert model.built.optimizer.param_groups[0]["lr"] == pytest.approx(lr, abs=1e-12)  # the schedule's end
