"""An :class:`~optiplug.engine.explain.Explanation` as a picture: which rule matched which parameter, and which won.

One row per parameter, one column per rule: a dark cell where the rule matched and wrote
an option the parameter ends with, a light one where it matched but later rules
overwrote all it wrote. The right margin gives the group and the options at update 0;
rules with findings are marked in red in the column titles (``optiplug explain -o``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from optiplug.engine.explain import Explanation

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ROW_HEIGHT = 0.22
WON, OVERWRITTEN, NONE = 2, 1, 0


def explanation_figure(report: Explanation, title: str) -> Figure:
    """The matrix of parameters (rows) against the rules (columns, in order)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    rules = [f"{path} {label}" for path, label in report.rules]
    cells = [[NONE] * len(rules) for _ in report.params]
    for row, param in zip(cells, report.params, strict=True):
        for hit in param.hits:
            row[hit.index] = WON if hit.won else OVERWRITTEN
    height = 1.8 + ROW_HEIGHT * len(report.params)
    figure = Figure(figsize=(11, height), layout="constrained")
    ax = figure.subplots()
    colours = ListedColormap(["#f4f4f4", "#b9d3ea", "#1f5f99"])
    ax.imshow(cells or [[NONE]], cmap=colours, vmin=0, vmax=2, aspect="auto", interpolation="nearest")
    flagged = {f.path for f in report.findings}
    ax.set_xticks(range(len(rules)), rules, rotation=20, ha="right", fontsize=8)
    for label, (path, _) in zip(ax.get_xticklabels(), report.rules, strict=True):
        if any(p == path or p.startswith((f"{path}.", f"{path}[")) for p in flagged):
            label.set_color("tab:red")
    ax.set_yticks(range(len(report.params)), [p.name for p in report.params], fontsize=7)
    for y, param in enumerate(report.params):
        values = ", ".join(f"{o}={_short(param.start[o])}" for o in ("lr", "weight_decay") if o in param.start)
        ax.text(len(rules) - 0.4, y, f"  group {param.group}: {values}", va="center", fontsize=7, clip_on=False)
    ax.set_xlim(-0.5, len(rules) - 0.5)
    ax.set_title(
        title + "\ndark: the rule matched and wins an option; light: matched, all it wrote overwritten", fontsize=10
    )
    return figure


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def save(figure: Figure, output: str | Path) -> Path:
    """Write ``figure`` to the PNG ``output``."""
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, facecolor="white", bbox_inches="tight")
    return path
