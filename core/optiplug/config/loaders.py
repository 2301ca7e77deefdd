"""Reading a config from wherever it comes.

A mapping, a Recipe, an OmegaConf DictConfig, or a file (.yaml/.yml through a safe
loader, .json, an MMCV-style .py read without executing it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from optiplug.errors import ConfigError

YAML_SUFFIXES = (".yaml", ".yml")


@attrs.frozen
class Loaded:
    """A config as plain data, and the file it came from (if any)."""

    data: Any
    source: str | None = None


def load(config: Any) -> Loaded:
    """Plain data from any accepted config form (a Recipe passes through unchanged)."""
    if isinstance(config, str | os.PathLike):
        return Loaded(load_file(Path(config)), str(config))
    container = _omegaconf_container(config)
    if container is not None:
        return Loaded(container)
    if isinstance(config, Mapping) or attrs.has(type(config)):
        return Loaded(config)
    raise ConfigError(
        "expected a config as a mapping, a Recipe, or a path to a .yaml/.yml/.json/.py file; "
        f"got {type(config).__name__}"
    )


def _omegaconf_container(config: Any) -> Any:
    module = type(config).__module__
    if not module.startswith("omegaconf"):
        return None
    from omegaconf import OmegaConf

    return OmegaConf.to_container(config, resolve=True)


def load_file(path: Path) -> Any:
    """Read a config file by its suffix."""
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        return load_yaml(path.read_text(encoding="utf-8"), str(path))
    if suffix == ".json":
        return _load_json(path)
    if suffix == ".py":
        from optiplug.config.pyfile import load_pyfile

        return load_pyfile(path)
    raise ConfigError(f"cannot read {path.name}: expected a .yaml, .yml, .json or .py config file")


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def load_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML with the safe loader; a syntax error names the line and column."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        hint = _indentation_hint(text, mark.line if mark else None)
        problem = exc.problem or exc.context or "syntax error"
        if "python/" in str(exc) or "constructor" in type(exc).__name__.lower():
            problem = f"{problem} (tags that build Python objects are refused: configs are data)"
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}{hint}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None


def _indentation_hint(text: str, line: int | None) -> str:
    """Explain the seed page's mistake: keys under ``- name: x`` indented deeper than ``name``."""
    if line is None:
        return ""
    lines = text.splitlines()
    index = min(line, len(lines) - 1)
    while index >= 0:
        stripped = lines[index].lstrip()
        if stripped.startswith("- ") and ":" in stripped:
            break
        if stripped and not stripped.startswith("#") and index < line:
            return ""
        index -= 1
    else:
        return ""
    key_column = len(lines[index]) - len(lines[index].lstrip()) + 2
    following = next((n for n in lines[index + 1 :] if n.strip() and not n.lstrip().startswith("#")), None)
    if following is None or len(following) - len(following.lstrip()) <= key_column:
        return ""
    key = lines[index].lstrip()[2:].split(":")[0]
    return (
        f"; the keys under the list item on line {index + 1} must be indented to column "
        f"{key_column + 1}, the same as {key!r} (and likewise for the other items)"
    )
