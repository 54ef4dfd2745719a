"""Test order: the long end-to-end tests (marked `slow`) are collected first, because
pytest-xdist hands tests to its processes in collection order, and one long test started
last would run alone at the end while the other process waits. `make test` runs them with
--dist worksteal: the first process starts on them, and the other, once through its half
of the suite, takes the ones still waiting from the end of its queue."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: slow first
