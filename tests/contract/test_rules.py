"""Contract of every registered param-rule kind, on a model with an embedding, convolutions,
batch norms, a layer norm and a linear head.

Each kind is used as written in ``EXAMPLES`` (a new kind must add one). Its matcher,
compiled once, answers every parameter with False/None, True or a mapping of options,
selects some parameters and not every one of them when ``selects_all`` is False; in a recipe,
the rule's ``set`` reaches the groups of the parameters it selects (a rule matching nothing
would warn, and warnings are errors here) and the build trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest
import torch

import optiplug
from contract.support import NUM_EPOCHS, STEPS_PER_EPOCH, entry_point_names, make_model, train
from optiplug.plugin import ParamInfo, structure_config


@attrs.frozen
class Example:
    """A rule kind's fields (beside ``kind``), and whether it selects every parameter of the model."""

    fields: dict[str, Any] = attrs.field(factory=dict)
    selects_all: bool = False


EXAMPLES: dict[str, Example] = {
    # core
    "regex": Example({"pattern": r"^blocks\.\d+\.conv\."}),
    "name": Example({"contains": "bn"}),
    "module_type": Example({"types": ["Embedding", "_BatchNorm"]}),
    "module_path": Example({"prefix": "heads"}),
    "ndim": Example({"max": 1}),
    "norm": Example(),
    "bias": Example(),
    "all": Example(selects_all=True),
    # optiplug_vissl: VISSL's constructors give every parameter its weight decay
    "vissl_groups": Example({"weight_decay": 1e-4}, selects_all=True),
    "vissl_head": Example(),
    "vissl_linear_eval_heads": Example({"heads": [{"lr": 2.0}]}, selects_all=True),
    "vissl_frozen": Example({"names": ["embed.weight"]}),
    # optiplug_mmcv: paramwise_cfg's multipliers reach biases and norms
    "mmcv_paramwise": Example({"bias_lr_mult": 2.0, "norm_decay_mult": 0.0}),
    # optiplug_mmcv: MMSegmentation's layer decay (every parameter gets a layer) and MMSelfSup's finetune regexes
    "mmseg_layer_decay": Example({"num_layers": 2, "decay_rate": 0.5, "backbone": "vit"}, selects_all=True),
    "mmselfsup_finetune": Example({"paramwise_options": {r"^blocks\.\d+\.conv\.": {"lr_mult": 0.5}}}),
    # optiplug_mmengine: MMEngine's paramwise_cfg, its flat_decay_mult included
    "mmengine_paramwise": Example({"bias_lr_mult": 2.0, "norm_decay_mult": 0.0, "flat_decay_mult": 0.5}),
    # optiplug_mmengine: mmdet 3.x's ConvNeXt layer decay, the names read as ConvNeXt's on any model
    "mmdet_layer_decay": Example({"num_layers": 6, "decay_rate": 0.9, "backbone": "convnext"}, selects_all=True),
    # optiplug_layer_decay: a multiplier for every depth
    "layer_decay": Example({"decay": 0.5, "preset": "timm_vit"}, selects_all=True),
}

KINDS = entry_point_names("rules")


def example_of(kind: str) -> Example:
    if kind not in EXAMPLES:
        pytest.fail(f"rule kind {kind!r} has no example: add one to EXAMPLES in {__file__}")
    return EXAMPLES[kind]


def infos(model: torch.nn.Module) -> list[ParamInfo]:
    return [
        ParamInfo(f"{module_name}.{leaf}" if module_name else leaf, param, module, module_name, model)
        for module_name, module in model.named_modules()
        for leaf, param in module.named_parameters(recurse=False)
    ]


def test_every_registered_rule_kind_has_an_example():
    missing = sorted(set(KINDS) - set(EXAMPLES))
    assert not missing, f"rule kinds without an example in EXAMPLES ({__file__}): {missing}"


def test_every_example_is_of_a_registered_rule_kind():
    stale = sorted(set(EXAMPLES) - set(KINDS))
    assert not stale, f"EXAMPLES holds rule kinds nobody registers: {stale}"


@pytest.mark.parametrize("kind", KINDS)
def test_the_config_class_is_attrs_with_help_on_every_field_or_none(kind):
    spec = optiplug.get_registry().rules.get(kind)
    if spec.config_class is None:
        assert not example_of(kind).fields, f"{kind} takes no fields"
        return
    assert attrs.has(spec.config_class), f"{spec.config_class!r} is not an attrs class"
    silent = [f.name for f in attrs.fields(spec.config_class) if not f.metadata.get("help")]
    assert not silent, f"fields without help text (optiplug schema and the docs show it): {silent}"


@pytest.mark.parametrize("kind", KINDS)
def test_the_matcher_answers_every_parameter_and_selects_some(kind):
    registry = optiplug.get_registry()
    spec = registry.rules.get(kind)
    example = example_of(kind)
    config = None
    if spec.config_class is not None:
        config = structure_config(example.fields, spec.config_class, registry, f"rules.{kind}")
    match = spec.matcher(config)
    model = make_model()
    answers = {info.name: match(info) for info in infos(model)}
    odd = {n: a for n, a in answers.items() if not (a is None or isinstance(a, bool | Mapping))}
    assert not odd, f"a matcher returns False/None, True or a mapping of options, got {odd}"
    selected = sorted(n for n, a in answers.items() if a is not None and a is not False)
    assert selected, f"{kind} selects nothing in {sorted(answers)}"
    if example.selects_all:
        assert selected == sorted(answers)
    else:
        assert selected != sorted(answers), f"{kind} with {example.fields} was expected to leave some parameters out"
    assert spec.matcher(config)(infos(make_model())[0]) == answers[next(iter(answers))], "compiling twice differs"


@pytest.mark.parametrize("kind", KINDS)
def test_a_rule_of_the_kind_sets_its_options_on_the_groups_it_selects_and_trains(kind):
    model = make_model()
    trainable = [p for p in model.parameters() if p.requires_grad]  # a rule may freeze some (vissl_frozen)
    rule = {"kind": kind, **example_of(kind).fields, "set": {"momentum": 0.5}, "label": "under contract"}
    recipe = {"optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}, "rules": [rule]}
    built = optiplug.build(recipe, model, steps_per_epoch=STEPS_PER_EPOCH, num_epochs=NUM_EPOCHS)
    ruled = [g for g in built.groups if "under contract" in g.rules]
    assert ruled, built
    for summary in ruled:
        assert built.optimizer.param_groups[summary.index]["momentum"] == 0.5, built
    others = [g for g in built.groups if "under contract" not in g.rules]
    assert all(built.optimizer.param_groups[g.index]["momentum"] == 0.9 for g in others), built
    trained = [p for group in built.optimizer.param_groups for p in group["params"]]
    assert sorted(map(id, trained)) == sorted(map(id, trainable)), "every trainable parameter in one group"
    train(built, model, range(3))
    assert all(torch.isfinite(p).all() for p in model.parameters())
