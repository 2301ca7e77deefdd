"""The command line as a newcomer meets it: messages in its own terms, files that are not configs,
``--version``, ``--import``, tables through a pipe, picture formats, and configs that give
their epochs but not the updates in one (the seed documents' examples, as pasted).
"""

from __future__ import annotations

import math
import textwrap

import pytest
import torch

import optiplug
import optiplug.tooling.plotting
from optiplug.cli import main
from optiplug.cli.terms import in_cli_terms
from optiplug.plugin_system.host import PluginHost, use_host
from optiplug.tooling.curves import compute_curves
from optiplug.tooling.demo import example_model


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_lines(capsys, code):
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith("optiplug: error: ")
    return lines


def error_line(capsys, code):
    lines = error_lines(capsys, code)
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def fresh_host():
    """A host of its own: what ``--import`` registers does not outlive the test."""
    with use_host(PluginHost()) as host:
        yield host


# -- --version -----------------------------------------------------------------------------------------------------


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"optiplug {optiplug.__version__}"


# -- --import ------------------------------------------------------------------------------------------------------

MODULE = '''
import torch
import optiplug

@optiplug.register_optimizer()
class EdgeSGD(torch.optim.SGD):
    """SGD under another name."""
'''


@pytest.mark.parametrize("where", ["before", "after"])
def test_import_makes_the_users_registrations_known(where, capsys, fresh_host, monkeypatch, tmp_path):
    (tmp_path / "edge_optims.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(__import__("sys").modules, "edge_optims", raising=False)
    config = write(tmp_path, "optimizer: {name: EdgeSGD, lr: 0.1}\n")
    assert "unknown optimizer 'EdgeSGD'" in error_line(capsys, main(["check", str(config)]))
    args = ["--import", "edge_optims", "check", str(config)]
    if where == "after":
        args = ["check", str(config), "--import", "edge_optims"]
    assert main(args) == 0
    assert "EdgeSGD: 1 param group" in capsys.readouterr().out


def test_import_a_file_and_several_modules(capsys, fresh_host, tmp_path):
    (tmp_path / "edge_file_optims.py").write_text(MODULE.replace("EdgeSGD", "EdgeFileSGD"))
    (tmp_path / "edge_schedules.py").write_text("import optiplug\n")
    config = write(tmp_path, "optimizer: {name: EdgeFileSGD, lr: 0.1}\n")
    file = str(tmp_path / "edge_file_optims.py")
    assert main(["--import", file, "--import", str(tmp_path / "edge_schedules.py"), "check", str(config)]) == 0
    assert "EdgeFileSGD" in capsys.readouterr().out


def test_import_errors_are_one_line_naming_the_module_and_the_flag(capsys, fresh_host, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    config = write(tmp_path, "optimizer: {name: sgd, lr: 0.1}\n")
    line = error_line(capsys, main(["--import", "no_such_module_here", "check", str(config)]))
    assert line.startswith("optiplug: error: --import no_such_module_here: no module named 'no_such_module_here'")
    (tmp_path / "edge_broken.py").write_text("import torch\nraise RuntimeError('needs a GPU')\n")
    line = error_line(capsys, main(["--import", "edge_broken", "check", str(config)]))
    assert line.startswith("optiplug: error: --import edge_broken: importing it failed: RuntimeError: needs a GPU (")
    assert "edge_broken.py:2)" in line
    (tmp_path / "edge_missing_dep.py").write_text("import not_installed_dependency\n")
    line = error_line(capsys, main(["--import", "edge_missing_dep", "check", str(config)]))
    assert "--import edge_missing_dep: importing it failed: ModuleNotFoundError" in line
    assert "not_installed_dependency" in line
    line = error_line(capsys, main(["--import", str(tmp_path / "absent.py"), "check", str(config)]))
    assert line == f"optiplug: error: --import {tmp_path / 'absent.py'}: no such file"


# -- messages in the command line's terms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "auto_lr_scaling needs the batch size per device: pass batch_size_per_device to build() "
            "or set DATA.TRAIN.BATCHSIZE_PER_REPLICA",
            "auto_lr_scaling needs the batch size per device: pass --batch-size "
            "or set DATA.TRAIN.BATCHSIZE_PER_REPLICA",
        ),
        (
            "the EpochBasedRunner runs 200 epochs: pass steps_per_epoch, its iterations per epoch "
            "(len(data_loader)): build(..., steps_per_epoch=N) or optiplug --steps-per-epoch N",
            "the EpochBasedRunner runs 200 epochs: pass --steps-per-epoch, its iterations per epoch (len(data_loader))",
        ),
        (
            "the schedules need the run's length: pass steps_per_epoch and num_epochs to build()",
            "the schedules need the run's length: pass --steps-per-epoch and --epochs",
        ),
        (
            "the IterBasedRunner runs max_iters=8 iterations; do not pass num_epochs to build()",
            "the IterBasedRunner runs max_iters=8 iterations; do not pass --epochs",
        ),
        (
            "needs the length of the run: MMCV runner=dict(type='EpochBasedRunner', max_epochs=...) with "
            "build(steps_per_epoch=...), runner=dict(type='IterBasedRunner', max_iters=...), or build(num_epochs=...)",
            "needs the length of the run: MMCV runner=dict(type='EpochBasedRunner', max_epochs=...) with "
            "--steps-per-epoch N, runner=dict(type='IterBasedRunner', max_iters=...), or --epochs N",
        ),
        ("T is the run's length in epochs: give num_epochs", "T is the run's length in epochs: give --epochs"),
        ("world_size 0 must be > 0", "world_size 0 must be > 0"),  # names no build() argument to pass: unchanged
        (
            "build(batch_size_per_device=...): batch_size_per_device must be a whole number > 0, got 0",
            "--batch-size: must be a whole number > 0, got 0",
        ),
    ],
)
def test_build_arguments_become_flags(message, expected):
    assert in_cli_terms(message) == expected


