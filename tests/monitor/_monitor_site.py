"""End-to-end helpers for ``rollsafe monitor``: the example's manifest given ``monitor:``
settings and ``alerts:`` receivers (local recording servers), and the real CLI run as a
process whose stdout and stderr go to files the test reads.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rollsafe.manifest import load_manifest
from tests.deploy.conftest import ENV, Site
from tests.monitor._receivers import RecordingServer

#: in receiver URLs and keys: they must never be printed
URL_CANARY = "rcv-Canary-9f3Kq2"
KEY_CANARY = "pdkey-Canary-7xW2m"

#: thresholds small and the 5xx rate out of the way (the probes' own 503s would fire it
#: once the down alert resolves); each test asks for more where it needs it
FAST = (
    "interval: 1s, failure_threshold: 2, success_threshold: 1, rollback_within: off, "
    "max_error_rate: 1"
)

_ROLLSAFE = Path(sys.executable).with_name("rollsafe")


def monitored(
    site: Site,
    *,
    monitor: str = FAST,
    receivers: dict[str, RecordingServer] | None = None,
) -> Path:
    """Give the workspace's manifest ``monitor: {MONITOR}`` and one receiver per entry of
    ``receivers`` (type -> server), its URL (and PagerDuty's key) kept as secrets in the
    environment's store; ``site.env`` is the new environment. Returns the manifest."""
    text = site.manifest.read_text(encoding="utf-8")
    specs = []
    for kind, server in (receivers or {}).items():
        url = f"{server.url}/{URL_CANARY}-{kind}"
        if kind == "alertmanager":
            url = server.url
        elif kind == "apprise":
            url = f"json://127.0.0.1:{server.port}/{URL_CANARY}-{kind}"
        site.store.add_version(f"hook-{kind}-{ENV}", url)
        spec = f'{{type: {kind}, url: {{secret: "hook-{kind}-{{env}}"}}'
        if kind == "pagerduty":
            site.store.add_version(f"pd-key-{ENV}", KEY_CANARY)
            spec += ', routing_key: {secret: "pd-key-{env}"}'
        specs.append(spec + "}")
    if specs:
        text = re.sub(
            r"(  staging: \{platform: local, strict: true, gcp_project: [\w-]+)\}",
            lambda m: f"{m.group(1)}, alerts: [{', '.join(specs)}]}}",
            text,
        )
    assert "    public: false\n" in text
    text = text.replace("    public: false\n", f"    public: false\n    monitor: {{{monitor}}}\n")
    site.manifest.write_text(text, encoding="utf-8")
    site.env = load_manifest(site.manifest).resolve(ENV)
    return site.manifest


class MonitorProcess:
    """``rollsafe monitor --env staging -f MANIFEST ARGS`` as a real process."""

    def __init__(self, site: Site, *args: str, name: str = "monitor", **env: str) -> None:
        self.out = site.root / f"{name}.stdout"
        self.err = site.root / f"{name}.stderr"
        argv = [str(_ROLLSAFE), "monitor", "--env", ENV, "-f", str(site.manifest), *args]
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=err, env={**os.environ, **env}, cwd=site.root
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8")

    def wait_for(self, pattern: str, *, stream: str = "stdout", timeout: float = 60.0) -> str:
        """Wait until ``pattern`` (a regex) appears in the output; return the match's line."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stdout if stream == "stdout" else self.stderr
            for line in text.splitlines():
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None and not re.search(pattern, text):
                raise AssertionError(
                    f"the monitor exited ({self.process.returncode}) without {pattern!r}:\n"
                    f"{self.stdout}\n{self.stderr}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in time:\n{self.stdout}\n{self.stderr}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and reap the process; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> MonitorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def run_once(site: Site, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``rollsafe monitor --once`` to the end."""
    argv = [str(_ROLLSAFE), "monitor", "--env", ENV, "-f", str(site.manifest), "--once", *args]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        cwd=site.root,
        check=False,
    )


_CHAT = re.compile(r"\*?(?P<alert>\w+)\*? (?P<kind>firing|resolved|reminder) on ")


def received(kind: str, server: RecordingServer, alertname: str) -> list[str]:
    """What ``server`` (a receiver of type ``kind``) heard about ``alertname``, in order:
    ``trigger`` and ``resolve`` (Alertmanager: ``firing`` for each post, re-sent while it
    fires, and ``resolved`` with ``endsAt``)."""
    said: list[str] = []
    for request in server.requests:
        body: Any = request.json
        if kind == "pagerduty":
            if alertname in str(body.get("dedup_key", "")) or (
                body.get("payload", {}).get("class") == alertname
            ):
                said.append(body["event_action"])
        elif kind == "webhook":
            said += [
                "trigger" if a["status"] == "firing" else "resolve"
                for a in body["alerts"]
                if a["labels"]["alertname"] == alertname
            ]
        elif kind == "alertmanager":
            said += [
                "resolved" if "endsAt" in a else "firing"
                for a in body
                if a["labels"]["alertname"] == alertname
            ]
        else:  # slack, apprise: one line per event in the text
            text = body.get("text", "") if kind == "slack" else body.get("message", "")
            said += [
                {"firing": "trigger", "resolved": "resolve"}.get(m["kind"], m["kind"])
                for m in _CHAT.finditer(str(text))
                if m["alert"] == alertname
            ]
    return said
