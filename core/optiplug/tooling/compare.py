"""Two recipes, of any dialects, compared update by update on one model (``optiplug diff`` / ``plot A B``).

Both are built for the same model and their curves (:mod:`optiplug.tooling.curves`)
compared parameter by parameter, so two recipes that number their param groups
differently still line up: each pair (group in A, group in B) that some parameter falls
in is compared once. For every option and pair: the first update where the values
differ, and the largest difference. A difference counts when it exceeds ``tolerance``
times the option's largest magnitude in either recipe (relative to the option's scale,
so ``1e-6`` means "the same to six digits"). Different optimizers, an option one recipe
has and the other lacks, and runs of different lengths are differences too.

>>> comparison = compare(built_a, built_b, ("old.py", "new.yaml"))
>>> comparison.differs(1e-6), comparison.lines(1e-6)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import torch

from optiplug.engine.built_result import Built
from optiplug.tooling.curves import Curves, compute_curves, run_updates

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DEFAULT_TOLERANCE = 1e-6
SHOWN_NAMES = 3


@attrs.frozen
class OptionDiff:
    """One option of one pair of groups (``group_a`` in A, ``group_b`` in B) over the run."""

    option: str
    group_a: int
    group_b: int
    names: tuple[str, ...]
    first: int | None
    largest: float
    largest_at: int
    scale: float

    def exceeds(self, tolerance: float) -> bool:
        """Whether the largest difference is beyond ``tolerance`` times the option's scale."""
        return self.largest > tolerance * self.scale

    def first_beyond(self, a: torch.Tensor, b: torch.Tensor, tolerance: float) -> int | None:
        """The first update whose difference is beyond the tolerance."""
        beyond = ((a - b).abs() > tolerance * self.scale).nonzero()
        return int(beyond[0]) if len(beyond) else None


@attrs.frozen
class Comparison:
    """Two builds' curves side by side: structural differences, then one :class:`OptionDiff` per option and pair."""

    names: tuple[str, str]
    curves: tuple[Curves, Curves]
    algorithms: tuple[str, str]
    structural: tuple[str, ...]
    diffs: tuple[OptionDiff, ...]

    def differing(self, tolerance: float = DEFAULT_TOLERANCE) -> list[OptionDiff]:
        """The option diffs beyond ``tolerance``."""
        return [d for d in self.diffs if d.exceeds(tolerance)]

    def differs(self, tolerance: float = DEFAULT_TOLERANCE) -> bool:
        """Whether the recipes differ anywhere beyond ``tolerance`` (or in structure)."""
        return bool(self.structural) or bool(self.differing(tolerance))

    def lines(self, tolerance: float = DEFAULT_TOLERANCE) -> list[str]:
        """The report: what differs in structure, then each differing option with where it first differs."""
        a, b = self.names
        out = [f"A: {a} ({self.algorithms[0]})", f"B: {b} ({self.algorithms[1]})"]
        out += [f"differs: {line}" for line in self.structural]
        for diff in self.diffs:
            values = self._values(diff)
            where = f"groups A{diff.group_a}/B{diff.group_b} ({_names(diff.names)})"
            if not diff.exceeds(tolerance):
                continue
            first = diff.first_beyond(values[0], values[1], tolerance)
            out.append(
                f"{diff.option}, {where}: first differs at update {first} "
                f"(A {_g(values[0][first])}, B {_g(values[1][first])}); largest difference {_g(diff.largest)} "
                f"at update {diff.largest_at} (A {_g(values[0][diff.largest_at])}, B {_g(values[1][diff.largest_at])})"
            )
        updates = len(self.curves[0].steps)
        if self.differs(tolerance):
            out.append(f"the recipes differ (tolerance {tolerance:g} of each option's scale, {updates:,} updates)")
        else:
            out.append(
                f"the same: every option of every parameter at all {updates:,} updates (tolerance {tolerance:g})"
            )
        return out

    def _values(self, diff: OptionDiff) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            self.curves[0].values[diff.option][diff.group_a],
            self.curves[1].values[diff.option][diff.group_b],
        )


def _g(value: float | torch.Tensor) -> str:
    return f"{float(value):.6g}"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f", … (+{len(names) - SHOWN_NAMES})" if len(names) > SHOWN_NAMES else "")


def _algorithm(built: Built) -> str:
    count = len(built.optimizer.param_groups)
    return f"{type(built.optimizer).__name__}, {count} group{'s' if count != 1 else ''}, {_length(built)} updates"


def _length(built: Built) -> str:
    return f"{run_updates(built.clock):,}"


def compare(a: Built, b: Built, names: tuple[str, str] = ("A", "B")) -> Comparison:
    """Compare two builds for the same model over the longer of their runs."""
    updates = max(run_updates(a.clock), run_updates(b.clock))
    curves = (compute_curves(a, updates), compute_curves(b, updates))
    structural = _structure(a, b, curves)
    pairs = _pairs(a, b)
    diffs = [
        _diff(option, ga, gb, members, curves)
        for option in curves[0].options
        if option in curves[1].values
        for (ga, gb), members in pairs.items()
    ]
    return Comparison(names, curves, (_algorithm(a), _algorithm(b)), tuple(structural), tuple(diffs))


