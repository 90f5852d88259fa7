"""Registers the benchmark plugin in a checkout that is not installed (installing registers it)."""

from __future__ import annotations

import pytest


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    # a no-op where the pytest11 entry point or `-p benchmarks.plugin` registered it first
    pluginmanager.import_plugin("benchmarks.plugin")
