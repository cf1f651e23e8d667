"""Topology files: the malformed corpus, the shipped files, the published schema."""

from pathlib import Path

import pytest

from netconform.topology import TopologyError, available, load
from netconform.topology.load import BUILTIN_DIR
from netconform.topology.schema import schema, schema_text

MALFORMED = sorted((Path(__file__).parent / "malformed").glob("*.yaml"))


def test_corpus_is_large_enough():
    assert len(MALFORMED) >= 15


@pytest.mark.parametrize("path", MALFORMED, ids=[p.stem for p in MALFORMED])
def test_malformed_file_gives_its_message(path):
    """Each file's first line says the message it must give; file and key come first."""
    wanted = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(TopologyError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert wanted in message


@pytest.mark.parametrize("name", available())
def test_shipped_topology_loads(name):
    topo = load(BUILTIN_DIR / f"{name}.yaml")
    assert topo.name == name, "a topology's name must match its file name"


def test_published_schema_matches_model():
    published = (BUILTIN_DIR / "schema.json").read_text()
    assert published == schema_text(), "regenerate: netconform schema > topologies/schema.json"


def test_schema_closes_every_object():
    """Unknown keys are errors for editors too, at every level."""
    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node["additionalProperties"] is False
            for value in node.values():
                walk(value)
    walk(schema())


def test_every_problem_is_reported_at_once(tmp_path):
    bad = tmp_path / "two.yaml"
    bad.write_text("name: t\ndescription: d\nhosts: {h1: {icc: maybe}}\ncontainers: {c1: {mode: x}}\n")
    with pytest.raises(TopologyError) as caught:
        load(bad)
    assert len(caught.value.problems) == 3  # icc type, mode value, missing host


def test_readme_example_is_valid(tmp_path):
    """The format example in the README loads as it stands."""
    readme = (BUILTIN_DIR.parent / "README.md").read_text()
    example = readme.split("## Topology files")[1].split("```yaml\n")[1].split("```")[0]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    topo = load(path)
    assert {c.mode for c in topo.containers} == {"bridge", "network", "container"}


def test_binary_file_is_refused_naming_it(tmp_path):
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(b"name: x\n\xff\xfe\x00\x01")
    with pytest.raises(TopologyError) as caught:
        load(garbage)
    assert str(caught.value) == (f"{garbage}: (file): is not UTF-8 text (byte 0xff at offset 8); "
                                 "allowed: a YAML text file")


def test_huge_file_is_refused_before_it_is_parsed(tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: huge\ndescription: d\n" + "# padding\n" * 500_000)
    with pytest.raises(TopologyError) as caught:
        load(huge)
    assert str(caught.value) == (f"{huge}: (file): is {huge.stat().st_size} bytes; allowed: at most "
                                 "262144 (256 KiB)")
