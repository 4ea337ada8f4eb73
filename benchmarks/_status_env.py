"""A synthetic environment for the status page's benchmark and screenshots: a manifest
naming the services and a SQLite state store filled by ``fill_synthetic`` (rollups,
heartbeat, service snapshots, alerts, deploy records, as the monitor and deploys write
them), served by the real ``StatusApp`` on a ``MonitorServer`` on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rollsafe.manifest import ResolvedEnvironment, load_manifest  # noqa: E402
from rollsafe.monitor.server import MonitorServer  # noqa: E402
from rollsafe.state.sqlite import SQLiteStateStore  # noqa: E402
from rollsafe.web._synthetic import fill_synthetic  # noqa: E402
from rollsafe.web.app import StatusApp  # noqa: E402

ENV = "production"


def write_manifest(root: Path, names: Sequence[str], *, monitor: str = "") -> Path:
    """``rollsafe.yaml`` in ``root``: one service per name, each with a health check and
    ``monitor: {MONITOR}`` when given."""
    lines = [
        "version: 1",
        "project: shop",
        "environments:",
        f"  {ENV}: {{platform: local, strict: true}}",
        "services:",
    ]
    for name in names:
        lines += [
            f"  {name}:",
            "    health: {path: /health, expect_status: 200, timeout: 2s}",
            "    env: {ENVIRONMENT: '{env}'}",
        ]
        if monitor:
            lines.append(f"    monitor: {{{monitor}}}")
    path = root / "rollsafe.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def synthetic_env(
    root: Path,
    names: Sequence[str],
    days: int,
    now: float,
    *,
    monitor: str = "",
    **fill: Any,
) -> tuple[ResolvedEnvironment, SQLiteStateStore]:
    """The manifest (``write_manifest``) and its state store (``root/state.db``) filled by
    ``fill_synthetic(store, ENV, names, days, now, **fill)``. The caller closes the store."""
    manifest = write_manifest(root, names, monitor=monitor)
    env = load_manifest(manifest).resolve(ENV)
    store = SQLiteStateStore(root / "state.db")
    fill_synthetic(store, ENV, list(names), days, now, **fill)
    return env, store


@contextmanager
def serving(app: StatusApp) -> Iterator[str]:
    """``app`` on a ``MonitorServer`` on a free port of 127.0.0.1; yields its URL (``/``)."""
    with MonitorServer("127.0.0.1:0") as server:
        app.mount(server)
        yield server.url.rstrip("/") + "/"
