"""Fuzzed config files, and the mappings they hold: every dialect, every way a file goes wrong.

A file is built by path (``optiplug.build("x.yaml", model)``) and, when it parses to a
mapping, as that mapping too. Each either builds or fails with an
``optiplug.ConfigError`` that says where: a problem with no config path names the file.
Never another exception (a codec error, an OverflowError, a RecursionError). The files:

* random bytes under each suffix; a valid config re-encoded (UTF-16, Latin-1, a BOM, a
  NUL byte), cut short, or with bytes flipped, inserted or deleted;
* a number of a valid config replaced by a huge one (``10**400``, ``1e999``, ``.inf``);
* a value of a valid config nested hundreds or thousands of levels deep.

``OPTIPLUG_FUZZ_FILE_EXAMPLES`` sets the number of examples (default 40, under a minute
in all on two cores; ``OPTIPLUG_FUZZ_FILE_EXAMPLES=2000`` for a long run), and
``OPTIPLUG_FUZZ_SEED`` the seed, as for the mapping fuzzers.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import optiplug
from fuzzing import BUILD_ARGUMENTS, SEED, TinyNet, check_located, fuzz_seed
from optiplug.cli import main

FILE_EXAMPLES = int(os.environ.get("OPTIPLUG_FUZZ_FILE_EXAMPLES", "40"))
FILE_SETTINGS = settings(
    max_examples=FILE_EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failing file is reported as drawn, in bounded time
)

BASES = {
    "canonical.yaml": (
        "optimizer: {name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.0001}\n"
        "rules:\n  - {kind: norm, set: {weight_decay: 0}}\n  - {kind: regex, pattern: '^head', set: {lr_mult: 10}}\n"
        "schedules:\n  lr: {name: cosine, start_value: 0.1, end_value: 0.0}\n"
        "lr_scaling: {base_batch_size: 256}\n"
        "run: {num_epochs: 2, steps_per_epoch: 3, batch_size_per_device: 32, world_size: 2}\n"
    ),
    "canonical.json": (
        '{"optimizer": {"name": "adamw", "lr": 0.001, "betas": [0.9, 0.999], "weight_decay": 0.05},\n'
        ' "schedules": {"lr": {"name": "linear", "start_value": 0.001, "end_value": 0}},\n'
        ' "accumulation": {"steps": 2},\n "run": {"num_epochs": 2, "steps_per_epoch": 4}}\n'
    ),
    "vissl.yaml": (
        "OPTIMIZER:\n  name: sgd\n  momentum: 0.9\n  weight_decay: 0.0001\n  num_epochs: 2\n"
        "  regularize_bn: false\n  param_schedulers:\n    lr:\n"
        "      auto_lr_scaling: {auto_scale: true, base_value: 0.1, base_lr_batch_size: 256}\n"
        "      name: composite\n      schedulers:\n        - {name: linear, start_value: 0.01, end_value: 0.1}\n"
        "        - {name: cosine, start_value: 0.1, end_value: 0.0}\n"
        "      interval_scaling: [rescaled, fixed]\n      update_interval: step\n      lengths: [0.5, 0.5]\n"
        "DATA:\n  TRAIN:\n    BATCHSIZE_PER_REPLICA: 32\nDISTRIBUTED:\n  NUM_NODES: 1\n  NUM_PROC_PER_NODE: 2\n"
    ),
    "mmcv.py": (
        "optimizer = dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0001,\n"
        "                 paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={'head': dict(lr_mult=10.0)}))\n"
        "optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))\n"
        "lr_config = dict(policy='step', step=[1], warmup='linear', warmup_iters=2, warmup_ratio=0.1)\n"
        "runner = dict(type='EpochBasedRunner', max_epochs=2)\n"
        "data = dict(samples_per_gpu=32)\n"
    ),
}
NUMBER = re.compile(r"(?<![\w.'])\d+(?:\.\d+)?(?:e-?\d+)?(?![\w'])")
HUGE = ["1" + "0" * 400, "9" * 5000, "1e999", "-1e999", "-" + "1" * 400, "0." + "0" * 400 + "1", "1e-999"]
HUGE_YAML = [".inf", "-.inf", ".nan"]
DEPTHS = [101, 300, 5000]


def located_or_names_the_file(exc: optiplug.ConfigError, path: Path) -> None:
    """Every problem has a config path, or its message names the file (or the build() argument it needs)."""
    for where, message in exc.items:
        assert message.strip(), f"empty message at {where!r}"
        named = path.name in message or any(argument in message for argument in BUILD_ARGUMENTS)
        assert where or named, f"neither a config path nor the file: {message!r}"


def build_file(path: Path) -> str:
    """Build the file by path (and its mapping, when it parses to one): "built" or "refused"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            optiplug.build(str(path), TinyNet(), steps_per_epoch=3)
            outcome = "built"
        except optiplug.ConfigError as exc:
            located_or_names_the_file(exc, path)
            outcome = "refused"
        mapping = parsed(path)
        if isinstance(mapping, dict):
            try:
                optiplug.build(mapping, TinyNet(), steps_per_epoch=3)
            except optiplug.ConfigError as exc:
                check_located(exc, mapping)
    return outcome


