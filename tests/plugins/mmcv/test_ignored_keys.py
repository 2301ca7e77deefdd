"""Keys MMCV ignores: a warning with a did-you-mean, the same optimizer as MMCV's (which ignores them)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import optiplug
from optiplug import OptiplugWarning

SGD = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.bn = nn.BatchNorm2d(2)
        self.theta = nn.Linear(2, 2)


def _groups(config, **kwargs):
    torch.manual_seed(0)
    built = optiplug.build(config, Net(), **kwargs)
    return sorted(
        (g["lr"], g["weight_decay"], tuple(p.shape for p in g["params"])) for g in built.optimizer.param_groups
    )


def test_a_misspelt_top_level_key_warns_and_is_ignored():
    config = dict(optimizer=SGD, lr_confg=dict(policy="Step", step=2), log_config=dict(interval=1), total_epochs=3)
    with pytest.warns(OptiplugWarning, match=r"lr_confg: MMCV reads no such key.*did you mean 'lr_config'"):
        recipe = optiplug.to_recipe(config, steps_per_epoch=2)
    assert recipe.schedules == {}


def test_known_top_level_keys_do_not_warn():
    config = dict(optimizer=SGD, log_config=dict(interval=1), checkpoint_config=dict(interval=1), total_epochs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optiplug.to_recipe(config)


def test_delete_typo_in_paramwise_cfg_warns_and_changes_nothing():
    plain = dict(optimizer=dict(SGD, paramwise_cfg=dict(norm_decay_mult=0.0)))
    typo = dict(optimizer=dict(SGD, paramwise_cfg=dict(_delete=True, norm_decay_mult=0.0)))
    with pytest.warns(OptiplugWarning, match=r"paramwise_cfg._delete: .*did you mean '_delete_'"):
        got = _groups(typo)
    assert got == _groups(plain)
    assert (0.1, 0.0, ((2,),)) in got or any(wd == 0.0 for _, wd, _ in got)


def test_custom_keys_other_than_lr_and_decay_mult_warn():
    # MMSegmentation's dnlnet configs: custom_keys={'theta': dict(wd_mult=0.)}; MMCV reads lr_mult/decay_mult only.
    config = dict(optimizer=dict(SGD, paramwise_cfg=dict(custom_keys=dict(theta=dict(wd_mult=0.0)))))
    with pytest.warns(OptiplugWarning, match=r"custom_keys.theta.wd_mult: .*did you mean 'decay_mult'"):
        got = _groups(config)
    assert {wd for _, wd, _ in got} == {1e-4}


def test_custom_imports_and_lr_changing_hooks_warn():
    config = dict(
        optimizer=SGD,
        custom_imports=dict(imports=["mmcls.models"], allow_failed_imports=False),
        custom_hooks=[dict(type="SimSiamHook", fix_pred_lr=True, lr=0.05), dict(type="EMAHook")],
    )
    with pytest.warns(OptiplugWarning) as caught:
        optiplug.to_recipe(config)
    messages = [str(w.message) for w in caught]
    assert any("optiplug --import MODULE" in m and "mmcls.models" in m for m in messages)
    assert any(m.startswith("custom_hooks[0]: SimSiamHook") for m in messages)
    assert not any("custom_hooks[1]" in m for m in messages)
