"""Resource names of the Logging API: ``projects/P``, ``projects/P/logs/LOG_ID`` and the
parents the emulator refuses (organizations, folders, billing accounts hold no logs here),
and the paging of lists of names (logs, sinks, metrics)."""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse

from rollsafe.emulator._google import invalid_argument

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "log_name",
    "page_names",
    "project_of",
    "split_log_name",
]

#: logs.list, sinks.list and metrics.list: Google's default and largest pageSize
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# Google: "less than 512 characters long and can only include the following characters:
# upper and lower case alphanumeric characters, forward-slash, underscore, hyphen, and period"
_LOG_ID = re.compile(r"^[A-Za-z0-9/_.\-]{1,511}$")
_NOT_PROJECTS = ("organizations", "folders", "billingAccounts")


def project_of(resource_name: str) -> str:
    """``projects/P`` (or a log view under it) -> ``P``. Only projects hold entries here."""
    parts = resource_name.split("/")
    if len(parts) >= 2 and parts[0] == "projects" and parts[1]:
        return parts[1]
    if parts[0] in _NOT_PROJECTS:
        raise invalid_argument(
            f"Resource name {resource_name!r}: the emulator holds project logs only."
        )
    raise invalid_argument(f"Invalid resource name {resource_name!r}.")


def split_log_name(log_name: str) -> tuple[str, str]:
    """``projects/P/logs/ID`` (ID URL-encoded or not) -> ``(P, ID decoded)``."""
    parts = log_name.split("/", 3)
    if len(parts) != 4 or parts[0] != "projects" or not parts[1] or parts[2] != "logs":
        if parts[0] in _NOT_PROJECTS:
            raise invalid_argument(f"Log {log_name!r}: the emulator holds project logs only.")
        raise invalid_argument(f"Invalid log name {log_name!r}.")
    log_id = urllib.parse.unquote(parts[3])
    if not _LOG_ID.match(log_id):
        raise invalid_argument(
            f"Invalid log ID {log_id!r}: a log ID is less than 512 characters of letters,"
            " digits, forward-slash, underscore, hyphen and period."
        )
    return parts[1], log_id


def log_name(project: str, log_id: str) -> str:
    """The stored (canonical) form: the log ID URL-encoded, slashes as ``%2F``."""
    return f"projects/{project}/logs/{urllib.parse.quote(log_id, safe='')}"


def page_names(names: list[str], page_size: int, page_token: str) -> tuple[list[str], str]:
    """One page of ``names`` (sorted) and the token of the next (empty on the last page).

    The token is the page's last name, base64-encoded: a name added or deleted between two
    calls shifts no other name to the wrong page, as an offset would."""
    size = min(page_size if page_size > 0 else DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if page_token:
        try:
            after = base64.urlsafe_b64decode(page_token.encode()).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise invalid_argument(f"Invalid page token {page_token!r}.") from None
        names = [name for name in names if name > after]
    page = names[:size]
    token = base64.urlsafe_b64encode(page[-1].encode()).decode() if len(names) > size else ""
    return page, token