def _structure(a: Built, b: Built, curves: tuple[Curves, Curves]) -> list[str]:
    found = []
    kind_a, kind_b = type(a.optimizer).__name__, type(b.optimizer).__name__
    if kind_a != kind_b:
        found.append(f"optimizer: A is {kind_a}, B is {kind_b}")
    for option in sorted(set(curves[0].values) ^ set(curves[1].values)):
        which = "A" if option in curves[0].values else "B"
        found.append(f"{option}: only {which} has it")
    if run_updates(a.clock) != run_updates(b.clock):
        found.append(f"run length: A has {_length(a)} updates, B {_length(b)} (the shorter holds its last values)")
    return found


def _pairs(a: Built, b: Built) -> dict[tuple[int, int], list[str]]:
    """Each (group in A, group in B) pair some parameter falls in, with those parameters' names."""
    in_b = {id(p): i for i, g in enumerate(b.optimizer.param_groups) for p in g["params"]}
    named = {
        id(p): name
        for summary, group in zip(a.groups, a.optimizer.param_groups, strict=True)
        for name, p in zip(summary.names, group["params"], strict=False)
    }
    pairs: dict[tuple[int, int], list[str]] = {}
    for i, group in enumerate(a.optimizer.param_groups):
        for param in group["params"]:
            if id(param) in in_b:
                pairs.setdefault((i, in_b[id(param)]), []).append(named.get(id(param), "?"))
    return pairs


def _diff(option: str, ga: int, gb: int, members: list[str], curves: tuple[Curves, Curves]) -> OptionDiff:
    a, b = curves[0].values[option][ga], curves[1].values[option][gb]
    gap = (a - b).abs()
    gap = torch.where(a.isnan() & b.isnan(), torch.zeros_like(gap), gap.nan_to_num(math.inf))
    scale = max(float(a.nan_to_num(0).abs().max()), float(b.nan_to_num(0).abs().max()), 1e-300)
    at = int(gap.argmax())
    nonzero = (gap > 0).nonzero()
    first = int(nonzero[0]) if len(nonzero) else None
    return OptionDiff(option, ga, gb, tuple(members), first, float(gap[at]), at, scale)


def comparison_figure(comparison: Comparison, tolerance: float = DEFAULT_TOLERANCE, log_lr: bool = False) -> Figure:
    """One panel per option: A solid, B dashed, one line per distinct curve; the first difference marked."""
    from matplotlib.figure import Figure

    options = [o for o in comparison.curves[0].options if o in comparison.curves[1].values]
    figure = Figure(figsize=(10, 1.2 + 2.4 * len(options)), layout="constrained")
    axes = figure.subplots(len(options), 1, sharex=True, squeeze=False)[:, 0]
    a, b = comparison.names
    verdict = "differ" if comparison.differs(tolerance) else "the same"
    figure.suptitle(f"A: {Path(a).name}  vs  B: {Path(b).name}  ({verdict})", fontsize=11)
    for ax, option in zip(axes, options, strict=True):
        _draw_pair(ax, comparison, option, tolerance)
        if log_lr and option == "lr":
            ax.set_yscale("log", nonpositive="mask")
    axes[-1].set_xlabel("update (optimizer step)")
    return figure


def _draw_pair(ax: Axes, comparison: Comparison, option: str, tolerance: float) -> None:
    from optiplug.tooling.plotting import TITLES, envelope

    x = comparison.curves[0].steps
    colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"] * 4)
    for side, (curves, style) in enumerate(zip(comparison.curves, ("-", "--"), strict=True)):
        for groups, curve in curves.distinct(option):
            picked = envelope(curve)
            noun = "group" if len(groups) == 1 else "groups"
            label = f"{'AB'[side]} ({Path(comparison.names[side]).name}): {noun} {', '.join(map(str, groups))}"
            ax.plot(
                x[picked].numpy(),
                curve[picked].numpy(),
                linestyle=style,
                linewidth=1.5,
                color=next(colours),
                label=label,
            )
    beyond = [d for d in comparison.differing(tolerance) if d.option == option]
    if beyond:
        values = comparison._values(beyond[0])
        first = beyond[0].first_beyond(values[0], values[1], tolerance)
        if first is not None:
            ax.axvline(first, color="black", linestyle=":", linewidth=1.2, label=f"first difference: update {first}")
        largest = max(beyond, key=lambda d: d.largest)
        ax.axvline(
            largest.largest_at,
            color="tab:red",
            linestyle="--",
            linewidth=1.0,
            label=f"largest difference {_g(largest.largest)}: update {largest.largest_at}",
        )
    title = f"{TITLES.get(option, option)}: " + ("differs" if beyond else "the same")
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def save(figure: Figure, output: str | Path) -> Path:
    """Write ``figure`` to the PNG ``output``."""
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, facecolor="white")
    return path
