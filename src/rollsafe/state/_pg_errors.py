"""psycopg's and psycopg_pool's errors as rollsafe's: the one place that maps them.

A server that cannot be reached (down, refusing, timing out, shutting down, a pool with no
connection to give) is ``StateUnavailableError``: the journal retries and spools. Anything
else is ``StateError``. Messages name the database by its redacted URL, and a password
the driver might echo (libpq quotes bad URL parts) is scrubbed from them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from rollsafe.state.base import StateError, StateUnavailableError
from rollsafe.state.spec import redact_url

__all__ = ["INSTALL_HINT", "import_driver", "pg_errors"]

INSTALL_HINT = "pip install 'rollsafe[postgresql]'"


def import_driver() -> tuple[Any, Any]:
    """(psycopg, psycopg_pool), imported now: rollsafe without the extra never needs them."""
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise StateError(
            f"a postgresql:// state needs psycopg 3 and psycopg_pool ({exc.name} is missing)",
            hint=INSTALL_HINT,
        ) from exc
    return psycopg, psycopg_pool


def _reason(exc: BaseException, secrets: Iterable[str]) -> str:
    # libpq's messages run over several lines (a DETAIL, a HINT): the first says it
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return redact_url(text)


#: libpq's words for a server that answers but refuses us: a setting to fix, not an outage
_REFUSALS = (
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "permission denied",
    "pg_hba.conf",
)


def _unavailable(exc: BaseException) -> bool:
    import psycopg
    import psycopg_pool

    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg_pool.PoolClosed):
        return True
    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    # connection failures, admin shutdown, "the connection is lost", unless the server
    # answered with a refusal (a wrong password is not an outage to wait out)
    return not any(word in str(exc) for word in _REFUSALS)


@contextlib.contextmanager
def pg_errors(location: str, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Run the body; a psycopg or pool error leaves it as ours, chained ``from`` it."""
    import psycopg
    import psycopg_pool

    try:
        yield
    except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
        reason = _reason(exc, tuple(secrets))
        if _unavailable(exc):
            raise StateUnavailableError(
                f"the state database {location} cannot be reached: {reason}",
                hint="check that the database runs and that this machine reaches it; "
                "the password comes from PGPASSWORD, ~/.pgpass or ROLLSAFE_STATE_PASSWORD",
            ) from exc
        raise StateError(
            f"the state database {location} failed: {reason}",
            hint="check the URL's user and database, and the password in PGPASSWORD, "
            "~/.pgpass or ROLLSAFE_STATE_PASSWORD",
        ) from exc