def test_a_vissl_config_needing_the_batch_names_the_flag(capsys, tmp_path):
    config = write(
        tmp_path,
        """\
        OPTIMIZER:
          name: sgd
          num_epochs: 2
          param_schedulers:
            lr:
              auto_lr_scaling: {auto_scale: true, base_value: 0.1, base_lr_batch_size: 256}
              name: cosine
              start_value: 0.15
              end_value: 0.0
        """,
    )
    line = error_line(capsys, main(["check", str(config), "--steps-per-epoch", "3"]))
    assert "pass --batch-size or set DATA.TRAIN.BATCHSIZE_PER_REPLICA" in line
    assert "build()" not in line and "batch_size_per_device" not in line
    assert main(["check", str(config), "--steps-per-epoch", "3", "--batch-size", "64"]) == 0
    err = capsys.readouterr().err  # the translation's warnings too: optiplug's lines, in the flags' terms
    assert all(line.startswith("optiplug: warning: ") for line in err.splitlines())
    assert "build()" not in err and "world_size to" not in err


def test_an_mmcv_runner_in_epochs_with_updates_counted_names_the_flag(capsys, tmp_path):
    config = write(
        tmp_path,
        """\
        optimizer = dict(type='SGD', lr=0.1)
        lr_config = dict(policy='step', step=[100], by_epoch=False)
        runner = dict(type='EpochBasedRunner', max_epochs=4)
        """,
        "config.py",
    )
    line = error_line(capsys, main(["plot", str(config), "-o", str(tmp_path / "x.png")]))
    assert "--steps-per-epoch" in line and "build(" not in line and "steps_per_epoch" not in line


