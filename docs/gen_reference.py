"""The generated pages of the documentation, added to the site by mkdocs (``hooks:`` in mkdocs.yml).

- ``reference/api.md``: the Python API (``build``, ``Built`` and ``Built.step``, ``Recipe``
  and its sections, the errors), from the docstrings and signatures;
- ``reference/hooks.md``: every hook of ``optiplug.plugin_system.hookspecs`` and every
  record of ``optiplug.plugin_system.records``, from their docstrings and attrs fields;
- ``reference/options.md``: every optimizer, schedule, rule kind, scaling rule, wrapper
  and dialect of the first-party plugins (those of the ``optiplug`` distribution, whatever
  else the builder installed), with each config field's type, default and help text, read
  from a registry of them (the source ``optiplug schema`` uses);

Both walk ``RECORD_TYPES``: each record type names its hook and its registry catalogue
(``record_kind``), so a new kind of record appears here without editing this file.
- ``changelog.md``: the repository's CHANGELOG.md.

Nothing is written to disk: the pages exist only in the build. ``python docs/gen_reference.py
DIR`` writes them into DIR to look at.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj):`~?([^`]+)`")
LITERAL = re.compile(r"``([^`]+)``")
# The values the records talk in (the records themselves come from RECORD_TYPES).
VALUE_TYPES = ("Schedule", "Clock", "ScheduleContext", "ScalingContext", "DialectContext", "ParamInfo", "RecordKind")


# -- docstrings (reStructuredText as written in the code) to Markdown ---------------------------------------


def markdown(docstring: str | None) -> str:
    """A docstring as Markdown: roles and double backquotes as code, ``::`` and ``>>>`` blocks fenced."""
    lines = _inline(inspect.cleandoc(docstring or "")).splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith(">>>"):
            block, index = _take(lines, index, lambda text: text.startswith((">>>", "...")))
            out += ["```pycon", *block, "```", ""]
            continue
        if line.rstrip().endswith("::"):
            out.append(line.rstrip()[:-1])
            block, index = _indented_block(lines, index + 1)
            out += ["", f"```{_language(block)}", *block, "```", ""]
            continue
        out.append(line)
        index += 1
    return "\n".join(out)


def _inline(text: str) -> str:
    """``:class:`~a.B``` -> ```B```, ``:mod:`a.b``` -> ```a.b```, double backquotes -> single."""

    def role(match: re.Match[str]) -> str:
        target = match.group(1)
        return f"`{target.split('.')[-1] if '~' in match.group(0) else target}`"

    return LITERAL.sub(r"`\1`", ROLE.sub(role, text))


def _take(lines: list[str], start: int, keep: Callable[[str], bool]) -> tuple[list[str], int]:
    end = start
    while end < len(lines) and keep(lines[end]):
        end += 1
    return lines[start:end], end


def _indented_block(lines: list[str], start: int) -> tuple[list[str], int]:
    """The indented lines after a ``::`` paragraph (blank lines inside kept), dedented."""
    while start < len(lines) and not lines[start].strip():
        start += 1
    end = start
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith(" ")):
        end += 1
    block = lines[start:end]
    while block and not block[-1].strip():
        block.pop()
    return inspect.cleandoc("\n".join(block)).splitlines(), end


def _language(block: list[str]) -> str:
    return "toml" if any(line.lstrip().startswith("[") for line in block) else "python"


# -- the pages ----------------------------------------------------------------------------------------------------


def hooks_page() -> str:
    """The hooks and the records, from their docstrings, one hook per record type."""
    from optiplug.plugin_system import hookspecs, records

    parts = [
        "# Reference: hooks and records",
        "",
        "Generated from `optiplug.plugin_system.hookspecs` and `optiplug.plugin_system.records` when the",
        "documentation is built. A plugin imports all of it from `optiplug.plugin`.",
        "",
        markdown(hookspecs.__doc__),
        "",
        "| hook | returns | registry catalogue | key in `optiplug plugins --json` |",
        "|---|---|---|---|",
    ]
    kinds = [(record_type, record_type.record_kind) for record_type in records.RECORD_TYPES]
    for record_type, kind in kinds:
        parts.append(f"| `{kind.hook}()` | `{record_type.__name__}` | `registry.{kind.catalogue}` | `{kind.key}` |")
    parts += ["", "## Hooks"]
    for record_type, kind in kinds:
        function = _hookspec(hookspecs, kind.hook)
        signature = _signature(function)
        parts += ["", f"### `{kind.hook}`", "", f"```python\n{kind.hook}{signature}\n```", ""]
        parts += [
            markdown(function.__doc__),
            "",
            f"Returns [`{record_type.__name__}`](#{_anchor(record_type)}) records.",
        ]
    _check_every_hook_has_a_record_type(hookspecs, {kind.hook for _, kind in kinds})
    parts += ["", "## Records", "", markdown(records.__doc__)]
    for record_type in records.RECORD_TYPES:
        parts += ["", *_record_section(record_type)]
    parts += ["", "## The values they talk in"]
    for name in VALUE_TYPES:
        parts += ["", *_record_section(getattr(records, name))]
    return "\n".join(parts) + "\n"


def _anchor(cls: type) -> str:
    """The anchor of a record's section (``### `OptimizerSpec` `` -> ``optimizerspec``)."""
    return cls.__name__.lower()


