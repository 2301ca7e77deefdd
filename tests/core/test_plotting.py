"""The pictures: envelope thinning, legend labels, the terminal chart and the figure's panels."""

from __future__ import annotations

import torch

import optiplug
from optiplug.built import GroupSummary
from optiplug.curves import compute_curves
from optiplug.plotting import BLOCKS, curves_figure, envelope, groups_label, terminal_preview, text_chart


def summary(index, *rules):
    return GroupSummary(index, rules, 1, 1, {}, ())


def test_short_curves_are_drawn_point_for_point():
    assert torch.equal(envelope(torch.rand(50)), torch.arange(50))


def test_long_curves_keep_every_bucket_extreme_in_order():
    values = torch.zeros(1_000_000, dtype=torch.float64)
    values[123_457] = 5.0  # a one-update spike
    values[876_543] = -2.0
    picked = envelope(values, max_points=1000)
    assert len(picked) <= 1000
    assert bool((picked[1:] > picked[:-1]).all())
    assert {123_457, 876_543} <= set(picked.tolist())


def test_a_ramp_fills_the_eighth_blocks():
    ramp = torch.arange(9, dtype=torch.float64) / 8
    assert text_chart(ramp, width=9, height=1) == [BLOCKS]
    # two rows: levels 0, 2, ..., 16 sixteenths; the top row holds what exceeds 8
    assert text_chart(ramp, width=9, height=2) == ["     ▂▄▆█", " ▂▄▆█████"]


def test_the_chart_shows_each_column_span_maximum_and_stretches_short_curves():
    spike = torch.zeros(100, dtype=torch.float64)
    spike[42] = 1.0
    assert text_chart(spike, width=10, height=1) == ["    █     "]
    assert text_chart(torch.tensor([0.0, 1.0], dtype=torch.float64), width=4, height=1) == ["  ██"]


def test_legend_labels_name_groups_and_rules():
    groups = [summary(0, "(no rule)"), summary(1, "norm", "bias"), summary(2, "bias", "head")]
    assert groups_label((0, 1, 2), groups) == "all groups"
    assert groups_label((1,), groups) == "group 1 (1 tensor): norm; bias"
    assert groups_label((1, 2), groups) == "groups 1, 2 (2 tensors): norm; bias; head"
    long = [summary(0, "x" * 100), summary(1)]
    label = groups_label((0,), long)
    assert len(label) == 70 and label.endswith("…")


def test_figure_panels_and_terminal_preview(conv_bn_head):
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
        "rules": [{"kind": "regex", "pattern": r"^head\.", "set": {"lr_mult": 10}}],
        "schedules": {"lr": {"name": "linear", "start_value": 0.1, "end_value": 0.0}},
    }
    built = optiplug.build(recipe, conv_bn_head, steps_per_epoch=5, num_epochs=4)
    curves = compute_curves(built)
    figure = curves_figure(curves, built.groups, title="t", losses=[1.0] * 20)
    titles = [ax.get_title(loc="left") for ax in figure.axes if ax.get_title(loc="left")]
    assert titles == [
        "learning rate (scheduled)",
        "momentum (constant)",
        "weight decay (constant)",
        "training loss (cross-entropy)",
    ]
    epoch_marks = [line for line in figure.axes[0].get_lines() if line.get_label().startswith("_")]
    assert len(epoch_marks) == 4
    lines = terminal_preview(curves, built.groups, width=20)
    assert lines[0] == "lr: group 0 (4 tensors): (no rule)"
    assert lines[5].strip() == "first 0.1 · last 0.005 · min 0.005 · max 0.1 (update 0) · 20 updates"
    assert lines[6] == "lr: group 1 (2 tensors): regex(pattern='^head\\\\.')"
    assert lines[1].startswith("0.1 ┤") and lines[4].startswith("  0 ┤")
    assert len(lines[1]) == len("0.1 ┤") + 20