# -- files that are not configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "{path}: the file is empty; expected a config, a mapping such as optimizer: {{name: sgd, lr: 0.1}}"),
        (b"# only a comment\n", "{path}: the file is empty; expected a config"),
        (
            b"- 1\n- 2\n",
            "{path}: expected a config, a mapping of keys such as optimizer: {{name: sgd, lr: 0.1}}, "
            "at the top of the file; got a list",
        ),
        (
            b"sgd\n",
            "{path}: expected a config, a mapping of keys such as optimizer: {{name: sgd, lr: 0.1}}, "
            "at the top of the file; got the text 'sgd'",
        ),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "cannot read {path}: a binary file (it holds NUL bytes); expected a text config",
        ),
        (
            b"caf\xe9: 1\n",
            "cannot read {path}: not UTF-8 text (byte 0xe9 on line 1); expected a config saved as UTF-8 text",
        ),
        (
            "optimizer: {name: sgd}\n".encode("utf-16"),
            "cannot read {path}: UTF-16 text; expected a config saved as UTF-8",
        ),
    ],
)
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_file_that_is_not_a_config_is_named_with_what_was_expected(content, expected, suffix, capsys, tmp_path):
    if suffix == ".json" and content in (b"# only a comment\n", b"- 1\n- 2\n", b"sgd\n"):
        content = {b"# only a comment\n": b"null", b"- 1\n- 2\n": b"[1, 2]", b"sgd\n": b'"sgd"'}[content]
    path = tmp_path / f"config{suffix}"
    path.write_bytes(content)
    if content == b"" and suffix == ".json":
        expected = "{path}: invalid JSON"
    line = error_line(capsys, main(["check", str(path)]))
    assert line.startswith("optiplug: error: " + expected.format(path=path)), line
    with pytest.raises(optiplug.ConfigError, match=str(path).replace("\\", "\\\\")):
        optiplug.build(str(path), torch.nn.Linear(2, 1))


