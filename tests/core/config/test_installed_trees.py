"""Every config of an installed OpenMMLab package's tree, read as its users have it (slow; skipped without one).

The packages ship their configs under ``<package>/.mim/configs``. They are found with
``importlib.util.find_spec`` (which imports nothing) or in the folders named by
``OPTIPLUG_OPENMMLAB_CONFIGS`` (``os.pathsep``-separated, e.g. unpacked wheels from
``pip download --no-deps mmselfsup==0.11.0``). ``bench/bench_pyconfig_share.py`` prints
the same figures for wheels, per refusal reason.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from optiplug import ConfigError
from optiplug.recipe.pyfile import load_pyfile
from optiplug.recipe.pyvalues import Unknown

PACKAGES = ("mmselfsup", "mmcls", "mmdet", "mmseg", "mmpretrain")
READ_KEYS = (
    "optimizer",
    "optimizer_config",
    "lr_config",
    "momentum_config",
    "runner",
    "optim_wrapper",
    "param_scheduler",
)


def trees() -> list[Path]:
    found = [Path(p) for p in os.environ.get("OPTIPLUG_OPENMMLAB_CONFIGS", "").split(os.pathsep) if p]
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin:
            configs = Path(spec.origin).parent / ".mim" / "configs"
            if configs.is_dir():
                found.append(configs)
    return found


def holds_unknown(value: object) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(holds_unknown(v) for v in dict.values(value))
    if isinstance(value, list | tuple):
        return any(holds_unknown(v) for v in value)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("tree", trees() or [None], ids=lambda t: t.parent.parent.name if t else "none")
def test_every_config_of_the_tree_is_read_with_its_optimization_keys_known(tree):
    if tree is None:
        pytest.skip("no OpenMMLab package with .mim/configs installed, and OPTIPLUG_OPENMMLAB_CONFIGS unset")
    refused: list[str] = []
    unknown: list[str] = []
    files = sorted(p for p in tree.rglob("*.py") if p.name != "__init__.py")
    for path in files:
        try:
            data = load_pyfile(path)
        except ConfigError as exc:
            if "config file not found" not in str(exc):  # a base the package does not ship: MMCV fails too
                refused.append(f"{path}: {exc}")
            continue
        unknown += [f"{path}: {key}" for key in READ_KEYS if key in data and holds_unknown(dict.__getitem__(data, key))]
    assert files
    assert refused == []
    assert unknown == []
