"""Importing the guard stays cheap: nothing from the cloud, the CLI or the emulator."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.startup.conftest import base_env

_PROBE = """
import json, sys
{statement}
print(json.dumps(sorted(sys.modules)))
"""
FORBIDDEN_ROOTS = {"google", "typer", "rich", "pydantic", "yaml", "starlette", "fastapi", "uvicorn"}
FORBIDDEN = ("rollsafe.cli", "rollsafe.emulator", "rollsafe.manifest", "rollsafe.check")


@pytest.mark.parametrize(
    "statement",
    ["import rollsafe.startup", "import rollsafe; rollsafe.StartupGuard; rollsafe.jwt_secret"],
    ids=["package", "lazy-top-level"],
)
def test_import_pulls_in_nothing_heavy(statement: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(statement=statement)],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules = json.loads(done.stdout)
    roots = {m.split(".")[0] for m in modules}
    assert not roots & FORBIDDEN_ROOTS
    assert not [m for m in modules if m.startswith(FORBIDDEN)]
