"""Where the shipped suites, fixtures and topologies are.

The product owner fixed the layout: ``suites/``, ``fixtures/`` and
``topologies/`` at the top of the repository.  A wheel carries them inside
the package (``netconform/suites`` and so on, see ``pyproject.toml``), so an
installed netconform finds them there, and a checkout (or an editable
install) finds them beside the package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def shipped(name: str) -> Path:
    """The shipped directory ``name`` (suites, fixtures, topologies)."""
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name


# The suites' fixtures, as pytest plugins: the repository's conftest.py and `netconform run` load them.
FIXTURE_PLUGINS = ("netconform.fixtures.matrix", "netconform.fixtures.bench")
