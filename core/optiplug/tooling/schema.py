"""The JSON Schema of the canonical recipe, generated from the attrs classes and the live registry.

Field types, defaults and help texts (``metadata["help"]``) come from the attrs classes;
the plugin-selected parts come from the registry: a schedule is a ``oneOf`` over every
registered schedule's config class (told apart by a ``name`` const), a rule a ``oneOf``
over the rule kinds (``kind`` const), a wrapper likewise, and the optimizer's ``name``
an enum. Each recipe class is tied to its record type (:data:`SELECTED_BY`), whose
``record_kind`` names the registry catalogue to read. The keys a rule's ``set`` may
write depend on the optimizer: one ``if``/``then`` per optimizer (its group options, the
wrappers' and their multipliers). Value checks that live in validators (``> 0``,
ranges) are not expressed.

>>> schema = recipe_schema(optiplug.get_registry())
>>> jsonschema.validate(yaml.safe_load(open("recipe.yaml")), schema)
"""

from __future__ import annotations

import collections.abc as cabc
import enum
import inspect
import re
import types
import typing
from typing import Any

import attrs

from optiplug.engine.optimizer_options import declared_options, multiplier_names
from optiplug.plugin_system.catalogues import Catalogue, Registry
from optiplug.plugin_system.records import OptimizerSpec, RuleSpec, ScheduleSpec, WrapperSpec
from optiplug.recipe.model import INTERVALS, OptimizerConfig, Recipe, RuleConfig, ScheduleConfig, WrapperConfig

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# The converter reads numbers written as text (YAML 1.1 reads ``1e-4`` as a string).
NUMBER_TEXT = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
FLATTENED = "params"
SPECIAL_DEFS = {ScheduleConfig: "Schedule", RuleConfig: "Rule", WrapperConfig: "Wrapper", OptimizerConfig: "Optimizer"}
SELECTED_BY: dict[type, type] = {
    ScheduleConfig: ScheduleSpec,
    RuleConfig: RuleSpec,
    WrapperConfig: WrapperSpec,
    OptimizerConfig: OptimizerSpec,
}
"""The record type that selects each plugin-selected recipe class; its first field is the selector."""
SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    bool: {"type": "boolean"},
    float: {"$ref": "#/$defs/Number"},
    type(None): {"type": "null"},
}


def recipe_schema(registry: Registry) -> dict[str, Any]:
    """The schema of a canonical recipe mapping, with every installed plugin's kinds."""
    writer = SchemaWriter(registry)
    body = writer.object_schema(Recipe)
    rule_options = writer.rule_options()
    return {"$schema": DRAFT, "title": "optiplug recipe", **body, **rule_options, "$defs": writer.definitions()}


