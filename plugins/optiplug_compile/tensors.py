"""The optimizer's options as 0-dim tensors, and the kernel torch requires for them.

Which ``torch.optim`` optimizer takes which option as a tensor is read from torch's
source (torch 2.13): every one of them takes a tensor ``lr``; ``Adam`` and ``AdamW``
take tensor ``betas`` (both or neither). A tensor lr needs a kernel that does not turn it
into a Python number: ``capturable=True`` (foreach, on the devices torch captures: CUDA,
XPU, HPU), a fused kernel the config chose itself, or the per-tensor loop
(``foreach=False``) on the CPU, where capturable kernels refuse to run eagerly. The
fused CPU kernels optiplug picks by default are not traced by ``torch.compile`` (the step
would stay eager), so they give way to the loop, which torch.compile does trace.

Any other optimizer, or one inside a wrapper (LARC, ZeRO), is refused: optiplug cannot
tell whether its step reads a tensor option without turning it back into a number.
"""

from __future__ import annotations

import inspect
from typing import Any

import attrs
import torch
from torch.optim import Optimizer

from optiplug.plugin import ConfigError, help_field

PATH = "run.compile"

TENSOR_OPTIONS: dict[type[Optimizer], tuple[str, ...]] = {
    torch.optim.SGD: ("lr",),
    torch.optim.Adam: ("lr", "betas"),
    torch.optim.AdamW: ("lr", "betas"),
    torch.optim.Adagrad: ("lr",),
    torch.optim.Adamax: ("lr",),
    torch.optim.NAdam: ("lr",),
    torch.optim.RAdam: ("lr",),
    torch.optim.RMSprop: ("lr",),
    torch.optim.Rprop: ("lr",),
    torch.optim.ASGD: ("lr",),
    torch.optim.Adadelta: ("lr",),
}
"""The options each ``torch.optim`` optimizer takes as a 0-dim tensor (torch 2.13's signatures and steps)."""

CAPTURABLE_DEVICES = frozenset({"cuda", "xpu", "hpu"})


BETAS_NAMES = frozenset({"beta1", "momentum", "betas"})
"""The names a schedule of ``betas[0]`` goes by (schedules.beta1, MMCV's momentum of Adam)."""


@attrs.frozen
class CompileConfig:
    """``{name: compile}``: which options become tensors (``run.compile`` passes the scheduled ones)."""

    options: list[str] | None = help_field(
        "The options to hold as 0-dim tensors, by the names schedules use (lr, beta1, ...); "
        "null: every option the optimizer takes as a tensor.",
        default=None,
    )


def wrap_compile(optimizer: Optimizer, config: CompileConfig | None = None) -> Optimizer:
    """The ``WrapperSpec.wrap`` of ``compile``: ``optimizer`` with tensor options and a kernel that takes them.

    The optimizer is changed in place (its hooks and state stay) and returned. Options
    left as Python numbers never change, so they cost no recompile; and only a tensor
    ``betas`` changes torch's arithmetic (by an ulp): a tensor lr gives the float's bits.
    """
    options = selected(tensor_options(optimizer), (config or CompileConfig()).options)
    if not options:
        return optimizer
    flags = kernel_flags(optimizer)
    for group in optimizer.param_groups:
        group.update(flags)
        device = _device_of(group)
        for option in options:
            if option in group:
                group[option] = as_tensor(group[option], device)
    optimizer.defaults.update(flags)
    if flags.get("fused") is False:
        # torch lets GradScaler hand its scale to fused kernels only
        optimizer._step_supports_amp_scaling = False  # type: ignore[attr-defined]
    optimizer.register_load_state_dict_post_hook(Retensor(options, flags))
    return optimizer


@attrs.frozen
class Retensor:
    """A ``load_state_dict`` post-hook: loaded groups get tensor options and the kernel flags back.

    A state saved by an eager run holds Python numbers and its own kernel (fused, foreach):
    loaded as is, the scheduler would write floats again and the compiled step recompile
    at each update. A state saved by a compiled run on another device gets its tensors
    moved to the parameters' device.
    """

    options: tuple[str, ...]
    flags: dict[str, bool]

    def __call__(self, optimizer: Optimizer) -> None:
        """Convert every loaded group, as the build converted them."""
        for group in optimizer.param_groups:
            group.update(self.flags)
            device = _device_of(group)
            for option in self.options:
                if option in group:
                    group[option] = as_tensor(group[option], device)
            if self.flags.get("capturable"):
                # torch kept the step counts of a non-capturable state on the CPU; capturable kernels want them here
                for p in group["params"]:
                    step = optimizer.state.get(p, {}).get("step")
                    if isinstance(step, torch.Tensor) and step.device != p.device:
                        optimizer.state[p]["step"] = step.to(device=p.device, dtype=torch.float32)


def tensor_options(optimizer: Optimizer) -> tuple[str, ...]:
    """The options ``optimizer`` takes as tensors; a ConfigError at ``run.compile`` for an unknown one."""
    options = TENSOR_OPTIONS.get(type(optimizer))
    if options is None:
        name = type(optimizer).__name__
        known = ", ".join(sorted(cls.__name__ for cls in TENSOR_OPTIONS))
        inner = getattr(optimizer, "optim", None) or getattr(optimizer, "optimizer", None)
        wrapped = f" (a wrapper around {type(inner).__name__})" if isinstance(inner, Optimizer) else ""
        raise ConfigError(
            f"{name}{wrapped} cannot take its options as tensors: its scheduled values would be Python numbers, "
            f"and a compiled step would recompile at every update; run.compile works with {known}, unwrapped",
            PATH,
        )
    return options


def selected(options: tuple[str, ...], names: list[str] | None) -> tuple[str, ...]:
    """Of ``options``, those ``names`` asks for (``beta1`` or ``momentum`` asks for ``betas``); all for None."""
    if names is None:
        return options
    wanted = set(names) | ({"betas"} if BETAS_NAMES & set(names) else set())
    return tuple(option for option in options if option in wanted)


def kernel_flags(optimizer: Optimizer) -> dict[str, bool]:
    """The kernel options that make ``optimizer`` take tensor options (see the module docstring)."""
    parameters = inspect.signature(type(optimizer)).parameters
    defaults = optimizer.defaults
    if defaults.get("fused") and getattr(optimizer, "_step_supports_amp_scaling", False):
        return {}  # fused chosen by the config: torch's fused kernels take tensor options
    devices = {p.device.type for group in optimizer.param_groups for p in group["params"]}
    flags: dict[str, bool] = {}
    if "fused" in parameters:
        flags["fused"] = False
    if "capturable" in parameters:
        if devices and devices <= CAPTURABLE_DEVICES:
            flags["capturable"] = True
        else:
            flags["foreach"] = False
    return flags


def as_tensor(value: Any, device: torch.device) -> Any:
    """``value`` (a number, or a pair of numbers: betas) as 0-dim tensors on ``device``.

    float64 on the CPU (every float exactly), float32 elsewhere (what torch's kernels compute in).
    """
    if isinstance(value, tuple | list):
        return tuple(as_tensor(v, device) for v in value)
    if isinstance(value, torch.Tensor):
        return value if value.device == device else value.to(device)
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    return torch.tensor(float(value), dtype=dtype, device=device)


def _device_of(group: dict[str, Any]) -> torch.device:
    params = group["params"]
    return params[0].device if params else torch.device("cpu")
