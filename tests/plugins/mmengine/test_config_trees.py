"""The real config trees of the MMEngine generation, read as they are and checked against MMEngine.

Every config of an installed OpenMMLab package's ``.mim/configs`` of the MMEngine generation
(mmpretrain, mmdet 3.x, ...), or of the folders in ``OPTIPLUG_OPENMMLAB_CONFIGS`` (e.g.
unpacked wheels of ``pip download --no-deps mmpretrain==1.2.0 mmdet==3.3.0``: the package
folder or its ``.mim/configs``), that has an ``optim_wrapper`` is built by optiplug from its
file. Each built config is then run by MMEngine itself: ``Config.fromfile`` merges the file,
``build_optim_wrapper`` and the param schedulers step a real optimizer (reference.py), and
every parameter's lr, momentum (beta1), betas and weight decay are compared with optiplug's
at every iteration of the run. Configs whose merged optimizer, schedulers, loop and
``auto_scale_lr`` equal an earlier one's are compared once.

What the framework registers itself (mmdet's QuadraticWarmup schedulers and layer-decay
constructor, mmpretrain's CosineAnnealingWeightDecay, layer-decay constructor and Lamb) is
loaded for the reference from the package's own source files beside the tree (those files
import only mmengine and torch). AmpOptimWrapper is run as an OptimWrapper (MMEngine's needs
a GPU; the values are the same).

Refusals are grouped by reason and printed with their counts (``pytest -s``); refusals by
the .py reader are counted apart, and every refusal by the dialect must be one DEFENDED names.
"""

from __future__ import annotations

import collections
import copy
import importlib.util
import itertools
import logging
import math
import os
import re
import sys
import time
import types
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from reference import iterate_mmengine
from torch import nn

import optiplug
from optiplug import ConfigError
from optiplug.plugin import load_config

PACKAGES = ("mmpretrain", "mmdet", "mmseg", "mmselfsup", "mmpose", "mmocr", "mmaction", "mmrotate", "mmyolo")
L = 10
"""The iterations of one epoch (MMEngine's len(train_dataloader))."""
L_REAL = 1000
"""The epoch length a config is retried with when, at L, a scheduler begins after the run's end (MMEngine refuses)."""
DEFENDED = {
    "DeepSpeedOptimWrapper": "DeepSpeed builds its optimizer inside its engine (strategy=DeepSpeedStrategy)",
}
REFERENCE_SOURCES = ("engine/optimizers", "engine/schedulers")
"""Where a package's own optimizers, constructors and schedulers are (mmdet, mmpretrain: they import mmengine only)."""
LONG = 20_000
"""Runs longer than this many iterations are compared on TinyModel, at most LONG iterations spread over the run."""
OPTIONS = ("lr", "momentum", "betas", "weight_decay")


def _tree_of(path: Path) -> Path:
    return path / ".mim" / "configs" if (path / ".mim" / "configs").is_dir() else path


def is_mmengine_tree(tree: Path) -> bool:
    """A tree of the MMEngine generation: its _base_ schedules write ``optim_wrapper``."""
    return any("optim_wrapper" in p.read_text(errors="replace") for p in tree.glob("_base_/**/*.py"))


def trees() -> list[Path]:
    found = [_tree_of(Path(p)) for p in os.environ.get("OPTIPLUG_OPENMMLAB_CONFIGS", "").split(os.pathsep) if p]
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin:
            found.append(_tree_of(Path(spec.origin).parent))
    return [p for p in dict.fromkeys(found) if p.is_dir() and is_mmengine_tree(p)]


# --- the model: the names the trees' rules read ----------------------------------------------------


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(2, 2, 3, groups=2)
        self.norm = nn.LayerNorm(2)
        self.pwconv1 = nn.Linear(2, 2)
        self.gamma = nn.Parameter(torch.ones(2))
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(2, 6, bias=False)
        self.attn.q_bias = nn.Parameter(torch.zeros(2))
        self.attn.v_bias = nn.Parameter(torch.zeros(2))
        self.attn.relative_position_bias_table = nn.Parameter(torch.zeros(3, 1))
        self.attn.rel_pos_h = nn.Parameter(torch.zeros(3, 2))
        self.ln = nn.LayerNorm(2)


