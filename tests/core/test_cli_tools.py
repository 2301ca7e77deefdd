"""``optiplug explain``, ``find-lr``, ``diff`` and ``plot A B`` through the command line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from optiplug.cli import main

ROOT = Path(__file__).resolve().parents[2]
VISSL = str(ROOT / "examples/vissl/linear_warmup_cosine.yaml")
MMCV_PARAMWISE = str(ROOT / "examples/mmcv/paramwise_options.py")
ADAMWR = str(ROOT / "docs/examples/recipes/adamwr.yaml")
WARMUP_COSINE = str(ROOT / "docs/examples/recipes/warmup_cosine.yaml")


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_tools_are_in_the_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("explain", "find-lr", "diff"):
        assert f"    {command}" in out


def test_explain_a_seed_mmcv_config_finds_the_bn_its_regex_misses(capsys):
    code, out, err = run(capsys, "explain", MMCV_PARAMWISE, "--only", "downsample")
    assert code == 0, err
    assert "layer2.0.downsample.1.weight (32, BatchNorm2d) -> group 0" in out
    assert "rules: none matched" in out
    assert "warning: optimizer.weight_decay: 1 1-D parameter(s)" in out and "[decay-1d]" in out
    assert "layer1.0.conv1.weight" not in out  # --only
    assert run(capsys, "explain", MMCV_PARAMWISE, "--strict", "--lint")[0] == 3


@pytest.mark.parametrize(
    ("config", "extra"),
    [(VISSL, ["--steps-per-epoch", "10"]), (str(ROOT / "examples/vissl/head.yaml"), ["--steps-per-epoch", "10"])],
)
def test_explain_the_seed_examples(capsys, config, extra):
    code, out, err = run(capsys, "explain", config, *extra, "--strict")
    assert code == 0, out + err
    assert "lint: 0 findings" in out
    assert "ends with: lr=" in out


def test_explain_the_adamwr_seed_finds_decay_on_norms(capsys):
    """The adamwr README builds AdamW(model.parameters(), weight_decay=1e-5): norms and biases decay too."""
    code, out, _ = run(capsys, "explain", ADAMWR, "--lint")
    assert code == 0
    assert "20 norm-layer parameter(s) get the optimizer's weight decay (no rule sets it) under adamwr" in out
    assert "1 1-D parameter(s) (biases, scales) get the optimizer's weight decay (no rule sets it): head.bias" in out


def test_explain_an_importable_model(capsys, tmp_path, monkeypatch):
    (tmp_path / "mymodels.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            def make():
                return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))

            NOT_CALLABLE = 3
            """
        )
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optimizer: {name: AdamW, lr: 0.001, weight_decay: 0.05}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, _ = run(capsys, "explain", str(recipe), "--model", "mymodels:make", "--lint")
    assert code == 0
    assert "[decay-norm]" in out and "1.weight, 1.bias" in out
    code, _, err = run(capsys, "explain", str(recipe), "--model", "mymodels:NOT_CALLABLE")
    assert code == 1 and "--model: mymodels has no callable 'NOT_CALLABLE'" in err
    code, _, err = run(capsys, "explain", str(recipe), "--model", "nowhere.at_all:make")
    assert code == 1 and "--model: cannot import 'nowhere.at_all'" in err
    code, _, err = run(capsys, "explain", str(recipe), "--model", "resnet_lik")
    assert code == 1 and "did you mean 'resnet_like'" in err
    code, _, err = run(capsys, "explain", str(recipe), "--only", "(")
    assert code == 1 and "--only: invalid regular expression" in err


def test_find_lr_on_the_demo_writes_the_plot_and_the_snippets(capsys, tmp_path):
    output = tmp_path / "lr.png"
    code, out, err = run(capsys, "find-lr", WARMUP_COSINE, "-o", str(output), "--num-steps", "40", "--start-lr", "1e-4")
    assert code == 0, err
    assert out.startswith("40 updates, lr 0.0001 -> 10 (exp)") or "stopped at divergence" in out.splitlines()[0]
    assert "group lr ratios kept: 1, 1, 10, 10" in out
    for kind in ("# triangular", "# one_cycle", "# warmup_cosine"):
        assert kind in out
    assert output.read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run(
        capsys, "find-lr", WARMUP_COSINE, "-o", str(output), "--num-steps", "10", "--recipe", "triangular"
    )
    assert "# triangular" in out and "# one_cycle" not in out


