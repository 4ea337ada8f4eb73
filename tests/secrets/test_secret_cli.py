"""`rollsafe secret ...` on the emulator: values in from stdin or a file, never out."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rollsafe.cli import app
from rollsafe.stores import SecretManagerStore

# random-looking values that must never show up in any output or plain file
CANARY = "Cx9Secret-Canary_q7ZmV2pL8sT4wB6hF1dR3yN5"
CANARY_FILE = "Fz4File-Canary_k8XnW3mQ9vT2pL7sB5hJ1dR6"
_projects = itertools.count(1)

MANIFEST = """
version: 1
project: netra
environments:
  dev:     {{platform: local, strict: false, gcp_project: {project}-dev}}
  staging: {{platform: local, strict: true, gcp_project: {project}-staging}}
services:
  backend:
    command: [python, -m, http.server, "${{PORT}}"]
    health: {{path: /health}}
    secrets:
      SERVICE_SECRET: {{secret: "service-secret-{{env}}", rules: [machine_secret, {{char_classes: [lower, upper, digit, symbol]}}]}}
      JWT_SECRET_KEY: {{secret: "jwt-secret-key-{{env}}", rules: [{{jwt_hmac: HS512}}, {{min_length: 80}}]}}
      PINNED:         {{secret: "service-secret-{{env}}", version: "1"}}
      MODE:           {{secret: "mode-{{env}}", rules: [{{one_of: [fast, safe]}}]}}
"""

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def project() -> str:
    return f"cli-secret-{next(_projects)}"


@pytest.fixture
def manifest(tmp_path: Path, project: str) -> Path:
    path = tmp_path / "rollsafe.yaml"
    path.write_text(MANIFEST.format(project=project))
    return path


@pytest.fixture
def outputs() -> list[str]:
    """Every stdout and stderr of the test's commands, searched for canaries at the end."""
    return []


@pytest.fixture
def run(
    manifest: Path,
    emulator: str,
    emulator_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    outputs: list[str],
) -> Iterator[Run]:
    # the session's emulator serves the manifest (its state dir is ROLLSAFE_HOME)
    monkeypatch.setenv("ROLLSAFE_HOME", str(emulator_dir))
    monkeypatch.delenv("ROLLSAFE_GCP_ENDPOINT", raising=False)

    def invoke(*args: str, input: str | bytes | None = None) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, ["secret", *args, "-f", str(manifest)], input=input)
        outputs.extend([result.stdout, result.stderr])
        return result.exit_code, result.stdout, result.stderr

    yield invoke
    for text in outputs:
        assert CANARY not in text
        assert CANARY_FILE not in text


def _store(emulator: str, project: str, env: str = "dev") -> SecretManagerStore:
    return SecretManagerStore(f"{project}-{env}", endpoint=emulator)


@pytest.mark.parametrize(
    ("stdin", "stored"),
    [
        (CANARY + "\n", CANARY),  # echo: the one newline is dropped
        (CANARY, CANARY),  # printf %s
        (CANARY + "\n\n", CANARY + "\n"),  # exactly one newline is dropped
        (CANARY + "\r\n", CANARY),
    ],
    ids=["echo", "printf", "two-newlines", "crlf"],
)
def test_set_from_stdin(run: Run, emulator: str, project: str, stdin: str, stored: str) -> None:
    code, out, err = run("set", "service-secret-dev", "--env", "dev", input=stdin)
    assert code == 0, err
    assert out.strip() == "1"
    assert "created secret 'service-secret-dev'" in err
    with _store(emulator, project) as store:
        assert store.access("service-secret-dev").reveal() == stored
        assert len(store.list_versions("service-secret-dev")) == 1
    code, out, _ = run("set", "{env}-x", "--env", "dev", "--keep-newline", input="x\n")
    assert code == 0
    with _store(emulator, project) as store:
        assert store.access("dev-x").reveal() == "x\n"


