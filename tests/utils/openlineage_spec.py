"""Validation of OpenLineage events against the classes openlineage-python generates from the spec's JSON Schemas.

`openlineage.client.generated` is the spec as attrs classes, each facet naming its schema by `_get_schema()`, so
the tests need no copy of the schemas. An event dict is checked recursively: each object's class (the event and every
facet found by its schema URL), no key the class lacks, every field without a default, the annotated types, and the
class's own field validators (run ids are UUIDs, times ISO 8601).
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
import types
import typing
from functools import cache
from typing import Any

import attr
from openlineage.client import generated
from openlineage.client.generated.base import BaseEvent, BaseFacet

# The base facet fields every facet may carry (`_deleted` only dataset and job facets declare, but the spec allows it).
FACET_KEYS = {"_producer", "_schemaURL", "_deleted"}


@cache
def classes_by_schema() -> dict[str, type]:
    """Each generated class that names its own schema, by that URL (the `schemaURL`/`_schemaURL` events carry)."""
    found: dict[str, type] = {}
    for module in pkgutil.iter_modules(generated.__path__):
        for cls in vars(importlib.import_module(f"{generated.__name__}.{module.name}")).values():
            if isinstance(cls, type) and attr.has(cls) and "_get_schema" in vars(cls):
                found[cls._get_schema()] = cls
    return found


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)  # the modules use `from __future__ import annotations`: resolve the strings


def _type_errors(value: Any, hint: Any, path: str) -> list[str]:
    """Every way `value` (decoded JSON) is not of the annotated type `hint`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return []
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        options = [option for option in args if option is not type(None)]
        if len(options) == 1:  # an Optional field: report the one type's own errors
            return _type_errors(value, options[0], path)
        fits = any(not _type_errors(value, option, path) for option in options)
        return [] if fits else [f"{path}: {value!r} is none of {hint}"]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {args}"]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return [] if value in {m.value for m in hint} else [f"{path}: {value!r} is not of type {hint.__name__}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [e for i, item in enumerate(value) for e in _type_errors(item, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        return [
            e
            for key, item in value.items()
            for e in _type_errors(key, args[0], f"{path} key") + _type_errors(item, args[1], f"{path}.{key}")
        ]
    if attr.has(hint):
        return _object_errors(value, hint, path)
    # JSON numbers: an int is a valid float; but Python's bool is an int, and a flag is no number
    allowed = (int, float) if hint is float else (hint,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and hint is not bool):
        return [f"{path}: {value!r} is not of type {hint.__name__}"]
    return []


def _object_errors(value: Any, cls: type, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: {value!r} is not an object ({cls.__name__})"]
    if issubclass(cls, BaseEvent | BaseFacet):
        # Fields declare only the kind (RunEvent, RunFacet, InputDatasetFacet ...): the schema URL names the class.
        url = value.get("_schemaURL" if issubclass(cls, BaseFacet) else "schemaURL")
        named = classes_by_schema().get(url)
        if named is None or not issubclass(named, cls):
            return [f"{path}: openlineage-python has no {cls.__name__} with the schema {url}"]
        cls = named
    fields = {field.name: field for field in attr.fields(cls)}
    errors = [f"{path}: {cls.__name__} has no field {key}" for key in value.keys() - fields.keys() - FACET_KEYS]
    required = [name for name, field in fields.items() if field.default is attr.NOTHING]
    errors += [f"{path}: {cls.__name__} lacks {name}" for name in required if name not in value]
    for name in value.keys() & fields.keys():
        field_errors = _type_errors(value[name], _hints(cls)[name], f"{path}.{name}")
        validator = fields[name].validator
        if not field_errors and validator is not None and value[name] is not None:
            try:
                validator(None, fields[name], value[name])  # the generated validators never read the instance
            except ValueError as error:
                field_errors.append(f"{path}.{name}: {error}")
        errors += field_errors
    return errors


def spec_errors(event: dict[str, Any]) -> list[str]:
    """Every way `event` breaks the OpenLineage classes of openlineage-python; a facet of no shipped class too."""
    return _object_errors(event, BaseEvent, "event")
