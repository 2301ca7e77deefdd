"""run.compile under the trainers: Lightning's LR monitor and Hugging Face's logs read Python numbers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import optiplug
from optiplug.integrations import lightning_lr_monitor, lightning_optimizers, transformers_optimizers

pytestmark = pytest.mark.filterwarnings(
    # Lightning 2.6 builds torch's deprecated pytree LeafSpec (torch 2.13 warns); nothing of optiplug's
    "ignore:.*LeafSpec.*is deprecated:FutureWarning",
    "ignore:.*does not have many workers:UserWarning",
)

UPDATES = 4
RECIPE = {
    "optimizer": {"name": "AdamW", "lr": 0.1, "weight_decay": 0.0},
    "schedules": {
        "lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0},
        "beta1": {"name": "linear", "start_value": 0.9, "end_value": 0.5},
    },
    "run": {"compile": True},
}


def cosine(k: int) -> float:
    return 0.05 * (1 + math.cos(math.pi * k / UPDATES))


def data(batches: int) -> torch.utils.data.DataLoader:
    torch.manual_seed(1)
    inputs = torch.randn(batches * 2, 3)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, inputs.sum(1, keepdim=True)), 2)


def test_lightnings_lr_monitor_logs_numbers_with_the_scheduled_values(tmp_path):
    lightning = pytest.importorskip(
        "lightning", reason="Lightning is not installed (pip install optiplug[integrations])"
    )

    class Logged(lightning.pytorch.loggers.Logger):
        """Records what log_metrics receives."""

        def __init__(self) -> None:
            super().__init__()
            self.metrics: list[dict] = []

        @property
        def name(self) -> str:
            return "logged"

        @property
        def version(self) -> int:
            return 0

        def log_hyperparams(self, *args, **kwargs) -> None:
            pass

        def log_metrics(self, metrics, step=None) -> None:
            self.metrics.append(dict(metrics))

    class Module(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Linear(3, 1)
            self.built = optiplug.build(RECIPE, self, steps_per_epoch=UPDATES, num_epochs=1)

        def training_step(self, batch, _index):
            inputs, targets = batch
            return nn.functional.mse_loss(self.net(inputs), targets)

        def configure_optimizers(self):
            return lightning_optimizers(self.built)

    module, logger = Module(), Logged()
    assert isinstance(module.built.optimizer.param_groups[0]["lr"], torch.Tensor)
    monitor = lightning_lr_monitor(logging_interval="step", log_momentum=True)
    trainer = lightning.Trainer(
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=[monitor],
        max_steps=3,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with _no_warning():
        trainer.fit(module, data(UPDATES))
    lrs = [m["optiplug"] for m in logger.metrics if "optiplug" in m]
    assert lrs == pytest.approx([cosine(k) for k in range(3)], rel=1e-12)
    assert all(type(v) is float for v in lrs)
    assert monitor.lrs["optiplug"] == lrs  # its history holds the values, not one tensor three times
    momenta = [m["optiplug-momentum"] for m in logger.metrics if "optiplug-momentum" in m]
    assert momenta == pytest.approx([0.9 - 0.4 * k / UPDATES for k in range(3)], rel=1e-12)


class _no_warning:
    """A block in which any warning fails the test (Lightning copy-constructs a tensor lr with a UserWarning)."""

    def __enter__(self) -> None:
        import warnings

        self.catcher = warnings.catch_warnings()
        self.catcher.__enter__()
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", ".*does not have many workers", UserWarning)
        warnings.filterwarnings("ignore", ".*smaller than the logging interval", UserWarning)

    def __exit__(self, *exc) -> None:
        self.catcher.__exit__(*exc)


def test_hugging_faces_trainer_logs_the_learning_rate_as_a_number(tmp_path, monkeypatch):
    transformers = pytest.importorskip(
        "transformers", reason="Hugging Face Transformers is not installed (pip install optiplug[integrations])"
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Linear(3, 1)

        def forward(self, inputs, labels):
            return {"loss": nn.functional.mse_loss(self.net(inputs), labels)}

    class Pairs(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 8

        def __getitem__(self, i):
            x = torch.arange(3.0) + i
            return {"inputs": x, "labels": x.sum(0, keepdim=True)}

    model = Model()
    built = optiplug.build(RECIPE, model, steps_per_epoch=UPDATES, num_epochs=1)
    arguments = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        report_to=[],
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=1,
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        max_steps=3,
    )
    trainer = transformers.Trainer(
        model=model, args=arguments, train_dataset=Pairs(), optimizers=transformers_optimizers(built)
    )
    trainer.train()
    logged = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    assert len(logged) == 3 and all(type(v) is float for v in logged)
    assert logged == pytest.approx([cosine(k) for k in range(3)], rel=1e-12)  # the lr each update used
