"""Keys MMCV 1.x reads without complaint but never uses: a warning with a did-you-mean, not a refusal.

MMCV refuses an unknown argument of a hook or an optimizer (a ``TypeError``), and so
does optiplug. Other keys it never looks at: a misspelt top-level key (``lr_confg``: the
run then has no lr schedule), a ``paramwise_cfg`` key ``DefaultOptimizerConstructor``
does not read (``_delete`` for ``_delete_``), a ``custom_keys`` entry other than
``lr_mult`` / ``decay_mult`` (``wd_mult``). Those are warnings here, since the result
equals MMCV's; and so is what optiplug cannot do that a config asks of MMCV's registry
(``custom_imports``) or of hooks that change the lr outside ``lr_config``.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from typing import Any

from optiplug.plugin import OptiplugWarning, did_you_mean

READ_KEYS = (
    "optimizer",
    "optimizer_config",
    "lr_config",
    "momentum_config",
    "runner",
    "total_epochs",
    "total_iters",
    "fp16",
    "custom_hooks",
    "custom_imports",
)
"""The top-level keys this dialect reads."""
OTHER_MMCV_KEYS = frozenset(
    {
        "log_config",
        "checkpoint_config",
        "evaluation",
        "workflow",
        "dist_params",
        "log_level",
        "load_from",
        "resume_from",
        "model",
        "data",
        "auto_scale_lr",
        "opencv_num_threads",
        "mp_start_method",
        "persistent_workers",
        "cudnn_benchmark",
        "work_dir",
        "gpu_ids",
        "find_unused_parameters",
    }
)
"""Top-level keys of OpenMMLab configs that are read elsewhere (not typos of a read key)."""
DELETE_HINT = " (did you mean '_delete_'? MMCV merged this dict with its base's, and so does optiplug)"
CUSTOM_KEY_OPTIONS = ("lr_mult", "decay_mult")
LR_HOOKS = {
    "SimSiamHook": "sets the lr of the param groups marked fix_lr to its lr",
    "YOLOXLrUpdaterHook": "is MMDetection's YOLOX lr policy",
    "StepFixCosineAnnealingLrUpdaterHook": "is an lr policy (lr_config=dict(policy='StepFixCosineAnnealing'))",
}
"""Hooks known to change the lr from custom_hooks, and what they do."""


def warn(message: str) -> None:
    """An OptiplugWarning pointing at the caller of build()."""
    warnings.warn(message, OptiplugWarning, stacklevel=4)


def warn_top_level(config: Mapping[str, Any]) -> None:
    """A warning for each top-level key that looks like a misspelt key this dialect reads."""
    for key in config:
        if not isinstance(key, str) or key in READ_KEYS or key in OTHER_MMCV_KEYS:
            continue
        close = difflib.get_close_matches(key, READ_KEYS, n=1, cutoff=0.85)
        if close:
            warn(f"{key}: MMCV reads no such key, so it is ignored (did you mean {close[0]!r}?)")


def warn_custom_imports(value: Any) -> None:
    """``custom_imports``: optiplug never imports what a config names."""
    if not value:
        return
    imports = value.get("imports") if isinstance(value, Mapping) else value
    warn(
        f"custom_imports: optiplug does not import the modules a config names ({imports!r}); import them "
        "before build(), or run optiplug --import MODULE, so that what they register is known"
    )


def warn_custom_hooks(value: Any) -> None:
    """``custom_hooks`` that change the lr outside ``lr_config``: optiplug does not run them."""
    if not isinstance(value, list | tuple):
        return
    for index, hook in enumerate(value):
        kind = hook.get("type") if isinstance(hook, Mapping) else None
        if isinstance(kind, str) and (kind in LR_HOOKS or kind.endswith(("LrUpdaterHook", "MomentumUpdaterHook"))):
            what = LR_HOOKS.get(kind, "changes the lr or the momentum")
            warn(
                f"custom_hooks[{index}]: {kind} {what}; optiplug does not run custom hooks, so the values follow "
                "lr_config and momentum_config alone"
            )


def known_paramwise_cfg(value: Mapping[str, Any], known: tuple[str, ...], path: str) -> dict[str, Any]:
    """``paramwise_cfg`` without the keys MMCV's constructor never reads (each one warned about)."""
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if key not in known:
            hint = DELETE_HINT if key == "_delete" else did_you_mean(str(key), known)
            warn(f"{path}.{key}: MMCV's constructor does not read this key, so it is ignored{hint}")
        elif key == "custom_keys" and isinstance(item, Mapping):
            kept[key] = {
                name: _known_custom_key(options, f"{path}.custom_keys.{name}") for name, options in item.items()
            }
        else:
            kept[key] = item
    return kept


def _known_custom_key(options: Any, path: str) -> Any:
    if not isinstance(options, Mapping):
        return options
    for key in options:
        if key not in CUSTOM_KEY_OPTIONS:
            decay = str(key).startswith(("wd", "weight_decay"))
            hint = " (did you mean 'decay_mult'?)" if decay else did_you_mean(str(key), CUSTOM_KEY_OPTIONS)
            warn(f"{path}.{key}: MMCV reads only lr_mult and decay_mult here, so it is ignored{hint}")
    return {k: v for k, v in options.items() if k in CUSTOM_KEY_OPTIONS}
