"""Reading why a revision did not start from its logs: the twin, and Cloud Logging through
the official client against the emulator (a revision that really exits)."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from rollsafe.platforms import PlatformError
from rollsafe.platforms.logs import (
    SYSTEM_LOG,
    CloudLoggingRevisionLogs,
    InMemoryRevisionLogs,
    LogLine,
    StartFailure,
    start_filter,
)
from tests.emulator.conftest import FAST, gapic_client

#: what the start-up guard prints on stderr before exit(3): names, never values
GUARD = {
    "severity": "CRITICAL",
    "message": "start-up checks failed: SERVICE_SECRET machine_secret",
    "rollsafe": "startup",
}


def test_twin_reads_the_exit_and_the_critical_line() -> None:
    logs = InMemoryRevisionLogs()
    logs.add("api", "api-2", LogLine("run.googleapis.com/stderr", "ERROR", "a traceback"))
    logs.add("api", "api-2", LogLine("run.googleapis.com/stderr", "CRITICAL", "weak secret"))
    logs.add("api", "api-2", LogLine(SYSTEM_LOG, "WARNING", "Container called exit(3)."))
    logs.add("api", "api-1", LogLine(SYSTEM_LOG, "WARNING", "Container called exit(1)."))
    found = logs.start_failure("api", "api-2", wait=0)
    assert found == StartFailure("Container called exit(3).", "weak secret")
    assert found.describe() == "Container called exit(3). start-up guard (CRITICAL): weak secret"
    assert [line.text for line in logs.start_entries("api", "api-2")] == [
        "weak secret",
        "Container called exit(3).",
    ]


def test_twin_keeps_reading_until_the_platform_line_arrives() -> None:
    logs = InMemoryRevisionLogs()
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:  # the entry shows up late, as on Google
            logs.add("api", "api-3", LogLine(SYSTEM_LOG, "WARNING", "Container called exit(3)."))

    found = logs.start_failure("api", "api-3", wait=60, sleep=sleep)
    assert found.platform == "Container called exit(3)."
    assert len(naps) == 2
    assert StartFailure().describe() is None


def test_filter_names_the_revision_the_system_log_and_critical() -> None:
    assert start_filter("p", "api", "api-00002-abc") == (
        'resource.type="cloud_run_revision" AND resource.labels.service_name="api"'
        ' AND resource.labels.revision_name="api-00002-abc"'
        ' AND (logName="projects/p/logs/run.googleapis.com%2Fvarlog%2Fsystem"'
        " OR severity>=CRITICAL)"
    )


@pytest.fixture
def services(emulator: str) -> Iterator[run_v2.ServicesClient]:
    with gapic_client(run_v2.ServicesClient, emulator) as client:
        yield client


def _container(code: str) -> run_v2.Container:
    return run_v2.Container(image="ignored-locally", command=[sys.executable, "-c", code])


def test_cloud_logging_reads_a_real_failed_start(
    services: run_v2.ServicesClient, emulator: str, project: str
) -> None:
    guard_line = json.dumps(GUARD)
    code = (
        "import sys; print('booting', flush=True); "
        f"print({guard_line!r}, file=sys.stderr, flush=True); sys.exit(3)"
    )
    with pytest.raises(exceptions.FailedPrecondition) as failure:
        services.create_service(
            parent=f"projects/{project}/locations/us-central1",
            service_id="guarded",
            service=run_v2.Service(template=run_v2.RevisionTemplate(containers=[_container(code)])),
        ).result(polling=FAST)
    assert "CRITICAL" not in failure.value.message
    service = services.get_service(
        name=f"projects/{project}/locations/us-central1/services/guarded"
    )
    revision = service.latest_created_revision.rsplit("/", 1)[-1]
    with CloudLoggingRevisionLogs(project, endpoint=emulator) as logs:
        found = logs.start_failure("guarded", revision, wait=10)
        lines = logs.start_entries("guarded", revision)
    assert found == StartFailure(
        "Container called exit(3).", "start-up checks failed: SERVICE_SECRET machine_secret"
    )
    # only the system log and CRITICAL entries: the plain output line is not read
    assert [(line.log, line.severity) for line in lines] == [
        ("run.googleapis.com/stderr", "CRITICAL"),
        (SYSTEM_LOG, "WARNING"),
    ]
    # another revision's entries are not this one's
    with CloudLoggingRevisionLogs(project, endpoint=emulator) as logs:
        assert logs.start_entries("guarded", "guarded-99999-zzz") == []


def test_unreachable_logging_is_a_platform_error(project: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with (
        CloudLoggingRevisionLogs(project, endpoint=dead) as logs,
        pytest.raises(PlatformError, match="Cloud Logging is unreachable"),
    ):
        logs.start_entries("api", "api-1")


def test_missing_credentials_on_google_is_a_platform_error_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an explicit credentials file that does not exist: google-auth gives up at once,
    # before it would look for a metadata server
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with (
        CloudLoggingRevisionLogs("some-project") as logs,
        pytest.raises(PlatformError, match="no Google credentials") as info,
    ):
        logs.start_entries("api", "api-1")
    assert info.value.hint == "gcloud auth application-default login"
