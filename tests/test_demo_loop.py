"""`rollsafe demo`'s loop (issue 14, Build 9): a deploy that passed verification breaks,
the monitor alerts a local receiver and rolls it back, `rollsafe why` writes the report,
the status page is served (and kept with --keep until Ctrl-C), and nothing is left running.

The end-to-end tests play ``--loop-only`` (the first deploy, then the loop: about 20 s);
the story before it has its own tests (tests/deploy/test_scenarios.py).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from rollsafe._demo_loop import demo_manifest
from rollsafe._demo_monitor import ALERTS_SECRET, AlertSink
from rollsafe.demo import Prober, _copy_examples, run_demo
from rollsafe.emulator.server import stop_emulator
from rollsafe.manifest import load_manifest
from rollsafe.monitor.model import AlertEvent, EventKind, Notification
from rollsafe.monitor.receivers import WebhookReceiver
from rollsafe.state.journal import DeployJournal
from tests.conftest import EXAMPLES

_ROLLSAFE = Path(sys.executable).with_name("rollsafe")
DOWN = "ServiceDown"


def _left_running(workspace: Path) -> list[str]:
    """Processes whose working directory or command line is in ``workspace``."""
    found = []
    root = str(workspace.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone, or not ours to read
        if cwd.startswith(root) or root in argv:
            found.append(f"{entry.name}: {argv.strip()} (in {cwd})")
    return found


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2.0)
    except httpx.ConnectError:
        return True
    return False


# -- the workspace's manifest, the receiver -------------------------------------------------


def test_the_demo_manifest_monitors_fast_and_alerts_the_local_receiver(tmp_path: Path) -> None:
    good, incident = _copy_examples(tmp_path)
    for path in (good, incident):
        env = load_manifest(path).resolve("staging")
        settings = env.services["backend"].monitor
        assert settings.interval == 1.0
        assert (settings.failure_threshold, settings.success_threshold) == (2, 1)
        assert settings.rollback_within == 300.0
        (receiver,) = env.alerts
        assert receiver.type == "webhook"
        assert receiver.url is None  # a secret, never a literal in the manifest
        assert receiver.url_secret == ALERTS_SECRET.format(env="staging")
    # the example itself keeps its defaults
    example = (EXAMPLES / "rollsafe.yaml").read_text(encoding="utf-8")
    assert "monitor:" not in example
    assert "alerts:" not in example
    assert demo_manifest(example) == good.read_text(encoding="utf-8")


def test_the_receiver_keeps_what_rollsafe_s_webhook_sends() -> None:
    sink = AlertSink().start()
    try:
        event = AlertEvent(
            kind=EventKind.FIRING,
            env="staging",
            service="backend",
            alertname=DOWN,
            severity="critical",
            summary="backend fails its health probe",
            description="expected HTTP 200",
            starts_at=time.time(),
            revision="backend-00002-abc",
            action="rollsafe rolled backend back to backend-00001-abc",
        )
        receiver = WebhookReceiver("demo-receiver", sink.url)
        try:
            receiver.send(Notification("staging", (event,)))
        finally:
            receiver.close()
        assert sink.wait(lambda: sink.has(DOWN, "firing"), timeout=5)
        (alert,) = sink.alerts()
        assert alert["labels"]["revision"] == "backend-00002-abc"
        assert "rolled backend back" in alert["annotations"]["description"]
        assert not sink.has(DOWN, "resolved")
    finally:
        sink.close()
    assert _refused(sink.url)


def test_the_prober_counts_the_staged_break_apart() -> None:
    answers = {"status": 200}

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answers["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    prober = Prober(f"http://127.0.0.1:{server.server_address[1]}", interval=0.01).start()
    try:

        def three_more() -> None:
            seen = prober.total
            deadline = time.monotonic() + 10
            while prober.total < seen + 3:
                assert time.monotonic() < deadline
                time.sleep(0.01)

        three_more()
        prober.staging(True)
        answers["status"] = 503
        three_more()
        answers["status"] = 200
        mark = time.monotonic()
        three_more()
        assert prober.last_ok > mark
        prober.staging(False)
        three_more()
        answers["status"] = 500
        three_more()
    finally:
        prober.stop()
        server.shutdown()
        server.server_close()
        thread.join()
    assert prober.staged
    assert {answer.split(" at ")[0] for answer in prober.staged} == {"HTTP 503"}
    assert prober.bad
    assert {answer.split(" at ")[0] for answer in prober.bad} == {"HTTP 500"}


# -- end to end -----------------------------------------------------------------------------


class _Stages:
    def __call__(self, event: object) -> None:
        """The deploys' stages are not what these tests look at."""