def test_set_from_file_adds_versions_and_labels(
    run: Run, emulator: str, project: str, tmp_path: Path
) -> None:
    path = tmp_path / "value.txt"
    path.write_text(CANARY_FILE + "\n")
    assert run("set", "service-secret-dev", "--env", "dev", input=CANARY)[:2] == (0, "1\n")
    code, out, err = run(
        "set", "service-secret-dev", "--env", "dev", "--from-file", str(path), "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert (data["secret"], data["version"], data["created"]) == ("service-secret-dev", 2, False)
    assert data["warnings"] == [
        "backend.PINNED pins version 1; the new version is used once the manifest says so"
    ]
    with _store(emulator, project) as store:
        assert store.access("service-secret-dev").reveal() == CANARY_FILE
        client = store._connect()
        labels = client.get_secret(name=f"projects/{project}-dev/secrets/service-secret-dev").labels
    assert dict(labels) == {"managed-by": "rollsafe"}


@pytest.mark.parametrize(
    ("args", "stdin", "code", "wording"),
    [
        (("service-secret-dev", "--env", "dev"), "\n", 1, "the value is empty"),
        (("service-secret-dev", "--env", "dev"), "", 1, "the value is empty"),
        (("bad name!", "--env", "dev"), "v", 2, "not a valid secret name"),
        (("service-secret-staging", "--env", "staging"), "password\n", 1, "fails the rules"),
        (("service-secret-dev", "--env", "nope"), "v", 2, "nope"),
        (("s", "--env", "dev", "--from-file", "/nonexistent/v"), None, 2, "cannot read"),
    ],
    ids=["newline-only", "empty", "bad-name", "strict-weak", "unknown-env", "missing-file"],
)
def test_set_refusals(
    run: Run,
    emulator: str,
    project: str,
    args: tuple[str, ...],
    stdin: str | None,
    code: int,
    wording: str,
) -> None:
    got, out, err = run("set", *args, input=stdin)
    assert got == code, out + err
    assert wording in err
    assert out == ""
    with _store(emulator, project, "staging") as store:
        assert store.list_secrets() == []  # a refused value was not written


def test_set_warns_in_non_strict_and_for_unmapped(run: Run, emulator: str, project: str) -> None:
    code, _, err = run("set", "service-secret-dev", "--env", "dev", input="password")
    assert code == 0
    assert "rule failed: backend.SERVICE_SECRET: machine_secret" in err
    code, _, err = run("set", "other-thing", "--env", "dev", input=CANARY)
    assert code == 0
    assert "not referenced by the manifest in environment 'dev'" in err


def test_rotate_passes_every_rule(
    run: Run, emulator: str, project: str, manifest: Path, outputs: list[str]
) -> None:
    code, out, err = run("rotate", "jwt-secret-key-staging", "--env", "staging")
    assert (code, out.strip()) == (0, "1"), err
    code, out, err = run("rotate", "service-secret-{env}", "--env", "staging", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["version"] == 1
    code, out, err = run("rotate", "mode-staging", "--env", "staging")
    assert code == 1
    assert "one_of" in err
    code, out, _ = run("list", "--env", "staging", "--format", "json")
    states = {s["secret"]: s["problems"] for s in json.loads(out)["secrets"]}
    assert states == {
        "service-secret-staging": [],
        "jwt-secret-key-staging": [],
        "mode-staging": ["missing"],
    }
    assert code == 1  # a mapped secret is missing
    assert run("set", "mode-staging", "--env", "staging", input="fast")[0] == 0
    # the strict environment now passes the same rules in `rollsafe check`
    check = CliRunner().invoke(app, ["check", "--env", "staging", "-f", str(manifest)])
    outputs.extend([check.stdout, check.stderr])
    assert check.exit_code == 0, check.stdout + check.stderr
    with _store(emulator, project, "staging") as store:
        jwt = store.access("jwt-secret-key-staging").reveal()
        values = [store.access(name).reveal() for name in store.list_secrets()]
    assert len(jwt) >= 80  # min_length beats the 64 bytes of HS512
    for value in values:
        if value != "fast":
            assert all(value not in text for text in outputs)


def test_rotate_refuses_an_unmapped_secret(run: Run) -> None:
    code, _, err = run("rotate", "not-in-manifest", "--env", "dev")
    assert code == 2
    assert "no rules to generate a value for" in err


def test_versions_disable_enable_destroy(run: Run, emulator: str, project: str) -> None:
    for value in (CANARY, CANARY_FILE, CANARY + "3"):
        assert run("set", "service-secret-dev", "--env", "dev", input=value)[0] == 0
    code, out, _ = run("versions", "service-secret-dev", "--env", "dev")
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["3", "ENABLED"],
        ["2", "ENABLED"],
        ["1", "ENABLED"],
    ]
    code, out, err = run("disable", "service-secret-dev", "3", "--env", "dev")
    assert code == 0
    assert out.strip() == "version 3 of 'service-secret-dev' is disabled"
    assert "backend.SERVICE_SECRET reads version 3 (latest)" in err
    code, _, err = run("disable", "service-secret-dev", "1", "--env", "dev")
    assert "backend.PINNED reads version 1" in err
    assert run("enable", "service-secret-dev", "3", "--env", "dev")[0] == 0
    # destroy asks; without a terminal and without --yes it refuses
    code, _, err = run("destroy", "service-secret-dev", "2", "--env", "dev", input="y\n")
    assert code == 2
    assert "--yes" in err
    code, out, _ = run("destroy", "service-secret-dev", "2", "--env", "dev", "--yes")
    assert code == 0
    code, _, err = run("enable", "service-secret-dev", "2", "--env", "dev")
    assert code == 1
    assert "destroyed" in err
    code, out, _ = run("versions", "service-secret-dev", "--env", "dev", "--format", "json")
    assert [(v["version"], v["state"]) for v in json.loads(out)] == [
        (3, "ENABLED"),
        (2, "DESTROYED"),
        (1, "DISABLED"),
    ]
    code, _, err = run("disable", "service-secret-dev", "9", "--env", "dev")
    assert code == 2
    assert "no version 9" in err


def test_list_on_the_emulator(run: Run, emulator: str, project: str) -> None:
    run("set", "service-secret-dev", "--env", "dev", input=CANARY)
    run("set", "jwt-secret-key-dev", "--env", "dev", input=CANARY_FILE)
    run("set", "mode-dev", "--env", "dev", input="fast")
    run("set", "leftover", "--env", "dev", input=CANARY)
    code, out, err = run("list", "--env", "dev")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].split() == ["SECRET", "LATEST", "STATE", "VERSIONS", "USED", "BY", "PROBLEMS"]
    assert lines[2].split() == [
        "service-secret-dev",
        "1",
        "ENABLED",
        "1/1",
        "enabled",
        "backend.SERVICE_SECRET,backend.PINNED@1",
        "-",
    ]
    assert lines[-1] == "not referenced by the manifest: leftover"
    run("disable", "mode-dev", "1", "--env", "dev")
    code, out, _ = run("list", "--env", "dev", "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert data["unreferenced"] == ["leftover"]
    assert [s["problems"] for s in data["secrets"]] == [[], [], ["latest version is disabled"]]


def test_no_value_in_the_state_dir(run: Run, emulator_dir: Path, tmp_path: Path) -> None:
    run("set", "service-secret-dev", "--env", "dev", input=CANARY)
    path = tmp_path / "v"
    path.write_text(CANARY_FILE)
    run("set", "jwt-secret-key-dev", "--env", "dev", "--from-file", str(path))
    run("rotate", "service-secret-dev", "--env", "dev")
    for plain in [*emulator_dir.rglob("*"), *(tmp_path / ".rollsafe").rglob("*")]:
        if plain.is_file():
            data = plain.read_bytes()
            assert CANARY.encode() not in data, plain
            assert CANARY_FILE.encode() not in data, plain


@pytest.mark.parametrize(("answer", "code"), [("n", 2), ("y", 0)], ids=["no", "yes"])
def test_destroy_asks_at_a_terminal(
    run: Run,
    manifest: Path,
    emulator: str,
    emulator_dir: Path,
    project: str,
    answer: str,
    code: int,
) -> None:
    run("set", "service-secret-dev", "--env", "dev", input=CANARY)
    primary, secondary = os.openpty()
    env = {**os.environ, "ROLLSAFE_HOME": str(emulator_dir)}
    args = ["secret", "destroy", "service-secret-dev", "1", "--env", "dev", "-f", str(manifest)]
    try:
        os.write(primary, f"{answer}\n".encode())
        done = subprocess.run(
            [sys.executable, "-c", "from rollsafe.cli import main; main()", *args],
            stdin=secondary,
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert done.returncode == code, done.stderr
    assert b"Destroy version 1 of 'service-secret-dev' for good?" in done.stderr
    with _store(emulator, project) as store:
        (version,) = store.list_versions("service-secret-dev")
    assert version.state.value == ("DESTROYED" if answer == "y" else "ENABLED")