def _signature(function: Callable[..., Any]) -> str:
    """The signature with its annotations as written (not as the strings ``from __future__`` makes them)."""
    return str(inspect.signature(function)).replace("'", "")


def _hookspec(module: Any, name: str) -> Callable[..., Any]:
    function = getattr(module, name, None)
    if not callable(function):
        raise RuntimeError(f"RECORD_TYPES names the hook {name!r}, which hookspecs does not define")
    return function


def _check_every_hook_has_a_record_type(module: Any, documented: set[str]) -> None:
    """A hook spec no record type names would be missing from the page: refuse to build it."""
    hooks = {name for name, value in vars(module).items() if name.startswith("optiplug_") and callable(value)}
    if hooks - documented:
        raise RuntimeError(f"hooks without a record type in RECORD_TYPES: {sorted(hooks - documented)}")


def _record_section(cls: type) -> list[str]:
    import attrs

    from optiplug.tooling.schema import type_text

    lines = [f"### `{cls.__name__}`", "", markdown(cls.__doc__)]
    kind = getattr(cls, "record_kind", None)
    if kind is not None:
        lines += ["", f"Returned by [`{kind.hook}()`](#{kind.hook}); held in `registry.{kind.catalogue}`."]
    if attrs.has(cls):
        lines += ["", "| field | type | default |", "|---|---|---|"]
        for field in attrs.fields(cls):
            default = "required" if field.default is attrs.NOTHING else _code(repr(field.default))
            lines.append(f"| `{field.name}` | {_code(type_text(field.type))} | {default} |")
    else:
        for name, member in vars(cls).items():
            if callable(member) and not name.startswith("_"):
                lines += ["", f"`{name}{_signature(member)}`: {markdown(member.__doc__)}"]
    return lines


def options_page() -> str:
    """Every first-party plugin's kinds and their options, from a registry of them."""
    registry = first_party_registry()
    parts = [
        "# Reference: every option of the installed plugins",
        "",
        "Generated from the live registry when the documentation is built (the source of `optiplug schema`):",
        "each config field with its type, its default (or *required*) and its help text. Every schedule also",
        "takes `update_interval` (`step`, or `epoch` to hold each epoch's first value). The plugin pages",
        "explain what each one computes.",
    ]
    for plugin in sorted(registry.plugins, key=lambda p: p.name):
        if plugin.distribution != FIRST_PARTY:
            continue
        provided = registry.provided_by(plugin.name)
        if not provided:
            continue
        parts += ["", f"## {plugin.name}", "", f"From `{plugin.distribution}` {plugin.version or ''}.".rstrip()]
        parts += _kinds(registry, plugin.name)
    return "\n".join(parts) + "\n"


FIRST_PARTY = "optiplug"
"""The distribution whose plugins the documentation describes (not whatever else the builder installed)."""


def first_party_registry() -> Any:
    """A registry of this distribution's plugins only: every other entry point blocked, no user registrations."""
    from importlib import metadata

    from optiplug.plugin_system.host import PluginHost
    from optiplug.plugin_system.manager import ENTRY_POINT_GROUP

    others = [
        ep.name
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)
        if ep.dist is None or ep.dist.metadata["Name"] != FIRST_PARTY
    ]
    return PluginHost(blocked=others).registry


def _kinds(registry: Any, plugin: str) -> list[str]:
    """One section per record the plugin provides, catalogue by catalogue (the order of ``RECORD_TYPES``)."""
    import attrs

    from optiplug.plugin_system.records import OptimizerSpec

    lines: list[str] = []
    for kind, catalogue in registry.catalogues():
        for provided in sorted((p for p in catalogue if p.plugin == plugin), key=lambda p: p.record.name):
            record = provided.record
            lines += ["", f"### {kind.label} `{record.name}`", "", _describe(record)]
            if isinstance(record, OptimizerSpec):
                lines += _arguments(record.factory)
            if "config_class" in attrs.fields_dict(type(record)):
                lines += _fields(record.config_class)
    return lines


