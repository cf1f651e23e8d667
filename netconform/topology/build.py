"""Turn parsed YAML into the model's dataclasses, collecting every problem.

The conversion is driven by the dataclasses' type hints and field metadata
(the same description ``schema.py`` publishes), so the loader and the JSON
Schema cannot drift apart.  Problems name the key path and what is allowed;
the caller adds the file name.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
import types
import typing
from dataclasses import dataclass

# A problem before the file name is known: (key path, message).
Problem = tuple[str, str]

_IP_TYPES = {
    ipaddress.IPv4Network: ("a CIDR network such as 172.30.1.0/24 (no host bits set)",
                            lambda v: ipaddress.IPv4Network(v, strict=True)),
    ipaddress.IPv4Interface: ("an address with prefix such as 198.18.0.1/24",
                              lambda v: _interface(v)),
    ipaddress.IPv4Address: ("an IPv4 address such as 198.18.0.254", ipaddress.IPv4Address),
}


@functools.cache
def _hints(cls: type) -> dict[str, object]:
    """A model class's resolved type hints: resolving them is slow, and a large topology
    builds thousands of containers of one class."""
    return typing.get_type_hints(cls)


def _interface(value: str) -> ipaddress.IPv4Interface:
    if "/" not in str(value):
        raise ValueError("no prefix length")
    return ipaddress.IPv4Interface(value)


@dataclass
class Builder:
    """Builds one dataclass tree; ``problems`` collects what was wrong."""

    problems: list[Problem] = dataclasses.field(default_factory=list)

    def fail(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def build(self, cls: type, data: object, path: str, name: str | None = None):
        """Build ``cls`` from a mapping; returns None if it could not be built."""
        if not isinstance(data, dict):
            self.fail(path or "(top level)", f"must be a mapping, got {_kind(data)}")
            return None
        hints = _hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if not _internal(f)}
        settable = [n for n in fields if n != "name" or name is None]
        for key in data:
            if key not in settable:
                self.fail(_join(path, str(key)),
                          f"unknown key; allowed: {', '.join(settable)}")
        values: dict[str, object] = {}
        if name is not None and "name" in fields:
            values["name"] = name
        ok = True
        for fname in settable:
            f = fields[fname]
            if fname not in data:
                if f.default is dataclasses.MISSING:
                    self.fail(_join(path, fname), "is required")
                    ok = False
                continue
            value = self.convert(hints[fname], data[fname], _join(path, fname), f.metadata)
            if value is _BAD:
                ok = False
            else:
                values[fname] = value
        return cls(**values) if ok else None

    def convert(self, hint, value, path: str, metadata) -> object:
        schema = metadata.get("schema", {}) if metadata else {}
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            (inner,) = [a for a in args if a is not type(None)]
            return self.convert(inner, value, path, metadata)
        if origin is typing.Literal:
            if value not in args:
                self.fail(path, f"{value!r} is not allowed; allowed: {', '.join(args)}")
                return _BAD
            return value
        if origin is tuple:
            return self._sequence(args[0], value, path, metadata, keyed=schema.get("keyed"))
        if dataclasses.is_dataclass(hint):
            if hasattr(hint, "parse"):
                try:
                    return hint.parse(value)
                except ValueError as err:
                    self.fail(path, str(err))
                    return _BAD
            built = self.build(hint, value, path)
            return _BAD if built is None else built
        if hint in _IP_TYPES:
            allowed, parse = _IP_TYPES[hint]
            try:
                return parse(str(value))
            except ValueError as err:
                self.fail(path, f"{value!r} is not valid ({err}); allowed: {allowed}")
                return _BAD
        return self._scalar(hint, value, path, schema)

    def _sequence(self, item, value, path, metadata, keyed):
        if keyed:
            if not isinstance(value, dict):
                self.fail(path, f"must be a mapping of name to settings, got {_kind(value)}")
                return _BAD
            built = [self.build(item, settings or {}, _join(path, str(key)), name=str(key))
                     for key, settings in value.items()]
            return _BAD if None in built else tuple(built)
        if not isinstance(value, list):
            self.fail(path, f"must be a list, got {_kind(value)}")
            return _BAD
        built = [self.convert(item, v, f"{path}[{i}]", metadata) for i, v in enumerate(value)]
        return _BAD if _BAD in built else tuple(built)

    def _scalar(self, hint, value, path, schema):
        # bool is an int in Python; keep YAML's true/false out of port numbers.
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            self.fail(path, f"must be {hint.__name__}, got {_kind(value)}")
            return _BAD
        if hint is int:
            low, high = schema.get("minimum"), schema.get("maximum")
            if (low is not None and value < low) or (high is not None and value > high):
                self.fail(path, f"{value} is out of range; allowed: {low}-{high}")
                return _BAD
        if hint is str and "pattern" in schema and not re.match(schema["pattern"], value):
            self.fail(path, f"{value!r} does not match {schema['pattern']}")
            return _BAD
        return value


class _Bad:
    def __repr__(self) -> str:
        return "<invalid>"


_BAD = _Bad()


def _internal(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("schema", {}).get("internal"))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "nothing"}.get(
        type(value), type(value).__name__)
