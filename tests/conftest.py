"""Test order: the long end-to-end tests (marked `slow`) are collected first, because
pytest-xdist hands tests to its processes in collection order, and one long test started
last would run alone at the end while the other process waits."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: slow first
