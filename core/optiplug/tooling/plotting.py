"""Pictures of :class:`~optiplug.tooling.curves.Curves`: a PNG, SVG, PDF or JPEG (matplotlib, Agg) and a terminal chart.

One panel per option (lr, momentum or beta1, weight decay, then any other scheduled
option), one line per distinct curve, labelled with the groups that follow it and the
rules that made them; an option no schedule drives gets a short panel whose legend gives
its values. Epoch boundaries are dotted lines (every epoch, or every few on long runs)
and the top axis counts epochs. Optionally a loss panel (``optiplug run``). matplotlib is
imported only here, and only the object API is used (no pyplot state, no GUI backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from optiplug.engine.built_result import GroupSummary
from optiplug.errors import ConfigError
from optiplug.tooling.curves import Curves

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TITLES = {
    "lr": "learning rate",
    "momentum": "momentum",
    "beta1": "beta1 = betas[0]",
    "weight_decay": "weight decay",
}
MAX_POINTS = 6000  # per line; longer curves are drawn through their min/max envelope
MAX_EPOCH_LINES = 30
EPOCH_STRIDES = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)
PANEL_HEIGHT, CONSTANT_HEIGHT = 2.3, 1.2
LABEL_WIDTH = 70
BLOCKS = " ▁▂▃▄▅▆▇█"


def groups_label(indices: Sequence[int], groups: Sequence[GroupSummary]) -> str:
    """A legend entry: which groups share a curve and the rules behind them."""
    if len(indices) == len(groups):
        return "all groups"
    noun = "group" if len(indices) == 1 else "groups"
    rules = list(dict.fromkeys(rule for i in indices for rule in groups[i].rules))
    tensors = sum(groups[i].tensors for i in indices)
    size = f"{tensors} tensor" + ("s" if tensors != 1 else "")
    label = f"{noun} {', '.join(map(str, indices))} ({size}): {'; '.join(rules)}"
    return label if len(label) <= LABEL_WIDTH else label[: LABEL_WIDTH - 1] + "…"


def envelope(values: torch.Tensor, max_points: int = MAX_POINTS) -> torch.Tensor:
    """Indices to draw: all of them for short curves, else each bucket's min and max (in order)."""
    count = len(values)
    if count <= max_points:
        return torch.arange(count)
    buckets = max_points // 2
    size = -(-count // buckets)
    padded = torch.nn.functional.pad(values, (0, size * buckets - count), value=float(values[-1]))
    windows = padded.view(buckets, size)
    offsets = torch.arange(buckets) * size
    low = windows.argmin(dim=1) + offsets
    high = windows.argmax(dim=1) + offsets
    picked = torch.stack([torch.minimum(low, high), torch.maximum(low, high)], dim=1).flatten()
    return torch.unique_consecutive(picked.clamp(max=count - 1))


def curves_figure(
    curves: Curves,
    groups: Sequence[GroupSummary],
    *,
    title: str,
    log_lr: bool = False,
    losses: Sequence[float] | None = None,
    per_epoch: bool = False,
) -> Figure:
    """A figure with a panel per option (and the loss per update when ``losses`` is given).

    ``per_epoch``: the curves hold one value per epoch (the updates per epoch are not
    known), and the x axis counts epochs.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    options = curves.options
    heights = [PANEL_HEIGHT if option in curves.scheduled else CONSTANT_HEIGHT for option in options]
    heights += [PANEL_HEIGHT] if losses is not None else []
    figure = Figure(figsize=(10, 1.0 + sum(heights)), layout="constrained")
    axes = figure.subplots(len(heights), 1, sharex=True, squeeze=False, height_ratios=heights)[:, 0]
    figure.suptitle(title, fontsize=11)
    for ax, option in zip(axes, options, strict=False):
        if option in curves.scheduled:
            _draw_option(ax, curves, option, groups, log=log_lr and option == "lr")
        else:
            _draw_constant(ax, curves, option, groups)
    if losses is not None:
        _draw_losses(axes[-1], losses, curves.clock.steps_per_epoch)
    if per_epoch:
        axes[-1].set_xlabel("epoch (one value per epoch: give the updates per epoch for per-update curves)")
        return figure
    for ax in axes:
        _mark_epochs(ax, curves)
    _epoch_axis(axes[0], curves.clock.steps_per_epoch)
    axes[-1].set_xlabel("update (optimizer step)")
    axes[-1].xaxis.set_major_formatter(EngFormatter(sep=""))
    return figure


def _draw_option(ax: Axes, curves: Curves, option: str, groups: Sequence[GroupSummary], *, log: bool) -> None:
    x = curves.steps
    distinct = curves.distinct(option)
    style = "steps-post" if len(x) <= 2000 else "default"
    for i, (indices, curve) in enumerate(distinct):
        picked = envelope(curve)
        ax.plot(
            x[picked].numpy(),
            curve[picked].numpy(),
            drawstyle=style,
            linewidth=1.6,
            linestyle=("-", "--", "-.", ":")[i % 4],
            label=f"max {float(curve.max()):.3g}: {groups_label(indices, groups)}",
        )
    ax.set_title(f"{TITLES.get(option, option)} (scheduled)", fontsize=10, loc="left")
    _finish_panel(ax, option)
    if log:
        ax.set_yscale("log", nonpositive="mask")


def _draw_constant(ax: Axes, curves: Curves, option: str, groups: Sequence[GroupSummary]) -> None:
    """An option no schedule drives: one flat line per value, the value in the legend, the axis from 0."""
    x = curves.steps[[0, -1]].numpy()
    distinct = curves.distinct(option)
    for i, (indices, curve) in enumerate(distinct):
        value = float(curve[0])
        label = f"{value:.4g}: {groups_label(indices, groups)}"
        ax.plot(x, [value, value], linewidth=1.6, linestyle=("-", "--", "-.", ":")[i % 4], label=label)
    top = max(max(float(curve[0]) for _, curve in distinct), 0.0) or 1.0
    # 0 clear of the frame; headroom above the lines for the legend, a row per line
    ax.set_ylim(bottom=-0.1 * top, top=top * (1.4 + 0.5 * len(distinct)))
    ax.set_title(f"{TITLES.get(option, option)} (constant)", fontsize=10, loc="left")
    _finish_panel(ax, None, legend="upper left")  # a short panel: its title names the option


def _finish_panel(ax: Axes, ylabel: str | None, legend: Literal["best", "upper left"] = "best") -> None:
    from matplotlib.ticker import FuncFormatter

    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    # plain tick labels (0.0001, 7.9e-07): an offset label would collide with the epoch axis above
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:.3g}"))
    ax.legend(fontsize=8, loc=legend, framealpha=0.8)


def _draw_losses(ax: Axes, losses: Sequence[float], steps_per_epoch: int) -> None:
    values = torch.tensor(list(losses), dtype=torch.float64)
    x = torch.arange(len(values)).numpy()
    ax.plot(x, values.numpy(), linewidth=0.8, alpha=0.45, color="tab:gray", label="loss per update")
    window = max(1, min(len(values), steps_per_epoch // 4))
    if window > 1:
        kernel = torch.ones(1, 1, window, dtype=torch.float64) / window
        smooth = torch.nn.functional.conv1d(values.view(1, 1, -1), kernel).flatten()
        ax.plot(x[window - 1 :], smooth.numpy(), linewidth=1.8, color="tab:red", label=f"mean of the last {window}")
    ax.set_title("training loss (cross-entropy)", fontsize=10, loc="left")
    ax.set_ylabel("loss")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.8)


def epoch_stride(epochs: int, max_lines: int = MAX_EPOCH_LINES) -> int:
    """Mark every epoch of a short run; on longer runs every 2nd, 5th, 10th, ... (at most ``max_lines`` marks)."""
    return next((s for s in EPOCH_STRIDES if epochs // s <= max_lines), -(-epochs // max_lines))


def _mark_epochs(ax: Axes, curves: Curves) -> None:
    per_epoch = curves.clock.steps_per_epoch
    epochs = len(curves.steps) // per_epoch
    if epochs > 1:
        stride = epoch_stride(epochs)
        for epoch in range(stride, epochs + 1, stride):
            ax.axvline(epoch * per_epoch, color="0.6", linewidth=0.6, linestyle=":", zorder=0)


def _epoch_axis(ax: Axes, steps_per_epoch: int) -> None:
    def to_epochs(steps: Any) -> Any:
        return steps / steps_per_epoch

    def to_steps(epochs: Any) -> Any:
        return epochs * steps_per_epoch

    ax.secondary_xaxis("top", functions=(to_epochs, to_steps)).set_xlabel("epoch", fontsize=9)


FIGURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpeg", ".jpeg": "jpeg"}
"""The picture formats a figure is written in, by the file's extension."""


def figure_format(path: str | Path) -> str:
    """The format ``path``'s extension names (``png``, ``svg``, ``pdf``, ``jpeg``), or a ConfigError listing them."""
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        given = f"a {suffix} file" if suffix else "a file without an extension"
        raise ConfigError(
            f"cannot write {path}: {given}; the picture's format is taken from the extension: "
            f"{', '.join(FIGURE_FORMATS)}"
        )
    return FIGURE_FORMATS[suffix]


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` in the format its extension names (the parent directory is created); return the path."""
    target = Path(path)
    file_format = figure_format(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format=file_format, dpi=110)
    return target


def save_png(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG (the parent directory is created) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=110)
    return target


def chart_floor(values: torch.Tensor) -> float:
    """The value a chart's bottom row stands for: 0, or the minimum when the curve stays above half its maximum.

    An lr that falls to 0 is drawn from 0; a momentum between 0.85 and 0.95 from 0.85, or
    its swing would be a fraction of one block.
    """
    low, high = float(values.min()), float(values.max())
    return low if 0 < high and 2 * low > high else min(0.0, low)


def text_chart(values: torch.Tensor, width: int = 60, height: int = 4) -> list[str]:
    """A small area chart of ``values`` in block characters; each column shows its span's maximum."""
    if len(values) >= width:
        columns = torch.stack([chunk.max() for chunk in torch.tensor_split(values, width)])
    else:  # stretched: each value spans several columns
        columns = values[torch.arange(width) * len(values) // width]
    low = chart_floor(values)
    span = float(values.max()) - low or 1.0
    levels = torch.round((columns - low) / span * height * 8).long().tolist()
    rows = []
    for row in range(height - 1, -1, -1):
        rows.append("".join(BLOCKS[max(0, min(8, level - row * 8))] for level in levels))
    return rows


def terminal_summary(
    curves: Curves, groups: Sequence[GroupSummary], width: int = 60, unit: str = "update"
) -> list[str]:
    """The compact preview ``optiplug plot`` prints: a chart of every scheduled option, a line per constant one.

    ``unit`` is what a value of the curves stands for (``update``, or ``epoch`` for curves per epoch).
    """
    lines: list[str] = []
    for option in curves.options:
        if option in curves.scheduled or option == "lr":
            lines += terminal_preview(curves, groups, option, width, unit)
        else:
            distinct = curves.distinct(option)
            values = " · ".join(
                f"{float(curve[0]):.4g}" + ("" if len(distinct) == 1 else f" ({_group_numbers(indices)})")
                for indices, curve in distinct
            )
            lines.append(f"{option}: constant {values}")
    return lines


def _group_numbers(indices: Sequence[int]) -> str:
    return ("group " if len(indices) == 1 else "groups ") + ", ".join(map(str, indices))


def terminal_preview(
    curves: Curves, groups: Sequence[GroupSummary], option: str = "lr", width: int = 60, unit: str = "update"
) -> list[str]:
    """Lines showing every distinct curve of ``option``: a chart and its first/last/min/max values.

    A flat curve (a group whose option a rule fixed) takes one line.
    """
    lines: list[str] = []
    for indices, curve in curves.distinct(option):
        if bool((curve == curve[0]).all()):
            lines.append(f"{option}: {groups_label(indices, groups)}: constant {float(curve[0]):.4g}")
            continue
        chart = text_chart(curve, width)
        top, bottom = f"{float(curve.max()):.4g}", f"{chart_floor(curve):.4g}"
        margin = max(len(top), len(bottom))
        lines.append(f"{option}: {groups_label(indices, groups)}")
        for i, row in enumerate(chart):
            label = top if i == 0 else bottom if i == len(chart) - 1 else ""
            lines.append(f"{label:>{margin}} ┤{row}".rstrip())
        peak = int(curve.argmax())
        lines.append(
            f"{'':>{margin}}  first {float(curve[0]):.4g} · last {float(curve[-1]):.4g} · "
            f"min {float(curve.min()):.4g} · max {float(curve.max()):.4g} ({unit} {peak}) · "
            f"{len(curve):,} {unit}{'s' if len(curve) != 1 else ''}"
        )
    return lines