class SchemaWriter:
    """Turns attrs classes and type hints into schema fragments, collecting ``$defs``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.defs: dict[str, dict[str, Any]] = {}
        self._names: dict[type, str] = {}

    def definitions(self) -> dict[str, dict[str, Any]]:
        """Every definition referenced so far (the plugin-selected ones always)."""
        for cls in SPECIAL_DEFS:
            self.ref(cls)
        number = {
            "description": "A number, or a number written as text (YAML reads 1e-4 as text).",
            "type": ["number", "string"],
            "pattern": NUMBER_TEXT,
        }
        return dict(sorted({**self.defs, "Number": number}.items()))

    def ref(self, cls: type) -> dict[str, Any]:
        """A ``$ref`` to the definition of ``cls``, written on first use."""
        name = self._names.get(cls)
        if name is None:
            name = self._names[cls] = self._free_name(cls)
            self.defs[name] = {}  # reserved first: recursive types refer to it while it is written
            self.defs[name] = self._special(cls) if cls in SPECIAL_DEFS else self.object_schema(cls)
        return {"$ref": f"#/$defs/{name}"}

    def _free_name(self, cls: type) -> str:
        name = SPECIAL_DEFS.get(cls, cls.__name__)
        return name if name not in self.defs else f"{cls.__module__}.{cls.__qualname__}"

    def object_schema(self, cls: type, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """An object with the fields of attrs class ``cls`` (unknown keys refused)."""
        properties, required = self.fields(cls, skip=skip)
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        description = _first_paragraph(cls.__doc__)
        return {"description": description, **schema} if description else schema

    def fields(self, cls: type | None, *, skip: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
        """The property schemas and required names of an attrs class's fields."""
        if cls is None or not attrs.has(cls):
            return {}, []
        hints = _type_hints(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in attrs.fields(cls):
            if field.name in skip:
                continue
            schema = dict(self.type_schema(hints.get(field.name, field.type)))
            help_text = field.metadata.get("help")
            if help_text:
                schema["description"] = str(help_text)
            if field.default is attrs.NOTHING:
                required.append(field.name)
            else:
                schema.update(_default(field.default))
            properties[field.name] = schema
        return properties, required

    def type_schema(self, hint: Any) -> dict[str, Any]:
        """The schema of one type hint (anything unknown is unconstrained)."""
        if hint in SCALARS:
            return dict(SCALARS[hint])
        if isinstance(hint, type) and (hint in SPECIAL_DEFS or attrs.has(hint)):
            return self.ref(hint)
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return {"enum": [member.value for member in hint]}
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.type_schema(arg) for arg in args]}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin in (list, set, frozenset, cabc.Sequence, cabc.Collection, cabc.Iterable):
            return {"type": "array", "items": self.type_schema(args[0])} if args else {"type": "array"}
        if origin is tuple:
            return self._tuple(args)
        if origin in (dict, cabc.Mapping, cabc.MutableMapping):
            value = self.type_schema(args[1]) if len(args) == 2 else {}
            return {"type": "object", "additionalProperties": value}
        return {}

    def _tuple(self, args: tuple[Any, ...]) -> dict[str, Any]:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": self.type_schema(args[0])}
        items = [self.type_schema(arg) for arg in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}

    def catalogue(self, holder: type) -> Catalogue[Any]:
        """The registry catalogue of the records that select ``holder`` (a recipe class of SELECTED_BY)."""
        return getattr(self.registry, SELECTED_BY[holder].record_kind.catalogue)  # type: ignore[attr-defined]

    def _special(self, cls: type) -> dict[str, Any]:
        if cls is OptimizerConfig:
            return self._optimizer()
        key = attrs.fields(cls)[0].name
        common, _ = self.fields(cls, skip=(key, FLATTENED))
        if "update_interval" in common:
            common["update_interval"]["enum"] = list(INTERVALS)
            common["update_interval"].pop("type", None)
        return self._one_of(key, self.catalogue(cls), cls, common)

    def _one_of(self, key: str, catalogue: Catalogue[Any], holder: type, common: dict[str, Any]) -> dict[str, Any]:
        branches = []
        for provided in sorted(catalogue, key=lambda p: p.record.name):
            record = provided.record
            names = [record.name, *getattr(record, "aliases", ())]
            selector = {"const": record.name} if len(names) == 1 else {"enum": names}
            properties, required = self.fields(record.config_class)
            branch: dict[str, Any] = {
                "title": f"{record.name} ({provided.plugin} plugin)",
                "type": "object",
                "properties": {key: selector, **common, **properties},
                "required": [key, *required],
                "additionalProperties": False,
            }
            if record.description:
                branch["description"] = record.description
            branches.append(branch)
        return {"description": f"{_first_paragraph(holder.__doc__)} Selected by {key!r}.", "oneOf": branches}

    def rule_options(self) -> dict[str, Any]:
        """``allOf``: for each optimizer (by any spelling of its name), the keys a rule's ``set`` may write."""
        wrapper_options = {o for p in self.registry.wrappers for o in p.record.group_options}
        conditions = []
        for provided in sorted(self.catalogue(OptimizerConfig), key=lambda p: p.record.name.lower()):
            options = declared_options(provided.record)
            if options is None:
                continue
            options |= {o: None for o in wrapper_options if o not in options}
            keys = sorted({*options, *multiplier_names(options)})
            names = _name_spellings(provided.record)
            rule = {"properties": {"set": {"propertyNames": {"enum": keys}}}}
            conditions.append(
                {
                    "if": {"properties": {"optimizer": {"properties": {"name": {"enum": names}}}}},
                    "then": {"properties": {"rules": {"items": rule}}},
                }
            )
        return {"allOf": conditions} if conditions else {}

    def _optimizer(self) -> dict[str, Any]:
        names: list[str] = []
        for provided in sorted(self.catalogue(OptimizerConfig), key=lambda p: p.record.name.lower()):
            names.extend(n for n in _name_spellings(provided.record) if n not in names)
        name_help = attrs.fields(OptimizerConfig).name.metadata["help"]
        kwargs_help = attrs.fields(OptimizerConfig).kwargs.metadata["help"]
        return {
            "description": f"{_first_paragraph(OptimizerConfig.__doc__)} Other keys: {kwargs_help}",
            "type": "object",
            "properties": {"name": {"enum": names, "description": f"{name_help} (matched case-insensitively)"}},
            "required": ["name"],
            "additionalProperties": True,
        }


def _name_spellings(record: OptimizerSpec) -> list[str]:
    """An optimizer's name and aliases, as written and in lower case."""
    names: list[str] = []
    for name in (record.name, *record.aliases):
        names.extend(n for n in (name, name.lower()) if n not in names)
    return names


@attrs.frozen
class FieldHelp:
    """One config field as the docs list it: name, type, default (None when required) and help."""

    name: str
    type: str
    default: str | None
    help: str


def field_help(cls: type | None) -> list[FieldHelp]:
    """The fields of an attrs config class, in order, with their type, default and help text."""
    if cls is None or not attrs.has(cls):
        return []
    hints = _type_hints(cls)
    rows = []
    for field in attrs.fields(cls):
        default = None if field.default is attrs.NOTHING else _default_text(field.default)
        hint = type_text(hints.get(field.name, field.type))
        rows.append(FieldHelp(field.name, hint, default, str(field.metadata.get("help", ""))))
    return rows


def type_text(hint: Any) -> str:
    """A type hint as a reader writes it: ``float``, ``list[float]``, ``str | None``."""
    if isinstance(hint, str):
        return hint
    if isinstance(hint, type) and not typing.get_args(hint):
        return "None" if hint is type(None) else hint.__name__
    return re.sub(r"\b(?:[a-z_][a-z0-9_]*\.)+(?=[A-Za-z_])", "", str(hint)).replace("NoneType", "None")


def _default_text(value: Any) -> str:
    if isinstance(value, attrs.Factory):  # type: ignore[arg-type]
        return repr(value.factory()) if value.factory in (list, dict, tuple) else f"{value.factory.__name__}()"
    return repr(value)


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an unresolvable annotation leaves its field unconstrained
        return {}


def _default(value: Any) -> dict[str, Any]:
    if isinstance(value, attrs.Factory):  # type: ignore[arg-type]
        factory = value.factory
        if factory in (list, dict):
            return {"default": factory()}
        return {}
    if value is None or isinstance(value, str | int | float | bool):
        return {"default": value}
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float | bool) for v in value):
        return {"default": list(value)}
    return {}


def _first_paragraph(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "")
    return " ".join(text.split("\n\n")[0].split())