def _arguments(factory: Callable[..., Any]) -> list[str]:
    """An optimizer's keyword arguments and defaults (what the recipe's optimizer keys are checked against)."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    shown = [str(p).replace("'", "") for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return ["", "Arguments: " + ", ".join(f"`{text}`" for text in shown) + "."] if shown else []


def _describe(record: Any) -> str:
    text = getattr(record, "description", "") or ""
    extra = []
    if getattr(record, "relative", False):
        extra.append("relative: each param group's own value is the base")
    if getattr(record, "aliases", ()):
        extra.append("also: " + ", ".join(f"`{a}`" for a in record.aliases))
    return "; ".join(x for x in [_text(text), *extra] if x) or "-"


def _fields(config_class: type | None) -> list[str]:
    from optiplug.tooling.schema import field_help

    rows = field_help(config_class)
    if not rows:
        return ["", "No options."]
    lines = ["", "| option | type | default | meaning |", "|---|---|---|---|"]
    for row in rows:
        default = "*required*" if row.default is None else _code(row.default)
        lines.append(f"| `{row.name}` | {_code(row.type)} | {default} | {_cell(row.help)} |")
    return lines


def _text(text: str) -> str:
    """Plain text (help, descriptions) shown as written: ``*``, ``**`` and ``<i>`` are not markup."""
    return text.replace("*", "\\*").replace("<", "&lt;")


def _cell(text: str) -> str:
    """Table cell text: a pipe outside code would split the cell."""
    return _text(text).replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """A table cell as code (Python-Markdown keeps pipes inside code spans)."""
    return f"`{text.replace(chr(10), ' ')}`"


# -- the Python API -------------------------------------------------------------------------------------------------

API_FUNCTIONS = ("build", "to_recipe", "find_lr", "register_optimizer", "register_schedule", "get_registry")
"""The functions of ``optiplug`` the API page documents, in this order."""
API_CLASSES = (
    "Built",
    "GroupSummary",
    "OptiplugScheduler",
    "Recipe",
    "OptimizerConfig",
    "RuleConfig",
    "ScheduleConfig",
    "ScalingConfig",
    "ClipConfig",
    "AccumulationConfig",
    "WrapperConfig",
    "RunConfig",
)
"""The classes of ``optiplug`` the API page documents (the records are on the hooks page)."""
AMP_EXAMPLE = (
    "A training loop around `Built.step`, with mixed precision: `step` takes the loss of one",
    "micro-batch and the `torch.amp.GradScaler`, and scales, unscales before clipping, steps",
    "and updates the scaler itself; it returns whether the optimizer updated.",
    "",
    "```python",
    'built = optiplug.build("recipe.yaml", model, steps_per_epoch=len(loader), num_epochs=90)',
    'scaler = torch.amp.GradScaler("cuda")',
    "for epoch in range(90):",
    "    for inputs, targets in loader:",
    '        with torch.autocast("cuda", dtype=torch.float16):',
    "            loss = loss_fn(model(inputs), targets)",
    "        built.step(loss, scaler)",
    "```",
)
"""The page's example of ``Built.step`` with AMP (the docstrings say what each call does)."""
API_ERRORS = ("OptiplugError", "ConfigError", "PluginError", "StateError", "OptiplugWarning")


def api_page() -> str:
    """``optiplug``'s public functions, classes and errors, from their docstrings and signatures."""
    import optiplug

    parts = [
        "# Reference: the Python API",
        "",
        "Generated from the docstrings when the documentation is built. The records plugins return",
        "(`OptimizerSpec`, `ScheduleSpec`, ...) and the hooks are on",
        "[Reference: hooks and records](hooks.md).",
        "",
        "## Functions",
    ]
    for name in API_FUNCTIONS:
        function = getattr(optiplug, name)
        parts += ["", f"### `optiplug.{name}{_signature(function)}`", "", markdown(function.__doc__)]
    parts += ["", "## Classes"]
    parts += ["", *AMP_EXAMPLE]
    for name in API_CLASSES:
        parts += _api_class(getattr(optiplug, name))
    parts += ["", "## Errors and warnings"]
    for name in API_ERRORS:
        cls = getattr(optiplug, name)
        bases = ", ".join(base.__name__ for base in cls.__bases__)
        parts += ["", f"### `optiplug.{name}({bases})`", "", markdown(cls.__doc__)]
    return "\n".join(parts) + "\n"


def _api_class(cls: type) -> list[str]:
    """A class: its docstring, its fields (attrs classes), its public methods and properties."""
    lines = ["", f"### `optiplug.{cls.__name__}`", "", markdown(cls.__doc__)]
    fields = _fields(cls) if attrs_has(cls) else []
    if fields:
        lines += ["", *fields]
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
            continue
        doc = member.__doc__
        if not doc:
            continue
        shown = name if isinstance(member, property) else f"{name}{_signature(member)}"
        lines += ["", f"#### `{cls.__name__}.{shown}`", "", markdown(doc)]
    return lines


def attrs_has(cls: type) -> bool:
    """Whether ``cls`` is an attrs class."""
    import attrs

    return attrs.has(cls)


def changelog_page() -> str:
    """CHANGELOG.md as it is."""
    return (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def pages() -> dict[str, str]:
    """Every generated page by its path under docs/."""
    return {
        "reference/api.md": api_page(),
        "reference/hooks.md": hooks_page(),
        "reference/options.md": options_page(),
        "changelog.md": changelog_page(),
    }


# -- the mkdocs hook ------------------------------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site (mkdocs calls this before it reads the nav)."""
    from mkdocs.structure.files import File

    for uri, text in pages().items():
        files.append(File.generated(config, uri, content=text))
    return files


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "generated-docs")
    for uri, text in pages().items():
        path = target / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
