"""JSON Schema of topology files, generated from the model's dataclasses.

``topologies/schema.json`` is this function's output; a test keeps the two
equal, so editors check files against exactly what the loader accepts.
Cross-field rules (references, overlaps) live in ``validate.py`` only.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing

from ..schemes import SCHEMES
from .build import _IP_TYPES
from .model import Topology

SCHEMA_ID = "https://netconform.invalid/topology.schema.json"


def schema() -> dict:
    root = _object(Topology)
    root["properties"]["scheme"]["enum"] = list(SCHEMES)  # registered schemes, not a fixed list
    root.update({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
                 "title": "netconform topology"})
    return root


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


def _object(cls) -> dict:
    hints = typing.get_type_hints(cls)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        extra = dict(f.metadata.get("schema", {}))
        # Keyed items take their name from the mapping key; internal fields are not input.
        if extra.pop("internal", False) or (f.name == "name" and cls is not Topology):
            continue
        keyed = extra.pop("keyed", False)
        prop = _type(hints[f.name], extra, keyed)
        if f.metadata.get("doc"):
            prop["description"] = f.metadata["doc"]
        props[f.name] = prop
        if f.default is dataclasses.MISSING:
            required.append(f.name)
    out = {"type": "object", "additionalProperties": False, "properties": props}
    if cls.__doc__:
        out["description"] = cls.__doc__.strip().splitlines()[0]
    if required:
        out["required"] = required
    return out


def _type(hint, extra: dict, keyed: bool = False) -> dict:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _type(inner, extra, keyed)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is tuple:
        if keyed:
            return {"type": "object", "additionalProperties": _object(args[0]),
                    **{k: v for k, v in extra.items() if k == "minProperties"}}
        return {"type": "array", "items": _type(args[0], extra)}
    if dataclasses.is_dataclass(hint):
        if hasattr(hint, "PATTERN"):
            return {"type": "string", "pattern": hint.PATTERN}
        return _object(hint)
    if hint in _IP_TYPES:
        return {"type": "string", "format": extra.get("format", "string")}
    base = {str: "string", int: "integer", bool: "boolean"}[hint]
    return {"type": base, **{k: v for k, v in extra.items() if k in ("pattern", "minimum", "maximum")}}
