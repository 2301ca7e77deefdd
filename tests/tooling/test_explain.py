"""``Built.explain``: each parameter's rules and winners, its values, and the lint's findings on crafted models."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import optiplug
from optiplug.engine.explain import explain
from optiplug.tooling.demo import example_model


class Tied(nn.Module):
    """An embedding whose weight the decoder shares (tied weights), a norm, and a frozen layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.norm = nn.LayerNorm(4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.decoder = nn.Linear(4, 10, bias=False)
        self.decoder.weight = self.embed.weight


def quiet_build(config, model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optiplug.OptiplugWarning)
        return optiplug.build(config, model, **kwargs)


def codes(report):
    return sorted(f.code for f in report.findings)


VIT = {
    "optimizer": {"name": "AdamW", "lr": 1e-3, "weight_decay": 0.05},
    "rules": [
        {"kind": "norm", "set": {"weight_decay": 0}, "label": "norms"},
        {"kind": "bias", "set": {"weight_decay": 0}, "label": "biases"},
        {"kind": "regex", "pattern": "^head\\.", "set": {"lr_mult": 10}, "label": "head"},
    ],
    "schedules": {"lr": {"name": "cosine", "start_value": 1e-3, "end_value": 1e-5}},
    "run": {"num_epochs": 2, "steps_per_epoch": 5},
}


def test_every_parameter_has_its_rules_in_order_and_the_winner_of_each_option():
    model = example_model("vit_like")
    built = optiplug.build(VIT, model)
    report = built.explain(model)
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    assert [p.name for p in report.params] == names
    bias = report.param("blocks.0.norm1.bias")  # a norm's bias: both rules write weight_decay, the later wins
    assert [hit.path for hit in bias.hits] == ["rules[0]", "rules[1]"]
    assert bias.hits[0].won == () and bias.hits[1].won == ("weight_decay",)
    assert bias.origin("weight_decay") == "rules[1].set.weight_decay"
    assert bias.origin("lr") == "optimizer.lr"
    head = report.param("head.bias")
    assert [hit.label for hit in head.hits] == ["biases", "head"]
    assert head.hits[1].options["lr"].value == 10 and head.hits[1].options["lr"].scaled
    assert report.param("patch_embed.weight").hits == ()
    assert report.findings == ()


def test_values_at_the_start_and_end_are_the_schedules_with_the_multipliers():
    model = example_model("vit_like")
    built = optiplug.build(VIT, model)
    report = built.explain(model)
    head, trunk = report.param("head.weight"), report.param("patch_embed.weight")
    # cosine from 1e-3 to 1e-5 over 10 updates: update 9 is 1e-5 + (1e-3 - 1e-5) (1 + cos(pi 9/10)) / 2
    import math

    last = 1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * 9 / 10)) / 2
    assert trunk.start["lr"] == pytest.approx(1e-3) and trunk.end["lr"] == pytest.approx(last)
    assert head.start["lr"] == pytest.approx(1e-2) and head.end["lr"] == pytest.approx(10 * last)
    assert trunk.start["weight_decay"] == 0.05 and report.param("norm.weight").start["weight_decay"] == 0
    assert trunk.group == built.groups.index(next(g for g in built.groups if "patch_embed.weight" in g.names))
    assert report.updates == 10
    assert "AdamW" in report.algorithm
    text = str(report)
    assert "head.bias (10, Linear) -> group" in text and "lr=0.01 -> " in text


def test_each_group_gets_what_the_explanation_says():
    """Independent of the explanation's own resolution: the torch group of each parameter holds its options."""
    model = example_model("resnet_like")
    built = optiplug.build("docs/examples/recipes/warmup_cosine.yaml", model)
    report = built.explain(model)
    params = dict(model.named_parameters())
    for item in report.params:
        group = next(g for g in built.optimizer.param_groups if any(p is params[item.name] for p in g["params"]))
        assert group["weight_decay"] == item.start["weight_decay"]
        assert group["lr"] == pytest.approx(item.start["lr"])


def test_rule_matching_nothing_shadowed_rule_and_same_option_twice():
    model = example_model("convnet")
    config = {
        "optimizer": {"name": "SGD", "lr": 0.1, "weight_decay": 1e-4},
        "rules": [
            {"kind": "bias", "set": {"weight_decay": 0}, "label": "biases"},
            {"kind": "regex", "pattern": "bias$", "set": {"weight_decay": 0.0}, "label": "again"},
            {"kind": "regex", "pattern": "^backbone\\.", "set": {"lr_mult": 0.1}, "label": "backbone"},
            {"kind": "regex", "pattern": "^head\\.", "set": {"lr_mult": 10, "lr": 0.5}, "label": "head"},
            {"kind": "norm", "set": {"weight_decay": 0}},
        ],
    }
    report = explain(quiet_build(config, model), model)
    found = {f.code: f for f in report.findings}
    assert codes(report) == ["no-match", "same-option", "shadowed"]
    assert found["no-match"].path == "rules[2]" and "backbone" in found["no-match"].message
    assert found["shadowed"].path == "rules[0]" and "rules[1]" in found["shadowed"].message
    assert found["same-option"].path == "rules[3].set" and "only lr is read" in found["same-option"].message
    assert "rules[4]" in found["shadowed"].message  # the norm rule overwrites it on the norms' biases
    assert not any(f.path == "rules[1]" for f in report.findings)  # it still wins on conv and head biases


