"""Root conftest: the suites' shared fixtures (the plugin itself loads via pytest11)."""

pytest_plugins = ["fixtures.matrix", "fixtures.bench"]
