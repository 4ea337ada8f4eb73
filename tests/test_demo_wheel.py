"""`rollsafe demo` from an installed wheel: the example it plays ships as package data.

The wheel is built from this checkout with hatchling (a dev dependency: no index is asked)
and unpacked as pip installs a pure-Python wheel; the demo's files are then found through
importlib.resources, from a layout that has no ``examples/`` beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import EXAMPLES, REPO

_PROBE = """
import json, sys
from pathlib import Path
import rollsafe
from rollsafe.demo import _copy_examples, demo_files
from rollsafe.manifest import load_manifest
good, incident = _copy_examples(Path(sys.argv[1]))
env = load_manifest(good).resolve("staging")
print(json.dumps({
    "package": rollsafe.__file__,
    "files": str(demo_files()),
    "services": list(env.services),
    "incident": incident.is_file(),
}))
"""


def _example_files() -> dict[str, bytes]:
    names = ["rollsafe.yaml"] + [
        p.relative_to(EXAMPLES).as_posix()
        for p in (EXAMPLES / "backend").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    return {name: (EXAMPLES / name).read_bytes() for name in names}


def test_demo_finds_its_files_in_an_installed_wheel(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("rollsafe-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name, data in _example_files().items():
            packaged = f"rollsafe/_demo_data/{name}"
            assert packaged in names, f"{name} is not in the wheel"
            assert archive.read(packaged) == data
        archive.extractall(site)

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, str(workspace)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    assert Path(seen["package"]).is_relative_to(site)  # the installed copy, not the checkout
    assert seen["files"] == str(site / "rollsafe" / "_demo_data")
    assert seen["services"] == ["backend"]
    assert seen["incident"] is True
    assert (workspace / "backend" / "app.py").read_bytes() == (
        EXAMPLES / "backend" / "app.py"
    ).read_bytes()
