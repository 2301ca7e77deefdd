"""``optiplug plugins``: every plugin, where it comes from, whether it loaded, what it provides."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from optiplug.cli.command import Command

if TYPE_CHECKING:
    from optiplug.plugin_system.catalogues import Registry


def configure_parser(sub: argparse.ArgumentParser) -> None:
    """``--json``."""
    sub.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print the plugins as a table, then every name clash; or as JSON with ``--json``.

    A clash does not stop the command: every plugin is listed, each clash names the
    ``OPTIPLUG_DISABLE_PLUGINS`` values that resolve it.
    """
    from optiplug.cli.rendering import console, plugins_table, print_table
    from optiplug.plugin_system.host import get_registry

    registry = get_registry()
    rows = plugin_rows(registry)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    out = console()
    print_table(out, plugins_table(rows))
    clashes = registry.clashes()
    if clashes:
        count = f"{len(clashes)} name{'s' if len(clashes) != 1 else ''}"
        out.print(f"{count} provided by several plugins (a config using one fails until all but one are blocked):")
        for clash in clashes:
            out.print(f"  - {clash.message()}", soft_wrap=True)
    return 0


def plugin_rows(registry: Registry) -> list[dict[str, Any]]:
    """One row per plugin, by name: distribution, version, status, what it provides (by record key), its error.

    ``clashes`` holds a message for each name the plugin provides that another plugin provides too.
    """
    keys = {kind.label: kind.key for kind, _ in registry.catalogues()}
    clashes = registry.clashes()
    return [
        {
            "name": plugin.name,
            "distribution": plugin.distribution,
            "version": plugin.version,
            "status": plugin.status,
            "provides": {keys.get(label, label): names for label, names in registry.provided_by(plugin.name).items()},
            "error": plugin.error,
            "clashes": [c.message() for c in clashes if any(p.plugin == plugin.name for p in c.providers)],
        }
        for plugin in sorted(registry.plugins, key=lambda p: p.name)
    ]


COMMAND = Command(
    "plugins",
    "List every plugin found: distribution, version, status and what it provides.",
    "  optiplug plugins\n  optiplug plugins --json | jq '.[] | select(.status != \"loaded\")'\n"
    "  OPTIPLUG_DISABLE_PLUGINS=larc optiplug plugins   # larc shown as blocked",
    configure_parser,
    run,
)
