"""The pictures: envelope thinning, legend labels, the terminal chart and the figure's panels."""

from __future__ import annotations

import torch

import optiplug
from optiplug.engine.built_result import GroupSummary
from optiplug.tooling.curves import compute_curves
from optiplug.tooling.plotting import (
    BLOCKS,
    chart_floor,
    curves_figure,
    envelope,
    epoch_stride,
    groups_label,
    terminal_preview,
    terminal_summary,
    text_chart,
)


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
    assert len(lines[4]) == len("  0 ┤") + 20 and lines[1] == "0.1 ┤█▆▅▃▂"  # trailing blanks dropped


def test_epochs_are_marked_every_epoch_or_every_few_on_long_runs():
    assert epoch_stride(30) == 1
    assert epoch_stride(31) == 2
    assert epoch_stride(100) == 5
    assert epoch_stride(200) == 10
    assert epoch_stride(10**7) == 333_334  # past the table: ceil(epochs / 30)


def test_long_runs_mark_every_fifth_epoch(conv_bn_head):
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "schedules": {"lr": {"name": "cosine", "start_value": 0.1, "end_value": 0.0}},
    }
    built = optiplug.build(recipe, conv_bn_head, steps_per_epoch=3, num_epochs=100)
    figure = curves_figure(compute_curves(built), built.groups, title="t")
    marks = [line.get_xdata()[0] for line in figure.axes[0].get_lines() if line.get_label().startswith("_")]
    assert marks == [3 * epoch for epoch in range(5, 101, 5)]


def test_a_chart_starts_at_0_unless_the_curve_stays_high():
    assert chart_floor(torch.tensor([0.1, 0.005], dtype=torch.float64)) == 0.0
    assert chart_floor(torch.tensor([0.95, 0.85], dtype=torch.float64)) == 0.85
    assert chart_floor(torch.tensor([-1.0, 1.0], dtype=torch.float64)) == -1.0
    momentum = torch.tensor([0.95, 0.9, 0.85, 0.9, 0.95], dtype=torch.float64)
    assert text_chart(momentum, width=5, height=1) == ["█▄ ▄█"]


def test_constant_options_get_a_short_panel_with_their_values_and_one_terminal_line(conv_bn_head):
    recipe = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
        "rules": [{"kind": "norm", "set": {"weight_decay": 0}}],
        "schedules": {"lr": {"name": "linear", "start_value": 0.1, "end_value": 0.0}},
    }
    built = optiplug.build(recipe, conv_bn_head, steps_per_epoch=5, num_epochs=2)
    curves = compute_curves(built)
    figure = curves_figure(curves, built.groups, title="t")
    lr_panel, momentum_panel, decay_panel = figure.axes[:3]
    assert momentum_panel.get_position().height < lr_panel.get_position().height
    labels = [line.get_label() for line in decay_panel.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["0.0001: group 0 (4 tensors): (no rule)", "0: group 1 (2 tensors): norm"]
    assert decay_panel.get_ylim()[0] < 0 < 1e-4 < decay_panel.get_ylim()[1]  # 0 and the value inside the frame
    lines = terminal_summary(curves, built.groups, width=10)
    assert lines[0] == "lr: all groups"
    assert lines[-2:] == ["momentum: constant 0.9", "weight_decay: constant 0.0001 (group 0) · 0 (group 1)"]


def test_a_scheduled_option_fixed_by_a_rule_shows_as_one_line(conv_bn_head):
    recipe = {
        "optimizer": {"name": "adamw", "lr": 0.1, "weight_decay": 0.05},
        "rules": [{"kind": "norm", "set": {"weight_decay": 0}}],
        "schedules": {"weight_decay": {"name": "cosine", "start_value": 0.04, "end_value": 0.4}},
    }
    built = optiplug.build(recipe, conv_bn_head, steps_per_epoch=5, num_epochs=2)
    lines = terminal_preview(compute_curves(built), built.groups, "weight_decay", width=10)
    assert lines[0] == "weight_decay: group 0 (4 tensors): (no rule)"
    assert lines[-1] == "weight_decay: group 1 (2 tensors): norm: constant 0"