def parsed(path: Path) -> object:
    """The mapping a YAML or JSON file holds, when a plain safe load reads it (else None)."""
    if path.suffix == ".py":
        return None
    try:
        return yaml.safe_load(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError, ValueError):
        return None


@st.composite
def broken_files(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(BASES)))
    text = BASES[name]
    kind = draw(st.sampled_from(["bytes", "encoding", "cut", "edit", "huge", "deep", "huge", "deep", "edit"]))
    if kind == "bytes":
        return name, draw(st.binary(max_size=300))
    if kind == "encoding":
        encoding = draw(st.sampled_from(["utf-16", "utf-16-be", "utf-32", "latin-1", "utf-8-sig", "nul", "cp1252"]))
        if encoding == "nul":
            at = draw(st.integers(0, len(text)))
            return name, (text[:at] + "\0" + text[at:]).encode()
        if encoding in ("latin-1", "cp1252"):
            text = text.replace("sgd", "sgdé", 1).replace("SGD", "SGDé", 1).replace("adamw", "adamwé", 1)
        return name, text.encode(encoding)
    if kind == "cut":
        return name, text.encode()[: draw(st.integers(0, len(text) - 1))]
    if kind == "edit":
        data = bytearray(text.encode())
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data) - 1))
            byte = draw(st.integers(0, 255))
            operation = draw(st.sampled_from(["flip", "insert", "delete"]))
            if operation == "flip":
                data[at] = byte
            elif operation == "insert":
                data.insert(at, byte)
            else:
                del data[at]
        return name, bytes(data)
    numbers = list(NUMBER.finditer(text))
    match = numbers[draw(st.integers(0, len(numbers) - 1))]
    if kind == "huge":
        choices = HUGE + (HUGE_YAML if name.endswith(".yaml") else [])
        value = draw(st.sampled_from(choices))
    else:
        depth = draw(st.sampled_from(DEPTHS))
        value = "[" * depth + match.group(0) + "]" * depth
    return name, (text[: match.start()] + value + text[match.end() :]).encode()


@fuzz_seed
@FILE_SETTINGS
@given(case=broken_files())
def test_a_broken_file_builds_or_is_a_config_error_naming_where(case, tmp_path_factory):
    name, data = case
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    build_file(path)


@pytest.mark.parametrize("name", sorted(BASES))
def test_the_bases_build(name, tmp_path):
    path = tmp_path / name
    path.write_text(BASES[name])
    assert build_file(path) == "built"


@pytest.mark.parametrize(
    ("name", "old", "new", "where"),
    [
        ("vissl.yaml", "BATCHSIZE_PER_REPLICA: 32", "BATCHSIZE_PER_REPLICA: 1" + "0" * 400, "BATCHSIZE_PER_REPLICA"),
        (
            "canonical.yaml",
            "batch_size_per_device: 32",
            "batch_size_per_device: 1" + "0" * 400,
            "batch_size_per_device",
        ),
        ("vissl.yaml", "NUM_NODES: 1", "NUM_NODES: 1" + "0" * 400, "NUM_NODES"),
    ],
)
def test_a_huge_batch_size_is_a_config_error_at_its_key(name, old, new, where, tmp_path, capsys):
    """Finding 9: a batch size past what a float holds raised a raw OverflowError."""
    path = tmp_path / name
    path.write_text(BASES[name].replace(old, new))
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(str(path), TinyNet(), steps_per_epoch=3)
    assert where in info.value.path or where in str(info.value)
    assert main(["check", str(path), "--steps-per-epoch", "3"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("optiplug: error: ") and "Traceback" not in err and where in err


@pytest.mark.parametrize("depth", [150, 5000])
@pytest.mark.parametrize("name", sorted(BASES))
def test_deep_nesting_is_a_config_error_naming_the_file(name, depth, tmp_path):
    text = BASES[name]
    match = next(NUMBER.finditer(text))
    path = tmp_path / name
    path.write_text(text[: match.start()] + "[" * depth + "1" + "]" * depth + text[match.end() :])
    with pytest.raises(optiplug.ConfigError) as info:
        optiplug.build(str(path), TinyNet(), steps_per_epoch=3)
    assert name in str(info.value)


@fuzz_seed
@settings(FILE_SETTINGS, max_examples=max(1, FILE_EXAMPLES // 4))
@given(case=broken_files())
def test_the_command_line_reports_a_broken_file_without_a_traceback(case, tmp_path_factory, capsys):
    name, data = case
    path = tmp_path_factory.mktemp("fuzzcli") / name
    path.write_bytes(data)
    capsys.readouterr()
    code = main(["check", str(path), "--steps-per-epoch", "3"])
    err = capsys.readouterr().err
    assert code in (0, 1), err
    assert "Traceback" not in err
    if code == 1:
        assert err.startswith("optiplug: error: ")
