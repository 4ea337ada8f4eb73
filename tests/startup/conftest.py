"""Real processes for the start-up guard: uvicorn on loopback, a free port, always killed.

Nothing here asserts on time: the deadlines only stop a hung test.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rollsafe.manifest import load_manifest
from rollsafe.startup import contract_from_service
from tests.conftest import CANARY_JWT, CANARY_STRONG, EXAMPLES

BACKEND = EXAMPLES / "backend"
EXAMPLE_MANIFEST = EXAMPLES / "rollsafe.yaml"
WEAK_SECRET = "weak-canary-service-secret-2024"
SECRET_KEY_VALUE = CANARY_STRONG + "k"
CANARIES = (WEAK_SECRET, CANARY_STRONG, CANARY_JWT, SECRET_KEY_VALUE)
DEADLINE = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    """The test process's environment without any rollsafe or example variable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ROLLSAFE_", "JWT_SECRET", "BACKEND_"))
        and k not in ("SERVICE_SECRET", "SECRET_KEY", "FRONTEND_URL", "OAUTH_REDIRECT_URI")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def staging_values() -> dict[str, str]:
    """Good values for the example backend in staging (strict)."""
    return {
        "ENVIRONMENT": "staging",
        "FRONTEND_URL": "https://app.staging.example.com",
        "OAUTH_REDIRECT_URI": "https://app.staging.example.com/auth/callback",
        "SERVICE_SECRET": CANARY_STRONG,
        "JWT_SECRET_KEY": CANARY_JWT,
        "SECRET_KEY": SECRET_KEY_VALUE,
    }


def manifest_vars(env: str = "staging") -> dict[str, str]:
    return {
        "ROLLSAFE_MANIFEST": str(EXAMPLE_MANIFEST),
        "ROLLSAFE_SERVICE": "backend",
        "ROLLSAFE_ENV": env,
    }


def contract_vars(env: str = "staging") -> dict[str, str]:
    resolved = load_manifest(EXAMPLE_MANIFEST).resolve(env)
    return {"ROLLSAFE_CONTRACT": contract_from_service(resolved, "backend").to_json()}


RULE_SOURCES = {"manifest": manifest_vars, "contract": contract_vars}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    """A uvicorn process and where its output goes."""

    process: subprocess.Popen[bytes]
    port: int
    out: Path
    err: Path

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=dict(headers or {}))
            response = conn.getresponse()
            return Answer(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    def wait_serving(self) -> None:
        """Poll until the server answers on /ready (any status) or the process ends."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}:\n{self.output()}")
            try:
                self.get("/ready")
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"server did not answer:\n{self.output()}")

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")


def uvicorn_command(module: str = "app:app") -> list[str]:
    return [sys.executable, "-m", "uvicorn", module, "--host", "127.0.0.1"]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """serve(env, cwd=BACKEND, module="app:app") -> a running Server; killed afterwards."""
    started: list[Server] = []

    def start(env: Mapping[str, str], cwd: Path = BACKEND, module: str = "app:app") -> Server:
        port = free_port()
        n = len(started)
        out, err = tmp_path / f"server{n}.out", tmp_path / f"server{n}.err"
        with out.open("wb") as out_file, err.open("wb") as err_file:
            process = subprocess.Popen(
                [*uvicorn_command(module), "--port", str(port)],
                cwd=cwd,
                env={**base_env(), **env},
                stdout=out_file,
                stderr=err_file,
                stdin=subprocess.DEVNULL,
            )
        server = Server(process, port, out, err)
        started.append(server)
        server.wait_serving()
        return server

    try:
        yield start
    finally:
        for server in started:
            if server.process.poll() is None:
                server.process.terminate()
                try:
                    server.process.wait(10)
                except subprocess.TimeoutExpired:
                    server.process.kill()
                    server.process.wait()


def run_to_exit(
    env: Mapping[str, str], cwd: Path = BACKEND, module: str = "app:app"
) -> tuple[int, str, str]:
    """Run uvicorn until it exits by itself (a failed start-up); returns code, out, err."""
    process = subprocess.run(
        [*uvicorn_command(module), "--port", str(free_port())],
        cwd=cwd,
        env={**base_env(), **env},
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=DEADLINE,
        check=False,
    )
    return process.returncode, process.stdout.decode(), process.stderr.decode()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` that is a JSON object."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                found.append(data)
    return found


def assert_no_canary(*texts: str) -> None:
    joined = "\n".join(texts)
    for canary in CANARIES:
        assert canary not in joined, "a secret value leaked into the output"
