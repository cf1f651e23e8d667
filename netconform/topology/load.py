"""Find, read and validate topology files; every problem names file and key.

Nothing is created before a topology has loaded cleanly, so bad input never
leaves a half-built lab behind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from ..shipped import shipped

from .build import Builder, Problem
from .model import Topology
from .validate import validate

# Far above any real topology (250 containers take about 20 KB; this is some 7,000, loaded in
# about a second); a larger file is refused before it is parsed, so a runaway generator or a
# wrong file cannot stall a run.
MAX_BYTES = 2**18
# The topologies shipped with the product: <repo>/topologies (inside the package once installed).
BUILTIN_DIR = shipped("topologies")


@dataclass(frozen=True)
class TopologyError(Exception):
    """One or more problems in one topology file."""

    file: str
    problems: tuple[Problem, ...]

    def __str__(self) -> str:
        return "\n".join(f"{self.file}: {key}: {message}" for key, message in self.problems)


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML keeps the last of two equal keys; a topology must not say a name twice.

    libyaml's parser where PyYAML has it: the pure-Python one needs seconds
    for a file near ``MAX_BYTES``."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.MarkedYAMLError(
                    "while reading a mapping", node.start_mark,
                    f"duplicate key {key!r}; each name may appear once", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def available(directory: Path = BUILTIN_DIR) -> list[str]:
    """Names of the shipped topologies, sorted."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


def resolve(spec: str, directory: Path = BUILTIN_DIR) -> list[Path]:
    """``--topology`` value to files: names, paths, comma lists, or ``all``."""
    paths = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item == "all":
            paths += [directory / f"{name}.yaml" for name in available(directory)]
        elif "/" in item or item.endswith((".yaml", ".yml")):
            paths.append(Path(item))
        else:
            path = directory / f"{item}.yaml"
            if not path.exists():
                raise TopologyError("--topology", (
                    (item, f"no such topology; allowed: {', '.join(available(directory))}, all, "
                           "or a path to a .yaml file"),))
            paths.append(path)
    return list(dict.fromkeys(paths))


def read_yaml(path: Path) -> object:
    """A YAML file's data (no key twice); TopologyError naming the file if it is not readable YAML."""
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_BYTES:
            raise TopologyError(name, (("(file)", f"is {size} bytes; allowed: at most {MAX_BYTES} "
                                                  f"({MAX_BYTES // 2**10} KiB)"),))
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as err:
        raise TopologyError(name, (("(file)", f"cannot be read: {err.strerror}"),)) from None
    except UnicodeDecodeError as err:
        raise TopologyError(name, (("(file)", f"is not UTF-8 text (byte {err.object[err.start]:#04x} at "
                                              f"offset {err.start}); allowed: a YAML text file"),)) from None
    if "\x00" in text:
        raise TopologyError(name, (("(file)", "holds NUL bytes; allowed: a YAML text file"),))
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise TopologyError(name, ((where, f"is not valid YAML: {getattr(err, 'problem', err)}"),)) from None


def load(path: Path) -> Topology:
    """Read and validate one file; raises TopologyError with every problem found."""
    return parse(read_yaml(path), str(path))


def parse(data: object, name: str) -> Topology:
    """Build and validate a topology from parsed data; ``name`` is what problems are told against."""
    builder = Builder()
    topo = builder.build(Topology, data, "")
    if builder.problems:
        raise TopologyError(name, tuple(builder.problems))
    problems = validate(topo)
    if problems:
        raise TopologyError(name, tuple(problems))
    return replace(topo, source=name)
