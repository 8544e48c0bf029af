# The fixtures and hooks live in a plugin, so that tests get them by name and helpers are
# imported from backend.tests.support (never from a conftest).
pytest_plugins = ["backend.tests.support.plugin"]
