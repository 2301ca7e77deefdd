"""Config files are data: nothing in them runs, and no file can hang or exhaust the loader.

YAML goes through the safe loader (a ``!!python/...`` tag is a ConfigError in every
dialect, and nothing runs); JSON, YAML and MMCV .py files that are nested thousands of
levels deep, contain themselves through anchors, expand exponentially through aliases
(a "billion laughs"), are devices or pipes, or are huge, are ConfigErrors, quickly.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

import optiplug
from optiplug.cli import main


def build(path):
    return optiplug.build(str(path), torch.nn.Linear(2, 2), steps_per_epoch=2, num_epochs=2)


@pytest.mark.parametrize(
    "template",
    [
        "optimizer: {{name: sgd, lr: {evil}}}\n",
        "OPTIMIZER:\n  name: sgd\n  larc_config: {evil}\n",
        "optimizer: {{type: SGD, lr: 0.1}}\nlr_config: {evil}\n",
        "model: {evil}\noptimizer: {{type: SGD, lr: 0.1}}\n",  # a key the dialect never reads
    ],
    ids=["canonical", "vissl", "mmcv", "unread_key"],
)
@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:os.system",
        "!!python/module:os",
    ],
)
def test_python_tags_are_refused_in_every_dialect_and_nothing_runs(tmp_path, template, tag):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(template.format(evil=tag.format(marker=marker)))
    with pytest.raises(optiplug.ConfigError, match="tags that build Python objects are refused"):
        build(path)
    assert not marker.exists()


def test_the_command_line_refuses_them_in_one_line(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"optimizer: !!python/object/apply:os.system ['touch {marker}']\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("optiplug: error: ") and len(err.strip().splitlines()) == 1
    assert not marker.exists()


LAUGHS = "\n".join(
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
)


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        (f"{LAUGHS}\noptimizer: {{name: sgd}}\n", "more than 1,000,000 values with its aliases expanded", "a5"),
        (
            "optimizer: {name: sgd}\nrules: &r\n  - {kind: all, set: {lr_mult: 1}}\n  - *r\n",
            "this value contains itself",
            "rules[1]",
        ),
        ("OPTIMIZER: &o\n  name: sgd\n  larc_config: *o\n", "this value contains itself", "OPTIMIZER.larc_config"),
        (
            "optimizer: &o {type: SGD, lr: 0.1, paramwise_options: {x: *o}}\n",
            "this value contains itself",
            "optimizer.paramwise_options.x",
        ),
        ("x: " + "[" * 150 + "]" * 150 + "\noptimizer: {name: sgd}\n", "nested more than 100 levels deep", "x"),
        ("x: " + "[" * 5000 + "]" * 5000 + "\noptimizer: {name: sgd}\n", "nested too deeply to be a config", ""),
    ],
    ids=["billion_laughs", "recursive_rules", "recursive_vissl", "recursive_mmcv", "deep", "deeper"],
)
def test_yaml_that_would_hang_or_crash_the_loader_is_refused(tmp_path, text, message, where):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(optiplug.ConfigError, match=message) as info:
        build(path)
    assert info.value.path.startswith(where)
    assert time.monotonic() - started < 10
    assert len(str(info.value)) < 500  # the message does not print the expanded value


def test_shared_anchors_within_the_limits_are_fine(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "optimizer: {name: sgd, lr: 0.1}\n"
        "schedules:\n"
        "  lr: &cosine {name: cosine, start_value: 0.1, end_value: 0}\n"
        "rules: [{kind: bias, schedules: {lr: *cosine}}]\n"
    )
    assert build(path).recipe.rules[0].schedules["lr"] == build(path).recipe.schedules["lr"]


def test_deep_json_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + ', "optimizer": {"name": "sgd"}}')
    with pytest.raises(optiplug.ConfigError, match="config.json: nested too deeply to be a config"):
        build(path)


def test_a_mapping_given_in_code_that_contains_itself_is_refused():
    config = {"optimizer": {"name": "sgd", "lr": 0.1}, "rules": []}
    config["rules"].append(config)
    with pytest.raises(optiplug.ConfigError, match="the config: this value contains itself") as info:
        optiplug.build(config, torch.nn.Linear(2, 2))
    assert info.value.path == "rules[0]"


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_devices_pipes_and_huge_files_are_not_read(tmp_path, suffix):
    device = tmp_path / f"zero{suffix}"
    os.symlink("/dev/zero", device)
    with pytest.raises(optiplug.ConfigError, match="not a regular file"):
        build(device)
    pipe = tmp_path / f"pipe{suffix}"
    os.mkfifo(pipe)  # reading it would block until someone writes
    with pytest.raises(optiplug.ConfigError, match="not a regular file"):
        build(pipe)
    huge = tmp_path / f"huge{suffix}"
    huge.write_text(json.dumps({"optimizer": {"name": "sgd"}, "pad": "x" * (17 * 2**20)}))
    with pytest.raises(optiplug.ConfigError, match="more than a config's 16,777,216"):
        build(huge)