def test_layer_decay_silently_ignored_two_ways():
    """A later fixed lr overrides layer decay everywhere; a preset that does not fit gives one multiplier."""
    model = example_model("vit_like")
    overridden = {
        "optimizer": {"name": "AdamW", "lr": 1e-3, "weight_decay": 0.0},
        "rules": [
            {"kind": "layer_decay", "decay": 0.75, "preset": "timm_vit"},
            {"kind": "regex", "pattern": "^blocks\\.", "set": {"lr": 1e-3}, "label": "blocks"},
        ],
    }
    report = explain(quiet_build(overridden, model), model)
    assert codes(report) == []  # the blocks rule leaves stem and head to layer decay: it still acts there
    overridden["rules"][1] = {"kind": "all", "set": {"lr": 1e-3}, "label": "everything"}
    report = explain(quiet_build(overridden, model), model)
    assert codes(report) == ["shadowed"]
    assert report.findings[0].path == "rules[0]"
    wrong_preset = {
        "optimizer": {"name": "AdamW", "lr": 1e-3, "weight_decay": 0.0},
        "rules": [{"kind": "layer_decay", "decay": 0.75, "preset": "vissl_resnet", "num_layers": 4}],
    }
    report = explain(quiet_build(wrong_preset, model), model)
    assert "uniform" in codes(report)


def test_a_multiplier_nothing_reads_and_one_overridden_by_a_later_rule():
    model = example_model("convnet")
    config = {
        "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9},
        "rules": [
            {"kind": "regex", "pattern": "^head\\.", "set": {"decay_mult": 0.5, "lr_mult": 10}, "label": "head"},
            {"kind": "regex", "pattern": "^head\\.", "set": {"lr": 0.3}, "label": "head lr"},
        ],
    }
    report = explain(quiet_build(config, model), model)
    found = {f.code: f for f in report.findings}
    assert codes(report) == ["overridden", "unread-mult"]
    assert (
        found["unread-mult"].path == "rules[0].set.decay_mult" and "0 and not scheduled" in found["unread-mult"].message
    )
    assert found["overridden"].path == "rules[0].set.lr_mult" and "rules[1].set.lr" in found["overridden"].message


def test_decay_on_norms_under_adamw_frozen_and_shared_parameters():
    model = Tied()
    config = {
        "optimizer": {"name": "AdamW", "lr": 1e-3, "weight_decay": 0.05},
        "rules": [{"kind": "regex", "pattern": "^decoder\\.", "set": {"lr_mult": 2}, "label": "decoder"}],
    }
    report = explain(quiet_build(config, model), model)
    found = {f.code: f for f in report.findings}
    assert codes(report) == ["decay-norm", "frozen", "no-match", "shared"]
    assert "norm.weight, norm.bias" in found["decay-norm"].message
    assert "frozen.weight, frozen.bias" in found["frozen"].message
    assert "embed.weight is shared with decoder.weight" in found["shared"].message
    assert "rules[0] match only the other name" in found["shared"].message
    sgd = dict(config, optimizer={"name": "SGD", "lr": 0.1, "weight_decay": 0.05})
    assert "decay-1d" in codes(explain(quiet_build(sgd, model), model))  # not AdamW: the 1-D finding


def test_a_model_other_than_the_built_one_is_refused():
    built = optiplug.build(VIT, example_model("vit_like"))
    with pytest.raises(optiplug.ConfigError, match="not the one this Built was made for"):
        built.explain(example_model("vit_like"))


def test_explain_through_a_dialect_names_the_dialects_rules():
    model = example_model("resnet_like")
    built = quiet_build("examples/mmcv/paramwise_options.py", model)
    report = built.explain(model)
    assert codes(report) == ["decay-1d"]
    assert "layer2.0.downsample.1.weight" in report.findings[0].message  # a BN the paramwise regex misses
    assert torch.is_tensor(dict(model.named_parameters())["layer2.0.downsample.1.weight"])


def test_the_documented_mistakes_are_all_found_and_drawn():
    """docs/examples/lint/mistakes_vit.yaml: layer decay undone by a fixed lr for everything, and more."""
    from optiplug.tooling.explain_plot import explanation_figure

    model = example_model("vit_like")
    report = quiet_build("docs/examples/lint/mistakes_vit.yaml", model).explain(model)
    assert codes(report) == ["decay-1d", "decay-norm", "no-match", "shadowed", "unscheduled"]
    found = {f.code: f for f in report.findings}
    assert found["shadowed"].path == "rules[0]" and "layer decay" in found["shadowed"].message
    assert found["unscheduled"].path == "rules[4].set.lr" and "32 parameter(s)" in found["unscheduled"].message
    assert found["decay-norm"].message.startswith("2 norm-layer parameter(s)") and "norm.weight, norm.bias" in str(
        found["decay-norm"]
    )
    assert report.rules[3] == ("rules[3]", "fc_norm")
    figure = explanation_figure(report, "mistakes")
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["cls_token", "pos_embed"]
    red = [t.get_text() for t in ax.get_xticklabels() if t.get_color() == "tab:red"]
    assert red == ["rules[0] layer decay", "rules[3] fc_norm", "rules[4] base lr"]
    cells = ax.get_images()[0].get_array()
    assert cells[0][0] == 1 and cells[0][4] == 2 and cells[0][3] == 0  # cls_token: overwritten, won, unmatched


def test_a_fixed_value_under_a_relative_schedule_is_not_reported():
    """Only options an absolute schedule drives are held by a fixed value; the head's lr_mult keeps it."""
    model = example_model("convnet")
    report = optiplug.build("docs/examples/recipes/warmup_cosine.yaml", model).explain(model)
    assert codes(report) == []
