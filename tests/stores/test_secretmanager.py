"""The Secret Manager adapter beyond the contract: failing closed, specs, lazy imports."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rollsafe.errors import StoreUnavailableError, UsageError
from rollsafe.stores import SecretNotFoundError, VersionNotFoundError, open_store
from rollsafe.stores.secretmanager import SecretManagerStore

CANARY = "Ad4Canary-x8Kq2Wm5Zr9Tb3Lp7Nv1Hs6"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there any more


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.list_secrets(),
        lambda s: s.list_versions("a"),
        lambda s: s.access("a"),
        lambda s: s.add_version("a", CANARY),
    ],
    ids=["list_secrets", "list_versions", "access", "add_version"],
)
def test_unreachable_store_fails_closed_at_once(call: object) -> None:
    store = SecretManagerStore("p", endpoint=f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with store, pytest.raises(StoreUnavailableError, match="cannot be reached") as info:
        call(store)  # type: ignore[operator]
    assert time.monotonic() - started < 3
    assert info.value.exit_code == 1
    assert isinstance(info.value.__cause__, OSError)  # chained from requests' ConnectionError
    assert CANARY not in str(info.value)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_silent_store_times_out(silent_port: int) -> None:
    store = SecretManagerStore("p", endpoint=f"http://127.0.0.1:{silent_port}", timeout=1.0)
    started = time.monotonic()
    with store, pytest.raises(StoreUnavailableError):
        store.access("a")
    assert time.monotonic() - started < 5


class _CorruptingServer(BaseHTTPRequestHandler):
    """Answers every access with a payload whose CRC32C does not match."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "name": "projects/p/secrets/a/versions/1",
                "payload": {"data": base64.b64encode(CANARY.encode()).decode(), "dataCrc32c": "1"},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_payload_failing_its_crc32c_is_refused() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CorruptingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with (
            SecretManagerStore("p", endpoint=f"http://127.0.0.1:{server.server_port}") as store,
            pytest.raises(StoreUnavailableError, match="CRC32C") as info,
        ):
            store.access("a")
        assert CANARY not in str(info.value)
    finally:
        server.shutdown()
        server.server_close()


def test_names_that_cannot_exist_are_refused_without_a_call() -> None:
    # a closed port: reaching the network would raise StoreUnavailableError instead
    with SecretManagerStore("p", endpoint=f"http://127.0.0.1:{_closed_port()}") as store:
        with pytest.raises(SecretNotFoundError) as missing:
            store.access("has/slash")
        assert missing.value.hint is not None
        assert "1-255 letters" in missing.value.hint
        with pytest.raises(VersionNotFoundError, match=r"no version '\.\./1'"):
            store.access("ok", "../1")


def test_open_store_spec(emulator: str, project: str) -> None:
    seeded = SecretManagerStore(project, endpoint=emulator)
    seeded.add_version("from-spec", CANARY)
    seeded.close()
    with open_store(f"secretmanager:{project}@{emulator}") as store:
        assert isinstance(store, SecretManagerStore)
        assert store.description == f"secretmanager:{project}@{emulator}"
        assert store.access("from-spec").reveal() == CANARY
    google = open_store("secretmanager:my-project")
    assert isinstance(google, SecretManagerStore)
    assert (google.project, google.endpoint) == ("my-project", None)
    with pytest.raises(UsageError, match="needs a project"):
        open_store("secretmanager:")


def test_close_is_idempotent(emulator: str, project: str) -> None:
    store = SecretManagerStore(project, endpoint=emulator)
    assert store.list_secrets() == []
    store.close()
    store.close()
    assert store.list_secrets() == []  # reconnects on use


def test_importing_stores_imports_no_google_package() -> None:
    code = (
        "import sys, rollsafe.stores, rollsafe.stores.secretmanager, rollsafe.startup;"
        "from rollsafe.stores import SecretManagerStore;"
        "print([m for m in sys.modules if m.split('.')[0] in ('google', 'grpc', 'proto')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