def test_a_utf8_file_with_a_byte_order_mark_is_read(capsys, tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfoptimizer: {name: sgd, lr: 0.1}\n")
    assert main(["check", str(path)]) == 0


# -- tables through a pipe -----------------------------------------------------------------------------------------


def test_a_piped_table_never_splits_a_value(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "60")  # capsys is not a terminal: rich renders as to a pipe
    config = write(
        tmp_path,
        "optimizer: {name: adamw, lr: 0.000123456, weight_decay: 0.0001, betas: [0.9, 0.999]}\n"
        "rules: [{kind: norm, set: {weight_decay: 0}}]\n",
    )
    assert main(["check", str(config), "--model", "vit_like"]) == 0
    out = capsys.readouterr().out
    for value in ("weight_decay=0.0001", "lr=0.000123456", "betas=(0.9, 0.999)", "patch_embed.weight", "(no rule)"):
        assert value in out, value
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "mmcv_flat_cosine_annealing" in out and "optiplug-" not in out


# -- plot -o: the picture's format from its extension -------------------------------------------------------------

MAGIC = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF", "jpg": b"\xff\xd8\xff", "jpeg": b"\xff\xd8\xff"}


def test_plot_writes_the_format_its_extension_names(capsys, monkeypatch, tmp_path):
    figures = []
    save = optiplug.tooling.plotting.save_figure
    monkeypatch.setattr(
        optiplug.tooling.plotting, "save_figure", lambda fig, path: figures.append(fig) or save(fig, path)
    )
    config = write(
        tmp_path, "optimizer: {name: sgd, lr: 0.1}\nschedules: {lr: {name: cosine, start_value: 0.1, end_value: 0}}\n"
    )
    output = tmp_path / "curves.jpg"
    assert main(["plot", str(config), "--epochs", "2", "--steps-per-epoch", "3", "-o", str(output)]) == 0
    assert output.read_bytes().startswith(MAGIC["jpg"])  # not PNG bytes under a .jpg name
    assert f"wrote {output}" in capsys.readouterr().out
    for extension in ("png", "svg", "pdf", "JPEG"):
        other = save(figures[0], tmp_path / f"curves.{extension}")
        assert other.read_bytes().startswith(MAGIC[extension.lower()]), extension


@pytest.mark.parametrize("name", ["curves.gif", "curves"])
def test_plot_refuses_an_extension_it_cannot_write_before_building(name, capsys, monkeypatch, tmp_path):
    config = write(
        tmp_path, "optimizer: {name: sgd, lr: 0.1}\nschedules: {lr: {name: cosine, start_value: 0.1, end_value: 0}}\n"
    )
    monkeypatch.setattr(optiplug.cli.arguments, "planned_build", lambda *a, **k: pytest.fail("built"))
    output = tmp_path / name
    line = error_line(capsys, main(["plot", str(config), "--epochs", "2", "--steps-per-epoch", "3", "-o", str(output)]))
    assert line.startswith(f"optiplug: error: cannot write {output}: ")
    assert line.endswith("the picture's format is taken from the extension: .png, .svg, .pdf, .jpg, .jpeg")
    assert not output.exists()


# -- epochs without the updates in one -----------------------------------------------------------------------------

# The seed documents' VISSL examples, as pasted (the ones whose YAML is valid).
VISSL_SEEDS = [
    """\
OPTIMIZER:
    name: sgd
    weight_decay: 0.0001
    momentum: 0.9
    nesterov: False
    # for how many epochs to do training. only counts training epochs.
    num_epochs: 90
    # whether to regularize batch norm. if set to False, weight decay of batch norm params is 0.
    regularize_bn: False
    # whether to regularize bias parameter. if set to False, weight decay of bias params is 0.
    regularize_bias: True
""",
    """\
OPTIMIZER:
  head_optimizer_params:
    # if the head should use a different LR than the trunk. If yes, then specify the
    # param_schedulers.lr_head settings. Otherwise if set to False, the
    # param_scheduelrs.lr will be used automatically.
    use_different_lr: False
    # if the head should use a different weight decay value than the trunk.
    use_different_wd: False
    # if using different weight decay value for the head, set here. otherwise, the
    # same value as trunk will be automatically used.
    weight_decay: 0.0001
""",
    """\
OPTIMIZER:
  name: "sgd"
  use_larc: False  # supported for SGD only for now
  larc_config:
    clip: False
    eps: 1e-08
    trust_coefficient: 0.001
""",
    """\
OPTIMIZER:
  param_schedulers:
    lr:
      name: cosine
      start_value: 0.15   # LR for batch size 256
      end_value: 0.0000
""",
    """\
OPTIMIZER:
  param_schedulers:
    lr:
      name: multistep
      values: [0.01, 0.001]
      milestones: [1]
      update_interval: epoch  # update LR after every epoch
""",
    """\
OPTIMIZER:
  param_schedulers:
    lr:
      name: cosine_warm_restart
      start_value: 0.15   # LR for batch size 256
      end_value: 0.00015
      restart_interval_length: 0.5
      wave_type: half  # full | half
""",
]
# The seed's MMCV examples: the optimizers as pasted, the epoch-based warmup with a runner in epochs.
MMCV_SEEDS = [
    "optimizer = dict(type='SGD', lr=0.0003, weight_decay=0.0001)\n",
    "optimizer = dict(type='Adam', lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, amsgrad=False)\n",
    "optimizer = dict(type='SGD', lr=0.1, momentum=0.9)\n"
    "lr_config = dict(\npolicy='CosineAnnealing',\nmin_lr=0,\nwarmup='exp',\nwarmup_iters=5,\nwarmup_ratio=0.1,\n"
    "warmup_by_epoch=True)\nrunner = dict(type='EpochBasedRunner', max_epochs=30)\n",
]


@pytest.mark.parametrize(
    ("text", "name"),
    [*((t, "vissl.yaml") for t in VISSL_SEEDS), *((t, "mmcv.py") for t in MMCV_SEEDS)],
)
def test_the_seed_examples_check_and_plot_as_pasted(text, name, capsys, tmp_path):
    config = tmp_path / name
    config.write_text(text)
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "The config is valid." in out
    output = tmp_path / "curves.png"
    assert main(["plot", str(config), "-o", str(output)]) == 0
    assert output.read_bytes().startswith(MAGIC["png"])


def test_a_config_in_epochs_is_plotted_per_epoch_saying_so(capsys, monkeypatch, tmp_path):
    figures = []
    save = optiplug.tooling.plotting.save_figure
    monkeypatch.setattr(
        optiplug.tooling.plotting, "save_figure", lambda fig, path: figures.append(fig) or save(fig, path)
    )
    config = tmp_path / "vissl.yaml"
    config.write_text(
        VISSL_SEEDS[0] + "    param_schedulers:\n      lr: {name: cosine, start_value: 0.15, end_value: 0}\n"
    )
    assert main(["plot", str(config), "-o", str(tmp_path / "v.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("per epoch: the config gives the epochs, not the updates in one")
    assert "(epoch 0) · 90 epochs" in out
    lr_panel = figures[0].axes[0]
    assert figures[0].axes[-1].get_xlabel().startswith("epoch (one value per epoch")
    assert "90 epochs, updates per epoch not given (pass --steps-per-epoch" in figures[0].get_suptitle()
    plotted = torch.as_tensor(
        next(line for line in lr_panel.get_lines() if not line.get_label().startswith("_")).get_ydata()
    )
    expected = torch.tensor([0.15 * (1 + math.cos(math.pi * e / 90)) / 2 for e in range(90)], dtype=torch.float64)
    torch.testing.assert_close(plotted, expected, rtol=1e-12, atol=1e-12)
    # the same values as a build given its updates per epoch, at each epoch's start
    built = optiplug.build(str(config), example_model("resnet_like"), steps_per_epoch=7)
    torch.testing.assert_close(plotted, compute_curves(built).values["lr"][0, ::7])


def test_check_in_epochs_prints_the_recipe_without_invented_updates(capsys, tmp_path):
    config = tmp_path / "vissl.yaml"
    config.write_text(
        VISSL_SEEDS[0] + "    param_schedulers:\n      lr: {name: cosine, start_value: 0.15, end_value: 0}\n"
    )
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "run: {num_epochs: 90}" in out and "steps_per_epoch" not in out
    assert "run: 90 epochs, updates per epoch not given (pass --steps-per-epoch" in " ".join(out.split())


def test_schedules_counting_updates_need_the_updates_per_epoch(capsys, tmp_path):
    config = write(
        tmp_path,
        """\
        optimizer = dict(type='SGD', lr=0.0003, weight_decay=0.0001)
        lr_config = dict(
        policy='CosineAnnealing',
        by_epoch=False,
        min_lr_ratio=1e-2,
        warmup='linear',
        warmup_ratio=1e-3,
        warmup_iters=200,
        warmup_by_epoch=False)
        runner = dict(type='EpochBasedRunner', max_epochs=20)
        """,
        "mmcv.py",
    )
    line = error_line(capsys, main(["plot", str(config), "-o", str(tmp_path / "m.png")]))
    assert line.endswith(
        "its schedules count updates (their values at the start of each epoch change with the "
        "updates per epoch): pass --steps-per-epoch"
    )
    assert main(["plot", str(config), "-o", str(tmp_path / "m.png"), "--steps-per-epoch", "50"]) == 0


def test_a_config_without_any_length_asks_for_both_and_epochs_alone_plot_per_epoch(capsys, tmp_path):
    config = write(
        tmp_path, "optimizer: {name: sgd, lr: 0.1}\nschedules: {lr: {name: cosine, start_value: 0.1, end_value: 0}}\n"
    )
    assert "pass --steps-per-epoch and --epochs" in error_line(capsys, main(["plot", str(config)]))
    assert "pass --steps-per-epoch and --epochs" in error_line(capsys, main(["check", str(config)]))
    assert main(["plot", str(config), "--epochs", "4", "-o", str(tmp_path / "c.png")]) == 0
    assert "first 0.1 · last 0.01464 · min 0.01464 · max 0.1 (epoch 0) · 4 epochs" in capsys.readouterr().out
