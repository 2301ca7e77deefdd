"""Real config trees written as MMEngine configs (slow): MMEngine round trips and the MMCV 1.x migration.

The trees are those of tests/plugins/mmcv/test_config_trees.py and test_config_trees.py
here: an installed package's ``.mim/configs`` or the folders in
``OPTIPLUG_OPENMMLAB_CONFIGS`` (unpacked wheels of mmpretrain 1.2.0, mmcls 0.25.0,
mmselfsup 0.11.0, mmsegmentation 0.30.0, mmdet 2.28.2, ...). Every training config that
optiplug reads and builds on the test model is converted with ``--to mmengine``:

* written, it is read back (optiplug) and builds the same values at every update: exactly
  for an MMEngine original, to 1e-9 of each option's scale for an MMCV one; each distinct
  written config whose run is at most 3000 iterations and whose parts MMEngine registers
  itself (torch's optimizers, MMEngine's schedulers) is also run by MMEngine (its
  ``Config.fromfile``, OptimWrapper and schedulers) and compared per parameter with the
  original read by optiplug;
* refused, the refusal is a ConfigError whose reason is printed with its count (``-s``).
"""

from __future__ import annotations

import collections
import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from test_values import L, Net, optiplug_trace
from test_write import assert_same, quiet_mmengine_trace, read_by_mmengine

import optiplug
from optiplug import ConfigError
from optiplug.tooling.conversion import converted_config, differences, python_config

PACKAGES = ("mmpretrain", "mmdet", "mmseg", "mmselfsup", "mmcls")
TOLERANCE = 1e-9
MAX_REFERENCE_ITERATIONS = 3000
MMENGINE_SCHEDULERS = {
    f"{kind}{form}"
    for kind in ("Constant", "CosineAnnealing", "CosineRestart", "Exponential", "Linear", "MultiStep", "Poly", "Step")
    for form in ("LR", "Momentum", "ParamScheduler")
} | {"OneCycleLR"}


def trees() -> list[Path]:
    found = [Path(p) for p in os.environ.get("OPTIPLUG_OPENMMLAB_CONFIGS", "").split(os.pathsep) if p]
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin:
            found.append(Path(spec.origin).parent)
    found = [p / ".mim" / "configs" if (p / ".mim" / "configs").is_dir() else p for p in found]
    return [p for p in dict.fromkeys(found) if p.is_dir()]


def mmengine_runs_it(config: dict[str, Any]) -> bool:
    """Whether MMEngine alone registers the written config's optimizer and schedulers."""
    import torch

    optimizer = config["optim_wrapper"]["optimizer"]["type"]
    schedulers = config.get("param_scheduler", [])
    return getattr(torch.optim, optimizer, None) is not None and all(
        s["type"] in MMENGINE_SCHEDULERS for s in schedulers
    )


def reason_of(message: str) -> str:
    """A refusal's reason without its numbers and names, to count alike ones together."""
    head = (
        message.split(": ", 1)[-1]
        if message.startswith(("lr_config", "momentum_config", "rules", "optim"))
        else message
    )
    return head[:110]


@pytest.mark.slow
@pytest.mark.parametrize("tree", trees() or [None], ids=lambda t: t.parent.parent.name if t else "none")
def test_every_config_is_written_with_the_same_values_or_refused(tree: Path | None, tmp_path: Path) -> None:
    if tree is None:
        pytest.skip("no OpenMMLab package with .mim/configs installed, and OPTIPLUG_OPENMMLAB_CONFIGS unset")
    counts: collections.Counter[str] = collections.Counter()
    seen: set[str] = set()
    recipes: dict[str, str] = {}  # a config whose canonical recipe an earlier one had is counted as that one
    wrong: list[str] = []
    figures = {"steps_per_epoch": L, "batch_size_per_device": 32, "world_size": 8}
    # an MMEngine tree's configs are written back as they are: exactly the same values
    mmengine_tree = any("optim_wrapper" in p.read_text(errors="replace") for p in tree.glob("_base_/**/*.py"))
    tolerance = 0.0 if mmengine_tree else TOLERANCE
    for path in sorted(tree.rglob("*.py")):
        if "_base_" in path.parts:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                recipe = repr(optiplug.to_recipe(path, **figures))
                if recipe in recipes:
                    counts[recipes[recipe]] += 1
                    continue
                original = optiplug.build(path, Net(), **figures)
            except (ConfigError, ValueError):
                counts["not read or not built on the test model"] += 1
                continue
            try:
                config = converted_config(path, to="mmengine", **figures)
            except ConfigError as exc:
                counts[f"refused: {reason_of(str(exc))}"] += 1
                recipes[recipe] = f"refused: {reason_of(str(exc))}"
                continue
            recipes[recipe] = "written, same values"
            text = python_config(config)
            written_path = tmp_path / "written.py"
            written_path.write_text(text)
            found = differences(original, optiplug.build(written_path, Net(), **figures), tolerance=tolerance)
        if found:
            wrong.append(f"{path.relative_to(tree)}: {found}")
            recipes[recipe] = "differs"
            continue
        counts["written, same values"] += 1
        total = int(original.clock.total_steps or 0)
        if text in seen or not mmengine_runs_it(config) or not 0 < total <= MAX_REFERENCE_ITERATIONS:
            continue
        seen.add(text)
        written = read_by_mmengine(written_path)
        try:
            quiet_mmengine_trace(written, "lr")
        except ValueError as exc:  # written as the original: MMEngine refuses both
            counts[f"MMEngine itself refuses it at {L} iterations an epoch: {str(exc)[:60]}"] += 1
            continue
        for option in ("lr", "momentum" if "momentum" in config["optim_wrapper"]["optimizer"] else "betas"):
            if option == "betas" and "betas" not in config["optim_wrapper"]["optimizer"]:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours, _ = optiplug_trace(str(path), Net(), option, total, **figures)
            assert_same(quiet_mmengine_trace(written, option), ours, rel=tolerance)
        counts["run by MMEngine, same values"] += 1
    print(f"\n{tree}:")
    for reason, count in counts.most_common():
        print(f"  {count:5d}  {reason}")
    assert counts["written, same values"] > 0
    assert not wrong, "\n".join(wrong)
