"""Persistence of Cloud Run services, revisions and operations in the emulator's SQLite.

Resources are stored as their proto JSON (``run_v2.Service.to_json``), operations as the JSON
of ``google.longrunning.Operation``, so what is stored is exactly what the API renders. Each
table has a ``seq`` column: list order and page tokens are built on it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.cloud import run_v2
from google.longrunning import operations_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format  # type: ignore[import-untyped]

from rollsafe.emulator._google import invalid_argument
from rollsafe.emulator.db import EmulatorDB

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Page",
    "RunStore",
    "ServicePorts",
    "page_size",
    "template_key",
]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_services (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    parent TEXT NOT NULL,
    body TEXT NOT NULL,
    port INTEGER,
    tag_ports TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS run_revisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    service TEXT NOT NULL,
    body TEXT NOT NULL,
    template TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_revisions_by_service ON run_revisions (service, seq);
CREATE TABLE IF NOT EXISTS run_operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    parent TEXT NOT NULL,
    body TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class ServicePorts:
    """The router ports a service was given, kept so its URLs survive a restart."""

    port: int | None
    tag_ports: dict[str, int]


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and the token of the next one ('' at the end)."""

    items: list[T]
    next_page_token: str


def _token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode()


def _after(token: str) -> int:
    """The ``seq`` a page token continues after; a forged token is INVALID_ARGUMENT."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        kind, _, value = text.partition(":")
        if kind != "seq":
            raise ValueError(text)
        return int(value)
    except ValueError:
        raise invalid_argument(f"invalid page token: {token!r}") from None


def page_size(requested: int) -> int:
    """``pageSize`` 0 means the default; larger than the maximum is clamped, negative is 400."""
    if requested < 0:
        raise invalid_argument(f"page_size must not be negative, got {requested}")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def template_key(template: run_v2.RevisionTemplate) -> str:
    """A canonical text of a template: equal texts mean no new revision is needed."""
    return json.dumps(json.loads(run_v2.RevisionTemplate.to_json(template)), sort_keys=True)


class RunStore:
    """Services, revisions and operations of the Cloud Run API, in ``run_*`` tables."""

    def __init__(self, db: EmulatorDB) -> None:
        self.db = db
        db.ensure_schema(_SCHEMA)

    # -- services ------------------------------------------------------------------------

    def get_service(self, name: str) -> run_v2.Service | None:
        row = self.db.query_one("SELECT body FROM run_services WHERE name = ?", (name,))
        return None if row is None else run_v2.Service.from_json(row["body"])

    def put_service(self, service: run_v2.Service) -> None:
        """Insert or replace (keeping the ports and the list position)."""
        parent = service.name.rsplit("/services/", 1)[0]
        body = run_v2.Service.to_json(service, indent=None)
        self.db.execute(
            "INSERT INTO run_services (name, parent, body) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET body = excluded.body",
            (service.name, parent, body),
        )

    def delete_service(self, name: str) -> None:
        """Delete the service and its revisions."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM run_revisions WHERE service = ?", (name,))
            conn.execute("DELETE FROM run_services WHERE name = ?", (name,))

    def list_services(self, parent: str, size: int, token: str) -> Page[run_v2.Service]:
        rows = self.db.query(
            "SELECT seq, body FROM run_services WHERE parent = ? AND seq > ? ORDER BY seq LIMIT ?",
            (parent, _after(token), size + 1),
        )
        more = len(rows) > size
        rows = rows[:size]
        items = [run_v2.Service.from_json(row["body"]) for row in rows]
        return Page(items, _token(rows[-1]["seq"]) if more else "")

    def all_services(self) -> list[run_v2.Service]:
        rows = self.db.query("SELECT body FROM run_services ORDER BY seq")
        return [run_v2.Service.from_json(row["body"]) for row in rows]

    def ports(self, name: str) -> ServicePorts:
        row = self.db.query_one("SELECT port, tag_ports FROM run_services WHERE name = ?", (name,))
        if row is None:
            return ServicePorts(None, {})
        return ServicePorts(
            row["port"], {k: int(v) for k, v in json.loads(row["tag_ports"]).items()}
        )

    def set_ports(self, name: str, ports: ServicePorts) -> None:
        """Remember the router ports; tags seen before keep theirs even when removed."""
        known = self.ports(name).tag_ports
        known.update(ports.tag_ports)
        self.db.execute(
            "UPDATE run_services SET port = ?, tag_ports = ? WHERE name = ?",
            (ports.port, json.dumps(known), name),
        )

    # -- revisions -----------------------------------------------------------------------

    def get_revision(self, name: str) -> run_v2.Revision | None:
        row = self.db.query_one("SELECT body FROM run_revisions WHERE name = ?", (name,))
        return None if row is None else run_v2.Revision.from_json(row["body"])

    def revision_template(self, name: str) -> str | None:
        """The ``template_key`` of the template a revision was created from."""
        row = self.db.query_one("SELECT template FROM run_revisions WHERE name = ?", (name,))
        return None if row is None else str(row["template"])

    def put_revision(self, revision: run_v2.Revision, template: str | None = None) -> None:
        """Insert (``template`` required) or update a revision."""
        body = run_v2.Revision.to_json(revision, indent=None)
        if template is None:
            self.db.execute(
                "UPDATE run_revisions SET body = ? WHERE name = ?", (body, revision.name)
            )
            return
        self.db.execute(
            "INSERT INTO run_revisions (name, service, body, template) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET body = excluded.body",
            (revision.name, revision.service, body, template),
        )

    def delete_revision(self, name: str) -> None:
        self.db.execute("DELETE FROM run_revisions WHERE name = ?", (name,))

    def list_revisions(self, service: str, size: int, token: str) -> Page[run_v2.Revision]:
        """Newest first, as Cloud Run lists them."""
        after = _after(token)
        rows = self.db.query(
            "SELECT seq, body FROM run_revisions WHERE service = ? AND (? = 0 OR seq < ?)"
            " ORDER BY seq DESC LIMIT ?",
            (service, after, after, size + 1),
        )
        more = len(rows) > size
        rows = rows[:size]
        items = [run_v2.Revision.from_json(row["body"]) for row in rows]
        return Page(items, _token(rows[-1]["seq"]) if more else "")

    def service_revisions(self, service: str) -> list[run_v2.Revision]:
        rows = self.db.query(
            "SELECT body FROM run_revisions WHERE service = ? ORDER BY seq", (service,)
        )
        return [run_v2.Revision.from_json(row["body"]) for row in rows]

    # -- operations ----------------------------------------------------------------------

    def get_operation(self, name: str) -> operations_pb2.Operation | None:
        row = self.db.query_one("SELECT body FROM run_operations WHERE name = ?", (name,))
        if row is None:
            return None
        return json_format.Parse(row["body"], operations_pb2.Operation())

    def put_operation(self, operation: operations_pb2.Operation) -> None:
        parent = operation.name.rsplit("/operations/", 1)[0]
        body = json_format.MessageToJson(operation, indent=None)
        self.db.execute(
            "INSERT INTO run_operations (name, parent, body, done) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET body = excluded.body, done = excluded.done",
            (operation.name, parent, body, int(operation.done)),
        )

    def delete_operation(self, name: str) -> bool:
        before = self.get_operation(name)
        self.db.execute("DELETE FROM run_operations WHERE name = ?", (name,))
        return before is not None

    def list_operations(self, parent: str, size: int, token: str) -> Page[operations_pb2.Operation]:
        rows = self.db.query(
            "SELECT seq, body FROM run_operations WHERE parent = ? AND seq > ? ORDER BY seq"
            " LIMIT ?",
            (parent, _after(token), size + 1),
        )
        more = len(rows) > size
        rows = rows[:size]
        items = [json_format.Parse(row["body"], operations_pb2.Operation()) for row in rows]
        return Page(items, _token(rows[-1]["seq"]) if more else "")

    def pending_operations(self) -> list[operations_pb2.Operation]:
        rows = self.db.query("SELECT body FROM run_operations WHERE done = 0 ORDER BY seq")
        return [json_format.Parse(row["body"], operations_pb2.Operation()) for row in rows]