def test_the_loop_alerts_rolls_back_reports_and_leaves_nothing_running(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    said: list[str] = []
    threads = set(threading.enumerate())
    outcome = run_demo(said.append, _Stages(), workspace=workspace, watch=1.0, loop_only=True)
    text = "\n".join(said)
    assert outcome.ok, f"{text}\n{outcome.non_200_seen}"
    loop = outcome.loop
    assert loop is not None
    assert [name for name, ok, _ in loop.steps if ok] == [
        "deploy passes verification",
        "receiver got the alert",
        "monitor rolled the deploy back",
        "report written",
    ]
    # the receiver on 127.0.0.1 got the firing alert, naming the rollback, then its resolve
    firing = [a for a in loop.alerts if a["labels"]["alertname"] == DOWN]
    assert [a["status"] for a in firing] == ["firing", "resolved"]
    baseline = outcome.history[-1].revision
    assert f"back to {baseline}" in firing[0]["annotations"]["description"]
    # the journal holds the monitor's rollback, after the deploy it undid
    with DeployJournal(workspace / ".rollsafe") as journal:
        records = journal.history("staging", "backend")
    rollback, broken = records[0], records[1]
    assert (rollback.checks, rollback.outcome) == ("rollback", "rolled-back")
    assert rollback.revision == baseline
    assert rollback.reason is not None
    assert rollback.reason.startswith(f"monitor: {DOWN} fired")
    assert broken.id in rollback.reason
    assert (broken.checks, broken.outcome) == ("passed", "succeeded")
    # `rollsafe why`'s report, in the workspace, its chain citing evidence
    assert loop.report_md == workspace / "incident-report.md"
    assert loop.report_html == workspace / "incident-report.html"
    markdown = loop.report_md.read_text(encoding="utf-8")
    chain = markdown.split("## Root Causes", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"because revision \S+ came from deploy .+ Evidence: \[E\d+\]", chain)
    assert f"alert {DOWN} fired" in markdown
    assert f"rolled backend back: traffic was back on {baseline}" in markdown
    html = loop.report_html.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert DOWN in html
    # the staged break's answers are counted apart; none outside it
    assert outcome.staged > 0
    assert outcome.non_200 == 0, outcome.non_200_seen
    # nothing left running: no process, no thread, no server
    assert _left_running(workspace) == []
    assert [t.name for t in set(threading.enumerate()) - threads if t.is_alive()] == []
    assert loop.status_url is not None
    assert _refused(loop.status_url)
    assert _no_receiver_url(markdown, html, text)


def _no_receiver_url(*texts: str) -> bool:
    """The receiver's URL is a secret: never in what the demo said or wrote."""
    return not any(re.search(r"127\.0\.0\.1:\d+/alerts", text) for text in texts)


def test_keep_serves_the_status_page_until_ctrl_c(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    out = tmp_path / "demo.out"
    argv = [str(_ROLLSAFE), "demo", "--keep", "--loop-only", "--watch", "1"]
    argv += ["--workspace", str(workspace)]
    with out.open("w") as sink:
        process = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops" not in out.read_text():
            assert process.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        text = out.read_text()
        found = re.search(r"^status page: (http://127\.0\.0\.1:\d+/)$", text, re.M)
        assert found is not None, text
        url = found.group(1)
        assert "non-200 answers during demo: 0" in text, text
        # served while it is kept, with the emulator it reads
        _pages_answer(url)
        assert _left_running(workspace)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, out.read_text()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # its own clean stop first
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # a failed run never leaves its emulator behind
        for state_dir in workspace.glob("**/.rollsafe"):
            stop_emulator(state_dir)
    text = out.read_text()
    assert text.rstrip().endswith("non-200 answers during demo: 0"), text
    assert _left_running(workspace) == []
    assert _refused(url)
    assert (workspace / "incident-report.html").is_file()


def _pages_answer(url: str) -> None:
    """The overview, /metrics, the incidents and the loop's incident report answer 200."""
    with httpx.Client(base_url=url, timeout=30) as client:
        overview = client.get("/")
        assert overview.status_code == 200, overview.text
        assert 'data-service="backend"' in overview.text
        assert client.get("/metrics").status_code == 200
        incidents = client.get("/api/v1/incidents").json()["incidents"]
        (incident,) = [i for i in incidents if "ServiceDown" in i["title"]]
        page = client.get(incident["url"])
        assert page.status_code == 200, page.text
        assert 'id="report"' in page.text


@pytest.fixture(autouse=True)
def _own_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo keeps its state in its workspace, whatever the session points at."""
    for name in ("ROLLSAFE_HOME", "ROLLSAFE_STATE", "ROLLSAFE_GCP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def test_an_answer_in_flight_when_the_break_begins_counts_as_the_breaks() -> None:
    answering = threading.Event()
    release = threading.Event()

    class Slow503(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answering.set()
            release.wait(10)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow503)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prober = Prober(f"http://127.0.0.1:{server.server_address[1]}", interval=10).start()
    try:
        assert answering.wait(10)  # the request left before the break
        prober.staging(True)  # the break begins while it waits for its answer
        release.set()
        deadline = time.monotonic() + 10
        while prober.total < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        prober.stop()
        server.shutdown()
        server.server_close()
    assert prober.bad == []
    assert len(prober.staged) == 1
