"""What the commands show: the console, tables of param groups and plugins, one-line summaries, warnings."""

from __future__ import annotations

import sys
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optiplug.cli.parser import PROG
from optiplug.cli.terms import in_cli_terms

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from optiplug.engine.built_result import Built, GroupSummary
    from optiplug.recipe.model import RunConfig

STATUS_STYLES = {"loaded": "green", "blocked": "yellow"}
"""The colour of a plugin's status in ``optiplug plugins`` (any other status: bold red)."""


def console() -> Console:
    """A rich console for the commands' tables and progress bars (no highlighting, no soft wrapping)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def print_table(out: Console, table: Table) -> None:
    """Print ``table`` with no value split across lines.

    The tables' cells are never wrapped; to a pipe or a file, the table gets the width
    it needs when that is more than the 80 columns rich assumes. On a terminal too
    narrow for a table, a value folds at the edge of its column rather than being cut
    off.
    """
    from rich.measure import Measurement

    needed = Measurement.get(out, out.options.update(max_width=10_000), table)
    if out.is_terminal:
        if needed.maximum > out.width:  # a terminal too narrow for the table: fold values rather than cut them
            for column in table.columns:
                column.no_wrap = False
        out.print(table)
        return
    previous = out.width
    out.width = max(previous, needed.maximum)
    try:
        out.print(table)
    finally:
        out.width = previous


@contextmanager
def reported_warnings(show: bool = True) -> Iterator[None]:
    """Show warnings raised inside (a rule matching nothing) as ``optiplug: warning:`` lines, or drop them.

    A warning naming ``build()`` arguments names the command line's flags instead.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught if show else ():
        print(f"{PROG}: warning: {in_cli_terms(str(warning.message))}", file=sys.stderr)


def write_output(text: str, output: str | None) -> None:
    """``text`` to the file ``output`` (saying so on stderr), or to stdout when None."""
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def format_option(value: Any) -> str:
    """A group option's value, short: floats to 6 significant digits, sequences in parentheses."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(format_option(v) for v in value) + ")"
    return str(value)


def groups_table(groups: Sequence[GroupSummary], title: str) -> Table:
    """A rich table of param groups: index, rules, tensors, elements, options, a few parameter names.

    Values are never wrapped (one option, one parameter name a line): printed with
    :func:`print_table`, no value is split across lines.
    """
    from rich.table import Table
    from rich.text import Text

    rows = []
    for group in groups:
        options = "\n".join(f"{k}={format_option(v)}" for k, v in group.options.items())
        shown = [*group.names[:3], *([f"… (+{len(group.names) - 3})"] if len(group.names) > 3 else [])]
        rows.append(
            (
                str(group.index),
                "\n".join(group.rules),
                str(group.tensors),
                f"{group.elements:,}",
                options,
                "\n".join(shown),
            )
        )
    table = Table(title=title, title_justify="left")
    headers = ("#", "rules", "tensors", "elements", "options at update 0", "parameters")
    justify = ("right", "left", "right", "right", "left", "left")
    for column, side in zip(headers, justify, strict=True):
        table.add_column(column, justify=side, no_wrap=True, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


PROVIDES_WIDTH = 60
"""The width the ``provides`` column of ``optiplug plugins`` wraps at, between names."""


def plugins_table(rows: Sequence[dict[str, Any]]) -> Table:
    """A rich table of plugins, from the rows ``optiplug plugins --json`` prints.

    What a plugin provides is wrapped between names, never inside one.
    """
    from rich.table import Table
    from rich.text import Text

    table = Table(title="optiplug plugins", title_justify="left", show_lines=True)
    for column in ("name", "distribution", "version", "status", "provides"):
        table.add_column(column, no_wrap=True, overflow="fold")
    for row in rows:
        status = Text(row["status"], style=STATUS_STYLES.get(row["status"], "bold red"))
        provides = "\n".join(
            textwrap.fill(
                f"{kind.replace('_', ' ')}: {', '.join(names)}",
                PROVIDES_WIDTH,
                break_long_words=False,
                break_on_hyphens=False,
            )
            for kind, names in row["provides"].items()
        )
        if row["error"]:
            provides = f"{provides}\nerror: {row['error']}".strip()
        if row.get("clashes"):
            provides = f"{provides}\nclash: {len(row['clashes'])} name(s) also provided by another plugin (below)"
        table.add_row(row["name"], row["distribution"], row["version"] or "-", status, Text(provides or "-"))
    return table


def groups_count(built: Built) -> str:
    """``1 param group``, ``3 param groups``."""
    count = len(built.groups)
    return f"{count} param group" + ("s" if count != 1 else "")


def run_summary(built: Built, figures: RunConfig, *, per_epoch: bool = False) -> str:
    """The run's length (and batch): ``800 updates = 16 epochs × 50 updates/epoch, batch 32 × 8 devices``.

    ``per_epoch``: the build used nominal updates per epoch; only the epochs are told.
    """
    clock = built.clock
    if per_epoch and clock.num_epochs is not None:
        told = f"{clock.num_epochs:g} epoch{'s' if clock.num_epochs != 1 else ''}"
        unknown = "updates per epoch not given (pass --steps-per-epoch for the run in updates)"
        return f"{told}, {unknown}{batch_summary(built, figures)}"
    if clock.total_steps is None:
        updates = clock.steps_per_epoch
        return f"an open-ended run, {updates} update{'s' if updates != 1 else ''} per epoch"
    epochs = clock.total_steps / clock.steps_per_epoch
    length = f"{clock.total_steps:,.0f} updates = {epochs:g} epochs × {clock.steps_per_epoch:,} updates/epoch"
    return length + batch_summary(built, figures)


def batch_summary(built: Built, figures: RunConfig) -> str:
    """``, batch 32 × 64 devices`` when the run's batch is known (it is what lr scaling used)."""
    run = built.recipe.run
    per_device = figures.batch_size_per_device or run.batch_size_per_device
    world = figures.world_size or run.world_size or 1
    if per_device is None:
        return ""
    return f", batch {per_device}" + (f" × {world} devices" if world > 1 else "")
