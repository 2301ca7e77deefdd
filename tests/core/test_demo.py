"""The example models, the synthetic task and the demo training loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optiplug
from optiplug.tooling.curves import run_updates
from optiplug.tooling.demo import (
    CLASSES,
    EXAMPLE_MODELS,
    FEATURES,
    SyntheticTask,
    example_model,
    micro_batches_per_epoch,
    train,
)
from optiplug.tooling.recipes import recipe_path

IMAGES = torch.randn(2, 3, 32, 32)


@pytest.mark.parametrize("name", ["convnet", "resnet_like", "vit_like"])
def test_image_models_classify_a_batch(name):
    model = example_model(name)
    assert model(IMAGES).shape == (2, 10)


def test_models_have_the_parts_rules_talk_about():
    names = {name: {n for n, _ in example_model(name).named_parameters()} for name in EXAMPLE_MODELS}
    assert {"conv1.weight", "bn1.weight", "head.weight", "head.bias"} <= names["convnet"]
    assert {"layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight", "head.weight"} <= names["resnet_like"]
    assert not any(n.endswith("bias") for n in names["resnet_like"] if ".conv" in n or n.startswith("conv"))
    vit = names["vit_like"]
    assert {"cls_token", "pos_embed", "patch_embed.weight", "blocks.1.norm1.weight", "blocks.0.attn.qkv.weight"} <= vit
    assert {"blocks.0.mlp.fc1.weight", "norm.weight", "head.weight"} <= vit
    layer_norms = [m for m in example_model("vit_like").modules() if isinstance(m, nn.LayerNorm)]
    assert len(layer_norms) == 5  # two per block and the final norm


def test_example_models_are_reproducible_and_leave_the_global_generator_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = example_model("convnet", seed=3)
    assert torch.equal(torch.rand(1), before)
    second = example_model("convnet", seed=3)
    other = example_model("convnet", seed=4)
    assert torch.equal(first.conv1.weight, second.conv1.weight)
    assert not torch.equal(first.conv1.weight, other.conv1.weight)


def test_unknown_model_suggests_a_name():
    with pytest.raises(optiplug.ConfigError, match=r"unknown example model 'resnet' \(did you mean 'resnet_like'\?\)"):
        example_model("resnet")


def test_synthetic_task_is_reproducible_and_uses_every_class():
    task = SyntheticTask.make(512, seed=5)
    again = SyntheticTask.make(512, seed=5)
    assert task.inputs.shape == (512, FEATURES)
    assert torch.equal(task.inputs, again.inputs) and torch.equal(task.targets, again.targets)
    counts = torch.bincount(task.targets, minlength=CLASSES)
    assert (counts > 512 / CLASSES / 4).all(), counts
    assert not torch.equal(SyntheticTask.make(512, seed=6).targets, task.targets)


def _demo_run(recipe, epochs=3, steps=20, batch=32):
    model = example_model("mlp")
    built = optiplug.build(recipe, model, steps_per_epoch=steps, num_epochs=epochs, batch_size_per_device=batch)
    task = SyntheticTask.make(micro_batches_per_epoch(built) * batch)
    return built, train(built, model, task, batch)


def test_the_default_recipe_trains_the_demo_model():
    built, result = _demo_run(recipe_path())
    assert len(result.losses) == 60 == built.scheduler.last_epoch
    first, last = sum(result.losses[:10]) / 10, sum(result.losses[-10:]) / 10
    assert last < 0.6 * first, (first, last)
    assert result.accuracy > 0.8
    assert result.final_loss < first


def test_training_is_deterministic_and_restores_the_thread_count():
    threads = torch.get_num_threads()
    _, one = _demo_run(recipe_path(), epochs=1)
    _, two = _demo_run(recipe_path(), epochs=1)
    assert one.losses == two.losses
    assert one.final_loss == two.final_loss
    assert torch.get_num_threads() == threads


def test_each_update_reports_the_mean_of_its_micro_batches():
    recipe = {"optimizer": {"name": "sgd", "lr": 0.05}, "accumulation": {"steps": 4}}
    seen = []
    model = example_model("mlp")
    built = optiplug.build(recipe, model, steps_per_epoch=20, num_epochs=2)  # len(loader): 5 updates of 4
    assert micro_batches_per_epoch(built) == 20
    task = SyntheticTask.make(20 * 8)
    result = train(built, model, task, 8, on_update=lambda i, loss: seen.append((i, loss)))
    assert [i for i, _ in seen] == list(range(10))
    assert [loss for _, loss in seen] == result.losses
    assert built.micro_steps == 40


def test_an_open_ended_run_cannot_be_trained():
    model = example_model("mlp")
    built = optiplug.build({"optimizer": {"name": "sgd", "lr": 0.1}}, model)
    with pytest.raises(optiplug.ConfigError, match="--epochs and --steps-per-epoch"):
        train(built, model, SyntheticTask.make(64), 8)


def test_an_mmcv_run_with_accumulation_counts_and_reports_iterations():
    # issue 15: `optiplug run` on an MMCV config with accumulation showed 30/120 and a loss curve that
    # stopped at a quarter: MMCV's schedules count iterations, the demo reported updates.
    config = {
        "optimizer": {"type": "SGD", "lr": 0.05, "momentum": 0.9},
        "optimizer_config": {"type": "GradientCumulativeOptimizerHook", "cumulative_iters": 4},
        "lr_config": {"policy": "CosineAnnealing", "min_lr": 0.0, "by_epoch": False},
        "runner": {"type": "EpochBasedRunner", "max_epochs": 3},
    }
    model = example_model("mlp")
    built = optiplug.build(config, model, steps_per_epoch=12)  # len(data_loader): 12 iterations per epoch
    assert micro_batches_per_epoch(built) == 12 and built.total_micro_steps == 36
    seen = []
    result = train(built, model, SyntheticTask.make(12 * 8), 8, on_update=lambda i, loss: seen.append(i))
    assert run_updates(built.clock) == 36 and seen == list(range(36)) and len(result.losses) == 36
    assert built.scheduler.last_epoch == 36 and built.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
