"""A plugin module that fails while being imported (bad-input tests)."""

raise RuntimeError("this plugin is broken at import")
