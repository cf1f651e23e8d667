"""Root conftest: the suites' shared fixtures (the plugin itself loads via pytest11).

The fixtures are imported by their installed name, ``netconform.fixtures``
(pyproject.toml maps it to ``fixtures/``), the name ``netconform run`` uses too.
"""

from netconform.shipped import FIXTURE_PLUGINS

pytest_plugins = list(FIXTURE_PLUGINS)
