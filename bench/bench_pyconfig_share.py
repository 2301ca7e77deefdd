"""The share of a real OpenMMLab config tree that optiplug's .py reader loads, and of the keys it reads.

Run: ``python bench/bench_pyconfig_share.py WHEEL_OR_DIR [...] [--old OLD_PYFILE.py] [--mmengine]``.
Each argument is a wheel (``pip download --no-deps mmselfsup==0.11.0 -d cache``: a zip
holding ``.mim/configs``) or a folder of configs. For every config file it prints, per tree:

* **loaded**: files read without error (a file with a statement not evaluated loads; its
  names are then unknown);
* **keys known**: files in which every key a dialect reads (optimizer, optimizer_config,
  lr_config, momentum_config, runner, total_epochs, total_iters, data.samples_per_gpu,
  custom_hooks, optim_wrapper, param_scheduler, train_cfg, auto_scale_lr,
  train_dataloader.batch_size) that is present holds no unknown value;
* with ``--old FILE``: the same for an older reader (a copy of an earlier
  ``optiplug/recipe/pyfile.py``, e.g. ``git show REV:core/optiplug/recipe/pyfile.py``);
* with ``--mmengine``: the files MMEngine's ``Config.fromfile`` loads (it *executes* them)
  and, of those, the files where every read key optiplug gives equals MMEngine's.

Refusals and unknown keys are counted by their reason's construct. Nothing here is a
timing: the figures are counts.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from optiplug.errors import ConfigError
from optiplug.recipe.pyfile import load_pyfile
from optiplug.recipe.pyvalues import Unknown

READ_KEYS = (
    "optimizer",
    "optimizer_config",
    "lr_config",
    "momentum_config",
    "runner",
    "total_epochs",
    "total_iters",
    "data.samples_per_gpu",
    "custom_hooks",
    "optim_wrapper",
    "param_scheduler",
    "train_cfg",
    "auto_scale_lr",
    "train_dataloader.batch_size",
)


def config_files(source: Path, scratch: Path) -> Iterator[Path]:
    """The config .py files of a wheel (unpacked under ``scratch``) or a folder."""
    if source.is_dir():
        root = source
    else:
        root = scratch / source.stem
        with zipfile.ZipFile(source) as wheel:
            members = [m for m in wheel.namelist() if re.search(r"(^|/)configs/.*\.py$", m)]
            for member in members:
                wheel.extract(member, root)
    yield from sorted(p for p in root.rglob("*.py") if "configs" in p.parts and p.name != "__init__.py")


def read_key(data: Any, dotted: str) -> Any:
    """The value at ``dotted`` without raising for unknowns (None when absent)."""
    value = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = dict.__getitem__(value, part)
    return value


def first_unknown(value: Any) -> Unknown | None:
    if isinstance(value, Unknown):
        return value
    if isinstance(value, dict):
        items: Any = dict.values(value)
    elif isinstance(value, list | tuple):
        items = value
    else:
        return None
    for item in items:
        found = first_unknown(item)
        if found is not None:
            return found
    return None


def reason(text: str) -> str:
    """A refusal's or unknown's construct with the names taken out, to count by kind."""
    text = re.sub(r"^.*?line [\d?]+: ", "", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    return re.sub(r"\b(a call to|the name|the attribute) \S+", r"\1 …", text)[:80]


def measure(files: list[Path], loader: Callable[[Path], Any], label: str) -> dict[Path, Any]:
    loaded: dict[Path, Any] = {}
    refusals: collections.Counter[str] = collections.Counter()
    unknowns: collections.Counter[str] = collections.Counter()
    known = 0
    for path in files:
        try:
            data = loader(path)
        except ConfigError as exc:
            refusals[reason(str(exc))] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - an older reader's crash is a figure too
            refusals[f"crash: {type(exc).__name__}"] += 1
            continue
        loaded[path] = data
        unknown = next((u for k in READ_KEYS if (u := first_unknown(read_key(data, k))) is not None), None)
        if unknown is None:
            known += 1
        else:
            unknowns[f"{reason(unknown.construct)}"] += 1
    total = len(files)
    print(
        f"  {label}: loaded {len(loaded)}/{total} ({100 * len(loaded) / max(total, 1):.1f}%), "
        f"read keys all known {known}/{total} ({100 * known / max(total, 1):.1f}%)"
    )
    for text, count in refusals.most_common(8):
        print(f"      refused {count:4d}  {text}")
    for text, count in unknowns.most_common(8):
        print(f"      unknown {count:4d}  {text}")
    return loaded


def load_old(old: Path) -> Callable[[Path], Any]:
    spec = importlib.util.spec_from_file_location("old_pyfile", old)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_pyfile  # type: ignore[no-any-return]


def normalized(value: Any) -> Any:
    """MMEngine's values as optiplug writes them: tuples as lists, ``torch.optim.SGD`` as ``SGD``."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalized(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"(mmengine|torch|mmcv|mmdet|mmseg|mmcls|mmpretrain)(\.\w+)+", value):
        return value.rsplit(".", 1)[1]
    return value


def compare_mmengine(files: list[Path], loaded: dict[Path, Any]) -> None:
    from mmengine.config import Config

    executed = equal = 0
    differences: collections.Counter[str] = collections.Counter()
    for path in files:
        lazy = "read_base" in path.read_text(encoding="utf-8", errors="replace")
        try:
            reference = Config.fromfile(str(path), lazy_import=None if lazy else False).to_dict()
        except Exception:  # noqa: BLE001 - files MMEngine cannot load (imports of uninstalled packages) are left out
            continue
        executed += 1
        data = loaded.get(path)
        if data is None:
            differences["refused by optiplug"] += 1
            continue
        same = True
        for key in READ_KEYS:
            ours = read_key(data, key)
            if first_unknown(ours) is not None:
                differences[f"{key} unknown"] += 1
                same = False
                break
            if normalized(ours) != normalized(read_key(reference, key)):
                differences[f"{key} differs"] += 1
                same = False
                break
        equal += same
    print(
        f"  MMEngine executes {executed}/{len(files)}; of those, every read key equal in {equal}/{executed} "
        f"({100 * equal / max(executed, 1):.1f}%)"
    )
    for text, count in differences.most_common(8):
        print(f"      {count:4d}  {text}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--old", type=Path, help="an older pyfile.py to compare with")
    parser.add_argument("--mmengine", action="store_true", help="compare with MMEngine's Config (executes the files)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        for source in args.sources:
            files = list(config_files(source, Path(scratch)))
            print(f"{source.name}: {len(files)} config files")
            loaded = measure(files, load_pyfile, "optiplug now")
            if args.old:
                measure(files, load_old(args.old), "older reader")
            if args.mmengine:
                compare_mmengine(files, loaded)


if __name__ == "__main__":
    main(sys.argv[1:])
