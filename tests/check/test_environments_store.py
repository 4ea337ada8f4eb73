"""`differs_from` across environments on the emulator, and `store: secretmanager` on cloudrun.

Both read Secret Manager through Google's client: the emulator of the state directory for
``platform: local``, ``ROLLSAFE_GCP_ENDPOINT`` for ``platform: cloudrun``. Values are compared
by digest and never printed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rollsafe._environments import GCP_ENDPOINT_ENV
from rollsafe.cli import app
from rollsafe.emulator.server import RUN_FILE
from rollsafe.state import STATE_DIR_NAME
from rollsafe.stores.secretmanager import SecretManagerStore
from tests.conftest import CANARY_STRONG


@pytest.fixture
def sm(emulator: str, project: str) -> Iterator[SecretManagerStore]:
    with SecretManagerStore(project, endpoint=emulator) as store:
        yield store


def _check(manifest: Path, env: str, *extra: str) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(
        app, ["check", "-f", str(manifest), "--env", env, "--format", "json", *extra]
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, json.loads(result.stdout), result.stdout + result.stderr


@pytest.mark.parametrize("same", [False, True], ids=["differing", "equal"])
def test_differs_from_between_two_local_environments(
    same: bool,
    tmp_path: Path,
    project: str,
    emulator_dir: Path,
    sm: SecretManagerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROLLSAFE_HOME", raising=False)
    monkeypatch.delenv(GCP_ENDPOINT_ENV, raising=False)
    # the state directory beside the manifest names the session's emulator
    (tmp_path / STATE_DIR_NAME).mkdir()
    shutil.copy2(emulator_dir / RUN_FILE, tmp_path / STATE_DIR_NAME / RUN_FILE)
    manifest = tmp_path / "rollsafe.yaml"
    manifest.write_text(
        f"""version: 1
project: p
environments:
  prod: {{platform: local, gcp_project: {project}}}
  qa: {{platform: local, gcp_project: {project}, strict: true}}
services:
  api:
    secrets:
      K: {{secret: "k-{{env}}", rules: [{{differs_from: prod}}]}}
""",
        encoding="utf-8",
    )
    sm.add_version("k-prod", CANARY_STRONG)
    sm.add_version("k-qa", CANARY_STRONG if same else CANARY_STRONG[::-1])

    code, report, output = _check(manifest, "qa")

    messages = [f["message"] for f in report["findings"]]  # type: ignore[union-attr]
    assert messages == (["has the same value as in prod"] if same else [])
    assert code == (1 if same else 0)
    assert CANARY_STRONG not in output
    assert CANARY_STRONG[::-1] not in output


@pytest.mark.parametrize("how", ["manifest", "flag"])
def test_bare_secretmanager_is_the_environments_project_on_cloudrun(
    how: str,
    tmp_path: Path,
    project: str,
    emulator: str,
    sm: SecretManagerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROLLSAFE_HOME", raising=False)
    monkeypatch.setenv(GCP_ENDPOINT_ENV, emulator)
    store = ", store: secretmanager" if how == "manifest" else ""
    manifest = tmp_path / "rollsafe.yaml"
    manifest.write_text(
        f"""version: 1
project: p
environments:
  prod: {{platform: cloudrun, gcp_project: {project}, strict: true{store}}}
services:
  api:
    secrets:
      STRONG: {{secret: "strong-{{env}}", rules: [machine_secret]}}
      WEAK: {{secret: "weak-{{env}}", rules: [machine_secret]}}
""",
        encoding="utf-8",
    )
    sm.add_version("strong-prod", CANARY_STRONG)
    sm.add_version("weak-prod", "password123")
    extra = ("--store", "secretmanager") if how == "flag" else ()

    code, report, output = _check(manifest, "prod", *extra)

    findings = report["findings"]
    assert [f["key"] for f in findings] == ["WEAK"]  # type: ignore[index,union-attr]
    assert code == 1
    assert "password123" not in output
    assert not (tmp_path / STATE_DIR_NAME).exists()  # no emulator was started
