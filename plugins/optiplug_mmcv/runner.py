"""The run's length from an MMCV config: ``runner=dict(...)``, ``total_epochs`` / ``total_iters``, or build().

``EpochBasedRunner`` (the default) counts ``max_epochs`` of ``steps_per_epoch``
iterations (given to ``build``); ``IterBasedRunner`` counts ``max_iters`` iterations and
has no epochs. Without ``runner``, ``total_epochs`` makes an EpochBasedRunner (MMDetection,
MMClassification, MMSelfSup's train APIs) and ``total_iters`` an IterBasedRunner
(MMSegmentation's ``train_segmentor``). What the runner's ``register_training_hooks``
does to the hook configs (``lr_config.setdefault('by_epoch', False)`` under an
IterBasedRunner) is :func:`hook_defaults`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import attrs

from optiplug.plugin import ConfigError, DialectContext, OptiplugWarning, did_you_mean
from optiplug_mmcv.whole_numbers import whole_number

EPOCH_BASED, ITER_BASED = "EpochBasedRunner", "IterBasedRunner"
RUNNER_KEYS = {EPOCH_BASED: "max_epochs", ITER_BASED: "max_iters"}


@attrs.frozen
class RunLength:
    """Which runner, and how long it runs (None: not said by the config nor by build())."""

    runner: str = EPOCH_BASED
    max_epochs: int | None = None
    max_iters: int | None = None

    @property
    def iter_based(self) -> bool:
        """Whether the run counts iterations only (no epochs)."""
        return self.runner == ITER_BASED


def read_run_length(config: Mapping[str, Any], context: DialectContext) -> RunLength:
    """The runner and its length; build()'s ``num_epochs`` overrides an EpochBasedRunner's ``max_epochs``."""
    run = _from_config(config)
    if run.iter_based and context.num_epochs is not None:
        raise ConfigError(
            f"the IterBasedRunner runs max_iters={run.max_iters} iterations; do not pass num_epochs to build()",
            "runner.max_iters",
        )
    if not run.iter_based and context.num_epochs is not None:
        return attrs.evolve(run, max_epochs=context.num_epochs)
    return run


def hook_defaults(value: Mapping[str, Any], key: str, run: RunLength) -> dict[str, Any]:
    """``value`` as the runner registers it: IterBasedRunner sets ``lr_config.setdefault('by_epoch', False)``.

    ``momentum_config`` keeps its hook's own default (True for most policies) there, as in
    MMCV 1.x's ``IterBasedRunner.register_training_hooks``.
    """
    hook = dict(value)
    if run.iter_based and key == "lr_config":
        hook.setdefault("by_epoch", False)
    return hook


def _from_config(config: Mapping[str, Any]) -> RunLength:
    total_epochs = config.get("total_epochs")
    if total_epochs is not None:
        total_epochs = whole_number(total_epochs, "total_epochs")
    total_iters = config.get("total_iters")
    if total_iters is not None:
        total_iters = whole_number(total_iters, "total_iters")
    runner = config.get("runner")
    if runner is None:
        return _without_runner(total_epochs, total_iters)
    if total_iters is not None:
        _ignored_total_iters(runner, total_iters)
    if not isinstance(runner, Mapping):
        raise ConfigError(f"expected dict(type='EpochBasedRunner', max_epochs=...), got {runner!r}", "runner")
    kind = runner.get("type", EPOCH_BASED)
    if not isinstance(kind, str) or kind not in RUNNER_KEYS:
        raise ConfigError(
            f"unknown runner {kind!r}{did_you_mean(str(kind), RUNNER_KEYS)}; known: {', '.join(RUNNER_KEYS)}",
            "runner.type",
        )
    length_key = RUNNER_KEYS[kind]
    for key in runner:
        if key not in ("type", length_key):
            raise ConfigError(f"{kind} takes {length_key}, not {key!r}", f"runner.{key}")
    if length_key not in runner:
        raise ConfigError(f"{kind} needs {length_key}", "runner")
    length = whole_number(runner[length_key], f"runner.{length_key}")
    if kind == ITER_BASED:
        if total_epochs is not None:
            raise ConfigError("total_epochs contradicts the IterBasedRunner; remove it", "total_epochs")
        return RunLength(ITER_BASED, None, length)
    if total_epochs is not None and total_epochs != length:
        raise ConfigError(
            f"total_epochs={total_epochs} contradicts runner.max_epochs={length} (MMCV asserts they match)",
            "total_epochs",
        )
    return RunLength(EPOCH_BASED, length)


def _without_runner(total_epochs: int | None, total_iters: int | None) -> RunLength:
    if total_epochs is not None and total_iters is not None:
        raise ConfigError(
            "give total_epochs (an EpochBasedRunner: MMDetection, MMClassification, MMSelfSup) or total_iters "
            "(an IterBasedRunner: MMSegmentation), not both; or say runner=dict(type=..., ...)",
            "total_iters",
        )
    if total_iters is not None:
        return RunLength(ITER_BASED, None, total_iters)
    return RunLength(EPOCH_BASED, total_epochs)


def _ignored_total_iters(runner: Any, total_iters: int) -> None:
    max_iters = runner.get("max_iters") if isinstance(runner, Mapping) else None
    if max_iters != total_iters:
        warnings.warn(
            f"total_iters={total_iters} is ignored: the runner is given (MMSegmentation reads total_iters only "
            "without runner)",
            OptiplugWarning,
            stacklevel=2,
        )
