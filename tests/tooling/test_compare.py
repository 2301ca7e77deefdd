"""Comparing two recipes: equal ones across dialects, unequal ones with the first and largest difference."""

from __future__ import annotations

import math

import pytest

import optiplug
from optiplug.tooling.compare import compare, comparison_figure
from optiplug.tooling.demo import example_model

WARMUP_COSINE = {
    "optimizer": {"name": "SGD", "lr": 0.4, "momentum": 0.9, "weight_decay": 1e-4},
    "rules": [{"kind": "regex", "pattern": "^head\\.", "set": {"lr_mult": 10}, "label": "head"}],
    "schedules": {
        "lr": {
            "name": "composite",
            "schedulers": [
                {"name": "linear", "start_value": 0.04, "end_value": 0.4},
                {"name": "cosine", "start_value": 0.4, "end_value": 0.0},
            ],
            "lengths": [0.1, 0.9],
            "interval_scaling": ["rescaled", "rescaled"],
        }
    },
    "run": {"num_epochs": 10, "steps_per_epoch": 10},
}


def with_end(value):
    changed = dict(WARMUP_COSINE)
    lr = dict(changed["schedules"]["lr"])
    lr["schedulers"] = [lr["schedulers"][0], {"name": "cosine", "start_value": 0.4, "end_value": value}]
    changed["schedules"] = {"lr": lr}
    return changed


def test_a_recipe_equals_itself_and_its_conversion():
    model = example_model("resnet_like")
    path = "examples/vissl/linear_warmup_cosine.yaml"
    from optiplug.tooling.conversion import converted_recipe

    a = optiplug.build(path, model, steps_per_epoch=20)
    b = optiplug.build(converted_recipe(path, steps_per_epoch=20), model)
    comparison = compare(a, b)
    assert not comparison.differs(0.0)
    assert all(d.first is None and d.largest == 0 for d in comparison.diffs)
    assert comparison.lines()[-1].startswith("the same: every option of every parameter at all 1,800 updates")


def test_the_first_and_largest_difference_of_a_changed_cosine_end():
    model = example_model("resnet_like")
    comparison = compare(optiplug.build(WARMUP_COSINE, model), optiplug.build(with_end(0.04), model))
    assert comparison.differs()
    lr = [d for d in comparison.differing() if d.option == "lr"]
    assert {(d.group_a, d.group_b) for d in lr} == {(0, 0), (1, 1)}
    trunk = next(d for d in lr if "head.weight" not in d.names)
    head = next(d for d in lr if "head.weight" in d.names)
    # the cosines agree at the peak (update 10) and part from update 11; the end (update 99) differs most:
    # cos(pi 89/90) from 0.4 to 0 vs to 0.04 differ by 0.04 (1 - (1 + cos(pi 89/90)) / 2)
    expected = 0.04 * (1 - (1 + math.cos(math.pi * 89 / 90)) / 2)
    assert trunk.first == 11 and trunk.largest_at == 99
    assert trunk.largest == pytest.approx(expected)
    assert head.largest == pytest.approx(10 * expected)
    assert not any(d.option == "momentum" for d in comparison.differing())
    text = "\n".join(comparison.lines())
    assert "lr, groups A0/B0" in text and "first differs at update 11" in text
    assert not compare(optiplug.build(WARMUP_COSINE, model), optiplug.build(with_end(1e-9), model)).differs(1e-6)


def test_groups_numbered_differently_line_up_by_parameter():
    model = example_model("convnet")
    a = dict(WARMUP_COSINE, rules=[{"kind": "regex", "pattern": "^conv", "set": {"weight_decay": 0}}])
    b = dict(
        WARMUP_COSINE,
        rules=[
            {"kind": "regex", "pattern": "^(bn|head)", "set": {"weight_decay": 1e-4}},
            {"kind": "regex", "pattern": "^conv", "set": {"weight_decay": 0}},
        ],
    )
    comparison = compare(optiplug.build(a, model), optiplug.build(b, model))
    assert not comparison.differs(0.0)
    assert sorted({(d.group_a, d.group_b) for d in comparison.diffs}) == [(0, 0), (1, 1)]


def test_structural_differences():
    model = example_model("convnet")
    adam = dict(WARMUP_COSINE, optimizer={"name": "AdamW", "lr": 0.4, "weight_decay": 1e-4})
    longer = dict(WARMUP_COSINE, run={"num_epochs": 12, "steps_per_epoch": 10})
    comparison = compare(optiplug.build(WARMUP_COSINE, model), optiplug.build(adam, model))
    assert "optimizer: A is SGD, B is AdamW" in comparison.structural
    assert "beta1: only B has it" in comparison.structural and "momentum: only A has it" in comparison.structural
    comparison = compare(optiplug.build(WARMUP_COSINE, model), optiplug.build(longer, model))
    assert comparison.structural[0].startswith("run length: A has 100 updates, B 120")
    assert len(comparison.curves[0].steps) == 120


def test_the_figure_has_a_panel_per_option_and_marks_the_first_difference():
    model = example_model("convnet")
    comparison = compare(optiplug.build(WARMUP_COSINE, model), optiplug.build(with_end(0.04), model))
    figure = comparison_figure(comparison)
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert titles == ["learning rate: differs", "momentum: the same", "weight decay: the same"]
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert "first difference: update 11" in labels
