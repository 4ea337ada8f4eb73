"""What the guard does to its process: one JSON log line on stderr, and exit code 3.

The guard and ``rollsafe.cli`` are the two places that write to the process's streams and
end it: inside a service there is no CLI to do it, and the exit code is the signal Cloud
Run understands (a revision whose container exits never becomes Ready).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

from rollsafe.startup.report import StartupReport

__all__ = ["EXIT_CODE", "arm_exit", "log_entry", "stderr_line"]

#: the exit status of a service whose start-up checks failed (uvicorn's own, too)
EXIT_CODE = 3


def stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def log_entry(severity: str, outcome: str, report: StartupReport) -> dict[str, Any]:
    """The structured log line (Cloud Logging reads ``severity`` and ``message``)."""
    entry: dict[str, Any] = {
        "severity": severity,
        "message": report.summary(),
        "event": "rollsafe.startup",
        "outcome": outcome,
        **report.context,
        "phase": report.failed_phase,
        "failures": [p.to_dict() for p in report.failures],
        "warnings": [p.to_dict() for p in report.warnings],
        "skipped": list(report.skipped),
        "duration_ms": round(report.duration * 1000, 3),
    }
    if outcome == "failed":
        entry["exit_code"] = EXIT_CODE
    return entry


def _hard_exit() -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(EXIT_CODE)


def arm_exit(delay: float) -> None:
    """End the process with code 3 in ``delay`` seconds unless it has ended by then."""
    timer = threading.Timer(delay, _hard_exit)
    timer.daemon = True
    timer.name = "rollsafe-startup-exit"
    timer.start()