class ConvNeXtViTBackbone(nn.Module):
    """ConvNeXt's names (mmdet's layer decay) with ViT's and Swin's embeddings and, in stage 0, their blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 2))
        self.pos_embed = nn.Parameter(torch.zeros(1, 2, 2))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 2))
        self.absolute_pos_embed = nn.Parameter(torch.zeros(1, 2, 2))
        self.patch_embed = nn.Conv2d(3, 2, 2)
        self.downsample_layers = nn.ModuleList(nn.LayerNorm(2) for _ in range(4))
        light = [nn.Sequential(*(nn.Linear(2, 2) for _ in range(d))) for d in (1, 4, 1)]
        self.stages = nn.ModuleList([nn.Sequential(Block()), *light])
        self.bn = nn.BatchNorm2d(2)


class Model(nn.Module):
    """A detector / classifier with mmpretrain's ``get_layer_depth``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = ConvNeXtViTBackbone()
        self.neck = nn.Sequential(nn.Conv2d(2, 2, 1), nn.GroupNorm(1, 2))
        self.head = nn.Module()
        self.head.fc_cls = nn.Linear(2, 3)
        self.head.query_embed = nn.Embedding(2, 2)
        self.head.sampling_offsets = nn.Linear(2, 2)
        self.head.reference_points = nn.Linear(2, 2)

    @staticmethod
    def get_layer_depth(name: str) -> tuple[int, int]:
        """Embeddings 0, stage k k + 1, the rest of the backbone and everything else 5, of 6."""
        match = re.match(r"backbone\.(stages|downsample_layers)\.(\d+)", name)
        if match:
            return int(match.group(2)) + 1, 6
        if name.startswith("backbone.") and name.split(".")[1] in ("cls_token", "pos_embed", "patch_embed"):
            return 0, 6
        return 5, 6


class TinyModel(nn.Module):
    """Four parameters (backbone, norm and head weights, a head bias): MMEngine steps one group per parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ConvNeXtViTBackbone.__new__(ConvNeXtViTBackbone)
        nn.Module.__init__(self.backbone)
        self.backbone.stages = nn.ModuleList([nn.Linear(2, 2, bias=False)])
        self.backbone.bn = nn.BatchNorm2d(2, affine=False)
        self.backbone.norm = nn.LayerNorm(2, bias=False)
        self.head = nn.Module()
        self.head.fc_cls = nn.Linear(2, 2)

    get_layer_depth = Model.get_layer_depth


def iterations_of(reference: Mapping[str, Any], epoch_length: int) -> int:
    """The run's iterations, as reference.iterate_mmengine counts them."""
    train = reference["train_cfg"]
    by_epoch = train["type"] != "IterBasedTrainLoop" if "type" in train else train.get("by_epoch", True)
    return int(train["max_epochs"]) * epoch_length if by_epoch else int(train["max_iters"])


# --- MMEngine as the reference ----------------------------------------------------------------------


