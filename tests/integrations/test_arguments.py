"""The trainer-argument helpers: what they hand over, and the recipes a trainer cannot run (no trainer needed)."""

from __future__ import annotations

import pytest

import optiplug
from optiplug.integrations import (
    lightning_optimizers,
    lightning_trainer_arguments,
    transformers_arguments,
    transformers_optimizers,
)

BASE = {"optimizer": {"name": "sgd", "lr": 0.1}, "schedules": {"lr": {"name": "cosine", "start_value": 0.1,
                                                                        "end_value": 0.0}}}  # fmt: skip


def built(conv_bn_head, **sections):
    return optiplug.build(BASE | sections, conv_bn_head, steps_per_epoch=5, num_epochs=3)


def test_the_objects_are_handed_over_unchanged(conv_bn_head):
    b = built(conv_bn_head)
    config = lightning_optimizers(b)
    assert config["optimizer"] is b.optimizer and config["lr_scheduler"]["scheduler"] is b.scheduler
    assert config["lr_scheduler"]["interval"] == "step"
    optimizer, scheduler = transformers_optimizers(b)
    assert optimizer is b.optimizer and scheduler is b.scheduler


def test_arguments_without_clipping_or_accumulation(conv_bn_head):
    b = built(conv_bn_head)
    assert lightning_trainer_arguments(b) == {"accumulate_grad_batches": 1, "max_steps": 15}
    assert transformers_arguments(b) == {"gradient_accumulation_steps": 1, "max_grad_norm": 0.0, "max_steps": 15}


def test_clipping_by_value_goes_to_lightning(conv_bn_head):
    b = built(conv_bn_head, clip={"clip_value": 0.25})
    assert lightning_trainer_arguments(b)["gradient_clip_val"] == 0.25
    assert lightning_trainer_arguments(b)["gradient_clip_algorithm"] == "value"


def test_an_open_ended_run_has_no_max_steps(conv_bn_head):
    b = optiplug.build({"optimizer": {"name": "sgd", "lr": 0.1}}, conv_bn_head)
    assert "max_steps" not in lightning_trainer_arguments(b)
    assert "max_steps" not in transformers_arguments(b)


@pytest.mark.parametrize(
    ("sections", "helper", "message"),
    [
        (
            {"accumulation": {"steps": 4, "schedule_clock": "iterations"}},
            lightning_optimizers,
            r"^accumulation\.schedule_clock: Lightning steps the scheduler once per optimizer update",
        ),
        (
            {"accumulation": {"steps": 4, "schedule_clock": "iterations"}},
            transformers_optimizers,
            r"^accumulation\.schedule_clock: Hugging Face Transformers steps the scheduler once per",
        ),
        (
            {"clip": {"max_norm": 1.0, "clip_value": 0.5}},
            lightning_trainer_arguments,
            r"^clip: Lightning clips by norm or by value, not both",
        ),
        (
            {"clip": {"max_norm": 1.0, "norm_type": "inf"}},
            lightning_trainer_arguments,
            r"^clip\.norm_type: Lightning clips the 2-norm only, got norm_type inf",
        ),
        (
            {"clip": {"clip_value": 0.5}},
            transformers_arguments,
            r"^clip\.clip_value: Hugging Face Transformers' Trainer cannot clip by value; use clip\.max_norm",
        ),
        (
            {"clip": {"max_norm": 1.0, "norm_type": 1}},
            transformers_arguments,
            r"^clip\.norm_type: Hugging Face Transformers clips the 2-norm only, got norm_type 1\.0",
        ),
    ],
)
def test_what_a_trainer_cannot_do_is_a_config_error_with_the_path(conv_bn_head, sections, helper, message):
    with pytest.raises(optiplug.ConfigError, match=message):
        helper(built(conv_bn_head, **sections))


def test_one_micro_batch_per_update_keeps_any_clock(conv_bn_head):
    b = built(conv_bn_head, accumulation={"steps": 1, "schedule_clock": "iterations"})
    assert lightning_trainer_arguments(b)["accumulate_grad_batches"] == 1
