"""Fixtures of the drift tests: a fresh project, and one project with every kind of drift."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.drift.scenario import Drifted, build
from tests.drift.world import World


@pytest.fixture
def world(emulator: str) -> Iterator[World]:
    """A fresh project of its own on the session's emulator."""
    made = World(emulator)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="package")
def drifted(emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drifted]:
    """Every kind of drift, made once for the package (see scenario.py)."""
    made = World(emulator)
    try:
        yield build(made, tmp_path_factory.mktemp("drifted"))
    finally:
        made.close()