class _Forced:
    """A registry whose register_module replaces a class registered before (a tree run twice)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def register_module(self, *args: Any, **kwargs: Any) -> Any:
        return self.registry.register_module(*args, **{**kwargs, "force": True})


def register_framework_classes(tree: Path) -> list[str]:
    """The package's own schedulers, constructors and optimizers, from its source beside the tree."""
    from mmengine import registry

    package = tree.parent.parent
    sources = sorted(p for folder in REFERENCE_SOURCES for p in (package / folder).glob("*.py") if p.stem != "__init__")
    loaded: list[str] = []
    if not sources or importlib.util.find_spec(package.name) is not None:
        return loaded
    stub_names = [package.name, f"{package.name}.registry"]
    sys.modules[package.name] = types.ModuleType(package.name)
    stub = types.ModuleType(f"{package.name}.registry")
    for name in ("OPTIM_WRAPPER_CONSTRUCTORS", "PARAM_SCHEDULERS", "OPTIMIZERS"):
        setattr(stub, name, _Forced(getattr(registry, name)))
    sys.modules[stub.__name__] = stub
    try:
        for path in sources:
            spec = importlib.util.spec_from_file_location(f"_reference_{package.name}_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            try:
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            except ImportError:  # it needs more of the package (or mmcv's ops) than its registry
                continue
            loaded.append(str(path.relative_to(package)))
    finally:
        for name in stub_names:
            sys.modules.pop(name, None)
    return loaded


def unscoped_types(value: Any) -> Any:
    """``type='mmdet.QuadraticWarmupLR'`` as the runner's default scope finds it; AmpOptimWrapper as OptimWrapper."""
    if isinstance(value, Mapping):
        out = {k: unscoped_types(v) for k, v in value.items()}
        if isinstance(out.get("type"), str):
            out["type"] = out["type"].rsplit(".", 1)[-1]
        return out
    if isinstance(value, list | tuple):
        return type(value)(unscoped_types(v) for v in value)
    return value


def mmengine_config(path: Path) -> dict[str, Any]:
    """The parts of MMEngine's merged config (Config.fromfile) that give the values."""
    from mmengine.config import Config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        merged = Config.fromfile(str(path), import_custom_modules=False).to_dict()
    keys = ("optim_wrapper", "param_scheduler", "train_cfg", "auto_scale_lr")
    config = {k: unscoped_types(copy.deepcopy(merged[k])) for k in keys if k in merged}
    wrapper = config["optim_wrapper"]
    if wrapper.get("type") == "AmpOptimWrapper":
        wrapper["type"] = "OptimWrapper"
        for key in ("loss_scale", "dtype", "use_fsdp"):
            wrapper.pop(key, None)
    loader = merged.get("train_dataloader")
    config["batch_size"] = loader.get("batch_size") if isinstance(loader, Mapping) else None
    return config


def _value(group: Mapping[str, Any], option: str) -> Any:
    value = group.get(option)
    return tuple(value) if isinstance(value, list | tuple) else value


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        return not (
            isinstance(a, tuple)
            and isinstance(b, tuple)
            and len(a) == len(b)
            and not any(_differs(x, y) for x, y in zip(a, b, strict=True))
        )
    if a is None or b is None:
        return a is not b
    return not math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)


