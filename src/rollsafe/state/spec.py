"""Where the state lives: ``state:`` in the manifest, ``ROLLSAFE_STATE`` or ``--state``.

Accepted forms:

- ``sqlite`` (or nothing): ``journal.sqlite3`` in the state directory;
- ``sqlite:PATH``: a journal file, or a directory to hold ``journal.sqlite3`` (relative
  paths start at ``base_dir``: the manifest's directory);
- ``postgresql://...`` / ``postgres://...``: a libpq URL of a team's shared database;
- ``memory``: nothing kept (tests, dry runs).

The PostgreSQL password never comes from a place that gets printed: libpq reads
``PGPASSWORD`` and ``~/.pgpass`` (``PGPASSFILE``) itself, and ``ROLLSAFE_STATE_PASSWORD``
(a CI secret) is passed to the driver apart from the URL. Every message shows the URL
redacted (``.redacted``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from rollsafe.errors import UsageError
from rollsafe.state.base import StateStore

__all__ = [
    "PASSWORD_ENV",
    "StateSpec",
    "open_state_store",
    "parse_state_spec",
    "password_in",
    "redact_url",
    "state_password",
]

#: the variable holding the database password (a CI secret) when the URL has none
PASSWORD_ENV = "ROLLSAFE_STATE_PASSWORD"
JOURNAL_FILE = "journal.sqlite3"
_PG_SCHEMES = ("postgresql", "postgres")
_FORMS = (
    "accepted: 'sqlite' (the state directory's journal.sqlite3), 'sqlite:PATH' (a journal "
    "file or a directory), 'postgresql://USER@HOST:PORT/DB' (the password from PGPASSWORD, "
    f"~/.pgpass or {PASSWORD_ENV}) or 'memory'"
)
# ``user:password@`` in any URL, and ``password=...`` in a query or a conninfo string
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/?#@\s]*):[^@/?#\s]*@")
_PASSWORD_PARAM = re.compile(r"(?i)(?P<key>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^&\s]*)")


def redact_url(text: str) -> str:
    """``text`` with every URL password and ``password=`` value replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _PASSWORD_PARAM.sub(lambda m: f"{m['key']}***", text)


def password_in(url: str) -> bool:
    """Whether ``url`` carries a password (``user:PASSWORD@`` or ``?password=``): the
    manifest refuses one, as it is committed to git."""
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            return True
    except ValueError:
        return bool(_USERINFO.search(url))
    return any(key.lower() == "password" for key, _ in parse_qsl(parts.query))


@dataclass(frozen=True)
class StateSpec:
    """A parsed state location. ``url`` may hold a password: show ``redacted`` only."""

    kind: str  # "sqlite", "postgresql" or "memory"
    path: Path | None = None
    url: str | None = field(default=None, repr=False)

    @property
    def redacted(self) -> str:
        """The location for messages: the path, the URL without its password, or memory."""
        if self.kind == "sqlite":
            return str(self.path)
        if self.kind == "postgresql" and self.url is not None:
            return redact_url(self.url)
        return self.kind

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"StateSpec({self.kind!r}, {self.redacted!r})"


def _bad(source: str, raw: str, why: str) -> UsageError:
    return UsageError(f"{source}: {redact_url(raw)!r} {why}", hint=_FORMS)


def _sqlite_path(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    # a directory: one that exists, a trailing slash, or a name without an extension
    if path.is_dir() or value.endswith(("/", os.sep)) or not path.suffix:
        return path / JOURNAL_FILE
    return path


def parse_state_spec(raw: str | None, *, base_dir: Path, state_dir: Path, source: str) -> StateSpec:
    """The ``StateSpec`` of ``raw`` (None: the default, SQLite in ``state_dir``).

    ``source`` names where ``raw`` came from (``ROLLSAFE_STATE``, ``--state``,
    ``rollsafe.yaml: state``) in the ``UsageError`` a bad value raises; the error never
    shows a password.
    """
    if raw is None:
        return StateSpec("sqlite", path=state_dir / JOURNAL_FILE)
    value = raw.strip()
    if not value:
        # an empty CI variable (a secret that is not set) must not fall back silently
        raise _bad(source, raw, "is empty")
    lowered = value.lower()
    if lowered == "sqlite":
        return StateSpec("sqlite", path=state_dir / JOURNAL_FILE)
    if lowered == "memory":
        return StateSpec("memory")
    if lowered.startswith("sqlite:"):
        rest = value[len("sqlite:") :]
        if not rest:
            raise _bad(source, raw, "names no path after 'sqlite:'")
        return StateSpec("sqlite", path=_sqlite_path(rest, base_dir))
    scheme = lowered.partition("://")[0]
    if scheme in _PG_SCHEMES and "://" in value:
        return StateSpec("postgresql", url=_check_pg_url(value, source))
    raise _bad(source, raw, "is not a state location")


def _check_pg_url(url: str, source: str) -> str:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise _bad(source, url, f"is not a valid PostgreSQL URL ({redact_url(str(exc))})") from None
    if any(c.isspace() for c in url):
        raise _bad(source, url, "has a space in it (percent-encode it as %20)")
    return url


def state_password(url: str, environ: dict[str, str] | None = None) -> str | None:
    """The password to pass to the driver beside ``url``: ``ROLLSAFE_STATE_PASSWORD`` when
    neither the URL nor ``PGPASSWORD`` gives one (libpq reads those, and ``.pgpass``)."""
    env = os.environ if environ is None else environ
    if password_in(url) or env.get("PGPASSWORD"):
        return None
    return env.get(PASSWORD_ENV) or None


def open_state_store(spec: StateSpec) -> StateStore:
    """Open the store ``spec`` names. A PostgreSQL store connects now: an unreachable
    database raises ``StateUnavailableError`` (naming the redacted URL)."""
    if spec.kind == "memory":
        from rollsafe.state.memory import MemoryStateStore

        return MemoryStateStore()
    if spec.kind == "sqlite":
        from rollsafe.state.sqlite import SQLiteStateStore

        assert spec.path is not None
        return SQLiteStateStore(spec.path)
    if spec.kind == "postgresql":
        from rollsafe.state.postgresql import PostgresStateStore

        assert spec.url is not None
        return PostgresStateStore(spec.url, password=state_password(spec.url))
    raise UsageError(f"unknown state kind {spec.kind!r}", hint=_FORMS)
