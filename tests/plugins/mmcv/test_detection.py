"""Dialect detection that explains itself: near misses answered in the dialect's terms, a forced dialect checked."""

from __future__ import annotations

import pytest
import torch

import optiplug
from optiplug import ConfigError


@pytest.mark.parametrize(
    ("config", "path", "words"),
    [
        ({"OPTIMISER": {"name": "sgd"}}, "OPTIMISER", "did you mean 'OPTIMIZER'? VISSL's optimizer block"),
        ({"optimizer": {"typ": "SGD", "lr": 0.1}}, "optimizer.typ", "names its class with type=, not typ="),
        ({"optimiser": {"name": "sgd", "lr": 0.1}}, "optimiser", "did you mean 'optimizer'?"),
    ],
)
def test_near_misses_name_the_dialect(config, path, words):
    with pytest.raises(ConfigError) as caught:
        optiplug.build(config, torch.nn.Linear(2, 2))
    assert caught.value.path == path
    assert words in str(caught.value)


def test_a_py_file_without_optimizer_says_so(tmp_path):
    path = tmp_path / "dataset.py"
    path.write_text("dataset_type = 'ImageNet'\ndata = dict(samples_per_gpu=32)\n")
    with pytest.raises(ConfigError, match=r"sets optimizer=dict\(type=...\), and this file .* sets none"):
        optiplug.build(path, torch.nn.Linear(2, 2))


def test_forcing_vissl_on_an_mmcv_config_is_a_config_error_not_a_key_error():
    config = dict(optimizer=dict(type="SGD", lr=0.1))
    with pytest.raises(ConfigError, match=r"dialect='vissl' .* it reads as the mmcv dialect"):
        optiplug.to_recipe(config, dialect="vissl")
    with pytest.raises(ConfigError, match=r"dialect='mmcv' .* it reads as a canonical recipe"):
        optiplug.to_recipe({"optimizer": {"name": "sgd", "lr": 0.1}}, dialect="mmcv")


def test_forcing_the_dialect_a_config_is_in_still_reads_it():
    recipe = optiplug.to_recipe(dict(optimizer=dict(type="SGD", lr=0.1)), dialect="mmcv")
    assert recipe.optimizer.name == "SGD" or recipe.optimizer.name.lower() == "sgd"


def test_the_cli_names_the_flag(tmp_path, capsys):
    from optiplug.cli.main import main

    path = tmp_path / "mmcv.py"
    path.write_text("optimizer = dict(type='SGD', lr=0.1)\n")
    status = main(["check", str(path), "--dialect", "vissl"])
    out = capsys.readouterr()
    assert status != 0
    assert "--dialect vissl" in out.err + out.out
    assert "KeyError" not in out.err + out.out