def first_difference(path: Path, reference: dict[str, Any], epoch_length: int = L) -> str | None:
    """None when every parameter has MMEngine's values at every iteration, else the first that differs."""
    total = iterations_of(reference, epoch_length)
    model = Model() if total <= LONG else TinyModel()
    stride = max(1, total // LONG)
    names = {id(p): n for n, p in model.named_parameters()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = optiplug.build(path, model, steps_per_epoch=epoch_length)
        ours = {id(p): i for i, g in enumerate(built.optimizer.param_groups) for p in g["params"]}
        iterations = iterate_mmengine(reference, model, epoch_length, batch_size=reference["batch_size"])
        pairs: list[tuple[int, int, str]] = []
        try:
            first = next(iterations)
        except Exception as exc:  # noqa: BLE001  (reported: optiplug built what MMEngine could not)
            return f"MMEngine fails to build it: {type(exc).__name__}: {exc}"
        for step, groups in enumerate(itertools.chain([first], iterations)):
            if step == 0:
                theirs = {id(p): i for i, g in enumerate(groups) for p in g["params"]}
                if set(theirs) != set(ours):
                    missing = sorted(names[k] for k in set(theirs) ^ set(ours))
                    return f"the parameters differ: {missing[:3]}"
                pairs = sorted({(theirs[k], ours[k], names[k]) for k in theirs})
                pairs = list({(a, b): (a, b, n) for a, b, n in pairs}.values())
                options = [o for o in OPTIONS if o in groups[0]]
            elif step % stride and step != total - 1:
                continue
            else:
                built.scheduler.set_step(step)
            for a, b, name in pairs:
                for option in options:
                    mine, theirs_value = _value(built.optimizer.param_groups[b], option), _value(groups[a], option)
                    if _differs(theirs_value, mine):
                        return f"iteration {step}, {name}, {option}: MMEngine {theirs_value!r}, optiplug {mine!r}"
    return None


# --- the sweep ---------------------------------------------------------------------------------------


def reason(message: str, tree: Path) -> str:
    """A refusal's class: its message without file names and numbers."""
    message = message.replace(str(tree), "<tree>")
    message = re.sub(r"/\S+\.py", "<file>", message)
    return re.sub(r"\d+(\.\d+)?(e-?\d+)?", "N", message)[:140]


def sweep(tree: Path) -> Iterator[tuple[str, str, Path, int]]:
    """(outcome, reason, path, epoch length) for every config outside _base_: read, refused by the reader or dialect."""
    for path in sorted(tree.rglob("*.py")):
        if "_base_" in path.parts or path.name == "__init__.py":
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = load_config(path).data
                has_wrapper = isinstance(data.get("optim_wrapper"), Mapping)
        except (ConfigError, ValueError) as exc:
            yield "not read by the .py reader", reason(str(exc), tree), path, L
            continue
        if not has_wrapper:
            yield "without optim_wrapper", "", path, L
            continue
        for epoch_length in (L, L_REAL):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    optiplug.build(path, Model(), steps_per_epoch=epoch_length)
            except ConfigError as exc:
                if epoch_length == L and "should be larger than begin" in str(exc):
                    continue  # at L iterations per epoch, MMEngine refuses it too
                yield "refused", reason(str(exc), tree), path, epoch_length
                break
            yield "built", "" if epoch_length == L else f"at steps_per_epoch={L_REAL}", path, epoch_length
            break


@pytest.mark.slow
@pytest.mark.parametrize("tree", trees() or [None], ids=lambda t: t.parent.parent.name if t else "none")
def test_every_config_builds_with_mmengines_values_or_is_refused_for_a_defended_reason(tree: Path | None) -> None:
    if tree is None:
        pytest.skip(
            "no MMEngine-generation OpenMMLab package with .mim/configs installed, and OPTIPLUG_OPENMMLAB_CONFIGS "
            "names none (e.g. unpacked wheels of pip download --no-deps mmpretrain==1.2.0 mmdet==3.3.0)"
        )
    from mmengine.logging import MMLogger

    MMLogger.get_current_instance().setLevel(logging.WARNING)  # the constructors log every parameter
    loaded = register_framework_classes(tree)
    counts: collections.Counter[str] = collections.Counter()
    refusals: collections.Counter[str] = collections.Counter()
    undefended: list[str] = []
    differences: list[str] = []
    compared: dict[str, str | None] = {}
    for outcome, why, path, epoch_length in sweep(tree):
        counts[outcome] += 1
        if why:
            refusals[f"{outcome}: {why}"] += 1
        if outcome == "refused" and not any(key in why for key in DEFENDED):
            undefended.append(f"{path.relative_to(tree)}: {why}")
        if outcome != "built":
            continue
        try:
            reference = mmengine_config(path)
        except Exception as exc:  # noqa: BLE001  (MMEngine's own reader fails: nothing to compare with)
            counts["not read by MMEngine's Config.fromfile"] += 1
            refusals[f"MMEngine's Config.fromfile: {type(exc).__name__}"] += 1
            continue
        key = repr((epoch_length, sorted(reference.items())))
        if key in compared:
            counts["compared (same as an earlier config)"] += 1
            continue
        started = time.perf_counter()
        compared[key] = difference = first_difference(path, reference, epoch_length)
        counts["compared with MMEngine"] += 1
        total = iterations_of(reference, epoch_length)
        how = f"{total} iterations" + (f", on TinyModel, 1 in {max(1, total // LONG)}" if total > LONG else "")
        print(f"compared {path.relative_to(tree)} ({how}) in {time.perf_counter() - started:.1f} s", flush=True)
        if difference is not None:
            differences.append(f"{path.relative_to(tree)}: {difference}")
    with_wrapper = counts["built"] + counts["refused"]
    print(f"\n{tree} (reference classes loaded from the package: {loaded})")
    print(f"built {counts['built']} of {with_wrapper} configs with an optim_wrapper; {dict(counts)}")
    for key, count in refusals.most_common():
        print(f"  {count:4d}  {key}")
    assert counts["built"] > 0
    assert not undefended, "\n".join(undefended)
    assert not differences, "\n".join(differences)