def test_find_lr_with_model_and_data_factories(capsys, tmp_path, monkeypatch):
    (tmp_path / "mytask.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            def model():
                torch.manual_seed(0)
                return nn.Linear(4, 1)

            def data():
                g = torch.Generator().manual_seed(0)
                x = torch.randn(64, 4, generator=g)
                return [(x[i:i + 16], x[i:i + 16].sum(1, keepdim=True)) for i in range(0, 64, 16)]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = str(ROOT / "docs/examples/recipes/step_decay.yaml")
    argv = ["find-lr", recipe, "--model", "mytask:model", "--data", "mytask:data", "--loss", "mse"]
    code, out, err = run(capsys, *argv, "-o", str(tmp_path / "a.png"), "--num-steps", "30")
    assert code == 0, err
    assert "suggested min_lr" in out
    code, _, err = run(capsys, "find-lr", recipe, "--model", "mytask:model", "-o", str(tmp_path / "b.png"))
    assert code == 1 and "give --data too" in err
    code, _, err = run(capsys, *argv[:-1], "mae", "-o", str(tmp_path / "c.png"))
    assert code == 1 and "--loss: unknown loss 'mae'" in err
    code, _, err = run(capsys, "find-lr", recipe, "--start-lr", "1", "--end-lr", "0.1")
    assert code == 1 and "--start-lr 1 must be below --end-lr 0.1" in err
    code, _, err = run(capsys, "find-lr", recipe, "--start-lr", "-1")
    assert code == 2 and "must be > 0" in err


def test_diff_equal_and_unequal_configs_sets_the_exit_status(capsys, tmp_path):
    converted = tmp_path / "converted.yaml"
    assert main(["convert", VISSL, "--to", "canonical", "-o", str(converted), "--steps-per-epoch", "20"]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "diff", VISSL, str(converted), "--steps-per-epoch", "20")
    assert code == 0, err
    assert out.splitlines()[-1].startswith("the same: every option of every parameter at all 1,800 updates")
    changed = tmp_path / "changed.yaml"
    changed.write_text(converted.read_text().replace("end_value: 0.0048", "end_value: 0.004"))
    assert changed.read_text() != converted.read_text()
    code, out, _ = run(capsys, "diff", VISSL, str(changed), "--steps-per-epoch", "20", "-o", str(tmp_path / "d.png"))
    assert code == 3
    assert "lr, groups A0/B0" in out and "first differs at update 180" in out and "at update 1799" in out
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run(capsys, "diff", VISSL, str(changed), "--steps-per-epoch", "20", "--tolerance", "0.001")
    assert code == 0, out
    code, _, err = run(capsys, "diff", VISSL, str(changed), "--tolerance", "-1")
    assert code == 2 and "must be >= 0" in err
    code, _, err = run(capsys, "diff", VISSL, str(tmp_path / "missing.yaml"), "--steps-per-epoch", "20")
    assert code == 1 and "config file not found" in err


def test_plot_two_configs_of_different_dialects(capsys, tmp_path):
    output = tmp_path / "both.png"
    mmcv = str(ROOT / "examples/mmcv/warmup_linear_by_iter.py")
    code, out, err = run(capsys, "plot", mmcv, VISSL, "--steps-per-epoch", "20", "-o", str(output))
    assert code == 3, err
    assert "optimizer" not in out.splitlines()[2] or "differs" in out
    assert "the recipes differ" in out and f"wrote {output}" in out
    assert output.read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run(capsys, "plot", VISSL, VISSL, "--steps-per-epoch", "20", "-o", str(output))
    assert code == 0 and "the same" in out
